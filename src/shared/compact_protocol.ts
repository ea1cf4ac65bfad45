// The compaction worker's protocol: postMessage between the main thread (src/main/compactor.ts,
// src/main/member.ts's startWorker) and the worker (src/workers/compact.ts). Not a ring: the
// messages are rare (one per applied Compaction, one per state-machine snapshot) and small, so
// structured clone is cheap enough and a ring's fixed memory would buy nothing.
//
// Every message is a plain object { v, kind, ...fields }: v is COMPACT_PROTOCOL_VERSION (bumped on
// any change of a message's shape), kind picks the message. Each side checks what it receives with
// assertCompactToWorker / assertCompactFromWorker: a message of another version or kind, or with a
// field of the wrong type, is a programmer error (the two sides were built from different sources),
// so it fails loudly like a broken invariant.
//
//   main thread                                      compaction worker
//   ───────────                                      ─────────────────
//   new Worker(compact.js, CompactWorkerInit) ─────► opens the MvccWriter on lmdbDir
//                                             ◄───── ready                     once, store open
//   compact                                   ─────► physically removes revisions below the
//     (once at start, to finish a compaction          scheduled compact revision, in bounded
//      a restart interrupted; then after every        write transactions (batchRevisions each),
//      applied Compaction request)                    yielding between them so the apply worker's
//                                                     transactions interleave. A compact that
//                                                     arrives during a pass asks for one more pass.
//                                             ◄───── done compactedRevision   after every finished pass
//   sync id                                   ─────► mdb_env_sync: flushes every transaction
//     (id > 0, unique per request)                    committed so far, the apply worker's too
//                                             ◄───── synced id [error]       exactly one per sync
//   copy id dir                               ─────► Defragment: a compacted copy of the environment
//                                                     from one read transaction into dir (LMDB's
//                                                     mdb_env_copy2 with MDB_CP_COMPACT, in LMDB's
//                                                     thread), then one small write transaction on
//                                                     it (MvccWriter.compactCopyTo says why);
//                                                     compaction passes wait meanwhile
//                                             ◄───── copied id [error]       exactly one per copy
//   reopen id dir                             ─────► switch this worker's handle to dir (the apply
//                                                     worker writes there now) and sync it
//                                             ◄───── reopened id [error]     exactly one per reopen
//
// Replies carry no request ID except synced: done answers every compact that arrived before its pass
// ended (the main thread compares compactedRevision with the revision it waits for).
import { assert } from './errors';

/** Bumped whenever a message below changes shape; both sides assert it on every message. */
export const COMPACT_PROTOCOL_VERSION = 2;

type V = typeof COMPACT_PROTOCOL_VERSION;

/** workerData of the compaction worker (extra fields are ignored). */
export interface CompactWorkerInit {
  lmdbDir: string;
  /** Revisions removed per write transaction (limits.compactionBatchRevisions). */
  batchRevisions: number;
}

/** main -> worker. */
export type CompactToWorker =
  /** The compact revision may have moved: remove what lies below it. */
  | { v: V; kind: 'compact' }
  /** Flush the LMDB environment to disk, then answer synced with the same id. */
  | { v: V; kind: 'sync'; id: number }
  /** Defragment: write a compacted copy of the environment into dir, then answer copied. */
  | { v: V; kind: 'copy'; id: number; dir: string }
  /** Defragment: use dir from now on, sync it, then answer reopened. */
  | { v: V; kind: 'reopen'; id: number; dir: string };

/** worker -> main. */
export type CompactFromWorker =
  /** Sent once, first, when the store is open. */
  | { v: V; kind: 'ready' }
  /** A pass finished: every revision below compactedRevision is physically gone (-1 before any). */
  | { v: V; kind: 'done'; compactedRevision: number }
  /** The answer to sync id: error is the failure's message, absent when the flush succeeded. */
  | { v: V; kind: 'synced'; id: number; error?: string }
  | { v: V; kind: 'copied'; id: number; error?: string }
  | { v: V; kind: 'reopened'; id: number; error?: string };

export const compactMsg: Readonly<CompactToWorker> = Object.freeze({ v: COMPACT_PROTOCOL_VERSION, kind: 'compact' });

export function syncMsg(id: number): CompactToWorker {
  assert(Number.isSafeInteger(id) && id > 0, `compaction protocol: sync id ${id} must be a positive integer`);
  return { v: COMPACT_PROTOCOL_VERSION, kind: 'sync', id };
}

export function copyMsg(id: number, dir: string): CompactToWorker {
  assert(Number.isSafeInteger(id) && id > 0 && dir !== '', 'compaction protocol: copy');
  return { v: COMPACT_PROTOCOL_VERSION, kind: 'copy', id, dir };
}

export function reopenMsg(id: number, dir: string): CompactToWorker {
  assert(Number.isSafeInteger(id) && id > 0 && dir !== '', 'compaction protocol: reopen');
  return { v: COMPACT_PROTOCOL_VERSION, kind: 'reopen', id, dir };
}

/** The answer to copy or reopen id (kind names which). */
export function defragReplyMsg(kind: 'copied' | 'reopened', id: number, error?: string): CompactFromWorker {
  return error === undefined ? { v: COMPACT_PROTOCOL_VERSION, kind, id } : { v: COMPACT_PROTOCOL_VERSION, kind, id, error };
}

export function readyMsg(): CompactFromWorker {
  return { v: COMPACT_PROTOCOL_VERSION, kind: 'ready' };
}

export function doneMsg(compactedRevision: number): CompactFromWorker {
  return { v: COMPACT_PROTOCOL_VERSION, kind: 'done', compactedRevision };
}

export function syncedMsg(id: number, error?: string): CompactFromWorker {
  return error === undefined
    ? { v: COMPACT_PROTOCOL_VERSION, kind: 'synced', id }
    : { v: COMPACT_PROTOCOL_VERSION, kind: 'synced', id, error };
}

function header(m: unknown, dir: string): Record<string, unknown> {
  assert(typeof m === 'object' && m !== null, `compaction protocol (${dir}): not an object: ${String(m)}`);
  const r = m as Record<string, unknown>;
  assert(r.v === COMPACT_PROTOCOL_VERSION, `compaction protocol (${dir}): version ${String(r.v)}, expected ${COMPACT_PROTOCOL_VERSION}`);
  return r;
}

function isId(x: unknown): boolean {
  return typeof x === 'number' && Number.isSafeInteger(x) && x > 0;
}

/** Checks a message the worker received; throws (a programmer error) unless it is a CompactToWorker. */
export function assertCompactToWorker(m: unknown): asserts m is CompactToWorker {
  const r = header(m, 'to worker');
  switch (r.kind) {
    case 'compact':
      return;
    case 'sync':
      assert(isId(r.id), `compaction protocol: sync id ${String(r.id)}`);
      return;
    case 'copy':
    case 'reopen':
      assert(isId(r.id), `compaction protocol: ${r.kind} id ${String(r.id)}`);
      assert(typeof r.dir === 'string' && r.dir !== '', `compaction protocol: ${r.kind} dir`);
      return;
    default:
      assert(false, `compaction protocol (to worker): unknown kind ${String(r.kind)}`);
  }
}

/** Checks a message the main thread received; throws (a programmer error) unless it is a CompactFromWorker. */
export function assertCompactFromWorker(m: unknown): asserts m is CompactFromWorker {
  const r = header(m, 'from worker');
  switch (r.kind) {
    case 'ready':
      return;
    case 'done':
      assert(
        typeof r.compactedRevision === 'number' && Number.isSafeInteger(r.compactedRevision) && r.compactedRevision >= -1,
        `compaction protocol: done revision ${String(r.compactedRevision)}`,
      );
      return;
    case 'synced':
    case 'copied':
    case 'reopened':
      assert(isId(r.id), `compaction protocol: ${r.kind} id ${String(r.id)}`);
      assert(r.error === undefined || typeof r.error === 'string', `compaction protocol: ${r.kind} error is not a string`);
      return;
    default:
      assert(false, `compaction protocol (from worker): unknown kind ${String(r.kind)}`);
  }
}

/** Checks the compaction worker's workerData. */
export function assertCompactWorkerInit(d: unknown): asserts d is CompactWorkerInit {
  assert(typeof d === 'object' && d !== null, 'compaction worker: no workerData');
  const r = d as Record<string, unknown>;
  assert(typeof r.lmdbDir === 'string' && r.lmdbDir !== '', 'compaction worker: lmdbDir');
  assert(
    typeof r.batchRevisions === 'number' && Number.isSafeInteger(r.batchRevisions) && r.batchRevisions > 0,
    `compaction worker: batchRevisions ${String(r.batchRevisions)}`,
  );
}
