// MvccStore txn: the compare matrix (targets x results, missing keys, ranges), nested txns, reads of the
// txn's own writes, header revisions as etcd 3.4 answers them, and refused txns leaving no trace.
import { strict as assert } from 'node:assert';
import { etcdserverpb } from '../../src/shared/gen/etcd';
import { GrpcCode } from '../../src/shared/errors';
import { toNum } from '../../src/shared/long';
import { Driver, b, revs, str } from '../../src/workers/mvcc/testing';

const { CompareResult: R, CompareTarget: T } = etcdserverpb.Compare;
type Cmp = etcdserverpb.ICompare;

const put = (key: string, value: string, extra: etcdserverpb.IPutRequest = {}): etcdserverpb.IRequestOp =>
  ({ requestPut: { key: b(key), value: b(value), ...extra } });
const get = (key: string, extra: etcdserverpb.IRangeRequest = {}): etcdserverpb.IRequestOp => ({ requestRange: { key: b(key), ...extra } });
const del = (key: string, rangeEnd?: string): etcdserverpb.IRequestOp =>
  ({ requestDeleteRange: { key: b(key), rangeEnd: rangeEnd === undefined ? undefined : b(rangeEnd) } });

describe('mvcc txn: compares', () => {
  let d: Driver;
  before(() => {
    d = new Driver();
    d.grantLease(7);
    d.put('a', 'm', { lease: 7 }); // 2
    d.put('a', 'n', { lease: 7 }); // 3 -> a: create 2, mod 3, version 2, lease 7, value n
    d.put('b', 'x'); // 4
  });
  after(async () => { await d.close(); });

  const check = (c: Cmp): boolean => {
    const before = d.store.revision;
    const r = d.txn({ compare: [c] });
    assert.equal(d.store.revision, before, 'a read-only txn does not bump');
    assert.equal(toNum(r.header?.revision), before);
    return r.succeeded === true;
  };

  const matrix: Array<[string, Cmp, number, number, number]> = [
    // name, compare (without result), value equal to, less than and greater than the key's
    ['version', { target: T.VERSION }, 2, 3, 1],
    ['create', { target: T.CREATE }, 2, 3, 1],
    ['mod', { target: T.MOD }, 3, 4, 2],
    ['lease', { target: T.LEASE }, 7, 8, 6],
  ];
  for (const [name, c, eq, above, below] of matrix) {
    const field = { version: 'version', create: 'createRevision', mod: 'modRevision', lease: 'lease' }[name] as keyof Cmp;
    it(`${name}: EQUAL / NOT_EQUAL / GREATER / LESS`, () => {
      const at = (result: number, v: number) => check({ ...c, result, key: b('a'), [field]: v });
      assert.deepEqual([at(R.EQUAL, eq), at(R.EQUAL, above), at(R.NOT_EQUAL, eq), at(R.NOT_EQUAL, below)], [true, false, false, true]);
      assert.deepEqual([at(R.GREATER, below), at(R.GREATER, eq), at(R.LESS, above), at(R.LESS, eq)], [true, false, true, false]);
    });
  }

  it('value: bytes order, and a missing key always fails a value compare', () => {
    const at = (result: number, v: string, key = 'a') => check({ target: T.VALUE, result, key: b(key), value: b(v) });
    assert.deepEqual([at(R.EQUAL, 'n'), at(R.GREATER, 'm'), at(R.LESS, 'o'), at(R.NOT_EQUAL, 'n')], [true, true, true, false]);
    assert.deepEqual([at(R.EQUAL, '', 'zz'), at(R.NOT_EQUAL, 'q', 'zz')], [false, false]);
  });

  it('a missing key compares as zero: version = 0, create = 0, lease = 0', () => {
    assert.equal(check({ target: T.VERSION, result: R.EQUAL, key: b('zz'), version: 0 }), true);
    assert.equal(check({ target: T.CREATE, result: R.LESS, key: b('zz'), createRevision: 1 }), true);
    assert.equal(check({ target: T.LEASE, result: R.EQUAL, key: b('zz') }), true);
  });

  it('with range_end every key in the range must match', () => {
    assert.equal(check({ target: T.VERSION, result: R.GREATER, key: b('a'), rangeEnd: b('c'), version: 0 }), true);
    assert.equal(check({ target: T.VERSION, result: R.EQUAL, key: b('a'), rangeEnd: b('c'), version: 2 }), false);
    assert.equal(check({ target: T.MOD, result: R.LESS, key: b('\x00'), rangeEnd: b('\x00'), modRevision: 5 }), true);
  });

  it('all compares must hold; huge int64 targets compare without overflow', () => {
    const huge = etcdserverpb.Compare.decode(etcdserverpb.Compare.encode({ modRevision: '9223372036854775807' as unknown as number }).finish()).modRevision;
    assert.equal(check({ target: T.MOD, result: R.LESS, key: b('a'), modRevision: huge }), true);
    const r = d.txn({ compare: [{ target: T.VERSION, result: R.EQUAL, key: b('a'), version: 2 }, { target: T.VALUE, result: R.EQUAL, key: b('b'), value: b('nope') }], success: [get('a')], failure: [get('b')] });
    assert.equal(r.succeeded ?? false, false); // false is left off the wire, as etcd
    assert.equal(str(r.responses?.[0].responseRange?.kvs?.[0].key), 'b');
  });
});

describe('mvcc txn: ops', () => {
  let d: Driver;
  beforeEach(() => { d = new Driver(); });
  afterEach(async () => { await d.close(); });

  it('all writes share one revision with sub revisions; reads see earlier writes (as etcd)', () => {
    d.put('a', '1'); // 2
    const r = d.txn({ success: [get('a'), put('b', '2'), get('b'), del('a'), get('a', { rangeEnd: b('z') }), put('c', '3', { prevKv: true })] });
    assert.equal(toNum(r.header?.revision), 3);
    const rs = r.responses ?? [];
    assert.equal(toNum(rs[0].responseRange?.header?.revision), 2);
    assert.equal(toNum(rs[1].responsePut?.header?.revision), 3);
    assert.deepEqual(revs(rs[2].responseRange?.kvs?.[0]), [3, 3, 1]);
    assert.equal(toNum(rs[2].responseRange?.header?.revision), 3);
    assert.equal(toNum(rs[3].responseDeleteRange?.deleted), 1);
    assert.deepEqual(rs[4].responseRange?.kvs?.map((kv) => str(kv.key)), ['b']);
    assert.equal(rs[5].responsePut?.prevKv, undefined);
    assert.equal(d.store.revision, 3);
    // history records within one revision: at rev 2 we see the old state, at rev 3 the new
    assert.deepEqual(d.pairs('a', 'z', { revision: 2 }), ['a=1']);
    assert.deepEqual(d.pairs('a', 'z', { revision: 3 }), ['b=2', 'c=3']);
  });

  it('a delete of nothing inside a changing txn answers the txn revision', () => {
    d.put('a', '1');
    const r = d.txn({ success: [del('zz'), put('b', '1'), del('yy')] });
    assert.equal(toNum(r.responses?.[0].responseDeleteRange?.header?.revision), 2);
    assert.equal(toNum(r.responses?.[2].responseDeleteRange?.header?.revision), 3);
    const noop = d.txn({ success: [del('zz')] });
    assert.equal(toNum(noop.header?.revision), 3);
    assert.equal(d.store.revision, 3);
  });

  it('nested txns pick their own branch; the nested header stays empty', () => {
    d.put('a', '1'); // 2
    const r = d.txn({
      compare: [{ target: T.VALUE, result: R.EQUAL, key: b('a'), value: b('1') }],
      success: [
        put('b', 'x'),
        { requestTxn: { compare: [{ target: T.VERSION, result: R.EQUAL, key: b('b'), version: 0 }], success: [put('c', 'then')], failure: [put('c', 'else')] } },
        { requestTxn: { success: [get('c')] } },
      ],
      failure: [put('z', 'never')],
    });
    assert.equal(r.succeeded, true);
    // compares of nested txns see the state before the txn (b absent)
    const n1 = r.responses?.[1].responseTxn;
    assert.equal(n1?.succeeded, true);
    assert.deepEqual(n1?.header, {});
    assert.equal(toNum(n1?.responses?.[0].responsePut?.header?.revision), 3);
    assert.equal(str(r.responses?.[2].responseTxn?.responses?.[0].responseRange?.kvs?.[0].value), 'then');
    assert.deepEqual(d.pairs('a', 'z'), ['a=1', 'b=x', 'c=then']);
  });

  it('put then delete of the same key in one txn (allowed via nested txns) leaves it deleted', () => {
    d.put('k', 'old'); // 2
    const r = d.txn({ success: [{ requestTxn: { success: [put('k', 'new')] } }, { requestTxn: { success: [del('k')] } }] });
    assert.equal(toNum(r.header?.revision), 3);
    assert.deepEqual(d.pairs('k'), []);
    assert.deepEqual(d.pairs('k', undefined, { revision: 2 }), ['k=old']);
    d.put('k', 'again');
    assert.deepEqual(revs(d.range('k').kvs?.[0]), [4, 4, 1]);
  });

  it('refuses the whole txn before writing: ignore_value on a missing key, bad range revisions', () => {
    d.put('a', '1'); // 2
    const cases: Array<[etcdserverpb.IRequestOp[], string]> = [
      [[put('b', 'x'), put('nope', '', { ignoreValue: true })], 'etcdserver: key not found'],
      [[put('b', 'x'), get('a', { revision: 3 })], 'etcdserver: mvcc: required revision is a future revision'],
    ];
    for (const [ops, message] of cases) {
      const r = d.apply({ kind: 'txn', req: { success: ops } });
      assert.equal('err' in r && r.err.message, message);
    }
    assert.equal(d.store.revision, 2);
    assert.deepEqual(d.pairs('b'), []);
  });

  it('compacted range revision in a txn is refused; a negative one compares with the compact revision (etcd quirk)', () => {
    d.put('a', '1'); d.put('a', '2'); d.put('a', '3');
    d.compact(3);
    const r = d.apply({ kind: 'txn', req: { success: [get('a', { revision: 2 })] } });
    assert.equal('err' in r && r.err.code, GrpcCode.OutOfRange);
    const neg = d.apply({ kind: 'txn', req: { success: [get('a', { revision: -1 })] } });
    assert.equal('err' in neg && neg.err.message, 'etcdserver: mvcc: required revision has been compacted');
    assert.equal(str(d.txn({ success: [get('a', { revision: 3 })] }).responses?.[0].responseRange?.kvs?.[0].value), '2');
  });

  it('ignore_value inside a txn keeps the value and takes the new lease', () => {
    d.grantLease(1);
    d.grantLease(2);
    d.put('a', 'keep', { lease: 1 });
    d.txn({ success: [put('a', '', { ignoreValue: true, lease: 2 })] });
    const kv = d.range('a').kvs?.[0];
    assert.equal(str(kv?.value), 'keep');
    assert.equal(toNum(kv?.lease as number), 2);
  });

  it('read-only txns are served from a read transaction, with the same answers', () => {
    d.put('a', '1');
    const req = { compare: [{ target: T.VALUE, result: R.EQUAL, key: b('a'), value: b('1') }], success: [get('a')], failure: [get('b')] };
    const r = d.store.txnReadOnly(req);
    assert.deepEqual(r, d.txn(req));
    assert.equal(d.store.appliedIndex, 2);
    assert.throws(() => d.store.txnReadOnly({ success: [get('a', { revision: 9 })] }), { message: 'etcdserver: mvcc: required revision is a future revision' });
    assert.throws(() => d.store.txnReadOnly({ success: [put('a', 'x')] }), /invariant/);
  });
});
