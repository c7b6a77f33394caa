/**
 * Latency histogram with log-linear buckets (16 per power of two, so any
 * recorded value is off by at most ~6%), fixed memory, no allocation on record.
 * Values are microseconds; values above 2^36 us (~19 hours) land in the top bucket.
 */
const SUB_BITS = 4;
const SUB = 1 << SUB_BITS;
const MAX_EXP = 32;
const BUCKETS = (MAX_EXP + 1) * SUB;

function bucketOf(v: number): number {
  if (!(v >= SUB)) return v > 0 ? Math.floor(v) : 0;
  // v / 2^exp falls in [SUB, 2*SUB): the top SUB_BITS+1 bits pick the bucket.
  let exp = Math.floor(Math.log2(v)) - SUB_BITS;
  if (v < SUB * 2 ** exp) exp--; // log2 rounded up across a power of two
  else if (v >= 2 * SUB * 2 ** exp) exp++;
  if (exp >= MAX_EXP) return BUCKETS - 1;
  return SUB + exp * SUB + (Math.floor(v / 2 ** exp) - SUB);
}

function bucketValue(b: number): number {
  if (b < SUB) return b;
  const exp = Math.floor(b / SUB) - 1;
  const sub = b % SUB;
  // Upper edge of the bucket: percentiles err on the pessimistic side.
  return (SUB + sub + 1) * 2 ** exp - 1;
}

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  private total = 0;
  private maxValue = 0;

  /** Records `count` observations of `micros` each (a batch average counts once per call). */
  record(micros: number, count = 1): void {
    if (!(count > 0)) return;
    this.counts[bucketOf(micros)] += count;
    this.total += count;
    if (micros > this.maxValue) this.maxValue = micros;
  }

  get count(): number {
    return this.total;
  }

  get max(): number {
    return this.maxValue;
  }

  percentile(p: number): number {
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.total));
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.counts[b];
      if (seen >= rank) return Math.min(bucketValue(b), this.maxValue);
    }
    return this.maxValue;
  }

  snapshot(): { p50: number; p90: number; p99: number; max: number; count: number } {
    return { p50: this.percentile(50), p90: this.percentile(90), p99: this.percentile(99), max: this.maxValue, count: this.total };
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
    this.maxValue = 0;
  }
}
