// etcd's own Go client (clientv3 of etcd 3.4, as Debian packages it) against etcd-ts and etcd 3.4:
// bench/go/bin/watchbench creates prefix watchers over several clients (WithCreatedNotify), puts from a
// separate client, and reports whether every watcher got every Put's event exactly once and in revision
// order (counts, order, revision sums, and each sampled watcher's revisions against the Puts'). Small
// here (a correctness check, not a benchmark: docs/BENCHMARKS.md has the measured runs).
//
// CI builds the binary first (`sh bench/go/build.sh` in .ci/run: Go 1.19 and etcd's Go source from apt).
// Elsewhere the test is skipped, saying so, when the binary is missing; with CI set it fails instead.
//
//   sh bench/go/build.sh && npx tsc -p . && npx mocha --no-config --exit --timeout 120000 dist/test/integration/go_client.test.js
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { cleanupServersAfter, Server, ServerKind, startKind } from '../support/procs';
import { deliveryProblems, runWatchbench, watchbenchBin } from '../../bench/lib/watchbench';

describe('Go clientv3 (etcd 3.4): prefix watchers and puts, every event once and in order', function () {
  this.timeout(120_000);
  let s: Server | undefined;
  cleanupServersAfter(() => [s]);

  before(function () {
    if (fs.existsSync(watchbenchBin)) return;
    if (process.env.CI) throw new Error(`${watchbenchBin} is missing: .ci/run builds it with sh bench/go/build.sh`);
    console.log(`      (skipped: ${watchbenchBin} is missing; run sh bench/go/build.sh)`);
    this.skip();
  });

  for (const kind of ['etcd', 'etcd-ts'] as ServerKind[]) {
    it(`${kind}: 60 watchers over 3 clients, one writer for 1 s`, async () => {
      s = await startKind(kind);
      try {
        const r = await runWatchbench(s.endpoint, ['--watchers', '60', '--connections', '3', '--keys', '20', '--seconds', '1', '--sample', '4'], 90_000);
        assert.ok(r.writes > 0, 'the writer put something');
        assert.equal(r.expected, r.writes * 60);
        assert.deepEqual(deliveryProblems(r), [], 'every watcher got every event once and in order, no client errors or canceled watches');
      } finally {
        await s.stop();
        s = undefined;
      }
    });
  }
});
