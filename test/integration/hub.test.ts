/**
 * The hub against a real nats-server (and the test Kubernetes API server,
 * which speaks the real REST + watch protocol to the real client library):
 * hub actions through the JetStream stream (from a runner's hub.action and
 * published directly), restarts and NATS crashes lose none, invalid messages
 * are acknowledged and counted, pods become ws.pods events, onPodEvent calls
 * (hub and runner) and the IP -> pod map, and the watch converges after
 * drops and 410s.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { loadConfig } from '@wirescript/config';
import { HUB_ACTIONS_STREAM_OPTIONS, Hub, hubConfig } from '@wirescript/hub';
import { connectNats, drainAndClose, ensureStream, type NatsConnection } from '@wirescript/nats';
import { PodDirectory, openPodMapKv, readBucket } from '@wirescript/pod-map';
import {
  ConsoleLine, HUB_ACTIONS_CONSUMER, HUB_ACTIONS_STREAM, HUB_ACTIONS_SUBJECT, HubAction, Item, JOBS_CONTROL_SUBJECT, JobControlReply,
  JobControlRequest, LOGS_WILDCARD, PODS_WILDCARD, PodEvent, ReplicaStatus, decodeMessage, encodeMessage, itemsSubject, statusSubject,
} from '@wirescript/proto';
import {
  freePort, makeHttpItem, putScriptSet, startKubeApiServer, startNatsServer, type KubeApiServer, type KubeObject, type NatsServer,
} from '@wirescript/testing';
import { collect, startRunner, waitFor } from './helpers.ts';

function hubEnv(url: string, replica: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    NATS_URL: url, REPLICA_ID: replica, LOG_LEVEL: 'warn', STATUS_INTERVAL: '200ms', HEALTH_PORT: '0', LOG_RATE_LIMIT: '0',
    POD_WATCH: 'off', ACTION_ACK_WAIT: '1s', ...extra,
  };
}

async function startHub(url: string, replica: string, extra: Record<string, string> = {}): Promise<Hub> {
  const h = new Hub(loadConfig(hubConfig, hubEnv(url, replica, extra)));
  await h.start();
  return h;
}

function actionMsg(action: string, object: unknown): Uint8Array {
  return encodeMessage(HubAction, HubAction.fromPartial({
    action, objectJson: Buffer.from(JSON.stringify(object)), node: 'test', replica: 'test', scriptTitle: 'test', timestampMs: Date.now(),
  }));
}

async function consumerState(nc: NatsConnection): Promise<{ pending: number; ackPending: number; redelivered: number }> {
  const info = await (await jetstreamManager(nc, { timeout: 1_000 })).consumers.info(HUB_ACTIONS_STREAM, HUB_ACTIONS_CONSUMER);
  return { pending: info.num_pending, ackPending: info.num_ack_pending, redelivered: info.num_redelivered };
}

const lines = (logs: { items: ConsoleLine[] }, prefix: string) => logs.items.filter((l) => l.text.startsWith(prefix)).map((l) => l.text);

/** Counts every action it gets; `report` (a job) prints totals, distinct values and duplicates. */
const COUNTER = `// hub counter
var seen = {}; var total = 0;
function onHubAction(action, obj) {
  if (action !== 'n') return;
  if (obj.slow) { var t = Date.now(); while (Date.now() - t < obj.slow) {} }
  seen[obj.i] = (seen[obj.i] || 0) + 1; total++;
}
function report() {
  var distinct = 0, dup = 0;
  for (var k in seen) { distinct++; if (seen[k] > 1) dup++; }
  console.log('report ' + utils.nodeName() + ' total=' + total + ' distinct=' + distinct + ' dup=' + dup);
}
jobs.schedule('report', '0 0 0 1 1 *', report);
`;

describe('hub over NATS', () => {
  let server: NatsServer;
  let nc: NatsConnection;

  before(async () => {
    server = await startNatsServer({ jetstream: true });
    nc = await connectNats({ url: server.url, name: 'test', log: () => {}, reconnectTimeWait: 100, reconnectJitter: 50 });
  });
  after(async () => {
    await drainAndClose(nc);
    await server.stop();
  });

  test("a runner's hub.action and a published HubAction reach onHubAction in hub mode; the hub's own hub.action comes back through the stream; jobs, job control and status as the runner", async (t) => {
    await putScriptSet(nc, [{
      code: `// relay
function onItemCaptured(d) { hub.action('item', { id: d.id, from: utils.nodeName(), path: d.request.path }); }
function onHubAction(action, obj) {
  console.log('hubaction', action, JSON.stringify(obj), 'on', utils.nodeName());
  if (action === 'ping') hub.action('pong', { was: obj.n });
}
jobs.schedule('tick', '0 0 0 1 1 *', function () { console.log('job on', utils.nodeName()); });
`,
    }]);
    const logs = collect(nc, LOGS_WILDCARD, (b) => decodeMessage(ConsoleLine, b));
    const statuses = collect(nc, statusSubject('hub', 'hub-1'), (b) => decodeMessage(ReplicaStatus, b));
    t.after(() => { logs.sub.unsubscribe(); statuses.sub.unsubscribe(); });
    const hub = await startHub(server.url, 'hub-1');
    t.after(() => hub.stop());
    const runner = await startRunner(server.url, 'runner-1');
    t.after(() => runner.stop());
    assert.equal(hub.scriptEngine.mode, 'hub');
    assert.equal(hub.podWatchEnabled, false, 'no Kubernetes configured: actions and jobs only');

    const it = makeHttpItem(7);
    it.id = 'item-7';
    nc.publish(itemsSubject('node-a', 'http'), encodeMessage(Item, Item.fromPartial({ id: 'item-7', node: 'node-a', protocol: 'http', json: Buffer.from(JSON.stringify(it)) })));
    nc.publish(HUB_ACTIONS_SUBJECT, actionMsg('ping', { n: 42, nested: { list: [1, 'two', null] } }));
    await waitFor('three hub actions', () => lines(logs, 'hubaction').length >= 3);
    const got = lines(logs, 'hubaction');
    assert.ok(got.includes(`hubaction item {"id":"item-7","from":"node-a","path":"${it.request.path}"} on hub`), got.join('\n'));
    assert.ok(got.includes('hubaction ping {"n":42,"nested":{"list":[1,"two",null]}} on hub'), got.join('\n'));
    assert.ok(got.includes('hubaction pong {"was":42} on hub'), 'the hub\'s own hub.action came back through the stream');
    const fromHub = logs.items.filter((l) => l.text.startsWith('hubaction'));
    assert.ok(fromHub.every((l) => l.node === 'hub' && l.replica === 'hub-1' && l.service === 'hub'));

    // Job control reaches the hub as service "hub", node "hub".
    const replies: JobControlReply[] = [];
    const inbox = nc.subscribe('_INBOX.hub-jobs', { callback: (e, m) => { if (!e) replies.push(decodeMessage(JobControlReply, m.data)); } });
    t.after(() => inbox.unsubscribe());
    nc.publish(JOBS_CONTROL_SUBJECT, encodeMessage(JobControlRequest, JobControlRequest.fromPartial({ op: 'run', tag: 'tick', service: 'hub' })), { reply: '_INBOX.hub-jobs' });
    await waitFor('job-control reply', () => replies.length === 1);
    await waitFor('hub job ran', () => lines(logs, 'job on').length === 1);
    assert.deepEqual(lines(logs, 'job on'), ['job on hub']);
    assert.equal(replies[0].node, 'hub');
    assert.equal(replies[0].service, 'hub');
    assert.equal(replies[0].affected, 1);

    await waitFor('a status with the actions', () => (statuses.items.at(-1)?.counters.hub_actions_processed ?? 0) >= 3);
    const st = statuses.items.at(-1)!;
    assert.equal(st.service, 'hub');
    assert.equal(st.node, 'hub');
    assert.equal(st.counters.pod_watch, 0);
    assert.equal(st.counters.hub_actions_invalid, 0);
    await waitFor('all acknowledged', async () => (await consumerState(nc)).ackPending === 0);
  });

  test('a hub restart loses no action and runs each once; invalid messages are acknowledged and counted', async (t) => {
    await putScriptSet(nc, [{ code: COUNTER }]);
    const logs = collect(nc, LOGS_WILDCARD, (b) => decodeMessage(ConsoleLine, b));
    t.after(() => logs.sub.unsubscribe());
    const js = jetstream(nc);

    const first = await startHub(server.url, 'hub-2');
    for (let i = 0; i < 20; i++) await js.publish(HUB_ACTIONS_SUBJECT, actionMsg('n', { i }));
    await waitFor('first batch', () => first.actionCounters!.processed >= 20);
    first.scriptEngine.runAllJobsNow();
    await waitFor('first report', () => lines(logs, 'report').length === 1);
    await first.stop();
    assert.deepEqual(lines(logs, 'report'), ['report hub total=20 distinct=20 dup=0']);

    // While no hub runs: 200 actions, and three that are not actions at all.
    for (let i = 20; i < 220; i++) await js.publish(HUB_ACTIONS_SUBJECT, actionMsg('n', { i }));
    await js.publish(HUB_ACTIONS_SUBJECT, new Uint8Array([0xff, 0xff, 0xff, 0x0f, 0x01]));
    await js.publish(HUB_ACTIONS_SUBJECT, encodeMessage(HubAction, HubAction.fromPartial({ action: 'n', objectJson: Buffer.from('{not json') })));
    await js.publish(HUB_ACTIONS_SUBJECT, encodeMessage(HubAction, HubAction.fromPartial({ action: '', objectJson: Buffer.from('{}') })));
    await js.publish(HUB_ACTIONS_SUBJECT, actionMsg('n', { i: 220 }));
    assert.equal((await consumerState(nc)).pending, 204);

    const second = await startHub(server.url, 'hub-2');
    t.after(() => second.stop());
    await waitFor('second batch', () => second.actionCounters!.processed + second.actionCounters!.invalid >= 204);
    assert.equal(second.actionCounters!.invalid, 3);
    assert.equal(second.actionCounters!.processed, 201);
    await waitFor('all acknowledged', async () => {
      const s = await consumerState(nc);
      return s.pending === 0 && s.ackPending === 0;
    });
    // Longer than ACTION_ACK_WAIT: nothing comes back.
    await new Promise((r) => setTimeout(r, 1_300));
    assert.equal(second.actionCounters!.redelivered, 0);
    second.scriptEngine.runAllJobsNow();
    await waitFor('second report', () => lines(logs, 'report').length === 2);
    assert.equal(lines(logs, 'report')[1], 'report hub total=201 distinct=201 dup=0');
    assert.equal(second.statusCounters().hub_actions_invalid, 3);
  });

  test('a deleted consumer, then a deleted stream, are created again and actions flow on', async (t) => {
    await putScriptSet(nc, [{ code: COUNTER }]);
    const hub = await startHub(server.url, 'hub-repair');
    t.after(() => hub.stop());
    const jsm = await jetstreamManager(nc);
    let i = 1000;
    for (const what of ['consumer', 'stream'] as const) {
      // (nats-server's file store sometimes answers a delete racing its own writes with "directory not empty": ask again.)
      await waitFor(`${what} deleted`, async () => {
        try {
          if (what === 'consumer') await jsm.consumers.delete(HUB_ACTIONS_STREAM, HUB_ACTIONS_CONSUMER);
          else await jsm.streams.delete(HUB_ACTIONS_STREAM);
          return true;
        } catch (err) {
          if (/not found/i.test((err as Error).message)) return true;
          return false;
        }
      });
      const before = hub.actionCounters!.processed;
      // Published until one gets through: what is published while the stream is gone is lost (the publisher's side).
      await waitFor(`actions flow after the ${what} was deleted`, async () => {
        nc.publish(HUB_ACTIONS_SUBJECT, actionMsg('n', { i: i++ }));
        await new Promise((r) => setTimeout(r, 50));
        return hub.actionCounters!.processed > before;
      }, 15_000);
    }
    assert.ok(hub.actionCounters!.consumerRecreated >= 2);
  });

  test('POD_WATCH=auto in a cluster without a service account token: pod watch off, said loudly; POD_WATCH=on: startup error', { skip: existsSync('/var/run/secrets/kubernetes.io/serviceaccount/token') && 'running in a pod' }, async () => {
    const inCluster = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: '1' };
    const errors: string[] = [];
    const log = { debug() {}, info() {}, warn() {}, error: (m: string) => errors.push(m) };
    const hub = new Hub(loadConfig(hubConfig, hubEnv(server.url, 'hub-auto', { POD_WATCH: 'auto', ...inCluster })), { log });
    await hub.start();
    assert.equal(hub.podWatchEnabled, false);
    assert.match(errors.join('\n'), /cannot load the in-cluster Kubernetes config: .*token/);
    await hub.stop();
    const strict = new Hub(loadConfig(hubConfig, hubEnv(server.url, 'hub-on', { POD_WATCH: 'on', ...inCluster })), { log });
    await assert.rejects(strict.start(), /token/);
  });

  test('nats-server killed and restarted mid-stream: the hub resumes and runs every action once', async (t) => {
    await putScriptSet(nc, [{ code: COUNTER }]);
    await ensureStream(nc, HUB_ACTIONS_STREAM_OPTIONS);
    const js = jetstream(nc);
    const N = 200;
    // Published first (the hub's slow onHubAction shares this process's event loop); msgID: the stream drops a retried publish.
    for (let i = 0; i < N; i++) await js.publish(HUB_ACTIONS_SUBJECT, actionMsg('n', { i, slow: 10 }), { msgID: `crash-${i}` });
    const hub = await startHub(server.url, 'hub-3', { ACTION_MAX_IN_FLIGHT: '16' });
    t.after(() => hub.stop());
    await waitFor('some processed', () => hub.actionCounters!.processed >= 20);
    const atKill = hub.actionCounters!.processed;
    await server.kill();
    await new Promise((r) => setTimeout(r, 300));
    await server.restart();
    await waitFor('JetStream back', async () => (await consumerState(nc).catch(() => null)) !== null, 15_000);
    for (let i = N; i < N + 50; i++) await js.publish(HUB_ACTIONS_SUBJECT, actionMsg('n', { i }), { msgID: `crash-${i}` });
    await waitFor('every action ran', () => hub.actionCounters!.processed >= N + 50, 30_000);
    assert.ok(atKill < N, `the crash came mid-stream (${atKill} of ${N} done)`);
    await waitFor('all acknowledged', async () => {
      const s = await consumerState(nc).catch(() => ({ pending: -1, ackPending: -1 }));
      return s.pending === 0 && s.ackPending === 0;
    }, 15_000);
    // Redeliveries of actions whose ack died with the server are recognised and not run again.
    const logs = collect(nc, LOGS_WILDCARD, (b) => decodeMessage(ConsoleLine, b));
    t.after(() => logs.sub.unsubscribe());
    await nc.flush();
    hub.scriptEngine.runAllJobsNow();
    await waitFor('report', () => lines(logs, 'report').length === 1);
    assert.equal(lines(logs, 'report')[0], `report hub total=${N + 50} distinct=${N + 50} dup=0`);
    assert.equal(hub.actionCounters!.processed, N + 50);
  });
});

function podObj(ns: string, name: string, ip: string | undefined, extra: Partial<{ node: string; labels: Record<string, string>; phase: string }> = {}): KubeObject {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace: ns, labels: extra.labels ?? { app: name } },
    spec: { nodeName: extra.node ?? 'node-a', containers: [{ name: 'c', image: 'busybox' }] },
    status: { phase: extra.phase ?? 'Running', ...(ip ? { podIP: ip, podIPs: [{ ip }] } : {}) },
  };
}

describe('hub pod watch (test Kubernetes API server)', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let kube: KubeApiServer;

  before(async () => {
    server = await startNatsServer({ jetstream: true });
    nc = await connectNats({ url: server.url, name: 'test', log: () => {} });
    kube = await startKubeApiServer();
  });
  after(async () => {
    await kube.close();
    await drainAndClose(nc);
    await server.stop();
  });

  test('pods become ws.pods events, onPodEvent in the hub and a runner, and the IP -> pod map; drops and 410s converge', async (t) => {
    await putScriptSet(nc, [{ code: `// pod logger
function onPodEvent(ev, pod) { console.log('pod', utils.nodeName(), ev, pod.metadata.namespace + '/' + pod.metadata.name, pod.kind); }
` }]);
    kube.put(podObj('shop', 'web-1', '10.1.0.1'));
    kube.put(podObj('shop', 'db-0', '10.1.0.2'));
    kube.put(podObj('kube-system', 'proxy', '10.1.0.3'));
    // Left in the map by an earlier hub: a pod that no longer exists.
    const kv = await openPodMapKv(nc);
    await kv.put('10_9_9_9', JSON.stringify({ name: 'ghost', namespace: 'old', node: 'n', uid: 'u' }));

    const events = collect(nc, PODS_WILDCARD, (b) => decodeMessage(PodEvent, b));
    const logs = collect(nc, LOGS_WILDCARD, (b) => decodeMessage(ConsoleLine, b));
    t.after(() => { events.sub.unsubscribe(); logs.sub.unsubscribe(); });
    const runner = await startRunner(server.url, 'runner-p');
    t.after(() => runner.stop());
    const dir = await PodDirectory.open(nc);
    t.after(() => dir.stop());
    const hub = await startHub(server.url, 'hub-p', { POD_WATCH: 'auto', KUBECONFIG: kube.kubeconfigYaml() });
    t.after(() => hub.stop());
    assert.equal(hub.podWatchEnabled, true);

    const evs = () => events.items.map((e) => `${e.event} ${e.namespace}/${e.name}`);
    await waitFor('initial ADDED events', () => evs().length >= 3);
    assert.deepEqual(evs().sort(), ['ADDED kube-system/proxy', 'ADDED shop/db-0', 'ADDED shop/web-1']);
    const web = events.items.find((e) => e.name === 'web-1')!;
    const webPod = JSON.parse(Buffer.from(web.podJson).toString()) as { kind: string; metadata: { uid: string }; status: { podIP: string } };
    assert.equal(webPod.kind, 'Pod');
    assert.equal(webPod.status.podIP, '10.1.0.1');
    assert.ok(webPod.metadata.uid);
    await waitFor('onPodEvent in hub and runner', () => lines(logs, 'pod ').length >= 6);
    assert.ok(lines(logs, 'pod hub ADDED shop/web-1 Pod').length === 1);
    assert.ok(lines(logs, 'pod node-a ADDED shop/web-1 Pod').length === 1);

    // The map: every pod IP, the stale key gone; capture's reader resolves.
    await waitFor('pod map written', () => dir.resolve('10.1.0.3') !== undefined && dir.resolve('10.9.9.9') === undefined);
    assert.deepEqual(dir.resolve('10.1.0.1'), { name: 'web-1', namespace: 'shop' });
    assert.deepEqual(dir.resolve('10.1.0.2'), { name: 'db-0', namespace: 'shop' });
    const stored = await readBucket(kv);
    assert.deepEqual(JSON.parse(stored.get('10_1_0_1')!), { name: 'web-1', namespace: 'shop', node: 'node-a', uid: webPod.metadata.uid });
    assert.equal(stored.has('10_9_9_9'), false);

    // Live changes.
    kube.put(podObj('shop', 'web-1', '10.1.0.1', { labels: { app: 'web', v: '2' } }));
    kube.remove('Pod', 'shop', 'db-0');
    kube.put(podObj('shop', 'cache-0', undefined, { phase: 'Pending' }));
    await waitFor('live events', () => evs().includes('DELETED shop/db-0') && evs().includes('MODIFIED shop/web-1') && evs().includes('ADDED shop/cache-0'));
    const deleted = events.items.find((e) => e.event === 'DELETED' && e.name === 'db-0')!;
    assert.equal(JSON.parse(Buffer.from(deleted.podJson).toString()).status.podIP, '10.1.0.2', 'DELETED carries the pod');
    await waitFor('deleted pod IP removed', () => dir.resolve('10.1.0.2') === undefined);
    // The pending pod gets its IP: the map follows MODIFIED.
    kube.put(podObj('shop', 'cache-0', '10.1.0.4'));
    await waitFor('new IP mapped', () => dir.resolve('10.1.0.4')?.name === 'cache-0');
    await waitFor('hub and runner saw the deletion', () => lines(logs, 'pod hub DELETED shop/db-0').length === 1 && lines(logs, 'pod node-a DELETED shop/db-0').length === 1);

    // Watch dropped: changes meanwhile arrive when it resumes from its resourceVersion.
    events.items.length = 0;
    kube.dropWatches();
    kube.remove('Pod', 'kube-system', 'proxy');
    await waitFor('DELETED after the drop', () => evs().includes('DELETED kube-system/proxy'), 10_000);
    await waitFor('proxy IP removed', () => dir.resolve('10.1.0.3') === undefined);

    // Watch dropped and history compacted: the resume gets 410 Gone, the re-list converges.
    events.items.length = 0;
    const gone = hub.statusCounters().pod_watch_gone;
    kube.dropWatches();
    kube.remove('Pod', 'shop', 'web-1');
    kube.put(podObj('shop', 'api-0', '10.1.0.5'));
    kube.compact();
    await waitFor('re-list converged', () => evs().includes('DELETED shop/web-1') && evs().includes('ADDED shop/api-0'), 10_000);
    assert.ok(hub.statusCounters().pod_watch_gone > gone, 'a 410 made it re-list');
    assert.ok(hub.statusCounters().pod_events_reconciled_deleted >= 1);
    const del = events.items.find((e) => e.event === 'DELETED' && e.name === 'web-1')!;
    assert.equal(JSON.parse(Buffer.from(del.podJson).toString()).metadata.labels.v, '2', 'the last state seen');
    await waitFor('map converged', () => dir.resolve('10.1.0.1') === undefined && dir.resolve('10.1.0.5')?.name === 'api-0');
    await waitFor('hub onPodEvent for the reconciled deletion', () => lines(logs, 'pod hub DELETED shop/web-1').length === 1);
    assert.equal(evs().filter((e) => e === 'DELETED shop/web-1').length, 1);
    assert.equal(hub.statusCounters().pod_events_dropped, 0);
  });

  test('POD_NAMESPACES limits the watch to those namespaces (kubeconfig from a file path)', async (t) => {
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
    const os = await import('node:os');
    const path = await import('node:path');
    const dirPath = await mkdtemp(path.join(os.tmpdir(), 'hub-kube-'));
    t.after(() => rm(dirPath, { recursive: true, force: true }));
    const file = path.join(dirPath, 'config');
    await writeFile(file, kube.kubeconfigYaml());
    kube.put(podObj('team-a', 'a-1', '10.2.0.1'));
    kube.put(podObj('team-b', 'b-1', '10.2.0.2'));
    kube.put(podObj('team-c', 'c-1', '10.2.0.3'));
    const events = collect(nc, PODS_WILDCARD, (b) => decodeMessage(PodEvent, b));
    t.after(() => events.sub.unsubscribe());
    const hub = await startHub(server.url, 'hub-ns', { POD_WATCH: 'on', KUBECONFIG: file, POD_NAMESPACES: 'team-a,team-b' });
    t.after(() => hub.stop());
    await waitFor('synced', () => hub.podWatchSynced);
    await waitFor('events', () => events.items.length >= 2);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(events.items.map((e) => `${e.event} ${e.namespace}/${e.name}`).sort(), ['ADDED team-a/a-1', 'ADDED team-b/b-1']);
    assert.ok(kube.requests.some((r) => r.path === '/api/v1/namespaces/team-a/pods'));
    assert.ok(!kube.requests.some((r) => r.path === '/api/v1/namespaces/team-c/pods'));
  });
});

describe('hub as a process', () => {
  const BIN = new URL('../../bin/wirescript.ts', import.meta.url).pathname;
  function run(env: Record<string, string>) {
    const child = spawn(process.execPath, [BIN, 'hub'], { env: { ...process.env, KUBECONFIG: '', KUBERNETES_SERVICE_HOST: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    return { child, exited, stderr: () => stderr };
  }

  test('a bad variable exits 2 naming it', async () => {
    const p = run({ NATS_URL: 'nats://127.0.0.1:1', POD_WATCH: 'sometimes', HEALTH_PORT: '0' });
    assert.equal(await p.exited, 2);
    assert.match(p.stderr(), /POD_WATCH/);
  });

  test('without Kubernetes it says so, serves health, and SIGTERM drains and exits 0', async (t) => {
    const server = await startNatsServer({ jetstream: true });
    t.after(() => server.stop());
    const port = await freePort();
    const p = run({ NATS_URL: server.url, REPLICA_ID: 'hub-proc', LOG_LEVEL: 'info', HEALTH_PORT: String(port), HEALTH_HOST: '127.0.0.1' });
    t.after(() => { if (p.child.exitCode === null) p.child.kill('SIGKILL'); });
    await waitFor('started', () => /started: replica hub-proc/.test(p.stderr()), 15_000);
    assert.match(p.stderr(), /pod watch off: no Kubernetes configured.*running hub actions and jobs only/);
    const res = await fetch(`http://127.0.0.1:${port}/readyz`);
    assert.equal(res.status, 200, await res.text());
    p.child.kill('SIGTERM');
    assert.equal(await p.exited, 0, p.stderr());
    assert.match(p.stderr(), /SIGTERM received, draining/);
  });
});
