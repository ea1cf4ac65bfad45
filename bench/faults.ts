// The fault soak (issue 20): N runs of a nemesis against a fresh 3-member cluster each, every run's client
// history and watches checked for linearizability and the watch guarantees (test/support/lin/run.ts).
// One line per run and a total; a run that is not ok keeps its directory (data dirs, logs, history,
// watches, check.txt, check.html) and prints it.
//
//   npm run build && sh bench/go/build.sh
//   npm run faults -- --nemesis kill-leader --runs 10 [--seconds 8] [--client go|etcd3|alternate]
//                     [--target etcd-ts|etcd] [--seed 1] [--root DIR] [--verbose]
//   --nemesis all runs every nemesis in turn (N runs each); a comma list runs those.
//
// Needs root for the partition nemesis (iptables) and bench/go/bin/lincheck for the Go client. Exits 1
// when any run found a violation or could not decide, 2 on bad arguments.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkRun, LinOp } from '../test/support/lin/check';
import { WatchRecord } from '../test/support/lin/watch';
import { Nemesis, nemeses, nemesisNamed } from '../test/support/nemesis';
import { ClientKind, faultRun, RunVerdict } from '../test/support/lin/run';
import { ServerKind, stopAllServers } from '../test/support/procs';

interface Args {
  nemeses: Nemesis[];
  runs: number;
  seconds: number;
  client: ClientKind | 'alternate';
  target: ServerKind;
  seed: number;
  root: string;
  verbose: boolean;
}

function usage(msg: string): never {
  console.error(`faults: ${msg}`);
  console.error(
    `usage: npm run faults -- --nemesis NAME[,NAME...]|all --runs N [--seconds S] [--client go|etcd3|alternate] [--target etcd-ts|etcd] [--seed N] [--root DIR]`,
  );
  console.error(`nemeses: ${nemeses.map((n) => n.name).join(', ')}`);
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { nemeses: [], runs: 1, seconds: 8, client: 'alternate', target: 'etcd-ts', seed: 1, root: os.tmpdir(), verbose: false };
  const t = process.env.ETCD_TS_TARGET;
  if (t === 'etcd' || t === 'etcd-ts') a.target = t;
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    const num = (): number => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) usage(`${argv[i]} needs a positive number`);
      i++;
      return n;
    };
    switch (argv[i]) {
      case '--nemesis':
        if (v === undefined) usage('--nemesis needs a name');
        a.nemeses =
          v === 'all'
            ? nemeses.filter((n) => n.name !== 'none' && n.name !== 'corrupt-follower')
            : v.split(',').map((n) => nemesisNamed(n));
        i++;
        break;
      case '--runs':
        a.runs = Math.floor(num());
        break;
      case '--seconds':
        a.seconds = num();
        break;
      case '--seed':
        a.seed = Math.floor(num());
        break;
      case '--client':
        if (v !== 'go' && v !== 'etcd3' && v !== 'alternate') usage('--client is go, etcd3 or alternate');
        a.client = v;
        i++;
        break;
      case '--target':
        if (v !== 'etcd' && v !== 'etcd-ts') usage('--target is etcd-ts or etcd');
        a.target = v;
        i++;
        break;
      case '--verbose':
        a.verbose = true;
        break;
      case '--root':
        if (v === undefined) usage('--root needs a directory');
        a.root = v;
        i++;
        break;
      default:
        usage(`unknown argument ${argv[i]}`);
    }
  }
  if (a.nemeses.length === 0) usage('--nemesis is required');
  return a;
}

/** --recheck DIR...: the checker again on kept runs' history.json and watches.json (after a checker change). */
function recheck(dirs: string[]): void {
  let bad = 0;
  for (const d of dirs) {
    const ops = (JSON.parse(fs.readFileSync(path.join(d, 'history.json'), 'utf8')) as { ops: LinOp[] }).ops;
    const [ref, ...others] = JSON.parse(fs.readFileSync(path.join(d, 'watches.json'), 'utf8')) as WatchRecord[];
    const c = checkRun(
      ops.filter((o) => o.key.startsWith('/lin/')),
      ref,
      others,
    );
    if (c.verdict !== 'ok') bad++;
    console.log(`${d}: ${c.verdict}; ${c.summary}`);
    for (const p of c.problems.slice(0, 30)) console.log(`    ${p}`);
  }
  process.exit(bad > 0 ? 1 : 0);
}

async function main(): Promise<void> {
  if (process.argv[2] === '--recheck') recheck(process.argv.slice(3));
  const a = parseArgs(process.argv.slice(2));
  const counts = new Map<RunVerdict, number>();
  const kept: string[] = [];
  const t0 = Date.now();
  let n = 0;
  for (const nem of a.nemeses) {
    for (let r = 0; r < a.runs; r++) {
      const seed = a.seed + r;
      const client: ClientKind = a.client === 'alternate' ? (r % 2 === 0 ? 'go' : 'etcd3') : a.client;
      const o = await faultRun({ nemesis: nem, kind: a.target, client, seconds: a.seconds, seed, root: a.root });
      counts.set(o.verdict, (counts.get(o.verdict) ?? 0) + 1);
      n++;
      const where = o.dir !== null ? `  kept: ${o.dir}` : '';
      console.log(
        `run ${n} ${nem.name} ${a.target} ${client} seed ${seed}: ${o.verdict} in ${(o.ms / 1000).toFixed(1)} s; ${o.summary}${where}`,
      );
      if (a.verbose) for (const l of o.nemesisLog) console.log(`    nemesis ${l.trim()}`);
      for (const e of o.errors) console.log(`    ${e}`);
      for (const p of o.problems.slice(0, 30)) console.log(`    ${p}`);
      if (o.dir !== null) kept.push(o.dir);
      if (o.verdict === 'skipped') break;
    }
  }
  const total = [...counts].map(([v, c]) => `${c} ${v}`).join(', ');
  console.log(
    `total: ${n} runs in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${total}${kept.length > 0 ? `; kept: ${kept.join(' ')}` : ''}`,
  );
  await stopAllServers();
  process.exit((counts.get('violation') ?? 0) + (counts.get('unknown') ?? 0) > 0 ? 1 : 0);
}

void main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
