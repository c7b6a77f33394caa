/**
 * Test support for the engine's own tests: an output that records every
 * event, and an engine factory with small limits. Not exported by the package.
 */
import { ScriptEngine, type EngineOptions, type ScriptSpec } from './engine.ts';
import type { ConsoleEvent, EngineOutput, HubActionEvent, JobEvent } from './output.ts';

export class RecordingOutput implements EngineOutput {
  readonly consoleEvents: ConsoleEvent[] = [];
  readonly hubActions: HubActionEvent[] = [];
  readonly jobEvents: JobEvent[] = [];

  console(e: ConsoleEvent): void {
    this.consoleEvents.push(e);
  }

  hubAction(e: HubActionEvent): void {
    this.hubActions.push(e);
  }

  job(e: JobEvent): void {
    this.jobEvents.push(e);
  }

  /** Texts of console.log lines (level "log"), optionally of one script title. */
  logs(title?: string): string[] {
    return this.consoleEvents.filter((e) => e.level === 'log' && (title === undefined || e.title === title)).map((e) => e.text);
  }

  /** Error events (level "error"), optionally of one script title. */
  errors(title?: string): ConsoleEvent[] {
    return this.consoleEvents.filter((e) => e.level === 'error' && (title === undefined || e.title === title));
  }

  clear(): void {
    this.consoleEvents.length = 0;
    this.hubActions.length = 0;
    this.jobEvents.length = 0;
  }
}

export interface TestEngine {
  engine: ScriptEngine;
  out: RecordingOutput;
}

/** An engine with a recording output and a short hook budget (tests stay fast). */
export async function makeEngine(opts: Partial<EngineOptions> = {}): Promise<TestEngine> {
  const out = new RecordingOutput();
  const engine = await ScriptEngine.create({
    nodeName: 'node-a',
    ...opts,
    output: out,
    limits: { hookTimeoutMs: 2_000, jobTimeoutMs: 2_000, ...opts.limits },
  });
  return { engine, out };
}

/** A script spec whose first comment is its title. */
export function script(index: number, title: string, body: string, extra: Partial<ScriptSpec> = {}): ScriptSpec {
  return { index, code: `// ${title}\n${body}`, ...extra };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `cond` until it holds or `timeoutMs` passes; returns whether it held. */
export async function waitFor(cond: () => boolean, timeoutMs = 2_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}
