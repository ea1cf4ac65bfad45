// Fan-out pacing (src/workers/watch.ts, limits.watchBatchDelayPerResponseUs, --watch-batch-max-delay):
// after a pass that sent n responses, the next pass waits n × the per-response cost (at most the flag),
// and every revision committed meanwhile reaches each watcher in one response. A quiet server sends at
// once; --watch-batch-max-delay 0s never waits. ETCD_TS_WATCH_BATCH_US makes one response cost the whole
// cap, so the 3 s gap below is far longer than the few milliseconds the puts inside it take.
// Also: etcd 3.4's --experimental-watch-progress-notify-interval, against etcd itself.
//
//   npx tsc -p . && npx mocha --no-config --exit --timeout 60000 dist/test/integration/watch_batch.test.js
import * as assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { cleanupServersAfter, Server, ServerKind, startEtcdTs, startKind } from '../support/procs';
import { WatchClient } from './watch_client';

const gapMs = 3000;

describe('watch: fan-out pacing groups revisions under load', function () {
  this.timeout(60_000);
  let s: Server | undefined;
  cleanupServersAfter(() => [s]);

  async function withServer(maxDelay: string, fn: (client: Etcd3, w: WatchClient) => Promise<void>): Promise<void> {
    s = await startEtcdTs({ extraArgs: ['--watch-batch-max-delay', maxDelay], env: { ETCD_TS_WATCH_BATCH_US: String(gapMs * 1000) } });
    const client = new Etcd3({ hosts: s.clientUrl, dialTimeout: 5_000 });
    const w = new WatchClient(s.endpoint);
    try {
      await client.put('warm').value('up');
      w.create({ key: Buffer.from('/b/'), rangeEnd: Buffer.from('/b0') });
      await w.until((rs) => rs.some((r) => r.created));
      await fn(client, w);
    } finally {
      w.close();
      client.close();
      await s.stop();
      s = undefined;
    }
  }

  const eventResponses = (w: WatchClient) => w.responses.filter((r) => r.events.length > 0);

  it('paced: the first revision goes out at once, the next three in one response, and progress promises only what was sent', async () => {
    await withServer(`${gapMs}ms`, async (client, w) => {
      const r1 = Number((await client.put('/b/1').value('1')).header.revision);
      const first = await w.until((rs) => rs.some((r) => r.events.length > 0), gapMs - 500);
      assert.deepEqual(first.filter((r) => r.events.length > 0).flatMap((r) => r.events.map((e) => e.mod)), [r1], 'a quiet server sends the first revision at once');
      const t0 = Date.now();
      const revs: number[] = [];
      for (const k of ['2', '3', '4']) revs.push(Number((await client.put(`/b/${k}`).value(k)).header.revision));
      // Inside the gap: a progress request must not promise a revision whose events were not sent yet.
      w.send({ progressRequest: {} });
      const progress = (await w.until((rs) => rs.some((r) => r.watchId === -1 && r.events.length === 0 && !r.created))).find((r) => r.watchId === -1)!;
      const insideGap = Date.now() - t0;
      assert.ok(insideGap < gapMs - 1000, `the three puts and the progress request took ${insideGap} ms: the machine is too slow for this test's ${gapMs} ms gap`);
      assert.equal(progress.revision, r1, 'progress during the gap promises the last revision sent, not the newest');
      await w.until((rs) => rs.filter((r) => r.events.length > 0).length >= 2, 10_000);
      const ers = eventResponses(w);
      assert.equal(ers.length, 2, 'revisions committed during the gap arrive in one response');
      assert.deepEqual(ers[1].events.map((e) => [e.key, e.mod]), [['/b/2', revs[0]], ['/b/3', revs[1]], ['/b/4', revs[2]]]);
      assert.equal(ers[1].revision, revs[2], 'the response header has the newest revision it carries');
    });
  });

  it('--watch-batch-max-delay 0s: every revision is sent without waiting', async () => {
    await withServer('0s', async (client, w) => {
      const r1 = Number((await client.put('/b/1').value('1')).header.revision);
      await w.until((rs) => rs.some((r) => r.events.length > 0));
      const t0 = Date.now();
      const r2 = Number((await client.put('/b/2').value('2')).header.revision);
      await w.until((rs) => rs.some((r) => r.events.some((e) => e.mod === r2)), gapMs * 2);
      const ms = Date.now() - t0;
      assert.ok(ms < gapMs - 1000, `the second event took ${ms} ms: it waited for a pacing gap`);
      assert.deepEqual(w.events().map((e) => e.mod), [r1, r2]);
    });
  });
});

describe('watch: --experimental-watch-progress-notify-interval (etcd 3.4 flag)', function () {
  this.timeout(60_000);
  let s: Server | undefined;
  cleanupServersAfter(() => [s]);

  for (const kind of ['etcd', 'etcd-ts'] as ServerKind[]) {
    it(`${kind}: a progress_notify watcher gets a progress notification at the interval; 50ms is raised to etcd's 100ms floor`, async () => {
      s = await startKind(kind, { extraArgs: ['--experimental-watch-progress-notify-interval', '50ms'] });
      const client = new Etcd3({ hosts: s.clientUrl, dialTimeout: 5_000 });
      const w = new WatchClient(s.endpoint);
      try {
        const rev = Number((await client.put('p').value('1')).header.revision);
        w.create({ key: Buffer.from('p'), progressNotify: true });
        const rs = await w.until((all) => all.some((r) => !r.created && r.events.length === 0 && r.watchId === 0), 10_000);
        const n = rs.find((r) => !r.created && r.events.length === 0)!;
        assert.equal(n.revision, rev, 'the notification carries the current revision');
        assert.equal(n.canceled, false);
        assert.match(s.stderr(), /adjusting watch progress notify interval to minimum period/, 'the 50ms interval is raised, with etcd\'s warning');
      } finally {
        w.close();
        client.close();
        await s.stop();
        s = undefined;
      }
    });
  }
});
