// A small Prometheus registry: counters, gauges and histograms, exposed in the text format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/). Metric names are etcd 3.4's where
// we measure the same thing (etcd_server_has_leader, etcd_disk_wal_fsync_duration_seconds, ...);
// ours start with etcd_ts_. Only what is really measured is registered: a gauge reads its value
// when scraped (collect), counters and histograms are updated where the event happens.

type Labels = Record<string, string>;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(l: Labels | undefined, extra?: [string, string]): string {
  const parts = l ? Object.entries(l).map(([k, v]) => `${k}="${escapeLabel(v)}"`) : [];
  if (extra) parts.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

/** Go's strconv.FormatFloat(v, 'g', -1, 64) for the values we expose, and Prometheus' +Inf. */
function num(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Number.isNaN(v)) return 'NaN';
  return String(v);
}

interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  render(): string;
}

export class Counter implements Metric {
  readonly type = 'counter';
  #value = 0;
  constructor(readonly name: string, readonly help: string, readonly collect?: () => number) {}
  inc(by = 1): void {
    this.#value += by;
  }
  get value(): number {
    return this.collect ? this.collect() : this.#value;
  }
  render(): string {
    return `${this.name} ${num(this.value)}\n`;
  }
}

export class Gauge implements Metric {
  readonly type = 'gauge';
  #value = 0;
  constructor(readonly name: string, readonly help: string, readonly collect?: () => number) {}
  set(v: number): void {
    this.#value = v;
  }
  get value(): number {
    return this.collect ? this.collect() : this.#value;
  }
  render(): string {
    return `${this.name} ${num(this.value)}\n`;
  }
}

/** A gauge with one series per label set, read at scrape time. */
export class LabeledGauge implements Metric {
  readonly type = 'gauge';
  constructor(readonly name: string, readonly help: string, readonly collect: () => Array<[Labels, number]>) {}
  render(): string {
    let s = '';
    for (const [l, v] of this.collect()) s += `${this.name}${labelText(l)} ${num(v)}\n`;
    return s;
  }
}

/** A histogram's series: `counts[i]` observations in (bounds[i-1], bounds[i]] (non-cumulative; any
 * entries past the bounds are ignored), `count` observations in all, cumulative as Prometheus wants. */
function histogramText(name: string, bounds: readonly number[], counts: ArrayLike<number>, count: number, sum: number): string {
  let s = '';
  let acc = 0;
  for (let i = 0; i < bounds.length; i++) {
    acc += counts[i];
    s += `${name}_bucket${labelText(undefined, ['le', num(bounds[i])])} ${acc}\n`;
  }
  return s + `${name}_bucket{le="+Inf"} ${count}\n${name}_sum ${num(sum)}\n${name}_count ${count}\n`;
}

/** Cumulative buckets as Prometheus' client: counts per upper bound, sum, count. */
export class Histogram implements Metric {
  readonly type = 'histogram';
  readonly #bounds: number[];
  readonly #counts: Float64Array;
  #sum = 0;
  #count = 0;
  constructor(readonly name: string, readonly help: string, bounds: number[]) {
    this.#bounds = bounds;
    this.#counts = new Float64Array(bounds.length);
  }
  observe(v: number): void {
    this.#sum += v;
    this.#count++;
    for (let i = 0; i < this.#bounds.length; i++) {
      if (v <= this.#bounds[i]) {
        this.#counts[i]++;
        return;
      }
    }
  }
  get count(): number {
    return this.#count;
  }
  render(): string {
    return histogramText(this.name, this.#bounds, this.#counts, this.#count, this.#sum);
  }
}

/** A histogram another thread writes (src/shared/shared_histogram.ts), rendered like Histogram. */
export class SharedHistogramMetric implements Metric {
  readonly type = 'histogram';
  constructor(readonly name: string, readonly help: string, readonly source: { bounds: readonly number[]; read(): { counts: number[]; sum: number } }) {}
  render(): string {
    const { counts, sum } = this.source.read();
    let count = 0;
    for (const c of counts) count += c;
    return histogramText(this.name, this.source.bounds, counts, count, sum);
  }
}

/** prometheus.ExponentialBuckets(start, factor, count). */
export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  const out: number[] = [];
  for (let i = 0, v = start; i < count; i++, v *= factor) out.push(Number(v.toPrecision(12)));
  return out;
}

export class Registry {
  readonly #metrics = new Map<string, Metric>();

  register<M extends Metric>(m: M): M {
    if (this.#metrics.has(m.name)) throw new Error(`metrics: ${m.name} registered twice`);
    this.#metrics.set(m.name, m);
    return m;
  }

  counter(name: string, help: string, collect?: () => number): Counter {
    return this.register(new Counter(name, help, collect));
  }

  gauge(name: string, help: string, collect?: () => number): Gauge {
    return this.register(new Gauge(name, help, collect));
  }

  histogram(name: string, help: string, bounds: number[]): Histogram {
    return this.register(new Histogram(name, help, bounds));
  }

  /** The exposition text, metrics sorted by name as Prometheus' Go client writes them. */
  render(): string {
    let s = '';
    for (const name of [...this.#metrics.keys()].sort()) {
      const m = this.#metrics.get(name)!;
      s += `# HELP ${m.name} ${m.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${m.name} ${m.type}\n${m.render()}`;
    }
    return s;
  }
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
