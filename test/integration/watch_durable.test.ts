// A watcher sees a revision only once its entry is durable in the WAL. A lone voter applies entries while
// their WAL write runs (as etcd's leader does), so without that rule an event could reach a watcher before
// the fsync, and a power loss in between would take back a revision a client had seen (linearizable
// reads already wait for the fsync). The server runs with ETCD_TS_WAL_SYNC_DELAY_MS (a slow disk, see
// wal.ts): every durable write completes 400 ms late, so an event that left before its fsync arrives
// within milliseconds, long before that.
//
//   npx tsc -p . && npx mocha --no-config --exit --timeout 60000 dist/test/integration/watch_durable.test.js
import * as assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { cleanupServersAfter, Server, startEtcdTs } from '../support/procs';
import { WatchClient } from './watch_client';

const syncDelayMs = 400;

describe('watch: events wait for the WAL fsync (lone voter)', function () {
  this.timeout(60_000);
  let s: Server | undefined;
  cleanupServersAfter(() => [s]);

  it('an event arrives only after its entry is durable, and the put is answered after it too', async () => {
    s = await startEtcdTs({ env: { ETCD_TS_WAL_SYNC_DELAY_MS: String(syncDelayMs) } });
    const client = new Etcd3({ hosts: s.clientUrl, dialTimeout: 5_000 });
    const w = new WatchClient(s.endpoint);
    try {
      w.create({ key: Buffer.from('durable') });
      await w.until((rs) => rs.some((r) => r.created));
      await client.put('warm').value('up'); // the client's connection is open before the timed put
      const t0 = Date.now();
      const put = client.put('durable').value('v1').exec();
      await w.until((rs) => rs.some((r) => r.events.length > 0), 10_000);
      const eventMs = Date.now() - t0;
      const res = await put;
      const putMs = Date.now() - t0;
      assert.ok(putMs >= syncDelayMs * 0.75, `the injected WAL delay is in effect (put answered after ${putMs} ms)`);
      assert.ok(eventMs >= syncDelayMs * 0.75, `the event arrived ${eventMs} ms after the put was sent, before its entry was durable`);
      const ev = w.events()[0];
      assert.deepEqual([ev.key, ev.value, ev.mod], ['durable', 'v1', Number(res.header.revision)]);
    } finally {
      w.close();
      client.close();
    }
  });
});
