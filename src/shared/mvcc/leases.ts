// Leases in LMDB: the records every member keeps (etcd's lessor state that survives a restart) and
// the lease -> key index that a revoke walks.
//
//   leases     leaseKey(id)              -> record: [u8 ver=1][7 pad][f64 TTL s][f64 remaining TTL s]
//   leasekeys  leaseKey(id) ‖ user key   -> empty       one entry per live key attached to the lease
//              leaseKey(id) ‖ key[0..1956) ‖ tag -> key  the same for a key too long to inline (fitKey,
//                                                       long_keys.ts); hashed entries do not sort by key:
//                                                       leaseKeys sorts when it meets one.
//
// leaseKey is the ID as 8 bytes big endian two's complement (etcd's int64). The remaining TTL is the
// last checkpoint (0 = none): a restart or a new leader counts down from it rather than from the
// full TTL, so restarts cannot keep an abandoned lease alive forever (see src/main/lease/lessor.ts).
// Expiry deadlines are wall-clock state of the leader and are never stored.
//
// This file is the layout and the reads (any thread); the apply worker's writes of these records
// are in src/workers/mvcc/lease_apply.ts.
import { Dbs } from './dbs';
import { fitKey, isHashedKey } from './long_keys';

export function leaseKey(hi: number, lo: number): Buffer {
  const k = Buffer.allocUnsafe(8);
  k.writeInt32BE(hi | 0, 0);
  k.writeUInt32BE(lo >>> 0, 4);
  return k;
}

export function leaseExists(dbs: Dbs, hi: number, lo: number): boolean {
  return dbs.leases.getBinary(leaseKey(hi, lo)) !== undefined;
}

export interface LeaseRecord {
  ttl: number;
  remaining: number;
}

export function encodeLeaseRecord(ttlSeconds: number, remainingSeconds = 0): Buffer {
  const v = Buffer.alloc(24);
  v[0] = 1;
  v.writeDoubleLE(ttlSeconds, 8);
  v.writeDoubleLE(remainingSeconds, 16);
  return v;
}

export function decodeLeaseRecord(b: Buffer): LeaseRecord {
  return { ttl: b.readDoubleLE(8), remaining: b.length >= 24 ? b.readDoubleLE(16) : 0 };
}

/** The leasekeys entry of one key attached to lease (hi, lo). */
export function leaseIndexKey(hi: number, lo: number, key: Buffer): Buffer {
  return fitKey(leaseKey(hi, lo), key);
}

/** Keys attached to the lease, in key order (etcd sorts them before a revoke deletes them). */
export function leaseKeys(dbs: Dbs, hi: number, lo: number): Buffer[] {
  const start = leaseKey(hi, lo);
  const out: Buffer[] = [];
  let hashed = false;
  for (const { key: k, value } of dbs.leasekeys.getRange({ start }) as Iterable<{ key: Buffer; value: Buffer }>) {
    if (k.length < 8 || k.compare(start, 0, 8, 0, 8) !== 0) break;
    if (isHashedKey(k)) {
      hashed = true;
      out.push(Buffer.from(value));
    } else {
      out.push(k.subarray(8));
    }
  }
  if (hashed) out.sort(Buffer.compare);
  return out;
}

export interface StoredLease extends LeaseRecord {
  id: bigint;
}

export function listLeases(dbs: Dbs): StoredLease[] {
  const out: StoredLease[] = [];
  for (const { key, value } of dbs.leases.getRange({}) as Iterable<{ key: Buffer; value: Buffer }>) {
    out.push({ id: key.readBigInt64BE(0), ...decodeLeaseRecord(value) });
  }
  return out;
}
