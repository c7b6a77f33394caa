/**
 * The helpers as scripts see them, through the engine's public API.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { EngineConfigError } from '../errors.ts';
import { makeEngine, script, type TestEngine } from '../test-support.ts';

let t: TestEngine;
before(async () => { t = await makeEngine(); });
after(() => t.engine.close());
beforeEach(() => { t.engine.load({ scripts: [] }); t.out.clear(); });

/** Loads one script and asserts it loaded. */
function loadOne(title: string, body: string, env?: Record<string, string>): void {
  const r = t.engine.load({ scripts: [script(0, title, body)], ...(env ? { env } : {}) });
  assert.deepEqual(r.rejected, [], JSON.stringify(r.rejected));
}

describe('console', () => {
  it('log joins arguments with spaces: strings raw, objects as JSON, errors as "Name: message"', () => {
    loadOne('Fmt', 'console.log("a b", 1, 2.5, -0, {b: 2, c: "x"}, [1, "x", null], null, undefined, true, new Error("boom"), new TypeError("bad type"), function named() {}, NaN);');
    assert.deepEqual(t.out.logs('Fmt'), ['a b 1 2.5 0 {"b":2,"c":"x"} [1,"x",null] null undefined true Error: boom TypeError: bad type [Function: named] NaN']);
  });

  it('log with no arguments is an empty line; nested objects are JSON', () => {
    loadOne('Empty', 'console.log(); console.log({a: {b: [1, {c: true}]}});');
    assert.deepEqual(t.out.logs('Empty'), ['', '{"a":{"b":[1,{"c":true}]}}']);
  });

  it('an object that cannot be JSON does not break console.log', () => {
    loadOne('Circular', 'var o = {}; o.self = o; console.log("x", o, "y");');
    const lines = t.out.logs('Circular');
    assert.equal(lines.length, 1);
    assert.match(lines[0], /^x .+ y$/);
  });

  it('error and warn log at level error; info at level log; every event names the script', () => {
    loadOne('Levels', 'console.error("bad", 1); console.warn("careful"); console.info("fyi");');
    const events = t.out.consoleEvents.filter((e) => e.title === 'Levels');
    assert.deepEqual(events.map((e) => [e.level, e.text, e.scriptIndex]), [
      ['error', 'bad 1', 0], ['error', 'careful', 0], ['log', 'fyi', 0],
    ]);
    assert.ok(events.every((e) => typeof e.timestampMs === 'number' && e.timestampMs > 0));
  });

  it('clear emits a clear event', () => {
    loadOne('Clear', 'console.clear();');
    const events = t.out.consoleEvents.filter((e) => e.title === 'Clear');
    assert.deepEqual(events.map((e) => [e.level, e.text]), [['clear', '']]);
  });

  it('calls from hooks carry the title and index of the script that made them', () => {
    t.engine.load({
      scripts: [
        script(4, 'Four', 'function onItemCaptured(d) { console.log("from four"); }'),
        script(9, 'Nine', 'function onItemCaptured(d) { console.error("from nine"); }'),
      ],
    });
    t.engine.dispatchItems([{}]);
    assert.deepEqual(t.out.consoleEvents.map((e) => [e.scriptIndex, e.title, e.level, e.text]), [
      [4, 'Four', 'log', 'from four'], [9, 'Nine', 'error', 'from nine'],
    ]);
  });
});

describe('hub.action', () => {
  it('emits the action and the object as JSON, with the script title and index', () => {
    loadOne('Hub sender', 'function onItemCaptured(d) { hub.action("count", {n: d.n, tags: ["a"]}); hub.action("nothing"); }');
    t.engine.dispatchItems([{ n: 3 }]);
    assert.deepEqual(t.out.hubActions.map((e) => [e.action, e.objectJson, e.title, e.scriptIndex]), [
      ['count', '{"n":3,"tags":["a"]}', 'Hub sender', 0],
      ['nothing', 'null', 'Hub sender', 0],
    ]);
  });

  it('throws a TypeError the script can catch on a bad action or an object that is not JSON', () => {
    loadOne('Hub bad', [
      'var r = [];',
      'try { hub.action("", {}); } catch (e) { r.push(e instanceof TypeError); }',
      'try { hub.action(42, {}); } catch (e) { r.push(e instanceof TypeError); }',
      'try { var o = {}; o.o = o; hub.action("x", o); } catch (e) { r.push(e instanceof TypeError, /hub.action/.test(e.message)); }',
      'console.log(JSON.stringify(r));',
    ].join('\n'));
    assert.deepEqual(t.out.logs('Hub bad'), ['[true,true,true,true]']);
    assert.deepEqual(t.out.hubActions, []);
  });

  it('onHubAction receives what hub.action sent (the hub side)', async () => {
    const hub = await makeEngine({ nodeName: 'hub' });
    try {
      assert.equal(hub.engine.mode, 'hub');
      loadOne('Sender', 'function onItemCaptured(d) { hub.action("stat", {n: d.n}); }');
      hub.engine.load({ scripts: [script(0, 'Receiver', 'var total = 0;\nfunction onHubAction(action, object) { total += object.n; console.log(action, total, utils.nodeName()); }')] });
      t.engine.dispatchItems([{ n: 2 }, { n: 5 }]);
      for (const a of t.out.hubActions) hub.engine.hubAction(a.action, JSON.parse(a.objectJson));
      assert.deepEqual(hub.out.logs(), ['stat 2 hub', 'stat 7 hub']);
    } finally {
      hub.engine.close();
    }
  });
});

describe('env', () => {
  it('exposes the set env as strings', () => {
    loadOne('Env', 'console.log(env.A, env.EMPTY === "", typeof env.MISSING, Object.keys(env).sort().join(","));', { A: 'alpha', EMPTY: '' });
    assert.deepEqual(t.out.logs('Env'), ['alpha true undefined A,EMPTY']);
  });

  it('is read-only: writes, deletes and reassignment do not stick, for this script or others', () => {
    t.engine.load({
      env: { TOKEN: 'secret' },
      scripts: [
        script(0, 'Writer', 'env.TOKEN = "changed"; env.NEW = "x"; delete env.TOKEN; env = {TOKEN: "replaced"}; this.env = null;\nconsole.log(env.TOKEN, typeof env.NEW);\nvar strict = (function () { "use strict"; try { env.TOKEN = "y"; return "no throw"; } catch (e) { return e instanceof TypeError; } })();\nconsole.log(strict);'),
        script(1, 'Reader', 'console.log(env.TOKEN);'),
      ],
    });
    assert.deepEqual(t.out.logs('Writer'), ['secret undefined', 'true']);
    assert.deepEqual(t.out.logs('Reader'), ['secret']);
  });

  it('rejects env values that are not strings', () => {
    assert.throws(() => t.engine.load({ scripts: [], env: { N: 5 as unknown as string } }), EngineConfigError);
  });
});

describe('utils', () => {
  it('nodeName() is the engine node name', async () => {
    loadOne('Node', 'console.log(utils.nodeName());');
    assert.deepEqual(t.out.logs('Node'), ['node-a']);
  });

  it('json2Yaml converts JSON text (and objects) to YAML', () => {
    loadOne('Yaml', 'console.log(utils.json2Yaml(\'{"a":1,"b":[1,"x"],"c":{"d":null}}\'));\nconsole.log(utils.json2Yaml({k: "v"}));');
    assert.deepEqual(t.out.logs('Yaml'), ['a: 1\nb:\n  - 1\n  - x\nc:\n  d: null\n', 'k: v\n']);
  });

  it('json2Yaml on bad JSON throws a TypeError the script can catch', () => {
    loadOne('Yaml bad', 'try { utils.json2Yaml("{nope"); console.log("no throw"); } catch (e) { console.log(e instanceof TypeError, e.name, /not valid JSON/.test(e.message)); }');
    assert.deepEqual(t.out.logs('Yaml bad'), ['true TypeError true']);
  });
});

describe('test.pass / test.fail', () => {
  it('mark the item and return it', () => {
    loadOne('Marks', 'var a = {x: 1}; var r = test.pass(a); console.log(r === a, a.passed, a.failed);\nvar b = test.fail({}); console.log(b.passed, b.failed);\ntry { test.pass(null); } catch (e) { console.log(e instanceof TypeError); }');
    assert.deepEqual(t.out.logs('Marks'), ['true true false', 'false true', 'true']);
  });

  it('in onItemQueried they mark the item the dashboard gets', () => {
    loadOne('Query marks', 'function onItemQueried(data) { return data.response.status >= 500 ? test.fail(data) : test.pass(data); }');
    assert.deepEqual(t.engine.itemQueried({ id: 'a', response: { status: 200 } }), { id: 'a', response: { status: 200 }, passed: true, failed: false });
    assert.deepEqual(t.engine.itemQueried({ id: 'b', response: { status: 503 } }), { id: 'b', response: { status: 503 }, passed: false, failed: true });
  });
});

describe('wrapper.joinMaps', () => {
  it('sums numbers, joins nested maps, concatenates arrays, takes b otherwise', () => {
    loadOne('Join', [
      'var a = {n: 1, m: {x: 1, y: 2}, l: [1], s: "a", onlyA: true, z: 0};',
      'var b = {n: 2, m: {x: 10, w: 5}, l: [2, 3], s: "b", onlyB: null, z: 0};',
      'console.log(JSON.stringify(wrapper.joinMaps(a, b)));',
    ].join('\n'));
    assert.deepEqual(JSON.parse(t.out.logs('Join')[0]), { n: 3, m: { x: 11, y: 2, w: 5 }, l: [1, 2, 3], s: 'b', onlyA: true, onlyB: null, z: 0 });
  });

  it('does not mutate its inputs', () => {
    loadOne('Join pure', [
      'var a = {n: 1, m: {x: 1}, l: [1]};',
      'var b = {n: 2, m: {x: 2}, l: [2]};',
      'var before = JSON.stringify([a, b]);',
      'var r = wrapper.joinMaps(a, b);',
      'r.m.x = 99; r.l.push(7);',
      'console.log(JSON.stringify([a, b]) === before);',
    ].join('\n'));
    assert.deepEqual(t.out.logs('Join pure'), ['true']);
  });

  it('treats null/undefined as empty and rejects non-objects with a catchable TypeError', () => {
    loadOne('Join edge', [
      'console.log(JSON.stringify(wrapper.joinMaps(null, {a: 1})), JSON.stringify(wrapper.joinMaps({a: 1})));',
      'try { wrapper.joinMaps([1], {}); } catch (e) { console.log(e instanceof TypeError); }',
      'try { wrapper.joinMaps({}, 5); } catch (e) { console.log(e instanceof TypeError); }',
    ].join('\n'));
    assert.deepEqual(t.out.logs('Join edge'), ['{"a":1} {"a":1}', 'true', 'true']);
  });

  it('consolidates per-worker counters in a reduce', () => {
    loadOne('Join reduce', [
      'var parts = [{GET: 1, codes: {200: 1}}, {GET: 2, POST: 1, codes: {200: 1, 500: 1}}, {}];',
      'var total = {};',
      'for (var i = 0; i < parts.length; i++) total = wrapper.joinMaps(total, parts[i]);',
      'console.log(JSON.stringify(total));',
    ].join('\n'));
    assert.deepEqual(JSON.parse(t.out.logs('Join reduce')[0]), { GET: 3, POST: 1, codes: { 200: 2, 500: 1 } });
  });
});

describe('wrapper.buildHAR', () => {
  it('builds a HAR 1.2 log from items a script collected (headers as map or as list)', () => {
    loadOne('HAR', [
      'var items = [];',
      'function onItemCaptured(data) { items.push(data); }',
      'jobs.schedule("har", "0 0 0 1 1 *", function () {',
      '  var har = wrapper.buildHAR(items);',
      '  console.log(har.log.version, har.log.entries.length, har.log.entries[0].request.method, har.log.entries[1].request.headers[0].name, har.log.entries[0].response.status);',
      '});',
    ].join('\n'));
    t.engine.dispatchItems([
      { protocol: { name: 'http' }, request: { method: 'GET', path: '/a', headers: { Host: 'h' } }, response: { status: 200 } },
      { protocol: { name: 'http' }, request: { method: 'PUT', path: '/b', headers: [{ name: 'X-List', value: '1' }] }, response: { status: 204 } },
      { protocol: { name: 'dns' }, request: { questions: [] } },
    ]);
    t.engine.runJob('har');
    assert.deepEqual(t.out.logs('HAR'), ['1.2 2 GET X-List 200']);
  });

  it('rejects a non-array with a catchable TypeError', () => {
    loadOne('HAR bad', 'try { wrapper.buildHAR({}); } catch (e) { console.log(e instanceof TypeError); }');
    assert.deepEqual(t.out.logs('HAR bad'), ['true']);
  });
});

describe('helpers cannot be clobbered', () => {
  // Each test has its own engine: a failure here must not leave a damaged VM to the other tests.
  let v: TestEngine;
  beforeEach(async () => { v = await makeEngine(); });
  afterEach(() => v.engine.close());

  it('one script overwriting or deleting helpers does not affect another', () => {
    const r = v.engine.load({
      scripts: [
        script(0, 'Vandal', [
          'console.log = null; console.error = function () {}; console = null; this.console = 1; delete this.console;',
          'hub = null; hub.action = null; env = null; utils.nodeName = function () { return "evil"; };',
          'jobs.schedule = null; jobs.scheduler.stop = null; wrapper.joinMaps = null; test.pass = null;',
          'var defined; try { Object.defineProperty(this, "console", { value: {} }); defined = "redefined"; } catch (e) { defined = e instanceof TypeError; }',
          'var own = (function () { "use strict"; try { console.log = null; return "assigned"; } catch (e) { return e instanceof TypeError; } })();',
          'console.log("vandal", defined, own, typeof console.log);',
        ].join('\n')),
        script(1, 'Victim', [
          'console.log("victim", utils.nodeName(), typeof jobs.schedule, typeof wrapper.joinMaps, typeof test.pass, typeof hub.action);',
          'function onItemCaptured(d) { console.error("victim error"); }',
        ].join('\n')),
      ],
    });
    assert.deepEqual(r.rejected, [], JSON.stringify(r.rejected));
    v.engine.dispatchItems([{}]);
    assert.deepEqual(v.out.logs('Vandal'), ['vandal true true function']);
    assert.deepEqual(v.out.logs('Victim'), ['victim node-a function function function function']);
    assert.deepEqual(v.out.errors('Victim').map((e) => e.text), ['victim error']);
  });

  it('one script overwriting built-ins the engine uses does not break hooks, console or jobs of others', () => {
    const r = v.engine.load({
      scripts: [
        script(0, 'Builtin vandal', [
          'JSON.parse = function () { throw new Error("no parse"); };',
          'JSON.stringify = function () { return "\\"hijacked\\""; };',
          'Function.prototype.apply = function () { throw new Error("no apply"); };',
          'Function.prototype.call = function () { throw new Error("no call"); };',
          'Array.prototype.push = function () { throw new Error("no push"); };',
          'Array.prototype.slice = null;',
          'Array.prototype.join = function () { return "joined?"; };',
          'String.prototype.split = null;',
          'Object.prototype.hasOwnProperty = function () { return false; };',
        ].join('\n')),
        script(1, 'Builtin victim', [
          'var n = 0;',
          'function onItemCaptured(d) { n++; console.log("item", n, d.a, {a: d.a}); }',
          'function onPodEvent(event, pod) { console.log("pod", event, pod.name); }',
          'function onItemQueried(d) { d.q = 1; return d; }',
          'jobs.schedule("victim-job", "0 0 0 1 1 *", function (x, y) { console.log("job", x, y); }, 0, "p", 2);',
        ].join('\n')),
      ],
    });
    assert.deepEqual(r.rejected, [], JSON.stringify(r.rejected));
    v.engine.dispatchItems([{ a: 1 }, '{"a":2}']);
    v.engine.podEvent('ADDED', { name: 'pod-1' });
    v.engine.runJob('victim-job');
    assert.deepEqual(v.engine.itemQueried({ id: 1 }), { id: 1, q: 1 });
    assert.deepEqual(v.out.logs('Builtin victim'), ['item 1 1 {"a":1}', 'item 2 2 {"a":2}', 'pod ADDED pod-1', 'job p 2']);
    assert.equal(v.engine.stats().itemsInvalid, 0);
    // Later loads still work (the engine does not depend on what the script replaced).
    const again = v.engine.load({ scripts: [script(2, 'Later', 'function onItemCaptured(d) { console.log("later", d.a); }')] });
    assert.deepEqual(again.rejected, []);
    v.engine.dispatchItems(['{"a":3}']);
    assert.deepEqual(v.out.logs('Later'), ['later 3']);
  });
});

describe('the sandbox', () => {
  it('offers scripts nothing of Node', () => {
    loadOne('Escape', [
      'var g = (function () { return this; })();',
      'console.log(typeof require, typeof process, typeof module, typeof exports, typeof Buffer, typeof __dirname, typeof global, typeof g.process, typeof setTimeout, typeof fetch);',
      'var viaCtor; try { viaCtor = this.constructor.constructor("return typeof process + typeof require")(); } catch (e) { viaCtor = "threw"; }',
      'console.log(viaCtor);',
    ].join('\n'));
    const lines = t.out.logs('Escape');
    assert.deepEqual(lines[0].split(' ').slice(0, 8), Array(8).fill('undefined'));
    assert.equal(lines[1], 'undefinedundefined');
  });

  it('engine internals are not reachable from scripts', () => {
    loadOne('Internals', 'var names = []; var g = (function () { return this; })(); for (var k in g) names.push(k); console.log(names.join(","), typeof D, typeof host, typeof cfg);');
    const [line] = t.out.logs('Internals');
    assert.match(line, / undefined undefined undefined$/);
    assert.doesNotMatch(line, /wirescript|prelude/i);
  });
});
