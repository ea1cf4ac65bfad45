// Messages on the two rings between the main thread and the apply worker. Fixed-size headers
// written with one reused DataView; payloads follow. All numbers little endian; indexes,
// revisions and request IDs are f64 (exact below 2^53).
//
// main -> apply (one message per committed entry):
//   0      1          8        16       24
//   | 1    | entryType | pad    | index  | term   | entry data ...
//
// apply -> main:
//   RESULT  | 2 | status | pad | grpcCode u32 @4 | requestId @8 | index @16 | revision @24 | payload ...
//           status 0: payload = encoded response; 1: payload = UTF-8 error message.
//   APPLIED | 3 | pad ... | appliedIndex @8 | revision @16 | compactRevision @24 |
//           sent after every batch: everything up to appliedIndex is applied.
//   LEASE   | 4 | op | pad | id i64 @8 | ttl f64 @16 | remaining f64 @24 |
//           one per lease granted, revoked or checkpointed, whoever proposed it, before the
//           batch's APPLIED: the main thread's lessor follows the applied lease state from these.
//   AUTH    | 6 | pad ... | UTF-8 JSON AuthMsg |
//           one per auth store change, simple token assigned or user whose tokens end, whoever
//           proposed it, before the batch's results: the main thread's auth gate follows these.
import { assert } from './errors';

export const MSG_ENTRY = 1;
export const MSG_RESULT = 2;
export const MSG_APPLIED = 3;
export const MSG_LEASE = 4;
/** main -> apply: | 5 | pad (7) | UTF-8 path of a directory holding a leader's LMDB copy |.
 * The apply worker replaces its state with the copy in one transaction (a follower installing a
 * Raft snapshot), then sends APPLIED; entries queued after it apply on top (or are skipped when
 * the copy already covers them: the copy carries its applied index). */
export const MSG_INSTALL = 5;
export const INSTALL_MSG_HEADER = 8;
export const MSG_AUTH = 6;
export const AUTH_MSG_HEADER = 8;

/** What the main thread learns from applied auth requests (rare: JSON). */
export type AuthMsg =
  /** The auth store changed (or a snapshot was installed): read it again. */
  | { type: 'changed' }
  /** An Authenticate applied: this simple token now names this user (etcd's assign at apply). */
  | { type: 'token'; user: string; token: string }
  /** The user was deleted or its password changed: its simple tokens end (etcd's invalidateUser). */
  | { type: 'invalidateUser'; user: string };

export function encodeAuthMsg(m: AuthMsg): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(m));
  const out = new Uint8Array(AUTH_MSG_HEADER + json.length);
  out[0] = MSG_AUTH;
  out.set(json, AUTH_MSG_HEADER);
  return out;
}

export function readAuthMsg(m: Uint8Array): AuthMsg {
  assert(m[0] === MSG_AUTH && m.length > AUTH_MSG_HEADER, 'not an auth message');
  return JSON.parse(new TextDecoder().decode(m.subarray(AUTH_MSG_HEADER))) as AuthMsg;
}

/**
 * Defragment (src/main/defrag.ts), in both directions: | 6 | op | pad (6) | f64 @8 | UTF-8 text @16 |.
 *   main -> apply  DEFRAG_BEGIN            from now on keep a copy of every entry message applied
 *                                          (then the compaction worker copies the environment)
 *   apply -> main  DEFRAG_RECORDING        the worker keeps them: a copy started now misses nothing
 *   main -> apply  DEFRAG_SWITCH, text=dir the compacted copy is in dir: replay the kept entries into it
 *                                          (those it already holds are skipped by their index), sync
 *                                          it, and write to it from now on
 *   apply -> main  DEFRAG_SWITCHED, f64 = the pause in ms (no entry applied meanwhile), text = dir:
 *                                          sent before any result of a later entry
 *   apply -> main  DEFRAG_FAILED, text = why (kept entries over their bound, a snapshot installed meanwhile)
 */
export const MSG_DEFRAG = 7;
export const DEFRAG_MSG_HEADER = 16;
export const enum DefragOp {
  Begin = 1,
  Recording = 2,
  Switch = 3,
  Switched = 4,
  Failed = 5,
}

export function defragMsgBytes(text: string): number {
  return DEFRAG_MSG_HEADER + Buffer.byteLength(text, 'utf8');
}

export function writeDefragMsg(out: Uint8Array, op: DefragOp, num: number, text: string): void {
  out.fill(0, 0, DEFRAG_MSG_HEADER);
  out[0] = MSG_DEFRAG;
  out[1] = op;
  dv(out).setFloat64(8, num, true);
  Buffer.from(out.buffer, out.byteOffset, out.byteLength).write(text, DEFRAG_MSG_HEADER, 'utf8');
}

export function readDefragMsg(m: Uint8Array): { op: DefragOp; num: number; text: string } {
  assert(m[0] === MSG_DEFRAG && m.length >= DEFRAG_MSG_HEADER, 'not a defrag message');
  return { op: m[1] as DefragOp, num: dv(m).getFloat64(8, true), text: Buffer.from(m.subarray(DEFRAG_MSG_HEADER)).toString('utf8') };
}

export const ENTRY_MSG_HEADER = 24;
export const RESULT_MSG_HEADER = 32;
export const APPLIED_MSG_BYTES = 32;
export const LEASE_MSG_BYTES = 32;

export const enum LeaseOp {
  Grant = 1,
  Revoke = 2,
  Checkpoint = 3,
}

export interface LeaseMsg {
  op: LeaseOp;
  id: bigint;
  ttl: number;
  remaining: number;
}

export function writeLeaseMsg(out: Uint8Array, m: LeaseMsg): void {
  const v = dv(out);
  out[0] = MSG_LEASE;
  out[1] = m.op;
  v.setBigInt64(8, m.id, true);
  v.setFloat64(16, m.ttl, true);
  v.setFloat64(24, m.remaining, true);
}

export function readLeaseMsg(m: Uint8Array): LeaseMsg {
  const v = dv(m);
  return { op: m[1] as LeaseOp, id: v.getBigInt64(8, true), ttl: v.getFloat64(16, true), remaining: v.getFloat64(24, true) };
}

export const RESULT_OK = 0;
export const RESULT_ERR = 1;

export function dv(u: Uint8Array): DataView {
  return new DataView(u.buffer, u.byteOffset, u.byteLength);
}

export function writeEntryMsg(out: Uint8Array, entryType: number, index: number, term: number, data: Uint8Array): void {
  assert(out.length === ENTRY_MSG_HEADER + data.length, 'entry message size');
  const v = dv(out);
  out[0] = MSG_ENTRY;
  out[1] = entryType;
  v.setFloat64(8, index, true);
  v.setFloat64(16, term, true);
  out.set(data, ENTRY_MSG_HEADER);
}

export interface EntryMsg {
  entryType: number;
  index: number;
  term: number;
  data: Uint8Array;
}

export function readEntryMsg(m: Uint8Array): EntryMsg {
  assert(m[0] === MSG_ENTRY && m.length >= ENTRY_MSG_HEADER, 'not an entry message');
  const v = dv(m);
  return { entryType: m[1], index: v.getFloat64(8, true), term: v.getFloat64(16, true), data: m.subarray(ENTRY_MSG_HEADER) };
}

export function writeResultHeader(out: Uint8Array, status: number, code: number, requestId: number, index: number, revision: number): void {
  const v = dv(out);
  out[0] = MSG_RESULT;
  out[1] = status;
  v.setUint32(4, code, true);
  v.setFloat64(8, requestId, true);
  v.setFloat64(16, index, true);
  v.setFloat64(24, revision, true);
}

export interface ResultMsg {
  status: number;
  code: number;
  requestId: number;
  index: number;
  revision: number;
  payload: Uint8Array;
}

export function readResultMsg(m: Uint8Array): ResultMsg {
  const v = dv(m);
  return {
    status: m[1], code: v.getUint32(4, true), requestId: v.getFloat64(8, true), index: v.getFloat64(16, true),
    revision: v.getFloat64(24, true), payload: m.subarray(RESULT_MSG_HEADER),
  };
}

export function writeAppliedMsg(out: Uint8Array, appliedIndex: number, revision: number, compactRevision: number): void {
  const v = dv(out);
  out[0] = MSG_APPLIED;
  v.setFloat64(8, appliedIndex, true);
  v.setFloat64(16, revision, true);
  v.setFloat64(24, compactRevision, true);
}

export function readAppliedMsg(m: Uint8Array): { appliedIndex: number; revision: number; compactRevision: number } {
  const v = dv(m);
  return { appliedIndex: v.getFloat64(8, true), revision: v.getFloat64(16, true), compactRevision: v.getFloat64(24, true) };
}

/** Data given to the apply, compaction and range workers at start. */
export interface WorkerInit {
  lmdbDir: string;
  /** uint64 IDs as decimal strings (bigint does not cross structured clone in every path we use). */
  clusterId: string;
  memberId: string;
  toApply?: SharedArrayBuffer;
  fromApply?: SharedArrayBuffer;
  applyBatchEntriesMax?: number;
  /** SharedHistogram (src/shared/shared_histogram.ts) the apply worker times its LMDB write
   * transactions into, for etcd_disk_backend_commit_duration_seconds; absent: not measured. */
  backendCommitHistogram?: SharedArrayBuffer;
}

/** etcd's buckets for etcd_disk_backend_commit_duration_seconds: ExponentialBuckets(0.001, 2, 14). */
export const BACKEND_COMMIT_BOUNDS_S: readonly number[] = Array.from({ length: 14 }, (_, i) => 0.001 * 2 ** i);
