// Member and cluster IDs derived exactly as etcd derives them (etcdserver/api/membership):
//   member ID  = first 8 bytes (big endian) of sha1(sorted peer URLs joined with "" + cluster token)
//   cluster ID = first 8 bytes (big endian) of sha1(member IDs sorted, each 8 bytes big endian)
// so that the same --initial-cluster and --initial-cluster-token give the same IDs as etcd.
import { createHash } from 'node:crypto';

export function computeMemberId(peerUrls: string[], clusterToken: string): bigint {
  const joined = [...peerUrls].sort().join('');
  const sum = createHash('sha1').update(joined + clusterToken, 'utf8').digest();
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
