// What etcd 3.4 keeps in each bucket of its bbolt backend, as keys and values: encoders for the
// snapshot writer, decoders for the import of an etcd data dir. Each layout is from etcd 3.4's Go
// source, named next to it. Revisions, versions and TTLs stay below 2^53 and are JS numbers; IDs
// (lease, member) are full 64-bit and bigints.
//
//   bucket            key                                   value
//   key               revision bytes (below)                mvccpb.KeyValue (a tombstone: only its key)
//   meta              "consistent_index"                    u64 BE, the applied Raft index
//                     "scheduledCompactRev"                 revision bytes of (rev, 0)
//                     "finishedCompactRev"                  revision bytes of (rev, 0)
//   lease             int64 BE lease ID                     leasepb.Lease {ID, TTL, RemainingTTL}
//   members           member ID in hex, no padding          JSON of membership.Member
//   members_removed   member ID in hex                      "removed"
//   cluster           "clusterVersion"                      "3.4.0"
//   alarm             etcdserverpb.AlarmMember              empty
//   auth              "authEnabled"                         [1] or [0]
//                     "authRevision"                        u64 BE
//   authUsers         user name                             authpb.User (password: the bcrypt hash)
//   authRoles         role name                             authpb.Role
//
//   revision bytes = main (8 bytes BE) ‖ '_' ‖ sub (8 bytes BE) [‖ 't' for a tombstone]
//   (mvcc/revision.go revToBytes, mvcc/kvstore.go appendMarkTombstone)
import Long from 'long';
import { authpb, etcdserverpb, mvccpb } from '../gen/etcd';
import { assert } from '../errors';

const revBytes = 17;
const markedRevBytes = 18;
const two32 = 0x1_0000_0000;
const tombstoneMark = 0x74; // 't'

export interface BoltRevision {
  main: number;
  sub: number;
  tombstone: boolean;
}

/** mvcc/revision.go revToBytes, with kvstore.go's tombstone mark. */
export function encodeRevision(main: number, sub: number, tombstone = false): Buffer {
  assert(Number.isSafeInteger(main) && main >= 0 && Number.isSafeInteger(sub) && sub >= 0, 'revision out of range');
  const b = Buffer.allocUnsafe(tombstone ? markedRevBytes : revBytes);
  b.writeUInt32BE(Math.floor(main / two32), 0);
  b.writeUInt32BE(main >>> 0, 4);
  b[8] = 0x5f; // '_'
  b.writeUInt32BE(Math.floor(sub / two32), 9);
  b.writeUInt32BE(sub >>> 0, 13);
  if (tombstone) b[17] = tombstoneMark;
  return b;
}

export function decodeRevision(b: Uint8Array): BoltRevision {
  assert(b.length === revBytes || (b.length === markedRevBytes && b[17] === tombstoneMark), 'malformed revision key');
  const v = Buffer.from(b.buffer, b.byteOffset, b.length);
  const main = v.readUInt32BE(0) * two32 + v.readUInt32BE(4);
  const sub = v.readUInt32BE(9) * two32 + v.readUInt32BE(13);
  assert(Number.isSafeInteger(main) && Number.isSafeInteger(sub), 'revision beyond 2^53');
  return { main, sub, tombstone: b.length === markedRevBytes };
}

/** A record of the `key` bucket, decoded. `lease` is 0n when the key has none. */
export interface BoltKeyValue {
  key: Buffer;
  createRevision: number;
  modRevision: number;
  version: number;
  value: Buffer;
  lease: bigint;
}

/** mvccpb.KeyValue as etcd marshals it (gogoproto: zero fields left out). A tombstone holds only its key. */
export function encodeKeyValue(kv: BoltKeyValue): Uint8Array {
  const m: mvccpb.IKeyValue = { key: kv.key };
  if (kv.createRevision !== 0) m.createRevision = kv.createRevision;
  if (kv.modRevision !== 0) m.modRevision = kv.modRevision;
  if (kv.version !== 0) m.version = kv.version;
  if (kv.value.length > 0) m.value = kv.value;
  if (kv.lease !== 0n) m.lease = Long.fromString(BigInt.asIntN(64, kv.lease).toString(), false);
  return mvccpb.KeyValue.encode(m).finish();
}

export function decodeKeyValue(b: Uint8Array): BoltKeyValue {
  const m = mvccpb.KeyValue.decode(b);
  return {
    key: Buffer.from(m.key ?? []),
    createRevision: int64Num(m.createRevision),
    modRevision: int64Num(m.modRevision),
    version: int64Num(m.version),
    value: Buffer.from(m.value ?? []),
    lease: int64Big(m.lease),
  };
}

function int64Num(v: number | Long | null | undefined): number {
  if (v === null || v === undefined) return 0;
  const n = typeof v === 'number' ? v : v.toNumber();
  assert(Number.isSafeInteger(n), 'int64 beyond 2^53');
  return n;
}

function int64Big(v: number | Long | null | undefined): bigint {
  if (v === null || v === undefined) return 0n;
  return typeof v === 'number' ? BigInt(v) : BigInt(v.toString());
}

// ---- meta (mvcc/kvstore.go) ----

export const metaKeys = {
  consistentIndex: 'consistent_index',
  scheduledCompactRev: 'scheduledCompactRev',
  finishedCompactRev: 'finishedCompactRev',
} as const;

export function encodeU64(v: bigint | number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(BigInt(v));
  return b;
}

export function decodeU64(b: Uint8Array): bigint {
  assert(b.length === 8, 'malformed u64');
  return Buffer.from(b.buffer, b.byteOffset, 8).readBigUInt64BE(0);
}

/** scheduledCompactRev / finishedCompactRev: the revision bytes of (rev, 0) (kvstore.go compact). */
export function encodeCompactRev(rev: number): Buffer {
  return encodeRevision(rev, 0);
}

export function decodeCompactRev(b: Uint8Array): number {
  return decodeRevision(b).main;
}

// ---- lease (lease/lessor.go persistTo, leasepb.Lease) ----

export interface BoltLease {
  id: bigint;
  /** Seconds. */
  ttl: number;
  /** Seconds left at the last checkpoint; 0 when never checkpointed. */
  remainingTtl: number;
}

/** The lease bucket's key: the ID as int64 big endian (lessor.go int64ToBytes). */
export function encodeLeaseKey(id: bigint): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigInt64BE(BigInt.asIntN(64, id));
  return b;
}

export function decodeLeaseKey(b: Uint8Array): bigint {
  assert(b.length === 8, 'malformed lease key');
  return Buffer.from(b.buffer, b.byteOffset, 8).readBigInt64BE(0);
}

/** leasepb.Lease {ID = 1, TTL = 2, RemainingTTL = 3}, all int64 varints; zero fields left out. */
export function encodeLease(l: BoltLease): Buffer {
  const parts: number[] = [];
  const field = (tag: number, v: bigint): void => {
    if (v === 0n) return;
    parts.push(tag);
    let u = BigInt.asUintN(64, v);
    while (u >= 0x80n) {
      parts.push(Number(u & 0x7fn) | 0x80);
      u >>= 7n;
    }
    parts.push(Number(u));
  };
  field((1 << 3) | 0, l.id);
  field((2 << 3) | 0, BigInt(l.ttl));
  field((3 << 3) | 0, BigInt(l.remainingTtl));
  return Buffer.from(parts);
}

export function decodeLease(b: Uint8Array): BoltLease {
  const out: BoltLease = { id: 0n, ttl: 0, remainingTtl: 0 };
  let pos = 0;
  const varint = (): bigint => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      assert(pos < b.length && shift < 70n, 'malformed lease record');
      const c = b[pos++]!;
      v |= BigInt(c & 0x7f) << shift;
      if ((c & 0x80) === 0) return BigInt.asIntN(64, v);
      shift += 7n;
    }
  };
  while (pos < b.length) {
    const tag = Number(varint());
    const wire = tag & 7;
    if (wire === 0) {
      const v = varint();
      if (tag >>> 3 === 1) out.id = v;
      else if (tag >>> 3 === 2) out.ttl = Number(v);
      else if (tag >>> 3 === 3) out.remainingTtl = Number(v);
    } else if (wire === 2) {
      pos += Number(varint()); // an unknown length-delimited field
    } else {
      assert(wire === 1 || wire === 5, 'malformed lease record');
      pos += wire === 1 ? 8 : 4;
    }
  }
  assert(pos === b.length, 'malformed lease record');
  return out;
}

// ---- members, members_removed, cluster (etcdserver/api/membership/store.go, member.go) ----

export interface BoltMember {
  id: bigint;
  peerURLs: string[];
  isLearner: boolean;
  name: string;
  clientURLs: string[];
}

/** types.ID.String(): hex without padding. */
export function encodeMemberKey(id: bigint): Buffer {
  return Buffer.from(id.toString(16), 'latin1');
}

export function decodeMemberKey(b: Uint8Array): bigint {
  const s = Buffer.from(b).toString('latin1');
  assert(/^[0-9a-f]{1,16}$/.test(s), 'malformed member key');
  return BigInt('0x' + s);
}

/** encoding/json's string: HTML characters and U+2028/9 escaped as \u00XX, as json.Marshal does. */
function goJsonString(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

function goJsonStrings(a: string[]): string {
  return '[' + a.map(goJsonString).join(',') + ']';
}

/**
 * json.Marshal(membership.Member): {"id":<uint64>,"peerURLs":[...],"isLearner":true,"name":..,"clientURLs":[...]},
 * the embedded RaftAttributes then Attributes; isLearner, name and clientURLs are omitempty (a nil
 * PeerURLs slice would be null; a member always has peer URLs).
 */
export function encodeMember(m: BoltMember): Buffer {
  let s = `{"id":${BigInt.asUintN(64, m.id).toString()},"peerURLs":${goJsonStrings(m.peerURLs)}`;
  if (m.isLearner) s += ',"isLearner":true';
  if (m.name !== '') s += `,"name":${goJsonString(m.name)}`;
  if (m.clientURLs.length > 0) s += `,"clientURLs":${goJsonStrings(m.clientURLs)}`;
  return Buffer.from(s + '}', 'utf8');
}

export function decodeMember(b: Uint8Array): BoltMember {
  const text = Buffer.from(b).toString('utf8');
  const idText = /"id"\s*:\s*(\d+)/.exec(text); // uint64: JSON.parse would round it
  assert(idText !== null, 'member record without an id');
  const o = JSON.parse(text) as { peerURLs?: string[] | null; isLearner?: boolean; name?: string; clientURLs?: string[] | null };
  return {
    id: BigInt(idText[1]!),
    peerURLs: o.peerURLs ?? [],
    isLearner: o.isLearner === true,
    name: o.name ?? '',
    clientURLs: o.clientURLs ?? [],
  };
}

export const memberRemovedValue: Buffer = Buffer.from('removed');
export const clusterVersionKey = 'clusterVersion';

// ---- alarm (etcdserver/api/v3alarm/alarms.go) ----

export interface BoltAlarm {
  memberId: bigint;
  /** etcdserverpb.AlarmType. */
  alarm: number;
}

/** The alarm bucket's key: the marshalled AlarmMember (its value is empty). */
export function encodeAlarmKey(a: BoltAlarm): Buffer {
  const m: etcdserverpb.IAlarmMember = {};
  if (a.memberId !== 0n) m.memberID = Long.fromString(a.memberId.toString(), true);
  if (a.alarm !== 0) m.alarm = a.alarm;
  return Buffer.from(etcdserverpb.AlarmMember.encode(m).finish());
}

export function decodeAlarmKey(b: Uint8Array): BoltAlarm {
  const m = etcdserverpb.AlarmMember.decode(b);
  const id = m.memberID;
  return { memberId: id === null || id === undefined ? 0n : BigInt(Long.fromValue(id).toUnsigned().toString()), alarm: m.alarm ?? 0 };
}

// ---- auth, authUsers, authRoles (auth/store.go) ----

export const authKeys = { enabled: 'authEnabled', revision: 'authRevision' } as const;

export function encodeAuthEnabled(enabled: boolean): Buffer {
  return Buffer.from([enabled ? 1 : 0]);
}

export function decodeAuthEnabled(b: Uint8Array): boolean {
  return b.length === 1 && b[0] === 1;
}

/** authUsers: name -> authpb.User. The key is the user's name bytes. */
export function encodeUser(u: authpb.IUser): { key: Buffer; value: Buffer } {
  return { key: Buffer.from(u.name ?? []), value: Buffer.from(authpb.User.encode(u).finish()) };
}

export function decodeUser(b: Uint8Array): authpb.User {
  return authpb.User.decode(b);
}

export function encodeRole(r: authpb.IRole): { key: Buffer; value: Buffer } {
  return { key: Buffer.from(r.name ?? []), value: Buffer.from(authpb.Role.encode(r).finish()) };
}

export function decodeRole(b: Uint8Array): authpb.Role {
  return authpb.Role.decode(b);
}
