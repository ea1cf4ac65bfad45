// Start-up failures and the data-dir lock (issue 18): each failure is one line on stderr naming the path
// or address and the cause, with a non-zero exit and no stack; the data-dir lock is held by the kernel
// (src/main/datadir_lock.ts), so two processes never share a data dir, a restart right after kill -9
// works, and no file left behind can block a start.
//
//   npx tsc -p . && npx mocha --no-config --exit --timeout 120000 dist/test/integration/startup_errors.test.js
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { cleanupServersAfter, etcdTsCli, freePort, Server, startEtcdTs } from '../support/procs';
import { etcdctl } from '../support/etcdctl';

/** Runs etcd-ts expecting it to fail at start: its exit code and stderr (killed after timeoutMs). */
function runFailing(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [etcdTsCli, '--log-level', 'warn', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      stderr += s;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

async function portsArgs(dataDir: string, clientPort?: number, peerPort?: number): Promise<string[]> {
  const c = clientPort ?? (await freePort());
  const p = peerPort ?? (await freePort());
  return [
    '--data-dir',
    dataDir,
    '--listen-client-urls',
    `http://127.0.0.1:${c}`,
    '--advertise-client-urls',
    `http://127.0.0.1:${c}`,
    '--listen-peer-urls',
    `http://127.0.0.1:${p}`,
    '--initial-advertise-peer-urls',
    `http://127.0.0.1:${p}`,
    '--initial-cluster',
    `default=http://127.0.0.1:${p}`,
  ];
}

/** The failure is one fatal JSON line with the given text and no stack. */
function assertOneLine(r: { code: number | null; stderr: string }, re: RegExp): void {
  assert.ok(r.code !== 0 && r.code !== null, `exit code ${r.code}; stderr: ${r.stderr}`);
  const lines = r.stderr
    .trim()
    .split('\n')
    .filter((l) => l.includes('"level":"fatal"'));
  assert.equal(lines.length, 1, r.stderr);
  const rec = JSON.parse(lines[0]) as { error: string };
  assert.match(rec.error, re);
  assert.doesNotMatch(rec.error, /\n\s+at /, 'no stack');
}

describe('start-up errors are one line; the data-dir lock is held by the kernel', function () {
  this.timeout(120_000);
  const servers: Server[] = [];
  cleanupServersAfter(() => servers);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'etcd-ts-startup-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("a second process on a running member's data dir fails; a restart right after kill -9 works", async () => {
    const dataDir = path.join(tmp, 'locked');
    const a = await startEtcdTs({ dataDir });
    servers.push(a);
    assertOneLine(await runFailing(await portsArgs(dataDir)), new RegExp(`data dir ${dataDir} is in use by another etcd-ts process`));
    assert.equal((await etcdctl(a.endpoint, ['put', 'k', 'v'])).code, 0, 'the running member is untouched');
    await a.kill9();
    const b = await startEtcdTs({ dataDir, clientPort: Number(a.endpoint.split(':')[1]), peerPort: Number(new URL(a.peerUrl).port) });
    servers.push(b);
    assert.equal((await etcdctl(b.endpoint, ['get', 'k', '--print-value-only'])).stdout, 'v\n');
    await b.stop();
  });

  it('a LOCK file naming a live process (the old pid-file lock) does not block a start', async () => {
    const dataDir = path.join(tmp, 'stale');
    fs.mkdirSync(path.join(dataDir, 'member'), { recursive: true });
    fs.writeFileSync(path.join(dataDir, 'member', 'LOCK'), String(process.pid));
    const s = await startEtcdTs({ dataDir });
    servers.push(s);
    await s.stop();
  });

  it('a client port in use, a peer port in use, a data dir that is a file: one line each', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const taken = (blocker.address() as net.AddressInfo).port;
    try {
      assertOneLine(await runFailing(await portsArgs(path.join(tmp, 'c'), taken)), new RegExp(`EADDRINUSE.*127\\.0\\.0\\.1:${taken}`));
      assertOneLine(
        await runFailing(await portsArgs(path.join(tmp, 'p'), undefined, taken)),
        new RegExp(`cannot listen for peers on 127\\.0\\.0\\.1:${taken}.*EADDRINUSE`),
      );
    } finally {
      blocker.close();
    }
    const file = path.join(tmp, 'a-file');
    fs.writeFileSync(file, 'x');
    assertOneLine(await runFailing(await portsArgs(file)), new RegExp(`(ENOTDIR|EEXIST).*${file}`));
  });
});
