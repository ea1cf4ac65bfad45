// Worker-thread load generator. Opens `connections` connections to its endpoints (spread round-robin) and runs one
// workload (bench/lib/workloads.ts) on `clients` clients, in one of two load models:
//  - closed loop: each client sends its next request when the previous answer arrives;
//  - open loop (ratePerSec > 0): requests are due at a fixed rate and sent on a free client slot,
//    and latency is measured from when a request was due (coordinated omission corrected, see
//    open_loop.ts).
// Each client owns its request buffers (templates with key slots, written in place per request), so
// the hot path allocates nothing of its own. Keys are uniform over the key space from a seeded
// xorshift, or sequential. Latencies of measured requests (started after the warm-up; in a timed
// closed-loop run also finished before the end) are recorded in microseconds in an HDR histogram,
// returned compressed to the main thread. Three gRPC transports: node:http2 (h2_client.ts), HTTP/2
// frames on a socket (raw_h2_client.ts, unary only, the cheapest, the tool's default) and
// @grpc/grpc-js (kv_client.ts, unary only), so that one can cross-check another; and two more lanes
// (lanes.ts, lane_wire.ts, lane_conns.ts): etcd's HTTP/JSON gateway on keep-alive HTTP/1.1
// connections, one per client, and etcd-ts's WebSocket API, the clients of a connection pipelining
// their requests on it (each answer matched to its client by the id).
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import { KvConnection } from './kv_client';
import { RawH2Connection } from './raw_h2_client';
import { grpcCodeName, H2Caller, H2Connection, H2StreamCaller } from './h2_client';
import { histogramSpec, WorkerResult, WorkerTask } from './load_types';
import { HttpConn, unavailable, WsConn } from './lane_conns';
import { laneConnections } from './lanes';
import * as L from './lane_wire';
import { OpenLoopDriver, OpenLoopPacer } from './open_loop';
import * as W from './workloads';

function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
}

/**
 * What a client sends next: the bytes to send (a framed gRPC message, an HTTP request or a WebSocket
 * frame, its id already in place) and its method or route.
 */
interface Req { path: string; framed: Buffer }
type Done = (status: number, message: string | null) => void;
type Send = (r: Req) => void;

interface Transport {
  ready(): Promise<void>;
  /** A sender for one client, bound once; `done` is called once per request. */
  client(i: number, done: Done): Send;
  /** One request outside the measured run (lease setup and cleanup). */
  once(r: Req): Promise<{ status: number; message: string | null }>;
  close(): void;
}

function h2Transport(task: WorkerTask, streamPath: string | null): Transport {
  const conns = connect(task, (ep) => new H2Connection(ep));
  const streams: H2StreamCaller[] = [];
  return {
    ready: async () => { await Promise.all(conns.map((c) => c.waitForReady(10_000))); },
    client: (i, done) => {
      if (streamPath !== null) {
        const s = new H2StreamCaller(conns[i % conns.length], streamPath, done);
        streams.push(s);
        return (r) => s.send(r.framed);
      }
      const caller = new H2Caller(conns[i % conns.length], done);
      return (r) => caller.call(r.path, r.framed);
    },
    once: (r) => new Promise((resolve) => new H2Caller(conns[0], (status, message) => resolve({ status, message })).call(r.path, r.framed)),
    close: () => {
      for (const s of streams) s.close();
      for (const c of conns) c.close();
    },
  };
}

function grpcJsTransport(task: WorkerTask, streamPath: string | null): Transport {
  if (streamPath !== null) throw new Error('--client grpc-js runs unary workloads only');
  const conns = connect(task, (ep) => new KvConnection(ep));
  const call = (conn: KvConnection, r: Req, done: Done): void =>
    conn.callPath(r.path, r.framed.subarray(5), (err) => (err ? done(err.code, err.details) : done(0, null)));
  return {
    ready: async () => { await Promise.all(conns.map((c) => c.waitForReady(10_000))); },
    client: (i, done) => {
      const conn = conns[i % conns.length];
      return (r) => call(conn, r, done);
    },
    once: (r) => new Promise((resolve) => call(conns[0], r, (status, message) => resolve({ status, message }))),
    close: () => { for (const c of conns) c.close(); },
  };
}

function rawTransport(task: WorkerTask, streamPath: string | null): Transport {
  if (streamPath !== null) throw new Error('--client raw runs unary workloads only (use --client h2 for lease-keepalive)');
  const conns = connect(task, (ep) => new RawH2Connection(ep));
  return {
    ready: async () => { await Promise.all(conns.map((c) => c.waitForReady(10_000))); },
    client: (i, done) => {
      const conn = conns[i % conns.length];
      return (r) => conn.call(r.path, r.framed, done);
    },
    once: (r) => new Promise((resolve) => conns[0].call(r.path, r.framed, (status, message) => resolve({ status, message }))),
    close: () => { for (const c of conns) c.close(); },
  };
}

/** Opens this worker's connections: as many as its lane opens for its clients (laneConnections). */
function connect<T>(task: WorkerTask, open: (endpoint: string) => T): T[] {
  return Array.from({ length: laneConnections(task.lane, task.clients, task.connections) }, (_, k) => open(endpointOf(task, k)));
}

/** The endpoint of this worker's connection k: connections are spread over the endpoints (members). */
function endpointOf(task: WorkerTask, k: number): string {
  const eps = task.endpoints.length ? task.endpoints : [task.endpoint];
  return eps[(task.connOffset + k) % eps.length];
}

/** HTTP/JSON lane: one keep-alive HTTP/1.1 connection per client (HTTP/1.1 has one request in flight). */
function httpTransport(task: WorkerTask, streamPath: string | null): Transport {
  if (streamPath !== null) throw new Error('--lane http runs unary workloads only');
  const conns = connect(task, (ep) => new HttpConn(ep));
  return {
    ready: async () => { await Promise.all(conns.map((c) => c.ready(10_000))); },
    client: (i, done) => {
      const conn = conns[i];
      return (r) => conn.send(r.framed, done);
    },
    once: () => Promise.reject(new Error('--lane http: no requests outside the run')),
    close: () => { for (const c of conns) c.close(); },
  };
}

/**
 * WebSocket lane: `connections` WebSockets to /ws, client i on connection i mod n; a client's
 * request carries the client's index as its id (kvTemplate writes it into the client's templates;
 * a client has one request in flight, so ids are unique on a connection), and the answer (in
 * completion order) is routed back by it. A closed connection fails its requests in flight and
 * every later one (Unavailable).
 */
function wsTransport(task: WorkerTask, streamPath: string | null): Transport {
  if (streamPath !== null) throw new Error('--lane ws runs unary workloads only');
  if (task.clients > L.wsJsonIdMax) throw new Error(`--lane ws: at most ${L.wsJsonIdMax} clients per worker`);
  const conns: WsConn[] = [];
  const dones: Array<(status: number, message: string | null) => void> = new Array(task.clients);
  const inFlight = new Uint8Array(task.clients);
  const answer = (a: { id: number; code: number; message: string | null }): void => {
    if (a.id < 0 || a.id >= task.clients || inFlight[a.id] === 0) throw new Error(`--lane ws: an answer to no request in flight (id ${a.id})`);
    inFlight[a.id] = 0;
    dones[a.id](a.code, a.message);
  };
  return {
    ready: async () => {
      conns.push(...await Promise.all(connect(task, (ep) => WsConn.open(ep, '/ws', 10_000))));
      conns.forEach((c, k) => {
        c.onMessage = (p, binary) => answer(binary ? L.wsBinaryAnswer(p) : L.wsJsonAnswer(p));
        c.onClose = (reason) => {
          for (let i = k; i < task.clients; i += conns.length) {
            if (inFlight[i]) { inFlight[i] = 0; dones[i](unavailable, `WebSocket ${reason}`); }
          }
        };
      });
    },
    client: (i, done) => {
      dones[i] = done;
      const conn = conns[i % conns.length];
      return (r) => {
        inFlight[i] = 1;
        if (conn.closed !== null) { setImmediate(() => { if (inFlight[i]) { inFlight[i] = 0; done(unavailable, `WebSocket ${conn.closed}`); } }); return; }
        conn.send(r.framed);
      };
    },
    once: () => Promise.reject(new Error('--lane ws: no requests outside the run')),
    close: () => { for (const c of conns) c.close(); },
  };
}

/** Per-run lease IDs: 2^56 + n with n = nonce * 2^32 + worker * 2^26 + counter (see workloads.ts). */
class LeaseIds {
  #next: number;
  constructor(task: WorkerTask) {
    this.#next = task.nonce * 2 ** 32 + task.workerIndex * 2 ** 26;
  }
  take(): number {
    return this.#next++;
  }
}

/** A request with key slots: setKey(k, i) writes key index i into slot k, in place. */
interface Keyed extends Req { setKey(k: number, i: number): void }

type KvShape = 'put' | 'range' | 'range-prefix' | 'txn-put' | 'txn-compare' | 'delete';

/** One client's template of a KV request shape, encoded for the task's lane. */
function kvTemplate(task: WorkerTask, c: number, shape: KvShape, l: W.KeyLayout, value: Buffer): Keyed {
  const o = task.req;
  const grpc = (): W.Template => {
    switch (shape) {
      case 'put': return W.putTemplate(o, l, value);
      case 'range': case 'range-prefix': return W.rangeTemplate(o, l, shape === 'range-prefix');
      case 'txn-put': return W.txnPutTemplate(o, l, value);
      case 'txn-compare': return W.txnCompareTemplate(o, l, value);
      case 'delete': return W.deleteTemplate(o, l);
    }
  };
  if (task.lane === 'grpc') {
    const t = grpc();
    return { path: t.path, framed: t.framed, setKey: (k, i) => W.setKey(t, k, i) };
  }
  let t: L.WireTemplate;
  if (task.lane === 'ws' && task.wsBinary) t = L.wsBinaryRequest(grpc(), l);
  else {
    const body = shape === 'put' ? L.putJson(o, l, value) : shape === 'range' || shape === 'range-prefix' ? L.rangeJson(o, l, shape === 'range-prefix')
      : shape === 'txn-put' ? L.txnPutJson(o, l, value) : shape === 'txn-compare' ? L.txnCompareJson(o, l, value) : L.deleteJson(o, l);
    t = task.lane === 'http' ? L.httpRequest(body, endpointOf(task, c), l) : L.wsJsonRequest(body, l);
  }
  // On the WebSocket lane a request's id is its client's index (see wsTransport): the same for every
  // request of this template, so it is written once here rather than per send.
  if (task.lane === 'ws') L.setWireId(t, c);
  return { path: t.path, framed: t.framed, setKey: (k, i) => L.setWireKey(t, k, i) };
}

/**
 * Builds one client's request source: given a key index, fills the client's own buffers and
 * returns the request to send. Stateful per client where the workload needs it (grant → revoke).
 */
function clientOps(task: WorkerTask, c: number, rand: () => number, leases: LeaseIds, keepAliveIds: number[]): (i: number) => Req {
  const o = task.req;
  const l = W.layoutFor(o);
  const value = W.makeValue(o.valueSize, task.seed + c);
  const mode = task.mode;
  if (task.lane !== 'grpc' && (mode === 'lease-grant-revoke' || mode === 'lease-keepalive')) {
    throw new Error(`--lane ${task.lane} runs the KV workloads only, not ${mode}`);
  }
  switch (mode) {
    case 'put': case 'preload': case 'range': case 'txn-compare': case 'delete': {
      const t = kvTemplate(task, c, mode === 'preload' ? 'put' : mode, l, value);
      return (i) => { t.setKey(0, i); return t; };
    }
    case 'range-prefix': {
      const t = kvTemplate(task, c, 'range-prefix', l, value);
      return (i) => { t.setKey(0, i); t.setKey(1, i + o.rangeSpan); return t; };
    }
    case 'txn-put': {
      const t = kvTemplate(task, c, 'txn-put', l, value);
      return (i) => {
        for (let k = 0; k < o.txnOps; k++) t.setKey(k, (i + k) % o.keySpace);
        return t;
      };
    }
    case 'mixed': {
      const r = kvTemplate(task, c, 'range', l, value);
      const p = kvTemplate(task, c, 'put', l, value);
      const readBelow = Math.round(o.readRatio * 2 ** 32);
      return (i) => {
        const t = rand() < readBelow ? r : p;
        t.setKey(0, i);
        return t;
      };
    }
    case 'lease-grant-revoke': {
      const g = W.leaseGrantFrame(o.leaseTtl);
      const v = W.leaseIdFrame();
      const grant: Req = { path: W.paths.leaseGrant, framed: g.framed };
      const revoke: Req = { path: W.paths.leaseRevoke, framed: v.framed };
      let granted = false;
      return () => {
        granted = !granted;
        if (!granted) return revoke;
        const id = leases.take();
        W.writeLeaseIdVarint(g.framed, g.idAt, id);
        W.writeLeaseIdVarint(v.framed, v.idAt, id);
        return grant;
      };
    }
    case 'lease-keepalive': {
      const k = W.leaseIdFrame();
      W.writeLeaseIdVarint(k.framed, k.idAt, keepAliveIds[c]);
      const req: Req = { path: W.paths.leaseKeepAlive, framed: k.framed };
      return () => req;
    }
  }
}

/** Grants one lease per client for lease-keepalive (with client-chosen IDs); throws on failure. */
async function grantKeepAliveLeases(task: WorkerTask, t: Transport, leases: LeaseIds): Promise<number[]> {
  const ids: number[] = [];
  for (let c = 0; c < task.clients; c++) {
    const id = leases.take();
    const g = W.leaseGrantFrame(task.req.leaseTtl);
    W.writeLeaseIdVarint(g.framed, g.idAt, id);
    const r = await t.once({ path: W.paths.leaseGrant, framed: g.framed });
    if (r.status !== 0) throw new Error(`LeaseGrant for lease-keepalive: ${grpcCodeName[r.status] ?? r.status} ${r.message ?? ''}`.trim());
    ids.push(id);
  }
  return ids;
}

async function revokeLeases(t: Transport, ids: number[]): Promise<void> {
  for (const id of ids) {
    const v = W.leaseIdFrame();
    W.writeLeaseIdVarint(v.framed, v.idAt, id);
    await t.once({ path: W.paths.leaseRevoke, framed: v.framed }); // best effort: leases expire anyway
  }
}

async function run(task: WorkerTask): Promise<WorkerResult> {
  const streamPath = task.mode === 'lease-keepalive' ? W.paths.leaseKeepAlive : null;
  const transport = task.lane === 'http' ? httpTransport(task, streamPath) : task.lane === 'ws' ? wsTransport(task, streamPath)
    : task.client === 'grpc-js' ? grpcJsTransport(task, streamPath)
      : task.client === 'raw' ? rawTransport(task, streamPath) : h2Transport(task, streamPath);
  await transport.ready();
  const leases = new LeaseIds(task);
  const keepAliveIds = task.mode === 'lease-keepalive' ? await grantKeepAliveLeases(task, transport, leases) : [];
  const rand = xorshift32(task.seed);
  const ops = Array.from({ length: task.clients }, (_, c) => clientOps(task, c, rand, leases, keepAliveIds));
  const state = new RunState(task);
  const keys = keyPicker(task, rand);

  // Wall clock only to line up the workers; performance.now() for every measurement.
  const startAt = performance.now() + Math.max(0, task.startAtEpochMs - Date.now());
  state.setWindow(startAt);
  await new Promise((r) => setTimeout(r, Math.max(0, startAt - performance.now())));
  const progress = task.progress ? setInterval(() => parentPort!.postMessage({ progress: state.ops }), 500) : null;
  try {
    if (task.ratePerSec > 0 && task.mode !== 'preload') await openLoop(task, transport, ops, keys, state, startAt);
    else await closedLoop(task, transport, ops, keys, state);
  } finally {
    if (progress) clearInterval(progress);
  }
  await revokeLeases(transport, keepAliveIds);
  transport.close();
  return state.result();
}

/** The next key index: sequential from this worker's offset, or uniform random; preload walks its range. */
function keyPicker(task: WorkerTask, rand: () => number): () => number {
  const n = task.req.keySpace;
  if (task.mode === 'preload') {
    let next = task.preloadFrom ?? 0;
    return () => next++;
  }
  if (task.req.seqKeys) {
    let seq = Math.floor((task.workerIndex * n) / task.workers);
    return () => { const i = seq % n; seq++; return i; };
  }
  return () => rand() % n;
}

/** Counters and the histogram of one worker's run. */
class RunState {
  readonly histogram: hdr.Histogram;
  ops: number;
  errors: number;
  readonly errorCodes: Map<number, number>;
  firstError: string | null;
  measureFrom: number;
  measureTo: number;     // Infinity in total mode
  lastDone: number;      // end of the last measured request
  measuredIssued: number; // total mode: measured requests started
  maxBacklog: number;
  unfinished: number;
  readonly #task: WorkerTask;

  constructor(task: WorkerTask) {
    this.#task = task;
    this.histogram = hdr.build(histogramSpec);
    this.ops = 0;
    this.errors = 0;
    this.errorCodes = new Map();
    this.firstError = null;
    this.measureFrom = 0;
    this.measureTo = 0;
    this.lastDone = 0;
    this.measuredIssued = 0;
    this.maxBacklog = 0;
    this.unfinished = 0;
  }

  /** Sets the measured window from the run's start: after the warm-up, for durationMs or open-ended (total mode, preload). */
  setWindow(startAt: number): void {
    const t = this.#task;
    this.measureFrom = startAt + t.warmupMs;
    this.measureTo = t.total > 0 || t.mode === 'preload' ? Infinity : this.measureFrom + t.durationMs;
    this.lastDone = this.measureFrom;
  }

  error(status: number, message: string | null): void {
    this.errors++;
    this.errorCodes.set(status, (this.errorCodes.get(status) ?? 0) + 1);
    this.firstError ??= `${grpcCodeName[status] ?? status} ${message ?? ''}`.trim();
  }

  record(startMs: number, endMs: number): void {
    this.ops++;
    this.lastDone = endMs;
    this.histogram.recordValue(Math.max(1, Math.round((endMs - startMs) * 1000)));
  }

  result(): WorkerResult {
    const task = this.#task;
    const errorsByCode: Record<string, number> = {};
    for (const [code, n] of this.errorCodes) errorsByCode[grpcCodeName[code] ?? String(code)] = n;
    return {
      ops: this.ops, errors: this.errors, errorsByCode, firstError: this.firstError,
      histogram: hdr.encodeIntoCompressedBase64(this.histogram),
      measuredMs: task.total > 0 || task.mode === 'preload' ? Math.max(0, this.lastDone - this.measureFrom) : task.durationMs,
      maxBacklog: this.maxBacklog, unfinished: this.unfinished,
    };
  }
}

const errorsBeforeBackoff = 1000; // then a failing client waits 10 ms between requests: no spinning on a dead server

function closedLoop(task: WorkerTask, transport: Transport, ops: Array<(i: number) => Req>, keys: () => number, st: RunState): Promise<void> {
  const preloading = task.mode === 'preload';
  const preloadTo = task.preloadTo ?? 0;
  let preloadNext = task.preloadFrom ?? 0;
  return new Promise<void>((resolveAll) => {
    let running = task.clients;
    // Per client: one start time slot and one bound sender; nothing is allocated per request here.
    const t0s = new Float64Array(task.clients);
    const senders: Send[] = new Array(task.clients);
    const stop = (): void => { if (--running === 0) resolveAll(); };
    const next = (c: number): void => {
      const t0 = performance.now();
      if (preloading) {
        if (preloadNext >= preloadTo) { stop(); return; }
        preloadNext++;
      } else if (t0 >= st.measureTo) {
        stop(); return;
      } else if (task.total > 0 && t0 >= st.measureFrom) {
        if (st.measuredIssued >= task.total) { stop(); return; }
        st.measuredIssued++;
      }
      t0s[c] = t0;
      senders[c](ops[c](keys()));
    };
    const finish = (c: number, status: number, message: string | null): void => {
      const t1 = performance.now();
      const t0 = t0s[c];
      if (status !== 0) {
        st.error(status, message);
        if (st.errors > errorsBeforeBackoff) { setTimeout(next, 10, c); return; }
      } else if (t0 >= st.measureFrom && t1 <= st.measureTo) {
        st.record(t0, t1);
      }
      next(c);
    };
    for (let c = 0; c < task.clients; c++) senders[c] = transport.client(c, (status, message) => finish(c, status, message));
    for (let c = 0; c < task.clients; c++) next(c);
  });
}

const drainTimeoutMs = 30_000;

function openLoop(task: WorkerTask, transport: Transport, ops: Array<(i: number) => Req>, keys: () => number,
  st: RunState, startAt: number): Promise<void> {
  const warmupCount = Math.ceil((task.warmupMs * task.ratePerSec) / 1000);
  const pacer = task.total > 0
    ? new OpenLoopPacer(task.ratePerSec, startAt, Infinity, warmupCount + task.total)
    : new OpenLoopPacer(task.ratePerSec, startAt, st.measureTo);
  const intended = new Float64Array(task.clients);
  const senders: Send[] = new Array(task.clients);
  let inFlight = 0;
  const driver = new OpenLoopDriver(pacer, task.clients, (slot, at) => {
    intended[slot] = at;
    inFlight++;
    senders[slot](ops[slot](keys()));
  });
  return new Promise<void>((resolveAll) => {
    let timer: NodeJS.Timeout | null = null;
    let drain: NodeJS.Timeout | null = null;
    let finished = false;
    const end = (): void => {
      if (finished) return;
      finished = true;
      if (timer) clearTimeout(timer);
      if (drain) clearTimeout(drain);
      st.maxBacklog = driver.maxBacklog;
      resolveAll();
    };
    const pump = (): void => {
      timer = null;
      const now = performance.now();
      const due = driver.pump(now);
      if (driver.done && inFlight === 0) { end(); return; }
      if (driver.done && drain === null) drain = setTimeout(() => { st.unfinished = inFlight; end(); }, drainTimeoutMs);
      if (due !== Infinity) timer = setTimeout(pump, Math.max(0, due - now));
    };
    const finish = (slot: number, status: number, message: string | null): void => {
      const t1 = performance.now();
      inFlight--;
      driver.release(slot);
      if (status !== 0) st.error(status, message);
      else if (intended[slot] >= st.measureFrom) st.record(intended[slot], t1); // from when it was due
      if (!finished && timer === null) pump();
    };
    for (let c = 0; c < task.clients; c++) senders[c] = transport.client(c, (status, message) => finish(c, status, message));
    pump();
  });
}

run(workerData as WorkerTask).then(
  (r) => parentPort!.postMessage({ ok: true, result: r }),
  (e: unknown) => parentPort!.postMessage({ ok: false, error: e instanceof Error ? e.message : String(e) }),
);
