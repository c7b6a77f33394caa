/**
 * Fuzz: random and mutated frames never make the decoder throw, and every
 * offset it returns stays inside the buffer. Seeded, so a failure replays.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DECODE, LINKTYPE, newDecodedPacket, type DecodedPacket, type Frame } from '../types.ts';
import { buildFragmentFrames, buildFrame, linkTypeOf, type FrameSpec, type LinkKind } from '../testing/packet-builder.ts';
import { hashFlow } from './addr.ts';
import { Decoder } from './decoder.ts';

/** xorshift32: fast, seeded, good enough to spray bytes. */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/** The invariants every decode result keeps, whatever the input. */
function check(status: number, p: DecodedPacket, f: Frame): void {
  if (!(status >= 0 && status <= 6 && Number.isInteger(status))) assert.fail(`bad status ${status}`);
  const n = p.buf.length;
  const inBounds = (off: number, len: number): boolean => Number.isInteger(off) && Number.isInteger(len) && off >= 0 && len >= 0 && off + len <= n;
  if (!inBounds(p.payloadOffset, p.payloadLength)) assert.fail(`payload ${p.payloadOffset}+${p.payloadLength} outside ${n} (status ${status})`);
  const al = p.ipVersion === 6 ? 16 : 4;
  if (p.ipVersion !== 0 && (!inBounds(p.srcAddrOffset, al) || !inBounds(p.dstAddrOffset, al))) assert.fail(`address offsets outside ${n}`);
  if (p.buf === f.data && p.payloadOffset + p.payloadLength > f.captureLength) assert.fail('payload past captureLength');
  if (status === DECODE.OK) {
    if (p.ipVersion !== 4 && p.ipVersion !== 6) assert.fail(`OK with ipVersion ${p.ipVersion}`);
    if (p.protocol !== 6 && p.protocol !== 17) assert.fail(`OK with protocol ${p.protocol}`);
    if (!(p.srcPort >= 0 && p.srcPort <= 0xffff && p.dstPort >= 0 && p.dstPort <= 0xffff)) assert.fail('port out of range');
    if (!(p.tcpSeq >= 0 && p.tcpSeq <= 0xffffffff && p.tcpAck >= 0 && p.tcpAck <= 0xffffffff)) assert.fail('seq/ack out of range');
    if (p.truncated !== f.captureLength < f.length) assert.fail('truncated flag');
    const h = hashFlow(p);
    if (!(h >= 0 && h < 2 ** 30 && Number.isInteger(h))) assert.fail('hashFlow range');
  }
}

const LINK_TYPES = [
  LINKTYPE.NULL, LINKTYPE.ETHERNET, LINKTYPE.RAW, LINKTYPE.RAW_12, LINKTYPE.RAW_14,
  LINKTYPE.LOOP, LINKTYPE.LINUX_SLL, LINKTYPE.LINUX_SLL2, LINKTYPE.IPV4, LINKTYPE.IPV6,
];

/** A plausible start for the link type, so random bytes get past the first checks often. */
function seedHeader(b: Buffer, lt: number, r: () => number): void {
  const v6 = (r() & 1) === 1;
  const ipAt = { [LINKTYPE.ETHERNET]: 14, [LINKTYPE.LINUX_SLL]: 16, [LINKTYPE.LINUX_SLL2]: 20, [LINKTYPE.NULL]: 4, [LINKTYPE.LOOP]: 4 }[lt] ?? 0;
  const etype = v6 ? 0x86dd : (r() & 7) === 0 ? 0x8100 : 0x0800;
  if (lt === LINKTYPE.ETHERNET && b.length >= 14) b.writeUInt16BE(etype, 12);
  if (lt === LINKTYPE.LINUX_SLL && b.length >= 16) b.writeUInt16BE(etype, 14);
  if (lt === LINKTYPE.LINUX_SLL2 && b.length >= 20) b.writeUInt16BE(etype, 0);
  if ((lt === LINKTYPE.NULL || lt === LINKTYPE.LOOP) && b.length >= 4) b.writeUInt32BE(v6 ? [24, 28, 30][r() % 3] : 2, 0);
  if (b.length > ipAt) {
    b[ipAt] = v6 ? 0x60 : 0x40 | (5 + (r() % 11));
    if (!v6 && b.length > ipAt + 9) b[ipAt + 9] = [6, 17, 1, 6, 17][r() % 5];
    if (!v6 && b.length > ipAt + 7 && (r() & 3) !== 0) b[ipAt + 6] = b[ipAt + 7] = 0; // mostly not a fragment
    if (v6 && b.length > ipAt + 6) b[ipAt + 6] = [6, 17, 0, 43, 60, 44, 51, 50, 59][r() % 9];
    const len = b.length - ipAt - (v6 ? 40 : 0) + (r() % 5) - 2; // near the real length, sometimes off
    if (b.length > ipAt + 5) b.writeUInt16BE(Math.max(0, len) & 0xffff, ipAt + (v6 ? 4 : 2));
  }
}

describe('fuzz', () => {
  for (const lt of LINK_TYPES) {
    it(`200k random frames on LINKTYPE ${lt}: no throw, offsets in bounds`, () => {
      const r = prng(0x5eed + lt);
      const d = new Decoder({ maxDatagramsInFlight: 64 });
      const p = newDecodedPacket();
      const pool = Buffer.alloc(2048);
      const counts = new Array<number>(7).fill(0);
      const N = 200_000;
      for (let i = 0; i < N; i++) {
        // Mostly short frames (where header checks live), some long ones.
        const len = (r() & 7) === 0 ? r() % 1600 : r() % 140;
        for (let j = 0; j < len; j += 4) pool.writeUInt32LE(r(), j);
        const data = pool.subarray(0, len);
        if ((r() & 3) !== 0) seedHeader(data, lt, r);
        const snapped = (r() & 7) === 0;
        const f: Frame = { tsMs: i, captureLength: len, length: snapped ? len + (r() % 3000) : len, linkType: lt, interfaceId: 0, data };
        const status = d.decode(f, p);
        check(status, p, f);
        counts[status]++;
        if ((i & 4095) === 0) d.tick(i + 25_000 + (r() % 10_000)); // sometimes past the 30 s timeout
      }
      const s = d.stats;
      assert.equal(s.frames, N);
      assert.equal(s.ok + s.notIp + s.otherProtocol + s.fragmentHeld + s.truncated + s.malformed + s.unsupportedLink, N);
      assert.deepEqual([s.ok, s.notIp, s.otherProtocol, s.fragmentHeld, s.truncated, s.malformed, s.unsupportedLink], counts);
      assert.ok(s.datagramsInFlight <= 64);
      assert.equal(s.unsupportedLink, 0);
      // The seeding must reach the transport parser, or this fuzzes nothing past the link layer.
      assert.ok(s.ok > N / 100, `only ${s.ok} OK of ${N}`);
      assert.ok(s.malformed > 0 && s.truncated > 0 && s.fragmentHeld > 0 && s.datagramsExpired > 0);
    });
  }

  it('mutated valid frames (bit flips, byte sets, cuts) of every kind, including fragments', () => {
    const links: LinkKind[] = ['ethernet', 'sll', 'sll2', 'null', 'loop', 'raw'];
    const corpus: { data: Buffer; lt: number }[] = [];
    for (const link of links) {
      const specs: FrameSpec[] = [
        { link, vlan: link === 'ethernet' ? [1, 2] : undefined, ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2', options: Buffer.alloc(8, 1) }, tcp: { srcPort: 1, dstPort: 2, payload: 'abcdef', options: Uint8Array.from([2, 4, 5, 0xb4]) } },
        { link, ip: { version: 6, src: '::1', dst: '::2', extensions: [{ type: 'hopByHop' }, { type: 'routing' }, { type: 'ah' }, { type: 'destination' }] }, udp: { srcPort: 3, dstPort: 4, payload: 'xyz' } },
        { link, ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2' }, udp: { srcPort: 3, dstPort: 4, payload: 'q' } },
      ];
      for (const spec of specs) corpus.push({ data: buildFrame(spec), lt: linkTypeOf(link) });
      for (const version of [4, 6] as const) {
        const spec: FrameSpec = { link, ip: { version, src: version === 4 ? '10.0.0.1' : 'fd00::1', dst: version === 4 ? '10.0.0.2' : 'fd00::2' }, udp: { srcPort: 5, dstPort: 6, payload: Buffer.alloc(300, 9) } };
        for (const f of buildFragmentFrames(spec, 104, 'reverse')) corpus.push({ data: f, lt: linkTypeOf(link) });
      }
    }
    const r = prng(77);
    const d = new Decoder({ maxDatagramsInFlight: 16, fragmentTimeoutMs: 5_000 });
    const p = newDecodedPacket();
    const N = 300_000;
    for (let i = 0; i < N; i++) {
      const base = corpus[r() % corpus.length];
      const data = Buffer.from(base.data);
      const edits = 1 + (r() % 4);
      for (let e = 0; e < edits; e++) {
        const at = r() % data.length;
        if (r() & 1) data[at] ^= 1 << (r() & 7);
        else data[at] = r() & 0xff;
      }
      const cut = (r() & 3) === 0 ? r() % (data.length + 1) : data.length;
      const f: Frame = { tsMs: i, captureLength: cut, length: (r() & 1) === 0 ? data.length : cut, linkType: base.lt, interfaceId: 0, data: data.subarray(0, cut) };
      check(d.decode(f, p), p, f);
      if ((i & 1023) === 0) d.tick(i);
    }
    const s = d.stats;
    assert.equal(s.frames, N);
    assert.ok(s.datagramsInFlight <= 16);
    assert.ok(s.fragmentHeld > 0 && s.datagramsReassembled > 0 && s.fragmentsDropped > 0, JSON.stringify(s));
    assert.ok(s.ok > 0 && s.malformed > 0 && s.truncated > 0);
  });
});
