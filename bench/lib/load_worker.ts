// Worker-thread load generator. Opens `connections` HTTP/2 connections to one endpoint and keeps
// `clients` requests in flight (closed loop: each client sends its next request when the previous
// answer arrives). Requests are pre-encoded; keys are uniform over the key space from a seeded
// xorshift. Latencies of requests that start after the warm-up and finish before the end are
// recorded in microseconds in an HDR histogram, returned compressed to the main thread.
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import { benchKey, encodePut, encodeRange, KvConnection, Workload } from './kv_client';
import { histogramSpec, WorkerResult, WorkerTask } from './load_types';

function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
}

function encodeAll(task: WorkerTask, mode: Workload): Buffer[] {
  const rand = xorshift32(task.seed ^ 0x5bd1e995);
  const value = Buffer.alloc(task.valueBytes);
  for (let i = 0; i < value.length; i++) value[i] = 97 + (rand() % 26);
  const out: Buffer[] = new Array(task.keySpace);
  for (let i = 0; i < task.keySpace; i++) {
    out[i] = mode === 'put' ? encodePut(benchKey(i), value) : encodeRange(benchKey(i), true);
  }
  return out;
}

async function run(task: WorkerTask): Promise<WorkerResult> {
  const conns = Array.from({ length: task.connections }, () => new KvConnection(task.endpoint));
  await Promise.all(conns.map((c) => c.waitForReady(10_000)));
  const mode: Workload = task.mode === 'range' ? 'range' : 'put';
  const requests = encodeAll(task, mode);
  const histogram = hdr.build(histogramSpec);
  const rand = xorshift32(task.seed);
  let ops = 0;
  let errors = 0;
  let firstError: string | null = null;
  let nextPreload = task.preloadFrom ?? 0;

  // Wall clock only to line up the workers; performance.now() for every measurement.
  const startAt = performance.now() + Math.max(0, task.startAtEpochMs - Date.now());
  const measureFrom = startAt + task.warmupMs;
  const measureTo = measureFrom + task.durationMs;
  await new Promise((r) => setTimeout(r, Math.max(0, startAt - performance.now())));

  await new Promise<void>((resolveAll) => {
    let running = task.clients;
    const loop = (conn: KvConnection) => {
      const t0 = performance.now();
      let index: number;
      if (task.mode === 'preload') {
        if (nextPreload >= (task.preloadTo ?? 0)) { if (--running === 0) resolveAll(); return; }
        index = nextPreload++;
      } else {
        if (t0 >= measureTo) { if (--running === 0) resolveAll(); return; }
        index = rand() % task.keySpace;
      }
      conn.call(mode, requests[index], (err) => {
        const t1 = performance.now();
        if (err) {
          errors++;
          firstError ??= `${err.code} ${err.details}`;
        } else if (t0 >= measureFrom && t1 <= measureTo) {
          ops++;
          histogram.recordValue(Math.max(1, Math.round((t1 - t0) * 1000)));
        }
        if (err && errors > 1000) { setTimeout(() => loop(conn), 10); return; } // do not spin on a dead server
        loop(conn);
      });
    };
    for (let i = 0; i < task.clients; i++) loop(conns[i % conns.length]);
  });
  for (const c of conns) c.close();
  if (task.mode === 'preload') ops = (task.preloadTo ?? 0) - (task.preloadFrom ?? 0) - errors;
  return { ops, errors, firstError, histogram: hdr.encodeIntoCompressedBase64(histogram) };
}

run(workerData as WorkerTask).then(
  (r) => parentPort!.postMessage({ ok: true, result: r }),
  (e: unknown) => parentPort!.postMessage({ ok: false, error: e instanceof Error ? e.message : String(e) }),
);
