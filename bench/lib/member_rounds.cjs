// Shared by the auth and audit benchmark scripts (bench/auth_kv.cjs, auth_login.cjs, audit_put.cjs),
// which etcd-ts-bench cannot run yet (it sends no token): raw gRPC calls over node:http2, a fresh
// one-member etcd 3.4 or etcd-ts per round in its own temp dir, auth enabled with a root user, and a
// closed loop of clients.
const http2 = require('node:http2');
const os = require('node:os');
const fs = require('node:fs');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const root = path.resolve(__dirname, '..', '..');
const { etcdserverpb } = require(root + '/dist/src/shared/gen/etcd');

function frame(b) {
  const f = Buffer.alloc(5 + b.length);
  f.writeUInt32BE(b.length, 1);
  Buffer.from(b).copy(f, 5);
  return f;
}

/** One unary call; resolves with the response message, rejects on a non-OK status. */
function call(sess, p, body, token) {
  return new Promise((res, rej) => {
    const h = { ':method': 'POST', ':path': p, 'content-type': 'application/grpc', te: 'trailers' };
    if (token) h.token = token;
    const st = sess.request(h);
    const chunks = [];
    let status = null;
    st.on('data', (c) => chunks.push(c));
    st.on('trailers', (t) => { status = t['grpc-status']; });
    st.on('response', (hh) => { if (hh['grpc-status'] !== undefined) status = hh['grpc-status']; });
    st.on('end', () => (status === '0' ? res(Buffer.concat(chunks).subarray(5)) : rej(new Error('status ' + status))));
    st.on('error', rej);
    st.end(frame(body));
  });
}

/**
 * Starts a one-member etcd ('etcd') or etcd-ts on clientPort/clientPort+1 with extraArgs, waits until it
 * is healthy, runs fn({ endpoint, dir, ctl, connect, enableAuth }), then stops it and removes its dir.
 */
async function withMember(kind, clientPort, extraArgs, fn) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'member-bench-'));
  const c = `http://127.0.0.1:${clientPort}`;
  const pu = `http://127.0.0.1:${clientPort + 1}`;
  const args = ['--name', 'b', '--data-dir', dir + '/data', '--listen-client-urls', c, '--advertise-client-urls', c,
    '--listen-peer-urls', pu, '--initial-advertise-peer-urls', pu, '--initial-cluster', `b=${pu}`, '--log-level', 'error', ...extraArgs];
  const p = kind === 'etcd' ? spawn('/usr/bin/etcd', args, { stdio: 'ignore' }) : spawn('node', [root + '/dist/src/main/cli.js', ...args], { stdio: 'ignore' });
  const ctl = (...a) => execFileSync('etcdctl', [`--endpoints=127.0.0.1:${clientPort}`, ...a], { env: { ...process.env, ETCDCTL_API: '3' }, stdio: 'ignore' });
  const sessions = [];
  try {
    for (let k = 0; ; k++) {
      try { ctl('endpoint', 'health'); break; } catch { if (k > 100) throw new Error(`${kind} did not start`); await new Promise((r) => setTimeout(r, 200)); }
    }
    const connect = () => { const s = http2.connect(c); sessions.push(s); return s; };
    const enableAuth = async () => {
      ctl('user', 'add', 'root:pw'); ctl('user', 'grant-role', 'root', 'root'); ctl('auth', 'enable');
      const body = etcdserverpb.AuthenticateRequest.encode({ name: 'root', password: 'pw' }).finish();
      return etcdserverpb.AuthenticateResponse.decode(await call(connect(), '/etcdserverpb.Auth/Authenticate', body)).token;
    };
    return await fn({ dir, ctl, connect, enableAuth });
  } finally {
    for (const s of sessions) s.close();
    p.kill('SIGTERM');
    await new Promise((r) => p.on('exit', r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** `clients` closed-loop callers over `sessions` for warmMs then durMs: calls per second and errors. */
async function closedLoop(sessions, clients, p, bodies, token, warmMs, durMs) {
  let count = 0, errors = 0, measuring = false, stop = false;
  const client = async (i) => {
    const s = sessions[i % sessions.length];
    while (!stop) {
      try { await call(s, p, bodies[(Math.random() * bodies.length) | 0], token); if (measuring) count++; } catch { errors++; }
    }
  };
  const all = Array.from({ length: clients }, (_, i) => client(i));
  await new Promise((r) => setTimeout(r, warmMs));
  measuring = true;
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, durMs));
  measuring = false;
  const secs = (Date.now() - t0) / 1000;
  stop = true;
  await Promise.all(all);
  return { perSec: Math.round(count / secs), errors };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

module.exports = { root, etcdserverpb, call, withMember, closedLoop, median };
