// Authenticate (bcrypt-bound) on etcd 3.4 and etcd-ts, one member each, alternating rounds: logins per
// second from 8 concurrent callers, and the latency of a Maintenance.Status probe every 20 ms meanwhile
// (does a login storm stall other clients?). etcd-ts-bench has no auth yet. Ports 25401-25402.
//   npm run build && DUR=8000 ROUNDS=3 node bench/auth_login.cjs
const { etcdserverpb, call, withMember, median } = require('./lib/member_rounds.cjs');
const CALLERS = 8, DUR = Number(process.env.DUR ?? 8000);
const login = etcdserverpb.AuthenticateRequest.encode({ name: 'root', password: 'pw' }).finish();

function round(kind, i) {
  return withMember(kind, 25401, [], async (m) => {
    await m.enableAuth();
    const sess = m.connect();
    const end = Date.now() + DUR;
    let logins = 0, errors = 0;
    const lat = [];
    const caller = async () => { while (Date.now() < end) { try { await call(sess, '/etcdserverpb.Auth/Authenticate', login); logins++; } catch { errors++; } } };
    const probe = async () => {
      while (Date.now() < end) {
        const t = process.hrtime.bigint();
        await call(sess, '/etcdserverpb.Maintenance/Status', new Uint8Array(0)).catch(() => {});
        lat.push(Number(process.hrtime.bigint() - t) / 1e6);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await Promise.all([...Array.from({ length: CALLERS }, caller), probe()]);
    lat.sort((a, b) => a - b);
    const r = { round: i, kind, loginsPerSec: +(logins / (DUR / 1000)).toFixed(1), errors, statusP50ms: +lat[lat.length >> 1].toFixed(1), statusP99ms: +lat[Math.floor(lat.length * 0.99)].toFixed(1) };
    console.log(JSON.stringify(r));
    return r;
  });
}

(async () => {
  const rounds = Number(process.env.ROUNDS ?? 3);
  const e = [], t = [];
  for (let i = 0; i < rounds; i++) { e.push(await round('etcd', i)); t.push(await round('etcd-ts', i)); }
  const med = (a, f) => median(a.map(f));
  console.log(JSON.stringify({
    loginsRatio: +(med(t, (x) => x.loginsPerSec) / med(e, (x) => x.loginsPerSec)).toFixed(2),
    statusP50: [med(e, (x) => x.statusP50ms), med(t, (x) => x.statusP50ms)],
    statusP99: [med(e, (x) => x.statusP99ms), med(t, (x) => x.statusP99ms)],
  }));
})().catch((err) => { console.error(err); process.exit(1); });
