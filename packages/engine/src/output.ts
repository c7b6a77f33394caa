/**
 * Where the engine's side effects go. The script-runner publishes them on
 * NATS; the offline runner prints them; tests collect them.
 */
export type ConsoleLevel = 'log' | 'error' | 'clear';

export interface ConsoleEvent {
  scriptIndex: number;
  title: string;
  level: ConsoleLevel;
  text: string;
  /** Set for script faults: the hook (or "load", "job:<tag>") that failed. */
  hook?: string;
  line?: number;
  column?: number;
  timestampMs: number;
}

export interface HubActionEvent {
  action: string;
  /** The object argument as JSON text. */
  objectJson: string;
  scriptIndex: number;
  title: string;
  timestampMs: number;
}

export type JobEventKind = 'scheduled' | 'passed' | 'failed' | 'removed';

export interface JobEvent {
  tag: string;
  cron: string;
  limit: number;
  event: JobEventKind;
  error?: string;
  runs: number;
  nextRunMs?: number;
  title: string;
  scriptIndex: number;
  timestampMs: number;
}

export interface EngineOutput {
  console(e: ConsoleEvent): void;
  hubAction(e: HubActionEvent): void;
  job(e: JobEvent): void;
}

/** An output that drops everything (benchmarks). */
export const NULL_OUTPUT: EngineOutput = { console() {}, hubAction() {}, job() {} };
