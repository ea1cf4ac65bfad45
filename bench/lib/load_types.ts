// Messages between the benchmark's main thread (load.ts) and its load workers (load_worker.ts).
// Kept apart from the worker entry point, which starts running as soon as it is imported.
import { Workload } from './kv_client';

/** The load workers' gRPC transport: raw node:http2 (lean, the default) or @grpc/grpc-js (cross-check). */
export type ClientKind = 'h2' | 'grpc-js';

export interface WorkerTask {
  endpoint: string;
  mode: Workload | 'preload';
  client: ClientKind;
  clients: number;
  connections: number;
  keySpace: number;
  valueBytes: number;
  seed: number;
  startAtEpochMs: number; // all workers of a run start together
  warmupMs: number;
  durationMs: number;
  preloadFrom?: number;   // preload: keys [preloadFrom, preloadTo)
  preloadTo?: number;
}

export interface WorkerResult {
  ops: number;          // successful requests inside the measured window
  errors: number;       // failed requests over the whole run
  errorsByCode: Record<string, number>; // gRPC code name -> count, over the whole run
  firstError: string | null;
  histogram: string;    // hdr compressed base64, microseconds
}

export const histogramSpec = { lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 } as const;

