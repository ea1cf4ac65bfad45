// Watch fan-out through etcd's own Go client: the measurement the watch issue names ("events delivered
// per second with 1,000 watchers on one prefix while one writer puts 200 keys; etcd 3.4 delivers about
// 270k events/s here through the Go client"). bench/watch.ts measures the same shape with a Node load
// generator; this one runs bench/go/bin/watchbench (clientv3 of etcd 3.4, bench/go/watchbench/main.go;
// it says what it measures and how) against Debian's etcd and etcd-ts, one server at a time on a fresh
// data dir, alternating etcd, etcd-ts, etcd, etcd-ts... for R rounds. The server's CPU is read from /proc
// over the interval watchbench marks on its stderr ("#phase start" before the first Put, "#phase end"
// after the last expected event arrived). Prints a markdown table per round, then medians and the
// etcd-ts/etcd ratios. Not a test: it asserts nothing on speed. It does report, per run, whether every
// expected event arrived exactly once and in order at every watcher.
//
//   sh bench/go/build.sh    # once: Go 1.19 and etcd 3.4's Go source from apt, builds bench/go/bin/watchbench
//   node dist/bench/watch_go.js [--rounds 3] [--seconds 5] [--watchers 1000] [--connections 10] [--keys 200]
//                               [--writers 1] [--value-bytes 100] [--only etcd|etcd-ts]
import { performance } from 'node:perf_hooks';
import * as fs from 'node:fs';
import { removeDataDir, Server, ServerKind, startKind } from '../test/support/procs';
import { procCpuUs, threadCoresText, threadCpuUs } from './lib/proc';
import { machineInfo } from './lib/machine';
import { median } from './lib/verdict';
import { fmtNum, ratioText } from './lib/results';
import { deliveryProblems as problems, GoResult, runWatchbench, watchbenchBin as goBin } from './lib/watchbench';

interface Args {
  rounds: number; seconds: number; watchers: number; connections: number; keys: number; writers: number;
  valueBytes: number; only: ServerKind | null;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { rounds: 3, seconds: 5, watchers: 1000, connections: 10, keys: 200, writers: 1, valueBytes: 100, only: null };
  const flags: Record<string, keyof Args> = {
    '--rounds': 'rounds', '--seconds': 'seconds', '--watchers': 'watchers', '--connections': 'connections',
    '--keys': 'keys', '--writers': 'writers', '--value-bytes': 'valueBytes',
  };
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '--only') {
      const k = argv[i + 1];
      if (k !== 'etcd' && k !== 'etcd-ts') throw new Error(`--only must be etcd or etcd-ts, got ${k ?? ''}`);
      a.only = k;
      continue;
    }
    const k = flags[argv[i]];
    if (!k || !(Number(argv[i + 1]) > 0)) throw new Error(`bad argument ${argv[i]} ${argv[i + 1] ?? ''} (flags: ${Object.keys(flags).join(' ')} --only etcd|etcd-ts)`);
    (a as unknown as Record<string, number>)[k] = Number(argv[i + 1]);
  }
  return a;
}

interface Run extends GoResult {
  kind: ServerKind; round: number; serverCores: number; serverThreads: string;
}

/** Runs watchbench against s; the server's CPU is taken between its "#phase start" and "#phase end" lines. */
async function runGo(s: Server, a: Args): Promise<GoResult & { serverCores: number; serverThreads: string }> {
  const args = ['--watchers', String(a.watchers), '--connections', String(a.connections),
    '--keys', String(a.keys), '--seconds', String(a.seconds), '--writers', String(a.writers), '--value-bytes', String(a.valueBytes)];
  let cpu0 = NaN; let cpu1 = NaN; let at0 = 0; let at1 = 0;
  let thr0 = new Map<string, number>(); let thr1 = new Map<string, number>();
  // Creation (60 s) + writes + drain (30 s) bound watchbench itself.
  const r = await runWatchbench(s.endpoint, args, (a.seconds + 120) * 1000, (phase) => {
    if (phase === 'start') { cpu0 = procCpuUs(s.pid) ?? NaN; thr0 = threadCpuUs(s.pid); at0 = performance.now(); }
    else { cpu1 = procCpuUs(s.pid) ?? NaN; thr1 = threadCpuUs(s.pid); at1 = performance.now(); }
  }).catch((e: Error) => { throw new Error(`${s.kind}: ${e.message}`); });
  const sec = (at1 - at0) / 1000;
  return { ...r, serverCores: (cpu1 - cpu0) / 1e6 / sec, serverThreads: threadCoresText(thr0, thr1, sec) };
}

async function runOne(kind: ServerKind, round: number, a: Args): Promise<Run> {
  const s = await startKind(kind, { logLevel: 'error' });
  try {
    const r = await runGo(s, a);
    return { kind, round, ...r };
  } finally {
    await s.stop();
    removeDataDir(s);
  }
}

/** watchbench reports -1 for a latency it had no samples for. */
const latency = (ms: number): number => (ms < 0 ? NaN : ms);

interface Metric { name: string; get: (r: Run) => number; d: number }

const metrics: Metric[] = [
  { name: 'events delivered/s (all watchers)', get: (r) => r.eventsPerSec, d: 0 },
  { name: 'writes/s (Put acks)', get: (r) => r.writesPerSec, d: 0 },
  { name: 'event latency p50 (ms, Put sent → event)', get: (r) => latency(r.p50Ms), d: 1 },
  { name: 'event latency p99 (ms)', get: (r) => latency(r.p99Ms), d: 1 },
  { name: 'events delivered / expected (%)', get: (r) => (100 * r.events) / r.expected, d: 1 },
  { name: 'Go client CPU (cores)', get: (r) => r.clientCores, d: 2 },
  { name: 'server CPU (cores)', get: (r) => r.serverCores, d: 2 },
];

/** One table: a column per run (or per kind, for medians), with etcd-ts/etcd when both are there. */
function table(cols: string[], cells: (m: Metric) => number[], withRatio: boolean): string[] {
  const out = [`| metric | ${cols.join(' | ')}${withRatio ? ' | etcd-ts/etcd' : ''} |`, `|---|${cols.map(() => '---:').join('|')}|${withRatio ? '---:|' : ''}`];
  for (const m of metrics) {
    const v = cells(m);
    out.push(`| ${m.name} | ${v.map((x) => fmtNum(x, m.d)).join(' | ')}${withRatio ? ` | ${ratioText(v[1], v[0])}` : ''} |`);
  }
  return out;
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(goBin)) {
    throw new Error(`${goBin} is missing: run \`sh bench/go/build.sh\` first (it installs Go and etcd 3.4's Go client from apt and builds it)`);
  }
  const kinds: ServerKind[] = a.only ? [a.only] : ['etcd', 'etcd-ts'];
  const m = machineInfo(process.env.ETCD_TS_ETCD_BIN ?? '/usr/bin/etcd');
  const cmd = `node dist/bench/watch_go.js ${process.argv.slice(2).join(' ')}`.trim();
  const runs: Run[] = [];
  const out: string[] = [];
  out.push(`Command: \`${cmd}\` (watchers ${a.watchers}, connections ${a.connections}, keys ${a.keys}, seconds ${a.seconds}, writers ${a.writers}, value ${a.valueBytes} B; client: etcd 3.4 clientv3, bench/go/bin/watchbench)`);
  out.push(`Machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.kernel}, Node ${m.node}, etcd ${m.etcd}, commit ${m.commit}, data dirs on ${m.tmpFs}; ${new Date().toISOString().slice(0, 10)}`);
  const both = kinds.length === 2;
  for (let round = 1; round <= a.rounds; round++) {
    const these: Run[] = [];
    for (const kind of kinds) {
      const r = await runOne(kind, round, a);
      console.error(JSON.stringify(r));
      these.push(r);
      runs.push(r);
    }
    out.push('', `Round ${round}:`, '');
    out.push(...table(these.map((r) => r.kind), (mt) => these.map(mt.get), both));
    for (const r of these) out.push(`Server threads (${r.kind}, cores): ${r.serverThreads || 'n/a'}`);
  }
  out.push('', `Median of ${a.rounds} round(s):`, '');
  out.push(...table(kinds, (mt) => kinds.map((k) => median(runs.filter((r) => r.kind === k).map(mt.get).filter(Number.isFinite))), both));
  out.push('');
  for (const r of runs) {
    const p = problems(r);
    if (p.length) out.push(`Delivery problem (${r.kind}, round ${r.round}): ${p.join('; ')}.`);
    if (r.clientCores > 0.85) out.push(`Note (${r.kind}, round ${r.round}): the Go client used ${r.clientCores.toFixed(2)} cores of ${m.cores} (GOMAXPROCS ${r.gomaxprocs}): it may be (near) its limit, so this is a lower bound for the server.`);
  }
  const bad = runs.filter((r) => problems(r).length);
  out.push(bad.length ? `Deliveries: ${bad.length} of ${runs.length} runs had problems (above).` : `Deliveries: in every run every watcher received every Put's event exactly once, in revision order.`);
  console.log(out.join('\n'));
}

main().then(() => process.exit(0), (e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
