/**
 * script-runner against a real nats-server: queue-group sharing, outputs on
 * their subjects, limits, hot reload, back-pressure drops, status.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connectNats, drainAndClose, type NatsConnection } from '@wirescript/nats';
import {
  ConsoleLine, HUB_ACTIONS_SUBJECT, HubAction, Item, LOGS_WILDCARD, ReplicaStatus, JobEvent, JOBS_WILDCARD,
  decodeMessage, encodeMessage, itemsSubject, statusSubject, JOBS_CONTROL_SUBJECT, JobControlRequest, JobControlReply,
} from '@wirescript/proto';
import { makeHttpItem, putScriptSet, startNatsServer, type NatsServer } from '@wirescript/testing';
import { collect, startRunner, waitFor } from './helpers.ts';

function itemMsg(i: number, patch: (it: ReturnType<typeof makeHttpItem>) => void = () => {}): Uint8Array {
  const it = makeHttpItem(i);
  it.id = `item-${i}`;
  patch(it);
  return encodeMessage(Item, Item.fromPartial({ id: String(it.id), node: 'node-a', protocol: 'http', timestampMs: Number(it.timestamp), json: Buffer.from(JSON.stringify(it)) }));
}

const ID_COLLECTOR = `// id collector
var ids = [];
function onItemCaptured(data) { ids.push(data.id); }
function flush() { hub.action('ids', { replica: env.TAG, ids: ids }); ids = []; }
jobs.schedule('flush', '0 0 0 1 1 *', flush);
`;

describe('script-runner over NATS', () => {
  let server: NatsServer;
  let nc: NatsConnection;

  before(async () => {
    server = await startNatsServer({ jetstream: true });
    nc = await connectNats({ url: server.url, name: 'test', log: () => {} });
  });
  after(async () => {
    await drainAndClose(nc);
    await server.stop();
  });

  test('two replicas in a queue group share items exactly once; hub actions and console lines come out', async (t) => {
    await putScriptSet(nc, [{ code: ID_COLLECTOR }, { code: '// greeter\nconsole.log("hello from", utils.nodeName(), {ok: true});' }], { TAG: 'x' });
    const logs = collect(nc, LOGS_WILDCARD, (b) => decodeMessage(ConsoleLine, b));
    const actions = collect(nc, HUB_ACTIONS_SUBJECT, (b) => decodeMessage(HubAction, b));
    const a = await startRunner(server.url, 'runner-a');
    t.after(() => a.stop());
    const b = await startRunner(server.url, 'runner-b');
    t.after(() => b.stop());
    const N = 2000;
    for (let i = 0; i < N; i++) nc.publish(itemsSubject('node-a', 'http'), itemMsg(i));
    await nc.flush();
    await waitFor('all items processed', () => a.counters.itemsProcessed + b.counters.itemsProcessed >= N);
    assert.ok(a.counters.itemsProcessed > 0 && b.counters.itemsProcessed > 0, `both replicas got work: ${a.counters.itemsProcessed}/${b.counters.itemsProcessed}`);
    assert.equal(a.counters.itemsDropped + b.counters.itemsDropped, 0);

    // Ask every replica to run its flush job over the job-control channel.
    const replies: JobControlReply[] = [];
    const inbox = nc.subscribe('_INBOX.jobs-test', { callback: (err, m) => { if (!err) replies.push(decodeMessage(JobControlReply, m.data)); } });
    nc.publish(JOBS_CONTROL_SUBJECT, encodeMessage(JobControlRequest, JobControlRequest.fromPartial({ op: 'run', tag: 'flush' })), { reply: '_INBOX.jobs-test' });
    await waitFor('two job-control replies', () => replies.length === 2);
    inbox.unsubscribe();
    assert.deepEqual(replies.map((r) => r.replica).sort(), ['runner-a', 'runner-b']);
    assert.ok(replies.every((r) => r.affected === 1 && r.error === '' && r.jobs.some((j) => j.tag === 'flush')));

    await waitFor('two hub actions', () => actions.items.filter((x) => x.action === 'ids').length >= 2);
    const seen = new Map<string, number>();
    for (const act of actions.items.filter((x) => x.action === 'ids')) {
      const obj = JSON.parse(Buffer.from(act.objectJson).toString()) as { ids: string[] };
      for (const id of obj.ids) seen.set(id, (seen.get(id) ?? 0) + 1);
      assert.equal(act.scriptTitle, 'id collector');
      assert.equal(act.node, 'node-a');
    }
    assert.equal(seen.size, N, 'every item reached a runner');
    assert.ok([...seen.values()].every((n) => n === 1), 'no item reached both runners');

    await waitFor('greeting from both replicas', () => logs.items.filter((l) => l.text === 'hello from node-a {"ok":true}').length === 2);
    const hello = logs.items.filter((l) => l.text.startsWith('hello'));
    assert.deepEqual(hello.map((l) => l.replica).sort(), ['runner-a', 'runner-b']);
    assert.ok(hello.every((l) => l.scriptTitle === 'greeter' && l.level === 'log' && l.service === 'script-runner'));
    logs.sub.unsubscribe();
    actions.sub.unsubscribe();
  });

  test('a runaway script is stopped and reported while another keeps counting', async (t) => {
    await putScriptSet(nc, [
      { code: '// runaway\nfunction onItemCaptured(data) {\n  if (data.request.path === "/loop") { while (true) {} }\n}' },
      { code: '// counter\nvar n = 0;\nfunction onItemCaptured(data) { n++; }\nfunction report() { console.log("count", n); }\njobs.schedule("report", "0 0 0 1 1 *", report);' },
    ]);
    const logs = collect(nc, LOGS_WILDCARD, (b) => decodeMessage(ConsoleLine, b));
    const r = await startRunner(server.url, 'runner-c', { HOOK_TIMEOUT: '50ms' });
    t.after(() => r.stop());
    const N = 300;
    for (let i = 0; i < N; i++) nc.publish(itemsSubject('node-a', 'http'), itemMsg(i, (it) => { if (i % 100 === 50) it.request.path = '/loop'; }));
    await nc.flush();
    await waitFor('items processed', () => r.counters.itemsProcessed >= N);
    r.scriptEngine.runAllJobsNow();
    await waitFor('count line', () => logs.items.some((l) => l.text === `count ${N}`));
    const errors = logs.items.filter((l) => l.level === 'error' && l.scriptTitle === 'runaway' && l.hook === 'onItemCaptured');
    assert.equal(errors.length, 3, errors.map((e) => e.text).join('\n'));
    for (const e of errors) {
      assert.equal(e.hook, 'onItemCaptured');
      assert.equal(e.line, 3);
      assert.match(e.text, /time budget/);
    }
    const st = r.scriptEngine.stats();
    assert.equal(st.timeouts, 3);
    logs.sub.unsubscribe();
  });

  test('hot reload: a new script set in KV takes effect without restart; env reaches scripts', async (t) => {
    await putScriptSet(nc, [{ code: '// v1\nfunction onItemCaptured(d) { console.log("v1", d.id); }' }]);
    const logs = collect(nc, LOGS_WILDCARD, (b) => decodeMessage(ConsoleLine, b));
    const r = await startRunner(server.url, 'runner-d');
    t.after(() => r.stop());
    nc.publish(itemsSubject('node-a', 'http'), itemMsg(1));
    await waitFor('v1 line', () => logs.items.some((l) => l.text === 'v1 item-1'));
    const rev = await putScriptSet(nc, [{ code: '// v2\nfunction onItemCaptured(d) { console.log("v2", env.GREETING, d.id); }' }], { GREETING: 'hi' });
    await waitFor('revision applied', () => r.revision === rev, 2_000);
    nc.publish(itemsSubject('node-a', 'http'), itemMsg(2));
    await waitFor('v2 line', () => logs.items.some((l) => l.text === 'v2 hi item-2'));
    assert.ok(!logs.items.some((l) => l.text === 'v1 item-2'));
    logs.sub.unsubscribe();
  });

  test('a slow script never blocks the connection: overflow is dropped and counted; status reports it', async (t) => {
    await putScriptSet(nc, [{ code: '// slow\nfunction onItemCaptured(d) { var t = Date.now(); while (Date.now() - t < 2) {} }' }]);
    const statuses = collect(nc, statusSubject('script-runner', 'runner-e'), (b) => decodeMessage(ReplicaStatus, b));
    const r = await startRunner(server.url, 'runner-e', { ITEM_QUEUE_CAPACITY: '50', DISPATCH_BATCH_SIZE: '10' });
    t.after(() => r.stop());
    const N = 1000;
    for (let i = 0; i < N; i++) nc.publish(itemsSubject('node-a', 'http'), itemMsg(i));
    await nc.flush();
    await waitFor('all received', () => r.counters.itemsReceived >= N);
    // The connection stayed responsive while the script was busy.
    const t0 = Date.now();
    await nc.flush();
    assert.ok(Date.now() - t0 < 2000);
    await waitFor('queue drained', () => r.counters.itemsProcessed + r.counters.itemsDropped >= N, 20_000);
    assert.ok(r.counters.itemsDropped > 0, 'some items were dropped');
    assert.equal(r.counters.itemsProcessed + r.counters.itemsDropped, N, 'every item processed or counted as dropped');
    await waitFor('a status with the drops', () => statuses.items.some((s) => (s.counters.items_dropped ?? 0) === r.counters.itemsDropped && s.counters.items_processed === r.counters.itemsProcessed));
    const last = statuses.items.at(-1)!;
    assert.equal(last.service, 'script-runner');
    assert.equal(last.scripts[0]?.title, 'slow');
    assert.ok((last.hookLatency?.count ?? 0) >= 0);
    statuses.sub.unsubscribe();
  });

  test('job events are published on ws.jobs', async (t) => {
    await putScriptSet(nc, [{ code: '// jobber\njobs.schedule("tick", "* * * * * *", function () { console.log("tick"); }, 1);' }]);
    const events = collect(nc, JOBS_WILDCARD, (b) => decodeMessage(JobEvent, b));
    const r = await startRunner(server.url, 'runner-f');
    t.after(() => r.stop());
    await waitFor('scheduled, passed and removed events', () => ['scheduled', 'passed', 'removed'].every((e) => events.items.some((x) => x.event === e && x.tag === 'tick')), 5_000);
    assert.ok(events.items.every((e) => e.scriptTitle === 'jobber' && e.replica === 'runner-f'));
    events.sub.unsubscribe();
  });
});
