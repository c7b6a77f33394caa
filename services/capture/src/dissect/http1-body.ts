/**
 * HTTP/1 body -> item text. The parser keeps at most maxBodyBytes of a
 * (de-chunked) body; this module decodes its Content-Encoding and picks the
 * representation:
 *
 * - text: bodies whose media type is not known-binary and whose bytes are
 *   valid UTF-8 without NUL are kept as a string, cut to maxBodyBytes on a
 *   character boundary;
 * - base64: everything else (images, protobuf, octet-stream, invalid UTF-8,
 *   undecodable compressed bytes) is the base64 of its first maxBodyBytes
 *   bytes, and the item says `encoding: 'base64'`.
 *
 * Decompression uses zlib's sync functions with finishFlush set to a sync
 * flush (a body cut at maxBodyBytes still yields what it holds) and
 * maxOutputLength (a decompression bomb costs at most DECODE_FACTOR x
 * maxBodyBytes of memory, transiently).
 */
import { isUtf8 } from 'node:buffer';
import zlib from 'node:zlib';
import { utf8 } from './http1-head.ts';
import { stats } from './http1-stats.ts';

export interface BodyResult {
  /** UTF-8 text or base64, at most maxBodyBytes bytes of body (before base64). */
  text: string;
  /** Decoded (de-chunked, decompressed) size in bytes; a lower bound when a compressed body was cut. */
  size: number;
  base64: boolean;
  /** The text is not the whole body (longer than maxBodyBytes, or bytes lost in a capture gap). */
  truncated: boolean;
  /** Why Content-Encoding could not be undone ('' when it was, or when there was none). */
  decodeError: string;
}

/** First decode attempt may produce this many times maxBodyBytes (to learn the real size of moderately large bodies). */
const DECODE_FACTOR = 8;

const EMPTY: Buffer = Buffer.alloc(0);

interface ZlibFn {
  (buf: Buffer, opts: zlib.ZlibOptions & zlib.BrotliOptions): Buffer;
}

const Z_FLUSH = { finishFlush: zlib.constants.Z_SYNC_FLUSH };
const gunzip: ZlibFn = (b, o) => zlib.gunzipSync(b, { ...Z_FLUSH, ...o });
const inflate: ZlibFn = (b, o) => zlib.inflateSync(b, { ...Z_FLUSH, ...o });
const inflateRaw: ZlibFn = (b, o) => zlib.inflateRawSync(b, { ...Z_FLUSH, ...o });
const brotli: ZlibFn = (b, o) => zlib.brotliDecompressSync(b, { finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH, ...o });
// zstd arrived in Node 23.8/22.15 (experimental): used when present.
const zstdSync = (zlib as unknown as { zstdDecompressSync?: (b: Buffer, o: object) => Buffer }).zstdDecompressSync;
const zstd: ZlibFn | null = zstdSync ? (b, o) => zstdSync(b, { maxOutputLength: o.maxOutputLength }) : null;

function isSizeError(e: unknown): boolean {
  const code = (e as { code?: string } | null)?.code;
  return code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError;
}

interface Decoded {
  out: Buffer;
  /** Output was cut at the cap: `out` is a prefix of the decoded body. */
  capped: boolean;
}

/** Decodes with `fn`; past `cap` output bytes, returns the longest prefix it can get within `limit` bytes. */
function decodeCapped(fn: ZlibFn, buf: Buffer, cap: number, limit: number): Decoded {
  try {
    return { out: fn(buf, { maxOutputLength: cap }), capped: false };
  } catch (e) {
    if (!isSizeError(e)) throw e;
  }
  stats.decodeCapped++;
  // The output of an input prefix (sync flush) is a prefix of the output: binary
  // search the longest input prefix whose output fits in `limit` (~10 runs, each
  // bounded by `limit`). Deflate expands at most ~1000x per input byte, so this
  // finds a useful prefix; brotli can expand a few bytes into megabytes, and then
  // the prefix found may be empty.
  let lo = 0;
  let hi = buf.length;
  let best = EMPTY;
  const step = Math.max(16, buf.length >>> 10);
  while (hi - lo > step) {
    const mid = (lo + hi) >>> 1;
    try {
      best = fn(buf.subarray(0, mid), { maxOutputLength: limit });
      lo = mid;
    } catch {
      hi = mid;
    }
  }
  return { out: best, capped: true };
}

function decodeOne(coding: string, buf: Buffer, cap: number, limit: number): Decoded {
  switch (coding) {
    case 'gzip':
    case 'x-gzip':
      return decodeCapped(gunzip, buf, cap, limit);
    case 'deflate':
      // "deflate" is meant to be zlib-wrapped; some servers send raw deflate.
      try {
        return decodeCapped(inflate, buf, cap, limit);
      } catch {
        return decodeCapped(inflateRaw, buf, cap, limit);
      }
    case 'br':
      return decodeCapped(brotli, buf, cap, limit);
    case 'zstd':
      if (zstd) return decodeCapped(zstd, buf, cap, limit);
      throw new Error('unsupported Content-Encoding: zstd');
    default:
      throw new Error(`unsupported Content-Encoding: ${coding}`);
  }
}

/** Content-Encoding codings in the order they must be undone (last applied first); identity dropped. */
function codingsOf(contentEncoding: string): string[] {
  const out: string[] = [];
  for (const part of contentEncoding.split(',')) {
    const c = part.trim().toLowerCase();
    if (c.length > 0 && c !== 'identity') out.push(c);
  }
  return out.reverse();
}

const BINARY_APPLICATION = new Set([
  'application/octet-stream', 'application/zip', 'application/gzip', 'application/x-gzip', 'application/pdf',
  'application/protobuf', 'application/x-protobuf', 'application/vnd.google.protobuf', 'application/msgpack',
  'application/x-msgpack', 'application/cbor', 'application/wasm', 'application/x-tar', 'application/x-7z-compressed',
  'application/x-rar-compressed', 'application/vnd.rar', 'application/java-archive', 'application/x-bzip',
  'application/x-bzip2', 'application/zstd', 'application/x-brotli', 'application/x-xz', 'application/avro',
  'application/vnd.apache.avro+binary', 'application/vnd.apache.thrift.binary', 'application/x-thrift',
]);

// Content types repeat from message to message: remember the answers (bounded).
const mimeMemo = new Map<string, boolean>();

/** Media types whose bodies are binary whatever their bytes look like. */
export function isBinaryMime(contentType: string): boolean {
  if (contentType.length === 0) return false;
  const known = mimeMemo.get(contentType);
  if (known !== undefined) return known;
  const semi = contentType.indexOf(';');
  const essence = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  const slash = essence.indexOf('/');
  let binary = false;
  switch (slash < 0 ? essence : essence.slice(0, slash)) {
    case 'image':
      binary = !essence.startsWith('image/svg');
      break;
    case 'audio':
    case 'video':
    case 'font':
      binary = true;
      break;
    case 'application':
      binary = BINARY_APPLICATION.has(essence) || essence.startsWith('application/grpc') || essence.startsWith('application/vnd.ms-') || essence.startsWith('application/vnd.openxmlformats');
      break;
  }
  if (mimeMemo.size >= 256) mimeMemo.clear();
  mimeMemo.set(contentType, binary);
  return binary;
}

/** End (exclusive) of the longest prefix of buf[0:end] that does not end inside a UTF-8 character (the bytes after end are missing). */
function utf8Cut(buf: Buffer, end: number): number {
  let i = end - 1;
  for (let k = 0; k < 3 && i > 0 && (buf[i] & 0xc0) === 0x80; k++) i--;
  if (i < 0) return end;
  const lead = buf[i];
  const len = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return i + len > end ? i : end;
}

/**
 * Turns the kept bytes of a body into its item representation.
 * @param kept the first bytes of the de-chunked body (at most limit bytes)
 * @param total de-chunked body bytes on the wire (kept and not kept)
 * @param hole bytes of the body were lost in a capture gap
 */
export function finishBody(kept: Buffer, total: number, hole: boolean, contentType: string, contentEncoding: string, decode: boolean, limit: number): BodyResult {
  let bytes = kept;
  let size = total;
  let incomplete = hole || kept.length < total;
  let decodeError = '';
  if (decode && contentEncoding.length > 0 && kept.length > 0) {
    const codings = codingsOf(contentEncoding);
    if (codings.length > 0) {
      try {
        let capped = false;
        const cap = Math.max(limit * DECODE_FACTOR, 64 * 1024);
        for (const c of codings) {
          const d = decodeOne(c, bytes, cap, limit);
          bytes = d.out;
          capped ||= d.capped;
        }
        size = bytes.length;
        if (capped) incomplete = true;
      } catch (e) {
        stats.decodeErrors++;
        decodeError = (e as Error).message ?? String(e);
        bytes = kept;
      }
    }
  }
  let truncated = incomplete;
  let end = bytes.length;
  if (end > limit) {
    truncated = true;
    end = limit;
  }
  let base64 = decodeError.length > 0 || isBinaryMime(contentType);
  let text = '';
  if (!base64) {
    const cut = truncated ? utf8Cut(bytes, end) : end;
    text = utf8(bytes, 0, cut);
    // U+FFFD marks invalid UTF-8 (or a real U+FFFD: then ask isUtf8); NUL means binary
    if ((text.includes('\uFFFD') && !isUtf8(bytes.subarray(0, cut))) || text.includes('\0')) base64 = true;
  }
  if (base64) text = (end === bytes.length ? bytes : bytes.subarray(0, end)).toString('base64');
  if (truncated) stats.bodiesTruncated++;
  return { text, size, base64, truncated, decodeError };
}
