/**
 * Redis dissector (RESP2 and RESP3). The byte-level reader is redis-resp.ts;
 * this file pairs commands with replies and builds items.
 *
 * Item shape (Kubeshark's spirit: request {command, key, value}, response
 * {type, value}):
 * - request.command: the first argument upper-cased. Two-word commands keep
 *   the first word as command: `CLIENT SETNAME app` is command 'CLIENT',
 *   key 'SETNAME', value 'app' (as Kubeshark does: key is always the second
 *   argument, so scripts need no per-command table).
 * - request.key: the second argument, or ''.
 * - request.value: the remaining arguments joined by ' ' (a string, like
 *   Kubeshark's), or ''. `SET k v EX 10` gives value 'v EX 10'.
 * - response.type: 'simple string' | 'error' | 'integer' | 'bulk string' |
 *   'array' | 'null' | 'double' | 'boolean' | 'big number' | 'bulk error' |
 *   'verbatim string' | 'map' | 'set' | 'push'. RESP2 null bulk/array and
 *   RESP3 null are all 'null'.
 * - response.value, JSON-friendly: strings as text; integers as numbers
 *   (as decimal strings beyond 2^53); doubles as numbers ('inf', '-inf',
 *   'nan' as strings); big numbers as strings; arrays, sets and pushes as
 *   arrays; maps as objects (non-string keys as their JSON text); a top-level
 *   error as its message, a nested error as {error: message}; a verbatim
 *   string as its text (its format in response.format). A RESP3 attribute
 *   before a reply goes to response.attributes.
 * - Binary data: a request or response in which some string is not valid
 *   UTF-8 has ALL its strings (key, value args / response strings and map
 *   keys) in base64 and encoding: 'base64' — one rule for the whole object,
 *   so no string is ambiguous.
 * - Secrets: passwords in AUTH, HELLO .. AUTH, MIGRATE AUTH/AUTH2, CONFIG SET
 *   requirepass/masterauth and ACL SETUSER rules are replaced by
 *   '(redacted)' and request.redacted is set (see redactSecrets).
 * - Size cap: the strings of one request / response keep at most
 *   opts.maxBodyBytes bytes in total (and at most MAX_NODES values); beyond
 *   that they are cut and truncated: true is set.
 *
 * Pairing: replies are FIFO to commands, except:
 * - RESP3 push messages ('>'), and RESP2 pub/sub deliveries (arrays
 *   'message' / 'pmessage' / 'smessage' while subscribed) are out of band:
 *   each becomes an item with request null, response {type: 'push', value}
 *   and no error.
 * - (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE get one confirmation per channel (a
 *   push in RESP3, an array in RESP2); the command's item waits for all of
 *   them and its response is {type: <first's type>, value: [confirmation,
 *   ...]} (always a list, even for one channel). UNSUBSCRIBE without
 *   channels ends when every channel of its kind that the parser saw
 *   subscribed is gone, or the count reaches 0 (channels per kind tracked up
 *   to MAX_TRACKED_CHANNELS). A confirmation that matches no pending
 *   command (e.g. subscriptions made before the capture started) is
 *   reported like a push, so it cannot shift the FIFO.
 * - After MONITOR's +OK, replies with no command pending are the monitor
 *   feed: items with request null and no error.
 * - CLIENT REPLY OFF / SKIP: commands that get no reply become items with
 *   response null (in command order, once the commands before them are
 *   reported).
 * - A reply captured before the oldest pending command was sent cannot be
 *   its reply: it becomes an item with request null and an error (this is
 *   what happens when a capture starts mid-connection).
 * - Blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN,
 *   BZPOPMAX, BZMPOP, XREAD/XREADGROUP BLOCK, WAIT, WAITAOF) time out after
 *   their own block time plus pairTimeoutMs (never when they block forever).
 *   Only the oldest command can be answered next, so only it can time out;
 *   when it is answered, the next one's clock restarts (the server starts
 *   it only then). After a timeout the next keeps its own deadline, so a
 *   dead server's backlog is flushed promptly.
 * - A command that times out (or is evicted) becomes an item with an error;
 *   its reply, if it comes later, still consumes its place in the FIFO and
 *   becomes an item with request null and an error, so later pairs stay right.
 *
 * Gaps: bytes lost inside a bulk payload keep the framing (the value is
 * incomplete; the item says so). Otherwise the partial message is dropped
 * and the reader resyncs on the next plausible RESP start (redis-resp.ts).
 * A request-side gap queues a placeholder (the lost command's reply is
 * still coming) whose item carries the error; a response-side gap fails the
 * oldest pending command. If a gap swallowed several whole messages,
 * pairing after it is best effort (the timing rule above catches some).
 *
 * Bounded state: at most MAX_PENDING commands / MAX_PENDING_BYTES kept bytes
 * awaiting replies per connection (oldest evicted as an item with error);
 * subscribe confirmations kept per command: MAX_CONFIRMATIONS.
 */
import type {
  ConnectionInfo, Direction, DissectorContext, ItemDraft, ProbeResult, ProtocolInfo, StreamDissector, StreamParser,
} from '../types.ts';
import { K, KIND_NAMES, looksLikeStart, RespReader, type RespMessage, type RespNode, type RespSink } from './redis-resp.ts';

export const REDIS_PROTOCOL: ProtocolInfo = { name: 'redis', version: '3.x', abbr: 'REDIS', longName: 'Redis Serialization Protocol', macro: 'redis' };

export const MAX_PENDING = 4096;
export const MAX_PENDING_BYTES = 8 * 1024 * 1024;
export const MAX_CONFIRMATIONS = 1024;
export const MAX_TRACKED_CHANNELS = 10_000;

const REDIS_PORTS = new Set([6379]);

export interface RedisStats {
  commands: number;
  replies: number;
  paired: number;
  pushes: number;
  timedOut: number;
  evicted: number;
  lateReplies: number;
  unmatchedReplies: number;
  protocolErrors: number;
  gaps: number;
  /** Exceptions caught at the parser's entry points (a bug: the direction resyncs). Tests assert 0. */
  internalErrors: number;
}

// ---------------------------------------------------------------------------
// RESP values -> JSON

/** Text of kept bytes: base64 for a binary message, else UTF-8 without a character cut at the end. */
function text(b: Buffer | undefined, binary: boolean): string {
  if (!b || b.length === 0) return '';
  if (binary) return b.toString('base64');
  return b.toString('utf8', 0, utf8CompleteEnd(b));
}

/** Length of `b` without a trailing incomplete UTF-8 sequence (cut by the size cap). */
function utf8CompleteEnd(b: Buffer): number {
  const n = b.length;
  for (let cut = 1; cut <= 3 && cut <= n; cut++) {
    const c = b[n - cut];
    if ((c & 0xc0) === 0x80) continue;
    const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    return need > cut ? n - cut : n;
  }
  return n;
}

function setKey(obj: Record<string, unknown>, k: string, v: unknown): void {
  // defineProperty: a key like "__proto__" becomes a plain own property.
  Object.defineProperty(obj, k, { value: v, enumerable: true, writable: true, configurable: true });
}

function isStringKind(k: number): boolean {
  return k === K.SIMPLE || k === K.BULK || k === K.VERBATIM;
}

function toJson(n: RespNode, binary: boolean, top: boolean): unknown {
  switch (n.k) {
    case K.SIMPLE:
    case K.BULK:
    case K.VERBATIM:
      return text(n.b, binary);
    case K.ERROR:
    case K.BULK_ERROR:
      return top ? text(n.b, binary) : { error: text(n.b, binary) };
    case K.INTEGER:
    case K.BOOLEAN:
      return n.v;
    case K.NULL:
      return null;
    case K.DOUBLE: {
      const s = text(n.b, false);
      const v = Number(s);
      return Number.isFinite(v) && s.trim() !== '' ? v : s;
    }
    case K.BIGNUM:
      return text(n.b, false);
    case K.ARRAY:
    case K.SET:
    case K.PUSH:
      return (n.items ?? []).map((x) => toJson(x, binary, false));
    case K.MAP:
    case K.ATTRIBUTE: {
      const obj: Record<string, unknown> = {};
      const items = n.items ?? [];
      for (let i = 0; i + 1 < items.length; i += 2) {
        const kn = items[i];
        const key = isStringKind(kn.k) ? text(kn.b, binary) : JSON.stringify(toJson(kn, binary, false));
        setKey(obj, key, toJson(items[i + 1], binary, false));
      }
      return obj;
    }
    default:
      return null;
  }
}

function responseObject(m: RespMessage): Record<string, unknown> {
  const r: Record<string, unknown> = { type: KIND_NAMES[m.root.k] ?? 'unknown', value: toJson(m.root, m.binary, true) };
  if (m.root.k === K.VERBATIM && m.root.fmt) r.format = m.root.fmt;
  if (m.attrs) r.attributes = toJson(m.attrs, m.binary, false);
  if (m.binary) r.encoding = 'base64';
  if (m.truncated) r.truncated = true;
  return r;
}

function upperAscii(b: Buffer | undefined): string {
  if (!b) return '';
  return b.toString('latin1', 0, Math.min(b.length, 64)).toUpperCase();
}

interface ParsedCommand {
  request: Record<string, unknown>;
  name: string;
  /** Arguments after the command name, as kept (for subscribe counts and block times). */
  args: RespNode[];
  argc: number;
  malformed: boolean;
}

function parseCommand(m: RespMessage): ParsedCommand {
  const root = m.root;
  if (root.k !== K.ARRAY || !root.items || root.items.length === 0 || root.items.some((x) => x.k !== K.BULK)) {
    // Not an array of bulk strings: the server will refuse it; keep what it was.
    const request: Record<string, unknown> = { command: '', key: '', value: JSON.stringify(toJson(root, m.binary, true)) ?? '' };
    if (m.binary) request.encoding = 'base64';
    return { request, name: '', args: [], argc: 0, malformed: root.k !== K.ARRAY || (root.n ?? 0) > 0 };
  }
  const items = root.items;
  const name = upperAscii(items[0].b);
  const texts: string[] = new Array(items.length - 1);
  for (let i = 1; i < items.length; i++) texts[i - 1] = text(items[i].b, m.binary);
  const redacted = redactSecrets(name, texts);
  const request: Record<string, unknown> = { command: name, key: texts.length ? texts[0] : '', value: texts.slice(1).join(' ') };
  if (redacted) request.redacted = true;
  if (m.binary) request.encoding = 'base64';
  if (m.truncated) request.truncated = true;
  if (m.inline) request.inline = true;
  return { request, name, args: items.slice(1), argc: (root.n ?? items.length) - 1, malformed: false };
}

export const REDACTED = '(redacted)';

/**
 * Replaces passwords in `args` (the arguments after the command name) so
 * they never reach items, NATS or scripts: AUTH [user] pass, HELLO .. AUTH
 * user pass, MIGRATE .. AUTH pass / AUTH2 user pass, CONFIG SET
 * requirepass|masterauth value, ACL SETUSER .. >pass / #hash. Returns
 * whether something was replaced.
 */
export function redactSecrets(name: string, args: string[]): boolean {
  let done = false;
  const hide = (i: number): void => {
    if (i < args.length) {
      args[i] = REDACTED;
      done = true;
    }
  };
  const upper = (i: number) => (args[i] ?? '').toUpperCase();
  switch (name) {
    case 'AUTH':
      hide(args.length === 1 ? 0 : 1);
      break;
    case 'HELLO':
      for (let i = 1; i < args.length; i++) if (upper(i) === 'AUTH') hide(i + 2);
      break;
    case 'MIGRATE':
      for (let i = 5; i < args.length; i++) {
        if (upper(i) === 'AUTH') hide(i + 1);
        else if (upper(i) === 'AUTH2') hide(i + 2);
      }
      break;
    case 'CONFIG':
      if (upper(0) === 'SET') {
        for (let i = 1; i + 1 < args.length; i += 2) {
          const p = args[i].toLowerCase();
          if (p === 'requirepass' || p === 'masterauth') hide(i + 1);
        }
      }
      break;
    case 'ACL':
      if (upper(0) === 'SETUSER') {
        for (let i = 2; i < args.length; i++) {
          const c = args[i][0];
          if (c === '>' || c === '#' || c === '<' || c === '!') {
            args[i] = c + REDACTED;
            done = true;
          }
        }
      }
      break;
  }
  return done;
}

const SUBSCRIBE_KINDS = new Set(['SUBSCRIBE', 'PSUBSCRIBE', 'SSUBSCRIBE', 'UNSUBSCRIBE', 'PUNSUBSCRIBE', 'SUNSUBSCRIBE']);
const PUBSUB_MESSAGES: Record<string, number> = { message: 3, pmessage: 4, smessage: 3 };

function argText(n: RespNode | undefined): string {
  return n?.b ? n.b.toString('latin1', 0, Math.min(n.b.length, 32)) : '';
}

/** How long a blocking command may legitimately wait, ms (0: not blocking; Infinity: forever). */
function blockTimeMs(name: string, args: RespNode[]): number {
  const secs = (s: string): number => {
    const v = Number(s);
    if (!Number.isFinite(v) || v < 0) return 0;
    return v === 0 ? Infinity : v * 1000;
  };
  const ms = (s: string): number => {
    const v = Number(s);
    if (!Number.isFinite(v) || v < 0) return 0;
    return v === 0 ? Infinity : v;
  };
  switch (name) {
    case 'BLPOP':
    case 'BRPOP':
    case 'BZPOPMIN':
    case 'BZPOPMAX':
    case 'BRPOPLPUSH':
    case 'BLMOVE':
      return secs(argText(args[args.length - 1]));
    case 'BLMPOP':
    case 'BZMPOP':
      return secs(argText(args[0]));
    case 'WAIT':
      return ms(argText(args[1]));
    case 'WAITAOF':
      return ms(argText(args[2]));
    case 'XREAD':
    case 'XREADGROUP':
      for (let i = 0; i + 1 < args.length; i++) if (argText(args[i]).toUpperCase() === 'BLOCK') return ms(argText(args[i + 1]));
      return 0;
    default:
      return 0;
  }
}

/** The first element's text of an array/push, lower-cased ('' if none). */
function firstWord(root: RespNode): string {
  const f = root.items?.[0];
  if (!f || !isStringKind(f.k) || !f.b || f.b.length > 16) return '';
  return f.b.toString('latin1').toLowerCase();
}

function isPubSubDelivery(root: RespNode): boolean {
  if (root.k !== K.ARRAY && root.k !== K.PUSH) return false;
  const arity = PUBSUB_MESSAGES[firstWord(root)];
  return arity !== undefined && root.n === arity;
}

const CONFIRMATION_WORDS = new Set(['subscribe', 'psubscribe', 'ssubscribe', 'unsubscribe', 'punsubscribe', 'sunsubscribe']);

/** A (un)subscribe confirmation: [word, channel or null, integer count]. */
function isAnyConfirmation(root: RespNode): boolean {
  if ((root.k !== K.ARRAY && root.k !== K.PUSH) || root.n !== 3 || !CONFIRMATION_WORDS.has(firstWord(root))) return false;
  return root.items?.[2]?.k === K.INTEGER;
}

/** Which subscription table a confirmation word belongs to. */
function channelKind(word: string): 0 | 1 | 2 {
  if (word === 'psubscribe' || word === 'punsubscribe') return 1;
  if (word === 'ssubscribe' || word === 'sunsubscribe') return 2;
  return 0;
}

function confirmationCount(root: RespNode): number {
  const c = root.items?.[2];
  return c && c.k === K.INTEGER && typeof c.v === 'number' ? c.v : -1;
}

// ---------------------------------------------------------------------------

interface Pending {
  request: Record<string, unknown> | null;
  name: string;
  size: number;
  tsMs: number;
  deadlineMs: number;
  /** Blocking commands: how long the server may legitimately hold the reply (0: not blocking). */
  blockMs: number;
  keptBytes: number;
  error?: string;
  /** CLIENT REPLY OFF / SKIP: no reply will come; reported when it reaches the head (keeps item order). */
  noReply?: boolean;
  /** Subscribe family: the confirmation word, how many are expected (-1: UNSUBSCRIBE-all, see addConfirmation), those received. */
  sub?: { word: string; expect: number; got: RespMessage[] };
}

function joinErrors(...e: Array<string | undefined>): string | undefined {
  const s = e.filter(Boolean).join('; ');
  return s || undefined;
}

export class RedisParser implements StreamParser {
  readonly stats: RedisStats = {
    commands: 0, replies: 0, paired: 0, pushes: 0, timedOut: 0, evicted: 0, lateReplies: 0, unmatchedReplies: 0, protocolErrors: 0, gaps: 0,
    internalErrors: 0,
  };
  private readonly ctx: DissectorContext;
  private readonly readers: [RespReader, RespReader];
  private queue: Pending[] = [];
  private head = 0;
  private pendingBytes = 0;
  /** Replies still owed to commands already reported (timed out / evicted). */
  private owed = 0;
  private subscribed = 0;
  /** Subscribed channels / patterns / shard channels seen in confirmations (for UNSUBSCRIBE without arguments). */
  private readonly channels: [Set<string>, Set<string>, Set<string>] = [new Set(), new Set(), new Set()];
  private channelsOverflow = false;
  private monitor = false;
  private replyOff = false;
  private skipNext = false;

  constructor(ctx: DissectorContext) {
    this.ctx = ctx;
    const budget = ctx.opts.maxBodyBytes;
    const client: RespSink = {
      onMessage: (m) => this.onCommand(m),
      onProtocolError: (reason, partial, ts) => this.onRequestError(reason, partial, ts),
    };
    const server: RespSink = {
      onMessage: (m) => this.onReply(m),
      onProtocolError: (reason, _partial, ts) => this.onResponseError(`malformed response: ${reason}`, ts),
    };
    this.readers = [new RespReader(client, true, budget), new RespReader(server, false, budget)];
  }

  onData(dir: Direction, data: Buffer, tsMs: number): void {
    try {
      this.readers[dir].feed(data, tsMs);
    } catch {
      this.internalError(dir);
    }
  }

  /** Last line of defence for the never-throw contract: count it, drop the direction's partial state, resync. */
  private internalError(dir: Direction): void {
    this.stats.internalErrors++;
    try {
      this.readers[dir].gap(Number.MAX_SAFE_INTEGER);
    } catch {
      // Nothing more to do: the reader is left scanning.
    }
  }

  // --- queue -------------------------------------------------------------

  private get pendingCount(): number {
    return this.queue.length - this.head;
  }

  private peek(): Pending | undefined {
    return this.head < this.queue.length ? this.queue[this.head] : undefined;
  }

  private shift(): Pending {
    const p = this.queue[this.head++];
    this.pendingBytes -= p.keptBytes;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return p;
  }

  /** The head was answered at `nowMs`: the server starts the next command only now, so its clock starts now too. */
  private answered(nowMs: number): void {
    this.drainNoReply();
    const next = this.peek();
    if (next) next.deadlineMs = Math.max(next.deadlineMs, nowMs + next.blockMs + this.ctx.opts.pairTimeoutMs);
  }

  /** Reports commands that get no reply once everything before them is reported. */
  private drainNoReply(): void {
    for (let h = this.peek(); h && h.noReply; h = this.peek()) {
      this.shift();
      this.emit(this.item(h, null, h.error));
    }
  }

  private enqueue(p: Pending): void {
    while (this.pendingCount > 0 && (this.pendingCount >= MAX_PENDING || this.pendingBytes + p.keptBytes > MAX_PENDING_BYTES)) {
      const old = this.shift();
      this.stats.evicted++;
      this.owed++;
      this.emitRequestOnly(old, 'evicted: too many requests awaiting a response');
      this.drainNoReply();
    }
    this.queue.push(p);
    this.pendingBytes += p.keptBytes;
    this.drainNoReply();
  }

  // --- items ---------------------------------------------------------------

  private item(p: Pending | null, m: RespMessage | null, error: string | undefined): ItemDraft {
    const d: ItemDraft = {
      protocol: REDIS_PROTOCOL,
      request: p ? p.request : null,
      response: m ? responseObject(m) : null,
      requestSize: p ? p.size : 0,
      responseSize: m ? m.size : 0,
      requestTsMs: p ? p.tsMs : 0,
      responseTsMs: m ? m.tsMs : 0,
    };
    const e = joinErrors(p?.error, m && m.gapBytes ? `capture gap: ${m.gapBytes} bytes lost in the response` : undefined, error);
    if (e) d.error = e;
    return d;
  }

  private emit(d: ItemDraft): void {
    this.ctx.sink.emit(this.ctx.conn, d);
  }

  private emitRequestOnly(p: Pending, error: string | undefined): void {
    if (p.sub && p.sub.got.length) {
      this.emitSubscribe(p, error);
      return;
    }
    this.emit(this.item(p, null, error));
  }

  private emitSubscribe(p: Pending, error?: string): void {
    const got = (p.sub as NonNullable<Pending['sub']>).got;
    const first = got[0];
    const binary = got.some((g) => g.binary);
    const response: Record<string, unknown> = {
      type: KIND_NAMES[first.root.k] ?? 'unknown',
      value: got.map((g) => toJson(g.root, binary, true)),
    };
    if (binary) response.encoding = 'base64';
    if (got.some((g) => g.truncated)) response.truncated = true;
    let size = 0;
    for (const g of got) size += g.size;
    const d: ItemDraft = {
      protocol: REDIS_PROTOCOL, request: p.request, response, requestSize: p.size, responseSize: size,
      requestTsMs: p.tsMs, responseTsMs: first.tsMs,
    };
    const e = joinErrors(p.error, error);
    if (e) d.error = e;
    this.emit(d);
  }

  // --- client side -----------------------------------------------------------

  private onCommand(m: RespMessage): void {
    this.stats.commands++;
    const c = parseCommand(m);
    const opts = this.ctx.opts;
    const p: Pending = {
      request: c.request, name: c.name, size: m.size, tsMs: m.tsMs, deadlineMs: m.tsMs + opts.pairTimeoutMs, blockMs: 0,
      keptBytes: Math.min(m.size, opts.maxBodyBytes) + 64,
    };
    const error = joinErrors(
      c.malformed ? 'malformed request: not an array of bulk strings' : undefined,
      m.gapBytes ? `capture gap: ${m.gapBytes} bytes lost in the request` : undefined,
    );
    if (error) p.error = error;
    if (c.name === 'CLIENT' && argText(c.args[0]).toUpperCase() === 'REPLY') {
      const mode = argText(c.args[1]).toUpperCase();
      if (mode === 'OFF' || mode === 'SKIP') {
        // Neither gets a reply; OFF silences what follows, SKIP the next command.
        if (mode === 'OFF') this.replyOff = true;
        else if (!this.replyOff) this.skipNext = true;
        p.noReply = true;
        this.enqueue(p);
        return;
      }
      if (mode === 'ON') this.replyOff = false;
    } else if (this.replyOff || this.skipNext) {
      this.skipNext = false;
      p.noReply = true;
      this.enqueue(p);
      return;
    }
    if (SUBSCRIBE_KINDS.has(c.name)) {
      p.sub = { word: c.name.toLowerCase(), expect: c.argc > 0 ? c.argc : c.name.startsWith('UN') || c.name.startsWith('PUN') || c.name.startsWith('SUN') ? -1 : 1, got: [] };
    }
    if (c.name === 'RESET') {
      this.subscribed = 0;
      for (const set of this.channels) set.clear();
      this.monitor = false;
      this.replyOff = false;
    }
    p.blockMs = blockTimeMs(c.name, c.args);
    if (p.blockMs) p.deadlineMs = m.tsMs + p.blockMs + opts.pairTimeoutMs;
    this.enqueue(p);
  }

  private onRequestError(reason: string, partial: RespMessage | null, tsMs: number): void {
    this.stats.protocolErrors++;
    // The server answers a protocol error (-ERR Protocol error ...) before closing: keep a place for that reply.
    const c = partial && partial.root.k === K.ARRAY && partial.root.items?.length ? parseCommand(partial) : null;
    this.enqueue({
      request: c ? c.request : null, name: c ? c.name : '', size: partial ? partial.size : 0, tsMs: partial ? partial.tsMs : tsMs,
      deadlineMs: tsMs + this.ctx.opts.pairTimeoutMs, blockMs: 0, keptBytes: 64, error: `malformed request: ${reason}`,
    });
  }

  // --- server side -------------------------------------------------------------

  private onReply(m: RespMessage): void {
    this.stats.replies++;
    const root = m.root;
    const head = this.peek();
    const confirmation = isAnyConfirmation(root);
    if (confirmation && head && head.sub && firstWord(root) === head.sub.word && this.owed === 0) {
      this.addConfirmation(head, m);
      return;
    }
    // Out of band: RESP3 pushes, pub/sub deliveries while subscribed, confirmations nobody waits for.
    if (root.k === K.PUSH || confirmation || (isPubSubDelivery(root) && (this.subscribed > 0 || !head))) {
      if (confirmation) this.trackConfirmation(root);
      this.stats.pushes++;
      const d = this.item(null, m, undefined);
      (d.response as Record<string, unknown>).type = 'push';
      this.emit(d);
      return;
    }
    if (this.owed > 0) {
      this.owed--;
      this.stats.lateReplies++;
      this.emit(this.item(null, m, 'response after its request was reported (timed out or evicted)'));
      return;
    }
    if (!head || m.tsMs < head.tsMs) {
      if (this.monitor && !head) {
        this.emit(this.item(null, m, undefined));
        return;
      }
      this.stats.unmatchedReplies++;
      this.emit(this.item(null, m, 'response without a request'));
      return;
    }
    if (head.sub && head.sub.got.length > 0) {
      // Fewer confirmations than channels, then something else: close the subscribe and go on.
      this.shift();
      this.emitSubscribe(head, 'fewer confirmations than expected');
      this.drainNoReply();
      this.onReplyAgain(m);
      return;
    }
    this.shift();
    this.stats.paired++;
    if (head.name === 'MONITOR' && root.k === K.SIMPLE) this.monitor = true;
    this.emit(this.item(head, m, undefined));
    this.answered(m.tsMs);
  }

  /** Updates the subscription tables from a confirmation; returns the channel's table. */
  private trackConfirmation(root: RespNode): Set<string> {
    const word = firstWord(root);
    const set = this.channels[channelKind(word)];
    const ch = root.items?.[1];
    const count = confirmationCount(root);
    if (count >= 0) this.subscribed = count;
    if (ch && ch.b) {
      const name = ch.b.toString('latin1');
      if (word.includes('unsubscribe')) set.delete(name);
      else if (set.size < MAX_TRACKED_CHANNELS) set.add(name);
      else this.channelsOverflow = true;
    }
    return set;
  }

  /** Re-handles a reply after the head changed (at most once per reply: the subscribe head was removed). */
  private onReplyAgain(m: RespMessage): void {
    this.stats.replies--;
    this.onReply(m);
  }

  private addConfirmation(head: Pending, m: RespMessage): void {
    const sub = head.sub as NonNullable<Pending['sub']>;
    if (sub.got.length < MAX_CONFIRMATIONS) sub.got.push(m);
    const set = this.trackConfirmation(m.root);
    const count = confirmationCount(m.root);
    const channelNull = m.root.items?.[1]?.k === K.NULL;
    const n = sub.got.length;
    const done = sub.expect >= 0
      ? n >= sub.expect
      : count === 0 || channelNull || (!this.channelsOverflow && set.size === 0);
    if (done || n >= MAX_CONFIRMATIONS) {
      this.shift();
      this.stats.paired++;
      this.emitSubscribe(head);
      this.answered(m.tsMs);
    }
  }

  private onResponseError(reason: string, _tsMs: number): void {
    this.stats.protocolErrors++;
    this.failHead(reason);
  }

  private failHead(reason: string): void {
    if (this.owed > 0) {
      this.owed--;
      return;
    }
    const head = this.peek();
    if (!head) return;
    this.shift();
    this.emitRequestOnly(head, reason);
    this.drainNoReply();
  }

  // --- StreamParser ----------------------------------------------------------

  onGap(dir: Direction, length: number, tsMs: number): void {
    try {
      this.gap(dir, length, tsMs);
    } catch {
      this.internalError(dir);
    }
  }

  private gap(dir: Direction, length: number, tsMs: number): void {
    this.stats.gaps++;
    const reader = this.readers[dir];
    const wasScanning = reader.scanning;
    const r = reader.gap(length);
    if (r.kind === 'in-bulk' || wasScanning) return;
    if (dir === 0) {
      const c = r.partial && r.partial.root.k === K.ARRAY && r.partial.root.items?.length ? parseCommand(r.partial) : null;
      this.enqueue({
        request: c ? c.request : null, name: c ? c.name : '', size: r.partial ? r.partial.size + length : length,
        tsMs: r.partial ? r.partial.tsMs : tsMs, deadlineMs: tsMs + this.ctx.opts.pairTimeoutMs, blockMs: 0, keptBytes: 64,
        error: `capture gap: ${length} bytes lost in the request`,
      });
      return;
    }
    this.failHead(`capture gap: ${length} bytes lost in the response`);
  }

  onTick(nowMs: number): void {
    // Only the oldest can be answered next, so only it can time out; then the next, and so on.
    // After a timeout the next keeps its own deadline: a silent server's backlog flushes at once.
    for (let p = this.peek(); p && nowMs >= p.deadlineMs; p = this.peek()) {
      this.shift();
      this.stats.timedOut++;
      this.owed++;
      this.emitRequestOnly(p, 'request timed out without response');
      this.drainNoReply();
    }
  }

  onClose(tsMs: number, reason: 'fin' | 'rst' | 'timeout' | 'end'): void {
    if (this.readers[1].midMessage) this.failHead('connection ended in the middle of the response');
    const r0 = this.readers[0];
    if (r0.midMessage) {
      const r = r0.gap(Number.MAX_SAFE_INTEGER);
      if (r.kind === 'lost' && r.partial && r.partial.root.items?.length) {
        const c = parseCommand(r.partial);
        this.emit(this.item({ request: c.request, name: c.name, size: r.partial.size, tsMs: r.partial.tsMs, deadlineMs: tsMs, blockMs: 0, keptBytes: 0 }, null,
          'connection ended in the middle of the request'));
      }
    }
    while (this.pendingCount > 0) {
      const p = this.shift();
      if (p.noReply) {
        this.emit(this.item(p, null, p.error));
        continue;
      }
      this.stats.timedOut++;
      this.emitRequestOnly(p, `no response before the connection ended (${reason})`);
    }
    this.readers[1].gap(Number.MAX_SAFE_INTEGER);
    this.queue = [];
    this.head = 0;
    this.pendingBytes = 0;
    this.owed = 0;
  }

  /** Bytes held by the parser (tests: bounded memory). */
  bufferedBytes(): number {
    return this.readers[0].bufferedBytes() + this.readers[1].bufferedBytes() + this.pendingBytes;
  }

  pending(): number {
    return this.pendingCount;
  }
}

// ---------------------------------------------------------------------------
// Probe

const PROBE_LIMIT = 512;
const CONFIDENT_SIMPLE = new Set(['OK', 'PONG', 'QUEUED']);
const ERROR_CODES = /^(ERR|WRONGTYPE|NOAUTH|NOPERM|MOVED|ASK|LOADING|BUSY|NOSCRIPT|READONLY|EXECABORT|CROSSSLOT|CLUSTERDOWN|MASTERDOWN|OOM|WRONGPASS|NOPROTO|NOREPLICAS|UNBLOCKED|MISCONF|TRYAGAIN)( |$)/;

function isCommandNameByte(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95 || c === 45 || c === 124 || c === 46;
}

/** Reads `<digits>\r\n` at p: [value, next] | 'more' | null. */
function digitsLine(b: Buffer, p: number, allowMinus: boolean): [number, number] | 'more' | null {
  let i = p;
  let neg = false;
  if (allowMinus && b[i] === 45) {
    neg = true;
    i++;
  }
  const d0 = i;
  let v = 0;
  while (i < b.length && b[i] >= 48 && b[i] <= 57) {
    v = v * 10 + (b[i] - 48);
    i++;
    if (i - d0 > 12) return null;
  }
  if (i >= b.length) return b.length - p > 14 ? null : 'more';
  if (i === d0 || b[i] !== 13) return null;
  if (i + 1 >= b.length) return 'more';
  if (b[i + 1] !== 10) return null;
  return [neg ? -v : v, i + 2];
}

export function probeRedisCommand(b: Buffer, hint: boolean): ProbeResult {
  if (b.length === 0) return 'more';
  if (b[0] === 42) {
    const n = digitsLine(b, 1, false);
    if (n === 'more') return 'more';
    if (!n || n[0] < 1 || n[0] > 1_048_576) return 'no';
    let p = n[1];
    if (p >= b.length) return 'more';
    if (b[p] !== 36) return 'no';
    const l = digitsLine(b, p + 1, false);
    if (l === 'more') return 'more';
    if (!l || l[0] < 1 || l[0] > 64) return 'no';
    p = l[1];
    for (let i = 0; i < l[0]; i++) {
      if (p + i >= b.length) return 'more';
      if (!isCommandNameByte(b[p + i])) return 'no';
    }
    if (p + l[0] + 2 > b.length) return 'more';
    return b[p + l[0]] === 13 && b[p + l[0] + 1] === 10 ? 'yes' : 'no';
  }
  if (!hint) return 'no';
  // Inline command (only with the port hint): one line of printable text starting with a command word.
  // Judge what is there before waiting for the end of the line: binary protocols are refused at once.
  const nl = b.indexOf(10);
  let end = nl < 0 ? b.length : nl;
  if (nl > 0 && b[end - 1] === 13) end--;
  let i = 0;
  while (i < end && ((b[i] >= 65 && b[i] <= 90) || (b[i] >= 97 && b[i] <= 122))) i++;
  if (i > 32 || (i < end && b[i] !== 32) || (i === 0 && (nl >= 0 || b.length > 0))) return 'no';
  for (let j = i; j < end; j++) if ((b[j] < 0x20 && b[j] !== 13) || b[j] === 0x7f) return 'no';
  if (nl < 0) return b.length > PROBE_LIMIT ? 'no' : 'more';
  const line = b.toString('latin1', 0, end);
  if (/ HTTP\/\d/.test(line)) return 'no';
  return 'yes';
}

export function probeRedisReply(b: Buffer, hint: boolean): ProbeResult {
  if (b.length === 0) return 'more';
  const t = b[0];
  const nl = b.indexOf(10);
  if (nl < 0) {
    if (b.length > PROBE_LIMIT) return 'no';
    return looksLikeStart(b, 0, false) ? 'more' : 'no';
  }
  if (!looksLikeStart(b, 0, false) || nl < 1 || b[nl - 1] !== 13) return 'no';
  const line = b.toString('latin1', 1, nl - 1);
  switch (t) {
    case 43: // +
      return hint || CONFIDENT_SIMPLE.has(line) ? 'yes' : 'no';
    case 45: // -
      return hint || ERROR_CODES.test(line) ? 'yes' : 'no';
    case 42: // * % ~ > : an aggregate whose first element also looks like RESP
    case 37:
    case 126:
    case 62: {
      const n = Number(line);
      if (!Number.isInteger(n) || n < -1) return 'no';
      if (n <= 0) return 'yes';
      if (nl + 1 >= b.length) return hint ? 'yes' : 'more';
      return looksLikeStart(b, nl + 1, false) ? 'yes' : 'no';
    }
    default:
      return 'yes';
  }
}

function portHint(conn: ConnectionInfo): boolean {
  return REDIS_PORTS.has(conn.server.port) || REDIS_PORTS.has(conn.client.port);
}

export const redisDissector: StreamDissector = {
  name: 'redis',
  probe(data: Buffer, dir: Direction, conn: ConnectionInfo): ProbeResult {
    try {
      return dir === 0 ? probeRedisCommand(data, portHint(conn)) : probeRedisReply(data, portHint(conn));
    } catch {
      return 'no';
    }
  },
  create(ctx: DissectorContext): StreamParser {
    return new RedisParser(ctx);
  },
};
