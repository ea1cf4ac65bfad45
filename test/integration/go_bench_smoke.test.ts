// bench/go/bin/kvbench (bench/go/kvbench/main.go: etcd tools/benchmark's put, range, txn-put and
// new-connection load through etcd 3.4's Go client) builds and runs a tiny workload of each kind against an
// etcd-ts member, and what it reports happened: every request answered without error, and the server's
// revision moved by exactly the number of writes it claims (so a tool that sent nothing, or a server
// that dropped writes, fails). A correctness check of the tool, not a benchmark (docs/BENCHMARKS.md,
// "Through etcd's Go client", has the measured runs; bench/go_kv.ts runs them).
//
// CI builds the binary first (`sh bench/go/build.sh` in .ci/run). Elsewhere, when it is missing, the test
// builds it if `go` is installed and is skipped, saying so, only if `go` is absent; with CI set it fails.
//
//   npm run build && npx mocha --no-config --exit --timeout 120000 dist/test/integration/go_bench_smoke.test.js
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cleanupServersAfter, Server, startEtcdTs } from '../support/procs';
import { etcdctl } from '../support/etcdctl';
import { makeTestPki, removeTestPki, TestPki } from '../support/certs';
import { kvbenchBin, KvbenchResult, runKvbench } from '../../bench/lib/kvbench';

function hasGo(): boolean {
  try {
    execFileSync('go', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function revision(s: Server): Promise<number> {
  const r = await etcdctl(s.endpoint, [...s.ctlArgs, 'get', 'nothing-here', '-w', 'json']);
  assert.equal(r.code, 0, r.stderr);
  return Number((JSON.parse(r.stdout) as { header: { revision: number } }).header.revision);
}

function allAnswered(r: KvbenchResult, total: number): void {
  assert.deepEqual(r.errorSample, [], 'no request failed');
  assert.equal(r.errors, 0);
  assert.equal(r.ok, total, 'every request answered');
  assert.ok(r.reqPerSec > 0 && r.p50Ms > 0 && r.p999Ms >= r.p50Ms, `sane figures: ${JSON.stringify(r)}`);
}

describe('Go clientv3 (etcd 3.4) benchmark tool kvbench against etcd-ts', function () {
  this.timeout(300_000);
  let s: Server | undefined;
  let pki: TestPki | undefined;
  cleanupServersAfter(() => [s]);
  after(() => removeTestPki(pki));

  before(function () {
    this.timeout(300_000);
    if (fs.existsSync(kvbenchBin)) return;
    if (!hasGo()) {
      if (process.env.CI) throw new Error(`${kvbenchBin} is missing and go is not installed: .ci/run builds it with sh bench/go/build.sh`);
      console.log(`      (skipped: go is not installed; sh bench/go/build.sh installs it and builds ${kvbenchBin})`);
      this.skip();
    }
    execFileSync('sh', [path.join(path.dirname(path.dirname(kvbenchBin)), 'build.sh')], { stdio: 'ignore', timeout: 280_000 });
  });

  it('put, txn-put (with and without a compare), linearizable and serializable range: all answered, the writes all applied', async () => {
    s = await startEtcdTs({ logLevel: 'error' });
    const common = ['--endpoints', s.endpoint, '--conns', '2', '--clients', '10'];
    const rev0 = await revision(s);
    const put = await runKvbench(
      ['put', ...common, '--total', '200', '--key-size', '8', '--val-size', '32', '--key-space-size', '50', '--sequential-keys'],
      120_000,
    );
    allAnswered(put, 200);
    const txn = await runKvbench(['txn-put', ...common, '--total', '60', '--key-space-size', '5'], 120_000);
    allAnswered(txn, 60);
    const cmp = await runKvbench(['txn-put', ...common, '--total', '40', '--key-space-size', '5', '--compare'], 120_000);
    allAnswered(cmp, 40);
    assert.equal(await revision(s), rev0 + 300, 'each put and each txn-put is one revision');
    // Every key (from the lowest, "\0", to the end): etcdctl cannot pass an empty or NUL key, the JSON gateway can.
    const res = await fetch(`${s.clientUrl}/v3/kv/range`, {
      method: 'POST',
      body: JSON.stringify({ key: Buffer.from([0]).toString('base64'), range_end: Buffer.from([0]).toString('base64'), count_only: true }),
    });
    const count = Number(((await res.json()) as { count?: string }).count ?? 0);
    assert.equal(count, 50, '50 distinct sequential keys (the txn keys are among them)');
    assert.equal((await etcdctl(s.endpoint, ['put', 'foo', 'bar'])).code, 0);
    allAnswered(await runKvbench(['range', 'foo', ...common, '--total', '300'], 120_000), 300);
    allAnswered(await runKvbench(['range', 'foo', ...common, '--total', '300', '--consistency', 's'], 120_000), 300);
    assert.equal(await revision(s), rev0 + 301, 'reads wrote nothing');
    await s.stop();
    s = undefined;
  });

  it('conn over client TLS with a client certificate: each of 30 new connections handshakes and reads', async () => {
    pki = makeTestPki();
    const tls = ['--cert-file', pki.server.cert, '--key-file', pki.server.key, '--trusted-ca-file', pki.ca, '--client-cert-auth'];
    s = await startEtcdTs({ logLevel: 'error', extraArgs: tls, clientTls: { ca: pki.ca, cert: pki.client.cert, key: pki.client.key } });
    const files = ['--cacert', pki.ca, '--cert', pki.client.cert, '--key', pki.client.key];
    const r = await runKvbench(['conn', 'foo', '--endpoints', s.endpoint, '--clients', '3', '--total', '30', ...files], 120_000);
    allAnswered(r, 30);
    assert.equal(r.tls, true);
    // Without a client certificate the server refuses: the tool counts every request as failed, it does not hang.
    const refused = await runKvbench(
      ['conn', '--endpoints', s.endpoint, '--total', '3', '--cacert', pki.ca, '--dial-timeout', '2s'],
      60_000,
    );
    assert.equal(refused.ok, 0);
    assert.equal(refused.errors, 3);
    await s.stop();
    s = undefined;
  });
});
