/**
 * Micro-benchmarks of the DNS dissectors for `npm run bench` (never timed
 * tests): realistic query/response pairs (built with the test kit's
 * encoder from its zone: A, AAAA, CNAME chains, MX, TXT, SRV, SOA, NXDOMAIN,
 * with compression and EDNS) through the UDP dissector (parse, pair, build
 * items), through the TCP parser (length-prefixed, one message per onData),
 * and through the bare message parser.
 */
import type { ConnectionInfo, DissectorOptions, ItemDraft } from '../types.ts';
import { DEFAULT_DISSECTOR_OPTIONS } from '../types.ts';
import { createDnsDatagramDissector, dnsStreamDissector } from './dns.ts';
import { parseDnsMessage } from './dns-message.ts';
import { buildDnsMessage, lookup } from './dns-testkit.ts';

const QUESTIONS: Array<[string, string]> = [
  ['a.example.test', 'A'], ['a.example.test', 'AAAA'], ['www.example.test', 'A'], ['example.test', 'MX'], ['example.test', 'TXT'],
  ['_sip._tcp.example.test', 'SRV'], ['example.test', 'SOA'], ['missing.example.test', 'A'], ['example.test', 'NS'], ['1.2.0.192.in-addr.arpa', 'PTR'],
];

/** `count` query/response pairs with distinct ids. */
export function makeDnsPairs(count: number): Array<{ query: Buffer; response: Buffer }> {
  const out: Array<{ query: Buffer; response: Buffer }> = [];
  for (let i = 0; i < count; i++) {
    const [name, type] = QUESTIONS[i % QUESTIONS.length];
    const id = (i * 7919) & 0xffff;
    const edns = i % 2 === 0 ? 1232 : undefined;
    const z = lookup(name, type);
    out.push({
      query: buildDnsMessage({ id, response: false, rd: true, questions: [{ name, type }], ednsUdpSize: edns }),
      response: buildDnsMessage({ id, response: true, rd: true, ra: true, rcode: z.rcode, questions: [{ name, type }], answers: z.answers, authorities: z.authorities, ednsUdpSize: edns }),
    });
  }
  return out;
}

const UDP: ConnectionInfo = { id: 0, client: { ip: '10.0.0.1', port: 53124 }, server: { ip: '10.96.0.10', port: 53 }, ipVersion: 4, transport: 'udp', handshakeSeen: false };
const TCP: ConnectionInfo = { ...UDP, transport: 'tcp', handshakeSeen: true };

/** DNS messages/s through the UDP dissector (`n` exchanges = 2n messages), items built and emitted. */
export function benchDnsDatagrams(n = 300_000, opts: DissectorOptions = DEFAULT_DISSECTOR_OPTIONS): { messagesPerSec: number; items: number } {
  const pairs = makeDnsPairs(1000);
  const d = createDnsDatagramDissector();
  let items = 0;
  let last: ItemDraft | null = null;
  const sink = { emit: (_c: ConnectionInfo, it: ItemDraft) => { items++; last = it; } };
  for (let i = 0; i < 20_000; i++) {
    const p = pairs[i % pairs.length];
    d.onDatagram(UDP, 0, p.query, i, sink, opts);
    d.onDatagram(UDP, 1, p.response, i, sink, opts);
  }
  items = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const p = pairs[i % pairs.length];
    d.onDatagram(UDP, 0, p.query, 1e6 + i, sink, opts);
    d.onDatagram(UDP, 1, p.response, 1e6 + i, sink, opts);
  }
  const ms = performance.now() - t0;
  d.onEnd(2e6, sink, opts);
  if (items !== n || last === null || (last as ItemDraft).error) throw new Error(`bench: expected ${n} clean items, got ${items}`);
  return { messagesPerSec: Math.round(((2 * n) / ms) * 1000), items };
}

/** DNS messages/s through the TCP parser: length-prefixed, one message per onData call. */
export function benchDnsTcp(n = 300_000, opts: DissectorOptions = DEFAULT_DISSECTOR_OPTIONS): { messagesPerSec: number; items: number } {
  const frame = (m: Buffer) => Buffer.concat([Buffer.from([m.length >> 8, m.length & 0xff]), m]);
  const pairs = makeDnsPairs(1000).map((p) => ({ query: frame(p.query), response: frame(p.response) }));
  let items = 0;
  const sink = { emit: () => { items++; } };
  const parser = dnsStreamDissector.create({ conn: TCP, sink, opts, switchTo: () => null });
  for (let i = 0; i < 20_000; i++) {
    parser.onData(0, pairs[i % pairs.length].query, i);
    parser.onData(1, pairs[i % pairs.length].response, i);
  }
  items = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    parser.onData(0, pairs[i % pairs.length].query, 1e6 + i);
    parser.onData(1, pairs[i % pairs.length].response, 1e6 + i);
  }
  const ms = performance.now() - t0;
  parser.onClose(2e6, 'fin');
  if (items !== n) throw new Error(`bench: expected ${n} items, got ${items}`);
  return { messagesPerSec: Math.round(((2 * n) / ms) * 1000), items };
}

/** Messages/s of the bare parser (no pairing, no items). */
export function benchDnsParse(n = 500_000): { messagesPerSec: number } {
  const msgs = makeDnsPairs(500).flatMap((p) => [p.query, p.response]);
  let sink = 0;
  for (let i = 0; i < 20_000; i++) sink += parseDnsMessage(msgs[i % msgs.length])!.answers.length;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) sink += parseDnsMessage(msgs[i % msgs.length])!.answers.length;
  const ms = performance.now() - t0;
  if (sink < 0) throw new Error('unreachable');
  return { messagesPerSec: Math.round((n / ms) * 1000) };
}

/** Runs the DNS benchmarks and prints them (for bench/run.ts). */
export function runDnsBench(n = 300_000): Record<string, number> {
  const udp = benchDnsDatagrams(n);
  const tcp = benchDnsTcp(n);
  const parse = benchDnsParse(n);
  const fmt = (v: number) => v.toLocaleString('en-US').padStart(12);
  console.log(`\ndns: ${n.toLocaleString('en-US')} query/response exchanges per case (zone records, compression, half with EDNS); node ${process.version}`);
  console.log(`  ${'case'.padEnd(44)} messages/s per core`);
  console.log(`  ${'UDP dissector (parse, pair, items)'.padEnd(44)} ${fmt(udp.messagesPerSec)}`);
  console.log(`  ${'TCP parser (framing, parse, pair, items)'.padEnd(44)} ${fmt(tcp.messagesPerSec)}`);
  console.log(`  ${'message parser only'.padEnd(44)} ${fmt(parse.messagesPerSec)}`);
  return { dnsUdpMessagesPerSec: udp.messagesPerSec, dnsTcpMessagesPerSec: tcp.messagesPerSec, dnsParseMessagesPerSec: parse.messagesPerSec };
}
