/**
 * The script engine through its public API: scopes, hooks, item projection,
 * input validation, hot reload, fault locations.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { EngineConfigError, SandboxError, ScriptEngine } from './index.ts';
import { makeEngine, script, type TestEngine } from './test-support.ts';

let t: TestEngine;
before(async () => { t = await makeEngine(); });
after(() => t.engine.close());
beforeEach(() => { t.engine.load({ scripts: [] }); t.out.clear(); });

function loadOk(...scripts: Parameters<typeof script>[]): void {
  const r = t.engine.load({ scripts: scripts.map((a) => script(...a)) });
  assert.deepEqual(r.rejected, [], JSON.stringify(r.rejected));
}

const HTTP_ITEM = {
  id: 'i-1',
  protocol: { name: 'http', version: '1.1', abbr: 'HTTP' },
  src: { ip: '10.0.0.1', port: '41000', name: 'client', namespace: 'ns' },
  dst: { ip: '10.0.0.2', port: '8080', name: 'orders', namespace: 'shop' },
  timestamp: 1_700_000_000_000,
  request: { method: 'POST', path: '/api/v1/orders', pathSegments: ['api', 'v1', 'orders'], headers: { Host: 'orders' }, postData: { mimeType: 'application/json', text: '{}' } },
  response: { status: 201, statusText: 'Created', headers: {}, content: { size: 0, mimeType: '', text: '' } },
  elapsedTime: 3,
};

describe('engine options', () => {
  it('rejects bad options with EngineConfigError', async () => {
    await assert.rejects(ScriptEngine.create({ nodeName: '' }), EngineConfigError);
    await assert.rejects(ScriptEngine.create({ nodeName: 'n', limits: { hookTimeoutMs: 0 } }), EngineConfigError);
    await assert.rejects(ScriptEngine.create({ nodeName: 'n', limits: { memoryLimitBytes: 1024 } }), EngineConfigError);
    await assert.rejects(ScriptEngine.create({ nodeName: 'n', limits: { maxStackBytes: 10 * 1024 * 1024 } }), EngineConfigError);
    await assert.rejects(ScriptEngine.create({ nodeName: 'n', limits: { jobTimeoutMs: Number.NaN } }), EngineConfigError);
    await assert.rejects(ScriptEngine.create({ nodeName: 'n', batchSize: 0 }), EngineConfigError);
  });

  it('mode follows the node name unless given', async () => {
    const hub = await ScriptEngine.create({ nodeName: 'hub' });
    const worker = await ScriptEngine.create({ nodeName: 'hub', mode: 'worker' });
    try {
      assert.equal(hub.mode, 'hub');
      assert.equal(worker.mode, 'worker');
      assert.equal(t.engine.mode, 'worker');
    } finally {
      hub.close();
      worker.close();
    }
  });

  it('close is final and idempotent', async () => {
    const e = await makeEngine();
    e.engine.load({ scripts: [script(0, 'x', 'function onItemCaptured(d) {}')] });
    e.engine.close();
    e.engine.close();
    assert.throws(() => e.engine.load({ scripts: [] }), SandboxError);
    assert.throws(() => e.engine.dispatchItems([{}]), SandboxError);
  });
});

describe('scopes', () => {
  it('top-level vars and functions are private to each script', () => {
    loadOk(
      [0, 'A', 'var n = 0;\nfunction helper() { return "A"; }\nfunction onItemCaptured(d) { n++; console.log(helper(), n); }'],
      [1, 'B', 'var n = 100;\nfunction helper() { return "B"; }\nfunction onItemCaptured(d) { n += 10; console.log(helper(), n); }'],
      [2, 'C', 'console.log(typeof n, typeof helper);'],
    );
    t.engine.dispatchItems([{}, {}]);
    assert.deepEqual(t.out.logs('A'), ['A 1', 'A 2']);
    assert.deepEqual(t.out.logs('B'), ['B 110', 'B 120']);
    assert.deepEqual(t.out.logs('C'), ['undefined undefined']);
  });

  it('this.x at top level is shared by all scripts, as x and this.x', () => {
    loadOk(
      [0, 'Setter', 'this.shared = 1;\nthis.bump = function () { this.shared++; };\nfunction onItemCaptured(d) { shared += 10; }'],
      [1, 'Reader', 'console.log("top", shared, this.shared);\nfunction onItemCaptured(d) { bump(); console.log("hook", shared, this.shared); }'],
    );
    t.engine.dispatchItems([{}]);
    assert.deepEqual(t.out.logs('Reader'), ['top 1 1', 'hook 12 12']);
  });

  it('state persists across hook calls and dispatches', () => {
    loadOk([0, 'Counter', 'var byMethod = {};\nfunction onItemCaptured(d) { byMethod[d.m] = (byMethod[d.m] || 0) + 1; }\nfunction onHubAction() { console.log(JSON.stringify(byMethod)); }']);
    t.engine.dispatchItems([{ m: 'GET' }, { m: 'POST' }]);
    t.engine.dispatchItems([{ m: 'GET' }]);
    t.engine.hubAction('report', null);
    assert.deepEqual(t.out.logs(), ['{"GET":2,"POST":1}']);
  });
});

describe('hooks', () => {
  it('each hook runs in every script defining it, in index order, and not in others', () => {
    const all = (name: string) => [
      `function onItemCaptured(d) { console.log("${name} item", d.n); }`,
      `function onPacketCaptured(p) { console.log("${name} packet", p.length); }`,
      `function onPodEvent(e, p) { console.log("${name} pod", e, p.metadata.name); }`,
      `function onHubAction(a, o) { console.log("${name} action", a, o.v); }`,
    ].join('\n');
    const r = t.engine.load({
      scripts: [
        script(5, 'Five', all('five')),
        script(1, 'One', all('one')),
        script(3, 'Three (no hooks)', 'var quiet = true;'),
        script(2, 'Two (items only)', 'function onItemCaptured(d) { console.log("two item", d.n); }'),
      ],
    });
    assert.deepEqual(r.loaded.map((l) => [l.index, l.hooks]), [
      [1, ['onItemCaptured', 'onPacketCaptured', 'onPodEvent', 'onHubAction']],
      [2, ['onItemCaptured']],
      [3, []],
      [5, ['onItemCaptured', 'onPacketCaptured', 'onPodEvent', 'onHubAction']],
    ]);
    const before = t.engine.stats();
    t.engine.dispatchItems([{ n: 1 }, { n: 2 }]);
    t.engine.dispatchPackets([{ timestamp: 1, captureLength: 60, length: 60, truncated: false, fragmented: false }]);
    t.engine.podEvent('ADDED', { metadata: { name: 'p1' } });
    t.engine.hubAction('sum', { v: 9 });
    assert.deepEqual(t.out.logs(), [
      'one item 1', 'two item 1', 'five item 1',
      'one item 2', 'two item 2', 'five item 2',
      'one packet 60', 'five packet 60',
      'one pod ADDED p1', 'five pod ADDED p1',
      'one action sum 9', 'five action sum 9',
    ]);
    const st = t.engine.stats();
    assert.deepEqual(st.scripts.map((s) => [s.title, s.hookCalls]), [['One', 5], ['Two (items only)', 2], ['Three (no hooks)', 0], ['Five', 5]]);
    assert.equal(st.hookCalls - before.hookCalls, 12);
    assert.deepEqual(t.engine.scripts().map((s) => s.index), [1, 2, 3, 5]);
  });

  it('hooks may be defined as var function expressions or by assignment', () => {
    loadOk(
      [0, 'Var style', 'var onItemCaptured = function (data) { console.log("var", data.n); };'],
      [1, 'Assign style', 'onPodEvent = function (e, pod) { console.log("assign", e); };\nvar onHubAction;\nonHubAction = function (a) { console.log("late", a); };'],
      [2, 'Not a function', 'var onItemCaptured = 5;\nvar onPodEvent = null;'],
    );
    assert.deepEqual(t.engine.scripts().map((s) => s.hooks), [['onItemCaptured'], ['onPodEvent', 'onHubAction'], []]);
    t.engine.dispatchItems([{ n: 4 }]);
    t.engine.podEvent('DELETED', {});
    t.engine.hubAction('x', {});
    assert.deepEqual(t.out.logs(), ['var 4', 'assign DELETED', 'late x']);
    assert.deepEqual(t.out.errors(), []);
  });

  it('onPacketCaptured gets {timestamp, captureLength, length, truncated, fragmented}', () => {
    loadOk([0, 'Packets', 'var count = 0, bytes = 0;\nfunction onPacketCaptured(info) { count++; bytes += info.length; console.log(JSON.stringify(info), typeof info.truncated); }']);
    const before = t.engine.stats().packetsDispatched;
    t.engine.dispatchPackets([
      { timestamp: 1_700_000_000_123, captureLength: 54, length: 1514, truncated: true, fragmented: false },
      { timestamp: 1_700_000_000_124, captureLength: 60, length: 60, truncated: false, fragmented: true },
    ]);
    assert.deepEqual(t.out.logs(), [
      '{"timestamp":1700000000123,"captureLength":54,"length":1514,"truncated":true,"fragmented":false} boolean',
      '{"timestamp":1700000000124,"captureLength":60,"length":60,"truncated":false,"fragmented":true} boolean',
    ]);
    assert.equal(t.engine.stats().packetsDispatched - before, 2);
  });

  it('onItemQueried chains in script order; a returned object replaces the item', () => {
    loadOk(
      [0, 'Q1', 'function onItemQueried(data) { data.seen = ["q1"]; return data; }'],
      [1, 'Q2', 'function onItemQueried(data) { return { replaced: true, seen: data.seen.concat("q2") }; }'],
      [2, 'Q3', 'function onItemQueried(data) { data.seen.push("q3"); }'],
      [3, 'Q4', 'function onItemQueried(data) { return "not an object"; }'],
    );
    assert.deepEqual(t.engine.itemQueried({ id: 'x' }), { replaced: true, seen: ['q1', 'q2', 'q3'] });
  });

  it('onItemQueried: arrays and primitives do not replace the item, for later scripts either', () => {
    loadOk(
      [0, 'Array', 'function onItemQueried(data) { return [1, 2]; }'],
      [1, 'Null', 'function onItemQueried(data) { return null; }'],
      [2, 'Look', 'function onItemQueried(data) { console.log(JSON.stringify(data)); }'],
    );
    assert.deepEqual(t.engine.itemQueried({ id: 'y' }), { id: 'y' });
    assert.deepEqual(t.out.logs('Look'), ['{"id":"y"}']);
  });

  it('onItemQueried: a throwing script is reported and skipped, the chain goes on', () => {
    loadOk(
      [0, 'Thrower', 'function onItemQueried(data) {\n  data.partial = true;\n  throw new Error("query broke");\n}'],
      [1, 'Marker', 'function onItemQueried(data) { data.marked = true; return data; }'],
    );
    assert.deepEqual(t.engine.itemQueried({ id: 'z' }), { id: 'z', partial: true, marked: true });
    const [err] = t.out.errors('Thrower');
    assert.equal(err.hook, 'onItemQueried');
    assert.equal(err.line, 4);
  });

  it('itemQueried without any onItemQueried hook returns the same item', () => {
    loadOk([0, 'None', 'function onItemCaptured(d) {}']);
    const item = { id: 'same' };
    assert.equal(t.engine.itemQueried(item), item);
  });

  it('callHook calls one hook with the given arguments', () => {
    loadOk([0, 'Direct', 'function onJobPassed(tag, cron, limit) { console.log(tag, cron, limit); }']);
    t.engine.callHook('onJobPassed', ['t', '* * * * * *', 3]);
    t.engine.callHook('onPodEvent', ['ADDED', {}]);
    assert.deepEqual(t.out.logs(), ['t * * * * * * 3']);
  });

  it('a throwing hook is reported with title, hook and line; the other scripts and later items go on', () => {
    loadOk(
      [0, 'Fragile', 'var n = 0;\nfunction onItemCaptured(d) {\n  n++;\n  if (d.bad) {\n    throw new TypeError("bad item " + n);\n  }\n  console.log("fragile ok", n);\n}'],
      [1, 'Solid', 'var m = 0;\nfunction onItemCaptured(d) { m++; console.log("solid", m); }'],
    );
    const before = t.engine.stats().hookErrors;
    t.engine.dispatchItems([{}, { bad: true }, {}]);
    assert.deepEqual(t.out.logs('Fragile'), ['fragile ok 1', 'fragile ok 3']);
    assert.deepEqual(t.out.logs('Solid'), ['solid 1', 'solid 2', 'solid 3']);
    const errs = t.out.errors('Fragile');
    assert.equal(errs.length, 1);
    assert.equal(errs[0].hook, 'onItemCaptured');
    assert.equal(errs[0].line, 6);
    assert.equal(errs[0].scriptIndex, 0);
    assert.match(errs[0].text, /^Fragile:6: onItemCaptured: TypeError: bad item 2$/);
    const st = t.engine.stats();
    assert.equal(st.hookErrors - before, 1);
    assert.equal(st.scripts[0].errors, 1);
    assert.equal(st.scripts[0].lastError, errs[0].text);
    assert.equal(st.scripts[1].errors, 0);
  });

  it('a thrown non-Error value is reported too', () => {
    loadOk([0, 'Throws string', 'function onItemCaptured(d) { throw "plain string"; }'], [1, 'After', 'function onItemCaptured(d) { console.log("after"); }']);
    t.engine.dispatchItems([{}]);
    assert.match(t.out.errors('Throws string')[0].text, /plain string/);
    assert.deepEqual(t.out.logs('After'), ['after']);
  });
});

describe('item projection', () => {
  it('a script reading a few fields gets their values, and only those paths cross', () => {
    loadOk([0, 'Fields', 'function onItemCaptured(data) { console.log(data.request.method, data.response.status, data.src.ip); }']);
    t.engine.dispatchItems([HTTP_ITEM, JSON.stringify(HTTP_ITEM)]);
    assert.deepEqual(t.out.logs(), ['POST 201 10.0.0.1', 'POST 201 10.0.0.1']);
    assert.deepEqual(t.engine.stats().itemFields, ['request.method', 'response.status', 'src.ip']);
  });

  it('itemFields is the union over scripts, and empty without onItemCaptured', () => {
    loadOk([0, 'A', 'function onItemCaptured(d) { return d.request.method; }'], [1, 'B', 'function onItemCaptured(d) { return d.request.path + d.id; }']);
    assert.deepEqual(t.engine.stats().itemFields, ['id', 'request.method', 'request.path']);
    loadOk([0, 'Pods only', 'function onPodEvent(e, p) {}']);
    assert.deepEqual(t.engine.stats().itemFields, []);
  });

  const wholeItem: [string, string][] = [
    ['JSON.stringify(data)', 'console.log(JSON.stringify(data));'],
    ['for..in', 'var ks = []; for (var k in data) ks.push(k); console.log(JSON.stringify(ks));'],
    ["'x' in data", 'console.log("request" in data, "response" in data, "elapsedTime" in data);'],
    ['passing data to a function', 'console.log(describe(data));'],
    ['data.hasOwnProperty', 'console.log(data.hasOwnProperty("dst"), data.hasOwnProperty("nope"));'],
  ];
  for (const [what, body] of wholeItem) {
    it(`${what} gets the whole item`, () => {
      loadOk([0, 'Whole', `function describe(x) { return JSON.stringify(x); }\nfunction onItemCaptured(data) { ${body} }`]);
      assert.equal(t.engine.stats().itemFields, 'all');
      t.engine.dispatchItems([HTTP_ITEM]);
      // The same script body run on the real object, for reference.
      const expected = new Function('data', 'describe', `var out; var console = { log: function () { out = Array.prototype.slice.call(arguments).join(" "); } }; ${body} return out;`)(
        structuredClone(HTTP_ITEM), (x: unknown) => JSON.stringify(x)) as string;
      assert.deepEqual(t.out.logs(), [expected]);
    });
  }

  /** Runs `body` as onItemCaptured on `items`, once projected and once with the whole item, and returns both outputs. */
  function bothModes(body: string, items: unknown[]): { projected: string[]; whole: string[] } {
    loadOk([0, 'Probe', `function onItemCaptured(data) { ${body} }`]);
    assert.notEqual(t.engine.stats().itemFields, 'all');
    t.engine.dispatchItems(items as Record<string, unknown>[]);
    const projected = t.out.logs('Probe');
    t.out.clear();
    loadOk([0, 'Probe', `function onItemCaptured(data) { ${body} }`], [1, 'Needs all', 'function onItemCaptured(data) { JSON.stringify(data); }']);
    assert.equal(t.engine.stats().itemFields, 'all');
    t.engine.dispatchItems(items as Record<string, unknown>[]);
    const whole = t.out.logs('Probe');
    t.out.clear();
    return { projected, whole };
  }

  it('missing fields behave as on the whole item (TypeError on a missing parent)', () => {
    const body = 'try { console.log(data.response.status); } catch (e) { console.log(e.name); }\nconsole.log(typeof data.response, data.request && data.request.method, String(data.error));';
    const { projected, whole } = bothModes(body, [{ request: { method: 'GET' } }, HTTP_ITEM, { response: null, error: null }, { response: 'text' }]);
    assert.deepEqual(projected, whole);
    assert.deepEqual(projected.slice(0, 2), ['TypeError', 'undefined GET undefined']);
  });

  it('arrays are copied whole (length, methods, indexes)', () => {
    const body = 'var s = data.request.pathSegments; console.log(s.length, s.join("/"), s[2], data.request.pathSegments[0], s instanceof Array);';
    const { projected, whole } = bothModes(body, [HTTP_ITEM]);
    assert.deepEqual(projected, ['3 api/v1/orders orders api true']);
    assert.deepEqual(projected, whole);
  });

  it('method calls on a field see the whole field', () => {
    const body = 'console.log(data.request.path.indexOf("v1"), data.request.headers.hasOwnProperty("Host"), Object.keys(data.response.content).length);';
    const { projected, whole } = bothModes(body, [HTTP_ITEM]);
    assert.deepEqual(projected, ['5 true 3']);
    assert.deepEqual(projected, whole);
  });

  it('writes to the item are seen by later scripts the same way in both modes', () => {
    loadOk(
      [0, 'Writer', 'function onItemCaptured(data) { data.request.tag = "w"; }'],
      [1, 'Reader', 'function onItemCaptured(data) { console.log(data.request.tag, data.request.method); }'],
    );
    t.engine.dispatchItems([HTTP_ITEM]);
    assert.deepEqual(t.out.logs('Reader'), ['w POST']);
  });

  it('__proto__ in items or paths is harmless', () => {
    const hostile = '{"__proto__": {"polluted": "yes"}, "request": {"__proto__": {"method": "FAKE"}, "path": "/p"}}';
    // Reading __proto__ needs the whole item; JSON's "__proto__" is a plain own key there.
    loadOk([0, 'Proto path', 'function onItemCaptured(data) { console.log(JSON.stringify(data.__proto__), data.polluted, data.request["__proto__"].method, data.request.method, ({}).polluted); }']);
    assert.equal(t.engine.stats().itemFields, 'all');
    t.engine.dispatchItems([hostile]);
    assert.deepEqual(t.out.logs('Proto path'), ['{"polluted":"yes"} undefined FAKE undefined undefined']);
    t.out.clear();
    const { projected, whole } = bothModes('console.log(data.polluted, data.request.method, ({}).polluted, data.request.path);', [hostile]);
    assert.deepEqual(projected, ['undefined undefined undefined /p']);
    assert.deepEqual(projected, whole);
  });

  for (const mode of ['projected', 'whole'] as const) {
    it(`invalid items are counted and reported, and the rest of the batch runs (${mode})`, async () => {
      // A fresh engine: only the first invalid items of an engine are reported one by one.
      const { engine, out } = await makeEngine();
      try {
        const scripts = [script(0, 'Valid only', `function onItemCaptured(data) { console.log(data.n); ${mode === 'whole' ? 'JSON.stringify(data);' : ''} }`)];
        assert.deepEqual(engine.load({ scripts }).rejected, []);
        assert.equal(engine.stats().itemFields === 'all', mode === 'whole');
        const circular: Record<string, unknown> = { n: 99 };
        circular.self = circular;
        engine.dispatchItems([
          '{"n":1}', '{"n":', 'not json', '', 'null', '[1,2]', '42', '"str"', '{"n":2}',
          '{"n":3},{"n":4}', { n: 5 }, circular, { n: 6n } as unknown as Record<string, unknown>, '{"n":7}',
        ]);
        const st = engine.stats();
        // A BigInt in a field the script reads cannot cross; a circular object only fails when it crosses whole.
        const invalidObjects = mode === 'whole' ? 2 : 1;
        assert.equal(st.itemsInvalid, 8 + invalidObjects);
        assert.equal(st.itemsDispatched, 14 - 8 - invalidObjects);
        const expected = mode === 'whole' ? ['1', '2', '5', '7'] : ['1', '2', '5', '99', '7'];
        assert.deepEqual(out.logs('Valid only'), expected);
        const reports = out.errors().filter((e) => e.text.startsWith('input:'));
        assert.equal(reports.length, 8 + invalidObjects);
        assert.ok(reports.every((e) => e.hook === 'onItemCaptured' && e.scriptIndex === -1));
        assert.deepEqual(out.errors().filter((e) => !e.text.startsWith('input:')), []);
      } finally {
        engine.close();
      }
    });
  }

  it('large inputs are dispatched in batches, in order', async () => {
    const small = await makeEngine({ batchSize: 3 });
    try {
      small.engine.load({ scripts: [script(0, 'Order', 'var seen = [];\nfunction onItemCaptured(d) { seen.push(d.i); }\nfunction onHubAction() { console.log(seen.join(",")); }')] });
      small.engine.dispatchItems(Array.from({ length: 10 }, (_, i) => (i % 2 ? { i } : JSON.stringify({ i }))));
      small.engine.dispatchPackets([]);
      small.engine.dispatchItems([]);
      small.engine.hubAction('x', null);
      assert.deepEqual(small.out.logs(), ['0,1,2,3,4,5,6,7,8,9']);
      assert.equal(small.engine.stats().itemsDispatched, 10);
    } finally {
      small.engine.close();
    }
  });

  it('items are counted even when no script has onItemCaptured', () => {
    loadOk([0, 'No items', 'function onPodEvent() {}']);
    const before = t.engine.stats().itemsDispatched;
    t.engine.dispatchItems([{}, {}]);
    assert.equal(t.engine.stats().itemsDispatched - before, 2);
  });
});

describe('hot reload', () => {
  const counter = (title: string, extra = '') => script(0, title, `var n = 0;\nfunction onItemCaptured(d) { n++; console.log("${title}", n); }${extra}`);

  it('unchanged scripts keep their state, changed ones start fresh, removed ones stop', () => {
    const keep = counter('Keep');
    const change = { ...counter('Change'), index: 1 };
    const remove = { ...counter('Remove'), index: 2 };
    t.engine.load({ scripts: [keep, change, remove] });
    t.engine.dispatchItems([{}, {}]);
    t.out.clear();
    const changed = { ...change, code: `${change.code}\n// v2` };
    const report = t.engine.load({ scripts: [keep, changed] });
    assert.equal(report.rebuilt, false);
    assert.deepEqual(report.loaded.map((l) => [l.title, l.kept]), [['Keep', true], ['Change', false]]);
    t.engine.dispatchItems([{}]);
    assert.deepEqual(t.out.logs(), ['Keep 3', 'Change 1']);
    assert.deepEqual(t.engine.stats().scripts.map((s) => s.title), ['Keep', 'Change']);
  });

  it('a kept script moved to another index keeps its state and takes its new place in the order', () => {
    const a = counter('A');
    const b = { ...counter('B'), index: 1 };
    t.engine.load({ scripts: [a, b] });
    t.engine.dispatchItems([{}]);
    t.out.clear();
    const report = t.engine.load({ scripts: [{ ...a, index: 9 }, b] });
    assert.deepEqual(report.loaded.map((l) => [l.index, l.title, l.kept]), [[1, 'B', true], [9, 'A', true]]);
    t.engine.dispatchItems([{}]);
    assert.deepEqual(t.out.logs(), ['B 2', 'A 2']);
    assert.equal(t.engine.stats().scripts[1].index, 9);
  });

  it('the same code under two indexes runs twice, with separate state', () => {
    const a = counter('Twin');
    t.engine.load({ scripts: [a, { ...a, index: 1 }] });
    t.engine.dispatchItems([{}]);
    t.engine.load({ scripts: [a, { ...a, index: 1 }] });
    t.engine.dispatchItems([{}]);
    assert.deepEqual(t.out.logs(), ['Twin 1', 'Twin 1', 'Twin 2', 'Twin 2']);
  });

  it('an env change rebuilds the VM: every script starts fresh with the new env', () => {
    const s = script(0, 'Env user', 'var n = 0;\nfunction onItemCaptured(d) { n++; console.log(env.MODE, n); }');
    t.engine.load({ scripts: [s], env: { MODE: 'a' } });
    t.engine.dispatchItems([{}, {}]);
    const same = t.engine.load({ scripts: [s], env: { MODE: 'a' } });
    assert.equal(same.rebuilt, false);
    const report = t.engine.load({ scripts: [s], env: { MODE: 'b' } });
    assert.equal(report.rebuilt, true);
    assert.deepEqual(report.loaded.map((l) => l.kept), [false]);
    t.engine.dispatchItems([{}]);
    assert.deepEqual(t.out.logs(), ['a 1', 'a 2', 'b 1']);
    t.engine.load({ scripts: [], env: {} });
  });

  it('the shared global scope is reset by a rebuild, not by a reload', () => {
    t.engine.load({ scripts: [script(0, 'Global', 'this.g = (this.g || 0) + 1; console.log("g", g);')] });
    t.engine.load({ scripts: [script(0, 'Global', 'this.g = (this.g || 0) + 1; console.log("g", g);\n// changed')] });
    t.engine.load({ scripts: [script(0, 'Global', 'this.g = (this.g || 0) + 1; console.log("g", g);')], env: { X: '1' } });
    assert.deepEqual(t.out.logs(), ['g 1', 'g 2', 'g 1']);
    t.engine.load({ scripts: [], env: {} });
  });

  it('an invalid new version is rejected; the previous version keeps running with its state, and so do the others', () => {
    const other = { ...counter('Other'), index: 1 };
    t.engine.load({ scripts: [counter('Evolving'), other] });
    t.engine.dispatchItems([{}]);
    t.out.clear();
    const report = t.engine.load({ scripts: [{ index: 0, code: '// Evolving\nlet broken = () => 1;' }, other] });
    assert.equal(report.rejected.length, 1);
    assert.equal(report.rejected[0].title, 'Evolving');
    assert.equal(report.rejected[0].line, 2);
    assert.match(t.out.errors('Evolving')[0]?.text ?? '', /previous version keeps running/);
    assert.deepEqual(report.loaded.map((l) => [l.title, l.kept]), [['Evolving', true], ['Other', true]]);
    t.engine.dispatchItems([{}]);
    assert.deepEqual(t.out.logs('Other'), ['Other 2']);
    assert.deepEqual(t.out.logs('Evolving'), ['Evolving 2']);
  });

  it('an invalid script with no previous version is simply not loaded', () => {
    const report = t.engine.load({ scripts: [{ index: 0, code: '// Newcomer\nconst x = 1;' }, counter('Other')] });
    assert.deepEqual(report.rejected.map((r) => r.title), ['Newcomer']);
    assert.deepEqual(report.loaded.map((l) => l.title), ['Other']);
  });

  it('removing every script stops every hook', () => {
    t.engine.load({ scripts: [counter('Gone')] });
    t.engine.load({ scripts: [] });
    t.engine.dispatchItems([{}]);
    t.engine.podEvent('ADDED', {});
    assert.deepEqual(t.out.logs(), []);
    assert.equal(t.engine.stats().scriptsLoaded, 0);
  });
});

describe('fault locations', () => {
  it('an error thrown on line N is reported on line N', () => {
    const lines = ['// Lines', 'var a = 1;', '', 'function deeper(x) {', '  return x.missing.field;', '}', 'function onItemCaptured(d) {', '  deeper(d);', '}'];
    loadOk([0, 'unused', '']);
    t.engine.load({ scripts: [{ index: 0, code: lines.join('\n') }] });
    t.engine.dispatchItems([{}]);
    const [err] = t.out.errors('Lines');
    assert.equal(err.line, 5);
    assert.ok(err.column !== undefined && err.column > 0);
    assert.match(err.text, /^Lines:5: onItemCaptured: TypeError/);
  });

  it('an error on line 1 gets the same column as the same code on line 2 (the wrapper is not counted)', () => {
    const code = 'function onItemCaptured(d) { var x = 1; null.boom(); }';
    t.engine.load({ scripts: [{ index: 0, code, title: 'First line' }, { index: 1, code: `\n${code}`, title: 'Second line' }] });
    t.engine.dispatchItems([{}]);
    const [first] = t.out.errors('First line');
    const [second] = t.out.errors('Second line');
    assert.equal(first.line, 1);
    assert.equal(second.line, 2);
    assert.ok(first.column !== undefined && first.column > 0);
    assert.equal(first.column, second.column);
    assert.ok(first.column <= code.indexOf('null.boom') + 'null.boom()'.length + 1, `column ${first.column} is past the call`);
  });

  it('an error in the top level is reported with its line', () => {
    const r = t.engine.load({ scripts: [{ index: 0, code: '// Top\nvar ok = 1;\n\nundefinedFunction();' }] });
    assert.equal(r.rejected[0].line, 4);
    assert.equal(t.out.errors('Top')[0].line, 4);
  });
});

describe('stats and latency', () => {
  it('counts hook calls and records latency; takeLatency starts a new window', () => {
    loadOk([0, 'Lat', 'function onItemCaptured(d) {}']);
    t.engine.takeLatency();
    t.engine.dispatchItems([{}, {}, {}]);
    const lat = t.engine.takeLatency();
    assert.equal(lat.count, 3);
    assert.ok(lat.p50 >= 0 && lat.p50 <= lat.max + 1);
    assert.equal(t.engine.takeLatency().count, 0);
  });
});
