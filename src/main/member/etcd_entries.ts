// etcd 3.4's Raft entries as etcd-ts's (src/shared/entry.ts, confchange.ts), for the import of an etcd
// data dir: the entries of etcd's WAL that its database has not applied yet go into our WAL at the same
// index and term, and the normal start applies them through the apply worker like any committed entry.
//
//   etcd Normal entry                                 ours
//   empty (a new leader's entry)                      empty
//   InternalRaftRequest put/delete_range/txn/...      the request's own protobuf bytes under its RequestKind,
//                                                     with the header's user and auth revision (etcd's
//                                                     authApplierV3 checks them at apply, as ours does)
//   InternalRaftRequest range, user/role get/list     a request that changes nothing (HealthCheck)
//   bare v2 Request (etcd's publish, cluster version) MemberAttributes, ClusterVersion; other v2 writes
//                                                     (the v2 store, which etcd-ts does not serve): HealthCheck
//   etcd ConfChange entry                             ConfChange JSON (type, node ID, member name and peer URLs)
import { EntryType } from '../../shared/entry_type';
import { encodeEntry, EntryAuth, RequestKind } from '../../shared/entry';
import { ConfChange, encodeConfChange } from '../../shared/confchange';
import { etcdserverpb } from '../../shared/gen/etcd';
import { Entry } from '../raft/types';
import { decodeEtcdConfChange, decodeInternalRaftRequest, decodeV2Request, EtcdEntry, EtcdRaftRequest } from '../wal/etcd_wal';

/** InternalRaftRequest field number -> our request kind (etcdserverpb/raft_internal.proto). */
const kindOfField = new Map<number, RequestKind>([
  [3, RequestKind.HealthCheck], // range: a read through the log changes nothing
  [4, RequestKind.Put],
  [5, RequestKind.DeleteRange],
  [6, RequestKind.Txn],
  [7, RequestKind.Compact],
  [8, RequestKind.LeaseGrant],
  [9, RequestKind.LeaseRevoke],
  [10, RequestKind.Alarm],
  [11, RequestKind.LeaseCheckpoint],
  [1000, RequestKind.AuthEnable],
  [1011, RequestKind.AuthDisable],
  [1012, RequestKind.Authenticate],
  [1100, RequestKind.AuthUserAdd],
  [1101, RequestKind.AuthUserDelete],
  [1102, RequestKind.AuthUserGet],
  [1103, RequestKind.AuthUserChangePassword],
  [1104, RequestKind.AuthUserGrantRole],
  [1105, RequestKind.AuthUserRevokeRole],
  [1106, RequestKind.AuthUserList],
  [1107, RequestKind.AuthRoleList],
  [1200, RequestKind.AuthRoleAdd],
  [1201, RequestKind.AuthRoleDelete],
  [1202, RequestKind.AuthRoleGet],
  [1203, RequestKind.AuthRoleGrantPermission],
  [1204, RequestKind.AuthRoleRevokePermission],
]);

/** The replayed entries answer no waiting client: every one gets request ID 0. */
const noRequestId = 0;

export class EtcdEntryError extends Error {}

/** One etcd entry as ours (same index and term). Throws EtcdEntryError for what etcd 3.4 never writes. */
export function convertEtcdEntry(e: EtcdEntry): Entry {
  if (e.etcdType === 2) throw new EtcdEntryError(`entry ${e.index}: ConfChangeV2 entries are not supported (etcd 3.4 writes none)`);
  if (e.type === EntryType.ConfChange) {
    return { term: e.term, index: e.index, type: EntryType.ConfChange, data: encodeConfChange(convertConfChange(e.data, e.index)) };
  }
  const data = e.data.length === 0 ? new Uint8Array(0) : convertRequest(e.data, e.index);
  return { term: e.term, index: e.index, type: EntryType.Normal, data };
}

function convertRequest(data: Uint8Array, index: number): Uint8Array {
  let r: EtcdRaftRequest | null;
  try {
    r = decodeInternalRaftRequest(data);
  } catch {
    r = null; // not an InternalRaftRequest: a bare v2 Request (etcd's MaybeUnmarshal fallback)
  }
  if (r === null || !r.hasHeader) return convertV2(data);
  if (r.field === 2) return convertV2(r.body);
  const kind = kindOfField.get(r.field);
  if (kind === undefined) throw new EtcdEntryError(`entry ${index}: InternalRaftRequest field ${r.field} is not one etcd 3.4 writes`);
  const auth: EntryAuth | null = r.username === '' ? null : { user: r.username, revision: r.authRevision };
  let body = r.body;
  if (kind === RequestKind.Authenticate) {
    // Ours carries no password (entry.ts); the simple token it names is not valid after a restart anyway.
    const a = etcdserverpb.InternalAuthenticateRequest.decode(body);
    body = etcdserverpb.InternalAuthenticateRequest.encode({ name: a.name, simpleToken: a.simpleToken }).finish();
  }
  return encodeEntry(kind, noRequestId, body, auth);
}

const attributesPath = /^\/0\/members\/([0-9a-f]{1,16})\/attributes$/;

function convertV2(data: Uint8Array): Uint8Array {
  const v2 = decodeV2Request(data);
  const m = attributesPath.exec(v2.path);
  if (v2.method === 'PUT' && m !== null) {
    const a = JSON.parse(v2.val) as { name?: string; clientURLs?: string[] | null };
    const body = JSON.stringify({ memberIdHex: m[1].padStart(16, '0'), name: a.name ?? '', clientURLs: a.clientURLs ?? [] });
    return encodeEntry(RequestKind.MemberAttributes, noRequestId, Buffer.from(body, 'utf8'));
  }
  if (v2.method === 'PUT' && v2.path === '/0/version') {
    return encodeEntry(RequestKind.ClusterVersion, noRequestId, Buffer.from(v2.val, 'utf8'));
  }
  return encodeEntry(RequestKind.HealthCheck, noRequestId, new Uint8Array(0));
}

const confChangeTypes: ReadonlyArray<ConfChange['type']> = ['AddNode', 'RemoveNode', 'UpdateNode', 'AddLearnerNode'];

/** etcd's member JSON (membership.Member, or ConfigChangeContext with isPromote) in a ConfChange context. */
export interface EtcdMemberContext {
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
  isPromote: boolean;
}

export function parseMemberContext(context: Uint8Array): EtcdMemberContext | null {
  if (context.length === 0) return null;
  const o = JSON.parse(Buffer.from(context).toString('utf8')) as {
    name?: string;
    peerURLs?: string[] | null;
    clientURLs?: string[] | null;
    isLearner?: boolean;
    isPromote?: boolean;
  };
  return {
    name: o.name ?? '',
    peerURLs: o.peerURLs ?? [],
    clientURLs: o.clientURLs ?? [],
    isLearner: o.isLearner === true,
    isPromote: o.isPromote === true,
  };
}

function convertConfChange(data: Uint8Array, index: number): ConfChange {
  const cc = decodeEtcdConfChange(data);
  const type = confChangeTypes[cc.type];
  if (type === undefined) throw new EtcdEntryError(`entry ${index}: unknown ConfChange type ${cc.type}`);
  let ctx: EtcdMemberContext | null;
  try {
    ctx = parseMemberContext(cc.context);
  } catch (e) {
    throw new EtcdEntryError(`entry ${index}: ConfChange context is not etcd's member JSON: ${(e as Error).message}`);
  }
  const out: ConfChange = { type, nodeId: cc.nodeId.toString() };
  if (ctx !== null && type !== 'RemoveNode') out.member = { name: ctx.name, peerURLs: ctx.peerURLs };
  if (ctx?.isPromote) out.promote = true;
  return out;
}
