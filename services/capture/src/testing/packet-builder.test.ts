import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LINKTYPE } from '../types.ts';
import {
  buildFragmentFrames, buildFrame, buildIp, fragmentIpv4, fragmentIpv6, frameOf, internetChecksum, linkTypeOf,
  parseIp, pcapFile, PacketBuilderError, tcpFlags, wrapLink, type FrameSpec, type LinkKind,
} from './packet-builder.ts';
import { findTshark, tsharkFields } from './tshark.ts';

function pseudo4(ip: Buffer, proto: number, len: number): Buffer {
  const h = Buffer.alloc(12);
  ip.copy(h, 0, 12, 20);
  h[9] = proto;
  h.writeUInt16BE(len, 10);
  return h;
}

function pseudo6(ip: Buffer, proto: number, len: number): Buffer {
  const h = Buffer.alloc(40);
  ip.copy(h, 0, 8, 40);
  h.writeUInt32BE(len, 32);
  h[39] = proto;
  return h;
}

describe('internetChecksum', () => {
  it('RFC 1071 example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2 (checksum 220d)', () => {
    assert.equal(internetChecksum([Buffer.from('0001f203f4f5f6f7', 'hex')]), 0x220d);
  });
  it('the same over parts of odd lengths as over the whole', () => {
    const all = Buffer.from(Array.from({ length: 101 }, (_, i) => (i * 37) & 0xff));
    const whole = internetChecksum([all]);
    for (const cuts of [[1], [3, 50], [7, 8, 9, 100], [0, 0, 1]]) {
      const parts: Buffer[] = [];
      let at = 0;
      for (const c of cuts) {
        parts.push(all.subarray(at, c));
        at = c;
      }
      parts.push(all.subarray(at));
      assert.equal(internetChecksum(parts), whole, String(cuts));
    }
  });
});

describe('buildIp', () => {
  it('IPv4: version/IHL, lengths and a header checksum that verifies; options padded', () => {
    for (const options of [undefined, Uint8Array.from([1]), Uint8Array.from([0x94, 4, 0, 0, 1, 1, 1])]) {
      const d = buildIp({ ip: { version: 4, src: '1.2.3.4', dst: '5.6.7.8', id: 0xbeef, ttl: 9, tos: 0x10, dontFragment: true, options }, udp: { srcPort: 1, dstPort: 2, payload: 'abc' } });
      const hl = (d[0] & 15) * 4;
      assert.equal(d[0] >> 4, 4);
      assert.equal(hl, 20 + ((options?.length ?? 0) + 3 & ~3));
      assert.equal(d.readUInt16BE(2), d.length);
      assert.equal(d.readUInt16BE(4), 0xbeef);
      assert.equal(d.readUInt16BE(6), 0x4000);
      assert.equal(d[8], 9);
      assert.equal(d[1], 0x10);
      assert.equal(d[9], 17);
      assert.deepEqual([...d.subarray(12, 20)], [1, 2, 3, 4, 5, 6, 7, 8]);
      assert.equal(internetChecksum([d.subarray(0, hl)]), 0);
    }
  });

  it('TCP and UDP checksums verify with the pseudo-header (IPv4 and IPv6, odd and even lengths)', () => {
    for (let n = 0; n < 40; n++) {
      const payload = Buffer.from(Array.from({ length: n * 7 }, (_, i) => (i * 13 + n) & 0xff));
      const t4 = buildIp({ ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2' }, tcp: { srcPort: 1000 + n, dstPort: 80, seq: n * 1e6, ack: 5, flags: 'PA', payload, options: n % 2 ? Uint8Array.from([2, 4, 5, 0xb4]) : undefined } });
      assert.equal(internetChecksum([pseudo4(t4, 6, t4.length - 20), t4.subarray(20)]), 0);
      const u4 = buildIp({ ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2' }, udp: { srcPort: 53, dstPort: 1000 + n, payload } });
      assert.equal(internetChecksum([pseudo4(u4, 17, u4.length - 20), u4.subarray(20)]), 0);
      assert.equal(u4.readUInt16BE(24), 8 + payload.length);
      const t6 = buildIp({ ip: { version: 6, src: '2001:db8::1', dst: '2001:db8::2' }, tcp: { srcPort: 1, dstPort: 2, payload } });
      assert.equal(t6.readUInt16BE(4), t6.length - 40);
      assert.equal(internetChecksum([pseudo6(t6, 6, t6.length - 40), t6.subarray(40)]), 0);
      const u6 = buildIp({ ip: { version: 6, src: '::1', dst: 'fe80::1' }, udp: { srcPort: 1, dstPort: 2, payload } });
      assert.equal(internetChecksum([pseudo6(u6, 17, u6.length - 40), u6.subarray(40)]), 0);
      assert.notEqual(u6.readUInt16BE(46), 0); // 0 would mean "no checksum", forbidden over IPv6
    }
  });

  it('IPv6 extension headers chain to the transport, each 8-byte aligned with a correct length field', () => {
    const d = buildIp({
      ip: { version: 6, src: '::1', dst: '::2', extensions: [{ type: 'hopByHop' }, { type: 'routing', length: 40 }, { type: 'ah' }, { type: 'destination', length: 16 }] },
      tcp: { srcPort: 1, dstPort: 2 },
    });
    assert.equal(d[6], 0);
    let off = 40;
    const seen: number[] = [];
    let nh = d[6];
    for (let i = 0; i < 4; i++) {
      seen.push(nh);
      const len = nh === 51 ? (d[off + 1] + 2) * 4 : (d[off + 1] + 1) * 8;
      nh = d[off];
      off += len;
    }
    assert.deepEqual(seen, [0, 43, 51, 60]);
    assert.equal(nh, 6);
    assert.equal(d.length - off, 20);
    assert.equal(d.readUInt16BE(4), d.length - 40);
  });

  it('TCP fields are where RFC 9293 puts them', () => {
    const d = buildIp({ ip: { version: 4, src: '1.1.1.1', dst: '2.2.2.2' }, tcp: { srcPort: 0xabcd, dstPort: 80, seq: 0xfffffffe, ack: 0x12345678, flags: 'FSRPAUEC', window: 777, urgent: 3 } });
    const t = d.subarray(20);
    assert.equal(t.readUInt16BE(0), 0xabcd);
    assert.equal(t.readUInt32BE(4), 0xfffffffe);
    assert.equal(t.readUInt32BE(8), 0x12345678);
    assert.equal(t[12] >> 4, 5);
    assert.equal(t[13], 0xff);
    assert.equal(t.readUInt16BE(14), 777);
    assert.equal(t.readUInt16BE(18), 3);
  });

  it('rejects impossible specs with PacketBuilderError', () => {
    const ip = { version: 4 as const, src: '1.1.1.1', dst: '2.2.2.2' };
    const bad: (() => unknown)[] = [
      () => buildIp({ ip }),
      () => buildIp({ ip, tcp: { srcPort: 1, dstPort: 2 }, udp: { srcPort: 1, dstPort: 2 } }),
      () => buildIp({ ip: { ...ip, src: '1.1.1' }, udp: { srcPort: 1, dstPort: 2 } }),
      () => buildIp({ ip: { ...ip, extensions: [{ type: 'hopByHop' }] }, udp: { srcPort: 1, dstPort: 2 } }),
      () => buildIp({ ip, udp: { srcPort: 70000, dstPort: 2 } }),
      () => buildIp({ ip, tcp: { srcPort: 1, dstPort: 2, flags: 'SX' } }),
      () => buildIp({ ip: { ...ip, options: new Uint8Array(41) }, udp: { srcPort: 1, dstPort: 2 } }),
      () => buildIp({ ip: { version: 6, src: '::1', dst: '::2', extensions: [{ type: 'destination', length: 12 }] }, udp: { srcPort: 1, dstPort: 2 } }),
      () => buildFrame({ link: 'raw', vlan: [1], ip, udp: { srcPort: 1, dstPort: 2 } }),
      () => buildFrame({ link: 'ethernet', vlan: [4096], ip, udp: { srcPort: 1, dstPort: 2 } }),
      () => fragmentIpv4(buildIp({ ip, udp: { srcPort: 1, dstPort: 2, payload: 'x'.repeat(100) } }), 7),
      () => fragmentIpv4(buildIp({ ip, udp: { srcPort: 1, dstPort: 2, payload: 'x'.repeat(100) } }), 16, [99]),
      () => fragmentIpv4(buildIp({ ip, udp: { srcPort: 1, dstPort: 2 } }), [{ offset: 4, length: 8 }]),
      () => fragmentIpv6(buildIp({ ip, udp: { srcPort: 1, dstPort: 2 } }), 8),
    ];
    bad.forEach((f, i) => assert.throws(f, PacketBuilderError, `case ${i}`));
  });
});

describe('parseIp and tcpFlags', () => {
  it('parses IPv4 and every IPv6 text form', () => {
    assert.deepEqual([...parseIp('255.0.10.1', 4)], [255, 0, 10, 1]);
    const hex = (t: string): string => parseIp(t, 6).toString('hex');
    assert.equal(hex('::'), '0'.repeat(32));
    assert.equal(hex('::1'), '0'.repeat(31) + '1');
    assert.equal(hex('1::'), '0001' + '0'.repeat(28));
    assert.equal(hex('2001:DB8::ff00:42:8329'), '20010db8000000000000ff0000428329');
    assert.equal(hex('::ffff:192.0.2.1'), '00000000000000000000ffffc0000201');
    assert.equal(hex('64:ff9b::10.0.0.1'), '0064ff9b0000000000000000' + '0a000001');
    assert.equal(hex('1:2:3:4:5:6:7:8'), '00010002000300040005000600070008');
    for (const bad of ['1:2:3:4:5:6:7', '1::2::3', '12345::', '1:2:3:4:5:6:7:8:9', '::g', '1:2:3:4:5:6:7::8', ':::', '1.2.3.4']) {
      assert.throws(() => parseIp(bad, 6), PacketBuilderError, bad);
    }
    for (const bad of ['256.0.0.1', '1.2.3', '1.2.3.4.5', 'a.b.c.d', '']) assert.throws(() => parseIp(bad, 4), PacketBuilderError, bad);
  });

  it('maps flag letters to bits', () => {
    assert.equal(tcpFlags('S'), 0x02);
    assert.equal(tcpFlags('SA'), 0x12);
    assert.equal(tcpFlags('PA'), 0x18);
    assert.equal(tcpFlags('FA'), 0x11);
    assert.equal(tcpFlags('R'), 0x04);
    assert.equal(tcpFlags('.'), 0x10);
    assert.equal(tcpFlags('ec'), 0xc0);
    assert.equal(tcpFlags(0x1ff), 0xff);
  });
});

describe('wrapLink', () => {
  const ip4 = buildIp({ ip: { version: 4, src: '1.1.1.1', dst: '2.2.2.2' }, udp: { srcPort: 1, dstPort: 2 } });
  const ip6 = buildIp({ ip: { version: 6, src: '::1', dst: '::2' }, udp: { srcPort: 1, dstPort: 2 } });

  it('Ethernet: MACs, EtherType, VLAN tags (QinQ outer 0x88a8, inner 0x8100), padding', () => {
    const f = wrapLink(ip4, { link: 'ethernet', vlan: [100, 200], srcMac: 'aa:bb:cc:dd:ee:ff' });
    assert.equal(f.subarray(6, 12).toString('hex'), 'aabbccddeeff');
    assert.equal(f.subarray(12, 22).toString('hex'), '88a8' + '0064' + '8100' + '00c8' + '0800');
    assert.deepEqual(f.subarray(22), ip4);
    const one = wrapLink(ip6, { link: 'ethernet', vlan: [5], vlanTpids: [0x9100] });
    assert.equal(one.subarray(12, 18).toString('hex'), '9100000586dd');
    assert.equal(wrapLink(ip4, { link: 'ethernet', pad: true }).length, 60);
  });

  it('SLL (protocol at 14, 16-byte header) and SLL2 (protocol at 0, 20-byte header)', () => {
    const s1 = wrapLink(ip6, { link: 'sll', sllPacketType: 4 });
    assert.equal(s1.readUInt16BE(0), 4);
    assert.equal(s1.readUInt16BE(2), 1);
    assert.equal(s1.readUInt16BE(14), 0x86dd);
    assert.deepEqual(s1.subarray(16), ip6);
    const s2 = wrapLink(ip4, { link: 'sll2' });
    assert.equal(s2.readUInt16BE(0), 0x0800);
    assert.equal(s2.readUInt16BE(8), 1);
    assert.equal(s2[11], 6);
    assert.deepEqual(s2.subarray(20), ip4);
  });

  it('NULL in either byte order, LOOP in network order, raw as is', () => {
    assert.equal(wrapLink(ip4, { link: 'null' }).readUInt32LE(0), 2);
    assert.equal(wrapLink(ip6, { link: 'null' }).readUInt32LE(0), 30);
    assert.equal(wrapLink(ip6, { link: 'null', nullByteOrder: 'be', family: 28 }).readUInt32BE(0), 28);
    assert.equal(wrapLink(ip6, { link: 'loop' }).readUInt32BE(0), 24);
    assert.deepEqual(wrapLink(ip6, { link: 'raw' }), ip6);
  });

  it('linkTypeOf and frameOf', () => {
    const kinds: [LinkKind, number][] = [['ethernet', 1], ['sll', 113], ['sll2', 276], ['null', 0], ['loop', 108], ['raw', 101]];
    for (const [k, lt] of kinds) assert.equal(linkTypeOf(k), lt);
    const f = frameOf(ip4, 12.5, LINKTYPE.RAW, 1500);
    assert.deepEqual({ ...f, data: null }, { tsMs: 12.5, captureLength: ip4.length, length: 1500, linkType: 101, interfaceId: 0, data: null });
  });
});

describe('fragmentIpv4 / fragmentIpv6', () => {
  it('IPv4: pieces cover the payload, MF on all but the last, valid header checksums, copied options only after the first', () => {
    // Router alert (copy bit set) and a timestamp option (copy bit clear).
    const options = Uint8Array.from([0x94, 4, 0, 0, 0x44, 8, 5, 0, 0, 0, 0, 0]);
    const d = buildIp({ ip: { version: 4, src: '1.1.1.1', dst: '2.2.2.2', id: 77, options }, udp: { srcPort: 1, dstPort: 2, payload: Buffer.alloc(1000, 3) } });
    const frags = fragmentIpv4(d, 300);
    assert.equal(frags.length, 4);
    const rebuilt = Buffer.alloc(d.length - 32);
    frags.forEach((f, i) => {
      const hl = (f[0] & 15) * 4;
      assert.equal(hl, i === 0 ? 32 : 24);
      if (i > 0) assert.deepEqual([...f.subarray(20, 24)], [0x94, 4, 0, 0]);
      assert.equal(internetChecksum([f.subarray(0, hl)]), 0);
      assert.equal(f.readUInt16BE(2), f.length);
      assert.equal(f.readUInt16BE(4), 77);
      const fo = f.readUInt16BE(6);
      assert.equal((fo & 0x2000) !== 0, i < 3);
      assert.equal((fo & 0x1fff) * 8, i * 296);
      f.copy(rebuilt, (fo & 0x1fff) * 8, hl);
    });
    assert.deepEqual(rebuilt, d.subarray(32));
    assert.deepEqual(fragmentIpv4(d, 300, 'reverse'), [...frags].reverse());
    assert.deepEqual(fragmentIpv4(d, 300, [1, 1, 0]), [frags[1], frags[1], frags[0]]);
  });

  it('IPv6: unfragmentable part repeated, Fragment header with id, offset and M, payload lengths right', () => {
    const d = buildIp({ ip: { version: 6, src: '::1', dst: '::2', extensions: [{ type: 'hopByHop' }, { type: 'routing' }, { type: 'destination' }] }, udp: { srcPort: 1, dstPort: 2, payload: Buffer.alloc(500, 4) } });
    const unfrag = 40 + 8 + 24;
    const frags = fragmentIpv6(d, 200, 'forward', 0xcafebabe);
    const rest = d.subarray(unfrag);
    const rebuilt = Buffer.alloc(rest.length);
    frags.forEach((f, i) => {
      assert.equal(f.readUInt16BE(4), f.length - 40);
      assert.equal(f[6], 0); // hop-by-hop still first
      assert.equal(f[40], 43); // then routing
      assert.equal(f[48], 44); // whose next header is now the Fragment header
      const fh = unfrag;
      assert.equal(f[fh], 60); // the fragmentable part starts with the destination options
      assert.equal(f.readUInt32BE(fh + 4), 0xcafebabe);
      const fo = f.readUInt16BE(fh + 2);
      assert.equal((fo & 1) === 1, i < frags.length - 1);
      f.copy(rebuilt, fo & 0xfff8, fh + 8);
    });
    assert.deepEqual(rebuilt, rest);
  });
});

describe('pcapFile', () => {
  it('writes a classic little-endian pcap with one record per frame', () => {
    const a = Buffer.from([1, 2, 3]);
    const f = pcapFile(LINKTYPE.RAW, [{ data: a, tsMs: 1500.25 }, { data: a, tsMs: 2000, length: 9 }]);
    assert.equal(f.readUInt32LE(0), 0xa1b2c3d4);
    assert.equal(f.readUInt32LE(20), 101);
    assert.equal(f.readUInt32LE(24), 1);
    assert.equal(f.readUInt32LE(28), 500250);
    assert.equal(f.readUInt32LE(32), 3);
    assert.equal(f.length, 24 + 2 * (16 + 3));
    assert.equal(f.readUInt32LE(24 + 19 + 12), 9);
  });
});

describe('builder frames checked by tshark', { skip: findTshark() === null ? 'tshark not installed' : false }, () => {
  const links: [LinkKind, number, Partial<FrameSpec>][] = [
    ['ethernet', LINKTYPE.ETHERNET, {}],
    ['ethernet', LINKTYPE.ETHERNET, { vlan: [10, 20, 30] }],
    ['sll', LINKTYPE.LINUX_SLL, {}],
    ['sll2', LINKTYPE.LINUX_SLL2, {}],
    ['null', LINKTYPE.NULL, {}],
    ['loop', LINKTYPE.LOOP, {}],
    ['raw', LINKTYPE.RAW, {}],
  ];
  for (const [link, lt, extra] of links) {
    it(`${link}${extra.vlan ? ' + VLAN' : ''}: every checksum good, fields where tshark finds them`, () => {
      const specs: FrameSpec[] = [
        { link, ...extra, ip: { version: 4, src: '10.1.1.1', dst: '10.2.2.2', options: Uint8Array.from([0x94, 4, 0, 0]) }, tcp: { srcPort: 41000, dstPort: 9999, seq: 4_000_000_000, ack: 17, flags: 'PA', window: 321, payload: 'hello' } },
        { link, ...extra, ip: { version: 4, src: '10.1.1.1', dst: '10.2.2.2' }, udp: { srcPort: 41001, dstPort: 9998, payload: 'odd' } },
        { link, ...extra, ip: { version: 6, src: '2001:db8::1', dst: '::ffff:10.0.0.9', extensions: [{ type: 'hopByHop' }, { type: 'routing' }, { type: 'destination', length: 16 }] }, tcp: { srcPort: 41002, dstPort: 9997, seq: 1, ack: 2, flags: 'SA' } },
        { link, ...extra, ip: { version: 6, src: 'fe80::1', dst: 'fe80::2' }, udp: { srcPort: 41003, dstPort: 9996, payload: Buffer.alloc(77, 1) } },
      ];
      const frames = specs.map((s, i) => ({ data: buildFrame(s), tsMs: 1000 + i }));
      // Then a reversed IPv4 and an in-order IPv6 fragment train: tshark reassembles them on their last frame.
      const f4 = buildFragmentFrames({ link, ...extra, ip: { version: 4, src: '10.1.1.1', dst: '10.2.2.2', id: 99 }, udp: { srcPort: 41004, dstPort: 9995, payload: Buffer.alloc(2000, 2) } }, 600, 'reverse');
      const f6 = buildFragmentFrames({ link, ...extra, ip: { version: 6, src: '2001:db8::1', dst: '2001:db8::2', id: 98, extensions: [{ type: 'hopByHop' }] }, tcp: { srcPort: 41005, dstPort: 9994, payload: Buffer.alloc(2000, 3) } }, 600);
      for (const f of [...f4, ...f6]) frames.push({ data: f, tsMs: 2000 + frames.length });
      const rows = tsharkFields(lt, frames, ['ip.checksum.status', 'tcp.checksum.status', 'udp.checksum.status', 'tcp.srcport', 'udp.srcport', 'tcp.seq_raw', 'tcp.window_size_value', 'tcp.len', 'udp.length', 'ipv6.dst', '_ws.malformed'], {
        'ip.check_checksum': 'TRUE', 'tcp.check_checksum': 'TRUE', 'udp.check_checksum': 'TRUE', 'tcp.analyze_sequence_numbers': 'FALSE',
      });
      assert.equal(rows.length, frames.length);
      const [r0, r1, r2, r3] = rows;
      assert.deepEqual(r0.slice(0, 9), ['1', '1', '', '41000', '', '4000000000', '321', '5', '']);
      assert.deepEqual(r1.slice(0, 5), ['1', '', '1', '', '41001']);
      assert.equal(r1[8], '11');
      assert.deepEqual([r2[1], r2[3], r2[7], r2[9]], ['1', '41002', '0', '::ffff:10.0.0.9']);
      assert.deepEqual([r3[2], r3[4], r3[8]], ['1', '41003', '85']);
      const last4 = rows[4 + f4.length - 1];
      assert.deepEqual([last4[2], last4[4], last4[8]], ['1', '41004', '2008']);
      const last6 = rows.at(-1)!;
      assert.deepEqual([last6[1], last6[3], last6[7]], ['1', '41005', '2000']);
      for (const r of rows) assert.equal(r[10] ?? '', '', `malformed per tshark: ${r.join('|')}`);
    });
  }
});
