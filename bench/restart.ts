// Restart cost with a large store: loads N keys (txns of 100 puts), stops the server cleanly,
// starts it again on the same data dir and measures the time from spawn until GET /health first
// answers healthy (polled every 5 ms; both servers answer it only with a leader and applied state),
// and the resident memory once ready. Runs Debian's etcd
// and etcd-ts one after the other on fresh data dirs. Not a test: it asserts nothing on speed.
//
//   node dist/bench/restart.js [--keys 632000] [--value-bytes 100]
import * as http2 from 'node:http2';
import { etcdserverpb } from '../src/shared/gen/etcd';
import { frameGrpc } from './lib/h2_client';
import { rssKiB } from './lib/proc';
import { removeDataDir, Server, ServerKind, startKind } from '../test/support/procs';

interface Args { keys: number; valueBytes: number }

function parseArgs(argv: string[]): Args {
  const a: Args = { keys: 632_000, valueBytes: 100 };
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '--keys') a.keys = Number(argv[i + 1]);
    else if (argv[i] === '--value-bytes') a.valueBytes = Number(argv[i + 1]);
    else throw new Error(`unknown argument ${argv[i]} (--keys N --value-bytes N)`);
  }
  return a;
}

function unary(session: http2.ClientHttp2Session, path: string, msg: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
    let status = '';
    const take = (h: http2.IncomingHttpHeaders): void => { if (h['grpc-status'] !== undefined) status = String(h['grpc-status']); };
    req.on('response', take);
    req.on('trailers', take);
    req.on('data', () => { /* response body not needed */ });
    req.on('end', () => (status === '0' ? resolve() : reject(new Error(`grpc-status ${status}`))));
    req.on('error', reject);
    req.end(frameGrpc(msg));
  });
}

async function load(s: Server, a: Args): Promise<void> {
  const session = http2.connect(s.clientUrl);
  const value = Buffer.alloc(a.valueBytes, 0x76);
  const perTxn = 100;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < a.keys) {
      const from = next;
      next = Math.min(a.keys, next + perTxn);
      const success = [];
      for (let i = from; i < next; i++) success.push({ requestPut: { key: Buffer.from(`key-${String(i).padStart(8, '0')}`), value } });
      await unary(session, '/etcdserverpb.KV/Txn', etcdserverpb.TxnRequest.encode({ success }).finish());
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  session.close();
}

function rssMiB(pid: number): number {
  return Math.round(rssKiB(pid) / 1024);
}

async function measure(kind: ServerKind, a: Args): Promise<{ loadS: number; restartMs: number; rssMiB: number }> {
  const s = await startKind(kind, { logLevel: 'error' });
  try {
    const t0 = Date.now();
    await load(s, a);
    const loadS = (Date.now() - t0) / 1000;
    await s.stop('SIGTERM');
    await s.restart();
    const restartMs = s.readyMs;
    return { loadS, restartMs, rssMiB: rssMiB(s.pid) };
  } finally {
    await s.stop('SIGTERM');
    removeDataDir(s);
  }
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const rows: string[] = [];
  for (const kind of ['etcd', 'etcd-ts'] as ServerKind[]) {
    const r = await measure(kind, a);
    console.error(`${kind}: loaded ${a.keys} keys in ${r.loadS.toFixed(1)} s; ready ${r.restartMs} ms after restart; RSS ${r.rssMiB} MiB`);
    rows.push(`| ${kind} | ${a.keys} | ${r.restartMs} | ${r.rssMiB} |`);
  }
  console.log(['| server | keys | ready after restart (ms) | RSS when ready (MiB) |', '|---|---:|---:|---:|', ...rows].join('\n'));
  console.log(`\nCommand: \`node dist/bench/restart.js --keys ${a.keys} --value-bytes ${a.valueBytes}\``);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
