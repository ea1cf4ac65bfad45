// --auto-compaction-mode periodic: with a 2 s retention, revisions older than the retention are
// compacted through the log without any client Compact call. Writes keep coming; the check polls
// (generous deadline, no exact timing) until a read at an early revision answers etcd's
// "required revision has been compacted", while the newest data is intact.
import { strict as assert } from 'node:assert';
import { Etcd3 } from 'etcd3';
import { cleanupServersAfter, Server, startEtcdTs } from '../support/procs';

describe('auto compaction (periodic)', function () {
  this.timeout(60_000);
  let server: Server | undefined;
  cleanupServersAfter(() => [server]);

  it('compacts old revisions on its own', async () => {
    const s = await startEtcdTs({ extraArgs: ['--auto-compaction-mode', 'periodic', '--auto-compaction-retention', '2s'] });
    server = s;
    const client = new Etcd3({ hosts: `http://${s.endpoint}` });
    try {
      await client.put('k').value('v0');
      const deadline = Date.now() + 40_000;
      let compacted = false;
      for (let i = 1; Date.now() < deadline && !compacted; i++) {
        await client.put('k').value(`v${i}`);
        try {
          await client.get('k').revision(2).string();
        } catch (e) {
          assert.match(String((e as Error).message), /required revision has been compacted/);
          compacted = true;
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.ok(compacted, 'no automatic compaction happened');
      assert.match((await client.get('k').string()) ?? '', /^v\d+$/);
    } finally {
      client.close();
    }
  });
});
