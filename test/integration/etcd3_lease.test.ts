// The `etcd3` npm client's lease, lock and election helpers against the target server (etcd-ts;
// ETCD_TS_TARGET=etcd runs the same test on real etcd): a lease with its keep-alive loop holding keys
// past the TTL, revoke deleting them, keepaliveOnce, a lock held by one holder at a time, and an election
// with an observer that follows proclaims, resignation and the next leader.
import * as assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { cleanupServersAfter, Server, startKind, targetKind } from '../support/procs';
import { sleep } from './watch_client';

describe('etcd3 npm client: leases, locks, elections', function () {
  this.timeout(60_000);
  let s: Server | undefined;
  let client: Etcd3 | undefined;
  cleanupServersAfter(() => [s]);

  before(async () => {
    s = await startKind(targetKind());
    client = new Etcd3({ hosts: s.clientUrl, dialTimeout: 5_000 });
  });
  after(() => { client?.close(); });
  const c = () => client!;

  it('a lease with keep-alives holds its keys past the TTL; revoke deletes them', async () => {
    const lease = c().lease(2);
    let renewals = 0;
    lease.on('keepaliveSucceeded', () => { renewals++; });
    const id = await lease.grant();
    assert.match(id, /^\d+$/);
    await lease.put('/l/a').value('1');
    await lease.put('/l/b').value('2');
    await sleep(4500);
    assert.ok(renewals >= 2, `renewals ${renewals}`);
    assert.deepEqual(await c().getAll().prefix('/l/').keys(), ['/l/a', '/l/b']);
    const ttl = await lease.keepaliveOnce();
    assert.equal(ttl.TTL, '2');
    await lease.revoke();
    assert.deepEqual(await c().getAll().prefix('/l/').keys(), []);
  });

  it('a lock: held once at a time (etcd3 locks are try-locks), free again after release', async () => {
    const first = await c().lock('/locks/x').ttl(10).acquire();
    await assert.rejects(c().lock('/locks/x').ttl(10).acquire(), /Failed to acquire a lock on \/locks\/x/);
    await first.release();
    const second = await c().lock('/locks/x').ttl(10).acquire();
    assert.deepEqual(await c().getAll().prefix('/locks/x').count(), 1);
    await second.release();
    assert.deepEqual(await c().getAll().prefix('/locks/x').count(), 0);
  });

  it('an election: leader, observer, proclaim, resign, next leader', async () => {
    const election = c().election('svc', 5);
    const a = election.campaign('node-a');
    await a.wait();
    const observer = await election.observe();
    assert.equal(observer.leader(), 'node-a');
    const seen: string[] = [];
    observer.on('change', (v: string | undefined) => { seen.push(String(v)); });
    const b = election.campaign('node-b');
    let bLeads = false;
    b.on('elected', () => { bLeads = true; });
    await a.proclaim('node-a2');
    await sleep(300);
    assert.equal(await election.leader(), 'node-a2');
    assert.equal(bLeads, false);
    await a.resign();
    await b.wait();
    assert.equal(await election.leader(), 'node-b');
    const deadline = Date.now() + 5000;
    while (!seen.includes('node-b') && Date.now() < deadline) await sleep(50);
    assert.deepEqual(seen, ['node-a2', 'node-b']);
    await observer.cancel();
    await b.resign();
  });
});
