import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ScriptsFolderError } from './errors.ts';
import { isScriptFileName, readScriptsFolder, watchScriptFolders } from './folder.ts';

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 3000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('reads *.js files in name order with titles; skips hidden files and others; too large is a problem; missing folder is an error', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'folder-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'b.js'), '/*\n * Bravo\n */\nvar b;');
  writeFileSync(path.join(dir, 'a.JS'), 'var a;');
  writeFileSync(path.join(dir, '.#a.js'), 'lock');
  writeFileSync(path.join(dir, 'readme.md'), '# no');
  writeFileSync(path.join(dir, 'big.js'), `// Big one\n${'x'.repeat(5000)}`);
  mkdirSync(path.join(dir, 'sub.js'));
  const c = await readScriptsFolder(dir, { maxBytes: 1000 });
  assert.deepEqual(c.scripts.map((s) => [s.name, s.title]), [['a.JS', 'a.JS'], ['b.js', 'Bravo']]);
  assert.deepEqual(c.problems.map((p) => [p.name, p.title]), [['big.js', 'Big one']]);
  assert.match(c.problems[0].message, /over the 1000-byte script limit/);
  assert.ok(isScriptFileName('x.js') && !isScriptFileName('.x.js') && !isScriptFileName('x.json'));
  await assert.rejects(readScriptsFolder(path.join(dir, 'nope')), (e: Error) => e instanceof ScriptsFolderError && /does not exist/.test(e.message));
});

test('watch: create, change, rename, delete each end in one debounced call; a removed and recreated folder is followed', async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'folder-watch-'));
  const dir = path.join(root, 'scripts');
  mkdirSync(dir);
  t.after(() => rmSync(root, { recursive: true, force: true }));
  let calls = 0;
  const errors: string[] = [];
  const w = watchScriptFolders([dir], () => calls++, { debounceMs: 30, checkMs: 50, onError: (_d, e) => errors.push(e.message) });
  t.after(() => w.stop());
  const step = async (what: string, act: () => void) => {
    const before = calls;
    act();
    await until(what, () => calls > before);
  };
  await step('create', () => writeFileSync(path.join(dir, 'a.js'), 'var a;'));
  // A burst of writes is one call.
  const before = calls;
  for (let i = 0; i < 20; i++) writeFileSync(path.join(dir, 'a.js'), `var a = ${i};`);
  await until('burst', () => calls > before);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(calls, before + 1);
  await step('rename', () => renameSync(path.join(dir, 'a.js'), path.join(dir, 'b.js')));
  await step('delete', () => rmSync(path.join(dir, 'b.js')));
  await step('folder removed', () => rmSync(dir, { recursive: true }));
  await until('removal reported', () => errors.some((e) => /was removed; waiting for it/.test(e)));
  await step('folder back', () => mkdirSync(dir));
  await step('file in the new folder', () => writeFileSync(path.join(dir, 'c.js'), 'var c;'));
  assert.deepEqual((await readScriptsFolder(dir)).scripts.map((s) => s.name), ['c.js']);
});
