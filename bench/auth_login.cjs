// Authenticate (bcrypt-bound) on etcd 3.4 and etcd-ts, one member each, alternating rounds: logins per
// second from 8 concurrent callers, and the latency of a Maintenance.Status probe every 20 ms meanwhile
// (does a login storm stall other clients?). etcd-ts-bench has no auth yet. Ports 25401-25402.
//   npm run build && DUR=8000 ROUNDS=3 node bench/auth_login.cjs
const http2 = require('node:http2');
const os = require('node:os');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const root = require('node:path').resolve(__dirname, '..');
const { etcdserverpb } = require(root + '/dist/src/shared/gen/etcd');
const CALLERS = 8, DUR = Number(process.env.DUR ?? 8000);
const frame = (b) => { const f = Buffer.alloc(5 + b.length); f.writeUInt32BE(b.length, 1); Buffer.from(b).copy(f, 5); return f; };
function call(sess, p, body) {
  return new Promise((res, rej) => {
    const st = sess.request({ ':method': 'POST', ':path': p, 'content-type': 'application/grpc', te: 'trailers' });
    let status = null; st.on('data', () => {}); st.on('trailers', (t) => { status = t['grpc-status']; });
    st.on('response', (h) => { if (h['grpc-status'] !== undefined) status = h['grpc-status']; });
    st.on('end', () => (status === '0' ? res() : rej(new Error('status ' + status)))); st.on('error', rej); st.end(frame(body));
  });
}
async function round(kind, i) {
  const dir = fs.mkdtempSync(os.tmpdir() + '/auth-bench-');
  const args = ['--name', 'b', '--data-dir', dir + '/data', '--listen-client-urls', 'http://127.0.0.1:25401', '--advertise-client-urls', 'http://127.0.0.1:25401',
    '--listen-peer-urls', 'http://127.0.0.1:25402', '--initial-advertise-peer-urls', 'http://127.0.0.1:25402', '--initial-cluster', 'b=http://127.0.0.1:25402', '--log-level', 'error'];
  const p = kind === 'etcd' ? spawn('/usr/bin/etcd', args, { stdio: 'ignore' }) : spawn('node', [root + '/dist/src/main/cli.js', ...args], { stdio: 'ignore' });
  const ctl = (...a) => execFileSync('etcdctl', ['--endpoints=127.0.0.1:25401', ...a], { env: { ...process.env, ETCDCTL_API: '3' }, stdio: 'ignore' });
  try {
    for (let k = 0; ; k++) { try { ctl('endpoint', 'health'); break; } catch { if (k > 100) throw new Error('no start'); await new Promise((r) => setTimeout(r, 200)); } }
    ctl('user', 'add', 'root:pw'); ctl('user', 'grant-role', 'root', 'root'); ctl('auth', 'enable');
    const sess = http2.connect('http://127.0.0.1:25401');
    const login = etcdserverpb.AuthenticateRequest.encode({ name: 'root', password: 'pw' }).finish();
    const end = Date.now() + DUR; let logins = 0, errors = 0; const lat = [];
    const caller = async () => { while (Date.now() < end) { try { await call(sess, '/etcdserverpb.Auth/Authenticate', login); logins++; } catch { errors++; } } };
    const probe = async () => { while (Date.now() < end) { const t = process.hrtime.bigint(); await call(sess, '/etcdserverpb.Maintenance/Status', new Uint8Array(0)).catch(() => {}); lat.push(Number(process.hrtime.bigint() - t) / 1e6); await new Promise((r) => setTimeout(r, 20)); } };
    await Promise.all([...Array.from({ length: CALLERS }, caller), probe()]);
    sess.close(); lat.sort((a, b) => a - b);
    const r = { round: i, kind, loginsPerSec: +(logins / (DUR / 1000)).toFixed(1), errors, statusP50ms: +lat[lat.length >> 1].toFixed(1), statusP99ms: +lat[Math.floor(lat.length * 0.99)].toFixed(1) };
    console.log(JSON.stringify(r));
    return r;
  } finally {
    p.kill('SIGTERM'); await new Promise((r) => p.on('exit', r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
(async () => {
  const rounds = Number(process.env.ROUNDS ?? 3); const e = [], t = [];
  for (let i = 0; i < rounds; i++) { e.push(await round('etcd', i)); t.push(await round('etcd-ts', i)); }
  const med = (a, f) => [...a].map(f).sort((x, y) => x - y)[a.length >> 1];
  console.log(JSON.stringify({ loginsRatio: +(med(t, (x) => x.loginsPerSec) / med(e, (x) => x.loginsPerSec)).toFixed(2), statusP50: [med(e, (x) => x.statusP50ms), med(t, (x) => x.statusP50ms)], statusP99: [med(e, (x) => x.statusP99ms), med(t, (x) => x.statusP99ms)] }));
})().catch((err) => { console.error(err); process.exit(1); });
