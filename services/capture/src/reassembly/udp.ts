/**
 * UDP: flows from the flow table (own lane, own idle timeout); each datagram
 * of an undecided flow is offered to the datagram dissectors in order, the
 * first that claims it keeps the flow. Direction 0 is from conn.client: the
 * flow's first sender, unless it sent from a service port to a non-service
 * one (a response whose query was not captured).
 */
import type { ConnectionInfo, DatagramDissector, DecodedPacket, Direction, DissectorOptions, ItemSink } from '../types.ts';
import { ipToString, udpSourceIsServer } from './endpoints.ts';
import type { FlowTable } from './flow-table.ts';

/** Datagrams of a flow no dissector claimed before the flow is given up on (so a QUIC or RTP flood is not probed forever). */
export const UDP_PROBE_ATTEMPTS = 8;

const UNDECIDED = -1;
const UNRECOGNIZED = -2;
const BROKEN = -3;

export interface UdpCounters {
  udpDatagrams: number;
  udpBytes: number;
  udpFlowsOpened: number;
  udpFlowsExpired: number;
  udpFlowsEvicted: number;
  /** Datagrams handed to a dissector. */
  udpDatagramsDelivered: number;
  /** Datagrams no dissector claimed (or of a flow given up on) and flows given up on. */
  udpDatagramsUnrecognized: number;
  udpFlowsUnrecognized: number;
  /** Flows whose dissector threw on one of their datagrams (no more datagrams of them go to it). */
  udpFlowsBroken: number;
  /** Exceptions thrown by datagram dissectors (probe counted apart). */
  datagramErrors: number;
  datagramProbeErrors: number;
}

export function newUdpCounters(): UdpCounters {
  return {
    udpDatagrams: 0, udpBytes: 0, udpFlowsOpened: 0, udpFlowsExpired: 0, udpFlowsEvicted: 0, udpDatagramsDelivered: 0,
    udpDatagramsUnrecognized: 0, udpFlowsUnrecognized: 0, udpFlowsBroken: 0, datagramErrors: 0, datagramProbeErrors: 0,
  };
}

export class UdpFlow {
  readonly conn: ConnectionInfo;
  /** Direction of the flow table's side A (the first sender). */
  readonly aDir: Direction;
  /** Index of the dissector that has the flow, or UNDECIDED / UNRECOGNIZED / BROKEN. */
  dissector = UNDECIDED;
  misses = 0;

  constructor(conn: ConnectionInfo, aDir: Direction) {
    this.conn = conn;
    this.aDir = aDir;
  }
}

export interface UdpDispatcherOptions {
  table: FlowTable<unknown>;
  lane: number;
  datagramDissectors: readonly DatagramDissector[];
  sink: ItemSink;
  dissectorOptions: DissectorOptions;
  nextId(): number;
  onParserError?(err: unknown, conn: ConnectionInfo | null, dissector: string): void;
  /** Told once when a flow leaves the flow table (idle, evicted, end of capture). */
  onStreamEnd?(conn: ConnectionInfo): void;
}

export class UdpDispatcher {
  readonly counters: UdpCounters = newUdpCounters();
  private readonly table: FlowTable<unknown>;
  private readonly lane: number;
  private readonly dissectors: readonly DatagramDissector[];
  private readonly sink: ItemSink;
  private readonly opts: DissectorOptions;
  private readonly nextId: () => number;
  private readonly onParserError: UdpDispatcherOptions['onParserError'];
  private readonly onStreamEnd: UdpDispatcherOptions['onStreamEnd'];

  constructor(o: UdpDispatcherOptions) {
    this.table = o.table;
    this.lane = o.lane;
    this.dissectors = [...o.datagramDissectors];
    this.sink = o.sink;
    this.opts = o.dissectorOptions;
    this.nextId = o.nextId;
    this.onParserError = o.onParserError;
    this.onStreamEnd = o.onStreamEnd;
  }

  /** One UDP datagram (p.protocol === 17). Returns the id (ConnectionInfo.id) of its flow. */
  onPacket(p: DecodedPacket): number {
    const k = this.counters;
    const len = p.payloadLength;
    k.udpDatagrams++;
    k.udpBytes += len;
    const t = this.table;
    let f: UdpFlow;
    let dir: Direction;
    const slot = t.find(p);
    if (slot < 0) {
      f = this.open(p);
      dir = f.aDir;
    } else {
      f = t.get(slot) as UdpFlow;
      t.touch(slot, p.tsMs);
      dir = (t.foundDir ^ f.aDir) as Direction;
    }
    if (len === 0) return f.conn.id; // nothing for a dissector (no protocol of interest sends empty datagrams)
    if (f.dissector < 0 && !this.decide(f, p)) return f.conn.id;
    const payload = p.buf.subarray(p.payloadOffset, p.payloadOffset + len);
    const d = this.dissectors[f.dissector];
    try {
      d.onDatagram(f.conn, dir, payload, p.tsMs, this.sink, this.opts);
      k.udpDatagramsDelivered++;
    } catch (err) {
      k.datagramErrors++;
      k.udpFlowsBroken++;
      f.dissector = BROKEN;
      this.report(err, f.conn, d.name);
    }
    return f.conn.id;
  }

  tick(nowMs: number): void {
    for (const d of this.dissectors) {
      try {
        d.onTick(nowMs, this.sink, this.opts);
      } catch (err) {
        this.counters.datagramErrors++;
        this.report(err, null, d.name);
      }
    }
  }

  end(nowMs: number): void {
    for (const d of this.dissectors) {
      try {
        d.onEnd(nowMs, this.sink, this.opts);
      } catch (err) {
        this.counters.datagramErrors++;
        this.report(err, null, d.name);
      }
    }
  }

  onRemoved(f: UdpFlow, reason: 'idle' | 'evicted' | 'end'): void {
    if (reason === 'idle') this.counters.udpFlowsExpired++;
    else if (reason === 'evicted') this.counters.udpFlowsEvicted++;
    if (this.onStreamEnd !== undefined) {
      try {
        this.onStreamEnd(f.conn);
      } catch (err) {
        this.report(err, f.conn, 'stream-end');
      }
    }
  }

  /** Probes an undecided flow's datagram; true when a dissector now has the flow. */
  private decide(f: UdpFlow, p: DecodedPacket): boolean {
    const k = this.counters;
    if (f.dissector !== UNDECIDED) {
      if (f.dissector === UNRECOGNIZED) k.udpDatagramsUnrecognized++;
      return false;
    }
    const payload = p.buf.subarray(p.payloadOffset, p.payloadOffset + p.payloadLength);
    const ds = this.dissectors;
    for (let i = 0; i < ds.length; i++) {
      let yes = false;
      try {
        yes = ds[i].probe(payload, f.conn);
      } catch (err) {
        k.datagramProbeErrors++;
        this.report(err, f.conn, ds[i].name);
      }
      if (yes) { f.dissector = i; return true; }
    }
    k.udpDatagramsUnrecognized++;
    if (++f.misses >= UDP_PROBE_ATTEMPTS) { f.dissector = UNRECOGNIZED; k.udpFlowsUnrecognized++; }
    return false;
  }

  private open(p: DecodedPacket): UdpFlow {
    const srcIsServer = udpSourceIsServer(p.srcPort, p.dstPort);
    const v = p.ipVersion === 6 ? 6 : 4;
    const src = { ip: ipToString(p.buf, p.srcAddrOffset, v), port: p.srcPort };
    const dst = { ip: ipToString(p.buf, p.dstAddrOffset, v), port: p.dstPort };
    const conn: ConnectionInfo = {
      id: this.nextId(),
      client: srcIsServer ? dst : src,
      server: srcIsServer ? src : dst,
      ipVersion: v,
      transport: 'udp',
      handshakeSeen: false,
    };
    const f = new UdpFlow(conn, srcIsServer ? 1 : 0);
    this.table.insert(p, this.lane, f);
    this.counters.udpFlowsOpened++;
    return f;
  }

  private report(err: unknown, conn: ConnectionInfo | null, name: string): void {
    if (this.onParserError === undefined) return;
    try {
      this.onParserError(err, conn, name);
    } catch {
      // A failing error reporter must not take capture down either.
    }
  }
}
