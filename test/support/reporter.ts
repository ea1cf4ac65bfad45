// Mocha reporter: the spec reporter's output, plus a machine-readable summary written to
// test-results.json (passes, failures, pending, failing titles) that .ci/run turns into its
// last line "N passed, N failed". CI does not read mocha's own summary.
import * as fs from 'node:fs';
import * as path from 'node:path';
import Mocha from 'mocha';

const { EVENT_RUN_END, EVENT_TEST_FAIL, EVENT_TEST_PASS } = Mocha.Runner.constants;

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner: Mocha.Runner, options: Mocha.MochaOptions) {
    super(runner, options);
    let passed = 0;
    let failed = 0;
    const failures: string[] = [];
    runner.on(EVENT_TEST_PASS, () => { passed++; });
    runner.on(EVENT_TEST_FAIL, (test: Mocha.Test) => { failed++; failures.push(test.fullTitle()); });
    runner.once(EVENT_RUN_END, () => {
      const out = process.env.ETCD_TS_TEST_RESULTS ?? path.join(process.cwd(), 'test-results.json');
      fs.writeFileSync(out, JSON.stringify({ passed, failed, failures }, null, 2));
    });
  }
}

export = SummaryReporter;
