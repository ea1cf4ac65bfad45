// WatchResponse bytes, assembled from parts encoded once. An event is encoded once per fan-out pass
// (mvccpb.Event, with or without prev_kv) and the events of one watcher group are concatenated once; each
// watcher's response is then  header ‖ watch_id ‖ [fragment] ‖ events block, a few memcpys.
// Field numbers (etcdserverpb.WatchResponse): 1 header, 2 watch_id, 3 created, 4 canceled,
// 5 compact_revision, 6 cancel_reason, 7 fragment, 11 events (repeated mvccpb.Event).
import Long from 'long';
import { etcdserverpb, mvccpb } from '../../shared/gen/etcd';

const TAG_HEADER = 0x0a;
const TAG_WATCH_ID = 0x10;
const TAG_FRAGMENT = 0x38;
const TAG_EVENT = 0x5a;

export function varintBytes(n: number): number {
  if (n < 0) return 10; // int64 negative: two's complement, always 10 bytes
  let len = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

/** Writes a varint (int64 semantics for negatives) at pos; returns the new pos. */
export function writeVarint(out: Uint8Array, pos: number, n: number): number {
  if (n < 0) {
    let v = BigInt.asUintN(64, BigInt(n));
    for (let i = 0; i < 9; i++) {
      out[pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    out[pos++] = Number(v);
    return pos;
  }
  while (n >= 128) {
    out[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  out[pos++] = n;
  return pos;
}

/** tag ‖ length ‖ body: one length-delimited field. */
function lengthDelimited(tag: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + varintBytes(body.length) + body.length);
  out[0] = tag;
  out.set(body, writeVarint(out, 1, body.length));
  return out;
}

/** Bytes of the watch_id field (none for watch ID 0, proto3's default). */
export function watchIdFieldBytes(watchId: number): number {
  return watchId === 0 ? 0 : 1 + varintBytes(watchId);
}

/** Writes the watch_id field at pos (nothing for 0); returns the new pos. */
export function writeWatchIdField(out: Uint8Array, pos: number, watchId: number): number {
  if (watchId === 0) return pos;
  out[pos] = TAG_WATCH_ID;
  return writeVarint(out, pos + 1, watchId);
}

/** One event as a length-delimited field 11 of WatchResponse, ready to concatenate. */
export function encodeEventField(ev: mvccpb.IEvent): Uint8Array {
  return lengthDelimited(TAG_EVENT, mvccpb.Event.encode(ev).finish());
}

/** Response headers, cached per (revision, term): every watcher answered in one pass shares one. */
export class HeaderCache {
  readonly #clusterId: Long;
  readonly #memberId: Long;
  #rev = -1;
  #term = -1;
  #bytes: Uint8Array = new Uint8Array(0);

  constructor(clusterId: string, memberId: string) {
    this.#clusterId = Long.fromString(clusterId, true);
    this.#memberId = Long.fromString(memberId, true);
  }

  header(revision: number, term: number): etcdserverpb.IResponseHeader {
    return { clusterId: this.#clusterId, memberId: this.#memberId, revision, raftTerm: term };
  }

  /** Field 1 (tag, length, ResponseHeader bytes). */
  field(revision: number, term: number): Uint8Array {
    if (revision !== this.#rev || term !== this.#term) {
      this.#bytes = lengthDelimited(TAG_HEADER, etcdserverpb.ResponseHeader.encode(this.header(revision, term)).finish());
      this.#rev = revision;
      this.#term = term;
    }
    return this.#bytes;
  }
}

/** Size of an event response with these parts (so it can be encoded straight into a ring slot). */
export function eventResponseBytes(headerField: Uint8Array, watchId: number, fragment: boolean, eventsBytes: number): number {
  return headerField.length + watchIdFieldBytes(watchId) + (fragment ? 2 : 0) + eventsBytes;
}

/** Writes header ‖ watch_id ‖ [fragment] ‖ events into out (sized by eventResponseBytes). */
export function writeEventResponse(out: Uint8Array, headerField: Uint8Array, watchId: number, fragment: boolean,
  events: readonly Uint8Array[]): void {
  out.set(headerField, 0);
  let p = writeWatchIdField(out, headerField.length, watchId);
  if (fragment) {
    out[p++] = TAG_FRAGMENT;
    out[p++] = 1;
  }
  for (const e of events) {
    out.set(e, p);
    p += e.length;
  }
}

/** created (field 3) or canceled (field 4) = true, as a tag and a varint 1. */
export const FLAG_CREATED = 0x18;
export const FLAG_CANCELED = 0x20;

/** header ‖ watch_id ‖ [flag = true]: created, canceled without reason, progress (flag 0: none). */
export function flagResponseBytes(headerField: Uint8Array, watchId: number, flag: number): number {
  return headerField.length + watchIdFieldBytes(watchId) + (flag === 0 ? 0 : 2);
}

export function writeFlagResponse(out: Uint8Array, headerField: Uint8Array, watchId: number, flag: number): void {
  out.set(headerField, 0);
  let p = writeWatchIdField(out, headerField.length, watchId);
  if (flag !== 0) {
    out[p++] = flag;
    out[p] = 1;
  }
}

/** The other control responses (cancel reasons, compacted, errors): rare, so plain protobufjs encoding. */
export function encodeControlResponse(r: etcdserverpb.IWatchResponse): Uint8Array {
  return etcdserverpb.WatchResponse.encode(r).finish();
}
