// Put and serializable Range with a simple token (auth enabled, a root user), etcd 3.4 against etcd-ts,
// and etcd-ts without auth: closed loop, 200 clients over 8 HTTP/2 connections, 256-byte values over
// 10,000 keys, alternating servers per round (etcd-ts-bench has no auth yet). Ports 25501-25502.
//   npm run build && DUR=5000 ROUNDS=3 node bench/auth_kv.cjs
const http2 = require('node:http2');
const os = require('node:os');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const root = require('node:path').resolve(__dirname, '..');
const { etcdserverpb } = require(root + '/dist/src/shared/gen/etcd');
const CONNS = 8, CLIENTS = 200, WARM = 1500, DUR = Number(process.env.DUR ?? 5000);
const frame = (b) => { const f = Buffer.alloc(5 + b.length); f.writeUInt32BE(b.length, 1); Buffer.from(b).copy(f, 5); return f; };
function call(sess, p, body, token) {
  return new Promise((res, rej) => {
    const h = { ':method': 'POST', ':path': p, 'content-type': 'application/grpc', te: 'trailers' };
    if (token) h.token = token;
    const st = sess.request(h); const chunks = []; let status = null;
    st.on('data', (c) => chunks.push(c)); st.on('trailers', (t) => { status = t['grpc-status']; });
    st.on('response', (hh) => { if (hh['grpc-status'] !== undefined) status = hh['grpc-status']; });
    st.on('end', () => (status === '0' ? res(Buffer.concat(chunks).subarray(5)) : rej(new Error('status ' + status)))); st.on('error', rej); st.end(frame(body));
  });
}
async function run(sessions, path, bodies, token) {
  let count = 0, errors = 0, measuring = false, stop = false;
  const client = async (c) => { const s = sessions[c % CONNS]; while (!stop) { try { await call(s, path, bodies[(Math.random() * bodies.length) | 0], token); if (measuring) count++; } catch { errors++; } } };
  const all = Array.from({ length: CLIENTS }, (_, c) => client(c));
  await new Promise((r) => setTimeout(r, WARM)); measuring = true;
  const t0 = Date.now(); await new Promise((r) => setTimeout(r, DUR)); measuring = false; const secs = (Date.now() - t0) / 1000;
  stop = true; await Promise.all(all);
  return { perSec: Math.round(count / secs), errors };
}
async function round(kind, auth, i) {
  const dir = fs.mkdtempSync(os.tmpdir() + '/authkv-bench-');
  const args = ['--name', 'b', '--data-dir', dir + '/data', '--listen-client-urls', 'http://127.0.0.1:25501', '--advertise-client-urls', 'http://127.0.0.1:25501',
    '--listen-peer-urls', 'http://127.0.0.1:25502', '--initial-advertise-peer-urls', 'http://127.0.0.1:25502', '--initial-cluster', 'b=http://127.0.0.1:25502', '--log-level', 'error'];
  const p = kind === 'etcd' ? spawn('/usr/bin/etcd', args, { stdio: 'ignore' }) : spawn('node', [root + '/dist/src/main/cli.js', ...args], { stdio: 'ignore' });
  const ctl = (...a) => execFileSync('etcdctl', ['--endpoints=127.0.0.1:25501', ...a], { env: { ...process.env, ETCDCTL_API: '3' }, stdio: 'ignore' });
  try {
    for (let k = 0; ; k++) { try { ctl('endpoint', 'health'); break; } catch { if (k > 100) throw new Error('no start'); await new Promise((r) => setTimeout(r, 200)); } }
    let token;
    const sessions = Array.from({ length: CONNS }, () => http2.connect('http://127.0.0.1:25501'));
    if (auth) {
      ctl('user', 'add', 'root:pw'); ctl('user', 'grant-role', 'root', 'root'); ctl('auth', 'enable');
      token = etcdserverpb.AuthenticateResponse.decode(await call(sessions[0], '/etcdserverpb.Auth/Authenticate', etcdserverpb.AuthenticateRequest.encode({ name: 'root', password: 'pw' }).finish())).token;
    }
    const val = Buffer.alloc(256, 0x76);
    const keys = Array.from({ length: 10000 }, (_, k) => Buffer.from(String(k).padStart(16, '0')));
    const puts = keys.map((key) => etcdserverpb.PutRequest.encode({ key, value: val }).finish());
    const ranges = keys.map((key) => etcdserverpb.RangeRequest.encode({ key, serializable: true }).finish());
    const put = await run(sessions, '/etcdserverpb.KV/Put', puts, token);
    const range = await run(sessions, '/etcdserverpb.KV/Range', ranges, token);
    for (const s of sessions) s.close();
    const r = { round: i, kind, auth, putPerSec: put.perSec, rangePerSec: range.perSec, errors: put.errors + range.errors };
    console.log(JSON.stringify(r));
    return r;
  } finally {
    p.kill('SIGTERM'); await new Promise((r) => p.on('exit', r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
(async () => {
  const rounds = Number(process.env.ROUNDS ?? 3); const out = { etcd: [], ts: [], tsNoAuth: [] };
  for (let i = 0; i < rounds; i++) { out.etcd.push(await round('etcd', true, i)); out.ts.push(await round('etcd-ts', true, i)); out.tsNoAuth.push(await round('etcd-ts', false, i)); }
  const med = (a, f) => [...a].map(f).sort((x, y) => x - y)[a.length >> 1];
  const m = (k, f) => med(out[k], f);
  console.log(JSON.stringify({
    putVsEtcdAuth: +(m('ts', (x) => x.putPerSec) / m('etcd', (x) => x.putPerSec)).toFixed(2),
    rangeVsEtcdAuth: +(m('ts', (x) => x.rangePerSec) / m('etcd', (x) => x.rangePerSec)).toFixed(2),
    putVsOwnNoAuth: +(m('ts', (x) => x.putPerSec) / m('tsNoAuth', (x) => x.putPerSec)).toFixed(2),
    rangeVsOwnNoAuth: +(m('ts', (x) => x.rangePerSec) / m('tsNoAuth', (x) => x.rangePerSec)).toFixed(2),
  }));
})().catch((err) => { console.error(err); process.exit(1); });
