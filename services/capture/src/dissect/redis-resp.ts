/**
 * An incremental RESP2/RESP3 reader for one direction of a Redis connection.
 * Bytes go in as they come (any split); whole top-level values come out.
 *
 * It never buffers a value whole: bulk payloads are streamed, and only the
 * first `budget` bytes of all strings of one message are kept (the rest are
 * skipped and the message is flagged truncated). Caps, all per message:
 * - MAX_LINE: a header / simple-string / error / inline-command line (Redis'
 *   own inline limit is 64 KiB); longer is a protocol error;
 * - MAX_DEPTH nested aggregates; deeper is a protocol error;
 * - MAX_NODES values kept (aggregates beyond it are still parsed, not kept);
 * - MAX_BULK_LENGTH / MAX_AGGREGATE_LENGTH declared sizes; larger is an error
 *   (huge declared sizes are fine below that: nothing is preallocated).
 * RESP3 streamed strings/aggregates ($? *? ;) are not produced by Redis and
 * are treated as protocol errors.
 *
 * After a protocol error or a gap the reader drops the partial message and
 * resynchronises by scanning for a plausible message start at a line start
 * (see `looksLikeStart`); the parser above decides what the lost bytes mean.
 */
import { isUtf8 } from 'node:buffer';

export const MAX_LINE = 64 * 1024;
export const MAX_DEPTH = 64;
export const MAX_NODES = 10_000;
export const MAX_BULK_LENGTH = 2 ** 32;
export const MAX_AGGREGATE_LENGTH = 2 ** 32;
/** Bytes looked at to judge a resync candidate. */
const LOOKAHEAD = 32;

export const K = {
  SIMPLE: 1, ERROR: 2, INTEGER: 3, BULK: 4, ARRAY: 5, NULL: 6, DOUBLE: 7, BOOLEAN: 8, BIGNUM: 9,
  BULK_ERROR: 10, VERBATIM: 11, MAP: 12, SET: 13, ATTRIBUTE: 14, PUSH: 15,
} as const;

export const KIND_NAMES: Record<number, string> = {
  1: 'simple string', 2: 'error', 3: 'integer', 4: 'bulk string', 5: 'array', 6: 'null', 7: 'double', 8: 'boolean',
  9: 'big number', 10: 'bulk error', 11: 'verbatim string', 12: 'map', 13: 'set', 14: 'attribute', 15: 'push',
};

export interface RespNode {
  k: number;
  /** Strings (simple, error, bulk, bulk error, verbatim, big number, double text): the kept bytes. */
  b?: Buffer;
  /** Integer / boolean value. */
  v?: number | string | boolean;
  /** Aggregates: kept elements (maps and attributes: key, value, key, value...). */
  items?: RespNode[];
  /** Aggregates: declared element count; strings: declared byte length. */
  n?: number;
  /** Verbatim string format ("txt", "mkd"). */
  fmt?: string;
}

export interface RespMessage {
  root: RespNode;
  /** RESP3 attribute that preceded the value, if any. */
  attrs: RespNode | null;
  /** Bytes on the wire (attribute included). */
  size: number;
  /** Capture time of the first byte. */
  tsMs: number;
  /** Some string bytes or elements were not kept (budget / MAX_NODES). */
  truncated: boolean;
  /** Some kept string is not valid UTF-8. */
  binary: boolean;
  /** Bytes lost in capture gaps inside bulk payloads of this message. */
  gapBytes: number;
  /** An inline command (client side only). */
  inline: boolean;
}

export interface RespSink {
  onMessage(m: RespMessage): void;
  /** A protocol error: the partial message (if any) is dropped and the reader resyncs. */
  onProtocolError(reason: string, partial: RespMessage | null, tsMs: number): void;
}

const MODE_LINE = 0;
const MODE_BULK = 1;
const MODE_CRLF = 2;
const MODE_SCAN = 3;

const CR = 13;
const LF = 10;

interface Frame {
  node: RespNode;
  left: number;
  keep: boolean;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/**
 * Parses a signed decimal integer in buf[s, e). Returns NaN when malformed.
 * Values beyond 2^53 come out inexact; callers that care check isSafeInteger.
 */
function parseIntAscii(buf: Buffer, s: number, e: number): number {
  if (s >= e || e - s > 20) return NaN;
  let neg = false;
  if (buf[s] === 45 /* - */ || buf[s] === 43 /* + */) {
    neg = buf[s] === 45;
    s++;
    if (s === e) return NaN;
  }
  let v = 0;
  for (let i = s; i < e; i++) {
    const c = buf[i];
    if (!isDigit(c)) return NaN;
    v = v * 10 + (c - 48);
  }
  return neg ? -v : v;
}

/**
 * Whether bytes at `p` may start a message (client: a command array; server:
 * any reply type). Judges only what is visible (up to LOOKAHEAD bytes); the
 * parser is the real check.
 */
export function looksLikeStart(buf: Buffer, p: number, client: boolean): boolean {
  const end = Math.min(buf.length, p + LOOKAHEAD);
  const t = buf[p];
  const digitsLine = (from: number, allowMinus: boolean): boolean => {
    let i = from;
    if (allowMinus && i < end && buf[i] === 45) i++;
    const d0 = i;
    while (i < end && isDigit(buf[i])) i++;
    if (i === end) return true; // nothing contradicts yet
    if (i === d0) return false;
    return buf[i] === CR && (i + 1 >= end || buf[i + 1] === LF);
  };
  if (client) {
    if (t !== 42 /* * */) return false;
    let i = p + 1;
    while (i < end && isDigit(buf[i])) i++;
    if (i === end) return true;
    if (i === p + 1 || buf[i] !== CR) return false;
    if (i + 1 < end && buf[i + 1] !== LF) return false;
    if (i + 2 < end && buf[i + 2] !== 36 /* $ */) return false;
    return i + 3 >= end || isDigit(buf[i + 3]);
  }
  switch (t) {
    case 43: // + simple string: printable up to CRLF
      for (let i = p + 1; i < end; i++) {
        const c = buf[i];
        if (c === CR) return i + 1 >= end || buf[i + 1] === LF;
        if (c < 0x20 && c !== 9) return false;
      }
      return true;
    case 45: // - error: an upper-case code first (ERR, WRONGTYPE, MOVED...)
      return p + 1 >= end || (buf[p + 1] >= 65 && buf[p + 1] <= 90);
    case 58: // :
    case 40: // (
      return digitsLine(p + 1, true);
    case 36: // $
    case 42: // *
      return digitsLine(p + 1, true);
    case 33: // !
    case 61: // =
    case 37: // %
    case 126: // ~
    case 62: // >
    case 124: // |
      return digitsLine(p + 1, false);
    case 95: // _
      return p + 1 >= end || (buf[p + 1] === CR && (p + 2 >= end || buf[p + 2] === LF));
    case 35: // #
      return p + 1 >= end || ((buf[p + 1] === 116 || buf[p + 1] === 102) && (p + 2 >= end || buf[p + 2] === CR));
    case 44: // , double
      for (let i = p + 1; i < end; i++) {
        const c = buf[i];
        if (c === CR) return i > p + 1;
        if (!(isDigit(c) || c === 46 || c === 45 || c === 43 || c === 101 || c === 69 || c === 105 || c === 110 || c === 102 || c === 97)) return false;
      }
      return true;
    default:
      return false;
  }
}

export class RespReader {
  private readonly sink: RespSink;
  /** Client side: accepts inline commands and resyncs on command arrays only. */
  private readonly client: boolean;
  private budgetTotal: number;

  private mode = MODE_LINE;
  private lineParts: Buffer[] = [];
  private lineLen = 0;
  private stack: Frame[] = [];
  // Current bulk payload.
  private bulkNode: RespNode | null = null;
  private bulkLeft = 0;
  private bulkKept: Buffer | null = null;
  private bulkFill = 0;
  private bulkAttach = true;
  private crlfSeen = 0;
  // Message in progress.
  private inMessage = false;
  private msgTs = 0;
  private msgSize = 0;
  private msgTruncated = false;
  private msgBinaryCheck: Buffer[] = [];
  private msgGap = 0;
  private nodes = 0;
  private budget = 0;
  private attrs: RespNode | null = null;
  // Resync.
  private scanAtLineStart = true;
  private scanCarry: Buffer | null = null;
  /** Bytes skipped while resynchronising (stats). */
  skipped = 0;

  constructor(sink: RespSink, client: boolean, budget: number) {
    this.sink = sink;
    this.client = client;
    this.budgetTotal = Math.max(0, budget);
  }

  /** True while a message has started and is not complete. */
  get midMessage(): boolean {
    return this.inMessage;
  }

  get scanning(): boolean {
    return this.mode === MODE_SCAN;
  }

  /** Bytes held (tests: bounded memory). */
  bufferedBytes(): number {
    let n = this.lineLen + (this.bulkKept?.length ?? 0) + (this.scanCarry?.length ?? 0);
    for (const b of this.msgBinaryCheck) n += b.length;
    return n;
  }

  feed(input: Buffer, tsMs: number): void {
    let data = input;
    let pos = 0;
    // Every pass consumes at least one byte, or (scan) restarts on a buffer beginning at a candidate.
    while (pos < data.length) {
      switch (this.mode) {
        case MODE_SCAN: {
          const r = this.scan(data, pos);
          if (r === null) return;
          data = r;
          pos = 0;
          this.mode = MODE_LINE;
          break;
        }
        case MODE_LINE: {
          if (!this.inMessage) this.startMessage(tsMs);
          const nl = data.indexOf(LF, pos);
          const stop = nl < 0 ? data.length : nl + 1;
          const n = stop - pos;
          if (this.lineLen + n > MAX_LINE + 2) {
            this.protocolError('line too long', tsMs, nl >= 0);
            pos = stop;
            break;
          }
          this.msgSize += n;
          if (nl < 0) {
            this.lineParts.push(Buffer.from(data.subarray(pos)));
            this.lineLen += n;
            pos = data.length;
            break;
          }
          let line: Buffer;
          let s: number;
          if (this.lineLen === 0) {
            line = data;
            s = pos;
          } else {
            this.lineParts.push(data.subarray(pos, stop));
            line = Buffer.concat(this.lineParts);
            s = 0;
          }
          const e = s + this.lineLen + n; // one past LF
          this.lineParts = [];
          this.lineLen = 0;
          pos = stop;
          this.onLine(line, s, e, tsMs);
          break;
        }
        case MODE_BULK: {
          const take = Math.min(this.bulkLeft, data.length - pos);
          if (this.bulkKept && this.bulkFill < this.bulkKept.length) {
            const k = Math.min(take, this.bulkKept.length - this.bulkFill);
            data.copy(this.bulkKept, this.bulkFill, pos, pos + k);
            this.bulkFill += k;
          }
          this.bulkLeft -= take;
          this.msgSize += take;
          pos += take;
          if (this.bulkLeft === 0) {
            this.mode = MODE_CRLF;
            this.crlfSeen = 0;
          }
          break;
        }
        case MODE_CRLF: {
          const c = data[pos++];
          this.msgSize++;
          if (c !== (this.crlfSeen === 0 ? CR : LF)) {
            this.protocolError('bulk payload not followed by CRLF', tsMs, c === LF);
            break;
          }
          if (++this.crlfSeen === 2) this.endBulk();
          break;
        }
      }
    }
  }

  /**
   * `length` bytes of this direction were lost. Returns 'in-bulk' when they
   * fell inside a bulk payload being read (framing intact, the message is
   * marked), otherwise 'lost' (partial message dropped, resync) with the
   * dropped partial message if there was one.
   */
  gap(length: number): { kind: 'in-bulk' } | { kind: 'lost'; partial: RespMessage | null } {
    if (this.mode === MODE_BULK && length <= this.bulkLeft) {
      this.bulkLeft -= length;
      this.msgSize += length;
      this.msgGap += length;
      this.msgTruncated = true;
      if (this.bulkLeft === 0) {
        this.mode = MODE_CRLF;
        this.crlfSeen = 0;
      }
      return { kind: 'in-bulk' };
    }
    const partial = this.inMessage ? this.partialMessage() : null;
    this.resetMessage();
    this.enterScan(true);
    return { kind: 'lost', partial };
  }

  private enterScan(atLineStart: boolean): void {
    this.mode = MODE_SCAN;
    this.scanAtLineStart = atLineStart;
    this.scanCarry = null;
  }

  /**
   * Looks for a message start at a line start in data[pos..]. Returns the
   * bytes from the candidate on, or null (all consumed, maybe a short tail
   * kept as carry when a candidate sits too close to the end to judge).
   */
  private scan(data: Buffer, pos: number): Buffer | null {
    let buf = data;
    let i = pos;
    if (this.scanCarry) {
      buf = Buffer.concat([this.scanCarry, data.subarray(pos)]);
      i = 0;
      this.scanCarry = null;
      // The carry began at a candidate that was at a line start.
      this.scanAtLineStart = true;
    }
    const len = buf.length;
    while (i < len) {
      if (this.scanAtLineStart) {
        if (len - i < LOOKAHEAD && !looksLikeStartClosed(buf, i, this.client)) {
          // Too close to the end to judge: keep this short tail for the next chunk.
          if (looksLikeStart(buf, i, this.client)) {
            this.scanCarry = Buffer.from(buf.subarray(i));
            return null;
          }
        } else if (looksLikeStart(buf, i, this.client)) {
          return i === 0 ? buf : buf.subarray(i);
        }
      }
      const nl = buf.indexOf(LF, i);
      if (nl < 0) {
        this.skipped += len - i;
        this.scanAtLineStart = false;
        return null;
      }
      this.skipped += nl + 1 - i;
      i = nl + 1;
      this.scanAtLineStart = true;
    }
    return null;
  }

  private startMessage(tsMs: number): void {
    this.inMessage = true;
    this.msgTs = tsMs;
    this.msgSize = 0;
    this.msgTruncated = false;
    this.msgBinaryCheck = [];
    this.msgGap = 0;
    this.nodes = 0;
    this.budget = this.budgetTotal;
    this.attrs = null;
  }

  private resetMessage(): void {
    this.inMessage = false;
    this.stack = [];
    this.lineParts = [];
    this.lineLen = 0;
    this.bulkNode = null;
    this.bulkKept = null;
    this.msgBinaryCheck = [];
    this.attrs = null;
    this.mode = MODE_LINE;
  }

  private partialMessage(): RespMessage {
    const root = this.stack.length ? this.stack[0].node : { k: K.NULL };
    return this.message(root);
  }

  private message(root: RespNode): RespMessage {
    let binary = false;
    for (const b of this.msgBinaryCheck) {
      if (!isUtf8Prefix(b)) {
        binary = true;
        break;
      }
    }
    return {
      root, attrs: this.attrs, size: this.msgSize, tsMs: this.msgTs, truncated: this.msgTruncated, binary,
      gapBytes: this.msgGap, inline: false,
    };
  }

  /** `atLineStart`: the error was found at the end of a whole line, so the next byte starts a line. */
  private protocolError(reason: string, tsMs: number, atLineStart = true): void {
    const partial = this.inMessage ? this.partialMessage() : null;
    this.resetMessage();
    this.enterScan(atLineStart);
    this.sink.onProtocolError(reason, partial, tsMs);
  }

  /** Whether the value about to start will be kept (its parent is kept and the node cap is not reached). */
  private keeping(): boolean {
    const top = this.stack.length ? this.stack[this.stack.length - 1] : null;
    if (top && !top.keep) return false;
    if (this.nodes >= MAX_NODES) {
      this.msgTruncated = true;
      return false;
    }
    return true;
  }

  private keepString(buf: Buffer, s: number, e: number): Buffer {
    const n = Math.min(e - s, this.budget);
    if (n < e - s) this.msgTruncated = true;
    this.budget -= n;
    const b = Buffer.from(buf.subarray(s, s + n));
    this.msgBinaryCheck.push(b);
    return b;
  }

  /** A complete line buf[s, e) including its LF. */
  private onLine(buf: Buffer, s: number, e: number, tsMs: number): void {
    let end = e - 1; // at LF
    const hasCR = end > s && buf[end - 1] === CR;
    if (hasCR) end--;
    const t = buf[s];
    if (this.client && this.stack.length === 0 && this.attrs === null && t !== 42) {
      this.onInline(buf, s, end);
      return;
    }
    if (!hasCR) {
      this.protocolError('line not terminated by CRLF', tsMs);
      return;
    }
    if (this.stack.length >= MAX_DEPTH) {
      this.protocolError('aggregates nested too deep', tsMs);
      return;
    }
    const keep = this.keeping();
    const ps = s + 1;
    switch (t) {
      case 43: // +
      case 45: // -
      case 40: // ( big number
      case 44: { // , double
        const k = t === 43 ? K.SIMPLE : t === 45 ? K.ERROR : t === 40 ? K.BIGNUM : K.DOUBLE;
        const node: RespNode = { k };
        if (k === K.BIGNUM && !/^[-+]?\d+$/.test(buf.toString('latin1', ps, end))) return this.protocolError('malformed big number', tsMs);
        if (keep) node.b = this.keepString(buf, ps, end);
        this.complete(node, keep);
        return;
      }
      case 58: { // :
        const v = parseIntAscii(buf, ps, end);
        if (Number.isNaN(v)) return this.protocolError('malformed integer', tsMs);
        const node: RespNode = { k: K.INTEGER, v: Number.isSafeInteger(v) ? v : buf.toString('latin1', ps, end) };
        this.complete(node, keep);
        return;
      }
      case 95: // _
        if (end !== ps) return this.protocolError('malformed null', tsMs);
        this.complete({ k: K.NULL }, keep);
        return;
      case 35: { // #
        const c = buf[ps];
        if (end !== ps + 1 || (c !== 116 && c !== 102)) return this.protocolError('malformed boolean', tsMs);
        this.complete({ k: K.BOOLEAN, v: c === 116 }, keep);
        return;
      }
      case 36: // $
      case 33: // !
      case 61: { // =
        const n = parseIntAscii(buf, ps, end);
        if (t === 36 && n === -1) {
          this.complete({ k: K.NULL }, keep);
          return;
        }
        if (!(n >= 0 && n <= MAX_BULK_LENGTH)) return this.protocolError(`bad bulk length ${buf.toString('latin1', ps, Math.min(end, ps + 24))}`, tsMs);
        const node: RespNode = { k: t === 36 ? K.BULK : t === 33 ? K.BULK_ERROR : K.VERBATIM, n };
        this.bulkNode = node;
        this.bulkAttach = keep;
        this.bulkLeft = n;
        this.bulkFill = 0;
        if (keep) {
          const kn = Math.min(n, this.budget);
          if (kn < n) this.msgTruncated = true;
          this.budget -= kn;
          this.bulkKept = Buffer.allocUnsafe(kn);
        } else this.bulkKept = null;
        if (n === 0) {
          this.mode = MODE_CRLF;
          this.crlfSeen = 0;
        } else this.mode = MODE_BULK;
        return;
      }
      case 42: // *
      case 37: // %
      case 126: // ~
      case 62: // >
      case 124: { // |
        const n = parseIntAscii(buf, ps, end);
        if (t === 42 && n === -1) {
          this.complete({ k: K.NULL }, keep);
          return;
        }
        if (!(n >= 0 && n <= MAX_AGGREGATE_LENGTH)) return this.protocolError(`bad aggregate length ${buf.toString('latin1', ps, Math.min(end, ps + 24))}`, tsMs);
        const k = t === 42 ? K.ARRAY : t === 37 ? K.MAP : t === 126 ? K.SET : t === 62 ? K.PUSH : K.ATTRIBUTE;
        const node: RespNode = { k, n, items: [] };
        const count = k === K.MAP || k === K.ATTRIBUTE ? n * 2 : n;
        if (count === 0) {
          this.complete(node, keep);
          return;
        }
        if (keep) this.nodes++;
        this.stack.push({ node, left: count, keep });
        return;
      }
      default:
        this.protocolError(`unknown type byte 0x${(t ?? 0).toString(16)}`, tsMs);
    }
  }

  /** Inline command: space-separated words, with Redis' quoting ("..." with escapes, '...'). */
  private onInline(buf: Buffer, s: number, end: number): void {
    const args = splitInline(buf, s, end);
    if (args === null || args.length === 0) {
      // Redis ignores empty inline lines; an unbalanced quote is a protocol error it answers with -ERR.
      if (args === null) {
        const m = this.message({ k: K.ARRAY, n: 0, items: [] });
        m.inline = true;
        this.resetMessage();
        this.sink.onProtocolError('unbalanced quotes in inline command', m, this.msgTs);
        return;
      }
      this.inMessage = false;
      return;
    }
    const items: RespNode[] = [];
    for (const a of args) {
      if (items.length >= MAX_NODES) {
        this.msgTruncated = true;
        break;
      }
      items.push({ k: K.BULK, n: a.length, b: this.keepString(a, 0, a.length) });
    }
    const m = this.message({ k: K.ARRAY, n: args.length, items });
    m.inline = true;
    this.inMessage = false;
    this.sink.onMessage(m);
  }

  private endBulk(): void {
    const node = this.bulkNode as RespNode;
    const kept = this.bulkKept;
    this.bulkNode = null;
    this.bulkKept = null;
    this.mode = MODE_LINE;
    if (kept) {
      let b = kept.subarray(0, this.bulkFill);
      if (node.k === K.VERBATIM && b.length >= 4 && b[3] === 58 /* : */) {
        node.fmt = b.toString('latin1', 0, 3);
        b = b.subarray(4);
      }
      node.b = b;
      this.msgBinaryCheck.push(b);
    }
    this.complete(node, this.bulkAttach);
  }

  /** A value is complete: attach it to its parent, closing every aggregate it completes. */
  private complete(node: RespNode, keep: boolean): void {
    let n = node;
    let kept = keep;
    for (;;) {
      const top = this.stack.length ? this.stack[this.stack.length - 1] : null;
      if (!top) {
        if (n.k === K.ATTRIBUTE) {
          // A top-level attribute annotates the value that follows: the message goes on.
          this.attrs = n;
          return;
        }
        const m = this.message(n);
        this.inMessage = false;
        this.stack = [];
        this.sink.onMessage(m);
        return;
      }
      if (n.k === K.ATTRIBUTE) return; // nested attributes are dropped (not an element of the parent)
      if (kept && top.keep) {
        if (n.k !== K.ARRAY && n.k !== K.MAP && n.k !== K.SET && n.k !== K.PUSH) this.nodes++;
        (top.node.items as RespNode[]).push(n);
      }
      if (--top.left > 0) return;
      this.stack.pop();
      n = top.node;
      kept = top.keep;
    }
  }
}

/** Like looksLikeStart, but true only when the visible bytes already settle it (a full first line). */
function looksLikeStartClosed(buf: Buffer, p: number, client: boolean): boolean {
  const nl = buf.indexOf(LF, p);
  if (nl < 0 || nl - p > LOOKAHEAD) return false;
  if (client) {
    // A command needs its first bulk header too.
    const nl2 = buf.indexOf(LF, nl + 1);
    if (nl2 < 0) return false;
  }
  return true;
}

/** UTF-8 validity of a buffer that may have been cut inside a multi-byte character. */
export function isUtf8Prefix(b: Buffer): boolean {
  if (b.length === 0 || isUtf8(b)) return true;
  // Allow a cut trailing sequence: drop up to 3 trailing bytes that start an incomplete character.
  for (let cut = 1; cut <= 3 && cut < b.length; cut++) {
    const lead = b[b.length - cut];
    if ((lead & 0xc0) === 0x80) continue; // continuation byte: look further back
    const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    return need > cut && isUtf8(b.subarray(0, b.length - cut));
  }
  return false;
}

/**
 * Splits an inline command line as Redis' sdssplitargs does: whitespace
 * separated, "double quotes" with \n \r \t \b \a \\ \" \xHH escapes, 'single
 * quotes' with \' only. Returns null on unbalanced quotes.
 */
export function splitInline(buf: Buffer, s: number, e: number): Buffer[] | null {
  const out: Buffer[] = [];
  let i = s;
  const isSpace = (c: number) => c === 32 || c === 9 || c === 10 || c === 13 || c === 11 || c === 12;
  const hex = (c: number) => (c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1);
  while (i < e) {
    while (i < e && isSpace(buf[i])) i++;
    if (i >= e) break;
    const bytes: number[] = [];
    let inDq = false;
    let inSq = false;
    for (;;) {
      if (i >= e) {
        if (inDq || inSq) return null;
        break;
      }
      const c = buf[i];
      if (inDq) {
        if (c === 92 && i + 3 < e && buf[i + 1] === 120 && hex(buf[i + 2]) >= 0 && hex(buf[i + 3]) >= 0) {
          bytes.push(hex(buf[i + 2]) * 16 + hex(buf[i + 3]));
          i += 4;
        } else if (c === 92 && i + 1 < e) {
          const n = buf[i + 1];
          bytes.push(n === 110 ? 10 : n === 114 ? 13 : n === 116 ? 9 : n === 98 ? 8 : n === 97 ? 7 : n);
          i += 2;
        } else if (c === 34) {
          // A closing quote must be followed by a space or the end.
          if (i + 1 < e && !isSpace(buf[i + 1])) return null;
          i++;
          break;
        } else {
          bytes.push(c);
          i++;
        }
      } else if (inSq) {
        if (c === 92 && i + 1 < e && buf[i + 1] === 39) {
          bytes.push(39);
          i += 2;
        } else if (c === 39) {
          if (i + 1 < e && !isSpace(buf[i + 1])) return null;
          i++;
          break;
        } else {
          bytes.push(c);
          i++;
        }
      } else if (isSpace(c)) {
        break;
      } else if (c === 34 && bytes.length === 0) {
        inDq = true;
        i++;
      } else if (c === 39 && bytes.length === 0) {
        inSq = true;
        i++;
      } else {
        bytes.push(c);
        i++;
      }
    }
    out.push(Buffer.from(bytes));
  }
  return out;
}
