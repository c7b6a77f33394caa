import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DECODE, LINKTYPE, newDecodedPacket, type DecodedPacket } from '../types.ts';
import {
  buildFragmentFrames, buildIp, fragmentIpv4, fragmentIpv6, frameOf, internetChecksum, linkTypeOf, wrapLink,
  type FragmentOrder, type FragmentPiece, type FrameSpec, type LinkKind,
} from '../testing/packet-builder.ts';
import { formatAddress } from './addr.ts';
import { Decoder, type DecoderOptions } from './decoder.ts';

const T0 = 1_700_000_000_000;

/** Feeds frames (one ms apart from `t`) and returns the statuses and the packet after the last OK. */
function feed(d: Decoder, frames: readonly Buffer[], linkType: number, t = T0): { statuses: number[]; ok: DecodedPacket | null; p: DecodedPacket } {
  const p = newDecodedPacket();
  const statuses: number[] = [];
  let ok: DecodedPacket | null = null;
  frames.forEach((data, i) => {
    const s = d.decode(frameOf(data, t + i, linkType), p);
    statuses.push(s);
    if (s === DECODE.OK || s === DECODE.OTHER_PROTOCOL) ok = { ...p, buf: Buffer.from(p.buf) }; // copy: buf is only valid until the next decode
  });
  return { statuses, ok, p };
}

function payload(p: DecodedPacket): Buffer {
  return p.buf.subarray(p.payloadOffset, p.payloadOffset + p.payloadLength);
}

/** A deterministic payload where every byte position is recognisable. */
function pattern(n: number, seed = 0): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed + (i >> 8)) & 0xff;
  return b;
}

function udpSpec(link: LinkKind, version: 4 | 6, size: number, id = 0x4242, extra: Partial<FrameSpec> = {}): FrameSpec {
  return {
    link,
    ip: version === 4 ? { version, src: '10.0.0.1', dst: '10.0.0.2', id } : { version, src: 'fd00::1', dst: 'fd00::2', id },
    udp: { srcPort: 5353, dstPort: 53, payload: pattern(size, id) },
    ...extra,
  };
}

function assertOneDelivery(statuses: number[], at: number, status: number = DECODE.OK): void {
  statuses.forEach((s, i) => assert.equal(s, i === at ? status : DECODE.FRAGMENT_HELD, `fragment #${i}: ${s}`));
}

function shuffled(n: number, seed: number): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  let s = seed;
  for (let i = n - 1; i > 0; i--) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const j = s % (i + 1);
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx;
}

describe('fragment reassembly: orders', () => {
  for (const version of [4, 6] as const) {
    const orders: [string, (n: number) => FragmentOrder][] = [
      ['in order', () => 'forward'],
      ['reversed', () => 'reverse'],
      ['shuffled', (n) => shuffled(n, 7)],
      ['with duplicates', (n) => [0, 0, ...Array.from({ length: n - 1 }, (_, i) => i + 1).flatMap((i) => [i, i])].slice(0, -1)],
    ];
    for (const [name, order] of orders) {
      it(`IPv${version} UDP, ${name}`, () => {
        const spec = udpSpec('ethernet', version, 4000);
        const n = Math.ceil((4008 + (version === 6 ? 0 : 0)) / 1000);
        const frames = buildFragmentFrames(spec, 1000, order(n));
        const d = new Decoder();
        const { statuses, ok } = feed(d, frames, LINKTYPE.ETHERNET);
        assertOneDelivery(statuses, frames.length - 1);
        assert.ok(ok);
        assert.equal(ok.fragmented, true);
        assert.equal(ok.ipVersion, version);
        assert.equal(ok.protocol, 17);
        assert.equal(ok.srcPort, 5353);
        assert.equal(ok.dstPort, 53);
        assert.equal(formatAddress(ok.buf, ok.srcAddrOffset, version), version === 4 ? '10.0.0.1' : 'fd00::1');
        assert.equal(formatAddress(ok.buf, ok.dstAddrOffset, version), version === 4 ? '10.0.0.2' : 'fd00::2');
        assert.deepEqual(payload(ok), pattern(4000, 0x4242));
        assert.equal(d.stats.datagramsReassembled, 1);
        assert.equal(d.stats.datagramsInFlight, 0);
        assert.equal(d.stats.fragmentBytesInFlight, 0);
      });
    }
  }

  it('every link type carries fragments (IPv4 and IPv6)', () => {
    for (const link of ['ethernet', 'sll', 'sll2', 'null', 'loop', 'raw'] as const) {
      for (const version of [4, 6] as const) {
        const frames = buildFragmentFrames(udpSpec(link, version, 1500), 512, 'reverse');
        const { statuses, ok } = feed(new Decoder(), frames, linkTypeOf(link));
        assertOneDelivery(statuses, frames.length - 1);
        assert.deepEqual(payload(ok!), pattern(1500, 0x4242), `${link} v${version}`);
      }
    }
  });

  it('the reassembled IPv4 datagram is a valid packet: full length, no fragment bits, good checksum', () => {
    const spec = udpSpec('raw', 4, 3000, 77, { ip: { version: 4, src: '1.2.3.4', dst: '5.6.7.8', id: 77, dontFragment: false, options: Uint8Array.from([0x94, 4, 0, 0, 0x07, 7, 4, 0, 0, 0, 0]) } });
    const original = buildIp(spec);
    const { ok } = feed(new Decoder(), fragmentIpv4(original, 800, 'reverse'), LINKTYPE.RAW);
    const hdr = ok!.srcAddrOffset - 12;
    const hl = (ok!.buf[hdr] & 15) * 4;
    assert.equal(hl, 32);
    assert.equal(ok!.buf.readUInt16BE(hdr + 2), original.length);
    assert.equal(ok!.buf.readUInt16BE(hdr + 6) & 0x3fff, 0);
    assert.equal(internetChecksum([ok!.buf.subarray(hdr, hdr + hl)]), 0);
    // The whole datagram, byte for byte, but the checksum (recomputed) and options of the first fragment kept.
    assert.deepEqual(ok!.buf.subarray(hdr + 12, hdr + original.length), original.subarray(12));
  });

  it('TCP: only the first fragment carries the TCP header, read after reassembly', () => {
    const spec: FrameSpec = {
      link: 'ethernet', vlan: [9],
      ip: { version: 4, src: '10.9.0.1', dst: '10.9.0.2', id: 5 },
      tcp: { srcPort: 443, dstPort: 51000, seq: 0xdeadbeef, ack: 0x01020304, flags: 'PA', window: 1234, payload: pattern(2500) },
    };
    const { statuses, ok } = feed(new Decoder(), buildFragmentFrames(spec, 600, [2, 4, 1, 3, 0]), LINKTYPE.ETHERNET);
    assertOneDelivery(statuses, 4);
    assert.equal(ok!.srcPort, 443);
    assert.equal(ok!.tcpSeq, 0xdeadbeef);
    assert.equal(ok!.tcpAck, 0x01020304);
    assert.equal(ok!.tcpFlags, 0x18);
    assert.equal(ok!.tcpWindow, 1234);
    assert.deepEqual(payload(ok!), pattern(2500));
  });

  it('ICMP fragments reassemble to OTHER_PROTOCOL with the whole message', () => {
    const spec: FrameSpec = { link: 'raw', ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2' }, other: { protocol: 1, payload: pattern(3000) } };
    const { statuses, ok } = feed(new Decoder(), buildFragmentFrames(spec, 1480), LINKTYPE.RAW);
    assertOneDelivery(statuses, 2, DECODE.OTHER_PROTOCOL);
    assert.equal(ok!.protocol, 1);
    assert.deepEqual(payload(ok!), pattern(3000));
  });

  it('IPv6: unfragmentable hop-by-hop and routing headers, fragmentable destination options, then TCP', () => {
    const spec: FrameSpec = {
      link: 'sll',
      ip: { version: 6, src: '2001:db8:1::1', dst: '2001:db8:2::2', id: 0xabcdef01, extensions: [{ type: 'hopByHop' }, { type: 'routing' }, { type: 'destination', length: 24 }] },
      tcp: { srcPort: 8443, dstPort: 40000, seq: 9, ack: 10, flags: 'A', payload: pattern(3333) },
    };
    const frames = buildFragmentFrames(spec, 1232, 'reverse');
    // The unfragmentable part is repeated in every fragment.
    for (const f of frames) assert.equal(f[16 + 6], 0);
    const { statuses, ok } = feed(new Decoder(), frames, LINKTYPE.LINUX_SLL);
    assertOneDelivery(statuses, frames.length - 1);
    assert.equal(ok!.protocol, 6);
    assert.equal(ok!.srcPort, 8443);
    assert.equal(ok!.tcpSeq, 9);
    assert.equal(formatAddress(ok!.buf, ok!.dstAddrOffset, 6), '2001:db8:2::2');
    assert.deepEqual(payload(ok!), pattern(3333));
  });

  it('two datagrams with the same id but different addresses or protocol, interleaved, both complete', () => {
    const a = buildFragmentFrames(udpSpec('raw', 4, 2000, 9), 600);
    const b = buildFragmentFrames({ ...udpSpec('raw', 4, 2000, 9), ip: { version: 4, src: '10.0.0.3', dst: '10.0.0.2', id: 9 } }, 600);
    const c = buildFragmentFrames({ link: 'raw', ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2', id: 9 }, other: { protocol: 1, payload: pattern(2000, 3) } }, 600);
    const mixed = a.flatMap((f, i) => [f, b[i], c[i]]);
    const d = new Decoder();
    const { statuses } = feed(d, mixed, LINKTYPE.RAW);
    assert.deepEqual(statuses.slice(-3), [DECODE.OK, DECODE.OK, DECODE.OTHER_PROTOCOL]);
    assert.equal(d.stats.datagramsReassembled, 3);
  });
});

describe('fragment reassembly: overlaps (first arrival wins)', () => {
  // A 64-byte UDP payload: fragmentable part = 8 (UDP header) + 64 = 72 bytes.
  const spec = udpSpec('raw', 4, 64, 31);
  const original = buildIp(spec);
  const data = original.subarray(20);
  const pieces: Record<string, FragmentPiece> = {
    head: { offset: 0, length: 24 },
    a: { offset: 24, length: 24, data: Buffer.alloc(24, 0xaa) },
    b: { offset: 32, length: 24, data: Buffer.alloc(24, 0xbb) },
    tail: { offset: 56, length: 16 },
  };
  const run = (order: string[]): { ok: DecodedPacket | null; d: Decoder; statuses: number[] } => {
    const frags = fragmentIpv4(original, order.map((k) => pieces[k]));
    const d = new Decoder();
    const { ok, statuses } = feed(d, frags, LINKTYPE.RAW);
    return { ok, d, statuses };
  };

  it('the earlier fragment keeps the overlapped bytes', () => {
    const r = run(['head', 'a', 'b', 'tail']);
    const expect = Buffer.concat([data.subarray(8, 24), Buffer.alloc(24, 0xaa), Buffer.alloc(8, 0xbb), data.subarray(56)]);
    assert.deepEqual(payload(r.ok!), expect);
    assert.equal(r.d.stats.fragmentOverlaps, 1);
  });

  it('in the other order, the other fragment keeps them; each order gives the same bytes on every replay', () => {
    const r = run(['tail', 'b', 'a', 'head']);
    const expect = Buffer.concat([data.subarray(8, 24), Buffer.alloc(8, 0xaa), Buffer.alloc(24, 0xbb), data.subarray(56)]);
    assert.deepEqual(payload(r.ok!), expect);
    for (let i = 0; i < 3; i++) assert.deepEqual(payload(run(['tail', 'b', 'a', 'head']).ok!), expect);
  });

  it('a fragment covering held data on both sides fills only the hole', () => {
    const frags = fragmentIpv4(original, [
      { offset: 0, length: 16 },
      { offset: 40, length: 8 },
      { offset: 0, length: 64, data: Buffer.alloc(64, 0xcc) },
      { offset: 64, length: 8 },
    ]);
    const d = new Decoder();
    const { ok, statuses } = feed(d, frags, LINKTYPE.RAW);
    assertOneDelivery(statuses, 3);
    const expect = Buffer.concat([data.subarray(8, 16), Buffer.alloc(24, 0xcc), data.subarray(40, 48), Buffer.alloc(16, 0xcc), data.subarray(64)]);
    assert.deepEqual(payload(ok!), expect);
  });

  it('a second, different end is refused (counted), so is data past the end; the datagram still completes', () => {
    const frags = fragmentIpv4(original, [
      { offset: 56, length: 16 }, // the real end: 72
      { offset: 56, length: 8, more: false }, // another end: 64
      { offset: 64, length: 16, data: Buffer.alloc(16, 1), more: true }, // data past 72
      { offset: 0, length: 56 },
    ]);
    const d = new Decoder();
    const { statuses, ok } = feed(d, frags, LINKTYPE.RAW);
    assert.deepEqual(statuses, [DECODE.FRAGMENT_HELD, DECODE.MALFORMED, DECODE.MALFORMED, DECODE.OK]);
    assert.deepEqual(payload(ok!), data.subarray(8));
    assert.equal(d.stats.fragmentsDropped, 2);
  });

  it('an end below data already held is refused', () => {
    const frags = fragmentIpv4(original, [{ offset: 0, length: 72, more: true }, { offset: 8, length: 8, more: false }]);
    const d = new Decoder();
    assert.deepEqual(feed(d, frags, LINKTYPE.RAW).statuses, [DECODE.FRAGMENT_HELD, DECODE.MALFORMED]);
  });

  it('IPv6 overlaps follow the same rule', () => {
    const v6 = buildIp(udpSpec('raw', 6, 64, 31));
    const rest = v6.subarray(40);
    const frags = fragmentIpv6(v6, [
      { offset: 0, length: 24 },
      { offset: 16, length: 16, data: Buffer.alloc(16, 0xee) },
      { offset: 24, length: 48 },
    ], 'forward', 31);
    const { ok } = feed(new Decoder(), frags, LINKTYPE.RAW);
    assert.deepEqual(payload(ok!), Buffer.concat([rest.subarray(8, 24), Buffer.alloc(8, 0xee), rest.subarray(32)]));
  });
});

describe('fragment reassembly: model check', () => {
  it('random overlapping pieces in random order give exactly what a byte-by-byte first-arrival-wins model gives', () => {
    let seed = 2024;
    const r = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    for (let trial = 0; trial < 400; trial++) {
      const version = trial % 2 === 0 ? 4 : 6;
      const L = 16 + r(3000);
      const blocks = Math.ceil(L / 8);
      const piece = (startBlock: number, endBlock: number): FragmentPiece => {
        // [0, L) with no more fragments is not a fragment but a whole datagram (decoded as such): never cut that.
        if (startBlock === 0 && endBlock >= blocks) endBlock = blocks - 1;
        const offset = startBlock * 8;
        const end = Math.min(endBlock * 8, L);
        const data = Buffer.alloc(end - offset);
        for (let i = 0; i < data.length; i++) data[i] = r(256);
        return { offset, length: data.length, data, more: end < L };
      };
      const pieces: FragmentPiece[] = [];
      for (let k = 1 + r(12); k > 0; k--) {
        const start = r(blocks);
        pieces.push(piece(start, start + 1 + r(Math.min(blocks - start, 64))));
      }
      for (let b = 0; b < blocks; ) {
        const pc = piece(b, Math.min(b + 1 + r(50), blocks));
        pieces.push(pc);
        b = Math.ceil((pc.offset + pc.length) / 8);
      }
      const order = shuffled(pieces.length, trial + 1).map((i) => pieces[i]);
      // The model: every byte keeps the first value written; complete when every byte is written.
      const model = Buffer.alloc(L);
      const have = new Uint8Array(L);
      let covered = 0;
      let completeAt = -1;
      for (let i = 0; i < order.length && completeAt < 0; i++) {
        const pc = order[i];
        for (let j = 0; j < pc.length; j++) {
          if (have[pc.offset + j] === 0) {
            have[pc.offset + j] = 1;
            model[pc.offset + j] = pc.data![j];
            covered++;
          }
        }
        if (covered === L) completeAt = i;
      }
      assert.ok(completeAt >= 0, `trial ${trial}: the pieces must cover the datagram`);
      const ip = version === 4 ? { version, src: '10.0.0.1', dst: '10.0.0.2', id: trial } as const : { version, src: 'fd00::1', dst: 'fd00::2', id: trial } as const;
      const datagram = buildIp({ ip, other: { protocol: 253, payload: Buffer.alloc(L) } });
      const frags = version === 4 ? fragmentIpv4(datagram, order.slice(0, completeAt + 1)) : fragmentIpv6(datagram, order.slice(0, completeAt + 1), 'forward', trial);
      const { statuses, ok } = feed(new Decoder(), frags, LINKTYPE.RAW);
      assertOneDelivery(statuses, completeAt, DECODE.OTHER_PROTOCOL);
      assert.equal(ok!.protocol, 253);
      assert.deepEqual(payload(ok!), model, `trial ${trial}`);
    }
  });
});

describe('fragment reassembly: refusals', () => {
  const v4 = buildIp(udpSpec('raw', 4, 1000));
  it('a fragment whose bytes were cut by the snap length is TRUNCATED and dropped', () => {
    const [first] = fragmentIpv4(v4, 512);
    const d = new Decoder();
    const p = newDecodedPacket();
    assert.equal(d.decode(frameOf(first.subarray(0, 100), T0, LINKTYPE.RAW, first.length), p), DECODE.TRUNCATED);
    assert.equal(p.fragmented, true);
    assert.equal(d.stats.fragmentsDropped, 1);
    assert.equal(d.stats.datagramsInFlight, 0);
    const v6 = fragmentIpv6(buildIp(udpSpec('raw', 6, 1000)), 512)[0];
    assert.equal(d.decode(frameOf(v6.subarray(0, 100), T0, LINKTYPE.RAW, v6.length), p), DECODE.TRUNCATED);
    assert.equal(d.stats.fragmentsDropped, 2);
  });

  it('non-final fragments of a length not a multiple of 8, and empty fragments, are MALFORMED', () => {
    const d = new Decoder();
    const bad = [
      ...fragmentIpv4(v4, [{ offset: 0, length: 13, more: true }]),
      ...fragmentIpv4(v4, [{ offset: 8, length: 0, more: true }]),
      ...fragmentIpv6(buildIp(udpSpec('raw', 6, 100)), [{ offset: 0, length: 13, more: true }]),
    ];
    assert.deepEqual(feed(d, bad, LINKTYPE.RAW).statuses, [DECODE.MALFORMED, DECODE.MALFORMED, DECODE.MALFORMED]);
    assert.equal(d.stats.fragmentsDropped, 3);
  });

  it('a datagram past 65535 bytes is refused', () => {
    const d = new Decoder();
    const frags = [
      ...fragmentIpv4(v4, [{ offset: 65528, length: 16, data: Buffer.alloc(16), more: false }]),
      ...fragmentIpv6(buildIp(udpSpec('raw', 6, 100)), [{ offset: 65528, length: 16, data: Buffer.alloc(16), more: false }]),
    ];
    assert.deepEqual(feed(d, frags, LINKTYPE.RAW).statuses, [DECODE.MALFORMED, DECODE.MALFORMED]);
    // Just at the limit it is held.
    const edge = fragmentIpv4(v4, [{ offset: 65512, length: 3, data: Buffer.alloc(3), more: false }]);
    assert.deepEqual(feed(d, edge, LINKTYPE.RAW).statuses, [DECODE.FRAGMENT_HELD]);
  });

  it('offset 0 without MF is a whole datagram, not a fragment: decoded as is, held fragments of its id untouched', () => {
    const d4 = buildIp(udpSpec('raw', 4, 100, 5));
    const d = new Decoder();
    const held = fragmentIpv4(d4, [{ offset: 8, length: 8 }]);
    const whole = fragmentIpv4(d4, [{ offset: 0, length: 108 }]);
    const { statuses, ok } = feed(d, [...held, ...whole], LINKTYPE.RAW);
    assert.deepEqual(statuses, [DECODE.FRAGMENT_HELD, DECODE.OK]);
    assert.equal(ok!.fragmented, false);
    assert.deepEqual(payload(ok!), pattern(100, 5));
    assert.equal(d.stats.datagramsInFlight, 1);
  });

  it('a Fragment header inside a reassembled IPv6 packet is MALFORMED', () => {
    // The fragmentable part itself begins with a (non-atomic) Fragment header.
    const inner = Buffer.concat([Buffer.from([17, 0, 0, 9, 0, 0, 0, 1]), buildIp(udpSpec('raw', 6, 40)).subarray(40)]);
    const pkt = buildIp({ ip: { version: 6, src: 'fd00::1', dst: 'fd00::2' }, other: { protocol: 44, payload: inner } });
    const { statuses } = feed(new Decoder(), fragmentIpv6(pkt, 24), LINKTYPE.RAW);
    assert.equal(statuses.at(-1), DECODE.MALFORMED);
  });
});

describe('fragment reassembly: timeouts and bounds', () => {
  it('a datagram with a missing piece expires on tick at the timeout (capture time), counted', () => {
    const frames = buildFragmentFrames(udpSpec('ethernet', 4, 3000), 1000);
    const d = new Decoder({ fragmentTimeoutMs: 30_000 });
    const { statuses } = feed(d, [frames[0], frames[2], frames[3]], LINKTYPE.ETHERNET, T0);
    assert.deepEqual(statuses, [DECODE.FRAGMENT_HELD, DECODE.FRAGMENT_HELD, DECODE.FRAGMENT_HELD]);
    assert.equal(d.stats.datagramsInFlight, 1);
    assert.ok(d.stats.fragmentBytesInFlight > 0);
    assert.equal(d.tick(T0 + 29_999), 0);
    assert.equal(d.tick(T0 + 30_000), 1);
    assert.equal(d.stats.datagramsExpired, 1);
    assert.equal(d.stats.datagramsInFlight, 0);
    assert.equal(d.stats.fragmentBytesInFlight, 0);
    // The late piece now starts a datagram of its own: nothing is delivered.
    assert.deepEqual(feed(d, [frames[1]], LINKTYPE.ETHERNET, T0 + 30_001).statuses, [DECODE.FRAGMENT_HELD]);
  });

  it('a stale datagram met again by its key is replaced, even without tick (ids wrap)', () => {
    const old = buildFragmentFrames(udpSpec('raw', 4, 2000, 1), 1000);
    const fresh = buildFragmentFrames({ ...udpSpec('raw', 4, 2000, 1), udp: { srcPort: 5353, dstPort: 53, payload: pattern(2000, 99) } }, 1000);
    const d = new Decoder();
    feed(d, [old[0], old[1]], LINKTYPE.RAW, T0);
    const { statuses, ok } = feed(d, fresh, LINKTYPE.RAW, T0 + 31_000);
    assertOneDelivery(statuses, fresh.length - 1);
    assert.deepEqual(payload(ok!), pattern(2000, 99));
    assert.equal(d.stats.datagramsExpired, 1);
  });

  it('ticks with capture time going backwards expire nothing early', () => {
    const d = new Decoder();
    feed(d, buildFragmentFrames(udpSpec('raw', 4, 2000), 1000).slice(0, 1), LINKTYPE.RAW, T0);
    assert.equal(d.tick(T0 - 60_000), 0);
    assert.equal(d.stats.datagramsInFlight, 1);
    assert.equal(d.flush(), 1);
    assert.equal(d.stats.datagramsInFlight, 0);
  });

  it('at most maxDatagramsInFlight: the oldest is evicted (counted) and cannot complete', () => {
    const d = new Decoder({ maxDatagramsInFlight: 4 });
    const sets = Array.from({ length: 10 }, (_, id) => buildFragmentFrames(udpSpec('raw', 4, 1500, id), 1000));
    sets.forEach((s, i) => feed(d, [s[0]], LINKTYPE.RAW, T0 + i));
    assert.equal(d.stats.datagramsInFlight, 4);
    assert.equal(d.stats.datagramsEvicted, 6);
    // An evicted one (id 0): its second half starts over and waits.
    assert.deepEqual(feed(d, [sets[0][1]], LINKTYPE.RAW, T0 + 20).statuses, [DECODE.FRAGMENT_HELD]);
    assert.equal(d.stats.datagramsEvicted, 7); // it pushed out id 6
    // A survivor (id 9) completes.
    const { statuses, ok } = feed(d, [sets[9][1]], LINKTYPE.RAW, T0 + 21);
    assert.deepEqual(statuses, [DECODE.OK]);
    assert.deepEqual(payload(ok!), pattern(1500, 9));
  });

  it('buffers of in-flight datagrams stay within maxFragmentBytes (the oldest is evicted)', () => {
    const maxFragmentBytes = 3 * 65_600;
    const d = new Decoder({ maxFragmentBytes });
    // Last fragments far out: each datagram needs a ~64 KiB buffer.
    for (let id = 0; id < 20; id++) {
      const frag = fragmentIpv4(buildIp(udpSpec('raw', 4, 100, id)), [{ offset: 60_000, length: 8, data: Buffer.alloc(8), more: false }]);
      feed(d, frag, LINKTYPE.RAW, T0 + id);
      assert.ok(d.stats.fragmentBytesInFlight <= maxFragmentBytes, `${d.stats.fragmentBytesInFlight}`);
    }
    assert.ok(d.stats.datagramsEvicted >= 17, `${d.stats.datagramsEvicted}`);
    assert.equal(d.stats.datagramsInFlight + d.stats.datagramsEvicted, 20);
  });

  it('steady traffic reuses slots and buffers: nothing is left in flight after thousands of datagrams', () => {
    const d = new Decoder({ maxDatagramsInFlight: 8 });
    const p = newDecodedPacket();
    let ok = 0;
    for (let id = 0; id < 3000; id++) {
      for (const f of buildFragmentFrames(udpSpec('raw', id % 2 ? 4 : 6, 2000 + (id % 50), id), 1000, id % 3 ? 'forward' : 'reverse')) {
        if (d.decode(frameOf(f, T0 + id, LINKTYPE.RAW), p) === DECODE.OK) {
          ok++;
          assert.deepEqual(payload(p), pattern(2000 + (id % 50), id));
        }
      }
    }
    assert.equal(ok, 3000);
    assert.equal(d.stats.datagramsInFlight, 0);
    assert.equal(d.stats.fragmentBytesInFlight, 0);
    assert.equal(d.stats.datagramsEvicted, 0);
  });

  it('interleaved fragments of many datagrams, in random order, all complete', () => {
    const d = new Decoder({ maxDatagramsInFlight: 64 } satisfies DecoderOptions);
    const all: { f: Buffer; id: number }[] = [];
    for (let id = 0; id < 50; id++) for (const f of buildFragmentFrames(udpSpec('raw', 4, 3000, id + 1000), 504)) all.push({ f, id });
    const order = shuffled(all.length, 99);
    const p = newDecodedPacket();
    const seen = new Set<number>();
    order.forEach((i, k) => {
      if (d.decode(frameOf(all[i].f, T0 + k, LINKTYPE.RAW), p) === DECODE.OK) {
        assert.deepEqual(payload(p), pattern(3000, all[i].id + 1000));
        seen.add(all[i].id);
      }
    });
    assert.equal(seen.size, 50);
  });

  it('wrapLink keeps fragments intact over VLAN-tagged Ethernet', () => {
    const frags = fragmentIpv4(buildIp(udpSpec('raw', 4, 2000)), 1000).map((f) => wrapLink(f, { link: 'ethernet', vlan: [1, 2, 3] }));
    const { statuses } = feed(new Decoder(), frags, LINKTYPE.ETHERNET);
    assertOneDelivery(statuses, frags.length - 1);
  });
});
