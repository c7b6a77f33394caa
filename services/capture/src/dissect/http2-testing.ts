/**
 * Test helpers for the HTTP/2, HPACK and gRPC dissectors: a minimal HPACK
 * encoder and frame builder (for what real peers never send: padding,
 * priority, unknown frames, broken blocks), a sink/context that collects
 * items, and a replayer for chunks recorded by startTcpRecorder.
 */
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { startTcpRecorder, type RecordedChunk } from '@wirescript/testing';
import type { ConnectionInfo, DissectorContext, DissectorOptions, ItemDraft, StreamDissector, StreamParser } from '../types.ts';
import { DEFAULT_DISSECTOR_OPTIONS } from '../types.ts';
import { HUFFMAN_CODES, HUFFMAN_CODE_LENGTHS } from './hpack-huffman.ts';

/** HPACK integer continuation bytes for a value already above the prefix (§5.1); the caller writes the prefix byte. */
export function hpackInt(rest: number): Buffer {
  const out: number[] = [];
  while (rest >= 128) {
    out.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

/** An HPACK integer with an N-bit prefix and the given high bits. */
export function hpackPrefixed(value: number, prefixBits: number, high: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([high | value]);
  return Buffer.concat([Buffer.from([high | max]), hpackInt(value - max)]);
}

export function hpackEncodeHuffman(data: Uint8Array): Buffer {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const b of data) {
    const len = HUFFMAN_CODE_LENGTHS[b];
    const code = HUFFMAN_CODES[b];
    for (let i = len - 1; i >= 0; i--) {
      acc = (acc << 1) | (Math.floor(code / 2 ** i) % 2);
      bits++;
      if (bits === 8) {
        out.push(acc);
        acc = 0;
        bits = 0;
      }
    }
  }
  if (bits > 0) out.push(((acc << (8 - bits)) | ((1 << (8 - bits)) - 1)) & 0xff);
  return Buffer.from(out);
}

/** An HPACK string literal, plain or Huffman-coded. */
export function hpackString(s: string | Buffer, huffman = false): Buffer {
  const raw = typeof s === 'string' ? Buffer.from(s, 'latin1') : s;
  const body = huffman ? hpackEncodeHuffman(raw) : raw;
  return Buffer.concat([hpackPrefixed(body.length, 7, huffman ? 0x80 : 0), body]);
}

/** A header block of literals without indexing (name literal), so it never touches the dynamic table. */
export function hpackLiterals(fields: [string, string][], huffman = false): Buffer {
  return Buffer.concat(fields.flatMap(([n, v]) => [Buffer.from([0x00]), hpackString(n, huffman), hpackString(v, huffman)]));
}

export const FRAME = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PUSH_PROMISE: 5, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream >>> 0, 5);
  return Buffer.concat([h, payload]);
}

export function padded(payload: Buffer, pad: number): Buffer {
  return Buffer.concat([Buffer.from([pad]), payload, Buffer.alloc(pad)]);
}

export function settings(entries: [number, number][] = []): Buffer {
  const p = Buffer.alloc(entries.length * 6);
  entries.forEach(([id, v], i) => {
    p.writeUInt16BE(id, i * 6);
    p.writeUInt32BE(v, i * 6 + 2);
  });
  return frame(FRAME.SETTINGS, 0, 0, p);
}

export function u32(...values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeUInt32BE(v >>> 0, i * 4));
  return b;
}

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const TEST_CONN: ConnectionInfo = {
  id: 1, client: { ip: '127.0.0.1', port: 40000 }, server: { ip: '127.0.0.1', port: 8080 }, ipVersion: 4, transport: 'tcp', handshakeSeen: true,
};

export interface Harness {
  parser: StreamParser;
  items: ItemDraft[];
  /** JSON round trip of the items, as the item builder would publish them. */
  json(): Record<string, any>[];
}

export function harness(dissector: StreamDissector, opts: Partial<DissectorOptions> = {}): Harness {
  const items: ItemDraft[] = [];
  const ctx: DissectorContext = {
    conn: TEST_CONN,
    sink: { emit: (_conn, item) => items.push(item) },
    opts: { ...DEFAULT_DISSECTOR_OPTIONS, ...opts },
    switchTo: () => null,
  };
  const parser = dissector.create(ctx);
  return { parser, items, json: () => items.map((i) => JSON.parse(JSON.stringify(i))) };
}

/** Feeds recorded chunks in capture order, optionally re-split into pieces of `split` bytes. */
export function replay(parser: StreamParser, chunks: readonly RecordedChunk[], split = 0): void {
  for (const c of chunks) {
    if (split <= 0) {
      parser.onData(c.dir, c.data, c.tsMs);
      continue;
    }
    for (let i = 0; i < c.data.length; i += split) parser.onData(c.dir, c.data.subarray(i, Math.min(c.data.length, i + split)), c.tsMs);
  }
}

/** Items keyed by a request header (tests tag each request with a unique id). */
export function byHeader(items: Record<string, any>[], name: string): Map<string, Record<string, any>> {
  const m = new Map<string, Record<string, any>>();
  for (const it of items) {
    const v = it.request?.headers?.[name];
    if (typeof v === 'string') m.set(v, it);
  }
  return m;
}

// ---- Real traffic through the recording proxy ------------------------------

export interface Http2Session {
  chunks: RecordedChunk[];
  /** Concatenated bytes of one direction. */
  bytes(dir: 0 | 1): Buffer;
}

/**
 * Runs `run` with a real node:http2 client connected (prior knowledge,
 * cleartext) through a recording proxy to a real node:http2 server whose
 * streams go to `onStream`; returns the recorded connection once both sides
 * have closed.
 */
export async function recordHttp2(opts: {
  onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;
  run: (client: http2.ClientHttp2Session) => Promise<void>;
  serverOptions?: http2.ServerOptions;
  clientOptions?: http2.ClientSessionOptions;
}): Promise<Http2Session> {
  const server = http2.createServer(opts.serverOptions ?? {});
  server.on('stream', opts.onStream);
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const rec = await startTcpRecorder({ port: (server.address() as AddressInfo).port });
  const client = http2.connect(`http://127.0.0.1:${rec.port}`, opts.clientOptions ?? {});
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    await opts.run(client);
  } finally {
    await new Promise<void>((resolve) => client.close(() => resolve()));
    // The server side ends its half too, so the recorded connection closes now rather than at a timeout.
    for (const s of sessions) s.close();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([rec.connections[0]?.closed ?? Promise.resolve(), new Promise((r) => (timer = setTimeout(r, 5000)))]);
    clearTimeout(timer);
    await rec.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  const chunks = rec.connections[0].chunks;
  return { chunks, bytes: (dir) => Buffer.concat(chunks.filter((c) => c.dir === dir).map((c) => c.data)) };
}

export interface ClientResult {
  status: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
}

/** One request on a client session; resolves with what the client received. */
export function request(client: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer | string): Promise<ClientResult> {
  return new Promise((resolve, reject) => {
    const req = client.request(headers, { endStream: body === undefined });
    const out: ClientResult = { status: 0, headers: {}, trailers: {}, body: Buffer.alloc(0) };
    const parts: Buffer[] = [];
    req.on('response', (h) => {
      out.status = Number(h[':status']);
      out.headers = h;
    });
    req.on('trailers', (t) => {
      out.trailers = t;
    });
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      out.body = Buffer.concat(parts);
      resolve(out);
    });
    req.on('error', reject);
    if (body !== undefined) req.end(body);
  });
}

/** Reads a server stream's request body. */
export function readAll(stream: http2.ServerHttp2Stream): Promise<Buffer> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    stream.on('data', (d: Buffer) => parts.push(d));
    stream.on('end', () => resolve(Buffer.concat(parts)));
    stream.on('error', () => resolve(Buffer.concat(parts)));
  });
}

export interface FrameInfo {
  /** Offset of the frame header in the direction's byte stream. */
  offset: number;
  len: number;
  type: number;
  flags: number;
  sid: number;
}

/** Frame layout of one direction's bytes (for placing gaps and mutations). */
export function walkFrames(bytes: Buffer, dir: 0 | 1): FrameInfo[] {
  const out: FrameInfo[] = [];
  let p = dir === 0 && bytes.subarray(0, PREFACE.length).equals(PREFACE) ? PREFACE.length : 0;
  for (let guard = 0; p + 9 <= bytes.length && guard < 1_000_000; guard++) {
    const len = bytes.readUIntBE(p, 3);
    out.push({ offset: p, len, type: bytes[p + 3], flags: bytes[p + 4], sid: bytes.readUInt32BE(p + 5) & 0x7fffffff });
    p += 9 + len;
  }
  return out;
}

/**
 * Replays chunks but drops bytes [from, from + length) of direction `dir`
 * (offsets in that direction's byte stream), reporting them with onGap.
 */
export function replayWithGap(parser: StreamParser, chunks: readonly RecordedChunk[], dir: 0 | 1, from: number, length: number): void {
  let pos = 0;
  let gapSent = false;
  for (const c of chunks) {
    if (c.dir !== dir) {
      parser.onData(c.dir, c.data, c.tsMs);
      continue;
    }
    const start = pos;
    const end = pos + c.data.length;
    pos = end;
    const keepA = c.data.subarray(0, Math.max(0, Math.min(end, from) - start));
    const keepB = c.data.subarray(Math.max(0, Math.min(c.data.length, from + length - start)));
    if (keepA.length > 0) parser.onData(dir, keepA, c.tsMs);
    if (!gapSent && end > from) {
      parser.onGap(dir, length, c.tsMs);
      gapSent = true;
    }
    if (end > from + length && keepB.length > 0) parser.onData(dir, keepB, c.tsMs);
  }
}
