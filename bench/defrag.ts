// Defragment under load, etcd 3.4 against etcd-ts on the same machine. For each server: fill a store
// with --mb MiB of 64 KiB values, delete 90% of the keys, compact physically; then run --writers
// writers (put a 1 KiB value, read it back, repeat) for 2 s without a defragmentation (the baseline)
// and then while `Maintenance.Defragment` runs. Prints the database size before and after, how long
// the defragmentation took, and the longest put and get latency with and without it. Not a test: it
// asserts nothing about speed.
//
//   npm run build && node dist/bench/defrag.js --mb 1024 --writers 8
//   node dist/bench/defrag.js --mb 256 --only etcd-ts [--port 26000]
import { etcdserverpb } from '../src/shared/gen/etcd';
import { RawGrpc } from '../test/support/grpc_raw';
import { removeDataDir, Server, ServerKind, startKind } from '../test/support/procs';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

const MB = Number(arg('mb', '256'));
const WRITERS = Number(arg('writers', '8'));
const ONLY = arg('only', '');
/** defrag (default), or hashkv: the same window with full HashKV scans instead (a long read transaction
 *  without a defragmentation, to tell LMDB troubles of long readers from the defragmentation's own). */
const OP = arg('op', 'defrag');
/** Client port (the peer port is the next one); default: free ports the OS picks. */
const PORT = Number(arg('port', '0'));
const VALUE = Buffer.alloc(64 * 1024, 0x61);

async function call(c: RawGrpc, method: string, body: Uint8Array): Promise<Buffer> {
  const r = await c.unary(method, body);
  if (r.status !== 0) throw new Error(`${method}: ${r.status} ${r.message}`);
  return r.body as Buffer;
}

async function fill(s: Server): Promise<void> {
  const c = new RawGrpc(s.endpoint);
  const n = (MB * 1024 * 1024) / VALUE.length;
  for (let i = 0; i < n; i += 32) {
    await Promise.all(
      Array.from({ length: Math.min(32, n - i) }, (_, j) =>
        call(
          c,
          '/etcdserverpb.KV/Put',
          etcdserverpb.PutRequest.encode({ key: Buffer.from(`fill/${String(i + j).padStart(8, '0')}`), value: VALUE }).finish(),
        ),
      ),
    );
  }
  // Delete 90%: every key whose number does not end in 0.
  for (let i = 0; i < n; i++) {
    if (i % 10 === 0) continue;
    await call(
      c,
      '/etcdserverpb.KV/DeleteRange',
      etcdserverpb.DeleteRangeRequest.encode({ key: Buffer.from(`fill/${String(i).padStart(8, '0')}`) }).finish(),
    );
  }
  const st = etcdserverpb.StatusResponse.decode(await call(c, '/etcdserverpb.Maintenance/Status', new Uint8Array(0)));
  await call(
    c,
    '/etcdserverpb.KV/Compact',
    etcdserverpb.CompactionRequest.encode({ revision: st.header?.revision, physical: true }).finish(),
  );
  c.close();
}

async function dbSize(s: Server): Promise<number> {
  const c = new RawGrpc(s.endpoint);
  const st = etcdserverpb.StatusResponse.decode(await call(c, '/etcdserverpb.Maintenance/Status', new Uint8Array(0)));
  c.close();
  return Number(st.dbSize);
}

interface LoadResult {
  ops: number;
  maxPutMs: number;
  maxGetMs: number;
  p99PutMs: number;
}

/** Writers until `until` resolves; every put and get timed. */
async function load(s: Server, until: Promise<unknown>): Promise<LoadResult> {
  let done = false;
  void until.then(() => (done = true));
  const puts: number[] = [];
  const gets: number[] = [];
  const value = Buffer.alloc(1024, 0x62);
  const writer = async (w: number): Promise<void> => {
    const c = new RawGrpc(s.endpoint);
    for (let i = 0; !done; i++) {
      const key = Buffer.from(`load/${w}/${i % 1000}`);
      let t = performance.now();
      await call(c, '/etcdserverpb.KV/Put', etcdserverpb.PutRequest.encode({ key, value }).finish());
      puts.push(performance.now() - t);
      t = performance.now();
      await call(c, '/etcdserverpb.KV/Range', etcdserverpb.RangeRequest.encode({ key }).finish());
      gets.push(performance.now() - t);
    }
    c.close();
  };
  await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
  puts.sort((a, b) => a - b);
  return {
    ops: puts.length,
    maxPutMs: puts[puts.length - 1] ?? 0,
    maxGetMs: Math.max(0, ...gets),
    p99PutMs: puts[Math.floor(puts.length * 0.99)] ?? 0,
  };
}

const fmt = (r: LoadResult): string =>
  `${r.ops} put+get pairs, put p99 ${r.p99PutMs.toFixed(1)} ms, longest put ${r.maxPutMs.toFixed(1)} ms, longest get ${r.maxGetMs.toFixed(1)} ms`;

async function run(kind: ServerKind): Promise<void> {
  const ports = PORT > 0 ? { clientPort: PORT, peerPort: PORT + 1 } : {};
  const s = await startKind(kind, { logLevel: 'info', ...ports });
  try {
    const t0 = performance.now();
    await fill(s);
    const before = await dbSize(s);
    console.log(
      `${kind}: filled ${MB} MiB, deleted 90%, compacted in ${((performance.now() - t0) / 1000).toFixed(1)} s; db ${before} bytes`,
    );
    const base = await load(s, new Promise((r) => setTimeout(r, 2000)));
    console.log(`${kind}: without defrag (2 s): ${fmt(base)}`);
    const c = new RawGrpc(s.endpoint);
    const t1 = performance.now();
    let defragMs = 0;
    let defragError: unknown = null;
    const defrag = (async () => {
      await new Promise((r) => setTimeout(r, 300)); // load first
      const t = performance.now();
      if (OP === 'hashkv') for (let i = 0; i < 5; i++) await call(c, '/etcdserverpb.Maintenance/HashKV', new Uint8Array(0));
      else await call(c, '/etcdserverpb.Maintenance/Defragment', new Uint8Array(0));
      defragMs = performance.now() - t;
      await new Promise((r) => setTimeout(r, 300));
    })().catch((e: unknown) => {
      defragError = e;
    });
    const during = await load(s, defrag);
    if (defragError !== null) throw defragError;
    c.close();
    const after = await dbSize(s);
    console.log(
      `${kind}: defrag ${defragMs.toFixed(0)} ms (load window ${(performance.now() - t1).toFixed(0)} ms); db ${before} -> ${after} bytes`,
    );
    console.log(`${kind}: during defrag: ${fmt(during)}`);
    if (kind === 'etcd-ts') {
      const line = s
        .stderr()
        .split('\n')
        .find((l) => l.includes('"msg":"defragmented"'));
      if (line) console.log(`${kind}: server log: ${line}`);
    }
  } catch (e) {
    console.error(`${kind}: failed; server stderr (tail):\n${s.stderr().split('\n').slice(-40).join('\n')}`);
    throw e;
  } finally {
    await s.stop();
    removeDataDir(s);
  }
}

async function main(): Promise<void> {
  for (const kind of ['etcd', 'etcd-ts'] as ServerKind[]) if (ONLY === '' || ONLY === kind) await run(kind);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
