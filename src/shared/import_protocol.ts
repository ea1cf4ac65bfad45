// The etcd-import worker's protocol (src/workers/etcd_import.ts, started by
// src/main/member/etcd_import.ts): one worker per import, no ring (it runs once, before the member
// starts). Messages are plain objects { v, kind, ...fields } checked on receipt like the compaction
// worker's (compact_protocol.ts): another version or shape is a programmer error.
//
//   main thread                                        import worker
//   new Worker(etcd_import.js, ImportWorkerInit) ────► opens the etcd database read-only and the new
//                                                      (empty) store, imports, syncs, closes both
//                                               ◄──── done counts        the store is complete and synced
//                                               ◄──── failed message     the database is refused (one line)
// A programmer error in the worker is its 'error' event instead.
import type { MembershipState } from './confchange';
import { assert } from './errors';

export const IMPORT_PROTOCOL_VERSION = 1;
type V = typeof IMPORT_PROTOCOL_VERSION;

export interface ImportWorkerInit {
  dbFile: string;
  /** The new store's directory (empty). */
  lmdbDir: string;
  applied: number;
  membership: MembershipState;
  attributes: Array<{ memberIdHex: string; name: string; clientURLs: string[] }>;
  batchRecords: number;
  /** Test switch ETCD_TS_IMPORT_KILL_AT_RECORDS (switches.ts): SIGKILL the process once this many key
   * records are committed; 0 = off. */
  killAtRecords: number;
}

export interface ImportCounts {
  keyRecords: number;
  puts: number;
  tombstones: number;
  orphanTombstones: number;
  revision: number;
  compactRevision: number;
  leases: number;
  users: number;
  roles: number;
  alarms: number;
  authEnabled: boolean;
  consistentIndex: number;
}

export type ImportFromWorker = { v: V; kind: 'done'; counts: ImportCounts } | { v: V; kind: 'failed'; message: string };

export function doneMsg(counts: ImportCounts): ImportFromWorker {
  return { v: IMPORT_PROTOCOL_VERSION, kind: 'done', counts };
}

export function failedMsg(message: string): ImportFromWorker {
  return { v: IMPORT_PROTOCOL_VERSION, kind: 'failed', message };
}

export function assertImportFromWorker(m: unknown): asserts m is ImportFromWorker {
  const o = m as Record<string, unknown>;
  assert(typeof o === 'object' && o !== null && o.v === IMPORT_PROTOCOL_VERSION, 'import worker: message of another protocol version');
  if (o.kind === 'done') assert(typeof o.counts === 'object' && o.counts !== null, 'import worker: done without counts');
  else assert(o.kind === 'failed' && typeof o.message === 'string', `import worker: unexpected message kind ${String(o.kind)}`);
}

export function assertImportWorkerInit(d: unknown): asserts d is ImportWorkerInit {
  const o = d as Record<string, unknown>;
  assert(
    typeof o === 'object' &&
      o !== null &&
      typeof o.dbFile === 'string' &&
      typeof o.lmdbDir === 'string' &&
      Number.isSafeInteger(o.applied) &&
      typeof o.membership === 'object' &&
      Array.isArray(o.attributes) &&
      Number.isSafeInteger(o.batchRecords) &&
      (o.batchRecords as number) > 0 &&
      Number.isSafeInteger(o.killAtRecords),
    'import worker: malformed workerData',
  );
}
