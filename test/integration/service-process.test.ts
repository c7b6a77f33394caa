/** The script-runner as a real process: bad config exits with the variable named; SIGTERM drains and exits 0. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { connectNats, drainAndClose } from '@wirescript/nats';
import { Item, ReplicaStatus, decodeMessage, encodeMessage, itemsSubject, statusSubject } from '@wirescript/proto';
import { freePort, makeHttpItem, putScriptSet, startNatsServer } from '@wirescript/testing';
import { waitFor } from './helpers.ts';

const BIN = new URL('../../bin/wirescript.ts', import.meta.url).pathname;

function run(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, exited, stderr: () => stderr };
}

test('a bad environment variable stops the service with a message naming it', async () => {
  const p = run(['script-runner'], { NATS_URL: 'http://x', HOOK_TIMEOUT: 'soon', HEALTH_PORT: '0' });
  assert.equal(await p.exited, 2);
  assert.match(p.stderr(), /NATS_URL/);
  assert.match(p.stderr(), /HOOK_TIMEOUT/);
});

test('SIGTERM: stops taking work, finishes, publishes a final status, exits 0', async (t) => {
  const server = await startNatsServer({ jetstream: true });
  const nc = await connectNats({ url: server.url, name: 'test', log: () => {} });
  t.after(async () => {
    await drainAndClose(nc);
    await server.stop();
  });
  await putScriptSet(nc, [{ code: '// count\nvar n = 0; function onItemCaptured(d) { n++; }' }]);
  const statuses: ReplicaStatus[] = [];
  nc.subscribe(statusSubject('script-runner', 'proc-1'), { callback: (e, m) => { if (!e) statuses.push(decodeMessage(ReplicaStatus, m.data)); } });
  const healthPort = await freePort();
  const p = run(['script-runner'], { NATS_URL: server.url, REPLICA_ID: 'proc-1', NODE_NAME: 'node-a', STATUS_INTERVAL: '100ms', LOG_LEVEL: 'info', HEALTH_PORT: String(healthPort) });
  await waitFor('first status', () => statuses.length > 0, 15_000);
  for (const route of ['/livez', '/readyz']) {
    const res = await fetch(`http://127.0.0.1:${healthPort}${route}`);
    assert.equal(res.status, 200, await res.text());
  }
  assert.equal((await fetch(`http://127.0.0.1:${healthPort}/nope`)).status, 404);
  for (let i = 0; i < 500; i++) {
    const it = makeHttpItem(i);
    nc.publish(itemsSubject('node-a', 'http'), encodeMessage(Item, Item.fromPartial({ id: String(i), node: 'node-a', protocol: 'http', json: Buffer.from(JSON.stringify(it)) })));
  }
  await nc.flush();
  await waitFor('items seen in status', () => (statuses.at(-1)?.counters.items_received ?? 0) >= 500, 10_000);
  p.child.kill('SIGTERM');
  assert.equal(await p.exited, 0, p.stderr());
  const last = statuses.at(-1)!;
  assert.equal(last.counters.items_processed, 500);
  assert.equal(last.counters.items_dropped, 0);
  assert.equal(last.scripts[0]?.hookCalls, 500);
  assert.match(p.stderr(), /SIGTERM received, draining/);
});

test('readiness fails while NATS is down and recovers after it returns; a taken health port is a clear startup error', async (t) => {
  const server = await startNatsServer({ jetstream: true });
  const nc = await connectNats({ url: server.url, name: 'test', log: () => {} });
  await putScriptSet(nc, [{ code: '// idle\nfunction onItemCaptured(d) {}' }]);
  await drainAndClose(nc);
  const healthPort = await freePort();
  const p = run(['script-runner'], { NATS_URL: server.url, REPLICA_ID: 'proc-2', HEALTH_PORT: String(healthPort), LOG_LEVEL: 'info' });
  t.after(async () => {
    p.child.kill('SIGKILL');
    await server.stop();
  });
  const status = (route: string) => fetch(`http://127.0.0.1:${healthPort}${route}`).then((r) => r.status, () => 0);
  await waitFor('ready', async () => (await status('/readyz')) === 200, 15_000);
  // A second runner on the same health port must refuse to start, naming the variable.
  const q = run(['script-runner'], { NATS_URL: server.url, REPLICA_ID: 'proc-3', HEALTH_PORT: String(healthPort) });
  assert.equal(await q.exited, 1);
  assert.match(q.stderr(), /HEALTH_PORT/);
  await server.kill();
  await waitFor('not ready while NATS is down', async () => (await status('/readyz')) === 503, 15_000);
  assert.equal(await status('/livez'), 200, 'still alive');
  await server.restart();
  await waitFor('ready again', async () => (await status('/readyz')) === 200, 20_000);
});
