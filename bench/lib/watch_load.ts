// Watch workloads of the bench tool, run on the main thread (the work is receiving, not sending):
//  - watch: `watchers` watchers on one prefix, spread over `streams` HTTP/2 connections (one bidi
//    Watch stream each), while `writers` closed-loop writers put round-robin to keys under the prefix.
//    Throughput = events delivered to all watchers per second; latency = Put sent → event arrival,
//    sampled on every 10th watcher.
//  - watch-latency (etcd benchmark's watch-latency): Puts at a fixed rate to one key that every watcher
//    watches; latency = Put due (open loop: its intended send time) → event arrival, on every watcher.
// Warm-up: the writers run for the warm-up time, the generator waits until every warm-up event has
// arrived, and only then starts the measured phase, so no warm-up event is counted. After the measured
// phase it waits (up to 30 s) for every expected event (writes × watchers); missing events are reported
// as errors (code WATCH_EVENTS_MISSING). The WatchResponses are not decoded with protobufjs: a small
// wire scanner (watch_wire.ts, shared with bench/watch.ts) counts events and reads mod revisions.
import * as http2 from 'node:http2';
import { performance } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import { etcdserverpb } from '../../src/shared/gen/etcd';
import { frameGrpc, grpcCodeName } from './h2_client';
import { LoadResult } from './load';
import { histogramSpec } from './load_types';
import { procCpuUs } from './proc';
import { put, scanResponse, ScanResult, newScanResult, Scanner, WatchStream } from './watch_wire';
import { makeValue, prefixEnd, WatchWorkloadName } from './workloads';

export interface WatchLoadOptions {
  endpoint: string;
  workload: WatchWorkloadName;
  watchers: number;
  streams: number;      // HTTP/2 connections, one Watch stream each
  writers: number;      // watch: closed-loop writers (watch-latency: 1)
  keys: number;         // watch: keys written under the prefix, round-robin
  valueSize: number;
  ratePerSec: number;   // watch-latency: Puts per second (watch: 0 = closed loop, > 0 = open loop over all writers)
  warmupMs: number;
  durationMs: number;   // writing time (ignored when total > 0)
  total: number;        // > 0: this many measured Puts
  serverPid?: number;
  onProgress?: (events: number) => void;
}

export interface WatchExtra { puts: number; putsPerSec: number; expectedEvents: number; deliveredEvents: number }

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const drainTimeoutMs = 30_000;

/** The watchers, the writers and the counters of one watch run. */
class WatchRun {
  readonly #o: WatchLoadOptions;
  readonly #latencyMode: boolean;
  readonly #prefix: Buffer;
  readonly #frames: Buffer[];       // one framed Put per written key
  readonly #streams: WatchStream[];
  readonly #session: http2.ClientHttp2Session;
  readonly #sentAt: Map<number, number>; // revision -> when its Put was sent (or due, in open loop)
  readonly errorCodes: Map<string, number>;
  firstError: string | null;
  created: number;
  canceled: number;
  events: number;
  lastEventAt: number;
  measuring: boolean;
  sRev: number[];                   // sampled events: mod revision ...
  sAt: number[];                    // ... and arrival time
  #next: number;

  constructor(o: WatchLoadOptions) {
    this.#o = o;
    this.#latencyMode = o.workload === 'watch-latency';
    this.#prefix = Buffer.from(`bench/watch/${Date.now().toString(36)}/`);
    const keys = this.#latencyMode ? [Buffer.concat([this.#prefix, Buffer.from('key')])]
      : Array.from({ length: Math.max(1, o.keys) }, (_, i) => Buffer.concat([this.#prefix, Buffer.from(`k${String(i).padStart(6, '0')}`)]));
    const value = makeValue(o.valueSize, 7);
    this.#frames = keys.map((key) => frameGrpc(etcdserverpb.PutRequest.encode({ key, value }).finish()));
    this.#sentAt = new Map();
    this.errorCodes = new Map();
    this.firstError = null;
    this.created = 0;
    this.canceled = 0;
    this.events = 0;
    this.lastEventAt = 0;
    this.measuring = false;
    this.sRev = [];
    this.sAt = [];
    this.#next = 0;
    this.#streams = Array.from({ length: o.streams }, () => this.#stream());
    this.#session = http2.connect(`http://${o.endpoint}`);
    this.#session.on('error', () => { /* reported through the failing Puts */ });
  }

  /** One Watch stream whose messages update the counters; every sampleEvery-th watcher is sampled. */
  #stream(): WatchStream {
    const sampleEvery = this.#latencyMode ? 1 : 10;
    const sc = new Scanner();
    const out: ScanResult = newScanResult();
    const sampled = new Set<number>();
    const record = (rev: number): void => { if (this.measuring) { this.sRev.push(rev); this.sAt.push(performance.now()); } };
    let createdHere = 0;
    return new WatchStream(this.#o.endpoint, (buf, start, end) => {
      scanResponse(sc, buf, start, end, out, null);
      if (out.created) { if (createdHere++ % sampleEvery === 0) sampled.add(out.watchId); this.created++; return; }
      if (out.canceled) { this.canceled++; return; }
      if (out.events === 0) return;
      this.events += out.events;
      this.lastEventAt = performance.now();
      if (sampled.has(out.watchId)) scanResponse(sc, buf, start, end, out, record);
    });
  }

  /** Creates the watchers (round-robin over the streams) and waits until all are created. */
  async createWatchers(): Promise<void> {
    const o = this.#o;
    for (let w = 0; w < o.watchers; w++) {
      const s = this.#streams[w % this.#streams.length];
      if (this.#latencyMode) s.create(Buffer.concat([this.#prefix, Buffer.from('key')]));
      else s.create(this.#prefix, prefixEnd(this.#prefix));
    }
    const deadline = Date.now() + 60_000;
    while (this.created < o.watchers) {
      const err = this.#streams.find((s) => s.error)?.error;
      if (err || this.canceled > 0 || Date.now() > deadline) {
        throw new Error(`watch: only ${this.created}/${o.watchers} watchers created${err ? ` (${err})` : ''}${this.canceled ? `, ${this.canceled} canceled` : ''}`);
      }
      await sleep(10);
    }
  }

  async #put(at: number): Promise<boolean> {
    try {
      const rev = await put(this.#session, this.#frames[this.#next++ % this.#frames.length]);
      if (this.measuring) this.#sentAt.set(rev, at);
      return true;
    } catch (e) {
      const code = grpcCodeName[(e as { code?: number }).code ?? -1] ?? 'NO_STATUS';
      this.errorCodes.set(code, (this.errorCodes.get(code) ?? 0) + 1);
      this.firstError ??= e instanceof Error ? e.message : String(e);
      return false;
    }
  }

  /** One phase of writing (for ms, or count Puts): closed-loop writers, or Puts paced at a rate; returns the Puts acknowledged. */
  async write(ms: number, count: number): Promise<number> {
    const o = this.#o;
    let acked = 0;
    let issued = 0;
    const t0 = performance.now();
    const more = (): boolean => (count > 0 ? issued < count : performance.now() < t0 + ms);
    const rate = this.#latencyMode ? (o.ratePerSec > 0 ? o.ratePerSec : 100) : o.ratePerSec;
    if (rate > 0) {
      const inFlight = new Set<Promise<void>>();
      for (let k = 0; more(); k++) {
        const due = t0 + (k * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        issued++;
        const p = this.#put(due).then((ok) => { if (ok) acked++; inFlight.delete(p); });
        inFlight.add(p);
      }
      await Promise.all(inFlight);
    } else {
      await Promise.all(Array.from({ length: Math.max(1, o.writers) }, async () => {
        while (more()) { issued++; if (await this.#put(performance.now())) acked++; }
      }));
    }
    return acked;
  }

  /** Waits until `expected` events have arrived or the drain timeout passes. */
  async drain(expected: number): Promise<void> {
    const until = performance.now() + drainTimeoutMs;
    while (this.events < expected && performance.now() < until) await sleep(5);
  }

  /** Starts the measured phase: counters of the warm-up are dropped. */
  startMeasuring(): void {
    this.events = 0;
    this.errorCodes.clear();
    this.firstError = null;
    this.sRev = [];
    this.sAt = [];
    this.measuring = true;
  }

  /** Event latencies of the sampled watchers, matched to their Puts by revision. */
  latencies(): hdr.Histogram {
    const h = hdr.build(histogramSpec);
    for (let i = 0; i < this.sRev.length; i++) {
      const at = this.#sentAt.get(this.sRev[i]);
      if (at !== undefined) h.recordValue(Math.max(1, Math.round((this.sAt[i] - at) * 1000)));
    }
    return h;
  }

  close(): void {
    for (const s of this.#streams) s.close();
    this.#session.close();
  }
}

export async function runWatchLoad(o: WatchLoadOptions): Promise<LoadResult & { extra: WatchExtra }> {
  const run = new WatchRun(o);
  try {
    await run.createWatchers();
    if (o.warmupMs > 0) await run.drain((await run.write(o.warmupMs, 0)) * o.watchers);
    run.startMeasuring();
    const progress = o.onProgress ? setInterval(() => o.onProgress!(run.events), 500) : null;
    const gen0 = process.cpuUsage();
    const srv0 = o.serverPid ? procCpuUs(o.serverPid) : null;
    const t0 = performance.now();
    const puts = await run.write(o.durationMs, o.total);
    const tw = performance.now();
    const expected = puts * o.watchers;
    await run.drain(expected);
    if (progress) clearInterval(progress);
    const tEnd = run.events >= expected ? Math.max(run.lastEventAt, tw) : performance.now();
    const gen = process.cpuUsage(gen0);
    const srv1 = o.serverPid ? procCpuUs(o.serverPid) : null;
    run.measuring = false;
    const missing = Math.max(0, expected - run.events);
    if (missing > 0) {
      run.errorCodes.set('WATCH_EVENTS_MISSING', missing);
      run.firstError ??= `${missing} of ${expected} events did not arrive within ${drainTimeoutMs / 1000} s`;
    }
    const h = run.latencies();
    const n = h.totalCount;
    const wallMs = tEnd - t0;
    const events = run.events;
    return {
      ops: events, reqPerSec: wallMs > 0 ? events / (wallMs / 1000) : 0,
      p50Ms: n ? h.getValueAtPercentile(50) / 1000 : 0, p90Ms: n ? h.getValueAtPercentile(90) / 1000 : 0,
      p99Ms: n ? h.getValueAtPercentile(99) / 1000 : 0, p999Ms: n ? h.getValueAtPercentile(99.9) / 1000 : 0,
      maxMs: n ? h.maxValue / 1000 : 0, meanMs: n ? h.mean / 1000 : 0,
      errors: [...run.errorCodes.values()].reduce((a, b) => a + b, 0), errorsByCode: Object.fromEntries(run.errorCodes),
      firstError: run.firstError,
      generatorCpu: wallMs > 0 ? (gen.user + gen.system) / 1000 / wallMs : 0,
      cpuUsPerReq: events > 0 ? (gen.user + gen.system) / events : 0,
      serverCpu: srv0 !== null && srv1 !== null && wallMs > 0 ? (srv1 - srv0) / 1000 / wallMs : null,
      machineCpu: null, measuredMs: wallMs, histogram: hdr.encodeIntoCompressedBase64(h), maxBacklog: 0, unfinished: missing,
      extra: { puts, putsPerSec: puts / ((tw - t0) / 1000), expectedEvents: expected, deliveredEvents: events },
    };
  } finally {
    run.close();
  }
}
