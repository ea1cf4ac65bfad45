// One command: run a workload against etcd-ts under V8's CPU profiler and write one flamegraph per
// thread (main, apply, compaction, range pool, ...) into flamegraphs/, each a self-contained HTML
// file (inline SVG, hover for names and times) named <commit>-<workload>-c<clients>-<thread>.html.
// The header of each file records the exact command, commit, machine and duration.
//
//   npm run flamegraph -- put [--clients 200] [--seconds 8]
//   node dist/bench/flamegraph.js range --clients 1
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { removeDataDir, startEtcdTs } from '../test/support/procs';
import { preload, runLoad } from './lib/load';
import { Workload } from './lib/kv_client';
import { CpuProfile, renderFlamegraphHtml } from './lib/flame';

interface Args { workload: Workload; clients: number; seconds: number }

function parseArgs(argv: string[]): Args {
  const a: Args = { workload: 'put', clients: 200, seconds: 8 };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i];
    if (v === 'put' || v === 'range') a.workload = v;
    else if (v === '--clients') a.clients = Number(argv[++i]);
    else if (v === '--seconds') a.seconds = Number(argv[++i]);
    else throw new Error(`unknown argument ${v} (usage: put|range [--clients N] [--seconds N])`);
  }
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
  const root = path.join(__dirname, '..', '..');
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root }).toString().trim();
  const profDir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcd-ts-prof-'));
  const s = await startEtcdTs({ logLevel: 'error', nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`] });
  try {
    if (a.workload === 'range') await preload(s.endpoint, 10_000, 256);
    const r = await runLoad({
      endpoint: s.endpoint, workload: a.workload, client: 'h2', clients: a.clients, connections: Math.min(8, a.clients),
      keySpace: 10_000, valueBytes: 256, warmupMs: 1000, durationMs: a.seconds * 1000,
    });
    console.error(`${a.workload} x${a.clients}: ${r.reqPerSec.toFixed(0)} req/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms`);
  } finally {
    await s.stop('SIGINT'); // a clean exit makes V8 write every thread's profile
    removeDataDir(s);
  }
  const command = `node dist/bench/flamegraph.js ${process.argv.slice(2).join(' ')}`.trim();
  const meta = `${command} | commit ${commit} | ${os.cpus()[0]?.model ?? '?'} x${os.cpus().length} | node ${process.version} | ${new Date().toISOString()}`;
  const outDir = path.join(root, 'flamegraphs');
  fs.mkdirSync(outDir, { recursive: true });
  const used = new Map<string, number>();
  for (const f of fs.readdirSync(profDir).filter((x) => x.endsWith('.cpuprofile')).sort()) {
    const p = JSON.parse(fs.readFileSync(path.join(profDir, f), 'utf8')) as CpuProfile;
    const thread = threadName(p, f);
    const n = (used.get(thread) ?? 0) + 1;
    used.set(thread, n);
    const name = `${commit}-${a.workload}-c${a.clients}-${thread}${n > 1 ? `-${n}` : ''}.html`;
    fs.writeFileSync(path.join(outDir, name), renderFlamegraphHtml(p, `${name}`, meta));
    console.log(path.join('flamegraphs', name));
  }
  fs.rmSync(profDir, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
