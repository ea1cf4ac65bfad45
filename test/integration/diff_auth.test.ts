// Differential test of authentication: one table of etcdctl commands (user, role and auth commands,
// their errors, and KV calls as root, as a user with a prefix permission, with a wrong password and
// with no user) runs in order against a fresh real etcd 3.4 (the reference, side A) and a fresh
// target (side B). For each command, exit code, stdout and stderr must be equal after the same
// normalization as diff_kv (cluster and member IDs, terms, log timestamps, client ids, ports).
// Revisions are compared as they are: a refused write must not take one on either side.
//
//   npx tsc -p . && npx mocha --no-config --exit dist/test/integration/diff_auth.test.js
//   ETCD_TS_DIFF_TARGET=etcd ...    side B is a second real etcd: must pass (validates the table)
//   ETCD_TS_DIFF_SHOW=1 ...         also print the reference output of every case
import * as assert from 'node:assert/strict';
import { etcdctl, normalize } from '../support/etcdctl';
import { cleanupServersAfter, Server, startEtcd, startKind, targetKind } from '../support/procs';

interface Case {
  args: string[];
  input?: string;
}

const c = (...args: string[]): Case => ({ args });
const J = ['-w', 'json'];
const ROOT = '--user=root:rootpw';
const AGENT = '--user=agent-7:secret';
const READER = '--user=reader:rpw';

const longName = 'n'.repeat(3000);

const cases: Case[] = [
  c('auth', 'enable'), // no root user yet
  c('user', 'add', 'root:rootpw'),
  c('user', 'add', 'root:again'), // already exists
  c('user', 'add', ':nopw'), // empty name
  c('role', 'add', 'agents'),
  c('role', 'add', 'agents'), // already exists
  c('role', 'add', ''), // empty name
  c('role', 'add', 'readers'),
  // names longer than an LMDB key (etcd has no such limit): stored under a hash, listed and granted as any
  c('user', 'add', `${longName}:lpw`),
  c('role', 'add', longName),
  c('user', 'grant-role', longName, longName),
  c('user', 'get', longName),
  c('role', 'grant-permission', longName, 'read', 'L'.repeat(3000)),
  c('role', 'get', longName),
  c('user', 'list'),
  c('role', 'list'),
  c('user', 'delete', longName),
  c('role', 'delete', longName),
  c('user', 'list'),
  c('user', 'add', 'agent-7:secret'),
  c('user', 'add', 'reader:rpw'),
  c('role', 'grant-permission', 'agents', '--prefix=true', 'readwrite', '/agents/'),
  c('role', 'grant-permission', 'agents', 'read', '/shared'), // one key
  c('role', 'grant-permission', 'agents', 'write', '/w/a', '/w/m'), // a range
  c('role', 'grant-permission', 'readers', '--from-key', 'read', '/r/'),
  c('role', 'grant-permission', 'readers', 'read', '/r/x'),
  c('role', 'grant-permission', 'nosuch', 'read', '/x'),
  c('role', 'get', 'agents'),
  c('role', 'get', 'agents', ...J),
  c('role', 'get', 'readers'),
  c('role', 'get', 'nosuch'),
  c('role', 'revoke-permission', 'readers', '/r/x'),
  c('role', 'revoke-permission', 'readers', '/r/x'), // not granted any more
  c('user', 'grant-role', 'agent-7', 'agents'),
  c('user', 'grant-role', 'agent-7', 'agents'), // already granted: no change
  c('user', 'grant-role', 'reader', 'readers'),
  c('user', 'grant-role', 'nobody', 'agents'),
  c('user', 'grant-role', 'agent-7', 'nosuch'),
  c('user', 'get', 'agent-7'),
  c('user', 'get', 'agent-7', ...J),
  c('user', 'get', 'nobody'),
  c('user', 'list'),
  c('role', 'list'),
  c('user', 'revoke-role', 'reader', 'agents'), // not granted
  c('put', '/config/db', 'postgres', ...J),
  c('put', '/agents/1', 'one', ...J),
  c(AGENT, 'get', '/agents/1'), // auth not enabled yet
  c('auth', 'enable'), // etcdctl adds the root role and grants it to root, then enables
  c('role', 'list'), // no user: refused
  c('get', 'foo'), // Error: etcdserver: user name is empty
  c('put', 'foo', 'bar'),
  c(ROOT, 'role', 'list'),
  c(ROOT, 'user', 'get', 'root'),
  c(AGENT, 'put', '/agents/7', 'up', ...J),
  c(AGENT, 'get', '/agents/7', ...J),
  c(AGENT, 'get', '/agents/', '--prefix', ...J),
  c(AGENT, 'get', '/agents', '--prefix'), // wider than the permission
  c(AGENT, 'get', '/config/db'),
  c(AGENT, 'put', '/config/db', 'x'),
  c(AGENT, 'get', '/shared'),
  c(AGENT, 'put', '/shared', 'x'),
  c(AGENT, 'put', '/w/b', 'x', ...J),
  c(AGENT, 'put', '/w/z', 'x'),
  c(AGENT, 'get', '/w/b'), // write-only
  c(AGENT, 'del', '/w/a', '/w/m', ...J),
  c(AGENT, 'del', '/w/a', '/w/m', '--prev-kv'), // prev kv needs read
  c(AGENT, 'del', '/agents/', '--prefix', '--prev-kv', ...J),
  c(AGENT, 'user', 'list'),
  c(AGENT, 'user', 'get', 'agent-7'), // one's own user
  c(AGENT, 'user', 'get', 'reader'),
  c(AGENT, 'role', 'get', 'agents'), // one's own role
  c(AGENT, 'role', 'get', 'readers'),
  c(AGENT, 'user', 'add', 'x:y'),
  c(AGENT, 'auth', 'disable'),
  c(AGENT, 'member', 'add', 'm2', '--peer-urls=http://127.0.0.1:1'), // membership changes: root only
  c('member', 'remove', '1234'),
  c(READER, 'get', '/r/a', ...J),
  c(READER, 'get', '/r/', '--from-key', ...J),
  c(READER, 'get', '/', '--from-key'),
  c(READER, 'put', '/r/a', 'x'),
  c('--user=agent-7:wrong', 'get', '/agents/7'),
  c('--user=nobody:pw', 'get', '/agents/7'),
  c(ROOT, 'user', 'revoke-role', 'root', 'root'),
  c(ROOT, 'user', 'delete', 'root'),
  c(ROOT, 'role', 'delete', 'root'),
  c(ROOT, 'get', '', '--from-key', ...J),
  c(ROOT, 'user', 'add', 'temp:tpw'),
  c(ROOT, 'user', 'grant-role', 'temp', 'agents'),
  c('--user=temp:tpw', 'get', '/agents/1', ...J),
  c(ROOT, 'role', 'delete', 'agents'),
  c('--user=temp:tpw', 'get', '/agents/1'), // its role is gone
  c(ROOT, 'user', 'get', 'temp'),
  c(ROOT, 'user', 'delete', 'temp'),
  c(ROOT, 'user', 'delete', 'temp'),
  c(ROOT, 'role', 'list'),
  c(ROOT, 'user', 'list'),
  c(ROOT, 'endpoint', 'hashkv', ...J),
  c(READER, 'endpoint', 'hashkv'),
  c(ROOT, 'auth', 'disable'),
  c('get', '/config/db', ...J),
  c('role', 'delete', 'root'), // allowed with auth disabled
  c('user', 'revoke-role', 'root', 'root'),
  c('auth', 'enable'),
];

function show(tc: Case): string {
  return `etcdctl ${tc.args.map((a) => (a === '' || /\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}`;
}

describe('differential auth: etcdctl user, role and auth against real etcd vs target', function () {
  this.timeout(60_000);
  const targetB = targetKind('ETCD_TS_DIFF_TARGET');
  let a: Server | undefined;
  let b: Server | undefined;
  cleanupServersAfter(() => [a, b]);

  before(async function () {
    [a, b] = await Promise.all([startEtcd(), startKind(targetB)]);
  });

  cases.forEach((tc, i) => {
    it(`#${i + 1} ${show(tc)}`, async function () {
      const [ra, rb] = await Promise.all([a!, b!].map((s) => etcdctl(s.endpoint, tc.args, { input: tc.input })));
      const na = normalize(ra);
      const nb = normalize(rb);
      if (process.env.ETCD_TS_DIFF_SHOW === '1') console.log(`${show(tc)}\n${na}`);
      if (na !== nb) {
        assert.fail(`${show(tc)}: outputs differ\n===== etcd (reference) =====\n${na}\n===== ${targetB} (target) =====\n${nb}`);
      }
    });
  });
});
