/**
 * The script-runner: takes items and packet summaries from NATS (queue group:
 * N replicas share the load), runs them through the scripts, publishes what
 * the scripts produce. The NATS callbacks only enqueue; a bounded queue sits
 * between them and the (synchronous) engine, so a slow script never blocks
 * the connection: overflow is dropped and counted.
 */
import { context, trace, type Context, type Link, type Meter } from '@opentelemetry/api';
import { ScriptEngine, limitsFromConfig, type PacketInfo } from '@wirescript/engine';
import {
  BoundedQueue, drainAndClose, ensureStream, openKv, type Msg, type NatsConnection, type Subscription,
} from '@wirescript/nats';
import {
  HUB_ACTIONS_STREAM, HUB_ACTIONS_SUBJECT, Item, PacketBatch, PodEvent, SCRIPTS_KV_BUCKET, decodeMessage,
} from '@wirescript/proto';
import {
  HealthServer, NatsEngineOutput, ScriptSetWatcher, StatusPublisher, connectServiceNats, createLogger, serveJobControl, type Logger, type ServiceNats,
} from '@wirescript/script-host';
import { extractContext } from '@wirescript/telemetry';
import type { RunnerConfig } from './config.ts';

export const SERVICE = 'script-runner';

export interface RunnerDeps {
  log?: Logger;
  /** Record spans per dispatched batch, linked to the publishers' traces. */
  tracing?: boolean;
  meter?: Meter;
}

export interface RunnerCounters {
  itemsReceived: number;
  itemsProcessed: number;
  itemsDropped: number;
  itemsInvalid: number;
  packetsReceived: number;
  packetsDropped: number;
  packetBatchesLost: number;
  podEvents: number;
  podEventsInvalid: number;
}

const POD_EVENTS = new Set(['ADDED', 'MODIFIED', 'DELETED']);

/** Yields to the event loop so the NATS client can read its socket between batches. */
const yieldNow = () => new Promise<void>((r) => setImmediate(r));

export class ScriptRunner {
  readonly config: RunnerConfig;
  readonly counters: RunnerCounters = {
    itemsReceived: 0, itemsProcessed: 0, itemsDropped: 0, itemsInvalid: 0, packetsReceived: 0, packetsDropped: 0,
    packetBatchesLost: 0, podEvents: 0, podEventsInvalid: 0,
  };
  private readonly log: Logger;
  private readonly tracing: boolean;
  private readonly meter: Meter | undefined;
  private nc: NatsConnection | null = null;
  private engine: ScriptEngine | null = null;
  private output: NatsEngineOutput | null = null;
  private watcher: ScriptSetWatcher | null = null;
  private status: StatusPublisher | null = null;
  private readonly subs: Subscription[] = [];
  private readonly items: BoundedQueue<Msg>;
  private readonly packets: BoundedQueue<Msg>;
  private readonly loops: Promise<void>[] = [];
  private readonly packetSeq = new Map<string, number>();
  private readonly startedAtMs = Date.now();
  private stopping: Promise<void> | null = null;
  private health: HealthServer | null = null;
  private bus: ServiceNats | null = null;
  private scriptSetApplied = false;
  /** When the item loop last finished a batch; with items waiting, a long silence means it is wedged. */
  private lastBatchAt = Date.now();
  /** Bound port of the health endpoints (0 when off). */
  healthPort = 0;

  constructor(config: RunnerConfig, deps: RunnerDeps = {}) {
    this.config = config;
    this.log = deps.log ?? createLogger(SERVICE, config.logLevel);
    this.tracing = deps.tracing ?? false;
    this.meter = deps.meter;
    this.items = new BoundedQueue<Msg>(config.itemQueueCapacity);
    this.packets = new BoundedQueue<Msg>(config.packetQueueCapacity);
  }

  get scriptEngine(): ScriptEngine {
    if (!this.engine) throw new Error('script-runner not started');
    return this.engine;
  }

  get revision(): number {
    return this.watcher?.revision ?? 0;
  }

  async start(): Promise<void> {
    const c = this.config;
    const id = { service: SERVICE as typeof SERVICE, node: c.nodeName, replica: c.replicaId };
    if (c.healthPort > 0) await this.startHealth();
    this.bus = await connectServiceNats({
      url: c.natsUrl,
      name: `${SERVICE}/${c.replicaId}`,
      log: this.log,
    });
    const nc = this.bus.nc;
    this.nc = nc;
    // Hub actions must survive a hub restart: make sure the stream exists before any is sent.
    await ensureStream(nc, { name: HUB_ACTIONS_STREAM, subjects: [HUB_ACTIONS_SUBJECT], maxAge: 24 * 3600_000 });
    const output = new NatsEngineOutput(nc, { ...id, logRateLimit: c.logRateLimit });
    this.output = output;
    const engine = await ScriptEngine.create({
      nodeName: c.nodeName,
      mode: 'worker',
      output,
      batchSize: c.dispatchBatchSize,
      limits: limitsFromConfig(c),
    });
    this.engine = engine;
    const kv = await openKv(nc, SCRIPTS_KV_BUCKET, { create: true, history: 5 });
    this.watcher = new ScriptSetWatcher(kv, engine, {
      applied: (rev, report) => this.log.info(`script set revision ${rev}: ${report.loaded.length} loaded (${report.loaded.filter((l) => l.kept).length} kept), ${report.rejected.length} rejected${report.rebuilt ? ', VM rebuilt' : ''}`),
      failed: (err) => this.log.error(err.message),
    });
    await this.watcher.start();
    this.scriptSetApplied = true;

    this.subs.push(nc.subscribe(c.itemsSubject, {
      queue: c.queueGroup,
      callback: (err, msg) => {
        if (err) return;
        this.counters.itemsReceived++;
        if (!this.items.push(msg)) this.counters.itemsDropped++;
      },
    }));
    this.subs.push(nc.subscribe(c.packetsSubject, {
      queue: c.queueGroup,
      callback: (err, msg) => {
        if (err) return;
        if (!this.packets.push(msg)) this.counters.packetsDropped++;
      },
    }));
    this.subs.push(nc.subscribe(c.podsSubject, { callback: (err, msg) => { if (!err) this.onPodEvent(msg); } }));
    this.subs.push(serveJobControl(nc, engine, id));

    this.loops.push(this.items.drain((batch) => this.onItems(batch), { batchSize: c.dispatchBatchSize, onError: (e) => this.log.error(`item batch failed: ${(e as Error).message}`) }));
    this.loops.push(this.packets.drain((batch) => this.onPackets(batch), { batchSize: 16, onError: (e) => this.log.error(`packet batch failed: ${(e as Error).message}`) }));

    this.status = StatusPublisher.forEngine(nc, {
      ...id, startedAtMs: this.startedAtMs, engine, revision: () => this.revision, counters: () => this.statusCounters(),
    });
    this.status.start(c.statusIntervalMs, () => output.announceDrops());
    this.registerMetrics();
    // The server has our subscriptions once this returns: nothing published after start() is missed.
    await nc.flush();
    this.log.info(`started: node ${c.nodeName}, replica ${c.replicaId}, items from ${c.itemsSubject} (queue group ${c.queueGroup})`);
  }

  private async startHealth(): Promise<void> {
    const c = this.config;
    const h = new HealthServer();
    h.addLiveness({
      name: 'dispatch',
      // A batch can legitimately take batch size x hook timeout; beyond that (and 2 min) the loop is wedged.
      check: () => {
        const limit = Math.max(120_000, c.dispatchBatchSize * c.hookTimeoutMs * 2);
        const idle = Date.now() - this.lastBatchAt;
        return this.items.size > 0 && idle > limit ? `${this.items.size} items waiting, no batch finished for ${idle} ms` : null;
      },
    });
    h.addReadiness({ name: 'nats', check: () => (this.bus?.connected ? null : 'not connected to NATS') });
    h.addReadiness({ name: 'scripts', check: () => (this.scriptSetApplied ? null : 'script set not loaded yet') });
    this.healthPort = await h.start(c.healthHost, c.healthPort);
    this.health = h;
  }

  statusCounters(): Record<string, number> {
    const k = this.counters;
    const o = this.output?.counters;
    return {
      items_received: k.itemsReceived, items_processed: k.itemsProcessed, items_dropped: k.itemsDropped,
      items_invalid_envelope: k.itemsInvalid, items_queued: this.items.size,
      packets_received: k.packetsReceived, packets_dropped: k.packetsDropped, packet_batches_lost: k.packetBatchesLost,
      pod_events: k.podEvents, pod_events_invalid: k.podEventsInvalid,
      hub_actions_sent: o?.hubActionsSent ?? 0, logs_dropped: o?.logsDropped ?? 0, console_lines: o?.consoleLines ?? 0,
      publish_errors: o?.publishErrors ?? 0,
    };
  }

  private async onItems(batch: readonly Msg[]): Promise<void> {
    const engine = this.scriptEngine;
    const jsons: string[] = [];
    for (const msg of batch) {
      try {
        const item = decodeMessage(Item, msg.data, 'wirescript.v1.Item');
        jsons.push(Buffer.from(item.json.buffer, item.json.byteOffset, item.json.byteLength).toString('utf8'));
      } catch (err) {
        this.counters.itemsInvalid++;
        if (this.counters.itemsInvalid <= 10 || this.counters.itemsInvalid % 1000 === 0) {
          this.log.warn(`invalid item on ${msg.subject} (${this.counters.itemsInvalid} so far): ${(err as Error).message}`);
        }
      }
    }
    this.withBatchSpan('onItemCaptured', batch, () => engine.dispatchItems(jsons));
    this.counters.itemsProcessed += jsons.length;
    this.lastBatchAt = Date.now();
    await yieldNow();
  }

  private async onPackets(batch: readonly Msg[]): Promise<void> {
    const infos: PacketInfo[] = [];
    for (const msg of batch) {
      try {
        const b = decodeMessage(PacketBatch, msg.data, 'wirescript.v1.PacketBatch');
        const last = this.packetSeq.get(b.node);
        // Sequence gaps are batches lost between capture and us (or taken by another replica).
        if (last !== undefined && b.sequence > last + 1 && this.config.queueGroup === '') this.counters.packetBatchesLost += b.sequence - last - 1;
        this.packetSeq.set(b.node, b.sequence);
        for (const p of b.packets) {
          infos.push({ timestamp: p.timestampMs, captureLength: p.captureLength, length: p.length, truncated: p.truncated, fragmented: p.fragmented });
        }
      } catch (err) {
        this.log.warn(`invalid packet batch on ${msg.subject}: ${(err as Error).message}`);
      }
    }
    this.counters.packetsReceived += infos.length;
    this.withBatchSpan('onPacketCaptured', batch, () => this.scriptEngine.dispatchPackets(infos));
    await yieldNow();
  }

  private onPodEvent(msg: Msg): void {
    try {
      const ev = decodeMessage(PodEvent, msg.data, 'wirescript.v1.PodEvent');
      if (!POD_EVENTS.has(ev.event)) throw new Error(`event must be ADDED, MODIFIED or DELETED, got "${ev.event}"`);
      const pod: unknown = JSON.parse(Buffer.from(ev.podJson).toString('utf8'));
      this.counters.podEvents++;
      this.withBatchSpan('onPodEvent', [msg], () => this.scriptEngine.podEvent(ev.event as 'ADDED', pod));
    } catch (err) {
      this.counters.podEventsInvalid++;
      this.log.warn(`invalid pod event on ${msg.subject}: ${(err as Error).message}`);
    }
  }

  /** One span per dispatched batch, child of the first traced message and linked to the rest. */
  private withBatchSpan(name: string, msgs: readonly Msg[], fn: () => void): void {
    if (!this.tracing) {
      fn();
      return;
    }
    let parent: Context | undefined;
    const links: Link[] = [];
    for (const m of msgs) {
      if (!m.headers) continue;
      const ctx = extractContext(m.headers);
      const sc = trace.getSpanContext(ctx);
      if (!sc) continue;
      parent ??= ctx;
      if (links.length < 32) links.push({ context: sc });
    }
    const tracer = trace.getTracer('wirescript/script-runner');
    const span = tracer.startSpan(`${name} batch`, { links, attributes: { 'wirescript.batch.size': msgs.length } }, parent ?? context.active());
    try {
      context.with(trace.setSpan(parent ?? context.active(), span), fn);
    } finally {
      span.end();
    }
  }

  private registerMetrics(): void {
    const m = this.meter;
    if (!m) return;
    const attrs = { 'wirescript.node': this.config.nodeName };
    // Observable instruments: read on collection, nothing on the hot path.
    m.createObservableCounter('wirescript.items.received', { description: 'Items received from NATS' })
      .addCallback((r) => r.observe(this.counters.itemsReceived, attrs));
    m.createObservableCounter('wirescript.items.dropped', { description: 'Items dropped (queue overflow)' })
      .addCallback((r) => r.observe(this.counters.itemsDropped, attrs));
    m.createObservableCounter('wirescript.items.processed', { description: 'Items run through the scripts' })
      .addCallback((r) => r.observe(this.counters.itemsProcessed, attrs));
    m.createObservableCounter('wirescript.hook.calls', { description: 'Hook calls into scripts' })
      .addCallback((r) => r.observe(this.engine?.stats().hookCalls ?? 0, attrs));
    m.createObservableCounter('wirescript.hook.errors', { description: 'Hook calls that threw, timed out or ran out of memory' })
      .addCallback((r) => r.observe(this.engine?.stats().hookErrors ?? 0, attrs));
    m.createObservableGauge('wirescript.hook.latency.p99', { description: 'p99 hook call latency since start', unit: 'us' })
      .addCallback((r) => r.observe(this.engine?.stats().latencyUs.p99 ?? 0, attrs));
  }

  /**
   * Stops taking work, finishes queued items, publishes a final status and
   * drains the connection. Safe to call twice.
   */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    for (const s of this.subs) s.unsubscribe();
    this.items.close();
    this.packets.close();
    const deadline = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), this.config.drainTimeoutMs).unref());
    const finished = await Promise.race([Promise.all(this.loops).then(() => 'done' as const), deadline]);
    if (finished === 'timeout') {
      const left = this.items.clear() + this.packets.clear();
      this.counters.itemsDropped += left;
      this.log.warn(`drain timeout: ${left} queued messages dropped`);
    }
    await this.watcher?.stop();
    this.status?.stop();
    this.output?.announceDrops();
    this.status?.publish();
    this.engine?.close();
    if (this.nc) await drainAndClose(this.nc, this.config.drainTimeoutMs);
    await this.health?.stop();
    this.log.info(`stopped: ${this.counters.itemsProcessed} items processed, ${this.counters.itemsDropped} dropped`);
  }
}
