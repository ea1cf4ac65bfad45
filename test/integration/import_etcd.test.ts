// etcd-ts started on an etcd 3.4 data dir (docs/MIGRATION.md, src/main/member/etcd_import.ts) serves
// what etcd served before it stopped. Real etcd runs a workload (puts, overwrites, deletes, a txn, a long
// key, a compaction, leases with keys, a revoked lease, users and roles, auth enabled at the end); its
// answers are captured with etcdctl, then etcd stops and etcd-ts starts on a copy of its data dir on the
// same ports. The captures are compared as etcdctl printed them (only the Raft term is left out: a
// restart's election raises it, as etcd's own restart does; it is checked to be etcd's + 1):
//   - every key with create/mod revision, version, lease, value; the store revision
//   - a read at a compacted revision (the same error), a read at an older revision after it
//   - HashKV now and at that older revision (etcd's hash over every kept revision, tombstones included,
//     and the compaction revision: the imported history is etcd's)
//   - cluster ID and member ID (exact, as text), the member list
//   - leases: IDs, granted TTL, attached keys (remaining TTL: counted down, only bounded)
//   - users, roles, their permissions; an unauthenticated read refused the same way
// Cases: a NOSPACE alarm (listed, and a put refused the same); etcd stopped cleanly; etcd killed (-9) with its backend commit held back, so the last writes
// are only in its WAL (the import must apply them: the log line's wal-entries-to-apply is checked);
// `etcdctl snapshot save` + `snapshot restore` (compared with real etcd started on the restored dir);
// an import killed mid-way (after the keys, after our WAL, after the store switch) then restarted.
// etcd's files (member/snap, member/wal) are hashed before and after: byte-identical, none removed; and
// real etcd still starts on the data dir etcd-ts used and serves what it served before. Refused, with
// one start-up line and nothing written: a data dir etcd still runs on, a database with both meta
// pages damaged, a WAL with a flipped byte.
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { etcdctl, EtcdctlResult, fillUntilRefused } from '../support/etcdctl';
import { cleanupServersAfter, Server, startEtcd, startEtcdTs, StartOptions } from '../support/procs';

const root = ['--user', 'root:rootpw'];
const longKey = 'long/' + 'k'.repeat(3000);

async function ctl(ep: string, args: string[], input?: string): Promise<EtcdctlResult> {
  const r = await etcdctl(ep, args, { input });
  assert.equal(r.code, 0, `etcdctl ${args.join(' ')}: ${r.stderr}`);
  return r;
}

/** The workload before auth is enabled (no credentials needed). */
async function writeKv(ep: string): Promise<void> {
  for (let i = 0; i < 30; i++) await ctl(ep, ['put', `k/${i % 12}`, `v${i}`]);
  await ctl(ep, ['del', 'k/3']);
  await ctl(ep, ['del', 'k/1', 'k/2']);
  await ctl(ep, ['put', longKey, 'long value']);
  await ctl(ep, ['txn'], 'value("k/4") = "v28"\n\nput k/t1 a\nput k/t2 b\ndel k/5\n\nput k/else x\n\n');
  const grant = async (ttl: number): Promise<string> => (await ctl(ep, ['lease', 'grant', String(ttl)])).stdout.split(' ')[1];
  const l1 = await grant(900);
  const l2 = await grant(1200);
  const l3 = await grant(600);
  await ctl(ep, ['put', 'lease/a', 'x', `--lease=${l1}`]);
  await ctl(ep, ['put', 'lease/b', 'y', `--lease=${l1}`]);
  await ctl(ep, ['put', 'lease/c', 'z', `--lease=${l2}`]);
  await ctl(ep, ['put', 'lease/c', 'z2', `--lease=${l1}`]); // moves to l1
  await ctl(ep, ['put', 'lease/gone', 'g', `--lease=${l3}`]);
  await ctl(ep, ['lease', 'revoke', l3]);
  const status = await ctl(ep, ['endpoint', 'status', '-w', 'json']);
  const rev = Number(/"revision":(\d+)/.exec(status.stdout)![1]);
  await ctl(ep, ['compaction', String(rev - 8)]);
  await ctl(ep, ['put', 'k/after-compaction', '1']);
  await ctl(ep, ['del', 'k/0']);
}

async function writeAuth(ep: string): Promise<void> {
  await ctl(ep, ['user', 'add', 'root', '--new-user-password=rootpw']);
  await ctl(ep, ['role', 'add', 'reader']);
  await ctl(ep, ['role', 'grant-permission', 'reader', 'read', 'k/', '--prefix=true']);
  await ctl(ep, ['role', 'grant-permission', 'reader', 'readwrite', 'lease/a']);
  await ctl(ep, ['user', 'add', 'alice', '--new-user-password=alicepw']);
  await ctl(ep, ['user', 'grant-role', 'alice', 'reader']);
  await ctl(ep, ['auth', 'enable']);
}

/** What a server answers, as etcdctl prints it. */
async function observe(ep: string): Promise<{ text: Record<string, string>; term: number; leaseTtls: number[] }> {
  const text: Record<string, string> = {};
  const run = async (name: string, args: string[]): Promise<string> => {
    const r = await etcdctl(ep, args);
    text[name] = `${r.code}\n${r.stdout}\n${r.stderr.replace(/^\{"level".*\n/gm, '')}`;
    return r.stdout;
  };
  const all = await run('get all', [...root, 'get', '', '--prefix', '-w', 'json']);
  const term = Number(/"raft_term":(\d+)/.exec(all)![1]);
  text['get all'] = text['get all'].replace(/"raft_term":\d+/, '');
  await run('get keys', [...root, 'get', '', '--prefix']);
  await run('get compacted', [...root, 'get', 'k/4', '--rev=2']);
  // A revision between the compaction (8 before the revision then) and now (2 writes later, or more).
  const old = Number(/"revision":(\d+)/.exec(all)![1]) - 6;
  await run('get old', [...root, 'get', 'k/', '--prefix', `--rev=${old}`]);
  const status = await run('status', [...root, 'endpoint', 'status', '-w', 'json']);
  text.status = (/"cluster_id":\d+,"member_id":\d+,"revision":\d+/.exec(status) ?? [''])[0];
  await run('member list', [...root, 'member', 'list']);
  // etcd's HashKV covers every revision kept (tombstones too) and the compaction revision.
  await run('hashkv', [...root, 'endpoint', 'hashkv']);
  await run('hashkv at a revision', [...root, 'endpoint', 'hashkv', `--rev=${old}`]);
  await run('alice reads', ['--user', 'alice:alicepw', 'get', 'k/', '--prefix']);
  await run('alice refused', ['--user', 'alice:alicepw', 'put', 'k/x', '1']);
  await run('anonymous refused', ['get', 'k/4']);
  await run('users', [...root, 'user', 'list']);
  await run('user alice', [...root, 'user', 'get', 'alice', '--detail']);
  await run('roles', [...root, 'role', 'list']);
  await run('role reader', [...root, 'role', 'get', 'reader']);
  await run('auth status', [...root, 'auth', 'status']);
  const leases = await run('lease list', [...root, 'lease', 'list']);
  const leaseTtls: number[] = [];
  for (const id of leases
    .split('\n')
    .slice(1)
    .filter((l) => l !== '')) {
    const out = await run(`lease ${id}`, [...root, 'lease', 'timetolive', id, '--keys', '-w', 'json']);
    leaseTtls.push(Number(/"ttl":(\d+)/.exec(out)![1]));
    // etcd lists a lease's keys in Go map order (random): sorted here.
    text[`lease ${id}`] = text[`lease ${id}`]
      .replace(/"ttl":\d+/, '')
      .replace(/"raft_term":\d+/, '')
      .replace(/"keys":\[([^\]]*)\]/, (_m, ks: string) => `"keys":[${ks.split(',').sort().join(',')}]`);
  }
  return { text, term, leaseTtls };
}

/** sha256 of every file under dir (relative path -> hash). */
function hashTree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(path.relative(dir, p), createHash('sha256').update(fs.readFileSync(p)).digest('hex'));
    }
  };
  walk(dir);
  return out;
}

/** etcd's own files in a data dir: member/snap and member/wal. */
function etcdFiles(dataDir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const sub of ['snap', 'wal']) for (const [k, v] of hashTree(path.join(dataDir, 'member', sub))) out.set(`${sub}/${k}`, v);
  return out;
}

function importLine(stderr: string): Record<string, unknown> {
  const line = stderr.split('\n').find((l) => l.includes('"imported the etcd data dir"'));
  assert.ok(line !== undefined, `no import log line in:\n${stderr}`);
  return JSON.parse(line) as Record<string, unknown>;
}

/** etcdTerm: the term the imported member should campaign from (it is elected in the next one). */
function assertSame(ts: Awaited<ReturnType<typeof observe>>, etcd: Awaited<ReturnType<typeof observe>>, etcdTerm: number): void {
  for (const k of Object.keys(etcd.text)) assert.equal(ts.text[k], etcd.text[k], `${k} differs`);
  assert.deepEqual(Object.keys(ts.text).sort(), Object.keys(etcd.text).sort());
  assert.equal(ts.term, etcdTerm + 1, 'term: one election after etcd');
  for (const t of ts.leaseTtls) assert.ok(t > 0 && t <= 1200, `lease remaining TTL ${t}`);
}

describe('import of an etcd 3.4 data dir', function () {
  this.timeout(300_000);
  const servers: Array<Server | undefined> = [];
  cleanupServersAfter(() => servers);
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });
  const tmpDir = (tag: string): string => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), `import-${tag}-`));
    dirs.push(d);
    return d;
  };
  const portsOf = (s: Server): Pick<StartOptions, 'clientPort' | 'peerPort'> => ({
    clientPort: Number(s.endpoint.split(':')[1]),
    peerPort: Number(new URL(s.peerUrl).port),
  });
  /** etcd-ts on a copy of dataDir, on the ports etcd used. */
  const startOnCopy = async (
    dataDir: string,
    ports: Pick<StartOptions, 'clientPort' | 'peerPort'>,
    tag: string,
    readyProbe: StartOptions['readyProbe'] = 'http-only',
  ): Promise<Server> => {
    const copy = path.join(tmpDir(tag), 'data');
    fs.cpSync(dataDir, copy, { recursive: true });
    const s = await startEtcdTs({ dataDir: copy, ...ports, logLevel: 'info', readyProbe });
    servers.push(s);
    return s;
  };

  let stopped:
    { dataDir: string; ports: Pick<StartOptions, 'clientPort' | 'peerPort'>; seen: Awaited<ReturnType<typeof observe>> } | undefined;

  it('etcd stopped cleanly: every key, revision, lease, user, role and ID; etcd files untouched', async () => {
    // Snapshots every 10 entries: etcd's WAL holds snapshot records and entries after the last one.
    const etcd = await startEtcd({ readyProbe: 'etcdctl', extraArgs: ['--snapshot-count=10'] });
    servers.push(etcd);
    await writeKv(etcd.endpoint);
    await writeAuth(etcd.endpoint);
    const seen = await observe(etcd.endpoint);
    assert.match(seen.text['get compacted'], /required revision has been compacted/);
    assert.match(seen.text['anonymous refused'], /user name is empty/);
    await etcd.stop('SIGTERM');
    const ports = portsOf(etcd);
    stopped = { dataDir: etcd.dataDir, ports, seen };

    const before = etcdFiles(etcd.dataDir);
    const ts = await startOnCopy(etcd.dataDir, ports, 'clean');
    assertSame(await observe(ts.endpoint), seen, seen.term);
    const line = importLine(ts.stderr());
    assert.equal(line['auth-enabled'], true);
    assert.ok((line['etcd-snapshot-index'] as number) > 0, 'etcd took snapshots');
    assert.ok(fs.readdirSync(path.join(etcd.dataDir, 'member', 'snap')).some((n) => n.endsWith('.snap')));
    await ts.stop('SIGTERM');
    assert.deepEqual(etcdFiles(ts.dataDir), before, "etcd's files changed");
    assert.deepEqual(etcdFiles(etcd.dataDir), before);
    // A second start is a plain restart: no import, the same answers.
    await ts.restart();
    assert.ok(!ts.stderr().includes('"importing an etcd data dir"'));
    const again = await observe(ts.endpoint);
    for (const k of Object.keys(seen.text)) assert.equal(again.text[k], seen.text[k], `after restart: ${k}`);
    await ts.stop('SIGTERM');
    // etcd itself still starts on the data dir etcd-ts used (its files as it left them, ours beside).
    const back = await startEtcd({ dataDir: ts.dataDir, ...ports, readyProbe: 'http-only' });
    servers.push(back);
    assertSame(await observe(back.endpoint), seen, seen.term);
  });

  it('etcd killed with writes only in its WAL: they are applied', async () => {
    // The backend commits only when forced (auth changes, compaction): the last puts stay in the WAL.
    const etcd = await startEtcd({ readyProbe: 'etcdctl', extraArgs: ['--backend-batch-interval=10m', '--backend-batch-limit=1000000'] });
    servers.push(etcd);
    await writeKv(etcd.endpoint);
    await writeAuth(etcd.endpoint);
    for (let i = 0; i < 10; i++) await ctl(etcd.endpoint, [...root, 'put', `k/wal-only/${i}`, `w${i}`]);
    await ctl(etcd.endpoint, [...root, 'del', 'k/7']);
    const seen = await observe(etcd.endpoint);
    await etcd.kill9();
    const before = etcdFiles(etcd.dataDir);
    const ts = await startOnCopy(etcd.dataDir, portsOf(etcd), 'kill9');
    const line = importLine(ts.stderr());
    assert.ok((line['wal-entries-to-apply'] as number) >= 11, `wal-entries-to-apply: ${String(line['wal-entries-to-apply'])}`);
    assertSame(await observe(ts.endpoint), seen, seen.term);
    await ts.stop('SIGTERM');
    assert.deepEqual(etcdFiles(ts.dataDir), before, "etcd's files changed");
  });

  it('etcdctl snapshot save, snapshot restore, then etcd-ts: what etcd serves from the restored dir', async () => {
    const etcd = await startEtcd({ readyProbe: 'etcdctl' });
    servers.push(etcd);
    await writeKv(etcd.endpoint);
    await writeAuth(etcd.endpoint);
    const file = path.join(tmpDir('snapfile'), 'snap.db');
    await ctl(etcd.endpoint, [...root, 'snapshot', 'save', file]);
    await etcd.stop('SIGTERM');
    const ports = portsOf(etcd);
    const restored = path.join(tmpDir('restored'), 'data');
    const peer = `http://127.0.0.1:${ports.peerPort}`;
    await ctl(etcd.endpoint, [
      'snapshot',
      'restore',
      file,
      '--data-dir',
      restored,
      '--name',
      'default',
      '--initial-cluster',
      `default=${peer}`,
      '--initial-advertise-peer-urls',
      peer,
    ]);
    const before = etcdFiles(restored);
    // Real etcd on a copy of the restored dir: what etcd-ts must serve.
    const etcdCopy = path.join(tmpDir('restored-etcd'), 'data');
    fs.cpSync(restored, etcdCopy, { recursive: true });
    const etcd2 = await startEtcd({ dataDir: etcdCopy, ...ports, readyProbe: 'http-only' });
    servers.push(etcd2);
    const seen = await observe(etcd2.endpoint);
    await etcd2.stop('SIGTERM');
    const ts = await startOnCopy(restored, ports, 'restored-ts');
    // Both started on the restored dir (term 1) and were elected in term 2.
    assertSame(await observe(ts.endpoint), seen, seen.term - 1);
    await ts.stop('SIGTERM');
    assert.deepEqual(etcdFiles(restored), before, "etcd's files changed");
  });

  it('refuses, in one line, a data dir etcd still runs on, a damaged database and a damaged WAL', async () => {
    assert.ok(stopped !== undefined, 'needs the first case');
    await Promise.all(servers.map((s) => s?.stop('SIGTERM')));
    const refused = async (dataDir: string, why: RegExp): Promise<void> => {
      await assert.rejects(startEtcdTs({ dataDir, readyProbe: 'http-only' }), (e: Error) => {
        const fatal = e.message.split('\n').filter((l) => l.includes('"level":"fatal"'));
        assert.equal(fatal.length, 1, e.message);
        assert.match(fatal[0], why);
        assert.ok(!fatal[0].includes('    at '), 'no stack');
        return true;
      });
      assert.ok(!fs.existsSync(path.join(dataDir, 'member', 'identity.json')));
    };
    // etcd running on it: nothing is added to member/ (etcd's own files change: it is running), and
    // etcd keeps serving.
    const etcd = await startEtcd({ readyProbe: 'etcdctl' });
    servers.push(etcd);
    await refused(etcd.dataDir, /is locked: etcd is still running on it; stop it first/);
    assert.deepEqual(fs.readdirSync(path.join(etcd.dataDir, 'member')).sort(), ['snap', 'wal']);
    await ctl(etcd.endpoint, ['put', 'still', 'serving']);
    await etcd.stop('SIGTERM');
    // Both meta pages of the database damaged.
    const badDb = path.join(tmpDir('bad-db'), 'data');
    fs.cpSync(stopped.dataDir, badDb, { recursive: true });
    const db = path.join(badDb, 'member', 'snap', 'db');
    const b = fs.readFileSync(db);
    b[16 + 20] ^= 0xff;
    b[b.readUInt32LE(16 + 8) + 16 + 20] ^= 0xff;
    fs.writeFileSync(db, b);
    await refused(badDb, /not a valid bbolt database: both meta pages are invalid/);
    // A byte of an early WAL record flipped (not the last record: that could be a torn write).
    const badWal = path.join(tmpDir('bad-wal'), 'data');
    fs.cpSync(stopped.dataDir, badWal, { recursive: true });
    const walDir = path.join(badWal, 'member', 'wal');
    const wal = path.join(
      walDir,
      fs
        .readdirSync(walDir)
        .filter((n) => n.endsWith('.wal'))
        .sort()[0],
    );
    const w = fs.readFileSync(wal);
    w[200] ^= 0x01;
    fs.writeFileSync(wal, w);
    await refused(badWal, /etcd data dir: .*\.wal.*(crc|undecodable|frame)/);
  });

  it('a NOSPACE alarm etcd raised: listed and enforced the same', async () => {
    const etcd = await startEtcd({ readyProbe: 'etcdctl', extraArgs: ['--quota-backend-bytes', String(2 * 1024 * 1024)] });
    servers.push(etcd);
    assert.match(await fillUntilRefused(etcd), /database space exceeded/);
    const lastLine = (r: EtcdctlResult): string => `${r.code} ${r.stdout} ${r.stderr.trim().split('\n').slice(-1)[0]}`;
    const alarms = await etcdctl(etcd.endpoint, ['alarm', 'list']);
    assert.match(alarms.stdout, /alarm:NOSPACE/);
    const put = lastLine(await etcdctl(etcd.endpoint, ['put', 'k', 'v']));
    await etcd.stop('SIGTERM');
    // /health is false while an alarm is active (etcd's too): ready when etcdctl's health read works.
    const ts = await startOnCopy(etcd.dataDir, portsOf(etcd), 'alarm', 'etcdctl');
    assert.equal(importLine(ts.stderr()).alarms, 1);
    assert.equal((await etcdctl(ts.endpoint, ['alarm', 'list'])).stdout, alarms.stdout);
    assert.equal(lastLine(await etcdctl(ts.endpoint, ['put', 'k', 'v'])), put);
    await ts.stop('SIGTERM');
  });

  for (const [what, env] of [
    ['after the keys are written', { ETCD_TS_IMPORT_KILL_AT_RECORDS: '1' }],
    ['after our WAL is written', { ETCD_TS_IMPORT_KILL_AT_STEP: 'wal' }],
    ['after the store switch, before identity.json', { ETCD_TS_IMPORT_KILL_AT_STEP: 'store' }],
  ] as const) {
    it(`an import killed ${what}: the next start imports again, with the same result`, async () => {
      assert.ok(stopped !== undefined, 'needs the first case');
      // Nothing else may answer on these ports (a failed case's server would look ready).
      await Promise.all(servers.map((s) => s?.stop('SIGTERM')));
      const copy = path.join(tmpDir('killed'), 'data');
      fs.cpSync(stopped.dataDir, copy, { recursive: true });
      const before = etcdFiles(copy);
      await assert.rejects(
        startEtcdTs({ dataDir: copy, ...stopped.ports, logLevel: 'info', readyProbe: 'http-only', env: { ...env } }),
        /signal SIGKILL/,
      );
      assert.ok(!fs.existsSync(path.join(copy, 'member', 'identity.json')));
      const ts = await startEtcdTs({ dataDir: copy, ...stopped.ports, logLevel: 'info', readyProbe: 'http-only' });
      servers.push(ts);
      importLine(ts.stderr());
      assertSame(await observe(ts.endpoint), stopped.seen, stopped.seen.term);
      await ts.stop('SIGTERM');
      assert.deepEqual(etcdFiles(copy), before, "etcd's files changed");
    });
  }
});
