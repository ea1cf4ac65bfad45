// One command: run a workload against etcd-ts under V8's CPU profiler and write one flamegraph per
// thread (main, apply, compaction, range pool, ...) into flamegraphs/, each a self-contained HTML
// file (inline SVG, hover for names and times) named <commit>-<workload>-c<clients>-<thread>.html.
// The header of each file records the exact command, commit, machine and duration.
//
//   npm run flamegraph -- put [--clients 200] [--seconds 8] [--conns 8] [--rate R] [--consistency l|s]
//   node dist/bench/flamegraph.js range --clients 1
// Any workload of the bench tool (bench/lib/workloads.ts) works: put, range, range-prefix, txn-put,
// txn-compare, delete, mixed, lease-*, watch, watch-latency. `range` defaults to serializable reads
// (as before); pass --consistency l for linearizable ones.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { removeDataDir, startEtcdTs } from '../test/support/procs';
import { preloadKeys, runKvLoad } from './lib/load';
import { runWatchLoad } from './lib/watch_load';
import { CpuProfile, writeFlamegraphs } from './lib/flame';
import { clientFor } from './lib/load_types';
import { allWorkloads, defaultRequestOptions, isWatchWorkload, isWorkloadName, needsPreload, RequestOptions, WorkloadName } from './lib/workloads';

interface Args { workload: WorkloadName; clients: number; seconds: number; conns: number; rate: number; consistency: 'l' | 's' | null }

function parseArgs(argv: string[]): Args {
  const a: Args = { workload: 'put', clients: 200, seconds: 8, conns: 8, rate: 0, consistency: null };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i];
    if (isWorkloadName(v)) a.workload = v;
    else if (v === '--clients') a.clients = Number(argv[++i]);
    else if (v === '--seconds') a.seconds = Number(argv[++i]);
    else if (v === '--conns') a.conns = Number(argv[++i]);
    else if (v === '--rate') a.rate = Number(argv[++i]);
    else if (v === '--consistency' && (argv[i + 1] === 'l' || argv[i + 1] === 's')) a.consistency = argv[++i] as 'l' | 's';
    else throw new Error(`unknown argument ${v} (usage: ${allWorkloads.join('|')} [--clients N] [--seconds N] [--conns N] [--rate R] [--consistency l|s])`);
  }
  if (!(a.clients >= 1) || !(a.seconds > 0) || !(a.conns >= 1) || !(a.rate >= 0)) throw new Error('--clients, --seconds and --conns must be positive, --rate >= 0');
  return a;
}

/** Names a thread's profile by the code it ran. */
function threadName(p: CpuProfile, file: string): string {
  const urls = new Set(p.nodes.map((n) => n.callFrame.url));
  const has = (s: string) => [...urls].some((u) => u.includes(s));
  if (has('main/cli.js')) return 'main';
  if (has('workers/apply.js')) return 'apply';
  if (has('workers/compact.js')) return 'compaction';
  if (has('workers/watch')) return 'watch';
  if (has('workers/range.js') || has('piscina/dist/worker.js')) return 'range-pool';
  return path.basename(file, '.cpuprofile');
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const profDir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcd-ts-prof-'));
  const s = await startEtcdTs({ logLevel: 'error', nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`] });
  try {
    const req: RequestOptions = { ...defaultRequestOptions, consistency: a.consistency ?? (a.workload === 'range' ? 's' : 'l') };
    if (needsPreload(a.workload)) await preloadKeys(s.endpoint, req);
    const r = isWatchWorkload(a.workload)
      ? await runWatchLoad({
        endpoint: s.endpoint, workload: a.workload, watchers: 1000, streams: a.conns, writers: a.clients, keys: 200,
        valueSize: req.valueSize, ratePerSec: a.rate, warmupMs: 1000, durationMs: a.seconds * 1000, total: 0,
      })
      : await runKvLoad({
        endpoint: s.endpoint, workload: a.workload, client: clientFor(a.workload, 'raw'), clients: a.clients, connections: Math.min(a.conns, a.clients),
        req, warmupMs: 1000, durationMs: a.seconds * 1000, total: 0, ratePerSec: a.rate,
      });
    console.error(`${a.workload} x${a.clients}: ${r.reqPerSec.toFixed(0)}/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, errors ${r.errors}${r.firstError ? ` (${r.firstError})` : ''}`);
  } finally {
    await s.stop('SIGINT'); // a clean exit makes V8 write every thread's profile
    removeDataDir(s);
  }
  const command = `node dist/bench/flamegraph.js ${process.argv.slice(2).join(' ')}`.trim();
  const used = new Map<string, number>();
  const written = writeFlamegraphs(profDir, command, (commit, p, f) => {
    const thread = threadName(p, f);
    const n = (used.get(thread) ?? 0) + 1;
    used.set(thread, n);
    return `${commit}-${a.workload}-c${a.clients}-${thread}${n > 1 ? `-${n}` : ''}.html`;
  });
  for (const w of written) console.log(w.file);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
