/**
 * The helper registry contract. A helper namespace (console, jobs, vendor, ...)
 * is one module: host functions (TypeScript, called from the guest with
 * primitive arguments) plus guest code that builds the namespace scripts see.
 * Adding a helper is adding one module to the list the engine is given.
 */
import type { EngineOutput } from '../output.ts';

/** Values that cross the host<->guest boundary in helper calls. Objects cross as JSON text. */
export type HostValue = string | number | boolean | null | undefined;
export type HostFunction = (...args: HostValue[]) => HostValue;

/** What the engine offers helper host functions. */
export interface HelperHost {
  readonly nodeName: string;
  readonly mode: 'worker' | 'hub';
  readonly output: EngineOutput;
  /** The script (title and index in the script set) that owns a VM slot. */
  script(slot: number): { title: string; index: number } | undefined;
  readonly jobs: JobsFacade;
}

/** The jobs helper's view of the engine's scheduler. Methods throw HelperArgumentError on bad input. */
export interface JobsFacade {
  schedule(slot: number, tag: string, cron: string, limit: number): void;
  remove(tag: string): boolean;
  removeAll(): number;
  /** JSON array of {tag, cron, limit, runs, nextRun, script}. */
  list(): string;
  run(tag: string): boolean;
  runAll(): number;
  start(): void;
  stop(): void;
  isRunning(): boolean;
}

export interface HelperModule {
  /** Global namespace name scripts use, e.g. "console". */
  readonly name: string;
  /** Host functions, exposed to this module's guest code as `host.<key>`. Keys must be unique across modules. */
  host?(h: HelperHost): Record<string, HostFunction>;
  /**
   * ES5 source of a function expression `(function (host, D, G, cfg) { ... })`
   * that defines the namespace with `D.defineGlobal(name, value)`. `D` offers
   * `D.cur` (calling slot), `D.fmt(args)`, `D.json(value, what)`, `D.jobs`, and the
   * built-ins captured before any script ran (`D.parse`, `D.stringify`, `D.apply`,
   * `D.isArray`, `D.hasOwn(o, k)`, `D.push(a, v)`): use those at call time, since
   * scripts can replace the global ones.
   */
  readonly guest: string;
}

/** Throws a TypeError-like HelperArgumentError when `v` is not a string. */
export function expectString(v: HostValue, what: string): string {
  if (typeof v !== 'string') throw new TypeError(`${what} must be a string, got ${v === null ? 'null' : typeof v}`);
  return v;
}
