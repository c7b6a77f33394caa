/**
 * Reassembly: DecodedPackets in, bytes and datagrams out to the dissectors.
 * TCP connections and UDP flows share one bounded flow table (maxFlows for
 * both together), each with its own idle timeout. Time is capture time:
 * nothing here reads a clock.
 */
import {
  DEFAULT_DISSECTOR_OPTIONS, type ConnectionInfo, type DatagramDissector, type DecodedPacket, type DissectorOptions, type ItemSink,
  type StreamDissector,
} from '../types.ts';
import { FlowTable, type Removal } from './flow-table.ts';
import { TcpConnection, TcpReassembler, type TcpCounters } from './tcp.ts';
import { UdpDispatcher, UdpFlow, type UdpCounters } from './udp.ts';

export { FlowTable, REMOVAL, flowHash, type Removal, type FlowTableOptions } from './flow-table.ts';
export { TcpConnection, TcpReassembler, type TcpCounters, type CloseReason } from './tcp.ts';
export { UdpDispatcher, UdpFlow, UDP_PROBE_ATTEMPTS, type UdpCounters } from './udp.ts';
export { ipToString, isServicePort, tcpSourceIsServer, udpSourceIsServer } from './endpoints.ts';

export interface ReassemblyOptions {
  /** TCP protocols, in probe order (the first 'yes' wins; an earlier 'more' makes later ones wait). */
  streamDissectors?: readonly StreamDissector[];
  /** UDP protocols, in probe order. */
  datagramDissectors?: readonly DatagramDissector[];
  sink: ItemSink;
  dissectorOptions?: DissectorOptions;
  /** TCP connections + UDP flows tracked at once; a new one beyond it evicts the least recently used (counted). Default 65,536. */
  maxFlows?: number;
  /** Out-of-order bytes held per direction of a TCP connection before the hole in front becomes a gap. Default 1 MiB. */
  maxBufferedBytesPerDirection?: number;
  /** Out-of-order and probe bytes held by all connections together. Default 256 MiB. */
  maxBufferedBytesTotal?: number;
  /** First bytes kept per direction for choosing a TCP dissector. Default 16 KiB. */
  probeBytes?: number;
  /** Default 120 s of capture time. */
  tcpIdleTimeoutMs?: number;
  /** Default 30 s. */
  udpIdleTimeoutMs?: number;
  /** Both FINs seen but a hole still open: closed (with the gap) after this much quiet. Default 5 s. */
  finLingerMs?: number;
  /**
   * A hole in one direction of a TCP connection with bytes held behind it
   * for this long (capture time) is declared a gap (onGap, counted in
   * tcpGapsByTimeout) and the stream goes on. The fallback for holes no ACK
   * shows lost (one-way captures); a hole the peer acknowledged is declared
   * at once (tcpGapsByAck). Checked when a segment is held and on tick, so
   * the tick interval adds to the delay. A retransmission later than this is
   * dropped as already seen. Default 1 s; Infinity turns it off.
   */
  gapTimeoutMs?: number;
  /** Parsers' and datagram dissectors' onTick run at most this often (capture time). Default 1 s. */
  tickIntervalMs?: number;
  /** Told of every exception a dissector throws (capture goes on; the stream or flow is marked broken). */
  onParserError?(err: unknown, conn: ConnectionInfo | null, dissector: string): void;
  /**
   * Told once when a stream ends: a TCP connection closes (FIN, RST, idle,
   * evicted, end of capture; after its parser flushed) or a UDP flow leaves
   * the flow table. A TCP connection's trailing packets (the last ACK after
   * both FINs) may still be attributed to its id afterwards (see onPacket).
   */
  onStreamEnd?(conn: ConnectionInfo): void;
}

/** Every counter, plain numbers (tcp*, udp*, flow table). */
export interface ReassemblyStats extends TcpCounters, UdpCounters {
  flowsActive: number;
  flowsEvicted: number;
  flowsExpired: number;
  /** Packets neither TCP nor UDP. */
  packetsIgnored: number;
}

const LANE_TCP = 0;
const LANE_UDP = 1;
const REMOVAL_NAME = ['idle', 'evicted', 'end'] as const;

export class Reassembly {
  readonly tcp: TcpReassembler;
  readonly udp: UdpDispatcher;
  private readonly table: FlowTable<unknown>;
  private readonly tickIntervalMs: number;
  private lastTick = -Infinity;
  private lastId = 0;
  private packetsIgnored = 0;

  constructor(o: ReassemblyOptions) {
    const dissectorOptions = o.dissectorOptions ?? DEFAULT_DISSECTOR_OPTIONS;
    const nextId = (): number => ++this.lastId;
    this.tickIntervalMs = o.tickIntervalMs ?? 1_000;
    this.table = new FlowTable<unknown>({
      maxFlows: o.maxFlows ?? 65_536,
      idleTimeoutMs: [o.tcpIdleTimeoutMs ?? 120_000, o.udpIdleTimeoutMs ?? 30_000],
      onRemove: (v, lane, reason, nowMs) => this.onRemoved(v, lane, reason, nowMs),
    });
    this.tcp = new TcpReassembler({
      table: this.table,
      lane: LANE_TCP,
      streamDissectors: o.streamDissectors ?? [],
      sink: o.sink,
      dissectorOptions,
      maxBufferedBytesPerDirection: o.maxBufferedBytesPerDirection ?? 1024 * 1024,
      maxBufferedBytesTotal: o.maxBufferedBytesTotal ?? 256 * 1024 * 1024,
      probeBytes: o.probeBytes ?? 16 * 1024,
      finLingerMs: o.finLingerMs ?? 5_000,
      gapTimeoutMs: o.gapTimeoutMs ?? 1_000,
      nextId,
      onParserError: o.onParserError,
      onStreamEnd: o.onStreamEnd,
    });
    this.udp = new UdpDispatcher({
      table: this.table,
      lane: LANE_UDP,
      datagramDissectors: o.datagramDissectors ?? [],
      sink: o.sink,
      dissectorOptions,
      nextId,
      onParserError: o.onParserError,
      onStreamEnd: o.onStreamEnd,
    });
  }

  /**
   * One decoded packet (status OK). TCP and UDP go on; anything else is
   * counted and ignored. Returns the stream id of the packet: the
   * ConnectionInfo.id of the TCP connection or UDP flow it was routed to
   * (what items carry, in hex, as `stream`), or 0 when it belongs to none
   * (not TCP/UDP, or a bare ACK/FIN/RST of no known connection). A bare
   * packet arriving within finLingerMs after a connection closed by FIN or
   * RST on the same 4-tuple (the last ACK) keeps that connection's id.
   * Ids start at 1 and are never reused within a Reassembly.
   */
  onPacket(p: DecodedPacket): number {
    if (p.protocol === 6) return this.tcp.onPacket(p);
    if (p.protocol === 17) return this.udp.onPacket(p);
    this.packetsIgnored++;
    return 0;
  }

  /** Capture time moved on: idle flows close; parsers and datagram dissectors get onTick at most every tickIntervalMs. */
  tick(nowMs: number): void {
    this.table.expire(nowMs);
    if (nowMs - this.lastTick < this.tickIntervalMs) return;
    this.lastTick = nowMs;
    this.tcp.tick(nowMs);
    this.udp.tick(nowMs);
  }

  /** End of capture: every connection closes ('end') and every dissector flushes. */
  end(nowMs: number): void {
    this.table.clear(nowMs);
    this.udp.end(nowMs);
  }

  get activeFlows(): number {
    return this.table.size;
  }

  stats(): ReassemblyStats {
    const tcp = { ...this.tcp.counters };
    const udp = { ...this.udp.counters };
    return {
      ...tcp,
      ...udp,
      flowsActive: this.table.size,
      flowsEvicted: this.table.flowsEvicted,
      flowsExpired: this.table.flowsExpired,
      packetsIgnored: this.packetsIgnored,
    };
  }

  private onRemoved(v: unknown, lane: number, reason: Removal, nowMs: number): void {
    const why = REMOVAL_NAME[reason];
    if (lane === LANE_TCP) this.tcp.onRemoved(v as TcpConnection, why, nowMs);
    else this.udp.onRemoved(v as UdpFlow, why);
  }
}
