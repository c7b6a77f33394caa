import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ScriptEngine } from '@wirescript/engine';
import { connectNats, drainAndClose, openKv, type NatsConnection } from '@wirescript/nats';
import { ConsoleLine, JobControlRequest, SCRIPTS_KV_BUCKET, SCRIPTS_KV_KEY, decodeMessage, logsSubject } from '@wirescript/proto';
import { putScriptSet, startNatsServer, type NatsServer } from '@wirescript/testing';
import { applyJobControl } from './job-control.ts';
import { NatsEngineOutput } from './nats-output.ts';
import { ScriptSetWatcher } from './script-set.ts';

describe('script-host on a real nats-server', () => {
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

  test('console lines are rate limited; drops are counted and announced; script errors always pass', async () => {
    const lines: ConsoleLine[] = [];
    const sub = nc.subscribe(logsSubject('n1', 'r1'), { callback: (e, m) => { if (!e) lines.push(decodeMessage(ConsoleLine, m.data)); } });
    await nc.flush();
    const out = new NatsEngineOutput(nc, { service: 'script-runner', node: 'n1', replica: 'r1', logRateLimit: 10 });
    for (let i = 0; i < 100; i++) out.console({ scriptIndex: 0, title: 's', level: 'log', text: `line ${i}`, timestampMs: Date.now() });
    for (let i = 0; i < 5; i++) out.console({ scriptIndex: 0, title: 's', level: 'error', text: `fault ${i}`, hook: 'onItemCaptured', line: 3, timestampMs: Date.now() });
    out.announceDrops();
    await nc.flush();
    await new Promise((r) => setTimeout(r, 100));
    sub.unsubscribe();
    assert.equal(lines.filter((l) => l.text.startsWith('line ')).length, 10);
    assert.equal(lines.filter((l) => l.text.startsWith('fault ')).length, 5);
    assert.equal(out.counters.logsDropped, 90);
    const notice = lines.find((l) => /90 console lines dropped/.test(l.text));
    assert.ok(notice, 'drop notice published');
    assert.equal(notice.level, 'error');
    const fault = lines.find((l) => l.text === 'fault 0')!;
    assert.equal(fault.hook, 'onItemCaptured');
    assert.equal(fault.line, 3);
    assert.equal(fault.scriptTitle, 's');
  });

  test('the script-set watcher applies KV updates and keeps the last good set on a bad value', async () => {
    const engine = await ScriptEngine.create({ nodeName: 'n1' });
    const failures: string[] = [];
    const revisions: number[] = [];
    await putScriptSet(nc, [{ code: '// one\nfunction onItemCaptured() {}' }]);
    const kv = await openKv(nc, SCRIPTS_KV_BUCKET, { create: false });
    const w = new ScriptSetWatcher(kv, engine, { applied: (rev) => revisions.push(rev), failed: (e) => failures.push(e.message) });
    await w.start();
    assert.deepEqual(engine.scripts().map((s) => s.title), ['one']);
    await kv.put(SCRIPTS_KV_KEY, new Uint8Array([0xff, 0xff, 0xff, 0x01]));
    const t0 = Date.now();
    while (failures.length === 0 && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 10));
    assert.match(failures[0] ?? '', /not applied, keeping the last good set/);
    assert.deepEqual(engine.scripts().map((s) => s.title), ['one']);
    const rev = await putScriptSet(nc, [{ code: '// two\nfunction onHubAction() {}' }]);
    while (!revisions.includes(rev) && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(engine.scripts().map((s) => s.title), ['two']);
    await w.stop();
    engine.close();
  });

  test('job control: filters by node/replica/service, runs and removes jobs, rejects unknown ops', async () => {
    const engine = await ScriptEngine.create({ nodeName: 'n1' });
    engine.load({ scripts: [{ index: 0, code: '// j\njobs.schedule("a", "0 0 0 1 1 *", function () {});\njobs.schedule("b", "0 0 0 1 1 *", function () {});' }] });
    const id = { service: 'script-runner' as const, node: 'n1', replica: 'r1' };
    const req = (p: Partial<JobControlRequest>) => JobControlRequest.fromPartial(p);
    assert.equal(applyJobControl(engine, id, req({ op: 'list', node: 'other' })), null);
    assert.equal(applyJobControl(engine, id, req({ op: 'list', service: 'hub' })), null);
    const list = applyJobControl(engine, id, req({ op: 'list', replica: 'r1' }))!;
    assert.deepEqual(list.jobs.map((j) => j.tag).sort(), ['a', 'b']);
    assert.equal(list.jobs[0].scriptTitle, 'j');
    assert.ok(list.schedulerRunning);
    assert.equal(applyJobControl(engine, id, req({ op: 'remove', tag: 'a' }))!.affected, 1);
    assert.match(applyJobControl(engine, id, req({ op: 'remove', tag: 'zzz' }))!.error, /no job tagged "zzz"/);
    assert.equal(applyJobControl(engine, id, req({ op: 'stop' }))!.schedulerRunning, false);
    assert.match(applyJobControl(engine, id, req({ op: 'explode' }))!.error, /unknown op "explode"/);
    assert.deepEqual(applyJobControl(engine, id, req({ op: 'list' }))!.jobs.map((j) => j.tag), ['b']);
    engine.close();
  });
});
