// Runs one load (workload x clients) against one endpoint, spread over worker threads, and merges
// the workers' histograms into throughput and latency percentiles.
import { clockTicks, procCpuUs } from './proc';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import * as hdr from 'hdr-histogram-js';
import { Workload } from './kv_client';
import { ClientKind, histogramSpec, LaneName, WorkerProgress, WorkerResult, WorkerTask } from './load_types';
import { laneConnections } from './lanes';
import { defaultRequestOptions, KvWorkloadName, RequestOptions } from './workloads';

/** The older interface (baseline.ts, flamegraph.ts): Put or serializable point Range, 16-byte keys. */
export interface LoadOptions {
  endpoint: string;
  workload: Workload;
  client: ClientKind;   // transport of the load workers
  clients: number;
  connections: number;  // total over all workers
  workers?: number;     // default: min(cores, connections, clients, 4)
  keySpace: number;
  valueBytes: number;
  warmupMs: number;
  durationMs: number;
  serverPid?: number;   // if set (Linux), the server's CPU use over the measured window is reported too
}

export interface KvLoadOptions {
  endpoint: string;
  endpoints?: string[]; // several endpoints (members): the connections are spread over them round-robin (default [endpoint])
  workload: KvWorkloadName;
  client: ClientKind;   // gRPC transport (grpc lane)
  lane?: LaneName;      // default grpc
  wsBinary?: boolean;   // ws lane: binary protobuf frames (default JSON)
  clients: number;      // closed loop: concurrent clients; open loop: the most requests in flight
  connections: number;  // total over all workers
  workers?: number;     // default: min(cores, connections, clients, 4)
  req: RequestOptions;
  warmupMs: number;
  durationMs: number;   // measured window (ignored when total > 0)
  total: number;        // > 0: exactly this many measured requests instead of a duration
  ratePerSec: number;   // > 0: open loop at this total rate; 0: closed loop
  serverPid?: number;
  serverPids?: number[]; // several server processes (a cluster's members): their CPU is summed
  onProgress?: (measuredOps: number) => void;
}

export interface LoadResult {
  ops: number;
  reqPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  meanMs: number;
  errors: number;
  errorsByCode: Record<string, number>;
  firstError: string | null;
  generatorCpu: number;   // CPU seconds of this process (all threads) per wall second, over the measured window
  cpuUsPerReq: number;    // generator CPU microseconds per successful request, over the measured window
  serverCpu: number | null; // server process CPU seconds per wall second over the window (null: not measured)
  machineCpu: number | null; // busy CPU of the whole machine (all processes) over the window, in cores (null: no /proc/stat)
  measuredMs: number;     // length of the measured window
  histogram: string;      // merged latency histogram (µs), hdr compressed base64
  maxBacklog: number;     // open loop: most requests due but waiting for a free slot (one worker)
  unfinished: number;     // open loop: requests unanswered at the end of the drain
}

const workerPath = path.join(__dirname, 'load_worker.js');

function runWorker(task: WorkerTask, onProgress?: (ops: number) => void): Promise<WorkerResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(workerPath, { workerData: task });
    w.on('message', (m: { ok: boolean; result?: WorkerResult; error?: string } | WorkerProgress) => {
      if ('progress' in m) { onProgress?.(m.progress); return; }
      if (m.ok) resolve(m.result!); else reject(new Error(m.error));
    });
    w.once('error', reject);
    w.once('exit', (code) => { if (code !== 0) reject(new Error(`load worker exited with ${code}`)); });
  });
}

interface CpuWindow { cpuUs: number; wallMs: number; serverCpuUs: number | null; machineCpuUs: number | null }

/**
 * CPU time of this process (all threads), of the server and of the machine from wall-clock
 * fromEpochMs for durationMs, or (durationMs null) until stop() is called.
 */
function sampleCpuWindow(fromEpochMs: number, durationMs: number | null, serverPids: number[]): { result: Promise<CpuWindow>; stop: () => void } {
  let stop = (): void => {};
  let stopped = false;
  const result = new Promise<CpuWindow>((resolve) => {
    let begun: (() => void) | null = null;
    const startTimer = setTimeout(() => {
      const cpu0 = process.cpuUsage();
      const server0 = serversCpuUs(serverPids);
      const machine0 = machineBusyUs();
      const wall0 = performance.now();
      const finish = (): void => {
        const cpu = process.cpuUsage(cpu0);
        const server1 = serversCpuUs(serverPids);
        const machine1 = machineBusyUs();
        resolve({
          cpuUs: cpu.user + cpu.system, wallMs: performance.now() - wall0,
          serverCpuUs: server0 !== null && server1 !== null ? server1 - server0 : null,
          machineCpuUs: machine0 !== null && machine1 !== null ? machine1 - machine0 : null,
        });
      };
      if (durationMs !== null) setTimeout(finish, durationMs);
      else if (stopped) finish();
      else begun = finish;
    }, Math.max(0, fromEpochMs - Date.now()));
    stop = () => {
      stopped = true;
      if (durationMs !== null) return;
      if (begun) begun();
      else { clearTimeout(startTimer); resolve({ cpuUs: 0, wallMs: 0, serverCpuUs: null, machineCpuUs: null }); }
    };
  });
  return { result, stop: () => stop() };
}

/** CPU time of the server processes together, in microseconds; null if none, or one cannot be read. */
function serversCpuUs(pids: number[]): number | null {
  if (pids.length === 0) return null;
  let sum = 0;
  for (const pid of pids) {
    const us = procCpuUs(pid);
    if (us === null) return null;
    sum += us;
  }
  return sum;
}

/** Busy CPU time of the whole machine (all but idle and iowait) from /proc/stat, in microseconds. */
function machineBusyUs(): number | null {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    const busy = f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
    return (busy / clockTicks) * 1e6;
  } catch {
    return null;
  }
}

/**
 * Waits until the machine is quiet: busy CPU (all processes, the idle server included) below
 * `maxBusyCores` over a 1 s sample, for at most `maxWaitMs`. Returns the last sample (null: no /proc/stat).
 */
export async function waitForQuiet(maxBusyCores: number, maxWaitMs: number): Promise<number | null> {
  const until = performance.now() + maxWaitMs;
  for (;;) {
    const b0 = machineBusyUs();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 1000));
    const b1 = machineBusyUs();
    if (b0 === null || b1 === null) return null;
    const busy = (b1 - b0) / 1000 / (performance.now() - t0);
    if (busy < maxBusyCores || performance.now() >= until) return busy;
  }
}

/** Splits n into k near-equal positive parts. */
function split(n: number, k: number): number[] {
  return Array.from({ length: k }, (_, i) => Math.floor(n / k) + (i < n % k ? 1 : 0));
}

/** Runs one KV/Lease workload on worker threads and merges their results. */
export async function runKvLoad(o: KvLoadOptions): Promise<LoadResult> {
  const workers = Math.max(1, o.workers ?? Math.min(os.cpus().length, o.connections, o.clients, 4));
  const clients = split(o.clients, workers);
  const conns = split(Math.max(o.connections, workers), workers);
  const totals = o.total > 0 ? split(o.total, workers) : clients.map(() => 0);
  // Time for the workers to start and connect (and grant their leases for lease-keepalive).
  const setupMs = 300 + 50 * workers + (o.workload === 'lease-keepalive' ? 5 * o.clients : 0);
  const startAtEpochMs = Date.now() + setupMs;
  // The generator's CPU is sampled by the (otherwise idle) main thread at the edges of the measured
  // window, so that start-up and the warm-up are not counted. In total mode the window's length is
  // not known in advance: the sample ends when the workers do.
  const timed = o.total === 0;
  const serverPids = o.serverPids ?? (o.serverPid ? [o.serverPid] : []);
  const window = sampleCpuWindow(startAtEpochMs + o.warmupMs, timed ? o.durationMs : null, serverPids);
  const lane = o.lane ?? 'grpc';
  // Connection k of worker i is the (offset_i + k)-th overall, so that all endpoints get load even
  // with fewer workers than endpoints. Worker i opens laneConnections of its share.
  const connsOf = (i: number): number => laneConnections(lane, clients[i], conns[i]);
  const connOffsets = clients.map((_, i) => { let n = 0; for (let j = 0; j < i; j++) n += connsOf(j); return n; });
  const nonce = Math.floor(Math.random() * 0xffff);
  const progress = new Array<number>(workers).fill(0);
  const onProgress = o.onProgress
    ? (i: number, n: number) => { progress[i] = n; o.onProgress!(progress.reduce((a, b) => a + b, 0)); }
    : undefined;
  const results = await Promise.all(clients.map((c, i) => runWorker({
    endpoint: o.endpoint, endpoints: o.endpoints?.length ? o.endpoints : [o.endpoint], connOffset: connOffsets[i],
    lane, wsBinary: o.wsBinary ?? false, mode: o.workload, client: o.client,
    clients: c, connections: conns[i], req: o.req, seed: 0x1234 + i * 7919, workerIndex: i, workers, nonce,
    startAtEpochMs, warmupMs: o.warmupMs, durationMs: o.durationMs, total: totals[i],
    ratePerSec: o.ratePerSec > 0 ? o.ratePerSec / workers : 0, progress: onProgress !== undefined,
  }, onProgress ? (n) => onProgress(i, n) : undefined)));
  window.stop();
  const { cpuUs, wallMs, serverCpuUs, machineCpuUs } = await window.result;
  const merged = hdr.build(histogramSpec);
  for (const r of results) merged.add(hdr.decodeFromCompressedBase64(r.histogram));
  const ops = results.reduce((a, r) => a + r.ops, 0);
  const errorsByCode: Record<string, number> = {};
  for (const r of results) for (const [k, n] of Object.entries(r.errorsByCode)) errorsByCode[k] = (errorsByCode[k] ?? 0) + n;
  const measuredMs = Math.max(...results.map((r) => r.measuredMs));
  const pct = (p: number) => (ops > 0 ? merged.getValueAtPercentile(p) / 1000 : 0);
  return {
    ops,
    reqPerSec: measuredMs > 0 ? ops / (measuredMs / 1000) : 0,
    p50Ms: pct(50), p90Ms: pct(90), p99Ms: pct(99), p999Ms: pct(99.9),
    maxMs: ops > 0 ? merged.maxValue / 1000 : 0, meanMs: ops > 0 ? merged.mean / 1000 : 0,
    errors: results.reduce((a, r) => a + r.errors, 0),
    errorsByCode,
    firstError: results.find((r) => r.firstError)?.firstError ?? null,
    generatorCpu: wallMs > 0 ? cpuUs / 1000 / wallMs : 0,
    cpuUsPerReq: ops > 0 ? cpuUs / ops : 0,
    serverCpu: serverCpuUs === null || wallMs <= 0 ? null : serverCpuUs / 1000 / wallMs,
    machineCpu: machineCpuUs === null || wallMs <= 0 ? null : machineCpuUs / 1000 / wallMs,
    measuredMs,
    histogram: hdr.encodeIntoCompressedBase64(merged),
    maxBacklog: Math.max(...results.map((r) => r.maxBacklog)),
    unfinished: results.reduce((a, r) => a + r.unfinished, 0),
  };
}

/** The older entry point: Put or serializable point Range over 16-byte keys, closed loop, timed. */
export function runLoad(o: LoadOptions): Promise<LoadResult> {
  return runKvLoad({
    endpoint: o.endpoint, workload: o.workload, client: o.client, clients: o.clients, connections: o.connections,
    workers: o.workers, req: { ...defaultRequestOptions, keySpace: o.keySpace, valueSize: o.valueBytes, consistency: 's' },
    warmupMs: o.warmupMs, durationMs: o.durationMs, total: 0, ratePerSec: 0, serverPid: o.serverPid,
  });
}

/**
 * Puts every key of the key space once (so that reads hit), sequentially, with `clients` in flight,
 * over the given lane (default gRPC: the fast port of etcd-ts serves only HTTP/JSON and WebSocket).
 */
export async function preloadKeys(endpoint: string, req: RequestOptions, client: ClientKind = 'h2', clients = 64,
  lane: { lane: LaneName; wsBinary: boolean } = { lane: 'grpc', wsBinary: false }): Promise<void> {
  const r = await runWorker({
    endpoint, endpoints: [endpoint], connOffset: 0, lane: lane.lane, wsBinary: lane.wsBinary, mode: 'preload', client, clients, connections: 4, req, seed: 42, workerIndex: 0, workers: 1, nonce: 0,
    startAtEpochMs: Date.now(), warmupMs: 0, durationMs: 0, total: 0, ratePerSec: 0, progress: false,
    preloadFrom: 0, preloadTo: req.keySpace,
  });
  if (r.errors > 0) throw new Error(`preload: ${r.errors} errors, first: ${r.firstError}`);
}

/** The older preload: keys of the 16-byte layout with valueBytes values. */
export function preload(endpoint: string, keySpace: number, valueBytes: number, client: ClientKind = 'h2', clients = 64): Promise<void> {
  return preloadKeys(endpoint, { ...defaultRequestOptions, keySpace, valueSize: valueBytes }, client, clients);
}
