// The apply side of alarms (src/workers/mvcc/alarm_apply.ts) and Maintenance.Hash (src/shared/mvcc/hash.ts
// hashAll), on stores in temp directories driven through applyBatch. Alarms: what each one refuses,
// ACTIVATE/DEACTIVATE answers, persistence across reopen. Hash: equal for equal state whatever the
// applied index, different after any write.
import { strict as assert } from 'node:assert';
import { etcdserverpb } from '../../src/shared/gen/etcd';
import { GrpcCode } from '../../src/shared/errors';
import { toUint64 } from '../../src/shared/long';
import { Driver } from '../../src/workers/mvcc/testing';

const { AlarmType } = etcdserverpb;
const { AlarmAction } = etcdserverpb.AlarmRequest;

function alarm(d: Driver, action: number, type: number, member = 7): Array<{ member: bigint; alarm: number }> {
  const r = d.apply({ kind: 'alarm', req: { action, alarm: type, memberID: member } });
  assert.ok('ok' in r);
  return ((r.ok as etcdserverpb.IAlarmResponse).alarms ?? []).map((a) => ({ member: toUint64(a.memberID ?? 0), alarm: a.alarm ?? 0 }));
}

function errOf(d: Driver, req: Parameters<Driver['apply']>[0]): string {
  const r = d.apply(req);
  return 'err' in r ? `${r.err.code} ${r.err.message}` : 'ok';
}

describe('mvcc: alarms at apply', () => {
  let d: Driver;
  beforeEach(() => {
    d = new Driver();
  });
  afterEach(async () => {
    await d.close();
  });

  it('NOSPACE refuses puts, txns with puts and grants; deletes, delete-only txns and compaction apply', () => {
    d.put('a', '1');
    d.put('b', '2');
    assert.deepEqual(alarm(d, AlarmAction.ACTIVATE, AlarmType.NOSPACE), [{ member: 7n, alarm: AlarmType.NOSPACE }]);
    const noSpace = `${GrpcCode.ResourceExhausted} etcdserver: mvcc: database space exceeded`;
    assert.equal(errOf(d, { kind: 'put', req: { key: Buffer.from('c'), value: Buffer.from('3') } }), noSpace);
    assert.equal(errOf(d, { kind: 'txn', req: { failure: [{ requestPut: { key: Buffer.from('c') } }] } }), noSpace);
    assert.equal(errOf(d, { kind: 'leaseGrant', req: { ID: 5, TTL: 10 } }), noSpace);
    assert.equal(errOf(d, { kind: 'txn', req: { success: [{ requestDeleteRange: { key: Buffer.from('b') } }] } }), 'ok');
    assert.equal(errOf(d, { kind: 'deleteRange', req: { key: Buffer.from('a') } }), 'ok');
    assert.equal(errOf(d, { kind: 'compact', req: { revision: 2 } }), 'ok');
    assert.deepEqual(alarm(d, AlarmAction.DEACTIVATE, AlarmType.NOSPACE), [{ member: 7n, alarm: AlarmType.NOSPACE }]);
    assert.deepEqual(alarm(d, AlarmAction.DEACTIVATE, AlarmType.NOSPACE), []);
    assert.equal(errOf(d, { kind: 'put', req: { key: Buffer.from('c'), value: Buffer.from('3') } }), 'ok');
  });

  it('CORRUPT refuses writes, deletes, compaction and lease grant/revoke', () => {
    alarm(d, AlarmAction.ACTIVATE, AlarmType.CORRUPT, 9);
    const corrupt = `${GrpcCode.DataLoss} etcdserver: corrupt cluster`;
    assert.equal(errOf(d, { kind: 'put', req: { key: Buffer.from('c') } }), corrupt);
    assert.equal(errOf(d, { kind: 'deleteRange', req: { key: Buffer.from('a') } }), corrupt);
    assert.equal(errOf(d, { kind: 'compact', req: { revision: 1 } }), corrupt);
    assert.equal(errOf(d, { kind: 'leaseRevoke', req: { ID: 5 } }), corrupt);
  });

  it('lists by type then member, filters GET by type, and persists across reopen', async () => {
    alarm(d, AlarmAction.ACTIVATE, AlarmType.CORRUPT, 3);
    alarm(d, AlarmAction.ACTIVATE, AlarmType.NOSPACE, 9);
    alarm(d, AlarmAction.ACTIVATE, AlarmType.NOSPACE, 2);
    assert.deepEqual(alarm(d, AlarmAction.ACTIVATE, AlarmType.NOSPACE, 2), [{ member: 2n, alarm: AlarmType.NOSPACE }]);
    const all = [
      { member: 2n, alarm: AlarmType.NOSPACE },
      { member: 9n, alarm: AlarmType.NOSPACE },
      { member: 3n, alarm: AlarmType.CORRUPT },
    ];
    assert.deepEqual(alarm(d, AlarmAction.GET, AlarmType.NONE), all);
    assert.deepEqual(alarm(d, AlarmAction.GET, AlarmType.CORRUPT), [all[2]]);
    await d.reopen();
    assert.deepEqual(alarm(d, AlarmAction.GET, AlarmType.NONE), all);
    assert.equal(errOf(d, { kind: 'put', req: { key: Buffer.from('c') } }), `${GrpcCode.DataLoss} etcdserver: corrupt cluster`);
    assert.deepEqual(
      d.store.alarms().map((a) => ({ member: a.memberId, alarm: a.alarm })),
      all,
    );
  });
});

describe('mvcc: Maintenance.Hash', () => {
  it('is equal for equal state whatever the applied index, and changes with any write', async () => {
    const a = new Driver();
    const b = new Driver();
    try {
      for (const d of [a, b]) {
        d.put('k1', 'v1');
        d.put('k2', 'v2');
        d.del('k1');
      }
      b.index += 10; // a later applied index, same state
      b.apply({ kind: 'noop' });
      assert.notEqual(a.store.appliedIndex, b.store.appliedIndex);
      assert.deepEqual(a.store.hash(), b.store.hash());
      assert.equal(a.store.hash().revision, 4);
      b.put('k3', 'v3');
      assert.notEqual(a.store.hash().hash, b.store.hash().hash);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
