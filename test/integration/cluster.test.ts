// A 3-member etcd-ts cluster on 127.0.0.1, started the way etcd's are (--initial-cluster with three
// members): one leader that every member agrees on, member list with everyone's published client
// URLs, writes and linearizable reads through any member (followers forward), leases granted and kept
// alive through followers, then kill -9 of the leader under concurrent writers: a new leader within a
// few election timeouts, no acknowledged write lost, the killed member restarted and caught up, and
// HashKV equal on all three members at the same revision.
import { strict as assert } from 'node:assert';
import { etcdctl, etcdctlJson } from '../support/etcdctl';
import { RawGrpc } from '../support/grpc_raw';
import { cleanupServersAfter, freePort, Server, startEtcdTs } from '../support/procs';
import { etcdserverpb } from '../../src/shared/gen/etcd';
import { sleep } from './watch_client';

const pb = etcdserverpb;

async function statusOf(s: Server): Promise<{ memberId: string; leader: string; term: number; index: number; applied: number }> {
  const r = await etcdctl(s.endpoint, ['endpoint', 'status', '-w', 'json']);
  assert.equal(r.code, 0, r.stderr);
  // uint64 IDs: keep them exact as text.
  const j = JSON.parse(r.stdout.replace(/"(member_id|leader|cluster_id)":(\d+)/g, '"$1":"$2"'))[0].Status;
  return { memberId: j.header.member_id, leader: j.leader, term: j.raft_term ?? j.header.raft_term, index: j.raftIndex, applied: j.raftAppliedIndex };
}

/** A put with a 2 s client deadline (a proposal forwarded to a leader that just died waits for the
 * server's request timeout; clients give up sooner and retry, as clientv3 does). */
async function put(endpoint: string, key: string, value: string): Promise<boolean> {
  const c = new RawGrpc(endpoint);
  try {
    const r = await c.unary('/etcdserverpb.KV/Put', pb.PutRequest.encode({ key: Buffer.from(key), value: Buffer.from(value) }).finish(), { cancelAfterMs: 2000 });
    return r.status === 0;
  } catch {
    return false;
  } finally {
    c.close();
  }
}

async function get(endpoint: string, key: string, serializable = false): Promise<string | null> {
  const c = new RawGrpc(endpoint);
  try {
    const r = await c.unary('/etcdserverpb.KV/Range', pb.RangeRequest.encode({ key: Buffer.from(key), serializable }).finish());
    assert.equal(r.status, 0, r.message);
    const kv = pb.RangeResponse.decode(r.body as Buffer).kvs[0];
    return kv ? Buffer.from(kv.value ?? []).toString() : null;
  } finally {
    c.close();
  }
}

describe('3-member cluster', function () {
  this.timeout(180_000);
  const members: Server[] = [];
  cleanupServersAfter(() => members);

  before(async () => {
    const ports = await Promise.all(Array.from({ length: 6 }, () => freePort()));
    const names = ['m1', 'm2', 'm3'];
    const initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${ports[3 + i]}`).join(',');
    members.push(...await Promise.all(names.map((name, i) => startEtcdTs({
      name, clientPort: ports[i], peerPort: ports[3 + i], initialCluster, token: 'cluster-test', readyTimeoutMs: 60_000,
    }))));
  });

  const leaderIndex = async (among: Server[]): Promise<number> => {
    const sts = await Promise.all(among.map(statusOf));
    const lead = sts[0].leader;
    assert.ok(sts.every((s) => s.leader === lead), `members disagree on the leader: ${JSON.stringify(sts)}`);
    const i = sts.findIndex((s) => s.memberId === lead);
    assert.ok(i >= 0, 'the leader is one of the members');
    return i;
  };

  it('every member agrees on one leader; member list shows all three with their client URLs', async () => {
    await leaderIndex(members);
    const ml = await etcdctlJson(members[1].endpoint, ['member', 'list']);
    const byName = new Map((ml.members as Array<{ name: string; clientURLs: string[]; peerURLs: string[] }>).map((m) => [m.name, m]));
    assert.deepEqual([...byName.keys()].sort(), ['m1', 'm2', 'm3']);
    members.forEach((s, i) => {
      assert.deepEqual(byName.get(`m${i + 1}`)?.clientURLs, [s.clientUrl]);
      assert.deepEqual(byName.get(`m${i + 1}`)?.peerURLs, [s.peerUrl]);
    });
  });

  it('writes through any member; linearizable reads on every member see them', async () => {
    for (let i = 0; i < 3; i++) assert.ok(await put(members[i].endpoint, `k${i}`, `v${i}`), `put via m${i + 1}`);
    for (const s of members) {
      for (let i = 0; i < 3; i++) assert.equal(await get(s.endpoint, `k${i}`), `v${i}`);
    }
  });

  it('concurrent linearizable reads on both followers are all answered, none waits for the request timeout', async () => {
    const li = await leaderIndex(members);
    const followers = members.filter((_, i) => i !== li);
    await Promise.all(followers.map(async (f) => {
      const c = new RawGrpc(f.endpoint);
      try {
        const rs = await Promise.all(Array.from({ length: 200 }, () =>
          c.unary('/etcdserverpb.KV/Range', pb.RangeRequest.encode({ key: Buffer.from('k0') }).finish())));
        for (const r of rs) assert.equal(r.status, 0, r.message);
      } finally {
        c.close();
      }
    }));
  });

  it('leases through a follower: grant, put, keep-alive and time-to-live answered by the leader', async () => {
    const li = await leaderIndex(members);
    const follower = members[(li + 1) % 3];
    const c = new RawGrpc(follower.endpoint);
    try {
      const g = await c.unary('/etcdserverpb.Lease/LeaseGrant', pb.LeaseGrantRequest.encode({ ID: 5150, TTL: 30 }).finish());
      assert.equal(g.status, 0, g.message);
      const p = await c.unary('/etcdserverpb.KV/Put', pb.PutRequest.encode({ key: Buffer.from('leased'), value: Buffer.from('x'), lease: 5150 }).finish());
      assert.equal(p.status, 0, p.message);
      const ka = c.stream('/etcdserverpb.Lease/LeaseKeepAlive');
      ka.send(pb.LeaseKeepAliveRequest.encode({ ID: 5150 }).finish());
      await ka.until(() => ka.messages.length === 1, 'keep-alive through a follower');
      assert.equal(pb.LeaseKeepAliveResponse.decode(ka.messages[0]).TTL.toString(), '30');
      ka.end();
      const t = await c.unary('/etcdserverpb.Lease/LeaseTimeToLive', pb.LeaseTimeToLiveRequest.encode({ ID: 5150, keys: true }).finish());
      assert.equal(t.status, 0, t.message);
      const ttl = pb.LeaseTimeToLiveResponse.decode(t.body as Buffer);
      assert.equal(ttl.grantedTTL.toString(), '30');
      assert.deepEqual(ttl.keys.map((k) => Buffer.from(k).toString()), ['leased']);
    } finally {
      c.close();
    }
  });

  it('etcdctl move-leader hands leadership to the named member', async () => {
    const li = await leaderIndex(members);
    const target = (li + 1) % 3;
    const targetId = (await statusOf(members[target])).memberId;
    const hex = BigInt(targetId).toString(16);
    const notLeader = await etcdctl(members[target].endpoint, ['move-leader', hex]);
    assert.notEqual(notLeader.code, 0, 'only the leader can move leadership');
    const r = await etcdctl(members[li].endpoint, ['move-leader', hex]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`Leadership transferred from \\w+ to ${hex}`));
    assert.equal(await leaderIndex(members), target);
  });

  it('kill -9 of the leader under writes: a new leader, no acknowledged write lost, the old one catches up, HashKV equal', async () => {
    const li = await leaderIndex(members);
    const survivors = members.filter((_, i) => i !== li);
    const acked: string[] = [];
    let stop = false;
    const writer = async (w: number): Promise<void> => {
      for (let n = 0; !stop; n++) {
        const key = `w${w}-${n}`;
        if (await put(survivors[w % 2].endpoint, key, 'x')) acked.push(key);
        else await sleep(20);
      }
    };
    const writers = [0, 1, 2, 3].map(writer);
    await sleep(800);
    const killedAt = Date.now();
    await members[li].kill9();
    // A new leader among the survivors, within a few election timeouts (1 s each by default).
    let newLeader = -1;
    while (Date.now() - killedAt < 20_000) {
      try {
        newLeader = await leaderIndex(survivors);
        if (newLeader >= 0) break;
      } catch {
        await sleep(200);
      }
    }
    assert.ok(newLeader >= 0, 'a new leader was elected');
    const ackedBefore = acked.length;
    const waitUntil = Date.now() + 15_000;
    while (acked.length === ackedBefore && Date.now() < waitUntil) await sleep(100);
    await sleep(300);
    stop = true;
    await Promise.all(writers);
    assert.ok(acked.length > ackedBefore, 'writes succeed again after the failover');
    for (const key of acked) assert.equal(await get(survivors[0].endpoint, key), 'x', `acknowledged ${key} survives`);

    await members[li].restart();
    // The restarted member catches up: its linearizable reads see every acknowledged write.
    for (const key of acked.slice(-20)) assert.equal(await get(members[li].endpoint, key), 'x');
    const rev = Number((await etcdctlJson(survivors[0].endpoint, ['get', 'k0'])).header.revision);
    const hashes = await Promise.all(members.map(async (s) => {
      const r = await etcdctlJson(s.endpoint, ['endpoint', 'hashkv', `--rev=${rev}`]);
      return r[0].HashKV.hash as number;
    }));
    assert.ok(hashes.every((h) => h === hashes[0]), `HashKV at ${rev}: ${hashes.join(', ')}`);
  });
});

describe('3-member cluster: a follower that missed 10,000 writes catches up by snapshot', function () {
  this.timeout(240_000);
  const members: Server[] = [];
  cleanupServersAfter(() => members);

  it('installs the leader\'s snapshot, then follows the log; HashKV equal on all members', async () => {
    const ports = await Promise.all(Array.from({ length: 6 }, () => freePort()));
    const names = ['s1', 's2', 's3'];
    const initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${ports[3 + i]}`).join(',');
    members.push(...await Promise.all(names.map((name, i) => startEtcdTs({
      name, clientPort: ports[i], peerPort: ports[3 + i], initialCluster, token: 'snap-test', readyTimeoutMs: 60_000,
      logLevel: 'info', extraArgs: ['--snapshot-count', '1000'],
    }))));
    const sts = await Promise.all(members.map(statusOf));
    const li = sts.findIndex((s) => s.memberId === sts[0].leader);
    assert.ok(li >= 0);
    const fi = (li + 1) % 3;
    await members[fi].kill9();
    const c = new RawGrpc(members[li].endpoint);
    try {
      let next = 0;
      const N = 10_000;
      const worker = async (): Promise<void> => {
        while (next < N) {
          const i = next++;
          const r = await c.unary('/etcdserverpb.KV/Put', pb.PutRequest.encode({ key: Buffer.from(`snap/${i}`), value: Buffer.from(`v${i}`) }).finish());
          assert.equal(r.status, 0, r.message);
        }
      };
      await Promise.all(Array.from({ length: 64 }, worker));
    } finally {
      c.close();
    }
    await members[fi].restart();
    assert.equal(await get(members[fi].endpoint, 'snap/9999'), 'v9999');
    assert.equal(await get(members[fi].endpoint, 'snap/0', true), 'v0');
    assert.match(members[fi].stderr(), /installed snapshot from the leader/);
    // The log continues after the snapshot: a new write reaches the caught-up follower too.
    assert.ok(await put(members[li].endpoint, 'after', 'snapshot'));
    const deadline = Date.now() + 10_000;
    while ((await get(members[fi].endpoint, 'after', true)) !== 'snapshot') {
      assert.ok(Date.now() < deadline, 'the follower applies entries after the snapshot');
      await sleep(100);
    }
    const rev = Number((await etcdctlJson(members[li].endpoint, ['get', 'after'])).header.revision);
    const hashes = await Promise.all(members.map(async (s) => (await etcdctlJson(s.endpoint, ['endpoint', 'hashkv', `--rev=${rev}`]))[0].HashKV.hash as number));
    assert.ok(hashes.every((h) => h === hashes[0]), `HashKV at ${rev}: ${hashes.join(', ')}`);
  });
  it('a member added after the log was compacted joins from a snapshot that includes it', async () => {
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    let added: { code: number | null; stdout: string; stderr: string } | undefined;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
      added = await etcdctl(members[0].endpoint, ['member', 'add', 's4', '--learner', `--peer-urls=${peerUrl}`]);
      if (added.code === 0 || !/unhealthy cluster/.test(added.stderr)) break;
      await sleep(500);
    }
    assert.equal(added?.code, 0, added?.stderr);
    const initial = /ETCD_INITIAL_CLUSTER="([^"]+)"/.exec(added!.stdout)![1];
    const s4 = await startEtcdTs({
      name: 's4', clientPort, peerPort, initialCluster: initial, token: 'snap-test', readyTimeoutMs: 60_000, readyProbe: 'http-only',
      logLevel: 'info', extraArgs: ['--initial-cluster-state', 'existing', '--snapshot-count', '1000'],
    });
    members.push(s4);
    // The leader no longer holds entry 1 (10,000 writes, 5,000 kept): only a snapshot can catch s4 up.
    assert.match(s4.stderr(), /installed snapshot from the leader/);
    assert.equal(await get(s4.endpoint, 'snap/9999', true), 'v9999');
    assert.ok(await put(members[0].endpoint, 'after-join', 'yes'));
    const deadline = Date.now() + 10_000;
    while ((await get(s4.endpoint, 'after-join', true)) !== 'yes') {
      assert.ok(Date.now() < deadline, 'the joined member follows the log after its snapshot');
      await sleep(100);
    }
    const list = await etcdctlJson(members[0].endpoint, ['member', 'list']);
    const m = (list.members as Array<{ name: string; isLearner?: boolean }>).find((x) => x.name === 's4');
    assert.equal(m?.isLearner, true);
  });
});

describe('3-member cluster: a linearizable read waiting on a leader that stops answering', function () {
  this.timeout(120_000);
  const members: Server[] = [];
  let stopped: Server | undefined;
  cleanupServersAfter(() => members);
  after(() => {
    if (stopped) process.kill(stopped.pid, 'SIGCONT');
  });

  it('ends with "etcdserver: leader changed" (UNAVAILABLE) once another leader is elected, as etcd 3.4', async () => {
    const ports = await Promise.all(Array.from({ length: 6 }, () => freePort()));
    const names = ['r1', 'r2', 'r3'];
    const initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${ports[3 + i]}`).join(',');
    members.push(...await Promise.all(names.map((name, i) => startEtcdTs({
      name, clientPort: ports[i], peerPort: ports[3 + i], initialCluster, token: 'read-leader-change', readyTimeoutMs: 60_000, logLevel: 'warn',
    }))));
    const sts = await Promise.all(members.map(statusOf));
    const li = sts.findIndex((s) => s.memberId === sts[0].leader);
    assert.ok(li >= 0);
    const follower = members[(li + 1) % 3];
    stopped = members[li];
    process.kill(stopped.pid, 'SIGSTOP'); // alive but silent: its ReadIndex answers never come
    const c = new RawGrpc(follower.endpoint);
    try {
      const r = await c.unary('/etcdserverpb.KV/Range', pb.RangeRequest.encode({ key: Buffer.from('k') }).finish(), { cancelAfterMs: 30_000 });
      assert.deepEqual([r.status, r.message], [14, 'etcdserver: leader changed']);
    } finally {
      c.close();
      process.kill(stopped.pid, 'SIGCONT');
      stopped = undefined;
    }
    // Clients retry it: the same read through the same member now succeeds.
    assert.equal(await get(follower.endpoint, 'k'), null);
  });
});
