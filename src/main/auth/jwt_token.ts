// etcd's JWT tokens (auth/jwt.go, auth/options.go, golang-jwt v3), on node:crypto. A token is
// base64url(header).base64url(claims).base64url(signature) with header {"alg":..,"typ":"JWT"} and
// claims {"exp":..,"revision":..,"username":..} (Go marshals map keys sorted): the user, the auth
// revision when it was issued, and when it ends (seconds). Any member holding the public key (or the
// HMAC secret) verifies a token any other member signed; nothing is held per token. A token issued
// before a change to users, roles or permissions carries an older revision and is refused by the
// permission checks ("revision of auth store is old"), as in etcd.
//
// Keys as etcd reads them: PEM files; RS*/PS* take RSA keys, ES* EC keys, HS* the raw bytes of
// priv-key as the secret. Only pub-key given: this member verifies but cannot issue tokens
// (Authenticate answers "auth: token signing attempted with verify-only key").
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import type { AuthInfo } from '../../shared/auth/state';
import { EtcdError, GrpcCode } from '../../shared/errors';
import { limits } from '../../shared/limits';
import type { JwtOptions, JwtSignMethod } from '../config';
import { ConfigError } from '../config';
import type { TokenProvider } from './token_provider';

/** etcd's ErrVerifyOnly, which the gRPC layer passes on unconverted (code Unknown). */
export const VERIFY_ONLY_MESSAGE = 'auth: token signing attempted with verify-only key';

const HASH: Record<string, string> = { '256': 'sha256', '384': 'sha384', '512': 'sha512' };
/** The curve each ES method requires (golang-jwt's CurveBits), as node names it. */
const EC_CURVE: Record<string, string> = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' };
/** Bytes of r and of s in an ES signature (JWS: fixed-width big-endian r || s). */
const EC_KEY_BYTES: Record<string, number> = { ES256: 32, ES384: 48, ES512: 66 };

type Family = 'RS' | 'PS' | 'ES' | 'HS';

interface Keys {
  /** Signs: an RSA or EC private key, or the HMAC secret; null on a verify-only member. */
  sign: crypto.KeyObject | Buffer | null;
  /** Verifies: the public key, or the HMAC secret. */
  verify: crypto.KeyObject | Buffer;
}

export interface JwtClock {
  /** Milliseconds since the epoch (Date.now). */
  nowMs(): number;
}

export class JwtTokens implements TokenProvider {
  readonly type = 'jwt';
  readonly #method: JwtSignMethod;
  readonly #family: Family;
  readonly #hash: string;
  readonly #keys: Keys;
  readonly #ttlMs: number;
  readonly #clock: JwtClock;
  /** The encoded header: every token this member issues or accepts has exactly this `alg`. */
  readonly #header: string;
  /** Tokens whose signature verified, in the order first seen (bounded: jwtVerifiedTokensMax). */
  readonly #verified = new Map<string, { claims: Record<string, unknown>; info: AuthInfo }>();

  constructor(opts: JwtOptions, clock: JwtClock = { nowMs: Date.now }) {
    this.#method = opts.signMethod;
    this.#family = opts.signMethod.slice(0, 2) as Family;
    this.#hash = HASH[opts.signMethod.slice(2)];
    this.#keys = loadKeys(opts, this.#family);
    this.#ttlMs = opts.ttlMs;
    this.#clock = clock;
    this.#header = b64url(Buffer.from(JSON.stringify({ alg: this.#method, typ: 'JWT' })));
  }

  /** Only a public key: tokens are verified here, never issued. */
  get verifyOnly(): boolean {
    return this.#keys.sign === null;
  }

  enable(): void {}
  disable(): void {}
  invalidateUser(): void {}
  assigned(): void {}

  genTokenPrefix(): string {
    return '';
  }

  issue(_applied: string, user: string, revision: number): string {
    const key = this.#keys.sign;
    if (key === null) throw new EtcdError(GrpcCode.Unknown, VERIFY_ONLY_MESSAGE);
    const exp = Math.floor((this.#clock.nowMs() + this.#ttlMs) / 1000);
    const claims = b64url(Buffer.from(`{"exp":${exp},"revision":${revision},"username":${JSON.stringify(user)}}`));
    const signingInput = this.#header + '.' + claims;
    return signingInput + '.' + b64url(this.#sign(key, Buffer.from(signingInput)));
  }

  info(token: string): AuthInfo | null {
    // A token verified before is the same bytes, so the same signature and claims: only its times are
    // checked again. A client sends its token with every call; an RS256 verification costs far more
    // than the call (and an audited call looked its caller up twice).
    const known = this.#verified.get(token);
    if (known !== undefined) {
      if (this.#timely(known.claims)) return known.info;
      this.#verified.delete(token);
      return null;
    }
    const v = this.#verify(token);
    if (v === null) return null;
    if (this.#verified.size >= limits.jwtVerifiedTokensMax) this.#verified.delete(this.#verified.keys().next().value as string);
    this.#verified.set(token, v);
    return v.info;
  }

  /** Checks the token's algorithm, signature and times; its user and revision, or null. */
  #verify(token: string): { claims: Record<string, unknown>; info: AuthInfo } | null {
    const parts = token.split('.');
    if (parts.length !== 3) return null;
    const header = decodeJson(parts[0]);
    // etcd's key function refuses a token signed with any other algorithm (no "none", no HS with
    // the public key as the secret).
    if (header === null || header.alg !== this.#method) return null;
    const sig = fromB64url(parts[2]);
    if (sig === null || !this.#verifySignature(Buffer.from(parts[0] + '.' + parts[1]), sig)) return null;
    const claims = decodeJson(parts[1]);
    if (claims === null || !this.#timely(claims)) return null;
    const user = claims.username;
    const revision = claims.revision;
    if (typeof user !== 'string' || typeof revision !== 'number') return null;
    return { claims, info: Object.freeze({ user, revision: revision < 0 ? 0 : Math.floor(revision) }) };
  }

  /** golang-jwt v3 MapClaims.Valid: exp, iat and nbf, each only when it is a number. */
  #timely(c: Record<string, unknown>): boolean {
    const now = Math.floor(this.#clock.nowMs() / 1000);
    if (typeof c.exp === 'number' && now > Math.trunc(c.exp)) return false;
    if (typeof c.iat === 'number' && now < Math.trunc(c.iat)) return false;
    if (typeof c.nbf === 'number' && now < Math.trunc(c.nbf)) return false;
    return true;
  }

  #sign(key: crypto.KeyObject | Buffer, data: Buffer): Buffer {
    switch (this.#family) {
      case 'HS':
        return crypto
          .createHmac(this.#hash, key as Buffer)
          .update(data)
          .digest();
      case 'RS':
        return crypto.sign(this.#hash, data, key as crypto.KeyObject);
      case 'PS':
        // golang-jwt signs PS* with a salt as long as the hash.
        return crypto.sign(this.#hash, data, {
          key: key as crypto.KeyObject,
          padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
          saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST,
        });
      case 'ES':
        return crypto.sign(this.#hash, data, { key: key as crypto.KeyObject, dsaEncoding: 'ieee-p1363' });
    }
  }

  #verifySignature(data: Buffer, sig: Buffer): boolean {
    const key = this.#keys.verify;
    switch (this.#family) {
      case 'HS': {
        const want = crypto
          .createHmac(this.#hash, key as Buffer)
          .update(data)
          .digest();
        return sig.length === want.length && crypto.timingSafeEqual(sig, want);
      }
      case 'RS':
        return crypto.verify(this.#hash, data, key as crypto.KeyObject, sig);
      case 'PS':
        // and verifies them with any salt length (rsa.PSSSaltLengthAuto).
        return crypto.verify(
          this.#hash,
          data,
          {
            key: key as crypto.KeyObject,
            padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
            saltLength: crypto.constants.RSA_PSS_SALTLEN_AUTO,
          },
          sig,
        );
      case 'ES':
        if (sig.length !== 2 * EC_KEY_BYTES[this.#method]) return false;
        return crypto.verify(this.#hash, data, { key: key as crypto.KeyObject, dsaEncoding: 'ieee-p1363' }, sig);
    }
  }
}

/** etcd's jwtOptions.Key: the keys the method needs, read from their files. */
function loadKeys(o: JwtOptions, family: Family): Keys {
  const read = (file: string): Buffer | null => {
    if (file === '') return null;
    try {
      return fs.readFileSync(file);
    } catch (e) {
      throw new ConfigError(`--auth-token jwt: auth: invalid auth options (${(e as Error).message})`);
    }
  };
  const privPem = read(o.privKeyFile);
  if (family === 'HS') {
    if (privPem === null || privPem.length === 0) throw new ConfigError('--auth-token jwt: auth: missing key data');
    return { sign: privPem, verify: privPem };
  }
  const pubPem = read(o.pubKeyFile);
  const wantType = family === 'ES' ? 'ec' : 'rsa';
  const priv = privPem === null || privPem.length === 0 ? null : parseKey(() => crypto.createPrivateKey(privPem), 'priv-key', wantType);
  const pub = pubPem === null || pubPem.length === 0 ? null : parseKey(() => crypto.createPublicKey(pubPem), 'pub-key', wantType);
  if (priv === null && pub === null) throw new ConfigError('--auth-token jwt: auth: missing key data');
  if (family === 'ES') {
    // etcd starts with a key of another curve and then fails every Authenticate; refused here instead.
    for (const k of [priv, pub]) {
      if (k !== null && k.asymmetricKeyDetails?.namedCurve !== EC_CURVE[o.signMethod]) {
        throw new ConfigError(
          `--auth-token jwt: ${o.signMethod} needs a key on curve ${EC_CURVE[o.signMethod]}, not ${k.asymmetricKeyDetails?.namedCurve}`,
        );
      }
    }
  }
  if (priv !== null && pub !== null && !samePublicKey(crypto.createPublicKey(priv), pub)) {
    throw new ConfigError("--auth-token jwt: auth: public and private keys don't match");
  }
  return { sign: priv, verify: pub ?? crypto.createPublicKey(priv as crypto.KeyObject) };
}

function parseKey(make: () => crypto.KeyObject, what: string, wantType: string): crypto.KeyObject {
  let k: crypto.KeyObject;
  try {
    k = make();
  } catch (e) {
    throw new ConfigError(`--auth-token jwt: ${what}: ${(e as Error).message}`);
  }
  if (k.asymmetricKeyType !== wantType) {
    throw new ConfigError(`--auth-token jwt: ${what}: an ${wantType.toUpperCase()} key is needed, not ${k.asymmetricKeyType}`);
  }
  return k;
}

function samePublicKey(a: crypto.KeyObject, b: crypto.KeyObject): boolean {
  return a.export({ type: 'spki', format: 'der' }).equals(b.export({ type: 'spki', format: 'der' }));
}

function b64url(b: Buffer): string {
  return b.toString('base64url');
}

/** Strict base64url without padding, as golang-jwt's DecodeSegment (padding is tolerated there too). */
function fromB64url(s: string): Buffer | null {
  const t = s.replace(/=+$/, '');
  if (!/^[A-Za-z0-9_-]*$/.test(t) || t.length % 4 === 1) return null;
  return Buffer.from(t, 'base64url');
}

function decodeJson(seg: string): Record<string, unknown> | null {
  const b = fromB64url(seg);
  if (b === null) return null;
  try {
    const v: unknown = JSON.parse(b.toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
