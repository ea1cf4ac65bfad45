// The cost of one committed write (issue 19, scope 1): for etcd 3.4 and etcd-ts side by side, what a
// server process spends per committed Put — context switches (voluntary and involuntary, summed over its
// threads), futex calls, the write/writev/sendmsg/fsync/fdatasync/pwrite calls, all system calls, and CPU
// microseconds — for each client count, on one member and on a 3-member cluster (the leader and a follower
// counted separately; the load goes to the leader).
//
//   node dist/bench/write_cost.js [--servers etcd,etcd-ts] [--members 1,3] [--clients 1,16]
//     [--puts 3000] [--strace-puts 1500] [--base-port 27100] [--out results/write-cost.json] [--md FILE]
//
// Per (server, members, clients), one fresh server or cluster, then two measured runs of a fixed number
// of Puts (etcd-ts-bench's load workers, raw HTTP/2 gRPC client, 256-byte values over 10k keys, closed loop):
//  1. untraced: /proc/PID/task/*/status (voluntary_ctxt_switches, nonvoluntary_ctxt_switches) and
//     /proc/PID/stat (utime + stime) of each measured member, before and after;
//  2. traced: `strace -c -f -p TID ...` attached to every thread of each measured member during the run
//     (ptrace slows the server many times over, so the counts come from this run and the switches and
//     CPU from the untraced one).
// Each count is divided by the Puts committed in that run: the server's revision after minus before
// (Maintenance/Status), so the work of connection setup and of the idle background (ticks, heartbeats,
// timers) during the run is charged to the Puts, as a user of the server would pay it.
// Not a test; never asserts. Syscall counts depend little on machine load; CPU and involuntary switches do.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { etcdserverpb } from '../src/shared/gen/etcd';
import { KvConnection } from './lib/kv_client';
import { runKvLoad } from './lib/load';
import { machineInfo } from './lib/machine';
import { procCpuUs, threadCpuUs } from './lib/proc';
import { RunningServer, serverSpec, startServer } from './lib/servers';
import { defaultRequestOptions, paths } from './lib/workloads';

interface Opts {
  servers: string[];
  members: number[];
  clients: number[];
  puts: number;
  stracePuts: number;
  basePort: number | undefined;
  out: string;
  md: string | null;
  etcd: string;
}

function parse(argv: string[]): Opts {
  const o: Opts = {
    servers: ['etcd', 'etcd-ts'],
    members: [1, 3],
    clients: [1, 16],
    puts: 3000,
    stracePuts: 1500,
    basePort: undefined,
    out: path.join('results', 'write-cost.json'),
    md: null,
    etcd: process.env.ETCD_TS_ETCD_BIN ?? '/usr/bin/etcd',
  };
  const list = (v: string | undefined): string[] => (v ?? '').split(',').filter(Boolean);
  const nums = (v: string | undefined, flag: string): number[] => {
    const r = list(v).map(Number);
    if (r.length === 0 || r.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`${flag} needs positive integers, comma-separated`);
    return r;
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i];
    const v = (): string | undefined => argv[++i];
    switch (f) {
      case '--servers':
        o.servers = list(v());
        break;
      case '--members':
        o.members = nums(v(), f);
        break;
      case '--clients':
        o.clients = nums(v(), f);
        break;
      case '--puts':
        o.puts = nums(v(), f)[0];
        break;
      case '--strace-puts':
        o.stracePuts = nums(v(), f)[0];
        break;
      case '--base-port':
        o.basePort = nums(v(), f)[0];
        break;
      case '--out':
        o.out = v() ?? o.out;
        break;
      case '--md':
        o.md = v() ?? null;
        break;
      case '--etcd':
        o.etcd = v() ?? o.etcd;
        break;
      default:
        throw new Error(`unknown argument ${f}`);
    }
  }
  return o;
}

// ---- readings ----

interface Status {
  memberId: string;
  leader: string;
  revision: number;
}

async function status(endpoint: string): Promise<Status> {
  const c = new KvConnection(endpoint);
  try {
    await c.waitForReady(5000);
    const raw = await new Promise<Buffer>((resolve, reject) => {
      c.callPath(paths.status, Buffer.alloc(0), (err, res) => (err ? reject(err) : resolve(res!)));
    });
    const st = etcdserverpb.StatusResponse.decode(raw);
    return { memberId: String(st.header?.memberId ?? ''), leader: String(st.leader), revision: Number(String(st.header?.revision ?? 0)) };
  } finally {
    c.close();
  }
}

/** Per thread (tid): its name and its voluntary and involuntary context switches so far. */
type Switches = Map<string, { name: string; vol: number; invol: number }>;

function switches(pid: number): Switches {
  const out: Switches = new Map();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const s = fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      const name = /^Name:\s*(.*)$/m.exec(s)?.[1] ?? '?';
      const vol = Number(/^voluntary_ctxt_switches:\s*(\d+)/m.exec(s)?.[1] ?? 0);
      const invol = Number(/^nonvoluntary_ctxt_switches:\s*(\d+)/m.exec(s)?.[1] ?? 0);
      out.set(tid, { name, vol, invol });
    } catch {
      // the thread ended
    }
  }
  return out;
}

/** Switches between two readings, per thread; threads that ended in between are not counted. */
function switchDelta(pid: number, a: Switches, b: Switches): Array<{ tid: string; name: string; vol: number; invol: number }> {
  return [...b]
    .map(([tid, x]) => {
      const y = a.get(tid) ?? { vol: 0, invol: 0 };
      return { tid: tid === String(pid) ? `${tid} (main)` : tid, name: x.name, vol: x.vol - y.vol, invol: x.invol - y.invol };
    })
    .filter((t) => t.vol + t.invol > 0)
    .sort((p, q) => q.vol + q.invol - (p.vol + p.invol));
}

/**
 * `strace -f -p PID` (every thread of the process, and threads started while attached), logging each
 * call with its thread id; stop() detaches and returns the calls per system call of each thread, keyed
 * by tid. (`strace -c` sums over threads; several `strace -c -p TID` cannot tell apart threads started
 * during the run. The log costs more than -c, but the traced run only counts.)
 */
interface Tracer {
  stop(): Promise<Map<string, Map<string, number>>>;
}

async function strace(pid: number, dir: string): Promise<Tracer> {
  const outFile = path.join(dir, `strace-${pid}-${Date.now()}.txt`);
  const child = spawn('strace', ['-f', '-qq', '-s', '0', '-e', 'verbose=none', '-o', outFile, '-p', String(pid)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise((r) => setTimeout(r, 1500)); // attaching to every thread
  return {
    stop: async () => {
      child.kill('SIGINT');
      const code = await exited;
      if (!fs.existsSync(outFile)) throw new Error(`strace exited with ${code}: ${err}`);
      const out = parseStraceLog(fs.readFileSync(outFile, 'utf8'));
      fs.rmSync(outFile, { force: true });
      return out;
    },
  };
}

/**
 * Calls per system call per thread from an `strace -f` log: each call's first line is "TID name(...",
 * complete or "<unfinished ...>"; its "<... name resumed>" line, signals and exits are not counted.
 */
export function parseStraceLog(text: string): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  const re = /^(\d+)\s+([a-z_0-9]+)\(/gm;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    let t = out.get(m[1]);
    if (!t) out.set(m[1], (t = new Map()));
    t.set(m[2], (t.get(m[2]) ?? 0) + 1);
  }
  return out;
}

// ---- one measurement ----

interface RoleCost {
  role: string; // "member" (1 member), "leader", "follower"
  committed: number; // Puts committed in the untraced run (revision delta)
  committedTraced: number; // ... and in the traced run
  perPut: Record<string, number>;
  /** Per thread, busiest first: switches, CPU and the main system calls per committed Put. */
  threads: Array<{
    tid: string;
    name: string;
    volPerPut: number;
    involPerPut: number;
    cpuUsPerPut: number;
    syscallsPerPut: Record<string, number>;
  }>;
  syscallsPerPut: Record<string, number>; // every system call strace counted, per committed Put
  reqPerSec: number; // of the untraced run (context only: the machine is shared)
  reqPerSecTraced: number;
}

interface Row {
  server: string;
  version: string;
  members: number;
  clients: number;
  roles: RoleCost[];
}

const shown = ['futex', 'write', 'writev', 'sendmsg', 'sendto', 'fsync', 'fdatasync', 'pwrite64', 'epoll_wait', 'epoll_pwait'];

async function load(endpoint: string, clients: number, total: number): Promise<number> {
  const r = await runKvLoad({
    endpoint,
    workload: 'put',
    client: 'raw',
    clients,
    connections: Math.min(8, clients),
    req: { ...defaultRequestOptions },
    warmupMs: 0,
    durationMs: 0,
    total,
    ratePerSec: 0,
  });
  if (r.errors > 0) throw new Error(`${r.errors} errors: ${r.firstError}`);
  return r.reqPerSec;
}

async function measure(s: RunningServer, members: number, clients: number, o: Opts, tmp: string): Promise<RoleCost[]> {
  const st = await Promise.all(s.members.map((m) => status(m.endpoint)));
  const leaderIdx = st.findIndex((x) => x.memberId === x.leader);
  if (leaderIdx < 0) throw new Error('no member says it is the leader');
  const leader = s.members[leaderIdx];
  const measured =
    members === 1
      ? [{ role: 'member', m: leader }]
      : [
          { role: 'leader', m: leader },
          { role: 'follower', m: s.members[(leaderIdx + 1) % members] },
        ];
  // Warm-up (JIT, connections, first WAL segment): not counted.
  await load(leader.endpoint, clients, Math.min(1000, o.puts));
  // 1. untraced: switches and CPU.
  const sw0 = measured.map((x) => switches(x.m.pid));
  const tcpu0 = measured.map((x) => threadCpuUs(x.m.pid));
  const cpu0 = measured.map((x) => procCpuUs(x.m.pid) ?? NaN);
  const rev0 = (await status(leader.endpoint)).revision;
  const rate = await load(leader.endpoint, clients, o.puts);
  const rev1 = (await status(leader.endpoint)).revision;
  const cpu1 = measured.map((x) => procCpuUs(x.m.pid) ?? NaN);
  const sw1 = measured.map((x) => switches(x.m.pid));
  const tcpu1 = measured.map((x) => threadCpuUs(x.m.pid));
  const committed = rev1 - rev0;
  // 2. traced: system calls.
  const tracers = await Promise.all(measured.map((x) => strace(x.m.pid, tmp)));
  const rev2 = (await status(leader.endpoint)).revision;
  const rateTraced = await load(leader.endpoint, clients, o.stracePuts);
  const rev3 = (await status(leader.endpoint)).revision;
  const counts = await Promise.all(tracers.map((t) => t.stop()));
  const committedTraced = rev3 - rev2;
  return measured.map((x, i) => {
    const th = switchDelta(x.m.pid, sw0[i], sw1[i]);
    const vol = th.reduce((a, t) => a + t.vol, 0);
    const invol = th.reduce((a, t) => a + t.invol, 0);
    const all = new Map<string, number>();
    for (const perThread of counts[i].values()) for (const [name, n] of perThread) all.set(name, (all.get(name) ?? 0) + n);
    const sys: Record<string, number> = {};
    let total = 0;
    for (const [name, n] of [...all].sort((p, q) => q[1] - p[1])) {
      sys[name] = n / committedTraced;
      total += n;
    }
    const cpuOf = (tid: string): number => {
      const k = [...tcpu1[i].keys()].find((key) => key.split(' ')[0] === tid);
      const k0 = [...tcpu0[i].keys()].find((key) => key.split(' ')[0] === tid);
      return k ? (tcpu1[i].get(k)! - (k0 ? tcpu0[i].get(k0)! : 0)) / committed : 0;
    };
    const threadSys = (tid: string): Record<string, number> => {
      const m = counts[i].get(tid);
      const r: Record<string, number> = {};
      if (m) for (const [name, n] of [...m].sort((p, q) => q[1] - p[1])) r[name] = n / committedTraced;
      return r;
    };
    const perPut: Record<string, number> = {
      ctxVoluntary: vol / committed,
      ctxInvoluntary: invol / committed,
      cpuUs: (cpu1[i] - cpu0[i]) / committed,
      syscalls: total / committedTraced,
    };
    for (const k of shown) perPut[k] = (all.get(k) ?? 0) / committedTraced;
    return {
      role: x.role,
      committed,
      committedTraced,
      perPut,
      syscallsPerPut: sys,
      reqPerSec: rate,
      reqPerSecTraced: rateTraced,
      threads: th.map((t) => {
        const tid = t.tid.split(' ')[0];
        return {
          tid: t.tid,
          name: t.name,
          volPerPut: t.vol / committed,
          involPerPut: t.invol / committed,
          cpuUsPerPut: cpuOf(tid),
          syscallsPerPut: threadSys(tid),
        };
      }),
    };
  });
}

// ---- report ----

const f2 = (n: number): string => (Number.isFinite(n) ? (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2)) : 'n/a');

export function markdown(rows: Row[]): string {
  const lines = [
    '| members | clients | role | server | ctx sw vol + invol | futex | write | writev | sendmsg | fsync | fdatasync | pwrite64 | all syscalls | CPU µs |',
    '|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const keyOf = (r: Row, role: string): string => `${r.members}/${r.clients}/${role}`;
  const keys = [...new Set(rows.flatMap((r) => r.roles.map((x) => keyOf(r, x.role))))];
  for (const k of keys) {
    for (const r of rows) {
      const x = r.roles.find((y) => keyOf(r, y.role) === k);
      if (!x) continue;
      const p = x.perPut;
      lines.push(
        `| ${r.members} | ${r.clients} | ${x.role} | ${r.server} | ${f2(p.ctxVoluntary)} + ${f2(p.ctxInvoluntary)} | ${f2(p.futex)} | ${f2(p.write)} | ` +
          `${f2(p.writev)} | ${f2(p.sendmsg + p.sendto)} | ${f2(p.fsync)} | ${f2(p.fdatasync)} | ${f2(p.pwrite64)} | ${f2(p.syscalls)} | ${f2(p.cpuUs)} |`,
      );
    }
  }
  lines.push(
    '',
    'Per committed Put. sendmsg includes sendto. The threads with the most context switches per Put: voluntary + involuntary switches, CPU µs, the most frequent system calls (threads a thread started during the run count with it):',
    '',
  );
  for (const r of rows) {
    for (const x of r.roles) {
      const top = x.threads
        .slice(0, 6)
        .map((t) => {
          const calls = Object.entries(t.syscallsPerPut)
            .filter(([, n]) => n >= 0.1)
            .slice(0, 4)
            .map(([k, n]) => `${k} ${f2(n)}`)
            .join(' ');
          return `${t.name} ${t.tid}: ${f2(t.volPerPut)}+${f2(t.involPerPut)} sw, ${f2(t.cpuUsPerPut)} µs${calls ? `, ${calls}` : ''}`;
        })
        .join('; ');
      lines.push(
        `- ${r.server}, ${r.members} member${r.members > 1 ? 's' : ''}, ${r.clients} client${r.clients > 1 ? 's' : ''}, ${x.role} ` +
          `(${Math.round(x.reqPerSec)} Put/s untraced, ${Math.round(x.reqPerSecTraced)} traced): ${top}`,
      );
    }
  }
  return lines.join('\n') + '\n';
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'write-cost-'));
  const rows: Row[] = [];
  const started = new Date().toISOString();
  const load0 = os.loadavg();
  try {
    for (const members of o.members) {
      for (const clients of o.clients) {
        for (const name of o.servers) {
          const s = await startServer(serverSpec(name, o.etcd), members, { basePort: o.basePort });
          try {
            console.error(`${name}, ${members} member(s), ${clients} client(s)...`);
            const roles = await measure(s, members, clients, o, tmp);
            rows.push({ server: s.label, version: s.version, members, clients, roles });
            for (const x of roles)
              console.error(
                `  ${x.role}: ${JSON.stringify(Object.fromEntries(Object.entries(x.perPut).map(([k, v]) => [k, Number(v.toFixed(2))])))}`,
              );
          } finally {
            await s.stop();
          }
        }
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const md = markdown(rows);
  const file = {
    schema: 'etcd-ts-write-cost/1',
    date: started,
    command: ['node', 'dist/bench/write_cost.js', ...process.argv.slice(2)].join(' '),
    machine: machineInfo(o.etcd),
    loadAvgStart: load0,
    loadAvgEnd: os.loadavg(),
    options: o,
    rows,
  };
  fs.mkdirSync(path.dirname(o.out), { recursive: true });
  fs.writeFileSync(o.out, JSON.stringify(file, null, 2) + '\n');
  console.error(`wrote ${o.out}`);
  if (o.md) {
    fs.writeFileSync(o.md, md);
    console.error(`wrote ${o.md}`);
  }
  process.stdout.write(md);
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e instanceof Error ? e.stack : e);
      process.exit(1);
    },
  );
}
