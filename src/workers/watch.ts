// Watch worker: owns every watcher (see src/workers/watch/watch_core.ts and docs/ARCHITECTURE.md "Watch").
// One loop: note the doorbell, drain control messages from the main thread, fan out the revisions the
// apply worker committed since last time, run one bounded catch-up chunk, answer progress requests, then
// sleep on the doorbell unless catch-up work is left. Responses go to the main thread on a ring, encoded.
import { parentPort, workerData } from 'node:worker_threads';
import { Ring } from '../shared/ring';
import {
  CREATE_FRAGMENT, CREATE_FROM_KEY, CREATE_NO_DELETE, CREATE_NO_PUT, CREATE_PREV_KV, CREATE_PROGRESS_NOTIFY,
  readControlMsg, readCreateMsg, RESPONSE_HEADER_BYTES, W_CANCEL, W_CLOSED, W_CREATE, W_DRAINED, W_PROGRESS,
  WatchSignal, WatchWorkerInit, writeResponseHeader,
} from '../shared/watch_protocol';
import { limits } from '../shared/limits';
import { MvccStore } from './mvcc/store';
import { CreateRequest, ResponseSink, WatchCore } from './watch/watch_core';
import type { WatcherOptions } from './watch/watcher';
import { KEY_INF } from './watch/interval_index';

const init = workerData as WatchWorkerInit;
// Opened writable although it never writes: on a fresh data dir a read-only handle would not see named
// databases the apply worker is creating at the same moment (the compaction worker opens the same way).
const store = MvccStore.open(init.lmdbDir);
const inRing = new Ring(init.toWatch);
const outRing = new Ring(init.fromWatch);
const signal = new WatchSignal(init.signal);

/** Responses are encoded straight into the ring; a full ring (main thread busy) waits for space. */
class RingSink implements ResponseSink {
  readonly maxResponseBytes = outRing.maxMessageBytes - RESPONSE_HEADER_BYTES;
  reserve(streamId: number, len: number): Uint8Array {
    for (;;) {
      const slot = outRing.reserve(RESPONSE_HEADER_BYTES + len);
      if (slot) {
        writeResponseHeader(slot, streamId);
        return slot.subarray(RESPONSE_HEADER_BYTES);
      }
      outRing.notify();
      outRing.waitForSpaceSync(100);
    }
  }
  commit(): void {
    outRing.commit();
  }
}

const core = new WatchCore(store, new RingSink(), { clusterId: init.clusterId, memberId: init.memberId, maxRequestBytes: init.maxRequestBytes });

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

function onControl(m: Uint8Array): void {
  if (m[0] === W_CREATE) return core.create(toCreate(m));
  const c = readControlMsg(m);
  switch (c.type) {
    case W_CANCEL: return core.cancel(c.streamId, c.value);
    case W_PROGRESS: return core.requestProgress(c.streamId);
    case W_CLOSED: return core.closeStream(c.streamId);
    case W_DRAINED: return core.drained(c.streamId, c.value);
  }
}

function loop(): void {
  let nextTick = Date.now() + limits.watchProgressNotifyIntervalMs;
  for (;;) {
    const seen = signal.doorbell();
    core.term = signal.term();
    // Idle (no watchers): jump to the newest revision first, so that a watcher created now does not
    // make the next fan-out read every event written while nobody watched.
    if (core.watcherCount === 0) core.skipTo(signal.revision());
    inRing.drain(onControl);
    const watching = core.watcherCount > 0;
    signal.setWatching(watching); // before reading REVISION: see the signal block's comment
    // The signal word may lag our own start-up read; the store is the truth, the word only wakes us.
    const rev = Math.max(signal.revision(), core.lastRev);
    if (!watching) core.skipTo(rev);
    else if (rev > core.lastRev) core.advance(rev);
    const more = core.catchUp();
    core.answerProgress();
    const now = Date.now();
    if (now >= nextTick) {
      core.progressTick();
      nextTick = now + limits.watchProgressNotifyIntervalMs;
    }
    outRing.notify();
    if (!more) signal.wait(seen, Math.min(1000, Math.max(1, nextTick - now)));
  }
}

parentPort?.postMessage({ ready: true });
loop();
