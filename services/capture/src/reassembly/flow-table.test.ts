import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DecodedPacket } from '../types.ts';
import { ipToString, isServicePort, tcpSourceIsServer, udpSourceIsServer } from './endpoints.ts';
import { FlowTable, REMOVAL, flowHash, type Removal } from './flow-table.ts';
import { PacketFeeder, parseIp } from './test-helpers.ts';

/** Captures the feeder's packet at each send so table calls can be made on it. */
function packetOf(src: string, dst: string, sport: number, dport: number, protocol = 6, ts = 0): DecodedPacket {
  let out: DecodedPacket | null = null;
  const f = new PacketFeeder({ onPacket: (p) => { out = { ...p, buf: Buffer.from(p.buf) }; } });
  f.send({ src, dst, sport, dport, protocol, ts });
  return out as unknown as DecodedPacket;
}

function table(maxFlows: number, idle: number[] = [1000, 1000]) {
  const removed: { v: string; lane: number; reason: Removal; now: number }[] = [];
  const t = new FlowTable<string>({ maxFlows, idleTimeoutMs: idle, onRemove: (v, lane, reason, now) => removed.push({ v, lane, reason, now }) });
  return { t, removed };
}

describe('flowHash', () => {
  it('is the same both ways and differs when only the ports swap', () => {
    const p = packetOf('10.0.0.1', '10.0.0.2', 40000, 80);
    const q = packetOf('10.0.0.2', '10.0.0.1', 80, 40000);
    const r = packetOf('10.0.0.1', '10.0.0.2', 80, 40000);
    const h = (x: DecodedPacket) => flowHash(x.buf, x.srcAddrOffset, x.dstAddrOffset, x.ipVersion === 6 ? 16 : 4, x.srcPort, x.dstPort, x.protocol);
    assert.equal(h(p), h(q));
    assert.notEqual(h(p), h(r));
    assert.notEqual(h(p), h(packetOf('10.0.0.1', '10.0.0.2', 40000, 80, 17)));
    const v6a = packetOf('fd00::1', 'fd00::2', 1234, 443);
    const v6b = packetOf('fd00::2', 'fd00::1', 443, 1234);
    assert.equal(h(v6a), h(v6b));
  });

  it('spreads similar flows over the buckets', () => {
    const buf = Buffer.alloc(8);
    const buckets = new Uint32Array(4096);
    parseIp('10.1.0.1').bytes.copy(buf, 0);
    parseIp('10.1.0.2').bytes.copy(buf, 4);
    for (let port = 30000; port < 30000 + 8192; port++) buckets[flowHash(buf, 0, 4, 4, port, 80, 6) & 4095]++;
    // 2 per bucket on average; a poor hash piles dozens into a few.
    assert.ok(Math.max(...buckets) <= 12, `max bucket ${Math.max(...buckets)}`);
  });
});

describe('FlowTable', () => {
  it('finds a flow from both directions and tells which side sent', () => {
    const { t } = table(10);
    const a = packetOf('10.0.0.1', '10.0.0.2', 40000, 80);
    assert.equal(t.find(a), -1);
    const s = t.insert(a, 0, 'x');
    assert.equal(t.find(a), s);
    assert.equal(t.foundDir, 0);
    assert.equal(t.find(packetOf('10.0.0.2', '10.0.0.1', 80, 40000)), s);
    assert.equal(t.foundDir, 1);
    assert.equal(t.get(s), 'x');
    // Same addresses and ports but another protocol, version or port: other flows.
    assert.equal(t.find(packetOf('10.0.0.1', '10.0.0.2', 40000, 80, 17)), -1);
    assert.equal(t.find(packetOf('10.0.0.1', '10.0.0.2', 40001, 80)), -1);
    assert.equal(t.find(packetOf('10.0.0.1', '10.0.0.3', 40000, 80)), -1);
    assert.equal(t.find(packetOf('::a00:1', '::a00:2', 40000, 80)), -1);
    assert.equal(t.size, 1);
  });

  it('keeps IPv6 flows apart by every address byte', () => {
    const { t } = table(10);
    const s1 = t.insert(packetOf('2001:db8::1', '2001:db8::2', 1, 2), 0, 'one');
    const s2 = t.insert(packetOf('2001:db8::1', '2001:db8:0:0:0:0:1:2', 1, 2), 0, 'two');
    assert.notEqual(s1, s2);
    assert.equal(t.get(t.find(packetOf('2001:db8::2', '2001:db8::1', 2, 1))), 'one');
    assert.equal(t.get(t.find(packetOf('2001:db8::1:2', '2001:db8::1', 2, 1))), 'two');
  });

  it('evicts the least recently used flow when full, and counts it', () => {
    const { t, removed } = table(3);
    t.insert(packetOf('10.0.0.1', '10.0.0.9', 1, 80, 6, 1), 0, 'a');
    t.insert(packetOf('10.0.0.2', '10.0.0.9', 1, 80, 6, 2), 0, 'b');
    t.insert(packetOf('10.0.0.3', '10.0.0.9', 1, 80, 6, 3), 1, 'c');
    // 'a' is touched, so 'b' is now the least recently used.
    const a = t.find(packetOf('10.0.0.9', '10.0.0.1', 80, 1));
    t.touch(a, 4);
    t.insert(packetOf('10.0.0.4', '10.0.0.9', 1, 80, 6, 5), 0, 'd');
    assert.deepEqual(removed, [{ v: 'b', lane: 0, reason: REMOVAL.EVICTED, now: 5 }]);
    assert.equal(t.flowsEvicted, 1);
    assert.equal(t.size, 3);
    assert.equal(t.find(packetOf('10.0.0.2', '10.0.0.9', 1, 80)), -1);
    // The oldest across lanes goes next: 'c' (lane 1, seen at 3).
    t.insert(packetOf('10.0.0.5', '10.0.0.9', 1, 80, 6, 6), 0, 'e');
    assert.equal(removed[1].v, 'c');
    assert.equal(removed[1].lane, 1);
  });

  it('expires idle flows by each lane\'s timeout, by capture time', () => {
    const { t, removed } = table(10, [10_000, 1_000]);
    t.insert(packetOf('10.0.0.1', '10.0.0.9', 1, 80, 6, 0), 0, 'tcp');
    t.insert(packetOf('10.0.0.1', '10.0.0.9', 1, 53, 17, 0), 1, 'udp');
    const late = t.insert(packetOf('10.0.0.2', '10.0.0.9', 1, 53, 17, 0), 1, 'udp-late');
    t.touch(late, 900);
    assert.equal(t.expire(999), 0);
    assert.equal(t.expire(1000), 1);
    assert.deepEqual(removed.map((r) => [r.v, r.reason]), [['udp', REMOVAL.IDLE]]);
    assert.equal(t.expire(5000), 1);
    assert.equal(removed[1].v, 'udp-late');
    assert.equal(t.expire(9999), 0);
    assert.equal(t.expire(10_000), 1);
    assert.equal(t.size, 0);
    assert.equal(t.flowsExpired, 3);
  });

  it('does not move a flow\'s time back for a late packet', () => {
    const { t } = table(10, [100, 100]);
    const s = t.insert(packetOf('10.0.0.1', '10.0.0.9', 1, 80, 6, 1000), 0, 'x');
    t.touch(s, 500);
    assert.equal(t.lastSeen(s), 1000);
    assert.equal(t.expire(1050), 0);
  });

  it('grows past its first allocation and reuses removed slots', () => {
    const { t } = table(5000);
    const pk = (i: number) => packetOf(`10.0.${i >> 8}.${i & 255}`, '10.9.9.9', 1000 + (i % 7), 443);
    for (let i = 0; i < 5000; i++) t.insert(pk(i), 0, `f${i}`);
    for (let i = 0; i < 5000; i += 37) assert.equal(t.get(t.find(pk(i))), `f${i}`);
    const s = t.find(pk(42));
    t.remove(s);
    assert.equal(t.find(pk(42)), -1);
    assert.equal(t.size, 4999);
    assert.equal(t.insert(packetOf('10.200.0.1', '10.9.9.9', 1, 443), 0, 'new'), s);
    assert.equal(t.flowsEvicted, 0);
  });

  it('clear() hands every flow back with CLEARED', () => {
    const { t, removed } = table(10);
    t.insert(packetOf('10.0.0.1', '10.0.0.9', 1, 80), 0, 'a');
    t.insert(packetOf('10.0.0.1', '10.0.0.9', 1, 53, 17), 1, 'b');
    t.clear(77);
    assert.deepEqual(removed.map((r) => [r.v, r.reason, r.now]).sort(), [['a', REMOVAL.CLEARED, 77], ['b', REMOVAL.CLEARED, 77]]);
    assert.equal(t.size, 0);
  });

  it('never holds more than maxFlows under a flood of new flows', () => {
    let removed = 0;
    const big = new FlowTable<number>({ maxFlows: 10_000, idleTimeoutMs: [60_000], onRemove: () => { removed++; } });
    const p = packetOf('10.0.0.0', '10.255.0.1', 1, 80);
    for (let i = 0; i < 200_000; i++) {
      p.buf[p.srcAddrOffset + 2] = (i >> 8) & 255;
      p.buf[p.srcAddrOffset + 3] = i & 255;
      p.srcPort = 1024 + (i >> 16);
      p.tsMs = i;
      assert.equal(big.find(p), -1);
      big.insert(p, 0, i);
      if (big.size > 10_000) assert.fail(`size ${big.size} at ${i}`);
    }
    assert.equal(big.size, 10_000);
    assert.equal(big.flowsEvicted, 190_000);
    assert.equal(removed, 190_000);
    // The survivors are the 10,000 most recent.
    p.buf[p.srcAddrOffset + 2] = (199_999 >> 8) & 255;
    p.buf[p.srcAddrOffset + 3] = 199_999 & 255;
    p.srcPort = 1024 + (199_999 >> 16);
    assert.equal(big.get(big.find(p)), 199_999);
  });
});

describe('endpoints', () => {
  it('formats addresses once per flow', () => {
    assert.equal(ipToString(parseIp('192.168.1.20').bytes, 0, 4), '192.168.1.20');
    assert.equal(ipToString(parseIp('2001:db8::1').bytes, 0, 6), '2001:db8::1');
    assert.equal(ipToString(parseIp('::1').bytes, 0, 6), '::1');
    assert.equal(ipToString(parseIp('::').bytes, 0, 6), '::');
    assert.equal(ipToString(parseIp('fe80::').bytes, 0, 6), 'fe80::');
    assert.equal(ipToString(parseIp('2001:db8:0:1:0:0:0:1').bytes, 0, 6), '2001:db8:0:1::1');
    assert.equal(ipToString(parseIp('2001:db8:0:0:1:0:0:1').bytes, 0, 6), '2001:db8::1:0:0:1');
    assert.equal(ipToString(parseIp('2001:db8:1:2:3:4:5:6').bytes, 0, 6), '2001:db8:1:2:3:4:5:6');
    assert.equal(ipToString(parseIp('2001:0:1:2:3:4:5:6').bytes, 0, 6), '2001:0:1:2:3:4:5:6');
    assert.equal(ipToString(parseIp('::ffff:c000:201').bytes, 0, 6), '::ffff:192.0.2.1');
  });

  it('guesses the server from the ports', () => {
    assert.ok(isServicePort(80) && isServicePort(6379) && isServicePort(50051) && isServicePort(8080) && isServicePort(1023));
    assert.ok(!isServicePort(1024) && !isServicePort(51000));
    assert.equal(tcpSourceIsServer(80, 51000), true);
    assert.equal(tcpSourceIsServer(51000, 8080), false);
    assert.equal(tcpSourceIsServer(6379, 40000), true);
    assert.equal(tcpSourceIsServer(40000, 45000), true, 'neither is a service port: the lower one is');
    assert.equal(tcpSourceIsServer(45000, 40000), false);
    assert.equal(tcpSourceIsServer(443, 8080), true, 'both are: the lower one is');
    assert.equal(udpSourceIsServer(53, 40000), true);
    assert.equal(udpSourceIsServer(40000, 53), false);
    assert.equal(udpSourceIsServer(53, 53), false, 'both service ports: the first sender is the client');
    assert.equal(udpSourceIsServer(45000, 40000), false);
  });
});
