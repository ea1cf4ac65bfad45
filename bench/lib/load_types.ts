// Messages between the benchmark's main thread (load.ts) and its load workers (load_worker.ts).
// Kept apart from the worker entry point, which starts running as soon as it is imported.
import { KvWorkloadName, RequestOptions } from './workloads';

/**
 * The load workers' gRPC transport: 'raw' HTTP/2 frames on a TCP socket (raw_h2_client.ts: the
 * cheapest per request, the bench tool's default; unary calls only), 'h2' calls on node:http2 (the
 * older benchmarks' default, and the bidi streams of lease-keepalive), or
 * '@grpc/grpc-js' (cross-check; unary only).
 */
export type ClientKind = 'h2' | 'raw' | 'grpc-js';

/** Requests up to this size fit the HTTP/2 default stream window (64 KiB) with room for keys. */
export const rawRequestBytesMax = 48 * 1024;

/**
 * The transport a workload runs on: raw and grpc-js do unary calls only, so streams fall back to h2;
 * and the raw client sends a request in one go within the peer's initial stream window, so requests
 * near 64 KiB or more (requestBytes: the values a request carries) fall back to h2 too.
 */
export function clientFor(workload: string, requested: ClientKind, requestBytes = 0): ClientKind {
  if (workload === 'lease-keepalive' && requested !== 'h2') return 'h2';
  if (requested === 'raw' && requestBytes > rawRequestBytesMax) return 'h2';
  return requested;
}

/**
 * How the load reaches the server (lanes.ts): etcd's gRPC API, etcd's HTTP/JSON gateway
 * (POST /v3/kv/put ... on keep-alive HTTP/1.1 connections, one per client), or etcd-ts's WebSocket
 * API at /ws (pipelined: the clients of a connection are its window of requests in flight).
 */
export type LaneName = 'grpc' | 'http' | 'ws';
export const laneNames: readonly LaneName[] = ['grpc', 'http', 'ws'];

export interface WorkerTask {
  endpoint: string;
  endpoints: string[];    // connection k of this worker goes to endpoints[(connOffset + k) % n]
  connOffset: number;     // connections of the workers before this one (spreads them over the endpoints)
  lane: LaneName;
  wsBinary: boolean;      // ws lane: protobuf binary frames instead of JSON text frames
  mode: KvWorkloadName | 'preload';
  client: ClientKind;
  clients: number;        // closed loop: clients; open loop: the most requests in flight
  connections: number;    // asked for: the worker opens laneConnections(lane, clients, connections)
  req: RequestOptions;
  seed: number;
  workerIndex: number;
  workers: number;
  nonce: number;          // per run, below 2^16: keeps lease IDs of different runs apart
  startAtEpochMs: number; // all workers of a run start together
  warmupMs: number;
  durationMs: number;     // measured window; ignored when total > 0
  total: number;          // > 0: this worker sends exactly `total` measured requests (after the warm-up)
  ratePerSec: number;     // > 0: open loop at this rate (this worker's share); 0: closed loop
  progress: boolean;      // post {progress: ops} messages about twice a second
  preloadFrom?: number;   // preload: keys [preloadFrom, preloadTo)
  preloadTo?: number;
}

export interface WorkerResult {
  ops: number;          // successful requests inside the measured window
  errors: number;       // failed requests over the whole run
  errorsByCode: Record<string, number>; // gRPC code name -> count, over the whole run
  firstError: string | null;
  histogram: string;    // hdr compressed base64, microseconds
  measuredMs: number;   // measured window: durationMs, or in total mode from the warm-up's end to the last answer
  maxBacklog: number;   // open loop: most requests due but not sent for want of a free slot (0 in closed loop)
  unfinished: number;   // open loop: requests still unanswered when the drain timed out
}

export interface WorkerProgress { progress: number } // measured successful requests so far

export const histogramSpec = { lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 } as const;
