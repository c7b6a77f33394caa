/**
 * config-sync: follows a script source (ConfigMap + Secret, or a folder),
 * validates every script and writes the active set and its env to the
 * JetStream KV bucket `ws_scripts` (key `active`), which every script-runner
 * and the hub watch. A new KV revision is written only when the scripts or
 * the env actually change, with a monotonic ScriptSet.revision. Broken input
 * (invalid JSON, an unreadable folder) keeps the last good part and is
 * reported; env values are never logged or published anywhere but the bucket.
 */
import type { Meter } from '@opentelemetry/api';
import { drainAndClose, openKv, type KV, type NatsConnection } from '@wirescript/nats';
import { ReplicaStatus, SCRIPTS_KV_BUCKET, SCRIPTS_KV_KEY, ScriptSet, decodeMessage, encodeMessage } from '@wirescript/proto';
import { HealthServer, StatusPublisher, connectServiceNats, createLogger, type Logger, type ServiceNats } from '@wirescript/script-host';
import type { ConfigSyncConfig } from './config.ts';
import { ScriptSetWriteError, ScriptsJsonError } from './errors.ts';
import { describeDiagnostic, evaluateScripts, sameEnv, sameScripts, type ScriptDiagnostic, type SetScript } from './evaluate.ts';
import type { ScriptSource, SourceSnapshot } from './sources.ts';

export const SERVICE = 'config-sync';

/** Values kept per key in the bucket (the runner opens it with the same). */
const KV_HISTORY = 5;

export interface ConfigSyncDeps {
  source: ScriptSource;
  log?: Logger;
  meter?: Meter;
}

export interface ConfigSyncCounters {
  /** Times the source was read and the set rebuilt. */
  syncs: number;
  /** New KV revisions written. */
  kvWrites: number;
  kvWriteErrors: number;
  /** SCRIPTING_SCRIPTS that were not valid JSON (the last good set stayed). */
  jsonErrors: number;
  /** SCRIPTING_ENV that was not a JSON object (the last good env stayed). */
  envErrors: number;
  /** Other source failures (folder missing or unreadable). */
  sourceErrors: number;
  /** The KV value was changed or deleted by someone else and written again. */
  kvRestores: number;
}

/** The set as last written (or found in the bucket at start). */
interface Current {
  revision: number;
  scripts: SetScript[];
  env: Record<string, string>;
}

function summarizeChanges(before: readonly SetScript[], after: readonly SetScript[]): string {
  const b = new Map(before.map((s) => [s.title, s]));
  const a = new Map(after.map((s) => [s.title, s]));
  const parts: string[] = [];
  for (const [t, s] of a) {
    const old = b.get(t);
    if (!old) parts.push(`+"${t}"${s.active ? '' : ' (inactive)'}`);
    else if (old.code !== s.code || old.index !== s.index) parts.push(`~"${t}"`);
    if (old && old.active !== s.active) parts.push(`${s.active ? 'activated' : 'deactivated'} "${t}"`);
  }
  for (const t of b.keys()) if (!a.has(t)) parts.push(`-"${t}"`);
  return parts.join(', ');
}

export class ConfigSync {
  readonly config: ConfigSyncConfig;
  readonly counters: ConfigSyncCounters = { syncs: 0, kvWrites: 0, kvWriteErrors: 0, jsonErrors: 0, envErrors: 0, sourceErrors: 0, kvRestores: 0 };
  /** Bound port of the health endpoints (0 when off). */
  healthPort = 0;
  /** Resolves once the first sync from the source has been written (or found already in the bucket). */
  readonly firstSync: Promise<void>;

  private readonly source: ScriptSource;
  private readonly log: Logger;
  private readonly meter: Meter | undefined;
  private readonly startedAtMs = Date.now();
  private nc: NatsConnection | null = null;
  private kv: KV | null = null;
  private kvWatch: { stop(): void } | null = null;
  private status: StatusPublisher | null = null;
  private health: HealthServer | null = null;
  private bus: ServiceNats | null = null;
  private current: Current = { revision: 0, scripts: [], env: {} };
  /** KV sequence of the value we know is in the bucket (0: none). */
  private kvRevision = 0;
  /** The set being written right now. */
  private inflight: Current | null = null;
  private diagnostics: ScriptDiagnostic[] = [];
  /** Last error of the source (scripts or env part), for logs dedup and readiness. */
  private lastProblems = new Map<string, string>();
  private firstSyncDone = false;
  private markFirstSync!: () => void;
  private debounceTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private dirty = false;
  private sourceReady = false;
  private stopped = false;
  private started = false;
  private stopping: Promise<void> | null = null;

  constructor(config: ConfigSyncConfig, deps: ConfigSyncDeps) {
    this.config = config;
    this.source = deps.source;
    this.log = deps.log ?? createLogger(SERVICE, config.logLevel);
    this.meter = deps.meter;
    this.firstSync = new Promise((r) => (this.markFirstSync = r));
  }

  /** ScriptSet.revision currently in the bucket (as far as we know). */
  get revision(): number {
    return this.current.revision;
  }

  /** Validity of every script of the last good evaluation. */
  get scriptDiagnostics(): readonly ScriptDiagnostic[] {
    return this.diagnostics;
  }

  /** Connects, reads the bucket, starts following the source. On failure what was started is stopped again. */
  async start(): Promise<void> {
    try {
      await this.doStart();
    } catch (err) {
      await this.stop().catch(() => {});
      throw err;
    }
  }

  private async doStart(): Promise<void> {
    const c = this.config;
    await this.source.preflight();
    if (c.healthPort > 0) await this.startHealth();
    this.bus = await connectServiceNats({
      url: c.natsUrl,
      name: `${SERVICE}/${c.replicaId}`,
      log: this.log,
      onReconnect: () => this.schedule(0) /* a write may have failed while we were away */,
    });
    const nc = this.bus.nc;
    this.nc = nc;
    const kv = await openKv(nc, SCRIPTS_KV_BUCKET, { create: true, history: KV_HISTORY });
    this.kv = kv;
    await this.readCurrent();
    await this.watchKv();

    this.status = new StatusPublisher(nc, SERVICE, c.replicaId, () => this.buildStatus());
    this.status.start(c.statusIntervalMs);
    this.registerMetrics();

    await this.source.start(() => this.schedule());
    void this.source.ready.then(() => {
      this.sourceReady = true;
      this.schedule(0);
    });
    this.started = true;
    this.log.info(`started: ${this.source.description} -> KV ${SCRIPTS_KV_BUCKET}/${SCRIPTS_KV_KEY} (revision ${this.current.revision} there now)`);
  }

  private async startHealth(): Promise<void> {
    const c = this.config;
    const h = new HealthServer();
    h.addReadiness({ name: 'nats', check: () => (this.bus?.connected ? null : 'not connected to NATS') });
    h.addReadiness({
      name: 'sync',
      check: () => (this.firstSyncDone ? null : `first sync from ${this.source.description} not done yet${this.source.pending() ? ` (${this.source.pending()})` : ''}`),
    });
    this.healthPort = await h.start(c.healthHost, c.healthPort);
    this.health = h;
  }

  /** Reads the set already in the bucket: its revision goes on from there, and an unchanged source writes nothing. */
  private async readCurrent(): Promise<void> {
    const e = await this.kv!.get(SCRIPTS_KV_KEY);
    if (!e || e.operation !== 'PUT') {
      this.kvRevision = e?.revision ?? 0;
      return;
    }
    this.kvRevision = e.revision;
    try {
      const set = decodeMessage(ScriptSet, e.value, 'wirescript.v1.ScriptSet');
      this.current = { revision: set.revision, scripts: set.scripts.map((s) => ({ index: s.index, title: s.title, code: s.code, active: s.active })), env: { ...set.env } };
    } catch (err) {
      this.log.warn(`the script set in the bucket cannot be decoded (${(err as Error).message}); it will be replaced`);
      this.current = { revision: 0, scripts: [], env: {} };
    }
  }

  /**
   * Watches our own key: if the value is deleted or replaced by someone else
   * (an operator, a lost NATS volume), the source's set is written again.
   */
  private async watchKv(): Promise<void> {
    const iter = await this.kv!.watch({ key: SCRIPTS_KV_KEY });
    this.kvWatch = iter;
    void (async () => {
      try {
        for await (const e of iter) {
          if (this.stopped) break;
          if (e.revision <= this.kvRevision) continue;
          this.kvRevision = e.revision;
          if (e.operation === 'PUT') {
            try {
              const set = decodeMessage(ScriptSet, e.value, 'wirescript.v1.ScriptSet');
              // Our own write (the watch may deliver it before kv.update() returns).
              const ours = [this.current, this.inflight].some((c) => c !== null && c.revision === set.revision && sameScripts(set.scripts, c.scripts) && sameEnv(set.env, c.env));
              if (ours) continue;
              this.current = { revision: Math.max(set.revision, this.current.revision), scripts: set.scripts.map((s) => ({ index: s.index, title: s.title, code: s.code, active: s.active })), env: { ...set.env } };
            } catch {
              this.current = { ...this.current, scripts: [], env: {} };
            }
          } else {
            this.current = { ...this.current, scripts: [], env: {} };
          }
          if (!this.firstSyncDone) continue;
          this.counters.kvRestores++;
          this.log.warn(`the script set in KV ${SCRIPTS_KV_BUCKET}/${SCRIPTS_KV_KEY} was ${e.operation === 'PUT' ? 'replaced' : 'deleted'} outside config-sync; writing the source's set again`);
          this.schedule(0);
        }
      } catch (err) {
        if (!this.stopped) this.log.warn(`watch of KV ${SCRIPTS_KV_BUCKET}/${SCRIPTS_KV_KEY} ended: ${(err as Error).message}`);
      }
    })();
  }

  /** Runs a sync after the debounce; a sync already running runs once more when it ends. */
  schedule(delayMs = this.config.syncDebounceMs): void {
    if (this.stopped) return;
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = null;
      this.kick();
    }, delayMs);
  }

  private kick(): void {
    if (this.stopped || !this.sourceReady) return;
    if (this.running) {
      this.dirty = true;
      return;
    }
    this.running = (async () => {
      try {
        do {
          this.dirty = false;
          await this.syncOnce();
        } while (this.dirty && !this.stopped);
      } finally {
        this.running = null;
      }
    })();
  }

  /** Reads the source, validates, and writes a new revision when the set or the env changed. */
  private async syncOnce(): Promise<void> {
    let snap: SourceSnapshot;
    try {
      snap = await this.source.snapshot();
    } catch (err) {
      this.counters.sourceErrors++;
      this.problem('source', `cannot read ${this.source.description}: ${(err as Error).message}; keeping the last good set`);
      return;
    }
    this.counters.syncs++;
    const cur = this.current;

    let scripts = cur.scripts;
    if (snap.scripts.ok) {
      this.clearProblem('scripts');
      const ev = evaluateScripts(snap.scripts.scripts, snap.scripts.problems, cur.scripts, this.config.maxScriptBytes);
      this.reportDiagnostics(ev.diagnostics);
      this.diagnostics = ev.diagnostics;
      scripts = ev.scripts;
      if (snap.scripts.note) this.problem('scripts-note', snap.scripts.note, 'info');
      else this.clearProblem('scripts-note');
    } else {
      if (snap.scripts.error instanceof ScriptsJsonError) this.counters.jsonErrors++;
      else this.counters.sourceErrors++;
      this.problem('scripts', `${this.source.description}: ${snap.scripts.error.message}; keeping the last good set (revision ${cur.revision})`);
    }

    let env = cur.env;
    if (snap.env.ok) {
      this.clearProblem('env');
      env = snap.env.env;
      if (snap.env.note) this.problem('env-note', snap.env.note, 'info');
      else this.clearProblem('env-note');
    } else {
      this.counters.envErrors++;
      // EnvJsonError messages never quote the content.
      this.problem('env', `${this.source.description}: ${snap.env.error.message}; keeping the last good env`);
    }

    const unchanged = sameScripts(scripts, cur.scripts) && sameEnv(env, cur.env) && (this.kvRevision > 0 || this.firstSyncDone);
    if (!unchanged) {
      const ok = await this.write({ revision: cur.revision + 1, scripts, env }, cur);
      if (!ok) return;
    } else {
      this.log.debug(`no change (revision ${cur.revision})`);
    }
    if (!this.firstSyncDone) {
      this.firstSyncDone = true;
      this.markFirstSync();
    }
  }

  private async write(next: Current, before: Current): Promise<boolean> {
    const kv = this.kv!;
    const set = ScriptSet.fromPartial({
      revision: next.revision,
      scripts: next.scripts,
      env: next.env,
      source: this.source.description,
      updatedAtMs: Date.now(),
    });
    this.inflight = next;
    try {
      let seq: number;
      try {
        // Compare-and-set on the bucket sequence we know: a concurrent writer is noticed, not overwritten blindly.
        seq = this.kvRevision === 0 ? await kv.create(SCRIPTS_KV_KEY, encodeMessage(ScriptSet, set)) : await kv.update(SCRIPTS_KV_KEY, encodeMessage(ScriptSet, set), this.kvRevision);
      } catch (err) {
        // Someone else wrote: re-read, and go on from the higher revision.
        await this.readCurrent();
        const rev = Math.max(this.current.revision, before.revision) + 1;
        set.revision = rev;
        next.revision = rev;
        seq = await kv.put(SCRIPTS_KV_KEY, encodeMessage(ScriptSet, set));
        this.log.debug(`KV compare-and-set failed (${(err as Error).message}); wrote over revision ${this.current.revision}`);
      }
      this.kvRevision = Math.max(this.kvRevision, seq);
      this.current = next;
      this.counters.kvWrites++;
      this.clearProblem('write');
      const active = next.scripts.filter((s) => s.active).length;
      const invalid = this.diagnostics.filter((d) => !d.valid).length;
      const changes = summarizeChanges(before.scripts, next.scripts);
      const envNote = sameEnv(before.env, next.env) ? '' : `, env changed (${Object.keys(next.env).length} key${Object.keys(next.env).length === 1 ? "" : "s"})`;
      const n = next.scripts.length;
      this.log.info(`wrote revision ${next.revision} from ${this.source.description}: ${n} script${n === 1 ? '' : 's'}, ${active} active, ${invalid} invalid${changes ? `; ${changes}` : ''}${envNote}`);
      return true;
    } catch (err) {
      this.counters.kvWriteErrors++;
      const e = new ScriptSetWriteError(`cannot write the script set to KV ${SCRIPTS_KV_BUCKET}: ${(err as Error).message}`, { cause: err });
      this.problem('write', `${e.message}; retrying`);
      if (!this.stopped && !this.retryTimer) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          this.schedule(0);
        }, 1000);
      }
      return false;
    } finally {
      this.inflight = null;
    }
  }

  /** Logs each invalid script once per distinct problem (not on every sync). */
  private reportDiagnostics(next: readonly ScriptDiagnostic[]): void {
    const seen = new Map(this.diagnostics.map((d) => [`${d.index}\u0000${d.title}`, describeDiagnostic(d)]));
    for (const d of next) {
      if (d.valid) continue;
      const text = describeDiagnostic(d);
      if (seen.get(`${d.index}\u0000${d.title}`) === text) continue;
      this.log.warn(`invalid script "${d.title}" (index ${d.index}) at ${text}; ${d.keptPrevious ? 'its previous version stays active' : 'not activated'}`);
    }
  }

  private problem(key: string, message: string, level: 'info' | 'warn' | 'error' = 'warn'): void {
    if (this.lastProblems.get(key) === message) return;
    this.lastProblems.set(key, message);
    this.log[level](message);
  }

  private clearProblem(key: string): void {
    const was = this.lastProblems.get(key);
    if (was === undefined) return;
    this.lastProblems.delete(key);
    if (!key.endsWith('-note')) this.log.info(`${key === 'write' ? 'KV writes' : key === 'env' ? 'script env' : 'scripts source'} back to normal`);
  }

  statusCounters(): Record<string, number> {
    const k = this.counters;
    const d = this.diagnostics;
    return {
      syncs: k.syncs,
      kv_writes: k.kvWrites,
      kv_write_errors: k.kvWriteErrors,
      kv_restores: k.kvRestores,
      json_errors: k.jsonErrors,
      env_errors: k.envErrors,
      source_errors: k.sourceErrors,
      scripts_total: d.length,
      scripts_active: this.current.scripts.filter((s) => s.active).length,
      scripts_invalid: d.filter((x) => !x.valid).length,
      env_keys: Object.keys(this.current.env).length,
      ...this.source.counters(),
    };
  }

  buildStatus(): ReplicaStatus {
    const c = this.config;
    return ReplicaStatus.fromPartial({
      service: SERVICE,
      node: c.nodeName,
      replica: c.replicaId,
      startedAtMs: this.startedAtMs,
      timestampMs: Date.now(),
      scriptSetRevision: this.current.revision,
      // The validity of every script of the last good evaluation (kept while the source is broken).
      scripts: this.diagnostics.map((d) => ({
        index: d.index, title: d.title, hookCalls: 0, errors: d.valid ? 0 : 1, paused: false,
        lastError: d.valid ? '' : describeDiagnostic(d), pausedUntilMs: 0,
      })),
      counters: this.statusCounters(),
    });
  }

  private registerMetrics(): void {
    const m = this.meter;
    if (!m) return;
    m.createObservableCounter('wirescript.config_sync.syncs', { description: 'Times the script source was read and the set rebuilt' })
      .addCallback((r) => r.observe(this.counters.syncs));
    m.createObservableCounter('wirescript.config_sync.kv_writes', { description: 'Script set revisions written to the KV bucket' })
      .addCallback((r) => r.observe(this.counters.kvWrites));
    m.createObservableCounter('wirescript.config_sync.errors', { description: 'Source errors (invalid JSON, unreadable folder) and failed KV writes' })
      .addCallback((r) => r.observe(this.counters.jsonErrors + this.counters.envErrors + this.counters.sourceErrors + this.counters.kvWriteErrors));
    m.createObservableGauge('wirescript.config_sync.scripts_invalid', { description: 'Scripts rejected by validation' })
      .addCallback((r) => r.observe(this.diagnostics.filter((d) => !d.valid).length));
  }

  /** Stops following the source, finishes a sync in progress, publishes a last status, drains NATS. Safe to call twice. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.stopped = true;
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.source.stop().catch((err: Error) => this.log.warn(`stopping the source: ${err.message}`));
    if (this.running) {
      const deadline = new Promise<void>((r) => setTimeout(r, this.config.drainTimeoutMs).unref());
      await Promise.race([this.running, deadline]);
    }
    this.kvWatch?.stop();
    this.status?.stop();
    this.status?.publish();
    if (this.nc) await drainAndClose(this.nc, this.config.drainTimeoutMs);
    await this.health?.stop();
    if (this.started) this.log.info(`stopped at revision ${this.current.revision} (${this.counters.kvWrites} writes)`);
  }
}
