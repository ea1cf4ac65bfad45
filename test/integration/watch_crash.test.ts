// What clients see when the watch worker dies. etcd-ts starts here with ETCD_TS_WATCH_FAULT_KEY set, so a
// watch on that one key makes the worker throw, as a broken invariant would. Checked: every open Watch
// stream ends with UNAVAILABLE and a message saying to watch again (not a silent stop); the KV service keeps
// serving meanwhile; the server restarts the worker, and a new stream resuming from the last delivered
// revision + 1 gets exactly the writes made during the outage; the `etcd3` client's watcher re-watches by
// itself and misses nothing; the failure is logged.
//
//   npx tsc -p . && npx mocha --no-config --exit --timeout 60000 dist/test/integration/watch_crash.test.js
import * as assert from 'node:assert/strict';
import { Etcd3, IKeyValue } from 'etcd3';
import { cleanupServersAfter, Server, startEtcdTs } from '../support/procs';
import { sleep, WatchClient } from './watch_client';

const FAULT_KEY = 'watch-worker-fault';
const UNAVAILABLE = '14';

describe('watch worker crash: streams end with UNAVAILABLE, the worker restarts, clients resume', function () {
  this.timeout(120_000);
  let s: Server | undefined;
  const clients: WatchClient[] = [];
  let kv: Etcd3 | undefined;
  let writer: Etcd3 | undefined;
  cleanupServersAfter(() => [s]);
  after(() => {
    for (const c of clients) c.close();
    kv?.close();
    writer?.close();
  });
  const watchClient = (): WatchClient => {
    const c = new WatchClient(s!.endpoint);
    clients.push(c);
    return c;
  };

  it('ends every stream, keeps KV up, restarts, and a resumed watch has no gap', async () => {
    s = await startEtcdTs({ env: { ETCD_TS_WATCH_FAULT_KEY: FAULT_KEY }, logLevel: 'warn' });
    kv = new Etcd3({ hosts: s.clientUrl, dialTimeout: 5_000 });
    // Writes go through a client of their own: when its watch stream ends with UNAVAILABLE, the etcd3
    // client resets its whole channel, cancelling a put in flight, and its retry policy sends that put
    // again (a second revision with the same value), which would be the client's doing, not the server's.
    writer = new Etcd3({ hosts: s.clientUrl, dialTimeout: 5_000 });

    // An etcd3 client watcher: it must re-watch by itself after its stream ends.
    const seen: string[] = [];
    const w3 = await kv.watch().key('k').create();
    w3.on('put', (e: IKeyValue) => seen.push(e.value.toString()));

    const a = watchClient();
    a.create({ key: Buffer.from('k') });
    await a.until((rs) => rs.some((r) => r.created));
    await writer.put('k').value('v1');
    await a.until((rs) => rs.some((r) => r.events.length > 0));
    const lastRev = a.events().at(-1)!.mod;

    const b = watchClient();
    b.create({ key: Buffer.from(FAULT_KEY) });
    await a.until(() => a.status !== undefined, 10_000);
    await b.until(() => b.status !== undefined, 10_000);
    for (const c of [a, b]) {
      assert.equal(c.status, UNAVAILABLE);
      assert.match(c.message!, /watch worker failed; watch again/);
    }

    // KV keeps serving while the worker is down or restarting.
    await writer.put('k').value('v2');
    await writer.put('k').value('v3');

    // A new stream works once the worker is back (refused with UNAVAILABLE until then).
    const deadline = Date.now() + 30_000;
    let c: WatchClient | null = null;
    while (Date.now() < deadline) {
      const t = watchClient();
      t.create({ key: Buffer.from('k'), startRevision: lastRev + 1 });
      await t.until((rs) => rs.some((r) => r.created) || t.status !== undefined, 10_000);
      if (t.responses.some((r) => r.created)) {
        c = t;
        break;
      }
      assert.equal(t.status, UNAVAILABLE);
      await sleep(100);
    }
    assert.ok(c, 'the watch worker did not come back within 30 s');
    await writer.put('k').value('v4');
    await c.until(() => c!.events().length >= 3);
    assert.deepEqual(c.events().map((e) => e.value), ['v2', 'v3', 'v4']);
    assert.deepEqual(c.events().map((e) => e.mod), [lastRev + 1, lastRev + 2, lastRev + 3]);

    // The etcd3 watcher re-watched from its last revision: every value once, in order.
    const until = Date.now() + 30_000;
    while (seen.length < 4 && Date.now() < until) await sleep(50);
    assert.deepEqual(seen, ['v1', 'v2', 'v3', 'v4']);

    // The failure is said loudly on the server's log.
    assert.match(s.stderr(), /watch worker failed/);
    await w3.cancel();
  });
});
