// Watch fan-out: N watchers on one prefix, spread over C HTTP/2 connections (one bidi Watch stream per
// connection, raw node:http2 + the generated codecs), while a few writers put to K keys under that prefix
// for S seconds. Reports, for Debian's etcd and etcd-ts run one after the other on fresh data dirs:
// events delivered per second (summed over all watchers), writes per second, p50/p99 event latency, and
// the CPU of the load generator and of the server. Then, on a fresh server, the resident memory per idle
// watcher (10,000 single-key watchers; VmRSS of the server from /proc/<pid>/status --idle-settle seconds
// after the streams opened, then 1.5 s and --idle-settle seconds after the last watcher was created).
// Not a test: it asserts nothing on speed.
//
//   node dist/bench/watch.js [--watchers 1000] [--connections 10] [--keys 200] [--seconds 5]
//                            [--writers 4] [--value-bytes 100] [--idle-watchers 10000] [--idle-settle 15] [--only etcd|etcd-ts]
//                            [--window BYTES] [--writer-thread 1|0] [--prof]
//   --window: the watch connections' HTTP/2 receive window (stream and connection), default 65535 (the
//             protocol's and node:http2's default; grpc-go clients grow theirs up to 16 MiB by BDP estimation)
//   --writer-thread: 1 (default) runs the writers on a worker thread of their own, as a Go client's writer
//             goroutine runs apart from its watch goroutines; 0 runs them on the event loop that also reads
//             every watch event, so each Put's answer waits behind the events that arrived before it and
//             the writers slow down with the generator (lib/watch_writer.ts). Results differ a lot between
//             the two for etcd, which answers Puts before their events are sent (docs/BENCHMARKS.md).
//   --prof:   etcd-ts fan-out run under --cpu-prof: one flamegraph per thread in
//             flamegraphs/<commit>-watch-<thread>.html
//
// Event latency = arrival of the event at a watcher minus the time its Put request was written by the
// writer (so it includes the Put's commit and fsync as well as the fan-out). The Put's response gives the
// revision, and an event is matched to its Put by kv.mod_revision. Latency is sampled on every 10th
// watcher to keep the generator's bookkeeping small; it also includes the generator's own event-loop
// delay, which grows when the generator is near one core busy.
//
// The generator does not decode WatchResponses with protobufjs (that alone would cap it well below the
// servers): a small wire-format scanner (lib/watch_wire.ts) counts events (field 11) and, for sampled
// watchers, reads the mod_revision of each event's kv.
import { newScanResult, scanResponse, Scanner, WatchStream } from './lib/watch_wire';
import { procCpuUs, rssKiB, threadCoresText, threadCpuUs } from './lib/proc';
import { performance } from 'node:perf_hooks';
import { removeDataDir, Server, ServerKind, startKind } from '../test/support/procs';
import { machineInfo } from './lib/machine';
import { fmtNum, ratioText } from './lib/results';
import { topSelf, writeFlamegraphs } from './lib/flame';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { runWriters, WriterJob, WriterResult } from './lib/watch_writer';

interface Args {
  watchers: number; connections: number; keys: number; seconds: number; writers: number;
  valueBytes: number; idleWatchers: number; idleSettle: number; only: ServerKind | null; prof: boolean; window: number;
  writerThread: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { watchers: 1000, connections: 10, keys: 200, seconds: 5, writers: 4, valueBytes: 100, idleWatchers: 10_000, idleSettle: 15, only: null, prof: false, window: 65535, writerThread: 1 };
  const flags: Record<string, keyof Args> = {
    '--watchers': 'watchers', '--connections': 'connections', '--keys': 'keys', '--seconds': 'seconds',
    '--writers': 'writers', '--value-bytes': 'valueBytes', '--idle-watchers': 'idleWatchers', '--idle-settle': 'idleSettle', '--window': 'window', '--writer-thread': 'writerThread',
  };
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '--only') { a.only = argv[i + 1] as ServerKind; continue; }
    if (argv[i] === '--prof') { a.prof = true; i--; continue; }
    const k = flags[argv[i]];
    if (!k || !(Number(argv[i + 1]) >= 0)) throw new Error(`bad argument ${argv[i]} ${argv[i + 1] ?? ''} (flags: ${Object.keys(flags).join(' ')} --only KIND)`);
    (a as unknown as Record<string, number>)[k] = Number(argv[i + 1]);
  }
  return a;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- process stats ----

/** utime+stime of a process in seconds. */
function procCpuSec(pid: number): number {
  return (procCpuUs(pid) ?? NaN) / 1e6;
}
function selfCpuSec(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

// ---- fan-out run ----

interface FanoutResult {
  kind: ServerKind; writes: number; writeSec: number; writesPerSec: number;
  events: number; expected: number; deliverSec: number; eventsPerSec: number;
  p50Ms: number; p99Ms: number; samples: number;
  genCores: number; serverCores: number; complete: boolean;
  /** The server's busiest threads over the run, in cores (Linux thread names: node is the main thread). */
  serverThreads: string;
}

async function fanout(s: Server, a: Args): Promise<FanoutResult> {
  const sampleEvery = 10;
  const prefix = Buffer.from('/wbench/');
  const prefixEnd = Buffer.from('/wbench0');
  let created = 0;
  let canceled = 0;
  let events = 0;
  let lastEventAt = 0;
  // Sampled (revision, arrival) pairs; sized generously, grown if needed.
  let sRev = new Float64Array(1 << 20);
  let sAt = new Float64Array(1 << 20);
  let nSamples = 0;
  const record = (rev: number): void => {
    if (nSamples === sRev.length) {
      const r = new Float64Array(sRev.length * 2); r.set(sRev); sRev = r;
      const t = new Float64Array(sAt.length * 2); t.set(sAt); sAt = t;
    }
    sRev[nSamples] = rev; sAt[nSamples] = performance.now(); nSamples++;
  };

  const streams: WatchStream[] = [];
  // Sampling: on each stream, every sampleEvery-th "created" response marks its watch_id (field 2) as
  // sampled; event responses of sampled watch_ids are scanned again for their mod revisions.
  const sc = new Scanner();
  const out = newScanResult();
  const onError = (m: string): void => console.error(`watch stream error: ${m}`);
  for (let c = 0; c < a.connections; c++) {
    const sampled = new Set<number>();
    let createdHere = 0;
    const ws = new WatchStream(s.endpoint, (buf, start, end) => {
      scanResponse(sc, buf, start, end, out, null);
      if (out.created) {
        if (createdHere++ % sampleEvery === 0) sampled.add(out.watchId);
        created++;
        return;
      }
      if (out.canceled) { canceled++; return; }
      if (out.events === 0) return;
      events += out.events;
      lastEventAt = performance.now();
      if (sampled.has(out.watchId)) scanResponse(sc, buf, start, end, out, record);
    }, { window: a.window, onError });
    streams.push(ws);
  }
  const per = Math.floor(a.watchers / a.connections);
  for (let c = 0; c < a.connections; c++) {
    const n = c < a.watchers % a.connections ? per + 1 : per;
    for (let i = 0; i < n; i++) streams[c].create(prefix, prefixEnd);
  }
  const createDeadline = Date.now() + 60_000;
  while (created < a.watchers) {
    if (Date.now() > createDeadline) throw new Error(`${s.kind}: only ${created}/${a.watchers} watchers created`);
    await sleep(20);
  }

  // Writers: each loops Put(key i), i round-robin over K keys, one request outstanding per writer; on a
  // thread of their own unless --writer-thread 0 (lib/watch_writer.ts says why).
  const sentAt = new Map<number, number>(); // revision -> time the Put was written (this thread's clock)
  const gen0 = selfCpuSec();
  const srv0 = procCpuSec(s.pid);
  const thr0 = threadCpuUs(s.pid);
  const thrAt0 = performance.now();
  const job: WriterJob = { clientUrl: s.clientUrl, prefix: prefix.toString(), keys: a.keys, valueBytes: a.valueBytes, writers: a.writers, seconds: a.seconds };
  let r: WriterResult;
  let origin = 0; // what to subtract from the writers' times to get this thread's performance.now()
  if (a.writerThread) {
    const w = new Worker(path.join(__dirname, 'lib', 'watch_writer.js'), { workerData: job });
    r = await new Promise<WriterResult>((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
    await w.terminate();
    origin = performance.timeOrigin;
  } else {
    r = await runWriters(job, () => performance.now());
  }
  if (r.error) throw new Error(`${s.kind}: writer: ${r.error}`);
  for (let i = 0; i < r.writes; i++) sentAt.set(r.revs[i], r.sentAt[i] - origin);
  const writes = r.writes;
  const t0 = r.t0 - origin;
  const tw = r.tw - origin;
  const expected = writes * a.watchers;
  const drainDeadline = tw + 30_000;
  while (events < expected && performance.now() < drainDeadline) await sleep(10);
  const genCpu = selfCpuSec() - gen0;
  const srvCpu = procCpuSec(s.pid) - srv0;
  const thr1 = threadCpuUs(s.pid);
  const serverThreads = threadCoresText(thr0, thr1, (performance.now() - thrAt0) / 1000);
  const tEnd = events >= expected ? lastEventAt : performance.now();
  if (canceled) console.error(`${s.kind}: ${canceled} watchers canceled`);

  const lat: number[] = [];
  for (let i = 0; i < nSamples; i++) {
    const at = sentAt.get(sRev[i]);
    if (at !== undefined) lat.push(sAt[i] - at);
  }
  const sorted = Float64Array.from(lat).sort();
  for (const w of streams) w.close();
  const deliverSec = (tEnd - t0) / 1000;
  return {
    kind: s.kind, writes, writeSec: (tw - t0) / 1000, writesPerSec: writes / ((tw - t0) / 1000),
    events, expected, deliverSec, eventsPerSec: events / deliverSec,
    p50Ms: quantile(sorted, 0.5), p99Ms: quantile(sorted, 0.99), samples: sorted.length,
    genCores: genCpu / deliverSec, serverCores: srvCpu / deliverSec, complete: events >= expected, serverThreads,
  };
}

// ---- idle memory run ----

interface IdleResult {
  kind: ServerKind; watchers: number; rssBeforeKiB: number; rssAfterKiB: number; bytesPerWatcher: number;
  /** RSS idleSettle seconds after the last watcher was created, when garbage of the burst is collected. */
  rssSettledKiB: number; settledBytesPerWatcher: number;
}

async function idle(s: Server, a: Args): Promise<IdleResult> {
  let created = 0;
  const conns = a.connections;
  const sc = new Scanner();
  const out = newScanResult();
  const onError = (m: string): void => console.error(`watch stream error: ${m}`);
  const streams = Array.from({ length: conns }, () => new WatchStream(s.endpoint, (buf, start, end) => {
    scanResponse(sc, buf, start, end, out, null);
    if (out.created) created++;
  }, { onError }));
  // One warm-up watcher per stream so that the connections and streams are in the "before" figure.
  for (const w of streams) w.create(Buffer.from('/idle-warm'));
  while (created < conns) await sleep(20);
  // Settled as the last reading is: V8 gives back memory some seconds after a burst (the start-up's too).
  await sleep(Math.max(1000, a.idleSettle * 1000));
  const before = rssKiB(s.pid);
  created = 0;
  for (let i = 0; i < a.idleWatchers; i++) streams[i % conns].create(Buffer.from(`/idle/${String(i).padStart(6, '0')}`));
  const deadline = Date.now() + 60_000;
  while (created < a.idleWatchers) {
    if (Date.now() > deadline) throw new Error(`${s.kind}: only ${created}/${a.idleWatchers} idle watchers created`);
    await sleep(20);
  }
  await sleep(1500);
  const after = rssKiB(s.pid);
  await sleep(Math.max(0, a.idleSettle * 1000 - 1500));
  const settled = rssKiB(s.pid);
  for (const w of streams) w.close();
  const per = (kib: number): number => Math.round(((kib - before) * 1024) / a.idleWatchers);
  return {
    kind: s.kind, watchers: a.idleWatchers, rssBeforeKiB: before, rssAfterKiB: after, bytesPerWatcher: per(after),
    rssSettledKiB: settled, settledBytesPerWatcher: per(settled),
  };
}

async function withServer<T>(kind: ServerKind, f: (s: Server) => Promise<T>, profDir?: string): Promise<T> {
  const s = await startKind(kind, { logLevel: 'error', ...(profDir ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`] } : {}) });
  try {
    return await f(s);
  } finally {
    await s.stop(profDir ? 'SIGINT' : undefined); // a clean exit makes V8 write every thread's profile
    removeDataDir(s);
  }
}

/** Renders each thread's profile as flamegraphs/<commit>-watch-<thread>.html and prints its top self time. */
function writeWatchFlamegraphs(dir: string, command: string): void {
  let n = 0;
  const written = writeFlamegraphs(dir, command, (commit, p) => {
    const urls = p.nodes.map((x) => x.callFrame.url);
    const thread = urls.some((u) => u.includes('main/cli.js')) ? 'main' : urls.some((u) => u.includes('workers/watch')) ? 'watch'
      : urls.some((u) => u.includes('workers/apply.js')) ? 'apply' : `thread${++n}`;
    return `${commit}-watch-${thread}.html`;
  });
  for (const w of written) console.error(`${w.file}; top self time:\n${topSelf(w.profile, 12)}`);
}


async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const kinds: ServerKind[] = a.only ? [a.only] : ['etcd', 'etcd-ts'];
  const m = machineInfo(process.env.ETCD_TS_ETCD_BIN ?? '/usr/bin/etcd');
  const fan: FanoutResult[] = [];
  const idl: IdleResult[] = [];
  const cmd = `node dist/bench/watch.js ${process.argv.slice(2).join(' ')}`.trim();
  for (const kind of kinds) {
    const profDir = a.prof && kind === 'etcd-ts' ? fs.mkdtempSync(path.join(os.tmpdir(), 'etcd-ts-prof-')) : undefined;
    const r = await withServer(kind, (s) => fanout(s, a), profDir);
    console.error(JSON.stringify(r));
    fan.push(r);
    if (profDir) writeWatchFlamegraphs(profDir, cmd);
  }
  if (a.idleWatchers > 0) {
    for (const kind of kinds) {
      const r = await withServer(kind, (s) => idle(s, a));
      console.error(JSON.stringify(r));
      idl.push(r);
    }
  }

  const out: string[] = [];
  out.push(`Command: \`${cmd}\` (watchers ${a.watchers}, connections ${a.connections}, keys ${a.keys}, seconds ${a.seconds}, writers ${a.writers} (${a.writerThread ? 'on their own thread' : 'on the watchers\' event loop'}), value ${a.valueBytes} B, window ${a.window} B)`);
  out.push(`Machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.kernel}, Node ${m.node}, etcd ${m.etcd}, commit ${m.commit}, data dirs on ${m.tmpFs}; ${new Date().toISOString().slice(0, 10)}`);
  out.push('');
  const byKind = (k: ServerKind): FanoutResult | undefined => fan.find((r) => r.kind === k);
  const e = byKind('etcd');
  const t = byKind('etcd-ts');
  const cols = fan.map((r) => r.kind);
  const both = e && t;
  out.push(`| metric | ${cols.join(' | ')}${both ? ' | etcd-ts/etcd' : ''} |`);
  out.push(`|---|${cols.map(() => '---:').join('|')}|${both ? '---:|' : ''}`);
  const row = (name: string, get: (r: FanoutResult) => number, d: number): void => {
    out.push(`| ${name} | ${fan.map((r) => fmtNum(get(r), d)).join(' | ')}${both ? ` | ${ratioText(get(t!), get(e!))}` : ''} |`);
  };
  row('events delivered/s (all watchers)', (r) => r.eventsPerSec, 0);
  row('writes/s (Put acks)', (r) => r.writesPerSec, 0);
  row('event latency p50 (ms, Put sent → event)', (r) => r.p50Ms, 1);
  row('event latency p99 (ms)', (r) => r.p99Ms, 1);
  row('events delivered / expected (%)', (r) => (100 * r.events) / r.expected, 1);
  row('generator CPU (cores)', (r) => r.genCores, 2);
  row('server CPU (cores)', (r) => r.serverCores, 2);
  const byIdle = (k: ServerKind): IdleResult | undefined => idl.find((r) => r.kind === k);
  const ie = byIdle('etcd');
  const it = byIdle('etcd-ts');
  if (idl.length) {
    const ib = ie && it;
    out.push(`| RSS per idle watcher (bytes, ${fmtNum(a.idleWatchers)} single-key) | ${idl.map((r) => fmtNum(r.bytesPerWatcher)).join(' | ')}${ib ? ` | ${ratioText(it!.bytesPerWatcher, ie!.bytesPerWatcher)}` : ''} |`);
    out.push(`| RSS per idle watcher, ${fmtNum(a.idleSettle)} s after the last create (bytes) | ${idl.map((r) => fmtNum(r.settledBytesPerWatcher)).join(' | ')}${ib ? ` | ${ratioText(it!.settledBytesPerWatcher, ie!.settledBytesPerWatcher)}` : ''} |`);
    out.push(`| server RSS before → 1.5 s → ${fmtNum(a.idleSettle)} s after idle watchers (MiB) | ${idl.map((r) => `${fmtNum(r.rssBeforeKiB / 1024, 1)} → ${fmtNum(r.rssAfterKiB / 1024, 1)} → ${fmtNum(r.rssSettledKiB / 1024, 1)}`).join(' | ')}${ib ? ' | |' : ' |'}`);
  }
  out.push('');
  for (const r of fan) {
    const notes: string[] = [];
    if (!r.complete) notes.push(`only ${r.events} of ${r.expected} events arrived within 30 s of the last write`);
    if (r.genCores > 0.85) notes.push(`the generator used ${r.genCores.toFixed(2)} cores: it is (near) the limit, so this is a lower bound for the server`);
    if (notes.length) out.push(`Note (${r.kind}): ${notes.join('; ')}.`);
  }
  console.log(out.join('\n'));
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
