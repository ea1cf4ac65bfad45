// Runtime membership changes on a 3-member etcd-ts cluster, driven with etcdctl as an operator would:
// add a learner, start it with --initial-cluster-state existing (it learns its ID from the cluster and
// catches up), check that it refuses what etcd's learners refuse, promote it once it has caught up,
// remove a follower (its process stops), remove the leader (a new one is elected, the old one stops),
// with the same HashKV on every remaining member, then add a voter directly and start it. Writes go on throughout; none is lost.
import { strict as assert } from 'node:assert';
import { etcdctl, etcdctlJson } from '../support/etcdctl';
import { RawGrpc } from '../support/grpc_raw';
import { cleanupServersAfter, freePort, Server, startEtcdTs } from '../support/procs';
import { etcdserverpb } from '../../src/shared/gen/etcd';
import { sleep, WatchClient } from './watch_client';

const pb = etcdserverpb;

interface Status { memberId: string; leader: string; isLearner: boolean; applied: number }

async function statusOf(s: Server): Promise<Status> {
  const r = await etcdctl(s.endpoint, ['endpoint', 'status', '-w', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout.replace(/"(member_id|leader|cluster_id)":(\d+)/g, '"$1":"$2"'))[0].Status;
  return { memberId: j.header.member_id, leader: j.leader, isLearner: j.isLearner === true, applied: j.raftAppliedIndex };
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

async function unary(endpoint: string, method: string, body: Uint8Array): Promise<{ status: number; message: string; body?: Buffer }> {
  const c = new RawGrpc(endpoint);
  try {
    return await c.unary(method, body, { cancelAfterMs: 5000 }) as { status: number; message: string; body?: Buffer };
  } finally {
    c.close();
  }
}

const putReq = (k: string, v: string): Uint8Array => pb.PutRequest.encode({ key: Buffer.from(k), value: Buffer.from(v) }).finish();

async function get(endpoint: string, key: string, serializable: boolean): Promise<string | null> {
  const r = await unary(endpoint, '/etcdserverpb.KV/Range', pb.RangeRequest.encode({ key: Buffer.from(key), serializable }).finish());
  assert.equal(r.status, 0, r.message);
  const kv = pb.RangeResponse.decode(r.body!).kvs[0];
  return kv ? Buffer.from(kv.value ?? []).toString() : null;
}

describe('membership changes on a 3-member cluster (add learner, join, promote, remove)', function () {
  this.timeout(240_000);
  const members: Server[] = [];
  cleanupServersAfter(() => members);
  const names = ['m1', 'm2', 'm3'];
  let ports: number[] = [];
  let initialCluster = '';
  const written = new Map<string, string>();
  let learner: Server | undefined;
  let learnerId = '';
  /** The two members left after the removals. */
  let survivors: Server[] = [];

  const write = async (via: Server, k: string, v: string): Promise<void> => {
    const r = await unary(via.endpoint, '/etcdserverpb.KV/Put', putReq(k, v));
    assert.equal(r.status, 0, r.message);
    written.set(k, v);
  };

  before(async () => {
    ports = await Promise.all(Array.from({ length: 11 }, () => freePort()));
    initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${ports[4 + i]}`).join(',');
    members.push(...await Promise.all(names.map((name, i) => startEtcdTs({
      name, clientPort: ports[i], peerPort: ports[4 + i], initialCluster, token: 'membership-test', readyTimeoutMs: 60_000, logLevel: 'warn',
    }))));
    for (let i = 0; i < 20; i++) await write(members[i % 3], `/before/${i}`, `v${i}`);
  });

  it('adds a learner that joins with --initial-cluster-state existing and catches up', async () => {
    const peerUrl = `http://127.0.0.1:${ports[7]}`;
    // etcd refuses a member add until every voter has been connected for 5 s (HealthInterval).
    const r = await until('member add', async () => {
      const x = await etcdctl(members[1].endpoint, ['member', 'add', 'm4', '--learner', `--peer-urls=${peerUrl}`]);
      if (x.code !== 0 && /unhealthy cluster/.test(x.stderr)) return undefined;
      return x;
    });
    assert.equal(r.code, 0, r.stderr);
    learnerId = /Member\s+([0-9a-f]+) added to cluster/.exec(r.stdout)?.[1] ?? '';
    assert.ok(learnerId, r.stdout);
    // What etcdctl prints is what the new member is started with.
    assert.match(r.stdout, /ETCD_INITIAL_CLUSTER_STATE="existing"/);
    const env = Object.fromEntries([...r.stdout.matchAll(/^(ETCD_\w+)="(.*)"$/gm)].map((m) => [m[1], m[2]]));
    assert.equal(env.ETCD_NAME, 'm4');
    learner = await startEtcdTs({
      name: 'm4', clientPort: ports[3], peerPort: ports[7], initialCluster: env.ETCD_INITIAL_CLUSTER, token: 'membership-test',
      extraArgs: ['--initial-cluster-state', 'existing'], readyTimeoutMs: 60_000, readyProbe: 'http-only', logLevel: 'warn',
    });
    members.push(learner);
    const st = await statusOf(learner);
    assert.equal(BigInt(st.memberId).toString(16), learnerId);
    assert.equal(st.isLearner, true);
    // Serializable reads are served by a learner, from the state it replicated.
    await write(members[0], '/after-add', 'x');
    await until('the learner to catch up', async () => (await get(learner!.endpoint, '/after-add', true)) === 'x' ? true : undefined);
    for (const [k, v] of written) assert.equal(await get(learner.endpoint, k, true), v, k);
    const list = await etcdctlJson(members[0].endpoint, ['member', 'list']);
    const m4 = (list.members as Array<{ name: string; isLearner?: boolean; peerURLs: string[] }>).find((m) => m.peerURLs[0] === peerUrl);
    assert.equal(m4?.isLearner, true);
    assert.equal(m4?.name, 'm4'); // published once it started
  });

  it('a learner refuses writes, linearizable reads and watches as etcd learners do', async () => {
    const notForLearner = 'etcdserver: rpc not supported for learner';
    const put = await unary(learner!.endpoint, '/etcdserverpb.KV/Put', putReq('/nope', 'x'));
    assert.deepEqual([put.status, put.message], [14, notForLearner]);
    const lin = await unary(learner!.endpoint, '/etcdserverpb.KV/Range', pb.RangeRequest.encode({ key: Buffer.from('/after-add') }).finish());
    assert.deepEqual([lin.status, lin.message], [14, notForLearner]);
    const ml = await etcdctl(learner!.endpoint, ['member', 'list']);
    assert.notEqual(ml.code, 0);
    assert.match(ml.stderr, /rpc not supported for learner/);
    // Streams too (clientv3 retries a Watch refused with UNAVAILABLE, so a raw stream shows the status).
    const w = new WatchClient(learner!.endpoint);
    try {
      w.create({ key: Buffer.from('/x') });
      await w.until(() => w.status !== undefined, 10_000);
      assert.deepEqual([w.status, w.message], ['14', notForLearner]);
    } finally {
      w.close();
    }
    // A second learner is refused while one exists (etcd 3.4 allows one).
    const again = await etcdctl(members[0].endpoint, ['member', 'add', 'm5', '--learner', '--peer-urls=http://127.0.0.1:1']);
    assert.match(again.stderr, /too many learner members in cluster/);
  });

  it('promotes the learner (through a follower, forwarded to the leader); it then votes and serves everything', async () => {
    const leaderIdx = await leaderIndex(members.slice(0, 3));
    const follower = members[(leaderIdx + 1) % 3];
    const r = await until('member promote', async () => {
      const x = await etcdctl(follower.endpoint, ['member', 'promote', learnerId]);
      if (x.code !== 0 && /in sync with leader/.test(x.stderr)) return undefined;
      return x;
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`Member\\s+${learnerId} promoted in cluster`));
    await until('the promoted member to see itself as a voter', async () => ((await statusOf(learner!)).isLearner ? undefined : true));
    await write(learner!, '/via-m4', 'y');
    assert.equal(await get(learner!.endpoint, '/via-m4', false), 'y');
  });

  it('removes a follower: its process stops, the others go on; removes the leader: a new one takes over', async () => {
    const four = members.slice(0, 4);
    let leaderIdx = await leaderIndex(four);
    const victim = four[(leaderIdx + 1) % 4];
    const victimId = BigInt((await statusOf(victim)).memberId).toString(16);
    const r = await removeMember(four[leaderIdx], victimId);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`Member\\s+${victimId} removed from cluster`));
    await until('the removed member to exit', async () => (await exited(victim)) ? true : undefined);
    assert.match(victim.stderr(), /permanently removed from the cluster/);
    const rest = four.filter((m) => m !== victim);
    for (let i = 0; i < 10; i++) await write(rest[i % 3], `/after-remove/${i}`, `r${i}`);
    const again = await etcdctl(rest[0].endpoint, ['member', 'remove', victimId]);
    assert.match(again.stderr, /member not found/);

    // Remove the leader: it steps down, the two others elect a leader among themselves.
    leaderIdx = await leaderIndex(rest);
    const oldLeader = rest[leaderIdx];
    const oldId = BigInt((await statusOf(oldLeader)).memberId).toString(16);
    const r2 = await removeMember(oldLeader, oldId);
    assert.equal(r2.code, 0, r2.stderr);
    const two = rest.filter((m) => m !== oldLeader);
    await until('the removed leader to exit', async () => (await exited(oldLeader)) ? true : undefined);
    await until('a new leader', async () => {
      const sts = await Promise.all(two.map(statusOf));
      return sts[0].leader !== '0' && sts.every((s) => s.leader === sts[0].leader) && sts.some((s) => s.memberId === s.leader) ? true : undefined;
    });
    await until('a write through the new cluster', async () => {
      await write(two[0], '/after-leader-remove', 'z');
      return true;
    });
    const list = await etcdctlJson(two[1].endpoint, ['member', 'list']);
    assert.equal((list.members as unknown[]).length, 2);

    // Every acknowledged write is on both remaining members, and their states hash the same.
    for (const s of two) {
      for (const [k, v] of written) assert.equal(await get(s.endpoint, k, false), v, `${k} on ${s.endpoint}`);
    }
    const hashes = await until('equal HashKV', async () => {
      const hs = await Promise.all(two.map(async (s) => {
        const h = await unary(s.endpoint, '/etcdserverpb.Maintenance/HashKV', pb.HashKVRequest.encode({}).finish());
        assert.equal(h.status, 0, h.message);
        const d = pb.HashKVResponse.decode(h.body!);
        return `${d.header?.revision}:${d.hash}`;
      }));
      return hs[0] === hs[1] ? hs : undefined;
    });
    assert.equal(hashes.length, 2);
    survivors = two;
  });

  it('adds a voter directly (no learner step): it joins, counts in the quorum, and replicates', async () => {
    const peerUrl = `http://127.0.0.1:${ports[8]}`;
    const r = await until('member add (voter)', async () => {
      const x = await etcdctl(survivors[0].endpoint, ['member', 'add', 'm5', `--peer-urls=${peerUrl}`]);
      return x.code !== 0 && /unhealthy cluster/.test(x.stderr) ? undefined : x;
    });
    assert.equal(r.code, 0, r.stderr);
    const initial = /ETCD_INITIAL_CLUSTER="([^"]+)"/.exec(r.stdout)![1];
    const m5 = await startEtcdTs({
      name: 'm5', clientPort: ports[9], peerPort: ports[8], initialCluster: initial, token: 'membership-test',
      extraArgs: ['--initial-cluster-state', 'existing'], readyTimeoutMs: 60_000, logLevel: 'warn',
    });
    members.push(m5);
    assert.equal((await statusOf(m5)).isLearner, false);
    await write(m5, '/via-m5', 'w');
    for (const s of [...survivors, m5]) {
      for (const [k, v] of written) assert.equal(await get(s.endpoint, k, false), v, `${k} on ${s.endpoint}`);
    }
    const list = await etcdctlJson(m5.endpoint, ['member', 'list']);
    assert.equal((list.members as unknown[]).length, 3);
  });

  it('moves a member to a new peer URL with member update, then restarts it there', async () => {
    const m5 = members[members.length - 1];
    const m5Id = BigInt((await statusOf(m5)).memberId).toString(16);
    const newPeerPort = ports[10];
    const r = await etcdctl(survivors[0].endpoint, ['member', 'update', m5Id, `--peer-urls=http://127.0.0.1:${newPeerPort}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`Member\\s+${m5Id} updated in cluster`));
    await m5.stop();
    // Same data dir, new peer port: the others dial it at the URL the cluster now holds.
    const moved = await startEtcdTs({
      name: 'm5', dataDir: m5.dataDir, clientPort: ports[9], peerPort: newPeerPort,
      initialCluster: `m5=http://127.0.0.1:${newPeerPort}`, token: 'membership-test', readyTimeoutMs: 60_000, logLevel: 'warn',
    });
    members.push(moved);
    await until('a write through the moved member', async () => {
      await write(moved, '/after-move', 'm');
      return true;
    });
    for (const s of survivors) {
      await until(`the write on ${s.endpoint}`, async () => ((await get(s.endpoint, '/after-move', true)) === 'm' ? true : undefined));
    }
    const list = await etcdctlJson(survivors[1].endpoint, ['member', 'list']);
    const urls = (list.members as Array<{ peerURLs: string[] }>).map((m) => m.peerURLs[0]);
    assert.ok(urls.includes(`http://127.0.0.1:${newPeerPort}`), JSON.stringify(urls));
  });

  /** etcd refuses a removal while a voter has been connected for less than 5 s: retry, as an operator would. */
  async function removeMember(via: Server, idHex: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return until(`member remove ${idHex}`, async () => {
      const x = await etcdctl(via.endpoint, ['member', 'remove', idHex]);
      return x.code !== 0 && /unhealthy cluster/.test(x.stderr) ? undefined : x;
    });
  }

  async function leaderIndex(among: Server[]): Promise<number> {
    return until('one leader among the members', async () => {
      const sts = await Promise.all(among.map(statusOf));
      const lead = sts[0].leader;
      if (lead === '0' || !sts.every((s) => s.leader === lead)) return undefined;
      const i = sts.findIndex((s) => s.memberId === lead);
      return i >= 0 ? i : undefined;
    });
  }

  async function exited(s: Server): Promise<boolean> {
    try {
      process.kill(s.pid, 0);
      return false;
    } catch {
      return true;
    }
  }
});
