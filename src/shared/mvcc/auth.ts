// The auth store in LMDB (table `auth`), as etcd keeps it in its auth, authUsers and authRoles buckets:
//   meta/enabled       -> 1 byte, 1 when authentication is enabled (etcd's authEnabled)
//   meta/revision      -> u64 big endian, bumped by every change (etcd's authRevision)
//   user/<name>        -> authpb.User  (password: the bcrypt hash, as etcd stores it)
//   role/<name>        -> authpb.Role  (keyPermission sorted by key, as etcd keeps it)
// A name too long for an LMDB key (etcd has no such limit) is stored under its first bytes and its
// hash (fitKey, long_keys.ts); names are read from the records, never from the keys.
// Changed only by the apply worker, in the same LMDB transaction as the entry's applied index.
import { authpb } from '../gen/etcd';
import { Dbs } from './dbs';
import { fitKey } from './long_keys';

const enabledKey = Buffer.from('meta/enabled');
const revisionKey = Buffer.from('meta/revision');
const userPrefix = 'user/';
const rolePrefix = 'role/';

function authKey(prefix: string, name: string): Buffer {
  return fitKey(Buffer.from(prefix), Buffer.from(name, 'utf8'));
}

/** Everything the auth store holds, decoded (small: read whole after each change). */
export interface AuthSnapshot {
  enabled: boolean;
  revision: number;
  users: Map<string, authpb.IUser>;
  roles: Map<string, authpb.IRole>;
}

export function readAuthSnapshot(dbs: Dbs): AuthSnapshot {
  const en = dbs.auth.getBinary(enabledKey);
  const rev = dbs.auth.getBinary(revisionKey);
  const users = new Map<string, authpb.IUser>();
  const roles = new Map<string, authpb.IRole>();
  for (const { value } of dbs.auth.getRange({ start: Buffer.from(userPrefix), end: Buffer.from('user0') }) as Iterable<{
    key: Buffer;
    value: Buffer;
  }>) {
    const u = authpb.User.decode(value);
    users.set(Buffer.from(u.name ?? new Uint8Array(0)).toString('utf8'), u);
  }
  for (const { value } of dbs.auth.getRange({ start: Buffer.from(rolePrefix), end: Buffer.from('role0') }) as Iterable<{
    key: Buffer;
    value: Buffer;
  }>) {
    const r = authpb.Role.decode(value);
    roles.set(Buffer.from(r.name ?? new Uint8Array(0)).toString('utf8'), r);
  }
  return {
    enabled: en !== undefined && en[0] === 1,
    revision: rev === undefined ? 1 : Number(Buffer.from(rev).readBigUInt64BE(0)),
    users,
    roles,
  };
}

/** The enabled flag as stored: undefined when auth was never enabled or disabled (etcd then has no authEnabled key). */
export function readAuthEnabledRecord(dbs: Dbs): boolean | undefined {
  const en = dbs.auth.getBinary(enabledKey);
  return en === undefined ? undefined : en[0] === 1;
}

export function putAuthEnabled(dbs: Dbs, enabled: boolean): void {
  dbs.auth.putSync(enabledKey, Buffer.from([enabled ? 1 : 0]));
}

export function putAuthRevision(dbs: Dbs, revision: number): void {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(revision));
  dbs.auth.putSync(revisionKey, b);
}

export function putUser(dbs: Dbs, user: authpb.IUser): void {
  const name = Buffer.from(user.name ?? new Uint8Array(0)).toString('utf8');
  dbs.auth.putSync(authKey(userPrefix, name), Buffer.from(authpb.User.encode(user).finish()));
}

export function deleteUser(dbs: Dbs, name: string): void {
  dbs.auth.removeSync(authKey(userPrefix, name));
}

export function putRole(dbs: Dbs, role: authpb.IRole): void {
  const name = Buffer.from(role.name ?? new Uint8Array(0)).toString('utf8');
  dbs.auth.putSync(authKey(rolePrefix, name), Buffer.from(authpb.Role.encode(role).finish()));
}

export function deleteRole(dbs: Dbs, name: string): void {
  dbs.auth.removeSync(authKey(rolePrefix, name));
}
