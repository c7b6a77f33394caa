/**
 * The contracts between the capture pipeline's stages:
 *
 *   source/ (pcap file, live)  --Frame-->  decode/  --DecodedPacket-->
 *   reassembly/ (TCP streams, UDP datagrams)  --bytes-->  dissect/ (HTTP/1,
 *   HTTP/2, gRPC, DNS, Redis)  --ItemDraft-->  items/ (Kubeshark item JSON)
 *
 * Time inside the pipeline is capture time: float milliseconds since the
 * epoch taken from packet timestamps (so a pcap replays the same way at any
 * speed); timeouts are driven by tick(nowMs) with the latest packet time.
 *
 * Hot paths avoid per-packet allocation: a Frame and a DecodedPacket are
 * reused objects refilled per packet, and buffers passed to a callback are
 * only valid during that call (copy what you keep).
 */

/** libpcap LINKTYPE_* values the decoder understands. */
export const LINKTYPE = {
  NULL: 0, // BSD loopback, host byte order family
  ETHERNET: 1,
  RAW: 101, // raw IPv4/IPv6 (also 12 and 14 on some systems)
  RAW_12: 12,
  RAW_14: 14,
  LOOP: 108, // OpenBSD loopback, network byte order family
  LINUX_SLL: 113, // Linux cooked capture v1 ("any")
  LINUX_SLL2: 276, // Linux cooked capture v2
  IPV4: 228,
  IPV6: 229,
} as const;

/** One captured frame. `data` is exactly `captureLength` bytes and valid only during the callback. */
export interface Frame {
  /** Capture time, ms since the epoch (fractional: µs or ns precision kept as far as a double allows). */
  tsMs: number;
  /** Bytes captured (== data.length). */
  captureLength: number;
  /** Length of the packet on the wire (>= captureLength; larger means truncated by the snap length). */
  length: number;
  /** LINKTYPE_* of the interface the frame came from. */
  linkType: number;
  /** pcapng interface index (0 for pcap and live). */
  interfaceId: number;
  data: Buffer;
}

/** Why a frame produced no transport payload (numeric: no string per packet). */
export const DECODE = {
  OK: 0,
  /** Not IP (ARP, LLDP, ...): counted, ignored. */
  NOT_IP: 1,
  /** IP but not TCP/UDP (ICMP, ...). */
  OTHER_PROTOCOL: 2,
  /** A fragment held for reassembly: nothing to deliver yet. */
  FRAGMENT_HELD: 3,
  /** Cut short by the snap length or the file: headers incomplete. */
  TRUNCATED: 4,
  /** Header fields that contradict each other (bad lengths, bad version...). */
  MALFORMED: 5,
  /** A link type the decoder does not know. */
  UNSUPPORTED_LINK: 6,
} as const;
export type DecodeStatus = (typeof DECODE)[keyof typeof DECODE];

/**
 * A decoded packet, refilled in place for every frame (no allocation). The
 * IP packet lives in `buf` (the frame's data, or a reassembled datagram);
 * addresses and the transport payload are given as offsets into it.
 */
export interface DecodedPacket {
  tsMs: number;
  captureLength: number;
  length: number;
  /** captureLength < length. */
  truncated: boolean;
  /** The IP datagram was a fragment or was reassembled from fragments. */
  fragmented: boolean;
  /** 0 when not IP. */
  ipVersion: 0 | 4 | 6;
  /** IP protocol number of the transport (6 TCP, 17 UDP); 0 when none. */
  protocol: number;
  buf: Buffer;
  /** Offsets of the source/destination addresses in buf (4 bytes for IPv4, 16 for IPv6). */
  srcAddrOffset: number;
  dstAddrOffset: number;
  srcPort: number;
  dstPort: number;
  /** TCP only. seq/ack are unsigned 32-bit values. */
  tcpSeq: number;
  tcpAck: number;
  /** TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, URG 0x20, ECE 0x40, CWR 0x80). */
  tcpFlags: number;
  tcpWindow: number;
  /** Transport payload in buf (payloadLength may be less than the header says when truncated). */
  payloadOffset: number;
  payloadLength: number;
}

export const TCP_FLAG = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10 } as const;

export function newDecodedPacket(): DecodedPacket {
  return {
    tsMs: 0, captureLength: 0, length: 0, truncated: false, fragmented: false, ipVersion: 0, protocol: 0,
    buf: Buffer.alloc(0), srcAddrOffset: 0, dstAddrOffset: 0, srcPort: 0, dstPort: 0,
    tcpSeq: 0, tcpAck: 0, tcpFlags: 0, tcpWindow: 0, payloadOffset: 0, payloadLength: 0,
  };
}

/** 0: from the client (the side that opened the connection, or that the heuristics believe did); 1: from the server. */
export type Direction = 0 | 1;

export interface Endpoint {
  ip: string;
  port: number;
}

/** One TCP connection or UDP flow, created once per flow (strings allocated here, not per packet). */
export interface ConnectionInfo {
  /** Capture-wide stream number, in order of first packet. */
  id: number;
  client: Endpoint;
  server: Endpoint;
  ipVersion: 4 | 6;
  transport: 'tcp' | 'udp';
  /** True when the SYN was seen (so client/server are known, not guessed). */
  handshakeSeen: boolean;
}

/** Item `protocol` object, Kubeshark's shape. layer3/layer4 are filled by the item builder. */
export interface ProtocolInfo {
  name: string;
  version: string;
  abbr: string;
  longName: string;
  macro: string;
}

/** What a dissector hands on: one API call (request and/or response). The item builder completes it. */
export interface ItemDraft {
  protocol: ProtocolInfo;
  /** Protocol-specific request object (Kubeshark item JSON), or null when only a response was seen. */
  request: Record<string, unknown> | null;
  response: Record<string, unknown> | null;
  /** Bytes of the request / response on the wire (headers + body, or the whole message). */
  requestSize: number;
  responseSize: number;
  /** Capture time of the first byte of the request / response; 0 when absent. */
  requestTsMs: number;
  responseTsMs: number;
  /** Set when the call is incomplete or damaged: "request timed out without response", "capture gap: N bytes lost", ... */
  error?: string;
}

export interface ItemSink {
  emit(conn: ConnectionInfo, item: ItemDraft): void;
}

export interface DissectorOptions {
  /** Largest decoded body kept as text in content.text / postData.text, bytes (longer bodies are cut and flagged). */
  maxBodyBytes: number;
  /** A request without a response (or a response without a request) becomes an item with an error after this, ms of capture time. */
  pairTimeoutMs: number;
  /** Decode gzip, deflate and br bodies. */
  decodeBodies: boolean;
}

export const DEFAULT_DISSECTOR_OPTIONS: DissectorOptions = { maxBodyBytes: 64 * 1024, pairTimeoutMs: 30_000, decodeBodies: true };

export type ProbeResult = 'yes' | 'no' | 'more';

/** Given to a stream parser: where items go, and how to hand the stream to another protocol (h2c upgrade). */
export interface DissectorContext {
  readonly conn: ConnectionInfo;
  readonly sink: ItemSink;
  readonly opts: DissectorOptions;
  /** A parser of another registered dissector for the same stream (e.g. "http2" after an HTTP/1.1 101 upgrade), or null. */
  switchTo(name: string): StreamParser | null;
}

/** Parses one TCP stream, both directions, in order. Must never throw on any input (bad bytes become items with errors or are skipped). */
export interface StreamParser {
  /** In-order bytes of one direction. `data` is valid only during the call. */
  onData(dir: Direction, data: Buffer, tsMs: number): void;
  /** `length` bytes of `dir` were lost (capture loss). Mark what was in flight with an error and resynchronise. */
  onGap(dir: Direction, length: number, tsMs: number): void;
  /** Periodic, with capture time: time out unmatched requests/responses older than opts.pairTimeoutMs. */
  onTick(nowMs: number): void;
  /** The connection ended (FIN both ways, RST, idle timeout, end of capture): flush everything pending as items. */
  onClose(tsMs: number, reason: 'fin' | 'rst' | 'timeout' | 'end'): void;
}

/** A protocol carried over TCP, chosen by content (ports are only a hint). */
export interface StreamDissector {
  readonly name: string;
  /** Looks at the first bytes seen in one direction (all bytes so far of that direction). */
  probe(data: Buffer, dir: Direction, conn: ConnectionInfo): ProbeResult;
  create(ctx: DissectorContext): StreamParser;
}

/** A protocol carried in UDP datagrams (DNS). One handler per capture, keyed by flow inside. */
export interface DatagramDissector {
  readonly name: string;
  /** Whether a datagram looks like this protocol. */
  probe(payload: Buffer, conn: ConnectionInfo): boolean;
  /** Handles one datagram of a flow; `dir` relative to conn (0 = from conn.client). */
  onDatagram(conn: ConnectionInfo, dir: Direction, payload: Buffer, tsMs: number, sink: ItemSink, opts: DissectorOptions): void;
  /** Capture-time tick: emit timed-out unmatched queries. */
  onTick(nowMs: number, sink: ItemSink, opts: DissectorOptions): void;
  /** End of capture: flush everything pending. */
  onEnd(tsMs: number, sink: ItemSink, opts: DissectorOptions): void;
}
