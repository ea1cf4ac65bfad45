#!/usr/bin/env node
// etcd-ts-bench: load generator and comparison tool for any etcd v3 endpoint (see docs/BENCH_TOOL.md).
//
//   etcd-ts-bench <workload> --endpoints 127.0.0.1:2379 [load flags]      one workload, one endpoint
//   etcd-ts-bench compare <workload...> [--a etcd] [--b etcd-ts] [--rounds 3] [--md docs/BENCHMARKS.md]
//   etcd-ts-bench suite write-path [--server etcd-ts] [--etcd-ts-root DIR] [--base-root DIR] [--rounds 3] [--out FILE]
//   etcd-ts-bench diff base.json head.json [--threshold 5] [--server etcd-ts]
//   etcd-ts-bench report results/a.json [more.json] [-o report.html]   (or --md FILE: a compare file's table)
//
// Results go to results/ (JSON, with an HTML report next to it). Not a test: it never asserts on speed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runKvLoad, preloadKeys, LoadResult } from './lib/load';
import { ClientKind, clientFor, LaneName } from './lib/load_types';
import { runWatchLoad } from './lib/watch_load';
import { hasHttpPort, startServer, serverSpec, RunningServer, ServerSpec } from './lib/servers';
import {
  caseOf, gatewayVersion, htmlReport, markdownReport, newResultFile, readResultFile, ResultFile, RunRecord, samplesOf, serverVersion,
  summaryLine, writeJson, writeMarkedSection,
} from './lib/results';
import { defaultVerdictOptions, judge, median } from './lib/verdict';
import { incomparable } from './lib/comparable';
import {
  allWorkloads, defaultRequestOptions, describe, isWatchWorkload, isWorkloadName, needsPreload, RequestOptions, WorkloadName,
} from './lib/workloads';
import { isLaneName, laneConnections, laneLabel, laneRefuses } from './lib/lanes';
import { isSuiteName, SuiteCase, suites } from './lib/suites';

const usage = `usage:
  etcd-ts-bench <workload> [--endpoints HOST:PORT[,HOST:PORT]] [flags]
  etcd-ts-bench compare <workload...> [--a etcd] [--b etcd-ts] [--etcd /usr/bin/etcd] [--rounds 3] [--members 1] [--md FILE] [flags]
  etcd-ts-bench suite SUITE [--server etcd-ts|etcd|cmd:...] [--etcd-ts-root DIR] [--base-root DIR] [--rounds N] [--duration S] [--warmup S] [--base-port P]
      a fresh single member per round (etcd-ts of DIR/dist when --etcd-ts-root is given), every case of the suite
      in turn; --base-root DIR: each round also measures DIR's etcd-ts build, alternating, into OUT.base.json, then diffs; suites: ${Object.entries(suites).map(([k, v]) => `${k} (${v.cases.map((c) => c.name).join(', ')}; ${v.rounds} rounds of ${v.duration} s)`).join('; ')}
  etcd-ts-bench diff BASE.json HEAD.json [--threshold PCT] [--single-noise PCT] [--server LABEL]
      (refused, saying why, unless both measured the same server, load model and workload or suite case)
  etcd-ts-bench report FILE.json... [-o FILE.html] | report COMPARE.json --md docs/BENCHMARKS.md

workloads: ${allWorkloads.join(', ')} (txn = txn-put)

load flags (defaults in brackets):
  --conns N [8]  --clients N [200]          closed loop: N clients over the connections
  --rate R [0]                              open loop at R req/s (clients = most in flight), latency from when due
  --duration S [10] | --total N             measured seconds, or measured requests
  --warmup S [2]                            excluded from the results
  --key-size B [16] --val-size B [256] --key-space N [10000] --seq-keys
  --consistency l|s [l]  --range-span N [10]  --txn-ops N [1]  --read-ratio F [0.9]  --lease-ttl S [60]
  --watchers N [1000] --streams N [10] --writers N [4] --watch-keys N [200]   (watch, watch-latency; --rate = Put rate)
  --client raw|h2|grpc-js [raw; lease-keepalive always h2]  --workers N  --rounds N [1]  --no-preload  --no-progress
  --lane grpc|http|ws [grpc]   http: etcd's JSON gateway, a keep-alive HTTP/1.1 connection per client;
                               ws: etcd-ts's /ws API, clients/conns requests pipelined per connection
  --ws-binary                  ws lane: binary protobuf frames (default JSON text frames)
compare only:
  --members N [1]              each server kind as a cluster of N members; the load is spread over them
  --http-port client|fast [client]  http lane: etcd-ts's client port, or its --listen-client-http-urls port
                               (etcd's gateway is always its client port; the ws lane always uses the fast port)
  --a-lane L --b-lane L        a lane per side (default --lane), e.g. --a-lane grpc --b-lane ws
  --out FILE [results/<cmd>-<time>.json]  --no-html  --server-pid PID (CPU of a local server)
`;

interface Opts {
  endpoints: string[]; conns: number; clients: number; rate: number; duration: number; total: number; warmup: number;
  req: RequestOptions; watchers: number; streams: number; writers: number; watchKeys: number;
  client: ClientKind; workers?: number; lane: LaneName; aLane: LaneName | null; bLane: LaneName | null; wsBinary: boolean;
  httpPort: 'client' | 'fast'; members: number; rounds: number; preload: boolean; progress: boolean;
  out: string | null; html: boolean; serverPid?: number;
  a: string; b: string; etcd: string; md: string | null;
  threshold: number; singleNoise: number; server: string | null; o: string | null;
  etcdTsRoot: string | null; baseRoot: string | null; basePort: number | null;
  given: Set<string>; // flags given on the command line (a suite's defaults yield to them)
}

function num(v: string | undefined, flag: string, min = 0): number {
  const n = Number(v);
  if (v === undefined || !Number.isFinite(n) || n < min) throw new Error(`${flag} needs a number >= ${min}`);
  return n;
}

function lane(v: string | undefined, flag: string): LaneName {
  if (v === undefined || !isLaneName(v)) throw new Error(`${flag} grpc|http|ws`);
  return v;
}

function parse(argv: string[]): { positional: string[]; o: Opts } {
  const o: Opts = {
    endpoints: ['127.0.0.1:2379'], conns: 8, clients: 200, rate: 0, duration: 10, total: 0, warmup: 2,
    req: { ...defaultRequestOptions }, watchers: 1000, streams: 10, writers: 4, watchKeys: 200,
    client: 'raw', lane: 'grpc', aLane: null, bLane: null, wsBinary: false, httpPort: 'client', members: 1, rounds: 1, preload: true, progress: process.stderr.isTTY === true, out: null, html: true,
    a: 'etcd', b: 'etcd-ts', etcd: process.env.ETCD_TS_ETCD_BIN ?? '/usr/bin/etcd', md: null,
    threshold: defaultVerdictOptions.minThreshold * 100, singleNoise: defaultVerdictOptions.singleSampleNoise * 100, server: null, o: null,
    etcdTsRoot: null, baseRoot: null, basePort: null, given: new Set(),
  };
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i];
    const eq = f.indexOf('=');
    const flag = f.startsWith('--') && eq > 0 ? f.slice(0, eq) : f;
    const inline = f.startsWith('--') && eq > 0 ? f.slice(eq + 1) : undefined;
    const v = (): string | undefined => inline ?? argv[++i];
    if (flag.startsWith('-')) o.given.add(flag);
    switch (flag) {
      case '--endpoints': o.endpoints = (v() ?? '').split(',').filter(Boolean).map((e) => e.replace(/^https?:\/\//, '')); break;
      case '--conns': o.conns = num(v(), flag, 1); break;
      case '--clients': o.clients = num(v(), flag, 1); break;
      case '--rate': o.rate = num(v(), flag, 0); break;
      case '--duration': o.duration = num(v(), flag, 0.001); break;
      case '--total': o.total = Math.floor(num(v(), flag, 1)); break;
      case '--warmup': o.warmup = num(v(), flag, 0); break;
      case '--key-size': o.req.keySize = num(v(), flag, 1); break;
      case '--val-size': o.req.valueSize = num(v(), flag, 0); break;
      case '--key-space': o.req.keySpace = Math.floor(num(v(), flag, 1)); break;
      case '--seq-keys': o.req.seqKeys = true; break;
      case '--consistency': { const c = v(); if (c !== 'l' && c !== 's') throw new Error('--consistency l|s'); o.req.consistency = c; break; }
      case '--range-span': o.req.rangeSpan = Math.floor(num(v(), flag, 1)); break;
      case '--txn-ops': o.req.txnOps = Math.floor(num(v(), flag, 1)); break;
      case '--read-ratio': o.req.readRatio = num(v(), flag, 0); if (o.req.readRatio > 1) throw new Error('--read-ratio is 0..1'); break;
      case '--lease-ttl': o.req.leaseTtl = Math.floor(num(v(), flag, 1)); break;
      case '--watchers': o.watchers = Math.floor(num(v(), flag, 1)); break;
      case '--streams': o.streams = Math.floor(num(v(), flag, 1)); break;
      case '--writers': o.writers = Math.floor(num(v(), flag, 1)); break;
      case '--watch-keys': o.watchKeys = Math.floor(num(v(), flag, 1)); break;
      case '--client': { const c = v(); if (c !== 'h2' && c !== 'raw' && c !== 'grpc-js') throw new Error('--client h2|raw|grpc-js'); o.client = c; break; }
      case '--workers': o.workers = Math.floor(num(v(), flag, 1)); break;
      case '--lane': o.lane = lane(v(), flag); break;
      case '--a-lane': o.aLane = lane(v(), flag); break;
      case '--b-lane': o.bLane = lane(v(), flag); break;
      case '--ws-binary': o.wsBinary = true; break;
      case '--http-port': { const p = v(); if (p !== 'client' && p !== 'fast') throw new Error('--http-port client|fast'); o.httpPort = p; break; }
      case '--members': o.members = Math.floor(num(v(), flag, 1)); break;
      case '--rounds': o.rounds = Math.floor(num(v(), flag, 1)); break;
      case '--no-preload': o.preload = false; break;
      case '--no-progress': o.progress = false; break;
      case '--progress': o.progress = true; break;
      case '--out': o.out = v() ?? null; break;
      case '--no-html': o.html = false; break;
      case '--server-pid': o.serverPid = num(v(), flag, 1); break;
      case '--a': o.a = v() ?? ''; break;
      case '--b': o.b = v() ?? ''; break;
      case '--etcd': o.etcd = v() ?? ''; break;
      case '--md': o.md = v() ?? null; break;
      case '--threshold': o.threshold = num(v(), flag, 0); break;
      case '--single-noise': o.singleNoise = num(v(), flag, 0); break;
      case '--server': o.server = v() ?? null; break;
      case '-o': o.o = v() ?? null; break;
      case '--etcd-ts-root': o.etcdTsRoot = v() ?? null; break;
      case '--base-root': o.baseRoot = v() ?? null; break;
      case '--base-port': o.basePort = num(v(), flag, 1); break;
      case '-h': case '--help': process.stdout.write(usage); process.exit(0); break;
      default:
        if (f.startsWith('-')) throw new Error(`unknown flag ${f}\n${usage}`);
        positional.push(f);
    }
  }
  if (o.req.txnOps > o.req.keySpace) throw new Error('--txn-ops must not exceed --key-space (keys in a txn must differ)');
  return { positional, o };
}

/** Value bytes one request carries at most (txn-put carries txnOps values). */
function valueBytesPerRequest(r: RequestOptions): number {
  return r.valueSize * Math.max(1, r.txnOps) + r.keySize * (r.txnOps + 2);
}

function preloadClient(o: Opts): ClientKind {
  return clientFor('put', o.client, o.req.valueSize + o.req.keySize);
}

function loadModel(w: WorkloadName, o: Opts, ln: LaneName = o.lane): string {
  const span = o.total > 0 ? `${o.total} measured ${isWatchWorkload(w) ? 'Puts' : 'requests'}` : `${o.duration} s measured`;
  if (isWatchWorkload(w)) {
    const writers = w === 'watch-latency' ? `Puts at ${o.rate > 0 ? o.rate : 100}/s` : o.rate > 0 ? `Puts at ${o.rate}/s` : `${o.writers} closed-loop writers`;
    return `${o.watchers} watchers over ${o.streams} streams, ${writers} over ${o.watchKeys === 1 || w === 'watch-latency' ? 'one key' : `${o.watchKeys} keys`}, ${o.warmup} s warm-up, ${span}`;
  }
  const conns = laneConnections(ln, o.clients, o.conns);
  const model = o.rate > 0 ? `open loop at ${o.rate} req/s, at most ${o.clients} in flight over ${conns} connections`
    : `closed loop, ${o.clients} clients over ${conns} connections`;
  const client = ln === 'http' ? 'HTTP/1.1 keep-alive (one request in flight per connection) JSON gateway'
    : ln === 'ws' ? `WebSocket /ws ${o.wsBinary ? 'binary protobuf' : 'JSON'} (pipelined, up to ${Math.ceil(o.clients / conns)} in flight per connection)`
      : { h2: 'node:http2', raw: 'raw HTTP/2 frame', 'grpc-js': '@grpc/grpc-js' }[clientFor(w, o.client, valueBytesPerRequest(o.req))];
  return `${model}, ${o.warmup} s warm-up, ${span}, ${client} clients in worker threads`;
}

/** A progress bar on stderr (TTY only): elapsed share of the run and the current rate. */
function progressBar(label: string, o: Opts): { update: (ops: number) => void; done: () => void } {
  if (!o.progress) return { update: () => {}, done: () => {} };
  const t0 = Date.now();
  const measureFrom = t0 + o.warmup * 1000 + 400;
  let lastOps = 0;
  let lastT = measureFrom;
  let rate = 0;
  return {
    // Called once per worker report (about twice a second each): the rate is taken over >= 0.9 s.
    update: (ops) => {
      const now = Date.now();
      const frac = o.total > 0 ? ops / o.total : (now - measureFrom) / (o.duration * 1000);
      const f = Math.max(0, Math.min(1, frac));
      if (now - lastT >= 900) {
        rate = ((ops - lastOps) * 1000) / (now - lastT);
        lastOps = ops; lastT = now;
      }
      const bar = '#'.repeat(Math.round(f * 30)).padEnd(30, '-');
      process.stderr.write(`\r${label} [${bar}] ${(f * 100).toFixed(0).padStart(3)}% ${Math.round(rate)}/s   `);
    },
    done: () => process.stderr.write('\r\x1b[K'),
  };
}

/** Runs one workload once against one endpoint. */
async function runOne(w: WorkloadName, endpoints: string[], o: Opts, serverPids: number[], label: string, ln: LaneName = o.lane): Promise<LoadResult & { extra?: Record<string, number> }> {
  const refused = laneRefuses(w, ln);
  if (refused) throw new Error(refused);
  const serverPid = serverPids[0];
  const bar = progressBar(`${label} ${w}`, o);
  try {
    if (isWatchWorkload(w)) {
      const r = await runWatchLoad({
        endpoint: endpoints[0], workload: w, watchers: o.watchers, streams: Math.min(o.streams, o.watchers), writers: o.writers,
        keys: o.watchKeys, valueSize: o.req.valueSize, ratePerSec: o.rate, warmupMs: o.warmup * 1000,
        durationMs: o.duration * 1000, total: o.total, serverPid, onProgress: bar.update,
      });
      return { ...r, extra: { ...r.extra } };
    }
    return await runKvLoad({
      endpoint: endpoints[0], endpoints, workload: w, client: clientFor(w, o.client, valueBytesPerRequest(o.req)), lane: ln, wsBinary: o.wsBinary,
      clients: o.clients, connections: Math.min(o.conns, o.clients),
      workers: o.workers, req: o.req, warmupMs: o.warmup * 1000, durationMs: o.duration * 1000, total: o.total,
      ratePerSec: o.rate, serverPids, onProgress: bar.update,
    });
  } finally {
    bar.done();
  }
}

function defaultOut(kind: string): string {
  return path.join('results', `${kind}-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}.json`);
}

function save(r: ResultFile, o: Opts, kind: string): void {
  const out = o.out ?? defaultOut(kind);
  writeJson(out, r);
  console.error(`wrote ${out}`);
  if (o.html) {
    const html = out.replace(/\.json$/, '') + '.html';
    fs.writeFileSync(html, htmlReport([{ name: path.basename(out), r }]));
    console.error(`wrote ${html}`);
  }
}

/** Where a run's load went: the lane, which port of the server, and how many members it has (null: not known). */
interface Target { lane: LaneName; port: 'client port' | 'fast port' | 'given endpoints'; members: number | null }

function record(w: WorkloadName, o: Opts, server: string, version: string, round: number, result: RunRecord['result'], t: Target): RunRecord {
  return {
    server, serverVersion: version, workload: w, description: describe(w, o.req), round,
    loadModel: loadModel(w, o, t.lane), openLoop: o.rate > 0 && !isWatchWorkload(w), result,
    lane: laneLabel(t.lane, o.wsBinary), target: t.port, ...(t.members !== null ? { members: t.members } : {}),
  };
}

const commandLine = (): string => ['etcd-ts-bench', ...process.argv.slice(2)].join(' ');

async function cmdRun(w: WorkloadName, o: Opts): Promise<number> {
  const refused = laneRefuses(w, o.lane);
  if (refused) throw new Error(refused);
  if (o.members !== 1 || o.aLane || o.bLane || o.httpPort !== 'client') {
    throw new Error('--members, --http-port, --a-lane and --b-lane are compare flags: a run goes to the --endpoints given');
  }
  // The HTTP and WebSocket lanes may target etcd-ts's fast port, which serves no gRPC: ask its gateway.
  const version = await (o.lane === 'grpc' ? serverVersion(o.endpoints[0], 5000) : gatewayVersion(o.endpoints[0], 5000))
    .catch((e: Error) => { throw new Error(`${o.endpoints[0]}: ${e.message}`); });
  const file = newResultFile('run', commandLine(), o.etcd, { ...o, req: o.req });
  const label = o.endpoints.join(',');
  file.servers.push({ label, version });
  if (o.preload && needsPreload(w)) await preloadKeys(o.endpoints[0], o.req, preloadClient(o), 64, { lane: o.lane, wsBinary: o.wsBinary });
  let failed = 0;
  const target: Target = { lane: o.lane, port: 'given endpoints', members: null };
  for (let round = 1; round <= o.rounds; round++) {
    const res = await runOne(w, o.endpoints, o, o.serverPid ? [o.serverPid] : [], label);
    const x = record(w, o, label, version, o.rounds > 1 ? round : 0, res, target);
    console.log(summaryLine(x));
    file.runs.push(x);
    if (res.errors > 0) failed++;
  }
  save(file, o, w);
  return failed > 0 ? 1 : 0;
}

/** One side of a compare: the server to start, the lane its load takes, and its label in the results. */
interface Side { spec: ServerSpec; lane: LaneName; port: 'client port' | 'fast port'; label: string }

/**
 * The two sides of a compare. etcd-ts is given its fast port (--listen-client-http-urls) for the
 * WebSocket lane, and for the HTTP lane with --http-port fast; a cmd: server has one if its template
 * uses {httpUrl}. Labels name the lane and port unless both sides run on gRPC (older result files
 * and diff keep working with the plain labels).
 */
function compareSides(o: Opts): Side[] {
  const lanesOf = [o.aLane ?? o.lane, o.bLane ?? o.lane];
  const sides = [o.a, o.b].map((name, i): Side => {
    const ln = lanesOf[i];
    const wantsFast = ln === 'ws' || (ln === 'http' && o.httpPort === 'fast');
    const spec = serverSpec(name, o.etcd, { fastHttp: wantsFast });
    const fast = hasHttpPort(spec);
    if (ln === 'ws' && !fast) {
      throw new Error(`--lane ws: ${spec.label} has no fast port with etcd-ts's WebSocket API (/ws); ` +
        'give that side another lane (--a-lane grpc or http), or a cmd: template with --listen-client-http-urls {httpUrl}');
    }
    // A cmd: template with {httpUrl} always has a fast port: the HTTP lane uses it only when asked.
    const port = wantsFast && fast ? 'fast port' : 'client port';
    return { spec, lane: ln, port, label: spec.label };
  });
  if (sides.some((x) => x.lane !== 'grpc')) {
    for (const x of sides) x.label += ` (${laneLabel(x.lane, o.wsBinary)}${x.lane !== 'grpc' ? `, ${x.port}` : ''})`;
  }
  if (sides[0].label === sides[1].label) { sides[0].label += ' (A)'; sides[1].label += ' (B)'; }
  return sides;
}

/** The endpoints a side's load goes to: every member's gRPC port, or its fast port for the HTTP/WS lanes. */
function sideEndpoints(side: Side, s: RunningServer): string[] {
  if (side.port === 'fast port') {
    if (!s.httpEndpoints) throw new Error(`${side.label}: started without a fast port`);
    return s.httpEndpoints;
  }
  return s.endpoints;
}

async function cmdCompare(workloads: WorkloadName[], o: Opts): Promise<number> {
  const sides = compareSides(o);
  for (const side of sides) for (const w of workloads) { const r = laneRefuses(w, side.lane); if (r) throw new Error(r); }
  const file = newResultFile('compare', commandLine(), o.etcd, { ...o, req: o.req, workloads });
  let failed = 0;
  for (let round = 1; round <= o.rounds; round++) {
    // Alternate the order (A B, B A, ...) so that a drift of the machine does not favour one side.
    const order = round % 2 === 1 ? sides : [...sides].reverse();
    for (const side of order) {
      let s: RunningServer | undefined;
      let current: WorkloadName | null = null;
      try {
        s = await startServer(side.spec, o.members);
        if (!file.servers.some((x) => x.label === side.label)) {
          file.servers.push({ label: side.label, version: s.version, command: s.commandLine, members: o.members });
        }
        const endpoints = sideEndpoints(side, s);
        const target: Target = { lane: side.lane, port: side.port, members: o.members };
        let preloaded = false;
        for (const w of workloads) {
          current = w;
          // Every server compare starts serves gRPC on its client port: preload there, whatever the lane.
          if (o.preload && needsPreload(w) && !preloaded) { await preloadKeys(s.endpoint, o.req, preloadClient(o)); preloaded = true; }
          const res = await runOne(w, endpoints, o, s.pids, side.label, side.lane);
          if (w === 'delete') preloaded = false; // later reads should hit again: preload anew
          const x = record(w, o, side.label, s.version, round, res, target);
          console.error(summaryLine(x));
          file.runs.push(x);
          if (res.errors > 0) failed++;
          const died = s.exitInfo();
          if (died !== null) { current = null; throw new Error(`server ${died} during ${w}`); }
        }
        current = null;
      } catch (e) {
        const died = s?.exitInfo() ?? null;
        const first = (e instanceof Error ? e.message : String(e)).split('\n')[0];
        const message = died ? `the server ${died} (${first}); stderr: ${s!.stderrTail(3).replace(/\s+/g, ' ')}` : first;
        console.error(`${side.label} round ${round}${current ? ` ${current}` : ''}: ${e instanceof Error ? e.message : e}${died ? `\n${side.label} ${died}; stderr tail:\n${s!.stderrTail(20)}` : ''}`);
        file.failures.push({ server: side.label, round, workload: current, message });
        failed++;
      } finally {
        if (s) await s.stop();
      }
    }
  }
  file.servers.sort((x, y) => sides.findIndex((s) => s.label === x.label) - sides.findIndex((s) => s.label === y.label));
  const md = markdownReport(file);
  process.stdout.write(md);
  save(file, o, 'compare');
  if (o.md) { writeMarkedSection(o.md, 'bench-compare', md); console.error(`updated ${o.md}`); }
  return failed > 0 ? 1 : 0;
}

/**
 * A suite: per round a fresh single member of one server kind (etcd-ts by default), every case in turn
 * (keys preloaded before the first case that reads them), each a record keyed by its case name. With
 * --base-root DIR, each round also measures the etcd-ts built in DIR (the base), in alternating order
 * (base head, head base, ...), into a second file (OUT with .base before .json), then diffs base and head.
 */
async function cmdSuite(names: string[], o: Opts): Promise<number> {
  if (names.length !== 1 || !isSuiteName(names[0])) throw new Error(`suite: name one suite: ${Object.keys(suites).join(', ')}`);
  const name = names[0];
  const suite = suites[name];
  const so: Opts = {
    ...o,
    duration: o.given.has('--duration') || o.given.has('--total') ? o.duration : suite.duration,
    warmup: o.given.has('--warmup') ? o.warmup : suite.warmup,
    rounds: o.given.has('--rounds') ? o.rounds : suite.rounds,
  };
  if (o.lane !== 'grpc' || o.members !== 1 || o.rate > 0) throw new Error('suite: a suite runs closed-loop gRPC load against one member');
  if (o.baseRoot !== null && (o.server ?? 'etcd-ts') !== 'etcd-ts') throw new Error('suite: --base-root compares two etcd-ts builds (no --server)');
  const headOut = o.out ?? defaultOut(`suite-${name}`);
  const sides = [{ role: 'head', root: o.etcdTsRoot, out: headOut }];
  if (o.baseRoot !== null) sides.unshift({ role: 'base', root: o.baseRoot, out: headOut.replace(/(\.json)?$/, '.base.json') });
  const runs = sides.map((side) => {
    const spec = serverSpec(o.server ?? 'etcd-ts', o.etcd, { etcdTsRoot: side.root ?? undefined });
    const file = newResultFile('suite', commandLine(), o.etcd, {
      ...so, req: so.req, given: [...o.given], suite: name, cases: suite.cases, etcdTsRoot: side.root, role: side.role,
    });
    return { ...side, spec, file };
  });
  const target: Target = { lane: 'grpc', port: 'client port', members: 1 };
  let failed = 0;
  for (let round = 1; round <= so.rounds; round++) {
    // Alternate the order so that a drift of the shared machine does not favour one side.
    for (const { role, spec, file } of round % 2 === 1 ? runs : [...runs].reverse()) {
      const label = runs.length > 1 ? `${role} ${spec.label}` : spec.label;
      let s: RunningServer | undefined;
      let current: SuiteCase | null = null;
      try {
        s = await startServer(spec, 1, { basePort: o.basePort ?? undefined });
        if (file.servers.length === 0) file.servers.push({ label: spec.label, version: s.version, command: s.commandLine, members: 1 });
        let preloaded = false;
        for (const c of suite.cases) {
          current = c;
          if (so.preload && needsPreload(c.workload) && !preloaded) { await preloadKeys(s.endpoint, so.req, preloadClient(so)); preloaded = true; }
          const co: Opts = { ...so, clients: c.clients, conns: c.conns };
          const res = await runOne(c.workload, s.endpoints, co, s.pids, `${label} ${c.name}`);
          const x: RunRecord = { ...record(c.workload, co, spec.label, s.version, round, res, target), case: c.name };
          console.error(`${runs.length > 1 ? `${role}: ` : ''}${summaryLine(x)}`);
          file.runs.push(x);
          if (res.errors > 0) failed++;
          const died = s.exitInfo();
          if (died !== null) throw new Error(`server ${died} during ${c.name}`);
        }
        current = null;
      } catch (e) {
        const message = (e instanceof Error ? e.message : String(e)).split('\n')[0];
        console.error(`${label} round ${round}${current ? ` ${current.name}` : ''}: ${message}${s?.exitInfo() ? `\n${s.stderrTail(20)}` : ''}`);
        file.failures.push({ server: spec.label, round, workload: current?.name ?? null, message });
        failed++;
      } finally {
        if (s) await s.stop();
      }
    }
  }
  // One line per case and side: the median over the rounds, which diff compares.
  const med = median;
  for (const { role, file, out } of runs) {
    for (const c of suite.cases) {
      const rs = file.runs.filter((x) => x.case === c.name);
      if (rs.length === 0) continue;
      console.log(`${runs.length > 1 ? `${role} ` : ''}${c.name}: median ${Math.round(med(rs.map((x) => x.result.reqPerSec)))} req/s, ` +
        `p99 ${med(rs.map((x) => x.result.p99Ms)).toFixed(2)} ms (${rs.map((x) => Math.round(x.result.reqPerSec)).join(', ')} req/s over ${rs.length} rounds)`);
    }
    save(file, { ...so, out }, `suite-${name}`);
  }
  if (runs.length > 1 && failed === 0) return cmdDiff([runs[0].out, runs[1].out], { ...o, server: null });
  return failed > 0 ? 1 : 0;
}

function cmdDiff(files: string[], o: Opts): number {
  if (files.length !== 2) throw new Error('diff needs two result files: BASE.json HEAD.json');
  const [base, head] = files.map(readResultFile);
  const pick = (r: ResultFile): string => {
    const labels = [...new Set(r.runs.map((x) => x.server))];
    if (o.server !== null) return o.server;
    return labels[labels.length - 1]; // compare files: the second server (B); run files: the only one
  };
  const sb = pick(base);
  const sh = pick(head);
  // Runs are keyed by workload, or by case in a suite's file (put-c1 and put-c200 are both Put).
  const workloads = [...new Set(base.runs.map(caseOf))].filter((w) => head.runs.some((x) => caseOf(x) === w));
  if (workloads.length === 0) throw new Error('diff: the files have no workload in common');
  // Refused, saying why, unless both sides measured the same server, load model and workload (comparable.ts).
  const runsOf = (r: ResultFile, server: string, w: string) => r.runs.filter((x) => x.server === server && caseOf(x) === w);
  const reasons = workloads.flatMap((w) => incomparable(w, runsOf(base, sb, w), runsOf(head, sh, w)));
  if (reasons.length > 0) {
    if (sb !== sh) reasons.push(`(diff compares server "${sb}" of ${files[0]} with "${sh}" of ${files[1]}; --server LABEL picks one label in both)`);
    throw new Error(`diff: refusing to compare ${files[0]} with ${files[1]}:\n  ${reasons.join('\n  ')}`);
  }
  for (const [name, r, other] of [['base', base, head], ['head', head, base]] as const) {
    const only = [...new Set(r.runs.map(caseOf))].filter((w) => !other.runs.some((x) => caseOf(x) === w));
    if (only.length > 0) console.log(`only in ${name} (not compared): ${only.join(', ')}`);
  }
  const opts = { minThreshold: o.threshold / 100, singleSampleNoise: o.singleNoise / 100 };
  let regression = false;
  console.log(`base: ${files[0]} (${sb}, ${base.date}); head: ${files[1]} (${sh}, ${head.date})`);
  for (const w of workloads) {
    const b = samplesOf(base, sb, w);
    const h = samplesOf(head, sh, w);
    if (!b || !h) { console.log(`${w}: no samples for ${!b ? sb : sh}`); continue; }
    const v = judge(b, h, opts);
    regression ||= v.regression;
    const unit = v.metric === 'throughput' ? (w.startsWith('watch') ? 'events/s' : 'req/s') : 'ms p99';
    const fmt = (n: number) => (v.metric === 'throughput' ? Math.round(n).toString() : n.toFixed(2));
    console.log(`${w}: ${v.verdict.toUpperCase()} on ${v.metric}: ${fmt(v.base)} → ${fmt(v.head)} ${unit} ` +
      `(${v.change >= 0 ? '+' : ''}${(v.change * 100).toFixed(1)}% better-is-positive; noise threshold ±${(v.threshold * 100).toFixed(1)}%, ` +
      `${b.throughput.length} vs ${h.throughput.length} samples)${v.newErrors ? `; NEW ERRORS: ${h.errors}` : ''}`);
  }
  console.log(regression ? 'verdict: REGRESSION' : 'verdict: no regression');
  return regression ? 1 : 0;
}

function cmdReport(files: string[], o: Opts): number {
  if (files.length === 0) throw new Error('report needs result files');
  if (o.md !== null) { // Markdown of one compare file into a marked section (docs/BENCHMARKS.md)
    if (files.length !== 1) throw new Error('report --md takes one compare result file');
    writeMarkedSection(o.md, 'bench-compare', markdownReport(readResultFile(files[0])));
    console.error(`updated ${o.md}`);
    return 0;
  }
  const out = o.o ?? (files.length === 1 ? files[0].replace(/\.json$/, '') + '.html' : path.join('results', 'report.html'));
  fs.writeFileSync(out, htmlReport(files.map((f) => ({ name: path.basename(f), r: readResultFile(f) }))));
  console.error(`wrote ${out}`);
  return 0;
}

/** Short names: etcd benchmark's `txn-put` is what `txn` means in the issue's examples. */
const aliases: Record<string, WorkloadName> = { txn: 'txn-put' };

function workloadList(names: string[]): WorkloadName[] {
  if (names.length === 0) throw new Error(`name at least one workload: ${allWorkloads.join(', ')}`);
  return names.map((name) => {
    const n = aliases[name] ?? name;
    if (!isWorkloadName(n)) throw new Error(`unknown workload ${name}; workloads: ${allWorkloads.join(', ')}`);
    return n;
  });
}

async function main(): Promise<number> {
  const { positional, o } = parse(process.argv.slice(2));
  const [cmd, ...rest] = positional;
  switch (cmd) {
    case undefined: process.stderr.write(usage); return 2;
    case 'compare': return cmdCompare(workloadList(rest), o);
    case 'suite': return cmdSuite(rest, o);
    case 'diff': return cmdDiff(rest, o);
    case 'report': return cmdReport(rest, o);
    default: {
      const [w] = workloadList([cmd]);
      if (rest.length) throw new Error(`unexpected arguments: ${rest.join(' ')}`);
      return cmdRun(w, o);
    }
  }
}

main().then((code) => process.exit(code), (e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(2);
});
