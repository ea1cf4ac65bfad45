// A histogram one thread writes and another reads, over a SharedArrayBuffer: the apply worker times
// its LMDB write transactions, the main thread renders them at /metrics. One writer only.
//
// Layout (Float64Array over the SAB):
//   [0 .. n-1]  observations <= bounds[i] and > bounds[i-1] (not cumulative)
//   [n]         observations above the last bound
//   [n+1]       sum of observed values
// The reader copies the array once per scrape; a value observed meanwhile may show in the buckets and
// not yet in the sum (or the reverse), which Prometheus tolerates.
import { assert } from './errors';

export class SharedHistogram {
  readonly bounds: readonly number[];
  readonly #a: Float64Array;

  static create(bucketCount: number): SharedArrayBuffer {
    return new SharedArrayBuffer((bucketCount + 2) * 8);
  }

  constructor(sab: SharedArrayBuffer, bounds: readonly number[]) {
    assert(sab.byteLength === (bounds.length + 2) * 8, 'shared histogram: size does not match the bounds');
    this.bounds = bounds;
    this.#a = new Float64Array(sab);
  }

  /** Writer side. */
  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]) i++;
    this.#a[i]++;
    this.#a[b.length + 1] += v;
  }

  /** Reader side: per-bucket counts (non-cumulative, the overflow last) and the sum. */
  read(): { counts: number[]; sum: number } {
    const copy = Array.from(this.#a);
    return { counts: copy.slice(0, this.bounds.length + 1), sum: copy[this.bounds.length + 1] };
  }
}
