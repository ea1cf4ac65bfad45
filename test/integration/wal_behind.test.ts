// A lone member applies entries while their WAL write is in flight (and answers only after both),
// so a crash can leave the state machine (LMDB) ahead of the WAL. Simulated here by cutting the
// tail off the WAL of a stopped server (mid-record, as a torn write would): the restart must adopt
// the state machine as a snapshot (logged), keep every key, accept new writes, and restart again
// cleanly on the repaired WAL.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Etcd3 } from 'etcd3';
import { cleanupServersAfter, Server, startEtcdTs } from '../support/procs';
import { scanSegment } from '../../src/main/wal/segment';

describe('recovery when the state machine is ahead of the WAL', function () {
  this.timeout(60_000);
  let server: Server | undefined;
  cleanupServersAfter(() => [server]);

  const readAll = async (s: Server): Promise<Record<string, string>> => {
    const c = new Etcd3({ hosts: `http://${s.endpoint}` });
    try {
      return await c.getAll().prefix('wb/').strings();
    } finally {
      c.close();
    }
  };

  it('adopts the state machine and keeps serving', async () => {
    const s = await startEtcdTs({ logLevel: 'info' });
    server = s;
    const c = new Etcd3({ hosts: `http://${s.endpoint}` });
    for (let i = 0; i < 20; i++) await c.put(`wb/${i}`).value(`v${i}`);
    c.close();
    assert.equal(await s.stop('SIGTERM'), 0);

    const walDir = path.join(s.dataDir, 'member', 'wal');
    const seg = fs.readdirSync(walDir).filter((f) => f.endsWith('.wal')).sort().pop() as string;
    const file = path.join(walDir, seg);
    // Where the records end: zeros written ahead of them (preallocation) follow.
    const end = scanSegment(fs.readFileSync(file), file, true, () => undefined).validBytes;
    assert.ok(end > 400);
    fs.truncateSync(file, end - 400); // drops the last few records, cutting one of them mid-way

    await s.restart();
    assert.match(s.stderr(), /adopting it as a snapshot/);
    const all = await readAll(s);
    for (let i = 0; i < 20; i++) assert.equal(all[`wb/${i}`], `v${i}`);
    const c2 = new Etcd3({ hosts: `http://${s.endpoint}` });
    await c2.put('wb/after').value('x');
    c2.close();
    await s.restart();
    assert.doesNotMatch(s.stderr(), /adopting it as a snapshot/);
    assert.equal((await readAll(s))['wb/after'], 'x');
  });
});
