// Watch worker: owns every watcher (see src/workers/watch/watch_core.ts and docs/ARCHITECTURE.md "Watch").
// One loop: note the doorbell, drain control messages from the main thread, fan out the revisions
// applied and made durable since last time, run one bounded catch-up chunk, answer progress requests,
// then sleep on the doorbell unless catch-up work is left. Responses go to the main thread on a ring,
// encoded.
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { Ring } from '../shared/ring';
import {
  CREATE_FRAGMENT, CREATE_FROM_KEY, CREATE_NO_DELETE, CREATE_NO_PUT, CREATE_PREV_KV, CREATE_PROGRESS_NOTIFY,
  GRPC_PREFIX_BYTES, ITEM_TEMPLATE, readControlMsg, readCreateMsg, RESPONSE_HEADER_BYTES, TEMPLATE_HEADER_BYTES, W_CANCEL, W_CLOSED, W_CREATE, W_DRAINED, W_PROGRESS,
  W_END, W_RESPONSE, W_RESPONSE_PART, WatchSignal, WatchWorkerInit, writeGrpcPrefix, writeResponseHeader, writeU32LE,
} from '../shared/watch_protocol';
import { readSwitches } from '../shared/switches';
import { MvccStore } from '../shared/mvcc/store';
import { CreateRequest, ResponseSink, WatchCore } from './watch/watch_core';
import type { WatcherOptions } from './watch/watcher';
import { KEY_INF } from './watch/interval_index';
import { watchIdFieldBytes, writeWatchIdField } from './watch/encode';
import { assert } from '../shared/errors';
import { activeLmdbDir } from '../shared/store_generation';
import * as path from 'node:path';

/** Test switches (src/shared/switches.ts): read once, at load. */
const switches = readSwitches(process.env);

const init = workerData as WatchWorkerInit;
// Opened writable although it never writes: on a fresh data dir a read-only handle would not see named
// databases the apply worker is creating at the same moment (the compaction worker opens the same way).
const store = MvccStore.open(init.lmdbDir);
const inRing = new Ring(init.toWatch);
const outRing = new Ring(init.fromWatch);
const signal = new WatchSignal(init.signal);

/** A stream's staged responses are pushed early past this many bytes (bounds ring records and staging). */
const STAGE_PUSH_BYTES = 256 * 1024;
const STAGE_INITIAL_BYTES = 16 * 1024;
/** Staging buffers kept for reuse after a flush (the rest are left to GC: idle streams cost nothing). */
const STAGE_FREE_MAX = 32;

interface Staging {
  buf: Buffer;
  len: number;
}

/**
 * Responses are staged per stream, gRPC-framed, during one loop iteration, and pushed to the ring by
 * flush() as one record per stream: the main thread then does one copy and one transport write per
 * stream per pass instead of one per watcher response. A full ring (main thread busy) waits for space.
 */
class RingSink implements ResponseSink {
  /** gRPC's (and etcd's send) limit: a 31-bit message length. Larger records travel in PARTs. */
  readonly maxResponseBytes = 2 ** 31 - 1;
  readonly #staged = new Map<number, Staging>();
  readonly #free: Buffer[] = [];

  reserve(streamId: number, len: number): Uint8Array {
    const out = this.#stage(streamId, GRPC_PREFIX_BYTES + len);
    writeGrpcPrefix(out, 0, len); // ITEM_FRAMED: the item is the gRPC frame itself
    return out.subarray(GRPC_PREFIX_BYTES);
  }

  /** Claims len bytes at the end of the stream's staged items. */
  #stage(streamId: number, len: number): Buffer {
    let st = this.#staged.get(streamId);
    if (st === undefined) {
      st = { buf: this.#free.pop() ?? Buffer.allocUnsafe(STAGE_INITIAL_BYTES), len: 0 };
      this.#staged.set(streamId, st);
    } else if (st.len > 0 && st.len + len > STAGE_PUSH_BYTES) {
      this.#push(streamId, st);
    }
    const at = st.len;
    const end = at + len;
    if (end > st.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(end, 2 * st.buf.length));
      st.buf.copy(grown, 0, 0, st.len);
      st.buf = grown;
    }
    st.len = end;
    return st.buf.subarray(at, end);
  }

  commit(): void {
    // Staged: flush() publishes.
  }

  template(streamId: number, prefix: Uint8Array, suffix: Uint8Array, watchIds: readonly number[]): void {
    let len = TEMPLATE_HEADER_BYTES + prefix.length + suffix.length;
    for (const id of watchIds) len += 1 + watchIdFieldBytes(id);
    const out = this.#stage(streamId, len);
    let p = 0;
    out[p] = ITEM_TEMPLATE;
    writeU32LE(out, p + 1, prefix.length);
    writeU32LE(out, p + 5, suffix.length);
    writeU32LE(out, p + 9, watchIds.length);
    p += TEMPLATE_HEADER_BYTES;
    out.set(prefix, p);
    out.set(suffix, (p += prefix.length));
    p += suffix.length;
    for (const id of watchIds) {
      const end = writeWatchIdField(out, p + 1, id); // idLen u8 | watch_id field
      out[p] = end - p - 1;
      p = end;
    }
    assert(p === len, 'template size');
  }

  /** Pushes every stream's staged responses, one ring record each. */
  flush(): void {
    if (this.#staged.size === 0) return;
    for (const [id, st] of this.#staged) {
      if (st.len > 0) this.#push(id, st); // empty after end() pushed it
      if (this.#free.length < STAGE_FREE_MAX && st.buf.length <= STAGE_PUSH_BYTES) this.#free.push(st.buf);
    }
    this.#staged.clear();
  }

  end(streamId: number, code: number, message: string): void {
    const st = this.#staged.get(streamId);
    if (st !== undefined && st.len > 0) this.#push(streamId, st); // what it was sent before, first
    const msg = Buffer.from(message);
    this.#record(streamId, W_END, code, msg, 0, msg.length);
  }

  /** One RESPONSES record, or PART records then RESPONSES when larger than the ring carries. */
  #push(streamId: number, st: Staging): void {
    const piece = outRing.maxMessageBytes - RESPONSE_HEADER_BYTES;
    let at = 0;
    for (; st.len - at > piece; at += piece) this.#record(streamId, W_RESPONSE_PART, 0, st.buf, at, at + piece);
    this.#record(streamId, W_RESPONSE, 0, st.buf, at, st.len);
    st.len = 0;
  }

  #record(streamId: number, type: number, code: number, bytes: Uint8Array, from: number, to: number): void {
    for (;;) {
      const slot = outRing.reserve(RESPONSE_HEADER_BYTES + to - from);
      if (slot) {
        writeResponseHeader(slot, streamId, type, code);
        slot.set(bytes.subarray(from, to), RESPONSE_HEADER_BYTES);
        outRing.commit();
        return;
      }
      outRing.notify();
      outRing.waitForSpaceSync(100);
    }
  }
}

const sink = new RingSink();
const core = new WatchCore(store, sink, { clusterId: init.clusterId, memberId: init.memberId, maxRequestBytes: init.maxRequestBytes });

/** One shared options object per flag combination: idle watchers should cost little memory. */
const optionsByFlags: WatcherOptions[] = Array.from({ length: 32 }, (_, f) => Object.freeze({
  prevKv: (f & CREATE_PREV_KV) !== 0, noPut: (f & CREATE_NO_PUT) !== 0, noDelete: (f & CREATE_NO_DELETE) !== 0,
  progressNotify: (f & CREATE_PROGRESS_NOTIFY) !== 0, fragment: (f & CREATE_FRAGMENT) !== 0,
}));

function toCreate(m: Uint8Array): CreateRequest {
  const c = readCreateMsg(m);
  const f = c.flags;
  return {
    streamId: c.streamId, watchId: c.watchId, key: c.key as Buffer, startRevision: c.startRevision,
    end: f & CREATE_FROM_KEY ? KEY_INF : c.end.length === 0 ? null : (c.end as Buffer),
    opts: optionsByFlags[f & 31],
  };
}

/**
 * Fault injection for test/integration/watch_crash.test.ts: a watch on exactly this key makes the worker
 * throw, as a broken invariant would, so the test sees what clients see when the worker dies.
 */
const faultKey = switches.watchFaultKey;

const memberDir = path.dirname(init.lmdbDir);

/**
 * Defragment moved the store to a new directory (src/main/defrag.ts): a revision announced past what
 * this handle holds can only come from there (a revision is announced once applied), so switch to the
 * store the main thread recorded as active (it does so before announcing any later revision) before
 * reading up to rev. Checked before every pass, every create, and with the
 * revision a fan-out reads up to.
 */
function followDefrag(rev = signal.revision()): void {
  if (rev <= store.revision) return;
  const dir = activeLmdbDir(memberDir);
  if (dir !== store.dir) void store.reopen(dir);
}

function onControl(m: Uint8Array): void {
  if (m[0] === W_CREATE) {
    followDefrag();
    const c = toCreate(m);
    if (faultKey !== null && faultKey.equals(c.key)) throw new Error('watch worker: injected fault (ETCD_TS_WATCH_FAULT_KEY)');
    return core.create(c);
  }
  const c = readControlMsg(m);
  switch (c.type) {
    case W_CANCEL: return core.cancel(c.streamId, c.value);
    case W_PROGRESS: return core.requestProgress(c.streamId);
    case W_CLOSED: return core.closeStream(c.streamId);
    case W_DRAINED: return core.drained(c.streamId, c.value);
  }
}

function loop(): void {
  const progressMs = init.progressNotifyIntervalMs;
  let nextTick = performance.now() + progressMs;
  // Fan-out pacing (limits.watchBatchDelayPerResponseUs): no pass starts before paceUntil.
  let paceUntil = 0;
  for (;;) {
    const seen = signal.doorbell();
    core.term = signal.term();
    // Idle (no watchers): jump to the newest revision first, so that a watcher created now does not
    // make the next fan-out read every event written while nobody watched.
    followDefrag();
    if (core.watcherCount === 0) core.skipTo(signal.revision());
    inRing.drain(onControl);
    const watching = core.watcherCount > 0;
    signal.setWatching(watching); // before reading REVISION: see the signal block's comment
    // The signal word may lag our own start-up read; the store is the truth, the word only wakes us.
    const rev = Math.max(signal.revision(), core.lastRev);
    followDefrag(rev);
    // Two ways revisions are grouped under load, so that each watcher gets one response for several:
    // * paced: a pass that sent n responses is followed by a gap of n × watchBatchDelayPerResponseUs
    //   (capped by --watch-batch-max-delay) before the next pass; a quiet server sends at once.
    // * deferred: while the main thread has not yet taken our last pass off the ring, new revisions
    //   accumulate (bounded by one main-thread turn). The DEFERRED word asks the main thread to ring the
    //   doorbell once it has drained the ring (no polling; the short wait below is only a safety net).
    // etcd's watchers get the same grouping, later and unbounded, when they fall behind (victims).
    let deferred = false;
    let pacedMs = 0;
    let now = performance.now();
    if (!watching) core.skipTo(rev);
    else if (rev > core.lastRev) {
      if (now < paceUntil) pacedMs = paceUntil - now;
      else if (outRing.isEmpty()) paceUntil = fanOut(rev, now);
      else {
        // Flag first, then look again: either we see the ring empty or the main thread sees the flag.
        signal.setDeferred();
        if (outRing.isEmpty()) paceUntil = fanOut(rev, now);
        else deferred = true;
      }
    }
    const more = core.catchUp();
    core.answerProgress();
    now = performance.now();
    if (now >= nextTick) {
      core.progressTick();
      nextTick = now + progressMs;
    }
    sink.flush();
    outRing.notify();
    // Credit (DRAINED) rings the doorbell only while a stream waits for it: flag first, then look at the
    // ring again, so that either we see the message or the main thread sees the flag.
    const wantCredit = core.blockedStreamCount > 0;
    signal.setCreditWanted(wantCredit);
    if (wantCredit && !inRing.isEmpty()) continue;
    if (more) continue;
    const idleMs = Math.min(1000, Math.max(1, nextTick - now));
    signal.wait(seen, pacedMs > 0 ? Math.min(pacedMs, idleMs) : deferred ? 2 : idleMs);
  }
}

/**
 * For test/integration/watch_batch.test.ts: a per-response pacing cost large enough that a single
 * watcher's pass is followed by the whole --watch-batch-max-delay, so the test does not depend on timing.
 */
const batchUsPerResponse = switches.watchBatchUsPerResponse;

/** Fans out up to rev; returns when the next pass may start (see limits.watchBatchDelayPerResponseUs). */
function fanOut(rev: number, now: number): number {
  const before = core.stats.responses;
  core.advance(rev);
  const gapMs = ((core.stats.responses - before) * batchUsPerResponse) / 1000;
  return now + Math.min(init.batchMaxDelayMs, gapMs);
}

parentPort?.postMessage({ ready: true });
loop();
