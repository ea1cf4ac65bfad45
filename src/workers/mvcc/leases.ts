// The lease table: lease ID (8 bytes big endian, two's complement as etcd's int64) -> lease
// record. Puts that name a lease check it exists, as etcd's applier does (lessor.Lookup), so a
// put with an unknown lease fails with "etcdserver: requested lease not found" and changes
// nothing. The Lease service (grant, revoke, keep-alive, expiry through Raft) fills this table;
// it is the leases issue. Until then no lease exists, exactly as on an etcd that granted none.
import { Dbs } from './dbs';

export function leaseKey(hi: number, lo: number): Buffer {
  const k = Buffer.allocUnsafe(8);
  k.writeInt32BE(hi | 0, 0);
  k.writeUInt32BE(lo >>> 0, 4);
  return k;
}

export function leaseExists(dbs: Dbs, hi: number, lo: number): boolean {
  return dbs.leases.getBinary(leaseKey(hi, lo)) !== undefined;
}

/** Record layout (v1): [u8 version=1][7 pad][f64 granted TTL seconds]. */
export function encodeLeaseRecord(ttlSeconds: number): Buffer {
  const v = Buffer.alloc(16);
  v[0] = 1;
  v.writeDoubleLE(ttlSeconds, 8);
  return v;
}
