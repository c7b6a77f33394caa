import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileProjection, project } from './projection.ts';

const item = {
  id: 'abc',
  protocol: { name: 'http', version: '1.1' },
  src: { ip: '10.0.0.1', port: '5555', name: 'client' },
  dst: { ip: '10.0.0.2', port: '80' },
  request: {
    method: 'GET',
    path: '/api',
    headers: { host: 'svc', 'content-type': 'text/plain' },
    pathSegments: ['api'],
    postData: null,
  },
  response: { status: 200, content: { size: 3, text: 'abc' } },
  elapsedTime: 12,
};

function proj(paths: string[][], value: Record<string, unknown> = item): Record<string, unknown> {
  return project(value, compileProjection(paths));
}

describe('compileProjection', () => {
  it('builds a tree with `true` leaves', () => {
    const t = compileProjection([['request', 'method'], ['request', 'path'], ['id']]);
    assert.equal(t.get('id'), true);
    const req = t.get('request');
    assert.ok(req instanceof Map);
    assert.equal(req.get('method'), true);
    assert.equal(req.get('path'), true);
  });

  it('a shorter path wins over a longer one, in either order', () => {
    assert.equal(compileProjection([['request'], ['request', 'method']]).get('request'), true);
    assert.equal(compileProjection([['request', 'method'], ['request']]).get('request'), true);
  });

  it('an empty path list projects to an empty object', () => {
    assert.deepEqual(proj([]), {});
  });
});

describe('project', () => {
  it('copies exactly the requested leaves', () => {
    assert.deepEqual(proj([['request', 'method'], ['response', 'status'], ['src', 'ip']]), {
      request: { method: 'GET' },
      response: { status: 200 },
      src: { ip: '10.0.0.1' },
    });
  });

  it('copies a requested subtree whole', () => {
    assert.deepEqual(proj([['request', 'headers']]), { request: { headers: { host: 'svc', 'content-type': 'text/plain' } } });
  });

  it('leaves missing fields missing (not undefined, not {})', () => {
    const p = proj([['response', 'status'], ['nope', 'deeper'], ['request', 'nothing']]);
    assert.deepEqual(p, { response: { status: 200 }, request: {} });
    assert.equal(Object.prototype.hasOwnProperty.call(p, 'nope'), false);
    const noResponse = proj([['response', 'status']], { request: { method: 'GET' } });
    assert.deepEqual(noResponse, {});
  });

  it('copies arrays whole even when a path goes into them', () => {
    const p = proj([['request', 'pathSegments', '0']]);
    assert.deepEqual(p, { request: { pathSegments: ['api'] } });
  });

  it('copies null and primitives where an object was expected', () => {
    assert.deepEqual(proj([['request', 'postData', 'text']]), { request: { postData: null } });
    assert.deepEqual(proj([['request', 'method', 'length']]), { request: { method: 'GET' } });
    assert.deepEqual(proj([['elapsedTime', 'x']]), { elapsedTime: 12 });
  });

  it('keeps falsy values', () => {
    assert.deepEqual(proj([['a'], ['b'], ['c'], ['d']], { a: 0, b: '', c: false, d: null }), { a: 0, b: '', c: false, d: null });
  });

  it('does not pick up inherited properties', () => {
    const p = proj([['toString'], ['request', 'hasOwnProperty'], ['constructor']]);
    assert.deepEqual(Object.keys(p), ['request']);
    assert.deepEqual(Object.keys(p.request as object), []);
  });

  it('does not follow or set __proto__', () => {
    const hostile = JSON.parse('{"__proto__": {"polluted": true}, "a": {"__proto__": {"x": 1}, "b": 2}}') as Record<string, unknown>;
    const p = proj([['__proto__', 'polluted'], ['a', '__proto__', 'x'], ['a', 'b']], hostile);
    assert.equal(Object.getPrototypeOf(p), Object.prototype);
    assert.equal((p as { polluted?: unknown }).polluted, undefined);
    assert.equal(({} as { polluted?: unknown }).polluted, undefined);
    const a = p.a as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(a), Object.prototype);
    assert.equal(a.b, 2);
  });

  it('does not mutate or alias the input objects it descends into', () => {
    const copy = structuredClone(item);
    const p = proj([['request', 'method'], ['response', 'content', 'size']]);
    (p.request as Record<string, unknown>).method = 'CHANGED';
    assert.deepEqual(item, copy);
    assert.notEqual(p.request, item.request);
  });
});
