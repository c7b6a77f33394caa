/** The bundled example (what `npm start` runs) is current and gives the generator's ground truth. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { countByStatus, makeHttpItem, rng } from '@wirescript/testing';
import { buildExamplePcap } from '../../scripts/gen-example-pcap.ts';

const root = new URL('../../', import.meta.url);

test('examples/pcap/http-sample.pcap is what scripts/gen-example-pcap.ts generates', () => {
  assert.ok(readFileSync(new URL('examples/pcap/http-sample.pcap', root)).equals(buildExamplePcap()), 'stale: run node scripts/gen-example-pcap.ts');
});

test('npm start\'s command prints the worker counts and the hub totals, equal to the ground truth', async () => {
  const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { scripts: { start: string } };
  const [cmd, ...args] = pkg.scripts.start.split(' ');
  assert.equal(cmd, 'node');
  const { stdout } = await promisify(execFile)(process.execPath, args, { cwd: root });
  const random = rng(11);
  const truth = countByStatus(Array.from({ length: 500 }, (_, i) => makeHttpItem(i, random)));
  // The jobs run every 10 s of wall clock too, so a run crossing such a second prints earlier,
  // partial reports; the last report of each side (the run at the end of input) is complete.
  const lines = stdout.trim().split('\n');
  const worker = lines.filter((l) => l.startsWith('calls: ')).at(-1);
  const hub = lines.filter((l) => l.startsWith('cluster totals by status: ')).at(-1);
  assert.ok(worker && hub, stdout);
  assert.deepEqual(JSON.parse(worker.replace(/^calls: 500 by status: /, '')), truth);
  assert.deepEqual(JSON.parse(hub.replace(/^cluster totals by status: /, '')), truth);
  assert.ok(lines.every((l) => l.startsWith('calls: ') || l.startsWith('cluster totals by status: ')), stdout);
});
