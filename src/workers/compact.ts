// Compaction worker: physically removes revisions below the compact revision in bounded write
// transactions (limits.compactionBatchRevisions each), yielding between batches so the apply
// worker's write transactions interleave and writes are never stalled for long.
// Protocol (parentPort, rare messages): in {compact: true}; out {done: compactRevision}.
// Also in {sync: id} -> out {synced: id}: flushes the LMDB env for a state-machine snapshot.
import { parentPort, workerData } from 'node:worker_threads';
import { MvccStore } from './mvcc/store';
import { WorkerInit } from '../shared/apply_protocol';

const init = workerData as WorkerInit & { batchRevisions: number };
const store = MvccStore.open(init.lmdbDir);
let running = false;
let again = false;

function step(): void {
  const done = store.compactStep(init.batchRevisions);
  if (!done) {
    setImmediate(step);
    return;
  }
  parentPort?.postMessage({ done: store.compactedRevision });
  if (again) {
    again = false;
    setImmediate(step);
  } else running = false;
}

parentPort?.on('message', (m: { compact?: boolean; sync?: number }) => {
  if (m.sync !== undefined) {
    // mdb_env_sync is environment-wide: it flushes every transaction committed so far, including
    // the apply worker's, so the applied index read before this call is durable after it.
    store.sync().then(() => parentPort?.postMessage({ synced: m.sync }),
      (e: Error) => parentPort?.postMessage({ synced: m.sync, syncError: e.message }));
    return;
  }
  if (!m.compact) return;
  if (running) {
    again = true;
    return;
  }
  running = true;
  setImmediate(step);
});

parentPort?.postMessage({ ready: true });
