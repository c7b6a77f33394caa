/**
 * Micro-benchmark of the HTTP/1 dissector for `npm run bench` (never a timed
 * test): N keep-alive transactions through one parser, one onData call per
 * message as a reassembler would hand them, items built and emitted. Also
 * the same bytes through Node's llhttp binding (parse only, no items) as a
 * reference point on the same machine.
 */
import { createRequire } from 'node:module';
import type { ConnectionInfo, DissectorOptions, ItemDraft } from '../types.ts';
import { DEFAULT_DISSECTOR_OPTIONS } from '../types.ts';
import { http1Dissector } from './http1.ts';

const PATHS = ['/api/v1/users/42', '/api/v1/orders?page=2&limit=50', '/healthz', '/api/v1/catalog/items/981?fields=name,price', '/login'];

/** A realistic keep-alive conversation: `count` request/response pairs (GET and POST, JSON bodies, Content-Length). */
export function makeKeepAliveMessages(count: number): { dir: 0 | 1; data: Buffer }[] {
  const out: { dir: 0 | 1; data: Buffer }[] = [];
  for (let i = 0; i < count; i++) {
    const path = PATHS[i % PATHS.length];
    const post = i % 4 === 3;
    const reqBody = post ? JSON.stringify({ id: i, name: `item-${i}`, qty: i % 7 }) : '';
    const req =
      `${post ? 'POST' : 'GET'} ${path} HTTP/1.1\r\nHost: orders.shop.svc.cluster.local:8080\r\nUser-Agent: Go-http-client/1.1\r\n` +
      `Accept: application/json\r\nAccept-Encoding: gzip\r\nX-Request-Id: 5f1c${(i * 7919).toString(16).padStart(8, '0')}-a2b3-4c5d\r\n` +
      (post ? `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(reqBody)}\r\n` : '') +
      `\r\n${reqBody}`;
    const resBody = JSON.stringify({ id: i, ok: true, items: [{ sku: `A-${i}`, price: 12.5 }, { sku: `B-${i}`, price: 3 }] });
    const res =
      `HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nDate: Mon, 02 Jun 2025 10:00:00 GMT\r\n` +
      `Content-Length: ${Buffer.byteLength(resBody)}\r\nConnection: keep-alive\r\n\r\n${resBody}`;
    out.push({ dir: 0, data: Buffer.from(req) }, { dir: 1, data: Buffer.from(res) });
  }
  return out;
}

const CONN: ConnectionInfo = { id: 0, client: { ip: '10.0.0.1', port: 40000 }, server: { ip: '10.0.0.2', port: 8080 }, ipVersion: 4, transport: 'tcp', handshakeSeen: true };

/** Transactions/s of the HTTP/1 dissector: `n` keep-alive transactions through one parser (a pool of 1000 distinct ones reused). */
export function benchHttp1(n = 300_000, opts: DissectorOptions = DEFAULT_DISSECTOR_OPTIONS): { transactionsPerSec: number; items: number } {
  const msgs = makeKeepAliveMessages(1000);
  let items = 0;
  let last: ItemDraft | null = null;
  const sink = { emit: (_c: ConnectionInfo, it: ItemDraft) => { items++; last = it; } };
  const parser = http1Dissector.create({ conn: CONN, sink, opts, switchTo: () => null });
  // warm-up so the JIT has settled before timing
  for (let i = 0; i < 20_000; i++) {
    const m = msgs[i % msgs.length];
    parser.onData(m.dir, m.data, i);
  }
  items = 0;
  const total = n * 2;
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    const m = msgs[i % msgs.length];
    parser.onData(m.dir, m.data, 1e6 + i);
  }
  const ms = performance.now() - t0;
  parser.onClose(2e6 + total, 'fin');
  if (items !== n || last === null) throw new Error(`bench: expected ${n} items, got ${items}`);
  return { transactionsPerSec: Math.round((n / ms) * 1000), items };
}

interface LlParser {
  initialize(type: number, resource: object): void;
  execute(b: Buffer): number | Error;
  [k: number]: unknown;
}

/** The same bytes through Node's llhttp binding, reused parsers, parse only (no items): the reference figure. */
export function benchLlhttpReference(n = 300_000): { transactionsPerSec: number } {
  const require = createRequire(import.meta.url);
  const { HTTPParser } = require('_http_common') as { HTTPParser: { new (): LlParser; REQUEST: number; RESPONSE: number; kOnHeadersComplete: number; kOnBody: number; kOnMessageComplete: number } };
  const msgs = makeKeepAliveMessages(1000);
  let done = 0;
  const mk = (type: number): LlParser => {
    const p = new HTTPParser();
    p.initialize(type, {});
    p[HTTPParser.kOnHeadersComplete] = () => 0;
    p[HTTPParser.kOnBody] = () => {};
    p[HTTPParser.kOnMessageComplete] = () => { done++; };
    return p;
  };
  const parsers = [mk(HTTPParser.REQUEST), mk(HTTPParser.RESPONSE)];
  for (let i = 0; i < 20_000; i++) parsers[msgs[i % msgs.length].dir].execute(msgs[i % msgs.length].data);
  done = 0;
  const total = n * 2;
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    const m = msgs[i % msgs.length];
    parsers[m.dir].execute(m.data);
  }
  const ms = performance.now() - t0;
  if (done !== total) throw new Error(`llhttp bench: ${done} of ${total} messages`);
  return { transactionsPerSec: Math.round((n / ms) * 1000) };
}

/** Prints both figures (for bench/run.ts). */
export function runHttp1Bench(n = Number(process.env.BENCH_HTTP1_TX ?? 300_000)): { http1: number; llhttp: number } {
  const ours = benchHttp1(n);
  const ref = benchLlhttpReference(n);
  console.log(`http1 dissector: ${ours.transactionsPerSec.toLocaleString('en-US')} transactions/s (items built); llhttp parse-only reference: ${ref.transactionsPerSec.toLocaleString('en-US')} transactions/s`);
  return { http1: ours.transactionsPerSec, llhttp: ref.transactionsPerSec };
}
