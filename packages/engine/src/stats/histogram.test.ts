import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LatencyHistogram } from './histogram.ts';

/** The documented precision: 16 buckets per power of two. */
const TOLERANCE = 1 / 16;

function assertClose(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= expected * TOLERANCE + 1,
    `${what}: ${actual} is not within ${TOLERANCE * 100}% of ${expected}`);
}

/** The exact p-th percentile (nearest rank) of sorted values. */
function exactPercentile(sorted: number[], p: number): number {
  return sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1];
}

describe('LatencyHistogram', () => {
  it('is empty at first', () => {
    const h = new LatencyHistogram();
    assert.deepEqual(h.snapshot(), { p50: 0, p90: 0, p99: 0, max: 0, count: 0 });
  });

  it('is exact for small whole values', () => {
    const h = new LatencyHistogram();
    for (let v = 0; v < 16; v++) h.record(v);
    assert.equal(h.count, 16);
    assert.equal(h.percentile(50), 7);
    assert.equal(h.percentile(100), 15);
    assert.equal(h.max, 15);
  });

  it('puts any single value within ~6% (and never below it)', () => {
    for (const v of [16, 17, 20, 31, 32, 33, 100, 999, 1000, 1024, 4095, 12_345, 65_536, 1e6, 3.6e9]) {
      const h = new LatencyHistogram();
      h.record(v, 9);
      h.record(v * 100); // max above v, so the percentile is not capped by the max
      const p = h.percentile(50);
      assert.ok(p >= v - 1 && p <= v * (1 + TOLERANCE), `value ${v} reported as ${p}`);
    }
  });

  it('percentiles of a uniform distribution are within ~6%', () => {
    const h = new LatencyHistogram();
    const values: number[] = [];
    for (let v = 1; v <= 100_000; v += 7) { h.record(v); values.push(v); }
    for (const p of [50, 90, 99]) assertClose(h.percentile(p), exactPercentile(values, p), `p${p}`);
    assert.equal(h.max, values[values.length - 1]);
    assert.equal(h.count, values.length);
  });

  it('percentiles of a skewed distribution are within ~6%', () => {
    const h = new LatencyHistogram();
    const values: number[] = [];
    let x = 12345;
    for (let i = 0; i < 20_000; i++) {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      const v = Math.round(50 * Math.exp((x / 2 ** 31) * 8)); // 50 us .. ~150 ms, log-uniform
      h.record(v);
      values.push(v);
    }
    values.sort((a, b) => a - b);
    const snap = h.snapshot();
    assertClose(snap.p50, exactPercentile(values, 50), 'p50');
    assertClose(snap.p90, exactPercentile(values, 90), 'p90');
    assertClose(snap.p99, exactPercentile(values, 99), 'p99');
    assert.equal(snap.max, values[values.length - 1]);
  });

  it('record(v, n) counts n observations', () => {
    const h = new LatencyHistogram();
    h.record(100, 99);
    h.record(10_000, 1);
    assert.equal(h.count, 100);
    assertClose(h.percentile(50), 100, 'p50');
    assertClose(h.percentile(99), 100, 'p99');
    assertClose(h.percentile(100), 10_000, 'p100');
  });

  it('ignores non-positive counts and tolerates odd values', () => {
    const h = new LatencyHistogram();
    h.record(100, 0);
    h.record(100, -3);
    assert.equal(h.count, 0);
    h.record(-5);
    h.record(Number.NaN);
    h.record(2.5);
    assert.equal(h.count, 3);
    assert.ok(h.percentile(100) >= 0);
  });

  it('huge values land in the top bucket and max stays exact', () => {
    const h = new LatencyHistogram();
    h.record(1e15);
    h.record(1e16);
    assert.equal(h.max, 1e16);
    assert.ok(h.percentile(50) > 0 && h.percentile(50) <= 1e16);
  });

  it('a percentile never exceeds the max', () => {
    const h = new LatencyHistogram();
    h.record(1000);
    assert.equal(h.percentile(99), 1000);
  });

  it('reset starts a new window', () => {
    const h = new LatencyHistogram();
    h.record(5000, 10);
    h.reset();
    assert.deepEqual(h.snapshot(), { p50: 0, p90: 0, p99: 0, max: 0, count: 0 });
    h.record(20);
    assert.equal(h.percentile(50), 20);
  });
});
