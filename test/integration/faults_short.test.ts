// The short CI version of the fault soak (issue 20; the long one is `npm run faults`, bench/faults.ts):
// a few runs of a few nemeses against a fresh 3-member etcd-ts cluster each (test/support/lin/run.ts:
// a live watch through the faults, the Go clientv3 or etcd3 npm client workload with every endpoint,
// then watches from revision 1 on every member), each history checked for linearizability per key and
// the watch guarantees (test/support/lin/check.ts). Every run must come out 'ok'.
//
// That the check can fail is shown twice: test/unit/lin-checker.test.ts feeds it broken histories, and
// here one run has a follower restarted with ETCD_TS_APPLY_CORRUPT_KEY (it stores a wrong value of one
// key, src/shared/switches.ts), which must end in a violation, through the same path.
//
// A failing run keeps its directory (data dirs, logs, history, watches, check.txt, check.html) and the
// failure message says where. The partition nemesis needs root and iptables (skipped otherwise, failed
// under CI); the Go client needs `sh bench/go/build.sh`.
//
//   npm run build && sh bench/go/build.sh && \
//     npx mocha --no-config --exit --timeout 300000 dist/test/integration/faults_short.test.js
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { nemesisNamed } from '../support/nemesis';
import { ClientKind, faultRun, lincheckBin, RunOutcome } from '../support/lin/run';
import { targetKind } from '../support/procs';

const seconds = 5; // 1 s healthy, one round: 2 s of fault, 1.5 s healed (test/support/lin/run.ts)

function describeOutcome(o: RunOutcome): string {
  return [
    `${o.verdict} in ${(o.ms / 1000).toFixed(1)} s: ${o.summary}`,
    ...o.errors,
    ...o.problems.slice(0, 40),
    `kept: ${o.dir ?? '(removed)'}`,
  ].join('\n');
}

describe('issue 20: short fault runs, histories checked for linearizability and watch guarantees (3 members)', function () {
  this.timeout(150_000);

  const cases: Array<{ nemesis: string; client: ClientKind; seed: number }> = [
    { nemesis: 'kill-leader', client: 'go', seed: 1 },
    { nemesis: 'kill-leader', client: 'etcd3', seed: 2 },
    { nemesis: 'partition', client: 'go', seed: 3 },
    { nemesis: 'stop-leader', client: 'etcd3', seed: 4 },
  ];
  for (const c of cases) {
    it(`${c.nemesis}, ${c.client} client: linearizable, watches ordered, unique, atomic, reliable, resumable`, async function () {
      if (c.client === 'go' && !fs.existsSync(lincheckBin)) {
        if (process.env.CI) throw new Error(`${lincheckBin} is missing: .ci/run builds it with sh bench/go/build.sh`);
        console.log(`      (skipped: ${lincheckBin} is missing; run sh bench/go/build.sh)`);
        this.skip();
      }
      const o = await faultRun({ nemesis: nemesisNamed(c.nemesis), kind: targetKind(), client: c.client, seconds, seed: c.seed });
      if (o.verdict === 'skipped') {
        if (process.env.CI) throw new Error(`${c.nemesis} cannot run: ${o.summary}`);
        console.log(`      (skipped: ${o.summary})`);
        this.skip();
      }
      console.log(`      ${o.verdict} in ${(o.ms / 1000).toFixed(1)} s: ${o.summary}`);
      assert.equal(o.verdict, 'ok', describeOutcome(o));
    });
  }

  it('a follower that stores a wrong value (ETCD_TS_APPLY_CORRUPT_KEY) is caught: the same path ends in a violation', async function () {
    if (targetKind() === 'etcd') this.skip(); // an etcd-ts switch
    const o = await faultRun({ nemesis: nemesisNamed('corrupt-follower'), kind: 'etcd-ts', client: 'etcd3', seconds, seed: 5 });
    try {
      assert.equal(o.verdict, 'violation', describeOutcome(o));
      assert.ok(o.check !== undefined && o.dir !== null && fs.existsSync(`${o.dir}/check.html`), describeOutcome(o));
      console.log(`      violation found as it should be: ${o.problems[0]}`);
    } finally {
      if (o.verdict === 'violation' && o.dir !== null) fs.rmSync(o.dir, { recursive: true, force: true }); // expected: not worth keeping
    }
  });
});
