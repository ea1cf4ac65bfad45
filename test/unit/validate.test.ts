// validate.ts: the request checks etcd's v3rpc layer makes before proposing (api/v3rpc/key.go), with etcd's
// errors and order, including checkIntervals' treatment of nested txns (cases checked against etcd 3.4.23).
import { strict as assert } from 'node:assert';
import { etcdserverpb } from '../../src/shared/gen/etcd';
import { validateDeleteRange, validatePut, validateRange, validateTxn } from '../../src/shared/validate';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
type Op = etcdserverpb.IRequestOp;
const put = (k: string): Op => ({ requestPut: { key: b(k), value: b('v') } });
const del = (k: string, end?: string): Op => ({ requestDeleteRange: { key: b(k), rangeEnd: end === undefined ? undefined : b(end) } });
const get = (k: string): Op => ({ requestRange: { key: b(k) } });
const txn = (success: Op[], failure: Op[] = []): Op => ({ requestTxn: { success, failure } });

const msg = (f: () => void): string | undefined => {
  try { f(); return undefined; } catch (e) { return (e as Error).message; }
};
const dup = 'etcdserver: duplicate key given in txn request';

describe('validate: single requests', () => {
  it('refuses empty keys', () => {
    assert.equal(msg(() => validateRange({})), 'etcdserver: key is not provided');
    assert.equal(msg(() => validatePut({ value: b('x') })), 'etcdserver: key is not provided');
    assert.equal(msg(() => validateDeleteRange({ key: new Uint8Array(0) })), 'etcdserver: key is not provided');
    assert.equal(msg(() => validateRange({ key: b('a') })), undefined);
  });

  it('ignore_value with a value, ignore_lease with a lease', () => {
    assert.equal(msg(() => validatePut({ key: b('a'), value: b('x'), ignoreValue: true })), 'etcdserver: value is provided');
    assert.equal(msg(() => validatePut({ key: b('a'), lease: 5, ignoreLease: true })), 'etcdserver: lease is provided');
    assert.equal(msg(() => validatePut({ key: b('a'), ignoreValue: true, ignoreLease: true })), undefined);
  });

  it('sort target outside the enum is refused (etcd 3.4 crashes); unknown sort order is accepted as 3.4 does', () => {
    assert.equal(msg(() => validateRange({ key: b('a'), sortTarget: 99 as etcdserverpb.RangeRequest.SortTarget, sortOrder: 1 })), 'etcdserver: invalid sort option');
    assert.equal(msg(() => validateRange({ key: b('a'), sortTarget: -1 as etcdserverpb.RangeRequest.SortTarget })), 'etcdserver: invalid sort option');
    assert.equal(msg(() => validateRange({ key: b('a'), sortOrder: 99 as etcdserverpb.RangeRequest.SortOrder })), undefined);
    assert.equal(msg(() => validateRange({ key: b('a'), sortTarget: 4, sortOrder: 2 })), undefined);
  });

  it('keys of any length are accepted, as etcd does (the request size limit applies to the whole request)', () => {
    assert.equal(msg(() => validatePut({ key: Buffer.alloc(1965, 1) })), undefined);
    assert.equal(msg(() => validatePut({ key: Buffer.alloc(983, 0) })), undefined);
    assert.equal(msg(() => validatePut({ key: Buffer.alloc(65536, 0xff) })), undefined);
  });
});

describe('validate: txn', () => {
  it('counts compares, success and failure separately against the max', () => {
    const ops = (n: number) => Array.from({ length: n }, (_, i) => get(`k${i}`));
    assert.equal(msg(() => validateTxn({ success: ops(3), failure: ops(3) }, 3)), undefined);
    assert.equal(msg(() => validateTxn({ success: ops(4) }, 3)), 'etcdserver: too many operations in txn request');
    assert.equal(msg(() => validateTxn({ compare: Array.from({ length: 4 }, () => ({ key: b('a') })) }, 3)), 'etcdserver: too many operations in txn request');
  });

  it('a nested txn may use only what the outer txn left (max - outer ops)', () => {
    assert.equal(msg(() => validateTxn({ success: [get('a'), txn([get('b')])] }, 3)), undefined);
    assert.equal(msg(() => validateTxn({ success: [get('a'), txn([get('b'), get('c')])] }, 3)), 'etcdserver: too many operations in txn request');
  });

  it('checks compares, then success, then failure ops; an empty op is "key not found"', () => {
    assert.equal(msg(() => validateTxn({ compare: [{}], success: [{}] }, 128)), 'etcdserver: key is not provided');
    assert.equal(msg(() => validateTxn({ success: [{}] }, 128)), 'etcdserver: key not found');
    assert.equal(msg(() => validateTxn({ failure: [{ requestPut: { key: b('a'), value: b('x'), ignoreValue: true } }] }, 128)), 'etcdserver: value is provided');
    assert.equal(msg(() => validateTxn({ success: [txn([{ requestRange: {} }])] }, 128)), 'etcdserver: key is not provided');
  });

  const cases: Array<[string, etcdserverpb.ITxnRequest, string | undefined]> = [
    ['two puts of one key', { success: [put('a'), put('a')] }, dup],
    ['put and delete of one key', { success: [put('a'), del('a')] }, dup],
    ['put inside a deleted range', { success: [del('a', 'c'), put('b')] }, dup],
    ['put at a deleted range end', { success: [del('a', 'c'), put('c')] }, undefined],
    ['delete "from key" (range_end \\0) never overlaps (etcd quirk)', { success: [del('a', '\x00'), put('b')] }, undefined],
    ['overlapping deletes', { success: [del('a', 'c'), del('b', 'd')] }, undefined],
    ['same key in success and failure', { success: [put('a')], failure: [put('a')] }, undefined],
    ['same key on both branches of a nested txn', { success: [txn([put('a')], [put('a')])] }, undefined],
    ['nested put and outer put', { success: [txn([put('a')]), put('a')] }, dup],
    ['two nested txns put one key', { success: [txn([put('a')]), txn([], [put('a')])] }, dup],
    ['nested put then nested delete', { success: [txn([put('a')]), txn([del('a')])] }, undefined],
    ['nested delete then nested put', { success: [txn([del('a')]), txn([put('a')])] }, dup],
    ['outer delete and nested put', { success: [del('a', 'b'), txn([put('a')])] }, dup],
    ['nested delete and outer put', { success: [txn([], [del('a')]), put('a')] }, dup],
    ['deep nesting', { success: [txn([txn([put('x')])]), txn([txn([], [put('x')])])] }, dup],
  ];
  for (const [name, req, want] of cases) {
    it(`intervals: ${name}`, () => assert.equal(msg(() => validateTxn(req, 128)), want));
  }
});
