// Certificates for TLS tests, made by the test itself with Debian's openssl CLI in a temp dir (no
// files fetched): a CA, a server certificate for 127.0.0.1/localhost, client certificates signed by
// the CA (CN client1; a revoked one in the CA's CRL), and a second, unrelated CA with a client
// certificate of its own (refused by a server that trusts only the first CA).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface TestPki {
  dir: string;
  ca: string;
  server: { cert: string; key: string };
  client: { cert: string; key: string };
  /** Signed by the CA, listed in crl. */
  revoked: { cert: string; key: string };
  /** CRL of the CA revoking `revoked`. */
  crl: string;
  /** A certificate from another CA (wrongCa). */
  stranger: { cert: string; key: string };
  wrongCa: string;
  /** Makes one more certificate signed by the CA (SANs for 127.0.0.1 and localhost). */
  issue(name: string, cn: string): { cert: string; key: string };
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(dir: string, name: string): void {
  openssl(dir, [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.crt`,
    '-subj',
    `/CN=${name}`,
    '-days',
    '30',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

function issue(dir: string, caName: string, name: string, cn: string): { cert: string; key: string } {
  fs.writeFileSync(
    path.join(dir, `${name}.ext`),
    [
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      'extendedKeyUsage=serverAuth,clientAuth',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'basicConstraints=CA:FALSE',
    ].join('\n') + '\n',
  );
  openssl(dir, [
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${cn}`,
  ]);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${caName}.crt`,
    '-CAkey',
    `${caName}.key`,
    '-CAcreateserial',
    '-out',
    `${name}.crt`,
    '-days',
    '30',
    '-extfile',
    `${name}.ext`,
  ]);
  return { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
}

export function makeTestPki(): TestPki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcd-ts-pki-'));
  makeCa(dir, 'ca');
  makeCa(dir, 'wrong-ca');
  const server = issue(dir, 'ca', 'server', 'etcd-server');
  const client = issue(dir, 'ca', 'client', 'client1');
  const revoked = issue(dir, 'ca', 'revoked', 'revoked-client');
  const stranger = issue(dir, 'wrong-ca', 'stranger', 'client1');
  // A minimal `openssl ca` database, just enough to revoke and to sign a CRL.
  fs.writeFileSync(path.join(dir, 'index.txt'), '');
  fs.writeFileSync(path.join(dir, 'crlnumber'), '1000\n');
  fs.writeFileSync(
    path.join(dir, 'ca.cnf'),
    [
      '[ca]',
      'default_ca = CA_default',
      '[CA_default]',
      'database = index.txt',
      'crlnumber = crlnumber',
      'default_md = sha256',
      'default_crl_days = 30',
      '',
    ].join('\n'),
  );
  openssl(dir, ['ca', '-config', 'ca.cnf', '-keyfile', 'ca.key', '-cert', 'ca.crt', '-revoke', 'revoked.crt']);
  openssl(dir, ['ca', '-config', 'ca.cnf', '-keyfile', 'ca.key', '-cert', 'ca.crt', '-gencrl', '-out', 'crl.pem']);
  return {
    dir,
    ca: path.join(dir, 'ca.crt'),
    server,
    client,
    revoked,
    crl: path.join(dir, 'crl.pem'),
    stranger,
    wrongCa: path.join(dir, 'wrong-ca.crt'),
    issue: (name, cn) => issue(dir, 'ca', name, cn),
  };
}

export function removeTestPki(p: TestPki | undefined): void {
  if (p !== undefined && p.dir.startsWith(os.tmpdir() + path.sep)) fs.rmSync(p.dir, { recursive: true, force: true });
}

/** A server's flags for client TLS with this PKI: its certificate, the CA, client-certificate auth and
 * the CRL (the revoked client is refused), as etcd 3.4 names them. */
export function clientAuthTlsArgs(p: TestPki): string[] {
  return [
    '--cert-file',
    p.server.cert,
    '--key-file',
    p.server.key,
    '--trusted-ca-file',
    p.ca,
    '--client-cert-auth',
    '--client-crl-file',
    p.crl,
  ];
}
