// The corruption checks' decisions (src/main/member/corrupt.ts, etcd 3.4's corrupt.go) with fake peers:
// which answers raise the CORRUPT alarm on the leader (a follower's different hash at the same compact
// revision, a follower ahead of the leader) and which do not (equal hashes, another compact revision,
// peers that fail); the initial check's refusal; and the JSON a peer answers (etcd's /members/hashkv).
import { strict as assert } from 'node:assert';
import { etcdserverpb } from '../../src/shared/gen/etcd';
import { RequestKind } from '../../src/shared/entry';
import { Logger } from '../../src/main/log';
import { CorruptChecker, HashByRev, PEER_HASHKV } from '../../src/main/member/corrupt';
import { StartupError } from '../../src/main/startup_error';

const local: HashByRev = { hash: 111, revision: 10, compactRevision: 4 };

function checker(peers: Array<HashByRev | Error>): { c: CorruptChecker; proposed: Uint8Array[]; lines: string[]; asked: unknown[] } {
  const proposed: Uint8Array[] = [];
  const lines: string[] = [];
  const asked: unknown[] = [];
  const c = new CorruptChecker({
    selfId: 1n,
    log: new Logger('debug', {}, (l) => lines.push(l)),
    members: () => [{ id: 1n, peerURLs: ['http://a'] }, ...peers.map((_, i) => ({ id: BigInt(i + 2), peerURLs: [`http://p${i}`] }))],
    request: async (to, kind, body) => {
      assert.equal(kind, PEER_HASHKV);
      asked.push(JSON.parse(Buffer.from(body).toString()));
      const p = peers[Number(to) - 2];
      if (p instanceof Error) throw p;
      return new CorruptChecker({ ...fakeDeps(), hashByRev: async () => p }).serve(body);
    },
    hashByRev: async () => local,
    node: {
      isLeader: true,
      readBarrier: async () => undefined,
      propose: async (kind: RequestKind, data: Uint8Array) => {
        assert.equal(kind, RequestKind.Alarm);
        proposed.push(data);
        return new Uint8Array(0);
      },
    },
  });
  return { c, proposed, lines, asked };
}

function fakeDeps() {
  return {
    selfId: 9n,
    log: new Logger('error'),
    members: () => [],
    request: async () => new Uint8Array(0),
    hashByRev: async () => local,
    node: { isLeader: false, readBarrier: async () => undefined, propose: async () => new Uint8Array(0) },
  };
}

describe('corruption checks (corrupt.ts)', () => {
  it("a peer answers etcd's HashKV JSON, zeros left out as Go's omitempty", async () => {
    const c = new CorruptChecker({
      ...fakeDeps(),
      hashByRev: async (rev) => ({ hash: 4213230439, revision: rev || 3, compactRevision: 2 }),
    });
    assert.equal(
      Buffer.from(await c.serve(Buffer.from('{"revision":0}'))).toString(),
      '{"header":{"revision":3},"hash":4213230439,"compact_revision":2}',
    );
    const z = new CorruptChecker({ ...fakeDeps(), hashByRev: async () => ({ hash: 5, revision: 1, compactRevision: 0 }) });
    assert.equal(Buffer.from(await z.serve(Buffer.from('{}'))).toString(), '{"header":{"revision":1},"hash":5}');
  });

  it('equal hashes, another compact revision and failing peers raise nothing', async () => {
    const { c, proposed, asked } = checker([
      { ...local },
      { hash: 999, revision: 10, compactRevision: 2 },
      new Error('etcdserver: mvcc: required revision is a future revision'),
    ]);
    await c.checkHashKV();
    assert.equal(proposed.length, 0);
    assert.deepEqual(asked, [{ revision: 10 }, { revision: 10 }, { revision: 10 }]);
  });

  it("a follower's other hash at the same compact revision raises CORRUPT once, memberID 0, both hashes logged", async () => {
    const { c, proposed, lines } = checker([
      { ...local, hash: 222 },
      { ...local, hash: 333 },
    ]);
    await c.checkHashKV();
    assert.equal(proposed.length, 1);
    const a = etcdserverpb.AlarmRequest.decode(proposed[0]);
    assert.deepEqual(
      [Number(a.memberID), a.action, a.alarm],
      [0, etcdserverpb.AlarmRequest.AlarmAction.ACTIVATE, etcdserverpb.AlarmType.CORRUPT],
    );
    const warn = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'same compact revision then hashes must match');
    assert.deepEqual(
      warn.map((l) => [l['leader-hash'], l['follower-hash'], l['follower-peer-id']]),
      [
        [111, 222, '2'],
        [111, 333, '3'],
      ],
    );
  });

  it('a follower ahead of the leader (revision or compact revision) raises CORRUPT', async () => {
    for (const p of [
      { ...local, revision: 11 },
      { ...local, compactRevision: 5, hash: 111 },
    ]) {
      const { c, proposed } = checker([p]);
      await c.checkHashKV();
      assert.equal(proposed.length, 1, JSON.stringify(p));
    }
  });

  it('the initial check refuses a different hash at the same compact revision only', async () => {
    await checker([{ ...local }, { ...local, compactRevision: 2, hash: 7 }, new Error('timed out')]).c.initialCheck();
    await assert.rejects(
      checker([{ ...local }, { ...local, hash: 7 }]).c.initialCheck(),
      (e: Error) => e instanceof StartupError && e.message === '1 found data inconsistency with peers',
    );
  });
});
