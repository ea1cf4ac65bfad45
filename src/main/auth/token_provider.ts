// etcd's TokenProvider (auth/store.go): what a member does with tokens, whichever kind it issues.
// Two implementations: SimpleTokens (simple_token.ts, random strings held in memory on every member)
// and JwtTokens (jwt_token.ts, signed and self-describing, held nowhere). The gate (auth_gate.ts)
// and the Auth service (auth_service.ts) only see this interface.
import type { AuthInfo } from '../../shared/auth/state';

export interface TokenProvider {
  readonly type: 'simple' | 'jwt';
  /** Auth enabled: tokens may be issued (simple: starts its expiry sweep). */
  enable(): void;
  /** Auth disabled or the member stops (simple: every token ends). */
  disable(): void;
  /** The token prefix an Authenticate entry carries (etcd's genTokenPrefix): '' for JWT. */
  genTokenPrefix(): string;
  /** An Authenticate entry applied on this member with the token the apply made from the prefix
   * ("<prefix>.<index>"): simple holds it, JWT ignores it (etcd's assign at apply). */
  assigned(token: string, user: string): void;
  /**
   * The token to answer a local Authenticate with, once its entry applied at auth revision
   * `revision`: simple answers the applied token, JWT signs one. Throws etcd's error when this
   * member cannot issue tokens (a JWT member with only a public key).
   */
  issue(applied: string, user: string, revision: number): string;
  /** etcd's info(): who a token names, at which auth revision; null when it is not valid. Simple
   * tokens name the current revision (`currentRevision`), JWTs the one they were signed at. */
  info(token: string, currentRevision: number): AuthInfo | null;
  /** The user was deleted or its password changed (simple: its tokens end; JWT: nothing, the
   * revision in the token does it). */
  invalidateUser(user: string): void;
}
