// KV throughput through etcd's own Go client, as etcd's tools/benchmark measures it: bench/go/bin/kvbench
// (clientv3 of etcd 3.4; bench/go/kvbench/main.go says what it does) against Debian's etcd and etcd-ts,
// one server at a time on fresh data dirs, alternating which goes first each round, for R rounds. With
// --raw, each workload that etcd-ts-bench's raw HTTP/2 generator also has (put, txn-put, range) is run
// through that generator too (bench/lib/load.ts, client "raw": same clients, connections, request count,
// key and value sizes) right after the Go run on the same server, so the two generators' figures can be
// compared on the same server in the same round. Prints the per-run JSON on stderr and a markdown table
// of medians and etcd-ts/etcd ratios on stdout. Not a test: it asserts nothing on speed.
//
// Server CPU is read from /proc around each run, connection set-up included, the same way for both
// clients. Every process it starts (servers, kvbench, the raw generator's worker threads) runs at the nice level
// given by --nice (default -10 when allowed: the machine is shared; children inherit it).
//
//   sh bench/go/build.sh    # once: Go 1.19 and etcd 3.4's Go source from apt, builds bench/go/bin/kvbench
//   node dist/bench/go_kv.js [--rounds 3] [--workloads put-1,put-16,put-200,txn-put-200,range-l-200,range-s-200]
//                            [--scale 1] [--raw] [--tls] [--members 3] [--peer-tls] [--only etcd|etcd-ts]
//                            [--nice -10]
//
// Workloads (etcd's docs' benchmark shapes: 8-byte keys, 256-byte values; N clients over min(N, 8)
// connections): put-N (sequential keys over 100,000), txn-put-N (a Txn with one put), txn-cmp-N (the same
// with a compare), range-l-N / range-s-N (linearizable / serializable Range of one key), conn-N (N
// goroutines each dialling a new connection, with the TLS handshake under --tls, doing one serializable
// Range and closing: new connections per second). --tls: client TLS with client-certificate auth
// (certificates made as test/support/certs.ts makes them). --members 3: a 3-member cluster (kvbench's
// connections spread over the members); --peer-tls: peer TLS between them.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { performance } from 'node:perf_hooks';
import { execFileSync } from 'node:child_process';
import { freePort, removeDataDir, Server, ServerKind, StartOptions, startKind } from '../test/support/procs';
import { makeTestPki, removeTestPki, TestPki } from '../test/support/certs';
import { procCpuUs } from './lib/proc';
import { machineInfo } from './lib/machine';
import { median } from './lib/verdict';
import { fmtNum, ratioText } from './lib/results';
import { kvbenchBin, KvbenchResult, runKvbench } from './lib/kvbench';
import { preloadKeys, runKvLoad } from './lib/load';
import { defaultRequestOptions, keyAt, KvWorkloadName, layoutFor, RequestOptions } from './lib/workloads';

interface Args {
  rounds: number;
  workloads: string[];
  scale: number;
  raw: boolean;
  tls: boolean;
  members: number;
  peerTls: boolean;
  only: ServerKind | null;
  nice: number;
}

const defaultWorkloads = ['put-1', 'put-16', 'put-200', 'txn-put-200', 'range-l-200', 'range-s-200'];

function parseArgs(argv: string[]): Args {
  const a: Args = {
    rounds: 3,
    workloads: defaultWorkloads,
    scale: 1,
    raw: false,
    tls: false,
    members: 1,
    peerTls: false,
    only: null,
    nice: -10,
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i];
    const v = argv[i + 1];
    if (f === '--raw') a.raw = true;
    else if (f === '--tls') a.tls = true;
    else if (f === '--peer-tls') a.peerTls = true;
    else if (f === '--workloads' && v) {
      a.workloads = v.split(',').filter(Boolean);
      i++;
    } else if (f === '--only' && (v === 'etcd' || v === 'etcd-ts')) {
      a.only = v;
      i++;
    } else if ((f === '--rounds' || f === '--scale' || f === '--members') && Number(v) > 0) {
      a[f.slice(2) as 'rounds' | 'scale' | 'members'] = Number(v);
      i++;
    } else if (f === '--nice' && Number.isInteger(Number(v))) {
      a.nice = Number(v);
      i++;
    } else
      throw new Error(
        `bad argument ${f} ${v ?? ''} (flags: --rounds N --workloads a,b --scale X --raw --tls --members N --peer-tls --only etcd|etcd-ts --nice N)`,
      );
  }
  for (const w of a.workloads) parseWorkload(w, 1);
  if (a.peerTls && a.members < 2) throw new Error('--peer-tls needs --members 2 or more');
  if (a.raw && a.tls) throw new Error('--raw: the raw generator speaks cleartext HTTP/2 only; drop --tls');
  return a;
}

/** A workload: kvbench's arguments and, when the raw generator has the same workload, its options. */
interface Workload {
  name: string;
  clients: number;
  conns: number;
  total: number;
  go: string[]; // kvbench subcommand and its workload flags
  raw: { workload: KvWorkloadName; req: RequestOptions } | null;
  rangeKey: boolean; // reads one key, written before the run
}

const keySize = 8;
const valSize = 256;
const keySpace = 100_000;

function parseWorkload(name: string, scale: number): Workload {
  const m = /^(put|txn-put|txn-cmp|range-l|range-s|conn)-(\d+)$/.exec(name);
  if (!m || !(Number(m[2]) > 0)) throw new Error(`workload ${name}: use put-N, txn-put-N, txn-cmp-N, range-l-N, range-s-N or conn-N`);
  const clients = Number(m[2]);
  const conns = Math.min(clients, 8);
  const req: RequestOptions = { ...defaultRequestOptions, keySize, valueSize: valSize, keySpace, seqKeys: true };
  const sized = ['--key-size', String(keySize), '--val-size', String(valSize), '--key-space-size', String(keySpace)];
  // Request counts for a few seconds per run on a small, shared machine.
  const total = (n: number): number => Math.max(100, Math.round(n * scale));
  switch (m[1]) {
    case 'put':
      return {
        name,
        clients,
        conns,
        total: total(clients === 1 ? 1500 : 15_000),
        go: ['put', ...sized, '--sequential-keys'],
        raw: { workload: 'put', req },
        rangeKey: false,
      };
    case 'txn-put':
      return {
        name,
        clients,
        conns,
        total: total(clients === 1 ? 1500 : 15_000),
        go: ['txn-put', ...sized],
        raw: { workload: 'txn-put', req },
        rangeKey: false,
      };
    case 'txn-cmp':
      return {
        name,
        clients,
        conns,
        total: total(clients === 1 ? 1500 : 15_000),
        go: ['txn-put', ...sized, '--compare'],
        raw: null,
        rangeKey: false,
      };
    case 'range-l':
    case 'range-s': {
      const c = m[1] === 'range-l' ? 'l' : 's';
      return {
        name,
        clients,
        conns,
        total: total(30_000),
        go: ['range', '--consistency', c],
        raw: { workload: 'range', req: { ...req, keySpace: 1, consistency: c } },
        rangeKey: true,
      };
    }
    default:
      return { name, clients, conns: 1, total: total(3000), go: ['conn'], raw: null, rangeKey: true };
  }
}

/** The key the range workloads read: the raw generator's key 0 of a one-key space, so both read the same key. */
const rangeKey = keyAt(layoutFor({ ...defaultRequestOptions, keySize, valueSize: valSize, keySpace: 1 }), 0).toString('latin1');

interface Run {
  kind: ServerKind;
  round: number;
  workload: string;
  tool: 'go' | 'raw';
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  clientCores: number;
  serverCores: number;
}

/** Starts one server (or cluster) of this kind on fresh data dirs. */
async function startServers(kind: ServerKind, a: Args, pki: TestPki | null): Promise<Server[]> {
  const peerPki = a.peerTls ? pki : null;
  pki = a.tls ? pki : null; // --peer-tls alone: cleartext clients
  const tlsArgs = pki
    ? ['--cert-file', pki.server.cert, '--key-file', pki.server.key, '--trusted-ca-file', pki.ca, '--client-cert-auth']
    : [];
  const clientTls = pki ? { ca: pki.ca, cert: pki.client.cert, key: pki.client.key } : undefined;
  const base: StartOptions = { logLevel: 'error', extraArgs: tlsArgs, clientTls, readyTimeoutMs: 60_000 };
  if (a.members === 1) return [await startKind(kind, base)];
  const ports = await Promise.all(Array.from({ length: 2 * a.members }, () => freePort()));
  const scheme = a.peerTls ? 'https' : 'http';
  const names = Array.from({ length: a.members }, (_, i) => `m${i + 1}`);
  const token = `go-kv-${process.pid}-${Date.now()}`; // one for all members
  const initialCluster = names.map((n, i) => `${n}=${scheme}://127.0.0.1:${ports[a.members + i]}`).join(',');
  const peerArgs = peerPki
    ? [
        '--peer-cert-file',
        peerPki.server.cert,
        '--peer-key-file',
        peerPki.server.key,
        '--peer-trusted-ca-file',
        peerPki.ca,
        '--peer-client-cert-auth',
      ]
    : [];
  const started = await Promise.allSettled(
    names.map((name, i) =>
      startKind(kind, {
        ...base,
        extraArgs: [...tlsArgs, ...peerArgs],
        name,
        clientPort: ports[i],
        peerPort: ports[a.members + i],
        initialCluster,
        token,
        peerScheme: scheme,
      }),
    ),
  );
  const ok = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await stopServers(ok);
    throw failed.reason;
  }
  return ok;
}

async function stopServers(ss: Server[]): Promise<void> {
  await Promise.all(ss.map((s) => s.stop()));
  for (const s of ss) removeDataDir(s);
}

const serverCpuUs = (ss: Server[]): number => ss.reduce((t, s) => t + (procCpuUs(s.pid) ?? NaN), 0);

function goArgs(w: Workload, ss: Server[], pki: TestPki | null): string[] {
  return [
    w.go[0],
    ...(w.rangeKey ? [rangeKey] : []),
    ...w.go.slice(1),
    '--endpoints',
    ss.map((s) => s.endpoint).join(','),
    '--conns',
    String(w.conns),
    '--clients',
    String(w.clients),
    '--total',
    String(w.total),
    ...(pki ? ['--cacert', pki.ca, '--cert', pki.client.cert, '--key', pki.client.key] : []),
  ];
}

async function runWorkloads(kind: ServerKind, round: number, a: Args, pki: TestPki | null): Promise<Run[]> {
  const ss = await startServers(kind, a, pki);
  const runs: Run[] = [];
  try {
    if (a.workloads.some((w) => parseWorkload(w, 1).rangeKey)) {
      execFileSync('etcdctl', ['--endpoints', ss[0].endpoint, ...ss[0].ctlArgs, 'put', rangeKey, 'v'.repeat(valSize)], { stdio: 'ignore' });
    }
    for (const name of a.workloads) {
      const w = parseWorkload(name, a.scale);
      const cpu0 = serverCpuUs(ss);
      const t0 = performance.now();
      const g: KvbenchResult = await runKvbench(goArgs(w, ss, a.tls ? pki : null), 600_000);
      const sec = (performance.now() - t0) / 1000;
      const r: Run = {
        kind,
        round,
        workload: name,
        tool: 'go',
        reqPerSec: g.reqPerSec,
        p50Ms: g.p50Ms,
        p99Ms: g.p99Ms,
        errors: g.errors,
        clientCores: g.clientCores,
        serverCores: (serverCpuUs(ss) - cpu0) / 1e6 / sec,
      };
      if (g.errors) console.error(`${kind} ${name}: ${g.errors} errors, e.g. ${g.errorSample.join('; ')}`);
      console.error(JSON.stringify(r));
      runs.push(r);
      if (a.raw && w.raw) {
        if (w.raw.workload === 'range') await preloadKeys(ss[0].endpoint, w.raw.req, 'raw');
        const rc0 = serverCpuUs(ss);
        const rt0 = performance.now();
        const l = await runKvLoad({
          endpoint: ss[0].endpoint,
          endpoints: ss.map((s) => s.endpoint),
          workload: w.raw.workload,
          client: 'raw',
          clients: w.clients,
          connections: w.conns,
          req: w.raw.req,
          warmupMs: 0,
          durationMs: 0,
          total: w.total,
          ratePerSec: 0,
        });
        const rsec = (performance.now() - rt0) / 1000;
        const x: Run = {
          kind,
          round,
          workload: name,
          tool: 'raw',
          reqPerSec: l.reqPerSec,
          p50Ms: l.p50Ms,
          p99Ms: l.p99Ms,
          errors: l.errors,
          clientCores: l.generatorCpu,
          serverCores: (serverCpuUs(ss) - rc0) / 1e6 / rsec,
        };
        if (l.errors) console.error(`${kind} ${name} raw: ${l.errors} errors, first: ${l.firstError}`);
        console.error(JSON.stringify(x));
        runs.push(x);
      }
    }
  } finally {
    await stopServers(ss);
  }
  return runs;
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(kvbenchBin)) {
    throw new Error(
      `${kvbenchBin} is missing: run \`sh bench/go/build.sh\` first (it installs Go and etcd 3.4's Go client from apt and builds it)`,
    );
  }
  let niceNote = `nice ${a.nice}`;
  try {
    os.setPriority(a.nice);
  } catch (e) {
    niceNote = `nice unchanged (${e instanceof Error ? e.message : String(e)})`;
  }
  const kinds: ServerKind[] = a.only ? [a.only] : ['etcd', 'etcd-ts'];
  const m = machineInfo(process.env.ETCD_TS_ETCD_BIN ?? '/usr/bin/etcd');
  const pki = a.tls || a.peerTls ? makeTestPki() : null;
  const runs: Run[] = [];
  const loads: string[] = [];
  try {
    for (let round = 1; round <= a.rounds; round++) {
      loads.push(
        os
          .loadavg()
          .map((x) => x.toFixed(1))
          .join(' '),
      );
      const order = round % 2 === 1 ? kinds : [...kinds].reverse();
      for (const kind of order) runs.push(...(await runWorkloads(kind, round, a, pki)));
    }
  } finally {
    removeTestPki(pki ?? undefined);
  }
  const out: string[] = [];
  const cmd = `node dist/bench/go_kv.js ${process.argv.slice(2).join(' ')}`.trim();
  out.push(
    `Command: \`${cmd}\` (${a.members} member(s)${a.tls ? ', client TLS with client certificates' : ''}${a.peerTls ? ', peer TLS' : ''}; ` +
      `keys ${keySize} B, values ${valSize} B; Go client: etcd 3.4 clientv3, bench/go/bin/kvbench; ${niceNote})`,
  );
  out.push(
    `Machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.kernel}, Node ${m.node}, etcd ${m.etcd}, commit ${m.commit}, data dirs on ${m.tmpFs}; ` +
      `${new Date().toISOString().slice(0, 16)}Z; load average (1/5/15 min) at each round's start: ${loads.join('; ')}`,
  );
  out.push('', `Medians of ${a.rounds} round(s) (etcd and etcd-ts alternating, order flipped each round):`, '');
  const both = kinds.length === 2;
  out.push(
    `| workload | client | ${kinds.map((k) => `${k} req/s`).join(' | ')}${both ? ' | etcd-ts/etcd' : ''} | ${kinds.map((k) => `${k} p50 / p99 ms`).join(' | ')} | ` +
      `${kinds.map((k) => `${k} server / client cores`).join(' | ')} |`,
  );
  out.push(
    `|---|---|${kinds.map(() => '---:').join('|')}|${both ? '---:|' : ''}${kinds.map(() => '---:').join('|')}|${kinds.map(() => '---:').join('|')}|`,
  );
  for (const w of a.workloads) {
    for (const tool of ['go', 'raw'] as const) {
      const of = (k: ServerKind): Run[] => runs.filter((r) => r.workload === w && r.tool === tool && r.kind === k);
      if (!kinds.some((k) => of(k).length)) continue;
      const med = (k: ServerKind, f: (r: Run) => number): number => median(of(k).map(f).filter(Number.isFinite));
      const rps = kinds.map((k) => med(k, (r) => r.reqPerSec));
      out.push(
        `| ${w} | ${tool === 'go' ? 'Go clientv3' : 'raw HTTP/2'} | ${rps.map((x) => fmtNum(x, 0)).join(' | ')}${both ? ` | ${ratioText(rps[1], rps[0])}` : ''} | ` +
          `${kinds
            .map(
              (k) =>
                `${fmtNum(
                  med(k, (r) => r.p50Ms),
                  1,
                )} / ${fmtNum(
                  med(k, (r) => r.p99Ms),
                  1,
                )}`,
            )
            .join(' | ')} | ` +
          `${kinds
            .map(
              (k) =>
                `${fmtNum(
                  med(k, (r) => r.serverCores),
                  2,
                )} / ${fmtNum(
                  med(k, (r) => r.clientCores),
                  2,
                )}`,
            )
            .join(' | ')} |`,
      );
    }
  }
  const errs = runs.filter((r) => r.errors > 0);
  out.push(
    '',
    errs.length
      ? `Errors: ${errs.map((r) => `${r.kind} ${r.workload} ${r.tool} round ${r.round}: ${r.errors}`).join('; ')}`
      : 'Errors: none in any run.',
  );
  out.push('', 'Per round (req/s): ' + runs.map((r) => `${r.round}:${r.kind}:${r.workload}:${r.tool}=${fmtNum(r.reqPerSec, 0)}`).join(' '));
  console.log(out.join('\n'));
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  },
);
