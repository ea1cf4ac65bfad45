// MvccStore compaction: scheduling errors as etcd, reads below / at the compact revision, physical removal in
// bounded steps keeping exactly the newest PUT <= C per key, and compaction in a worker thread running
// concurrently with applies in this thread (LMDB serialises the two writers).
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { GrpcCode } from '../../src/shared/errors';
import { toNum } from '../../src/shared/long';
import { Driver, str } from '../../src/workers/mvcc/testing';

const compacted = { message: 'etcdserver: mvcc: required revision has been compacted', code: GrpcCode.OutOfRange };

/** Every key=value at every revision from `from` to the current one. */
function snapshot(d: Driver, from: number): string[][] {
  const out: string[][] = [];
  for (let rev = from; rev <= d.store.revision; rev++) out.push(d.pairs('\x00', '\x00', { revision: rev }));
  return out;
}

describe('mvcc compaction', () => {
  let d: Driver;
  beforeEach(() => { d = new Driver(); });
  afterEach(async () => { await d.close(); });

  it('schedules as etcd: starts at -1, rev <= compacted or > current is refused, header = current', () => {
    assert.ok('ok' in d.compact(0));
    assert.deepEqual(d.compact(0), { err: { code: GrpcCode.OutOfRange, message: compacted.message } });
    assert.deepEqual(d.compact(2), { err: { code: GrpcCode.OutOfRange, message: 'etcdserver: mvcc: required revision is a future revision' } });
    d.put('a', '1');
    const r = d.compact(2);
    assert.ok('ok' in r && toNum(r.ok.header?.revision) === 2);
    assert.equal(d.store.compactRevision, 2);
    assert.equal(d.store.revision, 2, 'compaction does not bump the revision');
  });

  it('reads below the compact revision fail, at and above it work, before and after physical removal', () => {
    for (let i = 0; i < 5; i++) d.put('a', `a${i}`); // 2..6
    d.put('b', 'b0'); // 7
    d.del('a'); // 8
    d.put('c', 'c0'); // 9
    const before = snapshot(d, 6);
    d.compact(6);
    assert.throws(() => d.range('a', undefined, { revision: 5 }), compacted);
    assert.deepEqual(d.pairs('a', undefined, { revision: 6 }), ['a=a4']);
    assert.deepEqual(snapshot(d, 6), before);
    while (!d.store.compactStep(2));
    assert.equal(d.store.compactedRevision, 6);
    assert.deepEqual(snapshot(d, 6), before);
    assert.throws(() => d.range('a', 'z', { revision: 1 }), compacted);
  });

  it('removes superseded records and tombstones <= C, keeps the newest PUT <= C and everything after', () => {
    for (let i = 0; i < 100; i++) d.put('hot', String(i)); // 2..101
    d.put('gone', 'x'); // 102
    d.del('gone'); // 103
    d.put('cold', 'y'); // 104
    d.put('hot', 'after'); // 105
    assert.deepEqual(d.store.recordCounts(), { latest: 2, history: 104, revlog: 104 });
    d.compact(104);
    assert.equal(d.store.compactStep(1000), true);
    // hot@101 (newest <= 104) + hot@105 + cold@104; gone's put and tombstone are gone
    assert.deepEqual(d.store.recordCounts(), { latest: 2, history: 3, revlog: 3 });
    assert.deepEqual(d.pairs('\x00', '\x00', { revision: 104 }), ['cold=y', 'hot=99']);
    assert.deepEqual(d.pairs('\x00', '\x00'), ['cold=y', 'hot=after']);
    // a later compaction drops the record the previous one kept
    d.compact(105);
    while (!d.store.compactStep(1));
    assert.deepEqual(d.store.recordCounts(), { latest: 2, history: 2, revlog: 2 });
    assert.deepEqual(d.pairs('\x00', '\x00', { revision: 105 }), ['cold=y', 'hot=after']);
  });

  it('a compaction scheduled while another is in progress continues from the cursor', () => {
    for (let i = 0; i < 50; i++) d.put(`k${i % 5}`, String(i)); // 2..51
    d.compact(20);
    assert.equal(d.store.compactStep(5), false);
    d.compact(40);
    const before = snapshot(d, 40);
    while (!d.store.compactStep(3));
    assert.equal(d.store.compactedRevision, 40);
    assert.deepEqual(snapshot(d, 40), before);
    assert.deepEqual(d.store.recordCounts(), { latest: 5, history: 5 + 11, revlog: 5 + 11 });
  });

  it('compaction in a worker thread runs concurrently with applies here', async function () {
    this.timeout(60_000);
    for (let i = 0; i < 3000; i++) d.put(`k${i % 50}`, `v${i}`);
    d.compact(2500);
    const storePath = path.join(__dirname, '../../src/workers/mvcc/writer.js');
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const { MvccWriter } = require(workerData.storePath);
       const s = MvccWriter.open(workerData.dir);
       let steps = 0;
       while (!s.compactStep(7)) steps++;
       s.close().then(() => parentPort.postMessage(steps));`,
      { eval: true, workerData: { storePath, dir: d.dir } },
    );
    const steps = new Promise<number>((resolve, reject) => { worker.on('message', resolve); worker.on('error', reject); });
    let writes = 0;
    let done = false;
    void steps.then(() => { done = true; });
    while (!done || writes < 200) {
      d.put(`k${writes % 60}`, `late${writes}`);
      writes++;
      if (writes % 20 === 0) await new Promise((r) => setImmediate(r));
    }
    assert.ok((await steps) > 10, 'compaction took many bounded steps');
    assert.equal(d.store.compactedRevision, 2500);
    const counts = d.store.recordCounts();
    assert.equal(counts.history, counts.revlog);
    // records > 2500: revisions 2501..3001 + the late writes; <= 2500: one per key alive at 2500 (50 keys)
    assert.equal(counts.history, 50 + 501 + writes);
    assert.equal(str(d.range('k7', undefined, { revision: 2500 }).kvs?.[0].value), `v${2457}`);
    assert.equal(d.range('k0', undefined, { revision: 3001 }).kvs?.length, 1);
  });
});
