// Watch end to end on etcd-ts (ETCD_TS_TARGET=etcd runs the same checks on etcd 3.4): the `etcd3` npm
// client's watch builder (key, prefix, put/delete events, cancel), etcd's exact compaction sequence (created,
// then canceled with compact_revision and header revision 0), resume after a reconnect from the last
// revision + 1, many watchers on one prefix over several connections with concurrent writers (puts and
// multi-key txns), checked against the history the writes returned: ordered, unique, no gap, atomic (all of
// one revision's events in one response), prev_kv and IsCreate right; and a client that stops reading while
// megabytes of events are written: a fast watcher keeps receiving meanwhile, and the slow one gets every
// event exactly once when it reads again (caught up from history); and large responses to many watchers
// arrive intact (a transport may hold a large message by reference after send()).
//
//   npx tsc -p . && npx mocha --no-config --exit --timeout 60000 dist/test/integration/watch_guarantees.test.js
import * as assert from 'node:assert/strict';
import { Etcd3, IKeyValue } from 'etcd3';
import { cleanupServersAfter, Server, startKind, targetKind } from '../support/procs';
import { Resp, sleep, WatchClient } from './watch_client';

interface Hist { rev: number; key: string; value: string; type: 'PUT' | 'DELETE' }

function b(s: string): Buffer {
  return Buffer.from(s);
}

describe('watch guarantees (etcd3 client and raw streams)', function () {
  this.timeout(120_000);
  let s: Server | undefined;
  let client: Etcd3 | undefined;
  const raws: WatchClient[] = [];
  cleanupServersAfter(() => [s]);

  before(async () => {
    s = await startKind(targetKind());
    client = new Etcd3({ hosts: s.clientUrl, dialTimeout: 5_000 });
  });
  after(() => {
    for (const r of raws) r.close();
    client?.close();
  });
  const raw = (): WatchClient => {
    const r = new WatchClient(s!.endpoint);
    raws.push(r);
    return r;
  };

  it('etcd3 client: key and prefix watchers, put and delete events, cancel', async () => {
    const c = client!;
    const got: string[] = [];
    const w1 = await c.watch().key('x').create();
    const w2 = await c.watch().prefix('dir/').create();
    w1.on('put', (kv: IKeyValue) => got.push(`w1 put ${kv.key} ${kv.value}`));
    w1.on('delete', (kv: IKeyValue) => got.push(`w1 del ${kv.key}`));
    w2.on('put', (kv: IKeyValue) => got.push(`w2 put ${kv.key} ${kv.value}`));
    await c.put('x').value('1');
    await c.put('dir/a').value('2');
    await c.put('xy').value('no');
    await c.delete().key('x');
    const deadline = Date.now() + 5000;
    while (got.length < 3 && Date.now() < deadline) await sleep(20);
    assert.deepEqual(got, ['w1 put x 1', 'w2 put dir/a 2', 'w1 del x']);
    await w1.cancel();
    await c.put('x').value('after-cancel');
    await c.put('dir/b').value('3');
    while (got.length < 4 && Date.now() < deadline) await sleep(20);
    await sleep(200);
    assert.deepEqual(got.slice(3), ['w2 put dir/b 3']);
    await w2.cancel();
  });

  it('a compacted start revision: created, then canceled with compact_revision', async () => {
    const c = client!;
    await c.put('cmp').value('1');
    const r = await c.put('cmp').value('2');
    const rev = Number(r.header.revision);
    await c.kv.compact({ revision: String(rev) });
    const w = raw();
    w.create({ key: b('cmp'), startRevision: rev - 1 });
    const rs = await w.until((x) => x.length >= 2);
    assert.deepEqual(rs.map((x) => [x.watchId, x.created, x.canceled, x.compactRevision]), [[0, true, false, 0], [0, false, true, rev]]);
    assert.equal(rs[1].revision, 0); // etcd sends the compaction notice from mvcc with an empty revision
    assert.equal(rs[0].revision, rev);
  });

  it('resume: reconnect from the last revision + 1 gets exactly the rest', async () => {
    const c = client!;
    const first = Number((await c.put('res/0').value('0')).header.revision);
    const hist: Hist[] = [{ rev: first, key: 'res/0', value: '0', type: 'PUT' }];
    const writer = (async () => {
      for (let i = 1; i < 300; i++) {
        const key = `res/${i % 7}`;
        const rr = await c.put(key).value(String(i));
        hist.push({ rev: Number(rr.header.revision), key, value: String(i), type: 'PUT' });
      }
    })();
    const got: Hist[] = [];
    let from = first;
    for (let round = 0; round < 4; round++) {
      const w = raw();
      w.create({ key: b('res/'), rangeEnd: b('res0'), startRevision: from });
      await w.until((x) => x.some((r) => r.events.length > 0));
      await sleep(30 * round);
      w.close();
      for (const e of w.events()) got.push({ rev: e.mod, key: e.key, value: e.value, type: e.type });
      from = got[got.length - 1].rev + 1;
    }
    await writer;
    const w = raw();
    w.create({ key: b('res/'), rangeEnd: b('res0'), startRevision: from });
    const last = hist[hist.length - 1].rev;
    await w.until(() => (w.events().at(-1)?.mod ?? 0) >= last || from > last);
    for (const e of w.events()) got.push({ rev: e.mod, key: e.key, value: e.value, type: e.type });
    assert.deepEqual(got, hist.sort((x, y) => x.rev - y.rev));
  });

  it('many watchers, concurrent writers: ordered, unique, no gap, atomic, prev_kv, IsCreate', async () => {
    const c = client!;
    const start = Number((await c.put('other').value('x')).header.revision) + 1;
    const streams: WatchClient[] = [];
    for (let i = 0; i < 8; i++) {
      const w = raw();
      for (let j = 0; j < 25; j++) w.create({ key: b('/m/'), rangeEnd: b('/m0'), prevKv: j % 5 === 0, watchId: j + 1 });
      streams.push(w);
    }
    await Promise.all(streams.map((w) => w.until((x) => x.filter((r) => r.created).length === 25)));
    const hist = await writeConcurrently(c);
    const lastRev = Math.max(...hist.map((h) => h.rev));
    for (const w of streams) {
      await w.until((rs) => new Set(rs.filter((r) => r.events.some((e) => e.mod === lastRev)).map((r) => r.watchId)).size === 25, 20_000);
      for (let id = 1; id <= 25; id++) checkWatcher(w.responses.filter((r) => r.watchId === id && !r.created), hist, start, id % 5 === 1);
    }
  });

  it('large responses to many watchers keep their bytes (ring slots are reused after the send)', async () => {
    const c = client!;
    const streams: WatchClient[] = [];
    for (let i = 0; i < 4; i++) {
      const w = raw();
      for (let j = 0; j < 50; j++) w.create({ key: b('/big/'), rangeEnd: b('/big0') });
      streams.push(w);
    }
    await Promise.all(streams.map((w) => w.until((x) => x.filter((r) => r.created).length === 50)));
    const val = (i: number): string => String(i).padStart(6, '0').repeat(400); // 2.4 KB, distinct per put
    const revs = await Promise.all(Array.from({ length: 400 }, (_, i) => c.put(`/big/${i}`).value(val(i)).exec().then((r) => Number(r.header.revision))));
    const want = revs.map((rev, i) => [rev, `/big/${i}`, val(i)] as const).sort((x, y) => x[0] - y[0]);
    for (const w of streams) {
      await w.until((rs) => rs.reduce((n, r) => n + r.events.length, 0) >= 400 * 50, 30_000);
      for (let id = 0; id < 50; id++) assert.deepEqual(w.events(id).map((e) => [e.mod, e.key, e.value]), want);
    }
  });

  it('a stream that stops reading: bounded, then caught up exactly; other streams unaffected', async () => {
    const c = client!;
    const slow = new WatchClient(s!.endpoint, { paused: true });
    raws.push(slow);
    const fast = raw();
    slow.create({ key: b('/slow/'), rangeEnd: b('/slow0') });
    fast.create({ key: b('/slow/'), rangeEnd: b('/slow0') });
    await sleep(300);
    const value = 'v'.repeat(16 * 1024);
    const hist: number[] = [];
    for (let i = 0; i < 600; i++) hist.push(Number((await c.put(`/slow/${i % 10}`).value(value + i)).header.revision)); // ~10 MB
    await fast.until(() => fast.events().length === 600, 30_000);
    slow.resume();
    await slow.until(() => slow.events().length >= 600, 30_000);
    await sleep(200);
    assert.deepEqual(slow.events().map((e) => e.mod), hist);
    assert.deepEqual(slow.events().map((e) => e.value), hist.map((_, i) => value + i));
  });
});

async function writeConcurrently(c: Etcd3): Promise<Hist[]> {
  const hist: Hist[] = [];
  await Promise.all([0, 1, 2, 3].map(async (wr) => {
    for (let i = 0; i < 60; i++) {
      if (i % 6 === 5) {
        const keys = [`/m/t${wr}a`, `/m/t${wr}b`, `/m/t${wr}c`];
        const r = await c.kv.txn({ success: keys.map((k) => ({ request_put: { key: b(k), value: b(`${wr}-${i}`) } })) });
        for (const k of keys) hist.push({ rev: Number(r.header.revision), key: k, value: `${wr}-${i}`, type: 'PUT' });
      } else if (i % 10 === 7) {
        const key = `/m/k${wr}-${i - 1}`;
        const r = await c.delete().key(key).exec();
        if (Number(r.deleted) > 0) hist.push({ rev: Number(r.header.revision), key, value: '', type: 'DELETE' });
      } else {
        const key = `/m/k${wr}-${i}`;
        const r = await c.put(key).value(`${wr}-${i}`);
        hist.push({ rev: Number(r.header.revision), key, value: `${wr}-${i}`, type: 'PUT' });
      }
    }
  }));
  return hist.sort((x, y) => x.rev - y.rev);
}

function checkWatcher(rs: Resp[], hist: Hist[], start: number, prevKv: boolean): void {
  const got = rs.flatMap((r) => r.events);
  assert.deepEqual(got.map((e) => [e.mod, e.key, e.type, e.value]), hist.filter((h) => h.rev >= start).map((h) => [h.rev, h.key, h.type, h.value]));
  const seen = new Set<number>();
  for (const r of rs) {
    for (const rev of new Set(r.events.map((e) => e.mod))) {
      assert.ok(!seen.has(rev), `revision ${rev} split over two responses`);
      seen.add(rev);
    }
  }
  const lastVal = new Map<string, string>();
  for (const e of got) {
    if (e.type === 'PUT') assert.equal(e.create === e.mod, !lastVal.has(e.key), `IsCreate of ${e.key}@${e.mod}`);
    if (prevKv) assert.equal(e.prev, lastVal.get(e.key), `prev_kv of ${e.key}@${e.mod}`);
    if (e.type === 'PUT') lastVal.set(e.key, e.value);
    else lastVal.delete(e.key);
  }
}
