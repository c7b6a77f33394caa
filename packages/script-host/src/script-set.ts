/**
 * Follows the active script set in the JetStream KV bucket (written by
 * config-sync) and swaps it into the engine. A replica that starts later gets
 * the current value first. A value that cannot be decoded is reported and the
 * last good set stays active.
 */
import type { KV, KvWatchEntry } from '@wirescript/nats';
import { SCRIPTS_KV_KEY, ScriptSet, decodeMessage } from '@wirescript/proto';
import type { LoadReport, ScriptEngine } from '@wirescript/engine';

export interface ScriptSetWatcherEvents {
  /** A set was applied (revision, what loaded, what was rejected). */
  applied?(revision: number, report: LoadReport): void;
  /** A KV value could not be decoded or applied; the previous set stays. */
  failed?(err: Error): void;
}

export class ScriptSetWatcher {
  revision = 0;
  private stopped = false;
  private iter: { stop(): void } | null = null;
  private readonly done: Promise<void>;
  private resolveDone!: () => void;

  private readonly kv: KV;
  private readonly engine: ScriptEngine;
  private readonly events: ScriptSetWatcherEvents;

  constructor(kv: KV, engine: ScriptEngine, events: ScriptSetWatcherEvents = {}) {
    this.kv = kv;
    this.engine = engine;
    this.events = events;
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  /** Starts watching; resolves once the current value (if any) has been applied. */
  async start(): Promise<void> {
    const iter = await this.kv.watch({ key: SCRIPTS_KV_KEY });
    this.iter = iter;
    let markInitial: () => void = () => {};
    const initial = new Promise<void>((r) => (markInitial = r));
    // The watcher yields the current value, then updates; an empty bucket yields nothing.
    const status = await this.kv.get(SCRIPTS_KV_KEY).catch(() => null);
    if (!status || status.operation !== 'PUT') markInitial();
    void (async () => {
      try {
        for await (const e of iter) {
          if (this.stopped) break;
          this.apply(e);
          markInitial();
        }
      } catch (err) {
        if (!this.stopped) this.events.failed?.(new Error(`script set watch ended: ${(err as Error).message}`, { cause: err }));
      } finally {
        markInitial();
        this.resolveDone();
      }
    })();
    await initial;
  }

  private apply(e: KvWatchEntry): void {
    try {
      if (e.operation !== 'PUT') {
        const report = this.engine.load({ scripts: [], env: {} });
        this.revision = 0;
        this.events.applied?.(0, report);
        return;
      }
      const set = decodeMessage(ScriptSet, e.value, 'wirescript.v1.ScriptSet');
      const report = this.engine.load({
        scripts: set.scripts.map((s) => ({ index: s.index, title: s.title, code: s.code, active: s.active })),
        env: set.env,
      });
      this.revision = set.revision;
      this.events.applied?.(set.revision, report);
    } catch (err) {
      this.events.failed?.(new Error(`script set (KV revision ${e.revision}) not applied, keeping the last good set: ${(err as Error).message}`, { cause: err }));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.iter?.stop();
    await this.done;
  }
}
