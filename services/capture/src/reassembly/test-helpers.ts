/**
 * Test helpers for reassembly: DecodedPackets filled from simple parameters
 * (the real packet builder and decoder are separate stages), and recording
 * dissectors that stand in for the dissector interface.
 *
 * The feeder reuses one DecodedPacket and one buffer and scribbles over the
 * buffer after every packet, as the real decoder's reuse would: anything the
 * reassembler kept without copying shows up as garbage.
 */
import {
  TCP_FLAG, newDecodedPacket, type ConnectionInfo, type DatagramDissector, type DecodedPacket, type Direction,
  type DissectorContext, type ItemDraft, type ItemSink, type ProbeResult, type StreamDissector, type StreamParser,
} from '../types.ts';

export function parseIp(text: string): { version: 4 | 6; bytes: Buffer } {
  if (!text.includes(':')) {
    const parts = text.split('.').map(Number);
    if (parts.length !== 4 || parts.some((x) => !(x >= 0 && x <= 255))) throw new Error(`bad IPv4 ${text}`);
    return { version: 4, bytes: Buffer.from(parts) };
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const groups = (s: string | undefined): number[] => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  if (all.length !== 8) throw new Error(`bad IPv6 ${text}`);
  const b = Buffer.alloc(16);
  all.forEach((g, i) => b.writeUInt16BE(g, 2 * i));
  return { version: 6, bytes: b };
}

export function flagBits(flags: string | number | undefined): number {
  if (typeof flags === 'number') return flags;
  let f = 0;
  for (const ch of flags ?? '') {
    if (ch === 'F') f |= TCP_FLAG.FIN;
    else if (ch === 'S') f |= TCP_FLAG.SYN;
    else if (ch === 'R') f |= TCP_FLAG.RST;
    else if (ch === 'P') f |= TCP_FLAG.PSH;
    else if (ch === 'A' || ch === '.') f |= TCP_FLAG.ACK;
    else throw new Error(`bad flag ${ch}`);
  }
  return f;
}

export interface PacketSpec {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  /** 6 TCP (default), 17 UDP, anything else. */
  protocol?: number;
  seq?: number;
  ack?: number;
  /** tcpdump letters (S, A, F, R, P) or the flags byte; default 'A'. */
  flags?: string | number;
  payload?: string | Buffer;
  ts?: number;
  /** Bytes of payload the snap length cut off (they are not in the buffer). */
  truncatedBy?: number;
}

export interface PacketTarget {
  onPacket(p: DecodedPacket): void;
}

export class PacketFeeder {
  readonly target: PacketTarget;
  readonly packet = newDecodedPacket();
  private buf = Buffer.alloc(2048);
  /** Layout in the shared buffer: a few bytes of junk, the addresses, more junk, the payload: offsets are not trivially 0. */
  constructor(target: PacketTarget) {
    this.target = target;
  }

  send(s: PacketSpec): void {
    const src = parseIp(s.src);
    const dst = parseIp(s.dst);
    if (src.version !== dst.version) throw new Error('mixed IP versions');
    const payload = typeof s.payload === 'string' ? Buffer.from(s.payload, 'latin1') : (s.payload ?? Buffer.alloc(0));
    const need = 7 + 32 + 5 + payload.length;
    if (this.buf.length < need) this.buf = Buffer.alloc(need * 2);
    const b = this.buf;
    const alen = src.bytes.length;
    const srcOff = 7;
    const dstOff = srcOff + alen;
    const payOff = dstOff + alen + 5;
    src.bytes.copy(b, srcOff);
    dst.bytes.copy(b, dstOff);
    payload.copy(b, payOff);
    const p = this.packet;
    const cut = s.truncatedBy ?? 0;
    p.tsMs = s.ts ?? 0;
    p.captureLength = payOff + payload.length;
    p.length = p.captureLength + cut;
    p.truncated = cut > 0;
    p.fragmented = false;
    p.ipVersion = src.version;
    p.protocol = s.protocol ?? 6;
    p.buf = b;
    p.srcAddrOffset = srcOff;
    p.dstAddrOffset = dstOff;
    p.srcPort = s.sport;
    p.dstPort = s.dport;
    p.tcpSeq = (s.seq ?? 0) >>> 0;
    p.tcpAck = (s.ack ?? 0) >>> 0;
    p.tcpFlags = flagBits(s.flags ?? 'A');
    p.tcpWindow = 65535;
    p.payloadOffset = payOff;
    p.payloadLength = payload.length;
    this.target.onPacket(p);
    b.fill(0xee, 0, need); // the packet buffer is the caller's again
  }
}

/**
 * One TCP connection between a client and a server, in relative sequence
 * numbers (0 = first data byte of that side).
 */
export class TcpPair {
  readonly feeder: PacketFeeder;
  readonly client: { ip: string; port: number };
  readonly server: { ip: string; port: number };
  readonly isn: [number, number];

  constructor(feeder: PacketFeeder, client: string, server: string, isnClient = 1000, isnServer = 5000) {
    this.feeder = feeder;
    const [cip, cport] = splitHostPort(client);
    const [sip, sport] = splitHostPort(server);
    this.client = { ip: cip, port: cport };
    this.server = { ip: sip, port: sport };
    this.isn = [isnClient >>> 0, isnServer >>> 0];
  }

  /** SYN, SYN-ACK, ACK. */
  handshake(ts = 0): void {
    this.raw(0, this.isn[0], 0, 'S', '', ts);
    this.raw(1, this.isn[1], (this.isn[0] + 1) >>> 0, 'SA', '', ts);
    this.raw(0, (this.isn[0] + 1) >>> 0, (this.isn[1] + 1) >>> 0, 'A', '', ts);
  }

  /** Data from dir (0 client, 1 server) at relative sequence number rel. */
  send(dir: Direction, rel: number, data: string | Buffer, ts = 0, flags: string | number = 'PA', truncatedBy = 0): void {
    this.raw(dir, (this.isn[dir] + 1 + rel) >>> 0, (this.isn[1 - dir] + 1) >>> 0, flags, data, ts, truncatedBy);
  }

  fin(dir: Direction, rel: number, ts = 0): void {
    this.send(dir, rel, '', ts, 'FA');
  }

  rst(dir: Direction, rel: number, ts = 0): void {
    this.send(dir, rel, '', ts, 'R');
  }

  raw(dir: Direction, seq: number, ack: number, flags: string | number, data: string | Buffer, ts: number, truncatedBy = 0): void {
    const from = dir === 0 ? this.client : this.server;
    const to = dir === 0 ? this.server : this.client;
    this.feeder.send({ src: from.ip, dst: to.ip, sport: from.port, dport: to.port, seq, ack, flags, payload: data, ts, truncatedBy });
  }
}

function splitHostPort(s: string): [string, number] {
  const i = s.lastIndexOf(':');
  const host = s.slice(0, i).replace(/^\[|\]$/g, '');
  return [host, Number(s.slice(i + 1))];
}

export type Recorded =
  | { ev: 'data'; conn: number; dir: Direction; text: string; ts: number; parser: string }
  | { ev: 'gap'; conn: number; dir: Direction; length: number; ts: number; parser: string }
  | { ev: 'tick'; conn: number; ts: number; parser: string }
  | { ev: 'close'; conn: number; reason: string; ts: number; parser: string };

export interface Recorder {
  readonly dissector: StreamDissector;
  readonly log: Recorded[];
  readonly conns: ConnectionInfo[];
  probes: { dir: Direction; text: string }[];
  /** Every byte of a connection's direction, concatenated. */
  text(conn: number, dir: Direction): string;
}

export interface RecorderOptions {
  probe?: (data: Buffer, dir: Direction, conn: ConnectionInfo) => ProbeResult;
  /** Called on each onData before recording (to throw, or to switch). */
  onData?: (ctx: DissectorContext, dir: Direction, data: Buffer, self: StreamParser) => void | 'handled';
  /** A shared log (to see the order across several recorders). */
  log?: Recorded[];
}

/** A stream dissector that records everything its parsers get (a test double of the dissector interface). */
export function recorder(name: string, o: RecorderOptions = {}): Recorder {
  const log = o.log ?? [];
  const conns: ConnectionInfo[] = [];
  const r: Recorder = {
    log,
    conns,
    probes: [],
    text: (conn, dir) => log.filter((e) => e.ev === 'data' && e.conn === conn && e.dir === dir && e.parser === name).map((e) => (e as { text: string }).text).join(''),
    dissector: {
      name,
      probe(data, dir, conn) {
        r.probes.push({ dir, text: data.toString('latin1') });
        return o.probe ? o.probe(data, dir, conn) : 'yes';
      },
      create(ctx) {
        conns.push(ctx.conn);
        const id = ctx.conn.id;
        const parser: StreamParser = {
          onData(dir, data, ts) {
            if (o.onData && o.onData(ctx, dir, data, parser) === 'handled') return;
            log.push({ ev: 'data', conn: id, dir, text: data.toString('latin1'), ts, parser: name });
          },
          onGap(dir, length, ts) {
            log.push({ ev: 'gap', conn: id, dir, length, ts, parser: name });
          },
          onTick(ts) {
            log.push({ ev: 'tick', conn: id, ts, parser: name });
          },
          onClose(ts, reason) {
            log.push({ ev: 'close', conn: id, reason, ts, parser: name });
          },
        };
        return parser;
      },
    },
  };
  return r;
}

export interface DatagramRecorder {
  readonly dissector: DatagramDissector;
  readonly datagrams: { conn: ConnectionInfo; dir: Direction; text: string; ts: number }[];
  probes: number;
  ticks: number[];
  ends: number[];
}

export function datagramRecorder(name: string, probe: (payload: Buffer) => boolean, onDatagram?: (payload: Buffer) => void): DatagramRecorder {
  const r: DatagramRecorder = {
    datagrams: [],
    probes: 0,
    ticks: [],
    ends: [],
    dissector: {
      name,
      probe(payload) {
        r.probes++;
        return probe(payload);
      },
      onDatagram(conn, dir, payload, tsMs) {
        onDatagram?.(payload);
        r.datagrams.push({ conn, dir, text: payload.toString('latin1'), ts: tsMs });
      },
      onTick(nowMs) {
        r.ticks.push(nowMs);
      },
      onEnd(tsMs) {
        r.ends.push(tsMs);
      },
    },
  };
  return r;
}

export const nullSink: ItemSink = { emit(_c: ConnectionInfo, _i: ItemDraft) {} };
