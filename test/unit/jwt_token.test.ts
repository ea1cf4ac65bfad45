// Checks the JWT token provider (src/main/auth/jwt_token.ts) on its own: for every sign method etcd
// 3.4 accepts, a token it issues carries etcd's claims and verifies; with a clock moved past `exp`
// it is refused; a changed claim, a signature from another key, another algorithm in the header
// ("none", HS256 keyed with the public key) and malformed tokens are refused; a member given only
// the public key verifies tokens but cannot issue them; bad keys are refused at start. Keys are
// generated with node:crypto into a temp dir, as PEM files the way etcd reads them. Signatures are
// cross-checked with openssl where it is installed, so the provider cannot agree only with itself.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, JWT_SIGN_METHODS, JwtOptions, JwtSignMethod } from '../../src/main/config';
import { limits } from '../../src/shared/limits';
import { JwtTokens, VERIFY_ONLY_MESSAGE } from '../../src/main/auth/jwt_token';
import { writeJwtKeys } from '../support/jwt_keys';

const b64json = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
const part = (token: string, i: number): Record<string, unknown> => JSON.parse(Buffer.from(token.split('.')[i], 'base64url').toString());

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('JWT tokens (etcd 3.4 auth/jwt.go)', () => {
  let dir: string;
  const keys = new Map<JwtSignMethod, { priv: string; pub: string }>();
  const opts = (m: JwtSignMethod, o: Partial<JwtOptions> = {}): JwtOptions => ({
    signMethod: m,
    privKeyFile: keys.get(m)?.priv ?? '',
    pubKeyFile: keys.get(m)?.pub ?? '',
    ttlMs: 300_000,
    ...o,
  });

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jwt-unit-'));
    for (const m of JWT_SIGN_METHODS) keys.set(m, writeJwtKeys(dir, m));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const m of JWT_SIGN_METHODS) {
    it(`${m}: issues etcd's claims, verifies them, refuses a forged or expired token`, () => {
      let now = 1_700_000_000_000;
      const t = new JwtTokens(opts(m, { ttlMs: 600_000 }), { nowMs: () => now });
      const tok = t.issue('.7', 'alice', 42);
      assert.deepEqual(part(tok, 0), { alg: m, typ: 'JWT' });
      assert.deepEqual(part(tok, 1), { exp: 1_700_000_600, revision: 42, username: 'alice' });
      assert.deepEqual(t.info(tok), { user: 'alice', revision: 42 });
      // Another member with the same keys (or only the public key) accepts it.
      const other = new JwtTokens(opts(m, m.startsWith('HS') ? {} : { privKeyFile: '' }), { nowMs: () => now });
      assert.deepEqual(other.info(tok), { user: 'alice', revision: 42 });
      // A changed claim under the old signature.
      const [h, , s] = tok.split('.');
      assert.equal(t.info(`${h}.${b64json({ exp: 1_700_000_600, revision: 42, username: 'root' })}.${s}`), null);
      assert.equal(t.info(`${h}.${b64json({ exp: 1_800_000_000, revision: 42, username: 'alice' })}.${s}`), null);
      // A signature by another key of the same kind.
      const otherDir = fs.mkdtempSync(path.join(dir, 'other-'));
      const forger = new JwtTokens({ ...opts(m), ...writeJwtKeysAs(otherDir, m) }, { nowMs: () => now });
      assert.equal(t.info(forger.issue('', 'alice', 42)), null);
      // A flipped bit in the signature.
      const sig = Buffer.from(s, 'base64url');
      sig[sig.length >> 1] ^= 1;
      assert.equal(t.info(`${h}.${tok.split('.')[1]}.${sig.toString('base64url')}`), null);
      // Expiry: valid through the second of exp, refused after it (golang-jwt: now <= exp).
      now += 600_000 + 999;
      assert.deepEqual(t.info(tok), { user: 'alice', revision: 42 });
      now += 1;
      assert.equal(t.info(tok), null);
    });
  }

  it('remembers verified tokens up to a bound, and still checks their expiry', () => {
    let now = 1_700_000_000_000;
    const t = new JwtTokens(opts('HS256', { ttlMs: 60_000 }), { nowMs: () => now });
    const first = t.issue('', 'u0', 1);
    assert.deepEqual(t.info(first), { user: 'u0', revision: 1 });
    // More distinct tokens than are remembered: each verifies; the first, forgotten, verifies again.
    for (let i = 1; i <= limits.jwtVerifiedTokensMax + 10; i++) assert.equal(t.info(t.issue('', `u${i}`, 1))?.user, `u${i}`);
    assert.deepEqual(t.info(first), { user: 'u0', revision: 1 });
    // A remembered token is refused once expired, and a tampered copy of it is never taken for it.
    const [h, c, sig] = first.split('.');
    assert.equal(t.info(`${h}.${c}.${sig.slice(0, -2)}${sig.endsWith('AA') ? 'BB' : 'AA'}`), null);
    now += 61_000;
    assert.equal(t.info(first), null);
  });

  it('refuses another algorithm in the header: none, HS256 keyed with the public key', () => {
    const t = new JwtTokens(opts('RS256'));
    const claims = b64json({ exp: Math.floor(Date.now() / 1000) + 60, revision: 1, username: 'root' });
    assert.equal(t.info(`${b64json({ alg: 'none', typ: 'JWT' })}.${claims}.`), null);
    const pubPem = fs.readFileSync(keys.get('RS256')!.pub);
    const hs = b64json({ alg: 'HS256', typ: 'JWT' });
    const mac = crypto.createHmac('sha256', pubPem).update(`${hs}.${claims}`).digest('base64url');
    assert.equal(t.info(`${hs}.${claims}.${mac}`), null);
    const rs = new JwtTokens(opts('RS384'));
    assert.equal(rs.info(t.issue('', 'root', 1)), null, 'RS256 token on an RS384 member');
  });

  it('refuses malformed tokens and claims of the wrong type', () => {
    const t = new JwtTokens(opts('HS256'));
    for (const bad of ['', 'abc', 'a.b', 'a.b.c.d', '!!.??.**', 'abcdefgh.YWJj.YWJj']) assert.equal(t.info(bad), null, bad);
    const secret = fs.readFileSync(keys.get('HS256')!.priv);
    const mint = (claims: unknown): string => {
      const input = `${b64json({ alg: 'HS256', typ: 'JWT' })}.${b64json(claims)}`;
      return `${input}.${crypto.createHmac('sha256', secret).update(input).digest('base64url')}`;
    };
    assert.deepEqual(t.info(mint({ revision: 3, username: 'u' })), { user: 'u', revision: 3 }, 'no exp: valid, as golang-jwt');
    assert.equal(t.info(mint({ revision: '3', username: 'u' })), null, 'revision must be a number');
    assert.equal(t.info(mint({ revision: 3, username: 7 })), null, 'username must be a string');
    assert.equal(t.info(mint({ revision: 3, username: 'u', nbf: Math.floor(Date.now() / 1000) + 100 })), null, 'not before');
    assert.equal(t.info(mint([1, 2])), null);
  });

  it('only a public key: verifies, cannot issue (etcd ErrVerifyOnly)', () => {
    const full = new JwtTokens(opts('PS256'));
    const verifier = new JwtTokens(opts('PS256', { privKeyFile: '' }));
    assert.equal(verifier.verifyOnly, true);
    assert.deepEqual(verifier.info(full.issue('', 'bob', 5)), { user: 'bob', revision: 5 });
    assert.throws(
      () => verifier.issue('', 'bob', 5),
      (e: Error) => e.message === VERIFY_ONLY_MESSAGE,
    );
  });

  it('refuses unusable keys at start', () => {
    const refuses = (o: JwtOptions, re: RegExp): void =>
      assert.throws(
        () => new JwtTokens(o),
        (e: Error) => e instanceof ConfigError && re.test(e.message),
      );
    refuses(opts('RS256', { privKeyFile: '', pubKeyFile: '' }), /auth: missing key data/);
    refuses(opts('HS256', { privKeyFile: '' }), /auth: missing key data/);
    refuses(opts('RS256', { privKeyFile: path.join(dir, 'absent.key') }), /auth: invalid auth options \(ENOENT/);
    refuses(opts('RS256', { privKeyFile: keys.get('ES256')!.priv, pubKeyFile: '' }), /an RSA key is needed, not ec/);
    refuses(opts('ES384', { privKeyFile: keys.get('ES256')!.priv, pubKeyFile: '' }), /ES384 needs a key on curve secp384r1/);
    refuses(opts('RS256', { pubKeyFile: keys.get('RS384')!.pub }), /public and private keys don't match/);
  });

  it('signatures agree with openssl (RS256, PS256, ES256)', function () {
    if (!hasOpenssl()) this.skip();
    for (const m of ['RS256', 'PS256', 'ES256'] as const) {
      const tok = new JwtTokens(opts(m)).issue('', 'carol', 9);
      const [h, c, s] = tok.split('.');
      const data = path.join(dir, 'input');
      const sigFile = path.join(dir, 'sig');
      fs.writeFileSync(data, `${h}.${c}`);
      let sig: Buffer = Buffer.from(s, 'base64url');
      if (m === 'ES256') sig = p1363ToDer(sig);
      fs.writeFileSync(sigFile, sig);
      const args = ['dgst', '-sha256', '-verify', keys.get(m)!.pub, '-signature', sigFile];
      if (m === 'PS256') args.push('-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32');
      assert.match(execFileSync('openssl', [...args, data]).toString(), /Verified OK/, m);
    }
  });
});

function writeJwtKeysAs(d: string, m: JwtSignMethod): Pick<JwtOptions, 'privKeyFile' | 'pubKeyFile'> {
  const k = writeJwtKeys(d, m);
  return { privKeyFile: k.priv, pubKeyFile: k.pub };
}

/** r || s (JWS) -> the DER SEQUENCE openssl verifies. */
function p1363ToDer(sig: Buffer): Buffer {
  const int = (b: Buffer): Buffer => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    let v = b.subarray(i);
    if (v[0] & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
    return Buffer.concat([Buffer.from([0x02, v.length]), v]);
  };
  const half = sig.length / 2;
  const body = Buffer.concat([int(sig.subarray(0, half)), int(sig.subarray(half))]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}
