/**
 * Test helpers for the HTTP/1 dissector: real loopback traffic recorded by
 * the TCP recorder, replayed into a parser with a collecting sink.
 */
import http from 'node:http';
import net from 'node:net';
import zlib from 'node:zlib';
import { startTcpRecorder, type RecordedChunk, type RecordedConnection } from '@wirescript/testing';
import type { ConnectionInfo, Direction, DissectorOptions, ItemDraft, StreamParser } from '../types.ts';
import { DEFAULT_DISSECTOR_OPTIONS } from '../types.ts';
import { http1Dissector } from './http1.ts';

export const CONN: ConnectionInfo = {
  id: 7,
  client: { ip: '127.0.0.1', port: 50000 },
  server: { ip: '127.0.0.1', port: 8080 },
  ipVersion: 4,
  transport: 'tcp',
  handshakeSeen: true,
};

export interface Harness {
  parser: StreamParser;
  items: ItemDraft[];
  /** Names passed to ctx.switchTo. */
  switched: string[];
}

/** A parser of the dissector with a sink collecting items; `switchTo` answers ctx.switchTo. */
export function harness(opts: Partial<DissectorOptions> = {}, switchTo: (name: string) => StreamParser | null = () => null, conn: ConnectionInfo = CONN): Harness {
  const items: ItemDraft[] = [];
  const switched: string[] = [];
  const parser = http1Dissector.create({
    conn,
    sink: { emit: (c, item) => { if (c !== conn) throw new Error('wrong connection'); items.push(item); } },
    opts: { ...DEFAULT_DISSECTOR_OPTIONS, ...opts },
    switchTo: (name) => { switched.push(name); return switchTo(name); },
  });
  return { parser, items, switched };
}

export interface FeedOptions {
  /** Split every chunk into pieces of this many bytes (1: byte at a time). */
  pieceSize?: number;
  /** Swap directions (what the reassembly does when it guessed client/server wrongly). */
  swap?: boolean;
  /** Close reason (default 'fin'); null: do not close. */
  close?: 'fin' | 'rst' | 'timeout' | 'end' | null;
}

/** Replays recorded chunks (copied per call: the parser may only keep copies). */
export function feed(h: Harness, chunks: readonly RecordedChunk[], o: FeedOptions = {}): ItemDraft[] {
  const piece = o.pieceSize ?? 0;
  let last = 0;
  for (const c of chunks) {
    const dir = (o.swap ? 1 - c.dir : c.dir) as Direction;
    last = c.tsMs;
    if (piece > 0) {
      for (let i = 0; i < c.data.length; i += piece) give(h.parser, dir, c.data.subarray(i, i + piece), c.tsMs);
    } else give(h.parser, dir, c.data, c.tsMs);
  }
  if (o.close !== null) h.parser.onClose(last + 1, o.close ?? 'fin');
  return h.items;
}

/** onData with a copy that is overwritten after the call: a parser keeping a reference instead of a copy fails the tests. */
export function give(p: StreamParser, dir: Direction, b: Buffer, ts: number): void {
  const c = Buffer.from(b);
  p.onData(dir, c, ts);
  c.fill(0x23);
}

/** Merges the chunks of one recorded connection into one chunk per direction change (as a coarse reassembler would). */
export function coalesce(chunks: readonly RecordedChunk[]): RecordedChunk[] {
  const out: RecordedChunk[] = [];
  for (const c of chunks) {
    const last = out[out.length - 1];
    if (last !== undefined && last.dir === c.dir) last.data = Buffer.concat([last.data, c.data]);
    else out.push({ dir: c.dir, data: Buffer.from(c.data), tsMs: c.tsMs });
  }
  return out;
}

/** Strictly increasing times (the recorder's Date.now() may repeat within a millisecond). */
export function retime(chunks: readonly RecordedChunk[], start = 1_700_000_000_000): RecordedChunk[] {
  return chunks.map((c, i) => ({ dir: c.dir, data: c.data, tsMs: start + i }));
}

export interface Recording {
  connections: RecordedConnection[];
}

/**
 * Runs `client(port)` against `server` (an http.Server or net.Server, not
 * listening yet) through the recording proxy; returns the recorded
 * connections once every one of them has closed.
 */
export async function record(server: http.Server | net.Server, client: (port: number) => Promise<void>): Promise<Recording> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  const rec = await startTcpRecorder({ port });
  try {
    await client(rec.port);
    // idle keep-alive sockets would otherwise stay open for the server's keep-alive timeout
    if ('closeIdleConnections' in server) server.closeIdleConnections();
    await withTimeout(Promise.all(rec.connections.map((c) => c.closed)), 10_000, 'recorded connections did not close');
    return { connections: rec.connections };
  } finally {
    await rec.close();
    if ('closeAllConnections' in server) server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

/** One raw exchange: connect, write `parts` (with a pause between them), read until the server closes or `untilBytes` arrive, then end. */
export async function rawClient(port: number, parts: readonly (string | Buffer)[], o: { pauseMs?: number; untilBytes?: number; endAfter?: boolean } = {}): Promise<Buffer> {
  const sock = net.connect(port, '127.0.0.1');
  const got: Buffer[] = [];
  let total = 0;
  const done = new Promise<void>((resolve) => {
    sock.on('data', (d: Buffer) => {
      got.push(d);
      total += d.length;
      if (o.untilBytes !== undefined && total >= o.untilBytes) resolve();
    });
    sock.on('close', () => resolve());
    sock.on('error', () => resolve());
  });
  await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
  for (const p of parts) {
    sock.write(p);
    if (o.pauseMs) await new Promise((r) => setTimeout(r, o.pauseMs));
  }
  await withTimeout(done, 10_000, 'raw client response');
  sock.end();
  await withTimeout(new Promise<void>((r) => (sock.closed ? r() : sock.once('close', () => r()))), 10_000, 'raw client close');
  return Buffer.concat(got);
}

/** An http.Agent with one keep-alive socket, so requests share a connection. */
export function keepAliveAgent(): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: 1 });
}

/** A request through node:http, resolving with the status, headers and body bytes. */
export function request(port: number, o: http.RequestOptions & { body?: string | Buffer }): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer; trailers: NodeJS.Dict<string> }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, ...o }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts), trailers: res.trailers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (o.body !== undefined) req.end(o.body);
    else req.end();
  });
}

/** A StreamParser that records what it is given (the h2c target in tests). */
export function recordingParser(): StreamParser & { data: Buffer[][]; gaps: number; closed: string } {
  const r = {
    data: [[], []] as Buffer[][],
    gaps: 0,
    closed: '',
    onData(dir: Direction, d: Buffer) { r.data[dir].push(Buffer.from(d)); },
    onGap() { r.gaps++; },
    onTick() {},
    onClose(_ts: number, reason: string) { r.closed = reason; },
  };
  return r;
}

export function req(item: ItemDraft): Record<string, any> {
  if (item.request === null) throw new Error(`item without request: ${JSON.stringify(item)}`);
  return item.request as Record<string, any>;
}

export function res(item: ItemDraft): Record<string, any> {
  if (item.response === null) throw new Error(`item without response: ${JSON.stringify(item)}`);
  return item.response as Record<string, any>;
}

/**
 * A corpus of real conversations for fuzzing: keep-alive calls of every kind
 * (bodies plain, chunked with trailers, gzip, HEAD, 204, 304, redirects,
 * 100-continue), pipelining, a websocket and an h2c upgrade.
 */
export async function recordCorpus(): Promise<RecordedChunk[][]> {
  const server = http.createServer((rq, rs) => {
    const parts: Buffer[] = [];
    rq.on('data', (d: Buffer) => parts.push(d));
    rq.on('end', () => {
      const u = rq.url ?? '/';
      const body = Buffer.concat(parts);
      if (u.startsWith('/head') || rq.method === 'HEAD') { rs.writeHead(200, { 'Content-Length': 77 }); rs.end(); }
      else if (u.startsWith('/204')) { rs.writeHead(204); rs.end(); }
      else if (u.startsWith('/304')) { rs.writeHead(304, { ETag: '"e"' }); rs.end(); }
      else if (u.startsWith('/redirect')) { rs.writeHead(301, { Location: '/new', 'Content-Length': 0 }); rs.end(); }
      else if (u.startsWith('/gzip')) { const z = zlib.gzipSync(`{"gz":"${'z'.repeat(500)}"}`); rs.writeHead(200, { 'Content-Encoding': 'gzip', 'Content-Type': 'application/json', 'Content-Length': z.length }); rs.end(z); }
      else if (u.startsWith('/chunked')) { rs.writeHead(200, { 'Content-Type': 'text/plain', Trailer: 'X-T' }); rs.write('aaa'); rs.write('bbbb'); rs.addTrailers({ 'X-T': 't' }); rs.end('c'); }
      else { rs.setHeader('Content-Type', 'application/json'); rs.setHeader('Set-Cookie', 's=1'); rs.end(JSON.stringify({ u, n: body.length, b: body.toString('base64').slice(0, 40) })); }
    });
  });
  server.on('checkContinue', (rq, rs) => { rs.writeContinue(); server.emit('request', rq, rs); });
  server.on('upgrade', (rq, socket: net.Socket) => {
    if (rq.headers.upgrade === 'h2c') socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00');
    else socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi');
    socket.on('data', () => socket.end());
  });
  const rec = await record(server, async (port) => {
    const agent = keepAliveAgent();
    const calls: [string, string, string | undefined][] = [
      ['GET', '/a?x=1&y=2', undefined], ['POST', '/b', '{"k":"v"}'], ['HEAD', '/head', undefined], ['GET', '/204', undefined],
      ['GET', '/304', undefined], ['GET', '/redirect', undefined], ['GET', '/gzip', undefined], ['GET', '/chunked', undefined],
      ['PUT', '/c', 'x'.repeat(3000)], ['DELETE', '/d', undefined], ['PATCH', '/e', 'patch'],
    ];
    for (const [method, path, body] of calls) await request(port, { agent, method, path, headers: { Cookie: 'c=1' }, body });
    await new Promise<void>((resolve, reject) => {
      const cr = http.request({ host: '127.0.0.1', port, agent, method: 'POST', path: '/continue', headers: { Expect: '100-continue', 'Content-Length': 5 } }, (r) => { r.resume(); r.on('end', () => resolve()); });
      cr.on('continue', () => cr.end('12345'));
      cr.on('error', reject);
      cr.flushHeaders();
    });
    agent.destroy();
    await rawClient(port, ['GET /p1 HTTP/1.1\r\nHost: p\r\n\r\nPOST /p2 HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /p3 HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n']);
    await rawClient(port, ['GET /ws HTTP/1.1\r\nHost: w\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n', '\x81\x82abcd\x09\x0b'], { pauseMs: 30 });
    await rawClient(port, ['GET /h2 HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00'], { pauseMs: 30 });
  });
  return rec.connections.map((c) => c.chunks);
}
