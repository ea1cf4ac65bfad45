// Baseline benchmark: real etcd vs etcd-ts on this machine, one server at a time, each on a fresh
// data dir. Workloads: Put (256-byte values, uniform random keys in a 10k key space) and
// serializable point Range on preloaded keys, each at 1 and 200 concurrent clients (200 clients
// over 8 gRPC connections), closed loop, fixed duration after a warm-up. The load generator runs in
// worker threads (bench/lib/load_worker.ts) with pre-encoded requests. Prints a Markdown table and,
// with --out, replaces the marked section of that file. Not a test: it never asserts on speed.
//
//   node dist/bench/baseline.js [--seconds 10] [--warmup 2] [--out docs/BENCHMARKS.md] [--b etcd]
//   --b etcd      runs real etcd in both slots (validates the harness while etcd-ts is not ready)
import * as fs from 'node:fs';
import { removeDataDir, Server, ServerKind, startKind, etcdBin } from '../test/support/procs';
import { decodeRangeResponse, encodeRange, benchKey, KvConnection, Workload } from './lib/kv_client';
import { LoadResult, preload, runLoad } from './lib/load';
import { machineInfo } from './lib/machine';

interface Args { seconds: number; warmup: number; out: string | null; b: ServerKind; connections: number; workers?: number }

function parseArgs(argv: string[]): Args {
  const a: Args = { seconds: 10, warmup: 2, out: null, b: 'etcd-ts', connections: 8 };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    switch (argv[i]) {
      case '--seconds': a.seconds = Number(v); i++; break;
      case '--warmup': a.warmup = Number(v); i++; break;
      case '--out': a.out = v; i++; break;
      case '--b': if (v !== 'etcd' && v !== 'etcd-ts') throw new Error('--b etcd|etcd-ts'); a.b = v; i++; break;
      case '--connections': a.connections = Number(v); i++; break;
      case '--workers': a.workers = Number(v); i++; break;
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (!(a.seconds > 0) || !(a.warmup >= 0)) throw new Error('--seconds must be > 0 and --warmup >= 0');
  return a;
}

const keySpace = 10_000;
const valueBytes = 256;
const runs: Array<{ workload: Workload; clients: number }> = [
  { workload: 'put', clients: 1 }, { workload: 'put', clients: 200 },
  { workload: 'range', clients: 1 }, { workload: 'range', clients: 200 },
];

type SlotResult = Map<string, LoadResult> | { failed: string };

async function checkRangeHits(endpoint: string): Promise<void> {
  const c = new KvConnection(endpoint);
  try {
    await c.waitForReady(5_000);
    const r = decodeRangeResponse(await c.callAsync('range', encodeRange(benchKey(keySpace - 1), true)));
    if (r.kvs.length !== 1 || r.kvs[0].value?.length !== valueBytes) {
      throw new Error(`preloaded key not readable: ${r.kvs.length} kvs`);
    }
  } finally {
    c.close();
  }
}

async function runSlot(kind: ServerKind, a: Args): Promise<SlotResult> {
  let s: Server | undefined;
  try {
    s = await startKind(kind, { logLevel: 'error' });
    const out = new Map<string, LoadResult>();
    for (const r of runs) {
      if (r.workload === 'range' && !out.has('preloaded')) {
        await preload(s.endpoint, keySpace, valueBytes);
        await checkRangeHits(s.endpoint);
      }
      const res = await runLoad({
        endpoint: s.endpoint, workload: r.workload, clients: r.clients,
        connections: r.clients === 1 ? 1 : a.connections, workers: a.workers,
        keySpace, valueBytes, warmupMs: a.warmup * 1000, durationMs: a.seconds * 1000,
      });
      console.error(`${kind} ${r.workload} x${r.clients}: ${res.reqPerSec.toFixed(0)} req/s p50 ${res.p50Ms} ms p99 ${res.p99Ms} ms, generator CPU ${res.generatorCpu.toFixed(2)} cores, errors ${res.errors}${res.firstError ? ` (${res.firstError})` : ''}`);
      out.set(`${r.workload}/${r.clients}`, res);
    }
    return out;
  } catch (e) {
    const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
    console.error(`${kind}: ${e instanceof Error ? e.message : e}`);
    return { failed: msg };
  } finally {
    if (s) { await s.stop('SIGTERM'); removeDataDir(s); }
  }
}

const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n.toPrecision(3));
const fmtMs = (n: number) => (n >= 10 ? n.toFixed(1) : n.toFixed(2));

function cell(r: SlotResult, key: string): LoadResult | string {
  if ('failed' in r) return 'failed';
  return r.get(key) ?? 'n/a';
}

function report(a: Args, slotA: SlotResult, slotB: SlotResult, command: string): string {
  const m = machineInfo(etcdBin);
  const nameB = a.b === 'etcd' ? 'etcd (B)' : 'etcd-ts';
  const lines = [
    '## Baseline: etcd vs etcd-ts (bench/baseline.ts)',
    '',
    `Machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.kernel}; Node ${m.node}; etcd ${m.etcd}; commit ${m.commit}; data dirs on ${m.tmpFs}; ${new Date().toISOString().slice(0, 10)}.`,
    '',
    `Command: \`${command}\``,
    '',
    `Put: ${valueBytes}-byte values, uniform random keys in a ${keySpace} key space. Range: serializable point gets on preloaded keys. ` +
    `Closed loop, ${a.warmup} s warm-up then ${a.seconds} s measured per row; 1 client = 1 connection, 200 clients over ${a.connections} gRPC connections; ` +
    'load generator in worker threads on the same machine: it shares the cores with the server, and its CPU use ' +
    '(etcd run / second run) is in the last column; near the core count, the generator, not the server, is the limit. Ratio = second / etcd.',
    '',
    `| workload | clients | etcd req/s | ${nameB} req/s | ratio | etcd p50/p99 ms | ${nameB} p50/p99 ms | generator CPU (cores) |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const notes: string[] = [];
  for (const r of runs) {
    const key = `${r.workload}/${r.clients}`;
    const x = cell(slotA, key);
    const y = cell(slotB, key);
    const tp = (v: LoadResult | string) => (typeof v === 'string' ? v : fmt(v.reqPerSec));
    const lat = (v: LoadResult | string) => (typeof v === 'string' ? v : `${fmtMs(v.p50Ms)} / ${fmtMs(v.p99Ms)}`);
    const ratio = typeof x !== 'string' && typeof y !== 'string' && x.reqPerSec > 0 ? (y.reqPerSec / x.reqPerSec).toFixed(2) : '-';
    const wl = r.workload === 'put' ? 'Put' : 'Range (serializable)';
    const gen = [x, y].map((v) => (typeof v === 'string' ? '-' : v.generatorCpu.toFixed(2))).join(' / ');
    lines.push(`| ${wl} | ${r.clients} | ${tp(x)} | ${tp(y)} | ${ratio} | ${lat(x)} | ${lat(y)} | ${gen} |`);
    for (const [name, v] of [['etcd', x], [nameB, y]] as const) {
      if (typeof v !== 'string' && v.errors > 0) notes.push(`- ${wl} x${r.clients} on ${name}: ${v.errors} errors, first: ${v.firstError}`);
    }
  }
  for (const [name, s] of [['etcd', slotA], [nameB, slotB]] as const) {
    if ('failed' in s) notes.push(`- ${name} failed: ${s.failed}`);
  }
  if (notes.length) lines.push('', ...notes);
  return lines.join('\n') + '\n';
}

const beginTag = '<!-- baseline:begin';
const begin = `${beginTag} (generated by bench/baseline.ts; edits inside are overwritten) -->`;
const end = '<!-- baseline:end -->';

function writeSection(file: string, body: string): void {
  const section = `${begin}\n${body}${end}\n`;
  const old = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmarks\n\n';
  const i = old.indexOf(beginTag);
  const j = old.indexOf(end);
  const next = i >= 0 && j > i ? old.slice(0, i) + section + old.slice(j + end.length).replace(/^\n/, '') : `${old.trimEnd()}\n\n${section}`;
  fs.writeFileSync(file, next);
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const command = `node dist/bench/baseline.js ${process.argv.slice(2).join(' ')}`.trim();
  const slotA = await runSlot('etcd', a);
  const slotB = await runSlot(a.b, a);
  const md = report(a, slotA, slotB, command);
  process.stdout.write(md);
  if (a.out) writeSection(a.out, md);
  if ('failed' in slotA || 'failed' in slotB) process.exitCode = 1;
}

main().catch((e) => { console.error(e); process.exit(1); });
