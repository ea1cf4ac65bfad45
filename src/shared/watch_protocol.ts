// Messages between the main thread and the watch worker, and the signal block the apply worker uses to
// say "revision advanced". Fixed-size headers written with a DataView; numbers little endian;
// revisions and watch IDs are f64 (exact below 2^53, and watch IDs may be negative: -1).
//
// Signal block (one SharedArrayBuffer of WATCH_SIGNAL_BYTES, made by member.ts):
//
//   byte  view         name       writer                     meaning
//   ----  -----------  ---------  -------------------------  --------------------------------------------
//      0  BigInt64[0]  REVISION   apply worker, per batch    newest committed MVCC revision
//      8  Int32[2]     DOORBELL   apply worker, main thread  +1 whenever the watch worker has new work
//     12  Int32[3]     TERM       main thread                raft term for response headers
//     16  Int32[4]     WATCHING   watch worker               1 while it has watchers, else 0
//
// The apply worker rings only while WATCHING is 1: with no watchers, a put does not wake another
// thread. No wake-up is lost (a Dekker pair over sequentially consistent Atomics): the worker stores
// WATCHING before it loads REVISION, the apply worker stores REVISION before it loads WATCHING, so
// either the worker sees the new revision or the apply worker sees WATCHING and rings. With no
// watchers the worker just moves its last revision up to REVISION without reading any event.
//
// Why a doorbell and not a third ring: the apply worker only ever has one thing to say (the newest
// revision), so a word it overwrites is enough and can never fill up or block the write path. The watch
// worker waits on DOORBELL alone (Atomics.wait on one address), which also covers control messages from
// the main thread: both producers store their data first, then Atomics.add(DOORBELL) and notify. The worker
// loads DOORBELL before it looks for work and waits only while DOORBELL still has that value, so no wake-up
// is lost.
//
// main -> watch (ring), one message per control request:
//   CREATE   | 1 | flags | pad2 | streamId u32 @4 | watchId f64 @8 | startRevision f64 @16 |
//            | keyLen u32 @24 | endLen u32 @28 | key | end |
//            watchId: the client's, 0 = let the worker choose (etcd's AutoWatchID).
//            flags: CREATE_* bits; endLen 0 and no FROM_KEY = a single key.
//   CANCEL   | 2 | pad3 | streamId u32 @4 | watchId f64 @8 |
//   PROGRESS | 3 | pad3 | streamId u32 @4 |                         progress_request on the stream
//   CLOSED   | 4 | pad3 | streamId u32 @4 |                         the gRPC stream ended: drop its watchers
//   DRAINED  | 5 | pad3 | streamId u32 @4 | bytes f64 @8 |          the stream accepted this many more bytes
//
// watch -> main (ring):
//   RESPONSE | 1 | pad3 | streamId u32 @4 | encoded etcdserverpb.WatchResponse ...
//            ready to frame and send; the main thread never decodes it.
import { dv } from './apply_protocol';
import { assert } from './errors';

export const WATCH_SIGNAL_BYTES = 64;
export const SIG_REVISION_I64 = 0;
export const SIG_DOORBELL_I32 = 2;
export const SIG_TERM_I32 = 3;
export const SIG_WATCHING_I32 = 4;

export const W_CREATE = 1;
export const W_CANCEL = 2;
export const W_PROGRESS = 3;
export const W_CLOSED = 4;
export const W_DRAINED = 5;

export const CREATE_PREV_KV = 1;
export const CREATE_PROGRESS_NOTIFY = 2;
export const CREATE_FRAGMENT = 4;
export const CREATE_NO_PUT = 8;
export const CREATE_NO_DELETE = 16;
/** range_end was "\0": every key >= key (the end bytes are ignored). */
export const CREATE_FROM_KEY = 32;

export const CREATE_HEADER_BYTES = 32;
export const CONTROL_MSG_BYTES = 16;

export const W_RESPONSE = 1;
export const RESPONSE_HEADER_BYTES = 8;

/** Data given to the watch worker at start. */
export interface WatchWorkerInit {
  lmdbDir: string;
  clusterId: string;
  memberId: string;
  toWatch: SharedArrayBuffer;
  fromWatch: SharedArrayBuffer;
  signal: SharedArrayBuffer;
  /** The fragment size: --max-request-bytes + gRPC overhead, as etcd's watch server (sendFragments). */
  maxRequestBytes: number;
}

/** A view of the signal block, for any of the three threads. */
export class WatchSignal {
  readonly #i64: BigInt64Array;
  readonly #i32: Int32Array;
  constructor(sab: SharedArrayBuffer) {
    assert(sab.byteLength === WATCH_SIGNAL_BYTES, 'watch signal block size');
    this.#i64 = new BigInt64Array(sab);
    this.#i32 = new Int32Array(sab);
  }
  static create(): SharedArrayBuffer {
    return new SharedArrayBuffer(WATCH_SIGNAL_BYTES);
  }
  /** Apply worker: publish the newest revision, then ring if the watch worker has watchers. */
  publishRevision(rev: number): void {
    Atomics.store(this.#i64, SIG_REVISION_I64, BigInt(rev));
    if (Atomics.load(this.#i32, SIG_WATCHING_I32) !== 0) this.ring();
  }
  /** Watch worker: whether the apply worker should ring on new revisions. Store BEFORE reading REVISION. */
  setWatching(on: boolean): void {
    Atomics.store(this.#i32, SIG_WATCHING_I32, on ? 1 : 0);
  }
  revision(): number {
    return Number(Atomics.load(this.#i64, SIG_REVISION_I64));
  }
  setTerm(term: number): void {
    Atomics.store(this.#i32, SIG_TERM_I32, term);
  }
  term(): number {
    return Atomics.load(this.#i32, SIG_TERM_I32);
  }
  ring(): void {
    Atomics.add(this.#i32, SIG_DOORBELL_I32, 1);
    Atomics.notify(this.#i32, SIG_DOORBELL_I32);
  }
  doorbell(): number {
    return Atomics.load(this.#i32, SIG_DOORBELL_I32);
  }
  /** Watch worker: sleeps while DOORBELL still equals seen, at most timeoutMs. */
  wait(seen: number, timeoutMs: number): void {
    Atomics.wait(this.#i32, SIG_DOORBELL_I32, seen, timeoutMs);
  }
}

export interface CreateMsg {
  streamId: number;
  watchId: number;
  startRevision: number;
  flags: number;
  key: Uint8Array;
  end: Uint8Array;
}

export function createMsgBytes(key: Uint8Array, end: Uint8Array): number {
  return CREATE_HEADER_BYTES + key.length + end.length;
}

export function writeCreateMsg(out: Uint8Array, m: CreateMsg): void {
  assert(out.length === createMsgBytes(m.key, m.end), 'create message size');
  const v = dv(out);
  out[0] = W_CREATE;
  out[1] = m.flags;
  v.setUint32(4, m.streamId, true);
  v.setFloat64(8, m.watchId, true);
  v.setFloat64(16, m.startRevision, true);
  v.setUint32(24, m.key.length, true);
  v.setUint32(28, m.end.length, true);
  out.set(m.key, CREATE_HEADER_BYTES);
  out.set(m.end, CREATE_HEADER_BYTES + m.key.length);
}

/** Copies key and end out of the ring (the view dies after drain). */
export function readCreateMsg(m: Uint8Array): CreateMsg {
  assert(m[0] === W_CREATE && m.length >= CREATE_HEADER_BYTES, 'not a create message');
  const v = dv(m);
  const keyLen = v.getUint32(24, true);
  const endLen = v.getUint32(28, true);
  assert(m.length === CREATE_HEADER_BYTES + keyLen + endLen, 'create message size');
  return {
    flags: m[1], streamId: v.getUint32(4, true), watchId: v.getFloat64(8, true), startRevision: v.getFloat64(16, true),
    key: Buffer.from(m.subarray(CREATE_HEADER_BYTES, CREATE_HEADER_BYTES + keyLen)),
    end: Buffer.from(m.subarray(CREATE_HEADER_BYTES + keyLen)),
  };
}

/** CANCEL, PROGRESS, CLOSED, DRAINED: type, streamId, one number (watchId or bytes). */
export function writeControlMsg(out: Uint8Array, type: number, streamId: number, value: number): void {
  assert(out.length === CONTROL_MSG_BYTES && type >= W_CANCEL && type <= W_DRAINED, 'control message');
  const v = dv(out);
  out[0] = type;
  v.setUint32(4, streamId, true);
  v.setFloat64(8, value, true);
}

export function readControlMsg(m: Uint8Array): { type: number; streamId: number; value: number } {
  assert(m.length === CONTROL_MSG_BYTES, 'control message size');
  const v = dv(m);
  return { type: m[0], streamId: v.getUint32(4, true), value: v.getFloat64(8, true) };
}

export function writeResponseHeader(out: Uint8Array, streamId: number): void {
  out[0] = W_RESPONSE;
  out[1] = 0;
  out[2] = 0;
  out[3] = 0;
  dv(out).setUint32(4, streamId, true);
}

export function readResponseStreamId(m: Uint8Array): number {
  assert(m[0] === W_RESPONSE && m.length >= RESPONSE_HEADER_BYTES, 'not a watch response message');
  return dv(m).getUint32(4, true);
}
