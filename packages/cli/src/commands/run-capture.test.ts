/**
 * `wirescript run --pcap` / `--interface` on real traffic: a pcap written by
 * tcpdump from real HTTP/1.1 calls on loopback goes through the scripts, and
 * what they count equals the client's own ground truth.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { http1Calls, readPcap, startTcpdump, startTrafficServers, type Call, type TrafficServers } from '@wirescript/testing';
import { runCli } from '../main.ts';

const BIN = new URL('../../../../bin/wirescript.ts', import.meta.url).pathname;
const dir = mkdtempSync(path.join(tmpdir(), 'wirescript-run-pcap-'));

function file(name: string, content: string | Buffer): string {
  const p = path.join(dir, name);
  writeFileSync(p, content);
  return p;
}

async function run(argv: string[]) {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (d: Buffer) => (stdout += d.toString()));
  err.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await runCli(argv, { stdout: out, stderr: err, env: {} });
  return { code, stdout, stderr };
}

/** Counts calls by "METHOD path status", by status, and packets; one JSON line from the worker when input ends. */
const COUNTER = file('counter.js', `// pcap counter
var calls = {};
var byStatus = {};
var packets = 0;
var bytes = 0;
function onItemCaptured(data) {
  // A capture cut short can end between a request and its response.
  var status = data.response ? data.response.status : 'none';
  var k = data.request.method + ' ' + data.request.path + ' ' + status;
  calls[k] = (calls[k] || 0) + 1;
  byStatus[status] = (byStatus[status] || 0) + 1;
}
function onPacketCaptured(info) { packets++; bytes += info.captureLength; }
jobs.schedule('report', '0 0 0 1 1 *', function () {
  if (utils.nodeName() !== 'hub') console.log(JSON.stringify({ calls: calls, byStatus: byStatus, packets: packets, bytes: bytes }));
});
`);

function countBy(calls: readonly Call[], key: (c: Call) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of calls) out[key(c)] = (out[key(c)] ?? 0) + 1;
  return out;
}

interface Report {
  calls: Record<string, number>;
  byStatus: Record<string, number>;
  packets: number;
  bytes: number;
}

function report(stdout: string): Report {
  const lines = stdout.trim().split('\n');
  assert.equal(lines.length, 1, stdout);
  return JSON.parse(lines[0]) as Report;
}

describe('wirescript run --pcap on a tcpdump capture of real HTTP traffic', () => {
  let servers: TrafficServers;
  let pcap: string;
  let truth: Call[];

  before(async () => {
    servers = await startTrafficServers();
    pcap = path.join(dir, 'http.pcap');
    const dump = await startTcpdump({ filter: `tcp port ${servers.http1Port}`, file: pcap, probePort: servers.http1Port });
    truth = [...(await http1Calls(servers.http1Port, 60, { sockets: 3 })), ...(await http1Calls(servers.http1Port, 30, { sockets: 1, offset: 60 }))];
    await dump.stop();
  });
  after(async () => {
    await servers?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the counts by call and by status equal the ground truth; onPacketCaptured sees every frame of the file', async () => {
    const r = await run(['run', COUNTER, '--pcap', pcap, '--node', 'w1']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const rep = report(r.stdout);
    assert.deepEqual(rep.calls, countBy(truth, (c) => c.key));
    assert.deepEqual(rep.byStatus, countBy(truth, (c) => c.key.split(' ')[2]));
    const frames = readPcap(pcap).records;
    assert.equal(rep.packets, frames.length);
    assert.equal(rep.bytes, frames.reduce((n, f) => n + f.data.length, 0));
  });

  test('the bundled status-counter example gives the ground truth on both the worker and the hub side', async () => {
    const r = await run(['run', path.join(import.meta.dirname, '../../../../examples/scripts/status-counter.js'), '--pcap', pcap]);
    assert.equal(r.code, 0, r.stderr);
    const byStatus = countBy(truth, (c) => c.key.split(' ')[2]);
    // Jobs also run every 10 s of wall clock (earlier, partial reports); the last two lines are the end-of-input runs.
    const lines = r.stdout.trim().split('\n').slice(-2);
    assert.ok(r.stdout.trim().split('\n').every((l) => l.startsWith('calls: ') || l.startsWith('cluster totals by status: ')), r.stdout);
    assert.equal(lines[0].slice(0, lines[0].indexOf(' by status: ')), `calls: ${truth.length}`);
    assert.deepEqual(JSON.parse(lines[0].slice(lines[0].indexOf(' by status: ') + 12)), byStatus);
    assert.deepEqual(JSON.parse(lines[1].slice('cluster totals by status: '.length)), byStatus);
  });

  for (const damage of ['truncated', 'corrupt'] as const) {
    test(`a ${damage} pcap: what was decoded before the damage reaches the scripts, then one line names the byte offset, exit 1`, async () => {
      const bytes = readFileSync(pcap);
      const records = readPcap(bytes).records;
      const k = Math.floor(records.length * 0.6);
      const at = records[k].offset;
      let bad: Buffer;
      if (damage === 'truncated') bad = bytes.subarray(0, at + 10); // ends inside record k's header
      else {
        bad = Buffer.from(bytes);
        bad.writeUInt32LE(0xfffffff0, at + 8); // record k claims a captured length no file can have
      }
      const badFile = file(`${damage}.pcap`, bad);
      const prefixFile = file(`${damage}-prefix.pcap`, bytes.subarray(0, at)); // the same file cleanly cut before record k
      const r = await run(['run', COUNTER, '--pcap', badFile]);
      const clean = await run(['run', COUNTER, '--pcap', prefixFile]);
      assert.equal(clean.code, 0, clean.stderr);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, clean.stdout, 'the scripts saw exactly what was decoded before the damage');
      const rep = report(r.stdout);
      assert.equal(rep.packets, k);
      const calls = Object.values(rep.calls).reduce((a, b) => a + b, 0);
      assert.ok(calls > 0 && calls < truth.length, `${calls} calls before the damage`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      const what = damage === 'truncated' ? 'truncated file: a record header' : 'corrupt pcap record';
      const head = `wirescript: ${badFile}: ${what} at offset ${at}`;
      assert.ok(lines[0].startsWith(head) && !/\d/.test(lines[0][head.length]), lines[0]);
    });
  }

  test('a missing file exits 1 with one clear line', async () => {
    const missing = path.join(dir, 'missing.pcap');
    const r = await run(['run', COUNTER, '--pcap', missing]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `wirescript: run: cannot read capture ${missing}: ENOENT\n`);
  });

  test('a file that is not a capture exits 1 naming offset 0', async () => {
    const r = await run(['run', COUNTER, '--pcap', COUNTER]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^wirescript: .*counter\.js: not a pcap or pcapng file .*at offset 0\n$/);
  });

  test('bad usage exits 2 with one line: --filter or --duration without --interface, two inputs', async () => {
    const cases: [string[], RegExp][] = [
      [['run', COUNTER, '--pcap', pcap, '--filter', 'tcp'], /--filter goes with --interface/],
      [['run', COUNTER, '--filter', 'tcp'], /no input given/],
      [['run', COUNTER, '--pcap', pcap, '--duration', '2'], /--duration goes with --interface/],
      [['run', COUNTER, '--interface', 'lo', '--duration', 'soon'], /--duration takes a number of seconds/],
      [['run', COUNTER, '--pcap', pcap, '--interface', 'lo'], /only one of --items, --pcap and --interface/],
    ];
    for (const [argv, re] of cases) {
      const r = await run(argv);
      assert.equal(r.code, 2, argv.join(' '));
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.equal(r.stdout, '');
    }
  });

  test('--interface lo --duration 5 (a real process): live traffic in the background becomes items, then it exits 0', async () => {
    const port = servers.http1Port;
    const script = file('live.js', `// live counter
var started = false;
var calls = {};
function onPacketCaptured(info) { if (!started) { started = true; console.log('capturing'); } }
function onItemCaptured(d) {
  if (d.request.path.indexOf('/probe') === 0) return;
  var k = d.request.method + ' ' + d.request.path + ' ' + d.response.status;
  calls[k] = (calls[k] || 0) + 1;
}
jobs.schedule('report', '0 0 0 1 1 *', function () { if (utils.nodeName() !== 'hub') console.log(JSON.stringify(calls)); });
`);
    const child = spawn(process.execPath, [BIN, 'run', script, '--interface', 'lo', '--filter', `tcp port ${port}`, '--duration', '5', '--quiet'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    try {
      // Probe calls until the capture shows it is running (the script says so on its first packet).
      for (let i = 0; !stdout.includes('capturing'); i++) {
        assert.ok(i < 200 && child.exitCode === null, `the capture never started: ${stderr}`);
        await new Promise<void>((r) => http.get({ host: '127.0.0.1', port, path: '/probe', agent: false }, (res) => { res.resume(); res.on('end', () => r()); }).on('error', () => r()));
        await new Promise((r) => setTimeout(r, 50));
      }
      const calls = await http1Calls(port, 40, { sockets: 2, offset: 7 });
      assert.equal(await exited, 0, stderr);
      const lines = stdout.trim().split('\n');
      assert.equal(lines[0], 'capturing');
      assert.equal(lines.length, 2, stdout);
      assert.deepEqual(JSON.parse(lines[1]), countBy(calls, (c) => c.key));
    } finally {
      clearTimeout(killer);
      child.kill('SIGKILL');
    }
  });
});
