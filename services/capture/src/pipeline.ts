/**
 * The capture pipeline in one object: frames in (from a file or a live
 * interface), Kubeshark items and packet summaries out. Single-threaded and
 * synchronous per frame; time is capture time (the frames' timestamps), so a
 * pcap gives the same items at any replay speed.
 */
import { Decoder } from './decode/index.ts';
import { dnsDatagramDissector, dnsStreamDissector } from './dissect/dns.ts';
import { http1Dissector } from './dissect/http1.ts';
import { http2Dissector } from './dissect/http2.ts';
import { redisDissector } from './dissect/redis.ts';
import { ItemBuilder, type CapturedItem, type ItemBuilderOptions } from './items/builder.ts';
import { Reassembly } from './reassembly/index.ts';
import {
  DECODE, DEFAULT_DISSECTOR_OPTIONS, newDecodedPacket, type ConnectionInfo, type DatagramDissector, type DecodedPacket,
  type DissectorOptions, type Frame, type ItemDraft, type StreamDissector,
} from './types.ts';

/** onPacketCaptured's info for one frame. */
export interface PacketSummary {
  timestamp: number;
  captureLength: number;
  length: number;
  truncated: boolean;
  fragmented: boolean;
}

export interface PipelineOptions extends ItemBuilderOptions {
  dissectorOptions?: Partial<DissectorOptions>;
  /** Most TCP connections + UDP flows tracked at once; beyond it the least recently used is evicted (counted). */
  maxFlows?: number;
  /** Out-of-order bytes held per direction of a TCP connection before declaring a gap. */
  maxBufferedBytesPerDirection?: number;
  tcpIdleTimeoutMs?: number;
  udpIdleTimeoutMs?: number;
  /** Items out (Kubeshark item objects). */
  onItem(item: CapturedItem): void;
  /** Packet summaries out (every frame, IP or not); omit when no one needs them. */
  onPacket?(p: PacketSummary): void;
  /**
   * Extra observer of every frame (the per-stream pcap ring), called after the
   * frame went through reassembly. streamId is the ConnectionInfo.id of the TCP
   * connection or UDP flow the frame was routed to (items carry it in hex as
   * `stream`), 0 when none: not TCP/UDP, undecodable, an IP fragment held for
   * reassembly (only the frame completing a datagram gets its stream), or a
   * bare ACK/FIN/RST of no known connection.
   */
  onFrame?(frame: Frame, decoded: DecodedPacket, status: number, streamId: number): void;
  /** A stream (TCP connection, UDP flow) ended: no more items will carry its id (its trailing ACK may still come to onFrame). */
  onStreamEnd?(streamId: number): void;
  /** Told of every exception a dissector throws (capture goes on; counted in reassembly_parserErrors and the like). */
  onParserError?(err: unknown, conn: ConnectionInfo | null, dissector: string): void;
}

/** The dissectors, in probe order: HTTP/2's preface before HTTP/1's request line. */
export const STREAM_DISSECTORS: readonly StreamDissector[] = [http2Dissector, http1Dissector, redisDissector, dnsStreamDissector];
export const DATAGRAM_DISSECTORS: readonly DatagramDissector[] = [dnsDatagramDissector];

export class CapturePipeline {
  readonly decoder = new Decoder();
  readonly reassembly: Reassembly;
  readonly builder: ItemBuilder;
  private readonly packet = newDecodedPacket();
  private readonly summary: PacketSummary = { timestamp: 0, captureLength: 0, length: 0, truncated: false, fragmented: false };
  private readonly opts: PipelineOptions;
  private lastTs = 0;
  private lastTick = 0;
  frames = 0;
  bytes = 0;
  itemsOut = 0;
  /** Frames the decoder could not use, by reason. */
  readonly decodeFailures = { truncated: 0, malformed: 0, unsupportedLink: 0, notIp: 0, otherProtocol: 0 };

  constructor(opts: PipelineOptions) {
    this.opts = opts;
    this.builder = new ItemBuilder(opts);
    const sink = { emit: (conn: ConnectionInfo, d: ItemDraft) => this.emit(conn, d) };
    this.reassembly = new Reassembly({
      streamDissectors: [...STREAM_DISSECTORS],
      datagramDissectors: [...DATAGRAM_DISSECTORS],
      sink,
      dissectorOptions: { ...DEFAULT_DISSECTOR_OPTIONS, ...opts.dissectorOptions },
      maxFlows: opts.maxFlows ?? 65_536,
      maxBufferedBytesPerDirection: opts.maxBufferedBytesPerDirection ?? 1024 * 1024,
      tcpIdleTimeoutMs: opts.tcpIdleTimeoutMs ?? 120_000,
      udpIdleTimeoutMs: opts.udpIdleTimeoutMs ?? 30_000,
      tickIntervalMs: 1_000,
      ...(opts.onStreamEnd ? { onStreamEnd: (conn: ConnectionInfo) => opts.onStreamEnd!(conn.id) } : {}),
      ...(opts.onParserError ? { onParserError: opts.onParserError } : {}),
    });
  }

  private emit(conn: ConnectionInfo, d: ItemDraft): void {
    this.itemsOut++;
    this.opts.onItem(this.builder.build(conn, d));
  }

  /** One frame in. Never throws on bad bytes (they are counted). */
  onFrame(frame: Frame): void {
    this.frames++;
    this.bytes += frame.captureLength;
    const p = this.packet;
    const status = this.decoder.decode(frame, p);
    if (this.opts.onPacket) {
      const s = this.summary;
      s.timestamp = frame.tsMs;
      s.captureLength = frame.captureLength;
      s.length = frame.length;
      s.truncated = frame.captureLength < frame.length;
      s.fragmented = status === DECODE.OK || status === DECODE.FRAGMENT_HELD ? p.fragmented || status === DECODE.FRAGMENT_HELD : false;
      this.opts.onPacket(s);
    }
    let streamId = 0;
    switch (status) {
      case DECODE.OK: streamId = this.reassembly.onPacket(p); break;
      case DECODE.TRUNCATED: this.decodeFailures.truncated++; break;
      case DECODE.MALFORMED: this.decodeFailures.malformed++; break;
      case DECODE.UNSUPPORTED_LINK: this.decodeFailures.unsupportedLink++; break;
      case DECODE.NOT_IP: this.decodeFailures.notIp++; break;
      case DECODE.OTHER_PROTOCOL: this.decodeFailures.otherProtocol++; break;
      default: break;
    }
    this.opts.onFrame?.(frame, p, status, streamId);
    if (frame.tsMs > this.lastTs) this.lastTs = frame.tsMs;
    // Timeouts run on capture time, checked at most every 250 ms of it.
    if (this.lastTs - this.lastTick >= 250) this.tick(this.lastTs);
  }

  /** Advances capture time without a frame (live capture on a quiet link). */
  tick(nowMs: number): void {
    if (nowMs > this.lastTs) this.lastTs = nowMs;
    this.lastTick = this.lastTs;
    this.decoder.tick(this.lastTs);
    this.reassembly.tick(this.lastTs);
  }

  /** End of input: every open connection is closed and what is pending comes out as items. */
  end(): void {
    this.reassembly.end(this.lastTs);
    // Datagrams still missing fragments are counted as expired, not silently dropped.
    this.decoder.flush();
  }

  stats(): Record<string, number> {
    const out: Record<string, number> = {
      packets_received: this.frames,
      bytes_received: this.bytes,
      items_produced: this.itemsOut,
      decode_truncated: this.decodeFailures.truncated,
      decode_malformed: this.decodeFailures.malformed,
      decode_unsupported_link: this.decodeFailures.unsupportedLink,
      decode_not_ip: this.decodeFailures.notIp,
      decode_other_protocol: this.decodeFailures.otherProtocol,
    };
    for (const [k, v] of Object.entries(this.reassembly.stats() as unknown as Record<string, number>)) {
      if (typeof v === 'number') out[`reassembly_${k}`] = v;
    }
    for (const [k, v] of Object.entries(this.decoder.stats as unknown as Record<string, number>)) {
      if (typeof v === 'number') out[`decode_${k}`] = v;
    }
    return out;
  }
}
