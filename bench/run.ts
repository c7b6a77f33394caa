/** `npm run bench`: every benchmark, figures printed side by side (never timed assertions in tests). */
import { runEngineBench } from './engine.bench.ts';
import { runPipelineBench } from './pipeline.bench.ts';

await runEngineBench(Number(process.env.BENCH_SECONDS ?? 3));
await runPipelineBench(Number(process.env.BENCH_PIPELINE_ITEMS ?? 200_000));
