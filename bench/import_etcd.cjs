// Import of an etcd 3.4 data dir (src/main/member/etcd_import.ts): time and peak memory of etcd-ts's
// first start on a data dir real etcd wrote, with etcd's own restart on the same data dir alongside, in
// alternating rounds on fresh copies. etcd's restart only opens its files; etcd-ts's first start reads and
// rewrites the whole database (a one-time cost): the ratio says how much longer the migration start is.
//
//   node bench/import_etcd.cjs [--keys 1000000] [--value-bytes 100] [--rounds 2]
//
// The data dir: --keys keys (`key/<n>`, values of --value-bytes bytes) written in Txns of 1000 puts
// (etcd --max-txn-ops 1000), then etcd stops cleanly. Peak memory is the process's max RSS from
// /usr/bin/time -v, measured from start until it serves (then SIGTERM).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync, execFileSync } = require('node:child_process');
const root = path.resolve(__dirname, '..');
const { Etcd3 } = require('etcd3');

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? def : Number(process.argv[i + 1]);
};
const keys = arg('keys', 1_000_000);
const valueBytes = arg('value-bytes', 100);
const rounds = arg('rounds', 2);
const txnOps = 1000;
const port = 24790;

function flags(dir) {
  const c = `http://127.0.0.1:${port}`;
  const p = `http://127.0.0.1:${port + 1}`;
  return [
    '--name',
    'default',
    '--data-dir',
    dir,
    '--listen-client-urls',
    c,
    '--advertise-client-urls',
    c,
    '--listen-peer-urls',
    p,
    '--initial-advertise-peer-urls',
    p,
    '--initial-cluster',
    `default=${p}`,
  ];
}

/** etcdctl 3.4 prints the health line on stderr. */
function healthy() {
  const r = spawnSync('etcdctl', [`--endpoints=127.0.0.1:${port}`, 'endpoint', 'health', '--dial-timeout=1s', '--command-timeout=2s'], {
    encoding: 'utf8',
  });
  return r.status === 0 && `${r.stdout}${r.stderr}`.includes('is healthy');
}

/** Starts cmd under /usr/bin/time -v, waits until it serves, stops it; ms until healthy, max RSS KiB, stderr. */
async function timedStart(cmd, args) {
  const t0 = Date.now();
  const child = spawn('/usr/bin/time', ['-v', cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise((r) => child.on('exit', r));
  let ready = -1;
  while (Date.now() - t0 < 1_200_000) {
    if (child.exitCode !== null) throw new Error(`exited early:\n${err.slice(-3000)}`);
    if (healthy()) {
      ready = Date.now() - t0;
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  // /usr/bin/time's child is the server: signal it (time itself forwards nothing).
  const pid = Number(
    execFileSync('pgrep', ['-P', String(child.pid)])
      .toString()
      .trim()
      .split('\n')[0],
  );
  process.kill(pid, 'SIGTERM');
  await exited;
  const rss = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(err)[1]);
  return { ready, rss, err };
}

async function load(dir) {
  const etcd = spawn(
    'etcd',
    [
      ...flags(dir),
      '--max-txn-ops',
      String(txnOps),
      '--quota-backend-bytes',
      String(8 * 2 ** 30),
      '--log-level',
      'warn',
      '--logger',
      'zap',
    ],
    { stdio: 'ignore' },
  );
  while (!healthy()) await new Promise((r) => setTimeout(r, 100));
  const client = new Etcd3({ hosts: `http://127.0.0.1:${port}` });
  const value = Buffer.alloc(valueBytes, 'v');
  const t0 = Date.now();
  let next = 0;
  const worker = async () => {
    while (next < keys) {
      const from = next;
      next = Math.min(keys, next + txnOps);
      const success = [];
      for (let i = from; i < next; i++) success.push({ request_put: { key: Buffer.from(`key/${String(i).padStart(8, '0')}`), value } });
      await client.kv.txn({ success });
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  client.close();
  etcd.kill('SIGTERM');
  await new Promise((r) => etcd.on('exit', r));
  return Date.now() - t0;
}

async function main() {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'import-bench-'));
  try {
    const src = path.join(base, 'etcd');
    const loadMs = await load(src);
    const dbBytes = fs.statSync(path.join(src, 'member', 'snap', 'db')).size;
    console.log(
      `uptime: ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    console.log(
      `data dir: ${keys} keys, ${valueBytes}-byte values, db ${(dbBytes / 2 ** 20).toFixed(0)} MiB, loaded in ${(loadMs / 1000).toFixed(1)} s`,
    );
    const rows = [];
    for (let r = 0; r < rounds; r++) {
      for (const kind of ['etcd', 'etcd-ts']) {
        const dir = path.join(base, `${kind}-${r}`);
        fs.cpSync(src, dir, { recursive: true });
        const res =
          kind === 'etcd'
            ? await timedStart('etcd', [
                ...flags(dir),
                '--quota-backend-bytes',
                String(8 * 2 ** 30),
                '--log-level',
                'warn',
                '--logger',
                'zap',
              ])
            : await timedStart(process.execPath, [
                path.join(root, 'dist/src/main/cli.js'),
                ...flags(dir),
                '--quota-backend-bytes',
                String(8 * 2 ** 30),
              ]);
        let importMs = '';
        if (kind === 'etcd-ts') {
          const line = res.err.split('\n').find((l) => l.includes('"imported the etcd data dir"'));
          if (!line) throw new Error(`no import line:\n${res.err.slice(-3000)}`);
          importMs = JSON.parse(line).ms;
        }
        rows.push({ round: r + 1, kind, readyMs: res.ready, importMs, maxRssMiB: Math.round(res.rss / 1024) });
        console.log(JSON.stringify(rows[rows.length - 1]));
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
    const med = (k) => {
      const v = rows
        .filter((x) => x.kind === k)
        .map((x) => x.readyMs)
        .sort((a, b) => a - b);
      return v[Math.floor(v.length / 2)];
    };
    console.log(
      `ready ms, median: etcd ${med('etcd')}, etcd-ts (import) ${med('etcd-ts')}, ratio ${(med('etcd-ts') / med('etcd')).toFixed(1)}x`,
    );
    console.log(
      `uptime: ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
