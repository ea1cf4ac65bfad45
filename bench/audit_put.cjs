// Put throughput of one etcd-ts member with auth enabled (a simple token in the `token` metadata), with
// the audit log off and in batch mode, alternating rounds (etcd-ts-bench has no auth yet). Ports 25301-25302.
//   npm run build && DUR=8000 ROUNDS=3 node bench/audit_put.cjs
const http2 = require('node:http2');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const root = require("node:path").resolve(__dirname, "..");
const { etcdserverpb } = require(root + '/dist/src/shared/gen/etcd');
const CONNS = 8, CLIENTS = 200, WARM = 2000, DUR = Number(process.env.DUR ?? 10000);
function frame(b) { const f = Buffer.alloc(5 + b.length); f.writeUInt32BE(b.length, 1); Buffer.from(b).copy(f, 5); return f; }
function call(sess, p, body, token) {
  return new Promise((res, rej) => {
    const h = { ':method': 'POST', ':path': p, 'content-type': 'application/grpc', te: 'trailers' };
    if (token) h.token = token;
    const st = sess.request(h); const chunks = []; let status = null;
    st.on('data', (c) => chunks.push(c)); st.on('trailers', (t) => { status = t['grpc-status']; });
    st.on('response', (h) => { if (h['grpc-status'] !== undefined) status = h['grpc-status']; });
    st.on('end', () => { const b = Buffer.concat(chunks); status === '0' ? res(b.subarray(5)) : rej(new Error('status ' + status)); });
    st.on('error', rej); st.end(frame(body));
  });
}
async function round(audit, i) {
  const dir = fs.mkdtempSync(require('node:os').tmpdir() + '/audit-bench-');
  const args = ['--name', 'b', '--data-dir', dir + '/data', '--listen-client-urls', 'http://127.0.0.1:25301', '--advertise-client-urls', 'http://127.0.0.1:25301',
    '--listen-peer-urls', 'http://127.0.0.1:25302', '--initial-advertise-peer-urls', 'http://127.0.0.1:25302', '--initial-cluster', 'b=http://127.0.0.1:25302', '--log-level', 'error'];
  if (audit) args.push('--audit-log-path', dir + '/audit.log', '--audit-log-mode', audit);
  const p = spawn('node', [root + '/dist/src/main/cli.js', ...args], { stdio: 'ignore' });
  const ctl = (...a) => execFileSync('etcdctl', ['--endpoints=127.0.0.1:25301', ...a], { env: { ...process.env, ETCDCTL_API: '3' } });
  for (let k = 0; ; k++) { try { ctl('endpoint', 'health'); break; } catch { if (k > 100) throw new Error('no start'); await new Promise((r) => setTimeout(r, 200)); } }
  ctl('user', 'add', 'root:pw'); ctl('user', 'grant-role', 'root', 'root'); ctl('auth', 'enable');
  const sessions = Array.from({ length: CONNS }, () => http2.connect('http://127.0.0.1:25301'));
  const auth = etcdserverpb.AuthenticateResponse.decode(await call(sessions[0], '/etcdserverpb.Auth/Authenticate', etcdserverpb.AuthenticateRequest.encode({ name: 'root', password: 'pw' }).finish()));
  const token = auth.token;
  const val = Buffer.alloc(256, 0x76);
  const bodies = Array.from({ length: 10000 }, (_, k) => etcdserverpb.PutRequest.encode({ key: Buffer.from(String(k).padStart(16, '0')), value: val }).finish());
  let count = 0, errors = 0, measuring = false, stop = false;
  const client = async (c) => { const s = sessions[c % CONNS]; while (!stop) { try { await call(s, '/etcdserverpb.KV/Put', bodies[(Math.random() * 10000) | 0], token); if (measuring) count++; } catch { errors++; } } };
  const all = Array.from({ length: CLIENTS }, (_, c) => client(c));
  await new Promise((r) => setTimeout(r, WARM)); measuring = true;
  const t0 = Date.now(); await new Promise((r) => setTimeout(r, DUR)); measuring = false; const secs = (Date.now() - t0) / 1000;
  stop = true; await Promise.all(all); for (const s of sessions) s.close();
  p.kill('SIGTERM'); await new Promise((r) => p.on('exit', r));
  let lines = 0; if (audit) lines = fs.readFileSync(dir + '/audit.log', 'utf8').split('\n').length - 1;
  fs.rmSync(dir, { recursive: true, force: true });
  const rate = count / secs;
  console.log(JSON.stringify({ round: i, audit: audit || 'off', putsPerSec: Math.round(rate), errors, auditLines: lines }));
  return rate;
}
(async () => {
  const rounds = Number(process.env.ROUNDS ?? 3); const off = [], on = [];
  for (let i = 0; i < rounds; i++) { off.push(await round(null, i)); on.push(await round('batch', i)); }
  const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
  console.log(JSON.stringify({ offMedian: Math.round(med(off)), batchMedian: Math.round(med(on)), ratio: +(med(on) / med(off)).toFixed(3), perRoundRatios: on.map((v, i) => +(v / off[i]).toFixed(3)) }));
})().catch((e) => { console.error(e); process.exit(1); });
