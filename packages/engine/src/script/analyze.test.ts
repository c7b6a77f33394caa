import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyzeScript, normalizePaths, unionFields, type ItemFields } from './analyze.ts';
import { parseScript } from './validate.ts';

function analyze(code: string) {
  return analyzeScript(parseScript(code, { fallbackTitle: 't.js' }).ast);
}

/** The onItemCaptured fields as dotted strings, or 'all'. */
function fields(code: string): string[] | 'all' {
  const f = analyze(code).itemCapturedFields;
  return f.kind === 'all' ? 'all' : f.paths.map((p) => p.join('.'));
}

describe('analyzeScript: hooks', () => {
  it('finds function-declared hooks in HOOK_NAMES order', () => {
    const a = analyze('function onJobFailed(){}\nfunction onItemCaptured(d){}\nfunction onPodEvent(e, p){}\nfunction helper(){}');
    assert.deepEqual(a.hooks, ['onItemCaptured', 'onPodEvent', 'onJobFailed']);
  });

  it('finds var-assigned and plain-assigned hooks', () => {
    const a = analyze('var onItemCaptured = function (d) {};\nonHubAction = function (a, o) {};\nvar x = 1, onPacketCaptured = function (i) {};');
    assert.deepEqual(a.hooks, ['onItemCaptured', 'onPacketCaptured', 'onHubAction']);
  });

  it('ignores hook names declared only inside functions or as properties', () => {
    const a = analyze('function f() { function onItemCaptured(d) {} }\nvar o = { onPodEvent: function () {} };\nthis.onHubAction2 = 1;');
    assert.deepEqual(a.hooks, []);
  });

  it('reports no fields when onItemCaptured is absent', () => {
    assert.deepEqual(analyze('function onPodEvent(e, p) { return p.metadata.name; }').itemCapturedFields, { kind: 'paths', paths: [] });
  });
});

describe('analyzeScript: onItemCaptured field paths', () => {
  it('collects dotted and literal-computed paths', () => {
    assert.deepEqual(
      fields('function onItemCaptured(data) { var m = data.request.method; var s = data.response.status; var ip = data["src"].ip; var h = data.request.headers["content-type"]; }'),
      ['request.headers.content-type', 'request.method', 'response.status', 'src.ip'],
    );
  });

  it('keeps a numeric literal key as a path segment', () => {
    assert.deepEqual(fields('function onItemCaptured(d) { return d.request.questions[0].name; }'), ['request.questions.0.name']);
  });

  it('stops at a dynamic key: the object before it is needed whole', () => {
    assert.deepEqual(fields('function onItemCaptured(d) { var k = "x"; return d.request.headers[k]; }'), ['request.headers']);
  });

  it('collapses a path under a shorter one', () => {
    assert.deepEqual(fields('function onItemCaptured(d) { d.request.method; d.request; d.request.path; d.dst.port; }'), ['dst.port', 'request']);
  });

  it('a method call keeps its receiver whole', () => {
    assert.deepEqual(fields('function onItemCaptured(d) { return d.request.path.indexOf("/api"); }'), ['request.path']);
    assert.deepEqual(fields('function onItemCaptured(d) { return d.request.headers.hasOwnProperty("x"); }'), ['request.headers']);
  });

  it('a method called on the item itself needs the whole item', () => {
    assert.equal(fields('function onItemCaptured(d) { return d.hasOwnProperty("request"); }'), 'all');
    assert.equal(fields('function onItemCaptured(d) { return d.toString(); }'), 'all');
  });

  it('writes below the parameter are fine and count as paths', () => {
    assert.deepEqual(fields('function onItemCaptured(d) { d.request.tag = 1; }'), ['request.tag']);
  });

  it('harmless bare uses of the parameter need no fields', () => {
    assert.deepEqual(fields('function onItemCaptured(d) { if (!d) return; if (d) {} if (d === null || d == undefined) {} var t = typeof d; while (d && d.x) { break; } return d ? 1 : 2; }'), ['x']);
  });

  it('a hook without parameters reads nothing', () => {
    assert.deepEqual(fields('function onItemCaptured() { console.log("x"); }'), []);
  });

  it('property names equal to the parameter name are not references', () => {
    assert.deepEqual(fields('function onItemCaptured(d) { var o = { d: 1 }; return o.d + d.n; }'), ['n']);
  });

  it('merges several definitions of the hook', () => {
    assert.deepEqual(fields('function onItemCaptured(d) { return d.a; }\nif (true) { onItemCaptured = function (x) { return x.b; }; }'), ['a', 'b']);
  });

  const needsAll: [string, string][] = [
    ['JSON.stringify(data)', 'function onItemCaptured(data) { console.log(JSON.stringify(data)); }'],
    ['for..in', 'function onItemCaptured(data) { for (var k in data) { console.log(k); } }'],
    ['the in operator', 'function onItemCaptured(data) { return "request" in data; }'],
    ['passing data to a function', 'function f(x) { return x.request.method; }\nfunction onItemCaptured(data) { f(data); }'],
    ['storing data', 'var last;\nfunction onItemCaptured(data) { last = data; }'],
    ['returning data', 'function onItemCaptured(data) { return data; }'],
    ['data in an array literal', 'function onItemCaptured(data) { var a = [data]; }'],
    ['data as a value of a logical expression', 'function onItemCaptured(data) { var x = data || {}; }'],
    ['reassigning the parameter', 'function onItemCaptured(data) { data = {}; return data.a; }'],
    ['shadowing by var', 'function onItemCaptured(data) { var data = 1; }'],
    ['shadowing by an inner function parameter', 'function onItemCaptured(data) { [1].forEach(function (data) { return data; }); return data.x; }'],
    ['shadowing by an inner var', 'function onItemCaptured(data) { function g() { var data = 2; return data; } return data.x + g(); }'],
    ['shadowing by a function declaration', 'function onItemCaptured(data) { function data() {} }'],
    ['shadowing by a catch parameter', 'function onItemCaptured(data) { try { x(); } catch (data) { return data.message; } }'],
    ['a duplicate parameter name', 'function onItemCaptured(data, data) { return data.a; }'],
    ['eval', 'function onItemCaptured(data) { return eval("data.a"); }'],
    ['eval anywhere in the script', 'var e = eval;\nfunction onItemCaptured(data) { return data.a; }'],
    ['with', 'function onItemCaptured(data) { with (data) { return request; } }'],
    ['arguments', 'function onItemCaptured(data) { return arguments[0].request; }'],
    ['arguments in an inner function', 'function onItemCaptured(data) { var f = function () { return arguments.length; }; return data.a; }'],
    ['a __proto__ path', 'function onItemCaptured(data) { return data.__proto__; }'],
    ['a __proto__ path below the top', 'function onItemCaptured(data) { return data.request["__proto__"].x; }'],
    ['a hook defined by something other than a function literal', 'function make() { return function (d) { return d.a; }; }\nvar onItemCaptured = make();'],
    ['a hook assigned from another function', 'function h(d) { return d.a; }\nvar onItemCaptured;\nonItemCaptured = h;'],
  ];
  for (const [what, code] of needsAll) {
    it(`needs the whole item: ${what}`, () => {
      assert.equal(fields(code), 'all');
    });
  }

  it('`this` in the hook is not the item', () => {
    assert.deepEqual(fields('function onItemCaptured(data) { return this.x + data.a; }'), ['a']);
  });

  it('`eval` as a property name is not eval', () => {
    assert.deepEqual(fields('var o = { eval: 1 };\nfunction onItemCaptured(data) { return o.eval + data.a; }'), ['a']);
  });

  it('other hooks do not influence the onItemCaptured fields', () => {
    assert.deepEqual(fields('function onItemQueried(data) { return JSON.stringify(data); }\nfunction onItemCaptured(d) { return d.id; }'), ['id']);
  });
});

describe('normalizePaths and unionFields', () => {
  it('normalizePaths drops duplicates and paths under a prefix, and sorts', () => {
    assert.deepEqual(normalizePaths([['b', 'c'], ['a'], ['b', 'c'], ['a', 'x'], ['b', 'd', 'e'], ['b', 'd']]).map((p) => p.join('.')), ['a', 'b.c', 'b.d']);
  });

  it('normalizePaths does not treat a name prefix as a path prefix', () => {
    assert.deepEqual(normalizePaths([['req'], ['request', 'a']]).map((p) => p.join('.')), ['req', 'request.a']);
  });

  it('unionFields merges path sets, and "all" wins', () => {
    const a: ItemFields = { kind: 'paths', paths: [['request', 'method']] };
    const b: ItemFields = { kind: 'paths', paths: [['request'], ['src', 'ip']] };
    const u = unionFields([a, b]);
    assert.equal(u.kind, 'paths');
    assert.deepEqual(u.kind === 'paths' && u.paths.map((p) => p.join('.')), ['request', 'src.ip']);
    assert.deepEqual(unionFields([a, { kind: 'all' }, b]), { kind: 'all' });
    assert.deepEqual(unionFields([]), { kind: 'paths', paths: [] });
  });
});
