/**
 * HTTP/1.0 and HTTP/1.1 stream dissector: a hand-written incremental parser
 * (faster than driving Node's llhttp binding from JS, see http1-bench.ts)
 * for both directions of a TCP stream, pairing requests and responses into
 * Kubeshark-shaped items.
 *
 * - Each direction parses a sequence of messages, each a request or a
 *   response by its start line: when the reassembly guessed client/server the
 *   wrong way round, the content still decides.
 * - Requests queue FIFO per direction at the end of their head (so a
 *   response's framing can depend on its request: HEAD, CONNECT); a response
 *   takes the oldest queued request of the other direction that started no
 *   later than itself, else it is an orphan (item with request null). Bytes
 *   are assumed to be handed over in capture order across directions.
 * - An item is emitted when both its messages are complete; timeouts (onTick)
 *   and onClose emit what is left, with an `error`.
 * - Bad bytes never throw: the direction scans for the next start line
 *   (resync) and the counters in http1-stats.ts say what was dropped.
 * - 101 Upgrade: h2c hands both directions to ctx.switchTo('http2') (server
 *   bytes after the 101 head, client bytes after the upgrade request: held
 *   until the 101 decides); other upgrades and CONNECT 2xx end parsing.
 *
 * Item details beyond Kubeshark's fields (see the report/tests):
 * - bodySize / headersSize are bytes on the wire (chunk framing and trailers
 *   count in bodySize); requestSize = headersSize + bodySize; content.size is
 *   the decoded size.
 * - Bodies (http1-body.ts): text when valid UTF-8 and not a binary media type,
 *   else base64 with `encoding: 'base64'` (content and postData); otherwise
 *   content.encoding is the Content-Encoding header ('' if none) while text
 *   is decoded. Cut bodies add `truncated: true`.
 * - Chunked trailers, when present, are in `trailers` (name -> value).
 */
import type { ConnectionInfo, Direction, DissectorContext, ItemDraft, ProbeResult, ProtocolInfo, StreamDissector, StreamParser } from '../types.ts';
import { finishBody } from './http1-body.ts';
import { parseCookies, parseQuery, parseSetCookies, pathSegments, splitTarget } from './http1-fields.ts';
import { HTTP1_METHODS, MAX_METHOD, METHOD_PREFIXES, Msg, fixUtf8, latin1, parseHeaderLines, parseStartLine, utf8 } from './http1-head.ts';
import { noteInternalError, stats } from './http1-stats.ts';

export { http1LastInternalError, http1Stats, resetHttp1Stats, type Http1Stats } from './http1-stats.ts';
export { HTTP1_METHODS } from './http1-head.ts';

/** Largest header block (start line + headers) accepted; longer ones are salvaged as an error item. */
export const MAX_HEAD = 64 * 1024;
/** Longest start line, chunk-size line or trailer line considered. */
const MAX_LINE = 8 * 1024;
/** Bytes held from the requesting side while an Upgrade/CONNECT waits for its response. */
const MAX_HOLD = 256 * 1024;

const ST_START = 0; // between messages
const ST_HEAD = 1; // header block split across buffers: accumulating in hb
const ST_BODY = 2; // Content-Length body: `remaining` bytes left
const ST_CHUNK_SIZE = 3;
const ST_CHUNK_DATA = 4;
const ST_CHUNK_END = 5; // CRLF after chunk data
const ST_TRAILER = 6;
const ST_CLOSE_BODY = 7; // body delimited by the end of the connection
const ST_RESYNC = 8; // scanning for the next start line
const ST_HOLD = 9; // after an Upgrade/CONNECT request: bytes held until its response says what they are
const ST_SWITCHED = 10; // handed to another dissector (h2c)
const ST_DEAD = 11; // tunnel / websocket / closed: bytes ignored

const CRLF2 = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);
const HTTP1 = Buffer.from('HTTP/1.');

const ORPHAN = 'response without request (capture started mid-stream or request lost)';
const TIMED_OUT = 'request timed out without response';

function protocolOf(minor: number): ProtocolInfo {
  return minor === 0
    ? { name: 'http', version: '1.0', abbr: 'HTTP', longName: 'Hypertext Transfer Protocol -- HTTP/1.0', macro: 'http' }
    : { name: 'http', version: '1.1', abbr: 'HTTP', longName: 'Hypertext Transfer Protocol -- HTTP/1.1', macro: 'http' };
}

function httpVersion(minor: number): string {
  return minor === 1 ? 'HTTP/1.1' : minor === 0 ? 'HTTP/1.0' : `HTTP/1.${minor}`;
}

// ---------------------------------------------------------------------------
// probe

function isUpper(c: number): boolean {
  return c >= 65 && c <= 90;
}

/** "HTTP/1.x NNN" at data[from:]: yes, no, or more (a prefix of it). */
function statusLineAt(data: Buffer, from: number, to: number): ProbeResult {
  for (let k = 0; k < 7; k++) {
    if (from + k >= to) return 'more';
    if (data[from + k] !== HTTP1[k]) return 'no';
  }
  const want = [-1, 32, -2, -2, -2];
  for (let k = 0; k < want.length; k++) {
    const i = from + 7 + k;
    if (i >= to) return 'more';
    const c = data[i];
    const isDigit = c >= 48 && c <= 57;
    if (want[k] === -1 && !isDigit) return 'no';
    if (want[k] === 32 && c !== 32) return 'no';
    if (want[k] === -2 && !isDigit) return 'no';
  }
  return data[from + 9] === 48 ? 'no' : 'yes';
}

/** "METHOD SP target SP HTTP/1.x" at data[from:] with a known method: yes, no, or more. */
function requestLineAt(data: Buffer, from: number, to: number, maxTarget: number): ProbeResult {
  let i = from;
  while (i < to && i - from <= MAX_METHOD && (isUpper(data[i]) || data[i] === 45)) i++;
  if (i === to) return i - from <= MAX_METHOD && (i === from || METHOD_PREFIXES.has(latin1(data, from, i)) || HTTP1_METHODS.has(latin1(data, from, i))) ? 'more' : 'no';
  if (i === from || data[i] !== 32 || !HTTP1_METHODS.has(latin1(data, from, i))) return 'no';
  let j = i + 1;
  while (j < to && data[j] > 32 && data[j] !== 127) j++;
  if (j - i - 1 > maxTarget) return 'no';
  if (j === to) return 'more';
  if (j === i + 1 || data[j] !== 32) return 'no';
  for (let k = 0; k < 7; k++) {
    if (j + 1 + k >= to) return 'more';
    if (data[j + 1 + k] !== HTTP1[k]) return 'no';
  }
  const d = j + 8;
  if (d >= to) return 'more';
  if (data[d] < 48 || data[d] > 57) return 'no';
  if (d + 1 >= to) return 'more';
  return data[d + 1] === 13 || data[d + 1] === 10 ? 'yes' : 'no';
}

/**
 * A status line from either side, or a request line with a known method from
 * the client (from either side when the roles were guessed: no SYN seen).
 */
export function probeHttp1(data: Buffer, dir: Direction, conn: ConnectionInfo): ProbeResult {
  const n = data.length;
  if (n === 0) return 'more';
  const c0 = data[0];
  if (!isUpper(c0)) return 'no';
  if (c0 === 72) {
    const s = statusLineAt(data, 0, n);
    if (s !== 'no') return s;
  }
  if (dir === 1 && conn.handshakeSeen) return 'no';
  return requestLineAt(data, 0, n, MAX_LINE);
}

// ---------------------------------------------------------------------------
// per-direction parser

/** An event held while an upgrade is undecided: bytes, or a gap of `gap` bytes. */
interface Held {
  data: Buffer | null;
  gap: number;
  ts: number;
}

class Side {
  readonly p: Http1Parser;
  readonly dir: Direction;
  state = ST_START;
  msg: Msg | null = null;
  remaining = 0;
  /** A message was parsed on this side (bad bytes before the first one are a mid-stream start, not a parse error). */
  seen = false;
  // header block accumulation
  hb: Buffer = EMPTY;
  hlen = 0;
  hscan = 0;
  hTs = 0;
  lineOk = false;
  // chunk-size / trailer line accumulation
  line = '';
  cr = false;
  trailerLines = 0;
  // resync window
  rb: Buffer = EMPTY;
  rlen = 0;
  rscan = 0;
  restart: Buffer = EMPTY;
  // upgrade hold
  held: Held[] = [];
  heldBytes = 0;
  holdFor: Msg | null = null;
  /** Capture time of the data being handled. */
  nowTs = 0;
  /**
   * Capture time of the latest bytes this side lost or could not parse (0:
   * none since the last response): responses to earlier requests may have
   * been among them, see Http1Parser.matchRequest.
   */
  lostTs = 0;

  constructor(p: Http1Parser, dir: Direction) {
    this.p = p;
    this.dir = dir;
  }

  feed(data: Buffer, ts: number): void {
    this.nowTs = ts;
    let buf = data;
    let pos = 0;
    let n = buf.length;
    while (pos < n) {
      switch (this.state) {
        case ST_START: {
          const c = buf[pos];
          if (c === 13 || c === 10) {
            // empty lines between messages are allowed (RFC 9112 2.2)
            pos++;
            break;
          }
          const e = buf.indexOf(CRLF2, pos);
          if (e >= 0 && e + 4 - pos <= MAX_HEAD) {
            const used = this.head(buf, pos, e + 4, ts);
            if (used < 0) {
              this.badStart();
              pos++;
            } else pos += used;
            break;
          }
          if (this.viable(buf, pos, n) === 'no') {
            this.badStart();
            pos++;
            break;
          }
          this.state = ST_HEAD;
          this.hlen = 0;
          this.hscan = 0;
          this.hTs = ts;
          this.lineOk = false;
          break;
        }
        case ST_HEAD: {
          const old = this.hlen;
          const take = Math.min(n - pos, MAX_HEAD - old);
          this.hAppend(buf, pos, take);
          const end = findHeadEnd(this.hb, this.hscan, this.hlen);
          if (end >= 0) {
            const used = this.head(this.hb, 0, end, this.hTs);
            if (used < 0) {
              // rescan everything after the first buffered byte
              const rest = Buffer.concat([this.hb.subarray(1, this.hlen), buf.subarray(pos + take, n)]);
              this.hlen = 0;
              this.badStart();
              buf = rest;
              pos = 0;
              n = rest.length;
              break;
            }
            const extra = this.hlen - used;
            this.hlen = 0;
            this.hscan = 0;
            if (this.hb.length > 16 * 1024 && extra <= take) this.hb = EMPTY;
            if (extra <= take) pos = pos + take - extra;
            else {
              const rest = Buffer.concat([this.hb.subarray(used, old), buf.subarray(pos, n)]);
              buf = rest;
              pos = 0;
              n = rest.length;
            }
            break;
          }
          pos += take;
          if (!this.lineOk) {
            const nl = this.hb.indexOf(10);
            if (nl >= 0 && nl < this.hlen) {
              const le = nl > 0 && this.hb[nl - 1] === 13 ? nl - 1 : nl;
              if (parseStartLine(latin1(this.hb, 0, le), le, new Msg(this.dir, ts))) this.lineOk = true;
            }
            if (!this.lineOk && ((nl >= 0 && nl < this.hlen) || this.hlen > MAX_LINE || this.viable(this.hb, 0, this.hlen) === 'no')) {
              const rest = Buffer.concat([this.hb.subarray(1, this.hlen), buf.subarray(pos, n)]);
              this.hlen = 0;
              this.badStart();
              buf = rest;
              pos = 0;
              n = rest.length;
              break;
            }
          }
          if (this.hlen >= MAX_HEAD) {
            this.salvage(`header block too large (> ${MAX_HEAD} bytes)`, 0);
            stats.parseErrors++;
            this.enterResync();
            break;
          }
          this.hscan = Math.max(0, this.hlen - 3);
          break;
        }
        case ST_BODY: {
          const m = this.msg;
          if (m === null) {
            this.state = ST_START; // the message was ended from the other side (protocol switch)
            break;
          }
          const avail = n - pos;
          const rem = this.remaining;
          if (avail >= rem && m.keptLen === 0 && !m.hole) {
            // the whole body is in this buffer: finish it in place, no copy
            m.wireBody += rem;
            m.bodyBytes += rem;
            this.remaining = 0;
            const limit = this.p.ctx.opts.maxBodyBytes;
            this.complete(ts, buf.subarray(pos, pos + Math.min(rem, limit)), true);
            pos += rem;
            break;
          }
          const take = Math.min(avail, rem);
          this.keep(m, buf, pos, take);
          m.wireBody += take;
          this.remaining = rem - take;
          pos += take;
          if (this.remaining === 0) this.complete(ts, null, true);
          break;
        }
        case ST_CHUNK_SIZE:
        case ST_TRAILER: {
          const m = this.msg;
          if (m === null) {
            this.state = ST_START;
            break;
          }
          const nl = buf.indexOf(10, pos);
          if (nl < 0) {
            m.wireBody += n - pos;
            if (this.line.length + (n - pos) > MAX_LINE) {
              this.fail(this.state === ST_CHUNK_SIZE ? 'invalid chunked encoding: chunk-size line too long' : 'trailer line too long');
            } else this.line += latin1(buf, pos, n);
            pos = n;
            break;
          }
          m.wireBody += nl + 1 - pos;
          let line = this.line.length === 0 ? latin1(buf, pos, nl) : this.line + latin1(buf, pos, nl);
          this.line = '';
          pos = nl + 1;
          if (line.length > MAX_LINE) {
            this.fail('invalid chunked encoding: line too long');
            break;
          }
          if (line.charCodeAt(line.length - 1) === 13) line = line.slice(0, -1);
          if (this.state === ST_TRAILER) {
            if (line.length === 0) this.complete(ts, null, true);
            else {
              if (++this.trailerLines > 256) {
                this.fail('too many trailer fields');
                break;
              }
              parseHeaderLines(`${line}\n\n`, 0, m, true);
            }
            break;
          }
          const size = parseChunkSize(line);
          if (size < 0) {
            this.fail('invalid chunked encoding: bad chunk size');
            break;
          }
          if (size === 0) {
            this.state = ST_TRAILER;
            this.trailerLines = 0;
          }
          else {
            this.remaining = size;
            this.state = ST_CHUNK_DATA;
          }
          break;
        }
        case ST_CHUNK_DATA: {
          const m = this.msg;
          if (m === null) {
            this.state = ST_START; // the message was ended from the other side (protocol switch)
            break;
          }
          const take = Math.min(n - pos, this.remaining);
          this.keep(m, buf, pos, take);
          m.wireBody += take;
          this.remaining -= take;
          pos += take;
          if (this.remaining === 0) {
            this.state = ST_CHUNK_END;
            this.cr = false;
          }
          break;
        }
        case ST_CHUNK_END: {
          const m = this.msg;
          if (m === null) {
            this.state = ST_START; // the message was ended from the other side (protocol switch)
            break;
          }
          const c = buf[pos];
          if (c === 13 && !this.cr) {
            this.cr = true;
            m.wireBody++;
            pos++;
          } else if (c === 10) {
            m.wireBody++;
            pos++;
            this.state = ST_CHUNK_SIZE;
          } else this.fail('invalid chunked encoding: no CRLF after chunk data');
          break;
        }
        case ST_CLOSE_BODY: {
          const m = this.msg;
          if (m === null) {
            this.state = ST_START; // the message was ended from the other side (protocol switch)
            break;
          }
          this.keep(m, buf, pos, n - pos);
          m.wireBody += n - pos;
          m.lastTsMs = ts;
          pos = n;
          break;
        }
        case ST_RESYNC: {
          const at = this.resync(buf, pos, n);
          if (at === -1) {
            pos = n;
            break;
          }
          this.state = ST_START;
          if (at >= 0) pos = at;
          else {
            // the start line began in bytes kept from an earlier buffer
            buf = this.restart;
            this.restart = EMPTY;
            pos = 0;
            n = buf.length;
          }
          break;
        }
        case ST_HOLD: {
          const len = n - pos;
          if (this.heldBytes + len > MAX_HOLD || this.held.length >= 4096) {
            // not an upgrade after all (or too much to hold): parse what was held, then this
            this.release();
            break;
          }
          this.held.push({ data: Buffer.from(buf.subarray(pos, n)), gap: 0, ts });
          this.heldBytes += len;
          pos = n;
          break;
        }
        case ST_SWITCHED: {
          this.p.forwardData(this.dir, pos === 0 ? buf : buf.subarray(pos, n), ts);
          pos = n;
          break;
        }
        default: {
          stats.bytesIgnored += n - pos;
          pos = n;
          break;
        }
      }
    }
  }

  /** Can buf[from:to] begin a message? (no: not a start line; more: a prefix of one). */
  private viable(buf: Buffer, from: number, to: number): ProbeResult {
    if (buf[from] === 72) {
      const s = statusLineAt(buf, from, to);
      if (s !== 'no') return s;
    }
    let i = from;
    while (i < to && i - from <= MAX_METHOD && (isUpper(buf[i]) || buf[i] === 45 || buf[i] === 95)) i++;
    if (i === from || i - from > MAX_METHOD) return 'no';
    if (i === to) return 'more';
    return buf[i] === 32 ? 'more' : 'no';
  }

  private hAppend(buf: Buffer, pos: number, take: number): void {
    const need = this.hlen + take;
    if (need > this.hb.length) {
      const nb = Buffer.allocUnsafe(Math.min(MAX_HEAD, Math.max(need, this.hb.length * 2, 1024)));
      this.hb.copy(nb, 0, 0, this.hlen);
      this.hb = nb;
    }
    buf.copy(this.hb, this.hlen, pos, pos + take);
    this.hlen = need;
  }

  /** Bad bytes where a message should start: count, and scan for the next start line. */
  private badStart(): void {
    if (this.seen) stats.parseErrors++;
    this.enterResync();
  }

  enterResync(): void {
    this.lostTs = Math.max(this.lostTs, this.nowTs);
    this.state = ST_RESYNC;
    this.rlen = 0;
    this.rscan = 0;
    this.line = '';
    stats.resyncs++;
  }

  /** Parses the head in b[start:end] (end is after its empty line) and starts the message. -1: not a valid start line. */
  private head(b: Buffer, start: number, end: number, ts: number): number {
    let s = utf8(b, start, end);
    let fix = false;
    if (s.length !== end - start) {
      // non-ASCII bytes: parse a byte-per-char string, then re-decode the strings as UTF-8
      s = latin1(b, start, end);
      fix = true;
    }
    const m = new Msg(this.dir, ts);
    const nl = s.indexOf('\n');
    if (nl < 0) return -1;
    const le = nl > 0 && s.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
    if (!parseStartLine(s, le, m)) return -1;
    const used = parseHeaderLines(s, nl + 1, m, false);
    if (used < 0) return -1;
    if (fix) fixUtf8(m);
    m.headersSize = used;
    this.begin(m);
    return used;
  }

  /**
   * A parsed head starts a message: queue a request; pair a response and
   * decide how its body is framed; handle interim responses and upgrades.
   */
  private begin(m: Msg): void {
    this.seen = true;
    const p = this.p;
    if (m.isRequest) {
      stats.requests++;
      p.pending[this.dir].push(m);
      this.msg = m;
      if (m.transferEncoding.length > 0) {
        if (!m.chunked()) {
          this.fail('invalid Transfer-Encoding for a request');
          return;
        }
        this.startChunked(m);
      } else if (m.badLength) this.fail('invalid Content-Length');
      else if (m.contentLength > 0) this.startLength(m, m.contentLength);
      else this.complete(m.tsMs, null, true);
      return;
    }
    stats.responses++;
    const st = m.status;
    if (st < 200 && st !== 101) {
      // 100 Continue, 102, 103: interim, the final response follows
      stats.interimResponses++;
      this.state = ST_START;
      return;
    }
    const req = p.matchRequest(this.dir, m);
    this.msg = m;
    const method = req === null ? '' : req.method;
    if (st === 101 || (method === 'CONNECT' && st >= 200 && st < 300)) {
      this.complete(m.tsMs, null, false);
      p.switchProtocols(this, m, req);
      return;
    }
    if (method === 'HEAD' || st === 204 || st === 304) this.complete(m.tsMs, null, true);
    else if (m.transferEncoding.length > 0) {
      if (m.chunked()) this.startChunked(m);
      else this.startClose(m);
    } else if (m.badLength) this.fail('invalid Content-Length');
    else if (m.contentLength > 0) this.startLength(m, m.contentLength);
    else if (m.contentLength === 0) this.complete(m.tsMs, null, true);
    else this.startClose(m);
    // the request asked for an upgrade that did not happen: what its side held is HTTP/1 after all
    if (req !== null && p.sides[req.dir].holdFor === req) p.sides[req.dir].release();
  }

  private startLength(m: Msg, len: number): void {
    m.hasBody = true;
    this.remaining = len;
    this.state = ST_BODY;
  }

  private startChunked(m: Msg): void {
    m.hasBody = true;
    this.state = ST_CHUNK_SIZE;
    this.line = '';
  }

  private startClose(m: Msg): void {
    m.hasBody = true;
    this.state = ST_CLOSE_BODY;
  }

  /** Keeps body bytes up to maxBodyBytes (copied: buffers are only valid during onData); counts the rest. */
  private keep(m: Msg, buf: Buffer, pos: number, len: number): void {
    m.bodyBytes += len;
    if (m.hole) return;
    const room = this.p.ctx.opts.maxBodyBytes - m.keptLen;
    if (room <= 0 || len === 0) return;
    const k = Math.min(room, len);
    (m.kept ??= []).push(Buffer.from(buf.subarray(pos, pos + k)));
    m.keptLen += k;
  }

  /**
   * The current message is complete. `view`: its whole kept body, in place.
   * `normal`: complete per its framing (an Upgrade/CONNECT request then holds this side).
   */
  complete(ts: number, view: Buffer | null, normal: boolean): void {
    const m = this.msg as Msg;
    this.msg = null;
    this.state = ST_START;
    m.done = true;
    if (ts > m.lastTsMs) m.lastTsMs = ts;
    if (m.hasBody) {
      const kept = view ?? (m.kept === null ? EMPTY : m.kept.length === 1 ? m.kept[0] : Buffer.concat(m.kept, m.keptLen));
      const o = this.p.ctx.opts;
      m.body = finishBody(kept, m.bodyBytes, m.hole, m.contentType, m.contentEncoding, o.decodeBodies, o.maxBodyBytes);
      m.kept = null;
    }
    if (normal && m.isRequest && m.partner === null && (m.upgrade.length > 0 || m.method === 'CONNECT')) {
      this.state = ST_HOLD;
      this.holdFor = m;
    }
    this.p.messageDone(m);
  }

  /** The current message is broken: it becomes (part of) an item with `error`, and this side resyncs. */
  fail(error: string): void {
    stats.parseErrors++;
    const m = this.msg;
    if (m !== null) {
      m.addError(error);
      this.complete(m.lastTsMs, null, false);
    }
    this.enterResync();
  }

  /** Makes what can be read of a partial head into a message with `error` (gap, close, too large). */
  private salvage(error: string, gapBytes: number): void {
    this.hscan = 0;
    const len = this.hlen;
    this.hlen = 0;
    if (len === 0) return;
    const s = latin1(this.hb, 0, len);
    const nl = s.indexOf('\n');
    const m = new Msg(this.dir, this.hTs);
    const le = nl > 0 && s.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
    const ok = nl >= 0 ? parseStartLine(s, le, m) : partialStartLine(s, m);
    if (!ok || (!m.isRequest && m.status < 200 && m.status !== 101)) {
      stats.bytesSkipped += len;
      return;
    }
    if (nl >= 0) parseHeaderLines(s, nl + 1, m, false);
    fixUtf8(m);
    m.headersSize = len;
    m.gapBytes += gapBytes;
    if (error.length > 0) m.addError(error);
    this.seen = true;
    if (m.isRequest) {
      stats.requests++;
      this.p.pending[this.dir].push(m);
    } else {
      stats.responses++;
      this.p.matchRequest(this.dir, m);
    }
    this.msg = m;
    this.complete(m.tsMs, null, false);
  }

  gap(len: number, ts: number): void {
    this.nowTs = ts;
    stats.gaps++;
    stats.gapBytes += len;
    const m = this.msg;
    switch (this.state) {
      case ST_START:
        // whole messages may have been lost: find the next start line
        this.enterResync();
        return;
      case ST_HEAD:
        this.salvage('', len);
        this.enterResync();
        return;
      case ST_BODY:
      case ST_CHUNK_DATA:
        if (m !== null && len <= this.remaining) {
          // inside a body of known length: skip exactly, framing stays right
          m.hole = true;
          m.gapBytes += len;
          m.bodyBytes += len;
          m.wireBody += len;
          this.remaining -= len;
          if (this.remaining === 0) {
            if (this.state === ST_BODY) this.complete(ts, null, true);
            else {
              this.state = ST_CHUNK_END;
              this.cr = false;
            }
          }
          return;
        }
        break;
      case ST_CLOSE_BODY:
        if (m !== null) {
          m.hole = true;
          m.gapBytes += len;
          m.bodyBytes += len;
          m.wireBody += len;
        }
        return;
      case ST_RESYNC:
        stats.bytesSkipped += this.rlen;
        this.rlen = 0;
        this.rscan = 0;
        return;
      case ST_HOLD:
        this.held.push({ data: null, gap: len, ts });
        return;
      case ST_SWITCHED:
        this.p.forwardGap(this.dir, len, ts);
        return;
      case ST_DEAD:
        stats.bytesIgnored += len;
        return;
    }
    // lost bytes cross the end of the message in flight: it ends here, damaged
    if (m !== null) {
      m.gapBytes += len;
      m.hole = true;
      this.complete(m.lastTsMs, null, false);
    }
    this.enterResync();
  }

  /** Parses the bytes held for an upgrade that did not happen. */
  release(): void {
    if (this.state !== ST_HOLD) return;
    this.state = ST_START;
    this.holdFor = null;
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    for (const h of held) {
      if (h.data !== null) this.feed(h.data, h.ts);
      else this.gap(h.gap, h.ts);
    }
  }

  /** After 101 / CONNECT 2xx: this side's bytes go to `target` (null: ignored). */
  switchTo(switched: boolean): void {
    const m = this.msg;
    if (m !== null && this.state !== ST_HOLD) {
      m.addError('protocol switched mid-message');
      this.complete(m.lastTsMs, null, false);
    }
    if (this.state === ST_HEAD) stats.bytesSkipped += this.hlen;
    if (this.state === ST_RESYNC) stats.bytesSkipped += this.rlen;
    this.hlen = 0;
    this.rlen = 0;
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    this.holdFor = null;
    this.state = switched ? ST_SWITCHED : ST_DEAD;
    for (const h of held) {
      if (switched) {
        if (h.data !== null) this.p.forwardData(this.dir, h.data, h.ts);
        else this.p.forwardGap(this.dir, h.gap, h.ts);
      } else stats.bytesIgnored += h.data === null ? h.gap : h.data.length;
    }
  }

  close(ts: number, reason: string): void {
    while (this.state === ST_HOLD) this.release();
    const m = this.msg;
    switch (this.state) {
      case ST_HEAD:
        this.salvage(`connection closed mid-message (${reason})`, 0);
        break;
      case ST_CLOSE_BODY:
        if (m !== null) {
          // the end of the connection is the end of this body, unless the capture did not see the end
          if (reason === 'timeout' || reason === 'end') m.addError(`body delimited by connection close, which was not seen (${reason})`);
          this.complete(ts, null, true);
        }
        break;
      case ST_BODY:
      case ST_CHUNK_SIZE:
      case ST_CHUNK_DATA:
      case ST_CHUNK_END:
      case ST_TRAILER:
        if (m !== null) {
          m.addError(`connection closed mid-message (${reason})`);
          this.complete(m.lastTsMs, null, false);
        }
        break;
      case ST_RESYNC:
        stats.bytesSkipped += this.rlen;
        this.rlen = 0;
        break;
    }
    this.rb = EMPTY;
    this.hb = EMPTY;
    if (this.state !== ST_SWITCHED) this.state = ST_DEAD;
  }

  /**
   * Scans buf[pos:n] for the next start line: a status line ("HTTP/1.x NNN")
   * or a request line with a known method, found from its "HTTP/1.x" end,
   * anywhere (a body need not end with a newline). The bytes are copied into
   * a window (rb) in growing pieces, so a start line close by costs little,
   * and the last MAX_LINE bytes stay there across calls so lines split between
   * buffers are found. Returns where the start line is in buf, -1 (none: all
   * consumed), or -2 (it began in bytes of an earlier buffer: continue with
   * this.restart).
   */
  private resync(buf: Buffer, pos: number, n: number): number {
    // rb[j] is buf[base + j - carry] for j >= carry; rb[0:carry] came before buf[pos]
    let carry = this.rlen;
    const base = pos;
    let step = 512;
    while (pos < n) {
      const take = Math.min(n - pos, step);
      step = Math.min(step * 2, MAX_LINE);
      const need = this.rlen + take;
      if (need > this.rb.length) {
        const nb = Buffer.allocUnsafe(Math.min(3 * MAX_LINE, Math.max(need, this.rb.length * 2, 1024)));
        this.rb.copy(nb, 0, 0, this.rlen);
        this.rb = nb;
      }
      buf.copy(this.rb, this.rlen, pos, pos + take);
      this.rlen = need;
      pos += take;
      const k = this.scanWindow();
      if (k >= 0) {
        stats.bytesSkipped += k;
        const w = this.rb;
        this.rb = EMPTY;
        this.rlen = 0;
        this.rscan = 0;
        if (k >= carry) return base + k - carry;
        this.restart = Buffer.concat([w.subarray(k, carry), buf.subarray(base, n)]);
        return -2;
      }
      // keep the last MAX_LINE bytes: a request line ending later may start in them
      if (this.rlen > 2 * MAX_LINE) {
        const drop = this.rlen - MAX_LINE;
        stats.bytesSkipped += drop;
        this.rb.copy(this.rb, 0, drop, this.rlen);
        this.rlen -= drop;
        carry -= drop;
        this.rscan = Math.max(0, this.rscan - drop);
      }
    }
    return -1;
  }

  /** Index in rb[0:rlen] of the first start line, or -1 (rscan: where to look next time). */
  private scanWindow(): number {
    const w = this.rb.subarray(0, this.rlen);
    let i = w.indexOf(HTTP1, this.rscan);
    let next = Math.max(0, this.rlen - 11);
    while (i >= 0) {
      const st = statusLineAt(w, i, this.rlen);
      if (st === 'more' || (st === 'yes' && i + 12 >= this.rlen)) {
        next = Math.min(next, i);
        break;
      }
      if (st === 'yes') {
        const c = w[i + 12];
        if (c === 32 || c === 13 || c === 10) return i;
      }
      const start = this.requestStart(w, i);
      if (start === -2) {
        next = Math.min(next, i);
        break;
      }
      if (start >= 0) return start;
      i = w.indexOf(HTTP1, i + 1);
    }
    this.rscan = next;
    return -1;
  }

  /**
   * "HTTP/1." at w[i] ending a request line? Returns the line's start, -1 if
   * not, -2 if more bytes are needed to tell.
   */
  private requestStart(w: Buffer, i: number): number {
    const len = this.rlen;
    if (i < 5 || w[i - 1] !== 32) return -1;
    if (i + 7 >= len) return -2;
    const d = w[i + 7];
    if (d < 48 || d > 57) return -1;
    if (i + 8 >= len) return -2;
    if (w[i + 8] !== 13 && w[i + 8] !== 10) return -1;
    // target: back to the previous space, printable
    let t = i - 2;
    while (t >= 0 && i - t < MAX_LINE && w[t] > 32 && w[t] !== 127) t--;
    if (t < 1 || t === i - 2 || w[t] !== 32) return -1;
    // method: upper-case letters before the target's space; the body before it may end in letters too
    let ms = t - 1;
    while (ms >= 0 && t - ms <= MAX_METHOD && (isUpper(w[ms]) || w[ms] === 45)) ms--;
    ms++;
    for (let k = ms; k <= t - 3; k++) if (HTTP1_METHODS.has(latin1(w, k, t))) return k;
    return -1;
  }
}

/**
 * A start line cut short (by a gap or the end of the connection): enough of
 * it to make an item with an error. Responses need "HTTP/1.x NNN"; requests a
 * known method and the start of the target (kept as far as it goes).
 */
function partialStartLine(s: string, m: Msg): boolean {
  if (s.startsWith('HTTP/1.')) return s.length >= 12 && parseStartLine(s, s.length, m);
  const sp = s.indexOf(' ');
  if (sp <= 0 || !HTTP1_METHODS.has(s.slice(0, sp))) return false;
  let end = s.indexOf(' ', sp + 1);
  if (end < 0) end = s.length;
  if (end === sp + 1) return false;
  m.isRequest = true;
  m.method = s.slice(0, sp);
  m.target = s.slice(sp + 1, end);
  m.addError('request line cut short');
  return true;
}

/** Index just after the first empty line (CRLF or bare LF) in b[from:to], or -1. */
function findHeadEnd(b: Buffer, from: number, to: number): number {
  let i = from;
  for (;;) {
    const nl = b.indexOf(10, i);
    if (nl < 0 || nl >= to) return -1;
    if (nl + 1 < to && b[nl + 1] === 10) return nl + 2;
    if (nl + 2 < to && b[nl + 1] === 13 && b[nl + 2] === 10) return nl + 3;
    i = nl + 1;
  }
}

/** Hex chunk size before any ';' extension; -1 when malformed (or above 2^52). */
function parseChunkSize(line: string): number {
  let end = line.indexOf(';');
  if (end < 0) end = line.length;
  let i = 0;
  while (i < end && (line.charCodeAt(i) === 32 || line.charCodeAt(i) === 9)) i++;
  let e = end;
  while (e > i && (line.charCodeAt(e - 1) === 32 || line.charCodeAt(e - 1) === 9)) e--;
  if (e === i || e - i > 13) return -1;
  let x = 0;
  for (; i < e; i++) {
    const c = line.charCodeAt(i);
    let d: number;
    if (c >= 48 && c <= 57) d = c - 48;
    else if (c >= 97 && c <= 102) d = c - 87;
    else if (c >= 65 && c <= 70) d = c - 55;
    else return -1;
    x = x * 16 + d;
  }
  return x;
}

// ---------------------------------------------------------------------------
// the stream parser: pairing and items

class Http1Parser implements StreamParser {
  readonly ctx: DissectorContext;
  readonly sides: [Side, Side];
  /** Requests per direction of their sender, waiting for a response, oldest first. */
  readonly pending: [Msg[], Msg[]] = [[], []];
  /** The parser the stream was handed to after 101 h2c. */
  next: StreamParser | null = null;
  closed = false;

  constructor(ctx: DissectorContext) {
    this.ctx = ctx;
    this.sides = [new Side(this, 0), new Side(this, 1)];
  }

  onData(dir: Direction, data: Buffer, tsMs: number): void {
    if (this.closed || data.length === 0) return;
    try {
      this.sides[dir].feed(data, tsMs);
    } catch (e) {
      this.internal(dir, e);
    }
  }

  onGap(dir: Direction, length: number, tsMs: number): void {
    if (this.closed) return;
    try {
      this.sides[dir].gap(length, tsMs);
    } catch (e) {
      this.internal(dir, e);
    }
  }

  onTick(nowMs: number): void {
    if (this.closed) return;
    try {
      const timeout = this.ctx.opts.pairTimeoutMs;
      for (const d of [0, 1] as const) {
        const q = this.pending[d];
        while (q.length > 0 && q[0].done && nowMs - q[0].lastTsMs > timeout) {
          const r = q.shift() as Msg;
          stats.unansweredRequests++;
          this.emit(r, null, TIMED_OUT);
          if (this.sides[d].holdFor === r) this.sides[d].release();
        }
      }
      this.next?.onTick(nowMs);
    } catch (e) {
      this.internal(0, e);
    }
  }

  onClose(tsMs: number, reason: 'fin' | 'rst' | 'timeout' | 'end'): void {
    if (this.closed) return;
    try {
      this.sides[0].close(tsMs, reason);
      this.sides[1].close(tsMs, reason);
      for (const q of this.pending) {
        while (q.length > 0) {
          const r = q.shift() as Msg;
          stats.unansweredRequests++;
          this.emit(r, null, `no response: connection closed (${reason})`);
        }
      }
      this.next?.onClose(tsMs, reason);
    } catch (e) {
      this.internal(0, e);
    }
    this.closed = true;
  }

  /** A bug of ours must not take the capture down: count it, drop what was in flight on that side. */
  private internal(dir: Direction, e: unknown): void {
    noteInternalError(e);
    const s = this.sides[dir];
    s.msg = null;
    s.hlen = 0;
    s.enterResync();
  }

  /**
   * The oldest waiting request of the other direction that started no later
   * than `resp`. After the response side lost bytes (gap, unparseable), a
   * waiting request sent before the loss whose successor was also sent before
   * this response most likely had its response in the lost bytes (keep-alive
   * clients wait for a response before the next request): it is emitted
   * unanswered rather than paired with a later response. Pipelined requests
   * that lost several responses can still be mispaired.
   */
  matchRequest(respDir: Direction, resp: Msg): Msg | null {
    const q = this.pending[respDir === 0 ? 1 : 0];
    const side = this.sides[respDir];
    if (side.lostTs > 0) {
      while (q.length > 1 && q[0].done && q[0].tsMs < side.lostTs && q[1].tsMs <= resp.tsMs) {
        const lost = q.shift() as Msg;
        stats.unansweredRequests++;
        this.emit(lost, null, 'no response: lost in a capture gap or unparseable');
      }
      side.lostTs = 0;
    }
    if (q.length === 0 || q[0].tsMs > resp.tsMs) return null;
    const r = q.shift() as Msg;
    r.partner = resp;
    resp.partner = r;
    return r;
  }

  messageDone(m: Msg): void {
    const o = m.partner;
    if (m.isRequest) {
      if (o !== null && o.done) this.emit(m, o, '');
    } else if (o === null) {
      stats.orphanResponses++;
      this.emit(null, m, ORPHAN);
    } else if (o.done) this.emit(o, m, '');
  }

  /** 101 or CONNECT 2xx: h2c goes to the http2 dissector; anything else is not parsed further. */
  switchProtocols(respSide: Side, resp: Msg, req: Msg | null): void {
    const reqSide = this.sides[respSide.dir === 0 ? 1 : 0];
    let next: StreamParser | null = null;
    if (resp.status === 101) {
      const proto = resp.upgrade.length > 0 ? resp.upgrade : (req?.upgrade ?? '');
      if (resp.hasToken(proto, 'h2c')) next = this.ctx.switchTo('http2');
      if (next !== null) stats.upgradesH2c++;
      else stats.upgradesOther++;
    } else stats.tunnels++;
    this.next = next;
    reqSide.switchTo(next !== null);
    respSide.switchTo(next !== null);
    // Nothing may stay pending: after switchTo the reassembly calls only the
    // new parser (this one gets no onClose). Requests after the upgrade
    // request were not HTTP/1 after all.
    for (const q of this.pending) {
      while (q.length > 0) {
        const r = q.shift() as Msg;
        stats.unansweredRequests++;
        this.emit(r, null, 'no response: protocol switched');
      }
    }
  }

  forwardData(dir: Direction, data: Buffer, ts: number): void {
    if (this.next !== null) this.next.onData(dir, data, ts);
    else stats.bytesIgnored += data.length;
  }

  forwardGap(dir: Direction, len: number, ts: number): void {
    if (this.next !== null) this.next.onGap(dir, len, ts);
    else stats.bytesIgnored += len;
  }

  emit(req: Msg | null, resp: Msg | null, extra: string): void {
    if ((req !== null && req.emitted) || (resp !== null && resp.emitted)) return;
    if (req !== null) req.emitted = true;
    if (resp !== null) resp.emitted = true;
    let error = extra;
    if (req !== null) error = joinError(error, messageError(req));
    if (resp !== null) error = joinError(error, messageError(resp));
    const item: ItemDraft = {
      protocol: protocolOf(req !== null ? req.minor : (resp as Msg).minor),
      request: req === null ? null : buildRequest(req),
      response: resp === null ? null : buildResponse(resp),
      requestSize: req === null ? 0 : req.headersSize + req.wireBody,
      responseSize: resp === null ? 0 : resp.headersSize + resp.wireBody,
      requestTsMs: req === null ? 0 : req.tsMs,
      responseTsMs: resp === null ? 0 : resp.tsMs,
    };
    if (error.length > 0) {
      item.error = error;
      stats.itemsWithError++;
    }
    stats.items++;
    this.ctx.sink.emit(this.ctx.conn, item);
  }
}

function joinError(a: string, b: string): string {
  return a.length === 0 ? b : b.length === 0 ? a : `${a}; ${b}`;
}

function messageError(m: Msg): string {
  return joinError(m.gapBytes > 0 ? `capture gap: ${m.gapBytes} bytes lost` : '', m.error);
}

function buildRequest(m: Msg): Record<string, unknown> {
  const { path, query } = splitTarget(m.target);
  const target = m.target;
  const targetUri = target.charCodeAt(0) === 47 && m.host.length > 0 ? `http://${m.host}${target}` : target;
  const r: Record<string, unknown> = {
    method: m.method,
    path,
    pathSegments: pathSegments(path),
    url: target,
    targetUri,
    httpVersion: httpVersion(m.minor),
    headers: m.headers,
    cookies: parseCookies(m.cookie),
    queryString: parseQuery(query),
  };
  const b = m.body;
  if (b !== null && m.wireBody > 0) {
    const pd: Record<string, unknown> = { mimeType: m.contentType, text: b.text };
    if (b.base64) pd.encoding = 'base64';
    if (b.truncated) pd.truncated = true;
    r.postData = pd;
  }
  r.bodySize = m.wireBody;
  r.headersSize = m.headersSize;
  if (m.trailers !== null) r.trailers = m.trailers;
  return r;
}

function buildResponse(m: Msg): Record<string, unknown> {
  const b = m.body;
  const content: Record<string, unknown> = b === null
    ? { encoding: m.contentEncoding, mimeType: m.contentType, size: 0, text: '' }
    : { encoding: b.base64 ? 'base64' : m.contentEncoding, mimeType: m.contentType, size: b.size, text: b.text };
  if (b !== null && b.truncated) content.truncated = true;
  const r: Record<string, unknown> = {
    status: m.status,
    statusText: m.statusText,
    httpVersion: httpVersion(m.minor),
    headers: m.headers,
    cookies: parseSetCookies(m.setCookies),
    content,
    bodySize: m.wireBody,
    headersSize: m.headersSize,
    redirectURL: m.location,
  };
  if (m.trailers !== null) r.trailers = m.trailers;
  return r;
}

/** The HTTP/1.x dissector (name "http"). */
export const http1Dissector: StreamDissector = {
  name: 'http',
  probe: probeHttp1,
  create(ctx: DissectorContext): StreamParser {
    return new Http1Parser(ctx);
  },
};
