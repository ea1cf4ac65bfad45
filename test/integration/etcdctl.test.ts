// etcdctl session against the target server (etcd-ts; ETCD_TS_TARGET=etcd validates the test on real
// etcd): put, get -w json, a sorted/limited prefix get, a historical get, del --prev-kv, txn -i,
// compact, endpoint status, endpoint health and member list. Each step asserts on content (values,
// revisions, exit codes, the exact simple-format text). The same session also runs on a fresh real
// etcd, and `endpoint status -w json` / `member list -w json` are compared with etcd's field by field:
// same fields present, same revision, names and URL shapes; the fields that legitimately differ
// between two independent single-member clusters or two storage engines are checked for consistency
// instead of equality (see `compareStatus`). Finally the server is restarted on its data dir (data
// survives) and etcd-ts must exit 0 on SIGTERM. Last, member and cluster IDs must be those etcd
// derives from the same flags and ports.
//
//   npx tsc -p . && npx mocha dist/test/integration/etcdctl.test.js
import * as assert from 'node:assert/strict';
import { etcdctl, EtcdctlJson, EtcdctlResult } from '../support/etcdctl';
import { cleanupServersAfter, Server, startEtcd, startKind, targetKind } from '../support/procs';

/** JSON.parse that keeps uint64 IDs exact: ID, cluster_id, member_id and leader become strings. */
function parseBigJson(s: string): EtcdctlJson {
  return JSON.parse(s.replace(/"(ID|cluster_id|member_id|leader)":(\d+)/g, '"$1":"$2"'));
}

function ok(r: EtcdctlResult, what: string): string {
  assert.equal(r.code, 0, `${what} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

const b64 = (s: string) => Buffer.from(s).toString('base64');
const port = (url: string) => url.replace(/:\d+$/, ':PORT');

describe('etcdctl session', function () {
  this.timeout(60_000);
  const kind = targetKind();
  let t: Server | undefined;   // target
  let ref: Server | undefined; // real etcd, for the -w json comparisons
  cleanupServersAfter(() => [t, ref]);
  const run = (args: string[], input?: string) => etcdctl(t!.endpoint, args, { input });
  const txnInput = 'value("fab") = "x"\n\nput foo2 y\nput foo3 z\n\nput never x\n\n';

  before(async function () {
    [t, ref] = await Promise.all([startKind(kind), startEtcd()]);
  });

  it('put foo bar; put fab x', async () => {
    assert.equal(ok(await run(['put', 'foo', 'bar']), 'put foo bar'), 'OK\n');            // rev 2
    assert.equal(ok(await run(['put', 'fab', 'x']), 'put fab x'), 'OK\n');                // rev 3
  });

  it('get foo -w json', async () => {
    const j = parseBigJson(ok(await run(['get', 'foo', '-w', 'json']), 'get'));
    assert.equal(j.header.revision, 3);
    assert.equal(j.count, 1);
    assert.equal(j.more, undefined);
    assert.deepEqual(j.kvs, [{ key: b64('foo'), create_revision: 2, mod_revision: 2, version: 1, value: b64('bar') }]);
  });

  it('get --prefix f --sort-by=MODIFY --order=DESCEND --limit=1', async () => {
    const args = ['get', '--prefix', 'f', '--sort-by=MODIFY', '--order=DESCEND', '--limit=1'];
    assert.equal(ok(await run(args), 'get'), 'fab\nx\n');
    const j = parseBigJson(ok(await run([...args, '-w', 'json']), 'get'));
    assert.equal(j.count, 2);
    assert.equal(j.more, true);
    assert.equal(j.kvs.length, 1);
    assert.equal(j.kvs[0].mod_revision, 3);
  });

  it('get foo --rev=2', async () => {
    assert.equal(ok(await run(['get', 'foo', '--rev=2']), 'get --rev'), 'foo\nbar\n');
  });

  it('del foo --prev-kv', async () => {
    assert.equal(ok(await run(['del', 'foo', '--prev-kv']), 'del'), '1\nfoo\nbar\n');     // rev 4
    assert.equal(ok(await run(['get', 'foo']), 'get'), '');
    assert.equal(ok(await run(['get', 'foo', '--rev=3', '--print-value-only']), 'get'), 'bar\n');
  });

  it('txn -i (success branch, then failure branch)', async () => {
    const prompts = 'compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\n';
    const r1 = ok(await run(['txn', '-i'], txnInput), 'txn');                             // rev 5
    assert.equal(r1, `${prompts}SUCCESS\n\nOK\n\nOK\n`);
    assert.equal(ok(await run(['get', 'foo', '--prefix', '--print-value-only']), 'get'), 'y\nz\n');
    const r2 = ok(await run(['txn', '-i'], 'value("fab") = "nope"\n\nput never x\n\nget foo2\n\n'), 'txn');
    assert.equal(r2, `${prompts}FAILURE\n\nfoo2\ny\n`);
    const j = parseBigJson(ok(await run(['get', 'foo2', '-w', 'json']), 'get'));
    assert.equal(j.header.revision, 5);
    assert.equal(j.kvs[0].mod_revision, 5);
  });

  it('compact 5', async () => {
    assert.equal(ok(await run(['compact', '5']), 'compact'), 'compacted revision 5\n');
    const r = await run(['get', 'foo2', '--rev=4']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Error: etcdserver: mvcc: required revision has been compacted\n$/);
    assert.equal(ok(await run(['get', 'foo2', '--rev=5', '--print-value-only']), 'get'), 'y\n');
  });

  it('endpoint status -w table', async () => {
    const out = ok(await run(['endpoint', 'status', '-w', 'table']), 'endpoint status');
    const lines = out.trimEnd().split('\n');
    assert.equal(lines.length, 5, out);
    const cols = (l: string) => l.split('|').slice(1, -1).map((x) => x.trim());
    assert.deepEqual(cols(lines[1]), ['ENDPOINT', 'ID', 'VERSION', 'DB SIZE', 'IS LEADER', 'IS LEARNER',
      'RAFT TERM', 'RAFT INDEX', 'RAFT APPLIED INDEX', 'ERRORS']);
    const [ep, id, version, dbSize, leader, learner, term, index, applied, errors] = cols(lines[3]);
    assert.equal(ep, t!.endpoint);
    assert.match(id, /^[0-9a-f]{1,16}$/);
    assert.match(version, /^3\.\d+\.\d+/);
    assert.match(dbSize, /^\d+(\.\d+)? (B|kB|MB|GB)$/);
    assert.equal(leader, 'true');
    assert.equal(learner, 'false');
    assert.ok(Number(term) >= 1, out);
    assert.ok(Number(index) >= 5 && Number(applied) <= Number(index), out);
    assert.equal(errors, '');
    const memberId = parseBigJson(ok(await run(['endpoint', 'status', '-w', 'json']), 'status'))[0].Status.header.member_id;
    assert.equal(BigInt(memberId).toString(16), id, 'table ID is the hex member_id');
  });

  it('endpoint health', async () => {
    const r = await run(['endpoint', 'health']);
    assert.equal(r.code, 0, r.stderr);
    // etcdctl 3.4 prints the health line on stderr.
    assert.match(r.stdout + r.stderr, new RegExp(`^${t!.endpoint.replace(/\./g, '\\.')} is healthy: successfully committed proposal: took = \\S+\\n$`));
  });

  it('member list', async () => {
    const out = ok(await run(['member', 'list']), 'member list');
    const m = /^([0-9a-f]+), started, default, (\S+), (\S+), false\n$/.exec(out);
    assert.ok(m, out);
    assert.equal(m[2], t!.peerUrl);
    assert.equal(m[3], t!.clientUrl);
  });

  it('restart on the same data dir keeps the data; SIGTERM exits 0', async () => {
    await t!.restart();
    assert.equal(ok(await run(['get', 'foo2', '--print-value-only']), 'get after restart'), 'y\n');
    const code = await t!.stop('SIGTERM');
    const stderr = t!.stderr().slice(-2000);
    await t!.restart();
    // etcd-ts exits 0. Real etcd 3.4 re-raises SIGTERM after its cleanup, so it dies by the signal.
    assert.equal(code, kind === 'etcd-ts' ? 0 : null, stderr);
  });

  describe('-w json compared with real etcd after the same session', function () {
    before(async function () {
      const r = (args: string[], input?: string) => etcdctl(ref!.endpoint, args, { input });
      for (const a of [['put', 'foo', 'bar'], ['put', 'fab', 'x'], ['del', 'foo']]) ok(await r(a), a.join(' '));
      ok(await r(['txn', '-i'], txnInput), 'txn');
      ok(await r(['compact', '5']), 'compact');
    });

    it('endpoint status -w json', async () => {
      const [js, jr] = await Promise.all([t!, ref!].map(async (s) =>
        parseBigJson(ok(await etcdctl(s.endpoint, ['endpoint', 'status', '-w', 'json']), 'status'))));
      compareStatus(js, jr, t!, ref!);
    });

    it('member list -w json', async () => {
      const [js, jr] = await Promise.all([t!, ref!].map(async (s) =>
        parseBigJson(ok(await etcdctl(s.endpoint, ['member', 'list', '-w', 'json']), 'member list'))));
      const norm = (j: EtcdctlJson) => ({
        keys: Object.keys(j),
        header: Object.keys(j.header),
        members: j.members.map((m: EtcdctlJson) => ({
          ...m, ID: typeof m.ID, peerURLs: m.peerURLs.map(port), clientURLs: m.clientURLs.map(port),
        })),
      });
      assert.deepEqual(norm(js), norm(jr), `target: ${JSON.stringify(js)}\netcd: ${JSON.stringify(jr)}`);
      assert.equal(js.members[0].ID, js.header.member_id, 'the only member is the one answering');
      assert.deepEqual(js.members[0].clientURLs, [t!.clientUrl]);
    });
  });
});

describe('member and cluster IDs are derived like etcd\'s', function () {
  this.timeout(60_000);
  let e: Server | undefined;
  let t: Server | undefined;
  cleanupServersAfter(() => [e, t]);

  // etcd hashes the member ID from peer URLs and the cluster token, and the cluster ID from the
  // member IDs, so the same flags on the same ports must give the same IDs. One server at a time.
  it('same name, token and ports => same member_id and cluster_id', async () => {
    const ids = async (s: Server) => {
      const j = parseBigJson(ok(await etcdctl(s.endpoint, ['member', 'list', '-w', 'json']), 'member list'));
      return { cluster: j.header.cluster_id, member: j.header.member_id, listed: j.members.map((m: EtcdctlJson) => m.ID) };
    };
    e = await startEtcd();
    const want = await ids(e);
    await e.stop();
    t = await startKind(targetKind(), { clientPort: Number(e.endpoint.split(':')[1]), peerPort: Number(e.peerUrl.split(':')[2]) });
    assert.deepEqual(await ids(t), want);
  });
});

/**
 * Equal: the fields present (at every level), header.revision (same writes => same revision),
 * Endpoint (modulo port). Consistent rather than equal, with the reason:
 * - cluster_id, member_id, leader: hashes of URLs, token and start time; leader == member_id.
 * - raft_term, raftTerm: the election count of this process's life; equal to each other, >= 1.
 * - raftIndex, raftAppliedIndex: count every Raft entry, including internal ones (conf change,
 *   cluster-version and member-attribute publishes) whose number is an implementation choice;
 *   applied <= index, and index >= the number of writes.
 * - dbSize, dbSizeInUse: bytes of bbolt vs LMDB files; > 0 and inUse <= size.
 * - version: the server's own version string; clients gate features on it, so major must be 3.
 */
function compareStatus(js: EtcdctlJson, jr: EtcdctlJson, t: Server, ref: Server): void {
  const msg = `target: ${JSON.stringify(js)}\netcd: ${JSON.stringify(jr)}`;
  assert.equal(js.length, 1, msg);
  const shape = (x: EtcdctlJson) => ({ top: Object.keys(x[0]).sort(), status: Object.keys(x[0].Status).sort(),
    header: Object.keys(x[0].Status.header).sort() });
  assert.deepEqual(shape(js), shape(jr), msg);
  assert.equal(js[0].Endpoint, t.endpoint);
  assert.equal(jr[0].Endpoint, ref.endpoint);
  const s = js[0].Status;
  const r = jr[0].Status;
  assert.equal(s.header.revision, r.header.revision, msg);
  assert.equal(s.leader, s.header.member_id, msg);
  assert.equal(s.raftTerm, s.header.raft_term, msg);
  assert.ok(Number(s.raftTerm) >= 1, msg);
  assert.ok(s.raftIndex >= 5 && s.raftAppliedIndex <= s.raftIndex, msg);
  assert.ok(s.dbSize > 0 && (s.dbSizeInUse ?? 0) <= s.dbSize, msg);
  assert.match(s.version, /^3\.\d+\.\d+/, msg);
  assert.equal(s.errors, r.errors, msg);
  assert.equal(s.isLearner, r.isLearner, msg);
}
