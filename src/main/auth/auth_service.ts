// etcd's Auth gRPC service (api/v3rpc/auth.go, etcdserver/v3_server.go): every request goes through
// the log, as in etcd (list and get too, so they see every change before them), with the caller's
// user in the entry for the admin checks made at apply. Passwords are hashed here, before the
// proposal (etcd 3.5's hashedPassword), so the log never holds one; Authenticate checks the password
// here against the applied store and proposes only the user name and a fresh token prefix.
import { etcdserverpb } from '../../shared/gen/etcd';
import { RequestKind } from '../../shared/entry';
import { decodeRequest, Errors } from '../../shared/errors';
import type { Registrar } from '../net/rpc';
import type { OnCancel } from '../node/node';
import type { EntryAuth } from '../../shared/entry';
import type { Logger } from '../log';
import { AuthGate } from './auth_gate';

export interface AuthServiceDeps {
  gate: AuthGate;
  propose: (kind: RequestKind, body: Uint8Array, onCancel: OnCancel | undefined, auth: EntryAuth) => Promise<Uint8Array>;
  /** A ReadIndex barrier (Authenticate reads the store linearizably, as etcd). */
  readBarrier: () => Promise<void>;
  /** bcrypt of a new password at the member's --bcrypt-cost, off the event loop (the bcrypt pool). */
  hashPassword: (password: string) => Promise<string>;
  /** Whether password matches a stored bcrypt hash (constant time), off the event loop. */
  checkPassword: (password: string, hash: string) => Promise<boolean>;
  log: Logger;
}

const SVC = '/etcdserverpb.Auth/';

/** Requests proposed as the client sent them; the reads among them may be repeated. */
const PLAIN: ReadonlyArray<[string, RequestKind, 'read' | 'write']> = [
  ['AuthEnable', RequestKind.AuthEnable, 'write'],
  ['AuthDisable', RequestKind.AuthDisable, 'write'],
  ['UserGet', RequestKind.AuthUserGet, 'read'],
  ['UserList', RequestKind.AuthUserList, 'read'],
  ['UserDelete', RequestKind.AuthUserDelete, 'write'],
  ['UserGrantRole', RequestKind.AuthUserGrantRole, 'write'],
  ['UserRevokeRole', RequestKind.AuthUserRevokeRole, 'write'],
  ['RoleAdd', RequestKind.AuthRoleAdd, 'write'],
  ['RoleGet', RequestKind.AuthRoleGet, 'read'],
  ['RoleList', RequestKind.AuthRoleList, 'read'],
  ['RoleDelete', RequestKind.AuthRoleDelete, 'write'],
  ['RoleGrantPermission', RequestKind.AuthRoleGrantPermission, 'write'],
  ['RoleRevokePermission', RequestKind.AuthRoleRevokePermission, 'write'],
];

/** Decoders that refuse malformed requests before they reach the log. */
const DECODERS: Partial<Record<RequestKind, (b: Uint8Array) => unknown>> = {
  [RequestKind.AuthEnable]: (b) => etcdserverpb.AuthEnableRequest.decode(b),
  [RequestKind.AuthDisable]: (b) => etcdserverpb.AuthDisableRequest.decode(b),
  [RequestKind.AuthUserGet]: (b) => etcdserverpb.AuthUserGetRequest.decode(b),
  [RequestKind.AuthUserList]: (b) => etcdserverpb.AuthUserListRequest.decode(b),
  [RequestKind.AuthUserDelete]: (b) => etcdserverpb.AuthUserDeleteRequest.decode(b),
  [RequestKind.AuthUserGrantRole]: (b) => etcdserverpb.AuthUserGrantRoleRequest.decode(b),
  [RequestKind.AuthUserRevokeRole]: (b) => etcdserverpb.AuthUserRevokeRoleRequest.decode(b),
  [RequestKind.AuthRoleAdd]: (b) => etcdserverpb.AuthRoleAddRequest.decode(b),
  [RequestKind.AuthRoleGet]: (b) => etcdserverpb.AuthRoleGetRequest.decode(b),
  [RequestKind.AuthRoleList]: (b) => etcdserverpb.AuthRoleListRequest.decode(b),
  [RequestKind.AuthRoleDelete]: (b) => etcdserverpb.AuthRoleDeleteRequest.decode(b),
  [RequestKind.AuthRoleGrantPermission]: (b) => etcdserverpb.AuthRoleGrantPermissionRequest.decode(b),
  [RequestKind.AuthRoleRevokePermission]: (b) => etcdserverpb.AuthRoleRevokePermissionRequest.decode(b),
};

export function registerAuthService(t: Registrar, d: AuthServiceDeps): void {
  for (const [method, kind, mk] of PLAIN) {
    t.addUnary(
      SVC + method,
      (b, ctx) => {
        decodeRequest(() => DECODERS[kind]?.(b));
        return d.propose(kind, b, ctx.onCancel, d.gate.entryAuth(ctx));
      },
      mk,
    );
  }
  t.addUnary(SVC + 'UserAdd', async (b, ctx) => {
    const r = decodeRequest(() => etcdserverpb.AuthUserAddRequest.decode(b));
    const auth = d.gate.entryAuth(ctx);
    d.gate.state.checkAdmin(auth); // before spending a hash on a caller the apply would refuse
    const noPassword = r.options?.noPassword === true;
    const hashedPassword = noPassword || r.hashedPassword ? (r.hashedPassword ?? '') : await d.hashPassword(r.password ?? '');
    const body = etcdserverpb.AuthUserAddRequest.encode({ name: r.name, options: r.options, hashedPassword }).finish();
    return d.propose(RequestKind.AuthUserAdd, body, ctx.onCancel, auth);
  });
  t.addUnary(SVC + 'UserChangePassword', async (b, ctx) => {
    const r = decodeRequest(() => etcdserverpb.AuthUserChangePasswordRequest.decode(b));
    const auth = d.gate.entryAuth(ctx);
    d.gate.state.checkAdmin(auth);
    const hashedPassword = r.hashedPassword ? r.hashedPassword : await d.hashPassword(r.password ?? '');
    const body = etcdserverpb.AuthUserChangePasswordRequest.encode({ name: r.name, hashedPassword }).finish();
    return d.propose(RequestKind.AuthUserChangePassword, body, ctx.onCancel, auth);
  });
  t.addUnary(SVC + 'Authenticate', (b, ctx) =>
    authenticate(
      d,
      decodeRequest(() => etcdserverpb.AuthenticateRequest.decode(b)),
      ctx.onCancel,
    ),
  );
}

/**
 * etcd's EtcdServer.Authenticate: after a ReadIndex barrier, check the password against the store
 * (bcrypt compares in constant time), then propose the user name with a new token prefix; the token
 * ("<prefix>.<index>") is assigned when the entry applies, on every member. If the store changed
 * between the check and the apply, check again.
 */
async function authenticate(d: AuthServiceDeps, r: etcdserverpb.AuthenticateRequest, onCancel: OnCancel | undefined): Promise<Uint8Array> {
  await d.readBarrier();
  for (;;) {
    const st = d.gate.state;
    if (!st.enabled) throw Errors.authNotEnabled();
    const u = st.user(r.name);
    if (u === undefined) return refuse(d, r.name, Errors.authFailed());
    if (u.options?.noPassword) return refuse(d, r.name, Errors.noPasswordUser());
    const stored = Buffer.from(u.password ?? new Uint8Array(0)).toString('utf8');
    if (!(await d.checkPassword(r.password, stored))) {
      d.log.info('invalid password', { 'user-name': r.name });
      return refuse(d, r.name, Errors.authFailed());
    }
    const prefix = d.gate.tokens.genTokenPrefix();
    const body = etcdserverpb.InternalAuthenticateRequest.encode({ name: r.name, simpleToken: prefix }).finish();
    const resp = await d.propose(RequestKind.Authenticate, body, onCancel, { user: '', revision: 0 });
    if (d.gate.state.revision === st.revision) return issue(d, resp, r.name, st.revision);
    d.log.info('revision when password checked became stale; retrying');
  }
}

/** The answer to a local Authenticate whose entry applied at auth revision `revision`: the simple
 * token the apply assigned, or a JWT signed here with that revision (etcd's assign at apply). */
function issue(d: AuthServiceDeps, resp: Uint8Array, user: string, revision: number): Uint8Array {
  if (d.gate.tokens.type === 'simple') return resp;
  const applied = etcdserverpb.AuthenticateResponse.decode(resp);
  const token = d.gate.tokens.issue(applied.token, user, revision);
  return etcdserverpb.AuthenticateResponse.encode({ header: applied.header, token }).finish();
}

function refuse(d: AuthServiceDeps, user: string, e: Error): never {
  d.log.warn('invalid authentication was requested', { user, error: e.message });
  throw e;
}
