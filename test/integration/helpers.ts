/** Shared pieces of the integration tests. */
import { loadConfig } from '@wirescript/config';
import { runnerConfig, ScriptRunner } from '@wirescript/script-runner';
import type { NatsConnection, Subscription } from '@wirescript/nats';
import { connectRedis, dnsQueries, http1Calls, http2Calls, redisCommands, startTcpdump, startTrafficServers, type Call } from '@wirescript/testing';

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

/** A Kubeshark item's identity as the traffic helpers' ground truth spells it (Call.key), and which generator made it. */
export function callOf(it: Record<string, any>): Call {
  const p = it.protocol;
  if (p.name === 'dns') return { protocol: 'dns', key: `${it.request?.questions?.[0]?.name} ${it.request?.questions?.[0]?.type} ${it.response?.code}` };
  if (p.name === 'redis') return { protocol: 'redis', key: `${it.request?.command} ${it.request?.key}` };
  return { protocol: p.version === '2.0' ? 'http2' : 'http1', key: `${it.request?.method} ${it.request?.path} ${it.response?.status}` };
}

export function countCalls(calls: readonly Call[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of calls) out[`${c.protocol} ${c.key}`] = (out[`${c.protocol} ${c.key}`] ?? 0) + 1;
  return out;
}

export interface RecordedTraffic {
  file: string;
  calls: Call[];
  http1Port: number;
  http2Port: number;
  dnsPort: number;
  /** Client port of the one Redis connection. */
  redisPort: number;
}

/**
 * tcpdump on lo writes `file` while real clients make HTTP/1.1 calls
 * (keep-alive, chunked, gzip, bodies), HTTP/2 cleartext calls, DNS lookups
 * over UDP and Redis commands; returns the clients' ground truth. Only this
 * traffic is in the file (ports chosen here, Redis by its client port).
 */
export async function recordTraffic(file: string, n: { http1?: number; http2?: number; dns?: number; redis?: number } = {}): Promise<RecordedTraffic> {
  const servers = await startTrafficServers();
  const redis = await connectRedis();
  try {
    const redisPort = redis.localPort!;
    const filter = `port ${servers.http1Port} or port ${servers.http2Port} or port ${servers.dnsPort} or (port 6379 and port ${redisPort})`;
    const dump = await startTcpdump({ filter, file, probePort: servers.http1Port });
    const names = ['a.test', 'b.test', 'nope.test', 'c.test', 'a.test', 'b.test', 'missing.test', 'c.test'];
    const calls = [
      ...(await http1Calls(servers.http1Port, n.http1 ?? 30)),
      ...(await http2Calls(servers.http2Port, n.http2 ?? 15)),
      ...(await dnsQueries(servers.dnsPort, names.slice(0, n.dns ?? 6))),
      ...(await redisCommands(n.redis ?? 10, redis)),
    ];
    await dump.stop();
    return { file, calls, http1Port: servers.http1Port, http2Port: servers.http2Port, dnsPort: servers.dnsPort, redisPort };
  } finally {
    redis.destroy();
    await servers.close();
  }
}
