// The audit log (docs/AUDIT.md) of a member started with --audit-log-path, in both modes, driven by
// the real etcdctl and the etcd3 client: auth changes are logged while auth is still disabled and
// other requests are not; once auth is on, every request is a line with its user, address, method,
// key, revision and code, the refused ones and the failed logins included, and JSON gateway requests
// carry the gRPC method name; in blocking mode a line is in the file when the client has its answer;
// no password and no token ever appears in the file; past --audit-log-max-size the file rotates to
// <path>.1, every file holding whole lines. /metrics has the dropped-lines counter.
//
//   npx tsc -p . && npx mocha --no-config --exit dist/test/integration/audit_log.test.js
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { Etcd3 } from 'etcd3';
import { etcdctl } from '../support/etcdctl';
import { cleanupServersAfter, freePort, Server, startEtcdTs } from '../support/procs';

interface Line {
  time: string;
  member: string;
  user: string;
  remote: string;
  method: string;
  key?: string;
  range_end?: string;
  revision?: number;
  code: string;
  code_num: number;
  target_user?: string;
  error?: string;
}

const PASSWORDS = ['rootpw-Xq1', 'agent-secret-Zr2', 'wrong-pw-Kk3', 'changed-pw-Mm4'];
/** etcd's simple token: 16 letters, a dot, the Raft index. */
const TOKEN = /[A-Za-z]{16}\.\d+/;

/** Ports from ETCD_TS_TEST_PORT_BASE when set (a shared machine's assigned range), else free ones. */
let nextPort = Number(process.env.ETCD_TS_TEST_PORT_BASE ?? 0);
async function port(): Promise<number> {
  return nextPort > 0 ? nextPort++ : freePort();
}

function readLines(file: string): Line[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Line);
}

async function waitFor<T>(what: string, f: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let b = '';
        res.on('data', (d: Buffer) => (b += d.toString()));
        res.on('end', () => resolve(b));
      })
      .on('error', reject);
  });
}

function httpPost(url: string, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      let b = '';
      res.on('data', (d: Buffer) => (b += d.toString()));
      res.on('end', () => resolve(b));
    });
    req.on('error', reject);
    req.end(body);
  });
}

for (const mode of ['batch', 'blocking'] as const) {
  describe(`audit log, ${mode} mode`, function () {
    this.timeout(120_000);
    let s: Server | undefined;
    let dir = '';
    let file = '';
    const clients: Etcd3[] = [];
    cleanupServersAfter(() => [s]);
    after(() => {
      for (const c of clients) c.close();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    const ctl = async (...args: string[]): Promise<{ code: number | null; out: string }> => {
      const r = await etcdctl(s!.endpoint, args);
      return { code: r.code, out: r.stdout + r.stderr };
    };
    const ok = async (...args: string[]): Promise<void> => {
      const r = await ctl(...args);
      assert.equal(r.code, 0, `etcdctl ${args.join(' ')}: ${r.out}`);
    };
    /** The first line matching, waiting for batch mode's flush. */
    const line = (what: string, pred: (l: Line) => boolean): Promise<Line> => waitFor(what, () => readLines(file).find(pred));

    before(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), `audit-${mode}-`));
      file = path.join(dir, 'audit.log');
      s = await startEtcdTs({
        name: 'audited',
        clientPort: await port(),
        peerPort: await port(),
        readyProbe: 'http-only',
        extraArgs: ['--audit-log-path', file, '--audit-log-mode', mode, '--audit-log-max-size', '1', '--audit-log-max-backups', '2'],
      });
    });

    it('logs auth changes while auth is disabled, and nothing else', async () => {
      await ok('put', '/config/db', 'postgres');
      await ok('user', 'add', `root:${PASSWORDS[0]}`);
      await ok('user', 'grant-role', 'root', 'root');
      await ok('user', 'add', `agent-7:${PASSWORDS[1]}`);
      await ok('role', 'add', 'agents');
      await ok('role', 'grant-permission', 'agents', '--prefix=true', 'readwrite', '/agents/');
      await ok('user', 'grant-role', 'agent-7', 'agents');
      await ok('auth', 'enable');
      const enable = await line('AuthEnable', (l) => l.method === '/etcdserverpb.Auth/AuthEnable');
      assert.equal(enable.code, 'OK');
      const methods = readLines(file).map((l) => l.method.replace('/etcdserverpb.Auth/', ''));
      assert.deepEqual(methods, ['UserAdd', 'UserGrantRole', 'UserAdd', 'RoleAdd', 'RoleGrantPermission', 'UserGrantRole', 'AuthEnable']);
      const add = readLines(file)[0];
      assert.equal(add.target_user, 'root');
      assert.equal(add.member, 'audited');
      assert.match(add.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.match(add.remote, /^127\.0\.0\.1:\d+$/);
      const grant = readLines(file)[4] as Line & { perm_type: string };
      assert.deepEqual([grant.perm_type, grant.key, grant.range_end], ['READWRITE', '/agents/', '/agents0']);
    });

    it('logs each request once auth is on: user, key, revision, code; refusals and failed logins too', async () => {
      const put = await ctl(`--user=agent-7:${PASSWORDS[1]}`, 'put', '/agents/7', 'up');
      assert.equal(put.code, 0, put.out);
      const find = (l: Line): boolean => l.method === '/etcdserverpb.KV/Put' && l.key === '/agents/7';
      if (mode === 'blocking') {
        // Answered only once written: the line is there as soon as etcdctl has its answer.
        assert.ok(readLines(file).some(find), 'blocking: the line is written before the answer');
      }
      const p = await line('Put', find);
      assert.equal(p.user, 'agent-7');
      assert.equal(p.code, 'OK');
      assert.equal(p.code_num, 0);
      assert.ok((p.revision ?? 0) > 1);

      const denied = await ctl(`--user=agent-7:${PASSWORDS[1]}`, 'get', '/config/db');
      assert.match(denied.out, /permission denied/);
      const d = await line('denied Range', (l) => l.method === '/etcdserverpb.KV/Range' && l.key === '/config/db' && l.user === 'agent-7');
      assert.deepEqual([d.code, d.code_num, d.error], ['PermissionDenied', 7, 'etcdserver: permission denied']);

      const bad = await ctl(`--user=agent-7:${PASSWORDS[2]}`, 'get', '/agents/7');
      assert.match(bad.out, /authentication failed/);
      const f = await line('failed login', (l) => l.method === '/etcdserverpb.Auth/Authenticate' && l.code !== 'OK');
      assert.deepEqual([f.target_user, f.code, f.user], ['agent-7', 'InvalidArgument', '']);

      const anon = await httpPost(`${s!.clientUrl}/v3/kv/range`, JSON.stringify({ key: Buffer.from('/agents/7').toString('base64') }));
      assert.match(anon, /user name is empty/);
      const g = await line('gateway Range', (l) => l.method === '/etcdserverpb.KV/Range' && l.user === '' && l.key === '/agents/7');
      assert.equal(g.code, 'InvalidArgument');
      assert.match(g.remote, /^127\.0\.0\.1:\d+$/);
    });

    it('logs watches with their keys, and password changes without the password', async () => {
      const c = new Etcd3({ hosts: s!.clientUrl, auth: { username: 'agent-7', password: PASSWORDS[1] }, dialTimeout: 5000 });
      clients.push(c);
      const w = await c.watch().prefix('/agents/').create();
      await w.cancel();
      const wl = await line('Watch', (l) => l.method === '/etcdserverpb.Watch/Watch' && l.key === '/agents/');
      assert.deepEqual([wl.user, wl.range_end, wl.code], ['agent-7', '/agents0', 'OK']);
      const r = await etcdctl(s!.endpoint, [`--user=root:${PASSWORDS[0]}`, 'user', 'passwd', 'agent-7', '--interactive=false'], {
        input: `${PASSWORDS[3]}\n`,
      });
      assert.equal(r.code, 0, r.stderr);
      const chg = await line('UserChangePassword', (l) => l.method === '/etcdserverpb.Auth/UserChangePassword');
      assert.deepEqual([chg.user, chg.target_user, chg.code], ['root', 'agent-7', 'OK']);
    });

    it('rotates past --audit-log-max-size into whole lines; no password or token in any file', async function () {
      if (mode === 'blocking') this.timeout(180_000);
      const c = new Etcd3({ hosts: s!.clientUrl, auth: { username: 'agent-7', password: PASSWORDS[3] }, dialTimeout: 5000 });
      clients.push(c);
      const long = 'k'.repeat(1000);
      // About 1.2 kB per line: 1000 puts pass 1 MB.
      for (let i = 0; i < 1000; i += 50) {
        await Promise.all(Array.from({ length: 50 }, (_, j) => c.put(`/agents/${long}/${i + j}`).value('v')));
      }
      await waitFor('audit.log.1', () => (fs.existsSync(`${file}.1`) ? true : undefined));
      const files = [file, `${file}.1`, `${file}.2`].filter((f) => fs.existsSync(f));
      for (const f of files) {
        const text = fs.readFileSync(f, 'utf8');
        assert.ok(text.endsWith('\n'));
        readLines(f); // every line parses
        assert.ok(fs.statSync(f).size <= 1024 * 1024, `${f} is at most --audit-log-max-size`);
        for (const pw of PASSWORDS) assert.ok(!text.includes(pw), `${f} holds a password`);
        assert.doesNotMatch(text, TOKEN, `${f} holds a token`);
      }
      const metrics = await httpGet(`${s!.clientUrl}/metrics`);
      assert.match(metrics, /^etcd_ts_audit_log_dropped_lines_total 0$/m);
    });
  });
}
