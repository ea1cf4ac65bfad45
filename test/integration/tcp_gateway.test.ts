// `etcd-ts gateway start`, etcd 3.4's TCP gateway: etcdctl (gRPC over HTTP/2) works through it to one
// etcd-ts member, and through a two-endpoint list whose first endpoint is down (the gateway marks it
// inactive, logs "deactivated endpoint" and uses the second; every call succeeds; with a short
// --retry-delay it keeps retrying the dead one). The command line is compared with real etcd's
// gateway: help, an unknown flag, a bad --retry-delay, an endpoint that is the listen address, all
// with the same output and exit code. `etcd-ts grpc-proxy` answers one line and exit 1.
import { strict as assert } from 'node:assert';
import { ChildProcess, spawn } from 'node:child_process';
import { etcdctl } from '../support/etcdctl';
import { cleanupServersAfter, etcdBin, etcdTsCli, freePort, Server, startEtcdTs } from '../support/procs';

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[]): Promise<Ran> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCD')) env[k] = v;
    const c = spawn(cmd, args, { env });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => c.kill('SIGKILL'), 20_000);
    c.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

class Gateway {
  readonly child: ChildProcess;
  log = '';
  constructor(args: string[]) {
    this.child = spawn(process.execPath, [etcdTsCli, 'gateway', 'start', ...args]);
    this.child.stderr!.on('data', (d: Buffer) => (this.log += d.toString()));
    this.child.stdout!.on('data', (d: Buffer) => (this.log += d.toString()));
  }
  async ready(): Promise<void> {
    for (let i = 0; i < 200 && !this.log.includes('ready to proxy client requests'); i++) await sleep(50);
    assert.ok(this.log.includes('ready to proxy client requests'), `gateway not ready:\n${this.log}`);
  }
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await exited;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

describe('tcp gateway: etcd-ts gateway start', function () {
  this.timeout(120_000);
  let server: Server | undefined;
  const gateways: Gateway[] = [];
  cleanupServersAfter(() => [server]);
  after(async () => {
    for (const g of gateways) await g.stop();
  });

  it('proxies etcdctl to one member, and fails over from a dead first endpoint', async () => {
    server = await startEtcdTs({ logLevel: 'warn' });
    const one = await freePort();
    const g1 = new Gateway(['--listen-addr', `127.0.0.1:${one}`, '--endpoints', `http://${server.endpoint}`]);
    gateways.push(g1);
    await g1.ready();
    const put = await etcdctl(`127.0.0.1:${one}`, ['put', 'gw/a', '1']);
    assert.equal(put.code, 0, put.stderr);
    const get = await etcdctl(`127.0.0.1:${one}`, ['get', 'gw/a', '--print-value-only']);
    assert.equal(get.stdout, '1\n');

    const dead = await freePort(); // nothing listens there
    const two = await freePort();
    const g2 = new Gateway([
      '--listen-addr',
      `127.0.0.1:${two}`,
      '--endpoints',
      `127.0.0.1:${dead},${server.endpoint}`,
      '--retry-delay',
      '1s',
    ]);
    gateways.push(g2);
    await g2.ready();
    for (let i = 0; i < 5; i++) {
      const r = await etcdctl(`127.0.0.1:${two}`, ['put', `gw/b${i}`, String(i)]);
      assert.equal(r.code, 0, r.stderr);
    }
    const all = await etcdctl(`127.0.0.1:${two}`, ['get', 'gw/', '--prefix', '--keys-only']);
    assert.equal(all.stdout.split('\n').filter((l) => l !== '').length, 6);
    assert.match(g2.log, new RegExp(`"msg":"deactivated endpoint","address":"127.0.0.1:${dead}"`));
    // The dead endpoint is dialled again every --retry-delay and stays inactive.
    for (let i = 0; i < 100 && !g2.log.includes('failed to activate endpoint'); i++) await sleep(100);
    assert.match(g2.log, /failed to activate endpoint \(stay inactive for another interval\)/);
  });

  it('answers bad command lines as etcd gateway does', async () => {
    const port = await freePort();
    const cases: string[][] = [
      ['gateway'],
      ['gateway', 'start', '--help'],
      ['gateway', 'start', '--bogus'],
      ['gateway', 'start', '--retry-delay', 'xx'],
      ['gateway', 'start', '--listen-addr', `127.0.0.1:${port}`, '--endpoints', `127.0.0.1:${port}`],
      ['gateway', 'start', '--listen-addr', 'nocolon'],
      ['gateway', 'start', '--endpoints', 'a:1:2'],
    ];
    for (const args of cases) {
      const [e, t] = await Promise.all([run(etcdBin, args), run(process.execPath, [etcdTsCli, ...args])]);
      const norm = (s: string): string => s.replace(/etcd-ts /g, 'etcd ').replace(/etcd-ts$/gm, 'etcd');
      assert.equal(t.code, e.code, `${args.join(' ')}: exit code`);
      assert.equal(norm(t.stdout), e.stdout, `${args.join(' ')}: stdout`);
      assert.equal(norm(t.stderr), e.stderr, `${args.join(' ')}: stderr`);
    }
    const gp = await run(process.execPath, [etcdTsCli, 'grpc-proxy', 'start']);
    assert.equal(gp.code, 1);
    assert.equal(gp.stdout, '');
    assert.match(gp.stderr, /^etcd-ts: grpc-proxy is not supported [^\n]*\n$/);
  });
});
