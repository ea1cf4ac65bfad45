// MvccStore: etcd 3.4 put / delete / range semantics, revisions, restart and replay. Each test drives a store
// in a temp directory through applyBatch and range, and compares responses with what etcd 3.4.23 answers
// (checked against the real server while writing these tests).
import { strict as assert } from 'node:assert';
import { etcdserverpb } from '../../src/shared/gen/etcd';
import { GrpcCode } from '../../src/shared/errors';
import { toNum } from '../../src/shared/long';
import { Driver, b, revs, str } from '../../src/workers/mvcc/testing';
import { MvccStore } from '../../src/shared/mvcc/store';

const { SortOrder, SortTarget } = etcdserverpb.RangeRequest;

describe('mvcc store: writes and revisions', () => {
  let d: Driver;
  beforeEach(() => { d = new Driver(); });
  afterEach(async () => { await d.close(); });

  it('starts at revision 1 with nothing applied', () => {
    assert.equal(d.store.revision, 1);
    assert.equal(d.store.appliedIndex, 0);
    assert.equal(d.store.compactRevision, -1);
    assert.deepEqual(d.range('a').kvs, undefined);
    assert.equal(toNum(d.range('a').header?.revision), 1);
  });

  it('bumps the revision once per changing write and tracks create/mod/version', () => {
    assert.equal(toNum(d.put('a', '1').header?.revision), 2);
    assert.equal(toNum(d.put('a', '2').header?.revision), 3);
    assert.equal(toNum(d.put('b', '1').header?.revision), 4);
    assert.deepEqual(revs(d.range('a').kvs?.[0]), [2, 3, 2]);
    assert.deepEqual(revs(d.range('b').kvs?.[0]), [4, 4, 1]);
    assert.equal(d.store.revision, 4);
  });

  it('version resets and create_revision restarts after delete', () => {
    d.put('a', '1');
    d.put('a', '2');
    assert.equal(toNum(d.del('a').deleted), 1);
    d.put('a', '3');
    assert.deepEqual(revs(d.range('a').kvs?.[0]), [5, 5, 1]);
  });

  it('a delete of nothing does not bump the revision and answers the current one', () => {
    d.put('a', '1');
    const r = d.del('zzz');
    assert.equal(toNum(r.header?.revision), 2);
    assert.equal(r.deleted, undefined);
    assert.equal(d.store.revision, 2);
  });

  it('returns prev_kv for put and prev_kvs for delete', () => {
    assert.equal(d.put('a', '1', { prevKv: true }).prevKv, undefined);
    const p = d.put('a', '2', { prevKv: true });
    assert.equal(str(p.prevKv?.value), '1');
    assert.deepEqual(revs(p.prevKv), [2, 2, 1]);
    d.put('b', '3');
    const r = d.del('a', 'c', true);
    assert.equal(toNum(r.deleted), 2);
    assert.deepEqual(r.prevKvs?.map((kv) => `${str(kv.key)}=${str(kv.value)}`), ['a=2', 'b=3']);
  });

  it('stores leases (int64, incl. beyond 2^53) and ignore_value / ignore_lease keep the old ones', () => {
    const big = etcdserverpb.PutRequest.decode(etcdserverpb.PutRequest.encode({ key: b('x'), lease: '7587869347375349520' as unknown as number }).finish()).lease;
    d.grantLease('7587869347375349520');
    d.grantLease(5);
    d.put('a', 'v1', { lease: big });
    assert.equal(String(d.range('a').kvs?.[0].lease), '7587869347375349520');
    d.put('a', '', { ignoreValue: true, lease: 5 });
    let kv = d.range('a').kvs?.[0];
    assert.equal(str(kv?.value), 'v1');
    assert.equal(toNum(kv?.lease as number), 5);
    d.put('a', 'v2', { ignoreLease: true });
    kv = d.range('a').kvs?.[0];
    assert.equal(str(kv?.value), 'v2');
    assert.equal(toNum(kv?.lease as number), 5);
    assert.deepEqual(revs(kv), [2, 4, 3]);
  });

  it('a put naming a lease that does not exist is "requested lease not found" and changes nothing', () => {
    const before = d.store.revision;
    const r = d.apply({ kind: 'put', req: { key: b('leased'), value: b('v'), lease: 424242 } });
    assert.deepEqual(r, { err: { code: GrpcCode.NotFound, message: 'etcdserver: requested lease not found' } });
    const t = d.apply({ kind: 'txn', req: { success: [{ requestPut: { key: b('t1'), value: b('v') } }, { requestPut: { key: b('t2'), lease: 424242 } }] } });
    assert.deepEqual(t, { err: { code: GrpcCode.NotFound, message: 'etcdserver: requested lease not found' } });
    assert.equal(d.store.revision, before);
    assert.equal(d.range('t1').count ?? 0, 0);
  });

  it('ignore_value / ignore_lease on a missing key is "key not found" and changes nothing', () => {
    for (const extra of [{ ignoreValue: true }, { ignoreLease: true }]) {
      const r = d.apply({ kind: 'put', req: { key: b('nope'), ...extra } });
      assert.deepEqual(r, { err: { code: GrpcCode.InvalidArgument, message: 'etcdserver: key not found' } });
    }
    assert.equal(d.store.revision, 1);
    assert.equal(d.store.appliedIndex, 2);
  });

  it('keys may hold any byte, including 0x00 and 0xFF, and order as Go bytes.Compare', () => {
    const keys = ['a', 'a\x00', 'a\x00\x00', 'a\x00\x01', 'a\x01', 'a\xff', 'b', '\x00', '\xff\xff'];
    keys.forEach((k, i) => d.put(k, String(i)));
    const sorted = [...keys].sort((x, y) => Buffer.compare(b(x), b(y)));
    assert.deepEqual(d.range('\x00', '\x00').kvs?.map((kv) => str(kv.key)), sorted);
    assert.deepEqual(d.range('a', 'a\x01').kvs?.map((kv) => str(kv.key)), ['a', 'a\x00', 'a\x00\x00', 'a\x00\x01']);
    // and the same at an old revision, answered from history
    d.put('zz', 'later');
    assert.deepEqual(d.range('\x00', '\x00', { revision: keys.length + 1 }).kvs?.map((kv) => str(kv.key)), sorted);
    assert.deepEqual(d.range('a', 'a\x01', { revision: 4 }).kvs?.map((kv) => str(kv.key)), ['a', 'a\x00', 'a\x00\x00']);
  });

  it('stores keys longer than an LMDB key: prev_kv, old revisions, watch events, leases, compaction', () => {
    const X = 'x'.repeat(1990);
    const [k1, k2, k3] = [X + 'c', X + 'a', X + 'b']; // one bucket in xlatest and xhistory: stored by hash tag
    const huge = 'h'.repeat(65536);
    d.put('a'.repeat(1964), 'short');
    const r1 = d.put(k1, 'v1');
    d.put(k2, 'v2');
    d.put(k3, 'v3');
    d.put(huge, 'big');
    assert.deepEqual(d.pairs(X, X + '\xff').map((p) => p.slice(1990)), ['a=v2', 'b=v3', 'c=v1']);
    assert.deepEqual(d.range('\x00', '\x00').kvs?.map((kv) => str(kv.key).length), [1964, 65536, 1991, 1991, 1991]);
    assert.equal(d.range(k3, k1, { countOnly: true }).count, 1);
    assert.deepEqual(d.range(X, '\x00', { limit: 2 }).kvs?.map((kv) => str(kv.key).slice(1990)), ['a', 'b']);
    const r2 = d.put(k1, 'v1b', { prevKv: true });
    assert.equal(str(r2.prevKv?.value), 'v1');
    assert.deepEqual(revs(d.range(k1).kvs?.[0]), [toNum(r1.header?.revision), toNum(r2.header?.revision), 2]);
    assert.equal(str(d.range(k1, undefined, { revision: toNum(r1.header?.revision) }).kvs?.[0].value), 'v1');
    // events carry the whole key
    const ev = d.store.events(toNum(r2.header?.revision), { prevKv: true }).events;
    assert.equal(str(ev[0].kv?.key), k1);
    assert.equal(str(ev[0].prevKv?.value), 'v1');
    // a lease revoke deletes its keys in key order, whatever their length
    d.grantLease(7);
    for (const k of [k1, 'b', k2, huge]) d.put(k, 'leased', { lease: 7 });
    assert.deepEqual(d.store.leaseKeys(7n).map((k) => str(k)), ['b', huge, k2, k1]);
    const before = d.store.revision;
    d.revokeLease(7);
    const dels = d.store.events(before + 1).events.map((e) => str(e.kv?.key));
    assert.deepEqual(dels, ['b', huge, k2, k1]);
    assert.deepEqual(d.pairs(X, X + '\xff').map((p) => p.slice(1990)), ['b=v3']);
    // compaction removes the superseded long-key records and keeps reads at the compacted revision
    const counts = d.store.recordCounts();
    assert.ok('ok' in d.compact(d.store.revision));
    while (!d.store.compactStep(2));
    assert.ok(d.store.recordCounts().history < counts.history);
    assert.deepEqual(d.pairs(X, X + '\xff').map((p) => p.slice(1990)), ['b=v3']);
    // txn compares and deletes with long keys and long range ends
    const t = d.txn({ compare: [{ key: b(k3), target: 3, result: 0, value: b('v3') }], success: [{ requestDeleteRange: { key: b(X), rangeEnd: b(X + 'c') } }] });
    assert.equal(t.succeeded, true);
    assert.equal(d.range(X, X + '\xff').kvs, undefined);
  });
});

describe('mvcc store: range options', () => {
  let d: Driver;
  before(() => {
    d = new Driver();
    // a: v=3 create 2; b: v=1; c: v=2; d: deleted; e: single
    d.put('a', 'zz'); // 2
    d.put('b', 'yy'); // 3
    d.put('c', 'xx'); // 4
    d.put('a', 'aa'); // 5
    d.put('c', 'bb'); // 6
    d.put('d', 'dd'); // 7
    d.del('d'); // 8
    d.put('a', 'mm'); // 9
    d.put('e', 'ee'); // 10
  });
  after(async () => { await d.close(); });

  it('single key, prefix interval, from-key and all keys', () => {
    assert.deepEqual(d.pairs('a'), ['a=mm']);
    assert.deepEqual(d.pairs('b', 'd'), ['b=yy', 'c=bb']);
    assert.deepEqual(d.pairs('c', '\x00'), ['c=bb', 'e=ee']);
    assert.deepEqual(d.pairs('\x00', '\x00'), ['a=mm', 'b=yy', 'c=bb', 'e=ee']);
    assert.deepEqual(d.pairs('d', 'a'), []);
  });

  it('limit sets more, count ignores the limit', () => {
    const r = d.range('a', 'z', { limit: 2 });
    assert.deepEqual(r.kvs?.map((kv) => str(kv.key)), ['a', 'b']);
    assert.equal(r.more, true);
    assert.equal(toNum(r.count), 4);
    const all = d.range('a', 'z', { limit: 4 });
    assert.equal(all.more, undefined);
    assert.equal(toNum(all.count), 4);
    const neg = d.range('a', 'z', { limit: -1 });
    assert.equal(neg.kvs?.length, 4);
  });

  it('count_only and keys_only', () => {
    const c = d.range('a', 'z', { countOnly: true, limit: 1 });
    assert.equal(c.kvs, undefined);
    assert.equal(toNum(c.count), 4);
    assert.equal(c.more, undefined);
    const k = d.range('a', 'z', { keysOnly: true });
    assert.deepEqual(k.kvs?.map((kv) => [str(kv.key), kv.value]), [['a', undefined], ['b', undefined], ['c', undefined], ['e', undefined]]);
  });

  it('sorts by every target, ties in key order, then limits', () => {
    const keys = (extra: etcdserverpb.IRangeRequest) => d.range('a', 'z', extra).kvs?.map((kv) => str(kv.key));
    assert.deepEqual(keys({ sortOrder: SortOrder.DESCEND }), ['e', 'c', 'b', 'a']);
    assert.deepEqual(keys({ sortOrder: SortOrder.ASCEND, sortTarget: SortTarget.VALUE }), ['c', 'e', 'a', 'b']);
    assert.deepEqual(keys({ sortOrder: SortOrder.DESCEND, sortTarget: SortTarget.VERSION }), ['a', 'c', 'b', 'e']);
    assert.deepEqual(keys({ sortOrder: SortOrder.ASCEND, sortTarget: SortTarget.VERSION }), ['b', 'e', 'c', 'a']);
    assert.deepEqual(keys({ sortOrder: SortOrder.DESCEND, sortTarget: SortTarget.CREATE }), ['e', 'c', 'b', 'a']);
    assert.deepEqual(keys({ sortOrder: SortOrder.ASCEND, sortTarget: SortTarget.MOD }), ['b', 'c', 'a', 'e']);
    // NONE with a non-KEY target sorts ASCEND (etcd's default)
    assert.deepEqual(keys({ sortTarget: SortTarget.MOD }), ['b', 'c', 'a', 'e']);
    const lim = d.range('a', 'z', { sortOrder: SortOrder.DESCEND, sortTarget: SortTarget.MOD, limit: 2 });
    assert.deepEqual(lim.kvs?.map((kv) => str(kv.key)), ['e', 'a']);
    assert.equal(lim.more, true);
    assert.equal(toNum(lim.count), 4);
  });

  it('min/max mod/create revision filter kvs but not count', () => {
    const r = d.range('a', 'z', { minModRevision: 6, limit: 1 });
    assert.deepEqual(r.kvs?.map((kv) => str(kv.key)), ['a']);
    assert.equal(r.more, true);
    assert.equal(toNum(r.count), 4);
    assert.deepEqual(d.range('a', 'z', { maxModRevision: 6 }).kvs?.map((kv) => str(kv.key)), ['b', 'c']);
    assert.deepEqual(d.range('a', 'z', { minCreateRevision: 3, maxCreateRevision: 4 }).kvs?.map((kv) => str(kv.key)), ['b', 'c']);
  });

  it('reads at old revisions, answers the current revision in the header', () => {
    assert.deepEqual(d.pairs('a', 'z', { revision: 4 }), ['a=zz', 'b=yy', 'c=xx']);
    assert.deepEqual(d.pairs('a', 'z', { revision: 7 }), ['a=aa', 'b=yy', 'c=bb', 'd=dd']);
    assert.deepEqual(d.pairs('d', undefined, { revision: 8 }), []);
    assert.deepEqual(revs(d.range('a', undefined, { revision: 5 }).kvs?.[0]), [2, 5, 2]);
    const r = d.range('a', 'z', { revision: 7, limit: 1 });
    assert.equal(toNum(r.header?.revision), 10);
    assert.equal(toNum(r.count), 4);
    assert.equal(r.more, true);
    assert.equal(toNum(d.range('a', 'z', { revision: 7, countOnly: true }).count), 4);
    assert.deepEqual(d.pairs('a', 'z', { revision: 1 }), []);
  });

  it('a future revision is an error; revision <= 0 means current', () => {
    assert.throws(() => d.range('a', undefined, { revision: 11 }), { message: 'etcdserver: mvcc: required revision is a future revision', code: GrpcCode.OutOfRange });
    assert.deepEqual(d.pairs('a', undefined, { revision: -3 }), ['a=mm']);
  });
});

describe('mvcc store: durability and replay', () => {
  it('keeps everything across close and reopen', async () => {
    const d = new Driver();
    d.put('a', '1');
    d.put('b', '2');
    d.del('a');
    d.compact(2);
    await d.reopen();
    assert.equal(d.store.revision, 4);
    assert.equal(d.store.appliedIndex, 4);
    assert.equal(d.store.compactRevision, 2);
    assert.deepEqual(d.pairs('a', 'z'), ['b=2']);
    assert.deepEqual(d.pairs('a', 'z', { revision: 2 }), ['a=1']);
    assert.deepEqual(revs(d.put('a', 'again').header ? d.range('a').kvs?.[0] : undefined), [5, 5, 1]);
    await d.close();
  });

  it('skips entries at or below the applied index (WAL replay is idempotent)', async () => {
    const d = new Driver();
    const batch = [
      { index: 1, req: { kind: 'put' as const, req: { key: b('a'), value: b('1') } } },
      { index: 2, req: { kind: 'put' as const, req: { key: b('a'), value: b('2') } } },
    ];
    const first = d.store.applyBatch(batch);
    assert.ok(first.every((r) => r !== null && 'ok' in r));
    assert.deepEqual(d.store.applyBatch(batch), [null, null]);
    const mixed = d.store.applyBatch([...batch, { index: 3, req: { kind: 'put', req: { key: b('a'), value: b('3') } } }]);
    assert.deepEqual(mixed.slice(0, 2), [null, null]);
    assert.deepEqual(revs(d.range('a').kvs?.[0]), [2, 4, 3]);
    assert.equal(d.store.appliedIndex, 3);
    await d.close();
  });

  it('folds no-op applied indexes into the next batch and persists them on close', async () => {
    const d = new Driver();
    d.store.recordApplied(5);
    assert.equal(d.store.appliedIndex, 5);
    d.store.applyBatch([{ index: 6, req: { kind: 'put', req: { key: b('a'), value: b('1') } } }]);
    d.store.recordApplied(7);
    await d.reopen();
    assert.equal(d.store.appliedIndex, 7);
    // or passed with the batch: a batch ending in no-ops stores its last index
    d.store.applyBatch([{ index: 8, req: { kind: 'put', req: { key: b('a'), value: b('2') } } }], 10);
    assert.equal(d.store.appliedIndex, 10);
    assert.deepEqual(d.store.applyBatch([{ index: 9, req: { kind: 'put', req: { key: b('a'), value: b('3') } } }]), [null]);
    await d.close();
  });

  it('batches apply atomically with per-entry results, errors included', async () => {
    const d = new Driver();
    const res = d.store.applyBatch([
      { index: 1, req: { kind: 'put', req: { key: b('a'), value: b('1') } } },
      { index: 2, req: { kind: 'compact', req: { revision: 5 } } },
      { index: 3, req: { kind: 'put', req: { key: b('b'), value: b('1') } } },
    ]);
    assert.equal(toNum((res[0] as { ok: etcdserverpb.IPutResponse }).ok.header?.revision), 2);
    assert.deepEqual(res[1], { err: { code: GrpcCode.OutOfRange, message: 'etcdserver: mvcc: required revision is a future revision' } });
    assert.equal(toNum((res[2] as { ok: etcdserverpb.IPutResponse }).ok.header?.revision), 3);
    await d.close();
  });

  it('a second handle on the same directory sees committed writes (one env per process)', async () => {
    const d = new Driver();
    const reader = MvccStore.open(d.dir, { readOnly: true });
    d.put('a', '1');
    assert.deepEqual(reader.range({ key: b('a') }).kvs?.map((kv) => str(kv.value)), ['1']);
    d.put('a', '2');
    assert.deepEqual(reader.range({ key: b('a') }).kvs?.map((kv) => str(kv.value)), ['2']);
    assert.equal(reader.revision, 3);
    await d.close();
  });
});

describe('mvcc store: watch replay events', () => {
  it('lists puts and deletes in revision order with prev_kv, never splitting a revision', async () => {
    const d = new Driver();
    d.put('a', '1'); // 2
    d.put('a', '2'); // 3
    d.txn({ success: [{ requestDeleteRange: { key: b('a') } }, { requestPut: { key: b('b'), value: b('x') } }] }); // 4
    d.put('c', '3'); // 5
    const fmt = (evs: etcdserverpb.IResponseOp[] | unknown[]) => (evs as Array<{ type?: number; kv?: { key?: Uint8Array; value?: Uint8Array; modRevision?: unknown }; prevKv?: { value?: Uint8Array } }>)
      .map((e) => `${e.type === 1 ? 'DEL' : 'PUT'} ${str(e.kv?.key)}=${str(e.kv?.value)}@${toNum(e.kv?.modRevision as number)} prev=${str(e.prevKv?.value)}`);
    const all = d.store.events(0, { prevKv: true });
    assert.deepEqual(fmt(all.events), ['PUT a=1@2 prev=', 'PUT a=2@3 prev=1', 'DEL a=@4 prev=2', 'PUT b=x@4 prev=', 'PUT c=3@5 prev=']);
    assert.equal(all.nextRev, 6);
    const page = d.store.events(3, { limit: 2 });
    assert.deepEqual(fmt(page.events), ['PUT a=2@3 prev=', 'DEL a=@4 prev=', 'PUT b=x@4 prev=']);
    assert.equal(page.nextRev, 5);
    assert.deepEqual(fmt(d.store.events(4, { filter: (k) => str(k) === 'b' }).events), ['PUT b=x@4 prev=']);
    d.compact(4);
    assert.throws(() => d.store.events(3), { message: 'etcdserver: mvcc: required revision has been compacted' });
    while (!d.store.compactStep(10));
    assert.deepEqual(fmt(d.store.events(4).events), ['PUT b=x@4 prev=', 'PUT c=3@5 prev=']);
    await d.store.sync();
    await d.close();
  });
});
