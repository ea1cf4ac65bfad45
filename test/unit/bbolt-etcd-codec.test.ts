// etcd 3.4's bucket contents (src/shared/bbolt/etcd_codec.ts): each encoder against bytes etcd's Go code
// writes (written out from its source: revToBytes, leasepb's gogo marshal, json.Marshal of a Member,
// AlarmMember's marshal), and each decoder inverting its encoder, including 64-bit IDs above 2^53 and
// negative lease IDs. The snapshot integration test checks the same encoders against etcd itself.
import { strict as assert } from 'node:assert';
import * as c from '../../src/shared/bbolt/etcd_codec';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('bbolt: etcd 3.4 bucket codecs', () => {
  it('revision keys: main ‖ _ ‖ sub, t for a tombstone', () => {
    assert.equal(hex(c.encodeRevision(5, 1)), '0000000000000005' + '5f' + '0000000000000001');
    assert.equal(hex(c.encodeRevision(0x1_0000_0002, 0, true)), '0000000100000002' + '5f' + '0000000000000000' + '74');
    assert.deepEqual(c.decodeRevision(c.encodeRevision(2 ** 40 + 7, 3, true)), { main: 2 ** 40 + 7, sub: 3, tombstone: true });
    assert.deepEqual(c.decodeRevision(c.encodeRevision(9, 0)), { main: 9, sub: 0, tombstone: false });
    assert.throws(() => c.decodeRevision(Buffer.alloc(16)));
    assert.throws(() => c.decodeRevision(Buffer.concat([c.encodeRevision(1, 0), Buffer.from('x')])));
    // byte order of the keys is revision order
    const keys = [c.encodeRevision(2, 0), c.encodeRevision(1, 5), c.encodeRevision(1, 5, true), c.encodeRevision(256, 0)];
    keys.sort(Buffer.compare);
    assert.deepEqual(
      keys.map((k) => c.decodeRevision(k).main),
      [1, 1, 2, 256],
    );
  });

  it('KeyValue: gogo field order, zero fields left out, tombstone = key only', () => {
    const kv = { key: Buffer.from('a'), createRevision: 2, modRevision: 3, version: 2, value: Buffer.from('v'), lease: 0n };
    // 0a 01 'a' | 10 02 | 18 03 | 20 02 | 2a 01 'v'
    assert.equal(hex(c.encodeKeyValue(kv)), '0a0161' + '1002' + '1803' + '2002' + '2a0176');
    assert.deepEqual(c.decodeKeyValue(c.encodeKeyValue(kv)), kv);
    const tomb = { key: Buffer.from('a'), createRevision: 0, modRevision: 0, version: 0, value: Buffer.alloc(0), lease: 0n };
    assert.equal(hex(c.encodeKeyValue(tomb)), '0a0161');
    const leased = { ...kv, lease: 0x7fff_ffff_ffff_fff0n };
    assert.deepEqual(c.decodeKeyValue(c.encodeKeyValue(leased)), leased);
    const neg = { ...kv, lease: -5n };
    assert.deepEqual(c.decodeKeyValue(c.encodeKeyValue(neg)), neg);
  });

  it('meta: consistent_index u64 BE, compaction marks as revision bytes', () => {
    assert.equal(hex(c.encodeU64(258)), '0000000000000102');
    assert.equal(c.decodeU64(c.encodeU64(2n ** 63n + 1n)), 2n ** 63n + 1n);
    assert.equal(hex(c.encodeCompactRev(7)), '0000000000000007' + '5f' + '0000000000000000');
    assert.equal(c.decodeCompactRev(c.encodeCompactRev(123456)), 123456);
  });

  it('lease: int64 BE key, leasepb.Lease varints', () => {
    assert.equal(hex(c.encodeLeaseKey(0x694d77a4fa3b2a04n)), '694d77a4fa3b2a04');
    assert.equal(hex(c.encodeLeaseKey(-1n)), 'ffffffffffffffff');
    assert.equal(c.decodeLeaseKey(c.encodeLeaseKey(-2n)), -2n);
    // ID 1, TTL 10, no checkpoint: 08 01 10 0a
    assert.equal(hex(c.encodeLease({ id: 1n, ttl: 10, remainingTtl: 0 })), '0801100a');
    // ID 300: 08 ac 02; TTL 0 left out; RemainingTTL 5: 18 05
    assert.equal(hex(c.encodeLease({ id: 300n, ttl: 0, remainingTtl: 5 })), '08ac021805');
    for (const l of [
      { id: 0x694d77a4fa3b2a04n, ttl: 3600, remainingTtl: 1200 },
      { id: -7n, ttl: 9_000_000_000, remainingTtl: 0 },
      { id: 0n, ttl: 0, remainingTtl: 0 },
    ]) {
      assert.deepEqual(c.decodeLease(c.encodeLease(l)), l);
    }
    assert.throws(() => c.decodeLease(Buffer.from([0x08, 0x80])));
  });

  it('members: hex key without padding, json.Marshal of Member', () => {
    assert.equal(c.encodeMemberKey(0x8e9e05c52164694dn).toString(), '8e9e05c52164694d');
    assert.equal(c.encodeMemberKey(0xabn).toString(), 'ab');
    assert.equal(c.decodeMemberKey(Buffer.from('8e9e05c52164694d')), 0x8e9e05c52164694dn);
    const m = {
      id: 0x8e9e05c52164694dn,
      peerURLs: ['http://localhost:2380'],
      isLearner: false,
      name: 'default',
      clientURLs: ['http://localhost:2379'],
    };
    assert.equal(
      c.encodeMember(m).toString(),
      '{"id":10276657743932975437,"peerURLs":["http://localhost:2380"],"name":"default","clientURLs":["http://localhost:2379"]}',
    );
    assert.deepEqual(c.decodeMember(c.encodeMember(m)), m);
    const learner = { id: 5n, peerURLs: ['http://a:1?x=1&y=<2>'], isLearner: true, name: '', clientURLs: [] };
    assert.equal(c.encodeMember(learner).toString(), '{"id":5,"peerURLs":["http://a:1?x=1\\u0026y=\\u003c2\\u003e"],"isLearner":true}');
    assert.deepEqual(c.decodeMember(c.encodeMember(learner)), learner);
  });

  it('alarm: the marshalled AlarmMember is the key', () => {
    // memberID 1, NOSPACE (1): 08 01 10 01
    assert.equal(hex(c.encodeAlarmKey({ memberId: 1n, alarm: 1 })), '08011001');
    const big = { memberId: 0xfedcba9876543210n, alarm: 2 };
    assert.deepEqual(c.decodeAlarmKey(c.encodeAlarmKey(big)), big);
  });

  it('auth: enabled flag, users and roles keyed by name', () => {
    assert.equal(hex(c.encodeAuthEnabled(true)), '01');
    assert.equal(c.decodeAuthEnabled(c.encodeAuthEnabled(false)), false);
    const u = c.encodeUser({ name: Buffer.from('alice'), password: Buffer.from('$2a$10$hash'), roles: ['r1'] });
    assert.equal(u.key.toString(), 'alice');
    const du = c.decodeUser(u.value);
    assert.equal(Buffer.from(du.password).toString(), '$2a$10$hash');
    assert.deepEqual(du.roles, ['r1']);
    const r = c.encodeRole({
      name: Buffer.from('r1'),
      keyPermission: [{ permType: 2, key: Buffer.from('a'), rangeEnd: Buffer.from('b') }],
    });
    assert.equal(r.key.toString(), 'r1');
    assert.equal(c.decodeRole(r.value).keyPermission.length, 1);
  });
});
