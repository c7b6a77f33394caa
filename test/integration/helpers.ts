/** Shared pieces of the integration tests. */
import { loadConfig } from '@wirescript/config';
import { runnerConfig, ScriptRunner } from '@wirescript/script-runner';
import type { NatsConnection, Subscription } from '@wirescript/nats';

export function runnerEnv(url: string, replica: string, extra: Record<string, string> = {}): Record<string, string> {
  return { NATS_URL: url, NODE_NAME: 'node-a', REPLICA_ID: replica, LOG_LEVEL: 'warn', STATUS_INTERVAL: '200ms', HEALTH_PORT: '0', ...extra };
}

export async function startRunner(url: string, replica: string, extra: Record<string, string> = {}): Promise<ScriptRunner> {
  const r = new ScriptRunner(loadConfig(runnerConfig, runnerEnv(url, replica, extra)));
  await r.start();
  return r;
}

/** Polls `cond` until true or the timeout (then throws with `what`). */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Collects decoded messages of a subject in the background. */
export function collect<T>(nc: NatsConnection, subject: string, decode: (b: Uint8Array) => T): { items: T[]; sub: Subscription } {
  const items: T[] = [];
  const sub = nc.subscribe(subject, { callback: (err, msg) => { if (!err) items.push(decode(msg.data)); } });
  return { items, sub };
}
