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

function reply(m: CompactFromWorker): void {
  parentPort?.postMessage(m);
}

function step(): void {
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
