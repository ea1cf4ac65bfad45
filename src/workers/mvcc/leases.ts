// Leases in LMDB: the records every member keeps (etcd's lessor state that survives a restart) and
// the lease -> key index that a revoke walks.
//
//   leases     leaseKey(id)              -> record: [u8 ver=1][7 pad][f64 TTL s][f64 remaining TTL s]
//   leasekeys  leaseKey(id) ‖ user key   -> empty       one entry per live key attached to the lease
//
// leaseKey is the ID as 8 bytes big endian two's complement (etcd's int64). The remaining TTL is the
// last checkpoint (0 = none): a restart or a new leader counts down from it rather than from the
// full TTL, so restarts cannot keep an abandoned lease alive forever (see src/main/lease/lessor.ts).
// Expiry deadlines are wall-clock state of the leader and are never stored.
import { etcdserverpb } from '../../shared/gen/etcd';
import { Errors } from '../../shared/errors';
import { Dbs } from './dbs';
import { approxNum, int64Words } from './records';
import { WriteTxn } from './write';

/** etcd's lease.MaxLeaseTTL: 9,000,000,000 seconds. */
export const MAX_LEASE_TTL_SECONDS = 9_000_000_000;

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

function indexKey(hi: number, lo: number, key: Buffer): Buffer {
  const k = Buffer.allocUnsafe(8 + key.length);
  k.writeInt32BE(hi | 0, 0);
  k.writeUInt32BE(lo >>> 0, 4);
  key.copy(k, 8);
  return k;
}

const empty = Buffer.alloc(0);

export function attachKey(dbs: Dbs, hi: number, lo: number, key: Buffer): void {
  dbs.leasekeys.putSync(indexKey(hi, lo, key), empty);
}

export function detachKey(dbs: Dbs, hi: number, lo: number, key: Buffer): void {
  dbs.leasekeys.removeSync(indexKey(hi, lo, key));
}

/** Keys attached to the lease, in key order (etcd sorts them before a revoke deletes them). */
export function leaseKeys(dbs: Dbs, hi: number, lo: number): Buffer[] {
  const start = leaseKey(hi, lo);
  const out: Buffer[] = [];
  for (const k of dbs.leasekeys.getKeys({ start }) as Iterable<Buffer>) {
    if (k.length < 8 || k.compare(start, 0, 8, 0, 8) !== 0) break;
    out.push(k.subarray(8));
  }
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

/** etcd's lessor.Grant as applied: the proposer already chose the ID and raised the TTL to the minimum. */
export function applyLeaseGrant(dbs: Dbs, rev: number, r: etcdserverpb.ILeaseGrantRequest): etcdserverpb.ILeaseGrantResponse {
  const { hi, lo } = int64Words(r.ID);
  if (hi === 0 && lo === 0) throw Errors.leaseNotFound();
  const ttl = approxNum(r.TTL);
  if (ttl > MAX_LEASE_TTL_SECONDS) throw Errors.leaseTTLTooLarge();
  if (leaseExists(dbs, hi, lo)) throw Errors.leaseExist();
  dbs.leases.putSync(leaseKey(hi, lo), encodeLeaseRecord(ttl));
  return { header: { revision: rev }, ID: r.ID, TTL: ttl };
}

/** etcd's lessor.Revoke: every attached key deleted in one revision (key order), then the lease. */
export function applyLeaseRevoke(wt: WriteTxn, dbs: Dbs, r: etcdserverpb.ILeaseRevokeRequest): etcdserverpb.ILeaseRevokeResponse {
  const { hi, lo } = int64Words(r.ID);
  const lk = leaseKey(hi, lo);
  if (dbs.leases.getBinary(lk) === undefined) throw Errors.leaseNotFound();
  wt.deleteKeys(leaseKeys(dbs, hi, lo)); // each delete also drops its index entry
  dbs.leases.removeSync(lk);
  return { header: { revision: wt.rev } };
}

/** etcd's lessor.Checkpoint: stores each existing lease's remaining TTL; unknown IDs are skipped. */
export function applyLeaseCheckpoint(dbs: Dbs, rev: number, r: etcdserverpb.ILeaseCheckpointRequest): etcdserverpb.ILeaseCheckpointResponse {
  for (const c of r.checkpoints ?? []) {
    const { hi, lo } = int64Words(c.ID);
    const lk = leaseKey(hi, lo);
    const cur = dbs.leases.getBinary(lk);
    if (cur === undefined) continue;
    const rec = decodeLeaseRecord(cur);
    dbs.leases.putSync(lk, encodeLeaseRecord(rec.ttl, Math.max(0, approxNum(c.remaining_TTL))));
  }
  return { header: { revision: rev } };
}
