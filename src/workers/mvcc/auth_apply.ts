// etcd 3.4's auth store changes as applied from the log (auth/store.go) and the permission checks
// etcd makes at apply time (etcdserver/apply_auth.go, authApplierV3): every member applies the same
// entries to the same state, so every member answers the same way. Errors are etcd's, verbatim.
import * as bcrypt from 'bcryptjs';
import { authpb, etcdserverpb } from '../../shared/gen/etcd';
import { Errors } from '../../shared/errors';
import type { EntryAuth } from '../../shared/entry';
import { Dbs } from '../../shared/mvcc/dbs';
import { deleteRole, deleteUser, putAuthEnabled, putAuthRevision, putRole, putUser, readAuthSnapshot } from '../../shared/mvcc/auth';
import { leaseKeys } from '../../shared/mvcc/leases';
import { int64Words } from '../../shared/mvcc/records';
import { AuthState, hasRootRole, ROOT_ROLE, ROOT_USER } from '../../shared/auth/state';
import { limits } from '../../shared/limits';

/** The Auth service's requests as the log carries them. */
export type AuthRequest =
  | { op: 'enable' }
  | { op: 'disable' }
  | { op: 'authenticate'; req: etcdserverpb.IInternalAuthenticateRequest }
  | { op: 'userAdd'; req: etcdserverpb.IAuthUserAddRequest }
  | { op: 'userDelete'; req: etcdserverpb.IAuthUserDeleteRequest }
  | { op: 'userChangePassword'; req: etcdserverpb.IAuthUserChangePasswordRequest }
  | { op: 'userGrantRole'; req: etcdserverpb.IAuthUserGrantRoleRequest }
  | { op: 'userGet'; req: etcdserverpb.IAuthUserGetRequest }
  | { op: 'userRevokeRole'; req: etcdserverpb.IAuthUserRevokeRoleRequest }
  | { op: 'roleAdd'; req: etcdserverpb.IAuthRoleAddRequest }
  | { op: 'roleGrantPermission'; req: etcdserverpb.IAuthRoleGrantPermissionRequest }
  | { op: 'roleGet'; req: etcdserverpb.IAuthRoleGetRequest }
  | { op: 'roleRevokePermission'; req: etcdserverpb.IAuthRoleRevokePermissionRequest }
  | { op: 'roleDelete'; req: etcdserverpb.IAuthRoleDeleteRequest }
  | { op: 'userList' }
  | { op: 'roleList' };

/** Every Auth response's fields (header added by the caller). */
export interface AuthResponse {
  header?: etcdserverpb.IResponseHeader;
  token?: string;
  roles?: string[];
  users?: string[];
  perm?: authpb.IPermission[];
}

/** What the main thread must learn from an applied auth request (apply_protocol.ts MSG_AUTH). */
export type AuthEvent = { type: 'changed' } | { type: 'token'; user: string; token: string } | { type: 'invalidateUser'; user: string };

/** etcd's needAdminPermission: the requests only root may make once auth is enabled. */
const ADMIN_OPS = new Set<AuthRequest['op']>([
  'enable',
  'disable',
  'userAdd',
  'userDelete',
  'userChangePassword',
  'userGrantRole',
  'userRevokeRole',
  'roleAdd',
  'roleGrantPermission',
  'roleRevokePermission',
  'roleDelete',
  'userList',
  'roleList',
]);

const emptyBytes = new Uint8Array(0);

/**
 * Applies one auth request inside the caller's LMDB write transaction. Returns the response and
 * the new AuthState when the store changed (its revision bumped), pushing events for the main thread.
 */
export function applyAuth(
  dbs: Dbs,
  st: AuthState,
  ai: EntryAuth | null,
  index: number,
  r: AuthRequest,
  events: AuthEvent[],
): { resp: AuthResponse; state: AuthState } {
  const info = ai ?? { user: '', revision: 0 };
  if (ADMIN_OPS.has(r.op)) st.checkAdmin(info);
  const snap = st.snapshot;
  let changed = true;
  let resp: AuthResponse = {};
  switch (r.op) {
    case 'enable':
      if (st.enabled) return { resp, state: st }; // etcd: already enabled, ignored
      {
        const root = snap.users.get(ROOT_USER);
        if (root === undefined) throw Errors.rootUserNotExist();
        if (!hasRootRole(root)) throw Errors.rootRoleNotExist();
      }
      putAuthEnabled(dbs, true); // etcd does not bump the revision on enable
      return { resp, state: reload(dbs, events) };
    case 'disable':
      if (!st.enabled) return { resp, state: st };
      putAuthEnabled(dbs, false);
      break;
    case 'authenticate': {
      if (!st.enabled) throw Errors.authNotEnabled();
      const name = r.req.name ?? '';
      const u = snap.users.get(name);
      if (u === undefined || u.options?.noPassword) throw Errors.authFailed();
      const token = `${r.req.simpleToken ?? ''}.${index}`;
      events.push({ type: 'token', user: name, token });
      return { resp: { token }, state: st };
    }
    case 'userAdd':
      changed = userAdd(dbs, snap.users, r.req);
      break;
    case 'userDelete': {
      const name = r.req.name ?? '';
      if (st.enabled && name === ROOT_USER) throw Errors.invalidAuthMgmt();
      if (!snap.users.has(name)) throw Errors.userNotFound();
      deleteUser(dbs, name);
      events.push({ type: 'invalidateUser', user: name });
      break;
    }
    case 'userChangePassword': {
      const name = r.req.name ?? '';
      const u = snap.users.get(name);
      const hashed = hashOf(r.req.hashedPassword, r.req.password);
      if (u === undefined) throw Errors.userNotFound();
      putUser(dbs, { name: u.name, roles: u.roles, password: Buffer.from(hashed, 'utf8'), options: u.options });
      events.push({ type: 'invalidateUser', user: name });
      break;
    }
    case 'userGrantRole':
      changed = userGrantRole(dbs, snap, r.req);
      break;
    case 'userGet': {
      const name = r.req.name ?? '';
      try {
        st.checkAdmin(info);
      } catch (e) {
        if (name !== info.user) throw e;
      }
      const u = snap.users.get(name);
      if (u === undefined) throw Errors.userNotFound();
      return { resp: { roles: [...(u.roles ?? [])] }, state: st };
    }
    case 'userRevokeRole': {
      const name = r.req.name ?? '';
      const role = r.req.role ?? '';
      if (st.enabled && name === ROOT_USER && role === ROOT_ROLE) throw Errors.invalidAuthMgmt();
      const u = snap.users.get(name);
      if (u === undefined) throw Errors.userNotFound();
      const roles = (u.roles ?? []).filter((x) => x !== role);
      if (roles.length === (u.roles ?? []).length) throw Errors.roleNotGranted();
      putUser(dbs, { name: u.name, password: u.password, options: u.options, roles });
      break;
    }
    case 'roleAdd': {
      const name = r.req.name ?? '';
      if (name.length === 0) throw Errors.roleEmpty();
      if (snap.roles.has(name)) throw Errors.roleAlreadyExist();
      putRole(dbs, { name: Buffer.from(name, 'utf8'), keyPermission: [] });
      break;
    }
    case 'roleGrantPermission':
      roleGrantPermission(dbs, snap.roles, r.req);
      break;
    case 'roleGet': {
      const role = r.req.role ?? '';
      try {
        st.checkAdmin(info);
      } catch (e) {
        if (!st.hasRole(info.user, role)) throw e;
      }
      const ro = snap.roles.get(role);
      if (ro === undefined) throw Errors.roleNotFound();
      return { resp: { perm: [...(ro.keyPermission ?? [])] }, state: st };
    }
    case 'roleRevokePermission': {
      const ro = snap.roles.get(r.req.role ?? '');
      if (ro === undefined) throw Errors.roleNotFound();
      const key = Buffer.from(r.req.key ?? emptyBytes);
      const end = Buffer.from(r.req.rangeEnd ?? emptyBytes);
      const kept = (ro.keyPermission ?? []).filter(
        (p) => !(key.equals(Buffer.from(p.key ?? emptyBytes)) && end.equals(Buffer.from(p.rangeEnd ?? emptyBytes))),
      );
      if (kept.length === (ro.keyPermission ?? []).length) throw Errors.permissionNotGranted();
      putRole(dbs, { name: ro.name, keyPermission: kept });
      break;
    }
    case 'roleDelete': {
      const role = r.req.role ?? '';
      if (st.enabled && role === ROOT_ROLE) throw Errors.invalidAuthMgmt();
      if (!snap.roles.has(role)) throw Errors.roleNotFound();
      deleteRole(dbs, role);
      for (const u of snap.users.values()) {
        const roles = u.roles ?? [];
        if (roles.includes(role))
          putUser(dbs, { name: u.name, password: u.password, options: u.options, roles: roles.filter((x) => x !== role) });
      }
      break;
    }
    case 'userList':
      return { resp: { users: [...snap.users.keys()].sort(byBytes) }, state: st };
    case 'roleList':
      return { resp: { roles: [...snap.roles.keys()].sort(byBytes) }, state: st };
  }
  if (!changed) return { resp, state: st };
  putAuthRevision(dbs, st.revision + 1);
  resp = { ...resp };
  return { resp, state: reload(dbs, events) };
}

function reload(dbs: Dbs, events: AuthEvent[]): AuthState {
  events.push({ type: 'changed' });
  return new AuthState(readAuthSnapshot(dbs));
}

/** Names in LMDB key order (bytes), as etcd lists its buckets. */
function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The proposer hashes (hashedPassword, etcd 3.5's field); an entry with only a password (written by
 * a proposer that did not) is hashed here, as etcd 3.4 hashes at apply. */
function hashOf(hashed: string | null | undefined, password: string | null | undefined): string {
  if (hashed) return hashed;
  return bcrypt.hashSync(password ?? '', limits.bcryptCost);
}

function userAdd(dbs: Dbs, users: ReadonlyMap<string, authpb.IUser>, r: etcdserverpb.IAuthUserAddRequest): boolean {
  const name = r.name ?? '';
  if (name.length === 0) throw Errors.userEmpty();
  const noPassword = r.options?.noPassword === true;
  const hashed = noPassword ? '' : hashOf(r.hashedPassword, r.password);
  if (users.has(name)) throw Errors.userAlreadyExist();
  putUser(dbs, { name: Buffer.from(name, 'utf8'), password: Buffer.from(hashed, 'utf8'), roles: [], options: { noPassword } });
  return true;
}

function userGrantRole(dbs: Dbs, snap: AuthState['snapshot'], r: etcdserverpb.IAuthUserGrantRoleRequest): boolean {
  const u = snap.users.get(r.user ?? '');
  if (u === undefined) throw Errors.userNotFound();
  const role = r.role ?? '';
  if (role !== ROOT_ROLE && !snap.roles.has(role)) throw Errors.roleNotFound();
  const roles = [...(u.roles ?? [])];
  if (roles.includes(role)) return false; // etcd: already granted, ignored (no revision bump)
  roles.push(role);
  roles.sort();
  putUser(dbs, { name: u.name, password: u.password, options: u.options, roles });
  return true;
}

function roleGrantPermission(dbs: Dbs, roles: ReadonlyMap<string, authpb.IRole>, r: etcdserverpb.IAuthRoleGrantPermissionRequest): void {
  const ro = roles.get(r.name ?? '');
  if (ro === undefined) throw Errors.roleNotFound();
  const perm = r.perm ?? {};
  const key = Buffer.from(perm.key ?? emptyBytes);
  const end = Buffer.from(perm.rangeEnd ?? emptyBytes);
  const perms = [...(ro.keyPermission ?? [])];
  // etcd: the first permission whose key is >= the new key; the same key and range end is updated.
  const idx = perms.findIndex((p) => Buffer.from(p.key ?? emptyBytes).compare(key) >= 0);
  const at = idx >= 0 ? perms[idx] : undefined;
  if (at !== undefined && key.equals(Buffer.from(at.key ?? emptyBytes)) && end.equals(Buffer.from(at.rangeEnd ?? emptyBytes))) {
    perms[idx] = { key: at.key, rangeEnd: at.rangeEnd, permType: perm.permType ?? 0 };
  } else {
    perms.push({ key, rangeEnd: end, permType: perm.permType ?? 0 });
    perms.sort((a, b) => Buffer.from(a.key ?? emptyBytes).compare(Buffer.from(b.key ?? emptyBytes)));
  }
  putRole(dbs, { name: ro.name, keyPermission: perms });
}

/** etcd's checkLeasePuts: a lease may be revoked (or attached to a new key) only by a user who may
 * write every key attached to it. */
export function checkLeasePuts(dbs: Dbs, st: AuthState, ai: EntryAuth | null, leaseId: etcdserverpb.ILeaseRevokeRequest['ID']): void {
  if (!st.enabled) return;
  const { hi, lo } = int64Words(leaseId);
  if (hi === 0 && lo === 0) return;
  for (const key of leaseKeys(dbs, hi, lo)) st.checkPut(ai, key);
}
