// Maintenance.Snapshot in etcd's own file format, judged by etcd's tools. The same workload runs on
// etcd-ts and on etcd 3.4: 1500 keys (so the key bucket has branch pages), overwrites, deletes (a range
// delete: tombstones sharing a main revision), a value past a page (overflow pages), a key too long for
// LMDB (etcd-ts's long-key tables), two leases with fixed IDs and keys attached, a physical compaction,
// a user and a role (and, in the second case, root and auth enabled). Then `etcdctl snapshot save`:
//   - `etcdctl snapshot status` of etcd-ts's file gives its revision, and the same revision and key
//     count as etcd's own snapshot of the same workload;
//   - bench/go/boltdump (bbolt's tx.Check and etcd's own mvccpb/leasepb types) finds the key and lease
//     buckets record for record equal to etcd's (when the tool is built: CI builds it);
//   - `etcdctl snapshot restore`, and real etcd started on the restored dir serves the same keys with
//     the same create/mod revisions, versions and leases, the same history after the compaction, the
//     same "required revision has been compacted" below it, the same HashKV, the same leases with their
//     keys, and the same users and roles (with auth enabled: root's password works, a non-root user's
//     snapshot is refused as etcd refuses it).
//
//   npm run build && npx mocha --no-config --exit --timeout 300000 dist/test/integration/snapshot_etcd.test.js
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { etcdserverpb } from '../../src/shared/gen/etcd';
import { etcdctl, etcdctlJson, EtcdctlJson } from '../support/etcdctl';
import { RawGrpc } from '../support/grpc_raw';
import { cleanupServersAfter, freePort, Server, startEtcd, startEtcdTs } from '../support/procs';

const boltdump = path.join(__dirname, '../../../bench/go/bin/boltdump');
const leaseA = 0x1234;
const leaseB = 0x5678;
const longKey = 'L'.repeat(3000);

function ok(r: { code: number | null; stdout: string; stderr: string }, what: string): string {
  assert.equal(r.code, 0, `${what}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

async function unary(c: RawGrpc, method: string, body: Uint8Array): Promise<Buffer | null> {
  const r = await c.unary(method, body);
  assert.equal(r.status, 0, `${method}: ${r.message}`);
  return r.body;
}

/** The workload; returns the compaction revision. `auth` adds root and enables authentication. */
async function workload(s: Server, auth: boolean): Promise<number> {
  const c = new RawGrpc(s.endpoint);
  try {
    const put = (key: string, value: string | Buffer, lease = 0): Promise<Buffer | null> =>
      unary(
        c,
        '/etcdserverpb.KV/Put',
        etcdserverpb.PutRequest.encode({ key: Buffer.from(key), value: Buffer.from(value), lease }).finish(),
      );
    for (let i = 0; i < 1500; i += 50) {
      // sequential batches of 50 in parallel: revisions differ per run, so assign them in order instead
      for (let j = i; j < i + 50; j++) await put(`bulk/${String(j).padStart(4, '0')}`, `value-${j}-`.repeat(8));
    }
    await put('a', '1');
    await put('b', '2');
    await put('a', '3');
    await unary(c, '/etcdserverpb.KV/DeleteRange', etcdserverpb.DeleteRangeRequest.encode({ key: Buffer.from('b') }).finish());
    await put('big', Buffer.alloc(10_000, 0x62));
    await put(longKey, 'x');
    await put(longKey, 'y');
    for (const id of [leaseA, leaseB]) {
      await unary(c, '/etcdserverpb.Lease/LeaseGrant', etcdserverpb.LeaseGrantRequest.encode({ ID: id, TTL: 3600 }).finish());
    }
    await put('lk1', 'v', leaseA);
    await put('lk2', 'v', leaseA);
    await put('lk3', 'v', leaseB);
    const compactRev = Number(etcdserverpb.PutResponse.decode((await put('a', '4'))!).header!.revision);
    await put('a', '5');
    await put('lk1', 'w', leaseA);
    ok(await etcdctl(s.endpoint, ['compact', String(compactRev), '--physical']), 'compact');
    await unary(
      c,
      '/etcdserverpb.KV/DeleteRange',
      etcdserverpb.DeleteRangeRequest.encode({ key: Buffer.from('bulk/0000'), rangeEnd: Buffer.from('bulk/0100') }).finish(),
    );
    await put('a', '6');
    const ctl = async (...args: string[]): Promise<void> => {
      ok(await etcdctl(s.endpoint, args, { input: 'pw-alice\n' }), args.join(' '));
    };
    ok(await etcdctl(s.endpoint, ['user', 'add', 'alice:pw-alice']), 'user add');
    await ctl('role', 'add', 'r1');
    await ctl('role', 'grant-permission', 'r1', 'readwrite', 'bulk/', '--prefix');
    await ctl('user', 'grant-role', 'alice', 'r1');
    if (auth) {
      ok(await etcdctl(s.endpoint, ['user', 'add', 'root:pw-root']), 'user add root');
      await ctl('user', 'grant-role', 'root', 'root');
      await ctl('auth', 'enable');
    }
    return compactRev;
  } finally {
    c.close();
  }
}

interface Snap {
  file: string;
  status: { revision: number; totalKey: number };
}

async function save(s: Server, dir: string, name: string, user: string[]): Promise<Snap> {
  const file = path.join(dir, name);
  ok(await etcdctl(s.endpoint, [...user, 'snapshot', 'save', file]), 'snapshot save');
  const st = await etcdctlJson(s.endpoint, ['snapshot', 'status', file]);
  return { file, status: { revision: st.revision, totalKey: st.totalKey } };
}

/** boltdump -etcd lines of the key and lease buckets (KV and LEASE lines), and the meta compaction marks. */
function records(file: string): string[] {
  const out = execFileSync(boltdump, ['-etcd', file], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const meta = Buffer.from('meta').toString('hex');
  const ci = Buffer.from('consistent_index').toString('hex');
  return out
    .split('\n')
    .filter((l) => l.startsWith('KV ') || l.startsWith('LEASE ') || (l.startsWith(`K ${meta} `) && !l.startsWith(`K ${meta} ${ci}`)));
}

async function restoreAndStart(snap: Snap, dir: string, auth: boolean): Promise<Server> {
  const peerPort = await freePort();
  const peer = `http://127.0.0.1:${peerPort}`;
  const dataDir = path.join(dir, 'restored');
  const r = await etcdctl('127.0.0.1:1', [
    'snapshot',
    'restore',
    snap.file,
    '--data-dir',
    dataDir,
    '--name',
    'm1',
    '--initial-cluster',
    `m1=${peer}`,
    '--initial-advertise-peer-urls',
    peer,
  ]);
  ok(r, 'snapshot restore');
  // With auth enabled etcdctl's health check is refused ("user name is empty"): poll /health alone.
  return startEtcd({
    name: 'm1',
    dataDir,
    peerPort,
    initialCluster: `m1=${peer}`,
    logLevel: 'warn',
    readyProbe: auth ? 'http-only' : 'http',
  });
}

/** What a client sees of the store: keys with revisions, versions, values and leases; history; errors. */
async function view(s: Server, user: string[], compactRev: number): Promise<Record<string, unknown>> {
  const get = async (...args: string[]): Promise<EtcdctlJson> => {
    const j = await etcdctlJson(s.endpoint, [...user, 'get', ...args]);
    return { revision: j.header.revision, kvs: j.kvs ?? [] };
  };
  const below = await etcdctl(s.endpoint, [...user, 'get', 'a', '--rev', String(compactRev - 1)]);
  const leases: Record<string, unknown> = {};
  for (const id of [leaseA, leaseB]) {
    const t = await etcdctlJson(s.endpoint, [...user, 'lease', 'timetolive', id.toString(16), '--keys']);
    leases[id.toString(16)] = {
      granted: t['granted-ttl'],
      keys: (t.keys ?? []).map((k: string) => Buffer.from(k, 'base64').toString()).sort(),
    };
  }
  const hashkv = await etcdctlJson(s.endpoint, [...user, 'endpoint', 'hashkv']);
  const text = async (...args: string[]): Promise<string> => ok(await etcdctl(s.endpoint, [...user, ...args]), args.join(' '));
  return {
    now: await get('', '--prefix'),
    atCompact: await get('', '--prefix', '--rev', String(compactRev)),
    afterCompact: await get('', '--prefix', '--rev', String(compactRev + 2)),
    belowCompact: { code: below.code, error: below.stderr.split('\n').filter((l) => l.startsWith('Error')) },
    leaseIds: ok(await etcdctl(s.endpoint, [...user, 'lease', 'list']), 'lease list')
      .split('\n')
      .slice(1)
      .sort(),
    leases,
    hashkv: hashkv[0].HashKV.hash,
    users: await text('user', 'list'),
    roles: await text('role', 'list'),
    alice: await text('user', 'get', 'alice'),
    r1: await text('role', 'get', 'r1'),
  };
}

for (const auth of [false, true]) {
  describe(`snapshot: etcdctl snapshot save/status/restore of etcd-ts, auth ${auth ? 'enabled' : 'disabled'}`, function () {
    this.timeout(300_000);
    let ts: Server | undefined;
    let etcd: Server | undefined;
    let restored: Server | undefined;
    let dir = '';
    cleanupServersAfter(() => [ts, etcd, restored]);
    before(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'snapshot-etcd-'));
    });
    after(() => {
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it('etcd 3.4 reads, restores and serves it as it serves its own', async () => {
      ts = await startEtcdTs({ logLevel: 'warn' });
      etcd = await startEtcd({ logLevel: 'warn' });
      const [compactTs, compactEtcd] = await Promise.all([workload(ts, auth), workload(etcd, auth)]);
      assert.equal(compactTs, compactEtcd);
      const root = auth ? ['--user', 'root:pw-root'] : [];
      if (auth) {
        // etcd's authMaintenanceServer: only root may take a snapshot.
        const refused = [ts, etcd].map((s) =>
          etcdctl(s.endpoint, ['--user', 'alice:pw-alice', 'snapshot', 'save', path.join(dir, `${s.kind}-alice.db`)]),
        );
        const [rTs, rEtcd] = await Promise.all(refused);
        assert.notEqual(rTs.code, 0);
        assert.equal(
          rTs.stderr
            .split('\n')
            .filter((l) => l.startsWith('Error'))
            .join('\n'),
          rEtcd.stderr
            .split('\n')
            .filter((l) => l.startsWith('Error'))
            .join('\n'),
        );
      }
      const snapTs = await save(ts, dir, 'ts.db', root);
      const snapEtcd = await save(etcd, dir, 'etcd.db', root);
      const rev = (await etcdctlJson(ts.endpoint, [...root, 'get', 'a'])).header.revision;
      assert.equal(snapTs.status.revision, rev);
      assert.deepEqual(snapTs.status, snapEtcd.status);
      if (fs.existsSync(boltdump)) {
        assert.deepEqual(records(snapTs.file), records(snapEtcd.file));
      } else if (process.env.CI) {
        throw new Error(`${boltdump} is missing: .ci/run builds it with sh bench/go/build.sh`);
      }

      const want = await view(ts, root, compactTs);
      restored = await restoreAndStart(snapTs, dir, auth);
      const got = await view(restored, root, compactTs);
      for (const k of Object.keys(want)) assert.deepEqual(got[k], want[k], k);
      assert.equal((want.now as { kvs: unknown[] }).kvs.length, 1500 - 100 + 6);
      if (auth) {
        const anon = await etcdctl(restored.endpoint, ['get', 'a']);
        assert.notEqual(anon.code, 0);
        const alice = await etcdctl(restored.endpoint, ['--user', 'alice:pw-alice', 'get', 'bulk/0100']);
        assert.equal(ok(alice, 'alice get').split('\n')[0], 'bulk/0100');
      }
    });
  });
}
