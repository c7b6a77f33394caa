/**
 * `wirescript scripts`: the merge on its own, then the command with the real
 * @kubernetes/client-node against the test API server and real files.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { parseStoredScripts } from '@wirescript/config-sync';
import { freePort, startKubeApiServer, type KubeApiServer, type KubeObject } from '@wirescript/testing';
import { runCli } from '../main.ts';
import { FILES_ANNOTATION, mergeFolderScripts, parseScriptsArgs, type LocalScript } from './scripts.ts';

const SRC = '/src';
const local = (name: string, title: string, code = `// ${title}\nvar x;`): LocalScript => ({ file: `${SRC}/${name}`, title, code });

describe('mergeFolderScripts', () => {
  test('new files get new indices and are active; entries from elsewhere are kept as they are', () => {
    const existing = JSON.stringify({ '4': { title: 'dashboard', code: 'var d;', active: false, extra: 1 }, '1': { code: '// untitled one\nvar u;' } });
    const m = mergeFolderScripts({ scriptsJson: existing, activeTitles: 'dashboard,untitled one', filesJson: undefined, scripts: [local('a.js', 'A'), local('b.js', 'B')], sources: [SRC] });
    assert.ok(m.changed);
    assert.deepEqual(m.changes, ['+a.js "A"', '+b.js "B"']);
    const obj = JSON.parse(m.scriptsJson);
    assert.deepEqual(Object.keys(obj), ['1', '4', '5', '6']);
    assert.deepEqual(obj['4'], { title: 'dashboard', code: 'var d;', active: false, extra: 1 });
    assert.equal(m.activeTitles, 'untitled one,dashboard,A,B');
    assert.deepEqual(JSON.parse(m.filesJson), { '5': `${SRC}/a.js`, '6': `${SRC}/b.js` });
    // Read back the Kubeshark way (as config-sync does).
    assert.deepEqual(parseStoredScripts(m.scriptsJson, m.activeTitles).scripts.map((s) => [s.index, s.title, s.active]), [[1, 'untitled one', true], [4, 'dashboard', true], [5, 'A', true], [6, 'B', true]]);
    // The same again: nothing to write.
    const again = mergeFolderScripts({ scriptsJson: m.scriptsJson, activeTitles: m.activeTitles, filesJson: m.filesJson, scripts: [local('a.js', 'A'), local('b.js', 'B')], sources: [SRC] });
    assert.equal(again.changed, false);
    assert.deepEqual(again.changes, []);
  });

  test('change keeps index and active state; rename keeps the index; delete removes; a file gone from another folder is left alone', () => {
    const first = mergeFolderScripts({ scriptsJson: undefined, activeTitles: undefined, filesJson: undefined, scripts: [local('a.js', 'A'), local('b.js', 'B'), local('c.js', 'C')], sources: [SRC] });
    // Someone deactivated B in the dashboard; another folder's script sits at index 9.
    const obj = JSON.parse(first.scriptsJson);
    obj['1'].active = false;
    obj['9'] = { title: 'Other', code: 'var o;', active: true };
    const files = { ...JSON.parse(first.filesJson), '9': '/elsewhere/o.js' };
    const m = mergeFolderScripts({
      scriptsJson: JSON.stringify(obj), activeTitles: 'A,C,Other', filesJson: JSON.stringify(files),
      scripts: [local('a.js', 'A', '// A\nvar y;'), local('b2.js', 'B'), /* c.js deleted */],
      sources: [SRC],
    });
    assert.deepEqual(m.changes.sort(), ['-c.js "C"', 'b.js -> b2.js', '~a.js "A"'].sort());
    const out = JSON.parse(m.scriptsJson);
    assert.deepEqual(Object.keys(out), ['0', '1', '9']);
    assert.equal(out['0'].code, '// A\nvar y;');
    assert.equal(out['1'].active, false);
    assert.equal(m.activeTitles, 'A,Other');
    assert.deepEqual(JSON.parse(m.filesJson), { '0': `${SRC}/a.js`, '1': `${SRC}/b2.js`, '9': '/elsewhere/o.js' });
  });

  test('an unowned entry with the same title is taken over; a title owned by another folder is skipped; broken JSON is replaced', () => {
    const m = mergeFolderScripts({
      scriptsJson: JSON.stringify({ '2': { title: 'A', code: 'old', active: true }, '3': { title: 'B', code: 'theirs', active: true } }),
      activeTitles: '', filesJson: JSON.stringify({ '3': '/elsewhere/b.js' }),
      scripts: [local('a.js', 'A'), local('b.js', 'B')], sources: [SRC],
    });
    assert.deepEqual(m.changes, ['a.js took over script 2 "A"']);
    assert.match(m.skipped[0].message, /already used by script 3/);
    assert.equal(JSON.parse(m.scriptsJson)['3'].code, 'theirs');
    const broken = mergeFolderScripts({ scriptsJson: '{"0": ', activeTitles: '', filesJson: undefined, scripts: [local('a.js', 'A')], sources: [SRC] });
    assert.match(broken.brokenJson!, /not valid JSON/);
    assert.deepEqual(Object.keys(JSON.parse(broken.scriptsJson)), ['0']);
  });

  test('arguments: --source and --set scripting.source, several folders; clear errors', () => {
    const o = parseScriptsArgs(['--source', 'a', '--set', 'scripting.source=b', '--once', '--debounce', '50ms']);
    assert.ok(o !== 'help');
    assert.deepEqual(o.sources, [path.resolve('a'), path.resolve('b')]);
    assert.equal(o.debounceMs, 50);
    assert.equal(o.configMap, 'kubeshark-config-map');
    assert.throws(() => parseScriptsArgs([]), /give the folder to sync with --source DIR/);
    assert.throws(() => parseScriptsArgs(['--set', 'scripting.env=x']), /only scripting.source=DIR/);
    assert.throws(() => parseScriptsArgs(['--source', 'a', '--bogus']), /Unknown option '--bogus'/);
  });
});

describe('wirescript scripts against the test API server', () => {
  let kube: KubeApiServer;
  let root: string;
  let kubeconfig: string;
  const NS = 'team';
  const CM = 'kubeshark-config-map';

  before(async () => {
    kube = await startKubeApiServer();
    root = mkdtempSync(path.join(tmpdir(), 'wirescript-scripts-'));
    kubeconfig = path.join(root, 'kubeconfig.yaml');
    writeFileSync(kubeconfig, kube.kubeconfigYaml());
  });
  after(async () => {
    await kube.close();
    rmSync(root, { recursive: true, force: true });
  });

  function folder(name: string, files: Record<string, string>): string {
    const dir = path.join(root, name);
    mkdirSync(dir, { recursive: true });
    for (const [f, code] of Object.entries(files)) writeFileSync(path.join(dir, f), code);
    return dir;
  }

  function start(argv: string[], signal?: AbortSignal) {
    const out = new PassThrough();
    const err = new PassThrough();
    const res = { stdout: '', stderr: '', code: undefined as number | 'running' | undefined };
    out.on('data', (d: Buffer) => (res.stdout += d.toString()));
    err.on('data', (d: Buffer) => (res.stderr += d.toString()));
    const done = runCli(['scripts', '--kubeconfig', kubeconfig, '--namespace', NS, ...argv], { stdout: out, stderr: err, env: {}, ...(signal ? { signal } : {}) })
      .then((c) => (res.code = c));
    return { res, done };
  }

  function stored() {
    const cm = kube.get('ConfigMap', NS, CM) as (KubeObject & { data?: Record<string, string> }) | undefined;
    if (!cm) return null;
    return { cm, scripts: parseStoredScripts(cm.data?.SCRIPTING_SCRIPTS, cm.data?.SCRIPTING_ACTIVE_SCRIPTS).scripts };
  }
  const files = (): Record<string, string> => JSON.parse((stored()?.cm.metadata.annotations as Record<string, string> | undefined)?.[FILES_ANNOTATION] ?? '{}');
  const titles = () => (stored()?.scripts ?? []).map((s) => `${s.index}:${s.title}${s.active ? '' : '(off)'}`).join(',');

  async function waitFor(what: string, cond: () => boolean, ms = 5000) {
    const t0 = Date.now();
    while (!cond()) {
      if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}; ConfigMap: ${titles()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  test('--once creates the ConfigMap from a folder, keeps other keys on later runs, exits 0; an invalid script exits 1', async () => {
    const dir = folder('once', { 'a.js': '// alpha\nvar a;', 'b.js': 'var b;', 'notes.md': 'x', '.hidden.js': 'var h;' });
    const r1 = start(['--source', dir, '--once', '--configmap', 'once-cm']);
    await r1.done;
    assert.equal(r1.res.code, 0, r1.res.stderr);
    assert.match(r1.res.stdout, /created ConfigMap team\/once-cm \(2 scripts of the folder\): \+a\.js "alpha", \+b\.js "b\.js"/);
    const cm = kube.get('ConfigMap', NS, 'once-cm') as KubeObject & { data: Record<string, string> };
    assert.deepEqual(parseStoredScripts(cm.data.SCRIPTING_SCRIPTS, cm.data.SCRIPTING_ACTIVE_SCRIPTS).scripts.map((s) => [s.index, s.title, s.active]), [[0, 'alpha', true], [1, 'b.js', true]]);
    kube.put({ ...cm, data: { ...cm.data, 'PROXY_PORT': '8899' } });
    const r2 = start(['--set', `scripting.source=${dir}`, '--once', '--configmap', 'once-cm']);
    await r2.done;
    assert.equal(r2.res.code, 0);
    assert.match(r2.res.stdout, /up to date: ConfigMap team\/once-cm has the 2 scripts of the folder/);
    writeFileSync(path.join(dir, 'c.js'), '// gamma\nlet c = 1;');
    const r3 = start(['--source', dir, '--once', '--configmap', 'once-cm']);
    await r3.done;
    assert.equal(r3.res.code, 1);
    assert.match(r3.res.stderr, /c\.js: 2:5: not valid ES5/);
    assert.equal((kube.get('ConfigMap', NS, 'once-cm') as KubeObject & { data: Record<string, string> }).data.PROXY_PORT, '8899');
  });

  test('clear one-line errors: missing folder, unreachable API', async () => {
    const r1 = start(['--source', path.join(root, 'nope'), '--once']);
    await r1.done;
    assert.equal(r1.res.code, 1);
    assert.match(r1.res.stderr, /^wirescript: scripts: source folder .*nope does not exist\n$/);
    const down = path.join(root, 'down.yaml');
    const closed = await freePort();
    writeFileSync(down, kube.kubeconfigYaml().replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${closed}`));
    const out = new PassThrough();
    const err = new PassThrough();
    let stderr = '';
    err.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await runCli(['scripts', '--source', folder('down', { 'a.js': 'var a;' }), '--kubeconfig', down, '--once'], { stdout: out, stderr: err, env: {} });
    assert.equal(code, 1);
    assert.match(stderr, /^wirescript: scripts: cannot reach the Kubernetes API at http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED.*\n$/);
  });

  test('watching: create, change, rename, delete are reflected; 409 retried; a deleted and recreated ConfigMap is pushed again', async () => {
    const dir = folder('watch', { 'a.js': '// alpha\nvar a;', 'b.js': '// beta\nvar b;' });
    // A script from the dashboard, which the command must leave alone.
    kube.put({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: CM, namespace: NS }, data: { SCRIPTING_SCRIPTS: JSON.stringify({ '7': { title: 'dash', code: 'var d;', active: true } }), SCRIPTING_ACTIVE_SCRIPTS: 'dash', other: 'x' } });
    const ac = new AbortController();
    const run = start(['--source', dir, '--debounce', '30ms'], ac.signal);
    try {
      await waitFor('first push', () => titles() === '7:dash,8:alpha,9:beta');

      writeFileSync(path.join(dir, 'c.js'), '// gamma\nvar c;');
      await waitFor('create', () => titles() === '7:dash,8:alpha,9:beta,10:gamma');
      writeFileSync(path.join(dir, 'a.js'), '// alpha\nvar a = 2;');
      await waitFor('change', () => stored()?.scripts.find((s) => s.title === 'alpha')?.code === '// alpha\nvar a = 2;');
      renameSync(path.join(dir, 'b.js'), path.join(dir, 'b-renamed.js'));
      await waitFor('rename (same index)', () => files()['9']?.endsWith('b-renamed.js') === true);
      assert.equal(titles(), '7:dash,8:alpha,9:beta,10:gamma');
      rmSync(path.join(dir, 'c.js'));
      await waitFor('delete', () => titles() === '7:dash,8:alpha,9:beta');

      // Two conflicts in a row: re-read and retried.
      kube.failNextWrites(2, 409);
      writeFileSync(path.join(dir, 'd.js'), '// delta\nvar d;');
      await waitFor('write after 409s', () => titles() === '7:dash,8:alpha,9:beta,10:delta');
      assert.match(run.res.stderr, /409 Conflict\); retrying \(1\/9\)/);

      // Deleted (an uninstall): not recreated by us; created again (a reinstall): pushed again.
      kube.remove('ConfigMap', NS, CM);
      await waitFor('the deletion noticed', () => /is gone; the scripts are pushed again when it is created/.test(run.res.stdout));
      assert.equal(stored(), null);
      kube.put({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: CM, namespace: NS }, data: { other: 'fresh' } });
      await waitFor('pushed again', () => titles() === '0:alpha,1:beta,2:delta');
      assert.equal(stored()!.cm.data && (stored()!.cm.data as Record<string, string>).other, 'fresh');
    } finally {
      ac.abort();
      await run.done;
    }
    assert.equal(run.res.code, 0);
    const lines = run.res.stdout.trim().split('\n');
    assert.ok(lines.some((l) => /synced ConfigMap team\/kubeshark-config-map \(2 scripts of the folder\): -c\.js "gamma"/.test(l)), run.res.stdout);
    assert.ok(lines.some((l) => /b\.js -> b-renamed\.js/.test(l)), run.res.stdout);
    assert.match(lines.at(-1)!, /stopped$/);
  });

  test('Ctrl-C (SIGINT) on the real command exits 0', async () => {
    const dir = folder('sigint', { 'a.js': '// alpha\nvar a;' });
    const bin = new URL('../../../../bin/wirescript.ts', import.meta.url).pathname;
    const child = spawn(process.execPath, [bin, 'scripts', '--source', dir, '--kubeconfig', kubeconfig, '--namespace', 'sig'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    const t0 = Date.now();
    while (!/watching/.test(stdout)) {
      if (Date.now() - t0 > 15_000) throw new Error(`never started: ${stdout} ${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const t1 = Date.now();
    child.kill('SIGINT');
    assert.equal(await exited, 0, stderr);
    assert.ok(Date.now() - t1 < 3000, `exit took ${Date.now() - t1} ms`);
    assert.match(stdout, /created ConfigMap sig\/kubeshark-config-map \(1 script of the folder\): \+a\.js "alpha"/);
    assert.match(stdout, /stopped\n$/);
  });
});
