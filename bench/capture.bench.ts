/**
 * Offline capture throughput, side by side with tshark, plus the per-stage
 * micro-benchmarks of the capture pipeline.
 *
 * A deterministic pcap of N HTTP/1.1 calls on keep-alive connections is
 * generated once (cached in the temp dir by its parameters): Ethernet/IPv4/TCP
 * frames built with the project's packet builder, with handshakes, seq/ack,
 * MSS-sized segmentation of big bodies, FINs, µs timestamps; requests and
 * responses of ~300-600 bytes (mixed methods incl. HEAD, statuses, JSON bodies,
 * chunked responses, 304/204 without bodies). The generator's ground truth
 * (methods, statuses) is kept beside the file.
 *
 * Then, in the same run:
 *  (a) wirescript: readCaptureFile(speed 'max') -> CapturePipeline, every item
 *      built and JSON.stringify'd (as the capture service does before publishing);
 *      every call must be found: items == N, method/status counts equal the
 *      ground truth, and each response pairs with its request (X-Request-Id).
 *  (b) tshark -r FILE -Y http.response -T fields -e http.response.code, output
 *      lines counted.
 * and the ratio of the two.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { rng } from '@wirescript/testing';
import { CapturePipeline } from '../services/capture/src/pipeline.ts';
import { readCaptureFile } from '../services/capture/src/source/index.ts';
import { PcapWriter } from '../services/capture/src/source/pcap-writer.ts';
import { LINKTYPE } from '../services/capture/src/types.ts';
import { buildFrame } from '../services/capture/src/testing/packet-builder.ts';
import { findTshark } from '../services/capture/src/testing/tshark.ts';
import { benchDecode } from '../services/capture/src/decode/bench.ts';
import { runReassemblyBench } from '../services/capture/src/reassembly/bench.ts';
import { runHttp1Bench } from '../services/capture/src/dissect/http1-bench.ts';
import { runHttp2Bench } from '../services/capture/src/dissect/http2-bench.ts';
import { runDnsBench } from '../services/capture/src/dissect/dns-bench.ts';
import { runRedisBench } from '../services/capture/src/dissect/redis-bench.ts';

/** Bump when the generated traffic changes, so cached files are rebuilt. */
const GENERATOR_VERSION = 1;
const MSS = 1460;
const SERVER_PORT = 8080; // one of tshark's default HTTP ports

export interface CaptureBenchOptions {
  /** HTTP/1.1 calls in the generated pcap (default 100,000). */
  calls?: number;
  /** Keep-alive connections they are spread over (default 100). */
  connections?: number;
  /** Where generated pcaps are cached (default <tmp>/wirescript-bench). */
  cacheDir?: string;
  /** Run the per-stage micro-benchmarks too (default true). */
  micro?: boolean;
  /** Upper bound on tshark's run, seconds (default 240). */
  tsharkTimeoutSec?: number;
}

/** What the generator put in the file: the ground truth the capture is checked against. */
export interface GroundTruth {
  version: number;
  calls: number;
  connections: number;
  frames: number;
  fileBytes: number;
  methods: Record<string, number>;
  statuses: Record<string, number>;
  headReplies: number;
  chunkedResponses: number;
  /** Calls whose request or response needed more than one MSS-sized segment. */
  multiSegmentCalls: number;
  /** Responses without a body by definition (HEAD, 204, 304). */
  bodilessResponses: number;
  avgRequestBytes: number;
  avgResponseBytes: number;
}

// ---------------------------------------------------------------------------
// Traffic generator
// ---------------------------------------------------------------------------

const STATUS_TEXT: Record<number, string> = {
  200: 'OK', 201: 'Created', 204: 'No Content', 304: 'Not Modified', 400: 'Bad Request', 401: 'Unauthorized',
  404: 'Not Found', 409: 'Conflict', 500: 'Internal Server Error', 503: 'Service Unavailable',
};

interface Service {
  host: string;
  ip: string;
  /** Paths of a collection and of one element (id appended). */
  collection: string;
  element: string;
}

const SERVICES: Service[] = [
  { host: 'orders.shop.svc.cluster.local:8080', ip: '10.96.12.34', collection: '/api/v1/orders', element: '/api/v1/orders/' },
  { host: 'users.auth.svc.cluster.local:8080', ip: '10.96.40.7', collection: '/api/v1/users', element: '/api/v1/users/' },
  { host: 'catalog.shop.svc.cluster.local:8080', ip: '10.96.88.120', collection: '/api/v1/catalog/items', element: '/api/v1/catalog/items/' },
  { host: 'payments.billing.svc.cluster.local:8080', ip: '10.96.3.201', collection: '/api/v2/payments', element: '/api/v2/payments/' },
  { host: 'inventory.shop.svc.cluster.local:8080', ip: '10.96.71.15', collection: '/api/v1/stock', element: '/api/v1/stock/sku-' },
];
const AGENTS = ['Go-http-client/1.1', 'okhttp/4.12.0', 'python-requests/2.31.0', 'axios/1.6.8', 'Java-http-client/17.0.9'];
const NAMES = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet'];

interface Call {
  method: string;
  status: number;
  request: Buffer;
  response: Buffer;
  chunked: boolean;
}

function hex(random: () => number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += '0123456789abcdef'[Math.floor(random() * 16)];
  return s;
}

function pick<T>(random: () => number, xs: readonly T[]): T {
  return xs[Math.floor(random() * xs.length)];
}

function itemJson(random: () => number, id: number): Record<string, unknown> {
  return { id, name: `${pick(random, NAMES)}-${id % 997}`, price: Math.round(random() * 10_000) / 100, qty: Math.floor(random() * 40), tags: [pick(random, NAMES), pick(random, NAMES)] };
}

/** One call of a conversation; `callId` is unique in the capture (it rides in X-Request-Id both ways). */
function makeCall(random: () => number, svc: Service, agent: string, token: string, callId: number, dateText: string): Call {
  const r = random();
  const method = r < 0.5 ? 'GET' : r < 0.68 ? 'POST' : r < 0.76 ? 'PUT' : r < 0.82 ? 'DELETE' : r < 0.86 ? 'PATCH' : r < 0.93 ? 'HEAD' : 'OPTIONS';
  const id = 1000 + Math.floor(random() * 90_000);
  const reqId = `${callId.toString(16).padStart(8, '0')}-${hex(random, 4)}-4${hex(random, 3)}`;
  const big = random() < 0.04; // a body bigger than one segment
  let target = method === 'POST' || (method === 'GET' && random() < 0.35) ? svc.collection : svc.element + id;
  if (method === 'GET' && target === svc.collection) target += `?page=${1 + Math.floor(random() * 20)}&limit=${pick(random, [20, 50, 100])}&sort=${pick(random, ['created', '-price', 'name'])}`;
  let reqBody = '';
  if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
    const o: Record<string, unknown> = method === 'PATCH' ? { qty: Math.floor(random() * 9) } : itemJson(random, id);
    if (big && method !== 'PATCH') o.lines = Array.from({ length: 12 + Math.floor(random() * 20) }, (_, k) => itemJson(random, id + k));
    reqBody = JSON.stringify(o);
  }
  const conditional = method === 'GET' && random() < 0.05;
  let req =
    `${method} ${target} HTTP/1.1\r\nHost: ${svc.host}\r\nUser-Agent: ${agent}\r\nAccept: application/json\r\nAccept-Encoding: gzip\r\n` +
    `Authorization: Bearer ${token}\r\nX-Request-Id: ${reqId}\r\ntraceparent: 00-${hex(random, 32)}-${hex(random, 16)}-01\r\n`;
  if (conditional) req += `If-None-Match: "${hex(random, 16)}"\r\n`;
  if (method === 'OPTIONS') req += `Origin: https://shop.example.com\r\nAccess-Control-Request-Method: POST\r\n`;
  if (reqBody.length > 0) req += `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(reqBody)}\r\n`;
  req += `\r\n${reqBody}`;

  // Status, then the response body it comes with.
  const s = random();
  let status: number;
  switch (method) {
    case 'GET': status = conditional ? 304 : s < 0.84 ? 200 : s < 0.92 ? 404 : s < 0.95 ? 401 : s < 0.98 ? 500 : 503; break;
    case 'POST': status = s < 0.72 ? 201 : s < 0.85 ? 200 : s < 0.95 ? 400 : 409; break;
    case 'PUT': case 'PATCH': status = s < 0.88 ? 200 : s < 0.96 ? 400 : 404; break;
    case 'DELETE': status = s < 0.85 ? 204 : 404; break;
    case 'HEAD': status = s < 0.9 ? 200 : 404; break;
    default: status = 204;
  }
  let body = '';
  if (status === 200 || status === 201) {
    if (method === 'GET' && target.includes('?')) {
      const n = big ? 25 + Math.floor(random() * 40) : 2;
      body = JSON.stringify({ items: Array.from({ length: n }, (_, k) => itemJson(random, id + k)), page: 1, next: `${svc.collection}?page=2` });
    } else {
      const o = itemJson(random, id);
      if (big) o.history = Array.from({ length: 20 + Math.floor(random() * 30) }, (_, k) => ({ at: 1_700_000_000 + k * 60, event: pick(random, NAMES) }));
      body = JSON.stringify({ ...o, updatedAt: '2025-06-13T10:00:00Z', etag: hex(random, 16) });
    }
  } else if (status >= 400) {
    const code = { 400: 'invalid_argument', 401: 'unauthenticated', 404: 'not_found', 409: 'already_exists', 500: 'internal', 503: 'unavailable' }[status as 400];
    body = JSON.stringify({ error: code, message: `${STATUS_TEXT[status].toLowerCase()}: ${target}`, requestId: reqId });
  }
  const head = method === 'HEAD';
  const chunked = !head && body.length > 0 && random() < 0.1;
  let res =
    `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\nDate: ${dateText}\r\nServer: envoy\r\nX-Request-Id: ${reqId}\r\n` +
    `x-envoy-upstream-service-time: ${1 + Math.floor(random() * 40)}\r\n`;
  if (status === 304) res += `ETag: "${hex(random, 16)}"\r\nCache-Control: max-age=60\r\n\r\n`;
  else if (status === 204 && method === 'OPTIONS') res += `Allow: GET, POST, PUT, DELETE, OPTIONS\r\nAccess-Control-Allow-Origin: https://shop.example.com\r\nAccess-Control-Max-Age: 600\r\n\r\n`;
  else if (status === 204) res += `\r\n`;
  else if (head) {
    // A HEAD reply says how long the body would be, and sends none.
    const wouldBe = status === 200 ? 180 + Math.floor(random() * 300) : 70 + Math.floor(random() * 30);
    res += `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${wouldBe}\r\nCache-Control: no-store\r\n\r\n`;
  } else if (chunked) {
    const b = Buffer.from(body);
    const cut1 = Math.floor(b.length / 3);
    const cut2 = Math.floor((2 * b.length) / 3);
    const parts = [b.subarray(0, cut1), b.subarray(cut1, cut2), b.subarray(cut2)].filter((p) => p.length > 0);
    res += `Content-Type: application/json; charset=utf-8\r\nTransfer-Encoding: chunked\r\nCache-Control: no-store\r\n\r\n`;
    for (const p of parts) res += `${p.length.toString(16)}\r\n${p.toString()}\r\n`;
    res += '0\r\n\r\n';
  } else {
    res += `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\n\r\n${body}`;
  }
  return { method, status, request: Buffer.from(req), response: Buffer.from(res), chunked };
}

interface Conn {
  client: string;
  clientPort: number;
  server: string;
  /** Next sequence number each side sends (unsigned 32-bit). */
  cseq: number;
  sseq: number;
  cipId: number;
  sipId: number;
  svc: Service;
  agent: string;
  token: string;
  calls: number;
}

/**
 * Writes the pcap and returns its ground truth. Connections are interleaved:
 * all handshakes, then rounds in which every connection with calls left sends
 * one request (in a shuffled order), then the responses come back (in another
 * order), each followed by the client's ACK; then FIN/FIN/ACK.
 */
export async function generateHttp1Pcap(file: string, calls: number, connections: number): Promise<GroundTruth> {
  const random = rng(20250613);
  const nConn = Math.max(1, Math.min(connections, calls));
  const conns: Conn[] = [];
  for (let i = 0; i < nConn; i++) {
    const svc = SERVICES[i % SERVICES.length];
    conns.push({
      client: `10.244.${1 + (i >> 8)}.${(i & 0xff) + 1}`,
      clientPort: 40000 + i,
      server: svc.ip,
      // One connection's sequence numbers wrap past 2^32 mid-conversation.
      cseq: i === 7 ? 0xfff00000 : Math.floor(random() * 0x100000000) >>> 0,
      sseq: Math.floor(random() * 0x100000000) >>> 0,
      cipId: Math.floor(random() * 0xffff),
      sipId: Math.floor(random() * 0xffff),
      svc,
      agent: AGENTS[i % AGENTS.length],
      token: `eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.${Buffer.from(JSON.stringify({ sub: `svc-${i}`, aud: svc.host.split('.')[0] })).toString('base64url')}.${hex(random, 43)}`,
      calls: Math.floor(calls / nConn) + (i < calls % nConn ? 1 : 0),
    });
  }
  const truth: GroundTruth = {
    version: GENERATOR_VERSION, calls, connections: nConn, frames: 0, fileBytes: 0, methods: {}, statuses: {},
    headReplies: 0, chunkedResponses: 0, multiSegmentCalls: 0, bodilessResponses: 0, avgRequestBytes: 0, avgResponseBytes: 0,
  };
  const writer = new PcapWriter(file, { linkType: LINKTYPE.ETHERNET, resolution: 'us', bufferBytes: 4 << 20 });
  let us = 1_749_808_800_000_000; // 2025-06-13T10:00:00Z, in µs
  const step = () => { us += 2 + Math.floor(random() * 18); };
  const put = (c: Conn, fromClient: boolean, flags: string, payload?: Buffer, options?: Uint8Array) => {
    const data = buildFrame({
      link: 'ethernet',
      srcMac: fromClient ? '02:42:0a:f4:00:01' : '02:42:0a:60:00:01',
      dstMac: fromClient ? '02:42:0a:60:00:01' : '02:42:0a:f4:00:01',
      ip: { version: 4, src: fromClient ? c.client : c.server, dst: fromClient ? c.server : c.client, id: fromClient ? c.cipId++ : c.sipId++, dontFragment: true },
      tcp: {
        srcPort: fromClient ? c.clientPort : SERVER_PORT, dstPort: fromClient ? SERVER_PORT : c.clientPort,
        seq: fromClient ? c.cseq : c.sseq, ack: flags === 'S' ? 0 : fromClient ? c.sseq : c.cseq, flags, window: 64240, options, payload,
      },
    });
    step();
    writer.writeFrame({ tsMs: us / 1000, length: data.length, linkType: LINKTYPE.ETHERNET, data });
    const len = (payload?.length ?? 0) + (flags.includes('S') || flags.includes('F') ? 1 : 0);
    if (fromClient) c.cseq = (c.cseq + len) >>> 0;
    else c.sseq = (c.sseq + len) >>> 0;
  };
  /** One message in MSS-sized segments, PSH on the last; the receiver ACKs every second segment. */
  const send = (c: Conn, fromClient: boolean, msg: Buffer) => {
    for (let off = 0, k = 0; off < msg.length; off += MSS, k++) {
      const end = Math.min(msg.length, off + MSS);
      put(c, fromClient, end === msg.length ? 'PA' : 'A', msg.subarray(off, end));
      if (k % 2 === 1 && end < msg.length) put(c, !fromClient, 'A');
    }
  };
  const mssOpt = Uint8Array.from([2, 4, MSS >> 8, MSS & 0xff]);
  const order = conns.map((_, i) => i);
  const shuffle = () => {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
  };
  shuffle();
  for (const i of order) {
    const c = conns[i];
    put(c, true, 'S', undefined, mssOpt);
    put(c, false, 'SA', undefined, mssOpt);
    put(c, true, 'A');
  }
  let callId = 0;
  let reqBytes = 0;
  let resBytes = 0;
  const maxRounds = Math.max(...conns.map((c) => c.calls));
  const inFlight: (Call | null)[] = new Array<Call | null>(nConn).fill(null);
  for (let round = 0; round < maxRounds; round++) {
    const dateText = new Date(us / 1000).toUTCString();
    shuffle();
    for (const i of order) {
      const c = conns[i];
      if (round >= c.calls) continue;
      const call = makeCall(random, c.svc, c.agent, c.token, callId++, dateText);
      inFlight[i] = call;
      send(c, true, call.request);
    }
    shuffle();
    for (const i of order) {
      const call = inFlight[i];
      if (call === null) continue;
      inFlight[i] = null;
      const c = conns[i];
      send(c, false, call.response);
      put(c, true, 'A');
      truth.methods[call.method] = (truth.methods[call.method] ?? 0) + 1;
      truth.statuses[call.status] = (truth.statuses[call.status] ?? 0) + 1;
      if (call.method === 'HEAD') truth.headReplies++;
      if (call.chunked) truth.chunkedResponses++;
      if (call.method === 'HEAD' || call.status === 204 || call.status === 304) truth.bodilessResponses++;
      if (call.request.length > MSS || call.response.length > MSS) truth.multiSegmentCalls++;
      reqBytes += call.request.length;
      resBytes += call.response.length;
    }
    us += 50 + Math.floor(random() * 200); // between rounds
  }
  shuffle();
  for (const i of order) {
    const c = conns[i];
    put(c, true, 'FA');
    put(c, false, 'FA');
    put(c, true, 'A');
  }
  await writer.close();
  truth.frames = writer.framesWritten;
  truth.fileBytes = writer.bytesWritten;
  truth.avgRequestBytes = Math.round(reqBytes / calls);
  truth.avgResponseBytes = Math.round(resBytes / calls);
  return truth;
}

/** The cached pcap for these parameters, generated when missing or stale. */
export async function http1Pcap(calls: number, connections: number, cacheDir = path.join(os.tmpdir(), 'wirescript-bench')): Promise<{ file: string; truth: GroundTruth; cached: boolean; genSeconds: number }> {
  fs.mkdirSync(cacheDir, { recursive: true });
  const base = path.join(cacheDir, `http1-keepalive-v${GENERATOR_VERSION}-${calls}calls-${connections}conns`);
  const file = `${base}.pcap`;
  const truthFile = `${base}.json`;
  try {
    const truth = JSON.parse(fs.readFileSync(truthFile, 'utf8')) as GroundTruth;
    if (truth.version === GENERATOR_VERSION && truth.calls === calls && fs.statSync(file).size === truth.fileBytes) return { file, truth, cached: true, genSeconds: 0 };
  } catch {
    // not cached yet (or damaged): generate
  }
  const t0 = performance.now();
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    const truth = await generateHttp1Pcap(tmp, calls, connections);
    fs.renameSync(tmp, file);
    fs.writeFileSync(truthFile, JSON.stringify(truth, null, 2));
    return { file, truth, cached: false, genSeconds: (performance.now() - t0) / 1000 };
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

// ---------------------------------------------------------------------------
// The two sides
// ---------------------------------------------------------------------------

interface WirescriptResult {
  items: number;
  itemsWithErrors: number;
  firstErrors: string[];
  /** Items whose response's X-Request-Id differs from the request's (mispaired), or that lack one side. */
  mispaired: number;
  methods: Record<string, number>;
  statuses: Record<string, number>;
  jsonBytes: number;
  wallSec: number;
  cpuSec: number;
  frames: number;
  stats: Record<string, number>;
}

function header(h: unknown, name: string): unknown {
  if (h === null || typeof h !== 'object') return undefined;
  const o = h as Record<string, unknown>;
  return o[name] ?? o[name.toLowerCase()];
}

async function runWirescript(file: string, serialize = true): Promise<WirescriptResult> {
  const r: WirescriptResult = { items: 0, itemsWithErrors: 0, firstErrors: [], mispaired: 0, methods: {}, statuses: {}, jsonBytes: 0, wallSec: 0, cpuSec: 0, frames: 0, stats: {} };
  const pipeline = new CapturePipeline({
    node: { name: 'bench', ip: '10.0.0.1' },
    worker: 'bench',
    onItem: (it) => {
      // What the service does before publishing: the whole item as JSON text.
      if (serialize) r.jsonBytes += JSON.stringify(it.item).length;
      r.items++;
      const item = it.item as { request: Record<string, unknown> | null; response: Record<string, unknown> | null; error: string | null };
      if (item.error) {
        r.itemsWithErrors++;
        if (r.firstErrors.length < 5) r.firstErrors.push(item.error);
      }
      const req = item.request;
      const res = item.response;
      if (req) r.methods[req.method as string] = (r.methods[req.method as string] ?? 0) + 1;
      if (res) r.statuses[String(res.status)] = (r.statuses[String(res.status)] ?? 0) + 1;
      const a = header(req?.headers, 'X-Request-Id');
      if (a === undefined || a !== header(res?.headers, 'X-Request-Id')) r.mispaired++;
    },
  });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const summary = await readCaptureFile(file, (f) => pipeline.onFrame(f), { speed: 'max' });
  pipeline.end();
  r.wallSec = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  r.cpuSec = (cpu.user + cpu.system) / 1e6;
  r.frames = summary.frames;
  r.stats = pipeline.stats();
  return r;
}

interface TsharkResult {
  lines: number;
  /** Response codes found (a line may hold several, comma-joined). */
  codes: Record<string, number>;
  wallSec: number;
  /** tshark's own user+system CPU (from the shell's `times`), when it could be read. */
  cpuSec: number | null;
  exitCode: number | null;
  timedOut: boolean;
  stderrTail: string;
}

async function runTshark(bin: string, file: string, timeoutSec: number): Promise<TsharkResult> {
  // Exactly: tshark -r FILE -Y http.response -T fields -e http.response.code; the shell only adds `times` for its CPU.
  const child = spawn('/bin/bash', ['-c', '"$0" -r "$1" -Y http.response -T fields -e http.response.code; rc=$?; times >&2; exit $rc', bin, file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const r: TsharkResult = { lines: 0, codes: {}, wallSec: 0, cpuSec: null, exitCode: null, timedOut: false, stderrTail: '' };
  let rest = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (s: string) => {
    const text = rest + s;
    const lines = text.split('\n');
    rest = lines.pop() ?? '';
    for (const l of lines) {
      if (l === '') continue;
      r.lines++;
      for (const code of l.split(',')) r.codes[code] = (r.codes[code] ?? 0) + 1;
    }
  });
  let err = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => { err = (err + s).slice(-4000); });
  const t0 = performance.now();
  const timer = setTimeout(() => { r.timedOut = true; child.kill('SIGKILL'); }, timeoutSec * 1000);
  r.exitCode = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  clearTimeout(timer);
  r.wallSec = (performance.now() - t0) / 1000;
  if (rest !== '') {
    r.lines++;
    for (const code of rest.split(',')) r.codes[code] = (r.codes[code] ?? 0) + 1;
  }
  // `times` prints the shell's user/sys, then its children's: "0m10.512s 0m0.830s".
  const m = /(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s\s*$/.exec(err.trimEnd());
  if (m) r.cpuSec = Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]);
  r.stderrTail = err.split('\n').filter((l) => l.trim() !== '' && !/Running as user|^\d+m[\d.]+s/.test(l)).slice(-3).join(' | ');
  return r;
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

const n0 = (v: number) => Math.round(v).toLocaleString('en-US');
const n1 = (v: number) => v.toLocaleString('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const n2 = (v: number) => v.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

function countsLine(counts: Record<string, number>): string {
  return Object.entries(counts).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${n0(v)}`).join(', ');
}

/** Differences found - expected, per key, for keys that differ. */
function diff(expected: Record<string, number>, found: Record<string, number>): string {
  const keys = new Set([...Object.keys(expected), ...Object.keys(found)]);
  const out: string[] = [];
  for (const k of [...keys].sort()) {
    const d = (found[k] ?? 0) - (expected[k] ?? 0);
    if (d !== 0) out.push(`${k} ${d > 0 ? '+' : ''}${n0(d)}`);
  }
  return out.join(', ');
}

export interface CaptureBenchResult extends Record<string, number | boolean | null> {
  itemsPerSec: number;
  mbPerSec: number;
  tsharkResponsesPerSec: number | null;
  ratio: number | null;
  everyCallFound: boolean;
}

export async function runCaptureBench(opts: CaptureBenchOptions = {}): Promise<CaptureBenchResult> {
  const calls = opts.calls ?? 100_000;
  const connections = opts.connections ?? 100;
  if (!Number.isInteger(calls) || calls < 1) throw new RangeError(`capture bench: calls must be a positive integer (BENCH_CAPTURE_CALLS), got ${calls}`);
  if (!Number.isInteger(connections) || connections < 1) throw new RangeError(`capture bench: connections must be a positive integer, got ${connections}`);
  const { file, truth, cached, genSeconds } = await http1Pcap(calls, connections, opts.cacheDir);
  const mb = truth.fileBytes / 1e6;
  console.log(`\ncapture (offline): ${n0(calls)} HTTP/1.1 calls on ${n0(truth.connections)} keep-alive connections; node ${process.version}, 1 thread; ` +
    `machine load ${os.loadavg()[0].toFixed(1)} on ${os.availableParallelism()} cores`);
  console.log(`  pcap: ${file} (${n1(mb)} MB, ${n0(truth.frames)} frames, ${cached ? 'cached' : `generated in ${n1(genSeconds)} s`})`);
  console.log(`  traffic: requests ${truth.avgRequestBytes} B, responses ${truth.avgResponseBytes} B on average; ${n0(truth.headReplies)} HEAD replies, ` +
    `${n0(truth.chunkedResponses)} chunked, ${n0(truth.bodilessResponses)} without body (HEAD/204/304), ${n0(truth.multiSegmentCalls)} calls over several segments`);
  console.log(`  ground truth: methods ${countsLine(truth.methods)}`);
  console.log(`                statuses ${countsLine(truth.statuses)}`);

  const ws = await runWirescript(file);
  const tsharkBin = findTshark();
  const ts = tsharkBin === null ? null : await runTshark(tsharkBin, file, opts.tsharkTimeoutSec ?? 240);
  const tsOk = ts !== null && ts.exitCode === 0 && !ts.timedOut;

  const wsRate = ws.items / ws.wallSec;
  const wsMb = mb / ws.wallSec;
  const tsRate = tsOk ? ts.lines / ts.wallSec : null;
  const tsMb = tsOk ? mb / ts.wallSec : null;
  const methodDiff = diff(truth.methods, ws.methods);
  const statusDiff = diff(truth.statuses, ws.statuses);
  const everyCallFound = ws.items === calls && ws.itemsWithErrors === 0 && ws.mispaired === 0 && methodDiff === '' && statusDiff === '';

  const col = (a: string, b: string) => `${a.padStart(16)} ${b.padStart(16)}`;
  const row = (label: string, a: string, b: string) => console.log(`  ${label.padEnd(40)} ${col(a, b)}`);
  const tsCol = (f: (t: TsharkResult) => string) => (ts === null ? 'not installed' : ts.timedOut ? 'timed out' : ts.exitCode !== 0 ? `exit ${ts.exitCode}` : f(ts));
  console.log(`  ${''.padEnd(40)} ${col('wirescript', 'tshark')}`);
  row('calls found (items / response lines)', n0(ws.items), tsCol((t) => n0(t.lines)));
  row('items with errors', n0(ws.itemsWithErrors), '-');
  row('wall time, s', n2(ws.wallSec), tsCol((t) => n2(t.wallSec)));
  row('CPU time, s (user+sys)', n2(ws.cpuSec), tsCol((t) => (t.cpuSec === null ? '?' : n2(t.cpuSec))));
  row('calls/s (wall)', n0(wsRate), tsCol(() => n0(tsRate!)));
  row('MB/s of pcap (wall)', n1(wsMb), tsCol(() => n1(tsMb!)));
  row('item JSON produced, MB', n1(ws.jsonBytes / 1e6), '-');
  // The same run with items built but not serialized: the issue's measure ("full items built");
  // the service also JSON-serializes each item to publish it, shown beside it.
  const bare = await runWirescript(file, false);
  if (tsOk && tsRate !== null) {
    const bareRate = bare.items / bare.wallSec;
    const builtRatio = bareRate / tsRate;
    const ratio = wsRate / tsRate;
    const cpuRatio = ts.cpuSec === null ? null : (bare.items / bare.cpuSec) / (ts.lines / ts.cpuSec);
    console.log(`  items built (not serialized): ${n2(bare.wallSec)} s wall, ${n0(bareRate)} calls/s: x${n1(builtRatio)} tshark` +
      (cpuRatio === null ? '' : ` (x${n1(cpuRatio)} per CPU-second)`) + `; target >= x15 on one core with full items built: ${builtRatio >= 15 ? 'met' : 'NOT met'}`);
    console.log(`  items built and JSON-serialized as the service publishes them: x${n1(ratio)} tshark in calls/s, x${n1(ts.wallSec / ws.wallSec)} in MB/s` +
      `; serializing is ~${Math.round(Math.max(0, 1 - bare.cpuSec / ws.cpuSec) * 100)}% of that CPU time`);
  } else if (ts === null) {
    console.log('  tshark: not installed (apt-get install tshark): the tshark column and the ratio are skipped');
  } else {
    console.log(`  tshark: failed (${ts.timedOut ? 'timed out' : `exit code ${ts.exitCode}`}): ${ts.stderrTail}`);
  }
  if (everyCallFound) {
    console.log(`  wirescript found every call: ${n0(ws.items)} items, none with an error, methods and statuses equal to the ground truth, every response paired with its request`);
  } else {
    console.log(`  wirescript DID NOT find every call: ${n0(ws.items)} items of ${n0(calls)}, ${n0(ws.itemsWithErrors)} with errors, ${n0(ws.mispaired)} mispaired/half`);
    if (methodDiff) console.log(`    methods found - expected: ${methodDiff}`);
    if (statusDiff) console.log(`    statuses found - expected: ${statusDiff}`);
    for (const e of ws.firstErrors) console.log(`    error: ${e}`);
    const st = ws.stats;
    console.log(`    pipeline: frames ${n0(st.packets_received)}, gaps ${n0(st.reassembly_tcpGaps ?? 0)}, unrecognized streams ${n0(st.reassembly_tcpUnrecognizedStreams ?? 0)}, parser errors ${n0(st.reassembly_parserErrors ?? 0)}`);
  }
  if (tsOk) {
    const missed = calls - ts.lines;
    const byStatus = diff(truth.statuses, ts.codes);
    console.log(`  tshark ${missed === 0 ? 'found every response' : `missed ${n0(missed)} of ${n0(calls)} responses (${n1((missed / calls) * 100)}%)`}${byStatus ? `; codes found - expected: ${byStatus}` : ''}`);
    if (missed > 0) console.log(`    (a HEAD reply declares a Content-Length but carries no body; tshark, not pairing it with its request, takes the next response(s) as that body)`);
  }

  let micro: Record<string, number> = {};
  if (opts.micro !== false) micro = await runMicroBenches();
  return {
    itemsPerSec: wsRate, mbPerSec: wsMb, tsharkResponsesPerSec: tsRate, ratio: tsRate === null ? null : wsRate / tsRate, everyCallFound,
    ...micro,
  };
}

/** The per-stage micro-benchmarks other engineers exported, at sizes that keep `npm run bench` short. */
export async function runMicroBenches(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  console.log('\ncapture stages (micro-benchmarks, one core each):');
  out.decodeFramesPerSec = benchDecode(2_000_000);
  console.log(`decode: Ethernet/IPv4/TCP frames with a 512-byte payload: ${n0(out.decodeFramesPerSec)} frames/s`);
  const re = await runReassemblyBench(600_000, 1460, 10_000);
  out.reassemblySegmentsPerSec = re.segmentsPerSec;
  out.reassemblyManyFlowsSegmentsPerSec = re.manyFlowsSegmentsPerSec;
  console.log('');
  const h1 = runHttp1Bench(150_000);
  out.http1TransactionsPerSec = h1.http1;
  out.llhttpTransactionsPerSec = h1.llhttp;
  console.log(`  http1 dissector / llhttp parse-only: x${n2(h1.http1 / h1.llhttp)}`);
  const h2 = await runHttp2Bench(5_000, 3, 'http');
  out.http2StreamsPerSec = h2.streamsPerSec;
  const grpc = await runHttp2Bench(5_000, 3, 'grpc');
  out.grpcCallsPerSec = grpc.streamsPerSec;
  Object.assign(out, runDnsBench(100_000));
  Object.assign(out, runRedisBench(100_000));
  return out;
}

if (import.meta.main) await runCaptureBench({ calls: Number(process.argv[2] ?? process.env.BENCH_CAPTURE_CALLS ?? 100_000) });
