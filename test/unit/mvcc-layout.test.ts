// The LMDB layout: history keys sort as (user key, revision, sub) for arbitrary bytes (fast-check), decode
// back, and reading a key's latest value touches one `latest` entry and no history however many revisions the
// key has (counted LMDB calls, not timing). Also pins HashKV to values computed by etcd 3.4.23.
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { openDbs, Dbs } from '../../src/shared/mvcc/dbs';
import { decodeHistoryKey, escapedBound, escapedKeyBytesMax, historyKey, historyKeyEnd } from '../../src/shared/mvcc/keys';
import { validatePut } from '../../src/shared/validate';
import { applyRange } from '../../src/shared/mvcc/range';
import { ReadView } from '../../src/shared/mvcc/view';
import { readState } from '../../src/shared/mvcc/meta';
import { crc32c } from '../../src/shared/crc32c';
import { Driver, b, str } from '../../src/workers/mvcc/testing';

const keyArb = fc.uint8Array({ minLength: 1, maxLength: 6 }).map((u) => Buffer.from(u.map((x) => [0, 1, 0xff, 0x61][x % 4])));
const revArb = fc.integer({ min: 0, max: 2 ** 40 });
const subArb = fc.integer({ min: 0, max: 0xffff_ffff });

describe('mvcc layout: key encoding', () => {
  it('history keys order as (user key, rev, sub) and decode back', () => {
    fc.assert(fc.property(keyArb, revArb, subArb, keyArb, revArb, subArb, (k1, r1, s1, k2, r2, s2) => {
      const h1 = historyKey(k1, r1, s1);
      const h2 = historyKey(k2, r2, s2);
      const want = Buffer.compare(k1, k2) || Math.sign(r1 - r2) || Math.sign(s1 - s2);
      assert.equal(Math.sign(Buffer.compare(h1, h2)), want);
      assert.deepEqual(decodeHistoryKey(h1), { key: k1, rev: r1, sub: s1 });
    }), { numRuns: 2000 });
  });

  it('validate.ts refuses exactly the keys the store cannot hold', async () => {
    assert.equal(escapedKeyBytesMax, 1978 - 14);
    const d = new Driver();
    try {
      for (const key of [Buffer.alloc(escapedKeyBytesMax, 1), Buffer.alloc(escapedKeyBytesMax + 1, 1),
        Buffer.alloc(escapedKeyBytesMax / 2, 0), Buffer.alloc(escapedKeyBytesMax / 2 + 1, 0)]) {
        let refused = false;
        try { validatePut({ key }); } catch { refused = true; }
        const r = d.apply({ kind: 'put', req: { key, value: b('v') } });
        assert.equal('err' in r, refused, `key of ${key.length} bytes`);
      }
    } finally {
      await d.close();
    }
  });

  it('bounds enclose exactly one user key\'s records', () => {
    fc.assert(fc.property(keyArb, keyArb, revArb, subArb, (k, other, r, s) => {
      const h = historyKey(other, r, s);
      const inside = Buffer.compare(escapedBound(k), h) <= 0 && Buffer.compare(h, historyKeyEnd(k)) < 0;
      assert.equal(inside, Buffer.compare(k, other) === 0);
      // and esc(k) separates smaller keys' records from k's and larger ones
      assert.equal(Buffer.compare(h, escapedBound(k)) < 0, Buffer.compare(other, k) < 0);
    }), { numRuns: 2000 });
  });
});

/** Wraps every read method of a database with a call counter (outermost calls only: lmdb-js nests them). */
function countCalls(dbs: Dbs, name: 'latest' | 'history' | 'revlog'): Record<string, number> {
  const calls: Record<string, number> = {};
  const db = dbs[name] as unknown as Record<string, (...a: unknown[]) => unknown>;
  let depth = 0;
  for (const m of ['get', 'getBinary', 'getBinaryFast', 'getRange', 'getKeys', 'getCount', 'getValues', 'getEntry']) {
    const orig = db[m].bind(db);
    db[m] = (...a: unknown[]) => {
      if (depth === 0) calls[m] = (calls[m] ?? 0) + 1;
      depth++;
      try { return orig(...a); } finally { depth--; }
    };
  }
  return calls;
}

describe('mvcc layout: latest reads are O(1) in the number of revisions', () => {
  let d: Driver;
  before(() => {
    d = new Driver();
    const batch = [];
    for (let i = 0; i < 20000; i++) batch.push({ index: ++d.index, req: { kind: 'put' as const, req: { key: b('hot'), value: b(`v${i}`) } } });
    d.store.applyBatch(batch);
    d.put('cold', 'once');
    d.put('hot2', 'x');
  });
  after(async () => { await d.close(); });

  for (const key of ['cold', 'hot']) {
    it(`a point read of the latest value of "${key}" is one latest lookup and no history access`, () => {
      const dbs = openDbs(d.dir, {});
      const latest = countCalls(dbs, 'latest');
      const history = countCalls(dbs, 'history');
      const st = readState(dbs);
      const r = applyRange(new ReadView(dbs, st.rev, st.compactRev), { key: b(key) });
      assert.equal(str(r.kvs?.[0].value), key === 'hot' ? 'v19999' : 'once');
      assert.deepEqual(latest, { getBinary: 1 });
      assert.deepEqual(history, {});
    });
  }

  it('a read at an old revision is one history seek, also for 20000 revisions', () => {
    const dbs = openDbs(d.dir, {});
    const history = countCalls(dbs, 'history');
    const st = readState(dbs);
    const r = applyRange(new ReadView(dbs, st.rev, st.compactRev), { key: b('hot'), revision: 10 });
    assert.equal(str(r.kvs?.[0].value), 'v8');
    assert.deepEqual(history, { getRange: 1 });
  });

  it('a range at the current revision reads `latest` only', () => {
    const dbs = openDbs(d.dir, {});
    const history = countCalls(dbs, 'history');
    const st = readState(dbs);
    const r = applyRange(new ReadView(dbs, st.rev, st.compactRev), { key: b('a'), rangeEnd: b('z'), limit: 2 });
    assert.deepEqual(r.kvs?.map((kv) => str(kv.key)), ['cold', 'hot']);
    assert.deepEqual(history, {});
  });
});

describe('mvcc HashKV', () => {
  it('crc32c matches the standard check value', () => {
    assert.equal(crc32c(b('123456789')), 0xe3069283);
  });

  it('equals etcd 3.4.23 for the same history, before and after compaction', async () => {
    // The session run against real etcd (values from `etcdctl endpoint hashkv --rev=N`).
    const d = new Driver();
    d.put('a', 'va'); d.put('b', 'vb'); d.put('c', 'vc'); d.put('a', 'x'); // 2..5
    d.txn({ success: [{ requestPut: { key: b('d'), value: b('1') } }] }); // 6
    d.txn({ success: [{ requestDeleteRange: { key: b('a'), rangeEnd: b('\x00') } }, { requestPut: { key: b('b'), value: b('1') } }] }); // 7
    assert.equal(d.store.hashKV(0).hash, 3751196550);
    assert.equal(d.store.hashKV(3).hash, 1868810257);
    assert.equal(d.store.hashKV(6).hash, 2113399501);
    d.compact(5);
    assert.deepEqual(d.store.hashKV(0), { hash: 1548936579, compactRevision: 5, revision: 7 });
    while (!d.store.compactStep(2));
    assert.equal(d.store.hashKV(0).hash, 1548936579);
    assert.equal(d.store.hashKV(6).hash, 3396849359);
    assert.throws(() => d.store.hashKV(5), { message: 'etcdserver: mvcc: required revision has been compacted' });
    d.del('b'); // 8
    d.compact(8);
    assert.equal(d.store.hashKV(0).hash, 1084519789);
    await d.close();
  });
});
