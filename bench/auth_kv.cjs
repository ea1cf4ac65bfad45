// Put and serializable Range with a simple token (auth enabled, a root user), etcd 3.4 against etcd-ts,
// and etcd-ts without auth: closed loop, 200 clients over 8 HTTP/2 connections, 256-byte values over
// 10,000 keys, alternating servers per round (etcd-ts-bench has no auth yet). Ports 25501-25502.
//   npm run build && DUR=5000 ROUNDS=3 node bench/auth_kv.cjs
const { etcdserverpb, withMember, closedLoop, median } = require('./lib/member_rounds.cjs');
const CONNS = 8, CLIENTS = 200, WARM = 1500, DUR = Number(process.env.DUR ?? 5000);
const val = Buffer.alloc(256, 0x76);
const keys = Array.from({ length: 10000 }, (_, k) => Buffer.from(String(k).padStart(16, '0')));
const puts = keys.map((key) => etcdserverpb.PutRequest.encode({ key, value: val }).finish());
const ranges = keys.map((key) => etcdserverpb.RangeRequest.encode({ key, serializable: true }).finish());

function round(kind, auth, i) {
  return withMember(kind, 25501, [], async (m) => {
    const token = auth ? await m.enableAuth() : undefined;
    const sessions = Array.from({ length: CONNS }, () => m.connect());
    const put = await closedLoop(sessions, CLIENTS, '/etcdserverpb.KV/Put', puts, token, WARM, DUR);
    const range = await closedLoop(sessions, CLIENTS, '/etcdserverpb.KV/Range', ranges, token, WARM, DUR);
    const r = { round: i, kind, auth, putPerSec: put.perSec, rangePerSec: range.perSec, errors: put.errors + range.errors };
    console.log(JSON.stringify(r));
    return r;
  });
}

(async () => {
  const rounds = Number(process.env.ROUNDS ?? 3);
  const out = { etcd: [], ts: [], tsNoAuth: [] };
  for (let i = 0; i < rounds; i++) {
    out.etcd.push(await round('etcd', true, i));
    out.ts.push(await round('etcd-ts', true, i));
    out.tsNoAuth.push(await round('etcd-ts', false, i));
  }
  const m = (k, f) => median(out[k].map(f));
  const put = (x) => x.putPerSec, range = (x) => x.rangePerSec;
  console.log(JSON.stringify({
    putVsEtcdAuth: +(m('ts', put) / m('etcd', put)).toFixed(2),
    rangeVsEtcdAuth: +(m('ts', range) / m('etcd', range)).toFixed(2),
    putVsOwnNoAuth: +(m('ts', put) / m('tsNoAuth', put)).toFixed(2),
    rangeVsOwnNoAuth: +(m('ts', range) / m('tsNoAuth', range)).toFixed(2),
  }));
})().catch((err) => { console.error(err); process.exit(1); });
