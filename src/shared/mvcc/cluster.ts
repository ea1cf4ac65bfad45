// Cluster membership state that etcd keeps in its store and changes only through the Raft log:
// each member's published attributes (name, client URLs: etcd's "publish" at every start) and
// the cluster version (set once by the first leader). Stored in the `cluster` table in the same
// LMDB transactions as the KV state, so every member applies them at the same index.
//   attr/<member id, 16 hex digits> -> JSON {"name": ..., "clientURLs": [...]}
//   version                          -> UTF-8 cluster version ("3.4.0")
//   membership                       -> JSON MembershipState (voters, learners, peer URLs, removed IDs)
import { Dbs } from './dbs';
import type { MembershipState } from '../confchange';

export interface MemberAttributes {
  name: string;
  clientURLs: string[];
}

const versionKey = Buffer.from('version');
const attrKey = (memberIdHex: string): Buffer => Buffer.from(`attr/${memberIdHex.padStart(16, '0')}`);

export function putMemberAttributes(dbs: Dbs, memberIdHex: string, a: MemberAttributes): void {
  dbs.cluster.putSync(attrKey(memberIdHex), Buffer.from(JSON.stringify({ name: a.name, clientURLs: a.clientURLs })));
}

export function getMemberAttributes(dbs: Dbs, memberIdHex: string): MemberAttributes | null {
  const v = dbs.cluster.getBinary(attrKey(memberIdHex));
  return v === undefined ? null : (JSON.parse(Buffer.from(v).toString('utf8')) as MemberAttributes);
}

export function putClusterVersion(dbs: Dbs, version: string): void {
  dbs.cluster.putSync(versionKey, Buffer.from(version, 'utf8'));
}

export function getClusterVersion(dbs: Dbs): string | null {
  const v = dbs.cluster.getBinary(versionKey);
  return v === undefined ? null : Buffer.from(v).toString('utf8');
}

const membershipKey = Buffer.from('membership');

/** The membership after the last applied configuration change (src/shared/confchange.ts). */
export function putMembership(dbs: Dbs, state: MembershipState): void {
  dbs.cluster.putSync(membershipKey, Buffer.from(JSON.stringify(state), 'utf8'));
}

export function getMembership(dbs: Dbs): MembershipState | null {
  const v = dbs.cluster.getBinary(membershipKey);
  return v === undefined ? null : (JSON.parse(Buffer.from(v).toString('utf8')) as MembershipState);
}
