import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { test } from 'node:test';
import { countByStatus, makeHttpItem } from '@wirescript/testing';
import { runCli } from '../main.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'wirescript-run-'));
function file(name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}

async function run(argv: string[], stdin?: string) {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (d: Buffer) => (stdout += d.toString()));
  err.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await runCli(argv, { stdout: out, stderr: err, stdin: stdin === undefined ? undefined : Readable.from([stdin]), env: {} });
  return { code, stdout, stderr };
}

const items = Array.from({ length: 200 }, (_, i) => makeHttpItem(i));
const itemsFile = file('items.jsonl', `${items.map((i) => JSON.stringify(i)).join('\n')}\n`);

test('console.log lines go to stdout: arguments joined by spaces, objects as JSON', async () => {
  const s = file('log.js', '// logger\nvar n = 0;\nfunction onItemCaptured(data) { if (n++ < 2) console.log("call", data.request.method, {status: data.response.status}, [1, "a"], null, undefined, 3.5); }');
  const r = await run(['run', s, '--items', itemsFile]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 2);
  assert.equal(lines[0], `call ${items[0].request.method} {"status":${items[0].response.status}} [1,"a"] null undefined 3.5`);
});

test('script errors go to stderr with title and line; the other items and scripts go on', async () => {
  const bad = file('bad.js', '// thrower\nfunction onItemCaptured(data) {\n  if (data.index === 3) throw new Error("no " + data.index);\n}');
  const good = file('good.js', '// counter\nvar n = 0;\nfunction onItemCaptured() { n++; }\njobs.schedule("out", "0 0 0 1 1 *", function () { console.log(utils.nodeName(), "count", n); });');
  const r = await run(['run', bad, good, '--items', itemsFile, '--node', 'w1']);
  assert.equal(r.code, 0);
  assert.match(r.stderr, /thrower:3: onItemCaptured: Error: no 3/);
  // Jobs run on both sides, as in Kubeshark: the worker saw the items, the hub did not.
  assert.equal(r.stdout.trim(), 'w1 count 200\nhub count 0');
});

test('jobs run once more at the end; hub.action reaches onHubAction on the hub side (utils.nodeName() = "hub")', async () => {
  const r = await run(['run', path.join(import.meta.dirname, '../../../../examples/scripts/status-counter.js'), '--items', itemsFile, '--node', 'worker-1']);
  assert.equal(r.code, 0, r.stderr);
  const expected = countByStatus(items);
  // The example's jobs also run every 10 s of wall clock: a run crossing such a second prints
  // earlier (partial) reports; the last two lines are the end-of-input runs, worker then hub.
  const lines = r.stdout.trim().split('\n').slice(-2);
  assert.ok(r.stdout.trim().split('\n').every((l) => l.startsWith('calls: ') || l.startsWith('cluster totals by status: ')), r.stdout);
  assert.ok(lines[0].startsWith('calls: 200 by status: '));
  assert.deepEqual(JSON.parse(lines[0].slice('calls: 200 by status: '.length)), expected);
  assert.ok(lines[1].startsWith('cluster totals by status: '));
  assert.deepEqual(JSON.parse(lines[1].slice('cluster totals by status: '.length)), expected);
});

test('--env sets env.*; --items - reads stdin; invalid lines are reported with their number and skipped', async () => {
  const s = file('env.js', '// env\nfunction onItemCaptured(d) { console.log(env.GREETING, d.id); }');
  const r = await run(['run', s, '--env', 'GREETING=hello=world', '--items', '-'], '{"id":1}\nnot json\n[1]\n\n{"id":2}\n');
  assert.equal(r.code, 0);
  assert.equal(r.stdout, 'hello=world 1\nhello=world 2\n');
  assert.match(r.stderr, /-:2: skipped, not valid JSON/);
  assert.match(r.stderr, /-:3: skipped, not a JSON object/);
});

test('an invalid script exits 1 naming title, line and column; nothing runs', async () => {
  const s = file('es6.js', '// modern\nvar ok = 1;\nconst x = () => 1;');
  const r = await run(['run', s, '--items', itemsFile]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /invalid script modern:3:\d+: not valid ES5/);
  assert.equal(r.stdout, '');
});

test('unreadable inputs exit 1, bad usage exits 2, each with one clear line', async () => {
  const s = file('ok.js', '// ok\nfunction onItemCaptured() {}');
  const cases: [string[], number, RegExp][] = [
    [['run', s, '--items', path.join(dir, 'missing.jsonl')], 1, /cannot read items .*missing\.jsonl: ENOENT/],
    [['run', path.join(dir, 'missing.js'), '--items', itemsFile], 1, /cannot read script .*missing\.js: ENOENT/],
    [['run', s], 2, /no input given/],
    [['run', '--items', itemsFile], 2, /no script given/],
    [['run', s, '--items', itemsFile, '--env', 'NOEQUALS'], 2, /--env takes K=V/],
    [['run', s, '--items', itemsFile, '--bogus'], 2, /Unknown option '--bogus'/],
    [['frobnicate'], 2, /unknown command "frobnicate"/],
  ];
  for (const [argv, code, re] of cases) {
    const r = await run(argv);
    assert.equal(r.code, code, argv.join(' '));
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});

test('a bad limit in the environment is named', async () => {
  const s = file('ok2.js', '// ok\nfunction onItemCaptured() {}');
  const out = new PassThrough();
  const err = new PassThrough();
  let stderr = '';
  err.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await runCli(['run', s, '--items', itemsFile], { stdout: out, stderr: err, env: { HOOK_TIMEOUT: 'forever' } });
  assert.equal(code, 2);
  assert.match(stderr, /HOOK_TIMEOUT/);
});

test('--help prints usage and exits 0', async () => {
  const r = await run(['run', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /Usage: wirescript run/);
});
