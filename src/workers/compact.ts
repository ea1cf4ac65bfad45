// Compaction worker: physically removes revisions below the compact revision in bounded write
// transactions (limits.compactionBatchRevisions each), yielding between batches so the apply
// worker's write transactions interleave and writes are never stalled for long. It also flushes
// the LMDB environment for a state-machine snapshot. Protocol (typed messages, asserted on
// receipt): src/shared/compact_protocol.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { MvccWriter } from './mvcc/writer';
import { assertNever } from '../shared/errors';
import {
  assertCompactToWorker,
  assertCompactWorkerInit,
  CompactFromWorker,
  CompactWorkerInit,
  defragReplyMsg,
  doneMsg,
  readyMsg,
  syncedMsg,
} from '../shared/compact_protocol';

const data: unknown = workerData;
assertCompactWorkerInit(data);
const init: CompactWorkerInit = data;
const store = MvccWriter.open(init.lmdbDir);
let running = false;
let again = false;
/** A Defragment copy is being written: compaction passes wait (their deletes would not be in the copy's
 * replay, and the copy is cheaper without them running). */
let copying = false;

function reply(m: CompactFromWorker): void {
  parentPort?.postMessage(m);
}

function step(): void {
  if (copying) {
    setTimeout(step, 10);
    return;
  }
  const done = store.compactStep(init.batchRevisions);
  if (!done) {
    setImmediate(step);
    return;
  }
  reply(doneMsg(store.compactedRevision));
  if (again) {
    again = false;
    setImmediate(step);
  } else running = false;
}

parentPort?.on('message', (m: unknown) => {
  assertCompactToWorker(m);
  switch (m.kind) {
    case 'sync': {
      // mdb_env_sync is environment-wide: it flushes every transaction committed so far, including
      // the apply worker's, so the applied index read before this call is durable after it.
      const id = m.id;
      store.sync().then(
        () => reply(syncedMsg(id)),
        (e: Error) => reply(syncedMsg(id, e.message)),
      );
      return;
    }
    case 'copy': {
      const { id, dir } = m;
      copying = true;
      store
        .compactCopyTo(dir)
        .then(
          () => reply(defragReplyMsg('copied', id)),
          (e: Error) => reply(defragReplyMsg('copied', id, e.message)),
        )
        .finally(() => {
          copying = false;
        });
      return;
    }
    case 'reopen': {
      const { id, dir } = m;
      // mdb_env_sync of the new environment flushes the copy and everything the apply worker wrote
      // into it since the switch: after this, the main thread may point the data dir at it.
      store
        .reopen(dir)
        .then(() => store.sync())
        .then(
          () => reply(defragReplyMsg('reopened', id)),
          (e: Error) => reply(defragReplyMsg('reopened', id, e.message)),
        );
      return;
    }
    case 'compact':
      if (running) {
        again = true;
        return;
      }
      running = true;
      setImmediate(step);
      return;
    default:
      assertNever(m);
  }
});

reply(readyMsg());
