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
import { ClientKind, histogramSpec, WorkerResult, WorkerTask } from './load_types';

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

export interface LoadResult {
  ops: number;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  errorsByCode: Record<string, number>;
  firstError: string | null;
  generatorCpu: number;   // CPU seconds of this process (all threads) per wall second, over the measured window
  cpuUsPerReq: number;    // generator CPU microseconds per successful request, over the measured window
  serverCpu: number | null; // server process CPU seconds per wall second over the window (null: not measured)
  machineCpu: number | null; // busy CPU of the whole machine (all processes) over the window, in cores (null: no /proc/stat)
}

const workerPath = path.join(__dirname, 'load_worker.js');

function runWorker(task: WorkerTask): Promise<WorkerResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(workerPath, { workerData: task });
    w.once('message', (m: { ok: boolean; result?: WorkerResult; error?: string }) => {
      if (m.ok) resolve(m.result!); else reject(new Error(m.error));
    });
    w.once('error', reject);
    w.once('exit', (code) => { if (code !== 0) reject(new Error(`load worker exited with ${code}`)); });
  });
}

/** CPU time of this process (all threads) between wall-clock fromEpochMs and fromEpochMs + durationMs. */
function sampleCpuWindow(fromEpochMs: number, durationMs: number, serverPid?: number):
  Promise<{ cpuUs: number; wallMs: number; serverCpuUs: number | null; machineCpuUs: number | null }> {
  return new Promise((resolve) => {
    setTimeout(() => {
      const cpu0 = process.cpuUsage();
      const server0 = serverPid ? procCpuUs(serverPid) : null;
      const machine0 = machineBusyUs();
      const wall0 = performance.now();
      setTimeout(() => {
        const cpu = process.cpuUsage(cpu0);
        const server1 = serverPid ? procCpuUs(serverPid) : null;
        const machine1 = machineBusyUs();
        resolve({
          cpuUs: cpu.user + cpu.system, wallMs: performance.now() - wall0,
          serverCpuUs: server0 !== null && server1 !== null ? server1 - server0 : null,
          machineCpuUs: machine0 !== null && machine1 !== null ? machine1 - machine0 : null,
        });
      }, durationMs);
    }, Math.max(0, fromEpochMs - Date.now()));
  });
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

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const workers = Math.max(1, o.workers ?? Math.min(os.cpus().length, o.connections, o.clients, 4));
  const clients = split(o.clients, workers);
  const conns = split(Math.max(o.connections, workers), workers);
  // Time for the workers to start, encode their request tables and connect.
  const startAtEpochMs = Date.now() + 300 + 50 * workers + o.keySpace / 20;
  // The generator's CPU is sampled by the (otherwise idle) main thread at the edges of the measured
  // window, so that start-up, request encoding and the warm-up are not counted.
  const window = sampleCpuWindow(startAtEpochMs + o.warmupMs, o.durationMs, o.serverPid);
  const results = await Promise.all(clients.map((c, i) => runWorker({
    endpoint: o.endpoint, mode: o.workload, client: o.client, clients: c, connections: Math.min(conns[i], c),
    keySpace: o.keySpace, valueBytes: o.valueBytes, seed: 0x1234 + i * 7919,
    startAtEpochMs, warmupMs: o.warmupMs, durationMs: o.durationMs,
  })));
  const { cpuUs, wallMs, serverCpuUs, machineCpuUs } = await window;
  const merged = hdr.build(histogramSpec);
  for (const r of results) merged.add(hdr.decodeFromCompressedBase64(r.histogram));
  const ops = results.reduce((a, r) => a + r.ops, 0);
  const errorsByCode: Record<string, number> = {};
  for (const r of results) for (const [k, n] of Object.entries(r.errorsByCode)) errorsByCode[k] = (errorsByCode[k] ?? 0) + n;
  return {
    ops,
    reqPerSec: ops / (o.durationMs / 1000),
    p50Ms: merged.getValueAtPercentile(50) / 1000,
    p99Ms: merged.getValueAtPercentile(99) / 1000,
    errors: results.reduce((a, r) => a + r.errors, 0),
    errorsByCode,
    firstError: results.find((r) => r.firstError)?.firstError ?? null,
    generatorCpu: cpuUs / 1000 / wallMs,
    cpuUsPerReq: ops > 0 ? cpuUs / ops : 0,
    serverCpu: serverCpuUs === null ? null : serverCpuUs / 1000 / wallMs,
    machineCpu: machineCpuUs === null ? null : machineCpuUs / 1000 / wallMs,
  };
}

/** Puts every key of the key space once (so that point reads hit), with `clients` in flight. */
export async function preload(endpoint: string, keySpace: number, valueBytes: number, client: ClientKind = 'h2', clients = 64): Promise<void> {
  const r = await runWorker({
    endpoint, mode: 'preload', client, clients, connections: 4, keySpace, valueBytes, seed: 42,
    startAtEpochMs: Date.now(), warmupMs: 0, durationMs: 0, preloadFrom: 0, preloadTo: keySpace,
  });
  if (r.errors > 0) throw new Error(`preload: ${r.errors} errors, first: ${r.firstError}`);
}
