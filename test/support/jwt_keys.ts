// JWT key files for tests, written the way etcd reads them (PEM: PKCS#8 private, SPKI public; HS*:
// the secret's bytes), generated with node:crypto.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { JwtSignMethod } from '../../src/main/config';

const CURVE: Record<string, string> = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' };

/** Writes a key pair for `method` (PKCS#8 private, SPKI public; HS*: a secret) and returns the paths. */
export function writeJwtKeys(dir: string, method: JwtSignMethod): { priv: string; pub: string } {
  const priv = path.join(dir, `${method}.key`);
  const pub = path.join(dir, `${method}.pub`);
  if (method.startsWith('HS')) {
    fs.writeFileSync(priv, crypto.randomBytes(32).toString('hex'));
    return { priv, pub: '' };
  }
  const kp = method.startsWith('ES')
    ? crypto.generateKeyPairSync('ec', { namedCurve: CURVE[method] })
    : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  fs.writeFileSync(priv, kp.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  fs.writeFileSync(pub, kp.publicKey.export({ type: 'spki', format: 'pem' }));
  return { priv, pub };
}
