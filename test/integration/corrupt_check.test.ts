// Corruption checks on a 3-member etcd-ts cluster (etcd 3.4's --experimental-corrupt-check-time and
// --experimental-initial-corrupt-check). Member 3 runs with ETCD_TS_APPLY_CORRUPT_KEY=bad: its apply
// worker stores a Put of "bad" with another value, so its store differs from its peers' while the log
// agrees. After one put of "bad", the leader's periodic check (every 500ms) finds the follower's (or
// its own, when member 3 leads) HashKV different at the same revisions, logs both hashes and raises
// the CORRUPT alarm through the log: `etcdctl alarm list` shows it ("alarm:CORRUPT": etcdctl's text omits memberID 0) on every member and writes are
// refused with "etcdserver: corrupt cluster", while reads go on. Member 3 restarted with the initial
// check refuses to start with etcd's "found data inconsistency with peers"; member 1 restarts fine.
//
//   npm run build && npx mocha --no-config --exit --timeout 120000 dist/test/integration/corrupt_check.test.js
import { strict as assert } from 'node:assert';
import { etcdctl } from '../support/etcdctl';
import { cleanupServersAfter, Server, startEtcdTsCluster } from '../support/procs';

async function ctl(s: Server, args: string[]): Promise<{ code: number; out: string }> {
  const r = await etcdctl(s.endpoint, args);
  return { code: r.code ?? -1, out: (r.stdout + r.stderr).trim() };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('corruption checks on a 3-member cluster', function () {
  this.timeout(120_000);
  const members: Server[] = [];
  cleanupServersAfter(() => members);

  before(async () => {
    const flags = ['--experimental-corrupt-check-time', '500ms', '--experimental-initial-corrupt-check'];
    members.push(
      ...(await startEtcdTsCluster(3, 'corrupt-test', { extraArgs: flags, logLevel: 'info' }, (i) =>
        i === 2 ? { env: { ETCD_TS_APPLY_CORRUPT_KEY: 'bad' } } : {},
      )),
    );
  });

  it('passes while the stores agree, then raises CORRUPT through the log and refuses writes', async () => {
    const [m1, m2, m3] = members;
    assert.equal((await ctl(m1, ['put', 'good', 'v'])).out, 'OK');
    await sleep(1500); // three passes over equal stores
    assert.equal((await ctl(m2, ['alarm', 'list'])).out, '');
    assert.ok(
      members.some((m) => m.stderr().includes('finished peer corruption check')),
      'the leader ran passes',
    );
    assert.equal((await ctl(m1, ['put', 'bad', 'v'])).out, 'OK');
    assert.equal((await ctl(m3, ['get', 'bad', '--print-value-only'])).out, 'v!corrupt');
    let list = '';
    for (let i = 0; i < 50 && list === ''; i++) {
      await sleep(200);
      list = (await ctl(m1, ['alarm', 'list'])).out;
    }
    assert.equal(list, 'alarm:CORRUPT');
    for (const m of members) assert.equal((await ctl(m, ['alarm', 'list'])).out, 'alarm:CORRUPT');
    const line = members
      .flatMap((m) => m.stderr().split('\n'))
      .find((l) => l.includes('same compact revision then hashes must match') || l.includes('found hash mismatch'));
    assert.ok(line, 'the leader logs the mismatch');
    const f = JSON.parse(line) as Record<string, unknown>;
    if (f.msg === 'same compact revision then hashes must match') assert.notEqual(f['leader-hash'], f['follower-hash']);
    for (const m of members) {
      const r = await ctl(m, ['put', 'after', 'x']);
      assert.notEqual(r.code, 0);
      assert.equal(r.out.split('\n').pop(), 'Error: etcdserver: corrupt cluster');
    }
    assert.equal((await ctl(m2, ['del', 'good'])).out.split('\n').pop(), 'Error: etcdserver: corrupt cluster');
    assert.equal((await ctl(m2, ['get', 'good', '--print-value-only'])).out, 'v', 'reads are served');
  });

  it('the initial check refuses to start a member whose store differs, and passes a healthy one', async () => {
    const [m1, , m3] = members;
    await assert.rejects(m3.restart(), /found data inconsistency with peers/);
    const fatal = m3
      .stderr()
      .split('\n')
      .find((l) => l.includes('"fatal"'));
    assert.match(fatal ?? '', /"error":"[0-9a-f]+ found data inconsistency with peers"/);
    assert.match(m3.stderr(), /found different hash values from remote peer/);
    await m1.restart();
    assert.match(m1.stderr(), /initial corruption checking passed; no corruption/);
  });
});
