/**
 * Items/s end to end through NATS: a publisher sends Kubeshark-shaped items on
 * ws.items.<node>.http, script-runner replicas (real processes, `wirescript
 * script-runner`) take them from the queue group and run the count-by-key
 * script; progress comes from their status messages. Run with one and with
 * two replicas. On a 2-core machine the publisher, the nats-server and the
 * replicas share the cores, so these are floors.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connectNats, drainAndClose } from '@wirescript/nats';
import { Item, ReplicaStatus, decodeMessage, encodeMessage, itemsSubject, statusFilter } from '@wirescript/proto';
import { putScriptSet, startNatsServer } from '@wirescript/testing';
import { COUNT_BY_KEY, makeItems } from './engine.bench.ts';

async function once(replicas: number, total: number): Promise<{ rate: number; dropped: number }> {
  const server = await startNatsServer({ jetstream: true });
  const nc = await connectNats({ url: server.url, name: 'bench', log: () => {} });
  await putScriptSet(nc, [{ code: COUNT_BY_KEY }]);
  const latest = new Map<string, ReplicaStatus>();
  nc.subscribe(statusFilter('script-runner'), { callback: (err, m) => { if (!err) { const s = decodeMessage(ReplicaStatus, m.data); latest.set(s.replica, s); } } });
  const children: ChildProcess[] = [];
  for (let i = 0; i < replicas; i++) {
    children.push(spawn(process.execPath, [...(process.env.BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] : []), new URL('../bin/wirescript.ts', import.meta.url).pathname, 'script-runner'], {
      stdio: 'inherit',
      env: { ...process.env, NATS_URL: server.url, REPLICA_ID: `bench-${i}`, NODE_NAME: 'bench', LOG_LEVEL: 'error', ITEM_QUEUE_CAPACITY: '200000', STATUS_INTERVAL: '100ms', HEALTH_PORT: '0' },
    }));
  }
  const counter = (k: string) => [...latest.values()].reduce((a, s) => a + (s.counters[k] ?? 0), 0);
  while (latest.size < replicas) await new Promise((r) => setTimeout(r, 20));
  const payloads = makeItems(5000).map((json, i) => encodeMessage(Item, Item.fromPartial({ id: String(i), node: 'bench', protocol: 'http', timestampMs: Date.now(), json: Buffer.from(json) })));
  const subject = itemsSubject('bench', 'http');
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    nc.publish(subject, payloads[i % payloads.length]);
    if (i % 5000 === 4999) await nc.flush();
  }
  await nc.flush();
  const deadline = Date.now() + 120_000;
  while (counter('items_processed') + counter('items_dropped') < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  // Status arrives every 100 ms: take the time of the status that showed completion.
  const secs = (performance.now() - t0 - 50) / 1000;
  const processed = counter('items_processed');
  const dropped = counter('items_dropped');
  for (const c of children) c.kill('SIGTERM');
  await Promise.all(children.map((c) => new Promise((r) => c.once('exit', r))));
  await drainAndClose(nc);
  await server.stop();
  return { rate: processed / secs, dropped };
}

export async function runPipelineBench(total = 200_000): Promise<Record<string, number>> {
  console.log(`\npipeline: ${total.toLocaleString('en-US')} items published on NATS -> script-runner replicas (queue group) -> count-by-key script`);
  const one = await once(1, total);
  const two = await once(2, total);
  console.log(`  ${'1 replica'.padEnd(44)} ${Math.round(one.rate).toLocaleString('en-US')}/s (dropped ${one.dropped})`);
  console.log(`  ${'2 replicas'.padEnd(44)} ${Math.round(two.rate).toLocaleString('en-US')}/s (dropped ${two.dropped})`);
  return { oneReplica: one.rate, twoReplicas: two.rate };
}

if (import.meta.main) await runPipelineBench(Number(process.argv[2] ?? 200_000));
