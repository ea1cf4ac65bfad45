// The regression verdict of `etcd-ts-bench diff` (bench/lib/verdict.ts): faster / slower / within
// noise, with a threshold that widens with the run-to-run spread of either side, p99 latency for
// open-loop runs, and new errors always a regression. Also the request templates of the workloads:
// keys written in place must decode back (encode-then-decode pair check), and the fixed-width lease
// ID varint must decode to 2^56 + n.
//
//   npx tsc -p . && npx mocha --no-config dist/test/unit/bench_verdict.test.js
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { incomparable } from '../../bench/lib/comparable';
import { RunRecord, schema } from '../../bench/lib/results';
import { judge, median, relativeSpread, Samples } from '../../bench/lib/verdict';
import * as W from '../../bench/lib/workloads';
import { etcdserverpb } from '../../src/shared/gen/etcd';

const closed = (throughput: number[], errors = 0): Samples => ({ throughput, p99Ms: throughput.map(() => 1), errors, openLoop: false });
const opts = { minThreshold: 0.05, singleSampleNoise: 0.15 };

describe('bench diff verdict', () => {
  it('median and relative spread', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 2, 3]), 2.5);
    assert.equal(relativeSpread([100]), null);
    assert.equal(relativeSpread([90, 100, 110]), 0.2);
  });

  it('tight samples: a 10% drop is slower, a 10% gain faster, 3% within noise', () => {
    const base = closed([1000, 1010, 990]); // spread 2%: the 5% minimum applies
    assert.equal(judge(base, closed([900, 905, 895]), opts).verdict, 'slower');
    assert.equal(judge(base, closed([1100, 1105, 1095]), opts).verdict, 'faster');
    const v = judge(base, closed([970, 975, 965]), opts);
    assert.equal(v.verdict, 'within noise');
    assert.equal(v.threshold, 0.05);
    assert.equal(v.regression, false);
  });

  it('noisy samples widen the threshold', () => {
    const base = closed([800, 1000, 1200]); // spread 40%
    const v = judge(base, closed([850, 870, 880]), opts); // -13% on the median
    assert.equal(v.verdict, 'within noise');
    assert.ok(Math.abs(v.threshold - 0.4) < 1e-9);
  });

  it('a single sample uses the default allowance', () => {
    assert.equal(judge(closed([1000]), closed([900]), opts).verdict, 'within noise'); // -10% < 15%
    const v = judge(closed([1000]), closed([800]), opts);
    assert.equal(v.verdict, 'slower');
    assert.equal(v.regression, true);
  });

  it('open-loop runs are judged on p99 latency, lower is better', () => {
    const ol = (p99Ms: number[]): Samples => ({ throughput: p99Ms.map(() => 500), p99Ms, errors: 0, openLoop: true });
    const v = judge(ol([10, 10.2, 9.9]), ol([20, 21, 19]), opts);
    assert.equal(v.metric, 'p99 latency');
    assert.equal(v.verdict, 'slower');
    assert.equal(judge(ol([20, 21, 19]), ol([10, 10.2, 9.9]), opts).verdict, 'faster');
  });

  it('new errors are a regression even when faster', () => {
    const v = judge(closed([1000, 1000]), closed([2000, 2000], 3), opts);
    assert.equal(v.verdict, 'faster');
    assert.equal(v.newErrors, true);
    assert.equal(v.regression, true);
  });
});

describe('bench request templates', () => {
  const o = { ...W.defaultRequestOptions, keySpace: 1000, valueSize: 8, txnOps: 3 };
  const l = W.layoutFor(o);
  const unframe = (t: { framed: Buffer }) => t.framed.subarray(5);
  const str = (b: Uint8Array | null | undefined): string => Buffer.from(b ?? new Uint8Array()).toString();

  it('writes keys in place and they decode back', () => {
    const put = W.putTemplate(o, l, Buffer.from('vvvvvvvv'));
    W.setKey(put, 0, 42);
    const p = etcdserverpb.PutRequest.decode(unframe(put));
    assert.equal(str(p.key), 'bench/key/000042');
    assert.equal(str(p.value), 'vvvvvvvv');
    const r = W.rangeTemplate({ ...o, consistency: 's' }, l, true);
    W.setKey(r, 0, 7); W.setKey(r, 1, 17);
    const rr = etcdserverpb.RangeRequest.decode(unframe(r));
    assert.deepEqual([str(rr.key), str(rr.rangeEnd), rr.serializable], ['bench/key/000007', 'bench/key/000017', true]);
    const t = W.txnPutTemplate(o, l, Buffer.from('x'));
    for (let k = 0; k < 3; k++) W.setKey(t, k, 998 + k);
    const tr = etcdserverpb.TxnRequest.decode(unframe(t));
    assert.deepEqual(tr.success.map((op) => str(op.requestPut!.key)), ['bench/key/000998', 'bench/key/000999', 'bench/key/001000']);
    const c = W.txnCompareTemplate(o, l, Buffer.from('x'));
    W.setKey(c, 0, 5);
    const cr = etcdserverpb.TxnRequest.decode(unframe(c));
    assert.equal(str(cr.compare[0].key), 'bench/key/000005');
    assert.equal(str(cr.failure[0].requestRange!.key), 'bench/key/000005');
    assert.equal(unframe(put).length, put.framed.readUInt32BE(1));
  });

  it('short keys fall back to a one-letter prefix, and too short ones are refused', () => {
    assert.equal(W.keyAt(W.keyLayout(8, 9999), 3).toString(), 'k0000003');
    assert.throws(() => W.keyLayout(3, 9999), /too small/);
    assert.deepEqual(W.prefixEnd(Buffer.from('a/')), Buffer.from('a0'));
  });

  it('encodes client-chosen lease IDs as fixed-width varints', () => {
    for (const n of [0, 1, 127, 128, 2 ** 32 + 5, 2 ** 48 - 1]) {
      const g = W.leaseGrantFrame(60);
      W.writeLeaseIdVarint(g.framed, g.idAt, n);
      const req = etcdserverpb.LeaseGrantRequest.decode(g.framed.subarray(5));
      assert.equal(BigInt(req.ID.toString()), W.leaseIdBigInt(n));
      assert.equal(Number(req.TTL), 60);
      const k = W.leaseIdFrame();
      W.writeLeaseIdVarint(k.framed, k.idAt, n);
      assert.equal(BigInt(etcdserverpb.LeaseKeepAliveRequest.decode(k.framed.subarray(5)).ID.toString()), W.leaseIdBigInt(n));
    }
  });
});

// `etcd-ts-bench diff` refuses runs that measured different things (bench/lib/comparable.ts), saying
// why: a closed-loop run against an open-loop one, etcd against etcd-ts, another concurrency, another
// workload, lane or cluster size. The CLI check runs dist/bench/cli.js on two small result files.
describe('bench diff: only comparable runs', () => {
  const run = (over: Partial<RunRecord> = {}): RunRecord => ({
    server: 'etcd-ts', serverVersion: '3.4.23', workload: 'put', description: 'Put, 8-byte keys, uniform random over 10000, 256-byte values',
    round: 1, loadModel: 'closed loop, 200 clients over 8 connections, 1 s warm-up, 10 s measured', openLoop: false,
    result: { reqPerSec: 10_000, p99Ms: 5, errors: 0 } as RunRecord['result'], ...over,
  });
  it('the same server, load model and workload: comparable', () => {
    assert.deepEqual(incomparable('put', [run(), run({ round: 2 })], [run({ lane: 'grpc', members: 1 })]), []);
  });
  it('closed loop vs open loop, another server, concurrency, workload, lane or size: refused with both values', () => {
    const open = run({ openLoop: true, loadModel: 'open loop at 5000 req/s, at most 200 in flight over 8 connections, 1 s warm-up, 10 s measured' });
    const r = incomparable('put', [run()], [open]);
    assert.equal(r.length, 1, r.join('\n'));
    assert.match(r[0], /^put: different load models: base "closed loop", head "open loop"$/);
    assert.match(incomparable('put', [run()], [run({ server: 'etcd' })])[0], /different servers: base "etcd-ts", head "etcd"/);
    assert.match(incomparable('put', [run()], [run({ loadModel: 'closed loop, 50 clients over 8 connections, 1 s warm-up, 10 s measured' })])[0], /different load models: base "closed loop, 200 clients/);
    assert.match(incomparable('put', [run()], [run({ description: 'Put, 8-byte keys, uniform random over 10000, 1024-byte values' })])[0], /different workloads/);
    assert.match(incomparable('put', [run()], [run({ lane: 'http' })])[0], /different lanes .*base "grpc", head "http"/);
    assert.match(incomparable('put', [run()], [run({ members: 3 })])[0], /different cluster sizes/);
    assert.match(incomparable('put', [run(), open], [run()])[0], /^put: base mixes load models/);
  });
  it('the CLI refuses with exit status 2 and the reasons; comparable files get a verdict', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-diff-'));
    const file = (name: string, runs: RunRecord[]): string => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, JSON.stringify({ schema, kind: 'run', date: '2026-01-01', command: 'x', machine: {}, options: {}, servers: [], runs, failures: [] }));
      return f;
    };
    const cli = path.join(__dirname, '..', '..', 'bench', 'cli.js');
    try {
      const closedF = file('closed.json', [run()]);
      const openF = file('open.json', [run({ openLoop: true, loadModel: 'open loop at 5000 req/s' })]);
      const refused = spawnSync(process.execPath, [cli, 'diff', closedF, openF], { encoding: 'utf8' });
      assert.equal(refused.status, 2, refused.stderr);
      assert.match(refused.stderr, /diff: refusing to compare .*closed\.json with .*open\.json:\n {2}put: different load models: base "closed loop", head "open loop"/);
      const ok = spawnSync(process.execPath, [cli, 'diff', closedF, file('again.json', [run()])], { encoding: 'utf8' });
      assert.equal(ok.status, 0, ok.stderr);
      assert.match(ok.stdout, /put: WITHIN NOISE/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
