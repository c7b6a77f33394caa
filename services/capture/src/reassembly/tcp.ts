/**
 * TCP reassembly: per connection, two byte streams (0 = from the client,
 * 1 = from the server) put back in order and handed to the parser of the
 * protocol chosen by content.
 *
 * Sequence numbers are unsigned 32-bit; every comparison is the signed
 * distance `(a - b) | 0`, so a stream crosses 2^32 without noticing.
 *
 * Overlaps: the first copy of a byte wins. Bytes before the next expected
 * sequence number were delivered already (retransmissions, counted and
 * dropped); bytes of a new out-of-order segment that an earlier held segment
 * already covers are cut out of it (counted as overlap); an in-order segment
 * yields to held bytes it overlaps. Real stacks retransmit the same bytes, so
 * which copy wins only matters for crafted traffic; first-wins needs no
 * rewriting of what a parser has already seen.
 *
 * Holes never wedge a stream. The parser gets onGap(dir, missingBytes) and
 * the stream carries on from the next held byte (onGap first, then the held
 * bytes, in order) as soon as one of these says the bytes will never come:
 *
 * - ACK: the peer acknowledged bytes of the direction past the next expected
 *   one, so they were sent and received but the capture lost them (a kernel
 *   drop on live capture). The gap runs up to the ACK, but never past what is
 *   known to exist: the first held segment (or a FIN). With nothing held the
 *   bytes after the hole may simply not have been captured yet (capture
 *   reordering), so the ACK is remembered and acted on when a segment is
 *   held. Only with a known base (handshake or mid-stream base) and the ACK
 *   flag set. A segment that arrives late but before any ACK beyond it is
 *   ordinary reordering and is delivered normally.
 * - Time: bytes have waited behind the hole for gapTimeoutMs of capture time
 *   (a one-way capture sees no ACKs); checked when a segment is held and on
 *   tick(), so the tick interval bounds the delay too.
 * - Memory: the bytes held out of order in one direction exceed
 *   maxBufferedBytes (or the segment cap, or the capture-wide limit).
 * - The connection ends with bytes (or a FIN) waiting past a hole.
 *
 * Hot path (an in-order segment of a known connection with a parser): one
 * flow lookup, one `subarray`, one parser call. Out-of-order segments are
 * copied (the packet buffer is reused by the caller).
 */
import {
  TCP_FLAG, type ConnectionInfo, type DecodedPacket, type Direction, type DissectorContext, type DissectorOptions, type ItemSink,
  type StreamDissector, type StreamParser,
} from '../types.ts';
import { ipToString, tcpSourceIsServer } from './endpoints.ts';
import type { FlowTable } from './flow-table.ts';

/** Parser states of a connection. */
const PROBING = 0; // collecting the first bytes, asking the dissectors
const PARSING = 1; // a parser has the stream
const IGNORED = 2; // no dissector wanted it: bytes are dropped cheaply
const BROKEN = 3; // the parser threw: no more calls to it
const CLOSED = 4;

/** Held segments per direction are also capped in number, so a flood of 1-byte segments stays bounded too. */
const MIN_SEGMENT_COST = 64;

/** Probe replay log entries: data of dir 0/1 (value = end offset in that direction's probe buffer), gap of dir 0/1 (value = length). */
const EV_GAP = 2;

export type CloseReason = 'fin' | 'rst' | 'timeout' | 'end';

export interface TcpCounters {
  tcpPackets: number;
  /** Packets of no known connection that could not start one (no payload, no SYN: trailing ACKs, FINs, RSTs). */
  tcpPacketsWithoutConnection: number;
  tcpConnectionsOpened: number;
  /** Opened from a SYN or SYN-ACK (client known) vs picked up mid-stream (client guessed from ports). */
  tcpHandshakesSeen: number;
  tcpMidStreamPickups: number;
  tcpClosedFin: number;
  tcpClosedRst: number;
  tcpClosedTimeout: number;
  tcpClosedEnd: number;
  /** Closed because the flow table was full (the parser is told 'timeout'). */
  tcpClosedEvicted: number;
  /** Closed because a new SYN reused the 4-tuple before the old connection was seen to end (parser told 'timeout'). */
  tcpClosedReused: number;
  /** In-order bytes handed to parsers. */
  tcpBytesDelivered: number;
  tcpSegmentsOutOfOrder: number;
  /** Bytes already delivered that came again. */
  tcpRetransmittedBytes: number;
  /** Bytes of a segment already held out of order from an earlier copy. */
  tcpOverlapBytes: number;
  /** Holes declared lost (whatever the reason) and their bytes. */
  tcpGaps: number;
  tcpGapBytes: number;
  /** Of tcpGaps: declared because the peer acknowledged bytes the capture never saw. */
  tcpGapsByAck: number;
  /** Of tcpGaps: declared because held bytes waited behind the hole for gapTimeoutMs. */
  tcpGapsByTimeout: number;
  /** Times a direction's out-of-order buffer (or the capture-wide one) overflowed and forced a gap. */
  tcpBufferEvictions: number;
  /** Bytes held out of order plus bytes held for probing, now. */
  tcpBufferedBytes: number;
  /** Segments cut short by the snap length (their missing tail becomes a gap). */
  tcpTruncatedSegments: number;
  /** Streams no dissector recognised (probe failures) and bytes dropped on them. */
  tcpUnrecognizedStreams: number;
  tcpUnrecognizedBytes: number;
  /** Streams whose parser threw (no more bytes to them), and bytes dropped on them after. */
  tcpBrokenStreams: number;
  tcpBrokenBytes: number;
  /** Exceptions thrown by parsers (onData, onGap, onTick, onClose) or dissector create(). */
  parserErrors: number;
  /** Exceptions thrown by probe() (taken as 'no'). */
  probeErrors: number;
}

export function newTcpCounters(): TcpCounters {
  return {
    tcpPackets: 0, tcpPacketsWithoutConnection: 0, tcpConnectionsOpened: 0, tcpHandshakesSeen: 0, tcpMidStreamPickups: 0,
    tcpClosedFin: 0, tcpClosedRst: 0, tcpClosedTimeout: 0, tcpClosedEnd: 0, tcpClosedEvicted: 0, tcpClosedReused: 0,
    tcpBytesDelivered: 0, tcpSegmentsOutOfOrder: 0, tcpRetransmittedBytes: 0, tcpOverlapBytes: 0, tcpGaps: 0, tcpGapBytes: 0,
    tcpGapsByAck: 0, tcpGapsByTimeout: 0,
    tcpBufferEvictions: 0, tcpBufferedBytes: 0, tcpTruncatedSegments: 0, tcpUnrecognizedStreams: 0, tcpUnrecognizedBytes: 0,
    tcpBrokenStreams: 0, tcpBrokenBytes: 0, parserErrors: 0, probeErrors: 0,
  };
}

interface HeldSegment {
  seq: number;
  data: Buffer;
  tsMs: number;
}

/** One direction of a connection. */
class HalfStream {
  seqKnown = false;
  /** Next expected sequence number (unsigned 32-bit). */
  next = 0;
  /** Sequence number of the SYN: tells a retransmitted SYN from a new connection reusing the 4-tuple. */
  isn = 0;
  finSeen = false;
  /** Sequence number of the FIN (just past the last data byte). */
  finSeq = 0;
  /** The last in-order segment was cut short by the snap length: the hole after it is known lost. */
  truncHole = false;
  /** Held out-of-order segments, sorted by seq, not overlapping, all past `next`; live from heldFront on. */
  held: HeldSegment[] = [];
  heldFront = 0;
  heldBytes = 0;
  /** Capture time since which held bytes have waited behind the hole in front of them (meaningful while something is held). */
  waitSince = 0;
  /** The peer acknowledged this direction up to ackTo, past `next` when set: bytes the capture lost (or has yet to see). */
  ackSeen = false;
  ackTo = 0;
  /** First bytes of this direction while probing. */
  probeBuf: Buffer | null = null;
  probeLen = 0;
  /** Bit i: dissector i said 'no' for this direction. */
  noMask = 0;

  heldCount(): number {
    return this.held.length - this.heldFront;
  }
}

/** A TCP connection; also the DissectorContext its parsers get. */
export class TcpConnection implements DissectorContext {
  readonly conn: ConnectionInfo;
  readonly sink: ItemSink;
  readonly opts: DissectorOptions;
  /** Slot in the flow table, -1 once removed. */
  slot = -1;
  /** Direction of the flow table's side A (the sender of the first packet). */
  readonly aDir: Direction;
  readonly half: [HalfStream, HalfStream] = [new HalfStream(), new HalfStream()];
  state = PROBING;
  parser: StreamParser | null = null;
  /** Name of the dissector whose parser has the stream ('' while probing). */
  dissector = '';
  /** Probe replay log: triples (kind, value, tsMs) in arrival order; null once decided. */
  events: number[] | null = [];
  private readonly owner: TcpReassembler;

  constructor(owner: TcpReassembler, conn: ConnectionInfo, aDir: Direction) {
    this.owner = owner;
    this.conn = conn;
    this.sink = owner.sink;
    this.opts = owner.dissectorOptions;
    this.aDir = aDir;
  }

  switchTo(name: string): StreamParser | null {
    return this.owner.switchTo(this, name);
  }
}

export interface TcpReassemblerOptions {
  /** The flow table (shared with UDP) and the lane TCP connections use in it. */
  table: FlowTable<unknown>;
  lane: number;
  streamDissectors: readonly StreamDissector[];
  sink: ItemSink;
  dissectorOptions: DissectorOptions;
  /** Out-of-order bytes held per direction before the hole in front of them is declared a gap. */
  maxBufferedBytesPerDirection: number;
  /** Out-of-order plus probe bytes held by all connections together; beyond it the connection adding bytes gives way. */
  maxBufferedBytesTotal: number;
  /** First bytes of each direction kept for probing; when a direction fills it undecided, the stream is unrecognized. */
  probeBytes: number;
  /** Both FINs seen but a hole keeps the stream open: close it ('fin', with the gap) after this much quiet. */
  finLingerMs: number;
  /**
   * Bytes held out of order for this long (capture time) behind a hole that
   * no ACK declared lost: the hole is declared a gap. Infinity: never (only
   * the ACK rule, the buffer limits and the end of the connection then).
   */
  gapTimeoutMs: number;
  /** Capture-wide stream numbers (shared with UDP). */
  nextId(): number;
  /** Told of every exception a parser or dissector throws (the stream is then marked broken). */
  onParserError?(err: unknown, conn: ConnectionInfo, dissector: string): void;
  /** Told once when a connection ends, whatever the reason (after its parser's onClose). */
  onStreamEnd?(conn: ConnectionInfo): void;
}

/** Closed connections remembered so their trailing packets (the last ACK after both FINs, ...) keep their stream id. */
const RECENT_MAX = 4096;

export class TcpReassembler {
  readonly sink: ItemSink;
  readonly dissectorOptions: DissectorOptions;
  readonly counters: TcpCounters = newTcpCounters();
  private readonly table: FlowTable<unknown>;
  private readonly lane: number;
  private readonly dissectors: readonly StreamDissector[];
  private readonly allMask: number;
  private readonly maxHeld: number;
  private readonly maxHeldSegments: number;
  private readonly maxTotal: number;
  private readonly probeBytes: number;
  private readonly finLingerMs: number;
  private readonly gapTimeoutMs: number;
  private readonly nextId: () => number;
  private readonly onParserError: TcpReassemblerOptions['onParserError'];
  private readonly onStreamEnd: TcpReassemblerOptions['onStreamEnd'];
  /**
   * Connections closed by FIN or RST, by 4-tuple, oldest first: a packet
   * without payload or SYN that finds no connection within finLingerMs of the
   * close is still that connection's (its stream id is returned), not a new one.
   */
  private readonly recent = new Map<string, { id: number; untilMs: number }>();

  constructor(opts: TcpReassemblerOptions) {
    if (opts.streamDissectors.length > 30) throw new RangeError('at most 30 stream dissectors');
    this.table = opts.table;
    this.lane = opts.lane;
    this.dissectors = [...opts.streamDissectors];
    this.allMask = (1 << this.dissectors.length) - 1;
    this.sink = opts.sink;
    this.dissectorOptions = opts.dissectorOptions;
    this.maxHeld = Math.max(1, opts.maxBufferedBytesPerDirection);
    this.maxHeldSegments = Math.max(16, Math.floor(this.maxHeld / MIN_SEGMENT_COST));
    this.maxTotal = Math.max(1, opts.maxBufferedBytesTotal);
    this.probeBytes = Math.max(1, opts.probeBytes);
    this.finLingerMs = opts.finLingerMs;
    this.gapTimeoutMs = Math.max(0, opts.gapTimeoutMs);
    this.nextId = opts.nextId;
    this.onParserError = opts.onParserError;
    this.onStreamEnd = opts.onStreamEnd;
  }

  /**
   * One TCP packet (p.protocol === 6). Returns the id (ConnectionInfo.id) of
   * the connection the packet belongs to, or 0 when it belongs to none (a bare
   * ACK/FIN/RST of a connection never seen).
   */
  onPacket(p: DecodedPacket): number {
    const k = this.counters;
    k.tcpPackets++;
    const t = this.table;
    const flags = p.tcpFlags;
    const ts = p.tsMs;
    let c: TcpConnection;
    let dir: Direction;
    const slot = t.find(p);
    if (slot < 0) {
      if (p.payloadLength === 0 && (flags & TCP_FLAG.SYN) === 0) { k.tcpPacketsWithoutConnection++; return this.recentId(p); }
      c = this.open(p);
      dir = c.aDir;
    } else {
      c = t.get(slot) as TcpConnection;
      t.touch(slot, ts);
      dir = (t.foundDir ^ c.aDir) as Direction;
      if ((flags & (TCP_FLAG.SYN | TCP_FLAG.ACK)) === TCP_FLAG.SYN && !this.isSameSyn(c, dir, p.tcpSeq)) {
        // A new connection on the same 4-tuple: the old one ended unseen.
        this.close(c, ts, 'timeout', true);
        k.tcpClosedReused++;
        c = this.open(p);
        dir = c.aDir;
      }
    }

    const id = c.conn.id;
    if ((flags & TCP_FLAG.RST) !== 0) { this.close(c, ts, 'rst', true); k.tcpClosedRst++; return id; }

    if ((flags & TCP_FLAG.ACK) !== 0 && c.state < IGNORED) {
      // The ACK speaks of the other direction (once its base is known): acted on before this packet's bytes,
      // which come after what it acknowledges. Ordinary traffic acknowledges at most `next`: one compare.
      const o = c.half[dir ^ 1];
      if (o.seqKnown) {
        const ack = p.tcpAck;
        if (((ack - o.next) | 0) > 0) {
          if (!o.ackSeen || ((ack - o.ackTo) | 0) > 0) { o.ackSeen = true; o.ackTo = ack; }
          if (o.heldFront < o.held.length || o.finSeen) this.ackGap(c, (dir ^ 1) as Direction, ts);
        } else o.ackSeen = false;
      }
    }

    const len = p.payloadLength;
    const h = c.half[dir];
    if (c.state >= IGNORED) {
      // Nobody reads this stream: skip reassembly, keep only what closing needs.
      if (c.state === IGNORED) k.tcpUnrecognizedBytes += len;
      else k.tcpBrokenBytes += len;
      if ((flags & TCP_FLAG.FIN) !== 0) h.finSeen = true;
      if (c.half[0].finSeen && c.half[1].finSeen) { this.close(c, ts, 'fin', true); k.tcpClosedFin++; }
      return id;
    }

    let seq = p.tcpSeq;
    if ((flags & TCP_FLAG.SYN) !== 0) {
      // The SYN takes one sequence number; data (TCP Fast Open) follows it.
      seq = (seq + 1) >>> 0;
      if ((flags & TCP_FLAG.ACK) !== 0 && dir === 1) {
        if (!h.seqKnown) { h.seqKnown = true; h.next = seq; h.isn = p.tcpSeq; }
        const other = c.half[0];
        if (!other.seqKnown) { other.seqKnown = true; other.next = p.tcpAck; other.isn = (p.tcpAck - 1) >>> 0; }
      } else if (!h.seqKnown) { h.seqKnown = true; h.next = seq; h.isn = p.tcpSeq; }
    }
    if (!h.seqKnown) {
      // Mid-stream: the first segment carrying data (or FIN) sets the base. A bare ACK does not: a keepalive's seq is next-1.
      if (len === 0 && (flags & TCP_FLAG.FIN) === 0) return id;
      h.seqKnown = true;
      h.next = seq;
      h.isn = (seq - 1) >>> 0;
    }

    let wireLen = len;
    if (len > 0) {
      let truncated = false;
      if (p.truncated && !p.fragmented && p.length > p.captureLength) {
        truncated = true;
        wireLen += p.length - p.captureLength;
        k.tcpTruncatedSegments++;
      }
      this.segment(c, dir, seq, p.buf, p.payloadOffset, len, ts);
      if (truncated && h.next === ((seq + len) >>> 0)) h.truncHole = true;
    }
    if ((flags & TCP_FLAG.FIN) !== 0 && !h.finSeen) {
      h.finSeen = true;
      h.finSeq = (seq + wireLen) >>> 0;
      if (h.ackSeen && c.state < IGNORED) this.ackGap(c, dir, ts); // a FIN past a hole the peer acknowledged
    }
    if (this.finished(c)) { this.close(c, ts, 'fin', true); k.tcpClosedFin++; }
    return id;
  }

  /** Both FINs seen and every byte before them delivered (or nobody reads the stream). */
  private finished(c: TcpConnection): boolean {
    const a = c.half[0];
    const b = c.half[1];
    if (!a.finSeen || !b.finSeen || c.state === CLOSED) return false;
    return c.state >= IGNORED || (((a.finSeq - a.next) | 0) <= 0 && ((b.finSeq - b.next) | 0) <= 0);
  }

  /** The id of a connection closed by FIN/RST within finLingerMs on this packet's 4-tuple, else 0. Runs only for packets of no connection. */
  private recentId(p: DecodedPacket): number {
    if (this.recent.size === 0) return 0;
    const v = p.ipVersion === 6 ? 6 : 4;
    const key = tupleKey(ipToString(p.buf, p.srcAddrOffset, v), p.srcPort, ipToString(p.buf, p.dstAddrOffset, v), p.dstPort);
    const r = this.recent.get(key);
    if (r === undefined) return 0;
    if (r.untilMs < p.tsMs) { this.recent.delete(key); return 0; }
    return r.id;
  }

  private remember(conn: ConnectionInfo, nowMs: number): void {
    const key = tupleKey(conn.client.ip, conn.client.port, conn.server.ip, conn.server.port);
    this.recent.delete(key);
    this.recent.set(key, { id: conn.id, untilMs: nowMs + this.finLingerMs });
    for (const [k, r] of this.recent) {
      if (this.recent.size <= RECENT_MAX && r.untilMs >= nowMs) break;
      this.recent.delete(k);
    }
  }

  /**
   * Capture-time tick: connections with both FINs but a hole closed after
   * finLingerMs, holes with bytes waiting behind them for gapTimeoutMs
   * declared lost, parsers' onTick.
   */
  tick(nowMs: number): void {
    this.table.forEach(this.lane, (v) => {
      const c = v as TcpConnection;
      if (c.half[0].finSeen && c.half[1].finSeen && this.table.lastSeen(c.slot) + this.finLingerMs <= nowMs) {
        this.close(c, nowMs, 'fin', true);
        this.counters.tcpClosedFin++;
        return;
      }
      for (let dir: Direction = 0; dir < 2 && c.state < IGNORED; dir = (dir + 1) as Direction) {
        const h = c.half[dir];
        // An ACK the stream has caught up with says nothing more (and would read as ahead again 2^31 bytes later).
        if (h.ackSeen && ((h.ackTo - h.next) | 0) <= 0) h.ackSeen = false;
        if (h.heldFront < h.held.length && nowMs - h.waitSince >= this.gapTimeoutMs) this.timeoutGaps(c, dir, nowMs);
      }
      if (this.finished(c)) {
        this.close(c, nowMs, 'fin', true);
        this.counters.tcpClosedFin++;
        return;
      }
      if (c.state === PARSING && c.parser !== null) {
        try {
          c.parser.onTick(nowMs);
        } catch (err) {
          this.broken(c, err);
        }
      }
    });
  }

  /** The flow table let go of a connection (idle, evicted, end of capture). */
  onRemoved(c: TcpConnection, reason: 'idle' | 'evicted' | 'end', nowMs: number): void {
    c.slot = -1;
    if (reason === 'end') { this.close(c, nowMs, 'end', false); this.counters.tcpClosedEnd++; }
    else if (reason === 'idle') { this.close(c, nowMs, 'timeout', false); this.counters.tcpClosedTimeout++; }
    else { this.close(c, nowMs, 'timeout', false); this.counters.tcpClosedEvicted++; }
  }

  /** DissectorContext.switchTo: a parser of another registered dissector takes the stream from now on. */
  switchTo(c: TcpConnection, name: string): StreamParser | null {
    if (c.state !== PARSING) return null;
    const d = this.dissectors.find((x) => x.name === name);
    if (d === undefined) return null;
    let parser: StreamParser;
    try {
      parser = d.create(c);
    } catch (err) {
      this.broken(c, err);
      return null;
    }
    // The old parser is done with the stream: it gets no more calls (it flushes what it had before switching).
    c.parser = parser;
    c.dissector = d.name;
    return parser;
  }

  private isSameSyn(c: TcpConnection, dir: Direction, seq: number): boolean {
    return c.conn.handshakeSeen && dir === 0 && c.half[0].seqKnown && c.half[0].isn === seq;
  }

  private open(p: DecodedPacket): TcpConnection {
    const flags = p.tcpFlags;
    const syn = (flags & TCP_FLAG.SYN) !== 0;
    const synAck = syn && (flags & TCP_FLAG.ACK) !== 0;
    const handshake = syn;
    const srcIsServer = synAck ? true : syn ? false : tcpSourceIsServer(p.srcPort, p.dstPort);
    const v = p.ipVersion === 6 ? 6 : 4;
    const src = { ip: ipToString(p.buf, p.srcAddrOffset, v), port: p.srcPort };
    const dst = { ip: ipToString(p.buf, p.dstAddrOffset, v), port: p.dstPort };
    const info: ConnectionInfo = {
      id: this.nextId(),
      client: srcIsServer ? dst : src,
      server: srcIsServer ? src : dst,
      ipVersion: v,
      transport: 'tcp',
      handshakeSeen: handshake,
    };
    const c = new TcpConnection(this, info, srcIsServer ? 1 : 0);
    c.slot = this.table.insert(p, this.lane, c);
    const k = this.counters;
    k.tcpConnectionsOpened++;
    if (handshake) k.tcpHandshakesSeen++;
    else k.tcpMidStreamPickups++;
    if (this.dissectors.length === 0) this.unrecognized(c);
    return c;
  }

  /** A segment's payload, `len` bytes at buf[off] with sequence number seq. */
  private segment(c: TcpConnection, dir: Direction, seq: number, buf: Buffer, off: number, len: number, ts: number): void {
    const h = c.half[dir];
    const k = this.counters;
    let rel = (seq - h.next) | 0;
    if (rel < 0) {
      if (rel + len <= 0) { k.tcpRetransmittedBytes += len; return; }
      k.tcpRetransmittedBytes += -rel;
      off -= rel;
      len += rel;
      seq = h.next;
      rel = 0;
    }
    if (rel > 0 && h.truncHole) {
      // The bytes in front were cut by the snap length, never to come: a gap now rather than a wait.
      h.truncHole = false;
      this.gap(c, dir, rel, ts);
      h.next = seq;
      this.drainHeld(c, dir);
      rel = (seq - h.next) | 0;
      if (rel < 0) { // held bytes that covered this segment's start won (first copy)
        if (rel + len <= 0) { k.tcpOverlapBytes += len; return; }
        k.tcpOverlapBytes += -rel;
        off -= rel;
        len += rel;
        seq = h.next;
        rel = 0;
      }
    }
    if (c.state >= IGNORED) return; // the drain above may have settled the stream's fate
    if (rel > 0) { this.hold(c, dir, seq, rel, buf, off, len, ts); return; }
    h.truncHole = false;
    if (h.heldFront === h.held.length) {
      // The common case: in order, nothing held.
      h.next = (h.next + len) >>> 0;
      this.emit(c, dir, buf, off, len, ts);
      return;
    }
    // In order, with held segments: deliver up to the first held one, let it win its range, go on past it.
    let emitted = 0;
    for (let guard = 0; guard <= len + 1; guard++) {
      const done = (h.next - seq) | 0; // bytes of this segment delivered (by it or by held copies)
      if (done >= len || c.state >= IGNORED) break;
      let take = len - done;
      if (h.heldFront < h.held.length) {
        const ahead = (h.held[h.heldFront].seq - h.next) | 0;
        if (ahead <= 0) { this.drainHeld(c, dir); continue; }
        if (ahead < take) take = ahead;
      }
      h.next = (h.next + take) >>> 0;
      emitted += take;
      this.emit(c, dir, buf, off + done, take, ts);
      this.drainHeld(c, dir);
    }
    const covered = Math.min(len, (h.next - seq) | 0);
    if (covered > emitted) k.tcpOverlapBytes += covered - emitted;
  }

  /** An out-of-order segment `rel` bytes past next: copy what no held segment covers yet, then enforce the limits. */
  private hold(c: TcpConnection, dir: Direction, seq: number, rel: number, buf: Buffer, off: number, len: number, ts: number): void {
    const h = c.half[dir];
    const k = this.counters;
    k.tcpSegmentsOutOfOrder++;
    if (h.heldFront === h.held.length) h.waitSince = ts; // bytes start waiting behind the hole now
    const held = h.held;
    const base = h.next;
    // First held segment ending after this one starts (held segments are sorted and disjoint, so their ends are sorted too).
    let lo = h.heldFront;
    let hi = held.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const m = held[mid];
      if (((m.seq - base) | 0) + m.data.length <= rel) lo = mid + 1;
      else hi = mid;
    }
    let i = lo;
    let s = rel;
    const e = rel + len;
    let added = 0;
    while (s < e) {
      if (i === held.length || ((held[i].seq - base) | 0) >= e) {
        held.splice(i, 0, this.copyPiece(base, s, buf, off + (s - rel), e - s, ts));
        added += e - s;
        break;
      }
      const hs = (held[i].seq - base) | 0;
      const he = hs + held[i].data.length;
      if (hs > s) {
        held.splice(i, 0, this.copyPiece(base, s, buf, off + (s - rel), hs - s, ts));
        added += hs - s;
        i++;
      }
      const ovEnd = he < e ? he : e;
      const ovStart = hs > s ? hs : s;
      if (ovEnd > ovStart) k.tcpOverlapBytes += ovEnd - ovStart;
      s = he;
      i++;
    }
    h.heldBytes += added;
    k.tcpBufferedBytes += added;
    // The peer already acknowledged bytes in the hole: they are lost to the capture, no need to wait.
    if (h.ackSeen) this.ackGap(c, dir, ts);
    // Bytes have waited behind the hole long enough.
    if (h.heldFront < h.held.length && ts - h.waitSince >= this.gapTimeoutMs && c.state < IGNORED) this.timeoutGaps(c, dir, ts);
    // Over a limit: the hole in front is declared lost and the stream moves on to the next held bytes.
    // (h.held is re-read: a parser that throws during the drain releases it.)
    for (let guard = h.held.length; guard >= 0 && h.heldFront < h.held.length; guard--) {
      const over = h.heldBytes > this.maxHeld || h.held.length - h.heldFront > this.maxHeldSegments || k.tcpBufferedBytes > this.maxTotal;
      if (!over) break;
      k.tcpBufferEvictions++;
      const front = h.held[h.heldFront];
      const missing = (front.seq - h.next) | 0;
      if (missing > 0) { this.gap(c, dir, missing, ts); h.next = front.seq; }
      this.drainHeld(c, dir);
    }
  }

  private copyPiece(base: number, rel: number, buf: Buffer, off: number, n: number, ts: number): HeldSegment {
    const data = Buffer.allocUnsafe(n);
    buf.copy(data, 0, off, off + n);
    return { seq: (base + rel) >>> 0, data, tsMs: ts };
  }

  /**
   * The hole in front of dir's held bytes is lost up to `upTo` (past next):
   * onGap, then the held bytes that follow. False when there was no hole.
   */
  private skipTo(c: TcpConnection, dir: Direction, upTo: number, ts: number): boolean {
    const h = c.half[dir];
    const missing = (upTo - h.next) | 0;
    if (missing <= 0) return false;
    h.truncHole = false;
    this.gap(c, dir, missing, ts);
    h.next = upTo;
    this.drainHeld(c, dir);
    return true;
  }

  /**
   * The peer acknowledged dir up to h.ackTo, past next: the bytes in the hole
   * were sent and received, the capture lost them. Declared lost up to the
   * ACK but never past what is known to exist (the first held byte, else a
   * FIN): with nothing after the hole seen, wait (it may not be captured yet).
   * Repeats over further holes the ACK also covers.
   */
  private ackGap(c: TcpConnection, dir: Direction, ts: number): void {
    const h = c.half[dir];
    for (let guard = h.held.length - h.heldFront + 1; guard > 0 && c.state < IGNORED; guard--) {
      let end: number;
      if (h.heldFront < h.held.length) end = h.held[h.heldFront].seq;
      else if (h.finSeen) end = h.finSeq;
      else break;
      if (((h.ackTo - end) | 0) < 0) end = h.ackTo;
      if (!this.skipTo(c, dir, end, ts)) break;
      this.counters.tcpGapsByAck++;
    }
    if (((h.ackTo - h.next) | 0) <= 0) h.ackSeen = false;
  }

  /** Bytes waited behind the hole in front of them for gapTimeoutMs: declared lost (and again for the next hole if its bytes waited as long). */
  private timeoutGaps(c: TcpConnection, dir: Direction, nowMs: number): void {
    const h = c.half[dir];
    for (let guard = h.held.length - h.heldFront; guard > 0 && c.state < IGNORED; guard--) {
      if (h.heldFront === h.held.length || nowMs - h.waitSince < this.gapTimeoutMs) break;
      if (!this.skipTo(c, dir, h.held[h.heldFront].seq, nowMs)) break;
      this.counters.tcpGapsByTimeout++;
    }
  }

  /** Delivers the held segments that have become contiguous with next. */
  private drainHeld(c: TcpConnection, dir: Direction): void {
    const h = c.half[dir];
    const k = this.counters;
    const front = h.heldFront;
    while (h.heldFront < h.held.length) {
      const seg = h.held[h.heldFront];
      const trim = (h.next - seg.seq) | 0;
      if (trim < 0) break;
      h.held[h.heldFront++] = undefined as unknown as HeldSegment; // let it go now, the array is compacted below
      const n = seg.data.length;
      h.heldBytes -= n;
      k.tcpBufferedBytes -= n;
      if (trim >= n) { k.tcpOverlapBytes += n; continue; }
      h.next = (h.next + (n - trim)) >>> 0;
      this.emit(c, dir, seg.data, trim, n - trim, seg.tsMs);
    }
    if (h.heldFront === h.held.length) { h.held.length = 0; h.heldFront = 0; return; }
    // The bytes now first in line have waited behind the next hole at least since they arrived.
    if (h.heldFront !== front) h.waitSince = h.held[h.heldFront].tsMs;
    if (h.heldFront > 64 && h.heldFront * 2 > h.held.length) { h.held.splice(0, h.heldFront); h.heldFront = 0; }
  }

  /** In-order bytes to whoever has the stream. */
  private emit(c: TcpConnection, dir: Direction, buf: Buffer, off: number, len: number, ts: number): void {
    if (c.state === PARSING) {
      this.counters.tcpBytesDelivered += len;
      try {
        (c.parser as StreamParser).onData(dir, buf.subarray(off, off + len), ts);
      } catch (err) {
        this.broken(c, err);
      }
    } else if (c.state === PROBING) this.probe(c, dir, buf, off, len, ts);
    else if (c.state === IGNORED) this.counters.tcpUnrecognizedBytes += len;
    else this.counters.tcpBrokenBytes += len;
  }

  private gap(c: TcpConnection, dir: Direction, n: number, ts: number): void {
    this.counters.tcpGaps++;
    this.counters.tcpGapBytes += n;
    if (c.state === PARSING) {
      try {
        (c.parser as StreamParser).onGap(dir, n, ts);
      } catch (err) {
        this.broken(c, err);
      }
    } else if (c.state === PROBING) (c.events as number[]).push(EV_GAP + dir, n, ts);
  }

  /** Probing: keep the first bytes of the direction, ask the dissectors, hand over on the first 'yes'. */
  private probe(c: TcpConnection, dir: Direction, buf: Buffer, off: number, len: number, ts: number): void {
    const h = c.half[dir];
    const k = this.counters;
    const room = this.probeBytes - h.probeLen;
    const n = len < room ? len : room;
    if (h.probeBuf === null || h.probeBuf.length < h.probeLen + n) {
      let size = h.probeBuf === null ? 1024 : h.probeBuf.length * 2;
      while (size < h.probeLen + n) size *= 2;
      if (size > this.probeBytes) size = this.probeBytes;
      const grown = Buffer.allocUnsafe(size);
      if (h.probeBuf !== null) h.probeBuf.copy(grown, 0, 0, h.probeLen);
      h.probeBuf = grown;
    }
    buf.copy(h.probeBuf, h.probeLen, off, off + n);
    h.probeLen += n;
    k.tcpBufferedBytes += n;
    (c.events as number[]).push(dir, h.probeLen, ts);

    const full = h.probeLen >= this.probeBytes;
    const chosen = this.runProbes(c, dir, full);
    if (chosen >= 0) {
      this.select(c, chosen);
      if (n < len) this.emit(c, dir, buf, off + n, len - n, ts);
      return;
    }
    if (full || (c.half[0].noMask === this.allMask && c.half[1].noMask === this.allMask) || k.tcpBufferedBytes > this.maxTotal) {
      if (k.tcpBufferedBytes > this.maxTotal) k.tcpBufferEvictions++;
      this.unrecognized(c);
      k.tcpUnrecognizedBytes += len - n;
    }
  }

  /**
   * Asks the dissectors in order about this direction's bytes so far. The
   * first 'yes' wins; a 'more' stops the round, so a later dissector cannot
   * claim bytes an earlier one may still want (HTTP/2's preface also starts
   * like an HTTP/1 request line). 'no' is remembered per direction. With the
   * buffer full, 'more' counts as 'no'.
   */
  private runProbes(c: TcpConnection, dir: Direction, full: boolean): number {
    const h = c.half[dir];
    const data = (h.probeBuf as Buffer).subarray(0, h.probeLen);
    const ds = this.dissectors;
    for (let i = 0; i < ds.length; i++) {
      const bit = 1 << i;
      if ((h.noMask & bit) !== 0) continue;
      let r: string;
      try {
        r = ds[i].probe(data, dir, c.conn);
      } catch (err) {
        this.counters.probeErrors++;
        this.report(err, c, ds[i].name);
        r = 'no';
      }
      if (r === 'yes') return i;
      if (r === 'more' && !full) return -1;
      h.noMask |= bit;
    }
    return -1;
  }

  /** Dissector i takes the stream: its parser gets every byte and gap so far, in the original order, with their timestamps. */
  private select(c: TcpConnection, i: number): void {
    const d = this.dissectors[i];
    const events = c.events as number[];
    c.events = null;
    c.state = PARSING;
    c.dissector = d.name;
    try {
      c.parser = d.create(c);
    } catch (err) {
      this.broken(c, err);
      return;
    }
    const k = this.counters;
    let end0 = 0;
    let end1 = 0;
    for (let e = 0; e < events.length && c.state === PARSING; e += 3) {
      const kind = events[e];
      const v = events[e + 1];
      const ts = events[e + 2];
      try {
        if (kind >= EV_GAP) (c.parser as StreamParser).onGap((kind - EV_GAP) as Direction, v, ts);
        else {
          const from = kind === 0 ? end0 : end1;
          if (kind === 0) end0 = v;
          else end1 = v;
          k.tcpBytesDelivered += v - from;
          (c.parser as StreamParser).onData(kind as Direction, (c.half[kind].probeBuf as Buffer).subarray(from, v), ts);
        }
      } catch (err) {
        this.broken(c, err);
      }
    }
    this.releaseProbe(c);
  }

  private unrecognized(c: TcpConnection): void {
    const k = this.counters;
    k.tcpUnrecognizedStreams++;
    k.tcpUnrecognizedBytes += c.half[0].probeLen + c.half[1].probeLen;
    c.state = IGNORED;
    c.events = null;
    this.releaseProbe(c);
    this.releaseHeld(c);
  }

  private broken(c: TcpConnection, err: unknown): void {
    const k = this.counters;
    k.parserErrors++;
    this.report(err, c, c.dissector);
    if (c.state === CLOSED) return;
    if (c.state !== BROKEN) k.tcpBrokenStreams++;
    c.state = BROKEN;
    c.parser = null;
    c.events = null;
    this.releaseProbe(c);
    this.releaseHeld(c);
  }

  private report(err: unknown, c: TcpConnection, dissector: string): void {
    if (this.onParserError === undefined) return;
    try {
      this.onParserError(err, c.conn, dissector);
    } catch {
      // A failing error reporter must not take capture down either.
    }
  }

  private releaseProbe(c: TcpConnection): void {
    for (const h of c.half) {
      if (h.probeBuf !== null) { this.counters.tcpBufferedBytes -= h.probeLen; h.probeBuf = null; }
      h.probeLen = 0;
    }
  }

  private releaseHeld(c: TcpConnection): void {
    for (const h of c.half) {
      this.counters.tcpBufferedBytes -= h.heldBytes;
      h.heldBytes = 0;
      h.held = [];
      h.heldFront = 0;
    }
  }

  /**
   * Ends a connection: bytes waiting past holes are delivered after a gap
   * (and a FIN past a hole yields one), then the parser's onClose. The caller
   * counts the reason.
   */
  private close(c: TcpConnection, ts: number, reason: CloseReason, removeFromTable: boolean): void {
    if (c.state === CLOSED) return;
    if (reason === 'fin' || reason === 'rst') this.remember(c.conn, ts);
    if (removeFromTable && c.slot >= 0) { this.table.remove(c.slot); c.slot = -1; }
    for (let dir: Direction = 0; dir < 2 && c.state < IGNORED; dir = (dir + 1) as Direction) {
      const h = c.half[dir];
      for (let guard = h.held.length; guard >= 0 && h.heldFront < h.held.length && c.state < IGNORED; guard--) {
        const missing = (h.held[h.heldFront].seq - h.next) | 0;
        if (missing > 0) { this.gap(c, dir, missing, ts); h.next = h.held[h.heldFront].seq; }
        this.drainHeld(c, dir);
      }
      if (h.finSeen && c.state < IGNORED) {
        const missing = (h.finSeq - h.next) | 0;
        if (missing > 0) { this.gap(c, dir, missing, ts); h.next = h.finSeq; }
      }
    }
    if (c.state === PROBING && (c.half[0].probeLen > 0 || c.half[1].probeLen > 0)) this.unrecognized(c);
    if (c.state === PARSING && c.parser !== null) {
      try {
        c.parser.onClose(ts, reason);
      } catch (err) {
        this.broken(c, err);
      }
    }
    this.releaseProbe(c);
    this.releaseHeld(c);
    c.events = null;
    c.parser = null;
    c.state = CLOSED;
    if (this.onStreamEnd !== undefined) {
      try {
        this.onStreamEnd(c.conn);
      } catch (err) {
        this.report(err, c, 'stream-end');
      }
    }
  }
}

/** The same key for both directions of a 4-tuple. */
function tupleKey(ipA: string, portA: number, ipB: string, portB: number): string {
  const a = `${ipA} ${portA}`;
  const b = `${ipB} ${portB}`;
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}
