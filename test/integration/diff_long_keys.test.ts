// Differential test of keys of any length etcd accepts (1 byte to 64 KiB, with 0x00 and 0xFF bytes):
// the same raw gRPC calls (Put, Range with every option, DeleteRange, Txn, leases, Compact, HashKV)
// and one Watch stream from revision 1 go to a fresh real etcd 3.4 (the reference) and a fresh target;
// every decoded response, header ids aside, and the watch events must be equal. HashKV equal means the
// records and their revisions are etcd's. etcdctl cannot pass 0x00 in arguments, hence raw gRPC.
//
//   ETCD_TS_DIFF_TARGET=etcd ...    side B is a second real etcd: must pass (validates the harness)
//   ETCD_TS_DIFF_PERTURB=1 ...      one extra put on side B first: must fail (proves it can fail)
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { etcdserverpb, mvccpb } from '../../src/shared/gen/etcd';
import { RawGrpc, RawStream } from '../support/grpc_raw';
import { cleanupServersAfter, Server, startEtcd, startKind, targetKind } from '../support/procs';

const L = 'L'.repeat(3000);
const keys = {
  short: 'k',
  lmdbMax: 'L'.repeat(1964), // the longest key that fits etcd-ts's short-key tables
  justOver: 'L'.repeat(1965),
  a: L + 'a',
  b: L + 'b',
  zero: L + '\x00',
  prefix: L,
  zeros: '\x00'.repeat(1500),
  ffs: '\xff'.repeat(5000),
  huge: 'h'.repeat(65536),
};
const k = (s: string): Buffer => Buffer.from(s, 'latin1');

type Call = { path: string; req: Uint8Array; decode: (b: Buffer) => unknown; what: string };
const kv = (
  m: string,
  enc: { encode(x: never): { finish(): Uint8Array } },
  dec: { decode(b: Buffer): unknown },
  x: unknown,
  what: string,
): Call => ({
  path: `/etcdserverpb.${m}`,
  req: enc.encode(x as never).finish(),
  decode: (b) => dec.decode(b),
  what,
});
const put = (key: string, value: string, extra: etcdserverpb.IPutRequest = {}): Call =>
  kv('KV/Put', etcdserverpb.PutRequest, etcdserverpb.PutResponse, { key: k(key), value: k(value), ...extra }, `put ${key.length}B`);
const range = (key: string, end: string | undefined, extra: etcdserverpb.IRangeRequest = {}, what = ''): Call =>
  kv(
    'KV/Range',
    etcdserverpb.RangeRequest,
    etcdserverpb.RangeResponse,
    { key: k(key), rangeEnd: end === undefined ? undefined : k(end), ...extra },
    `range ${key.length}B..${end?.length ?? '-'}B ${what}`,
  );
const del = (key: string, end: string | undefined, prevKv = true): Call =>
  kv(
    'KV/DeleteRange',
    etcdserverpb.DeleteRangeRequest,
    etcdserverpb.DeleteRangeResponse,
    { key: k(key), rangeEnd: end === undefined ? undefined : k(end), prevKv },
    `delete ${key.length}B..${end?.length ?? '-'}B`,
  );
const txn = (r: etcdserverpb.ITxnRequest, what: string): Call =>
  kv('KV/Txn', etcdserverpb.TxnRequest, etcdserverpb.TxnResponse, r, `txn ${what}`);
const all = (extra: etcdserverpb.IRangeRequest = {}, what = 'all'): Call => range('\x00', '\x00', extra, what);
const { SortOrder, SortTarget } = etcdserverpb.RangeRequest;

const calls: Call[] = [
  put(keys.short, 's1'),
  put(keys.lmdbMax, 'm1'),
  put(keys.justOver, 'j1'),
  put(keys.a, 'a1'),
  put(keys.b, 'b1'),
  put(keys.zero, 'z1'),
  put(keys.prefix, 'p1'),
  put(keys.zeros, 'zz1'),
  put(keys.ffs, 'ff1'),
  put(keys.huge, 'h1'),
  all(),
  all({ keysOnly: true, limit: 3 }, 'keys-only limit 3'),
  all({ countOnly: true }, 'count-only'),
  all({ sortOrder: SortOrder.DESCEND, sortTarget: SortTarget.KEY }, 'descending'),
  all({ sortOrder: SortOrder.ASCEND, sortTarget: SortTarget.VALUE, limit: 4 }, 'by value'),
  range(keys.prefix, L + '\xff', {}, 'prefix'),
  range(keys.a, keys.b, {}, '[a, b)'),
  range(keys.zero, '\x00', { limit: 2 }, 'from zero, limit 2'),
  range(keys.justOver, keys.a),
  range(keys.a, undefined, {}, 'one key'),
  put(keys.a, 'a2', { prevKv: true }),
  put(keys.huge, 'h2', { prevKv: true }),
  range(keys.a, undefined, { revision: 5 }, 'at rev 5'),
  all({ revision: 8 }, 'at rev 8'),
  range(L, L + '\xff', { revision: 9, countOnly: true }, 'at rev 9 count'),
  del(keys.zero, keys.b),
  txn(
    {
      compare: [
        {
          key: k(keys.b),
          target: etcdserverpb.Compare.CompareTarget.VALUE,
          result: etcdserverpb.Compare.CompareResult.EQUAL,
          value: k('b1'),
        },
      ],
      success: [{ requestPut: { key: k(keys.zero), value: k('z2') } }, { requestRange: { key: k(L), rangeEnd: k(L + '\xff') } }],
      failure: [{ requestDeleteRange: { key: k(keys.huge) } }],
    },
    'compare long key, put, range',
  ),
  txn(
    {
      compare: [
        {
          key: k(keys.ffs),
          target: etcdserverpb.Compare.CompareTarget.VERSION,
          result: etcdserverpb.Compare.CompareResult.GREATER,
          version: 1,
        },
      ],
      success: [{ requestPut: { key: k(keys.ffs), value: k('no') } }],
      failure: [{ requestDeleteRange: { key: k(keys.zeros), prevKv: true } }, { requestPut: { key: k(keys.justOver), value: k('j2') } }],
    },
    'failure branch',
  ),
  kv('Lease/LeaseGrant', etcdserverpb.LeaseGrantRequest, etcdserverpb.LeaseGrantResponse, { ID: 42, TTL: 600 }, 'lease grant'),
  put(keys.b, 'leased', { lease: 42 }),
  put(keys.huge, 'leased', { lease: 42 }),
  put(keys.short, 'leased', { lease: 42 }),
  put(keys.lmdbMax, 'leased', { lease: 42 }),
  kv('Lease/LeaseRevoke', etcdserverpb.LeaseRevokeRequest, etcdserverpb.LeaseRevokeResponse, { ID: 42 }, 'lease revoke'),
  all(),
  kv('Maintenance/HashKV', etcdserverpb.HashKVRequest, etcdserverpb.HashKVResponse, { revision: 0 }, 'hashkv'),
  kv('KV/Compact', etcdserverpb.CompactionRequest, etcdserverpb.CompactionResponse, { revision: 14, physical: true }, 'compact 14'),
  all({ revision: 13 }, 'compacted'),
  all({ revision: 14 }, 'at the compaction'),
  range(keys.a, undefined, { revision: 14 }, 'one key at the compaction'),
  kv('Maintenance/HashKV', etcdserverpb.HashKVRequest, etcdserverpb.HashKVResponse, { revision: 0 }, 'hashkv after compaction'),
  del('\x00', '\x00'),
  all(),
];

/** The response as comparable JSON: header ids and terms cleared, int64 as strings, bytes as latin1. */
function show(o: unknown): string {
  return JSON.stringify(o, (key, v: unknown) => {
    if (key === 'clusterId' || key === 'memberId' || key === 'raftTerm') return undefined;
    if (v instanceof Uint8Array) {
      const s = Buffer.from(v).toString('latin1');
      return s.length > 80
        ? `${s.slice(0, 20)}…(${s.length} bytes, sha256 ${createHash('sha256').update(v).digest('hex').slice(0, 16)})…${s.slice(-10)}`
        : s;
    }
    if (v !== null && typeof v === 'object' && 'low' in v && 'high' in v) return String(v as object);
    return v;
  });
}

describe('differential: keys of any length, raw gRPC against real etcd vs target', function () {
  this.timeout(60_000);
  const targetB = targetKind('ETCD_TS_DIFF_TARGET');
  let a: Server | undefined;
  let b: Server | undefined;
  let conns: RawGrpc[] = [];
  let watches: RawStream[] = [];
  cleanupServersAfter(() => [a, b]);
  after(() => {
    for (const w of watches) w.cancel();
    for (const c of conns) c.close();
  });

  before(async function () {
    [a, b] = await Promise.all([startEtcd(), startKind(targetB)]);
    conns = [new RawGrpc(a.endpoint), new RawGrpc(b.endpoint)];
    watches = conns.map((c) => {
      const w = c.stream('/etcdserverpb.Watch/Watch');
      w.send(
        etcdserverpb.WatchRequest.encode({
          createRequest: { key: k('\x00'), rangeEnd: k('\x00'), startRevision: 1, prevKv: true },
        }).finish(),
      );
      return w;
    });
    if (process.env.ETCD_TS_DIFF_PERTURB === '1') {
      await conns[1].unary('/etcdserverpb.KV/Put', etcdserverpb.PutRequest.encode({ key: k('perturb'), value: k('x') }).finish());
    }
  });

  calls.forEach((c, i) => {
    it(`#${i + 1} ${c.what}`, async () => {
      const [ra, rb] = await Promise.all(conns.map((conn) => conn.unary(c.path, c.req)));
      const out = (r: typeof ra): string => `${r.status} ${r.message} ${r.body ? show(c.decode(r.body)) : ''}`;
      assert.equal(out(rb), out(ra));
    });
  });

  it('the watch from revision 1 saw the same events', async () => {
    const events = (w: RawStream): string[] =>
      w.messages.flatMap((m) =>
        (etcdserverpb.WatchResponse.decode(m).events ?? []).map((e) => show(mvccpb.Event.toObject(e as mvccpb.Event))),
      );
    const last = (w: RawStream): number =>
      w.messages.reduce(
        (mx, m) => Math.max(mx, ...(etcdserverpb.WatchResponse.decode(m).events ?? []).map((e) => Number(e.kv?.modRevision ?? 0))),
        0,
      );
    const want = Number(
      etcdserverpb.RangeResponse.decode(
        (await conns[0].unary('/etcdserverpb.KV/Range', etcdserverpb.RangeRequest.encode({ key: k('x') }).finish())).body!,
      ).header?.revision,
    );
    await Promise.all(watches.map((w) => w.until(() => last(w) >= want, `events up to revision ${want}`)));
    assert.deepEqual(events(watches[1]), events(watches[0]));
  });
});
