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
//
// Replies carry no request ID except synced: done answers every compact that arrived before its pass
// ended (the main thread compares compactedRevision with the revision it waits for).
import { assert } from './errors';

/** Bumped whenever a message below changes shape; both sides assert it on every message. */
export const COMPACT_PROTOCOL_VERSION = 1;

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
  | { v: V; kind: 'sync'; id: number };

/** worker -> main. */
export type CompactFromWorker =
  /** Sent once, first, when the store is open. */
  | { v: V; kind: 'ready' }
  /** A pass finished: every revision below compactedRevision is physically gone (-1 before any). */
  | { v: V; kind: 'done'; compactedRevision: number }
  /** The answer to sync id: error is the failure's message, absent when the flush succeeded. */
  | { v: V; kind: 'synced'; id: number; error?: string };

export const compactMsg: Readonly<CompactToWorker> = Object.freeze({ v: COMPACT_PROTOCOL_VERSION, kind: 'compact' });

export function syncMsg(id: number): CompactToWorker {
  assert(Number.isSafeInteger(id) && id > 0, `compaction protocol: sync id ${id} must be a positive integer`);
  return { v: COMPACT_PROTOCOL_VERSION, kind: 'sync', id };
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
      assert(isId(r.id), `compaction protocol: synced id ${String(r.id)}`);
      assert(r.error === undefined || typeof r.error === 'string', 'compaction protocol: synced error is not a string');
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
