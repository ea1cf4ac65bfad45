// --quota-backend-bytes: once the database would grow past the quota, writes fail with etcd's
// "etcdserver: mvcc: database space exceeded" (RESOURCE_EXHAUSTED), on etcd-ts and on Debian's
// etcd 3.4 alike (same small quota, same 64 KiB puts until the first refusal; the number of puts
// that fit differs because bbolt and LMDB lay out pages differently). Reads keep working. Lock and
// Election write through the same KV path, so past the quota they fail as etcd's recipes do (code
// Unknown with the same text, because etcd's recipes call the server through its Go client).
import { strict as assert } from 'node:assert';
import { etcdserverpb, v3electionpb, v3lockpb } from '../../src/shared/gen/etcd';
import { etcdctl, fillUntilRefused } from '../support/etcdctl';
import { RawGrpc } from '../support/grpc_raw';
import { cleanupServersAfter, Server, startEtcd, startEtcdTs } from '../support/procs';


describe('--quota-backend-bytes', function () {
  this.timeout(120_000);
  let ours: Server | undefined;
  let ref: Server | undefined;
  cleanupServersAfter(() => [ours, ref]);

  before(async () => {
    const quota = ['--quota-backend-bytes', String(1024 * 1024)];
    [ours, ref] = await Promise.all([startEtcdTs({ extraArgs: quota }), startEtcd({ extraArgs: quota })]);
    // A lease for the recipes below, granted while there is room (etcd refuses grants past the quota).
    for (const s of [ours, ref]) {
      const c = new RawGrpc(s.endpoint);
      const r = await c.unary('/etcdserverpb.Lease/LeaseGrant', etcdserverpb.LeaseGrantRequest.encode({ ID: 77, TTL: 120 }).finish());
      c.close();
      assert.equal(r.status, 0, r.message);
    }
  });

  it('refuses writes past the quota with etcd\'s error, and reads still work', async () => {
    assert.ok(ours && ref);
    const [a, b] = await Promise.all([fillUntilRefused(ref), fillUntilRefused(ours)]);
    assert.equal(b, a);
    assert.equal(b, 'Error: etcdserver: mvcc: database space exceeded');
    const get = await etcdctl(ours.endpoint, ['get', 'quota/0', '--print-value-only']);
    assert.equal(get.code, 0);
    assert.equal(get.stdout.trim().length, 64 * 1024);
  });

  it('Lock and Campaign write through the quota check: etcd\'s error, as code Unknown', async () => {
    // Both latch a NOSPACE alarm at the first refusal (diff_alarm.test.ts), so these are refused by the
    // alarm whatever their size; the room is still filled with smaller puts first, and the recipes'
    // writes are larger than what is left (a lock name near the key size limit, a campaign value of
    // 128 KiB), so the test does not depend on the latch.
    const topUp = async (s: Server): Promise<void> => {
      const c = new RawGrpc(s.endpoint);
      try {
        for (const size of [8192, 1024]) {
          for (let i = 0; i < 100; i++) {
            const r = await c.unary('/etcdserverpb.KV/Put', etcdserverpb.PutRequest.encode({ key: Buffer.from(`top/${size}/${i}`), value: Buffer.alloc(size, 0x71) }).finish());
            if (r.status !== 0) break;
          }
        }
      } finally {
        c.close();
      }
    };
    await Promise.all([topUp(ref!), topUp(ours!)]);
    const name = 'n'.repeat(1800);
    const big = 'v'.repeat(128 * 1024);
    const script = async (s: Server): Promise<string[]> => {
      const c = new RawGrpc(s.endpoint);
      try {
        const calls: Array<[string, string, Uint8Array]> = [
          ['lock', '/v3lockpb.Lock/Lock', v3lockpb.LockRequest.encode({ name: Buffer.from(name), lease: 77 }).finish()],
          ['lock without a lease', '/v3lockpb.Lock/Lock', v3lockpb.LockRequest.encode({ name: Buffer.from(name) }).finish()],
          ['campaign', '/v3electionpb.Election/Campaign', v3electionpb.CampaignRequest.encode({ name: Buffer.from('qe'), lease: 77, value: Buffer.from(big) }).finish()],
        ];
        const out: string[] = [];
        for (const [name, path, req] of calls) {
          const r = await c.unary(path, req);
          out.push(`${name}: ${r.status} ${r.message}`);
        }
        return out;
      } finally {
        c.close();
      }
    };
    const [a, b] = await Promise.all([script(ref!), script(ours!)]);
    assert.deepEqual(b, a);
    assert.deepEqual(b, ['lock', 'lock without a lease', 'campaign'].map((n) => `${n}: 2 etcdserver: mvcc: database space exceeded`));
  });
});
