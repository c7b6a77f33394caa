/** The script-runner as a real process: bad config exits with the variable named; SIGTERM drains and exits 0. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { connectNats, drainAndClose } from '@wirescript/nats';
import { Item, ReplicaStatus, decodeMessage, encodeMessage, itemsSubject, statusSubject } from '@wirescript/proto';
import { makeHttpItem, putScriptSet, startNatsServer } from '@wirescript/testing';
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
  const p = run(['script-runner'], { NATS_URL: 'http://x', HOOK_TIMEOUT: 'soon' });
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
  const p = run(['script-runner'], { NATS_URL: server.url, REPLICA_ID: 'proc-1', NODE_NAME: 'node-a', STATUS_INTERVAL: '100ms', LOG_LEVEL: 'info' });
  await waitFor('first status', () => statuses.length > 0, 15_000);
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
