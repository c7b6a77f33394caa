/**
 * The engine's side effects, published on NATS: console lines on
 * ws.logs.<node>.<replica>, hub actions on ws.hub.actions, job events on
 * ws.jobs.<node>.<replica>. Console output is rate-limited per replica (a
 * script logging per item must not flood the bus); what the limit drops is
 * counted and announced once per second.
 */
import { publishWithTrace, type NatsConnection } from '@wirescript/nats';
import {
  ConsoleLine, HubAction, JobEvent as JobEventMsg, HUB_ACTIONS_SUBJECT, encodeMessage, jobsSubject, logsSubject,
} from '@wirescript/proto';
import type { ConsoleEvent, EngineOutput, HubActionEvent, JobEvent } from '@wirescript/engine';

export interface NatsOutputOptions {
  service: 'script-runner' | 'hub';
  node: string;
  replica: string;
  /** Console lines per second this replica may publish; 0 = unlimited. */
  logRateLimit: number;
  /** Also write console lines to this sink (e.g. the process log). */
  echo?: (e: ConsoleEvent) => void;
}

export interface OutputCounters {
  consoleLines: number;
  logsDropped: number;
  hubActionsSent: number;
  jobEvents: number;
  publishErrors: number;
}

export class NatsEngineOutput implements EngineOutput {
  readonly counters: OutputCounters = { consoleLines: 0, logsDropped: 0, hubActionsSent: 0, jobEvents: 0, publishErrors: 0 };
  private readonly nc: NatsConnection;
  private readonly opts: NatsOutputOptions;
  private readonly logSubject: string;
  private readonly jobSubject: string;
  private tokens: number;
  private lastRefill = Date.now();
  private droppedUnannounced = 0;

  constructor(nc: NatsConnection, opts: NatsOutputOptions) {
    this.nc = nc;
    this.opts = opts;
    this.logSubject = logsSubject(opts.node, opts.replica);
    this.jobSubject = jobsSubject(opts.node, opts.replica);
    this.tokens = opts.logRateLimit;
  }

  private publish(subject: string, payload: Uint8Array): boolean {
    try {
      publishWithTrace(this.nc, subject, payload);
      return true;
    } catch (err) {
      // Closed or draining connection: counted, never thrown into a script.
      this.counters.publishErrors++;
      return false;
    }
  }

  private allowLine(now: number): boolean {
    const limit = this.opts.logRateLimit;
    if (limit <= 0) return true;
    const elapsed = now - this.lastRefill;
    if (elapsed > 0) {
      this.tokens = Math.min(limit, this.tokens + (elapsed * limit) / 1000);
      this.lastRefill = now;
    }
    if (this.tokens >= 1) {
      this.tokens--;
      return true;
    }
    return false;
  }

  console(e: ConsoleEvent): void {
    this.opts.echo?.(e);
    const now = Date.now();
    // Script faults always pass: they are rare by construction (failure budget).
    if (e.level !== 'error' && !this.allowLine(now)) {
      this.counters.logsDropped++;
      this.droppedUnannounced++;
      return;
    }
    if (this.droppedUnannounced > 0 && e.level !== 'error') this.announceDrops();
    this.counters.consoleLines++;
    this.publish(this.logSubject, encodeMessage(ConsoleLine, ConsoleLine.fromPartial({
      node: this.opts.node, replica: this.opts.replica, service: this.opts.service,
      scriptIndex: e.scriptIndex, scriptTitle: e.title, level: e.level, text: e.text,
      hook: e.hook ?? '', line: e.line ?? 0, column: e.column ?? 0, timestampMs: e.timestampMs,
    })));
  }

  /** Publishes the "N lines dropped" notice, if any; called on every line and by the status timer. */
  announceDrops(): void {
    if (this.droppedUnannounced === 0) return;
    const n = this.droppedUnannounced;
    this.droppedUnannounced = 0;
    this.publish(this.logSubject, encodeMessage(ConsoleLine, ConsoleLine.fromPartial({
      node: this.opts.node, replica: this.opts.replica, service: this.opts.service, scriptIndex: -1,
      level: 'error', hook: 'engine', timestampMs: Date.now(),
      text: `${n} console lines dropped by the ${this.opts.logRateLimit} lines/s limit (LOG_RATE_LIMIT)`,
    })));
  }

  hubAction(e: HubActionEvent): void {
    if (this.publish(HUB_ACTIONS_SUBJECT, encodeMessage(HubAction, HubAction.fromPartial({
      action: e.action, objectJson: Buffer.from(e.objectJson, 'utf8'), node: this.opts.node, replica: this.opts.replica,
      scriptTitle: e.title, timestampMs: e.timestampMs,
    })))) this.counters.hubActionsSent++;
  }

  job(e: JobEvent): void {
    this.counters.jobEvents++;
    this.publish(this.jobSubject, encodeMessage(JobEventMsg, JobEventMsg.fromPartial({
      node: this.opts.node, replica: this.opts.replica, scriptTitle: e.title, scriptIndex: e.scriptIndex,
      tag: e.tag, cron: e.cron, limit: e.limit, event: e.event, error: e.error ?? '', runs: e.runs,
      nextRunMs: e.nextRunMs ?? 0, timestampMs: e.timestampMs,
    })));
  }
}
