// --force-new-cluster after losing two of three members (etcd's disaster recovery): the survivor
// restarts with the flag as a one-member cluster with every key and revision it had, serves writes
// alone, lists one member, and a restart without the flag keeps it so, as etcd 3.4's
// restartAsStandaloneNode does (src/main/member/recover.ts forceNewCluster).
import * as assert from 'node:assert/strict';
import { etcdctl, etcdctlJson } from '../support/etcdctl';
import { cleanupServersAfter, removeDataDir, Server, startEtcdTs, startEtcdTsCluster } from '../support/procs';

describe('--force-new-cluster after losing two of three members (etcd-ts)', function () {
  this.timeout(180_000);
  let members: Server[] = [];
  let survivor: Server | undefined;
  cleanupServersAfter(() => [...members, survivor]);

  it('restarts the survivor alone with its data, and it serves writes', async () => {
    members = await startEtcdTsCluster(3, 'fnc-test');
    for (let i = 0; i < 20; i++) {
      const r = await etcdctl(members[0].endpoint, ['put', `/k/${i}`, `v${i}`]);
      assert.equal(r.code, 0, r.stderr);
    }
    const before = await etcdctlJson(members[0].endpoint, ['get', '/k/', '--prefix', '-w', 'json']);
    const m1 = members[0];
    // Every member stops; only m1's data dir survives.
    await Promise.all(members.map((m) => m.stop('SIGTERM')));
    for (const m of members.slice(1)) removeDataDir(m);
    const clientPort = Number(m1.endpoint.split(':')[1]);
    const peerPort = Number(new URL(m1.peerUrl).port);
    const initialCluster = `m1=${m1.peerUrl}`;
    survivor = await startEtcdTs({
      name: 'm1',
      dataDir: m1.dataDir,
      clientPort,
      peerPort,
      initialCluster,
      token: 'fnc-test',
      extraArgs: ['--force-new-cluster'],
      readyTimeoutMs: 60_000,
    });
    members = [];
    const list = await etcdctlJson(survivor.endpoint, ['member', 'list', '-w', 'json']);
    assert.equal(list.members.length, 1);
    const after = await etcdctlJson(survivor.endpoint, ['get', '/k/', '--prefix', '-w', 'json']);
    assert.deepEqual(after.kvs, before.kvs);
    const put = await etcdctl(survivor.endpoint, ['put', '/k/new', 'alone']);
    assert.equal(put.code, 0, put.stderr);
    // Without the flag again: still one member, nothing lost.
    await survivor.restart();
    const again = await etcdctlJson(survivor.endpoint, ['get', '/k/', '--prefix', '--keys-only', '-w', 'json']);
    assert.equal(again.count, 21);
    const list2 = await etcdctlJson(survivor.endpoint, ['member', 'list', '-w', 'json']);
    assert.equal(list2.members.length, 1);
  });
});
