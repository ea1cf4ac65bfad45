// NOSPACE on a 3-member etcd-ts cluster (--quota-backend-bytes 1 MiB on each): 64 KiB puts through
// member 1 until the first refusal; the alarm it raises goes through the log, so every member lists it,
// shows it in `endpoint status` and refuses puts (also through member 3, which never saw the quota
// refusal), while reads, deletes and compaction work everywhere. A restarted member still has it
// (persisted in LMDB). `alarm disarm` through member 3 clears them on every member. Then, filled again
// with overwrites: puts, txns with a put and lease grants are refused with etcd's error on every member
// while reads, a delete and compaction work; compact + `etcdctl defrag --cluster` +
// `alarm disarm` restore writes on every member, and every acknowledged write reads back from each.
// Compaction runs on every member that applies it, not only on the one that served the request (before,
// the others kept every old revision: their databases never shrank and Maintenance.Hash differed). Then
// Maintenance.Hash answers the same hash and revision on every member.
//
//   npm run build && npx mocha --no-config --exit --timeout 180000 dist/test/integration/alarm_cluster.test.js
import { strict as assert } from 'node:assert';
import { etcdserverpb } from '../../src/shared/gen/etcd';
import { etcdctl, fillUntilRefused } from '../support/etcdctl';
import { RawGrpc } from '../support/grpc_raw';
import { cleanupServersAfter, Server, startEtcdTsCluster } from '../support/procs';

async function ctlOk(s: Server, args: string[], input?: string): Promise<string> {
  const r = await etcdctl(s.endpoint, args, { input });
  assert.equal(r.code, 0, `etcdctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function ctlErr(s: Server, args: string[]): Promise<string> {
  const r = await etcdctl(s.endpoint, args);
  assert.notEqual(r.code, 0, `etcdctl ${args.join(' ')} should fail`);
  return r.stderr.trim().split('\n').pop() as string;
}

/** The header revision of an `etcdctl ... -w json` answer, as text. */
function revisionOf(json: string): string {
  const m = /"revision":(\d+)/.exec(json);
  assert.ok(m, json);
  return m[1];
}

const QUOTA_BYTES = 1024 * 1024;

/** This member's database size (endpoint status), in bytes. */
async function dbSizeOf(s: Server): Promise<number> {
  const m = /"dbSize":(\d+)/.exec(await ctlOk(s, ['endpoint', 'status', '-w', 'json']));
  assert.ok(m);
  return Number(m[1]);
}

/**
 * `etcdctl defrag --cluster` through s until every member's database is below the quota: each member
 * removes compacted revisions in the background (only the one that was asked waits with --physical),
 * so a defragmentation that ran before a member's compaction finished is repeated, as an operator would.
 */
async function defragUntilBelowQuota(s: Server): Promise<void> {
  let sizes: number[] = [];
  for (let i = 0; i < 20; i++) {
    const out = await ctlOk(s, ['defrag', '--cluster']);
    assert.equal(out.split('\n').filter((l) => l.startsWith('Finished defragmenting etcd member')).length, 3, out);
    sizes = await Promise.all(members.map(dbSizeOf));
    if (sizes.every((b) => b < QUOTA_BYTES / 2)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.fail(`database sizes after defrag: ${sizes.join(' ')}`);
}

/** Alarm list and the errors of endpoint status, as this member answers them (serializable: its own state). */
async function alarmsOf(s: Server): Promise<{ list: string; errors: string[] }> {
  const list = await ctlOk(s, ['alarm', 'list']);
  const st = await ctlOk(s, ['endpoint', 'status', '-w', 'json']);
  const errors = (JSON.parse(st.replace(/":(\d{16,})/g, '":"$1"'))[0].Status.errors ?? []) as string[];
  return { list, errors };
}

const members: Server[] = [];

describe('NOSPACE alarm on a 3-member cluster', function () {
  this.timeout(180_000);
  cleanupServersAfter(() => members);

  before(async () => {
    members.push(...(await startEtcdTsCluster(3, 'alarm-test', { extraArgs: ['--quota-backend-bytes', String(QUOTA_BYTES)] })));
  });

  it('is raised through the log on every member, latches, persists, and is disarmed everywhere', async () => {
    const [m1, m2, m3] = members;
    const refused = await fillUntilRefused(m1);
    assert.equal(refused, 'Error: etcdserver: mvcc: database space exceeded');
    const m1Id = /member_id":(\d+)/.exec(await ctlOk(m1, ['endpoint', 'status', '-w', 'json']))?.[1];
    const expected = `memberID:${m1Id} alarm:NOSPACE `;
    for (const m of members) {
      const a = await alarmsOf(m);
      assert.equal(a.list, `${expected}\n`);
      assert.deepEqual(a.errors, [expected]);
    }
    // Latched on every member: a small put through member 3 is refused at apply.
    assert.equal(await ctlErr(m3, ['put', 'small', 'x']), 'Error: etcdserver: mvcc: database space exceeded');
    assert.equal(await ctlErr(m2, ['lease', 'grant', '10']), 'Error: failed to grant lease (etcdserver: mvcc: database space exceeded)');
    assert.equal(await ctlOk(m3, ['get', 'quota/0', '--keys-only']), 'quota/0\n\n');
    assert.equal(await ctlOk(m2, ['del', 'quota/1']), '1\n');
    assert.match(await ctlOk(m3, ['compact', '3']), /compacted revision 3/);
    // Members 2 and 3 may have raised their own NOSPACE meanwhile (their databases are over the quota
    // too, as in etcd, where each member's quota check raises the alarm with its own ID).
    const before = (await alarmsOf(m1)).list;
    assert.ok(before.includes(expected), before);
    await m2.restart();
    assert.equal((await alarmsOf(m2)).list, before);
    assert.equal(await ctlErr(m2, ['put', 'small', 'x']), 'Error: etcdserver: mvcc: database space exceeded');
    const all = (await alarmsOf(m1)).list;
    assert.equal(await ctlOk(m3, ['alarm', 'disarm']), all);
    for (const m of members) assert.deepEqual(await alarmsOf(m), { list: '', errors: [] });
  });

  it('refuses puts, txns with puts and grants on every member, and compact + defrag --cluster + disarm restore writes', async () => {
    const [m1] = members;
    // Start from a store below the quota: the first test left it full.
    await ctlOk(m1, ['del', '--prefix', 'quota/']);
    await ctlOk(m1, ['compact', revisionOf(await ctlOk(m1, ['get', 'x', '-w', 'json']))]);
    await defragUntilBelowQuota(m1);
    await ctlOk(m1, ['alarm', 'disarm']);
    // What every member must serve at the end: the last acknowledged value of each key.
    const acked = new Map<string, string>();
    for (let i = 0; i < 3; i++) {
      await ctlOk(members[i], ['put', `keep/${i}`, `k${i}`]);
      acked.set(`keep/${i}`, `k${i}`);
    }
    // 64 KiB overwrites of four keys until refused: the history, not the live keys, fills the quota,
    // so compaction can free it (etcd's documented NOSPACE recovery).
    let refusal = 'never refused';
    for (let i = 0; i < 200; i++) {
      const key = `fill/${i % 4}`;
      const value = `${i}-`.padEnd(64 * 1024, 'f');
      const r = await etcdctl(m1.endpoint, ['put', key], { input: value });
      if (r.code !== 0) {
        refusal = r.stderr.trim().split('\n').pop() as string;
        break;
      }
      acked.set(key, value);
    }
    assert.equal(refusal, 'Error: etcdserver: mvcc: database space exceeded', m1.stderr().slice(-6000));
    const nospace = 'Error: etcdserver: mvcc: database space exceeded';
    for (const m of members) {
      assert.match((await alarmsOf(m)).list, /alarm:NOSPACE/);
      assert.equal(await ctlErr(m, ['put', 'small', 'x']), nospace);
      const txn = await etcdctl(m.endpoint, ['txn', '-i'], { input: '\nput t1 v\n\n\n' });
      assert.notEqual(txn.code, 0, 'a txn with a put is refused');
      assert.equal(txn.stderr.trim().split('\n').pop(), nospace);
      assert.equal(await ctlErr(m, ['lease', 'grant', '10']), 'Error: failed to grant lease (etcdserver: mvcc: database space exceeded)');
      // Reads keep working. (A read-only txn does not: etcd's quotaKVServer checks every txn, at cost 0,
      // and refuses it once this member's database has reached the quota, as etcd-ts does.)
      assert.equal(await ctlOk(m, ['get', 'keep/0', '--print-value-only']), 'k0\n');
      assert.equal(await ctlOk(m, ['get', 'keep/1', '--print-value-only', '--consistency=s']), 'k1\n');
    }
    // A delete and a compaction are allowed under NOSPACE.
    assert.equal(await ctlOk(members[1], ['del', 'keep/2']), '1\n');
    acked.delete('keep/2');
    const rev = revisionOf(await ctlOk(members[2], ['get', 'keep/0', '-w', 'json']));
    assert.match(await ctlOk(members[2], ['compact', rev, '--physical']), new RegExp(`compacted revision ${rev}`));
    await defragUntilBelowQuota(members[0]);
    await ctlOk(members[2], ['alarm', 'disarm']);
    for (const m of members) assert.deepEqual(await alarmsOf(m), { list: '', errors: [] });
    for (let i = 0; i < 3; i++) {
      await ctlOk(members[i], ['put', `after/${i}`, `a${i}`]);
      acked.set(`after/${i}`, `a${i}`);
      assert.match(await ctlOk(members[i], ['lease', 'grant', '10']), /granted with TTL\(10s\)/);
      assert.match(await ctlOk(members[i], ['txn', '-i'], '\nput t2 v\n\n\n'), /SUCCESS\n\nOK\n$/);
    }
    // Every acknowledged write, from every member (linearizable reads).
    for (const m of members) {
      for (const prefix of ['keep/', 'fill/', 'after/']) {
        const json = JSON.parse(await ctlOk(m, ['get', '--prefix', prefix, '-w', 'json'])) as {
          kvs?: Array<{ key: string; value: string }>;
        };
        const got = new Map(
          (json.kvs ?? []).map((kv) => [Buffer.from(kv.key, 'base64').toString(), Buffer.from(kv.value, 'base64').toString()]),
        );
        const want = new Map([...acked].filter(([k]) => k.startsWith(prefix)));
        assert.equal(got.size, want.size, `${m.endpoint} ${prefix}: keys`);
        for (const [k, v] of want) assert.ok(got.get(k) === v, `${m.endpoint}: ${k} is not its last acknowledged value`);
      }
    }
    // The same KV history on every member (HashKV at the current revision).
    const rev2 = revisionOf(await ctlOk(members[0], ['get', 'x', '-w', 'json']));
    const hashkv = await Promise.all(members.map(async (m) => (await ctlOk(m, ['endpoint', 'hashkv', `--rev=${rev2}`])).split(', ')[1]));
    assert.ok(
      hashkv.every((h) => h === hashkv[0]),
      hashkv.join(' '),
    );
  });

  it('Maintenance.Hash is the same on every member once they have applied the same state', async () => {
    const hashOf = async (s: Server): Promise<string> => {
      const c = new RawGrpc(s.endpoint);
      try {
        const r = await c.unary('/etcdserverpb.Maintenance/Hash', etcdserverpb.HashRequest.encode({}).finish());
        assert.equal(r.status, 0, r.message);
        const h = etcdserverpb.HashResponse.decode(r.body as Buffer);
        return `${String(h.header?.revision)}:${h.hash}`;
      } finally {
        c.close();
      }
    };
    let hashes: string[] = [];
    for (let i = 0; i < 50; i++) {
      hashes = await Promise.all(members.map(hashOf));
      if (hashes.every((h) => h === hashes[0])) break;
      await new Promise((r) => setTimeout(r, 100)); // followers still applying, or compacting
    }
    assert.ok(
      hashes.every((h) => h === hashes[0]),
      hashes.join(' '),
    );
  });
});
