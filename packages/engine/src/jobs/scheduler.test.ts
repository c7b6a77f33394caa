import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { JobEvent } from '../output.ts';
import { makeEngine, script, sleep, waitFor, type TestEngine } from '../test-support.ts';
import { JobScheduler } from './scheduler.ts';

/** A scheduler whose deps record what it asks of the engine. */
function makeScheduler() {
  const fired: string[] = [];
  const dropped: string[] = [];
  const events: JobEvent[] = [];
  const s = new JobScheduler({
    fire: (tag) => fired.push(tag),
    dropFromVm: (tag) => dropped.push(tag),
    script: (slot) => (slot === 1 ? { title: 'Owner', index: 7 } : undefined),
    emit: (e) => events.push(e),
  });
  return { s, fired, dropped, events };
}

const YEARLY = '0 0 0 1 1 *';

describe('JobScheduler', () => {
  it('schedules a 6-field cron and emits "scheduled" with the next run', () => {
    const { s, events } = makeScheduler();
    s.schedule(1, 'report', YEARLY, 0);
    assert.equal(s.size, 1);
    assert.deepEqual(s.tags(), ['report']);
    assert.equal(events.length, 1);
    const e = events[0];
    assert.equal(e.event, 'scheduled');
    assert.equal(e.tag, 'report');
    assert.equal(e.cron, YEARLY);
    assert.equal(e.title, 'Owner');
    assert.equal(e.scriptIndex, 7);
    assert.equal(e.runs, 0);
    assert.ok(typeof e.nextRunMs === 'number' && e.nextRunMs > Date.now());
    assert.equal(new Date(e.nextRunMs).getUTCSeconds(), 0);
    s.close();
  });

  it('rejects a 5-field cron, a bad cron and a bad limit with TypeErrors', () => {
    const { s } = makeScheduler();
    assert.throws(() => s.schedule(1, 'a', '* * * * *', 0), (e: unknown) => e instanceof TypeError && /5 fields/.test(e.message));
    assert.throws(() => s.schedule(1, 'a', '* * * * * * *', 0), TypeError);
    assert.throws(() => s.schedule(1, 'a', 'x * * * * *', 0), (e: unknown) => e instanceof TypeError && /invalid cron/.test(e.message));
    assert.throws(() => s.schedule(1, 'a', '61 * * * * *', 0), TypeError);
    assert.throws(() => s.schedule(1, 'a', YEARLY, -1), TypeError);
    assert.throws(() => s.schedule(1, 'a', YEARLY, 1.5), TypeError);
    assert.throws(() => s.schedule(1, 'a', YEARLY, Number.NaN), TypeError);
    assert.equal(s.size, 0);
  });

  it('a second schedule with the same tag replaces the first', () => {
    const { s } = makeScheduler();
    s.schedule(1, 'a', YEARLY, 0);
    s.schedule(1, 'a', '0 0 0 1 6 *', 3);
    assert.equal(s.size, 1);
    assert.equal(s.get('a')?.cron, '0 0 0 1 6 *');
    assert.equal(s.get('a')?.limit, 3);
    s.close();
  });

  it('counts runs and retires a job at its limit (and drops it from the VM)', () => {
    const { s, dropped, events } = makeScheduler();
    s.schedule(1, 'twice', YEARLY, 2);
    assert.equal(s.ran('twice')?.runs, 1);
    s.retireIfDone('twice');
    assert.equal(s.size, 1);
    assert.deepEqual(dropped, []);
    assert.equal(s.ran('twice')?.runs, 2);
    // The last run's event carries no next run: the job is about to retire.
    s.emit(s.get('twice')!, 'passed');
    assert.equal(events.at(-1)?.nextRunMs, undefined);
    s.retireIfDone('twice');
    assert.equal(s.size, 0);
    assert.deepEqual(dropped, ['twice']);
    assert.deepEqual(events.map((e) => e.event), ['scheduled', 'passed', 'removed']);
    assert.equal(s.ran('twice'), undefined);
    s.retireIfDone('twice');
  });

  it('limit 0 means forever', () => {
    const { s } = makeScheduler();
    s.schedule(1, 'forever', YEARLY, 0);
    for (let i = 0; i < 100; i++) { s.ran('forever'); s.retireIfDone('forever'); }
    assert.equal(s.get('forever')?.runs, 100);
    s.close();
  });

  it('remove, removeAll and removeBySlot', () => {
    const { s, events } = makeScheduler();
    s.schedule(1, 'a', YEARLY, 0);
    s.schedule(1, 'b', YEARLY, 0);
    s.schedule(2, 'c', YEARLY, 0);
    s.schedule(2, 'd', YEARLY, 0);
    assert.equal(s.remove('a'), true);
    assert.equal(s.remove('a'), false);
    s.removeBySlot(2);
    assert.deepEqual(s.tags(), ['b']);
    assert.equal(s.removeAll(), 1);
    assert.equal(s.size, 0);
    assert.deepEqual(events.filter((e) => e.event === 'removed').map((e) => e.tag), ['a', 'c', 'd', 'b']);
  });

  it('list() describes every job; nextRun is null while stopped', () => {
    const { s } = makeScheduler();
    s.schedule(1, 'a', YEARLY, 5);
    s.ran('a');
    const [j] = JSON.parse(s.list()) as { tag: string; cron: string; limit: number; runs: number; nextRun: string | null; script: string }[];
    assert.equal(j.tag, 'a');
    assert.equal(j.cron, YEARLY);
    assert.equal(j.limit, 5);
    assert.equal(j.runs, 1);
    assert.equal(j.script, 'Owner');
    assert.ok(j.nextRun !== null && Date.parse(j.nextRun) > Date.now());
    s.stop();
    assert.equal(s.isRunning(), false);
    assert.equal((JSON.parse(s.list()) as { nextRun: unknown }[])[0].nextRun, null);
    s.start();
    assert.equal(s.isRunning(), true);
    assert.notEqual((JSON.parse(s.list()) as { nextRun: unknown }[])[0].nextRun, null);
    s.close();
  });

  it('run(tag) fires after the current call, not inside it', async () => {
    const { s, fired } = makeScheduler();
    s.schedule(1, 'a', YEARLY, 0);
    assert.equal(s.run('a'), true);
    assert.equal(s.run('nope'), false);
    assert.deepEqual(fired, []);
    await waitFor(() => fired.length > 0);
    assert.deepEqual(fired, ['a']);
    s.close();
  });

  it('run(tag) does not fire a job removed before its turn', async () => {
    const { s, fired } = makeScheduler();
    s.schedule(1, 'a', YEARLY, 0);
    s.run('a');
    s.remove('a');
    s.schedule(1, 'b', YEARLY, 0);
    s.run('b'); // queued after a's turn: once b fired, a had its chance
    await waitFor(() => fired.length > 0);
    assert.deepEqual(fired, ['b']);
    s.close();
  });

  it('runAll fires every job once', async () => {
    const { s, fired } = makeScheduler();
    s.schedule(1, 'a', YEARLY, 0);
    s.schedule(1, 'b', YEARLY, 0);
    assert.equal(s.runAll(), 2);
    await waitFor(() => fired.length >= 2);
    assert.deepEqual(fired.sort(), ['a', 'b']);
    s.close();
  });

  it('close stops everything without events', () => {
    const { s, events } = makeScheduler();
    s.schedule(1, 'a', YEARLY, 0);
    events.length = 0;
    s.close();
    assert.equal(s.size, 0);
    assert.deepEqual(events, []);
  });
});

describe('jobs.* in scripts', () => {
  let t: TestEngine;
  before(async () => { t = await makeEngine(); });
  after(() => t.engine.close());
  beforeEach(() => {
    t.engine.load({ scripts: [] });
    t.engine.jobs.start();
    t.out.clear();
  });

  it('jobs.schedule validates its arguments with TypeErrors the script can catch', () => {
    const r = t.engine.load({
      scripts: [script(0, 'Validate', [
        'var out = [];',
        'function check(what, f) { try { f(); out.push(what + ":ok"); } catch (e) { out.push(what + ":" + (e instanceof TypeError)); } }',
        'function fn() {}',
        'check("5-field", function () { jobs.schedule("a", "* * * * *", fn); });',
        'check("bad cron", function () { jobs.schedule("a", "x y z * * *", fn); });',
        'check("cron not a string", function () { jobs.schedule("a", 5, fn); });',
        'check("not a function", function () { jobs.schedule("a", "* * * * * *", "fn"); });',
        'check("negative limit", function () { jobs.schedule("a", "* * * * * *", fn, -1); });',
        'check("fractional limit", function () { jobs.schedule("a", "* * * * * *", fn, 1.5); });',
        'check("string limit", function () { jobs.schedule("a", "* * * * * *", fn, "3"); });',
        'check("empty tag", function () { jobs.schedule("", "* * * * * *", fn); });',
        'check("good", function () { jobs.schedule("good", "0 0 0 1 1 *", fn, 2); });',
        'console.log(out.join(" "));',
      ].join('\n'))],
    });
    assert.deepEqual(r.rejected, []);
    assert.deepEqual(t.out.logs('Validate'), ['5-field:true bad cron:true cron not a string:true not a function:true negative limit:true fractional limit:true string limit:true empty tag:true good:ok']);
    assert.deepEqual(t.engine.jobs.tags(), ['good']);
  });

  it('jobs.list() shows the jobs with their owner script', () => {
    t.engine.load({
      scripts: [
        script(0, 'Owner A', 'jobs.schedule("a", "0 0 0 1 1 *", function () {}, 3);'),
        script(1, 'Owner B', 'jobs.schedule("b", "0 0 0 1 1 *", function () {});\nvar l = jobs.list(); console.log(l.length, l[0].tag, l[0].limit, l[0].script, l[1].tag, l[1].limit, l[1].script, typeof l[0].nextRun, l[0].runs);'),
      ],
    });
    assert.deepEqual(t.out.logs('Owner B'), ['2 a 3 Owner A b 0 Owner B string 0']);
  });

  it('runs the job function with its extra arguments, and `this` as the global', () => {
    t.engine.load({
      scripts: [script(0, 'Args', 'this.shared = "g";\njobs.schedule("args", "0 0 0 1 1 *", function (a, b, c) { console.log(a, b, JSON.stringify(c), this.shared); }, 0, "x", 2, {k: [1]});')],
    });
    t.engine.runJob('args');
    t.engine.runJob('args');
    assert.deepEqual(t.out.logs('Args'), ['x 2 {"k":[1]} g', 'x 2 {"k":[1]} g']);
  });

  it('keeps script state between runs', () => {
    t.engine.load({
      scripts: [script(0, 'Stateful job', 'var n = 0;\nfunction onItemCaptured(d) { n++; }\njobs.schedule("flush", "0 0 0 1 1 *", function () { console.log("seen", n); n = 0; });')],
    });
    t.engine.dispatchItems([{}, {}, {}]);
    t.engine.runJob('flush');
    t.engine.dispatchItems([{}]);
    t.engine.runJob('flush');
    assert.deepEqual(t.out.logs('Stateful job'), ['seen 3', 'seen 1']);
  });

  it('a limit retires the job after N runs', () => {
    t.engine.load({ scripts: [script(0, 'Limited', 'var n = 0;\njobs.schedule("thrice", "0 0 0 1 1 *", function () { n++; console.log("run", n); }, 3);')] });
    const runs = t.engine.stats().jobRuns;
    for (let i = 0; i < 5; i++) t.engine.runJob('thrice');
    assert.deepEqual(t.out.logs('Limited'), ['run 1', 'run 2', 'run 3']);
    assert.equal(t.engine.jobs.size, 0);
    assert.deepEqual(t.out.jobEvents.map((e) => [e.event, e.runs]), [['scheduled', 0], ['passed', 1], ['passed', 2], ['passed', 3], ['removed', 3]]);
    assert.equal(t.engine.stats().jobRuns - runs, 3);
  });

  it('jobs.remove and jobs.removeAll from a script', () => {
    t.engine.load({
      scripts: [script(0, 'Remover', [
        'function noop() {}',
        'jobs.schedule("a", "0 0 0 1 1 *", noop); jobs.schedule("b", "0 0 0 1 1 *", noop); jobs.schedule("c", "0 0 0 1 1 *", noop);',
        'console.log(jobs.remove("a"), jobs.remove("a"), jobs.list().length);',
        'console.log(jobs.removeAll(), jobs.list().length);',
      ].join('\n'))],
    });
    assert.deepEqual(t.out.logs('Remover'), ['true false 2', '2 0']);
    assert.equal(t.engine.jobs.size, 0);
    const runs = t.engine.stats().jobRuns;
    t.engine.runJob('b');
    assert.equal(t.engine.stats().jobRuns, runs);
  });

  it('a job can remove itself; it is not run again', () => {
    t.engine.load({ scripts: [script(0, 'Self remover', 'jobs.schedule("once", "0 0 0 1 1 *", function () { console.log("ran"); jobs.remove("once"); });')] });
    t.engine.runJob('once');
    t.engine.runJob('once');
    assert.deepEqual(t.out.logs('Self remover'), ['ran']);
  });

  it('jobs.scheduler.stop/start/isRunning control the engine scheduler', () => {
    t.engine.load({
      scripts: [script(0, 'Control', [
        'function onHubAction(action) {',
        '  if (action === "stop") jobs.scheduler.stop();',
        '  if (action === "start") jobs.scheduler.start();',
        '  console.log(jobs.scheduler.isRunning());',
        '}',
      ].join('\n'))],
    });
    t.engine.hubAction('stop', null);
    assert.equal(t.engine.jobs.isRunning(), false);
    t.engine.hubAction('start', null);
    assert.equal(t.engine.jobs.isRunning(), true);
    assert.deepEqual(t.out.logs('Control'), ['false', 'true']);
  });

  it('jobs.run / jobs.runAll from a script run the jobs right after the call', async () => {
    t.engine.load({
      scripts: [script(0, 'Runner', [
        'jobs.schedule("a", "0 0 0 1 1 *", function () { console.log("a ran"); });',
        'jobs.schedule("b", "0 0 0 1 1 *", function () { console.log("b ran"); });',
        'function onItemCaptured(d) { console.log("run", jobs.run(d.tag)); if (d.all) console.log("all", jobs.runAll()); console.log("hook done"); }',
      ].join('\n'))],
    });
    t.engine.dispatchItems([{ tag: 'a' }]);
    assert.deepEqual(t.out.logs('Runner'), ['run true', 'hook done']);
    await waitFor(() => t.out.logs('Runner').length >= 3);
    assert.deepEqual(t.out.logs('Runner'), ['run true', 'hook done', 'a ran']);
    t.out.clear();
    t.engine.dispatchItems([{ tag: 'nope', all: true }]);
    await waitFor(() => t.out.logs('Runner').length >= 5);
    assert.deepEqual(t.out.logs('Runner'), ['run false', 'all 2', 'hook done', 'a ran', 'b ran']);
  });

  it('onJobPassed / onJobFailed are called in every script defining them; failures are reported', () => {
    t.engine.load({
      scripts: [
        script(0, 'Jobs', [
          'jobs.schedule("ok", "0 0 0 1 1 *", function () {}, 5);',
          'jobs.schedule("bad", "0 0 0 1 1 *", function () {\n  throw new Error("job broke");\n}, 0);',
        ].join('\n')),
        script(1, 'Watcher 1', 'function onJobPassed(tag, cron, limit) { console.log("passed", tag, cron, limit); }\nfunction onJobFailed(tag, cron, limit, err) { console.log("failed", tag, cron, limit, err); }'),
        script(2, 'Watcher 2', 'function onJobFailed(tag, cron, limit, err) { console.log("w2 failed", tag); }'),
      ],
    });
    const before = t.engine.stats();
    t.engine.runJob('ok');
    t.engine.runJob('bad');
    assert.deepEqual(t.out.logs('Watcher 1'), ['passed ok 0 0 0 1 1 * 5', 'failed bad 0 0 0 1 1 * 0 Error: job broke']);
    assert.deepEqual(t.out.logs('Watcher 2'), ['w2 failed bad']);
    const failed = t.out.jobEvents.filter((e) => e.event === 'failed');
    assert.equal(failed.length, 1);
    assert.equal(failed[0].tag, 'bad');
    assert.equal(failed[0].error, 'Error: job broke');
    assert.equal(failed[0].title, 'Jobs');
    assert.deepEqual(t.out.jobEvents.filter((e) => e.event === 'passed').map((e) => e.tag), ['ok']);
    const err = t.out.errors('Jobs');
    assert.equal(err.length, 1);
    assert.equal(err[0].hook, 'job:bad');
    assert.equal(err[0].line, 4);
    assert.match(err[0].text, /job broke/);
    const st = t.engine.stats();
    assert.equal(st.jobRuns - before.jobRuns, 2);
    assert.equal(st.jobFailures - before.jobFailures, 1);
    // A failing job stays scheduled.
    assert.ok(t.engine.jobs.get('bad'));
  });

  it('a job over its time budget is stopped and reported as failed', async () => {
    const slow = await makeEngine({ limits: { jobTimeoutMs: 50 } });
    try {
      slow.engine.load({
        scripts: [
          script(0, 'Slow job', 'var n = 0;\njobs.schedule("spin", "0 0 0 1 1 *", function () { n++; console.log("start", n); for (;;) {} });'),
          script(1, 'Failure watcher', 'function onJobFailed(tag, cron, limit, err) { console.log(tag, err); }'),
        ],
      });
      slow.engine.runJob('spin');
      slow.engine.runJob('spin');
      assert.deepEqual(slow.out.logs('Slow job'), ['start 1', 'start 2'], 'the script keeps its state after a timeout');
      assert.deepEqual(slow.out.logs('Failure watcher').map((l) => l.replace(/\d+ ms/, 'N ms')), [
        'spin exceeded its N ms time budget and was stopped', 'spin exceeded its N ms time budget and was stopped',
      ]);
      assert.equal(slow.out.jobEvents.filter((e) => e.event === 'failed').length, 2);
      assert.ok(slow.engine.stats().timeouts >= 2);
    } finally {
      slow.engine.close();
    }
  });

  it('runAllJobsNow runs every job once', () => {
    t.engine.load({ scripts: [script(0, 'All', 'jobs.schedule("x", "0 0 0 1 1 *", function () { console.log("x"); });\njobs.schedule("y", "0 0 0 1 1 *", function () { console.log("y"); });')] });
    assert.equal(t.engine.runAllJobsNow(), 2);
    assert.deepEqual(t.out.logs('All').sort(), ['x', 'y']);
  });

  it('hot reload: removing a script stops its jobs; an unchanged script keeps them', () => {
    const keeper = script(0, 'Keeper', 'var n = 0;\njobs.schedule("keep", "0 0 0 1 1 *", function () { n++; console.log("keep", n); });');
    const goner = script(1, 'Goner', 'jobs.schedule("gone", "0 0 0 1 1 *", function () { console.log("gone ran"); });');
    t.engine.load({ scripts: [keeper, goner] });
    t.engine.runJob('keep');
    t.out.clear();
    t.engine.load({ scripts: [keeper] });
    assert.deepEqual(t.engine.jobs.tags(), ['keep']);
    assert.deepEqual(t.out.jobEvents.map((e) => [e.event, e.tag]), [['removed', 'gone']]);
    t.engine.runJob('gone');
    t.engine.runJob('keep');
    assert.deepEqual(t.out.logs(), ['keep 2']);
  });

  it('hot reload: a changed script re-schedules its job fresh', () => {
    t.engine.load({ scripts: [script(0, 'Changing', 'var v = 1;\njobs.schedule("j", "0 0 0 1 1 *", function () { console.log("v", v); });')] });
    t.engine.load({ scripts: [script(0, 'Changing', 'var v = 2;\njobs.schedule("j", "0 0 0 1 6 *", function () { console.log("v", v); });')] });
    t.engine.runJob('j');
    assert.deepEqual(t.out.logs(), ['v 2']);
    assert.equal(t.engine.jobs.get('j')?.cron, '0 0 0 1 6 *');
  });

  it('a real every-second cron fires on its own', async () => {
    t.engine.load({ scripts: [script(0, 'Ticker', 'var n = 0;\njobs.schedule("tick", "* * * * * *", function () { n++; console.log("tick", n); });')] });
    const deadline = Date.now() + 2_500;
    while (t.out.logs('Ticker').length === 0 && Date.now() < deadline) await sleep(25);
    assert.deepEqual(t.out.logs('Ticker').slice(0, 1), ['tick 1']);
    assert.ok(t.out.jobEvents.some((e) => e.event === 'passed' && e.tag === 'tick'));
    t.engine.jobs.removeAll();
  });

  it('a stopped scheduler does not fire cron jobs', async () => {
    t.engine.load({ scripts: [script(0, 'Stopped ticker', 'jobs.scheduler.stop();\njobs.schedule("tick2", "* * * * * *", function () { console.log("tick"); });')] });
    assert.equal(t.engine.jobs.isRunning(), false);
    await sleep(1_200);
    assert.deepEqual(t.out.logs('Stopped ticker'), []);
    t.engine.jobs.removeAll();
  });
});
