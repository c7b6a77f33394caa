/**
 * config-sync against a real nats-server and the test Kubernetes API server
 * (the real @kubernetes/client-node speaking HTTP + watch to it), and with a
 * real folder: ConfigMap + Secret -> KV ScriptSet, validation, broken JSON,
 * watch drops and 410 Gone, a runner started later, hot swap, no secret in
 * logs or status.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '@wirescript/config';
import { ConfigSync, configSyncConfig, createSource } from '@wirescript/config-sync';
import { connectNats, drainAndClose, openKv, type KV, type NatsConnection } from '@wirescript/nats';
import { ReplicaStatus, SCRIPTS_KV_BUCKET, SCRIPTS_KV_KEY, ScriptSet, decodeMessage, statusSubject } from '@wirescript/proto';
import { createLogger } from '@wirescript/script-host';
import { freePort, startKubeApiServer, startNatsServer, type KubeApiServer, type KubeObject, type NatsServer } from '@wirescript/testing';
import { collect, startRunner, waitFor } from './helpers.ts';

const NS = 'wirescript';
const SECRET_VALUE = 'xoxb-never-log-me-7f3a9c';

function configMap(scripts: Record<string, { title?: string; code: string; active?: boolean }> | string, active = ''): KubeObject {
  return {
    apiVersion: 'v1', kind: 'ConfigMap',
    metadata: { name: 'kubeshark-config-map', namespace: NS },
    data: { SCRIPTING_SCRIPTS: typeof scripts === 'string' ? scripts : JSON.stringify(scripts), SCRIPTING_ACTIVE_SCRIPTS: active, 'other-setting': 'kept' },
  };
}

function secret(env: Record<string, string> | string): KubeObject {
  const text = typeof env === 'string' ? env : JSON.stringify(env);
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'kubeshark-secret', namespace: NS }, type: 'Opaque', data: { SCRIPTING_ENV: Buffer.from(text).toString('base64') } };
}

const COUNTER = '// counter\nvar n = 0;\nfunction onItemCaptured(d) { n++; }';
const SLACK = '// slack notifier\nfunction onItemCaptured(d) { if (d.response.status >= 500) console.log("5xx"); }';
const BAD = '// arrow user\nvar f = (x) => x + 1;';

describe('config-sync', () => {
  let nats: NatsServer;
  let kube: KubeApiServer;
  let nc: NatsConnection;
  let kv: KV;
  let dir: string;
  let kubeconfigFile: string;

  before(async () => {
    nats = await startNatsServer({ jetstream: true });
    kube = await startKubeApiServer();
    nc = await connectNats({ url: nats.url, name: 'test', log: () => {} });
    kv = await openKv(nc, SCRIPTS_KV_BUCKET, { create: true, history: 5 });
    dir = mkdtempSync(path.join(tmpdir(), 'config-sync-'));
    kubeconfigFile = path.join(dir, 'kubeconfig.yaml');
    writeFileSync(kubeconfigFile, kube.kubeconfigYaml());
  });
  after(async () => {
    await drainAndClose(nc);
    await kube.close();
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function readSet(): Promise<ScriptSet | null> {
    const e = await kv.get(SCRIPTS_KV_KEY);
    return e && e.operation === 'PUT' ? decodeMessage(ScriptSet, e.value, 'wirescript.v1.ScriptSet') : null;
  }

  function startSync(replica: string, extra: Record<string, string> = {}) {
    const lines: string[] = [];
    const config = loadConfig(configSyncConfig, {
      NATS_URL: nats.url, REPLICA_ID: replica, NODE_NAME: 'node-a', LOG_LEVEL: 'debug', HEALTH_PORT: '0', STATUS_INTERVAL: '200ms',
      SYNC_DEBOUNCE: '20ms', WATCH_BACKOFF_MIN: '50ms', WATCH_BACKOFF_MAX: '300ms', CONFIGMAP_NAMESPACE: NS, KUBECONFIG: kubeconfigFile, ...extra,
    });
    const log = createLogger('config-sync', 'debug', (l) => lines.push(l));
    const sync = new ConfigSync(config, { source: createSource(config, log), log });
    return { sync, lines };
  }

  test('ConfigMap + Secret -> KV; invalid script reported, not activated; broken JSON keeps the last good set; drops and 410 recovered; runners hot-swap; no secret in logs', async (t) => {
    kube.put(configMap({ '0': { title: 'counter', code: COUNTER, active: true }, '1': { code: SLACK }, '2': { code: BAD, active: true }, '3': { title: 'idle', code: '// idle\nvar i;' } }, 'slack notifier'));
    kube.put(secret({ SLACK_TOKEN: SECRET_VALUE, URL: 'http://127.0.0.1:1/hook' }));
    const statuses = collect(nc, statusSubject('config-sync', 'cs-1'), (b) => decodeMessage(ReplicaStatus, b));
    t.after(() => statuses.sub.unsubscribe());
    const { sync, lines } = startSync('cs-1');
    t.after(() => sync.stop());
    await sync.start();
    await sync.firstSync;

    // The set, decoded from the bucket.
    let set = (await readSet())!;
    assert.equal(set.source, `configmap:${NS}/kubeshark-config-map`);
    assert.deepEqual(set.env, { SLACK_TOKEN: SECRET_VALUE, URL: 'http://127.0.0.1:1/hook' });
    assert.deepEqual(set.scripts.map((s) => [s.index, s.title, s.active]), [[0, 'counter', true], [1, 'slack notifier', true], [2, 'arrow user', false], [3, 'idle', false]]);
    const rev1 = set.revision;
    assert.ok(rev1 >= 1);
    assert.ok(lines.some((l) => /WARN .*invalid script "arrow user" \(index 2\) at 2:\d+: not valid ES5/.test(l)), lines.join('\n'));

    await waitFor('a status with the diagnostics', () => statuses.items.some((s) => s.scriptSetRevision === rev1 && s.counters.scripts_invalid === 1));
    let st = statuses.items.at(-1)!;
    assert.equal(st.counters.scripts_total, 4);
    assert.equal(st.counters.scripts_active, 2);
    assert.match(st.scripts.find((s) => s.title === 'arrow user')!.lastError, /^2:\d+: not valid ES5/);

    // A runner started now gets the current set.
    const runner = await startRunner(nats.url, 'runner-late');
    t.after(() => runner.stop());
    assert.equal(runner.revision, rev1);
    assert.deepEqual(runner.scriptEngine.stats().scripts.map((s) => s.title).sort(), ['counter', 'slack notifier']);

    // Nothing changed: no new revision.
    const syncsBefore = sync.counters.syncs;
    kube.put(configMap({ '0': { title: 'counter', code: COUNTER, active: true }, '1': { code: SLACK }, '2': { code: BAD, active: true }, '3': { title: 'idle', code: '// idle\nvar i;' } }, 'slack notifier'));
    await waitFor('a sync of the unchanged ConfigMap', () => sync.counters.syncs > syncsBefore);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await readSet())!.revision, rev1);

    // Fix the bad script: the runner swaps within a second, without restarting.
    const t0 = Date.now();
    kube.put(configMap({ '0': { title: 'counter', code: COUNTER, active: true }, '1': { code: SLACK }, '2': { code: '// arrow user\nvar f = function (x) { return x + 1; };', active: true } }, 'slack notifier'));
    await waitFor('the runner on the new revision', () => runner.revision > rev1, 2000);
    const swapMs = Date.now() - t0;
    assert.ok(swapMs < 1000, `swapped in ${swapMs} ms`);
    assert.deepEqual(runner.scriptEngine.stats().scripts.map((s) => s.title).sort(), ['arrow user', 'counter', 'slack notifier']);
    set = (await readSet())!;
    const rev2 = set.revision;
    assert.equal(rev2, rev1 + 1);

    // Broken JSON: reported, the last good set stays.
    kube.put(configMap('{"0": {"title": "counter", "code": '));
    await waitFor('the JSON error counted', () => sync.counters.jsonErrors >= 1);
    assert.ok(lines.some((l) => /SCRIPTING_SCRIPTS is not valid JSON.*keeping the last good set/.test(l)));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await readSet())!.revision, rev2);
    assert.equal(runner.revision, rev2);
    await waitFor('a status after the error', () => (statuses.items.at(-1)?.counters.json_errors ?? 0) >= 1);
    st = statuses.items.at(-1)!;
    // The previous scripts' diagnostics are still there.
    assert.deepEqual(st.scripts.map((s) => s.title).sort(), ['arrow user', 'counter', 'slack notifier']);

    // Secret broken: the last good env stays, and nothing of it is echoed.
    kube.put(secret(`{"SLACK_TOKEN": "${SECRET_VALUE}"`));
    await waitFor('the env error counted', () => sync.counters.envErrors >= 1);

    // A dropped watch is resumed; a compacted history means 410 Gone and a re-list.
    kube.dropWatches();
    kube.put(configMap({ '0': { title: 'counter', code: COUNTER, active: true } }));
    await waitFor('the change after a dropped watch', async () => ((await readSet())?.scripts.length ?? 0) === 1, 5000);
    kube.compact();
    kube.dropWatches();
    kube.put(secret({ SLACK_TOKEN: SECRET_VALUE, NEW: 'v' }));
    await waitFor('the change after 410 Gone', async () => (await readSet())?.env.NEW === 'v', 5000);
    await waitFor('reconnect and 410 in status', () => {
      const c = statuses.items.at(-1)?.counters ?? {};
      return (c.kube_reconnects ?? 0) >= 2 && (c.kube_gone_410 ?? 0) >= 1;
    }, 5000);

    // The ConfigMap deleted: no scripts.
    kube.remove('ConfigMap', NS, 'kubeshark-config-map');
    await waitFor('the empty set', async () => (await readSet())?.scripts.length === 0, 5000);
    await waitFor('the runner without scripts', () => runner.scriptEngine.stats().scripts.length === 0, 2000);

    // Env values never in the logs, nor in a status.
    assert.ok(lines.length > 5);
    assert.ok(lines.every((l) => !l.includes(SECRET_VALUE)), 'a log line holds the secret');
    assert.ok(statuses.items.every((s) => !JSON.stringify(ReplicaStatus.toJSON(s)).includes(SECRET_VALUE)));
  });

  test('a second config-sync (restart) on the same source writes nothing new; readiness follows the first sync', async (t) => {
    kube.put(configMap({ '0': { title: 'counter', code: COUNTER, active: true } }));
    kube.put(secret({ A: 'b' }));
    const a = startSync('cs-a');
    await a.sync.start();
    await a.sync.firstSync;
    await waitFor('the set', async () => (await readSet())?.env.A === 'b');
    const rev = (await readSet())!.revision;
    await a.sync.stop();
    const b = startSync('cs-b', { HEALTH_PORT: '0' });
    t.after(() => b.sync.stop());
    await b.sync.start();
    await b.sync.firstSync;
    assert.equal((await readSet())!.revision, rev);
    assert.equal(b.sync.revision, rev);
    assert.equal(b.sync.counters.kvWrites, 0);
    // Someone deletes the key: written again.
    await kv.delete(SCRIPTS_KV_KEY);
    await waitFor('the set written again', async () => (await readSet())?.revision === rev + 1, 3000);
  });

  test('health: /readyz waits for the first sync (the API unreachable at first)', async (t) => {
    const down = path.join(dir, 'down.yaml');
    writeFileSync(down, kube.kubeconfigYaml().replace(/127\.0\.0\.1:\d+/, '127.0.0.1:1'));
    const { sync, lines } = startSync('cs-h', { HEALTH_PORT: String(await freePort()), KUBECONFIG: down });
    t.after(() => sync.stop());
    await sync.start();
    const url = `http://127.0.0.1:${sync.healthPort}`;
    assert.equal((await fetch(`${url}/livez`)).status, 200);
    await waitFor('a watch error logged', () => lines.some((l) => /WARN .*ConfigMap wirescript\/kubeshark-config-map: /.test(l)), 3000);
    const r = await fetch(`${url}/readyz`);
    assert.equal(r.status, 503);
    assert.match(await r.text(), /first sync from configmap:wirescript\/kubeshark-config-map not done yet/);
  });

  test('folder source: create, change, rename and delete are reflected', async (t) => {
    const scripts = path.join(dir, 'scripts');
    mkdirSync(scripts);
    writeFileSync(path.join(scripts, 'a.js'), '// alpha\nvar a = 1;');
    writeFileSync(path.join(scripts, 'notes.txt'), 'not a script');
    const { sync, lines } = startSync('cs-dir', { SCRIPTS_DIR: scripts, SCRIPTING_ENV: JSON.stringify({ TOKEN: SECRET_VALUE }) });
    t.after(() => sync.stop());
    await sync.start();
    await sync.firstSync;
    const titles = async () => ((await readSet())?.scripts ?? []).filter((s) => s.active).map((s) => s.title).sort().join(',');
    let set = (await readSet())!;
    assert.equal(set.source, `dir:${scripts}`);
    assert.deepEqual(set.env, { TOKEN: SECRET_VALUE });
    assert.equal(await titles(), 'alpha');

    writeFileSync(path.join(scripts, 'b.js'), '// beta\nvar b = 1;');
    await waitFor('created', async () => (await titles()) === 'alpha,beta', 3000);
    writeFileSync(path.join(scripts, 'b.js'), '// beta two\nvar b = 2;');
    await waitFor('changed', async () => (await titles()) === 'alpha,beta two', 3000);
    renameSync(path.join(scripts, 'a.js'), path.join(scripts, 'c.js'));
    writeFileSync(path.join(scripts, 'c.js'), '// gamma\nvar c = 1;');
    await waitFor('renamed', async () => (await titles()) === 'beta two,gamma', 3000);
    rmSync(path.join(scripts, 'b.js'));
    await waitFor('deleted', async () => (await titles()) === 'gamma', 3000);
    writeFileSync(path.join(scripts, 'd.js'), '// delta\nconst d = 1;');
    await waitFor('invalid file reported', () => lines.some((l) => /invalid script "delta" .* at 2:1: not valid ES5/.test(l)), 3000);
    set = (await readSet())!;
    assert.deepEqual(set.scripts.filter((s) => !s.active).map((s) => s.title), ['delta']);
    assert.ok(lines.every((l) => !l.includes(SECRET_VALUE)));
  });

  test('the service as a process: a bad variable exits 2 naming it; a missing SCRIPTS_DIR exits 1 with one line', async () => {
    const bin = new URL('../../bin/wirescript.ts', import.meta.url).pathname;
    const run = (env: Record<string, string>) => new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [bin, 'config-sync'], { env: { ...process.env, HEALTH_PORT: '0', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('exit', (code) => resolve({ code, stderr }));
    });
    const bad = await run({ NATS_URL: nats.url, SYNC_DEBOUNCE: 'later', SCRIPTING_ENV: `{"K": "${SECRET_VALUE}"` });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /SYNC_DEBOUNCE/);
    assert.match(bad.stderr, /SCRIPTING_ENV/);
    assert.ok(!bad.stderr.includes(SECRET_VALUE));
    const missing = await run({ NATS_URL: nats.url, SCRIPTS_DIR: path.join(dir, 'nope') });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^config-sync: scripts folder .*nope does not exist\n$/);
  });
});
