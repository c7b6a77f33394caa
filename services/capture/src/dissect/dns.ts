/**
 * DNS dissectors: UDP datagrams (`dnsDatagramDissector`) and DNS over TCP
 * (`dnsStreamDissector`, RFC 1035 4.2.2 / RFC 7766: a 2-byte length before
 * each message). The message parser is in dns-message.ts.
 *
 * Pairing. A query and its response are paired by (flow, id, questions) —
 * the question is compared case-folded because resolvers may randomise case
 * (0x20) and servers echo it. QR says which is which, not the direction, so
 * a guessed client/server orientation does not matter. A response whose
 * question section is empty (some FORMERR/NOTIMP answers) pairs by id alone.
 *
 * UDP specifics:
 * - Retransmissions: a query that repeats a pending (flow, id, question)
 *   is a client retry; it is folded into the pending one (one exchange, one
 *   item; request.retransmissions counts the repeats, the timing is from
 *   the first copy).
 * - A response that pairs with nothing becomes an item with request null and
 *   an error; if the same (flow, id, question) was answered within
 *   pairTimeoutMs the error says it is a duplicate (servers answer each
 *   retransmitted copy).
 * - A query unanswered for pairTimeoutMs of capture time becomes an item
 *   with error 'query timed out without response'; at onEnd, every pending
 *   query is flushed with 'no response before the end of the capture'.
 * - Bounded state: at most MAX_PENDING_PER_FLOW pending queries per flow and
 *   MAX_PENDING_TOTAL per capture (state is kept per ItemSink); when full, the oldest is evicted as an item
 *   with an error and counted in stats.evicted. The recently-answered table
 *   (duplicates) is capped at MAX_ANSWERED and expires with pairTimeoutMs.
 * - mDNS (port 5353) is parsed (QU / cache-flush bits split off the class);
 *   its multicast answers usually come on another flow and so appear as
 *   responses without a query.
 *
 * TCP specifics:
 * - Pipelined queries are allowed and responses may come in any order
 *   (RFC 7766 6.2.1.1): pairing is by (id, questions), not FIFO.
 * - At most MAX_PENDING_PER_FLOW pending queries per connection (oldest
 *   evicted as an item with an error).
 * - onGap: if the lost bytes fall inside the message being read (its length
 *   prefix was seen), that message is dropped and framing continues intact;
 *   a dropped response fails the pending query with the same id. Otherwise
 *   the partial message is dropped and the parser resynchronises: it scans
 *   the following bytes for a plausible length-prefixed header (length >=
 *   12, sane header counts, QR as this direction carried before, and the
 *   whole message parsing cleanly) and resumes there. If
 *   none is found within RESYNC_SCAN_LIMIT bytes, it gives up on that
 *   direction (its further bytes are ignored and counted); pending queries
 *   are still flushed at close.
 */
import type {
  ConnectionInfo, DatagramDissector, Direction, DissectorContext, DissectorOptions, ItemDraft, ItemSink,
  ProtocolInfo, ProbeResult, StreamDissector, StreamParser,
} from '../types.ts';
import {
  DNS_HEADER_LENGTH, type DnsMessage, dnsQuestionKey, dnsRequestObject, dnsResponseObject, parseDnsMessage,
  plausibleDnsHeader, readDnsHeader,
} from './dns-message.ts';

export const DNS_PROTOCOL: ProtocolInfo = { name: 'dns', version: '0', abbr: 'DNS', longName: 'Domain Name System', macro: 'dns' };

export const MAX_PENDING_PER_FLOW = 1024;
export const MAX_PENDING_TOTAL = 65_536;
export const MAX_ANSWERED = 4096;
/** TCP resync: bytes scanned for a plausible header after a gap before giving up on a direction. */
export const RESYNC_SCAN_LIMIT = 65_536 + 2;

const DNS_PORTS = new Set([53, 5353]);

function portHint(conn: ConnectionInfo): boolean {
  return DNS_PORTS.has(conn.server.port) || DNS_PORTS.has(conn.client.port);
}
function isMdns(conn: ConnectionInfo): boolean {
  return conn.server.port === 5353 || conn.client.port === 5353;
}

export interface DnsStats {
  queries: number;
  responses: number;
  paired: number;
  retransmissions: number;
  timedOut: number;
  unmatchedResponses: number;
  duplicateResponses: number;
  evicted: number;
  /** Datagrams / TCP messages too short for a header, or dropped by the TCP parser (gaps, give-up). */
  malformed: number;
  /** TCP bytes skipped while resynchronising or after giving up. */
  skippedBytes: number;
  /** Exceptions caught at entry points (a bug; tests assert 0): the datagram / direction is dropped. */
  internalErrors: number;
}

function newStats(): DnsStats {
  return {
    queries: 0, responses: 0, paired: 0, retransmissions: 0, timedOut: 0, unmatchedResponses: 0, duplicateResponses: 0, evicted: 0,
    malformed: 0, skippedBytes: 0, internalErrors: 0,
  };
}

interface PendingQuery {
  key: string;
  conn: ConnectionInfo;
  id: number;
  tsMs: number;
  size: number;
  request: Record<string, unknown>;
  retransmissions: number;
  error?: string;
}

function queryItem(p: PendingQuery, error?: string): ItemDraft {
  if (p.retransmissions) p.request.retransmissions = p.retransmissions;
  const item: ItemDraft = {
    protocol: DNS_PROTOCOL, request: p.request, response: null,
    requestSize: p.size, responseSize: 0, requestTsMs: p.tsMs, responseTsMs: 0,
  };
  const e = [p.error, error].filter(Boolean).join('; ');
  if (e) item.error = e;
  return item;
}

function pairedItem(p: PendingQuery, resp: DnsMessage, tsMs: number): ItemDraft {
  const item = queryItem(p);
  item.response = dnsResponseObject(resp);
  item.responseSize = resp.size;
  item.responseTsMs = tsMs;
  if (resp.error) item.error = [item.error, `malformed DNS response: ${resp.error}`].filter(Boolean).join('; ');
  return item;
}

function responseOnlyItem(resp: DnsMessage, tsMs: number, error: string): ItemDraft {
  const errors = [error];
  if (resp.error) errors.push(`malformed DNS response: ${resp.error}`);
  return {
    protocol: DNS_PROTOCOL, request: null, response: dnsResponseObject(resp),
    requestSize: 0, responseSize: resp.size, requestTsMs: 0, responseTsMs: tsMs, error: errors.join('; '),
  };
}

function newPending(key: string, conn: ConnectionInfo, m: DnsMessage, tsMs: number): PendingQuery {
  const p: PendingQuery = { key, conn, id: m.header.id, tsMs, size: m.size, request: dnsRequestObject(m), retransmissions: 0 };
  if (m.error) p.error = `malformed DNS query: ${m.error}`;
  return p;
}

/** Looks a response up in a pending table: by (id, questions), or by id alone when the response has no question. */
function findPending(table: Map<string, PendingQuery>, key: string, resp: DnsMessage): PendingQuery | undefined {
  const exact = table.get(key);
  if (exact || resp.questions.length > 0) return exact;
  for (const p of table.values()) if (p.id === resp.header.id) return p;
  return undefined;
}

/** UDP state of one capture (one ItemSink). */
class DnsUdpState {
  /** All pending queries in arrival order (oldest first: timeouts and global eviction walk from the front). */
  readonly pending = new Map<string, PendingQuery>();
  readonly perFlow = new Map<ConnectionInfo, Map<string, PendingQuery>>();
  /** Recently answered keys -> answer time, to recognise duplicate responses. */
  readonly answered = new Map<string, number>();
  /** A private number per flow object: keys stay distinct even if two captures reuse ConnectionInfo ids. */
  readonly flowIds = new WeakMap<ConnectionInfo, number>();
  nextFlowId = 0;
}

/**
 * The UDP dissector. Its state is kept per ItemSink (one per capture) and
 * per flow object, so one instance can serve several captures at once:
 * onTick/onEnd with a sink only touch that capture's queries.
 */
export class DnsDatagramHandler implements DatagramDissector {
  readonly name = 'dns';
  readonly stats: DnsStats = newStats();
  private readonly states = new Map<ItemSink, DnsUdpState>();

  probe(payload: Buffer, conn: ConnectionInfo): boolean {
    return probeDnsMessage(payload, portHint(conn));
  }

  private state(sink: ItemSink): DnsUdpState {
    let s = this.states.get(sink);
    if (!s) {
      s = new DnsUdpState();
      this.states.set(sink, s);
    }
    return s;
  }

  onDatagram(conn: ConnectionInfo, dir: Direction, payload: Buffer, tsMs: number, sink: ItemSink, opts: DissectorOptions): void {
    try {
      this.datagram(conn, dir, payload, tsMs, sink, opts);
    } catch {
      this.stats.internalErrors++;
    }
  }

  private datagram(conn: ConnectionInfo, _dir: Direction, payload: Buffer, tsMs: number, sink: ItemSink, opts: DissectorOptions): void {
    const m = parseDnsMessage(payload, { mdns: isMdns(conn) });
    if (!m) {
      this.stats.malformed++;
      return;
    }
    const s = this.state(sink);
    let flowId = s.flowIds.get(conn);
    if (flowId === undefined) {
      flowId = s.nextFlowId++;
      s.flowIds.set(conn, flowId);
    }
    const key = flowId + '#' + dnsQuestionKey(m);
    if (m.header.qr === 0) this.onQuery(s, conn, key, m, tsMs, sink);
    else this.onResponse(s, conn, key, m, tsMs, sink, opts);
  }

  private onQuery(s: DnsUdpState, conn: ConnectionInfo, key: string, m: DnsMessage, tsMs: number, sink: ItemSink): void {
    this.stats.queries++;
    const existing = s.pending.get(key);
    if (existing) {
      existing.retransmissions++;
      this.stats.retransmissions++;
      return;
    }
    let flow = s.perFlow.get(conn);
    if (!flow) {
      flow = new Map();
      s.perFlow.set(conn, flow);
    }
    if (flow.size >= MAX_PENDING_PER_FLOW) this.evict(s, flow.values().next().value as PendingQuery, sink);
    if (s.pending.size >= MAX_PENDING_TOTAL) this.evict(s, s.pending.values().next().value as PendingQuery, sink);
    const p = newPending(key, conn, m, tsMs);
    s.pending.set(key, p);
    flow.set(key, p);
    s.answered.delete(key);
  }

  private onResponse(s: DnsUdpState, conn: ConnectionInfo, key: string, m: DnsMessage, tsMs: number, sink: ItemSink, opts: DissectorOptions): void {
    this.stats.responses++;
    const flow = s.perFlow.get(conn);
    const p = flow ? findPending(flow, key, m) : undefined;
    if (p) {
      this.remove(s, p);
      this.stats.paired++;
      if (s.answered.size >= MAX_ANSWERED) s.answered.delete(s.answered.keys().next().value as string);
      s.answered.set(p.key, tsMs);
      sink.emit(p.conn, pairedItem(p, m, tsMs));
      return;
    }
    const answeredAt = s.answered.get(key);
    if (answeredAt !== undefined && tsMs - answeredAt <= opts.pairTimeoutMs) {
      this.stats.duplicateResponses++;
      sink.emit(conn, responseOnlyItem(m, tsMs, 'duplicate response: the query was already answered'));
      return;
    }
    this.stats.unmatchedResponses++;
    sink.emit(conn, responseOnlyItem(m, tsMs, 'response without a query'));
  }

  private remove(s: DnsUdpState, p: PendingQuery): void {
    s.pending.delete(p.key);
    const flow = s.perFlow.get(p.conn);
    if (flow) {
      flow.delete(p.key);
      if (flow.size === 0) s.perFlow.delete(p.conn);
    }
  }

  private evict(s: DnsUdpState, p: PendingQuery, sink: ItemSink): void {
    this.remove(s, p);
    this.stats.evicted++;
    sink.emit(p.conn, queryItem(p, 'evicted: too many queries awaiting a response'));
  }

  onTick(nowMs: number, sink: ItemSink, opts: DissectorOptions): void {
    const s = this.states.get(sink);
    if (!s) return;
    // Oldest first; stop at the first one still within its time.
    for (const p of s.pending.values()) {
      if (nowMs - p.tsMs < opts.pairTimeoutMs) break;
      this.remove(s, p);
      this.stats.timedOut++;
      sink.emit(p.conn, queryItem(p, 'query timed out without response'));
    }
    for (const [k, t] of s.answered) {
      if (nowMs - t <= opts.pairTimeoutMs) break;
      s.answered.delete(k);
    }
  }

  onEnd(_tsMs: number, sink: ItemSink, _opts: DissectorOptions): void {
    const s = this.states.get(sink);
    if (!s) return;
    this.states.delete(sink);
    for (const p of s.pending.values()) {
      this.stats.timedOut++;
      sink.emit(p.conn, queryItem(p, 'no response before the end of the capture'));
    }
  }

  /** Pending queries of one capture (tests, status). */
  pendingCount(sink: ItemSink): number {
    return this.states.get(sink)?.pending.size ?? 0;
  }
}

export function createDnsDatagramDissector(): DnsDatagramHandler {
  return new DnsDatagramHandler();
}

/** The shared instance (safe across captures: state is per sink). stats sum over all captures; use createDnsDatagramDissector() for separate counts. */
export const dnsDatagramDissector: DnsDatagramHandler = createDnsDatagramDissector();

/**
 * Whether `msg` (a whole DNS message) looks like DNS. With a port hint a sane
 * header and parseable questions suffice; without one the whole message must
 * parse cleanly with no trailing bytes.
 */
export function probeDnsMessage(msg: Buffer, hint: boolean): boolean {
  if (!plausibleDnsHeader(msg, 0, msg.length)) return false;
  const m = parseDnsMessage(msg);
  if (!m) return false;
  if (hint) return m.questions.length === m.header.qdcount || (m.error === undefined);
  return m.error === undefined && m.header.qdcount > 0 && m.questions.length === m.header.qdcount;
}

// ---------------------------------------------------------------------------
// DNS over TCP

const MODE_LEN = 0; // reading the 2-byte length prefix
const MODE_BODY = 1; // reading a message body
const MODE_SCAN = 2; // resynchronising after a gap
const MODE_DEAD = 3; // gave up on this direction

const EMPTY = Buffer.alloc(0);

class DnsTcpDirection {
  mode = MODE_LEN;
  /** Length-prefix bytes collected so far (0..2). */
  lenCount = 0;
  lenHigh = 0;
  msgLen = 0;
  body: Buffer = EMPTY;
  bodyFill = 0;
  /** The message being read lost bytes in a gap: count its bytes, do not keep or parse it. */
  discard = false;
  msgTsMs = 0;
  /** Resync: bytes kept since the last scan position, and how many are needed before scanning again. */
  scanParts: Buffer[] = [];
  scanLen = 0;
  scanNeed = 0;
  scanned = 0;
  /** Set after a gap: the next item of this direction says so. */
  gapNote = '';
  /** QR bit of the messages this direction carried so far (-1: none yet), for resync. */
  qr = -1;
}

export class DnsStreamParser implements StreamParser {
  readonly stats: DnsStats = newStats();
  private readonly ctx: DissectorContext;
  private readonly dirs: [DnsTcpDirection, DnsTcpDirection] = [new DnsTcpDirection(), new DnsTcpDirection()];
  private readonly pending = new Map<string, PendingQuery>();
  private readonly mdns: boolean;

  constructor(ctx: DissectorContext) {
    this.ctx = ctx;
    this.mdns = isMdns(ctx.conn);
  }

  onData(dir: Direction, input: Buffer, tsMs: number): void {
    try {
      this.data(dir, input, tsMs);
    } catch {
      // Last line of defence for the never-throw contract: count, and resync this direction.
      this.stats.internalErrors++;
      this.enterScan(this.dirs[dir]);
    }
  }

  private data(dir: Direction, input: Buffer, tsMs: number): void {
    const d = this.dirs[dir];
    let data = input;
    let pos = 0;
    // Each pass consumes at least one byte, or (scan) swaps in a buffer that starts at a found header.
    while (pos < data.length) {
      if (d.mode === MODE_DEAD) {
        this.stats.skippedBytes += data.length - pos;
        return;
      }
      if (d.mode === MODE_SCAN) {
        const found = this.scanFeed(dir, d, data.subarray(pos));
        if (!found) return;
        data = found;
        pos = 0;
        continue;
      }
      if (d.mode === MODE_LEN) {
        if (d.lenCount === 0) {
          d.msgTsMs = tsMs;
          d.lenHigh = data[pos++];
          d.lenCount = 1;
          continue;
        }
        d.msgLen = (d.lenHigh << 8) | data[pos++];
        d.lenCount = 0;
        if (d.msgLen < DNS_HEADER_LENGTH) {
          // Not DNS framing: resync on what follows.
          this.stats.malformed++;
          this.enterScan(d);
          continue;
        }
        d.body = Buffer.allocUnsafe(d.msgLen);
        d.bodyFill = 0;
        d.discard = false;
        d.mode = MODE_BODY;
        continue;
      }
      const take = Math.min(d.msgLen - d.bodyFill, data.length - pos);
      if (!d.discard) data.copy(d.body, d.bodyFill, pos, pos + take);
      d.bodyFill += take;
      pos += take;
      if (d.bodyFill === d.msgLen) this.endBody(dir, d);
    }
  }

  private endBody(dir: Direction, d: DnsTcpDirection): void {
    const body = d.body;
    const discard = d.discard;
    d.body = EMPTY;
    d.discard = false;
    d.mode = MODE_LEN;
    if (!discard) this.onMessage(dir, body, d.msgTsMs);
  }

  private onMessage(dir: Direction, body: Buffer, tsMs: number): void {
    const d = this.dirs[dir];
    const m = parseDnsMessage(body, { mdns: this.mdns });
    if (!m) {
      this.stats.malformed++;
      return;
    }
    const key = dnsQuestionKey(m);
    const note = d.gapNote;
    d.gapNote = '';
    d.qr = m.header.qr;
    const { conn, sink } = this.ctx;
    if (m.header.qr === 0) {
      this.stats.queries++;
      const prev = this.pending.get(key);
      if (prev) {
        // The same id and question twice on one connection: the two cannot be told apart; report the first.
        this.pending.delete(key);
        sink.emit(conn, queryItem(prev, 'superseded by a query with the same id and question'));
      }
      if (this.pending.size >= MAX_PENDING_PER_FLOW) {
        const oldest = this.pending.values().next().value as PendingQuery;
        this.pending.delete(oldest.key);
        this.stats.evicted++;
        sink.emit(conn, queryItem(oldest, 'evicted: too many queries awaiting a response'));
      }
      const p = newPending(key, conn, m, tsMs);
      if (note) p.error = [p.error, note].filter(Boolean).join('; ');
      this.pending.set(key, p);
      return;
    }
    this.stats.responses++;
    const p = findPending(this.pending, key, m);
    if (p) {
      this.pending.delete(p.key);
      this.stats.paired++;
      const item = pairedItem(p, m, tsMs);
      if (note) item.error = [item.error, note].filter(Boolean).join('; ');
      sink.emit(conn, item);
      return;
    }
    this.stats.unmatchedResponses++;
    sink.emit(conn, responseOnlyItem(m, tsMs, ['response without a query', note].filter(Boolean).join('; ')));
  }

  private enterScan(d: DnsTcpDirection): void {
    d.mode = MODE_SCAN;
    d.lenCount = 0;
    d.body = EMPTY;
    d.bodyFill = 0;
    d.discard = false;
    d.scanParts = [];
    d.scanLen = 0;
    d.scanNeed = 2 + DNS_HEADER_LENGTH;
    d.scanned = 0;
  }

  /**
   * Resync: finds an offset where a length prefix is followed by a plausible
   * header whose QR matches this direction and whose whole message parses.
   * Returns the bytes from that offset on (normal framing resumes there), or
   * null when more bytes are needed. Kept bytes are bounded: a few bytes when
   * nothing looks like a header, one message while a candidate is completing.
   */
  private scanFeed(dir: Direction, d: DnsTcpDirection, chunk: Buffer): Buffer | null {
    d.scanParts.push(Buffer.from(chunk));
    d.scanLen += chunk.length;
    if (d.scanLen < d.scanNeed) return null;
    const buf = d.scanParts.length === 1 ? d.scanParts[0] : Buffer.concat(d.scanParts, d.scanLen);
    // Queries one way, responses the other; learnt from the direction itself, since the
    // client/server orientation is a guess when the handshake was not seen.
    const wantQr = d.qr >= 0 ? d.qr : expectedQr(dir, this.ctx.conn.handshakeSeen);
    let i = 0;
    let need = 0;
    for (; i + 2 + DNS_HEADER_LENGTH <= buf.length; i++) {
      const L = buf.readUInt16BE(i);
      if (L < DNS_HEADER_LENGTH || (wantQr >= 0 && buf[i + 4] >> 7 !== wantQr) || !plausibleDnsHeader(buf, i + 2, L)) continue;
      if (i + 2 + L > buf.length) {
        need = 2 + L; // wait until this candidate's message is complete
        break;
      }
      const m = parseDnsMessage(buf.subarray(i + 2, i + 2 + L));
      if (!m || m.error) continue;
      this.stats.skippedBytes += i;
      d.mode = MODE_LEN;
      d.scanParts = [];
      d.scanLen = 0;
      return buf.subarray(i);
    }
    d.scanned += i;
    this.stats.skippedBytes += i;
    if (d.scanned > RESYNC_SCAN_LIMIT) {
      d.mode = MODE_DEAD;
      this.stats.skippedBytes += buf.length - i;
      d.scanParts = [];
      d.scanLen = 0;
      return null;
    }
    const rest = buf.subarray(i);
    d.scanParts = [rest];
    d.scanLen = rest.length;
    d.scanNeed = need || 2 + DNS_HEADER_LENGTH;
    return null;
  }

  onGap(dir: Direction, length: number, _tsMs: number): void {
    const d = this.dirs[dir];
    const note = `capture gap: ${length} bytes lost`;
    if (d.mode === MODE_DEAD) return;
    if (d.mode === MODE_BODY && d.msgLen - d.bodyFill >= length) {
      // The gap is inside the current message: drop that message, framing stays intact.
      this.stats.malformed++;
      let failed = false;
      if (dir === 1 && !d.discard && d.bodyFill >= 2) {
        const id = d.body.readUInt16BE(0);
        for (const p of this.pending.values()) {
          if (p.id !== id) continue;
          this.pending.delete(p.key);
          this.ctx.sink.emit(this.ctx.conn, queryItem(p, `${note}: the response was lost`));
          failed = true;
          break;
        }
      }
      if (!failed) d.gapNote = note;
      d.discard = true;
      d.body = EMPTY;
      d.bodyFill += length;
      if (d.bodyFill === d.msgLen) this.endBody(dir, d);
      return;
    }
    if (d.mode === MODE_BODY || d.lenCount) this.stats.malformed++;
    d.gapNote = note;
    this.enterScan(d);
  }

  onTick(nowMs: number): void {
    for (const p of this.pending.values()) {
      if (nowMs - p.tsMs < this.ctx.opts.pairTimeoutMs) break;
      this.pending.delete(p.key);
      this.stats.timedOut++;
      this.ctx.sink.emit(this.ctx.conn, queryItem(p, 'query timed out without response'));
    }
  }

  onClose(_tsMs: number, reason: 'fin' | 'rst' | 'timeout' | 'end'): void {
    const r = this.dirs[1];
    const gap = r.gapNote || (r.mode === MODE_DEAD || r.mode === MODE_SCAN ? 'responses unreadable after a capture gap' : '');
    for (const p of [...this.pending.values()]) {
      this.pending.delete(p.key);
      this.stats.timedOut++;
      this.ctx.sink.emit(this.ctx.conn, queryItem(p, [`no response before the connection ended (${reason})`, gap].filter(Boolean).join('; ')));
    }
    for (const d of this.dirs) {
      d.mode = MODE_DEAD;
      d.body = EMPTY;
      d.scanParts = [];
      d.scanLen = 0;
    }
  }

  /** Bytes held by the parser (tests: bounded memory). */
  bufferedBytes(): number {
    let n = 0;
    for (const d of this.dirs) n += d.body.length + d.scanLen;
    return n;
  }

  pendingCount(): number {
    return this.pending.size;
  }
}

/** Expected QR of a direction before any message was seen: known only when the handshake was. */
function expectedQr(dir: Direction, handshakeSeen: boolean): number {
  if (!handshakeSeen) return -1;
  return dir === 0 ? 0 : 1;
}

export function probeDnsTcp(data: Buffer, hint: boolean): ProbeResult {
  if (data.length < 2) return 'more';
  const L = data.readUInt16BE(0);
  if (L < DNS_HEADER_LENGTH) return 'no';
  if (data.length < 2 + DNS_HEADER_LENGTH) return 'more';
  if (!plausibleDnsHeader(data, 2, L)) return 'no';
  if (hint) return 'yes';
  if (data.length < 2 + L) return 'more';
  return probeDnsMessage(data.subarray(2, 2 + L), false) ? 'yes' : 'no';
}

export const dnsStreamDissector: StreamDissector = {
  name: 'dns',
  probe(data: Buffer, _dir: Direction, conn: ConnectionInfo): ProbeResult {
    return probeDnsTcp(data, portHint(conn));
  },
  create(ctx: DissectorContext): StreamParser {
    return new DnsStreamParser(ctx);
  },
};
