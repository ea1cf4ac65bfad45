// Differential test of client TLS: real etcd 3.4 (side A) and the target (side B) start with the same
// certificate flags (server certificate, CA, --client-cert-auth, a CRL revoking one client certificate;
// all made by the test with openssl), and one table of etcdctl commands, each with the client TLS
// flags of its case (a valid client certificate, none, a revoked one, one of another CA, a wrong CA to
// verify the server with, --insecure-skip-tls-verify), runs in order against both. Exit code, stdout
// and stderr must be equal after diff_kv's normalization (IDs, terms, timestamps, client ids, ports)
// and the health check's "took = ..." duration.
//
//   npx tsc -p . && npx mocha --no-config --exit dist/test/integration/diff_tls.test.js
//   ETCD_TS_DIFF_TARGET=etcd ...    side B is a second real etcd: must pass (validates the harness)
//   ETCD_TS_DIFF_SHOW=1 ...         also print the reference output of every case
import * as assert from 'node:assert/strict';
import { makeTestPki, removeTestPki, TestPki, clientAuthTlsArgs } from '../support/certs';
import { etcdctl, EtcdctlResult, normalize as normalizeKv } from '../support/etcdctl';
import { cleanupServersAfter, ClientTlsFiles, ctlTlsArgs, Server, startEtcd, startKind, targetKind } from '../support/procs';

type Who = 'client' | 'none' | 'revoked' | 'stranger' | 'wrong-ca' | 'insecure';

interface Case {
  who: Who;
  args: string[];
  input?: string;
}

const FAIL_FAST = ['--dial-timeout=1s', '--command-timeout=2s'];
const c = (who: Who, ...args: string[]): Case => ({ who, args });
const J = ['-w', 'json'];

const cases: Case[] = [
  c('client', 'put', 'foo', 'bar', ...J),
  c('client', 'put', 'foo', 'baz', '--prev-kv'),
  c('client', 'get', 'foo', ...J),
  c('client', 'get', 'f', '--prefix', '--keys-only'),
  { who: 'client', args: ['txn', '-i'], input: 'value("foo") = "baz"\n\nput foo qux\n\nput foo nope\n\n' },
  c('client', 'get', 'foo', '--print-value-only'),
  c('client', 'del', 'foo', '--prev-kv', ...J),
  c('client', 'endpoint', 'health'),
  c('insecure', 'put', 'k', 'v'),
  c('insecure', 'get', 'k', ...J),
  c('none', ...FAIL_FAST, 'get', 'k'),
  c('revoked', ...FAIL_FAST, 'get', 'k'),
  c('stranger', ...FAIL_FAST, 'put', 'k', 'stranger'),
  c('wrong-ca', ...FAIL_FAST, 'get', 'k'),
  c('client', 'get', 'k', '--print-value-only'),
];

function normalize(r: EtcdctlResult): string {
  return normalizeKv(r).replace(/took = [\d.]+[µmn]?s/g, 'took = D');
}

describe('differential TLS: etcdctl with client certificates against real etcd vs target', function () {
  this.timeout(120_000);
  const targetB = targetKind('ETCD_TS_DIFF_TARGET');
  let pki: TestPki;
  let a: Server | undefined;
  let b: Server | undefined;
  let files: Record<Who, ClientTlsFiles>;
  cleanupServersAfter(() => [a, b]);
  after(() => removeTestPki(pki));

  before(async () => {
    pki = makeTestPki();
    files = {
      client: { ca: pki.ca, cert: pki.client.cert, key: pki.client.key },
      none: { ca: pki.ca },
      revoked: { ca: pki.ca, cert: pki.revoked.cert, key: pki.revoked.key },
      stranger: { ca: pki.ca, cert: pki.stranger.cert, key: pki.stranger.key },
      'wrong-ca': { ca: pki.wrongCa, cert: pki.client.cert, key: pki.client.key },
      insecure: { insecure: true, cert: pki.client.cert, key: pki.client.key },
    };
    const opts = {
      clientTls: files.client,
      extraArgs: clientAuthTlsArgs(pki),
    };
    [a, b] = await Promise.all([startEtcd(opts), startKind(targetB, opts)]);
  });

  cases.forEach((tc, i) => {
    const show = `etcdctl (${tc.who}) ${tc.args.join(' ')}`;
    it(`#${i + 1} ${show}`, async () => {
      const [ra, rb] = await Promise.all(
        [a!, b!].map((s) => etcdctl(s.endpoint, [...ctlTlsArgs(files[tc.who]), ...tc.args], { input: tc.input })),
      );
      const na = normalize(ra);
      const nb = normalize(rb);
      if (process.env.ETCD_TS_DIFF_SHOW === '1') console.log(`${show}\n${na}`);
      if (na !== nb) assert.fail(`${show}: outputs differ\n===== etcd (reference) =====\n${na}\n===== ${targetB} (target) =====\n${nb}`);
    });
  });
});
