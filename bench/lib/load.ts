// Runs one load (workload x clients) against one endpoint, spread over worker threads, and merges
// the workers' histograms into throughput and latency percentiles.
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import * as hdr from 'hdr-histogram-js';
import { Workload } from './kv_client';
import { histogramSpec, WorkerResult, WorkerTask } from './load_types';

export interface LoadOptions {
  endpoint: string;
  workload: Workload;
  clients: number;
  connections: number;  // total over all workers
  workers?: number;     // default: min(cores, connections, clients, 4)
  keySpace: number;
  valueBytes: number;
  warmupMs: number;
  durationMs: number;
}

export interface LoadResult {
  ops: number;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  firstError: string | null;
  generatorCpu: number; // CPU seconds of this process (all threads) per wall second, over the run
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

/** Splits n into k near-equal positive parts. */
function split(n: number, k: number): number[] {
  return Array.from({ length: k }, (_, i) => Math.floor(n / k) + (i < n % k ? 1 : 0));
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const workers = Math.max(1, o.workers ?? Math.min(os.cpus().length, o.connections, o.clients, 4));
  const clients = split(o.clients, workers);
  const conns = split(Math.max(o.connections, workers), workers);
  const startAtEpochMs = Date.now() + 300 + 50 * workers; // time for workers to connect
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  const results = await Promise.all(clients.map((c, i) => runWorker({
    endpoint: o.endpoint, mode: o.workload, clients: c, connections: Math.min(conns[i], c),
    keySpace: o.keySpace, valueBytes: o.valueBytes, seed: 0x1234 + i * 7919,
    startAtEpochMs, warmupMs: o.warmupMs, durationMs: o.durationMs,
  })));
  const cpu = process.cpuUsage(cpu0);
  const generatorCpu = (cpu.user + cpu.system) / 1000 / (performance.now() - wall0);
  const merged = hdr.build(histogramSpec);
  for (const r of results) merged.add(hdr.decodeFromCompressedBase64(r.histogram));
  const ops = results.reduce((a, r) => a + r.ops, 0);
  return {
    ops,
    reqPerSec: ops / (o.durationMs / 1000),
    p50Ms: merged.getValueAtPercentile(50) / 1000,
    p99Ms: merged.getValueAtPercentile(99) / 1000,
    errors: results.reduce((a, r) => a + r.errors, 0),
    firstError: results.find((r) => r.firstError)?.firstError ?? null,
    generatorCpu,
  };
}

/** Puts every key of the key space once (so that point reads hit), with `clients` in flight. */
export async function preload(endpoint: string, keySpace: number, valueBytes: number, clients = 64): Promise<void> {
  const r = await runWorker({
    endpoint, mode: 'preload', clients, connections: 4, keySpace, valueBytes, seed: 42,
    startAtEpochMs: Date.now(), warmupMs: 0, durationMs: 0, preloadFrom: 0, preloadTo: keySpace,
  });
  if (r.errors > 0) throw new Error(`preload: ${r.errors} errors, first: ${r.firstError}`);
}
