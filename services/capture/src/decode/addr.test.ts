import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import v8 from 'node:v8';
import { DECODE, LINKTYPE, newDecodedPacket, type DecodedPacket } from '../types.ts';
import { buildFrame, frameOf, parseIp, type FrameSpec } from '../testing/packet-builder.ts';
import { AddressRangeError, formatAddress, hashFlow } from './addr.ts';
import { Decoder } from './decoder.ts';

const v6 = (text: string): string => formatAddress(parseIp(text, 6), 0, 6);

describe('formatAddress', () => {
  it('IPv4 dotted quad, at any offset', () => {
    assert.equal(formatAddress(Buffer.from([0, 192, 168, 0, 255, 9]), 1, 4), '192.168.0.255');
    assert.equal(formatAddress(Buffer.from([0, 0, 0, 0]), 0, 4), '0.0.0.0');
  });

  // RFC 5952 section 4 (and its examples), one case per rule.
  const cases: [string, string, string][] = [
    ['4.1 leading zeros suppressed', '2001:0db8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
    ['4.1 zero group is 0', '2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['4.2.1 :: shortens as much as possible', '2001:db8:0:0:0:0:2:1', '2001:db8::2:1'],
    ['4.2.2 a single 0 group is not shortened', '2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['4.2.3 the longest run is shortened', '2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['4.2.3 on a tie, the first run', '2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['4.3 lower case', '2001:DB8:AC10:FE01::', '2001:db8:ac10:fe01::'],
    ['unspecified', '0:0:0:0:0:0:0:0', '::'],
    ['loopback', '0:0:0:0:0:0:0:1', '::1'],
    ['trailing run', '1:0:0:0:0:0:0:0', '1::'],
    ['no zeros', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['run of seven at the end', 'fe80:0:0:0:0:0:0:0', 'fe80::'],
    ['two zero groups inside', '1:2:3:0:0:6:7:8', '1:2:3::6:7:8'],
    ['single zero at the end is not shortened', '1:2:3:4:5:6:7:0', '1:2:3:4:5:6:7:0'],
    ['link-local', 'fe80::0202:b3ff:fe1e:8329', 'fe80::202:b3ff:fe1e:8329'],
    ['5 IPv4-mapped in mixed notation', '0:0:0:0:0:ffff:c000:0201', '::ffff:192.0.2.1'],
    ['5 IPv4-mapped any address', '::ffff:0.0.0.0', '::ffff:0.0.0.0'],
    ['not mapped: ffff elsewhere', '0:0:0:0:ffff:0:c000:201', '::ffff:0:c000:201'],
    ['not mapped: IPv4-compatible stays hex', '::c000:201', '::c000:201'],
  ];
  for (const [name, input, expected] of cases) {
    it(`RFC 5952 ${name}: ${input} -> ${expected}`, () => assert.equal(v6(input), expected));
  }

  it('agrees with the WHATWG URL serializer (same RFC 5952 rules) on 20k random addresses rich in zero runs', () => {
    let s = 12345;
    const next = (): number => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
    const buf = Buffer.alloc(16);
    for (let i = 0; i < 20_000; i++) {
      for (let g = 0; g < 8; g++) buf.writeUInt16BE(next() % 3 === 0 ? next() & 0xffff : next() % 5 === 0 ? next() & 0xf : 0, g * 2);
      if (buf.readUInt32BE(0) === 0 && buf.readUInt32BE(4) === 0 && buf.readUInt32BE(8) === 0xffff) continue; // mapped: URL writes hex
      const ours = formatAddress(buf, 0, 6);
      const url = new URL(`http://[${ours}]/`).hostname;
      assert.equal(`[${ours}]`, url);
      assert.deepEqual(parseIp(ours, 6), buf);
    }
  });

  it('reading past the buffer throws AddressRangeError', () => {
    assert.throws(() => formatAddress(Buffer.alloc(15), 0, 6), AddressRangeError);
    assert.throws(() => formatAddress(Buffer.alloc(4), 1, 4), AddressRangeError);
    assert.throws(() => formatAddress(Buffer.alloc(4), -1, 4), AddressRangeError);
  });
});

function decoded(spec: FrameSpec): DecodedPacket {
  const p = newDecodedPacket();
  assert.equal(new Decoder().decode(frameOf(buildFrame(spec), 1, LINKTYPE.ETHERNET), p), DECODE.OK);
  return p;
}

function reversed(spec: FrameSpec): FrameSpec {
  const t = spec.tcp ? { tcp: { ...spec.tcp, srcPort: spec.tcp.dstPort, dstPort: spec.tcp.srcPort } } : { udp: { ...spec.udp!, srcPort: spec.udp!.dstPort, dstPort: spec.udp!.srcPort } };
  return { link: spec.link, vlan: [4], ip: { ...spec.ip, src: spec.ip.dst, dst: spec.ip.src }, ...t };
}

describe('hashFlow', () => {
  it('is the same both ways, for random IPv4/IPv6 TCP/UDP flows, and spreads them', () => {
    let s = 99;
    const next = (): number => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
    const hashes = new Set<number>();
    const N = 5000;
    for (let i = 0; i < N; i++) {
      const v = (next() & 1) === 1 ? 6 : 4;
      const addr = (): string => (v === 4 ? [next() & 255, next() & 255, next() & 255, next() & 255].join('.') : Array.from({ length: 8 }, () => (next() & 0xffff).toString(16)).join(':'));
      const ports = { srcPort: next() & 0xffff, dstPort: next() & 0xffff };
      const spec: FrameSpec = { link: 'ethernet', ip: { version: v, src: addr(), dst: addr() }, ...((next() & 1) === 1 ? { tcp: ports } : { udp: ports }) };
      const a = hashFlow(decoded(spec));
      const b = hashFlow(decoded(reversed(spec)));
      assert.equal(a, b);
      assert.ok(Number.isInteger(a) && a >= 0 && a < 2 ** 30);
      hashes.add(a);
    }
    assert.ok(hashes.size >= N - 2, `${N - hashes.size} collisions in ${N}`);
  });

  it('spreads flows that differ only in the client port evenly over the low bits (table index = hash & mask)', () => {
    const spec: FrameSpec = { link: 'ethernet', ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2' }, tcp: { srcPort: 0, dstPort: 443 } };
    const p = decoded(spec);
    for (const bits of [6, 10]) {
      const buckets = new Array<number>(1 << bits).fill(0);
      const N = 64 << bits;
      for (let port = 0; port < N; port++) {
        p.srcPort = 1024 + port;
        buckets[hashFlow(p) & ((1 << bits) - 1)]++;
      }
      // Uniform: about 64 per bucket; a poor mix of sequential ports piles them up.
      assert.ok(Math.max(...buckets) < 64 * 1.8 && Math.min(...buckets) > 64 * 0.4, `${Math.min(...buckets)}..${Math.max(...buckets)}`);
    }
  });

  it('tells apart flows that differ only in a port, the protocol, or which side has which port', () => {
    const base: FrameSpec = { link: 'ethernet', ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2' }, tcp: { srcPort: 1000, dstPort: 80 } };
    const h = hashFlow(decoded(base));
    assert.notEqual(h, hashFlow(decoded({ ...base, tcp: { srcPort: 1001, dstPort: 80 } })));
    assert.notEqual(h, hashFlow(decoded({ ...base, tcp: undefined, udp: { srcPort: 1000, dstPort: 80 } })));
    assert.notEqual(h, hashFlow(decoded({ ...base, tcp: { srcPort: 80, dstPort: 1000 } })));
    assert.notEqual(h, hashFlow(decoded({ ...base, ip: { version: 6, src: '::ffff:10.0.0.1', dst: '::ffff:10.0.0.2' } })));
  });

  it('depends only on the addresses, not where they sit in the buffer (VLAN tags, link type)', () => {
    const spec: FrameSpec = { link: 'ethernet', ip: { version: 6, src: 'fd00::1', dst: 'fd00::2' }, udp: { srcPort: 53, dstPort: 5353 } };
    const tagged = decoded({ ...spec, vlan: [1, 2, 3] });
    assert.notEqual(tagged.srcAddrOffset, decoded(spec).srcAddrOffset);
    assert.equal(hashFlow(tagged), hashFlow(decoded(spec)));
  });

  it('does not allocate', () => {
    const p = decoded({ link: 'ethernet', ip: { version: 6, src: 'fd00::1', dst: 'fd00::2' }, tcp: { srcPort: 1, dstPort: 2 } });
    let acc = 0;
    for (let i = 0; i < 200_000; i++) acc ^= hashFlow(p);
    let best = Infinity;
    for (let attempt = 0; attempt < 3 && best > 0; attempt++) {
      const profiler = new v8.GCProfiler();
      profiler.start();
      for (let i = 0; i < 2_000_000; i++) {
        p.srcPort = i & 0xffff;
        acc ^= hashFlow(p);
      }
      best = Math.min(best, profiler.stop()?.statistics.filter((s) => s.gcType === 'Scavenge').length ?? 0);
    }
    assert.equal(best, 0);
    assert.equal(typeof acc, 'number');
  });
});
