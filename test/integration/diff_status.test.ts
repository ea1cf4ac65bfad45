// Differential test of what `etcdctl endpoint status -w json` and `member list -w json` show over a
// member's life, against Debian's etcd 3.4: fresh start, after writes, after a restart. etcd-ts
// bootstraps its log the way etcd does (ConfChange entries at term 1, election to term 2, the
// leader's no-op, the member's published attributes, the cluster version), so raft index, applied
// index, term, revision and version must be equal. Normalized away: IDs (they derive from the
// peer URL, whose port differs), the endpoint port, and the database sizes (bbolt and LMDB
// files differ by design).
import { strict as assert } from 'node:assert';
import { etcdctl } from '../support/etcdctl';
import { cleanupServersAfter, Server, startEtcd, startEtcdTs } from '../support/procs';

function normalize(json: string, s: Server): string {
  return json
    .replace(/"(cluster_id|member_id|leader|ID)":\d+/g, '"$1":0')
    .replace(/"(dbSize|dbSizeInUse)":\d+/g, '"$1":0')
    .split(s.endpoint).join('ENDPOINT')
    .split(s.clientUrl).join('CLIENT_URL')
    .split(s.peerUrl).join('PEER_URL');
}

async function show(s: Server, args: string[]): Promise<string> {
  const r = await etcdctl(s.endpoint, [...args, '-w', 'json']);
  assert.equal(r.code, 0, r.stderr);
  return normalize(r.stdout, s);
}

describe('endpoint status and member list over a member\'s life, vs etcd 3.4', function () {
  this.timeout(90_000);
  let ours: Server | undefined;
  let ref: Server | undefined;
  cleanupServersAfter(() => [ours, ref]);

  before(async () => {
    [ours, ref] = await Promise.all([startEtcdTs({ readyProbe: 'etcdctl' }), startEtcd({ readyProbe: 'etcdctl' })]);
  });

  const compare = async (what: string): Promise<void> => {
    for (const args of [['endpoint', 'status'], ['member', 'list']]) {
      const [a, b] = await Promise.all([show(ref as Server, args), show(ours as Server, args)]);
      assert.equal(b, a, `${what}: ${args.join(' ')} differs\netcd:    ${a}\netcd-ts: ${b}`);
    }
  };

  it('fresh start', () => compare('fresh'));

  it('after writes', async () => {
    for (const s of [ours, ref] as Server[]) {
      for (const [k, v] of [['a', '1'], ['b', '2'], ['a', '3']]) assert.equal((await etcdctl(s.endpoint, ['put', k, v])).code, 0);
    }
    await compare('after 3 puts');
  });

  it('after curl /health (etcd 3.4 commits a quorum GET through the log)', async () => {
    for (const s of [ours, ref] as Server[]) {
      const r = await fetch(`${s.clientUrl}/health`);
      assert.deepEqual(await r.json(), { health: 'true' });
    }
    await compare('after /health');
  });

  it('after a restart', async () => {
    await Promise.all([(ours as Server).restart(), (ref as Server).restart()]);
    await compare('after restart');
  });
});
