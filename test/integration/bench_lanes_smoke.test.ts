// Smoke runs of the bench tool's HTTP/JSON and WebSocket lanes and of compare with clusters: every
// KV workload for about a second at tiny concurrency over the HTTP lane against etcd-ts's client
// port, its --listen-client-http-urls port and Debian etcd's gateway, and over the WebSocket lane
// (JSON and binary frames) against etcd-ts's fast port; each must finish with no errors and more
// than zero requests. Then: the connections of one worker are spread over several endpoints (both
// servers got keys), the CLI's run and compare record their lane, port and member count, and
// compare --members 3 starts a 3-member cluster of each kind. Never asserts on speed.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cleanupServersAfter, etcdBin, freePort, removeDataDir, Server, startEtcd, startEtcdTs } from '../support/procs';
import { RawGrpc } from '../support/grpc_raw';
import { request } from '../support/http_client';
import { LoadResult, preloadKeys, runKvLoad } from '../../bench/lib/load';
import { LaneName } from '../../bench/lib/load_types';
import { ResultFile } from '../../bench/lib/results';
import { etcdserverpb } from '../../src/shared/gen/etcd';
import * as W from '../../bench/lib/workloads';

const cli = path.resolve(__dirname, '..', '..', 'bench', 'cli.js');
const req: W.RequestOptions = { ...W.defaultRequestOptions, keySpace: 200, valueSize: 64, txnOps: 2, rangeSpan: 5 };
const kvWorkloads = ['put', 'range', 'range-prefix', 'txn-put', 'txn-compare', 'delete', 'mixed'] as const;

function lane(endpoint: string, workload: W.KvWorkloadName, l: LaneName, extra: { wsBinary?: boolean; req?: W.RequestOptions } = {}): Promise<LoadResult> {
  return runKvLoad({
    endpoint, workload, client: 'raw', lane: l, wsBinary: extra.wsBinary ?? false, clients: 4, connections: 2, workers: 1,
    req: extra.req ?? req, warmupMs: 200, durationMs: 1000, total: 0, ratePerSec: 0,
  });
}

function assertClean(r: LoadResult, what: string): void {
  assert.equal(r.errors, 0, `${what}: ${r.errors} errors ${JSON.stringify(r.errorsByCode)}, first: ${r.firstError}`);
  assert.ok(r.ops > 0, `${what}: no successful requests`);
  assert.ok(r.p50Ms > 0 && r.maxMs >= r.p99Ms && r.p99Ms >= r.p50Ms, `${what}: percentiles ${r.p50Ms} ${r.p99Ms} ${r.maxMs}`);
}

function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { timeout: 170_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** Number of keys under the bench prefix (a serializable count-only Range). */
async function benchKeyCount(endpoint: string): Promise<number> {
  const c = new RawGrpc(endpoint);
  try {
    const prefix = Buffer.from('bench/key/');
    const body = etcdserverpb.RangeRequest.encode({ key: prefix, rangeEnd: W.prefixEnd(prefix), countOnly: true, serializable: true }).finish();
    const r = await c.unary(W.paths.range, body);
    assert.equal(r.status, 0, r.message ?? '');
    return Number(etcdserverpb.RangeResponse.decode(r.body!).count);
  } finally {
    c.close();
  }
}

describe('bench lanes smoke: HTTP and WebSocket lanes against etcd-ts', function () {
  this.timeout(120_000);
  let s: Server | undefined;
  let fast = '';
  cleanupServersAfter(() => [s]);

  before(async function () {
    const port = await freePort();
    fast = `127.0.0.1:${port}`;
    s = await startEtcdTs({ logLevel: 'error', extraArgs: ['--listen-client-http-urls', `http://${fast}`] });
    await preloadKeys(s.endpoint, req);
  });

  for (const w of kvWorkloads) {
    it(`http lane, client port: ${w}`, async () => { assertClean(await lane(s!.endpoint, w, 'http'), `http ${w}`); });
  }
  for (const w of kvWorkloads) {
    it(`http lane, fast port: ${w}`, async () => { assertClean(await lane(fast, w, 'http'), `http fast ${w}`); });
  }
  for (const w of kvWorkloads) {
    it(`ws lane (JSON), fast port: ${w}`, async () => { assertClean(await lane(fast, w, 'ws'), `ws ${w}`); });
  }
  for (const w of ['put', 'range-prefix', 'txn-compare', 'mixed'] as const) {
    it(`ws lane (binary), fast port: ${w}`, async () => { assertClean(await lane(fast, w, 'ws', { wsBinary: true }), `ws binary ${w}`); });
  }

  it('http and ws lanes: serializable ranges with answers over 2 KiB (long HTTP bodies, 16-bit WebSocket lengths), preloaded over the HTTP lane', async () => {
    const big = { ...req, valueSize: 1000, consistency: 's' as const };
    await preloadKeys(fast, big, 'raw', 8, { lane: 'http', wsBinary: false }); // preload through the HTTP lane itself
    assertClean(await lane(s!.endpoint, 'range-prefix', 'http', { req: big }), 'http range-prefix 5 kB');
    assertClean(await lane(fast, 'range-prefix', 'ws', { req: big }), 'ws range-prefix 5 kB');
  });
});

describe('bench lanes smoke: HTTP lane against Debian etcd, and several endpoints', function () {
  this.timeout(120_000);
  let e: Server | undefined;
  let t: Server | undefined;
  cleanupServersAfter(() => [e, t]);

  before(async function () {
    if (!fs.existsSync(etcdBin)) { // no Debian etcd on this machine: apt-get install etcd-server
      console.log(`      skipped: ${etcdBin} not found`);
      this.skip();
    }
    e = await startEtcd({ logLevel: 'error' });
    await preloadKeys(e.endpoint, req);
  });

  it("http lane, etcd's gateway: range-prefix answers over 2 KiB, which Go sends chunked", async () => {
    const big = { ...req, valueSize: 1000 };
    await preloadKeys(e!.endpoint, big);
    const key = W.keyAt(W.layoutFor(big), 0);
    const res = await request('POST', `${e!.clientUrl}/v3/kv/range`,
      JSON.stringify({ key: key.toString('base64'), range_end: W.keyAt(W.layoutFor(big), 5).toString('base64') }));
    assert.equal(res.status, 200);
    assert.equal(res.headers['transfer-encoding'], 'chunked', 'the answer this test is about is chunked');
    assertClean(await lane(e!.endpoint, 'range-prefix', 'http', { req: big }), 'etcd http range-prefix, chunked');
    await preloadKeys(e!.endpoint, req);
  });

  for (const w of kvWorkloads) {
    it(`http lane, etcd's gateway: ${w}`, async () => { assertClean(await lane(e!.endpoint, w, 'http'), `etcd http ${w}`); });
  }

  it('the ws lane against etcd fails at once with the refused upgrade (etcd has no /ws)', async () => {
    const r = await runCli(['put', '--lane', 'ws', '--endpoints', e!.endpoint, '--clients', '2', '--duration', '0.5', '--warmup', '0', '--no-progress', '--no-html',
      '--out', path.join(os.tmpdir(), `bench-lanes-${process.pid}.json`)]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /upgrade refused: HTTP\/1\.1 404/);
  });

  it("one worker's connections are spread over the endpoints: both servers get the Puts", async () => {
    t = await startEtcdTs({ logLevel: 'error' });
    const before = await benchKeyCount(t.endpoint);
    assert.equal(before, 0);
    const r = await runKvLoad({
      endpoint: e!.endpoint, endpoints: [e!.endpoint, t.endpoint], workload: 'put', client: 'raw', clients: 4, connections: 2, workers: 1,
      req, warmupMs: 0, durationMs: 500, total: 0, ratePerSec: 0,
    });
    assertClean(r, 'put over two endpoints');
    // etcd-ts is the SECOND endpoint: only a connection spread to it can have written there (etcd was
    // preloaded with the same keys, so its count says nothing).
    assert.ok(await benchKeyCount(t.endpoint) > 0, 'the second connection went to etcd-ts');
  });
});

describe('bench lanes smoke: CLI run and compare with lanes and members', function () {
  this.timeout(240_000);
  let dir = '';
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-lanes-')); });
  after(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  const short = ['--clients', '4', '--conns', '2', '--duration', '1', '--warmup', '0.2', '--no-progress', '--no-html'];
  const read = (f: string): ResultFile => JSON.parse(fs.readFileSync(f, 'utf8')) as ResultFile;
  const clean = (f: ResultFile): void => {
    assert.deepEqual(f.failures, []);
    for (const x of f.runs) assert.ok(x.result.errors === 0 && x.result.ops > 0, `${x.server} ${x.workload}: ${x.result.errors} errors, ${x.result.ops} ok, ${x.result.firstError}`);
  };

  it('compare put range --lane http --http-port fast: etcd\'s gateway vs etcd-ts\'s fast port', async function () {
    if (!fs.existsSync(etcdBin)) this.skip();
    const out = path.join(dir, 'http.json');
    const r = await runCli(['compare', 'put', 'range', '--lane', 'http', '--http-port', 'fast', '--rounds', '1', '--key-space', '100', '--out', out, ...short]);
    assert.equal(r.code, 0, r.stderr);
    const f = read(out);
    clean(f);
    assert.deepEqual(f.servers.map((x) => x.label), ['etcd (http, client port)', 'etcd-ts (http, fast port)']);
    assert.ok(f.servers[1].command!.includes('--listen-client-http-urls http://127.0.0.1:'));
    assert.deepEqual(f.runs.map((x) => `${x.workload} ${x.lane} ${x.target} ${x.members}`).sort(),
      ['put http client port 1', 'put http fast port 1', 'range http client port 1', 'range http fast port 1']);
  });

  it('compare put --a-lane grpc --b-lane ws --ws-binary: etcd over gRPC vs etcd-ts over /ws', async function () {
    if (!fs.existsSync(etcdBin)) this.skip();
    const out = path.join(dir, 'ws.json');
    const r = await runCli(['compare', 'put', '--a-lane', 'grpc', '--b-lane', 'ws', '--ws-binary', '--rounds', '1', '--out', out, ...short]);
    assert.equal(r.code, 0, r.stderr);
    const f = read(out);
    clean(f);
    assert.deepEqual(f.servers.map((x) => x.label), ['etcd (grpc)', 'etcd-ts (ws/binary, fast port)']);
  });

  it('compare --lane ws with etcd on one side is refused before anything starts', async () => {
    const r = await runCli(['compare', 'put', '--lane', 'ws', '--rounds', '1', '--out', path.join(dir, 'no.json'), ...short]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /etcd has no fast port with etcd-ts's WebSocket API/);
    assert.ok(!fs.existsSync(path.join(dir, 'no.json')));
  });

  it('compare put --members 3: a 3-member cluster of each kind, the count in the results', async function () {
    if (!fs.existsSync(etcdBin)) this.skip();
    const out = path.join(dir, 'members.json');
    const md = path.join(dir, 'members.md');
    const r = await runCli(['compare', 'put', '--members', '3', '--rounds', '1', '--out', out, '--md', md, ...short, '--clients', '6', '--conns', '3']);
    assert.equal(r.code, 0, r.stderr);
    const f = read(out);
    clean(f);
    assert.deepEqual(f.servers.map((x) => [x.label, x.members]), [['etcd', 3], ['etcd-ts', 3]]);
    assert.ok(f.runs.length === 2 && f.runs.every((x) => x.members === 3 && x.lane === 'grpc'));
    assert.match(fs.readFileSync(md, 'utf8'), /3-member clusters/);
  });

  it('a run over the ws lane records its lane (and needs no gRPC on the fast port)', async () => {
    const port = await freePort();
    const s = await startEtcdTs({ logLevel: 'error', extraArgs: ['--listen-client-http-urls', `http://127.0.0.1:${port}`] });
    try {
      const out = path.join(dir, 'run.json');
      const r = await runCli(['range', '--lane', 'ws', '--endpoints', `127.0.0.1:${port}`, '--key-space', '50', '--out', out, ...short]);
      assert.equal(r.code, 0, r.stderr);
      const f = read(out);
      clean(f);
      assert.equal(f.runs[0].lane, 'ws/json');
      assert.match(f.runs[0].loadModel, /WebSocket \/ws JSON \(pipelined, up to 2 in flight per connection\)/);
    } finally {
      await s.stop();
      removeDataDir(s);
    }
  });
});
