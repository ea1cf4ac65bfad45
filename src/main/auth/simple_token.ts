// etcd's simple tokens (auth/simple_token.go): "<16 random letters>.<raft index>", assigned on every
// member when the Authenticate entry applies (so a token works on any member), valid while used at
// least once per TTL (--auth-token-ttl, 300 s: every use renews it), dropped when the user is deleted
// or its password changes, and all dropped when auth is disabled. The map is bounded
// (limits.simpleTokensMax; the oldest token goes first), which etcd's is not.
import { randomInt } from 'node:crypto';
import type { AuthInfo } from '../../shared/auth/state';
import { limits } from '../../shared/limits';
import type { TokenProvider } from './token_provider';

const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
const PREFIX_LENGTH = 16;

/** etcd's genTokenPrefix: 16 letters from a cryptographic source. */
export function simpleTokenPrefix(): string {
  let s = '';
  for (let i = 0; i < PREFIX_LENGTH; i++) s += LETTERS[randomInt(LETTERS.length)];
  return s;
}

interface Held {
  user: string;
  expiresMs: number;
}

export class SimpleTokens implements TokenProvider {
  readonly type = 'simple';
  readonly #ttlMs: number;
  readonly #now: () => number;
  /** token -> user and expiry; Map order is assignment order (the oldest is dropped when full). */
  #tokens = new Map<string, Held>();
  #timer: NodeJS.Timeout | null = null;

  constructor(ttlMs: number, now: () => number = Date.now) {
    this.#ttlMs = ttlMs > 0 ? ttlMs : limits.simpleTokenTtlMs;
    this.#now = now;
  }

  get enabled(): boolean {
    return this.#timer !== null;
  }

  get size(): number {
    return this.#tokens.size;
  }

  /** Auth enabled: tokens may be assigned; expired ones are swept every second (etcd's TTL keeper). */
  enable(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => this.sweep(), limits.simpleTokenSweepMs);
    this.#timer.unref();
  }

  /** Auth disabled (or the member stops): every token ends. */
  disable(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#tokens.clear();
  }

  genTokenPrefix(): string {
    return simpleTokenPrefix();
  }

  /** A local Authenticate is answered with the token its entry assigned. */
  issue(applied: string): string {
    return applied;
  }

  info(token: string, currentRevision: number): AuthInfo | null {
    const user = this.user(token);
    return user === null ? null : { user, revision: currentRevision };
  }

  /** An Authenticate applied. Ignored while disabled, as etcd's keeper is nil then. */
  assigned(token: string, user: string): void {
    if (this.#timer === null) return;
    if (this.#tokens.size >= limits.simpleTokensMax) {
      const oldest = this.#tokens.keys().next();
      if (!oldest.done) this.#tokens.delete(oldest.value);
    }
    this.#tokens.set(token, { user, expiresMs: this.#now() + this.#ttlMs });
  }

  /** The token's user, renewing it; null when unknown or expired. */
  user(token: string): string | null {
    const h = this.#tokens.get(token);
    if (h === undefined) return null;
    const now = this.#now();
    if (now > h.expiresMs) {
      this.#tokens.delete(token);
      return null;
    }
    h.expiresMs = now + this.#ttlMs;
    return h.user;
  }

  invalidateUser(user: string): void {
    for (const [t, h] of this.#tokens) if (h.user === user) this.#tokens.delete(t);
  }

  sweep(): void {
    const now = this.#now();
    for (const [t, h] of this.#tokens) if (now > h.expiresMs) this.#tokens.delete(t);
  }
}
