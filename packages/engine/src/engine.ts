/**
 * The script engine: where an item becomes hook calls. It validates and
 * loads a script set into one shared QuickJS VM, dispatches hooks in batches,
 * enforces the limits, reports faults with the script's title and line, keeps
 * per-script statistics, pauses scripts that exhaust their failure budget,
 * runs cron jobs, and hot-reloads the script set.
 *
 * Hot reload keeps state: a script whose title and code are unchanged keeps
 * its variables and jobs; new or changed scripts start fresh; removed scripts
 * lose their hooks and jobs. A change of env rebuilds the VM (every script
 * starts fresh), as does a VM that became unusable.
 */
import { EngineConfigError, ScriptValidationError, SandboxError } from './errors.ts';
import { BUILTIN_HELPERS } from './helpers/index.ts';
import type { HelperHost, HelperModule } from './helpers/types.ts';
import { JobScheduler } from './jobs/scheduler.ts';
import { NULL_OUTPUT, type EngineOutput } from './output.ts';
import { loadQuickJS } from './sandbox/quickjs.ts';
import type { QuickJSWASMModule } from 'quickjs-emscripten-core';
import { GuestVm, MODE, type DispatchMode, type GuestFault } from './sandbox/vm.ts';
import { analyzeScript, unionFields, type ItemFields } from './script/analyze.ts';
import { HOOK_NAMES, type HookName } from './script/hooks.ts';
import { projectJsonText } from './script/json-projection.ts';
import { compileProjection, project, type ProjectionTree } from './script/projection.ts';
import { DEFAULT_MAX_SCRIPT_BYTES, parseScript } from './script/validate.ts';
import { DEFAULT_FAILURE_POLICY, FailureBudget, type FailurePolicy } from './stats/failure-budget.ts';
import { LatencyHistogram } from './stats/histogram.ts';

export interface EngineLimits {
  /** Wall-time budget of one hook call, ms. */
  hookTimeoutMs: number;
  /** Wall-time budget of one job run and of a script's top level at load, ms. */
  jobTimeoutMs: number;
  /** Heap limit of the VM all scripts share, bytes. */
  memoryLimitBytes: number;
  /** Guest stack limit, bytes (at most 384 KiB: deeper guest stacks overflow the host's). */
  maxStackBytes: number;
  /** Largest accepted script source, bytes. */
  maxScriptBytes: number;
}

export const DEFAULT_LIMITS: EngineLimits = {
  hookTimeoutMs: 200,
  jobTimeoutMs: 5_000,
  memoryLimitBytes: 128 * 1024 * 1024,
  maxStackBytes: 256 * 1024,
  maxScriptBytes: DEFAULT_MAX_SCRIPT_BYTES,
};

export const MAX_STACK_BYTES = 384 * 1024;

export interface EngineOptions {
  /** What utils.nodeName() returns ("hub" on the hub). */
  nodeName: string;
  mode?: 'worker' | 'hub';
  output?: EngineOutput;
  limits?: Partial<EngineLimits>;
  failurePolicy?: Partial<FailurePolicy>;
  /** Helper modules; defaults to the built-in ones. */
  helpers?: readonly HelperModule[];
  /** Items per host->guest crossing. */
  batchSize?: number;
  /** Clock for pauses and timestamps (tests). */
  now?: () => number;
}

/** One script of a script set (Kubeshark's SCRIPTING_SCRIPTS entry). */
export interface ScriptSpec {
  index: number;
  /** Defaults to the first comment, else fileName, else `script-<index>`. */
  title?: string;
  code: string;
  active?: boolean;
  fileName?: string;
}

export interface ScriptSetSpec {
  scripts: readonly ScriptSpec[];
  env?: Readonly<Record<string, string>>;
}

export interface ScriptProblem {
  index: number;
  title: string;
  line: number;
  column: number;
  message: string;
}

export interface LoadReport {
  loaded: { index: number; title: string; hooks: HookName[]; kept: boolean }[];
  rejected: ScriptProblem[];
  /** The VM was rebuilt from scratch (first load, env change, or a broken VM). */
  rebuilt: boolean;
}

/** An item as JSON text, or an already-parsed object. */
export type ItemInput = string | Record<string, unknown>;

/** onPacketCaptured's info. */
export interface PacketInfo {
  timestamp: number;
  captureLength: number;
  length: number;
  truncated: boolean;
  fragmented: boolean;
}

export interface ScriptStats {
  index: number;
  title: string;
  hooks: HookName[];
  hookCalls: number;
  errors: number;
  timeouts: number;
  memoryFaults: number;
  paused: boolean;
  pausedUntilMs: number;
  lastError: string;
}

export interface EngineStats {
  scriptsLoaded: number;
  itemsDispatched: number;
  itemsInvalid: number;
  packetsDispatched: number;
  hookCalls: number;
  hookErrors: number;
  timeouts: number;
  memoryFaults: number;
  skippedPaused: number;
  vmRebuilds: number;
  jobRuns: number;
  jobFailures: number;
  /** Projection mode of onItemCaptured: the paths handed to the VM, or "all". */
  itemFields: string[] | 'all';
  scripts: ScriptStats[];
  latencyUs: { p50: number; p90: number; p99: number; max: number; count: number };
}

interface LoadedScript {
  slot: number;
  index: number;
  title: string;
  code: string;
  hooks: Set<HookName>;
  fields: ItemFields;
  budget: FailureBudget;
  stats: ScriptStats;
}

const SCRIPT_FILE = /script-(\d+)\.js:(\d+)(?::(\d+))?/;
/** Characters of the wrapper before the script's first line: `(function(){`. */
const WRAPPER_PREFIX = '(function(){';

function wrapScript(code: string, hooks: readonly HookName[]): string {
  const ret = hooks.map((h) => `${h}: typeof ${h} === 'function' ? ${h} : undefined`).join(', ');
  return `${WRAPPER_PREFIX}${code}\n;return {${ret}};})`;
}

function resolveLimits(l: Partial<EngineLimits> | undefined): EngineLimits {
  const limits = { ...DEFAULT_LIMITS, ...l };
  const positive = (k: keyof EngineLimits) => {
    if (!(Number.isFinite(limits[k]) && limits[k] > 0)) throw new EngineConfigError(`${k} must be a positive number, got ${limits[k]}`);
  };
  for (const k of Object.keys(DEFAULT_LIMITS) as (keyof EngineLimits)[]) positive(k);
  if (limits.maxStackBytes > MAX_STACK_BYTES) throw new EngineConfigError(`maxStackBytes must be at most ${MAX_STACK_BYTES}, got ${limits.maxStackBytes}`);
  if (limits.memoryLimitBytes < 4 * 1024 * 1024) throw new EngineConfigError(`memoryLimitBytes must be at least 4 MiB, got ${limits.memoryLimitBytes}`);
  return limits;
}

export class ScriptEngine {
  readonly nodeName: string;
  readonly mode: 'worker' | 'hub';
  readonly limits: EngineLimits;
  private readonly output: EngineOutput;
  private readonly policy: FailurePolicy;
  private readonly helpers: readonly HelperModule[];
  private readonly batchSize: number;
  private readonly now: () => number;
  readonly jobs: JobScheduler;
  private vm: GuestVm | null = null;
  private mod: QuickJSWASMModule | null = null;
  private env: Readonly<Record<string, string>> = {};
  private readonly bySlot = new Map<number, LoadedScript>();
  private ordered: LoadedScript[] = [];
  private nextSlot = 1;
  private loads = 0;
  private projection: ProjectionTree | null = null;
  private itemFields: ItemFields = { kind: 'paths', paths: [] };
  private pausedCount = 0;
  private nextResumeAt = Infinity;
  private closed = false;
  private readonly latency = new LatencyHistogram();
  private readonly counters = {
    itemsDispatched: 0, itemsInvalid: 0, packetsDispatched: 0, hookCalls: 0, hookErrors: 0, timeouts: 0,
    memoryFaults: 0, skippedPaused: 0, vmRebuilds: 0, jobRuns: 0, jobFailures: 0,
  };

  private constructor(opts: EngineOptions) {
    if (typeof opts.nodeName !== 'string' || opts.nodeName === '') throw new EngineConfigError('nodeName must be a non-empty string');
    this.nodeName = opts.nodeName;
    this.mode = opts.mode ?? (opts.nodeName === 'hub' ? 'hub' : 'worker');
    this.output = opts.output ?? NULL_OUTPUT;
    this.limits = resolveLimits(opts.limits);
    this.policy = { ...DEFAULT_FAILURE_POLICY, ...opts.failurePolicy };
    this.helpers = opts.helpers ?? BUILTIN_HELPERS;
    this.batchSize = opts.batchSize ?? 256;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) throw new EngineConfigError(`batchSize must be a whole number >= 1, got ${opts.batchSize}`);
    this.now = opts.now ?? Date.now;
    this.jobs = new JobScheduler({
      fire: (tag) => this.runJob(tag),
      dropFromVm: (tag) => this.vm?.dropJob(tag),
      script: (slot) => this.scriptOf(slot),
      emit: (e) => this.output.job(e),
    });
  }

  /** Creates an engine with an empty script set. */
  static async create(opts: EngineOptions): Promise<ScriptEngine> {
    const engine = new ScriptEngine(opts);
    engine.mod = await loadQuickJS();
    engine.vm = engine.newVm({});
    return engine;
  }

  private newVm(env: Readonly<Record<string, string>>): GuestVm {
    const host: HelperHost = {
      nodeName: this.nodeName,
      mode: this.mode,
      output: this.output,
      script: (slot) => this.scriptOf(slot),
      jobs: this.jobs,
    };
    return GuestVm.create(this.mod!, {
      memoryLimitBytes: this.limits.memoryLimitBytes,
      maxStackBytes: this.limits.maxStackBytes,
      helpers: this.helpers,
      helperHost: host,
      config: { nodeName: this.nodeName, env, hooks: HOOK_NAMES },
    });
  }

  private scriptOf(slot: number): { title: string; index: number } | undefined {
    const s = this.bySlot.get(slot);
    return s ? { title: s.title, index: s.index } : undefined;
  }

  private requireVm(): GuestVm {
    if (this.closed) throw new SandboxError('the engine is closed');
    if (!this.vm) throw new SandboxError('the engine has no VM');
    return this.vm;
  }

  // ---------------------------------------------------------------- loading

  /**
   * Validates every active script and swaps the set in. Invalid scripts are
   * reported and skipped; the others load. Never throws for script problems.
   */
  load(set: ScriptSetSpec): LoadReport {
    if (this.closed) throw new SandboxError('the engine is closed');
    const env = { ...(set.env ?? {}) };
    for (const [k, v] of Object.entries(env)) {
      if (typeof v !== 'string') throw new EngineConfigError(`env ${k} must be a string`);
    }
    const report: LoadReport = { loaded: [], rejected: [], rebuilt: false };
    const specs = [...set.scripts].filter((s) => s.active !== false).sort((a, b) => a.index - b.index);

    type Prepared = { spec: ScriptSpec; title: string; hooks: HookName[]; fields: ItemFields; wrapped: string };
    const prepared: Prepared[] = [];
    for (const spec of specs) {
      const fallback = spec.fileName ?? `script-${spec.index}`;
      try {
        const parsed = parseScript(spec.code, { fallbackTitle: fallback, maxBytes: this.limits.maxScriptBytes });
        const analysis = analyzeScript(parsed.ast);
        const title = spec.title && spec.title.trim() !== '' ? spec.title : parsed.title;
        prepared.push({ spec, title, hooks: analysis.hooks, fields: analysis.itemCapturedFields, wrapped: wrapScript(spec.code, analysis.hooks) });
      } catch (err) {
        if (!(err instanceof ScriptValidationError)) throw err;
        const title = spec.title && spec.title.trim() !== '' ? spec.title : err.title;
        const problem = { index: spec.index, title, line: err.line, column: err.column, message: err.message.replace(/^.*?:\d+:\d+: /, '') };
        report.rejected.push(problem);
        // The last good state is kept: a running script whose new version is invalid keeps running.
        const previous = this.ordered.find((s) => s.title === title);
        const keep = previous ? '; the previous version keeps running' : '';
        this.emitError(spec.index, title, `${title}:${problem.line}:${problem.column}: ${problem.message}${keep}`, 'load', problem.line, problem.column);
        if (previous) {
          const parsed = parseScript(previous.code, { fallbackTitle: title, maxBytes: Infinity });
          const analysis = analyzeScript(parsed.ast);
          prepared.push({ spec: { ...spec, code: previous.code }, title, hooks: analysis.hooks, fields: analysis.itemCapturedFields, wrapped: wrapScript(previous.code, analysis.hooks) });
        }
      }
    }

    const firstLoad = this.loads++ === 0;
    const rebuild = this.vm === null || this.vm.broken || !sameEnv(env, this.env);
    if (rebuild) {
      this.resetVmState();
      this.vm?.dispose();
      this.vm = null;
      this.vm = this.newVm(env);
      this.env = env;
      report.rebuilt = true;
    }
    if (firstLoad) report.rebuilt = true;
    const vm = this.requireVm();

    // Match unchanged scripts (same title and code) to keep their state.
    const pool = new Map<string, LoadedScript[]>();
    for (const s of this.ordered) {
      const key = `${s.title}\u0000${s.code}`;
      pool.set(key, [...(pool.get(key) ?? []), s]);
    }
    const next: LoadedScript[] = [];
    const fresh: Prepared[] = [];
    const keptSet = new Set<LoadedScript>();
    for (const p of prepared) {
      const same = pool.get(`${p.title}\u0000${p.spec.code}`)?.shift();
      if (same) {
        same.index = p.spec.index;
        same.stats.index = p.spec.index;
        keptSet.add(same);
        next.push(same);
      } else {
        fresh.push(p);
        next.push(null as unknown as LoadedScript); // placeholder, filled below
      }
    }
    for (const old of this.ordered) {
      if (!keptSet.has(old)) this.unloadScript(old);
    }
    const failedAtLoad = new Set<Prepared>();
    let f = 0;
    for (let i = 0; i < next.length; i++) {
      if (next[i] !== null) continue;
      const p = fresh[f++];
      const loaded = this.loadScript(vm, p.spec.index, p.title, p.spec.code, p.wrapped, p.hooks, p.fields, report);
      if (loaded === 'lost') {
        // Its top level left the VM unusable: start over in a fresh VM with the others.
        return this.restartLoad(p.title, prepared.filter((q) => q !== p && !failedAtLoad.has(q)).map((q) => q.spec), env, report);
      }
      if (loaded === null) failedAtLoad.add(p);
      next[i] = loaded as LoadedScript;
    }
    this.ordered = next.filter((s) => s !== null && s !== undefined);
    vm.setOrder(this.ordered.map((s) => s.slot));
    for (const s of this.ordered) {
      report.loaded.push({ index: s.index, title: s.title, hooks: [...s.hooks], kept: keptSet.has(s) });
    }
    this.recomputeProjection();
    return report;
  }

  /**
   * A script's top level broke the VM or filled its heap for good (through `this`):
   * rebuild the VM and load the given scripts (the set without it) there, fresh.
   */
  private restartLoad(culprit: string, scripts: ScriptSpec[], env: Record<string, string>, report: LoadReport): LoadReport {
    this.counters.vmRebuilds++;
    this.emitError(-1, '', `script VM became unusable while loading ${culprit}; rebuilt it and reloaded ${scripts.length} other scripts, their state is lost`, 'engine');
    this.resetVmState();
    this.vm?.dispose();
    this.vm = null;
    const again = this.load({ scripts, env });
    return { loaded: again.loaded, rejected: [...report.rejected, ...again.rejected], rebuilt: true };
  }

  /** The loaded script; null when its top level failed; 'lost' when that also left the VM unusable. */
  private loadScript(vm: GuestVm, index: number, title: string, code: string, wrapped: string, hooks: HookName[],
    fields: ItemFields, report: LoadReport): LoadedScript | null | 'lost' {
    const slot = this.nextSlot++;
    const s: LoadedScript = {
      slot, index, title, code, hooks: new Set(hooks), fields, budget: new FailureBudget(this.policy),
      stats: { index, title, hooks, hookCalls: 0, errors: 0, timeouts: 0, memoryFaults: 0, paused: false, pausedUntilMs: 0, lastError: '' },
    };
    // Registered before its top level runs, so helpers called there know their script.
    this.bySlot.set(slot, s);
    vm.budgetMs = this.limits.jobTimeoutMs;
    const r = vm.load(slot, wrapped, `script-${slot}.js`);
    if ('fault' in r) {
      this.reportFault(s, 'load', r.fault);
      this.jobs.removeBySlot(slot);
      this.bySlot.delete(slot);
      const where = this.location(r.fault, slot);
      report.rejected.push({ index, title, line: where.line ?? 1, column: where.column ?? 1, message: `${r.fault.name}: ${r.fault.message}` });
      if (vm.broken || (r.fault.kind === 'memory' && vm.memoryExhausted())) return 'lost';
      vm.unload(slot);
      return null;
    }
    // The VM knows best which hooks are functions after the top level ran.
    s.hooks = new Set(r.hooks.filter((h): h is HookName => (HOOK_NAMES as readonly string[]).includes(h)));
    s.stats.hooks = [...s.hooks];
    return s;
  }

  private unloadScript(s: LoadedScript): void {
    this.jobs.removeBySlot(s.slot);
    if (s.budget.paused) this.pausedCount--;
    this.vm?.unload(s.slot);
    this.bySlot.delete(s.slot);
  }

  private resetVmState(): void {
    // Every job belongs to a script of the VM being dropped (also those loaded by an unfinished load).
    this.jobs.removeAll();
    this.bySlot.clear();
    this.ordered = [];
    this.pausedCount = 0;
    this.nextResumeAt = Infinity;
  }

  private recomputeProjection(): void {
    const users = this.ordered.filter((s) => s.hooks.has('onItemCaptured'));
    this.itemFields = unionFields(users.map((s) => s.fields));
    this.projection = this.itemFields.kind === 'paths' ? compileProjection(this.itemFields.paths) : null;
  }

  /** Titles and hooks of the loaded scripts, in order. */
  scripts(): { index: number; title: string; hooks: HookName[] }[] {
    return this.ordered.map((s) => ({ index: s.index, title: s.title, hooks: [...s.hooks] }));
  }

  hasHook(hook: HookName): boolean {
    return this.ordered.some((s) => s.hooks.has(hook));
  }

  // ------------------------------------------------------------ dispatching

  /** onItemCaptured for each item, in every script that defines it, in script order. */
  dispatchItems(items: readonly ItemInput[]): void {
    if (items.length === 0) return;
    this.counters.itemsDispatched += items.length;
    if (!this.hasHook('onItemCaptured')) return;
    for (let start = 0; start < items.length; start += this.batchSize) {
      const end = Math.min(items.length, start + this.batchSize);
      this.dispatchItemBatch(items, start, end);
    }
  }

  private dispatchItemBatch(items: readonly ItemInput[], start: number, end: number): void {
    const parts: string[] = [];
    const projection = this.projection;
    for (let i = start; i < end; i++) {
      const it = items[i];
      if (projection !== null) {
        if (typeof it === 'string') {
          // Fast path: project straight from the text; malformed text takes the strict path below.
          const fast = projectJsonText(it, projection);
          if (fast !== null) {
            parts.push(fast);
            continue;
          }
        }
        let obj: unknown = it;
        if (typeof it === 'string') {
          try {
            obj = JSON.parse(it);
          } catch (err) {
            this.invalidItem(`item is not valid JSON: ${(err as Error).message}`);
            continue;
          }
        }
        if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
          this.invalidItem('item is not a JSON object');
          continue;
        }
        const text = this.serialize(project(obj as Record<string, unknown>, projection));
        if (text !== null) parts.push(text);
      } else if (typeof it === 'string') {
        parts.push(it);
      } else {
        const text = this.serialize(it);
        if (text !== null) parts.push(text);
      }
    }
    if (parts.length === 0) return;
    const r = this.run('onItemCaptured', MODE.items, `[${parts.join(',')}]`, parts.length);
    if (r === 'bad') {
      // Only raw JSON text can make the batch unparsable: find and drop the bad items.
      const good: string[] = [];
      for (const p of parts) {
        try {
          const v: unknown = JSON.parse(p);
          if (v === null || typeof v !== 'object' || Array.isArray(v)) this.invalidItem('item is not a JSON object');
          else good.push(p);
        } catch (err) {
          this.invalidItem(`item is not valid JSON: ${(err as Error).message}`);
        }
      }
      if (good.length > 0 && this.run('onItemCaptured', MODE.items, `[${good.join(',')}]`, good.length) === 'bad') {
        for (let i = 0; i < good.length; i++) this.invalidItem(`a batch of ${good.length} items could not be parsed in the VM (memory limit?)`);
      }
    }
  }

  /** An object item as JSON text, or null (counted and reported) when it cannot be (a cycle, a BigInt). */
  private serialize(item: unknown): string | null {
    try {
      const text = JSON.stringify(item);
      if (typeof text === 'string') return text;
    } catch (err) {
      this.invalidItem(`item cannot be serialised to JSON: ${(err as Error).message.split('\n')[0]}`);
      return null;
    }
    this.invalidItem('item is not a JSON object');
    return null;
  }

  private invalidItem(why: string): void {
    this.counters.itemsInvalid++;
    this.counters.itemsDispatched--;
    if (this.counters.itemsInvalid <= 10 || this.counters.itemsInvalid % 1000 === 0) {
      this.emitError(-1, '', `input: ${why} (${this.counters.itemsInvalid} invalid items so far)`, 'onItemCaptured');
    }
  }

  /** onPacketCaptured for each packet info. */
  dispatchPackets(infos: readonly PacketInfo[]): void {
    if (infos.length === 0) return;
    this.counters.packetsDispatched += infos.length;
    if (!this.hasHook('onPacketCaptured')) return;
    for (let start = 0; start < infos.length; start += this.batchSize) {
      const end = Math.min(infos.length, start + this.batchSize);
      const rows: string[] = [];
      for (let i = start; i < end; i++) {
        const p = infos[i];
        rows.push(`[${+p.timestamp || 0},${+p.captureLength || 0},${+p.length || 0},${p.truncated ? 1 : 0},${p.fragmented ? 1 : 0}]`);
      }
      this.run('onPacketCaptured', MODE.packets, `[${rows.join(',')}]`, rows.length);
    }
  }

  /** onItemQueried chain: each script may return a replacement; returns the final item. */
  itemQueried(item: Record<string, unknown>): Record<string, unknown> {
    if (!this.hasHook('onItemQueried')) return item;
    const r = this.run('onItemQueried', MODE.query, JSON.stringify([[item]]), 1);
    if (typeof r === 'string') {
      const v: unknown = JSON.parse(r);
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    }
    return item;
  }

  /** onPodEvent(event, pod) in every script that defines it. */
  podEvent(event: 'ADDED' | 'MODIFIED' | 'DELETED', pod: unknown): void {
    this.callHook('onPodEvent', [event, pod]);
  }

  /** onHubAction(action, object) in every script that defines it. */
  hubAction(action: string, object: unknown): void {
    this.callHook('onHubAction', [action, object]);
  }

  /** Calls a hook once with the given arguments (JSON-serialisable). */
  callHook(hook: HookName, args: readonly unknown[]): void {
    if (!this.hasHook(hook)) return;
    this.run(hook, MODE.args, JSON.stringify([args]), 1);
  }

  /**
   * Runs one guest dispatch and does the accounting: per-script calls and
   * faults, fault reports, failure budgets, latency.
   */
  private run(hook: HookName, mode: DispatchMode, json: string, n: number): 'bad' | string | undefined {
    const vm = this.requireVm();
    this.resumeDuePauses();
    const active = this.ordered.filter((s) => s.hooks.has(hook) && !s.budget.paused);
    const skipped = this.ordered.filter((s) => s.hooks.has(hook) && s.budget.paused).length;
    this.counters.skippedPaused += skipped * n;
    if (active.length === 0) return undefined;
    vm.budgetMs = this.limits.hookTimeoutMs;
    this.currentHookName = hook;
    const t0 = performance.now();
    let result;
    try {
      result = vm.dispatch(hook, mode, json, (f) => this.onAbort(f), n);
    } catch (err) {
      if (err instanceof SandboxError) {
        this.rebuildAfterLoss(hook, err);
        return undefined;
      }
      throw err;
    }
    const elapsedUs = (performance.now() - t0) * 1000;
    if (result.badBatch) return 'bad';
    const calls = active.length * n;
    this.counters.hookCalls += calls;
    this.latency.record(elapsedUs / calls, calls);
    const faultsBySlot = new Map<number, number>();
    for (const f of result.faults) {
      if (f.slot < 0) continue;
      faultsBySlot.set(f.slot, (faultsBySlot.get(f.slot) ?? 0) + 1);
      const s = this.bySlot.get(f.slot);
      if (s) {
        // Aborted calls were already reported by onAbort.
        if (!(f as GuestFault & { reported?: boolean }).reported) this.reportFault(s, hook, f);
      }
    }
    const now = this.now();
    for (const s of active) {
      const faults = faultsBySlot.get(s.slot) ?? 0;
      s.stats.hookCalls += n;
      const pause = s.budget.account(n, faults, now);
      if (pause > 0) this.pause(s, pause, `${faults} of its last calls failed`);
    }
    if (this.vm?.broken || result.faults.some((f) => f.kind === 'memory') && this.vm?.memoryExhausted()) {
      this.rebuildAfterLoss(hook);
    }
    return result.valueJson;
  }

  private onAbort(f: GuestFault): void {
    const s = this.bySlot.get(f.slot);
    (f as GuestFault & { reported?: boolean }).reported = true;
    if (!s) return;
    this.reportFault(s, this.currentHookName, f);
  }

  private currentHookName = '';

  private reportFault(s: LoadedScript, hook: string, f: GuestFault): void {
    this.counters.hookErrors++;
    s.stats.errors++;
    if (f.kind === 'timeout') { this.counters.timeouts++; s.stats.timeouts++; }
    if (f.kind === 'memory') { this.counters.memoryFaults++; s.stats.memoryFaults++; }
    const where = this.location(f, s.slot);
    const what = f.kind === 'timeout'
      ? `exceeded its ${this.vm?.budgetMs ?? this.limits.hookTimeoutMs} ms time budget and was stopped`
      : f.kind === 'memory' ? `ran out of memory (VM limit ${this.limits.memoryLimitBytes} bytes)`
      : `${f.name}: ${f.message}`;
    const text = `${s.title}${where.line ? `:${where.line}` : ''}: ${hook}: ${what}`;
    s.stats.lastError = text;
    this.emitError(s.index, s.title, text, hook, where.line, where.column);
    if (f.kind === 'timeout' || f.kind === 'memory' || f.kind === 'stack') {
      const pause = s.budget.expensive(this.now());
      if (pause > 0) this.pause(s, pause, `repeated ${f.kind} faults`);
    }
  }

  /** Line and column in the script's own source, from the guest stack. */
  private location(f: GuestFault, slot: number): { line?: number; column?: number } {
    const re = new RegExp(SCRIPT_FILE.source, 'g');
    for (const m of f.stack.matchAll(re)) {
      if (Number(m[1]) !== slot) continue;
      const line = Number(m[2]);
      let column = m[3] !== undefined ? Number(m[3]) : undefined;
      if (line === 1 && column !== undefined) column = Math.max(1, column - WRAPPER_PREFIX.length);
      return { line, column };
    }
    const m = /\((\d+):(\d+)\)|line (\d+)/.exec(f.message);
    if (m && f.name === 'SyntaxError') return { line: Number(m[1] ?? m[3]) };
    return {};
  }

  private pause(s: LoadedScript, ms: number, why: string): void {
    this.pausedCount++;
    s.stats.paused = true;
    s.stats.pausedUntilMs = s.budget.pausedUntil;
    this.nextResumeAt = Math.min(this.nextResumeAt, s.budget.pausedUntil);
    this.vm?.setPaused(s.slot, true);
    this.emitError(s.index, s.title, `${s.title}: paused for ${Math.round(ms / 1000)} s after ${why}; other scripts keep running`, 'engine');
  }

  private resumeDuePauses(): void {
    if (this.pausedCount === 0) return;
    const now = this.now();
    if (now < this.nextResumeAt) return;
    this.nextResumeAt = Infinity;
    for (const s of this.ordered) {
      if (s.budget.maybeResume(now)) {
        this.pausedCount--;
        s.stats.paused = false;
        s.stats.pausedUntilMs = 0;
        this.vm?.setPaused(s.slot, false);
        this.output.console({ scriptIndex: s.index, title: s.title, level: 'log', text: `${s.title}: resumed after a pause`, hook: 'engine', timestampMs: Date.now() });
      } else if (s.budget.paused) {
        this.nextResumeAt = Math.min(this.nextResumeAt, s.budget.pausedUntil);
      }
    }
  }

  private emitError(index: number, title: string, text: string, hook: string, line?: number, column?: number): void {
    this.output.console({
      scriptIndex: index, title, level: 'error', text, hook,
      ...(line !== undefined ? { line } : {}), ...(column !== undefined ? { column } : {}),
      timestampMs: Date.now(),
    });
  }

  /** The VM became unusable: rebuild it, reload every script fresh, report the loss. */
  private rebuildAfterLoss(during: string, cause?: unknown): void {
    if (this.closed || this.rebuilding) return;
    this.rebuilding = true;
    try {
      this.counters.vmRebuilds++;
      const specs = this.ordered.map((s) => ({ index: s.index, title: s.title, code: s.code }));
      this.emitError(-1, '', `script VM became unusable during ${during}${cause ? ` (${(cause as Error).message})` : ''}; rebuilt it and reloaded ${specs.length} scripts, their state is lost`, 'engine');
      this.resetVmState();
      const old = this.vm;
      this.vm = null;
      old?.dispose();
      this.vm = this.newVm(this.env);
      this.load({ scripts: specs, env: this.env });
    } finally {
      this.rebuilding = false;
    }
  }

  private rebuilding = false;

  // ------------------------------------------------------------------ jobs

  /** Runs a job now: its function, then onJobPassed / onJobFailed hooks. */
  runJob(tag: string): void {
    if (this.closed || !this.vm || this.vm.broken) return;
    const job = this.jobs.get(tag);
    if (!job) return;
    const vm = this.vm;
    vm.budgetMs = this.limits.jobTimeoutMs;
    let fault: GuestFault | null | 'missing';
    try {
      fault = vm.runJob(tag);
    } catch (err) {
      if (err instanceof SandboxError) { this.rebuildAfterLoss(`job ${tag}`, err); return; }
      throw err;
    }
    if (fault === 'missing') { this.jobs.remove(tag); return; }
    this.counters.jobRuns++;
    const s = this.bySlot.get(job.slot);
    const cron = job.cron;
    const limit = job.limit;
    this.jobs.ran(tag);
    if (fault === null) {
      this.jobs.emit(job, 'passed');
      this.callHook('onJobPassed', [tag, cron, limit]);
    } else {
      this.counters.jobFailures++;
      const err = fault.kind === 'timeout' ? `exceeded its ${this.limits.jobTimeoutMs} ms time budget and was stopped` : `${fault.name}: ${fault.message}`;
      if (s) this.reportFault(s, `job:${tag}`, { ...fault, slot: s.slot });
      this.jobs.emit(job, 'failed', err);
      this.callHook('onJobFailed', [tag, cron, limit, err]);
    }
    // After the run's event and hooks: "passed"/"failed", then "removed" at the limit.
    this.jobs.retireIfDone(tag);
    if (fault !== null && fault.kind === 'memory' && this.vm === vm && vm.memoryExhausted()) this.rebuildAfterLoss(`job ${tag}`);
  }

  /** Runs every scheduled job once, now, in tag order (the offline runner does this at the end of input). */
  runAllJobsNow(): number {
    const tags = this.jobs.tags();
    for (const t of tags) this.runJob(t);
    return tags.length;
  }

  // ----------------------------------------------------------------- stats

  stats(): EngineStats {
    return {
      ...this.counters,
      scriptsLoaded: this.ordered.length,
      itemFields: this.itemFields.kind === 'all' ? 'all' : this.itemFields.paths.map((p) => p.join('.')),
      scripts: this.ordered.map((s) => ({ ...s.stats, hooks: [...s.hooks] })),
      latencyUs: this.latency.snapshot(),
    };
  }

  /** Latency since the last call (for periodic status), then starts a new window. */
  takeLatency(): { p50: number; p90: number; p99: number; max: number; count: number } {
    const snap = this.latency.snapshot();
    this.latency.reset();
    return snap;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.jobs.close();
    this.vm?.dispose();
    this.vm = null;
  }
}

function sameEnv(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && a[k] === b[k]);
}

/** Engine limits from the shared env schema's units (ms, MiB, KiB). */
export function limitsFromConfig(c: { hookTimeoutMs: number; jobTimeoutMs: number; memoryLimitMb: number; stackLimitKb: number }): Partial<EngineLimits> {
  return {
    hookTimeoutMs: c.hookTimeoutMs,
    jobTimeoutMs: c.jobTimeoutMs,
    memoryLimitBytes: c.memoryLimitMb * 1024 * 1024,
    maxStackBytes: c.stackLimitKb * 1024,
  };
}
