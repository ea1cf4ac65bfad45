// `etcdctl snapshot save` speed, etcd 3.4 against etcd-ts on the same machine, and what a snapshot costs
// the writers. Both servers are started once and filled with --keys keys of --value bytes (Txns of 128
// puts); then, for --rounds rounds, alternating between the servers: --writers closed-loop writers put
// for --ms without a snapshot (the baseline), then put while `etcdctl snapshot save` runs. Prints per
// server the snapshot's size, its save time and MB/s (etcdctl's whole run: the file made, sent, written
// and fsynced), and puts/s with and without a snapshot, with medians over the rounds and ratios. Not a
// test: it asserts nothing about speed.
//
//   npm run build && node dist/bench/snapshot_save.js --keys 1000000 --value 256 --writers 8 --rounds 3
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { etcdserverpb } from '../src/shared/gen/etcd';
import { etcdctl } from '../test/support/etcdctl';
import { RawGrpc } from '../test/support/grpc_raw';
import { removeDataDir, Server, ServerKind, startKind, stopAllServers } from '../test/support/procs';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : def;
}

const KEYS = Number(arg('keys', '200000'));
const VALUE = Buffer.alloc(Number(arg('value', '256')), 0x61);
const WRITERS = Number(arg('writers', '8'));
const ROUNDS = Number(arg('rounds', '3'));
const MS = Number(arg('ms', '3000'));
const ONLY = arg('only', '');
const TXN_OPS = 128;

async function call(c: RawGrpc, method: string, body: Uint8Array): Promise<void> {
  const r = await c.unary(method, body);
  if (r.status !== 0) throw new Error(`${method}: ${r.status} ${r.message}`);
}

async function fill(s: Server): Promise<void> {
  const c = new RawGrpc(s.endpoint);
  try {
    const txn = (first: number): Uint8Array =>
      etcdserverpb.TxnRequest.encode({
        success: Array.from({ length: Math.min(TXN_OPS, KEYS - first) }, (_, j) => ({
          requestPut: { key: Buffer.from(`fill/${String(first + j).padStart(8, '0')}`), value: VALUE },
        })),
      }).finish();
    for (let i = 0; i < KEYS; i += 8 * TXN_OPS) {
      const batch: Array<Promise<void>> = [];
      for (let k = i; k < Math.min(KEYS, i + 8 * TXN_OPS); k += TXN_OPS) batch.push(call(c, '/etcdserverpb.KV/Txn', txn(k)));
      await Promise.all(batch);
    }
  } finally {
    c.close();
  }
}

/** WRITERS closed-loop writers until stop() resolves; returns puts/s. */
function writers(s: Server): { stop: () => Promise<number> } {
  const c = new RawGrpc(s.endpoint);
  let stopped = false;
  let n = 0;
  const t0 = performance.now();
  const loops = Array.from({ length: WRITERS }, async (_, w) => {
    for (let i = 0; !stopped; i++) {
      await call(
        c,
        '/etcdserverpb.KV/Put',
        etcdserverpb.PutRequest.encode({ key: Buffer.from(`load/${w}/${i % 100}`), value: VALUE }).finish(),
      );
      n++;
    }
  });
  return {
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
      const secs = (performance.now() - t0) / 1000;
      c.close();
      return n / secs;
    },
  };
}

interface Round {
  bytes: number;
  saveMs: number;
  putsIdle: number;
  putsDuring: number;
}

async function round(s: Server, dir: string): Promise<Round> {
  const w0 = writers(s);
  await new Promise((r) => setTimeout(r, MS));
  const putsIdle = await w0.stop();
  const file = path.join(dir, `${s.kind}.db`);
  fs.rmSync(file, { force: true });
  const w1 = writers(s);
  const t0 = performance.now();
  const r = await etcdctl(s.endpoint, ['snapshot', 'save', file], { timeoutMs: 600_000 });
  const saveMs = performance.now() - t0;
  const putsDuring = await w1.stop();
  if (r.code !== 0) throw new Error(`snapshot save on ${s.kind}: ${r.stderr}`);
  const bytes = fs.statSync(file).size;
  fs.rmSync(file);
  return { bytes, saveMs, putsIdle, putsDuring };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const kinds: ServerKind[] = ONLY === '' ? ['etcd', 'etcd-ts'] : [ONLY as ServerKind];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'snapshot-bench-'));
  const servers = new Map<ServerKind, Server>();
  try {
    console.log(
      `uptime: ${os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}; ${KEYS} keys of ${VALUE.length} B, ${WRITERS} writers, ${ROUNDS} rounds`,
    );
    for (const k of kinds) {
      const s = await startKind(k, { logLevel: 'warn', extraArgs: ['--quota-backend-bytes', String(8 * 1024 ** 3)] });
      servers.set(k, s);
      const t0 = performance.now();
      await fill(s);
      console.log(`${k}: filled in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    const results = new Map<ServerKind, Round[]>(kinds.map((k) => [k, []]));
    for (let i = 0; i < ROUNDS; i++) {
      for (const k of i % 2 === 0 ? kinds : [...kinds].reverse()) {
        const r = await round(servers.get(k)!, dir);
        results.get(k)!.push(r);
        const mbs = r.bytes / 1024 / 1024 / (r.saveMs / 1000);
        console.log(
          `round ${i + 1} ${k}: ${(r.bytes / 1024 / 1024).toFixed(1)} MiB in ${(r.saveMs / 1000).toFixed(2)} s = ${mbs.toFixed(1)} MiB/s; ` +
            `puts/s ${r.putsIdle.toFixed(0)} without, ${r.putsDuring.toFixed(0)} during`,
        );
      }
    }
    console.log('\n| server | snapshot MiB | save s (median) | MiB/s | puts/s without | puts/s during | during/without |');
    console.log('|---|---|---|---|---|---|---|');
    const row = new Map<ServerKind, { mbs: number; idle: number; during: number }>();
    for (const k of kinds) {
      const rs = results.get(k)!;
      const saveS = median(rs.map((r) => r.saveMs)) / 1000;
      const mib = median(rs.map((r) => r.bytes)) / 1024 / 1024;
      const idle = median(rs.map((r) => r.putsIdle));
      const during = median(rs.map((r) => r.putsDuring));
      row.set(k, { mbs: mib / saveS, idle, during });
      console.log(
        `| ${k} | ${mib.toFixed(1)} | ${saveS.toFixed(2)} | ${(mib / saveS).toFixed(1)} | ${idle.toFixed(0)} | ${during.toFixed(0)} | ${(during / idle).toFixed(2)} |`,
      );
    }
    const e = row.get('etcd');
    const t = row.get('etcd-ts');
    if (e && t)
      console.log(`\netcd-ts / etcd: MiB/s ${(t.mbs / e.mbs).toFixed(2)}, puts/s during a snapshot ${(t.during / e.during).toFixed(2)}`);
    console.log(
      `uptime after: ${os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}`,
    );
  } finally {
    for (const s of servers.values()) {
      await s.stop();
      removeDataDir(s);
    }
    await stopAllServers();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
