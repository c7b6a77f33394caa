/**
 * Limits and the failure budget: time, memory and stack faults are stopped and
 * reported with the script's title and line, and never take the other scripts
 * (or the engine) down with them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeEngine, script, sleep } from './test-support.ts';

const MiB = 1024 * 1024;

describe('time budget', () => {
  it('an infinite loop is stopped and reported; other scripts keep counting; the faulty one keeps its state', async () => {
    const { engine, out } = await makeEngine({ limits: { hookTimeoutMs: 50 } });
    try {
      engine.load({
        scripts: [
          script(0, 'Looper', 'var calls = 0;\nfunction onItemCaptured(d) {\n  calls++;\n  console.log("looper", calls);\n  if (d.loop) {\n    while (true) { calls = Math.max(calls, 1); }\n  }\n}'),
          script(1, 'Counter', 'var n = 0;\nfunction onItemCaptured(d) { n++; console.log("counter", n); }'),
        ],
      });
      engine.dispatchItems([{}, { loop: true }, {}, {}]);
      assert.deepEqual(out.logs('Counter'), ['counter 1', 'counter 2', 'counter 3', 'counter 4']);
      assert.deepEqual(out.logs('Looper'), ['looper 1', 'looper 2', 'looper 3', 'looper 4']);
      const errs = out.errors('Looper');
      assert.equal(errs.length, 1);
      assert.equal(errs[0].hook, 'onItemCaptured');
      assert.equal(errs[0].line, 7);
      assert.match(errs[0].text, /^Looper:7: onItemCaptured: exceeded its 50 ms time budget and was stopped$/);
      const st = engine.stats();
      assert.equal(st.timeouts, 1);
      assert.equal(st.scripts[0].timeouts, 1);
      assert.equal(st.scripts[1].errors, 0);
      // Next dispatch: both still run.
      out.clear();
      engine.dispatchItems([{}]);
      assert.deepEqual(out.logs(), ['looper 5', 'counter 5']);
    } finally {
      engine.close();
    }
  });

  it('a tight empty loop is reported inside its hook (QuickJS records no position at a loop back-edge)', async () => {
    const { engine, out } = await makeEngine({ limits: { hookTimeoutMs: 30 } });
    try {
      engine.load({ scripts: [script(0, 'Tight', 'var a = 1;\nfunction onItemCaptured(d) {\n  if (d) {\n    for (;;) {}\n  }\n}')] });
      engine.dispatchItems([{}]);
      const [err] = out.errors('Tight');
      assert.ok(err.line !== undefined && err.line >= 3 && err.line <= 5, `line ${err.line}`);
      assert.match(err.text, /^Tight:\d: onItemCaptured: exceeded its 30 ms time budget/);
    } finally {
      engine.close();
    }
  });

  it("a script's own try/catch cannot swallow the timeout", async () => {
    const { engine, out } = await makeEngine({ limits: { hookTimeoutMs: 50 } });
    try {
      engine.load({
        scripts: [script(0, 'Swallower', 'function onItemCaptured(d) {\n  try { for (;;) {} } catch (e) { console.log("caught", e); }\n  finally { console.log("finally"); }\n  console.log("after");\n}')],
      });
      engine.dispatchItems([{}]);
      assert.deepEqual(out.logs(), []);
      assert.equal(out.errors('Swallower').length, 1);
      assert.equal(engine.stats().timeouts, 1);
    } finally {
      engine.close();
    }
  });

  it('every hook kind is time-limited', async () => {
    const { engine, out } = await makeEngine({ limits: { hookTimeoutMs: 30 }, failurePolicy: { maxExpensiveFaults: 100 } });
    try {
      engine.load({
        scripts: [script(0, 'Loops everywhere', [
          'function onPacketCaptured(i) { for (;;) {} }',
          'function onPodEvent(e, p) { for (;;) {} }',
          'function onHubAction(a, o) { for (;;) {} }',
          'function onItemQueried(d) { for (;;) {} }',
        ].join('\n'))],
      });
      engine.dispatchPackets([{ timestamp: 0, captureLength: 1, length: 1, truncated: false, fragmented: false }]);
      engine.podEvent('MODIFIED', {});
      engine.hubAction('a', {});
      assert.deepEqual(engine.itemQueried({ id: 1 }), { id: 1 });
      assert.deepEqual(out.errors().map((e) => e.hook), ['onPacketCaptured', 'onPodEvent', 'onHubAction', 'onItemQueried']);
      assert.equal(engine.stats().timeouts, 4);
    } finally {
      engine.close();
    }
  });

  it('a top level that never ends is stopped at load and rejected; the others load', async () => {
    const { engine, out } = await makeEngine({ limits: { jobTimeoutMs: 50 } });
    try {
      const r = engine.load({
        scripts: [
          script(0, 'Endless top', 'var i = 0;\nwhile (true) { i = Math.max(i, 1); }'),
          script(1, 'Fine', 'function onItemCaptured(d) { console.log("fine"); }'),
        ],
      });
      assert.deepEqual(r.loaded.map((l) => l.title), ['Fine']);
      assert.equal(r.rejected.length, 1);
      assert.equal(r.rejected[0].title, 'Endless top');
      assert.equal(r.rejected[0].line, 3);
      engine.dispatchItems([{}]);
      assert.deepEqual(out.logs(), ['fine']);
    } finally {
      engine.close();
    }
  });

  it('the budget is per call: many short calls in one batch are not cut', async () => {
    const { engine, out } = await makeEngine({ limits: { hookTimeoutMs: 60 } });
    try {
      // 40 calls of ~3 ms: the batch takes twice the budget, no call comes near it.
      engine.load({ scripts: [script(0, 'Short calls', 'var n = 0;\nfunction onItemCaptured(d) { var end = Date.now() + 3; while (Date.now() < end) {} n++; }\nfunction onHubAction() { console.log(n); }')] });
      engine.dispatchItems(Array.from({ length: 40 }, () => ({})));
      engine.hubAction('count', null);
      assert.deepEqual(out.logs(), ['40']);
      assert.equal(engine.stats().timeouts, 0);
    } finally {
      engine.close();
    }
  });

  it('time spent outside script calls (idle, engine work) never counts against a call', async () => {
    const { engine, out } = await makeEngine({ limits: { hookTimeoutMs: 100 } });
    try {
      const set = {
        scripts: [
          // Busy long enough for the interrupt handler to see this call, well within its budget.
          script(0, 'Busy', 'function onItemCaptured(d) { var end = Date.now() + 10; while (Date.now() < end) {} }'),
          script(1, 'Counter', 'var n = 0;\nfunction onItemCaptured(d) { n++; }\nfunction onHubAction() { console.log(n); }'),
        ],
      };
      engine.load(set);
      engine.dispatchItems([{}]);
      await sleep(150);
      // Engine work after idle time: reloading the same set runs engine code in the VM.
      for (let i = 0; i < 2_000; i++) engine.load(set);
      await sleep(150);
      engine.hubAction('count', null);
      assert.deepEqual(out.logs('Counter'), ['1']);
      assert.deepEqual(out.errors(), []);
      assert.equal(engine.stats().timeouts, 0);
    } finally {
      engine.close();
    }
  });
});

describe('memory limit', () => {
  it('a hook growing a local array runs out of memory; the VM and every script state survive', async () => {
    const { engine, out } = await makeEngine({ limits: { memoryLimitBytes: 16 * MiB, hookTimeoutMs: 10_000 } });
    try {
      engine.load({
        scripts: [
          script(0, 'Hog', 'var calls = 0;\nfunction onItemCaptured(d) {\n  calls++;\n  if (!d.hog) return;\n  var a = [];\n  for (;;) a.push({ i: a.length, s: "x" + a.length });\n}\nfunction onHubAction() { console.log("hog calls", calls); }'),
          script(1, 'Counter', 'var n = 0;\nfunction onItemCaptured(d) { n++; }\nfunction onHubAction() { console.log("counter", n); }'),
        ],
      });
      engine.dispatchItems([{}, { hog: true }, {}]);
      const errs = out.errors('Hog');
      assert.equal(errs.length, 1, JSON.stringify(out.consoleEvents));
      assert.match(errs[0].text, /^Hog:\d+: onItemCaptured: ran out of memory/);
      const st = engine.stats();
      assert.equal(st.memoryFaults, 1);
      assert.equal(st.scripts[0].memoryFaults, 1);
      assert.equal(st.vmRebuilds, 0);
      engine.hubAction('report', null);
      assert.deepEqual(out.logs(), ['hog calls 3', 'counter 3']);
    } finally {
      engine.close();
    }
  });

  it('memory held in many small objects counts against the limit too', async () => {
    const { engine, out } = await makeEngine({ limits: { memoryLimitBytes: 16 * MiB, hookTimeoutMs: 10_000 } });
    try {
      engine.load({
        scripts: [
          // ~400k small objects: some 40 MiB of heap in many small blocks, no single big allocation.
          script(0, 'Small objects', 'var head = null;\nfunction onItemCaptured(d) {\n  for (var i = 0; i < 400000; i++) head = { next: head, v: i };\n  console.log("built");\n}'),
          script(1, 'Counter', 'var n = 0;\nfunction onItemCaptured(d) { n++; console.log("counter", n); }'),
        ],
      });
      engine.dispatchItems([{}]);
      assert.deepEqual(out.logs('Small objects'), [], 'building 40 MiB must not succeed under a 16 MiB limit');
      assert.match(out.errors('Small objects')[0]?.text ?? '', /ran out of memory/);
      assert.equal(engine.stats().memoryFaults, 1);
      out.clear();
      engine.dispatchItems([{}]);
      assert.ok(out.logs().includes('counter 1') || out.logs().includes('counter 2'), JSON.stringify(out.logs()));
    } finally {
      engine.close();
    }
  });

  it('a script keeping everything it allocates exhausts the VM: it is rebuilt, reported, and works again', async () => {
    const { engine, out } = await makeEngine({ limits: { memoryLimitBytes: 16 * MiB, hookTimeoutMs: 10_000 } });
    try {
      engine.load({
        scripts: [
          script(0, 'Leaker', 'var kept = [];\nfunction onItemCaptured(d) {\n  if (!d.leak) return;\n  for (;;) kept.push({ i: kept.length, s: "leak" + kept.length });\n}'),
          script(1, 'Counter', 'var n = 0;\nfunction onItemCaptured(d) { n++; console.log("counter", n); }'),
        ],
      });
      engine.dispatchItems([{}, { leak: true }]);
      assert.match(out.errors('Leaker')[0].text, /ran out of memory/);
      const st = engine.stats();
      assert.equal(st.memoryFaults, 1);
      assert.equal(st.vmRebuilds, 1);
      assert.ok(out.errors().some((e) => /rebuilt/.test(e.text)));
      assert.deepEqual(engine.scripts().map((s) => s.title), ['Leaker', 'Counter']);
      out.clear();
      engine.dispatchItems([{}]);
      assert.deepEqual(out.logs(), ['counter 1']);
    } finally {
      engine.close();
    }
  });

  it('a job filling the heap for good fails as out of memory, and the VM is rebuilt', async () => {
    const { engine, out } = await makeEngine({ limits: { memoryLimitBytes: 16 * MiB, jobTimeoutMs: 10_000 } });
    try {
      engine.load({
        scripts: [
          script(0, 'Hoarder', 'var kept = [];\njobs.schedule("hoard", "0 0 0 1 1 *", function () { for (;;) kept.push({ s: "h" + kept.length }); });'),
          script(1, 'Watcher', 'function onJobFailed(tag, cron, limit, err) { console.log(tag, err); }\nfunction onItemCaptured(d) { console.log("item"); }'),
        ],
      });
      engine.runJob('hoard');
      assert.deepEqual(out.logs('Watcher'), ['hoard InternalError: out of memory']);
      assert.equal(out.jobEvents.filter((e) => e.event === 'failed').length, 1);
      assert.equal(engine.stats().vmRebuilds, 1);
      out.clear();
      engine.dispatchItems([{}]);
      assert.deepEqual(out.logs(), ['item']);
    } finally {
      engine.close();
    }
  });

  it('a top level that fills the shared heap is rejected, and the rest of the set still loads and runs', async () => {
    const { engine, out } = await makeEngine({ limits: { memoryLimitBytes: 16 * MiB, jobTimeoutMs: 10_000 } });
    try {
      const r = engine.load({
        scripts: [
          script(0, 'Before', 'var n = 0;\nfunction onItemCaptured(d) { n++; console.log("before", n); }'),
          script(1, 'Heap filler', 'this.big = [];\nfor (;;) this.big.push({ s: "fill" + this.big.length });'),
          script(2, 'After', 'var n = 0;\nfunction onItemCaptured(d) { n++; console.log("after", n); }'),
        ],
      });
      assert.deepEqual(r.rejected.map((x) => x.title), ['Heap filler']);
      assert.match(r.rejected[0].message, /memory/);
      assert.deepEqual(r.loaded.map((l) => l.title), ['Before', 'After']);
      assert.deepEqual(engine.scripts().map((s) => s.title), ['Before', 'After']);
      out.clear();
      engine.dispatchItems([{}]);
      assert.deepEqual(out.logs(), ['before 1', 'after 1']);
    } finally {
      engine.close();
    }
  });
});

describe('stack limit', () => {
  it('deep recursion is a stack fault, not a crash', async () => {
    const { engine, out } = await makeEngine();
    try {
      engine.load({
        scripts: [
          script(0, 'Recursive', 'function down(n) { return down(n + 1) + 1; }\nfunction onItemCaptured(d) {\n  if (d.deep) down(0);\n  console.log("recursive ok");\n}'),
          script(1, 'Counter', 'var n = 0;\nfunction onItemCaptured(d) { n++; console.log("counter", n); }'),
        ],
      });
      engine.dispatchItems([{ deep: true }, {}]);
      const [err] = out.errors('Recursive');
      assert.match(err.text, /^Recursive:\d+: onItemCaptured: InternalError: stack overflow$/);
      assert.equal(err.line, 2);
      assert.deepEqual(out.logs(), ['counter 1', 'recursive ok', 'counter 2']);
      assert.equal(engine.stats().vmRebuilds, 0);
    } finally {
      engine.close();
    }
  });

  it('a stack overflow caught by the script is just an error it handled', async () => {
    const { engine, out } = await makeEngine();
    try {
      engine.load({ scripts: [script(0, 'Catcher', 'function down(n) { return down(n + 1) + 1; }\nfunction onItemCaptured(d) { try { down(0); } catch (e) { console.log(e.name); } }')] });
      engine.dispatchItems([{}]);
      assert.deepEqual(out.logs(), ['InternalError']);
      assert.deepEqual(out.errors(), []);
    } finally {
      engine.close();
    }
  });
});

describe('failure budget', () => {
  const policy = { windowCalls: 10, failureRatio: 0.9, pauseMs: 60_000, maxPauseMs: 600_000, maxExpensiveFaults: 3, expensiveWindowMs: 60_000 };

  it('a script failing on every call is paused, others keep running, and it resumes after the pause', async () => {
    let now = 1_000_000;
    const { engine, out } = await makeEngine({ failurePolicy: policy, now: () => now });
    try {
      engine.load({
        scripts: [
          script(0, 'Always throws', 'var calls = 0;\nfunction onItemCaptured(d) { calls++; this.throwerCalls = calls; throw new Error("nope " + calls); }'),
          script(1, 'Counter', 'var n = 0;\nfunction onItemCaptured(d) { n++; }\nfunction onHubAction() { console.log("calls", throwerCalls, "counter", n); }'),
        ],
      });
      for (let i = 0; i < 10; i++) engine.dispatchItems([{}]);
      let st = engine.stats();
      assert.equal(st.scripts[0].paused, true);
      assert.equal(st.scripts[0].pausedUntilMs, now + 60_000);
      assert.equal(st.scripts[1].paused, false);
      const pauseMsg = out.errors('Always throws').find((e) => /paused/.test(e.text));
      assert.ok(pauseMsg, 'the pause is reported');
      assert.match(pauseMsg.text, /paused for 60 s/);

      out.clear();
      for (let i = 0; i < 5; i++) engine.dispatchItems([{}, {}]);
      st = engine.stats();
      assert.equal(st.skippedPaused, 10);
      assert.deepEqual(out.errors('Always throws'), [], 'a paused script is not called');
      engine.hubAction('report', null);
      assert.deepEqual(out.logs(), ['calls 10 counter 20']);

      now += 60_000;
      out.clear();
      engine.dispatchItems([{}]);
      assert.equal(engine.stats().scripts[0].paused, false);
      assert.ok(out.logs('Always throws').some((l) => /resumed/.test(l)));
      assert.equal(out.errors('Always throws').filter((e) => /nope 11/.test(e.text)).length, 1, 'called again after the pause');
    } finally {
      engine.close();
    }
  });

  it('a script that throws now and then is never paused', async () => {
    let now = 0;
    const { engine } = await makeEngine({ failurePolicy: policy, now: () => now });
    try {
      engine.load({ scripts: [script(0, 'Sometimes', 'var c = 0;\nfunction onItemCaptured(d) { c++; if (c % 3 === 0) throw new Error("every third"); }')] });
      for (let i = 0; i < 200; i++) { now += 10; engine.dispatchItems([{}]); }
      const st = engine.stats();
      assert.equal(st.scripts[0].paused, false);
      assert.equal(st.scripts[0].errors, 66);
      assert.equal(st.skippedPaused, 0);
    } finally {
      engine.close();
    }
  });

  it('repeated timeouts pause a script quickly', async () => {
    let now = 0;
    const { engine, out } = await makeEngine({ failurePolicy: policy, now: () => now, limits: { hookTimeoutMs: 20 } });
    try {
      engine.load({
        scripts: [
          script(0, 'Spinner', 'function onItemCaptured(d) { for (;;) {} }'),
          script(1, 'Counter', 'var n = 0;\nfunction onItemCaptured(d) { n++; }\nfunction onHubAction() { console.log(n); }'),
        ],
      });
      engine.dispatchItems([{}, {}, {}, {}, {}, {}]);
      const st = engine.stats();
      assert.equal(st.scripts[0].timeouts, 3, 'paused after the third timeout, mid-batch');
      assert.equal(st.scripts[0].paused, true);
      engine.hubAction('count', null);
      assert.deepEqual(out.logs(), ['6']);
    } finally {
      engine.close();
    }
  });

  it('a hot reload of a paused script (changed code) starts it unpaused', async () => {
    let now = 0;
    const { engine, out } = await makeEngine({ failurePolicy: policy, now: () => now });
    try {
      engine.load({ scripts: [script(0, 'Fixable', 'function onItemCaptured(d) { throw new Error("bug"); }')] });
      for (let i = 0; i < 10; i++) engine.dispatchItems([{}]);
      assert.equal(engine.stats().scripts[0].paused, true);
      engine.load({ scripts: [script(0, 'Fixable', 'function onItemCaptured(d) { console.log("fixed"); }')] });
      assert.equal(engine.stats().scripts[0].paused, false);
      engine.dispatchItems([{}]);
      assert.deepEqual(out.logs(), ['fixed']);
    } finally {
      engine.close();
    }
  });
});
