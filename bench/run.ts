/**
 * `npm run bench`: every benchmark, figures printed side by side (never timed assertions in tests).
 * Knobs: BENCH_SECONDS (engine, per case), BENCH_PIPELINE_ITEMS, BENCH_CAPTURE_CALLS (calls in the
 * generated pcap, default 100000), BENCH_LIVE_STEPS (offered req/s, comma-separated), BENCH_LIVE_SECONDS.
 */
import { runEngineBench } from './engine.bench.ts';
import { runPipelineBench } from './pipeline.bench.ts';
import { runCaptureBench } from './capture.bench.ts';
import { runLiveBench } from './live.bench.ts';

await runEngineBench(Number(process.env.BENCH_SECONDS ?? 3));
await runPipelineBench(Number(process.env.BENCH_PIPELINE_ITEMS ?? 200_000));
await runCaptureBench({ calls: Number(process.env.BENCH_CAPTURE_CALLS ?? 100_000) });
await runLiveBench({
  steps: process.env.BENCH_LIVE_STEPS ? process.env.BENCH_LIVE_STEPS.split(',').map((s) => Number(s.trim())) : undefined,
  seconds: Number(process.env.BENCH_LIVE_SECONDS ?? 3),
});
