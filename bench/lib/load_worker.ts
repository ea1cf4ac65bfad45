// Worker-thread load generator. Opens `connections` HTTP/2 connections to one endpoint and keeps
// `clients` requests in flight (closed loop: each client sends its next request when the previous
// answer arrives). Requests are pre-encoded into a table (one per key of the key space) before the
// run; keys are uniform over the key space from a seeded xorshift. Latencies of requests that start
// after the warm-up and finish before the end are recorded in microseconds in an HDR histogram,
// returned compressed to the main thread. Two transports: raw node:http2 (h2_client.ts, default)
// and @grpc/grpc-js (kv_client.ts), so that one can cross-check the other.
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import { benchKey, encodePut, encodeRange, KvConnection, Workload } from './kv_client';
import { frameAll, grpcCodeName, H2Caller, H2Connection } from './h2_client';
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

/** Sends one request for one closed-loop client and calls back with (gRPC status, message). */
type Send = (index: number) => void;
type Done = (status: number, message: string | null) => void;
interface Transport {
  ready(): Promise<void>;
  /** A sender for one client, bound once; `done` is called once per request. */
  client(i: number, done: Done): Send;
  close(): void;
}

function h2Transport(task: WorkerTask, mode: Workload, requests: Buffer[]): Transport {
  const framed = frameAll(requests);
  const conns = Array.from({ length: task.connections }, () => new H2Connection(task.endpoint));
  return {
    ready: async () => { await Promise.all(conns.map((c) => c.waitForReady(10_000))); },
    client: (i, done) => {
      const caller = new H2Caller(conns[i % conns.length], done);
      return (index) => caller.call(mode, framed[index]);
    },
    close: () => { for (const c of conns) c.close(); },
  };
}

function grpcJsTransport(task: WorkerTask, mode: Workload, requests: Buffer[]): Transport {
  const conns = Array.from({ length: task.connections }, () => new KvConnection(task.endpoint));
  return {
    ready: async () => { await Promise.all(conns.map((c) => c.waitForReady(10_000))); },
    client: (i, done) => {
      const conn = conns[i % conns.length];
      const cb = (err: { code: number; details: string } | null) => (err ? done(err.code, err.details) : done(0, null));
      return (index) => conn.call(mode, requests[index], cb);
    },
    close: () => { for (const c of conns) c.close(); },
  };
}

async function run(task: WorkerTask): Promise<WorkerResult> {
  const mode: Workload = task.mode === 'range' ? 'range' : 'put';
  const requests = encodeAll(task, mode);
  const transport = task.client === 'grpc-js' ? grpcJsTransport(task, mode, requests) : h2Transport(task, mode, requests);
  await transport.ready();
  const histogram = hdr.build(histogramSpec);
  const rand = xorshift32(task.seed);
  let ops = 0;
  let errors = 0;
  const errorCodes = new Map<number, number>();
  let firstError: string | null = null;
  let nextPreload = task.preloadFrom ?? 0;
  const preloadTo = task.preloadTo ?? 0;
  const preloading = task.mode === 'preload';

  // Wall clock only to line up the workers; performance.now() for every measurement.
  const startAt = performance.now() + Math.max(0, task.startAtEpochMs - Date.now());
  const measureFrom = startAt + task.warmupMs;
  const measureTo = measureFrom + task.durationMs;
  await new Promise((r) => setTimeout(r, Math.max(0, startAt - performance.now())));

  await new Promise<void>((resolveAll) => {
    let running = task.clients;
    // Per client: one start time slot and one bound sender; nothing is allocated per request here.
    const t0s = new Float64Array(task.clients);
    const senders: Send[] = new Array(task.clients);
    const next = (c: number): void => {
      const t0 = performance.now();
      let index: number;
      if (preloading) {
        if (nextPreload >= preloadTo) { if (--running === 0) resolveAll(); return; }
        index = nextPreload++;
      } else {
        if (t0 >= measureTo) { if (--running === 0) resolveAll(); return; }
        index = rand() % task.keySpace;
      }
      t0s[c] = t0;
      senders[c](index);
    };
    const finish = (c: number, status: number, message: string | null): void => {
      const t1 = performance.now();
      const t0 = t0s[c];
      if (status !== 0) {
        errors++;
        errorCodes.set(status, (errorCodes.get(status) ?? 0) + 1);
        firstError ??= `${grpcCodeName[status] ?? status} ${message ?? ''}`.trim();
        if (errors > 1000) { setTimeout(next, 10, c); return; } // do not spin on a dead server
      } else if (t0 >= measureFrom && t1 <= measureTo) {
        ops++;
        histogram.recordValue(Math.max(1, Math.round((t1 - t0) * 1000)));
      }
      next(c);
    };
    for (let c = 0; c < task.clients; c++) senders[c] = transport.client(c, (status, message) => finish(c, status, message));
    for (let c = 0; c < task.clients; c++) next(c);
  });
  transport.close();
  if (preloading) ops = preloadTo - (task.preloadFrom ?? 0) - errors;
  const errorsByCode: Record<string, number> = {};
  for (const [code, n] of errorCodes) errorsByCode[grpcCodeName[code] ?? String(code)] = n;
  return { ops, errors, errorsByCode, firstError, histogram: hdr.encodeIntoCompressedBase64(histogram) };
}

run(workerData as WorkerTask).then(
  (r) => parentPort!.postMessage({ ok: true, result: r }),
  (e: unknown) => parentPort!.postMessage({ ok: false, error: e instanceof Error ? e.message : String(e) }),
);
