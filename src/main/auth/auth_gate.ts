// Who is calling, and may they: the main thread's side of authentication. It follows the auth store
// the apply worker changes (MSG_AUTH: reload after a change, tokens assigned and ended), resolves a
// call's credentials as etcd's AuthInfoFromCtx and AuthInfoFromTLS do (the `token` or
// `authorization` metadata first; else, with --client-cert-auth, the verified client certificate's
// common name), and answers the permission checks made before serving a read, a watch or an
// admin-only call. Writes are checked again where they apply (workers/mvcc/auth_apply.ts).
// Never logs a password or a token.
import type { AuthMsg } from '../../shared/apply_protocol';
import type { EntryAuth } from '../../shared/entry';
import { Errors, EtcdError, GrpcCode } from '../../shared/errors';
import { AuthInfo, AuthState } from '../../shared/auth/state';
import type { AuthSnapshot } from '../../shared/mvcc/store';
import type { CallContext } from '../net/rpc';
import type { Logger } from '../log';
import type { TokenProvider } from './token_provider';

/** What a call's credentials come from. */

/** #resolve's answer for a token that names nobody (unknown, forged, expired). */
const INVALID = Symbol('invalid auth token');
export type AuthContext = Partial<Pick<CallContext, 'metadata' | 'peerCertificateCN'>>;

export interface AuthGateDeps {
  /** Reads the auth store (MvccStore.authSnapshot). */
  snapshot: () => AuthSnapshot;
  /** Registers for applied auth changes (RaftNode.onAuthApplied). */
  onAuthApplied: (fn: (m: AuthMsg) => void) => void;
  /** --client-cert-auth: only then is a certificate's CN a user, as etcd. */
  clientCertAuth: boolean;
  /** Simple tokens or JWT (--auth-token): made by the member from the flags. */
  tokens: TokenProvider;
  log: Logger;
}

/** etcd's gRPC error text -> the auth package's own (auth/store.go), for the unconverted paths. */
const RAW_AUTH_ERRORS = new Map<string, string>([
  [Errors.userEmpty().message, 'auth: user name is empty'],
  [Errors.userNotFound().message, 'auth: user not found'],
  [Errors.permissionDenied().message, 'auth: permission denied'],
  [Errors.invalidAuthToken().message, 'auth: invalid auth token'],
]);

/** No credentials: etcd's empty AuthInfo, which a check refuses with "user name is empty". */
export const NO_AUTH: EntryAuth = { user: '', revision: 0 };

export class AuthGate {
  readonly #d: AuthGateDeps;
  readonly tokens: TokenProvider;
  #state: AuthState;

  constructor(d: AuthGateDeps) {
    this.#d = d;
    this.tokens = d.tokens;
    this.#state = new AuthState(d.snapshot());
    if (this.#state.enabled) this.tokens.enable();
    d.onAuthApplied((m) => this.#onApplied(m));
  }

  get state(): AuthState {
    return this.#state;
  }

  get enabled(): boolean {
    return this.#state.enabled;
  }

  /** Whether a local read must go through serialized(): auth is on, or the call carries a token (an
   * unknown one is refused). Otherwise the read runs as it is, with no closure or promise of its own. */
  mustCheck(ctx: AuthContext | undefined): boolean {
    const md = ctx?.metadata;
    return this.#state.enabled || md?.token !== undefined || md?.authorization !== undefined;
  }

  #onApplied(m: AuthMsg): void {
    switch (m.type) {
      case 'changed': {
        const was = this.#state.enabled;
        this.#state = new AuthState(this.#d.snapshot());
        if (this.#state.enabled && !was) {
          this.tokens.enable();
          this.#d.log.info('enabled authentication');
        } else if (!this.#state.enabled && was) {
          this.tokens.disable();
          this.#d.log.info('disabled authentication');
        }
        return;
      }
      case 'token':
        this.tokens.assigned(m.token, m.user);
        return;
      case 'invalidateUser':
        this.tokens.invalidateUser(m.user);
        return;
    }
  }

  /**
   * etcd's AuthInfoFromCtx, then AuthInfoFromTLS: a token names its user (a simple token at the
   * current auth revision, a JWT at the one it was signed at; an unknown, forged or expired one is "invalid auth token", even with auth disabled, as etcd); without a
   * token, the verified certificate's CN with --client-cert-auth; else null (no credentials).
   */
  authInfo(ctx: AuthContext | undefined): AuthInfo | null {
    const ai = this.#resolve(ctx);
    if (ai === INVALID) {
      this.#d.log.warn('invalid auth token');
      throw Errors.invalidAuthToken();
    }
    return ai;
  }

  /** The caller's user name for the audit log ('' for none or an invalid token), without authInfo's
   * warning: the request's own check has already logged and refused an invalid token. */
  userOf(ctx: AuthContext | undefined): string {
    const ai = this.#resolve(ctx);
    return ai === null || ai === INVALID ? '' : ai.user;
  }

  /** authInfo without its warning and error: INVALID for a token that names nobody. */
  #resolve(ctx: AuthContext | undefined): AuthInfo | null | typeof INVALID {
    const md = ctx?.metadata;
    const token = md?.token ?? md?.authorization;
    if (token !== undefined) return this.tokens.info(token, this.#state.revision) ?? INVALID;
    const cn = ctx?.peerCertificateCN;
    if (this.#d.clientCertAuth && cn !== undefined && cn !== '') return { user: cn, revision: this.#state.revision };
    return null;
  }

  /** The auth fields of a client's proposal (shared/entry.ts): never null for a client. */
  entryAuth(ctx: AuthContext | undefined): EntryAuth {
    return this.authInfo(ctx) ?? NO_AUTH;
  }

  /** etcd's doSerialize around a local read: the check before, and after it a changed auth store
   * refuses the answer ("revision of auth store is old"). */
  async serialized<T>(
    ctx: AuthContext | undefined,
    check: (st: AuthState, ai: AuthInfo | null) => void,
    read: () => Promise<T> | T,
  ): Promise<T> {
    const ai = this.authInfo(ctx);
    check(this.#state, ai);
    const out = await read();
    if (ai !== null && ai.revision !== 0 && ai.revision !== this.#state.revision) throw Errors.authOldRevision();
    return out;
  }

  /** etcd's IsAdminPermitted for calls checked before they run (membership: etcd's gRPC errors). */
  checkAdmin(ctx: AuthContext | undefined): void {
    if (!this.#state.enabled) {
      this.authInfo(ctx); // an invalid token is refused even so, as etcd's AuthInfoFromCtx
      return;
    }
    this.#state.checkAdmin(this.authInfo(ctx));
  }

  /** The same for the Maintenance service, whose authMaintenanceServer returns the auth package's
   * errors unconverted in etcd 3.4: code Unknown, "auth: ..." text. */
  checkAdminMaintenance(ctx: AuthContext | undefined): void {
    try {
      this.checkAdmin(ctx);
    } catch (e) {
      const raw = e instanceof EtcdError ? RAW_AUTH_ERRORS.get(e.message) : undefined;
      throw raw === undefined ? e : new EtcdError(GrpcCode.Unknown, raw);
    }
  }

  stop(): void {
    this.tokens.disable();
  }
}
