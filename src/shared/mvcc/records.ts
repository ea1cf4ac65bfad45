// Value encodings of the MVCC store's LMDB databases, and the in-memory KeyValue they decode to.
//
//   latest value  = create f64 ‖ mod f64 ‖ version f64 ‖ lease hi i32 ‖ lease lo u32 ‖ sub u32 ‖ value bytes
//   history value = kind u8 ‖ (PUT: create f64 ‖ version f64 ‖ lease hi i32 ‖ lease lo u32 ‖ (FULL: value bytes))
//
// Revisions and versions stay below 2^53 and are exact as f64. Leases are full int64 (hi/lo words).
// A history PUT record of the key's current revision is a POINTER: its value lives only in `latest`, so a live
// value is stored once. When the key is overwritten or deleted, the old record is rewritten as FULL in the same
// write transaction. The mod revision and sub revision of a history record are in its key.
import Long from 'long';
import { mvccpb } from '../gen/etcd';
import { Int64 } from '../long';
import { assert } from '../errors';

export const enum RecordKind {
  PutPointer = 0,
  PutFull = 1,
  Tombstone = 2,
}

/** A live key-value at some revision. `sub` is the sub revision of mod. */
export interface Kv {
  key: Buffer;
  create: number;
  mod: number;
  sub: number;
  version: number;
  leaseHi: number;
  leaseLo: number;
  value: Buffer;
}

const latestHeaderBytes = 36;
const putHeaderBytes = 1 + 24;
const two32 = 0x1_0000_0000;

export function encodeLatest(kv: Kv): Buffer {
  const out = Buffer.allocUnsafe(latestHeaderBytes + kv.value.length);
  out.writeDoubleBE(kv.create, 0);
  out.writeDoubleBE(kv.mod, 8);
  out.writeDoubleBE(kv.version, 16);
  out.writeInt32BE(kv.leaseHi, 24);
  out.writeUInt32BE(kv.leaseLo, 28);
  out.writeUInt32BE(kv.sub, 32);
  kv.value.copy(out, latestHeaderBytes);
  return out;
}

export function decodeLatest(key: Buffer, b: Buffer): Kv {
  assert(b.length >= latestHeaderBytes, 'malformed latest record');
  return {
    key,
    create: b.readDoubleBE(0),
    mod: b.readDoubleBE(8),
    version: b.readDoubleBE(16),
    leaseHi: b.readInt32BE(24),
    leaseLo: b.readUInt32BE(28),
    sub: b.readUInt32BE(32),
    value: b.subarray(latestHeaderBytes),
  };
}

/** A history PUT record; FULL carries the value, POINTER defers to `latest`. */
export function encodeHistoryPut(kv: Kv, full: boolean): Buffer {
  const out = Buffer.allocUnsafe(putHeaderBytes + (full ? kv.value.length : 0));
  out[0] = full ? RecordKind.PutFull : RecordKind.PutPointer;
  out.writeDoubleBE(kv.create, 1);
  out.writeDoubleBE(kv.version, 9);
  out.writeInt32BE(kv.leaseHi, 17);
  out.writeUInt32BE(kv.leaseLo, 21);
  if (full) kv.value.copy(out, putHeaderBytes);
  return out;
}

export const tombstoneRecord: Buffer = Buffer.from([RecordKind.Tombstone]);

export function historyKind(b: Uint8Array): RecordKind {
  const k = b[0] as RecordKind;
  assert(k === RecordKind.PutPointer || k === RecordKind.PutFull || k === RecordKind.Tombstone, 'bad record kind');
  return k;
}

/** Decodes a history PUT record (the caller supplies the value of a POINTER from `latest`). */
export function decodeHistoryPut(key: Buffer, mod: number, sub: number, b: Buffer): Kv {
  assert(b.length >= putHeaderBytes && b[0] !== RecordKind.Tombstone, 'malformed history put record');
  return {
    key,
    create: b.readDoubleBE(1),
    mod,
    sub,
    version: b.readDoubleBE(9),
    leaseHi: b.readInt32BE(17),
    leaseLo: b.readUInt32BE(21),
    value: b.subarray(putHeaderBytes),
  };
}

/** int64 (number or Long) as signed hi / unsigned lo words. */
export function int64Words(v: Int64): { hi: number; lo: number } {
  if (v === null || v === undefined) return { hi: 0, lo: 0 };
  if (typeof v === 'number') {
    assert(Number.isSafeInteger(v), 'int64 number must be a safe integer');
    const hi = Math.floor(v / two32);
    return { hi: hi | 0, lo: (v - hi * two32) >>> 0 };
  }
  return { hi: v.high | 0, lo: v.low >>> 0 };
}

/** Compares two int64 given as words: -1, 0, 1. */
export function compareWords(aHi: number, aLo: number, bHi: number, bLo: number): number {
  if (aHi !== bHi) return aHi < bHi ? -1 : 1;
  if (aLo !== bLo) return aLo < bLo ? -1 : 1;
  return 0;
}

/** An int64 request field as a double: exact below 2^53 and order-preserving beyond, never throws. */
export function approxNum(v: Int64): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

/** The wire KeyValue. Fields at their default (zero lease, empty value) are left out, as gogo/protobuf does. */
export function toPb(kv: Kv, keysOnly: boolean): mvccpb.IKeyValue {
  const out: mvccpb.IKeyValue = {
    key: kv.key,
    createRevision: kv.create,
    modRevision: kv.mod,
    version: kv.version,
  };
  if (!keysOnly && kv.value.length > 0) out.value = kv.value;
  if (kv.leaseHi !== 0 || kv.leaseLo !== 0) out.lease = Long.fromBits(kv.leaseLo | 0, kv.leaseHi, false);
  return out;
}
