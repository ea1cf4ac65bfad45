// A write sent to a member that knows no leader (issue 13): as etcd 3.4, it waits for one instead of
// failing at once with "etcdserver: no leader", and what it answers never invites a client to resend
// a write that may still be applied.
//
// A 3-member etcd-ts cluster; two members are stopped, so the third (check-quorum, pre-vote) loses its
// leader. Then, on that member, over raw HTTP/2 (a client that does not enforce its own deadline, so
// the server's own answer is seen):
//  1. a Put with grpc-timeout 1 s is not answered "no leader" (nor DEADLINE_EXCEEDED/CANCELLED); it
//     ends, after its deadline, with etcd's UNAVAILABLE "etcdserver: request timed out", and because
//     it never reached Raft it is never applied, even after a leader returns;
//  2. a Put with no deadline waits; once one stopped member restarts and a leader is elected, it is
//     applied and answered OK.
//
//   npx tsc -p . && npx mocha --no-config --exit --timeout 180000 dist/test/integration/proposal_no_leader.test.js
import { strict as assert } from 'node:assert';
import { RawGrpc } from '../support/grpc_raw';
import { cleanupServersAfter, Server, startEtcdTsCluster } from '../support/procs';
import { etcdserverpb } from '../../src/shared/gen/etcd';
import { GrpcCode } from '../../src/shared/errors';
import { sleep } from './watch_client';

const pb = etcdserverpb;

async function leaderOf(c: RawGrpc): Promise<string> {
  const r = await c.unary('/etcdserverpb.Maintenance/Status', pb.StatusRequest.encode({}).finish());
  assert.equal(r.status, 0, r.message);
  return pb.StatusResponse.decode(r.body as Buffer).leader.toString();
}

async function until(what: string, cond: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('a write on a member with no leader waits for one (etcd 3.4), and is never resent-prone', function () {
  this.timeout(180_000);
  const members: Server[] = [];
  cleanupServersAfter(() => members);

  before(async () => {
    members.push(...(await startEtcdTsCluster(3, 'no-leader-test')));
  });

  it('times out with "request timed out" and is dropped; without a deadline it is applied once a leader is back', async () => {
    const [m1, m2, m3] = members;
    await m2.stop();
    await m3.stop();
    const c = new RawGrpc(m1.endpoint);
    try {
      await until('m1 to lose its leader', async () => (await leaderOf(c)) === '0');
      const put = (key: string, headers?: Record<string, string>) =>
        c.unary('/etcdserverpb.KV/Put', pb.PutRequest.encode({ key: Buffer.from(key), value: Buffer.from('v') }).finish(), { headers });
      const started = Date.now();
      const timedOut = await put('/nl/deadline', { 'grpc-timeout': '1000m' });
      assert.ok(Date.now() - started >= 1000, `answered after ${Date.now() - started} ms, before its deadline`);
      assert.deepEqual([timedOut.status, timedOut.message], [GrpcCode.Unavailable, 'etcdserver: request timed out']);

      const waiting = put('/nl/waits');
      await sleep(300);
      await m2.restart();
      const r = await waiting;
      assert.equal(r.status, 0, `the waiting put: ${r.status} ${r.message}`);
      const got = await c.unary(
        '/etcdserverpb.KV/Range',
        pb.RangeRequest.encode({ key: Buffer.from('/nl/'), rangeEnd: Buffer.from('/nl0') }).finish(),
      );
      assert.equal(got.status, 0, got.message);
      const keys = pb.RangeResponse.decode(got.body as Buffer).kvs.map((kv) => Buffer.from(kv.key ?? []).toString());
      assert.deepEqual(keys, ['/nl/waits'], 'the put that timed out before reaching Raft was never applied');
    } finally {
      c.close();
    }
  });
});
