import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeHttpItem, rng } from '@wirescript/testing';
import { projectJsonText } from './json-projection.ts';
import { compileProjection, project } from './projection.ts';

const TREES = [
  [['request', 'method'], ['response', 'status'], ['src', 'ip']],
  [['request']],
  [['response', 'content', 'text'], ['missing', 'x']],
  [['request', 'headers', 'Host'], ['protocol', 'name'], ['elapsedTime']],
  [['request', 'pathSegments', '0']],
  [],
].map((paths) => compileProjection(paths));

test('text projection equals parse + project for realistic items', () => {
  for (let i = 0; i < 300; i++) {
    const text = JSON.stringify(makeHttpItem(i));
    for (const tree of TREES) {
      const fast = projectJsonText(text, tree);
      assert.notEqual(fast, null);
      assert.deepEqual(JSON.parse(fast!), project(JSON.parse(text) as Record<string, unknown>, tree));
    }
  }
});

test('escaped keys, duplicate keys, whitespace, nulls and arrays behave as JSON.parse', () => {
  const tree = compileProjection([['request', 'method'], ['a']]);
  const cases = [
    '{"re\\u0071uest": {"method": "GET"}}',
    '{"request": {"method": "GET"}, "request": {"method": "PUT"}}',
    ' \n{ "request" : { "method" : "x\\"y" } , "a" : [1, {"b": 2}] }\t',
    '{"request": null, "a": "\\\\"}',
    '{"request": [1,2], "a": -1.5e+3}',
    '{"request": "str", "a": true, "b": false, "c": null}',
  ];
  for (const text of cases) {
    const fast = projectJsonText(text, tree);
    assert.notEqual(fast, null, text);
    assert.deepEqual(JSON.parse(fast!), project(JSON.parse(text) as Record<string, unknown>, tree), text);
  }
});

test('malformed text returns null (the engine then takes the strict path)', () => {
  const tree = compileProjection([['request', 'method']]);
  for (const text of ['', '[]', '"x"', '{', '{"a":}', '{"a" 1}', '{"a":1,}', '{"a":tru}', '{"a":"x}', '{"a":1} x', '{"request":{"method":"GET"}', '{a:1}']) {
    assert.equal(projectJsonText(text, tree), null, text);
  }
  assert.equal(projectJsonText(`${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`, tree), null);
});

test('random mutations never throw and agree with JSON.parse when both accept', () => {
  const random = rng(9);
  const tree = compileProjection([['request', 'method'], ['response', 'status'], ['dst']]);
  const base = JSON.stringify(makeHttpItem(1));
  for (let i = 0; i < 3000; i++) {
    const chars = base.split('');
    const n = 1 + Math.floor(random() * 3);
    for (let j = 0; j < n; j++) chars[Math.floor(random() * chars.length)] = '{}[]",:0 \\a'[Math.floor(random() * 11)];
    const text = chars.join('');
    const fast = projectJsonText(text, tree);
    let strict: unknown;
    try {
      strict = JSON.parse(text);
    } catch {
      strict = undefined;
    }
    if (fast !== null && strict !== undefined && typeof strict === 'object' && strict !== null && !Array.isArray(strict)) {
      assert.deepEqual(JSON.parse(fast), project(strict as Record<string, unknown>, tree));
    }
  }
});
