// The gRPC Watch service on the main thread: one handler per etcdserverpb.Watch/Watch stream turns
// requests into control messages for the watch worker; one loop drains the worker's ready-to-send
// responses and writes them to their streams. The main thread never decodes a response and keeps no
// watcher state: only stream IDs and flow-control credit.
//
// Flow control: the worker counts bytes it pushed per stream; this side reports (DRAINED) the bytes each
// stream accepted without backpressure, after each drain pass, or on 'drain' when ServerStream.send
// returned false. Unreported bytes past limits.watchBufferedBytesMax make the worker stop live delivery to
// that stream (its watchers then catch up from history), so a client that stops reading costs bounded memory.
import { Worker } from 'node:worker_threads';
import { Ring } from '../../shared/ring';
import { Errors, GrpcCode } from '../../shared/errors';
import { limits } from '../../shared/limits';
import {
  CONTROL_MSG_BYTES, createMsgBytes, CreateMsg, expandedBytes, expandItems, GRPC_PREFIX_BYTES, RESPONSE_HEADER_BYTES, readResponseStreamId, W_CANCEL, W_CLOSED, W_DRAINED, W_END, W_RESPONSE_PART,
  W_PROGRESS, WatchSignal, writeControlMsg, writeCreateMsg, CREATE_FROM_KEY,
} from '../../shared/watch_protocol';
import type { CallContext, ServerStream, StreamHandler } from '../net/rpc';
import { etcdserverpb } from '../../shared/gen/etcd';
import { parseWatchRequest } from './watch_request';
import type { Logger } from '../log';

interface StreamEntry {
  ss: ServerStream;
  /** Bytes written since the last DRAINED report. */
  unreported: number;
  /** send() returned false: report only after 'drain'. */
  congested: boolean;
  /** PART records of a RESPONSES record too large for the ring, until the record that ends it. */
  parts: Buffer[] | null;
}

/** Expansion buffer kept between passes (see #expandBuffer): it starts at SCRATCH_BYTES and grows to
 * the largest record seen, up to SCRATCH_BYTES_MAX; a larger record gets a buffer of its own. */
const SCRATCH_BYTES = 256 * 1024;
const SCRATCH_BYTES_MAX = 4 * 1024 * 1024;

const WORKER_FAILED = 'etcd-ts: watch worker failed; watch again from the last revision + 1';

/**
 * Sends `messages` back-to-back gRPC-framed messages: in one write when the transport can, else one by
 * one. scratch is reused after the call: sendFramed copies what it keeps, send() may keep its message
 * (so a copy).
 */
function sendFramed(ss: ServerStream, scratch: Buffer, messages: number): boolean {
  if (ss.sendFramed) return ss.sendFramed(scratch, messages);
  const framed = Buffer.from(scratch);
  let ok = true;
  for (let at = 0; at < framed.length;) {
    const len = framed.readUInt32BE(at + 1);
    ok = ss.send(framed.subarray(at + GRPC_PREFIX_BYTES, at + GRPC_PREFIX_BYTES + len)) && ok;
    at += GRPC_PREFIX_BYTES + len;
  }
  return ok;
}

/** CANCEL, PROGRESS, CLOSED or DRAINED, before it is written to the ring. */
type ControlMsg = { type: number; streamId: number; value: number };
type Pending = { create: CreateMsg } | ControlMsg;

/** A running watch worker and its two rings. */
export interface WatchWorkerHandle {
  worker: Worker;
  toWatch: Ring;
  fromWatch: Ring;
}

export interface WatchServiceDeps extends WatchWorkerHandle {
  signal: WatchSignal;
  term: () => number;
  log: Logger;
  /** Starts a fresh watch worker (fresh rings, the same signal block) after one failed. Without it, a
   * failed worker leaves Watch unavailable (every stream refused) while the rest of the server runs. */
  restart?: () => Promise<WatchWorkerHandle>;
  /** etcd's isWatchPermitted: the cancel reason refusing a watch of [key, end) for this call's
   * credentials (end "\0": every key from key on), or null when it may watch. Absent: no auth. */
  authorize?: (ctx: CallContext, key: Uint8Array, end: Uint8Array) => string | null;
  /** A response header at the current revision (a refused watch's response carries one). */
  header?: () => etcdserverpb.IResponseHeader;
}

/** The range end a from-key watch is checked with: every key from its key on. */
const FROM_KEY_END = new Uint8Array([0]);

/** Restarts allowed within watchRestartWindowMs; past that the worker is left down (a crash loop). */
const RESTARTS_MAX = 5;
const RESTART_WINDOW_MS = 60_000;

export class WatchService {
  readonly #d: WatchServiceDeps;
  /** The current worker; replaced on restart (#generation counts them). */
  #w: WatchWorkerHandle;
  #generation = 0;
  /** False while the worker is down or restarting: new streams are refused with UNAVAILABLE. */
  #available = true;
  readonly #failures: number[] = [];
  readonly #streams = new Map<number, StreamEntry>();
  readonly #queue: Pending[] = [];
  /** A DRAINED still in #queue, per stream: later credit is added to it, so the queue holds one per stream. */
  readonly #queuedDrained = new Map<number, ControlMsg>();
  #nextStreamId = 1;
  #scratch: Buffer = Buffer.allocUnsafeSlow(SCRATCH_BYTES);
  #ringScheduled = false;
  #waitingForSpace = false;
  #stopped = false;
  readonly handler: StreamHandler;

  constructor(d: WatchServiceDeps) {
    this.#d = d;
    this.#w = { worker: d.worker, toWatch: d.toWatch, fromWatch: d.fromWatch };
    this.handler = (ss, ctx) => this.#open(ss, ctx);
    this.#adopt(this.#w);
  }

  /** Watches a worker for failure and starts draining its responses. */
  #adopt(w: WatchWorkerHandle): void {
    const gen = this.#generation;
    w.worker.on('error', (e) => this.#onWorkerFailed(gen, e));
    w.worker.on('exit', (code) => this.#onWorkerFailed(gen, new Error(`watch worker exited with code ${code}`)));
    void this.#drainLoop(gen, w.fromWatch).catch((e: unknown) => this.#onWorkerFailed(gen, e as Error));
  }

  /**
   * The watch worker died (a broken invariant: an uncaught exception) or the response stream could not
   * be processed. Said loudly, and never silent for clients: every watch stream ends with UNAVAILABLE
   * (clients watch again from their last revision + 1, as after a lost connection), and a fresh worker is
   * started; new streams are refused with UNAVAILABLE until it is ready. More than RESTARTS_MAX failures
   * within RESTART_WINDOW_MS is a crash loop: Watch stays down (still refusing loudly), the rest of the
   * server keeps serving.
   */
  #onWorkerFailed(gen: number, e: Error): void {
    if (this.#stopped || gen !== this.#generation) return;
    this.#generation++;
    this.#available = false;
    this.#d.log.error('watch worker failed; ending every watch stream', { error: e.stack ?? e.message, streams: this.#streams.size });
    const entries = [...this.#streams.values()];
    this.#streams.clear();
    this.#queue.length = 0;
    this.#queuedDrained.clear();
    for (const entry of entries) {
      try {
        entry.ss.end(GrpcCode.Unavailable, WORKER_FAILED);
      } catch (err) {
        this.#d.log.error('ending a watch stream failed', { error: String(err) });
      }
    }
    void this.#w.worker.terminate().catch(() => undefined);
    const now = Date.now();
    this.#failures.push(now);
    while (this.#failures.length > 0 && this.#failures[0] < now - RESTART_WINDOW_MS) this.#failures.shift();
    if (!this.#d.restart) return;
    if (this.#failures.length > RESTARTS_MAX) {
      this.#d.log.error('watch worker keeps failing; Watch stays unavailable', { failures: this.#failures.length, windowMs: RESTART_WINDOW_MS });
      return;
    }
    void this.#restart(this.#generation);
  }

  async #restart(gen: number): Promise<void> {
    let w: WatchWorkerHandle;
    try {
      w = await this.#d.restart!();
    } catch (e) {
      if (gen === this.#generation) this.#onWorkerFailed(gen, e as Error);
      return;
    }
    if (this.#stopped || gen !== this.#generation) {
      void w.worker.terminate();
      return;
    }
    this.#w = w;
    this.#adopt(w);
    this.#available = true;
    this.#d.log.warn('watch worker restarted', { generation: gen });
  }

  /** Whether new Watch streams are served now (false while the worker is down or restarting). */
  get available(): boolean {
    return this.#available && !this.#stopped;
  }

  get streamCount(): number {
    return this.#streams.size;
  }

  /** The rings of the current watch worker (a restarted worker gets fresh ones), for metrics. */
  get rings(): { toWatch: Ring; fromWatch: Ring } {
    return this.#w;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#w.worker.terminate();
  }

  #open(ss: ServerStream, ctx: CallContext): { onMessage(m: Uint8Array): void; onEnd(): void } {
    if (!this.available) {
      ss.end(GrpcCode.Unavailable, WORKER_FAILED);
      return { onMessage: () => undefined, onEnd: () => undefined };
    }
    const id = this.#allocStreamId();
    const entry: StreamEntry = { ss, unreported: 0, congested: false, parts: null };
    this.#streams.set(id, entry);
    // The transport calls these from its close path and from microtasks: an exception there would
    // escape to the process, so each is guarded (a failure is logged; the worker is not blamed).
    ss.onCancel(() => this.#guard('watch stream close', () => this.#close(id)));
    ss.onDrain?.(() => this.#guard('watch stream drain', () => {
      if (this.#streams.get(id) !== entry) return;
      entry.congested = false;
      this.#report(id, entry);
    }));
    return {
      onMessage: (m) => this.#onRequest(id, m, ctx),
      // etcd keeps sending after the client half-closes (recvLoop returns nil on EOF): nothing to do.
      onEnd: () => undefined,
    };
  }

  #guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.#d.log.error(`${what} failed`, { error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    }
  }

  #allocStreamId(): number {
    while (this.#streams.has(this.#nextStreamId) || this.#nextStreamId === 0) this.#nextStreamId = (this.#nextStreamId + 1) >>> 0;
    const id = this.#nextStreamId;
    this.#nextStreamId = (id + 1) >>> 0;
    return id;
  }

  #close(id: number): void {
    if (!this.#streams.delete(id)) return;
    this.#queuedDrained.delete(id);
    // Queued even past watchControlQueueMax: dropping it would leak the stream's watchers in the worker.
    if (this.#queue.length > 0 || !this.#tryPush({ type: W_CLOSED, streamId: id, value: 0 })) {
      this.#queue.push({ type: W_CLOSED, streamId: id, value: 0 });
      void this.#waitForSpace();
    }
    this.#scheduleRing();
  }

  #onRequest(streamId: number, body: Uint8Array, ctx: CallContext): void {
    const entry = this.#streams.get(streamId);
    if (entry === undefined) return;
    const r = parseWatchRequest(body); // throws EtcdError: the transport ends the stream with it
    switch (r.kind) {
      case 'create': {
        const refused = this.#d.authorize?.(ctx, r.msg.key, (r.msg.flags & CREATE_FROM_KEY) !== 0 ? FROM_KEY_END : r.msg.end) ?? null;
        if (refused !== null) return this.#refuse(entry, refused);
        return this.#send({ create: { ...r.msg, streamId } });
      }
      case 'cancel': return this.#send({ type: W_CANCEL, streamId, value: r.watchId });
      case 'progress': return this.#send({ type: W_PROGRESS, streamId, value: 0 });
      case 'ignore': return;
    }
  }

  /** etcd's answer to a watch it may not create: created and canceled at once, watch ID -1. */
  #refuse(entry: StreamEntry, cancelReason: string): void {
    const resp = etcdserverpb.WatchResponse.encode({ header: this.#d.header?.(), watchId: -1, created: true, canceled: true, cancelReason }).finish();
    entry.ss.send(resp);
  }

  // ---- main -> watch ------------------------------------------------------------------------------

  #send(p: Pending): void {
    if (this.#queue.length > 0 || !this.#tryPush(p)) {
      if (this.#queue.length >= limits.watchControlQueueMax) throw Errors.tooManyRequests();
      // key and end may view the request's bytes, which the transport reuses: copy only what waits.
      if ('create' in p) p = { create: { ...p.create, key: p.create.key.slice(), end: p.create.end.slice() } };
      this.#queue.push(p);
      void this.#waitForSpace();
    }
    this.#scheduleRing();
  }

  #tryPush(p: Pending): boolean {
    const ring = this.#w.toWatch;
    if ('create' in p) {
      const slot = ring.reserve(createMsgBytes(p.create.key, p.create.end));
      if (!slot) return false;
      writeCreateMsg(slot, p.create);
      ring.commit();
      return true;
    }
    const slot = ring.reserve(CONTROL_MSG_BYTES);
    if (!slot) return false;
    writeControlMsg(slot, p.type, p.streamId, p.value);
    ring.commit();
    return true;
  }

  async #waitForSpace(): Promise<void> {
    if (this.#waitingForSpace) return;
    this.#waitingForSpace = true;
    try {
      while (this.#queue.length > 0 && !this.#stopped) {
        this.#ringNow();
        await this.#w.toWatch.waitForSpaceAsync(100);
        while (this.#queue.length > 0 && this.#tryPush(this.#queue[0])) {
          const p = this.#queue.shift()!;
          if (!('create' in p) && p.type === W_DRAINED && this.#queuedDrained.get(p.streamId) === p) this.#queuedDrained.delete(p.streamId);
        }
      }
    } finally {
      this.#waitingForSpace = false;
    }
    this.#ringNow();
  }

  /** One doorbell per event-loop turn, however many messages were pushed in it. */
  #scheduleRing(): void {
    if (this.#ringScheduled) return;
    this.#ringScheduled = true;
    queueMicrotask(() => {
      this.#ringScheduled = false;
      this.#ringNow();
    });
  }

  #ringNow(): void {
    this.#d.signal.setTerm(this.#d.term());
    this.#d.signal.ring();
  }

  // ---- watch -> main ------------------------------------------------------------------------------

  /** Drains one worker's response ring until that worker is replaced or the service stops. */
  async #drainLoop(gen: number, fromWatch: Ring): Promise<void> {
    const touched = new Set<number>();
    const onResponses = (m: Uint8Array): void => {
      const id = readResponseStreamId(m);
      const e = this.#streams.get(id);
      if (!e || e.ss.closed) return; // the stream ended; its CLOSED is on the way to the worker
      if (m[0] === W_RESPONSE_PART) {
        (e.parts ??= []).push(Buffer.from(m.subarray(RESPONSE_HEADER_BYTES)));
        return;
      }
      if (m[0] === W_END) {
        e.ss.end(m[1], Buffer.from(m.subarray(RESPONSE_HEADER_BYTES)).toString());
        this.#close(id);
        return;
      }
      // One record = every response the worker had for this stream in one pass (see watch_protocol
      // RESPONSES), expanded and gRPC-framed into the reused buffer: one transport write per stream per pass.
      let items = m.subarray(RESPONSE_HEADER_BYTES);
      if (e.parts !== null) {
        items = Buffer.concat([...e.parts, items]);
        e.parts = null;
      }
      const framed = this.#expandBuffer(expandedBytes(items));
      const messages = expandItems(items, framed);
      let ok: boolean;
      try {
        ok = sendFramed(e.ss, framed, messages);
      } catch (err) {
        // The transport failed this stream (not the worker): end it, keep serving the others.
        this.#d.log.error('watch stream send failed', { error: String(err) });
        e.ss.end(GrpcCode.Internal, String(err));
        return;
      }
      if (!ok) e.congested = true;
      e.unreported += framed.length;
      touched.add(id);
    };
    while (!this.#stopped && gen === this.#generation) {
      await fromWatch.waitAsync(1000);
      if (this.#stopped || gen !== this.#generation) return;
      let n = 0;
      for (let k; (k = fromWatch.drain(onResponses, 4096)) > 0;) n += k;
      for (const id of touched) {
        const e = this.#streams.get(id);
        if (e) this.#report(id, e);
      }
      touched.clear();
      // The worker defers its next fan-out while the ring holds output (so that revisions batch under
      // load): if it is waiting for that, tell it the ring is empty now.
      if (n > 0 && this.#d.signal.takeDeferred()) this.#scheduleRing();
      else this.#d.signal.setTerm(this.#d.term());
    }
  }

  /**
   * Room for n bytes of a record's items expanded into gRPC-framed responses (see watch_protocol
   * RESPONSES), in one buffer reused from pass to pass: the transport copies what it keeps
   * (ServerStream.sendFramed), so a pass allocates nothing. Fresh buffers per pass (tens of KiB of
   * external memory per stream per write) made V8 run a full mark-compact about every 100 ms under the
   * watch benchmark.
   */
  #expandBuffer(n: number): Buffer {
    if (n > this.#scratch.length) {
      // A stream with many watchers sends records past 256 KiB on every paced pass: keep the larger buffer.
      if (n > SCRATCH_BYTES_MAX) return Buffer.allocUnsafe(n);
      this.#scratch = Buffer.allocUnsafeSlow(Math.min(SCRATCH_BYTES_MAX, Math.max(n, 2 * this.#scratch.length)));
    }
    return this.#scratch.subarray(0, n);
  }

  /**
   * Returns credit to the worker unless the stream is congested (then 'drain' does it). Never throws
   * (it runs in the drain loop and in 'drain' handlers) and never drops credit (the worker would keep
   * the stream blocked): past watchControlQueueMax it is still queued, at most once per stream.
   */
  #report(id: number, e: StreamEntry): void {
    if (e.congested || e.unreported === 0) return;
    const bytes = e.unreported;
    e.unreported = 0;
    const queued = this.#queuedDrained.get(id);
    if (queued) {
      queued.value += bytes;
      return;
    }
    const p: ControlMsg = { type: W_DRAINED, streamId: id, value: bytes };
    if (this.#queue.length > 0 || !this.#tryPush(p)) {
      this.#queue.push(p);
      this.#queuedDrained.set(id, p);
      void this.#waitForSpace();
    }
    // Only a blocked stream waits for credit; otherwise the worker reads it on its next wake-up (see
    // watch_protocol, CREDIT), which saves it a wake-up per pass.
    if (this.#d.signal.creditWanted()) this.#scheduleRing();
  }
}
