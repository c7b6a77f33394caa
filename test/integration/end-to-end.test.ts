/**
 * The spine of the product, end to end with real parts: config-sync reads the
 * scripts from the (test) Kubernetes API server; capture replays a generated
 * pcap; two script-runner replicas share the items in a queue group; a job on
 * each runner sends its counts with hub.action; the hub joins them with
 * wrapper.joinMaps. The joined totals equal the generator's ground truth.
 * Then the script changes in the ConfigMap and the new version runs without
 * any restart; then one runner is killed and the other takes all items; then
 * nats-server restarts and the pipeline resumes by itself, any loss counted.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '@wirescript/config';
import { CaptureService, loadCaptureConfig } from '@wirescript/capture';
import { ConfigSync, configSyncConfig, createSource } from '@wirescript/config-sync';
import { Hub, hubConfig } from '@wirescript/hub';
import { connectNats, drainAndClose } from '@wirescript/nats';
import { PodDirectory } from '@wirescript/pod-map';
import {
  ITEMS_WILDCARD, Item, ConsoleLine, JOBS_CONTROL_SUBJECT, JobControlReply, JobControlRequest, LOGS_WILDCARD, ReplicaStatus, decodeMessage, encodeMessage, statusSubject,
} from '@wirescript/proto';
import { countByStatus, makeHttpItem, rng, startKubeApiServer, startNatsServer } from '@wirescript/testing';
import { buildExamplePcap } from '../../scripts/gen-example-pcap.ts';
import { collect, startRunner, waitFor } from './helpers.ts';

const NS = 'wirescript';
const dir = mkdtempSync(path.join(tmpdir(), 'wirescript-e2e-'));
const pcap = path.join(dir, 'calls.pcap');
writeFileSync(pcap, buildExamplePcap());
const random = rng(11);
const TRUTH = countByStatus(Array.from({ length: 500 }, (_, i) => makeHttpItem(i, random)));
const times = (k: number) => Object.fromEntries(Object.entries(TRUTH).map(([s, n]) => [s, n * k]));

function counterScript(version: string): string {
  return `// e2e counter
var counts = {};
function onItemCaptured(data) {
  var s = String(data.response.status);
  counts[s] = (counts[s] || 0) + 1;
}
function flush() {
  if (utils.nodeName() === 'hub') return;
  hub.action('counts-${version}', counts);
  counts = {};
}
jobs.schedule('flush', '0 0 0 1 1 *', flush);
var totals = {};
function onHubAction(action, object) {
  if (action !== 'counts-${version}') return;
  totals = wrapper.joinMaps(totals, object);
  console.log('${version} ' + env.LABEL + ' ' + JSON.stringify(totals));
}
`;
}

function configMap(code: string) {
  return {
    apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'kubeshark-config-map', namespace: NS },
    data: { SCRIPTING_SCRIPTS: JSON.stringify({ 0: { title: 'e2e counter', code, active: true } }), SCRIPTING_ACTIVE_SCRIPTS: '' },
  };
}

test('capture -> two runners -> hub, scripts from the ConfigMap; hot change, a killed runner and a NATS restart', { timeout: 180_000 }, async (t) => {
  const server = await startNatsServer({ jetstream: true });
  const kube = await startKubeApiServer();
  const kubeconfig = path.join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, kube.kubeconfigYaml());
  kube.put(configMap(counterScript('v1')));
  kube.put({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'kubeshark-secret', namespace: NS }, data: { SCRIPTING_ENV: Buffer.from(JSON.stringify({ LABEL: 'e2e' })).toString('base64') } });
  // The pods behind the pcap's addresses: the hub maps their IPs, capture names src/dst with them.
  const PODS = [
    { name: 'frontend-6d4cf56db6-x2k4q', namespace: 'shop', ip: '10.244.1.12' },
    { name: 'orders-7b9d8c7f6-pq8lm', namespace: 'shop', ip: '10.244.2.31' },
    { name: 'payments-5f6b9c8d7-zz1wr', namespace: 'billing', ip: '10.244.3.7' },
    { name: 'catalog-84c5d6f9b-hh2jk', namespace: 'shop', ip: '10.244.1.44' },
  ];
  for (const p of PODS) {
    kube.put({ apiVersion: 'v1', kind: 'Pod', metadata: { name: p.name, namespace: p.namespace }, spec: { nodeName: 'node-a', containers: [{ name: 'app', image: 'app' }] }, status: { phase: 'Running', podIP: p.ip, podIPs: [{ ip: p.ip }] } });
  }

  const nc = await connectNats({ url: server.url, name: 'e2e', log: () => {} });
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  t.after(async () => {
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
    await drainAndClose(nc).catch(() => {});
    await kube.close();
    await server.stop();
  });

  const syncConfig = loadConfig(configSyncConfig, {
    NATS_URL: server.url, REPLICA_ID: 'cs', LOG_LEVEL: 'warn', HEALTH_PORT: '0', STATUS_INTERVAL: '200ms',
    KUBECONFIG: kubeconfig, CONFIGMAP_NAMESPACE: NS, SYNC_DEBOUNCE: '20ms', WATCH_BACKOFF_MIN: '50ms', WATCH_BACKOFF_MAX: '500ms',
  });
  const sync = new ConfigSync(syncConfig, { source: createSource(syncConfig, { debug() {}, info() {}, warn() {}, error() {} }) });
  await sync.start();
  cleanups.push(() => sync.stop());

  const hub = new Hub(loadConfig(hubConfig, { NATS_URL: server.url, REPLICA_ID: 'hub-0', LOG_LEVEL: 'warn', HEALTH_PORT: '0', STATUS_INTERVAL: '200ms', POD_WATCH: 'on', KUBECONFIG: kubeconfig, ACTION_ACK_WAIT: '1s', LOG_RATE_LIMIT: '0' }));
  await hub.start();
  cleanups.push(() => hub.stop());

  const runnerA = await startRunner(server.url, 'runner-a', { LOG_RATE_LIMIT: '0' });
  cleanups.push(() => runnerA.stop());
  // Runner B is a real process, so it can be killed for real.
  const runnerB = spawn(process.execPath, [new URL('../../bin/wirescript.ts', import.meta.url).pathname, 'script-runner'], {
    env: { ...process.env, NATS_URL: server.url, NODE_NAME: 'node-a', REPLICA_ID: 'runner-b', LOG_LEVEL: 'warn', STATUS_INTERVAL: '200ms', HEALTH_PORT: '0', LOG_RATE_LIMIT: '0' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  cleanups.push(() => runnerB.kill('SIGKILL'));
  const statusB: ReplicaStatus[] = [];
  nc.subscribe(statusSubject('script-runner', 'runner-b'), { callback: (e, m) => { if (!e) statusB.push(decodeMessage(ReplicaStatus, m.data)); } });
  const logs = collect(nc, LOGS_WILDCARD, (b) => decodeMessage(ConsoleLine, b));
  const items = collect(nc, ITEMS_WILDCARD, (b) => JSON.parse(Buffer.from(decodeMessage(Item, b).json).toString()) as Record<string, any>);
  const pods = await PodDirectory.open(nc);
  cleanups.push(() => pods.stop());
  await waitFor('the hub mapped the pods\' IPs', () => PODS.every((p) => pods.resolve(p.ip)?.name === p.name), 15_000);
  await waitFor('the script set reaches every replica', () => runnerA.revision > 0 && hub.revision > 0 && (statusB.at(-1)?.scriptSetRevision ?? 0) > 0, 20_000);

  const processedB = () => statusB.at(-1)?.counters.items_processed ?? 0;
  const processed = () => runnerA.counters.itemsProcessed + processedB();
  async function replay(): Promise<Record<string, number>> {
    const capture = new CaptureService(loadCaptureConfig({
      NATS_URL: server.url, NODE_NAME: 'node-a', REPLICA_ID: 'capture-0', LOG_LEVEL: 'warn', HEALTH_PORT: '0', STATUS_INTERVAL: '200ms',
      CAPTURE_PCAP: pcap, PACKET_SUMMARIES: 'false',
    }));
    await capture.start();
    await capture.replayDone;
    assert.equal(capture.replayError, null);
    await capture.stop();
    return capture.stats;
  }
  async function flushRunners(expectReplies: number): Promise<void> {
    const replies: JobControlReply[] = [];
    const inbox = `_INBOX.e2e.${Date.now()}`;
    const sub = nc.subscribe(inbox, { callback: (e, m) => { if (!e) replies.push(decodeMessage(JobControlReply, m.data)); } });
    nc.publish(JOBS_CONTROL_SUBJECT, encodeMessage(JobControlRequest, JobControlRequest.fromPartial({ op: 'run', tag: 'flush', service: 'script-runner' })), { reply: inbox });
    await waitFor(`${expectReplies} job-control replies`, () => replies.length >= expectReplies, 5_000);
    await new Promise((r) => setTimeout(r, 200));
    sub.unsubscribe();
    assert.equal(replies.length, expectReplies, 'only the live runners answer');
    assert.ok(replies.every((r) => r.error === ''));
  }
  const lastTotals = (version: string) => {
    const line = logs.items.filter((l) => l.node === 'hub' && l.text.startsWith(`${version} e2e `)).at(-1);
    return line ? (JSON.parse(line.text.slice(`${version} e2e `.length)) as Record<string, number>) : undefined;
  };

  // 1. Two runners share the items; the hub's joined totals equal the ground truth.
  const stats1 = await replay();
  assert.equal(stats1.items_produced, 500);
  await waitFor('500 items processed by the two runners', () => processed() >= 500, 20_000);
  assert.ok(runnerA.counters.itemsProcessed > 0 && processedB() > 0, `both runners worked: ${runnerA.counters.itemsProcessed} + ${processedB()}`);
  assert.equal(processed(), 500, 'each item ran exactly once');
  // Items carry the pods' names from the hub's IP -> pod map.
  await waitFor('500 items seen on NATS', () => items.items.length >= 500, 10_000);
  const byIp = new Map(PODS.map((p) => [p.ip, p]));
  for (const it of items.items.slice(0, 500)) {
    assert.equal(it.src.name, byIp.get(it.src.ip)?.name, `src of ${it.id}`);
    assert.equal(it.dst.namespace, byIp.get(it.dst.ip)?.namespace, `dst of ${it.id}`);
  }
  items.sub.unsubscribe();
  await flushRunners(2);
  await waitFor('hub totals v1 = ground truth', () => deepEq(lastTotals('v1'), TRUTH), 10_000);

  // 2. The script changes in the ConfigMap: the new version runs, no restart.
  const v1Lines = logs.items.filter((l) => l.text.startsWith('v1 ')).length;
  const revBefore = runnerA.revision;
  kube.put(configMap(counterScript('v2')));
  await waitFor('v2 on every replica', () => runnerA.revision > revBefore && hub.revision > revBefore && (statusB.at(-1)?.scriptSetRevision ?? 0) > revBefore, 10_000);
  const before2 = processed();
  await replay();
  await waitFor('500 more items', () => processed() >= before2 + 500, 20_000);
  await flushRunners(2);
  await waitFor('hub totals v2 = ground truth', () => deepEq(lastTotals('v2'), TRUTH), 10_000);
  assert.equal(logs.items.filter((l) => l.text.startsWith('v1 ')).length, v1Lines, 'v1 no longer runs');

  // 3. Runner B is killed: runner A takes every item.
  runnerB.kill('SIGKILL');
  await new Promise((r) => runnerB.once('exit', r));
  const a3 = runnerA.counters.itemsProcessed;
  await replay();
  await waitFor('runner A takes all 500', () => runnerA.counters.itemsProcessed >= a3 + 500, 20_000);
  assert.equal(runnerA.counters.itemsProcessed, a3 + 500);
  await flushRunners(1);
  await waitFor('hub totals v2 = 2x ground truth', () => deepEq(lastTotals('v2'), times(2)), 10_000);
  assert.equal(statusB.at(-1)?.counters.items_processed, processedB(), 'runner B is gone');

  // 4. nats-server restarts: everything reconnects by itself and the pipeline resumes; loss is counted, not silent.
  await server.kill();
  await new Promise((r) => setTimeout(r, 300));
  await server.restart();
  await waitFor('runner A resubscribed', async () => {
    try {
      await nc.flush();
      return true;
    } catch {
      return false;
    }
  }, 20_000);
  await new Promise((r) => setTimeout(r, 1500));
  const a4 = runnerA.counters.itemsProcessed;
  const stats4 = await replay();
  assert.equal(stats4.items_produced, stats4.items_published + stats4.items_dropped, 'every item published or counted as dropped');
  await waitFor('items flow again after the restart', () => runnerA.counters.itemsProcessed + runnerA.counters.itemsDropped >= a4 + stats4.items_published, 20_000);
  await flushRunners(1);
  const sum = (m: Record<string, number> | undefined) => Object.values(m ?? {}).reduce((a, b) => a + b, 0);
  const processedAfter = runnerA.counters.itemsProcessed - a4;
  await waitFor('hub totals grow by what runner A processed after the restart', () => sum(lastTotals('v2')) === 1000 + processedAfter, 15_000);
  if (stats4.items_dropped === 0 && runnerA.counters.itemsDropped === 0) assert.deepEqual(lastTotals('v2'), times(3), 'nothing was lost, so the totals are exact');
});

function deepEq(a: unknown, b: unknown): boolean {
  try {
    assert.deepEqual(a, b);
    return true;
  } catch {
    return false;
  }
}
