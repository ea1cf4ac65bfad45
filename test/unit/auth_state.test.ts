// The permission rules of src/shared/auth/state.ts against etcd 3.4's authStore: a key is allowed
// when one permission holds it, a range only when the union of the user's permissions covers all of
// it (etcd's IntervalTree.Contains), "\0" as range end means every key from the key on, root may do
// anything, and the errors come in etcd's order (auth disabled, no user, stale revision, unknown user,
// denied). Nested txns are checked (etcd 3.4 skipped them). Each case builds a snapshot by hand.
import * as assert from 'node:assert/strict';
import { authpb } from '../../src/shared/gen/etcd';
import { AuthState, PermType } from '../../src/shared/auth/state';

const b = (s: string): Buffer => Buffer.from(s);
const perm = (t: PermType, key: string, end?: string): authpb.IPermission => ({
  permType: t as number as authpb.Permission.Type,
  key: b(key),
  rangeEnd: end === undefined ? undefined : b(end),
});

function state(enabled = true): AuthState {
  return new AuthState({
    enabled,
    revision: 5,
    users: new Map<string, authpb.IUser>([
      ['root', { name: b('root'), roles: ['root'] }],
      ['u', { name: b('u'), roles: ['a', 'b'] }],
    ]),
    roles: new Map<string, authpb.IRole>([
      ['a', { name: b('a'), keyPermission: [perm(PermType.ReadWrite, '/a/', '/a0'), perm(PermType.Read, '/k')] }],
      ['b', { name: b('b'), keyPermission: [perm(PermType.Read, '/a0', '/b'), perm(PermType.Write, '/from/', '\0')] }],
    ]),
  });
}

const u = { user: 'u', revision: 5 };
const denied = /permission denied/;

describe('auth state: etcd 3.4 permission rules', () => {
  it('keys and ranges covered by one or several permissions', () => {
    const st = state();
    st.checkRange(u, b('/a/x'), null);
    st.checkRange(u, b('/k'), null);
    assert.throws(() => st.checkRange(u, b('/k2'), null), denied);
    st.checkRange(u, b('/a/'), b('/b')); // [/a/, /a0) and [/a0, /b) together
    assert.throws(() => st.checkRange(u, b('/a/'), b('/b0')), denied);
    assert.throws(() => st.checkRange(u, b('/'), b('/a0')), denied);
    st.checkPut(u, b('/a/1'));
    assert.throws(() => st.checkPut(u, b('/a0x')), denied); // read only there
    st.checkPut(u, b('/from/zzzz'));
    st.checkDeleteRange(u, b('/from/x'), b('\0')); // every key from /from/x on
    assert.throws(() => st.checkDeleteRange(u, b('/fro'), b('\0')), denied);
  });

  it('errors in etcd order; root and a disabled store allow everything', () => {
    const st = state();
    assert.throws(() => st.checkRange(null, b('/a/x'), null), /user name is empty/);
    assert.throws(() => st.checkRange({ user: 'u', revision: 4 }, b('/a/x'), null), /revision of auth store is old/);
    assert.throws(() => st.checkRange({ user: 'nobody', revision: 5 }, b('/a/x'), null), denied);
    st.checkRange({ user: 'root', revision: 5 }, b(''), b('\0'));
    state(false).checkPut(null, b('/anything'));
    assert.throws(() => st.checkAdmin(u), denied);
    assert.throws(() => st.checkAdmin({ user: 'nobody', revision: 5 }), /user name not found/);
    st.checkAdmin({ user: 'root', revision: 5 });
  });

  it('txns: compares, both branches, prev_kv and nested txns', () => {
    const st = state();
    st.checkTxn(u, {
      compare: [{ key: b('/k') }],
      success: [{ requestPut: { key: b('/a/1') } }],
      failure: [{ requestRange: { key: b('/a/1') } }],
    });
    assert.throws(() => st.checkTxn(u, { compare: [{ key: b('/nope') }] }), denied);
    assert.throws(() => st.checkTxn(u, { failure: [{ requestPut: { key: b('/a0x') } }] }), denied);
    assert.throws(() => st.checkTxn(u, { success: [{ requestDeleteRange: { key: b('/from/x'), prevKv: true } }] }), denied);
    assert.throws(() => st.checkTxn(u, { success: [{ requestTxn: { success: [{ requestPut: { key: b('/0secret') } }] } }] }), denied);
  });
});
