// The apply worker's writes of the lease records (layout and reads: src/shared/mvcc/leases.ts):
// the lease -> key index that puts and deletes maintain, and etcd's lessor Grant, Revoke and
// Checkpoint as applied from the log.
import { etcdserverpb } from '../../shared/gen/etcd';
import { Errors } from '../../shared/errors';
import { Dbs } from '../../shared/mvcc/dbs';
import { decodeLeaseRecord, encodeLeaseRecord, leaseExists, leaseIndexKey, leaseKey, leaseKeys } from '../../shared/mvcc/leases';
import { approxNum, int64Words } from '../../shared/mvcc/records';
import { isHashedKey } from '../../shared/mvcc/long_keys';
import type { WriteTxn } from './write';

/** etcd's lease.MaxLeaseTTL: 9,000,000,000 seconds. */
export const MAX_LEASE_TTL_SECONDS = 9_000_000_000;

const empty = Buffer.alloc(0);

export function attachKey(dbs: Dbs, hi: number, lo: number, key: Buffer): void {
  // A key too long to be inlined in the index key (leases.ts) is the entry's value.
  const ik = leaseIndexKey(hi, lo, key);
  dbs.leasekeys.putSync(ik, isHashedKey(ik) ? key : empty);
}

export function detachKey(dbs: Dbs, hi: number, lo: number, key: Buffer): void {
  dbs.leasekeys.removeSync(leaseIndexKey(hi, lo, key));
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
