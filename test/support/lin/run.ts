// One fault run (issue 20), for the soak script (bench/faults.ts) and the short CI test: start 3 members
// (test/support/nemesis.ts FaultCluster), keep a live watch open, run a client workload (etcd's Go
// clientv3 through bench/go/bin/lincheck, or the etcd3 npm client, both with every endpoint) while the
// nemesis injects and heals on a schedule, heal everything, put a marker through every member, then watch
// from revision 1 on every member (and from the middle on one), settle the unknown outcomes and check the
// whole (check.ts). A run whose verdict is not 'ok' keeps its directory: data dirs, members' stderr,
// history, watches, the nemesis log, the check's text and its HTML timeline; a passing run removes it.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RawGrpc } from '../grpc_raw';
import { runEtcd3Workload } from '../etcd3_history';
import { HistoryOp } from '../history_check';
import { partitionUnsupported } from '../partition';
import { ServerKind } from '../procs';
import { FaultCluster, Nemesis, runSchedule, Schedule } from '../nemesis';
import { etcdserverpb } from '../../../src/shared/gen/etcd';
import { checkRun, LinOp, RunCheck } from './check';
import { renderHtml } from './html';
import { LiveWatch, watchOnce } from './watch_record';
import { WatchRecord } from './watch';

export const lincheckBin = path.resolve(__dirname, '..', '..', '..', '..', 'bench', 'go', 'bin', 'lincheck');

export type ClientKind = 'go' | 'etcd3';

export interface RunOptions {
  nemesis: Nemesis;
  kind: ServerKind;
  client: ClientKind;
  seconds: number;
  seed: number;
  clients?: number; // default 6
  keys?: number; // default 4
  timeoutMs?: number; // per operation, default 1500
  delPct?: number; // Go client only: percentage of deletes, default 10
  root?: string; // where run directories go, default os.tmpdir()
  stepBudgetPerKey?: number;
}

export type RunVerdict = 'ok' | 'violation' | 'unknown' | 'error' | 'skipped';

export interface RunOutcome {
  verdict: RunVerdict;
  ms: number;
  summary: string;
  /** Kept for a run that is not ok; null once removed. */
  dir: string | null;
  problems: string[];
  /** Inject/heal/harness errors (not a verdict on the store by themselves). */
  errors: string[];
  /** What the nemesis did, when (FaultCluster.log). */
  nemesisLog: string[];
  check?: RunCheck;
}

const prefix = '/lin/';
const settleWatchMs = 30_000;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs lincheck and returns the operations it wrote to its --out file (see runLincheckProcess). */
async function runLincheck(args: string[], stderrPath: string, killAfterMs: number, onStart: () => void): Promise<LinOp[]> {
  await runLincheckProcess(args, stderrPath, killAfterMs, onStart);
  const out = args[args.indexOf('--out') + 1];
  return (JSON.parse(fs.readFileSync(out, 'utf8')) as { ops: LinOp[] }).ops;
}

/** Runs lincheck (killed after killAfterMs); calls onStart when it prints "#phase start"; its stderr goes
 * to stderrPath. Resolves when it exits 0. */
export function runLincheckProcess(args: string[], stderrPath: string, killAfterMs: number, onStart: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(lincheckBin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const errOut = fs.createWriteStream(stderrPath);
    let started = false;
    let pending = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.stderr.on('data', (d: Buffer) => {
      errOut.write(d);
      if (started) return;
      pending += d.toString();
      if (pending.includes('#phase start\n')) {
        started = true;
        onStart();
      }
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      errOut.end();
      if (code === 0) resolve();
      else reject(new Error(`lincheck exited with ${code ?? signal}; stderr in ${stderrPath}`));
    });
  });
}

/** A put of 'end' through one member, retried while it catches up; returns the response's header revision. */
export async function putThrough(endpoint: string, key: string): Promise<number> {
  const until = Date.now() + 30_000;
  let last = '';
  while (Date.now() < until) {
    const c = new RawGrpc(endpoint);
    try {
      const body = etcdserverpb.PutRequest.encode({ key: Buffer.from(key), value: Buffer.from('end') }).finish();
      const r = await c.unary('/etcdserverpb.KV/Put', body, { cancelAfterMs: 3000 });
      if (r.status === 0) return Number(String(etcdserverpb.PutResponse.decode(r.body!).header!.revision));
      last = `status ${r.status} ${r.message}`;
    } catch (e) {
      last = (e as Error).message;
    } finally {
      c.close();
    }
    await sleep(200);
  }
  throw new Error(`put through ${endpoint} kept failing: ${last}`);
}

async function workload(o: RunOptions, c: FaultCluster, dir: string, onStart: () => void): Promise<LinOp[]> {
  const clients = o.clients ?? 6;
  const keys = o.keys ?? 4;
  const timeoutMs = o.timeoutMs ?? 1500;
  if (o.client === 'etcd3') {
    onStart();
    const ops: HistoryOp[] = await runEtcd3Workload({
      hosts: c.endpoints().map((e) => `http://${e}`),
      clients,
      keys,
      prefix,
      seconds: o.seconds,
      timeoutMs,
      seed: o.seed,
    });
    return ops;
  }
  if (!fs.existsSync(lincheckBin)) throw new Error(`${lincheckBin} is missing: run sh bench/go/build.sh`);
  const args = ['--endpoints', c.endpoints().join(','), '--clients', String(clients), '--keys', String(keys), '--prefix', prefix];
  args.push('--seconds', String(o.seconds), '--timeout', `${timeoutMs}ms`, '--seed', String(o.seed), '--del-pct', String(o.delPct ?? 10));
  args.push('--out', path.join(dir, 'history-go.json'));
  return runLincheck(args, path.join(dir, 'lincheck.stderr'), o.seconds * 1000 + 120_000, onStart);
}

/** After the heal: markers through every member, then the reference and comparison watches. */
async function settleWatches(c: FaultCluster, live: LiveWatch): Promise<{ ref: WatchRecord; others: WatchRecord[] }> {
  let finalRev = 0;
  const eps = c.endpoints();
  for (let i = 0; i < eps.length; i++) finalRev = Math.max(finalRev, await putThrough(eps[i], `/faults-end/${c.names[i]}`));
  const liveRec = await live.stop(finalRev, settleWatchMs);
  const mid = Math.max(1, Math.floor(finalRev / 2));
  const [ref, ...rest] = await Promise.all([
    watchOnce(`${c.names[0]} from 1`, eps[0], 1, finalRev, settleWatchMs),
    ...eps.slice(1).map((ep, i) => watchOnce(`${c.names[i + 1]} from 1`, ep, 1, finalRev, settleWatchMs)),
    watchOnce(`${c.names[2]} from ${mid}`, eps[2], mid, finalRev, settleWatchMs),
  ]);
  return { ref, others: [...rest, liveRec] };
}

function writeReport(
  dir: string,
  o: RunOptions,
  ops: LinOp[],
  w: { ref: WatchRecord; others: WatchRecord[] },
  chk: RunCheck,
  c: FaultCluster,
  errors: string[],
): void {
  fs.writeFileSync(path.join(dir, 'history.json'), JSON.stringify({ client: o.client, seed: o.seed, ops }));
  fs.writeFileSync(path.join(dir, 'watches.json'), JSON.stringify([w.ref, ...w.others]));
  fs.writeFileSync(path.join(dir, 'nemesis.log'), c.log.join('\n') + '\n');
  const text = [`verdict: ${chk.verdict}`, chk.summary, ...errors.map((e) => `harness: ${e}`), ...chk.problems];
  for (const k of chk.keys) text.push(`key ${k.key}: ${k.verdict} (${k.ops} ops, ${k.steps} steps)`);
  fs.writeFileSync(path.join(dir, 'check.txt'), text.join('\n') + '\n');
  if (chk.verdict === 'violation')
    fs.writeFileSync(path.join(dir, 'check.html'), renderHtml(`${o.nemesis.name} seed ${o.seed} (${o.kind}, ${o.client})`, chk));
}

/** One run; never throws (harness failures are verdict 'error'). */
export async function faultRun(o: RunOptions): Promise<RunOutcome> {
  const t0 = Date.now();
  const why = o.nemesis.unsupported({ kind: o.kind, canPartition: partitionUnsupported() === null });
  if (why !== null) return { verdict: 'skipped', ms: 0, summary: why, dir: null, problems: [], errors: [], nemesisLog: [] };
  const dir = fs.mkdtempSync(path.join(o.root ?? os.tmpdir(), `faults-${o.nemesis.name}-${o.seed}-`));
  const errors: string[] = [];
  let cluster: FaultCluster | null = null;
  let live: LiveWatch | null = null;
  let out: RunOutcome = { verdict: 'error', ms: 0, summary: '', dir, problems: [], errors, nemesisLog: [] };
  try {
    cluster = await FaultCluster.start(o.kind, dir, `faults-${o.seed}`);
    const c = cluster;
    live = new LiveWatch('live (resumed across members)', () => c.endpoints());
    const schedule: Schedule = { leadMs: 1000, faultMs: 2000, healedMs: 1500, totalMs: o.seconds * 1000 };
    let scheduled: Promise<string[]> = Promise.resolve([]);
    let ops: LinOp[];
    try {
      ops = await workload(o, c, dir, () => {
        c.resetClock();
        scheduled = runSchedule(c, o.nemesis, schedule);
      });
    } finally {
      errors.push(...(await scheduled)); // never leave a fault running past the workload
    }
    errors.push(...(await c.healAll()));
    const w = await settleWatches(c, live);
    live = null;
    const chk = checkRun(
      ops.filter((x) => x.key.startsWith(prefix)),
      w.ref,
      w.others,
      { stepBudgetPerKey: o.stepBudgetPerKey },
    );
    writeReport(dir, o, ops, w, chk, c, errors);
    const verdict: RunVerdict = chk.verdict === 'violation' ? 'violation' : errors.length > 0 ? 'error' : chk.verdict;
    out = { verdict, ms: 0, summary: chk.summary, dir, problems: chk.problems, errors, nemesisLog: c.log, check: chk };
  } catch (e) {
    errors.push(`harness: ${(e as Error).message.split('\n').slice(0, 3).join(' | ')}`);
    fs.writeFileSync(path.join(dir, 'harness-error.txt'), `${(e as Error).stack ?? String(e)}\n`); // with a member's stderr tail
    out = { verdict: 'error', ms: 0, summary: errors[errors.length - 1], dir, problems: [], errors, nemesisLog: cluster?.log ?? [] };
    if (cluster !== null) fs.writeFileSync(path.join(dir, 'nemesis.log'), cluster.log.join('\n') + '\n');
  } finally {
    if (live !== null) await live.stop(0, 0);
    if (cluster !== null) {
      if (out.verdict !== 'ok') {
        cluster.saveLogs(dir);
        fs.writeFileSync(path.join(dir, 'errors.txt'), errors.join('\n') + '\n');
      }
      await cluster.close();
    }
  }
  if (out.verdict === 'ok') {
    fs.rmSync(dir, { recursive: true, force: true });
    out.dir = null;
  }
  out.ms = Date.now() - t0;
  return out;
}
