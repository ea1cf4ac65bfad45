// etcd's own Go client (clientv3 of etcd 3.4) over TLS with a client certificate (--client-cert-auth and
// a CRL), against etcd 3.4 and etcd-ts: bench/go/bin/lincheck's workload (puts, gets and compare-and-
// sets on a few keys from 4 clients) for 2 s, then its history is checked against the store's own puts,
// replayed by `etcdctl watch --rev=1` over the same TLS: every acknowledged put applied exactly once,
// every read linearizable (test/support/history_check.ts). A client without a certificate is refused.
//
// CI builds the binary first (`sh bench/go/build.sh` in .ci/run). Elsewhere the test is skipped, saying
// so, when the binary is missing; with CI set it fails instead.
//
//   sh bench/go/build.sh && npx tsc -p . && npx mocha --no-config --exit --timeout 120000 dist/test/integration/go_client_tls.test.js
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkHistory, HistoryOp, PutEvent } from '../support/history_check';
import { clientAuthTlsArgs, makeTestPki, removeTestPki, TestPki } from '../support/certs';
import { etcdctl } from '../support/etcdctl';
import { cleanupServersAfter, Server, ServerKind, startKind } from '../support/procs';

const lincheckBin = path.resolve(__dirname, '..', '..', '..', 'bench', 'go', 'bin', 'lincheck');
const prefix = '/lintls/';

/** The puts under prefix as the store applied them, replayed from revision 1 over TLS. */
async function storePuts(s: Server): Promise<PutEvent[]> {
  const r = await etcdctl(s.endpoint, [...s.ctlArgs, 'watch', '--prefix', prefix, '--rev=1', '-w', 'json'], { timeoutMs: 8000 });
  const events: PutEvent[] = [];
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const resp = JSON.parse(line) as { Events?: Array<{ type?: number; kv: { key: string; value?: string; mod_revision: number } }> };
    for (const ev of resp.Events ?? []) {
      if ((ev.type ?? 0) !== 0) continue;
      events.push({
        key: Buffer.from(ev.kv.key, 'base64').toString(),
        value: Buffer.from(ev.kv.value ?? '', 'base64').toString(),
        modRevision: ev.kv.mod_revision,
      });
    }
  }
  return events;
}

describe('Go clientv3 (etcd 3.4) over TLS with client certificates: a linearizable history', function () {
  this.timeout(120_000);
  let pki: TestPki | undefined;
  let s: Server | undefined;
  cleanupServersAfter(() => [s]);
  after(() => removeTestPki(pki));

  before(function () {
    if (!fs.existsSync(lincheckBin)) {
      if (process.env.CI) throw new Error(`${lincheckBin} is missing: .ci/run builds it with sh bench/go/build.sh`);
      console.log(`      (skipped: ${lincheckBin} is missing; run sh bench/go/build.sh)`);
      this.skip();
    }
    pki = makeTestPki();
  });

  for (const kind of ['etcd', 'etcd-ts'] as ServerKind[]) {
    it(`${kind}: 4 clients for 2 s, every acknowledged put once, reads linearizable`, async () => {
      const p = pki!;
      s = await startKind(kind, { clientTls: { ca: p.ca, cert: p.client.cert, key: p.client.key }, extraArgs: clientAuthTlsArgs(p) });
      const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lintls-')), 'history.json');
      const base = [
        `--endpoints=${s.endpoint}`,
        '--clients=4',
        '--keys=3',
        `--prefix=${prefix}`,
        '--seconds=2',
        '--timeout=3s',
        `--out=${out}`,
      ];

      // Without a client certificate: the client cannot connect (lincheck exits 1), or if it could, nothing succeeds.
      const refused = spawnSync(lincheckBin, [...base, '--seconds=0.3', '--timeout=500ms', `--cacert=${p.ca}`], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      if (fs.existsSync(out)) {
        const noCert = JSON.parse(fs.readFileSync(out, 'utf8')) as { ops: HistoryOp[] };
        assert.ok(
          noCert.ops.every((o) => o.result !== 'ok'),
          'an operation succeeded without a client certificate',
        );
        fs.rmSync(out);
      } else {
        assert.equal(refused.status, 1, refused.stderr);
      }

      const run = spawnSync(lincheckBin, [...base, `--cacert=${p.ca}`, `--cert=${p.client.cert}`, `--key=${p.client.key}`], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(run.status, 0, run.stderr);
      const history = JSON.parse(fs.readFileSync(out, 'utf8')) as { ops: HistoryOp[] };
      fs.rmSync(path.dirname(out), { recursive: true, force: true });
      const ok = history.ops.filter((o) => o.result === 'ok').length;
      assert.ok(ok > 20, `only ${ok} operations succeeded over TLS`);
      const r = checkHistory(history.ops, await storePuts(s));
      assert.deepEqual(r.problems, [], r.summary);
      await s.stop('SIGTERM');
      s = undefined;
    });
  }
});
