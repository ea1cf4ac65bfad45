// The main thread's end of the compaction worker's protocol (src/shared/compact_protocol.ts): every
// message to the worker is built by the protocol's constructors and every message from it is checked
// with assertCompactFromWorker before it is read.
import type { Worker } from 'node:worker_threads';
import { assertCompactFromWorker, compactMsg, CompactToWorker, syncMsg } from '../shared/compact_protocol';

function send(worker: Worker, m: Readonly<CompactToWorker>): void {
  worker.postMessage(m);
}

/** The compact revision may have moved (an applied Compaction, or start-up): the worker removes what lies below it. */
export function requestCompaction(worker: Worker): void {
  send(worker, compactMsg);
}

/** Calls onDone with the physically compacted revision after every pass the worker finishes. */
export function onCompacted(worker: Worker, onDone: (compactedRevision: number) => void): void {
  worker.on('message', (m: unknown) => {
    assertCompactFromWorker(m);
    if (m.kind === 'done') onDone(m.compactedRevision);
  });
}

let syncSeq = 0;

/** Asks the compaction worker (an event-loop thread with a writable handle) to flush the LMDB env. */
export function syncVia(worker: Worker): Promise<void> {
  const id = ++syncSeq;
  return new Promise((resolve, reject) => {
    const onMessage = (m: unknown): void => {
      assertCompactFromWorker(m);
      if (m.kind !== 'synced' || m.id !== id) return;
      worker.off('message', onMessage);
      if (m.error !== undefined) reject(new Error(m.error));
      else resolve();
    };
    worker.on('message', onMessage);
    send(worker, syncMsg(id));
  });
}
