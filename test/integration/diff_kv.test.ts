// Differential test of the KV API: one table of etcdctl commands (put, get with every range option,
// del --prev-kv, txn -i with value/version/create/mod compares and both branches, compact, and the
// error paths: compacted/future revisions, empty key, duplicate txn keys, missing lease...) is run in
// order against a fresh real etcd (the reference, side A) and a fresh target (side B). For each
// command, exit code, stdout and stderr must be equal byte for byte after normalizing only what is
// not KV semantics: cluster_id, member_id and raft_term in headers, and, in etcdctl's own client
// log lines on stderr, the timestamp, the random client id and the 127.0.0.1 port. Revisions, kvs
// (base64), count, more, error messages and gRPC codes are compared as they are. A few cases are raw
// gRPC KV.Range calls (count_only, revision filters), which etcdctl 3.4 cannot send.
//
//   npx tsc -p . && npx mocha dist/test/integration/diff_kv.test.js
//   ETCD_TS_DIFF_TARGET=etcd ...    side B is a second real etcd: must pass (validates the harness)
//   ETCD_TS_DIFF_PERTURB=1 ...      one extra put on side B first: must fail (proves it can fail)
//   ETCD_TS_DIFF_SHOW=1 ...         also print the reference output of every case
//
// Adding a case is one line in `cases`. Cases share state and run in table order.
import * as assert from 'node:assert/strict';
import { etcdserverpb } from '../../src/shared/gen/etcd';
import { KvConnection } from '../../bench/lib/kv_client';
import { etcdctl, EtcdctlResult, normalize } from '../support/etcdctl';
import { cleanupServersAfter, Server, startEtcd, startKind, targetKind } from '../support/procs';

interface Case {
  args: string[];
  input?: string;                         // stdin, for txn -i
  range?: etcdserverpb.IRangeRequest;     // instead of etcdctl: a raw gRPC Range (fields etcdctl 3.4 cannot send)
}

const c = (...args: string[]): Case => ({ args });
// etcdctl txn -i reads: compares, blank line, success ops, blank line, failure ops, blank line.
const txn = (compares: string[], success: string[], failure: string[], ...args: string[]): Case => ({
  args: ['txn', '-i', ...args],
  input: [...compares, '', ...success, '', ...failure, '', ''].join('\n'),
});
const J = ['-w', 'json'];
// etcdctl 3.4 has no --count-only nor revision filters; these go as raw KV.Range calls.
const g = (r: { key: string; rangeEnd?: string } & Omit<etcdserverpb.IRangeRequest, 'key' | 'rangeEnd'>): Case => ({
  args: ['grpc', 'Range', JSON.stringify(r)],
  range: { ...r, key: Buffer.from(r.key), rangeEnd: r.rangeEnd === undefined ? undefined : Buffer.from(r.rangeEnd) },
});

const cases: Case[] = [
  c('put', 'foo', 'bar', ...J),                                  // rev 2
  c('put', 'foo2', 'baz'),                                       // rev 3
  c('put', 'fa', 'a1', ...J),                                    // rev 4
  c('put', 'fb', 'b1'),                                          // rev 5
  c('put', 'foo', 'bar2', '--prev-kv', ...J),                    // rev 6, foo version 2
  c('put', 'z', 'zz'),                                           // rev 7
  c('put', 'foo', 'bar3', '--prev-kv'),                          // rev 8, simple output with prev kv
  c('get', 'foo', ...J),
  c('get', 'foo'),
  c('get', 'foo', '--print-value-only'),
  c('get', 'nonexistent', ...J),
  c('get', 'f', '--prefix', ...J),
  c('get', 'f', '--prefix'),
  c('get', 'f', '--prefix', '--sort-by=MODIFY', '--order=DESCEND', ...J),
  c('get', 'f', '--prefix', '--sort-by=MODIFY', '--order=DESCEND', '--limit=1', ...J),
  c('get', 'f', '--prefix', '--sort-by=CREATE', '--order=ASCEND', '--limit=2', ...J),
  c('get', 'f', '--prefix', '--sort-by=VERSION', '--order=DESCEND', ...J),
  c('get', 'f', '--prefix', '--sort-by=VALUE', '--order=DESCEND', ...J),
  c('get', 'f', '--prefix', '--sort-by=KEY', '--order=DESCEND', '--limit=1', ...J),
  c('get', 'f', '--prefix', '--order=DESCEND', ...J),
  c('get', 'f', '--prefix', '--sort-by=VALUE', ...J),
  c('get', 'f', '--prefix', '--limit=2', ...J),
  c('get', 'f', '--prefix', '--limit=100', ...J),
  c('get', 'foo', '--rev=2', ...J),
  c('get', 'foo', '--rev=6'),
  c('get', 'f', '--prefix', '--rev=4', ...J),
  c('get', 'f', '--prefix', '--keys-only', ...J),
  c('get', 'f', '--prefix', '--keys-only'),
  c('get', 'fb', '--from-key', ...J),
  c('get', '', '--from-key', '--keys-only', '--limit=3', ...J),
  c('get', 'a', 'fz', ...J),                                     // range [a, fz)
  c('get', 'fz', 'a', ...J),                                     // inverted range: empty
  c('get', 'foo', '--consistency=s', ...J),
  g({ key: 'f', rangeEnd: 'g', countOnly: true }),
  g({ key: 'f', rangeEnd: 'g', countOnly: true, limit: 1 }),
  g({ key: 'f', rangeEnd: 'g', keysOnly: true, countOnly: true }),
  g({ key: '\0', rangeEnd: '\0', countOnly: true }),
  g({ key: 'f', rangeEnd: 'g', minModRevision: 5 }),
  g({ key: 'f', rangeEnd: 'g', maxModRevision: 5, limit: 1 }),
  g({ key: 'f', rangeEnd: 'g', minCreateRevision: 3, maxCreateRevision: 4 }),
  g({ key: 'f', rangeEnd: 'g', revision: -1, limit: 1 }),
  g({ key: '' }),
  c('del', 'foo2', '--prev-kv', ...J),                           // rev 9
  c('del', 'fa', '--prev-kv'),                                   // rev 10
  c('del', 'nonexistent', ...J),                                 // no revision bump
  c('del', 'nonexistent', '--prev-kv'),
  txn(['value("foo") = "bar3"'], ['put t1 v1', 'get foo'], ['put t1 never'], ...J),          // rev 11
  txn(['value("foo") = "nope"'], ['put t2 never'], ['put t2 v2', 'get t1'], ...J),           // rev 12
  txn(['version("foo") = "3"', 'create("foo") = "2"'], ['put t3 v3'], ['put t3 never']),   // rev 13
  txn(['mod("foo") > "5"', 'mod("foo") < "100"'], ['get foo'], ['put never x']),
  txn(['mod("foo") < "5"'], ['put never x'], ['get fb', 'del t3']),                          // rev 14
  txn(['version("absent") = "0"'], ['put t4 v4'], [], ...J),                                  // rev 15
  txn(['create("absent") > "0"'], ['put never x'], ['get absent'], ...J),
  txn(['value("fb") != "b1"'], ['put never x'], ['del t4 --prev-kv'], ...J),                 // rev 16
  txn(['value("fb") > "a"', 'value("fb") < "c"'], ['put t5 v5', 'put t6 v6'], []),          // rev 17
  txn([], ['put t7 v7', 'get t'], [], ...J),                                                  // rev 18
  txn([], ['get t --prefix --limit=1'], [], ...J),                                            // read-only txn
  txn(['value("foo") = "bar3"'], ['put d 1', 'put d 2'], [], ...J),                           // duplicate keys
  txn(['value("foo") = "bar3"'], ['put d 1', 'del d'], []),                                   // put+del same key
  txn(['value("foo") = "bar3"'], ['del t --prefix', 'put t1 again'], []),                     // overlapping range
  c('put', '', 'v'),                                                                          // empty key
  c('put', 'nokey', '--ignore-value'),
  c('put', 'foo', 'v', '--lease=1234'),
  c('put', 'foo', '--ignore-value', ...J),                                                    // rev 19, keeps bar3
  c('get', 'foo', ...J),
  c('get', 'foo', '--rev=1000', ...J),                                                        // future
  c('compact', '5'),
  c('get', 'foo', '--rev=3', ...J),                                                           // compacted
  c('get', 'foo', '--rev=4', ...J),                                                           // compacted
  c('get', 'foo', '--rev=5', ...J),                                                           // compact rev is readable
  c('get', 'f', '--prefix', '--rev=6', ...J),
  c('compact', '5'),                                                                          // again: compacted
  c('compact', '3'),
  c('compact', '1000'),                                                                       // future
  c('compact', '8', '--physical'),
  c('endpoint', 'hashkv', ...J),                                                              // same hash as etcd
  c('endpoint', 'hashkv', '--rev=12', ...J),
  c('endpoint', 'hashkv', '--rev=3', ...J),                                                   // compacted
  c('get', 'foo', '--rev=7', ...J),
  c('del', 'f', '--prefix', '--prev-kv', ...J),
  c('get', '', '--from-key', ...J),
  c('del', '', '--from-key', ...J),
  c('get', '', '--from-key', ...J),
  c('endpoint', 'hashkv', ...J),
];

/** One raw gRPC Range; the output is the decoded response (int64 as strings, bytes base64) or the error. */
async function grpcRange(conn: KvConnection, req: etcdserverpb.IRangeRequest): Promise<EtcdctlResult> {
  try {
    const raw = await conn.callAsync('range', Buffer.from(etcdserverpb.RangeRequest.encode(req).finish()));
    const o = etcdserverpb.RangeResponse.toObject(etcdserverpb.RangeResponse.decode(raw), { longs: String, bytes: String });
    return { code: 0, stdout: JSON.stringify(o), stderr: '' };
  } catch (e) {
    const err = e as { code?: number; details?: string };
    return { code: 1, stdout: '', stderr: `grpc code ${err.code}: ${err.details}` };
  }
}

function show(c: Case): string {
  if (c.range) return `grpc KV.Range ${c.args[2]}`;
  return `etcdctl ${c.args.map((a) => (a === '' || /\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}`
    + (c.input !== undefined ? ` <<< ${JSON.stringify(c.input)}` : '');
}

describe('differential KV: etcdctl against real etcd vs target', function () {
  this.timeout(60_000);
  const targetB = targetKind('ETCD_TS_DIFF_TARGET');
  let a: Server | undefined;
  let b: Server | undefined;
  let conns: KvConnection[] = [];
  cleanupServersAfter(() => [a, b]);
  after(() => { for (const c of conns) c.close(); });

  before(async function () {
    [a, b] = await Promise.all([startEtcd(), startKind(targetB)]);
    conns = [new KvConnection(a.endpoint), new KvConnection(b.endpoint)];
    if (process.env.ETCD_TS_DIFF_PERTURB === '1') {
      await etcdctl(b.endpoint, ['put', 'perturb', 'x']);
    }
  });

  cases.forEach((tc, i) => {
    it(`#${i + 1} ${show(tc)}`, async function () {
      const [ra, rb] = await Promise.all([a!, b!].map((s, i) => (tc.range
        ? grpcRange(conns[i], tc.range)
        : etcdctl(s.endpoint, tc.args, { input: tc.input }))));
      const na = normalize(ra);
      const nb = normalize(rb);
      if (process.env.ETCD_TS_DIFF_SHOW === '1') console.log(`${show(tc)}\n${na}`);
      if (na !== nb) {
        assert.fail(`${show(tc)}: outputs differ\n===== etcd (reference) =====\n${na}\n===== ${targetB} (target) =====\n${nb}`);
      }
    });
  });
});
