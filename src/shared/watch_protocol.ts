// Messages between the main thread and the watch worker, and the signal block the main thread uses to
// say "revision advanced". Fixed-size headers written with a DataView; numbers little endian;
// revisions and watch IDs are f64 (exact below 2^53, and watch IDs may be negative: -1).
//
// Signal block (one SharedArrayBuffer of WATCH_SIGNAL_BYTES, made by member.ts):
//
//   byte  view         name       writer                     meaning
//   ----  -----------  ---------  -------------------------  --------------------------------------------
//      0  BigInt64[0]  REVISION   main thread                newest MVCC revision that is applied and
//                                                            durable (node.ts: a lone voter applies while
//                                                            its fsync runs; watchers wait for the fsync)
//      8  Int32[2]     DOORBELL   main thread                +1 whenever the watch worker has new work
//     12  Int32[3]     TERM       main thread                raft term for response headers
//     16  Int32[4]     WATCHING   watch worker               1 while it has watchers, else 0
//     20  Int32[5]     DEFERRED   watch worker sets 1,       the worker put off a fan-out because the
//                                 main thread swaps to 0     response ring still held its last pass: the
//                                                            main thread rings once it has drained it
//     24  Int32[6]     CREDIT     watch worker               1 while a stream is blocked (over
//                                                            watchBufferedBytesMax) and waits for DRAINED
//
// A new revision rings only while WATCHING is 1: with no watchers, a put does not wake another
// thread. No wake-up is lost (a Dekker pair over sequentially consistent Atomics): the worker stores
// WATCHING before it loads REVISION, the main thread stores REVISION before it loads WATCHING, so
// either the worker sees the new revision or the main thread sees WATCHING and rings. With no
// watchers the worker just moves its last revision up to REVISION without reading any event.
//
// Why a doorbell and not a second ring: there is only ever one thing to say about revisions (the newest
// durable one), so a word that is overwritten is enough and can never fill up or block the write path.
// The watch worker waits on DOORBELL alone (Atomics.wait on one address), which covers both revisions and
// control messages: the main thread stores either first, then Atomics.add(DOORBELL) and notify. The worker
// loads DOORBELL before it looks for work and waits only while DOORBELL still has that value, so no wake-up
// is lost.
//
// DRAINED (flow-control credit) is pushed after every drain pass but rings the doorbell only while
// CREDIT is 1: otherwise the credit waits in the ring for the worker's next wake-up (it drains control
// messages before it fans out, so no decision sees stale credit), and a write costs the worker one
// wake-up, not two. No wake-up is lost: the worker stores CREDIT, then looks at the ring again before
// it sleeps; the main thread pushes, then loads CREDIT.
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
//   RESPONSES | 1 | pad3 | streamId u32 @4 | items, back to back, in the stream's order:
//             FRAMED    | 0 | length u32 BE | etcdserverpb.WatchResponse |      (exactly a gRPC message frame)
//             TEMPLATE  | 1 | prefixLen u32 LE | suffixLen u32 LE | count u32 LE | prefix | suffix |
//                       | count x (idLen u8 | watch_id field bytes) |
//             everything the worker had for one stream in one pass, so the main thread does one transport
//             write per stream per pass and never decodes a response. A TEMPLATE is `count` responses
//             that differ only in watch_id (the watchers of one group, fed the same events in one fan-out
//             pass): each is prefix (header field) ‖ watch_id field ‖ suffix (the events), and the main
//             thread expands it, so the events cross between threads once per stream, not once per watcher.
//             Flow-control byte counts (DRAINED, StreamState.unackedBytes) are of the gRPC-framed bytes
//             the main thread writes (after expansion).
//   PART      | 2 | pad3 | streamId u32 @4 | bytes |
//             a leading piece of the stream's next RESPONSES record, when that record is larger than the
//             ring can carry (etcd sends one revision whole, however large, unless the watcher asked for
//             fragments): the main thread keeps the pieces and joins them with the RESPONSES that ends it.
//   END       | 3 | grpc code u8 @1 | pad2 | streamId u32 @4 | message (utf8) |
//             end the client's stream with this status, after everything before it; the worker has
//             already dropped the stream's watchers.
import { dv } from './apply_protocol';
import { assert } from './errors';

export const WATCH_SIGNAL_BYTES = 64;
export const SIG_REVISION_I64 = 0;
export const SIG_DOORBELL_I32 = 2;
export const SIG_TERM_I32 = 3;
export const SIG_WATCHING_I32 = 4;
export const SIG_DEFERRED_I32 = 5;
export const SIG_CREDIT_I32 = 6;

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
export const W_RESPONSE_PART = 2;
export const W_END = 3;
export const RESPONSE_HEADER_BYTES = 8;
/** gRPC's length prefix (compressed flag u8, length u32 big endian) before each message. */
export const GRPC_PREFIX_BYTES = 5;

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
  /** Progress notifications for progress_notify watchers, every this many ms. */
  progressNotifyIntervalMs: number;
  /** The longest a fan-out pass waits to group revisions (limits.watchBatchDelayPerResponseUs); 0: never. */
  batchMaxDelayMs: number;
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
  /** Main thread: publish the newest durable revision, then ring if the watch worker has watchers. */
  publishRevision(rev: number): void {
    Atomics.store(this.#i64, SIG_REVISION_I64, BigInt(rev));
    if (Atomics.load(this.#i32, SIG_WATCHING_I32) !== 0) this.ring();
  }
  /** Watch worker: whether new revisions should ring. Store BEFORE reading REVISION. */
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
  /** Watch worker: a fan-out waits for the main thread to drain the response ring. */
  setDeferred(): void {
    Atomics.store(this.#i32, SIG_DEFERRED_I32, 1);
  }
  /** Main thread, after draining: true (and cleared) when the worker asked to be rung. */
  takeDeferred(): boolean {
    return Atomics.load(this.#i32, SIG_DEFERRED_I32) !== 0 && Atomics.exchange(this.#i32, SIG_DEFERRED_I32, 0) !== 0;
  }
  /** Watch worker: whether a blocked stream waits for credit (DRAINED should ring). Store BEFORE the
   * last look at the control ring. */
  setCreditWanted(on: boolean): void {
    Atomics.store(this.#i32, SIG_CREDIT_I32, on ? 1 : 0);
  }
  /** Main thread, after pushing DRAINED: whether to ring for it. */
  creditWanted(): boolean {
    return Atomics.load(this.#i32, SIG_CREDIT_I32) !== 0;
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

// Response records are the hot path (one per stream per pass): plain byte stores, no DataView.
export function writeResponseHeader(out: Uint8Array, streamId: number, type: number = W_RESPONSE, code = 0): void {
  out[0] = type;
  out[1] = code;
  out[2] = 0;
  out[3] = 0;
  writeU32LE(out, 4, streamId);
}

/** Stream ID of a watch -> main record (RESPONSES, PART or END). */
export function readResponseStreamId(m: Uint8Array): number {
  assert(m[0] >= W_RESPONSE && m[0] <= W_END && m.length >= RESPONSE_HEADER_BYTES, 'not a watch response record');
  return readU32LE(m, 4);
}

export const ITEM_FRAMED = 0;
export const ITEM_TEMPLATE = 1;
export const TEMPLATE_HEADER_BYTES = 13;

/** Writes gRPC's prefix for a message of len bytes at out[at]. */
export function writeGrpcPrefix(out: Uint8Array, at: number, len: number): void {
  out[at] = 0;
  out[at + 1] = len >>> 24;
  out[at + 2] = (len >>> 16) & 0xff;
  out[at + 3] = (len >>> 8) & 0xff;
  out[at + 4] = len & 0xff;
}

/** The message length in gRPC's prefix at m[at]. */
function readGrpcLength(m: Uint8Array, at: number): number {
  return ((m[at + 1] << 24) >>> 0) + (m[at + 2] << 16) + (m[at + 3] << 8) + m[at + 4];
}

function readU32LE(m: Uint8Array, at: number): number {
  return (m[at] | (m[at + 1] << 8) | (m[at + 2] << 16) | (m[at + 3] << 24)) >>> 0;
}

export function writeU32LE(out: Uint8Array, at: number, v: number): void {
  out[at] = v & 0xff;
  out[at + 1] = (v >>> 8) & 0xff;
  out[at + 2] = (v >>> 16) & 0xff;
  out[at + 3] = v >>> 24;
}

/** Bytes the items of a RESPONSES record (without its 8-byte header) expand to, gRPC-framed. */
export function expandedBytes(items: Uint8Array): number {
  let n = 0;
  for (let at = 0; at < items.length;) {
    if (items[at] === ITEM_FRAMED) {
      const len = GRPC_PREFIX_BYTES + readGrpcLength(items, at);
      n += len;
      at += len;
      continue;
    }
    assert(items[at] === ITEM_TEMPLATE, 'watch response item');
    const prefixLen = readU32LE(items, at + 1);
    const suffixLen = readU32LE(items, at + 5);
    const count = readU32LE(items, at + 9);
    at += TEMPLATE_HEADER_BYTES + prefixLen + suffixLen;
    n += count * (GRPC_PREFIX_BYTES + prefixLen + suffixLen);
    for (let i = 0; i < count; i++) {
      n += items[at];
      at += 1 + items[at];
    }
  }
  return n;
}

/**
 * Writes the gRPC-framed responses of a RESPONSES record's items into out (sized by expandedBytes)
 * and returns how many it wrote. A template's prefix and suffix are read from the record once and
 * then copied within out, which the writing thread has in its own cache.
 */
export function expandItems(items: Uint8Array, out: Buffer): number {
  let p = 0;
  let messages = 0;
  for (let at = 0; at < items.length;) {
    if (items[at] === ITEM_FRAMED) {
      const len = GRPC_PREFIX_BYTES + readGrpcLength(items, at);
      out.set(items.subarray(at, at + len), p);
      p += len;
      at += len;
      messages++;
      continue;
    }
    const prefixLen = readU32LE(items, at + 1);
    const suffixLen = readU32LE(items, at + 5);
    const count = readU32LE(items, at + 9);
    messages += count;
    const prefixAt = at + TEMPLATE_HEADER_BYTES;
    const suffixAt = prefixAt + prefixLen;
    at = suffixAt + suffixLen;
    let firstPrefix = -1;
    let firstSuffix = -1;
    for (let i = 0; i < count; i++) {
      const idLen = items[at];
      writeGrpcPrefix(out, p, prefixLen + idLen + suffixLen);
      p += GRPC_PREFIX_BYTES;
      if (firstPrefix < 0) out.set(items.subarray(prefixAt, suffixAt), (firstPrefix = p));
      else out.copyWithin(p, firstPrefix, firstPrefix + prefixLen);
      p += prefixLen;
      for (let k = 1; k <= idLen; k++) out[p++] = items[at + k];
      at += 1 + idLen;
      if (firstSuffix < 0) out.set(items.subarray(suffixAt, suffixAt + suffixLen), (firstSuffix = p));
      else out.copyWithin(p, firstSuffix, firstSuffix + suffixLen);
      p += suffixLen;
    }
  }
  assert(p === out.length, 'watch response expansion size');
  return messages;
}
