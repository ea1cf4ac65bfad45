// etcd 3.4 command lines that operators already have (issue 18): etcd-ts starts with the flags kubeadm
// writes into the etcd static pod of a Kubernetes control plane, plain and with its TLS flags
// (certificates made by test/support/certs.ts), serves etcdctl and, on --listen-metrics-urls, the
// /health that kubeadm's liveness probe reads, with no warning line. Then etcd's YAML --config-file with the flags etcd-ts honours
// that kubeadm does not use: --wal-dir (WAL segments there, none under the data dir), --log-outputs to a
// file (the log lines go there, not to stderr) and --pre-vote.
//
//   npm run build && npx mocha --no-config --exit --timeout 180000 dist/test/integration/kubeadm_flags.test.js
import { strict as assert } from 'node:assert';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { etcdctl } from '../support/etcdctl';
import { makeTestPki, removeTestPki, TestPki } from '../support/certs';
import { request } from '../support/http_client';
import { etcdTsCli, freePort } from '../support/procs';

interface Running {
  child: ChildProcess;
  stderr: () => string;
}

const children = new Set<ChildProcess>();

function start(args: string[]): Running {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('ETCD_')) delete env[k];
  const child = spawn(process.execPath, [etcdTsCli, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let err = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => {
    err += s;
  });
  return { child, stderr: () => err };
}

/** Polls `etcdctl endpoint health` until it succeeds (or the process exits). */
async function waitReady(r: Running, endpoint: string, ctl: string[]): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (r.child.exitCode !== null) assert.fail(`etcd-ts exited (${r.child.exitCode}): ${r.stderr()}`);
    const h = await etcdctl(endpoint, [...ctl, 'endpoint', 'health'], { timeoutMs: 5000 });
    if (h.code === 0) return;
    if (Date.now() > deadline) assert.fail(`not ready: ${h.stderr} ${r.stderr()}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

async function stop(r: Running): Promise<void> {
  if (r.child.exitCode !== null) return;
  const exited = new Promise((res) => r.child.once('exit', res));
  r.child.kill('SIGTERM');
  await exited;
}

function warnings(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => l.includes('"level":"warn"'))
    .map((l) => (JSON.parse(l) as { msg: string }).msg);
}

describe('etcd 3.4 command lines: kubeadm, --config-file', function () {
  this.timeout(120_000);
  let tmp = '';
  let pki: TestPki | undefined;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'etcd-ts-kubeadm-'));
  });
  after(() => {
    for (const c of children) c.kill('SIGKILL');
    removeTestPki(pki);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** kubeadm's etcd.yaml command (kubeadm/app/phases/etcd/local.go), on 127.0.0.1 and free ports. */
  async function kubeadmArgs(scheme: 'http' | 'https', dataDir: string): Promise<{ args: string[]; endpoint: string; metrics: string }> {
    const [c, p, m] = [await freePort(), await freePort(), await freePort()];
    const client = `${scheme}://127.0.0.1:${c}`;
    const peer = `${scheme}://127.0.0.1:${p}`;
    const args = [
      `--advertise-client-urls=${client}`,
      `--data-dir=${dataDir}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=node1=${peer}`,
      `--listen-client-urls=${client}`,
      `--listen-metrics-urls=http://127.0.0.1:${m}`,
      `--listen-peer-urls=${peer}`,
      '--name=node1',
      '--snapshot-count=10000',
    ];
    return { args, endpoint: client, metrics: `http://127.0.0.1:${m}` };
  }

  async function putGet(endpoint: string, ctl: string[]): Promise<void> {
    const put = await etcdctl(endpoint, [...ctl, 'put', 'k', 'v']);
    assert.equal(put.code, 0, put.stderr);
    const get = await etcdctl(endpoint, [...ctl, 'get', 'k', '--print-value-only']);
    assert.equal(get.stdout.trim(), 'v', get.stderr);
  }

  it("kubeadm's etcd flags (plain): serves clients, and /health on --listen-metrics-urls, without a warning", async () => {
    const { args, endpoint, metrics } = await kubeadmArgs('http', path.join(tmp, 'plain'));
    const r = start(args);
    try {
      await waitReady(r, endpoint, []);
      await putGet(endpoint, []);
      assert.deepEqual(warnings(r.stderr()), [], r.stderr());
      const health = await request('GET', `${metrics}/health`);
      assert.deepEqual([health.status, health.body], [200, '{"health":"true"}']);
    } finally {
      await stop(r);
    }
  });

  it("kubeadm's etcd flags with its TLS flags (client and peer certificates, client-cert-auth)", async () => {
    pki = makeTestPki();
    const peer = pki.issue('peer', 'node1');
    const { args, endpoint } = await kubeadmArgs('https', path.join(tmp, 'tls'));
    const tlsArgs = [
      `--cert-file=${pki.server.cert}`,
      '--client-cert-auth=true',
      `--key-file=${pki.server.key}`,
      `--peer-cert-file=${peer.cert}`,
      '--peer-client-cert-auth=true',
      `--peer-key-file=${peer.key}`,
      `--peer-trusted-ca-file=${pki.ca}`,
      `--trusted-ca-file=${pki.ca}`,
    ];
    const r = start([...args, ...tlsArgs]);
    const ctl = [`--cacert=${pki.ca}`, `--cert=${pki.client.cert}`, `--key=${pki.client.key}`];
    try {
      await waitReady(r, endpoint, ctl);
      await putGet(endpoint, ctl);
      const refused = await etcdctl(endpoint, [`--cacert=${pki.ca}`, '--command-timeout=3s', 'get', 'k'], { timeoutMs: 10_000 });
      assert.notEqual(refused.code, 0, 'no client certificate: refused');
      assert.deepEqual(
        warnings(r.stderr()).filter((w) => w !== 'rejected connection'),
        [],
        r.stderr(),
      );
    } finally {
      await stop(r);
    }
  });

  it('--config-file with wal-dir, log-outputs (a file) and pre-vote: honoured', async () => {
    const [c, p] = [await freePort(), await freePort()];
    const dataDir = path.join(tmp, 'conf.etcd');
    const walDir = path.join(tmp, 'separate-wal');
    const logFile = path.join(tmp, 'etcd.log');
    const yml = path.join(tmp, 'etcd.conf.yml');
    fs.writeFileSync(
      yml,
      [
        '# etcd.conf.yml as etcd 3.4 reads it',
        'name: conf',
        `data-dir: ${dataDir}`,
        `wal-dir: ${walDir}`,
        `listen-client-urls: http://127.0.0.1:${c}`,
        `advertise-client-urls: http://127.0.0.1:${c}`,
        `listen-peer-urls: http://127.0.0.1:${p}`,
        `initial-advertise-peer-urls: http://127.0.0.1:${p}`,
        `initial-cluster: conf=http://127.0.0.1:${p}`,
        "initial-cluster-state: 'new'",
        'pre-vote: true',
        'log-level: info',
        'log-outputs: [' + logFile + ']',
        '',
      ].join('\n'),
    );
    const r = start(['--config-file', yml]);
    const endpoint = `127.0.0.1:${c}`;
    try {
      await waitReady(r, endpoint, []);
      await putGet(endpoint, []);
      assert.ok(
        fs.readdirSync(walDir).some((f) => f.endsWith('.wal')),
        'WAL segments in --wal-dir',
      );
      assert.ok(!fs.existsSync(path.join(dataDir, 'member', 'wal')), 'no WAL under the data dir');
      const log = fs.readFileSync(logFile, 'utf8');
      assert.match(
        log,
        /"msg":"loaded server configuration, other configuration command line flags and environment variables will be ignored if provided"/,
      );
      assert.match(log, /"msg":"serving client traffic"/);
      assert.equal(r.stderr(), '', 'nothing on stderr: the logs go to the file');
    } finally {
      await stop(r);
    }
  });
});
