// Member and cluster IDs derived exactly as etcd derives them (etcdserver/api/membership):
//   member ID  = first 8 bytes (big endian) of sha1(sorted peer URLs joined with "" + cluster token)
//   cluster ID = first 8 bytes (big endian) of sha1(member IDs sorted, each 8 bytes big endian)
// so that the same --initial-cluster and --initial-cluster-token give the same IDs as etcd.
import { createHash } from 'node:crypto';

export function computeMemberId(peerUrls: string[], clusterToken: string, unixSeconds?: number): bigint {
  const joined = [...peerUrls].sort().join('');
  // MemberAdd (etcd's NewMember with a time): the Unix seconds are part of the hash, so a member added
  // again with the same URLs after a removal gets a new ID.
  const when = unixSeconds === undefined ? '' : String(unixSeconds);
  const sum = createHash('sha1').update(joined + clusterToken + when, 'utf8').digest();
  return sum.readBigUInt64BE(0);
}

export function computeClusterId(memberIds: bigint[]): bigint {
  const sorted = [...memberIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const b = Buffer.alloc(8 * sorted.length);
  sorted.forEach((id, i) => b.writeBigUInt64BE(id, 8 * i));
  return createHash('sha1').update(b).digest().readBigUInt64BE(0);
}

export function idToHex(id: bigint): string {
  return id.toString(16);
}

/**
 * etcd's idutil.Generator: the low 16 bits of the member ID, then 40 bits of the start time in
 * milliseconds, then an 8-bit counter that carries into the time bits. Lease IDs are Next() with the
 * sign bit cleared, as etcd's LeaseGrant picks them (so they look like etcd's: 694d7a1b2c3d4e5f).
 */
export class IdGenerator {
  readonly #prefix: bigint;
  #suffix: bigint;

  constructor(memberId: bigint, nowMs = Date.now()) {
    this.#prefix = (memberId & 0xffffn) << 48n;
    this.#suffix = (BigInt(nowMs) & ((1n << 40n) - 1n)) << 8n;
  }

  next(): bigint {
    this.#suffix++;
    return this.#prefix | (this.#suffix & ((1n << 48n) - 1n));
  }
}
