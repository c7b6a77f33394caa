/**
 * HTTP/2 (RFC 9113) stream dissector, cleartext: prior knowledge (client
 * preface), an `Upgrade: h2c` handed over by the HTTP/1 dissector
 * (ctx.switchTo('http2')), or a capture that starts mid-connection. gRPC
 * calls (content-type application/grpc*) become gRPC items (grpc.ts).
 *
 * Frames are parsed incrementally per direction without buffering payloads:
 * DATA is handed on as it arrives, header blocks (HEADERS/PUSH_PROMISE +
 * CONTINUATION) are gathered up to MAX_HEADER_BLOCK and decoded with that
 * direction's HPACK decoder. One item per stream: when the response ends
 * (END_STREAM), when the stream is reset or refused by GOAWAY (with an
 * error), or at the pair timeout / connection close (with an error).
 *
 * h2c upgrade: the upgraded request was HTTP/1.1 (the HTTP/1 dissector makes
 * its item, with the 101 response); its real response arrives here on stream
 * 1 with no HTTP/2 request. It becomes an item with `request: null` and the
 * response, without an error (the request is not missing, it is in the
 * HTTP/1 item). A response on any other stream without a request (capture
 * started mid-connection, or lost the request) carries an error.
 *
 * Capture loss (onGap), per direction:
 *  - lost bytes inside the current frame's payload keep the frame layer in
 *    step (the frame length is known): lost DATA damages that stream's body
 *    only (error on that item); a lost piece of a header block loses that
 *    block and so the HPACK context (below);
 *  - lost bytes that reach a frame header lose the frame boundaries: every
 *    stream still sending in that direction gets an error, the HPACK context
 *    is lost, and parsing resumes only where three consecutive, mutually
 *    consistent frame headers are found (known type, flags and length valid
 *    for the type, stream-id rules, CONTINUATION sequencing, length within
 *    the maximum frame size). Random bytes pass that test with negligible
 *    probability; a payload that embeds HTTP/2 frames on purpose could fool
 *    it, and then yields items with errors, never a crash.
 *
 * Lost HPACK context: the decoder goes on in partial mode (hpack.ts): header
 * fields that reference entries inserted before the loss cannot be decoded.
 * Items whose headers lack such fields say so in `error` ("HPACK context
 * lost ..."); blocks that only use the static table, literals and entries
 * inserted since decode exactly and get no error.
 *
 * Bounds per connection: MAX_OPEN_STREAMS streams (the oldest is flushed
 * with an error beyond), header blocks up to MAX_HEADER_BLOCK, decoded lists
 * up to HPACK_MAX_LIST_SIZE, dynamic tables up to HPACK_HARD_MAX_TABLE_SIZE,
 * body bytes kept up to opts.maxBodyBytes per body, and everything kept
 * (bodies + header lists) within a connection budget.
 */
import type { ConnectionInfo, Direction, DissectorContext, DissectorOptions, ItemDraft, ProbeResult, ProtocolInfo, StreamDissector, StreamParser } from '../types.ts';
import { HpackDecoder, type HeaderBlock } from './hpack.ts';
import { GRPC_PROTOCOL, GrpcFramer, decodeGrpcMessage, isGrpcContentType, parseGrpcPath, parseGrpcStatus } from './grpc.ts';
// Body decoding and the target/cookie/query helpers are the HTTP/1 dissector's, so both HTTP versions fill items alike.
import { finishBody } from './http1-body.ts';
import { parseCookies, parseQuery, parseSetCookies, pathSegments, setOwn, splitTarget } from './http1-fields.ts';
import { h2stats, noteHttp2InternalError } from './http2-stats.ts';

export const HTTP2_PROTOCOL: ProtocolInfo = { name: 'http', version: '2.0', abbr: 'HTTP/2', longName: 'Hypertext Transfer Protocol Version 2 (HTTP/2)', macro: 'http2' };

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

const DATA = 0;
const HEADERS = 1;
const PRIORITY = 2;
const RST_STREAM = 3;
const SETTINGS = 4;
const PUSH_PROMISE = 5;
const PING = 6;
const GOAWAY = 7;
const WINDOW_UPDATE = 8;
const CONTINUATION = 9;

const F_END_STREAM = 0x1;
const F_ACK = 0x1;
const F_END_HEADERS = 0x4;
const F_PADDED = 0x8;
const F_PRIORITY = 0x20;

const DEFAULT_MAX_FRAME = 16_384;
const MAX_FRAME_LIMIT = 16_777_215;

/** Largest header block (all fragments) gathered; a larger one is skipped and loses the HPACK context. */
export const MAX_HEADER_BLOCK = 256 * 1024;
/** Open streams per connection; beyond, the oldest is flushed as an item with an error. */
export const MAX_OPEN_STREAMS = 1000;
/** Control frame bytes kept (SETTINGS with 170 entries; the rest of a longer frame is ignored). */
const PRE_MAX = 1020;
/** Bytes buffered while looking for frame boundaries after a gap. */
const SCAN_MAX = 256 * 1024;
/** Largest frame length accepted while resynchronising (the chain of three must fit in SCAN_MAX). */
const SCAN_MAX_FRAME = 64 * 1024;
/** Ids of finished streams remembered, so late frames (trailers after a reset, ...) open nothing. */
const CLOSED_RING = 256;
/** Ranges of unseen client stream ids remembered. */
const MAX_SKIPPED_RANGES = 64;

const ERROR_CODES = ['NO_ERROR', 'PROTOCOL_ERROR', 'INTERNAL_ERROR', 'FLOW_CONTROL_ERROR', 'SETTINGS_TIMEOUT', 'STREAM_CLOSED', 'FRAME_SIZE_ERROR',
  'REFUSED_STREAM', 'CANCEL', 'COMPRESSION_ERROR', 'CONNECT_ERROR', 'ENHANCE_YOUR_CALM', 'INADEQUATE_SECURITY', 'HTTP_1_1_REQUIRED'];
const errorName = (code: number) => ERROR_CODES[code] ?? `error 0x${code.toString(16)}`;

// Parsing phases of one direction.
const PH_PREFACE = 0;
const PH_HEAD = 1;
const PH_PREFIX = 2;
const PH_CONTENT = 3;
const PH_TAIL = 4;
const PH_SCAN = 5;

/**
 * Structural rules whose violation is a connection error (RFC 9113 §4.2, §6):
 * a real endpoint would have closed the connection, so for a capture it
 * means the frame boundaries are wrong. `strict` adds what resynchronisation
 * needs: a known type, flags valid for it, the length limit and the
 * direction's stream-id parity.
 */
function frameHeaderOk(b: Uint8Array, p: number, dir: Direction, strict: boolean, maxLen: number): boolean {
  const len = (b[p] << 16) | (b[p + 1] << 8) | b[p + 2];
  const type = b[p + 3];
  const flags = b[p + 4];
  const sid = ((b[p + 5] & 0x7f) << 24) | (b[p + 6] << 16) | (b[p + 7] << 8) | b[p + 8];
  if (strict && (len > maxLen || (b[p + 5] & 0x80) !== 0)) return false;
  switch (type) {
    case DATA:
      return sid !== 0 && (!strict || ((flags & ~(F_END_STREAM | F_PADDED)) === 0 && (dir === 1 || sid % 2 === 1) && (!(flags & F_PADDED) || len >= 1)));
    case HEADERS:
      return sid !== 0 && (!strict || ((flags & ~(F_END_STREAM | F_END_HEADERS | F_PADDED | F_PRIORITY)) === 0 && (dir === 1 || sid % 2 === 1)
        && len >= (flags & F_PADDED ? 1 : 0) + (flags & F_PRIORITY ? 5 : 0)));
    case PRIORITY:
      return sid !== 0 && len === 5 && (!strict || flags === 0);
    case RST_STREAM:
      return sid !== 0 && len === 4 && (!strict || flags === 0);
    case SETTINGS:
      return sid === 0 && len % 6 === 0 && (!(flags & F_ACK) || len === 0) && (!strict || (flags & ~F_ACK) === 0);
    case PUSH_PROMISE:
      return sid !== 0 && (!strict || (dir === 1 && (flags & ~(F_END_HEADERS | F_PADDED)) === 0 && len >= (flags & F_PADDED ? 5 : 4)));
    case PING:
      return sid === 0 && len === 8 && (!strict || (flags & ~F_ACK) === 0);
    case GOAWAY:
      return sid === 0 && len >= 8 && (!strict || flags === 0);
    case WINDOW_UPDATE:
      return len === 4 && (!strict || flags === 0);
    case CONTINUATION:
      return sid !== 0 && (!strict || (flags & ~F_END_HEADERS) === 0);
    default:
      return !strict;
  }
}

/**
 * Whether `need` consecutive frame headers starting at `p` are valid and
 * consistent: 1 yes, 0 no, -1 not enough bytes to tell.
 */
function frameChain(b: Uint8Array, p: number, end: number, dir: Direction, maxLen: number, need: number): -1 | 0 | 1 {
  let openBlock = 0;
  for (let k = 0; k < need; k++) {
    if (p + 9 > end) return -1;
    if (!frameHeaderOk(b, p, dir, true, maxLen)) return 0;
    const len = (b[p] << 16) | (b[p + 1] << 8) | b[p + 2];
    const type = b[p + 3];
    const flags = b[p + 4];
    const sid = ((b[p + 5] & 0x7f) << 24) | (b[p + 6] << 16) | (b[p + 7] << 8) | b[p + 8];
    if (openBlock !== 0 ? type !== CONTINUATION || sid !== openBlock : type === CONTINUATION) return 0;
    openBlock = (type === HEADERS || type === PUSH_PROMISE || type === CONTINUATION) && !(flags & F_END_HEADERS) ? sid : 0;
    // Padding must fit in the payload.
    if ((type === DATA || type === HEADERS || type === PUSH_PROMISE) && flags & F_PADDED && p + 9 < end) {
      const fixed = type === HEADERS ? (flags & F_PRIORITY ? 6 : 1) : type === PUSH_PROMISE ? 5 : 1;
      if (b[p + 9] > len - fixed) return 0;
    }
    p += 9 + len;
  }
  return 1;
}

class Body {
  /** Payload bytes on the wire (padding excluded). */
  size = 0;
  parts: Buffer[] = [];
  kept = 0;
  truncated = false;
  damaged = false;
  framer: GrpcFramer | null = null;

  bytes(): Buffer {
    return this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
  }
}

class H2Stream {
  readonly id: number;
  /** Request header fields (null: not seen, or lost). */
  reqFields: string[] | null = null;
  reqTrailers: string[] | null = null;
  reqSeen = false;
  /** The request was never seen here (h2c upgrade, mid-connection capture): the item has request null. */
  reqMissing = false;
  reqHeadersSize = 0;
  reqTs = 0;
  reqEnded = false;
  readonly req = new Body();
  resFields: string[] | null = null;
  resTrailers: string[] | null = null;
  resSeen = false;
  resHeadersSize = 0;
  resTs = 0;
  readonly res = new Body();
  grpc = false;
  errors: string[] | null = null;
  lastTs: number;
  /** Header list bytes held (part of the connection budget). */
  retained = 0;

  constructor(id: number, ts: number) {
    this.id = id;
    this.lastTs = ts;
  }

  addError(e: string): void {
    if (this.errors === null) this.errors = [e];
    else if (!this.errors.includes(e)) this.errors.push(e);
  }
}

class Side {
  readonly dir: Direction;
  readonly decoder = new HpackDecoder();
  phase: number;
  prefaceMatched = 0;
  /** The direction began with its connection preface (client magic / server SETTINGS). */
  startSeen = false;
  started = false;
  /** Frame boundaries were lost at least once. */
  everLost = false;
  /** Largest frame the peer allows this side to send (SETTINGS_MAX_FRAME_SIZE, the largest announced). */
  maxFrameSize = DEFAULT_MAX_FRAME;
  ts = 0;
  // Current frame.
  readonly head = Buffer.alloc(9);
  headLen = 0;
  frameTs = 0;
  len = 0;
  type = 0;
  flags = 0;
  sid = 0;
  /** Payload bytes consumed. */
  pos = 0;
  readonly pre = Buffer.alloc(PRE_MAX);
  preNeed = 0;
  contentEnd = 0;
  /** Bytes of this frame were lost in a gap. */
  damaged = false;
  /** Payload inconsistent with its flags (padding longer than the frame). */
  malformed = false;
  // Header block being gathered.
  hbActive = false;
  hbKind = 0;
  hbSid = 0;
  hbPromised = 0;
  hbEndStream = false;
  hbTs = 0;
  hbWire = 0;
  hbLost: string | null = null;
  hb: Buffer = Buffer.alloc(0);
  hbLen = 0;
  hbView: Buffer | null = null;
  // Resynchronisation.
  scanBuf: Buffer | null = null;
  scanLen = 0;
  scanFrom = 0;
  replay: Buffer | null = null;

  constructor(dir: Direction) {
    this.dir = dir;
    this.phase = dir === 0 ? PH_PREFACE : PH_HEAD;
  }
}

export interface Http2ParserStats {
  openStreams: number;
  /** Body and header-list bytes held for open streams. */
  retainedBytes: number;
  /** Bytes held by the frame layer (header blocks being gathered, resynchronisation buffers). */
  frameBufferBytes: number;
  /** Items the sink refused (threw on). */
  emitErrors: number;
}

export class Http2Parser implements StreamParser {
  private readonly ctx: DissectorContext;
  private readonly opts: DissectorOptions;
  private readonly sides: [Side, Side] = [new Side(0), new Side(1)];
  private readonly streams = new Map<number, H2Stream>();
  private maxClientSid = 0;
  private maxPushSid = 0;
  private client1Seen = false;
  /** [lo, hi] pairs of client stream ids never seen opened (see noteSkipped). */
  private readonly skipped: number[] = [];
  private readonly closedIds = new Int32Array(CLOSED_RING).fill(-1);
  private closedPos = 0;
  private retained = 0;
  private readonly budget: number;
  private done = false;
  private emitErrors = 0;

  constructor(ctx: DissectorContext) {
    this.ctx = ctx;
    this.opts = ctx.opts;
    this.budget = Math.max(8 * 1024 * 1024, 16 * ctx.opts.maxBodyBytes);
  }

  stats(): Http2ParserStats {
    let frame = 0;
    for (const s of this.sides) frame += s.hb.length + (s.scanBuf?.length ?? 0) + (s.replay?.length ?? 0);
    return { openStreams: this.streams.size, retainedBytes: this.retained, frameBufferBytes: frame, emitErrors: this.emitErrors };
  }

  onData(dir: Direction, data: Buffer, tsMs: number): void {
    if (this.done || data.length === 0) return;
    try {
      const side = this.sides[dir];
      this.feed(side, data, data.length, tsMs);
      // Resynchronisation hands back the bytes it buffered; each round starts on a validated frame header, so it progresses.
      for (let round = 0; side.replay !== null && round < 10_000; round++) {
        const r = side.replay;
        side.replay = null;
        this.feed(side, r, r.length, tsMs);
      }
      if (side.replay !== null) {
        // Unreachable in practice; never carry bytes over to a later call (they would be parsed out of order).
        h2stats.bytesSkipped += side.replay.length;
        side.replay = null;
      }
    } catch (err) {
      this.fail(err);
    }
  }

  onGap(dir: Direction, length: number, tsMs: number): void {
    if (this.done || !(length > 0)) return;
    h2stats.gaps++;
    h2stats.gapBytes += length;
    try {
      this.feed(this.sides[dir], null, length, tsMs);
    } catch (err) {
      this.fail(err);
    }
  }

  onTick(nowMs: number): void {
    if (this.done) return;
    try {
      const limit = this.opts.pairTimeoutMs;
      for (const st of this.streams.values()) {
        if (nowMs - st.lastTs < limit) continue;
        h2stats.unanswered++;
        this.finish(st, st.resSeen ? 'response timed out before its end' : 'request timed out without response');
      }
    } catch (err) {
      this.fail(err);
    }
  }

  onClose(tsMs: number, reason: 'fin' | 'rst' | 'timeout' | 'end'): void {
    if (this.done) return;
    try {
      const why = reason === 'end' ? 'capture ended' : reason === 'timeout' ? 'connection idle timeout' : `connection closed (${reason})`;
      for (const st of this.streams.values()) {
        h2stats.unanswered++;
        this.finish(st, st.resSeen ? `response incomplete: ${why}` : `${why} before the response`);
      }
    } catch (err) {
      this.fail(err);
    }
    this.done = true;
    this.release();
  }

  /** A bug must not take the capture down: flush what is open with the error and ignore the rest of the connection. */
  private fail(err: unknown): void {
    noteHttp2InternalError(err);
    const msg = `http2 dissector failure: ${err instanceof Error ? err.message : String(err)}`;
    this.done = true;
    try {
      for (const st of this.streams.values()) this.finish(st, msg);
    } catch {
      // Nothing more can be saved from this connection.
    }
    this.streams.clear();
    this.release();
  }

  private release(): void {
    for (const s of this.sides) {
      s.hb = Buffer.alloc(0);
      s.scanBuf = null;
      s.replay = null;
    }
  }

  // ---- Frame layer -------------------------------------------------------

  /** `data` null: `n` bytes lost. */
  private feed(side: Side, data: Buffer | null, n: number, ts: number): void {
    side.ts = ts;
    let off = 0;
    while (off < n) {
      switch (side.phase) {
        case PH_PREFACE: {
          if (data === null) {
            this.loseSync(side, 'capture gap in the connection preface');
            return;
          }
          let m = side.prefaceMatched;
          while (off < n && m < PREFACE.length && data[off] === PREFACE[m]) {
            off++;
            m++;
          }
          side.prefaceMatched = m;
          if (m === PREFACE.length) {
            side.phase = PH_HEAD;
            side.startSeen = true;
          } else if (off < n) {
            // Not the preface: the capture started after it. The bytes that matched so far are frame bytes.
            side.phase = PH_HEAD;
            side.decoder.markLost('capture started mid-connection');
            side.maxFrameSize = MAX_FRAME_LIMIT;
            if (m > 0) this.feed(side, PREFACE, m, ts);
          }
          break;
        }
        case PH_HEAD: {
          if (data === null) {
            this.loseSync(side, `capture gap of ${n - off} bytes at a frame boundary`);
            return;
          }
          let hb: Buffer;
          let p: number;
          if (side.headLen === 0 && n - off >= 9) {
            hb = data;
            p = off;
            off += 9;
            side.frameTs = ts;
          } else {
            if (side.headLen === 0) side.frameTs = ts;
            const take = Math.min(9 - side.headLen, n - off);
            data.copy(side.head, side.headLen, off, off + take);
            side.headLen += take;
            off += take;
            if (side.headLen < 9) break;
            side.headLen = 0;
            hb = side.head;
            p = 0;
          }
          if (!this.startFrame(side, hb, p)) {
            // Keep what follows for the resynchronisation scan.
            if (off < n) this.scan(side, data, off, n);
            return;
          }
          break;
        }
        case PH_PREFIX: {
          const take = Math.min(side.preNeed - side.pos, n - off);
          if (data === null) side.damaged = true;
          else data.copy(side.pre, side.pos, off, off + take);
          side.pos += take;
          off += take;
          if (side.pos === side.preNeed) this.afterPrefix(side);
          break;
        }
        case PH_CONTENT: {
          const take = Math.min(side.contentEnd - side.pos, n - off);
          this.content(side, data, off, off + take);
          side.pos += take;
          off += take;
          if (side.pos === side.contentEnd) this.contentDone(side);
          break;
        }
        case PH_TAIL: {
          const take = Math.min(side.len - side.pos, n - off);
          side.pos += take;
          off += take;
          if (side.pos === side.len) side.phase = PH_HEAD;
          break;
        }
        case PH_SCAN: {
          if (data === null) {
            // Bytes on either side of a gap cannot form one chain.
            h2stats.bytesSkipped += side.scanLen;
            side.scanLen = 0;
            side.scanFrom = 0;
            return;
          }
          this.scan(side, data, off, n);
          return;
        }
        default:
          return;
      }
    }
  }

  /** Parses a frame header; false when it breaks the framing rules (boundaries lost). */
  private startFrame(side: Side, b: Buffer, p: number): boolean {
    const len = (b[p] << 16) | (b[p + 1] << 8) | b[p + 2];
    const type = b[p + 3];
    const flags = b[p + 4];
    const sid = b.readUInt32BE(p + 5) & 0x7fffffff;
    if (!frameHeaderOk(b, p, side.dir, false, MAX_FRAME_LIMIT)) {
      this.loseSync(side, `invalid frame header (type ${type}, length ${len}, stream ${sid})`);
      return false;
    }
    if (!side.started) {
      side.started = true;
      // A server's first frame is its SETTINGS (connection preface); anything else means the capture began later.
      if (side.dir === 1 && (type !== SETTINGS || flags & F_ACK)) {
        side.decoder.markLost('capture started mid-connection');
        side.maxFrameSize = MAX_FRAME_LIMIT;
      } else if (side.dir === 1) {
        side.startSeen = true;
      }
    }
    if (side.hbActive && (type !== CONTINUATION || sid !== side.hbSid)) {
      // A header block may only be followed by its CONTINUATION frames (RFC 9113 §6.10).
      this.abandonHeaderBlock(side, 'header block interrupted by another frame');
    }
    side.len = len;
    side.type = type;
    side.flags = flags;
    side.sid = sid;
    side.pos = 0;
    side.damaged = false;
    side.malformed = false;
    let pre: number;
    switch (type) {
      case DATA:
        pre = flags & F_PADDED ? 1 : 0;
        break;
      case HEADERS:
        pre = (flags & F_PADDED ? 1 : 0) + (flags & F_PRIORITY ? 5 : 0);
        break;
      case PUSH_PROMISE:
        pre = (flags & F_PADDED ? 1 : 0) + 4;
        break;
      case CONTINUATION:
        pre = 0;
        break;
      case PRIORITY:
      case RST_STREAM:
      case SETTINGS:
      case PING:
      case GOAWAY:
      case WINDOW_UPDATE:
        pre = Math.min(len, PRE_MAX);
        break;
      default:
        // Unknown types are skipped (RFC 9113 §5.5).
        side.phase = len > 0 ? PH_TAIL : PH_HEAD;
        return true;
    }
    if (pre > len) {
      side.malformed = true;
      pre = len;
    }
    side.preNeed = pre;
    if (pre > 0) side.phase = PH_PREFIX;
    else this.afterPrefix(side);
    return true;
  }

  private afterPrefix(side: Side): void {
    const type = side.type;
    if (type !== DATA && type !== HEADERS && type !== PUSH_PROMISE && type !== CONTINUATION) {
      if (!side.damaged && !side.malformed) this.control(side);
      side.phase = side.pos < side.len ? PH_TAIL : PH_HEAD;
      return;
    }
    const padded = (side.flags & F_PADDED) !== 0 && type !== CONTINUATION;
    const padLen = padded && !side.damaged ? side.pre[0] : 0;
    let contentEnd = side.len - padLen;
    if (contentEnd < side.preNeed) {
      // Padding longer than the frame: a PROTOCOL_ERROR for the peer; its content is unusable.
      side.malformed = true;
      contentEnd = side.preNeed;
    }
    side.contentEnd = contentEnd;
    if (type === HEADERS || type === PUSH_PROMISE) {
      side.hbActive = true;
      side.hbKind = type;
      side.hbSid = side.sid;
      side.hbPromised = type === PUSH_PROMISE && !side.damaged ? side.pre.readUInt32BE(padded ? 1 : 0) & 0x7fffffff : 0;
      side.hbEndStream = (side.flags & F_END_STREAM) !== 0 && type === HEADERS;
      side.hbTs = side.frameTs;
      side.hbWire = 0;
      side.hbLen = 0;
      side.hbView = null;
      side.hbLost = null;
    }
    if ((side.damaged || side.malformed) && side.hbActive && side.hbLost === null) {
      side.hbLost = side.damaged ? 'capture gap inside a header block' : 'malformed padding in a header frame';
    }
    if (side.malformed && type === DATA) this.streamError(side.sid, 'malformed DATA frame (padding longer than the frame)');
    side.phase = PH_CONTENT;
    if (side.pos === side.contentEnd) this.contentDone(side);
  }

  private content(side: Side, data: Buffer | null, start: number, end: number): void {
    if (end === start) return;
    if (side.type === DATA) {
      if (!side.malformed) this.dataBytes(side, data, start, end);
      return;
    }
    if (!side.hbActive) return;
    side.hbWire += end - start;
    if (side.hbLost !== null) return;
    if (data === null) {
      side.hbLost = 'capture gap inside a header block';
      return;
    }
    const len = end - start;
    // The usual case: the whole block in one frame and one chunk, decoded in place.
    if (side.hbLen === 0 && side.hbView === null && side.flags & F_END_HEADERS && side.pos === side.preNeed && len === side.contentEnd - side.preNeed) {
      side.hbView = data.subarray(start, end);
      return;
    }
    if (side.hbView !== null) {
      // Cannot happen (the view is consumed before the next chunk); keep going safely by copying it.
      this.appendBlock(side, side.hbView, 0, side.hbView.length);
      side.hbView = null;
    }
    this.appendBlock(side, data, start, end);
  }

  private appendBlock(side: Side, data: Buffer, start: number, end: number): void {
    const len = end - start;
    if (side.hbLen + len > MAX_HEADER_BLOCK) {
      side.hbLost = `header block over ${MAX_HEADER_BLOCK} bytes`;
      side.hbLen = 0;
      return;
    }
    if (side.hb.length < side.hbLen + len) {
      const grown = Buffer.allocUnsafe(Math.min(MAX_HEADER_BLOCK, Math.max(side.hbLen + len, side.hb.length * 2, 4096)));
      side.hb.copy(grown, 0, 0, side.hbLen);
      side.hb = grown;
    }
    data.copy(side.hb, side.hbLen, start, end);
    side.hbLen += len;
  }

  private contentDone(side: Side): void {
    side.phase = side.pos < side.len ? PH_TAIL : PH_HEAD;
    if (side.type === DATA) {
      if (side.flags & F_END_STREAM) this.endStream(side, side.sid);
    } else if (side.hbActive && side.flags & F_END_HEADERS) {
      this.endHeaderBlock(side);
    }
  }

  private control(side: Side): void {
    const pre = side.pre;
    switch (side.type) {
      case SETTINGS: {
        if (side.flags & F_ACK) return;
        const peer = this.sides[side.dir === 0 ? 1 : 0];
        for (let i = 0; i + 6 <= side.preNeed; i += 6) {
          const id = pre.readUInt16BE(i);
          const v = pre.readUInt32BE(i + 2);
          // The announcing side's limits bind what its peer sends.
          if (id === 1) peer.decoder.setAllowedTableSize(v);
          else if (id === 5 && v >= DEFAULT_MAX_FRAME && v <= MAX_FRAME_LIMIT) peer.maxFrameSize = Math.max(peer.maxFrameSize, v);
        }
        return;
      }
      case RST_STREAM: {
        const st = this.streams.get(side.sid);
        if (!st) return;
        h2stats.streamsReset++;
        this.finish(st, `stream reset by ${side.dir === 0 ? 'client' : 'server'} (${errorName(pre.readUInt32BE(0))})`);
        return;
      }
      case GOAWAY: {
        if (side.dir !== 1) return;
        const last = pre.readUInt32BE(0) & 0x7fffffff;
        const code = errorName(pre.readUInt32BE(4));
        for (const st of this.streams.values()) {
          if (st.id % 2 === 0 || st.id <= last) continue;
          h2stats.streamsReset++;
          this.finish(st, `not processed: server sent GOAWAY (${code}, last stream ${last})`);
        }
        return;
      }
      default:
        // PRIORITY, PING, WINDOW_UPDATE: nothing an item shows.
        return;
    }
  }

  /** Frame boundaries lost in this direction: flag what was in flight and look for the next frame boundary. */
  private loseSync(side: Side, reason: string): void {
    side.phase = PH_SCAN;
    side.everLost = true;
    h2stats.resyncs++;
    side.headLen = 0;
    side.scanLen = 0;
    side.scanFrom = 0;
    if (side.hbActive) this.abandonHeaderBlock(side, reason);
    side.decoder.markLost(reason);
    const what = side.dir === 0 ? 'request' : 'response';
    for (const st of this.streams.values()) {
      if (side.dir === 0 && st.reqEnded) continue;
      st.addError(`${what} frames lost: ${reason}`);
      const body = side.dir === 0 ? st.req : st.res;
      body.damaged = true;
      body.framer?.lose();
    }
  }

  /** Buffers bytes after lost boundaries until a chain of valid frame headers shows where frames start again. */
  private scan(side: Side, data: Buffer, off: number, n: number): void {
    if (side.scanBuf === null) side.scanBuf = Buffer.allocUnsafe(SCAN_MAX);
    const buf = side.scanBuf;
    const maxLen = Math.min(side.maxFrameSize, SCAN_MAX_FRAME);
    while (off < n) {
      const take = Math.min(SCAN_MAX - side.scanLen, n - off);
      data.copy(buf, side.scanLen, off, off + take);
      side.scanLen += take;
      off += take;
      for (let p = side.scanFrom; p + 9 <= side.scanLen; p++) {
        const r = frameChain(buf, p, side.scanLen, side.dir, maxLen, 3);
        if (r === 1) {
          // Found: hand the rest (buffered and not yet copied) back to onData's loop, not recursively.
          h2stats.bytesSkipped += p;
          side.replay = Buffer.concat([buf.subarray(p, side.scanLen), data.subarray(off, n)]);
          side.scanBuf = null;
          side.scanLen = 0;
          side.scanFrom = 0;
          side.phase = PH_HEAD;
          return;
        }
        if (r === -1) {
          side.scanFrom = p;
          break;
        }
        side.scanFrom = p + 1;
      }
      if (side.scanLen === SCAN_MAX) {
        // Full: drop what was ruled out (at least one byte, so an undecidable start cannot block the scan).
        const drop = Math.max(1, side.scanFrom);
        h2stats.bytesSkipped += drop;
        buf.copyWithin(0, drop, side.scanLen);
        side.scanLen -= drop;
        side.scanFrom = Math.max(0, side.scanFrom - drop);
      }
    }
  }

  // ---- Header blocks -----------------------------------------------------

  private abandonHeaderBlock(side: Side, reason: string): void {
    side.hbLost = side.hbLost ?? reason;
    this.endHeaderBlock(side);
  }

  private endHeaderBlock(side: Side): void {
    const kind = side.hbKind;
    const sid = side.hbSid;
    const wire = side.hbWire;
    let block: HeaderBlock | null = null;
    let err: string | null = null;
    if (side.hbLost !== null) {
      h2stats.headerBlocksLost++;
      side.decoder.markLost(side.hbLost);
      err = `header block lost (${side.hbLost})`;
    } else {
      const view = side.hbView;
      try {
        block = view !== null ? side.decoder.decode(view, 0, view.length) : side.decoder.decode(side.hb, 0, side.hbLen);
      } catch (e) {
        h2stats.headerBlocksLost++;
        err = `HPACK decoding failed: ${e instanceof Error ? e.message : String(e)}`;
      }
    }
    side.hbActive = false;
    side.hbView = null;
    side.hbLen = 0;
    side.hbLost = null;
    if (side.hb.length > 16 * 1024) side.hb = Buffer.alloc(0);
    if (block !== null) {
      h2stats.headerFieldsUnknown += block.unknown;
      if (block.unknown > 0) err = `HPACK context lost (${side.decoder.lostReason ?? 'earlier error'}): ${block.unknown} header field(s) could not be decoded`;
      if (block.dropped > 0) err = `${err ? `${err}; ` : ''}${block.dropped} header field(s) dropped (header list too large)`;
    }
    if (kind === PUSH_PROMISE) {
      if (side.dir === 1) this.onPushPromise(side.hbPromised, block, err, wire, side.hbTs);
    } else if (side.dir === 0) {
      this.onRequestHeaders(sid, block, err, side.hbEndStream, wire, side.hbTs);
    } else {
      this.onResponseHeaders(sid, block, err, side.hbEndStream, wire, side.hbTs);
    }
  }

  // ---- Streams -----------------------------------------------------------

  private openStream(id: number, ts: number): H2Stream {
    if (this.streams.size >= MAX_OPEN_STREAMS) {
      const oldest = this.streams.values().next().value;
      if (oldest) {
        h2stats.streamsEvicted++;
        this.finish(oldest, `evicted: more than ${MAX_OPEN_STREAMS} open streams on the connection`);
      }
    }
    const st = new H2Stream(id, ts);
    this.streams.set(id, st);
    return st;
  }

  private recentlyClosed(id: number): boolean {
    return this.closedIds.includes(id);
  }

  /**
   * Client stream ids between two requests seen (or before the first one)
   * whose requests this capture did not have: before the capture started,
   * lost in a gap, or never used (ids may be skipped). A response on one of
   * them is a call without its request, not a late frame of a finished call.
   */
  private noteSkipped(prevMax: number, sid: number): void {
    const lo = prevMax === 0 ? 1 : prevMax + 2;
    if (sid - 2 < lo) return;
    if (this.skipped.length >= 2 * MAX_SKIPPED_RANGES) this.skipped.splice(0, 2);
    this.skipped.push(lo, sid - 2);
  }

  private wasSkipped(sid: number): boolean {
    for (let i = 0; i < this.skipped.length; i += 2) if (sid >= this.skipped[i] && sid <= this.skipped[i + 1]) return true;
    return false;
  }

  private holdHeaders(st: H2Stream, block: HeaderBlock | null): void {
    if (block === null) return;
    st.retained += block.listSize;
    this.retained += block.listSize;
    // Over the budget: flush the oldest streams (never the one being filled).
    for (const old of this.streams.values()) {
      if (this.retained <= this.budget) break;
      if (old === st) continue;
      h2stats.streamsEvicted++;
      this.finish(old, 'evicted: connection memory budget exceeded');
    }
  }

  private grpcFramer(fields: readonly string[]): GrpcFramer {
    return new GrpcFramer(this.opts.maxBodyBytes, firstHeader(fields, 'grpc-encoding') ?? '', this.opts.decodeBodies);
  }

  private onRequestHeaders(sid: number, block: HeaderBlock | null, err: string | null, endStream: boolean, wire: number, ts: number): void {
    if (sid % 2 === 0) return; // clients open odd streams only
    if (sid === 1) this.client1Seen = true;
    let st = this.streams.get(sid);
    if (!st) {
      if (sid <= this.maxClientSid) return; // late trailers of a finished stream
      this.noteSkipped(this.maxClientSid, sid);
      this.maxClientSid = sid;
      st = this.openStream(sid, ts);
    }
    const fields = block?.fields ?? [];
    if (!st.reqSeen) {
      st.reqSeen = true;
      st.reqFields = block ? fields : null;
      st.reqTs = ts;
      if (isGrpcContentType(firstHeader(fields, 'content-type'))) {
        st.grpc = true;
        st.req.framer = this.grpcFramer(fields);
      }
    } else {
      st.reqTrailers = st.reqTrailers ? st.reqTrailers.concat(fields) : fields;
    }
    st.reqHeadersSize += wire;
    st.lastTs = ts;
    if (err) st.addError(`request headers: ${err}`);
    if (endStream) st.reqEnded = true;
    this.holdHeaders(st, block);
  }

  private onPushPromise(promised: number, block: HeaderBlock | null, err: string | null, wire: number, ts: number): void {
    if (promised === 0 || promised % 2 === 1 || this.streams.has(promised) || this.recentlyClosed(promised)) return;
    this.maxPushSid = Math.max(this.maxPushSid, promised);
    const st = this.openStream(promised, ts);
    st.reqSeen = true;
    st.reqFields = block ? block.fields : null;
    st.reqTs = ts;
    st.reqHeadersSize = wire;
    st.reqEnded = true; // a promised request has no body
    if (err) st.addError(`push promise headers: ${err}`);
    this.holdHeaders(st, block);
  }

  private onResponseHeaders(sid: number, block: HeaderBlock | null, err: string | null, endStream: boolean, wire: number, ts: number): void {
    let st = this.streams.get(sid);
    if (!st) {
      if (this.recentlyClosed(sid)) return;
      const upgrade = sid === 1 && !this.client1Seen && this.sides[0].startSeen && !this.sides[0].everLost;
      if (sid % 2 === 1) {
        // Below the highest request seen: a stream whose request this capture never had, or a late frame of a finished one.
        if (!upgrade && sid <= this.maxClientSid && !this.wasSkipped(sid)) return;
        if (sid > this.maxClientSid) {
          this.noteSkipped(this.maxClientSid, sid);
          this.maxClientSid = sid;
        }
      } else {
        if (sid <= this.maxPushSid) return;
        this.maxPushSid = sid;
      }
      st = this.openStream(sid, ts);
      st.reqMissing = true;
      st.reqEnded = true;
      if (!upgrade) {
        h2stats.orphanResponses++;
        st.addError('request not captured (capture started after it, or lost it)');
      }
      if (sid === 1) this.client1Seen = true;
    }
    const fields = block?.fields ?? [];
    st.resHeadersSize += wire;
    st.lastTs = ts;
    if (st.resTs === 0) st.resTs = ts;
    if (err) st.addError(`response headers: ${err}`);
    if (!st.resSeen) {
      const status = firstHeader(fields, ':status');
      // 1xx interim responses (100-continue, 103 early hints) precede the final one.
      if (status !== undefined && status.length === 3 && status[0] === '1' && !endStream) return;
      st.resSeen = true;
      st.resFields = block ? fields : null;
      if (st.grpc || isGrpcContentType(firstHeader(fields, 'content-type'))) {
        st.grpc = true;
        st.res.framer = this.grpcFramer(fields);
      }
    } else {
      st.resTrailers = st.resTrailers ? st.resTrailers.concat(fields) : fields;
    }
    this.holdHeaders(st, block);
    if (endStream) this.finish(st, null);
  }

  private dataBytes(side: Side, data: Buffer | null, start: number, end: number): void {
    const st = this.streams.get(side.sid);
    if (!st) return;
    const body = side.dir === 0 ? st.req : st.res;
    st.lastTs = side.ts;
    body.size += end - start;
    if (data === null) {
      st.addError(`capture gap: ${side.dir === 0 ? 'request' : 'response'} body bytes lost`);
      body.damaged = true;
      body.framer?.lose();
      return;
    }
    const allowance = Math.max(0, this.budget - this.retained);
    if (body.framer) {
      const before = body.framer.retained();
      body.framer.feed(data, start, end, allowance);
      const delta = body.framer.retained() - before;
      st.retained += delta;
      this.retained += delta;
      return;
    }
    const room = Math.min(this.opts.maxBodyBytes - body.kept, allowance);
    const take = Math.max(0, Math.min(end - start, room));
    if (take > 0) {
      body.parts.push(Buffer.from(data.subarray(start, start + take)));
      body.kept += take;
      st.retained += take;
      this.retained += take;
    }
    if (take < end - start) body.truncated = true;
  }

  private endStream(side: Side, sid: number): void {
    const st = this.streams.get(sid);
    if (!st) return;
    st.lastTs = side.ts;
    if (side.dir === 0) st.reqEnded = true;
    else this.finish(st, null);
  }

  private streamError(sid: number, err: string): void {
    this.streams.get(sid)?.addError(err);
  }

  private finish(st: H2Stream, err: string | null): void {
    if (err) st.addError(err);
    this.streams.delete(st.id);
    this.closedIds[this.closedPos] = st.id;
    this.closedPos = (this.closedPos + 1) % CLOSED_RING;
    this.retained -= st.retained;
    let item: ItemDraft;
    try {
      item = this.item(st);
    } catch (e) {
      // Building must not lose the call: fall back to the bare facts.
      item = {
        protocol: st.grpc ? GRPC_PROTOCOL : HTTP2_PROTOCOL, request: null, response: null,
        requestSize: st.reqHeadersSize + st.req.size, responseSize: st.resHeadersSize + st.res.size, requestTsMs: st.reqTs, responseTsMs: st.resTs,
        error: [...(st.errors ?? []), `item could not be built: ${e instanceof Error ? e.message : String(e)}`].join('; '),
      };
    }
    h2stats.items++;
    if (item.error !== undefined) h2stats.itemsWithError++;
    if (st.grpc) h2stats.grpcItems++;
    try {
      this.ctx.sink.emit(this.ctx.conn, item);
    } catch {
      this.emitErrors++;
      h2stats.emitErrors++;
    }
  }

  // ---- Items -------------------------------------------------------------

  private item(st: H2Stream): ItemDraft {
    const opts = this.opts;
    let request: Record<string, unknown> | null = null;
    if (!st.reqMissing) {
      const fields = st.reqFields ?? [];
      const method = firstHeader(fields, ':method') ?? '';
      const authority = firstHeader(fields, ':authority') ?? '';
      const target = firstHeader(fields, ':path') ?? (method === 'CONNECT' ? authority : '');
      const { path, query } = splitTarget(target);
      const contentType = firstHeader(fields, 'content-type') ?? '';
      const framer = st.req.framer;
      request = {
        method, path, pathSegments: pathSegments(path), url: target,
        targetUri: target.startsWith('/') && authority !== '' ? `${firstHeader(fields, ':scheme') ?? 'http'}://${authority}${target}` : target,
        httpVersion: 'HTTP/2.0', headers: headersObject(fields), cookies: parseCookies(joinedCookies(fields)), queryString: parseQuery(query),
      };
      if (st.req.size > 0) {
        const b = framer ? grpcBody(framer) : finishBody(st.req.bytes(), st.req.size, st.req.damaged, contentType, firstHeader(fields, 'content-encoding') ?? '', opts.decodeBodies, opts.maxBodyBytes);
        const pd: Record<string, unknown> = { mimeType: contentType, text: b.text };
        if (b.base64) pd.encoding = 'base64';
        if (b.truncated) {
          pd.truncated = true;
          h2stats.bodiesTruncated++;
        }
        request.postData = pd;
      }
      request.bodySize = st.req.size;
      request.headersSize = st.reqHeadersSize;
      if (st.reqTrailers) request.trailers = headersObject(st.reqTrailers);
      if (st.grpc) {
        const g = parseGrpcPath(path);
        request.grpcService = g.service;
        request.grpcMethod = g.method;
        request.messageCount = framer?.count ?? 0;
        request.messageBytes = framer?.bytes ?? 0;
        const inc = framer && !st.req.damaged && st.reqEnded ? framer.incomplete() : null;
        if (inc) st.addError(`request ${inc}`);
      }
    }
    let response: Record<string, unknown> | null = null;
    if (st.resSeen) {
      const fields = st.resFields ?? [];
      const contentType = firstHeader(fields, 'content-type') ?? '';
      const contentEncoding = firstHeader(fields, 'content-encoding') ?? '';
      const status = Number(firstHeader(fields, ':status') ?? '0');
      const framer = st.res.framer;
      const b = framer ? grpcBody(framer) : finishBody(st.res.bytes(), st.res.size, st.res.damaged, contentType, contentEncoding, opts.decodeBodies, opts.maxBodyBytes);
      const content: Record<string, unknown> = { encoding: b.base64 ? 'base64' : contentEncoding, mimeType: contentType, size: b.size, text: b.text };
      if (b.truncated) {
        content.truncated = true;
        h2stats.bodiesTruncated++;
      }
      response = {
        status: Number.isFinite(status) ? status : 0, statusText: '', httpVersion: 'HTTP/2.0',
        headers: headersObject(fields), cookies: parseSetCookies(allValues(fields, 'set-cookie')), content,
        bodySize: st.res.size, headersSize: st.resHeadersSize, redirectURL: firstHeader(fields, 'location') ?? '',
      };
      if (st.resTrailers) response.trailers = headersObject(st.resTrailers);
      if (st.grpc) {
        // The status is in the trailers; a trailers-only response has it in its only header block.
        const src = st.resTrailers && firstHeader(st.resTrailers, 'grpc-status') !== undefined ? st.resTrailers : fields;
        response.grpcStatus = parseGrpcStatus(firstHeader(src, 'grpc-status'));
        response.grpcMessage = decodeGrpcMessage(firstHeader(src, 'grpc-message') ?? '');
        response.messageCount = framer?.count ?? 0;
        response.messageBytes = framer?.bytes ?? 0;
        const inc = framer && !st.res.damaged ? framer.incomplete() : null;
        if (inc) st.addError(`response ${inc}`);
      }
    }
    const item: ItemDraft = {
      protocol: st.grpc ? GRPC_PROTOCOL : HTTP2_PROTOCOL,
      request,
      response,
      requestSize: st.reqHeadersSize + st.req.size,
      responseSize: st.resHeadersSize + st.res.size,
      requestTsMs: st.reqTs,
      responseTsMs: st.resTs,
    };
    if (st.errors) item.error = st.errors.join('; ');
    return item;
  }
}

/** gRPC bodies: the message payloads (prefixes removed), always base64 (protobuf is binary). */
function grpcBody(framer: GrpcFramer): { text: string; size: number; base64: true; truncated: boolean } {
  const payload = framer.payload();
  return { text: payload.toString('base64'), size: payload.length, base64: true, truncated: framer.truncated };
}

/** Value of the first field called `name` in a flat [name, value, ...] list. */
export function firstHeader(fields: readonly string[], name: string): string | undefined {
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

function allValues(fields: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) out.push(fields[i + 1]);
  return out;
}

/** HTTP/2 may split the cookie header into several fields (RFC 9113 §8.2.3); they rejoin with "; ". */
function joinedCookies(fields: readonly string[]): string {
  return allValues(fields, 'cookie').join('; ');
}

/** A flat field list as an object; repeated names joined with ", " (with "; " for cookie, see joinedCookies). */
export function headersObject(fields: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i];
    const prev = Object.hasOwn(out, name) ? out[name] : undefined;
    setOwn(out, name, prev === undefined ? fields[i + 1] : `${prev}${name === 'cookie' ? '; ' : ', '}${fields[i + 1]}`);
  }
  return out;
}

/** Server connection preface check: 'yes' for a complete valid SETTINGS header, 'more' while the bytes so far agree, 'no' otherwise. */
function probeServerSettings(data: Buffer): ProbeResult {
  // Expected: length (multiple of 6, at most 16384), type 4, flags 0, stream 0.
  const n = Math.min(data.length, 9);
  if (n >= 1 && data[0] !== 0) return 'no';
  if (n >= 4 && data[3] !== SETTINGS) return 'no';
  if (n >= 5 && data[4] !== 0) return 'no';
  for (let i = 5; i < n; i++) if (data[i] !== 0) return 'no';
  if (n < 9) return 'more';
  const len = (data[1] << 8) | data[2];
  return len % 6 === 0 && len <= DEFAULT_MAX_FRAME ? 'yes' : 'no';
}

/** Bytes of one direction looked at, at most, to recognise frames without a preface. */
const PROBE_LIMIT = 64 * 1024;

export const http2Dissector: StreamDissector = {
  name: 'http2',
  probe(data: Buffer, dir: Direction, _conn: ConnectionInfo): ProbeResult {
    if (data.length === 0) return 'more';
    if (dir === 0) {
      const n = Math.min(data.length, PREFACE.length);
      if (data.compare(PREFACE, 0, n, 0, n) === 0) return n === PREFACE.length ? 'yes' : 'more';
    } else {
      const r = probeServerSettings(data);
      if (r !== 'no') return r;
    }
    // Mid-connection: three consecutive valid frame headers from the first byte.
    const r = frameChain(data, 0, data.length, dir, DEFAULT_MAX_FRAME, 3);
    if (r === 1) return 'yes';
    if (r === -1 && data.length < PROBE_LIMIT) return 'more';
    return 'no';
  },
  create(ctx: DissectorContext): StreamParser {
    return new Http2Parser(ctx);
  },
};
