// MvccStore leases as the apply worker applies them: grant errors (etcd's lessor.Grant), the
// lease -> key index kept by puts and deletes (attach, ignore_lease, detach on a put without
// lease, delete), revoke deleting every attached key in ONE revision in key order, checkpoints,
// and that all of it survives reopening the store.
import { strict as assert } from 'node:assert';
import Long from 'long';
import { mvccpb } from '../../src/shared/gen/etcd';
import { toNum } from '../../src/shared/long';
import { Driver, b, str } from '../../src/workers/mvcc/testing';

const keysOf = (d: Driver, id: bigint): string[] => d.store.leaseKeys(id).map((k) => str(k));

describe('mvcc leases', () => {
  let d: Driver;
  beforeEach(() => { d = new Driver(); });
  afterEach(async () => { await d.close(); });

  it('grant: ID 0 is "not found", a duplicate "already exists", over 9e9 s "too large"; no revision change', () => {
    const rev = d.store.revision;
    const r = d.grantLease(5, 10);
    assert.equal(toNum(r.TTL), 10);
    assert.equal(toNum(r.header?.revision), rev);
    const err = (id: number | string, ttl: number): string => {
      const res = d.apply({ kind: 'leaseGrant', req: { ID: typeof id === 'string' ? Long.fromString(id) : id, TTL: ttl } });
      assert.ok('err' in res, 'expected an error');
      return res.err.message;
    };
    assert.equal(err(0, 10), 'etcdserver: requested lease not found');
    assert.equal(err(5, 10), 'etcdserver: lease already exists');
    assert.equal(err(6, 9_000_000_001), 'etcdserver: too large lease TTL');
    assert.equal(d.store.revision, rev);
    assert.deepEqual(d.store.leases().map((l) => [l.id, l.ttl, l.remaining]), [[5n, 10, 0]]);
  });

  it('negative and large IDs round-trip exactly', () => {
    d.grantLease('-2', 10);
    d.grantLease('9223372036854775807', 10);
    assert.deepEqual(d.store.leases().map((l) => l.id).sort(), [-2n, 9223372036854775807n].sort());
    d.put('k', 'v', { lease: Long.fromString('-2') });
    assert.deepEqual(keysOf(d, -2n), ['k']);
    assert.equal(d.range('k').kvs?.[0].lease?.toString(), '-2');
  });

  it('the index follows puts: attach, ignore_lease keeps, a put without lease or another lease moves, delete drops', () => {
    d.grantLease(1);
    d.grantLease(2);
    d.put('a', '1', { lease: 1 });
    d.put('b', '1', { lease: 1 });
    d.put('c', '1', { lease: 1 });
    assert.deepEqual(keysOf(d, 1n), ['a', 'b', 'c']);
    d.put('a', '2', { ignoreLease: true });
    d.put('b', '2'); // no lease: detached
    d.put('c', '2', { lease: 2 }); // moved
    d.put('d', '1', { lease: 2 });
    assert.deepEqual(keysOf(d, 1n), ['a']);
    assert.deepEqual(keysOf(d, 2n), ['c', 'd']);
    d.del('d');
    assert.deepEqual(keysOf(d, 2n), ['c']);
    d.txn({ success: [{ requestDeleteRange: { key: b('a'), rangeEnd: b('b') } }] });
    assert.deepEqual(keysOf(d, 1n), []);
  });

  it('revoke deletes every attached key at one revision, in key order, then the lease', () => {
    d.grantLease(9);
    for (const k of ['z', 'm', 'a']) d.put(k, 'v', { lease: 9 });
    d.put('free', 'v');
    const before = d.store.revision;
    const r = d.revokeLease(9);
    assert.equal(toNum(r.header?.revision), before + 1);
    assert.deepEqual(d.pairs('\0', '\xff'), ['free=v']);
    const ev = d.store.events(before + 1);
    assert.deepEqual(ev.events.map((e) => [e.type, str(e.kv?.key), toNum(e.kv?.modRevision)]),
      [[mvccpb.Event.EventType.DELETE, 'a', before + 1], [mvccpb.Event.EventType.DELETE, 'm', before + 1], [mvccpb.Event.EventType.DELETE, 'z', before + 1]]);
    assert.deepEqual(d.store.leases(), []);
    const again = d.apply({ kind: 'leaseRevoke', req: { ID: 9 } });
    assert.ok('err' in again && again.err.message === 'etcdserver: requested lease not found');
  });

  it('revoking a lease without keys does not change the revision', () => {
    d.grantLease(3);
    d.put('x', 'y');
    const rev = d.store.revision;
    assert.equal(toNum(d.revokeLease(3).header?.revision), rev);
    assert.equal(d.store.revision, rev);
  });

  it('a put naming a revoked lease is refused and changes nothing', () => {
    d.grantLease(4);
    d.revokeLease(4);
    const rev = d.store.revision;
    const r = d.apply({ kind: 'put', req: { key: b('k'), value: b('v'), lease: 4 } });
    assert.ok('err' in r && r.err.message === 'etcdserver: requested lease not found');
    assert.equal(d.store.revision, rev);
  });

  it('checkpoints store the remaining TTL (unknown IDs skipped) and everything survives a reopen', async () => {
    d.grantLease(1, 100);
    d.grantLease(2, 50);
    d.put('k1', 'v', { lease: 1 });
    d.ok({ kind: 'leaseCheckpoint', req: { checkpoints: [{ ID: 1, remaining_TTL: 42 }, { ID: 77, remaining_TTL: 5 }] } });
    await d.reopen();
    const ls = d.store.leases().map((l) => [l.id, l.ttl, l.remaining]).sort();
    assert.deepEqual(ls, [[1n, 100, 42], [2n, 50, 0]]);
    assert.deepEqual(keysOf(d, 1n), ['k1']);
    d.ok({ kind: 'leaseCheckpoint', req: { checkpoints: [{ ID: 1, remaining_TTL: 0 }] } });
    assert.equal(d.store.leases().find((l) => l.id === 1n)?.remaining, 0);
  });
});
