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
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cleanupServersAfter, Server, ServerKind, startKind } from '../support/procs';

const goBin = path.resolve(__dirname, '..', '..', '..', 'bench', 'go', 'bin', 'watchbench'); // dist/test/integration -> repo

interface GoResult {
  writes: number; events: number; expected: number; complete: boolean; watchersShort: number; watchersOver: number;
  disorderedEvents: number; revSumMismatch: number; sampledMissing: number; unmatchedSamples: number; errors: string[] | null;
}

function runWatchbench(endpoint: string, args: string[]): Promise<GoResult> {
  return new Promise((resolve, reject) => {
    execFile(goBin, ['--endpoint', endpoint, ...args], { timeout: 90_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`watchbench failed: ${err.message}\n${stderr.slice(-2000)}`));
      try {
        resolve(JSON.parse(stdout) as GoResult);
      } catch (e) {
        reject(new Error(`watchbench printed no JSON: ${String(e)}\n${stdout.slice(-2000)}\n${stderr.slice(-2000)}`));
      }
    });
  });
}

describe('Go clientv3 (etcd 3.4): prefix watchers and puts, every event once and in order', function () {
  this.timeout(120_000);
  let s: Server | undefined;
  cleanupServersAfter(() => [s]);

  before(function () {
    if (fs.existsSync(goBin)) return;
    if (process.env.CI) throw new Error(`${goBin} is missing: .ci/run builds it with sh bench/go/build.sh`);
    console.log(`      (skipped: ${goBin} is missing; run sh bench/go/build.sh)`);
    this.skip();
  });

  for (const kind of ['etcd', 'etcd-ts'] as ServerKind[]) {
    it(`${kind}: 60 watchers over 3 clients, one writer for 1 s`, async () => {
      s = await startKind(kind);
      try {
        const r = await runWatchbench(s.endpoint, ['--watchers', '60', '--connections', '3', '--keys', '20', '--seconds', '1', '--sample', '4']);
        assert.deepEqual(r.errors ?? [], [], 'no client errors or canceled watches');
        assert.ok(r.writes > 0, 'the writer put something');
        assert.equal(r.expected, r.writes * 60);
        assert.equal(r.events, r.expected, 'every watcher got every event');
        assert.equal(r.complete, true);
        assert.deepEqual([r.watchersShort, r.watchersOver, r.disorderedEvents, r.revSumMismatch, r.sampledMissing, r.unmatchedSamples], [0, 0, 0, 0, 0, 0],
          'no watcher short or over, no event out of order, revision sums match, sampled watchers saw each Put revision');
      } finally {
        await s.stop();
        s = undefined;
      }
    });
  }
});
