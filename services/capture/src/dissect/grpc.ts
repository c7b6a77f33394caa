/**
 * gRPC over HTTP/2 (the "gRPC over HTTP2" protocol document): a call is an
 * HTTP/2 stream with content-type application/grpc[+fmt]; :path is
 * /package.Service/Method; each DATA stream carries length-prefixed messages
 * (1 byte compressed flag, 4 bytes big-endian length, payload), which may be
 * split across DATA frames or share one; the status is in the grpc-status and
 * grpc-message trailers (or in the headers of a trailers-only response).
 */
import type { ProtocolInfo } from '../types.ts';
import { finishBody } from './http1-body.ts';

export const GRPC_PROTOCOL: ProtocolInfo = { name: 'http', version: '2.0', abbr: 'gRPC', longName: 'gRPC Remote Procedure Calls', macro: 'grpc' };

export function isGrpcContentType(contentType: string | undefined): boolean {
  return contentType !== undefined && /^\s*application\/grpc/i.test(contentType);
}

/** "/pkg.Service/Method" -> service "pkg.Service", method "Method" (a path without that shape keeps it all as the service). */
export function parseGrpcPath(path: string): { service: string; method: string } {
  const p = path.startsWith('/') ? path.slice(1) : path;
  const slash = p.lastIndexOf('/');
  if (slash <= 0) return { service: p, method: '' };
  return { service: p.slice(0, slash), method: p.slice(slash + 1) };
}

const HEX = /^[0-9a-fA-F]{2}$/;

/** grpc-message is percent-encoded UTF-8; malformed escapes are kept as they are. */
export function decodeGrpcMessage(s: string): string {
  if (!s.includes('%')) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25 && HEX.test(s.slice(i + 1, i + 3))) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      bytes.push(...Buffer.from(s[i], 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** grpc-status as a number, or null when absent or not a number. */
export function parseGrpcStatus(v: string | undefined): number | null {
  if (v === undefined || !/^\s*\d+\s*$/.test(v)) return null;
  return Number(v);
}

/**
 * Follows the length-prefixed framing of one direction of a call across DATA
 * frames: counts complete messages and their lengths, and keeps their
 * payloads (decompressed when flagged and the grpc-encoding is known) up to
 * `limit` bytes.
 */
export class GrpcFramer {
  /** Complete messages. */
  count = 0;
  /** Sum of the lengths of complete messages (from their prefixes). */
  bytes = 0;
  /** Payload bytes were cut at the limit. */
  truncated = false;
  /** Framing was lost (capture gap): counts stop here. */
  lost = false;
  private readonly limit: number;
  private readonly encoding: string;
  private readonly decode: boolean;
  private readonly prefix = Buffer.alloc(5);
  private prefixLen = 0;
  /** Payload bytes still due for the current message; -1 between messages. */
  private remaining = -1;
  private msgLen = 0;
  private compressed = false;
  private readonly parts: Buffer[] = [];
  private kept = 0;
  /** Compressed payload of the current message, kept until it is complete. */
  private pending: Buffer[] = [];
  private pendingLen = 0;

  constructor(limit: number, encoding: string, decode: boolean) {
    this.limit = limit;
    this.encoding = encoding.trim().toLowerCase();
    this.decode = decode;
  }

  /** Bytes held (kept payloads and compressed payloads waiting for their end). */
  retained(): number {
    return this.kept + this.pendingLen;
  }

  /** Frame bytes of the call body; `allowance` caps what may be kept from this call. */
  feed(data: Buffer, start: number, end: number, allowance: number): void {
    if (this.lost) return;
    let off = start;
    while (off < end) {
      if (this.remaining < 0) {
        const take = Math.min(5 - this.prefixLen, end - off);
        data.copy(this.prefix, this.prefixLen, off, off + take);
        this.prefixLen += take;
        off += take;
        if (this.prefixLen < 5) return;
        this.prefixLen = 0;
        this.compressed = (this.prefix[0] & 1) === 1;
        this.msgLen = this.prefix.readUInt32BE(1);
        this.remaining = this.msgLen;
        if (this.remaining === 0) this.messageDone();
        continue;
      }
      const take = Math.min(this.remaining, end - off);
      this.keep(data, off, off + take, allowance);
      this.remaining -= take;
      off += take;
      if (this.remaining === 0) this.messageDone();
    }
  }

  /** A capture gap inside the body: the message boundaries are unknown from here. */
  lose(): void {
    this.lost = true;
    this.pending = [];
    this.pendingLen = 0;
  }

  /** Why the body did not end on a message boundary, or null. */
  incomplete(): string | null {
    if (this.lost) return null;
    if (this.remaining >= 0) return `gRPC: stream ended inside a message (${this.msgLen - this.remaining} of ${this.msgLen} bytes)`;
    if (this.prefixLen > 0) return `gRPC: stream ended inside a message prefix (${this.prefixLen} of 5 bytes)`;
    return null;
  }

  /** The kept payloads, in order, without their prefixes. */
  payload(): Buffer {
    return this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
  }

  private keep(data: Buffer, start: number, end: number, allowance: number): void {
    const room = Math.min(this.limit - this.kept - this.pendingLen, allowance);
    const take = Math.max(0, Math.min(end - start, room));
    if (take < end - start) this.truncated = true;
    if (take === 0) return;
    const copy = Buffer.from(data.subarray(start, start + take));
    if (this.compressed && this.decode && this.encoding !== '' && this.encoding !== 'identity') {
      this.pending.push(copy);
      this.pendingLen += take;
    } else {
      this.parts.push(copy);
      this.kept += take;
    }
  }

  private messageDone(): void {
    this.count++;
    this.bytes += this.msgLen;
    this.remaining = -1;
    if (this.pendingLen === 0) return;
    const raw = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending);
    this.pending = [];
    this.pendingLen = 0;
    const room = this.limit - this.kept;
    if (room <= 0) {
      this.truncated = true;
      return;
    }
    // The shared body decoder (bounded output, sync flush for a cut message); undecodable or unknown encodings keep the compressed bytes.
    const d = finishBody(raw, raw.length, raw.length < this.msgLen, 'application/octet-stream', this.encoding, true, room);
    const out = d.decodeError === '' ? Buffer.from(d.text, 'base64') : raw.subarray(0, room);
    if (d.truncated || out.length < raw.length && d.decodeError !== '') this.truncated = true;
    if (out.length > 0) {
      this.parts.push(out);
      this.kept += out.length;
    }
  }
}
