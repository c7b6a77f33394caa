import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EnvJsonError, ScriptsJsonError } from './errors.ts';
import { evaluateScripts, sameEnv, sameScripts } from './evaluate.ts';
import { parseActiveTitles, parseScriptingEnv, parseStoredScripts, secretValue, serializeStoredScripts } from './format.ts';
import { configSyncConfig, defaultNamespace } from './config.ts';
import { ConfigError, loadConfig } from '@wirescript/config';

test('SCRIPTING_SCRIPTS: entries by index, active from the entry or SCRIPTING_ACTIVE_SCRIPTS, titles from the first comment', () => {
  const json = JSON.stringify({
    '2': { title: 'Two', code: '// two\nvar b = 2;', active: false },
    '0': { title: 'Zero', code: 'var a = 0;', active: true },
    '1': { code: '/* The One\n * more */\nvar c;' },
  });
  const r = parseStoredScripts(json, ' Two ,, nope');
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.scripts.map((s) => [s.index, s.title, s.active]), [[0, 'Zero', true], [1, 'The One', false], [2, 'Two', true]]);
  assert.deepEqual(parseStoredScripts(undefined).scripts, []);
  assert.deepEqual(parseStoredScripts('  ').scripts, []);
});

test('SCRIPTING_SCRIPTS: broken JSON is a ScriptsJsonError; a bad entry is a problem of that entry only', () => {
  assert.throws(() => parseStoredScripts('{"0": {"title": "x", '), (e: Error) => e instanceof ScriptsJsonError && /SCRIPTING_SCRIPTS is not valid JSON/.test(e.message));
  assert.throws(() => parseStoredScripts('[1,2]'), ScriptsJsonError);
  const r = parseStoredScripts(JSON.stringify({
    a: { title: 'bad key', code: '' },
    '3': 'not an object',
    '4': { title: 'no code' },
    '5': { title: 'ok', code: 'var x;' },
    '6': { title: 'ok', code: 'var y;', active: true },
  }));
  assert.deepEqual(r.scripts.map((s) => s.index), [5]);
  assert.equal(r.problems.length, 4);
  assert.match(r.problems.find((p) => p.key === '6')!.message, /already used by script 5/);
  assert.match(r.problems.find((p) => p.key === 'a')!.message, /not an index/);
});

test('serialize round-trips and writes Kubeshark\'s two keys', () => {
  const scripts = [
    { index: 3, title: 'C', code: 'var c;', active: true },
    { index: 1, title: 'A', code: 'var a;', active: false },
    { index: 2, title: 'B', code: 'var b;', active: true },
  ];
  const out = serializeStoredScripts(scripts);
  assert.equal(out.SCRIPTING_ACTIVE_SCRIPTS, 'B,C');
  assert.deepEqual(Object.keys(JSON.parse(out.SCRIPTING_SCRIPTS)), ['1', '2', '3']);
  assert.deepEqual(parseStoredScripts(out.SCRIPTING_SCRIPTS, out.SCRIPTING_ACTIVE_SCRIPTS).scripts, [...scripts].sort((a, b) => a.index - b.index));
  assert.deepEqual(parseActiveTitles('a, b ,'), ['a', 'b']);
});

test('SCRIPTING_ENV: strings (others converted); a broken one never quotes the secret', () => {
  const b64 = Buffer.from(JSON.stringify({ TOKEN: 's3cr3t', N: 3, B: true, O: { a: 1 }, Z: null })).toString('base64');
  assert.deepEqual(parseScriptingEnv(secretValue({ SCRIPTING_ENV: b64 }, 'SCRIPTING_ENV')), { TOKEN: 's3cr3t', N: '3', B: 'true', O: '{"a":1}', Z: '' });
  assert.equal(secretValue({}, 'SCRIPTING_ENV'), undefined);
  assert.deepEqual(parseScriptingEnv(undefined), {});
  for (const bad of ['{"TOKEN": "hunter2-very-secret"', '["hunter2-very-secret"]']) {
    assert.throws(() => parseScriptingEnv(bad), (e: Error) => {
      assert.ok(e instanceof EnvJsonError);
      assert.doesNotMatch(e.message, /hunter2/);
      assert.equal(e.cause, undefined);
      return true;
    });
  }
});

test('evaluate: invalid scripts are reported with line and column and not activated; a previous good version stays', () => {
  const previous = [{ index: 0, title: 'Kept', code: '// Kept\nvar ok = 1;', active: true }];
  const ev = evaluateScripts(
    [
      { index: 0, title: 'Kept', code: '// Kept\nlet broken = 1;', active: true },
      { index: 1, title: 'New bad', code: '// New bad\nvar f = () => 1;', active: true },
      { index: 2, title: 'Good', code: '// Good\nvar g = 1;', active: true },
      { index: 3, title: 'Big', code: `// Big\nvar s = "${'x'.repeat(200)}";`, active: true },
    ],
    [{ key: 'x', index: -1, title: 'script-x', message: 'entry key "x" is not an index' }],
    previous,
    100,
  );
  assert.deepEqual(ev.scripts.map((s) => [s.index, s.active, s.code === previous[0].code]), [[0, true, true], [1, false, false], [2, true, false], [3, false, false]]);
  const d = new Map(ev.diagnostics.map((x) => [x.title, x]));
  assert.equal(d.get('Good')!.valid, true);
  assert.deepEqual([d.get('Kept')!.line, d.get('Kept')!.keptPrevious, d.get('Kept')!.active], [2, true, true]);
  assert.equal(d.get('New bad')!.line, 2);
  assert.ok(d.get('New bad')!.column > 1);
  assert.match(d.get('New bad')!.message, /not valid ES5/);
  assert.doesNotMatch(d.get('New bad')!.message, /^New bad:/);
  assert.match(d.get('Big')!.message, /over the 100-byte limit/);
  assert.equal(d.get('script-x')!.valid, false);
  assert.ok(sameScripts(ev.scripts, [...ev.scripts].reverse()));
  assert.ok(!sameScripts(ev.scripts, ev.scripts.slice(1)));
  assert.ok(sameEnv({ a: '1', b: '2' }, { b: '2', a: '1' }));
  assert.ok(!sameEnv({ a: '1' }, { a: '2' }));
});

test('config: defaults, a bad value names the variable, SCRIPTING_ENV is never echoed', () => {
  const c = loadConfig(configSyncConfig, {});
  assert.equal(c.configMapName, 'kubeshark-config-map');
  assert.equal(c.secretName, 'kubeshark-secret');
  assert.equal(c.scriptsDir, undefined);
  assert.equal(c.syncDebounceMs, 100);
  assert.equal(defaultNamespace('/nonexistent/namespace'), 'default');
  assert.throws(() => loadConfig(configSyncConfig, { SYNC_DEBOUNCE: 'soon', SCRIPTING_ENV: '{"K": "topsecret"' }), (e: Error) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /SYNC_DEBOUNCE/);
    assert.match(e.message, /SCRIPTING_ENV/);
    assert.doesNotMatch(e.message, /topsecret/);
    return true;
  });
});
