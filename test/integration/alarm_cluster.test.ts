// NOSPACE on a 3-member etcd-ts cluster (--quota-backend-bytes 1 MiB on each): 64 KiB puts through
// member 1 until the first refusal; the alarm it raises goes through the log, so every member lists it,
// shows it in `endpoint status` and refuses puts (also through member 3, which never saw the quota
// refusal), while reads, deletes and compaction work everywhere. A restarted member still has it
// (persisted in LMDB). `alarm disarm` through member 3 clears them on every member. Then
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

/** Alarm list and the errors of endpoint status, as this member answers them (serializable: its own state). */
async function alarmsOf(s: Server): Promise<{ list: string; errors: string[] }> {
  const list = await ctlOk(s, ['alarm', 'list']);
  const st = await ctlOk(s, ['endpoint', 'status', '-w', 'json']);
  const errors = (JSON.parse(st.replace(/":(\d{16,})/g, '":"$1"'))[0].Status.errors ?? []) as string[];
  return { list, errors };
}

describe('NOSPACE alarm on a 3-member cluster', function () {
  this.timeout(180_000);
  const members: Server[] = [];
  cleanupServersAfter(() => members);

  before(async () => {
    members.push(...(await startEtcdTsCluster(3, 'alarm-test', { extraArgs: ['--quota-backend-bytes', String(1024 * 1024)] })));
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
