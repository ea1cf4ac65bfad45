// etcd 3.4's HTTP/JSON routes (the google.api.http annotations of its rpc.proto, v3lock.proto and
// v3election.proto), each mapped to the gRPC method that serves it and its message types. The
// gateway is generic over this table: a route is served by whatever handler the gRPC transport has
// for its method, so a service added later (Lease, Lock, Election) needs no gateway code, only its
// .proto file in proto/ and its handler registered. A route whose handler is not registered answers
// like a gRPC call to an unimplemented method (code 12, HTTP 501).
//
// All are POST. Two annotations share /v3/maintenance/hash (Hash and HashKV); grpc-gateway serves
// the first registered, Hash, and so does etcd 3.4. /v3beta/... is an alias of every /v3/... route.

export type RouteKind = 'unary' | 'bidi' | 'server-stream';

export interface Route {
  readonly path: string;
  /** gRPC method path, as registered on the transports: /etcdserverpb.KV/Range. */
  readonly method: string;
  readonly requestType: string;
  readonly responseType: string;
  readonly kind: RouteKind;
}

const PB = 'etcdserverpb';

function route(path: string, service: string, name: string, req: string, resp: string, kind: RouteKind = 'unary'): Route {
  const pkg = service.slice(0, service.lastIndexOf('.'));
  const q = (t: string): string => (t.includes('.') ? t : `${pkg}.${t}`);
  return { path, method: `/${service}/${name}`, requestType: q(req), responseType: q(resp), kind };
}

export const ROUTES: readonly Route[] = [
  route('/v3/kv/range', `${PB}.KV`, 'Range', 'RangeRequest', 'RangeResponse'),
  route('/v3/kv/put', `${PB}.KV`, 'Put', 'PutRequest', 'PutResponse'),
  route('/v3/kv/deleterange', `${PB}.KV`, 'DeleteRange', 'DeleteRangeRequest', 'DeleteRangeResponse'),
  route('/v3/kv/txn', `${PB}.KV`, 'Txn', 'TxnRequest', 'TxnResponse'),
  route('/v3/kv/compaction', `${PB}.KV`, 'Compact', 'CompactionRequest', 'CompactionResponse'),
  route('/v3/watch', `${PB}.Watch`, 'Watch', 'WatchRequest', 'WatchResponse', 'bidi'),
  route('/v3/lease/grant', `${PB}.Lease`, 'LeaseGrant', 'LeaseGrantRequest', 'LeaseGrantResponse'),
  route('/v3/lease/revoke', `${PB}.Lease`, 'LeaseRevoke', 'LeaseRevokeRequest', 'LeaseRevokeResponse'),
  route('/v3/kv/lease/revoke', `${PB}.Lease`, 'LeaseRevoke', 'LeaseRevokeRequest', 'LeaseRevokeResponse'),
  route('/v3/lease/keepalive', `${PB}.Lease`, 'LeaseKeepAlive', 'LeaseKeepAliveRequest', 'LeaseKeepAliveResponse', 'bidi'),
  route('/v3/lease/timetolive', `${PB}.Lease`, 'LeaseTimeToLive', 'LeaseTimeToLiveRequest', 'LeaseTimeToLiveResponse'),
  route('/v3/kv/lease/timetolive', `${PB}.Lease`, 'LeaseTimeToLive', 'LeaseTimeToLiveRequest', 'LeaseTimeToLiveResponse'),
  route('/v3/lease/leases', `${PB}.Lease`, 'LeaseLeases', 'LeaseLeasesRequest', 'LeaseLeasesResponse'),
  route('/v3/kv/lease/leases', `${PB}.Lease`, 'LeaseLeases', 'LeaseLeasesRequest', 'LeaseLeasesResponse'),
  route('/v3/cluster/member/add', `${PB}.Cluster`, 'MemberAdd', 'MemberAddRequest', 'MemberAddResponse'),
  route('/v3/cluster/member/remove', `${PB}.Cluster`, 'MemberRemove', 'MemberRemoveRequest', 'MemberRemoveResponse'),
  route('/v3/cluster/member/update', `${PB}.Cluster`, 'MemberUpdate', 'MemberUpdateRequest', 'MemberUpdateResponse'),
  route('/v3/cluster/member/list', `${PB}.Cluster`, 'MemberList', 'MemberListRequest', 'MemberListResponse'),
  route('/v3/cluster/member/promote', `${PB}.Cluster`, 'MemberPromote', 'MemberPromoteRequest', 'MemberPromoteResponse'),
  route('/v3/maintenance/alarm', `${PB}.Maintenance`, 'Alarm', 'AlarmRequest', 'AlarmResponse'),
  route('/v3/maintenance/status', `${PB}.Maintenance`, 'Status', 'StatusRequest', 'StatusResponse'),
  route('/v3/maintenance/defragment', `${PB}.Maintenance`, 'Defragment', 'DefragmentRequest', 'DefragmentResponse'),
  route('/v3/maintenance/hash', `${PB}.Maintenance`, 'Hash', 'HashRequest', 'HashResponse'),
  route('/v3/maintenance/snapshot', `${PB}.Maintenance`, 'Snapshot', 'SnapshotRequest', 'SnapshotResponse', 'server-stream'),
  route('/v3/maintenance/transfer-leadership', `${PB}.Maintenance`, 'MoveLeader', 'MoveLeaderRequest', 'MoveLeaderResponse'),
  // Auth: until its service is registered (and its messages are in proto/rpc.proto), these answer like
  // any unregistered method: HTTP 501, code 12, etcd's JSON error body (never a plain-text 404).
  route('/v3/auth/enable', `${PB}.Auth`, 'AuthEnable', 'AuthEnableRequest', 'AuthEnableResponse'),
  route('/v3/auth/disable', `${PB}.Auth`, 'AuthDisable', 'AuthDisableRequest', 'AuthDisableResponse'),
  route('/v3/auth/authenticate', `${PB}.Auth`, 'Authenticate', 'AuthenticateRequest', 'AuthenticateResponse'),
  route('/v3/auth/user/add', `${PB}.Auth`, 'UserAdd', 'AuthUserAddRequest', 'AuthUserAddResponse'),
  route('/v3/auth/user/get', `${PB}.Auth`, 'UserGet', 'AuthUserGetRequest', 'AuthUserGetResponse'),
  route('/v3/auth/user/list', `${PB}.Auth`, 'UserList', 'AuthUserListRequest', 'AuthUserListResponse'),
  route('/v3/auth/user/delete', `${PB}.Auth`, 'UserDelete', 'AuthUserDeleteRequest', 'AuthUserDeleteResponse'),
  route('/v3/auth/user/changepw', `${PB}.Auth`, 'UserChangePassword', 'AuthUserChangePasswordRequest', 'AuthUserChangePasswordResponse'),
  route('/v3/auth/user/grant', `${PB}.Auth`, 'UserGrantRole', 'AuthUserGrantRoleRequest', 'AuthUserGrantRoleResponse'),
  route('/v3/auth/user/revoke', `${PB}.Auth`, 'UserRevokeRole', 'AuthUserRevokeRoleRequest', 'AuthUserRevokeRoleResponse'),
  route('/v3/auth/role/add', `${PB}.Auth`, 'RoleAdd', 'AuthRoleAddRequest', 'AuthRoleAddResponse'),
  route('/v3/auth/role/get', `${PB}.Auth`, 'RoleGet', 'AuthRoleGetRequest', 'AuthRoleGetResponse'),
  route('/v3/auth/role/list', `${PB}.Auth`, 'RoleList', 'AuthRoleListRequest', 'AuthRoleListResponse'),
  route('/v3/auth/role/delete', `${PB}.Auth`, 'RoleDelete', 'AuthRoleDeleteRequest', 'AuthRoleDeleteResponse'),
  route('/v3/auth/role/grant', `${PB}.Auth`, 'RoleGrantPermission', 'AuthRoleGrantPermissionRequest', 'AuthRoleGrantPermissionResponse'),
  route(
    '/v3/auth/role/revoke',
    `${PB}.Auth`,
    'RoleRevokePermission',
    'AuthRoleRevokePermissionRequest',
    'AuthRoleRevokePermissionResponse',
  ),
  // v3lockpb and v3electionpb: their messages come from proto/v3lock.proto and proto/v3election.proto
  // once those exist; until then these routes answer Unimplemented like any unregistered method.
  route('/v3/lock/lock', 'v3lockpb.Lock', 'Lock', 'LockRequest', 'LockResponse'),
  route('/v3/lock/unlock', 'v3lockpb.Lock', 'Unlock', 'UnlockRequest', 'UnlockResponse'),
  route('/v3/election/campaign', 'v3electionpb.Election', 'Campaign', 'CampaignRequest', 'CampaignResponse'),
  route('/v3/election/proclaim', 'v3electionpb.Election', 'Proclaim', 'ProclaimRequest', 'ProclaimResponse'),
  route('/v3/election/leader', 'v3electionpb.Election', 'Leader', 'LeaderRequest', 'LeaderResponse'),
  route('/v3/election/observe', 'v3electionpb.Election', 'Observe', 'LeaderRequest', 'LeaderResponse', 'server-stream'),
  route('/v3/election/resign', 'v3electionpb.Election', 'Resign', 'ResignRequest', 'ResignResponse'),
];

/** Path -> route, with every /v3/ route also under /v3beta/. */
export function routeMap(routes: readonly Route[] = ROUTES): Map<string, Route> {
  const m = new Map<string, Route>();
  for (const r of routes) {
    m.set(r.path, r);
    m.set('/v3beta/' + r.path.slice('/v3/'.length), r);
  }
  return m;
}
