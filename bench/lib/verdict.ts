// The regression verdict of `etcd-ts-bench diff`: is head faster, slower, or within noise of base?
//
// Each side is one or more samples of the same workload (rounds of a compare run, or --rounds of a
// single run). The threshold accounts for run-to-run spread: it is the larger of a minimum (default
// 5%) and the relative range (max - min) / median of the samples of either side; a side with a single
// sample has no measured spread, so a default allowance is used instead (15%: what undisturbed runs
// of the same build varied by on the 2-core machine docs/BENCHMARKS.md was measured on). Closed-loop
// runs are judged on throughput (median req/s); open-loop runs, whose throughput is the fixed rate,
// on p99 latency. New errors (head has errors, base has none) are a regression whatever the speed.

export interface Samples {
  throughput: number[]; // req/s per sample
  p99Ms: number[];      // p99 latency per sample
  errors: number;       // errors over all samples
  openLoop: boolean;
}

export type VerdictKind = 'faster' | 'slower' | 'within noise';

export interface Verdict {
  verdict: VerdictKind;
  metric: 'throughput' | 'p99 latency';
  base: number;      // median of base
  head: number;      // median of head
  change: number;    // relative change, positive = better (more req/s, or less latency)
  threshold: number; // relative change needed for a verdict other than "within noise"
  newErrors: boolean;
  regression: boolean; // slower, or new errors: diff exits non-zero
}

export interface VerdictOptions {
  minThreshold: number;      // relative, e.g. 0.05
  singleSampleNoise: number; // relative allowance when a side has one sample, e.g. 0.15
}

export const defaultVerdictOptions: VerdictOptions = { minThreshold: 0.05, singleSampleNoise: 0.15 };

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Relative spread of samples: (max - min) / median; null with fewer than two samples. */
export function relativeSpread(xs: number[]): number | null {
  if (xs.length < 2) return null;
  const m = median(xs);
  if (!(m > 0)) return null;
  return (Math.max(...xs) - Math.min(...xs)) / m;
}

export function judge(base: Samples, head: Samples, o: VerdictOptions = defaultVerdictOptions): Verdict {
  const onLatency = base.openLoop && head.openLoop;
  const b = onLatency ? base.p99Ms : base.throughput;
  const h = onLatency ? head.p99Ms : head.throughput;
  if (b.length === 0 || h.length === 0) throw new Error('diff: a side has no samples');
  const bm = median(b);
  const hm = median(h);
  // Positive change = better: throughput up, or latency down.
  const change = onLatency ? (hm > 0 ? bm / hm - 1 : 0) : (bm > 0 ? hm / bm - 1 : 0);
  const noise = [relativeSpread(b), relativeSpread(h)].map((s) => (s === null ? o.singleSampleNoise : s));
  const threshold = Math.max(o.minThreshold, ...noise);
  const verdict: VerdictKind = change > threshold ? 'faster' : change < -threshold ? 'slower' : 'within noise';
  const newErrors = head.errors > 0 && base.errors === 0;
  return {
    verdict, metric: onLatency ? 'p99 latency' : 'throughput', base: bm, head: hm, change, threshold,
    newErrors, regression: verdict === 'slower' || newErrors,
  };
}
