/**
 * The hub: one replica running the scripts in hub mode (`utils.nodeName()`
 * is "hub").
 *
 * - Hub actions come from the JetStream stream through a durable consumer
 *   (actions.ts): a hub restart loses none, each is acknowledged after
 *   onHubAction ran (at-least-once).
 * - The hub's own `hub.action` calls are published on ws.hub.actions like a
 *   runner's and come back through the stream: onHubAction runs for them
 *   later, never re-entrantly inside the calling hook.
 * - Jobs, console lines, job events, job control and status work exactly as
 *   in the script-runner (packages/script-host), as service "hub", node "hub".
 * - Pods (optional, POD_WATCH): watched through the Kubernetes API; every
 *   change is published on ws.pods.<namespace> (the runners' onPodEvent),
 *   runs the hub's own onPodEvent, and updates the IP -> pod map (KV
 *   ws_pods) that capture reads.
 */
import type { Meter } from '@opentelemetry/api';
import { ScriptEngine, limitsFromConfig } from '@wirescript/engine';
import { kubeConfigFrom, watchResource, type KubeConfig, type ResourceWatcher } from '@wirescript/kube';
import {
  BoundedQueue, drainAndClose, openKv, publishWithTrace, type NatsConnection, type Subscription,
} from '@wirescript/nats';
import { PodMapWriter } from '@wirescript/pod-map';
import { HUB_NODE_NAME, PodEvent, SCRIPTS_KV_BUCKET, encodeMessage, podsSubject } from '@wirescript/proto';
import {
  HealthServer, NatsEngineOutput, ScriptSetWatcher, StatusPublisher, connectServiceNats, createLogger, serveJobControl, type Logger, type ServiceNats,
} from '@wirescript/script-host';
import { ActionConsumer } from './actions.ts';
import type { HubConfig } from './config.ts';
import { PodTracker, type Pod, type PodChange } from './pods.ts';

export const SERVICE = 'hub';

export interface HubDeps {
  log?: Logger;
  /** Record a span per hub action, child of the publisher's trace. */
  tracing?: boolean;
  meter?: Meter;
}

export interface HubCounters {
  podEventsPublished: number;
  /** Pod events the hub's own scripts did not get (queue full). */
  podEventsDropped: number;
  podEventsDispatched: number;
  podEventPublishErrors: number;
}

const yieldNow = () => new Promise<void>((r) => setImmediate(r));

/** Whether to watch pods, and with which Kubernetes configuration. */
export function podWatchPlan(c: HubConfig): { watch: false; why: string } | { watch: true; load: () => KubeConfig; source: string } {
  const explicit = c.kubeconfig !== undefined && c.kubeconfig.trim() !== '';
  const inCluster = c.kubernetesServiceHost !== undefined && c.kubernetesServiceHost !== '';
  if (c.podWatch === 'off') return { watch: false, why: 'POD_WATCH=off' };
  if (c.podWatch === 'auto' && !explicit && !inCluster) {
    return { watch: false, why: 'no Kubernetes configured (not in a cluster: KUBERNETES_SERVICE_HOST unset; KUBECONFIG unset)' };
  }
  const env = { KUBERNETES_SERVICE_HOST: c.kubernetesServiceHost, KUBERNETES_SERVICE_PORT: c.kubernetesServicePort, KUBECONFIG: c.kubeconfig };
  if (explicit) {
    const given = c.kubeconfig!;
    // One file or YAML text goes as is; a path list is merged as kubectl does.
    const single = given.includes('\n') || !given.includes(':');
    return {
      watch: true,
      source: single && !given.includes('\n') ? `KUBECONFIG ${given}` : 'KUBECONFIG',
      load: () => (single ? kubeConfigFrom({ kubeconfig: given, env }) : kubeConfigFrom({ inCluster: false, env })),
    };
  }
  // POD_WATCH=on without KUBECONFIG: the in-cluster service account (then ~/.kube/config).
  return { watch: true, source: inCluster ? 'the in-cluster service account' : 'the default kubeconfig', load: () => kubeConfigFrom({ env }) };
}

export class Hub {
  readonly config: HubConfig;
  readonly counters: HubCounters = { podEventsPublished: 0, podEventsDropped: 0, podEventsDispatched: 0, podEventPublishErrors: 0 };
  private readonly log: Logger;
  private readonly tracing: boolean;
  private readonly meter: Meter | undefined;
  private nc: NatsConnection | null = null;
  private engine: ScriptEngine | null = null;
  private output: NatsEngineOutput | null = null;
  private watcher: ScriptSetWatcher | null = null;
  private status: StatusPublisher | null = null;
  private actions: ActionConsumer | null = null;
  private readonly subs: Subscription[] = [];
  private readonly podQueue: BoundedQueue<PodChange>;
  private podLoop: Promise<void> | null = null;
  private readonly tracker: PodTracker;
  private podWatchers: ResourceWatcher[] = [];
  private podMap: PodMapWriter | null = null;
  private podsSynced = false;
  private podWatchOn = false;
  private readonly startedAtMs = Date.now();
  private stopping: Promise<void> | null = null;
  private health: HealthServer | null = null;
  private bus: ServiceNats | null = null;
  private scriptSetApplied = false;
  private lastPodBatchAt = Date.now();
  /** Bound port of the health endpoints (0 when off). */
  healthPort = 0;

  constructor(config: HubConfig, deps: HubDeps = {}) {
    this.config = config;
    this.log = deps.log ?? createLogger(SERVICE, config.logLevel);
    this.tracing = deps.tracing ?? false;
    this.meter = deps.meter;
    this.podQueue = new BoundedQueue<PodChange>(config.podEventQueueCapacity);
    this.tracker = new PodTracker((c) => this.onPodChange(c));
  }

  get scriptEngine(): ScriptEngine {
    if (!this.engine) throw new Error('hub not started');
    return this.engine;
  }

  get revision(): number {
    return this.watcher?.revision ?? 0;
  }

  get actionCounters() {
    return this.actions?.counters;
  }

  /** The pod watch is on and every watched scope has been listed once. */
  get podWatchSynced(): boolean {
    return this.podsSynced;
  }

  get podWatchEnabled(): boolean {
    return this.podWatchOn;
  }

  get podMapWriter(): PodMapWriter | null {
    return this.podMap;
  }

  get podTracker(): PodTracker {
    return this.tracker;
  }

  async start(): Promise<void> {
    const c = this.config;
    const id = { service: SERVICE as typeof SERVICE, node: HUB_NODE_NAME, replica: c.replicaId };
    // Decide about Kubernetes first. POD_WATCH=on or an explicit KUBECONFIG that
    // cannot be loaded is a startup error; with POD_WATCH=auto, an in-cluster
    // config that cannot be loaded (no service account token mounted) turns
    // the pod watch off, loudly.
    let plan = podWatchPlan(c);
    let kc: KubeConfig | null = null;
    if (plan.watch) {
      try {
        kc = plan.load();
      } catch (err) {
        const explicit = c.kubeconfig !== undefined && c.kubeconfig.trim() !== '';
        if (c.podWatch === 'on' || explicit) throw err;
        this.log.error(`cannot load the in-cluster Kubernetes config: ${(err as Error).message}`);
        plan = { watch: false, why: 'POD_WATCH=auto and the Kubernetes config did not load' };
      }
    }
    if (c.healthPort > 0) await this.startHealth();
    this.bus = await connectServiceNats({
      url: c.natsUrl,
      name: `${SERVICE}/${c.replicaId}`,
      log: this.log,
    });
    const nc = this.bus.nc;
    this.nc = nc;
    const output = new NatsEngineOutput(nc, { ...id, logRateLimit: c.logRateLimit });
    this.output = output;
    const engine = await ScriptEngine.create({
      nodeName: HUB_NODE_NAME,
      mode: 'hub',
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
    // Scripts first, so the first actions and pod events reach them.
    await this.watcher.start();
    this.scriptSetApplied = true;
    this.subs.push(serveJobControl(nc, engine, id));

    this.actions = new ActionConsumer(nc, engine, {
      maxInFlight: c.actionMaxInFlight, ackWaitMs: c.actionAckWaitMs, maxDeliver: c.actionMaxDeliver,
      tracing: this.tracing, log: this.log,
    });
    await this.actions.start();

    this.podLoop = this.podQueue.drain((batch) => this.dispatchPodEvents(batch), {
      batchSize: 64, onError: (e) => this.log.error(`pod event batch failed: ${(e as Error).message}`),
    });
    if (plan.watch && kc) await this.startPodWatch(kc, plan.source);
    else if (!plan.watch) this.log.info(`pod watch off: ${plan.why}; running hub actions and jobs only`);

    this.status = StatusPublisher.forEngine(nc, {
      ...id, startedAtMs: this.startedAtMs, engine, revision: () => this.revision, counters: () => this.statusCounters(),
    });
    this.status.start(c.statusIntervalMs, () => {
      output.announceDrops();
      void this.actions?.refreshBacklog();
    });
    this.registerMetrics();
    await nc.flush();
    this.log.info(`started: replica ${c.replicaId}, hub actions from ${HUB_ACTIONS_DESC}${this.podWatchOn ? `, pods of ${c.podNamespaces.length > 0 ? c.podNamespaces.join(',') : 'every namespace'}` : ''}`);
  }

  private async startPodWatch(kc: KubeConfig, source: string): Promise<void> {
    const c = this.config;
    this.podWatchOn = true;
    if (c.podMap) {
      this.podMap = await PodMapWriter.open(this.nc!, { log: (l) => this.log.warn(l) });
    }
    const scopes: (string | undefined)[] = c.podNamespaces.length > 0 ? [...c.podNamespaces] : [undefined];
    for (const ns of scopes) {
      const path = ns === undefined ? '/api/v1/pods' : `/api/v1/namespaces/${encodeURIComponent(ns)}/pods`;
      let errors = 0;
      this.podWatchers.push(watchResource<Pod & { metadata?: { resourceVersion?: string } }>(kc, {
        path,
        backoff: { maxMs: c.podWatchBackoffMaxMs },
        onSync: (items) => this.tracker.sync(ns, items.map(asPod)),
        onEvent: (e) => this.tracker.event(e.type, asPod(e.object)),
        onError: (err) => {
          errors++;
          if (errors <= 10 || errors % 100 === 0) this.log.warn(`pod watch ${path}: ${err.message}`);
        },
      }));
    }
    this.log.info(`watching pods (${scopes.map((s) => s ?? 'all namespaces').join(', ')}) with ${source}`);
    // Not awaited: the hub serves actions and jobs while the API server is unreachable; readiness says so.
    void Promise.all(this.podWatchers.map((w) => w.synced)).then(() => {
      this.podsSynced = true;
      // The pod list is complete: keys of pods that went away while no hub watched can go.
      this.podMap?.reconcile();
      this.log.info(`pod watch synced: ${this.tracker.size} pods`);
    }, () => {});
  }

  private onPodChange(ch: PodChange): void {
    const pod = ch.pod;
    const ns = pod.metadata?.namespace ?? '';
    const name = pod.metadata?.name ?? '';
    // 1. Every runner (and external consumers): published now, in order.
    try {
      publishWithTrace(this.nc!, podsSubject(ns), encodeMessage(PodEvent, PodEvent.fromPartial({
        event: ch.type, namespace: ns, name, podJson: Buffer.from(JSON.stringify(pod), 'utf8'), timestampMs: Date.now(),
      })));
      this.counters.podEventsPublished++;
    } catch {
      this.counters.podEventPublishErrors++;
    }
    // 2. The IP -> pod map: claims updated now, written to KV in the background.
    if (this.podMap) {
      if (ch.type === 'DELETED') this.podMap.remove(ns, name);
      else this.podMap.upsert(pod);
    }
    // 3. The hub's own onPodEvent, through a bounded queue (scripts may be slow; a re-list can bring thousands).
    if (!this.podQueue.push(ch)) this.counters.podEventsDropped++;
  }

  private async dispatchPodEvents(batch: readonly PodChange[]): Promise<void> {
    const engine = this.scriptEngine;
    for (const ch of batch) {
      engine.podEvent(ch.type, ch.pod);
      this.counters.podEventsDispatched++;
    }
    this.lastPodBatchAt = Date.now();
    await yieldNow();
  }

  private async startHealth(): Promise<void> {
    const c = this.config;
    const h = new HealthServer();
    h.addLiveness({
      name: 'actions',
      check: () => {
        const a = this.actions;
        if (!a || a.fetched === 0) return null;
        const limit = Math.max(120_000, c.actionMaxInFlight * c.hookTimeoutMs * 2);
        const idle = Date.now() - a.lastProgressAt;
        return idle > limit ? `${a.fetched} hub actions fetched, none handled for ${idle} ms` : null;
      },
    });
    h.addLiveness({
      name: 'pod-events',
      check: () => {
        const idle = Date.now() - this.lastPodBatchAt;
        return this.podQueue.size > 0 && idle > Math.max(120_000, 64 * c.hookTimeoutMs * 2) ? `${this.podQueue.size} pod events waiting, no batch finished for ${idle} ms` : null;
      },
    });
    h.addReadiness({ name: 'nats', check: () => (this.bus?.connected ? null : 'not connected to NATS') });
    h.addReadiness({ name: 'scripts', check: () => (this.scriptSetApplied ? null : 'script set not loaded yet') });
    h.addReadiness({ name: 'actions', check: () => (this.actions?.ready ? null : 'not consuming hub actions') });
    h.addReadiness({ name: 'pods', check: () => (!this.podWatchOn || this.podsSynced ? null : 'pod list not loaded yet (Kubernetes API unreachable?)') });
    this.healthPort = await h.start(c.healthHost, c.healthPort);
    this.health = h;
  }

  statusCounters(): Record<string, number> {
    const a = this.actions?.counters;
    const o = this.output?.counters;
    const t = this.tracker.counters;
    const w = this.podWatchers.reduce(
      (s, x) => ({ lists: s.lists + x.stats.lists, reconnects: s.reconnects + x.stats.reconnects, gone: s.gone + x.stats.gone410, errors: s.errors + x.stats.errors, events: s.events + x.stats.events }),
      { lists: 0, reconnects: 0, gone: 0, errors: 0, events: 0 },
    );
    const m = this.podMap;
    return {
      hub_actions_received: a?.received ?? 0, hub_actions_processed: a?.processed ?? 0, hub_actions_invalid: a?.invalid ?? 0,
      hub_actions_redelivered: a?.redelivered ?? 0, hub_actions_duplicates_skipped: a?.duplicatesSkipped ?? 0,
      hub_actions_failed: a?.failed ?? 0, hub_actions_abandoned: a?.abandoned ?? 0, hub_actions_backlog: this.actions?.backlog ?? 0,
      hub_actions_consumer_recreated: a?.consumerRecreated ?? 0,
      pod_watch: this.podWatchOn ? 1 : 0, pod_watch_synced: this.podsSynced ? 1 : 0, pods_known: this.tracker.size,
      pod_watch_lists: w.lists, pod_watch_events: w.events, pod_watch_reconnects: w.reconnects, pod_watch_gone: w.gone, pod_watch_errors: w.errors,
      pod_events: t.changes, pod_events_reconciled_deleted: t.reconciledDeletes, pod_events_reconciled_updated: t.reconciledUpdates,
      pod_events_published: this.counters.podEventsPublished, pod_events_publish_errors: this.counters.podEventPublishErrors,
      pod_events_dropped: this.counters.podEventsDropped, pod_events_dispatched: this.counters.podEventsDispatched,
      pod_events_queued: this.podQueue.size,
      pod_map_ips: m?.ips ?? 0, pod_map_puts: m?.stats.puts ?? 0, pod_map_deletes: m?.stats.deletes ?? 0,
      pod_map_errors: m?.stats.errors ?? 0, pod_map_pending: m?.pending ?? 0, pod_map_ip_conflicts: m?.stats.conflicts ?? 0,
      hub_actions_sent: o?.hubActionsSent ?? 0, logs_dropped: o?.logsDropped ?? 0, console_lines: o?.consoleLines ?? 0,
      publish_errors: o?.publishErrors ?? 0,
    };
  }

  private registerMetrics(): void {
    const m = this.meter;
    if (!m) return;
    const attrs = { 'wirescript.node': HUB_NODE_NAME };
    m.createObservableCounter('wirescript.hub.actions.processed', { description: 'Hub actions run through onHubAction' })
      .addCallback((r) => r.observe(this.actions?.counters.processed ?? 0, attrs));
    m.createObservableCounter('wirescript.hub.actions.invalid', { description: 'Hub actions that were not valid (acknowledged and dropped)' })
      .addCallback((r) => r.observe(this.actions?.counters.invalid ?? 0, attrs));
    m.createObservableGauge('wirescript.hub.actions.backlog', { description: 'Hub actions waiting in the stream or unacknowledged' })
      .addCallback((r) => r.observe(this.actions?.backlog ?? 0, attrs));
    m.createObservableCounter('wirescript.pods.events', { description: 'Pod events published' })
      .addCallback((r) => r.observe(this.counters.podEventsPublished, attrs));
    m.createObservableCounter('wirescript.pods.events.dropped', { description: "Pod events the hub's scripts missed (queue full)" })
      .addCallback((r) => r.observe(this.counters.podEventsDropped, attrs));
    m.createObservableCounter('wirescript.hook.calls', { description: 'Hook calls into scripts' })
      .addCallback((r) => r.observe(this.engine?.stats().hookCalls ?? 0, attrs));
    m.createObservableCounter('wirescript.hook.errors', { description: 'Hook calls that threw, timed out or ran out of memory' })
      .addCallback((r) => r.observe(this.engine?.stats().hookErrors ?? 0, attrs));
  }

  /**
   * Stops taking work (pod watch, action pulls), runs what was fetched,
   * publishes a final status, flushes the pod map and drains NATS. Safe to
   * call twice.
   */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const t = this.config.drainTimeoutMs;
    await Promise.all(this.podWatchers.map((w) => w.stop().catch(() => {})));
    for (const s of this.subs) s.unsubscribe();
    const actionsDone = this.actions ? await this.actions.stop(t) : true;
    if (!actionsDone) this.log.warn('drain timeout: fetched hub actions left unacknowledged (the stream redelivers them)');
    this.podQueue.close();
    const deadline = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), t).unref());
    if (this.podLoop && (await Promise.race([this.podLoop.then(() => 'done' as const), deadline])) === 'timeout') {
      const left = this.podQueue.clear();
      this.counters.podEventsDropped += left;
      this.log.warn(`drain timeout: ${left} queued pod events dropped`);
    }
    await this.podMap?.stop(Math.min(t, 5_000));
    await this.watcher?.stop();
    this.status?.stop();
    this.output?.announceDrops();
    this.status?.publish();
    this.engine?.close();
    if (this.nc) await drainAndClose(this.nc, t);
    await this.health?.stop();
    this.log.info(`stopped: ${this.actions?.counters.processed ?? 0} hub actions processed, ${this.counters.podEventsPublished} pod events published`);
  }
}

const HUB_ACTIONS_DESC = 'stream WS_HUB_ACTIONS (durable consumer hub)';

/** List items come without kind/apiVersion (as from a real API server); events carry them. Consumers get both. */
function asPod(o: Pod): Pod {
  return (o as { kind?: string }).kind === undefined ? { apiVersion: 'v1', kind: 'Pod', ...o } : o;
}
