/**
 * Periodic replica status on ws.status.<service>.<replica>: scripts loaded,
 * per-script calls/errors/pauses, counters (including every drop), and hook
 * latency percentiles over the last period.
 */
import { publishWithTrace, type NatsConnection } from '@wirescript/nats';
import { ReplicaStatus, encodeMessage, statusSubject } from '@wirescript/proto';
import type { ScriptEngine } from '@wirescript/engine';

export interface StatusSource {
  service: 'script-runner' | 'hub';
  node: string;
  replica: string;
  startedAtMs: number;
  engine: ScriptEngine;
  revision(): number;
  /** Service counters (items received, drops, ...), merged with the engine's. */
  counters(): Record<string, number>;
}

export function buildStatus(src: StatusSource, takeLatency = true): ReplicaStatus {
  const st = src.engine.stats();
  const lat = takeLatency ? src.engine.takeLatency() : st.latencyUs;
  const counters: Record<string, number> = {
    hook_calls: st.hookCalls,
    hook_errors: st.hookErrors,
    hook_timeouts: st.timeouts,
    hook_memory_faults: st.memoryFaults,
    hook_calls_skipped_paused: st.skippedPaused,
    items_invalid: st.itemsInvalid,
    vm_rebuilds: st.vmRebuilds,
    job_runs: st.jobRuns,
    job_failures: st.jobFailures,
    ...src.counters(),
  };
  for (const k of Object.keys(counters)) counters[k] = Math.max(0, Math.floor(counters[k]));
  return ReplicaStatus.fromPartial({
    service: src.service, node: src.node, replica: src.replica, startedAtMs: src.startedAtMs, timestampMs: Date.now(),
    scriptSetRevision: src.revision(),
    scripts: st.scripts.map((s) => ({
      index: s.index, title: s.title, hookCalls: s.hookCalls, errors: s.errors, paused: s.paused,
      lastError: s.lastError, pausedUntilMs: s.pausedUntilMs,
    })),
    counters,
    hookLatency: { p50Us: lat.p50, p90Us: lat.p90, p99Us: lat.p99, maxUs: lat.max, count: lat.count },
  });
}

/** Publishes a replica status every period (and once more on stop); the builder decides what is in it. */
export class StatusPublisher {
  private timer: NodeJS.Timeout | null = null;
  private readonly nc: NatsConnection;
  private readonly build: () => ReplicaStatus;
  private readonly subject: string;

  constructor(nc: NatsConnection, service: string, replica: string, build: () => ReplicaStatus) {
    this.nc = nc;
    this.build = build;
    this.subject = statusSubject(service, replica);
  }

  /** For engine hosts (script-runner, hub): status from the engine and the service counters. */
  static forEngine(nc: NatsConnection, src: StatusSource): StatusPublisher {
    return new StatusPublisher(nc, src.service, src.replica, () => buildStatus(src));
  }

  start(intervalMs: number, beforeEach?: () => void): void {
    this.timer = setInterval(() => {
      beforeEach?.();
      this.publish();
    }, intervalMs);
    this.timer.unref();
  }

  publish(): void {
    try {
      publishWithTrace(this.nc, this.subject, encodeMessage(ReplicaStatus, this.build()));
    } catch {
      // Connection closing: the next period (or the final status on stop) reports.
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
