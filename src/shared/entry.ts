// The payload of a Normal Raft entry: which request it is, the proposer's request ID (so the
// proposing member can match the applied result to the waiting client), and the request's own
// protobuf bytes exactly as the client sent them (no re-encoding on the write path).
//
//   0        1        8                16
//   +--------+--------+----------------+---------------------------+
//   | ver=1  | kind   | pad (6 bytes)  | requestId f64 | protobuf  |
//   +--------+--------+----------------+---------------------------+
//   (requestId at byte 8, protobuf from byte 16)
import { assert } from './errors';

export const ENTRY_VERSION = 1;
export const ENTRY_HEADER_BYTES = 16;

export const enum RequestKind {
  Put = 1,
  DeleteRange = 2,
  Txn = 3,
  Compact = 4,
  /** A member publishes its name and client URLs (etcd's publish at every start). JSON body. */
  MemberAttributes = 5,
  /** The leader sets the cluster version (once, at bootstrap). UTF-8 body. */
  ClusterVersion = 6,
  /** etcd 3.4's /health commits a quorum GET through the log; so does ours. No state change. */
  HealthCheck = 7,
  /** Lease requests, body = the etcdserverpb request (a grant's ID and TTL already chosen by the proposer). */
  LeaseGrant = 8,
  LeaseRevoke = 9,
  LeaseCheckpoint = 10,
  /** A committed ConfChange as the main thread decided it (JSON MembershipOp): never in the log
   * itself, only on the apply ring, in place of the ConfChange entry. */
  Membership = 11,
  /** etcd's Maintenance.Alarm (GET, ACTIVATE, DEACTIVATE), body = the etcdserverpb.AlarmRequest. */
  Alarm = 12,
}

export function encodeEntry(kind: RequestKind, requestId: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(ENTRY_HEADER_BYTES + body.length);
  out[0] = ENTRY_VERSION;
  out[1] = kind;
  new DataView(out.buffer, out.byteOffset, out.byteLength).setFloat64(8, requestId, true);
  out.set(body, ENTRY_HEADER_BYTES);
  return out;
}

export interface DecodedEntry {
  kind: RequestKind;
  requestId: number;
  body: Uint8Array;
}

export function decodeEntry(data: Uint8Array): DecodedEntry {
  assert(data.length >= ENTRY_HEADER_BYTES && data[0] === ENTRY_VERSION, `bad entry header (len ${data.length}, ver ${data[0]})`);
  const kind = data[1] as RequestKind;
  assert(kind >= RequestKind.Put && kind <= RequestKind.Alarm, `unknown request kind ${kind}`);
  const requestId = new DataView(data.buffer, data.byteOffset, data.byteLength).getFloat64(8, true);
  return { kind, requestId, body: data.subarray(ENTRY_HEADER_BYTES) };
}
