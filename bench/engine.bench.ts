/**
 * Engine throughput: items per second through onItemCaptured, side by side:
 *  - empty hook (the floor: batching + crossing + call overhead),
 *  - "count by key": reads three fields of each item and counts by key
 *    (projection: only those fields reach the VM),
 *  - the same script written so it needs the whole item (JSON.stringify(data)),
 *  - a naive design for reference: one host->guest call per item with the
 *    whole item JSON, parsed in the VM.
 * Inputs are ~600-byte realistic HTTP items as JSON text (as they arrive from NATS).
 * Also: two worker threads, each with its own engine (as two replicas), to show scaling.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { ScriptEngine } from '@wirescript/engine';
import { makeHttpItem, rng } from '@wirescript/testing';
import { newQuickJSWASMModuleFromVariant } from 'quickjs-emscripten-core';
import releaseSync from '@jitl/quickjs-wasmfile-release-sync';

/** The benchmark script: reads three fields of each item and counts by key (also run by the pipeline bench). */
export const COUNT_BY_KEY = `// count by key
var counts = {};
function onItemCaptured(data) {
  var key = data.request.method + ' ' + data.response.status + ' ' + data.dst.name;
  counts[key] = (counts[key] || 0) + 1;
}`;
const EMPTY = `// empty
function onItemCaptured(data) {}`;
const WHOLE_ITEM = `// whole item
var counts = {};
function onItemCaptured(data) {
  var d = JSON.parse(JSON.stringify(data));
  var key = d.request.method + ' ' + d.response.status + ' ' + d.dst.name;
  counts[key] = (counts[key] || 0) + 1;
}`;

export function makeItems(n: number): string[] {
  const random = rng(1);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(JSON.stringify(makeHttpItem(i, random)));
  return out;
}

async function engineRate(code: string, items: readonly string[], seconds: number): Promise<number> {
  const engine = await ScriptEngine.create({ nodeName: 'bench' });
  engine.load({ scripts: [{ index: 0, code }] });
  engine.dispatchItems(items.slice(0, 2000)); // warm-up (JIT, VM heap)
  let n = 0;
  const t0 = performance.now();
  const chunk = 4096;
  while (performance.now() - t0 < seconds * 1000) {
    const start = n % (items.length - chunk);
    engine.dispatchItems(items.slice(start, start + chunk));
    n += chunk;
  }
  const rate = n / ((performance.now() - t0) / 1000);
  const st = engine.stats();
  if (st.hookErrors > 0) throw new Error(`bench script faulted: ${st.scripts[0]?.lastError}`);
  engine.close();
  return rate;
}

async function naiveRate(items: readonly string[], seconds: number): Promise<number> {
  const mod = await newQuickJSWASMModuleFromVariant(releaseSync as unknown as Parameters<typeof newQuickJSWASMModuleFromVariant>[0]);
  const ctx = mod.newContext();
  ctx.unwrapResult(ctx.evalCode(`${COUNT_BY_KEY}\nfunction __call(s) { onItemCaptured(JSON.parse(s)); }`)).dispose();
  const fn = ctx.getProp(ctx.global, '__call');
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    for (let i = 0; i < 1000; i++) {
      const h = ctx.newString(items[(n + i) % items.length]);
      ctx.unwrapResult(ctx.callFunction(fn, ctx.undefined, h)).dispose();
      h.dispose();
    }
    n += 1000;
  }
  const rate = n / ((performance.now() - t0) / 1000);
  fn.dispose();
  ctx.dispose();
  return rate;
}

function threadRate(threads: number, seconds: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let total = 0;
    let done = 0;
    for (let t = 0; t < threads; t++) {
      const w = new Worker(new URL(import.meta.url), { workerData: { seconds } });
      w.on('message', (rate: number) => {
        total += rate;
        if (++done === threads) resolve(total);
      });
      w.on('error', reject);
    }
  });
}

const fmt = (n: number) => `${Math.round(n).toLocaleString('en-US')}/s`;

export async function runEngineBench(seconds = 3): Promise<Record<string, number>> {
  const items = makeItems(20_000);
  const avg = items.reduce((a, s) => a + s.length, 0) / items.length;
  console.log(`engine: items are ${Math.round(avg)} bytes of JSON on average; ${seconds} s per case; node ${process.version}`);
  const r: Record<string, number> = {};
  r.empty = await engineRate(EMPTY, items, seconds);
  r.countByKey = await engineRate(COUNT_BY_KEY, items, seconds);
  r.wholeItem = await engineRate(WHOLE_ITEM, items, seconds);
  r.naive = await naiveRate(items, seconds);
  r.countByKey2Threads = await threadRate(2, seconds);
  console.log(`  ${'case'.padEnd(44)} items/s per core`);
  console.log(`  ${'empty hook (floor)'.padEnd(44)} ${fmt(r.empty)}`);
  console.log(`  ${'count by key, 3 fields (projection)'.padEnd(44)} ${fmt(r.countByKey)}`);
  console.log(`  ${'count by key, whole item in the VM'.padEnd(44)} ${fmt(r.wholeItem)}`);
  console.log(`  ${'naive: 1 call per item, JSON.parse in VM'.padEnd(44)} ${fmt(r.naive)}`);
  console.log(`  ${'count by key, 2 worker threads (total)'.padEnd(44)} ${fmt(r.countByKey2Threads)}  (x${(r.countByKey2Threads / r.countByKey).toFixed(2)} of one)`);
  console.log(`  projection vs naive: x${(r.countByKey / r.naive).toFixed(2)}; target >= 150,000/s per core: ${r.countByKey >= 150_000 ? 'met' : 'NOT met'}`);
  return r;
}

if (!isMainThread) {
  const items = makeItems(20_000);
  engineRate(COUNT_BY_KEY, items, (workerData as { seconds: number }).seconds).then((r) => parentPort!.postMessage(r));
} else if (import.meta.main) {
  await runEngineBench(Number(process.argv[2] ?? 3));
}
