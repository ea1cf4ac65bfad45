// --quota-backend-bytes: once the database would grow past the quota, writes fail with etcd's
// "etcdserver: mvcc: database space exceeded" (RESOURCE_EXHAUSTED), on etcd-ts and on Debian's
// etcd 3.4 alike (same small quota, same 64 KiB puts until the first refusal; the number of puts
// that fit differs because bbolt and LMDB lay out pages differently). Reads keep working.
import { strict as assert } from 'node:assert';
import { etcdctl } from '../support/etcdctl';
import { cleanupServersAfter, Server, startEtcd, startEtcdTs } from '../support/procs';

async function fillUntilRefused(s: Server): Promise<string> {
  const value = 'q'.repeat(64 * 1024);
  for (let i = 0; i < 200; i++) {
    const r = await etcdctl(s.endpoint, ['put', `quota/${i}`], { input: value });
    if (r.code !== 0) return r.stderr.trim().split('\n').pop() as string;
  }
  return 'never refused';
}

describe('--quota-backend-bytes', function () {
  this.timeout(120_000);
  let ours: Server | undefined;
  let ref: Server | undefined;
  cleanupServersAfter(() => [ours, ref]);

  it('refuses writes past the quota with etcd\'s error, and reads still work', async () => {
    const quota = ['--quota-backend-bytes', String(1024 * 1024)];
    [ours, ref] = await Promise.all([startEtcdTs({ extraArgs: quota }), startEtcd({ extraArgs: quota })]);
    const [a, b] = await Promise.all([fillUntilRefused(ref), fillUntilRefused(ours)]);
    assert.equal(b, a);
    assert.equal(b, 'Error: etcdserver: mvcc: database space exceeded');
    const get = await etcdctl(ours.endpoint, ['get', 'quota/0', '--print-value-only']);
    assert.equal(get.code, 0);
    assert.equal(get.stdout.trim().length, 64 * 1024);
  });
});
