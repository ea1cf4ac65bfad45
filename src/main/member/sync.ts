// Flushing the state machine to disk: the main thread holds LMDB read-only, so it asks the compaction
// worker (an event-loop thread with a writable handle) to sync the environment (RaftNode's snapshots).
import type { Worker } from 'node:worker_threads';

let syncSeq = 0;

/** Asks the compaction worker to flush the LMDB env; resolves when it has. */
export function syncVia(worker: Worker): Promise<void> {
  const id = ++syncSeq;
  return new Promise((resolve, reject) => {
    const onMessage = (m: { synced?: number; syncError?: string }): void => {
      if (m.synced !== id) return;
      worker.off('message', onMessage);
      if (m.syncError) reject(new Error(m.syncError));
      else resolve();
    };
    worker.on('message', onMessage);
    worker.postMessage({ sync: id });
  });
}
