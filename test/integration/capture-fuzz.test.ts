/**
 * Fuzzing the capture path with real captures: tcpdump records real HTTP/1.1
 * (keep-alive, chunked, gzip), HTTP/2 cleartext, DNS over UDP and Redis
 * traffic on loopback; then, for a fixed budget, mutated copies (damaged
 * files, and valid files of damaged frames) go through readCaptureFile and a
 * CapturePipeline in a worker thread (capture-fuzz-worker.ts). Only
 * CaptureFileError may come out, no exception may reach a parser boundary,
 * every run finishes within a bound, and memory stays bounded.
 *
 * CAPTURE_FUZZ_BUDGET_MS (default 8000) and CAPTURE_FUZZ_SEED change the
 * budget and the mutations; a failure names the iteration, its seed and
 * mutation, and keeps the failing capture in a folder it names (the seed
 * captures are new traffic on every run, so that file is the reproducer).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { CapturePipeline, readCaptureFile } from '@wirescript/capture';
import { flowOf, readPcap, type PcapRecord } from '@wirescript/testing';
import type { FuzzInput, FuzzMessage, FuzzResult, FuzzSeed } from './capture-fuzz-worker.ts';
import { callOf, countCalls, recordTraffic } from './helpers.ts';

const BUDGET_MS = Number(process.env.CAPTURE_FUZZ_BUDGET_MS ?? 8_000);
const BASE_SEED = Number(process.env.CAPTURE_FUZZ_SEED ?? 0x5eed_cafe);
const PER_RUN_BOUND_MS = 2_000;
/** No word from the worker for this long: a run is stuck (the bound above is checked by the worker itself otherwise). */
const STALL_MS = 10_000;
const MAX_RSS_GROWTH = 300 * 1024 * 1024;
const WORKER_HEAP_MB = 128;
/** Live heap (after a full GC) may grow this much over the whole budget: the runs leave nothing behind. */
const MAX_RETAINED_GROWTH_MB = 8;

function seedOf(name: string, linkType: number, records: readonly PcapRecord[]): FuzzSeed {
  return { name, linkType, records: records.map((r) => ({ sec: r.sec, frac: r.frac, origLen: r.origLen, data: r.data })) };
}

test(`fuzz: mutated real captures (${BUDGET_MS} ms) decode without crashes, within bounds, memory bounded`, { timeout: BUDGET_MS + 60_000 }, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'wirescript-fuzz-'));
  try {
    const traffic = await recordTraffic(path.join(dir, 'seed.pcap'), { http1: 24, http2: 10, dns: 6, redis: 10 });
    const pcap = readPcap(traffic.file);
    // The seeds decode to exactly the calls made: the fuzzing starts from the real thing.
    const clean: Record<string, any>[] = [];
    const pipeline = new CapturePipeline({ node: { name: 'x', ip: '' }, worker: 'x', onItem: (it) => clean.push(it.item) });
    await readCaptureFile(traffic.file, (f) => pipeline.onFrame(f));
    pipeline.end();
    assert.deepEqual(countCalls(clean.map(callOf)), countCalls(traffic.calls));

    const onPorts = (...ports: number[]) => pcap.records.filter((r) => {
      const f = flowOf(r.data);
      return f !== null && (ports.includes(f.srcPort) || ports.includes(f.dstPort));
    });
    const seeds = [
      seedOf('all', pcap.linkType, pcap.records),
      seedOf('http1', pcap.linkType, onPorts(traffic.http1Port)),
      seedOf('http2', pcap.linkType, onPorts(traffic.http2Port)),
      seedOf('dns', pcap.linkType, onPorts(traffic.dnsPort)),
      seedOf('redis', pcap.linkType, onPorts(traffic.redisPort)),
    ];
    for (const s of seeds) assert.ok(s.records.length > 4, `${s.name}: ${s.records.length} frames`);

    const input: FuzzInput = { seeds, budgetMs: BUDGET_MS, maxIterations: 1_000_000, baseSeed: BASE_SEED, perRunBoundMs: PER_RUN_BOUND_MS };
    // The worker's heap is capped too: a leak ends it with ERR_WORKER_OUT_OF_MEMORY, naming the iteration.
    const worker = new Worker(new URL('./capture-fuzz-worker.ts', import.meta.url), { workerData: input, resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB, maxYoungGenerationSizeMb: 16 } });
    let rss0 = 0;
    let maxRss = 0;
    let current = 'warm-up';
    let lastWord = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const result = await new Promise<FuzzResult>((resolve, reject) => {
      worker.on('message', (m: FuzzMessage) => {
        lastWord = performance.now();
        if (m.type === 'ready') rss0 = maxRss = process.memoryUsage().rss;
        else if (m.type === 'start') current = `iteration ${m.iteration} (CAPTURE_FUZZ_SEED=${BASE_SEED}, seed 0x${m.seed.toString(16)}): ${m.input}`;
        else resolve(m.result);
      });
      worker.on('error', (err) => reject(new Error(`fuzz worker failed during ${current}: ${err.stack ?? err}`)));
      worker.on('exit', (code) => reject(new Error(`fuzz worker exited (${code}) during ${current}`)));
      timer = setInterval(() => {
        if (rss0 > 0) maxRss = Math.max(maxRss, process.memoryUsage().rss);
        if (performance.now() - lastWord > STALL_MS) {
          void worker.terminate();
          reject(new Error(`no progress for ${STALL_MS} ms: stuck in ${current}`));
        }
      }, 100);
    }).finally(() => {
      clearInterval(timer);
      void worker.terminate();
    });
    maxRss = Math.max(maxRss, process.memoryUsage().rss);

    const summary = JSON.stringify({ ...result, failures: result.failures.length });
    t.diagnostic(`${summary}; rss +${((maxRss - rss0) / 1048576).toFixed(1)} MiB`);
    if (result.failures.length > 0) {
      // Keep the failing captures: each replays on its own (wirescript run x.js --pcap FILE).
      const keep = mkdtempSync(path.join(tmpdir(), 'wirescript-fuzz-failures-'));
      const listed = result.failures.map((f) => {
        const { bytes, ...rest } = f;
        const saved = bytes ? path.join(keep, `iteration-${f.iteration}.pcap`) : undefined;
        if (saved) writeFileSync(saved, bytes!);
        return { ...rest, saved };
      });
      assert.fail(`${listed.length} failing inputs (saved in ${keep}):\n${JSON.stringify(listed, null, 1)}\n${summary}`);
    }
    // It fuzzed, at both levels, and the mutations reached every outcome and every dissector.
    assert.ok(result.iterations >= 200, summary);
    assert.ok(result.fileLevel > 50 && result.packetLevel > 50, summary);
    assert.ok(result.resolved > 50, summary);
    for (const kind of ['truncated', 'corrupt']) assert.ok((result.rejected[kind] ?? 0) > 5, `${kind}: ${summary}`);
    for (const p of ['http1', 'http2', 'dns', 'redis']) assert.ok((result.items[p] ?? 0) > 50, `${p} items: ${summary}`);
    assert.ok(result.parsersChecked > 100, `the per-parser error counters were watched: ${summary}`);
    assert.ok(result.itemsWithError > 0, `garbage shows up as items with errors: ${summary}`);
    assert.ok(result.maxRunMs < PER_RUN_BOUND_MS, summary);
    assert.ok(result.retainedAfterMb - result.retainedBeforeMb < MAX_RETAINED_GROWTH_MB, `the runs left ${(result.retainedAfterMb - result.retainedBeforeMb).toFixed(1)} MiB behind: ${summary}`);
    assert.ok(maxRss - rss0 < MAX_RSS_GROWTH, `rss grew by ${((maxRss - rss0) / 1048576).toFixed(1)} MiB over the budget: ${summary}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
