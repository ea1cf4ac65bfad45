// Maintenance.Snapshot's worker: one per snapshot (src/main/snapshot.ts starts it). Writes the store, as
// of one LMDB read transaction, into a new file in etcd's bbolt format (src/shared/mvcc/snapshot_export.ts
// with the streaming page writer), then reads the file back for its SHA-256, and posts one message:
// { ok: { bytes, sha256, revision, keyRecords } } or { err: message }. The main thread streams the file.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, rmSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { BoltWriter, FileSink, firstAppendOffset } from '../shared/bbolt/writer';
import { defaultPageBytes } from '../shared/bbolt/format';
import { openDbs } from '../shared/mvcc/dbs';
import { exportBolt } from '../shared/mvcc/snapshot_export';
import { limits } from '../shared/limits';
import type { SnapshotTask, SnapshotResult } from '../shared/snapshot_protocol';

function sha256Of(file: string, bytes: number): Buffer {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(limits.snapshotWriteBufferBytes);
  const fd = openSync(file, 'r');
  try {
    for (let at = 0; at < bytes;) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, bytes - at), at);
      if (n === 0) throw new Error(`snapshot file ended at ${at} of ${bytes} bytes`);
      h.update(buf.subarray(0, n));
      at += n;
    }
  } finally {
    closeSync(fd);
  }
  return h.digest();
}

async function run(task: SnapshotTask): Promise<SnapshotResult> {
  const dbs = openDbs(task.lmdbDir, { readOnly: true });
  try {
    const sink = new FileSink(task.file, firstAppendOffset(defaultPageBytes), limits.snapshotWriteBufferBytes);
    const t0 = performance.now();
    let bytes: number;
    let summary: ReturnType<typeof exportBolt>;
    try {
      // One synchronous run: lmdb-js reads it all in one read transaction (snapshot_export.ts).
      dbs.root.resetReadTxn();
      const w = new BoltWriter(sink, defaultPageBytes);
      summary = exportBolt(dbs, w, task.membership);
      bytes = w.finish();
    } finally {
      dbs.root.resetReadTxn();
      sink.close();
    }
    const t1 = performance.now();
    const sha256 = sha256Of(task.file, bytes);
    const t2 = performance.now();
    return { ok: { bytes, sha256, revision: summary.revision, keyRecords: summary.keyRecords, writeMs: t1 - t0, hashMs: t2 - t1 } };
  } finally {
    await dbs.root.close();
  }
}

const task = workerData as SnapshotTask;
run(task).then(
  (r) => parentPort!.postMessage(r),
  (e: unknown) => {
    rmSync(task.file, { force: true });
    parentPort!.postMessage({ err: e instanceof Error ? e.message : String(e) } satisfies SnapshotResult);
  },
);
