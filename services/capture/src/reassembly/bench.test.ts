import assert from 'node:assert/strict';
import { it } from 'node:test';
import { runReassemblyBench } from './bench.ts';

// Not a timing test: the benchmark must keep measuring what it claims (every byte through the parser).
it('the reassembly benchmark delivers every byte it sends', async () => {
  const lines: string[] = [];
  const r = await runReassemblyBench(5000, 100, 50, (l) => lines.push(l));
  assert.equal(r.bytesDelivered, 5000 * 100);
  assert.ok(r.segmentsPerSec > 0 && r.mbPerSec > 0 && r.manyFlowsSegmentsPerSec > 0);
  assert.equal(lines.length, 3);
});
