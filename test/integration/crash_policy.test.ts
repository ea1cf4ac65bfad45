// The crash policy (issue 14, src/main/fatal.ts): a worker that holds state and dies takes the member
// down at once, with one fatal log line and exit status 2, instead of leaving it running without its
// state machine (before, a dead apply worker left every later write waiting forever). The apply
// worker is killed through the documented switch ETCD_TS_APPLY_FAULT_KEY (src/shared/switches.ts):
// it throws while applying a Put of that key. The member then restarts from its data dir and serves
// again; the Put, committed to the WAL but never acknowledged, is applied on replay (an unknown
// outcome for its client, which saw its call fail).
//
//   npx tsc -p . && npx mocha --no-config --exit --timeout 120000 dist/test/integration/crash_policy.test.js
import { strict as assert } from 'node:assert';
import { etcdctl } from '../support/etcdctl';
import { cleanupServersAfter, Server, startEtcdTs } from '../support/procs';
import { sleep } from './watch_client';

describe('crash policy: a dead apply worker ends the member with a fatal line and exit status 2', function () {
  this.timeout(120_000);
  let s: Server | undefined;
  let restarted: Server | undefined;
  cleanupServersAfter(() => [s, restarted]);

  it('exits 2 with one fatal log line; restarts from its data dir and serves, the Put applied on replay', async () => {
    s = await startEtcdTs({ env: { ETCD_TS_APPLY_FAULT_KEY: 'boom' }, logLevel: 'warn' });
    assert.equal((await etcdctl(s.endpoint, ['put', 'before', '1'])).code, 0);
    const put = await etcdctl(s.endpoint, ['put', 'boom', 'x', '--command-timeout=3s']);
    assert.notEqual(put.code, 0, 'the put that killed the apply worker is not acknowledged');
    const code = await Promise.race([s.exited(), sleep(30_000).then(() => 'still running')]);
    assert.equal(code, 2, `exit status (stderr: ${s.stderr().slice(-2000)})`);
    const fatalLines = s
      .stderr()
      .split('\n')
      .filter((l) => l.includes('"level":"fatal"'));
    assert.equal(fatalLines.length, 1, s.stderr().slice(-2000));
    assert.match(fatalLines[0], /"msg":"apply worker failed".*injected fault/);

    restarted = await startEtcdTs({
      dataDir: s.dataDir,
      clientPort: Number(s.endpoint.split(':')[1]),
      peerPort: Number(new URL(s.peerUrl).port),
      logLevel: 'warn',
    });
    assert.equal((await etcdctl(restarted.endpoint, ['get', 'before', '--print-value-only'])).stdout, '1\n');
    assert.equal(
      (await etcdctl(restarted.endpoint, ['get', 'boom', '--print-value-only'])).stdout,
      'x\n',
      'the committed put is applied on replay',
    );
    assert.equal((await etcdctl(restarted.endpoint, ['put', 'after', '2'])).code, 0);
  });
});
