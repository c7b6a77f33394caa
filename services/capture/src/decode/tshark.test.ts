/**
 * The decoder against Wireshark: random frames of every link type (VLANs, IPv4
 * options, IPv6 extension headers, fragment trains in random order) go through
 * both; addresses, ports, TCP fields and payload lengths must agree frame by
 * frame, and so must which frame completes a fragmented datagram.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DECODE, LINKTYPE, newDecodedPacket } from '../types.ts';
import { buildFragmentFrames, buildFrame, type FrameSpec, type Ipv6Extension, type LinkKind } from '../testing/packet-builder.ts';
import { findTshark, tsharkFields } from '../testing/tshark.ts';
import { formatAddress } from './addr.ts';
import { Decoder } from './decoder.ts';

function prng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}

const FIELDS = [
  'ip.src', 'ip.dst', 'ipv6.src', 'ipv6.dst', 'tcp.srcport', 'tcp.dstport', 'tcp.seq_raw', 'tcp.ack_raw', 'tcp.flags',
  'tcp.window_size_value', 'tcp.len', 'udp.srcport', 'udp.dstport', 'udp.length',
] as const;

function randomFrames(link: LinkKind, lt: number, seed: number): Buffer[] {
  const r = prng(seed);
  const out: Buffer[] = [];
  const v4 = (): string => `${10 + r(200)}.${r(256)}.${r(256)}.${1 + r(254)}`;
  const v6 = (): string => {
    const g = Array.from({ length: 8 }, () => (r(3) === 0 ? 0 : r(0x10000)).toString(16));
    return r(8) === 0 ? `::ffff:${v4()}` : g.join(':');
  };
  for (let i = 0; i < 60; i++) {
    const version: 4 | 6 = lt === LINKTYPE.IPV4 ? 4 : lt === LINKTYPE.IPV6 ? 6 : r(2) === 0 ? 4 : 6;
    const extensions: Ipv6Extension[] = [];
    if (version === 6) {
      if (r(2)) extensions.push({ type: 'hopByHop', length: 8 * (1 + r(3)) });
      if (r(3) === 0) extensions.push({ type: 'routing', length: 24 + 16 * r(2) });
      if (r(3) === 0) extensions.push({ type: 'destination', length: 8 * (1 + r(4)) });
    }
    const spec: FrameSpec = {
      link,
      vlan: (link === 'ethernet' || link === 'sll') && r(3) === 0 ? Array.from({ length: 1 + r(3) }, () => r(4095)) : undefined,
      ip: {
        version, src: version === 4 ? v4() : v6(), dst: version === 4 ? v4() : v6(), id: r(0x10000), ttl: 1 + r(255),
        options: version === 4 && r(3) === 0 ? Buffer.alloc(4 * (1 + r(10)), 1) : undefined,
        extensions,
      },
    };
    // Ports above 32768 and below the registered ones tshark likes to dissect further: fields stay the same either way.
    const ports = { srcPort: 32768 + r(20000), dstPort: 32768 + r(20000) };
    const size = r(4) === 0 ? 1500 + r(4000) : r(1400);
    const payload = Buffer.alloc(size, 0x20 + r(90));
    if (r(2)) {
      const flags = ['S', 'SA', 'A', 'PA', 'FA', 'R', 'RA', 'PAU', 'SEC'][r(9)];
      spec.tcp = { ...ports, seq: r(0x10000) * 0x10000 + r(0x10000), ack: r(0x10000) * 0x10000 + r(0x10000), flags, window: r(0x10000), payload, options: r(2) ? Uint8Array.from([1, 1, 1, 1, 2, 4, 5, 0xb4]) : undefined };
    } else {
      spec.udp = { ...ports, payload };
    }
    const mtu = 576 + r(900);
    if (size > mtu) {
      const frags = buildFragmentFrames(spec, mtu - 60 - 40, r(2) ? 'forward' : 'reverse');
      out.push(...frags);
    } else {
      out.push(buildFrame(spec));
    }
  }
  return out;
}

const LINKS: [string, LinkKind, number][] = [
  ['ethernet', 'ethernet', LINKTYPE.ETHERNET],
  ['sll', 'sll', LINKTYPE.LINUX_SLL],
  ['sll2', 'sll2', LINKTYPE.LINUX_SLL2],
  ['null', 'null', LINKTYPE.NULL],
  ['loop', 'loop', LINKTYPE.LOOP],
  ['raw 101', 'raw', LINKTYPE.RAW],
  ['raw 12', 'raw', LINKTYPE.RAW_12],
  ['raw 14', 'raw', LINKTYPE.RAW_14],
  ['ipv4 228', 'raw', LINKTYPE.IPV4],
  ['ipv6 229', 'raw', LINKTYPE.IPV6],
];

describe('decoder agrees with tshark', { skip: findTshark() === null ? 'tshark not installed' : false }, () => {
  for (const [name, link, lt] of LINKS) {
    it(`${name}: random frames and fragment trains`, () => {
      const data = randomFrames(link, lt, 1000 + lt);
      const frames = data.map((d, i) => ({ data: d, tsMs: 1_700_000_000_000 + i }));
      const rows = tsharkFields(lt, frames, FIELDS, { 'tcp.analyze_sequence_numbers': 'FALSE', 'tcp.desegment_tcp_streams': 'FALSE' });
      assert.equal(rows.length, frames.length);
      const d = new Decoder();
      const p = newDecodedPacket();
      let delivered = 0;
      let fragmented = 0;
      frames.forEach((f, i) => {
        const row = Object.fromEntries(FIELDS.map((k, j) => [k, rows[i][j] ?? '']));
        const status = d.decode({ tsMs: f.tsMs, captureLength: f.data.length, length: f.data.length, linkType: lt, interfaceId: 0, data: f.data }, p);
        const where = `frame ${i + 1}: ${JSON.stringify(row)}`;
        const tsharkTransport = row['tcp.srcport'] !== '' || row['udp.srcport'] !== '';
        assert.equal(status === DECODE.OK, tsharkTransport, `${where} status ${status}`);
        if (status !== DECODE.OK) {
          assert.equal(status, DECODE.FRAGMENT_HELD, where);
          return;
        }
        delivered++;
        if (p.fragmented) fragmented++;
        const v = p.ipVersion as 4 | 6;
        assert.equal(formatAddress(p.buf, p.srcAddrOffset, v), row[v === 4 ? 'ip.src' : 'ipv6.src'], where);
        assert.equal(formatAddress(p.buf, p.dstAddrOffset, v), row[v === 4 ? 'ip.dst' : 'ipv6.dst'], where);
        if (p.protocol === 6) {
          assert.equal(String(p.srcPort), row['tcp.srcport'], where);
          assert.equal(String(p.dstPort), row['tcp.dstport'], where);
          assert.equal(String(p.tcpSeq), row['tcp.seq_raw'], where);
          if (row['tcp.ack_raw'] !== '') assert.equal(String(p.tcpAck), row['tcp.ack_raw'], where);
          assert.equal(p.tcpFlags, parseInt(row['tcp.flags'], 16) & 0xff, where);
          assert.equal(String(p.tcpWindow), row['tcp.window_size_value'], where);
          assert.equal(String(p.payloadLength), row['tcp.len'], where);
        } else {
          assert.equal(p.protocol, 17);
          assert.equal(String(p.srcPort), row['udp.srcport'], where);
          assert.equal(String(p.dstPort), row['udp.dstport'], where);
          assert.equal(String(p.payloadLength + 8), row['udp.length'], where);
        }
      });
      assert.equal(delivered, 60);
      assert.ok(fragmented > 0, 'the corpus has fragment trains');
      assert.equal(d.stats.datagramsInFlight, 0);
    });
  }
});
