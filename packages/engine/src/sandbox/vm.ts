/**
 * Host side of one QuickJS VM: builds the runtime with its limits, installs
 * the guest prelude and the helper modules, and runs dispatches with the
 * per-call time budget. All active scripts of a replica share this one VM (so
 * `this.x` at top level is global to them); each script's top level runs
 * inside its own function, so its vars and functions stay private.
 *
 * Faults inside a script call come back as data (GuestFault). A host-level
 * failure of the WebAssembly instance marks the VM broken: the engine then
 * rebuilds it and reports the loss.
 */
import type { QuickJSContext, QuickJSHandle, QuickJSRuntime, QuickJSWASMModule } from 'quickjs-emscripten-core';
import { SandboxError } from '../errors.ts';
import type { HelperHost, HelperModule, HostValue } from '../helpers/types.ts';
import { GUEST_PRELUDE } from './guest-prelude.ts';

export type FaultKind = 'error' | 'timeout' | 'memory' | 'stack';

export interface GuestFault {
  /** VM slot of the script that was running, -1 when none (bad input). */
  slot: number;
  /** Position in the batch, -1 when not in a batch. */
  at: number;
  kind: FaultKind;
  name: string;
  message: string;
  stack: string;
}

/** Dispatch modes understood by the guest prelude. */
export const MODE = { items: 0, packets: 1, args: 2, query: 3 } as const;
export type DispatchMode = (typeof MODE)[keyof typeof MODE];

export interface DispatchResult {
  faults: GuestFault[];
  /** The batch text was not a JSON array (host must validate items). */
  badBatch: boolean;
  /** onItemQueried chain result (JSON), mode `query` only. */
  valueJson?: string;
}

export interface GuestVmOptions {
  memoryLimitBytes: number;
  maxStackBytes: number;
  helpers: readonly HelperModule[];
  helperHost: HelperHost;
  /** Passed to helpers' guest code as `cfg`. */
  config: { nodeName: string; env: Readonly<Record<string, string>>; hooks: readonly string[] };
}

type Outcome = { ok: true; value: HostValue } | { ok: false; error: { name: string; message: string; stack: string } };

/**
 * How often the interrupt handler measures the heap, in ms of guest run time: every
 * MEMORY_CHECK_MS, and less often for a big heap (measuring walks it, ~0.15 ms per MiB),
 * so that measuring costs at most a few percent. Wall time, so a loaded machine measures
 * more often per unit of script progress, never less.
 */
const MEMORY_CHECK_MS = 25;
const MEMORY_CHECK_MS_PER_MIB = 3;

function classify(e: { name: string; message: string }): FaultKind {
  if (e.name === 'InternalError') {
    if (e.message === 'interrupted') return 'timeout';
    if (e.message === 'out of memory') return 'memory';
    if (e.message === 'stack overflow') return 'stack';
  }
  return 'error';
}

export class GuestVm {
  private readonly rt: QuickJSRuntime;
  private readonly ctx: QuickJSContext;
  private readonly D: QuickJSHandle;
  private readonly fns = new Map<string, QuickJSHandle>();
  private readonly memoryLimit: number;
  private disposed = false;
  /** Time budget of the call now running, ms. Set by the engine before each entry. */
  budgetMs = 1000;
  /** True once the WebAssembly instance failed; the VM must not be used again. */
  broken = false;
  private lastSeq = -1;
  private seqSince = 0;
  private nextMemoryCheck = 0;
  /** The interrupt handler stopped the running call because the heap is over the limit. */
  private memoryTripped = false;

  /** Builds a VM on an already loaded QuickJS module (see loadQuickJS). */
  static create(mod: QuickJSWASMModule, opts: GuestVmOptions): GuestVm {
    return new GuestVm(mod, opts);
  }

  private constructor(mod: QuickJSWASMModule, opts: GuestVmOptions) {
    this.memoryLimit = opts.memoryLimitBytes;
    this.rt = mod.newRuntime();
    this.rt.setMemoryLimit(opts.memoryLimitBytes);
    this.rt.setMaxStackSize(opts.maxStackBytes);
    this.ctx = this.rt.newContext();
    const ctx = this.ctx;
    try {
      const cfg = this.evalValue(`(${JSON.stringify(opts.config)})`, 'wirescript-config.js');
      const prelude = this.evalValue(GUEST_PRELUDE, 'wirescript-prelude.js');
      this.D = this.unwrap(ctx.callFunction(prelude, ctx.undefined, ctx.global, cfg), 'prelude');
      prelude.dispose();
      for (const name of ['dispatch', 'load', 'unload', 'setOrder', 'setPaused', 'runJob', 'dropJob', 'hasHook', 'mkError']) {
        this.fns.set(name, ctx.getProp(this.D, name));
      }
      const host = ctx.newObject();
      for (const helper of opts.helpers) {
        for (const [key, fn] of Object.entries(helper.host?.(opts.helperHost) ?? {})) {
          const h = ctx.newFunction(key, (...args: QuickJSHandle[]) => {
            try {
              return this.toHandle(fn(...args.map((a) => this.fromHandle(a))));
            } catch (err) {
              throw this.guestError(err);
            }
          });
          ctx.setProp(host, key, h);
          h.dispose();
        }
      }
      for (const helper of opts.helpers) {
        const g = this.evalValue(helper.guest, `wirescript-helper-${helper.name}.js`);
        this.unwrap(ctx.callFunction(g, ctx.undefined, host, this.D, ctx.global, cfg), `helper ${helper.name}`).dispose();
        g.dispose();
      }
      host.dispose();
      cfg.dispose();
    } catch (err) {
      this.dispose();
      throw new SandboxError(`cannot initialise the script VM: ${(err as Error).message}`, { cause: err });
    }
    this.rt.setInterruptHandler(() => this.shouldInterrupt());
  }

  /**
   * Interrupts the call that has run longer than budgetMs (seq changes at every call start),
   * or any call once the heap is over the memory limit: QuickJS's own limit does not count
   * small blocks in this WebAssembly build (no malloc_usable_size), so many small objects
   * would grow the heap far past it (see MEMORY_CHECK_MS for how often it is measured).
   */
  private shouldInterrupt(): boolean {
    const now = performance.now();
    const h = this.ctx.getProp(this.D, 'seq');
    const seq = this.ctx.getNumber(h);
    h.dispose();
    if (seq !== this.lastSeq) {
      this.lastSeq = seq;
      this.seqSince = now;
    } else if (now - this.seqSince > this.budgetMs) {
      return true;
    }
    if (now >= this.nextMemoryCheck) {
      let used: number;
      try {
        used = this.memoryUsed();
      } catch {
        used = Infinity; // cannot even measure: the heap is full
      }
      const mib = Number.isFinite(used) ? used / (1024 * 1024) : 0;
      this.nextMemoryCheck = performance.now() + Math.max(MEMORY_CHECK_MS, mib * MEMORY_CHECK_MS_PER_MIB);
      if (used > this.memoryLimit) {
        this.memoryTripped = true;
        return true;
      }
    }
    return false;
  }

  /** Host helper errors become guest errors of the same class, so `e instanceof TypeError` holds in scripts. */
  private guestError(err: unknown): unknown {
    const e = err instanceof Error ? err : new Error(String(err));
    const name = this.ctx.newString(e.name);
    const message = this.ctx.newString(e.message);
    try {
      const r = this.ctx.callFunction(this.fn('mkError'), this.D, name, message);
      if (r.error) {
        r.error.dispose();
        return err;
      }
      return r.value;
    } finally {
      name.dispose();
      message.dispose();
    }
  }

  /** Before each entry into the VM: time outside script calls (idle, engine work) is not charged to the next call. */
  private enter(): void {
    this.lastSeq = -1;
    this.memoryTripped = false;
  }

  /** A fault of the call just made; a call stopped for memory is reported as out of memory, not as a timeout. */
  private faultOf(error: { name: string; message: string; stack: string }): { name: string; message: string; stack: string } {
    if (!this.memoryTripped) return error;
    this.memoryTripped = false;
    return { name: 'InternalError', message: 'out of memory', stack: error.stack };
  }

  private evalValue(code: string, filename: string): QuickJSHandle {
    return this.unwrap(this.ctx.evalCode(code, filename), filename);
  }

  private unwrap(r: ReturnType<QuickJSContext['evalCode']>, what: string): QuickJSHandle {
    if (r.error) {
      const e = this.ctx.dump(r.error) as { message?: string };
      r.error.dispose();
      throw new SandboxError(`${what}: ${e?.message ?? String(e)}`);
    }
    return r.value;
  }

  private toHandle(v: HostValue): QuickJSHandle {
    const ctx = this.ctx;
    switch (typeof v) {
      case 'string': return ctx.newString(v);
      case 'number': return ctx.newNumber(v);
      case 'boolean': return v ? ctx.true : ctx.false;
      case 'undefined': return ctx.undefined;
      default: return ctx.null;
    }
  }

  private fromHandle(h: QuickJSHandle): HostValue {
    const t = this.ctx.typeof(h);
    if (t === 'string') return this.ctx.getString(h);
    if (t === 'number') return this.ctx.getNumber(h);
    if (t === 'boolean') return this.ctx.dump(h) as boolean;
    if (t === 'undefined') return undefined;
    if (t === 'object' && this.ctx.dump(h) === null) return null;
    return this.ctx.dump(h) as HostValue;
  }

  /** Calls a guest function with primitive arguments; VM errors come back as data, host failures throw. */
  private invoke(fn: QuickJSHandle, args: readonly HostValue[]): Outcome {
    if (this.broken || this.disposed) throw new SandboxError('the script VM is no longer usable');
    const handles = args.map((a) => this.toHandle(a));
    let r;
    try {
      this.enter();
      r = this.ctx.callFunction(fn, this.D, ...handles);
    } catch (err) {
      this.broken = true;
      throw new SandboxError(`the script VM failed: ${(err as Error).message}`, { cause: err });
    } finally {
      for (const h of handles) if (h.alive && h !== this.ctx.undefined && h !== this.ctx.null && h !== this.ctx.true && h !== this.ctx.false) h.dispose();
    }
    this.runPendingJobs();
    if (r.error) {
      const d = this.ctx.dump(r.error) as { name?: unknown; message?: unknown; stack?: unknown } | null;
      r.error.dispose();
      const o = d !== null && typeof d === 'object' ? d : { message: String(d) };
      return { ok: false, error: this.faultOf({ name: String(o.name ?? 'Error'), message: String(o.message ?? ''), stack: String(o.stack ?? '') }) };
    }
    const v = this.fromHandle(r.value);
    r.value.dispose();
    return { ok: true, value: v };
  }

  /** Promise reactions scripts queued (ES5 scripts can still call Promise): run them, bounded. */
  private runPendingJobs(): void {
    if (!this.rt.hasPendingJob()) return;
    const r = this.rt.executePendingJobs(10_000);
    if (r.error) r.error.dispose();
  }

  private fn(name: string): QuickJSHandle {
    return this.fns.get(name)!;
  }

  private readNumber(prop: string): number {
    const h = this.ctx.getProp(this.D, prop);
    const n = this.ctx.getNumber(h);
    h.dispose();
    return n;
  }

  private setNumber(prop: string, v: number): void {
    const h = this.ctx.newNumber(v);
    this.ctx.setProp(this.D, prop, h);
    h.dispose();
  }

  /**
   * Evaluates a script (already wrapped so its top level is a function) and
   * registers its hooks. Returns hook names, or the fault of its top level.
   */
  load(slot: number, wrappedCode: string, filename: string): { hooks: string[] } | { fault: GuestFault } {
    this.enter();
    const r = this.ctx.evalCode(wrappedCode, filename);
    if (r.error) {
      const d = this.ctx.dump(r.error) as { name?: string; message?: string; stack?: string };
      r.error.dispose();
      return { fault: { slot, at: -1, kind: 'error', name: String(d?.name ?? 'SyntaxError'), message: String(d?.message ?? d), stack: String(d?.stack ?? '') } };
    }
    const wrapper = r.value;
    let out: Outcome;
    try {
      const handles = [this.ctx.newNumber(slot), wrapper];
      try {
        out = (() => {
          const res = this.ctx.callFunction(this.fn('load'), this.D, ...handles);
          this.runPendingJobs();
          if (res.error) {
            const d = this.ctx.dump(res.error) as { name?: string; message?: string; stack?: string };
            res.error.dispose();
            return { ok: false as const, error: this.faultOf({ name: String(d?.name ?? 'Error'), message: String(d?.message ?? d), stack: String(d?.stack ?? '') }) };
          }
          const v = this.ctx.getString(res.value);
          res.value.dispose();
          return { ok: true as const, value: v };
        })();
      } finally {
        handles[0].dispose();
      }
    } catch (err) {
      this.broken = true;
      throw new SandboxError(`the script VM failed: ${(err as Error).message}`, { cause: err });
    } finally {
      wrapper.dispose();
    }
    if (!out.ok) {
      this.setNumber('cur', -1);
      return { fault: { slot, at: -1, kind: classify(out.error), ...out.error } };
    }
    const csv = String(out.value);
    return { hooks: csv === '' ? [] : csv.split(',') };
  }

  unload(slot: number): void {
    this.expectOk(this.invoke(this.fn('unload'), [slot]), 'unload');
  }

  setOrder(slots: readonly number[]): void {
    this.expectOk(this.invoke(this.fn('setOrder'), [slots.join(',')]), 'setOrder');
  }

  setPaused(slot: number, paused: boolean): void {
    this.expectOk(this.invoke(this.fn('setPaused'), [slot, paused]), 'setPaused');
  }

  dropJob(tag: string): void {
    this.expectOk(this.invoke(this.fn('dropJob'), [tag]), 'dropJob');
  }

  private expectOk(o: Outcome, what: string): HostValue {
    if (!o.ok) throw new SandboxError(`${what} failed in the VM: ${o.error.message}`);
    return o.value;
  }

  /**
   * Runs one hook over a batch (JSON array text of `count` entries; -1: any). A call
   * stopped by the interrupt (or a fault escaping the guest's own catch) aborts the
   * guest loop; the batch is then resumed after the faulty call.
   */
  dispatch(hook: string, mode: DispatchMode, batchJson: string, onAbort?: (f: GuestFault) => void, count = -1): DispatchResult {
    const faults: GuestFault[] = [];
    let payload: string | null = batchJson;
    let from = 0;
    let fromHook = 0;
    for (;;) {
      const o = this.invoke(this.fn('dispatch'), [hook, mode, payload, from, fromHook, count]);
      if (o.ok) {
        if (o.value === -1) return { faults, badBatch: true };
        if (mode === MODE.query) {
          const r = JSON.parse(String(o.value)) as { errs: [number, number, GuestFault][] | null; value: unknown };
          for (const [at, slot, info] of r.errs ?? []) faults.push(this.fault(slot, at, info));
          return { faults, badBatch: false, valueJson: JSON.stringify(r.value) };
        }
        if (typeof o.value === 'string') {
          for (const [at, slot, info] of JSON.parse(o.value) as [number, number, GuestFault][]) faults.push(this.fault(slot, at, info));
        }
        return { faults, badBatch: false };
      }
      const slot = this.readNumber('cur');
      const at = this.readNumber('at');
      const hookAt = this.readNumber('hookAt');
      const fault: GuestFault = { slot, at, kind: classify(o.error), ...o.error };
      faults.push(fault);
      // Lets the engine pause the script before the batch resumes without it.
      onAbort?.(fault);
      if (at < 0 || hookAt < 0) {
        this.setNumber('cur', -1);
        return { faults, badBatch: false };
      }
      payload = null;
      from = at;
      fromHook = hookAt + 1;
    }
  }

  private fault(slot: number, at: number, info: { name: string; message: string; stack: string }): GuestFault {
    return { slot, at, kind: classify(info), name: info.name, message: info.message, stack: info.stack };
  }

  /** Runs a job function; null when it passed, 'missing' when no such job is in the VM. */
  runJob(tag: string): GuestFault | null | 'missing' {
    const o = this.invoke(this.fn('runJob'), [tag]);
    if (!o.ok) {
      const slot = this.readNumber('cur');
      this.setNumber('cur', -1);
      return { slot, at: -1, kind: classify(o.error), ...o.error };
    }
    if (o.value === -1) return 'missing';
    if (o.value === 0) return null;
    const info = JSON.parse(String(o.value)) as GuestFault;
    return { slot: -1, at: -1, kind: classify(info), name: info.name, message: info.message, stack: info.stack };
  }

  /** Bytes in use by the VM heap. */
  memoryUsed(): number {
    const h = this.rt.computeMemoryUsage();
    const m = this.ctx.dump(h) as { memory_used_size?: number; malloc_size?: number };
    h.dispose();
    // memory_used_size walks the heap; malloc_size is what QuickJS's own limit counts (too little here).
    return Number(m.memory_used_size ?? m.malloc_size ?? 0);
  }

  /** True when the heap stays nearly full: further calls would keep failing. */
  memoryExhausted(): boolean {
    return this.memoryUsed() > this.memoryLimit * 0.9;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    try {
      for (const h of this.fns.values()) if (h.alive) h.dispose();
      if (this.D?.alive) this.D.dispose();
      if (this.ctx?.alive) this.ctx.dispose();
      if (this.rt?.alive) this.rt.dispose();
    } catch {
      // A broken instance may fail to free; it is unreachable either way.
    }
  }
}
