/**
 * DNS dissector tests on real exchanges: a tiny authoritative server
 * (dns-testkit.ts) on loopback UDP+TCP answers Node's own resolver (c-ares)
 * and raw clients; the datagrams / TCP bytes it saw are fed to the
 * dissectors and the items compared with the zone (ground truth) and with
 * what the resolver returned. Then crafted hostile messages, gaps and fuzz.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import dns from 'node:dns';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { rng } from '@wirescript/testing';
import type { ConnectionInfo, DissectorOptions, ItemDraft } from '../types.ts';
import {
  createDnsDatagramDissector, DNS_PROTOCOL, dnsDatagramDissector, DnsStreamParser, dnsStreamDissector, MAX_PENDING_PER_FLOW, MAX_PENDING_TOTAL,
  probeDnsTcp, RESYNC_SCAN_LIMIT,
} from './dns.ts';
import { MAX_POINTER_JUMPS, parseDnsMessage } from './dns-message.ts';
import { buildDnsMessage, lookup, startDnsTestServer, ZONE, type DnsTestServer, type RecordedTcp } from './dns-testkit.ts';

const OPTS: DissectorOptions = { maxBodyBytes: 64 * 1024, pairTimeoutMs: 5000, decodeBodies: true };

function conn(transport: 'udp' | 'tcp', clientPort: number, serverPort: number, id = clientPort): ConnectionInfo {
  return { id, client: { ip: '127.0.0.1', port: clientPort }, server: { ip: '127.0.0.1', port: serverPort }, ipVersion: 4, transport, handshakeSeen: transport === 'tcp' };
}

function collector(): { items: ItemDraft[]; sink: { emit(c: ConnectionInfo, i: ItemDraft): void } } {
  const items: ItemDraft[] = [];
  return { items, sink: { emit: (_c, i) => items.push(i) } };
}

/** Feeds a server's recorded datagrams to a fresh datagram dissector, one flow per client port. */
function replayUdp(srv: DnsTestServer, opts = OPTS): { items: ItemDraft[]; d: ReturnType<typeof createDnsDatagramDissector> } {
  const d = createDnsDatagramDissector();
  const { items, sink } = collector();
  const flows = new Map<number, ConnectionInfo>();
  for (const g of srv.datagrams) {
    let c = flows.get(g.clientPort);
    if (!c) flows.set(g.clientPort, (c = conn('udp', g.clientPort, srv.port)));
    assert.ok(d.probe(g.data, c), 'every real datagram probes as DNS');
    d.onDatagram(c, g.dir, g.data, g.tsMs, sink, opts);
  }
  return { items, d };
}

function replayTcp(rec: RecordedTcp, serverPort: number, split = Infinity): { items: ItemDraft[]; parser: DnsStreamParser } {
  const { items, sink } = collector();
  const parser = dnsStreamDissector.create({ conn: conn('tcp', rec.clientPort, serverPort), sink, opts: OPTS, switchTo: () => null }) as DnsStreamParser;
  for (const ch of rec.chunks) {
    if (!Number.isFinite(split)) parser.onData(ch.dir, ch.data, ch.tsMs);
    else for (let i = 0; i < ch.data.length; i += split) parser.onData(ch.dir, ch.data.subarray(i, i + split), ch.tsMs);
  }
  parser.onClose(Date.now(), 'fin');
  return { items, parser };
}

type Q = { name: string; type: string; class: string };
const questionOf = (i: ItemDraft): Q => ((i.request ?? i.response) as { questions: Q[] }).questions[0];
function find(items: ItemDraft[], name: string, type: string): ItemDraft {
  const found = items.filter((i) => questionOf(i).name === name && questionOf(i).type === type);
  assert.equal(found.length, 1, `one item for ${name} ${type}, got ${found.length}`);
  return found[0];
}

let srv: DnsTestServer;
before(async () => {
  srv = await startDnsTestServer();
});
after(async () => {
  await srv.close();
});

describe('dns: real exchanges with Node\'s resolver', () => {
  const results: Record<string, unknown> = {};
  let udpItems: ItemDraft[] = [];

  before(async () => {
    const r = new dns.promises.Resolver({ timeout: 3000, tries: 1 });
    r.setServers([`127.0.0.1:${srv.port}`]);
    results.a = await r.resolve4('a.example.test');
    results.aTtl = await r.resolve4('a.example.test', { ttl: true });
    results.aaaa = await r.resolve6('a.example.test');
    results.cname = await r.resolveCname('www.example.test');
    results.viaCname = await r.resolve4('www.example.test');
    results.mx = await r.resolveMx('example.test');
    results.txt = await r.resolveTxt('example.test');
    results.srv = await r.resolveSrv('_sip._tcp.example.test');
    results.soa = await r.resolveSoa('example.test');
    results.ns = await r.resolveNs('example.test');
    results.caa = await r.resolveCaa('example.test');
    results.ptr = await r.reverse('192.0.2.1');
    results.nx = await r.resolve4('nope.example.test').catch((e: NodeJS.ErrnoException) => e.code);
    results.nodata = await r.resolveMx('a.example.test').catch((e: NodeJS.ErrnoException) => e.code);
    results.big = await r.resolveTxt('big.example.test'); // truncated over UDP: c-ares retries over TCP
    udpItems = replayUdp(srv).items;
  });

  test('every query is paired with its response; sizes are the datagram sizes', () => {
    const queries = srv.datagrams.filter((g) => g.dir === 0);
    assert.equal(udpItems.length, queries.length);
    for (const i of udpItems) {
      assert.equal(i.error, undefined, JSON.stringify(i.error));
      assert.deepEqual(i.protocol, DNS_PROTOCOL);
      assert.ok(i.request && i.response);
      assert.equal(i.request.id, i.response.id);
      assert.ok(i.responseTsMs >= i.requestTsMs && i.requestTsMs > 0);
    }
    const sizes = (dir: 0 | 1) => srv.datagrams.filter((g) => g.dir === dir).reduce((a, g) => a + g.data.length, 0);
    assert.equal(udpItems.reduce((a, i) => a + i.requestSize, 0), sizes(0));
    assert.equal(udpItems.reduce((a, i) => a + i.responseSize, 0), sizes(1));
  });

  test('A / AAAA: the zone\'s records, and what the resolver returned', () => {
    // resolve4 ran twice (with and without ttl): two exchanges, the same answer.
    const both = udpItems.filter((i) => questionOf(i).name === 'a.example.test' && questionOf(i).type === 'A');
    assert.equal(both.length, 2);
    assert.deepEqual(both[0].response?.answers, both[1].response?.answers);
    assert.deepEqual((results.aTtl as Array<{ address: string; ttl: number }>).map((x) => [x.address, x.ttl]), (both[1].response?.answers as Array<{ ip: string; ttl: number }>).map((x) => [x.ip, x.ttl]));
    const a = both[0];
    assert.deepEqual(a.request?.questions, [{ name: 'a.example.test', type: 'A', class: 'IN' }]);
    assert.equal(a.request?.opCode, 'QUERY');
    assert.equal(a.request?.recursionDesired, true);
    assert.equal(a.response?.code, 'NOERROR');
    assert.equal(a.response?.authoritative, true);
    assert.deepEqual(a.response?.answers, lookup('a.example.test', 'A').answers);
    assert.deepEqual((a.response?.answers as Array<{ ip: string }>).map((x) => x.ip), results.a);
    const aaaa = find(udpItems, 'a.example.test', 'AAAA');
    assert.deepEqual(aaaa.response?.answers, lookup('a.example.test', 'AAAA').answers);
    assert.deepEqual((aaaa.response?.answers as Array<{ ip: string }>).map((x) => x.ip), results.aaaa);
  });

  test('CNAME, MX, TXT, SRV, SOA, NS, CAA, PTR', () => {
    const cname = udpItems.filter((i) => questionOf(i).name === 'www.example.test');
    assert.deepEqual(cname.map((i) => questionOf(i).type).sort(), ['A', 'CNAME']);
    for (const i of cname) assert.deepEqual(i.response?.answers, lookup('www.example.test', questionOf(i).type).answers);
    assert.equal((find(udpItems, 'www.example.test', 'CNAME').response?.answers as Array<{ cname: string }>)[0].cname, (results.cname as string[])[0]);
    const viaCname = find(udpItems, 'www.example.test', 'A').response?.answers as Array<{ type: string; ip?: string }>;
    assert.deepEqual(viaCname.filter((x) => x.type === 'A').map((x) => x.ip), results.viaCname);

    const mx = find(udpItems, 'example.test', 'MX').response?.answers as Array<{ mx: { preference: number; exchange: string } }>;
    assert.deepEqual(mx, lookup('example.test', 'MX').answers);
    assert.deepEqual(mx.map((x) => ({ exchange: x.mx.exchange, priority: x.mx.preference })), (results.mx as Array<{ exchange: string; priority: number }>).map((x) => ({ exchange: x.exchange, priority: x.priority })));

    const txt = find(udpItems, 'example.test', 'TXT').response?.answers as Array<{ txt: string[] }>;
    assert.deepEqual(txt, lookup('example.test', 'TXT').answers);
    assert.deepEqual(txt[1].txt, ['hello', 'wörld'], 'TXT as UTF-8 (c-ares itself decodes the bytes as Latin-1)');
    assert.deepEqual(txt[0].txt, (results.txt as string[][])[0]);

    const srvRec = find(udpItems, '_sip._tcp.example.test', 'SRV').response?.answers as Array<{ srv: Record<string, unknown> }>;
    assert.deepEqual(srvRec, lookup('_sip._tcp.example.test', 'SRV').answers);
    const s0 = (results.srv as Array<Record<string, unknown>>)[0];
    assert.deepEqual(srvRec[0].srv, { priority: s0.priority, weight: s0.weight, port: s0.port, target: s0.name });

    const soa = find(udpItems, 'example.test', 'SOA').response?.answers as Array<{ soa: Record<string, unknown> }>;
    assert.deepEqual(soa, lookup('example.test', 'SOA').answers);
    const rs = results.soa as Record<string, unknown>;
    assert.deepEqual(soa[0].soa, { mname: rs.nsname, rname: rs.hostmaster, serial: rs.serial, refresh: rs.refresh, retry: rs.retry, expire: rs.expire, minimum: rs.minttl });

    const ns = find(udpItems, 'example.test', 'NS').response?.answers as Array<{ ns: string }>;
    assert.deepEqual(ns.map((x) => x.ns), results.ns);
    const caa = find(udpItems, 'example.test', 'CAA').response?.answers as Array<{ caa: { tag: string; value: string } }>;
    assert.deepEqual(caa, lookup('example.test', 'CAA').answers);
    assert.equal(caa[0].caa.value, (results.caa as Array<{ issue: string }>)[0].issue);
    const ptr = find(udpItems, '1.2.0.192.in-addr.arpa', 'PTR').response?.answers as Array<{ ptr: string }>;
    assert.deepEqual(ptr.map((x) => x.ptr), results.ptr);
  });

  test('NXDOMAIN and NODATA carry the SOA in authorities', () => {
    assert.equal(results.nx, 'ENOTFOUND');
    const nx = find(udpItems, 'nope.example.test', 'A');
    assert.equal(nx.response?.code, 'NXDOMAIN');
    assert.deepEqual(nx.response?.answers, []);
    assert.deepEqual(nx.response?.authorities, lookup('nope.example.test', 'A').authorities);
    assert.equal(nx.error, undefined, 'NXDOMAIN is an answer, not a failure');
    assert.equal(results.nodata, 'ENODATA');
    const nd = find(udpItems, 'a.example.test', 'MX');
    assert.equal(nd.response?.code, 'NOERROR');
    assert.deepEqual(nd.response?.answers, []);
  });

  test('a truncated UDP answer, then the same query over TCP (c-ares fallback)', () => {
    const udp = find(udpItems, 'big.example.test', 'TXT');
    assert.equal(udp.response?.truncated, true);
    assert.deepEqual(udp.response?.answers, []);
    assert.equal((results.big as string[][]).length, 12);
    const rec = srv.tcp.find((t) => t.chunks.some((c) => c.data.includes(Buffer.from('\x03big'))));
    assert.ok(rec, 'c-ares retried over TCP');
    const { items, parser } = replayTcp(rec, srv.port);
    assert.equal(items.length, 1);
    const it = items[0];
    assert.equal(it.error, undefined);
    assert.equal(it.response?.truncated, false);
    assert.deepEqual(it.response?.answers, lookup('big.example.test', 'TXT').answers);
    assert.deepEqual((it.response?.answers as Array<{ txt: string[] }>).map((x) => x.txt), results.big);
    const msgBytes = (dir: 0 | 1) => rec.chunks.filter((c) => c.dir === dir).reduce((a, c) => a + c.data.length, 0) - 2;
    assert.equal(it.requestSize, msgBytes(0), 'DNS message size, without the length prefix');
    assert.equal(it.responseSize, msgBytes(1));
    assert.equal(parser.stats.paired, 1);
    assert.deepEqual(replayTcp(rec, srv.port, 1).items.map((i) => i.response), items.map((i) => i.response), 'byte at a time');
  });
});

/** Sends raw bytes over TCP to the test server and waits until `count` length-prefixed responses came back. */
async function tcpExchange(payload: Buffer, count: number): Promise<RecordedTcp> {
  const before = srv.tcp.length;
  const s = net.connect(srv.port, '127.0.0.1');
  let got = Buffer.alloc(0);
  s.on('data', (d: Buffer) => {
    got = Buffer.concat([got, d]);
  });
  await new Promise<void>((r) => s.once('connect', () => r()));
  s.write(payload);
  const deadline = Date.now() + 5000;
  for (;;) {
    let n = 0;
    for (let p = 0; p + 2 <= got.length && p + 2 + got.readUInt16BE(p) <= got.length; p += 2 + got.readUInt16BE(p)) n++;
    if (n >= count) break;
    assert.ok(Date.now() < deadline, `only ${n} of ${count} TCP responses`);
    await new Promise((r) => setTimeout(r, 5));
  }
  s.end();
  const rec = srv.tcp[before];
  await rec.closed;
  return rec;
}

const framed = (m: Buffer) => Buffer.concat([Buffer.from([m.length >> 8, m.length & 0xff]), m]);

describe('dns over TCP: pipelining, EDNS, HTTPS, unknown types', () => {
  const queries = [
    buildDnsMessage({ id: 101, response: false, rd: true, questions: [{ name: 'a.example.test', type: 'A' }], ednsUdpSize: 4096 }),
    buildDnsMessage({ id: 102, response: false, rd: true, questions: [{ name: 'svc.example.test', type: 'HTTPS' }] }),
    buildDnsMessage({ id: 103, response: false, rd: true, questions: [{ name: 'odd.example.test', type: 65400 }] }),
    buildDnsMessage({ id: 104, response: false, rd: false, questions: [{ name: 'A.Example.TEST', type: 'AAAA' }] }),
  ];

  test('pipelined queries in one write, each paired; HTTPS params, TYPE65400 as hex, EDNS both ways', async () => {
    const rec = await tcpExchange(Buffer.concat(queries.map(framed)), queries.length);
    const { items } = replayTcp(rec, srv.port);
    assert.equal(items.length, 4);
    for (const i of items) assert.equal(i.error, undefined);
    const [a, https, odd, mixed] = items;
    assert.deepEqual(a.request?.edns, { udpPayloadSize: 4096, extendedRcode: 0, version: 0, dnssecOk: false, options: [] });
    assert.equal((a.response?.edns as { udpPayloadSize: number }).udpPayloadSize, 1232);
    assert.deepEqual(a.response?.additionals, [], 'the OPT record is reported as edns, not as an additional');
    assert.deepEqual(https.response?.answers, lookup('svc.example.test', 'HTTPS').answers);
    assert.deepEqual(odd.request?.questions, [{ name: 'odd.example.test', type: 'TYPE65400', class: 'IN' }]);
    assert.deepEqual(odd.response?.answers, [{ name: 'odd.example.test', type: 'TYPE65400', class: 'IN', ttl: 5, data: 'deadbeef00' }]);
    assert.deepEqual(mixed.request?.questions, [{ name: 'A.Example.TEST', type: 'AAAA', class: 'IN' }], 'names keep their case');
    assert.deepEqual((mixed.response?.answers as unknown[]).length, 2);
    assert.equal(mixed.request?.recursionDesired, false);
  });

  test('responses out of order (RFC 7766) pair by id and question', () => {
    const { items, sink } = collector();
    const p = dnsStreamDissector.create({ conn: conn('tcp', 5000, 53), sink, opts: OPTS, switchTo: () => null });
    p.onData(0, Buffer.concat(queries.map(framed)), 1);
    const responses = queries.map((q) => buildDnsMessage({ id: q.readUInt16BE(0), response: true, questions: [{ name: parseDnsMessage(q)!.questions[0].name, type: parseDnsMessage(q)!.questions[0].type }], answers: [] }));
    p.onData(1, Buffer.concat([...responses].reverse().map(framed)), 2);
    p.onClose(3, 'fin');
    assert.deepEqual(items.map((i) => [i.request?.id, i.response?.id, i.error]), [[104, 104, undefined], [103, 103, undefined], [102, 102, undefined], [101, 101, undefined]]);
  });

  test('gaps: inside a message (framing kept), across messages (resync), then garbage (give up)', () => {
    const qs = queries.map(framed);
    const rs = queries.map((q) => {
      const pq = parseDnsMessage(q)!;
      return framed(buildDnsMessage({ id: pq.header.id, response: true, questions: [{ name: pq.questions[0].name, type: pq.questions[0].type }], answers: lookup(pq.questions[0].name, pq.questions[0].type).answers }));
    });
    // 1. Lose 5 bytes inside response 2: its query fails, the others pair.
    {
      const { items, sink } = collector();
      const p = dnsStreamDissector.create({ conn: conn('tcp', 5000, 53), sink, opts: OPTS, switchTo: () => null }) as DnsStreamParser;
      p.onData(0, Buffer.concat(qs), 1);
      const all = Buffer.concat(rs);
      const at = rs[0].length + 20;
      p.onData(1, all.subarray(0, at), 2);
      p.onGap(1, 5, 2);
      p.onData(1, all.subarray(at + 5), 2);
      p.onClose(3, 'fin');
      assert.deepEqual(items.map((i) => [i.request?.id, i.response ? 'response' : null, i.error]), [
        [101, 'response', undefined], [102, null, 'capture gap: 5 bytes lost: the response was lost'], [103, 'response', undefined], [104, 'response', undefined],
      ]);
    }
    // 2. Lose the end of query 1 and the start of query 2: resync on query 3.
    {
      const { items, sink } = collector();
      const p = dnsStreamDissector.create({ conn: conn('tcp', 5000, 53), sink, opts: OPTS, switchTo: () => null }) as DnsStreamParser;
      const all = Buffer.concat(qs);
      const from = 10;
      const to = qs[0].length + 7;
      p.onData(0, all.subarray(0, from), 1);
      p.onGap(0, to - from, 1);
      p.onData(0, all.subarray(to), 1);
      p.onData(1, Buffer.concat(rs), 2);
      p.onClose(3, 'fin');
      assert.deepEqual(items.map((i) => [i.request?.id ?? null, i.response?.id ?? null, Boolean(i.error)]), [
        [null, 101, true], [null, 102, true], [103, 103, true], [104, 104, false],
      ]);
      assert.match(items[2].error ?? '', /capture gap: \d+ bytes lost/, 'the first message after a gap says so');
      assert.ok(p.stats.skippedBytes > 0);
    }
    // 3. A gap, then bytes that never look like DNS: give up on that direction; pending queries flushed at close.
    {
      const { items, sink } = collector();
      const p = dnsStreamDissector.create({ conn: conn('tcp', 5000, 53), sink, opts: OPTS, switchTo: () => null }) as DnsStreamParser;
      p.onData(0, Buffer.concat(qs), 1);
      p.onGap(1, 100, 2);
      const junk = Buffer.alloc(4096, 0xff);
      let maxHeld = 0;
      for (let i = 0; i < 40; i++) {
        p.onData(1, junk, 2);
        maxHeld = Math.max(maxHeld, p.bufferedBytes());
      }
      assert.ok(maxHeld < 64, `held ${maxHeld} bytes while scanning junk`);
      p.onData(1, Buffer.concat(rs), 3); // too late: given up
      p.onClose(4, 'end');
      assert.equal(items.length, 4);
      for (const i of items) assert.match(i.error ?? '', /no response before the connection ended \(end\); capture gap: 100 bytes lost/);
      assert.ok(p.stats.skippedBytes >= RESYNC_SCAN_LIMIT);
    }
    // 4. Orientation guessed wrong (no handshake): responses on dir 0. Resync looks for what dir 0 carried.
    {
      const { items, sink } = collector();
      const c = { ...conn('tcp', 53, 5000), handshakeSeen: false };
      const p = dnsStreamDissector.create({ conn: c, sink, opts: OPTS, switchTo: () => null }) as DnsStreamParser;
      p.onData(1, Buffer.concat(qs), 1);
      const all = Buffer.concat(rs);
      const from = rs[0].length + 1; // inside response 2's length prefix
      const to = rs[0].length + rs[1].length; // response 3 intact
      p.onData(0, all.subarray(0, from), 2);
      p.onGap(0, to - from, 2);
      p.onData(0, all.subarray(to), 2);
      p.onClose(3, 'fin');
      assert.deepEqual(items.map((i) => [i.request?.id, i.response?.id ?? null]), [[101, 101], [103, 103], [104, 104], [102, null]]);
    }
  });
});

describe('dns over UDP: retransmissions, duplicates, timeouts, orphans, bounds', () => {
  test('a raw client: retransmitted query folded, duplicate answer flagged, unanswered query times out', async () => {
    const before = srv.datagrams.length;
    srv.silent.add('silent.example.test');
    srv.delayed.set('slow.example.test', 100); // the client resends before the answers come
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    let received = 0;
    sock.on('message', () => received++);
    const q1 = buildDnsMessage({ id: 0x1111, response: false, rd: true, questions: [{ name: 'slow.example.test', type: 'A' }] });
    const q2 = buildDnsMessage({ id: 0x2222, response: false, rd: true, questions: [{ name: 'silent.example.test', type: 'A' }] });
    for (const m of [q1, q1, q2]) sock.send(m, srv.port, '127.0.0.1');
    const deadline = Date.now() + 5000;
    while (received < 2) {
      assert.ok(Date.now() < deadline, 'two answers');
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise<void>((r) => setTimeout(r, 20)); // q2 reached the server too
    sock.close();
    const recorded = srv.datagrams.slice(before);
    assert.equal(recorded.length, 5, '3 queries in, 2 answers out');
    const d = createDnsDatagramDissector();
    const { items, sink } = collector();
    const c = conn('udp', recorded[0].clientPort, srv.port);
    for (const g of recorded) d.onDatagram(c, g.dir, g.data, g.tsMs, sink, OPTS);
    const last = recorded[recorded.length - 1].tsMs;
    assert.equal(items.length, 2);
    assert.equal(items[0].request?.retransmissions, 1);
    assert.equal(items[0].error, undefined);
    assert.equal(items[0].requestTsMs, recorded[0].tsMs, 'timed from the first copy');
    assert.equal(items[1].request, null);
    assert.equal(items[1].error, 'duplicate response: the query was already answered');
    d.onTick(last + OPTS.pairTimeoutMs - 1000, sink, OPTS);
    assert.equal(items.length, 2);
    d.onTick(recorded[2].tsMs + OPTS.pairTimeoutMs + 1, sink, OPTS);
    assert.equal(items.length, 3);
    assert.equal(items[2].error, 'query timed out without response');
    assert.deepEqual(items[2].request?.questions, [{ name: 'silent.example.test', type: 'A', class: 'IN' }]);
    assert.equal(d.stats.timedOut, 1);
    assert.equal(d.pendingCount(sink), 0);
  });

  test('a response with no query; onEnd flushes pending queries; the shared instance keeps captures apart', () => {
    const resp = buildDnsMessage({ id: 7, response: true, questions: [{ name: 'x.test', type: 'A' }], answers: [] });
    const query = buildDnsMessage({ id: 8, response: false, questions: [{ name: 'y.test', type: 'A' }] });
    const capA = collector();
    const capB = collector();
    const same = conn('udp', 1234, 53, 1); // the same flow id in both captures
    const sameB = conn('udp', 1234, 53, 1);
    dnsDatagramDissector.onDatagram(same, 1, resp, 10, capA.sink, OPTS);
    dnsDatagramDissector.onDatagram(same, 0, query, 11, capA.sink, OPTS);
    dnsDatagramDissector.onDatagram(sameB, 0, buildDnsMessage({ id: 9, response: false, questions: [{ name: 'y.test', type: 'A' }] }), 12, capB.sink, OPTS);
    assert.deepEqual(capA.items.map((i) => [i.request, i.error]), [[null, 'response without a query']]);
    dnsDatagramDissector.onEnd(20, capA.sink, OPTS);
    assert.deepEqual(capA.items.map((i) => i.error), ['response without a query', 'no response before the end of the capture']);
    assert.equal(capB.items.length, 0, 'capture B untouched by capture A\'s end');
    assert.equal(dnsDatagramDissector.pendingCount(capB.sink), 1);
    dnsDatagramDissector.onEnd(30, capB.sink, OPTS);
    assert.equal(capB.items.length, 1);
  });

  test('pending tables are bounded per flow and per capture; evictions become items and are counted', () => {
    const d = createDnsDatagramDissector();
    const { items, sink } = collector();
    const c = conn('udp', 999, 53);
    for (let i = 0; i < MAX_PENDING_PER_FLOW + 76; i++) {
      d.onDatagram(c, 0, buildDnsMessage({ id: i, response: false, questions: [{ name: `n${i}.test`, type: 'A' }] }), i, sink, OPTS);
    }
    assert.equal(d.pendingCount(sink), MAX_PENDING_PER_FLOW);
    assert.equal(d.stats.evicted, 76);
    assert.equal(items.length, 76);
    assert.equal(items[0].error, 'evicted: too many queries awaiting a response');
    assert.equal(items[0].request?.id, 0, 'oldest first');
    const d2 = createDnsDatagramDissector();
    const c2 = collector();
    const flows = Math.ceil(MAX_PENDING_TOTAL / 1000) + 2;
    const q = buildDnsMessage({ id: 1, response: false, questions: [{ name: 'same.test', type: 'A' }] });
    let n = 0;
    for (let f = 0; f < flows; f++) {
      const fc = conn('udp', 10_000 + f, 53);
      for (let i = 0; i < 1000; i++) {
        q.writeUInt16BE(i, 0);
        d2.onDatagram(fc, 0, q, n++, c2.sink, OPTS);
      }
    }
    assert.equal(d2.pendingCount(c2.sink), MAX_PENDING_TOTAL);
    assert.equal(d2.stats.evicted, n - MAX_PENDING_TOTAL);
  });

  test('mDNS: QU and cache-flush bits are flags, not part of the class (port 5353 only)', () => {
    const m = Buffer.from(buildDnsMessage({
      id: 0, response: true, aa: true, questions: [{ name: 'printer.local', type: 'A', class: 0x8001 }],
      answers: [{ name: 'printer.local', type: 'A', class: 'IN', ttl: 120, ip: '192.168.1.9' }],
    }));
    // Set the cache-flush bit on the answer's class (the byte after its type).
    const ansClass = m.indexOf(Buffer.from([0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x78]));
    m[ansClass + 2] |= 0x80;
    const d = createDnsDatagramDissector();
    const { items, sink } = collector();
    d.onDatagram(conn('udp', 5353, 5353), 0, m, 1, sink, OPTS);
    assert.deepEqual(items[0].response?.questions, [{ name: 'printer.local', type: 'A', class: 'IN', unicastResponse: true }]);
    assert.deepEqual(items[0].response?.answers, [{ name: 'printer.local', type: 'A', class: 'IN', cacheFlush: true, ttl: 120, ip: '192.168.1.9' }]);
    const plain = parseDnsMessage(m)!;
    assert.equal(plain.questions[0].class, 'CLASS32769');
  });
});

describe('dns: hostile messages', () => {
  const header = (qd: number, an: number) => Buffer.from([0x12, 0x34, 0x81, 0x80, 0, qd, 0, an, 0, 0, 0, 0]);

  /**
   * Question "a" at 12, then a TXT answer whose rdata is a chain of `jumps`
   * backward pointers ending at the question's name, then `entries` A
   * records whose names point at the chain's last pointer.
   */
  function chainMessage(jumps: number, entries: number): Buffer {
    const q = Buffer.from([1, 0x61, 0, 0, 1, 0, 1]);
    const rdataStart = 12 + q.length + 2 + 10;
    const ptrs: number[] = [];
    for (let i = 0; i < jumps; i++) {
      const target = i === 0 ? 12 : rdataStart + (i - 1) * 2;
      ptrs.push(0xc0 | (target >> 8), target & 0xff);
    }
    const txt = Buffer.concat([Buffer.from([0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 1, ptrs.length >> 8, ptrs.length & 0xff]), Buffer.from(ptrs)]);
    const last = rdataStart + (jumps - 1) * 2;
    const entry = Buffer.from([0xc0 | (last >> 8), last & 0xff, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 10, 0, 0, 1]);
    const h = header(1, 0);
    h.writeUInt16BE(1 + entries, 6);
    return Buffer.concat([h, q, txt, ...Array.from({ length: entries }, () => entry)]);
  }

  test('compression: self, forward and looping pointers, long chains, long names, bad label types', () => {
    const self = Buffer.concat([header(1, 0), Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
    assert.equal(parseDnsMessage(self)!.error, 'name pointer does not point backwards');
    const forward = Buffer.concat([header(1, 0), Buffer.from([0xc0, 14, 0xc0, 12, 0, 1, 0, 1])]);
    assert.equal(parseDnsMessage(forward)!.error, 'name pointer does not point backwards');
    const badLabel = Buffer.concat([header(1, 0), Buffer.from([0x41, 1, 0, 0, 1, 0, 1])]);
    assert.match(parseDnsMessage(badLabel)!.error ?? '', /unsupported label type/);
    const longName = Buffer.concat([header(1, 0), ...Array.from({ length: 5 }, () => Buffer.concat([Buffer.from([63]), Buffer.alloc(63, 0x61)])), Buffer.from([0, 0, 1, 0, 1])]);
    assert.equal(parseDnsMessage(longName)!.error, 'name longer than 255 bytes');
    // The entry's own pointer is one jump, then one per chain link.
    const ok = parseDnsMessage(chainMessage(MAX_POINTER_JUMPS - 1, 1))!;
    assert.equal(ok.error, undefined);
    assert.deepEqual([ok.answers[1].name, ok.answers[1].ip], ['a', '10.0.0.1']);
    assert.equal(parseDnsMessage(chainMessage(MAX_POINTER_JUMPS, 1))!.error, 'too many name pointers');
    const bad = chainMessage(MAX_POINTER_JUMPS, 1);
    assert.equal(dnsDatagramDissector.probe(bad, conn('udp', 1, 53)), true, 'the question is fine: with the port hint it is DNS');
  });

  test('a 64 KiB message where every record walks a maximal pointer chain: parsed, kept records capped', () => {
    const entries = Math.floor((65_535 - chainMessage(MAX_POINTER_JUMPS - 1, 0).length) / 16);
    const msg = chainMessage(MAX_POINTER_JUMPS - 1, entries);
    assert.ok(msg.length <= 65_535 && entries > 3000);
    const m = parseDnsMessage(msg)!;
    assert.equal(m.error, undefined);
    assert.equal(m.answers.length, 256);
    assert.equal(m.recordsOmitted, entries + 1 - 256);
    assert.ok(m.answers.slice(1).every((a) => a.name === 'a' && a.ip === '10.0.0.1'));
  });

  test('every prefix of a real response: never throws, a header-less prefix is null', () => {
    const full = buildDnsMessage({ id: 5, response: true, questions: [{ name: 'example.test', type: 'SOA' }], answers: ZONE.filter((r) => r.name === 'example.test'), ednsUdpSize: 1232 });
    assert.equal(parseDnsMessage(full)!.error, undefined);
    for (let n = 0; n < full.length; n++) {
      const m = parseDnsMessage(full.subarray(0, n));
      if (n < 12) assert.equal(m, null);
      else assert.ok(m && (m.error !== undefined || n === full.length), `prefix ${n} reports an error`);
    }
  });

  test('fuzz: mutated real datagrams through the parser and the UDP dissector', () => {
    const rand = rng(42);
    const pick = (n: number) => Math.floor(rand() * n);
    const base = srv.datagrams.map((g) => g.data);
    assert.ok(base.length > 20);
    const d = createDnsDatagramDissector();
    const { items, sink } = collector();
    let t = 0;
    for (let i = 0; i < 5000; i++) {
      const m = Buffer.from(base[pick(base.length)]);
      const flips = 1 + pick(6);
      for (let f = 0; f < flips; f++) m[pick(m.length)] = pick(256);
      const cut = rand() < 0.2 ? m.subarray(0, pick(m.length + 1)) : m;
      const parsed = parseDnsMessage(cut);
      if (parsed) JSON.stringify(parsed);
      d.probe(cut, conn('udp', 1, 53));
      d.onDatagram(conn('udp', 1 + pick(4), 53, 1 + pick(4)), pick(2) as 0 | 1, cut, (t += 1), sink, OPTS);
      if (i % 500 === 0) d.onTick(t, sink, OPTS);
    }
    d.onEnd(t, sink, OPTS);
    assert.equal(d.pendingCount(sink), 0);
    assert.equal(d.stats.internalErrors, 0);
    assert.ok(items.length > 1000);
    for (const it of items) JSON.stringify(it);
  });

  test('fuzz: mutated TCP streams with random splits and gaps; buffered bytes stay bounded', () => {
    const rand = rng(99);
    const pick = (n: number) => Math.floor(rand() * n);
    const msgs = srv.datagrams.map((g) => ({ dir: g.dir, data: framed(g.data) }));
    let total = 0;
    for (let iter = 0; iter < 300; iter++) {
      const { items, sink } = collector();
      const p = dnsStreamDissector.create({ conn: conn('tcp', 1, 53), sink, opts: OPTS, switchTo: () => null }) as DnsStreamParser;
      let t = 0;
      for (let j = 0; j < 30; j++) {
        const m = msgs[pick(msgs.length)];
        const data = Buffer.from(m.data);
        if (rand() < 0.3) data[pick(data.length)] = pick(256);
        for (let i = 0; i < data.length; ) {
          const n = 1 + pick(64);
          p.onData(m.dir, data.subarray(i, i + n), (t += 1));
          i += n;
          if (rand() < 0.01) p.onGap(pick(2) as 0 | 1, 1 + pick(200), t);
        }
        if (rand() < 0.1) p.onTick(t + pick(10_000));
        assert.ok(p.bufferedBytes() <= 2 * (65_537 + RESYNC_SCAN_LIMIT));
      }
      p.onClose(t, 'end');
      assert.equal(p.pendingCount(), 0);
      assert.equal(p.stats.internalErrors, 0);
      total += items.length;
    }
    assert.ok(total > 1000);
  });
});

describe('dns: probes', () => {
  test('UDP: real datagrams yes; other protocols and truncated messages no', () => {
    const hint = conn('udp', 40000, 53);
    const noHint = conn('udp', 40000, 9999);
    for (const g of srv.datagrams.slice(0, 10)) assert.equal(dnsDatagramDissector.probe(g.data, noHint), true);
    assert.equal(dnsDatagramDissector.probe(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n'), hint), false);
    assert.equal(dnsDatagramDissector.probe(Buffer.alloc(11), hint), false);
    assert.equal(dnsDatagramDissector.probe(Buffer.alloc(12), hint), false, 'a query that asks nothing');
    const q = srv.datagrams.find((g) => g.dir === 0)!.data;
    assert.equal(dnsDatagramDissector.probe(q.subarray(0, q.length - 3), noHint), false, 'cut short, no port hint');
    const rand = rng(3);
    let yes = 0;
    for (let i = 0; i < 5000; i++) {
      const b = Buffer.from(Array.from({ length: 12 + Math.floor(rand() * 60) }, () => Math.floor(rand() * 256)));
      if (dnsDatagramDissector.probe(b, noHint)) yes++;
    }
    assert.ok(yes < 50, `random datagrams taken for DNS: ${yes} of 5000`);
  });

  test('TCP: a length-prefixed query yes, partial more, HTTP and TLS no', () => {
    const q = framed(srv.datagrams.find((g) => g.dir === 0)!.data);
    assert.equal(probeDnsTcp(q, false), 'yes');
    assert.equal(probeDnsTcp(q.subarray(0, 1), false), 'more');
    assert.equal(probeDnsTcp(q.subarray(0, 10), true), 'more');
    assert.equal(probeDnsTcp(q.subarray(0, 20), false), 'more');
    assert.equal(probeDnsTcp(q.subarray(0, 20), true), 'yes');
    assert.equal(probeDnsTcp(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n'), true), 'no');
    assert.equal(probeDnsTcp(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, 0, 0, 0, 0, 0]), false), 'no');
  });
});
