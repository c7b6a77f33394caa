/**
 * HTTP/1 message heads: start lines and header blocks, parsed from a string
 * of the head bytes (one native decode per head, then cheap string ops).
 * Lenient where real peers are (bare LF line ends, obs-fold, "Name : v",
 * lines without a colon skipped and counted), strict where framing depends
 * on it (start line, Content-Length).
 */
import type { Direction } from '../types.ts';
import type { BodyResult } from './http1-body.ts';
import { setOwn } from './http1-fields.ts';
import { stats } from './http1-stats.ts';

interface FastSlices {
  latin1Slice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
}

/** Buffer#latin1Slice (untyped in @types/node): the cheapest bytes -> string for ASCII heads. */
export function latin1(b: Buffer, start: number, end: number): string {
  return (b as unknown as FastSlices).latin1Slice(start, end);
}

export function utf8(b: Buffer, start: number, end: number): string {
  return (b as unknown as FastSlices).utf8Slice(start, end);
}

/** Known request methods (RFC 9110, WebDAV, PATCH, CalDAV, UPnP, ...). Resync and probe only trust these. */
export const HTTP1_METHODS: ReadonlySet<string> = new Set([
  'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH',
  'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'SEARCH', 'BIND', 'REBIND', 'UNBIND', 'ACL',
  'REPORT', 'MKACTIVITY', 'CHECKOUT', 'CHECKIN', 'UNCHECKOUT', 'MERGE', 'VERSION-CONTROL', 'MKWORKSPACE', 'UPDATE',
  'LABEL', 'BASELINE-CONTROL', 'MKREDIRECTREF', 'UPDATEREDIRECTREF', 'ORDERPATCH', 'MKCALENDAR',
  'M-SEARCH', 'NOTIFY', 'SUBSCRIBE', 'UNSUBSCRIBE', 'PURGE', 'LINK', 'UNLINK', 'SOURCE', 'QUERY',
]);

/** Every proper prefix of a known method ("G", "GE", "PROP", ...): a probe with these bytes needs more. */
export const METHOD_PREFIXES: ReadonlySet<string> = (() => {
  const s = new Set<string>();
  for (const m of HTTP1_METHODS) for (let i = 1; i < m.length; i++) s.add(m.slice(0, i));
  return s;
})();

export const MAX_METHOD = 24;

/** One HTTP/1 message being parsed, then kept until paired and emitted. */
export class Msg {
  isRequest = false;
  dir: Direction;
  /** Capture time of the first byte, and of the last byte seen. */
  tsMs: number;
  lastTsMs: number;
  method = '';
  target = '';
  /** x of HTTP/1.x. */
  minor = 1;
  status = 0;
  statusText = '';
  headers: Record<string, string> = {};
  lastHeader = '';
  contentLength = -1;
  badLength = false;
  transferEncoding = '';
  contentType = '';
  contentEncoding = '';
  upgrade = '';
  connection = '';
  host = '';
  location = '';
  cookie = '';
  setCookies: string[] | null = null;
  trailers: Record<string, string> | null = null;
  headersSize = 0;
  /** Body bytes on the wire (chunk framing and trailers included). */
  wireBody = 0;
  /** De-chunked body bytes (kept or not). */
  bodyBytes = 0;
  /** The message has a body per its framing (Content-Length > 0, chunked, close-delimited). */
  hasBody = false;
  kept: Buffer[] | null = null;
  keptLen = 0;
  /** Body bytes lost in a capture gap. */
  hole = false;
  body: BodyResult | null = null;
  gapBytes = 0;
  error = '';
  done = false;
  emitted = false;
  partner: Msg | null = null;

  constructor(dir: Direction, tsMs: number) {
    this.dir = dir;
    this.tsMs = tsMs;
    this.lastTsMs = tsMs;
  }

  addError(e: string): void {
    this.error = this.error.length === 0 ? e : `${this.error}; ${e}`;
  }

  chunked(): boolean {
    const te = this.transferEncoding;
    if (te.length === 0) return false;
    // chunked must be the final coding
    const lower = te.toLowerCase();
    const i = lower.lastIndexOf('chunked');
    return i >= 0 && lower.slice(i + 7).trim().length === 0;
  }

  hasToken(value: string, token: string): boolean {
    if (value.length === 0) return false;
    for (const part of value.split(',')) if (part.trim().toLowerCase() === token) return true;
    return false;
  }
}

function isTokenChar(c: number): boolean {
  return (c >= 65 && c <= 90) || c === 45 || c === 95; // A-Z - _
}

/**
 * Parses the start line s[0:le] into m. Requests: METHOD SP target SP HTTP/1.x
 * (any upper-case token as method); responses: HTTP/1.x SP NNN [SP reason].
 */
export function parseStartLine(s: string, le: number, m: Msg): boolean {
  if (s.charCodeAt(0) === 72 && s.startsWith('HTTP/1.')) {
    if (le < 12) return false;
    const minor = s.charCodeAt(7) - 48;
    if (minor < 0 || minor > 9 || s.charCodeAt(8) !== 32) return false;
    const d0 = s.charCodeAt(9) - 48;
    const d1 = s.charCodeAt(10) - 48;
    const d2 = s.charCodeAt(11) - 48;
    if (d0 < 1 || d0 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return false;
    if (le > 12 && s.charCodeAt(12) !== 32) return false;
    m.isRequest = false;
    m.minor = minor;
    m.status = d0 * 100 + d1 * 10 + d2;
    m.statusText = le > 13 ? s.slice(13, le).trim() : '';
    return true;
  }
  const sp1 = s.indexOf(' ');
  if (sp1 <= 0 || sp1 > MAX_METHOD || le < sp1 + 11) return false;
  for (let i = 0; i < sp1; i++) if (!isTokenChar(s.charCodeAt(i))) return false;
  // target runs to the single space before "HTTP/1.x" at the end of the line
  const vs = le - 8;
  if (s.charCodeAt(vs - 1) !== 32 || !s.startsWith('HTTP/1.', vs)) return false;
  const minor = s.charCodeAt(le - 1) - 48;
  if (minor < 0 || minor > 9) return false;
  const sp2 = s.indexOf(' ', sp1 + 1);
  if (sp2 !== vs - 1 || sp2 === sp1 + 1) return false;
  for (let i = sp1 + 1; i < sp2; i++) if (s.charCodeAt(i) < 33 || s.charCodeAt(i) === 127) return false;
  m.isRequest = true;
  m.method = s.slice(0, sp1);
  m.target = s.slice(sp1 + 1, sp2);
  m.minor = minor;
  return true;
}

const K_OTHER = 0;
const K_HOST = 1;
const K_COOKIE = 2;
const K_UPGRADE = 3;
const K_LOCATION = 4;
const K_CONNECTION = 5;
const K_SET_COOKIE = 6;
const K_CONTENT_TYPE = 7;
const K_CONTENT_LENGTH = 8;
const K_CONTENT_ENCODING = 9;
const K_TRANSFER_ENCODING = 10;
const K_PROTO = 11;

function kindOf(name: string): number {
  switch (name.toLowerCase()) {
    case 'host': return K_HOST;
    case 'cookie': return K_COOKIE;
    case 'upgrade': return K_UPGRADE;
    case 'location': return K_LOCATION;
    case 'connection': return K_CONNECTION;
    case 'set-cookie': return K_SET_COOKIE;
    case 'content-type': return K_CONTENT_TYPE;
    case 'content-length': return K_CONTENT_LENGTH;
    case 'content-encoding': return K_CONTENT_ENCODING;
    case 'transfer-encoding': return K_TRANSFER_ENCODING;
    default: return name === '__proto__' ? K_PROTO : K_OTHER;
  }
}

/** A header name as it was spelled, with what it means to the parser. */
export interface HeaderName {
  name: string;
  c0: number;
  kind: number;
}

/**
 * Header names seen recently, by length (a few per length, replaced round
 * robin so junk names cannot pin the table). A hit costs one compare and
 * gives an internalized string: no slice, no hashing when it becomes a key.
 */
const MAX_CACHED_NAME = 40;
const PER_LENGTH = 12;
const nameCache: HeaderName[][] = Array.from({ length: MAX_CACHED_NAME + 1 }, () => []);
const nameNext: number[] = new Array<number>(MAX_CACHED_NAME + 1).fill(0);

/** The name s[p:e], from the cache when seen before. */
export function nameAt(s: string, p: number, e: number): HeaderName {
  const len = e - p;
  const c0 = s.charCodeAt(p);
  if (len > MAX_CACHED_NAME) {
    const name = s.slice(p, e);
    return { name, c0, kind: kindOf(name) };
  }
  const list = nameCache[len];
  for (let i = 0; i < list.length; i++) {
    const en = list[i];
    if (en.c0 === c0 && s.startsWith(en.name, p)) return en;
  }
  // an object key is an internalized string: make it one once, here
  const name = Object.keys({ [s.slice(p, e)]: 0 })[0];
  const en: HeaderName = { name, c0, kind: kindOf(name) };
  if (list.length < PER_LENGTH) list.push(en);
  else list[nameNext[len]++ % PER_LENGTH] = en;
  return en;
}

function parseLength(v: string): number {
  const n = v.length;
  if (n === 0 || n > 15) return -1;
  let x = 0;
  for (let i = 0; i < n; i++) {
    const d = v.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    x = x * 10 + d;
  }
  return x;
}

/** Adds one header (repeated names joined with ', ') and picks out what framing and the item need. */
export function addHeader(m: Msg, hn: HeaderName, value: string, trailer: boolean): void {
  const h = trailer ? (m.trailers ??= {}) : m.headers;
  const name = hn.name;
  const prev = h[name];
  if (typeof prev === 'string') h[name] = `${prev}, ${value}`;
  else if (hn.kind === K_PROTO) setOwn(h, name, value);
  else h[name] = value;
  m.lastHeader = name;
  if (trailer) return;
  switch (hn.kind) {
    case K_OTHER:
      break;
    case K_HOST:
      m.host = value;
      break;
    case K_COOKIE:
      m.cookie = m.cookie.length === 0 ? value : `${m.cookie}; ${value}`;
      break;
    case K_UPGRADE:
      m.upgrade = value;
      break;
    case K_LOCATION:
      m.location = value;
      break;
    case K_CONNECTION:
      m.connection = m.connection.length === 0 ? value : `${m.connection}, ${value}`;
      break;
    case K_SET_COOKIE:
      (m.setCookies ??= []).push(value);
      break;
    case K_CONTENT_TYPE:
      if (m.contentType.length === 0) m.contentType = value;
      break;
    case K_CONTENT_LENGTH: {
      // "5, 5" (a list of equal values) is allowed; anything else is a framing error
      let len = parseLength(value);
      if (len < 0 && value.includes(',')) {
        const parts = value.split(',').map((x) => parseLength(x.trim()));
        len = parts.every((x) => x === parts[0]) ? parts[0] : -1;
      }
      if (len < 0 || (m.contentLength >= 0 && m.contentLength !== len)) m.badLength = true;
      else m.contentLength = len;
      break;
    }
    case K_CONTENT_ENCODING:
      m.contentEncoding = m.contentEncoding.length === 0 ? value : `${m.contentEncoding}, ${value}`;
      break;
    case K_TRANSFER_ENCODING:
      m.transferEncoding = m.transferEncoding.length === 0 ? value : `${m.transferEncoding}, ${value}`;
      break;
  }
}

function isWs(c: number): boolean {
  return c === 32 || c === 9;
}

/**
 * Parses header lines of s from `from` up to and including the empty line.
 * Returns the index just after the empty line, or -1 when s ends first (with
 * `partial`, the complete lines seen are kept: a salvaged head).
 */
export function parseHeaderLines(s: string, from: number, m: Msg, trailer: boolean): number {
  let p = from;
  const n = s.length;
  while (p < n) {
    const nl = s.indexOf('\n', p);
    if (nl < 0) return -1;
    let le = nl;
    if (le > p && s.charCodeAt(le - 1) === 13) le--;
    if (le === p) return nl + 1;
    const c0 = s.charCodeAt(p);
    if (isWs(c0)) {
      // obs-fold: continuation of the previous header's value
      const prev = m.lastHeader;
      const h = trailer ? m.trailers : m.headers;
      if (prev.length > 0 && h !== null && Object.hasOwn(h, prev)) {
        const more = s.slice(p, le).trim();
        if (more.length > 0) h[prev] = `${h[prev]} ${more}`;
      } else stats.badHeaderLines++;
      p = nl + 1;
      continue;
    }
    const colon = s.indexOf(':', p);
    if (colon < 0 || colon >= le || colon === p) {
      stats.badHeaderLines++;
      p = nl + 1;
      continue;
    }
    let ne = colon;
    while (ne > p && isWs(s.charCodeAt(ne - 1))) ne--;
    let vs = colon + 1;
    while (vs < le && isWs(s.charCodeAt(vs))) vs++;
    let ve = le;
    while (ve > vs && isWs(s.charCodeAt(ve - 1))) ve--;
    addHeader(m, nameAt(s, p, ne), s.slice(vs, ve), trailer);
    p = nl + 1;
  }
  return -1;
}

function latin1ToUtf8(x: string): string {
  for (let i = 0; i < x.length; i++) if (x.charCodeAt(i) > 0x7f) return Buffer.from(x, 'latin1').toString('utf8');
  return x;
}

/** After parsing a latin1 string of a head that held non-ASCII bytes: re-decode the strings as UTF-8 (as a Go-based Kubeshark shows them). */
export function fixUtf8(m: Msg): void {
  m.method = latin1ToUtf8(m.method);
  m.target = latin1ToUtf8(m.target);
  m.statusText = latin1ToUtf8(m.statusText);
  const h: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.headers)) setOwn(h, latin1ToUtf8(k), latin1ToUtf8(v));
  m.headers = h;
  m.contentType = latin1ToUtf8(m.contentType);
  m.location = latin1ToUtf8(m.location);
  m.host = latin1ToUtf8(m.host);
  m.cookie = latin1ToUtf8(m.cookie);
  if (m.setCookies) m.setCookies = m.setCookies.map(latin1ToUtf8);
}
