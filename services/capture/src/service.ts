/**
 * The capture service: a source (live interface or pcap file) through the
 * pipeline, items published on ws.items.<node>.<protocol> and packet
 * summaries on ws.packets.<node>. Capture never waits on NATS: what is ready
 * to publish goes into bounded queues drained by an async loop that flushes
 * per batch; when NATS is slow or away, the queues fill and the overflow is
 * dropped and counted (items_dropped, packets_dropped in the status).
 */
import { BoundedQueue, connectNats, drainAndClose, formatStatus, type NatsConnection } from '@wirescript/nats';
import { Item, PacketBatch, PacketInfo, ReplicaStatus, encodeMessage, itemsSubject, packetsSubject } from '@wirescript/proto';
import { HealthServer, StatusPublisher, createLogger, type Logger } from '@wirescript/script-host';
import { replaySpeed, type CaptureConfig } from './config.ts';
import { LiveCapture } from './live/cap-source.ts';
import { CapturePipeline, type PacketSummary } from './pipeline.ts';
import { readCaptureFile } from './source/index.ts';
import type { CapturedItem } from './items/builder.ts';

export const SERVICE = 'capture';

interface Outgoing {
  subject: string;
  payload: Uint8Array;
}

export class CaptureService {
  readonly config: CaptureConfig;
  private readonly log: Logger;
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
  private readonly loops: Promise<void>[] = [];
  private status: StatusPublisher | null = null;
  private health: HealthServer | null = null;
  private natsConnected = false;
  private readonly startedAtMs = Date.now();
  private stopping: Promise<void> | null = null;
  /** Resolves when a pcap replay has been read to its end (never for live capture). */
  replayDone: Promise<void> = new Promise(() => {});
  replayError: Error | null = null;
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
    const nc = await connectNats({
      url: c.natsUrl,
      name: `${SERVICE}/${c.replicaId}`,
      onStatus: (st) => {
        if (st.type === 'disconnect') this.natsConnected = false;
        if (st.type === 'reconnect') this.natsConnected = true;
        const line = formatStatus(st);
        if (line) this.log.info(line);
      },
    });
    this.nc = nc;
    this.natsConnected = true;
    const pipeline = new CapturePipeline({
      node: { name: c.nodeName, ip: '' },
      worker: c.replicaId,
      dissectorOptions: { maxBodyBytes: c.maxBodyBytes, pairTimeoutMs: c.pairTimeoutMs, decodeBodies: c.decodeBodies },
      maxFlows: c.maxFlows,
      maxBufferedBytesPerDirection: c.streamBufferBytes,
      tcpIdleTimeoutMs: c.tcpIdleTimeoutMs,
      udpIdleTimeoutMs: c.udpIdleTimeoutMs,
      onItem: (it) => this.onItem(it),
      ...(c.packetSummaries ? { onPacket: (p: PacketSummary) => this.onPacket(p) } : {}),
    });
    this.pipeline = pipeline;
    this.loops.push(this.items.drain((b) => this.publishBatch(b), { batchSize: 512, onError: (e) => this.log.error(`publish failed: ${(e as Error).message}`) }));
    this.loops.push(this.packets.drain((b) => this.publishBatch(b), { batchSize: 64, onError: (e) => this.log.error(`publish failed: ${(e as Error).message}`) }));
    this.batchTimer = setInterval(() => this.flushPacketBatch(), c.packetBatchIntervalMs);
    this.batchTimer.unref();
    this.status = new StatusPublisher(nc, SERVICE, c.replicaId, () => this.buildStatus());
    this.status.start(c.statusIntervalMs);

    if (c.capturePcap) {
      this.log.info(`replaying ${c.capturePcap} at speed ${c.replaySpeed}`);
      this.replayDone = readCaptureFile(c.capturePcap, (f) => pipeline.onFrame(f), { speed: replaySpeed(c.replaySpeed) })
        .then((summary) => {
          pipeline.end();
          this.flushPacketBatch();
          this.log.info(`replayed ${summary.frames} frames, ${pipeline.itemsOut} items`);
        }, (err: Error) => {
          // Items decoded before the error were delivered; the rest of the file is unusable.
          pipeline.end();
          this.flushPacketBatch();
          this.replayError = err;
          this.log.error(`replay of ${c.capturePcap} stopped: ${err.message}`);
        });
    } else {
      const live = new LiveCapture({ device: c.captureInterface, filter: c.captureFilter, bufferBytes: c.captureBufferMb * 1024 * 1024 });
      live.start((f) => pipeline.onFrame(f));
      this.live = live;
      // A quiet link still needs its timeouts to run.
      this.tickTimer = setInterval(() => pipeline.tick(performance.timeOrigin + performance.now()), 1_000);
      this.tickTimer.unref();
      this.log.info(`capturing on ${c.captureInterface}${c.captureFilter ? ` (filter: ${c.captureFilter})` : ''}`);
    }
  }

  private onItem(it: CapturedItem): void {
    const payload = encodeMessage(Item, Item.fromPartial({
      id: it.id, node: this.config.nodeName, protocol: it.protocol, timestampMs: it.timestampMs,
      json: Buffer.from(JSON.stringify(it.item), 'utf8'),
    }));
    this.items.push({ subject: itemsSubject(this.config.nodeName, it.protocol), payload });
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
    if (this.packets.push({ subject: packetsSubject(this.config.nodeName), payload: encodeMessage(PacketBatch, msg) })) {
      this.droppedSinceBatch = 0;
    } else {
      this.packetsDropped += packets.length;
      this.droppedSinceBatch += packets.length;
    }
  }

  private async publishBatch(batch: readonly Outgoing[]): Promise<void> {
    const nc = this.nc!;
    for (const m of batch) nc.publish(m.subject, m.payload);
    this.published += batch.length;
    // Waits for the server to have it all: the queue, not the client's buffer, absorbs a slow NATS.
    await nc.flush();
  }

  private counters(): Record<string, number> {
    const p = this.pipeline?.stats() ?? {};
    return {
      ...p,
      items_dropped: this.items.dropped,
      items_queued: this.items.size,
      items_published: this.published,
      packets_dropped: this.packetsDropped,
      packet_batches: this.sequence,
      live_packets: this.live?.packets ?? 0,
      kernel_drops: this.live?.kernelStats()?.drops ?? 0,
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
    h.addReadiness({ name: 'nats', check: () => (this.natsConnected ? null : 'not connected to NATS') });
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
    this.live?.stop();
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.batchTimer) clearInterval(this.batchTimer);
    if (this.live) this.pipeline?.end();
    this.flushPacketBatch();
    this.items.close();
    this.packets.close();
    const deadline = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), this.config.drainTimeoutMs).unref());
    if ((await Promise.race([Promise.all(this.loops).then(() => 'done' as const), deadline])) === 'timeout') {
      const left = this.items.clear() + this.packets.clear();
      this.log.warn(`drain timeout: ${left} queued messages dropped`);
    }
    this.status?.stop();
    this.status?.publish();
    if (this.nc) await drainAndClose(this.nc, this.config.drainTimeoutMs);
    await this.health?.stop();
    this.log.info(`stopped: ${this.pipeline?.frames ?? 0} packets, ${this.pipeline?.itemsOut ?? 0} items, ${this.items.dropped} items dropped`);
  }
}
