/**
 * Test and bench support for the Redis dissector: RESP command encoding, a
 * raw client that talks to a real Redis through the recording proxy
 * (@wirescript/testing's startTcpRecorder), and helpers that replay recorded
 * chunks into a parser.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import type { RecordedChunk } from '@wirescript/testing';
import type { ConnectionInfo, DissectorOptions, ItemDraft, StreamParser } from '../types.ts';
import { RedisParser } from './redis.ts';

export const REDIS_HOST = '127.0.0.1';
export const REDIS_PORT = 6379;

/** One command as a RESP array of bulk strings. */
export function encodeCommand(args: Array<string | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

export function encodeCommands(cmds: Array<Array<string | Buffer>>): Buffer {
  return Buffer.concat(cmds.map(encodeCommand));
}

export function randomPrefix(): string {
  return `ws-test:${randomBytes(6).toString('hex')}:`;
}

/**
 * A raw RESP client. `send` writes bytes and waits until the reply stream
 * contains a fresh marker (the caller appends a command that echoes it), so
 * it knows every reply before the marker has arrived.
 */
export class RawRedisClient {
  readonly socket: net.Socket;
  private received = Buffer.alloc(0);

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.received = Buffer.concat([this.received, d]);
    });
  }

  static async connect(port: number): Promise<RawRedisClient> {
    const s = net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      s.once('connect', () => resolve());
      s.once('error', reject);
    });
    s.on('error', () => {});
    return new RawRedisClient(s);
  }

  bytes(): Buffer {
    return this.received;
  }

  /** Writes `data`, then waits (at most timeoutMs) until `marker` appears in what was received. */
  async sendUntil(data: Buffer, marker: string, timeoutMs = 5000): Promise<void> {
    this.socket.write(data);
    const deadline = Date.now() + timeoutMs;
    while (!this.received.includes(marker)) {
      if (Date.now() > deadline) throw new Error(`redis test client: no "${marker}" within ${timeoutMs} ms; got ${JSON.stringify(this.received.toString('latin1').slice(-300))}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Sends commands followed by ECHO <marker> (or PING <marker> in subscribe mode) and waits for the marker. */
  async run(cmds: Array<Array<string | Buffer>>, opts: { subscribeMode?: boolean } = {}): Promise<string> {
    const marker = `mk-${randomBytes(6).toString('hex')}`;
    await this.sendUntil(encodeCommands([...cmds, [opts.subscribeMode ? 'PING' : 'ECHO', marker]]), marker);
    return marker;
  }

  /** Waits until `text` appears in the received bytes. */
  async waitFor(text: string, timeoutMs = 5000): Promise<void> {
    await this.sendUntil(Buffer.alloc(0), text, timeoutMs);
  }

  async close(): Promise<void> {
    if (this.socket.destroyed) return;
    await new Promise<void>((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.end();
    });
  }
}

export function tcpConn(serverPort = REDIS_PORT, id = 1): ConnectionInfo {
  return { id, client: { ip: '127.0.0.1', port: 40000 + id }, server: { ip: '127.0.0.1', port: serverPort }, ipVersion: 4, transport: 'tcp', handshakeSeen: true };
}

export interface Collected {
  items: ItemDraft[];
  parser: RedisParser;
}

export function newRedisParser(opts: Partial<DissectorOptions> = {}, conn: ConnectionInfo = tcpConn()): Collected {
  const items: ItemDraft[] = [];
  const full: DissectorOptions = { maxBodyBytes: 64 * 1024, pairTimeoutMs: 30_000, decodeBodies: true, ...opts };
  const parser = new RedisParser({ conn, sink: { emit: (_c, i) => items.push(i) }, opts: full, switchTo: () => null });
  return { items, parser };
}

/** Feeds recorded chunks in order; `split` cuts every chunk into pieces of at most that many bytes. */
export function replay(parser: StreamParser, chunks: RecordedChunk[], split = Infinity): void {
  for (const c of chunks) {
    if (!Number.isFinite(split)) {
      parser.onData(c.dir, c.data, c.tsMs);
      continue;
    }
    for (let i = 0; i < c.data.length; i += split) parser.onData(c.dir, c.data.subarray(i, i + split), c.tsMs);
  }
}

/** Items reduced to what a comparison needs (timestamps dropped). */
export function summarize(items: ItemDraft[]): Array<{ request: unknown; response: unknown; error?: string; requestSize: number; responseSize: number }> {
  return items.map((i) => {
    const s: { request: unknown; response: unknown; error?: string; requestSize: number; responseSize: number } = {
      request: i.request, response: i.response, requestSize: i.requestSize, responseSize: i.responseSize,
    };
    if (i.error) s.error = i.error;
    return s;
  });
}
