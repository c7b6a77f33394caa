import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaptureFileError, readCaptureFile } from './capture-file.ts';
import { buildPcap, chunkedStream, PcapngBuilder, prng } from './test-support.ts';

const ITERATIONS = 3000;
const PER_FILE_TIMEOUT_MS = 5000;
const MAX_RSS_GROWTH = 200 * 1024 * 1024;

function payload(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (seed * 13 + i) & 0xff;
  return b;
}

function seeds(): Buffer[] {
  const pcapLe = buildPcap({
    snaplen: 128,
    records: [1, 2, 3, 4].map((i) => ({ sec: 1_700_000_000 + i, frac: i * 1000, data: payload(20 + i * 10, i) })),
  }).bytes;
  const pcapBeNs = buildPcap({
    byteOrder: 'be',
    nanos: true,
    snaplen: 0,
    records: [1, 2, 3].map((i) => ({ sec: 1_700_000_000 + i, frac: i * 999, data: payload(30, i), origLen: 100 })),
  }).bytes;
  const ng = new PcapngBuilder()
    .shb('le')
    .idb({ linkType: 1, snaplen: 64, tsresol: 9, name: 'eth0' })
    .idb({ linkType: 101, tsresol: 0x80 | 20, tsoffset: 1_700_000_000n })
    .epb(0, 1_700_000_000_000_000_000n, payload(40, 1))
    .spb(payload(30, 2))
    .other(5, Buffer.alloc(16, 7))
    .opb(1, 123_456n, payload(12, 3))
    .shb('be')
    .idb({ linkType: 113, tsresol: 3 })
    .epb(0, 1_700_000_000_000n, payload(25, 4))
    .other(0x40000bad, Buffer.from('custom'))
    .build().bytes;
  return [pcapLe, pcapBeNs, ng];
}

const INTERESTING = [0, 1, 3, 4, 11, 12, 16, 28, 32, 0x7f, 0xff, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffff0, 0xffffffff, 0x0a0d0d0a, 0x1a2b3c4d, 0xa1b2c3d4, 0x10000000];

function mutate(src: Buffer, others: Buffer[], rnd: () => number): Buffer {
  let b = Buffer.from(src);
  const int = (n: number): number => Math.floor(rnd() * n);
  const rounds = 1 + int(3);
  for (let r = 0; r < rounds; r++) {
    switch (int(7)) {
      case 0: // bit flips
        for (let i = 1 + int(4); i > 0 && b.length > 0; i--) b[int(b.length)] ^= 1 << int(8);
        break;
      case 1: // random bytes
        for (let i = 1 + int(8); i > 0 && b.length > 0; i--) b[int(b.length)] = int(256);
        break;
      case 2: {
        // a length-like field gets an interesting value
        if (b.length < 4) break;
        const at = int(b.length >> 2) << 2;
        const v = INTERESTING[int(INTERESTING.length)];
        if (rnd() < 0.5) b.writeUInt32LE(v >>> 0, at);
        else b.writeUInt32BE(v >>> 0, at);
        break;
      }
      case 3: // truncate
        b = b.subarray(0, int(b.length + 1));
        break;
      case 4: {
        // duplicate a slice in place
        const s = int(b.length + 1);
        const e = s + int(b.length - s + 1);
        const at = int(b.length + 1);
        b = Buffer.concat([b.subarray(0, at), b.subarray(s, e), b.subarray(at)]);
        break;
      }
      case 5: {
        // delete a slice
        const s = int(b.length + 1);
        const e = s + int(Math.min(64, b.length - s) + 1);
        b = Buffer.concat([b.subarray(0, s), b.subarray(e)]);
        break;
      }
      default: {
        // splice with another file
        const o = others[int(others.length)];
        b = Buffer.concat([b.subarray(0, int(b.length + 1)), o.subarray(int(o.length + 1))]);
      }
    }
  }
  return b;
}

test(`fuzz: ${ITERATIONS} mutated pcap/pcapng files only ever reject with CaptureFileError, never hang, memory bounded`, async () => {
  const files = seeds();
  const dir = mkdtempSync(join(tmpdir(), 'ws-capture-fuzz-'));
  const rss0 = process.memoryUsage().rss;
  let maxRss = rss0;
  const outcomes = { resolved: 0, rejected: 0 };
  const kinds = new Map<string, number>();
  try {
    for (let i = 0; i < ITERATIONS; i++) {
      const seed = 0x5eed0000 + i;
      const rnd = prng(seed);
      const base = files[i % files.length];
      const bytes = mutate(base, files, rnd);
      const viaPath = i % 10 === 0;
      let input;
      if (viaPath) {
        const p = join(dir, 'f.bin');
        writeFileSync(p, bytes);
        input = p;
      } else input = chunkedStream(bytes, 1 + Math.floor(rnd() * 300));
      const chunkBytes = 1 + Math.floor(rnd() * 4096);
      const where = `iteration ${i} (seed 0x${seed.toString(16)}, ${bytes.length} bytes: ${bytes.subarray(0, 96).toString('hex')}...)`;

      let delivered = 0;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), PER_FILE_TIMEOUT_MS);
      });
      const run = readCaptureFile(
        input,
        (f) => {
          assert.equal(f.data.length, f.captureLength);
          assert.ok(f.length >= f.captureLength);
          assert.ok(!Number.isNaN(f.tsMs));
          delivered++;
        },
        { chunkBytes },
      ).then(
        (summary) => ({ summary, error: undefined as unknown }),
        (error: unknown) => ({ summary: undefined, error }),
      );
      const outcome = await Promise.race([run, timeout]);
      clearTimeout(timer);
      assert.notEqual(outcome, 'timeout', `${where}: no answer within ${PER_FILE_TIMEOUT_MS} ms`);
      if (outcome === 'timeout') return;
      if (outcome.error === undefined) {
        outcomes.resolved++;
        assert.equal(outcome.summary!.frames, delivered, where);
        assert.ok(outcome.summary!.fileBytes <= bytes.length, where);
      } else {
        outcomes.rejected++;
        const err = outcome.error;
        assert.ok(err instanceof CaptureFileError, `${where}: threw ${String((err as Error)?.stack ?? err)}`);
        assert.equal(err.framesDelivered, delivered, where);
        assert.ok(err.offset >= 0 && err.offset <= bytes.length, `${where}: offset ${err.offset}`);
        assert.match(err.message, new RegExp(`offset ${err.offset}\\b`), where);
        kinds.set(err.kind, (kinds.get(err.kind) ?? 0) + 1);
      }
      if (i % 100 === 0) maxRss = Math.max(maxRss, process.memoryUsage().rss);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  maxRss = Math.max(maxRss, process.memoryUsage().rss);
  assert.ok(maxRss - rss0 < MAX_RSS_GROWTH, `rss grew by ${((maxRss - rss0) / 1048576).toFixed(1)} MiB`);
  // The mutations must reach both outcomes and the main error kinds, or the fuzz tests little.
  assert.ok(outcomes.resolved > 100 && outcomes.rejected > 1000, JSON.stringify(outcomes));
  for (const k of ['truncated', 'corrupt', 'not-capture']) assert.ok((kinds.get(k) ?? 0) > 10, `${k}: ${JSON.stringify([...kinds])}`);
});
