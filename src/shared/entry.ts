// The payload of a Normal Raft entry: which request it is, the proposer's request ID (so the
// proposing member can match the applied result to the waiting client), and the request's own
// protobuf bytes exactly as the client sent them (no re-encoding on the write path).
//
//   0        1        8                16
//   +--------+--------+----------------+---------------------------+
//   | ver=1  | kind   | pad (6 bytes)  | requestId f64 | protobuf  |
//   +--------+--------+----------------+---------------------------+
//   (requestId at byte 8, protobuf from byte 16)
//
// With who proposed it (etcd's RequestHeader username and auth_revision, for the permission checks
// that run at apply, as etcd's authApplierV3): byte 2 has bit 0 set, bytes 4..7 hold the auth
// revision (u32 LE) and the body starts with the user name (u16 LE length, UTF-8) before the protobuf.
//   | ver=1 | kind | flags=1 | pad | authRev u32 | requestId f64 | userLen u16 | user | protobuf |
// Every client request is proposed with these fields (an empty user and revision 0 when the client
// gave no credentials); an entry without them is the server's own (lease expiry, publish), which
// the apply worker does not check, as etcd's requests made WithRoot.
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
  /** etcd's Auth service requests, body = the etcdserverpb request (a UserAdd's or
   * UserChangePassword's password already hashed by the proposer, in hashedPassword; Authenticate
   * carries an InternalAuthenticateRequest without the password). */
  AuthEnable = 12,
  AuthDisable = 13,
  Authenticate = 14,
  AuthUserAdd = 15,
  AuthUserDelete = 16,
  AuthUserChangePassword = 17,
  AuthUserGrantRole = 18,
  AuthUserGet = 19,
  AuthUserRevokeRole = 20,
  AuthRoleAdd = 21,
  AuthRoleGrantPermission = 22,
  AuthRoleGet = 23,
  AuthRoleRevokePermission = 24,
  AuthRoleDelete = 25,
  AuthUserList = 26,
  AuthRoleList = 27,
  /** etcd's Maintenance.Alarm (GET, ACTIVATE, DEACTIVATE), body = the etcdserverpb.AlarmRequest. */
  Alarm = 28,
}

/** The last kind: decodeEntry refuses anything above it. */
const LAST_KIND = RequestKind.Alarm;

/** Who proposed a request (etcd's RequestHeader username, auth_revision): from a token or a client
 * certificate. revision 0 means no credentials were given (etcd's empty AuthInfo). */
export interface EntryAuth {
  user: string;
  revision: number;
}

const FLAG_AUTH = 1;
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

export function encodeEntry(kind: RequestKind, requestId: number, body: Uint8Array, auth: EntryAuth | null = null): Uint8Array {
  const user = auth === null ? null : textEncoder.encode(auth.user);
  const prefix = user === null ? 0 : 2 + user.length;
  const out = new Uint8Array(ENTRY_HEADER_BYTES + prefix + body.length);
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out[0] = ENTRY_VERSION;
  out[1] = kind;
  v.setFloat64(8, requestId, true);
  if (auth !== null && user !== null) {
    assert(
      user.length <= 0xffff && Number.isInteger(auth.revision) && auth.revision >= 0 && auth.revision <= 0xffffffff,
      'entry auth fields out of range',
    );
    out[2] = FLAG_AUTH;
    v.setUint32(4, auth.revision, true);
    v.setUint16(ENTRY_HEADER_BYTES, user.length, true);
    out.set(user, ENTRY_HEADER_BYTES + 2);
  }
  out.set(body, ENTRY_HEADER_BYTES + prefix);
  return out;
}

export interface DecodedEntry {
  kind: RequestKind;
  requestId: number;
  body: Uint8Array;
  /** Who proposed it, when the proposer had credentials (a token or a client certificate). */
  auth: EntryAuth | null;
}

export function decodeEntry(data: Uint8Array): DecodedEntry {
  assert(data.length >= ENTRY_HEADER_BYTES && data[0] === ENTRY_VERSION, `bad entry header (len ${data.length}, ver ${data[0]})`);
  const kind = data[1] as RequestKind;
  assert(kind >= RequestKind.Put && kind <= LAST_KIND, `unknown request kind ${kind}`);
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const requestId = v.getFloat64(8, true);
  if ((data[2] & FLAG_AUTH) === 0) return { kind, requestId, body: data.subarray(ENTRY_HEADER_BYTES), auth: null };
  const userLen = v.getUint16(ENTRY_HEADER_BYTES, true);
  const bodyAt = ENTRY_HEADER_BYTES + 2 + userLen;
  assert(data.length >= bodyAt, 'entry auth prefix past the end');
  const user = textDecoder.decode(data.subarray(ENTRY_HEADER_BYTES + 2, bodyAt));
  return { kind, requestId, body: data.subarray(bodyAt), auth: { user, revision: v.getUint32(4, true) } };
}
