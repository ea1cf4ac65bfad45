// Maintenance.Snapshot: the store as an etcd 3.4 snapshot file (bbolt, with etcd's buckets), streamed as
// etcd's maintenanceServer does: SnapshotResponses of 32 KiB blobs with remaining_bytes, then one more
// with remaining_bytes 0 whose blob is the SHA-256 of all the bytes before (etcdctl checks it).
//
//   main thread (this file)                          worker (src/workers/snapshot.ts)
//   root only (authMaintenanceServer)
//   new Worker({lmdbDir, file, membership}) ───────► one LMDB read transaction -> bbolt pages -> file
//                                          ◄──────── {bytes, sha256}
//   open file, unlink it (the open handle keeps it until sent)
//   read 512 KiB, send 16 chunks; when send() says the stream's queue is full, wait for its drain
//   send the SHA-256, end OK
//
// The file is what bounds memory: the worker writes the snapshot whole before the first byte goes out
// (remaining_bytes needs its size, and bbolt's meta pages at its start name pages known only at its
// end), the main thread only holds one read block. A client that goes away stops the worker or the
// sending, and the file goes with it. At most limits.snapshotsConcurrentMax at once.
import { promises as fsp, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { etcdserverpb } from '../shared/gen/etcd';
import { decodeRequest, Errors, GrpcCode } from '../shared/errors';
import { limits } from '../shared/limits';
import type { MembershipState } from '../shared/confchange';
import type { SnapshotResult, SnapshotTask } from '../shared/snapshot_protocol';
import type { CallContext, ServerStream, StreamHandler } from './net/rpc';
import { errorStatus } from './net/rpc';
import { Logger } from './log';

export interface SnapshotDeps {
  /** The store's current directory (Defragment moves it). */
  lmdbDir: () => string;
  membership: () => MembershipState;
  /** Throws for a caller that is not root when auth is enabled (AuthGate.checkAdminMaintenance). */
  checkAdmin: (ctx: CallContext) => void;
  log: Logger;
}

const tmpPrefix = 'snapshot-';
const tmpSuffix = '.tmp';

export class SnapshotService {
  readonly #d: SnapshotDeps;
  #active = 0;
  #seq = 0;

  constructor(d: SnapshotDeps) {
    this.#d = d;
  }

  readonly handler: StreamHandler = (stream, ctx) => {
    let started = false;
    const start = (body: Uint8Array): void => {
      if (started) return;
      started = true;
      this.#serve(stream, ctx, body).catch((e: unknown) => {
        const st = errorStatus(e);
        this.#d.log.warn('snapshot failed', { error: st.message });
        stream.end(st.code, st.message);
      });
    };
    return { onMessage: start, onEnd: () => start(new Uint8Array(0)) };
  };

  async #serve(stream: ServerStream, ctx: CallContext, body: Uint8Array): Promise<void> {
    this.#d.checkAdmin(ctx);
    decodeRequest(() => etcdserverpb.SnapshotRequest.decode(body));
    if (this.#active >= limits.snapshotsConcurrentMax) throw Errors.tooManyRequests();
    this.#active++;
    const memberDir = path.dirname(this.#d.lmdbDir());
    if (this.#active === 1) removeStale(memberDir);
    const file = path.join(memberDir, `${tmpPrefix}${process.pid}-${++this.#seq}${tmpSuffix}`);
    try {
      const t0 = performance.now();
      const made = await this.#make({ lmdbDir: this.#d.lmdbDir(), file, membership: this.#d.membership() }, stream);
      if (made === null) return; // the client went away
      const fh = await fsp.open(file, 'r');
      rmSync(file, { force: true });
      try {
        const t1 = performance.now();
        if (!(await send(stream, fh, made.bytes))) return;
        this.#d.log.info('sent database snapshot to client', {
          'total-bytes': made.bytes,
          revision: made.revision,
          'key-records': made.keyRecords,
          'write-ms': Math.round(made.writeMs),
          'hash-ms': Math.round(made.hashMs),
          'worker-ms': Math.round(t1 - t0),
          'send-ms': Math.round(performance.now() - t1),
        });
      } finally {
        await fh.close();
      }
      const last = etcdserverpb.SnapshotResponse.encode({ blob: made.sha256 }).finish();
      stream.send(last);
      stream.end(GrpcCode.OK);
    } finally {
      rmSync(file, { force: true });
      this.#active--;
    }
  }

  /** Runs the worker; null when the stream closed first (the worker is stopped). */
  #make(task: SnapshotTask, stream: ServerStream): Promise<Extract<SnapshotResult, { ok: unknown }>['ok'] | null> {
    return new Promise((resolve, reject) => {
      const w = new Worker(path.join(__dirname, '../workers/snapshot.js'), { workerData: task });
      let done = false;
      const finish = (f: () => void): void => {
        if (done) return;
        done = true;
        f();
      };
      // The worker is stopped before the handler removes its file, so it cannot create it afterwards.
      stream.onCancel(() =>
        finish(() => {
          w.terminate().then(
            () => resolve(null),
            () => resolve(null),
          );
        }),
      );
      w.once('message', (r: SnapshotResult) => finish(() => ('ok' in r ? resolve(r.ok) : reject(new Error(`snapshot: ${r.err}`)))));
      w.once('error', (e) => finish(() => reject(e)));
      w.once('exit', (code) => finish(() => reject(new Error(`snapshot worker exited with code ${code}`))));
    });
  }
}

/**
 * Sends bytes of fh as SnapshotResponses, waiting on the stream's drain whenever send() reports its
 * queue full. False when the stream closed before the end.
 */
async function send(stream: ServerStream, fh: fsp.FileHandle, bytes: number): Promise<boolean> {
  let wake: (() => void) | null = null;
  const waken = (): void => {
    const f = wake;
    wake = null;
    f?.();
  };
  stream.onDrain?.(waken);
  stream.onCancel(waken);
  const chunk = limits.snapshotChunkBytes;
  for (let at = 0; at < bytes;) {
    const block = Buffer.allocUnsafe(Math.min(limits.snapshotReadBytes, bytes - at));
    for (let got = 0; got < block.length;) {
      const { bytesRead } = await fh.read(block, got, block.length - got, at + got);
      if (bytesRead === 0) throw new Error(`snapshot file ended at ${at + got} of ${bytes} bytes`);
      got += bytesRead;
    }
    for (let off = 0; off < block.length; off += chunk) {
      const blob = block.subarray(off, Math.min(off + chunk, block.length));
      const remaining = bytes - (at + off + blob.length);
      const msg = etcdserverpb.SnapshotResponse.encode(remaining > 0 ? { remainingBytes: remaining, blob } : { blob }).finish();
      if (stream.closed) return false;
      if (!stream.send(msg) && stream.onDrain !== undefined) {
        if (stream.closed) return false;
        await new Promise<void>((resolve) => (wake = resolve));
        if (stream.closed) return false;
      }
    }
    at += block.length;
  }
  return true;
}

/** Snapshot files a crashed process left behind (only called when no snapshot of ours is under way). */
function removeStale(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) if (n.startsWith(tmpPrefix) && n.endsWith(tmpSuffix)) rmSync(path.join(dir, n), { force: true });
}
