/**
 * The capture service: a source (live interface or pcap file) through the
 * pipeline, items published on ws.items.<node>.<protocol> and packet
 * summaries on ws.packets.<node>. Capture never waits on NATS: what is ready
 * to publish goes into bounded queues drained by an async loop that flushes
 * per batch; when NATS is slow or away, the queues fill and the overflow is
 * dropped and counted (items_dropped, packets_dropped in the status).
 *
 * Accounting: an item is counted published only once the server has
 * confirmed it (flush); while NATS is away the publish loop waits for the
 * reconnection instead of handing messages to the client's buffer (which the
 * client discards on each reconnection attempt); a batch whose flush fails is
 * counted dropped, and so is what is still queued when DRAIN_TIMEOUT cuts a
 * shutdown short. So at any time items_produced = items_published +
 * items_dropped + items_queued + items_in_flight.
 *
 * With PCAP_RING_DIR set, every frame the reassembly routes to a TCP
 * connection or UDP flow is kept in that stream's pcap file of a bounded
 * ring (StreamPcapRing), so snapshot([stream ids]) can cut a pcap of chosen
 * streams later; items name their stream in hex in `stream`.
 */
import { BoundedQueue, drainAndClose, type NatsConnection } from '@wirescript/nats';
import { POD_MAP_BUCKET, PodDirectory } from '@wirescript/pod-map';
import { Item, PacketBatch, PacketInfo, ReplicaStatus, encodeMessage, itemsSubject, packetsSubject } from '@wirescript/proto';
import { HealthServer, StatusPublisher, connectServiceNats, createLogger, type Logger, type ServiceNats } from '@wirescript/script-host';
import { effectiveFilter, replaySpeed, type CaptureConfig } from './config.ts';
import { LiveCapture } from './live/cap-source.ts';
import { CapturePipeline, type PacketSummary } from './pipeline.ts';
import { StreamPcapRing, readCaptureFile, type StreamSnapshotResult } from './source/index.ts';
import type { CapturedItem } from './items/builder.ts';
import type { DecodedPacket, Frame } from './types.ts';

export const SERVICE = 'capture';

interface Outgoing {
  subject: string;
  payload: Uint8Array;
  /** Items (1) or packet summaries (the batch's size) this message carries, for the drop accounting. */
  count: number;
}

export class CaptureService {
  readonly config: CaptureConfig;
  private readonly log: Logger;
  private pods: PodDirectory | null = null;
  private nc: NatsConnection | null = null;
  private pipeline: CapturePipeline | null = null;
  private live: LiveCapture | null = null;
  private readonly items: BoundedQueue<Outgoing>;
  private readonly packets: BoundedQueue<Outgoing>;
  private batch: PacketInfo[] = [];
  private batchTimer: NodeJS.Timeout | null = null;
  private tickTimer: NodeJS.Timeout | null = null;
  private sequence = 0;
  private packetsDropped = 0;
  private droppedSinceBatch = 0;
  private published = 0;
  /** Items / packet summaries handed to NATS but not confirmed (flush failed), or queued when a shutdown timed out. */
  private itemsLost = 0;
  private packetsLost = 0;
  private packetsPublished = 0;
  /** Items / packet summaries of the batches being published now. */
  private itemsInFlight = 0;
  private packetsInFlight = 0;
  private publishFailures = 0;
  /** Publish loops waiting for NATS to come back. */
  private connectedWaiters: (() => void)[] = [];
  private closing = false;
  /** The shutdown's drain timed out: whatever was in flight was counted dropped then. */
  private drainAbandoned = false;
  private ring: StreamPcapRing | null = null;
  /** Streams that ended while their last frame was being routed: their ring file is ended after that frame is written. */
  private readonly ringEnded: number[] = [];
  private ringErrors = 0;
  private readonly loops: Promise<void>[] = [];
  private status: StatusPublisher | null = null;
  private health: HealthServer | null = null;
  private bus: ServiceNats | null = null;
  private readonly startedAtMs = Date.now();
  private stopping: Promise<void> | null = null;
  /** Resolves when a pcap replay has been read to its end (never for live capture). */
  replayDone: Promise<void> = new Promise(() => {});
  replayError: Error | null = null;
  /** Stops a replay still running when the service stops. */
  private replayAbort: AbortController | null = null;
  healthPort = 0;

  constructor(config: CaptureConfig, deps: { log?: Logger } = {}) {
    this.config = config;
    this.log = deps.log ?? createLogger(SERVICE, config.logLevel);
    this.items = new BoundedQueue<Outgoing>(config.publishQueueCapacity);
    this.packets = new BoundedQueue<Outgoing>(Math.max(16, Math.ceil(config.publishQueueCapacity / Math.max(1, config.packetBatchSize)) + 16));
  }

  get stats(): Record<string, number> {
    return this.counters();
  }

  async start(): Promise<void> {
    const c = this.config;
    if (c.healthPort > 0) await this.startHealth();
    this.bus = await connectServiceNats({
      url: c.natsUrl,
      name: `${SERVICE}/${c.replicaId}`,
      log: this.log,
      onReconnect: () => this.wakePublishers(),
      onClose: () => this.wakePublishers(),
    });
    const nc = this.bus.nc;
    this.nc = nc;
    if (c.pcapRingDir) {
      try {
        this.ring = new StreamPcapRing({ dir: c.pcapRingDir, maxBytes: c.pcapRingMaxMb * 1024 * 1024, maxFiles: c.pcapRingMaxFiles });
      } catch (err) {
        await nc.close();
        throw new Error(`PCAP_RING_DIR: ${(err as Error).message}`, { cause: err });
      }
    }
    const ring = this.ring;
    // The hub's IP -> pod map names src/dst; without it (no hub yet, no JetStream) names stay empty.
    try {
      this.pods = await PodDirectory.open(nc, { log: (l: string) => this.log.warn(l) });
    } catch (err) {
      this.log.warn(`pod names unavailable (IP -> pod map in KV ${POD_MAP_BUCKET}): ${(err as Error).message}`);
    }
    const pipeline = new CapturePipeline({
      node: { name: c.nodeName, ip: '' },
      worker: c.replicaId,
      ...(this.pods ? { resolve: this.pods.resolve } : {}),
      dissectorOptions: { maxBodyBytes: c.maxBodyBytes, pairTimeoutMs: c.pairTimeoutMs, decodeBodies: c.decodeBodies },
      maxFlows: c.maxFlows,
      maxBufferedBytesPerDirection: c.streamBufferBytes,
      tcpIdleTimeoutMs: c.tcpIdleTimeoutMs,
      udpIdleTimeoutMs: c.udpIdleTimeoutMs,
      onItem: (it) => this.onItem(it),
      ...(c.packetSummaries ? { onPacket: (p: PacketSummary) => this.onPacket(p) } : {}),
      ...(ring ? {
        onFrame: (f: Frame, _p: DecodedPacket, _status: number, streamId: number) => this.ringWrite(ring, f, streamId),
        onStreamEnd: (id: number) => { this.ringEnded.push(id); },
      } : {}),
    });
    this.pipeline = pipeline;
    this.loops.push(this.items.drain((b) => this.publishBatch(b, 'items'), { batchSize: 512 }));
    this.loops.push(this.packets.drain((b) => this.publishBatch(b, 'packets'), { batchSize: 64 }));
    this.batchTimer = setInterval(() => this.flushPacketBatch(), c.packetBatchIntervalMs);
    this.batchTimer.unref();
    this.status = new StatusPublisher(nc, SERVICE, c.replicaId, () => this.buildStatus());
    this.status.start(c.statusIntervalMs);

    if (c.capturePcap) {
      this.log.info(`replaying ${c.capturePcap} at speed ${c.replaySpeed}`);
      const abort = new AbortController();
      this.replayAbort = abort;
      this.replayDone = readCaptureFile(c.capturePcap, (f) => pipeline.onFrame(f), { speed: replaySpeed(c.replaySpeed), signal: abort.signal })
        .then((summary) => {
          pipeline.end();
          this.flushPacketBatch();
          this.log.info(`replayed ${summary.frames} frames, ${pipeline.itemsOut} items`);
        }, (err: Error) => {
          // Items decoded before the error were delivered; the rest of the file is unusable.
          pipeline.end();
          this.flushPacketBatch();
          if (abort.signal.aborted) {
            this.log.info(`replay of ${c.capturePcap} stopped by shutdown after ${pipeline.frames} frames`);
            return;
          }
          this.replayError = err;
          this.log.error(`replay of ${c.capturePcap} stopped: ${err.message}`);
        });
    } else {
      const live = new LiveCapture({ device: c.captureInterface, filter: effectiveFilter(c), bufferBytes: c.captureBufferMb * 1024 * 1024 });
      live.start((f) => pipeline.onFrame(f));
      this.live = live;
      // A quiet link still needs its timeouts to run.
      this.tickTimer = setInterval(() => pipeline.tick(performance.timeOrigin + performance.now()), 1_000);
      this.tickTimer.unref();
      const filter = effectiveFilter(c);
      this.log.info(`capturing on ${c.captureInterface}${filter ? ` (filter: ${filter})` : ''}`);
    }
  }

  private onItem(it: CapturedItem): void {
    const payload = encodeMessage(Item, Item.fromPartial({
      id: it.id, node: this.config.nodeName, protocol: it.protocol, timestampMs: it.timestampMs,
      json: Buffer.from(JSON.stringify(it.item), 'utf8'),
    }));
    this.items.push({ subject: itemsSubject(this.config.nodeName, it.protocol), payload, count: 1 });
  }

  /** Keeps the frame in its stream's ring file; a stream that ended on this frame has its file ended after it. Never throws. */
  private ringWrite(ring: StreamPcapRing, f: Frame, streamId: number): void {
    try {
      if (streamId > 0) ring.write(streamId, f);
      while (this.ringEnded.length > 0) ring.end(this.ringEnded.pop()!);
    } catch (err) {
      // A full or broken disk must not stop capture: counted, the first one logged.
      this.ringEnded.length = 0;
      if (this.ringErrors++ === 0) this.log.error(`pcap ring: ${(err as Error).message} (further errors only counted: pcap_ring_errors)`);
    }
  }

  /**
   * Writes one pcap of the chosen streams (ids as in items' `stream`, parsed
   * from hex) from the pcap ring to outPath. Throws when PCAP_RING_DIR is not
   * set or none of the streams is in the ring.
   */
  async snapshot(streamIds: readonly number[], outPath: string): Promise<StreamSnapshotResult> {
    if (!this.ring) throw new Error('no pcap ring: set PCAP_RING_DIR');
    return this.ring.snapshot(streamIds, outPath);
  }

  private onPacket(p: PacketSummary): void {
    this.batch.push({ timestampMs: Math.round(p.timestamp), captureLength: p.captureLength, length: p.length, truncated: p.truncated, fragmented: p.fragmented });
    if (this.batch.length >= this.config.packetBatchSize) this.flushPacketBatch();
  }

  private flushPacketBatch(): void {
    if (this.batch.length === 0) return;
    const packets = this.batch;
    this.batch = [];
    this.sequence++;
    const msg = PacketBatch.fromPartial({ node: this.config.nodeName, packets, droppedSinceLast: this.droppedSinceBatch, sequence: this.sequence });
    if (this.packets.push({ subject: packetsSubject(this.config.nodeName), payload: encodeMessage(PacketBatch, msg), count: packets.length })) {
      this.droppedSinceBatch = 0;
    } else {
      this.packetsDropped += packets.length;
      this.droppedSinceBatch += packets.length;
    }
  }

  private wakePublishers(): void {
    const w = this.connectedWaiters;
    this.connectedWaiters = [];
    for (const r of w) r();
  }

  /**
   * Publishes a batch and waits for the server to have it all: the queue, not
   * the client's buffer, absorbs a slow or absent NATS. Never throws: a batch
   * that may not have arrived is counted dropped.
   */
  private async publishBatch(batch: readonly Outgoing[], kind: 'items' | 'packets'): Promise<void> {
    const nc = this.nc!;
    let n = 0;
    for (const m of batch) n += m.count;
    if (kind === 'items') this.itemsInFlight = n;
    else this.packetsInFlight = n;
    let ok = false;
    try {
      // NATS away: wait for it (the queue fills and drops meanwhile) rather than feed a buffer the client throws away.
      while (!(this.bus?.connected ?? false) && !this.closing && !nc.isClosed()) await new Promise<void>((r) => this.connectedWaiters.push(r));
      for (const m of batch) nc.publish(m.subject, m.payload);
      await nc.flush();
      ok = true;
    } catch (err) {
      if (this.publishFailures++ === 0 || this.publishFailures % 100 === 0) {
        this.log.error(`publish failed (${this.publishFailures} batches so far, counted as dropped): ${(err as Error).message}`);
      }
    } finally {
      if (this.drainAbandoned) {
        // Already counted as dropped when the shutdown gave up on it.
      } else if (kind === 'items') {
        this.itemsInFlight = 0;
        if (ok) this.published += n;
        else this.itemsLost += n;
      } else {
        this.packetsInFlight = 0;
        if (ok) this.packetsPublished += n;
        else this.packetsLost += n;
      }
    }
  }

  private counters(): Record<string, number> {
    const p = this.pipeline?.stats() ?? {};
    const ring = this.ring?.stats;
    return {
      ...p,
      items_dropped: this.items.dropped + this.itemsLost,
      items_queued: this.items.size,
      items_in_flight: this.itemsInFlight,
      items_published: this.published,
      packets_dropped: this.packetsDropped + this.packetsLost,
      packets_published: this.packetsPublished,
      packet_batches: this.sequence,
      publish_failures: this.publishFailures,
      live_packets: this.live?.packets ?? 0,
      kernel_drops: this.live?.kernelStats()?.drops ?? 0,
      ...(ring ? {
        pcap_ring_files: ring.files,
        pcap_ring_bytes: ring.bytes,
        pcap_ring_evicted_streams: ring.evictedStreams,
        pcap_ring_dropped_frames: ring.droppedFrames,
        pcap_ring_errors: this.ringErrors,
      } : {}),
    };
  }

  private buildStatus(): ReplicaStatus {
    const counters = this.counters();
    for (const k of Object.keys(counters)) counters[k] = Math.max(0, Math.floor(counters[k]));
    return ReplicaStatus.fromPartial({
      service: SERVICE, node: this.config.nodeName, replica: this.config.replicaId, startedAtMs: this.startedAtMs,
      timestampMs: Date.now(), counters,
    });
  }

  private async startHealth(): Promise<void> {
    const h = new HealthServer();
    h.addReadiness({ name: 'nats', check: () => (this.bus?.connected ? null : 'not connected to NATS') });
    h.addReadiness({ name: 'source', check: () => (this.live || this.config.capturePcap ? null : 'capture not started') });
    this.healthPort = await h.start(this.config.healthHost, this.config.healthPort);
    this.health = h;
  }

  /** Stops capturing, publishes what is queued (bounded by DRAIN_TIMEOUT), final status, closes. Safe twice. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.closing = true;
    this.wakePublishers();
    if (this.replayAbort) {
      // No frame after stop: the replay ends here and what it had pending comes out before the queues close.
      this.replayAbort.abort();
      // Bounded: a read that never returns (a fifo without a writer) must not hold the shutdown.
      await Promise.race([this.replayDone, new Promise<void>((r) => setTimeout(r, this.config.drainTimeoutMs).unref())]);
    }
    this.live?.stop();
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.batchTimer) clearInterval(this.batchTimer);
    if (this.live) this.pipeline?.end();
    this.flushPacketBatch();
    this.items.close();
    this.packets.close();
    const deadline = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), this.config.drainTimeoutMs).unref());
    if ((await Promise.race([Promise.all(this.loops).then(() => 'done' as const), deadline])) === 'timeout') {
      // What is queued or in flight now will not be confirmed: dropped, and counted.
      this.drainAbandoned = true;
      let packetsLeft = this.packetsInFlight;
      while (this.packets.size > 0) packetsLeft += this.packets.shift()!.count;
      const itemsLeft = this.items.clear() + this.itemsInFlight;
      this.itemsInFlight = 0;
      this.packetsInFlight = 0;
      this.itemsLost += itemsLeft;
      this.packetsLost += packetsLeft;
      this.log.warn(`drain timeout: ${itemsLeft} items and ${packetsLeft} packet summaries dropped`);
    }
    try {
      this.ring?.close();
    } catch (err) {
      this.ringErrors++;
      this.log.error(`pcap ring: ${(err as Error).message}`);
    }
    this.status?.stop();
    this.status?.publish();
    await this.pods?.stop();
    if (this.nc) await drainAndClose(this.nc, this.config.drainTimeoutMs);
    await this.health?.stop();
    this.log.info(`stopped: ${this.pipeline?.frames ?? 0} packets, ${this.pipeline?.itemsOut ?? 0} items, ${this.items.dropped} items dropped`);
  }
}
