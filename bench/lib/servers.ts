// Starts the servers that `etcd-ts-bench compare` measures: Debian's etcd, etcd-ts, or any command,
// one kind at a time, as a single member or a cluster of `members` processes, each member on a fresh
// data dir under os.tmpdir() and free 127.0.0.1 ports. A command is a template with placeholders
// {name}, {dataDir}, {clientUrl}, {peerUrl}, {endpoint}, {initialCluster}, {clusterToken} and
// {httpUrl} / {httpEndpoint} (a fast HTTP/JSON + WebSocket port, allocated only when the template
// uses it); readiness is a real gRPC request (Maintenance/Status) answered with a known leader, on
// every member. Each process's stderr tail is kept for error messages.
import { spawn, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from '../../test/support/procs';
import { serverStatus } from './results';

/** command: argv template; kind: what it is (etcd-ts gets the fast port when asked for one). */
export interface ServerSpec { label: string; kind: 'etcd' | 'etcd-ts' | 'cmd'; command: string[] }

/** One server process: a single-member server or one member of a cluster. */
export interface RunningMember {
  name: string;
  endpoint: string;             // gRPC, HOST:PORT
  httpEndpoint: string | null;  // the --listen-client-http-urls port when the command has {httpUrl}
  pid: number;
  commandLine: string;
  /** null while running; else how it exited (e.g. "exited with code 134 signal null"). */
  exitInfo(): string | null;
  /** The last lines of its stderr. */
  stderrTail(lines: number): string;
  /** SIGTERM (SIGKILL after 10 s), then removes the data dir. */
  stop(): Promise<void>;
  /** SIGKILL, keeping the data dir (stop() removes it later). */
  kill9(): Promise<void>;
}

/** The server `compare` measures: one member, or a cluster of them started together. */
export interface RunningServer {
  label: string;
  members: RunningMember[];
  endpoint: string;             // the first member's
  endpoints: string[];          // every member's gRPC endpoint
  httpEndpoints: string[] | null; // every member's fast port, when the command template has one
  pid: number;                  // the first member's
  pids: number[];
  version: string;
  commandLine: string;          // the first member's (the others differ in name, ports and data dir)
  /** null while every member runs; else which one exited and how. */
  exitInfo(): string | null;
  /** The last lines of the stderr of the member that exited (else of the first). */
  stderrTail(lines: number): string;
  stop(): Promise<void>;
}

const repoRoot = path.resolve(__dirname, '..', '..', '..'); // dist/bench/lib -> repo root
const etcdFlags = [
  '--name', '{name}', '--data-dir', '{dataDir}',
  '--listen-client-urls', '{clientUrl}', '--advertise-client-urls', '{clientUrl}',
  '--listen-peer-urls', '{peerUrl}', '--initial-advertise-peer-urls', '{peerUrl}',
  '--initial-cluster', '{initialCluster}', '--initial-cluster-token', '{clusterToken}', '--log-level', 'error',
];

/**
 * `etcd`, `etcd-ts`, or `cmd:<shell-free command template>` (split on spaces). With fastHttp,
 * etcd-ts also listens on its uWebSockets.js port (--listen-client-http-urls {httpUrl}). With
 * etcdTsRoot, etcd-ts is the build in that checkout (its dist/src/main/cli.js), still labelled etcd-ts:
 * another commit, measured by this tool.
 */
export function serverSpec(name: string, etcdBin: string, opts: { fastHttp?: boolean; etcdTsRoot?: string } = {}): ServerSpec {
  if (name === 'etcd') return { label: 'etcd', kind: 'etcd', command: [etcdBin, '--logger', 'zap', ...etcdFlags] };
  if (name === 'etcd-ts') {
    const fast = opts.fastHttp ? ['--listen-client-http-urls', '{httpUrl}'] : [];
    const cli = path.join(path.resolve(opts.etcdTsRoot ?? repoRoot), 'dist', 'src', 'main', 'cli.js');
    if (!fs.existsSync(cli)) throw new Error(`etcd-ts: ${cli} not found (build that checkout with npm run build)`);
    return { label: 'etcd-ts', kind: 'etcd-ts', command: [process.execPath, cli, ...etcdFlags, ...fast] };
  }
  if (name.startsWith('cmd:')) {
    const argv = name.slice(4).trim().split(/\s+/);
    return { label: path.basename(argv[0]), kind: 'cmd', command: argv };
  }
  throw new Error(`server ${JSON.stringify(name)}: use etcd, etcd-ts or cmd:<command with {dataDir} {clientUrl} {peerUrl}>`);
}

/** Does the command template listen on a fast HTTP port ({httpUrl} or {httpEndpoint})? */
export function hasHttpPort(spec: ServerSpec): boolean {
  return spec.command.some((a) => a.includes('{httpUrl}') || a.includes('{httpEndpoint}'));
}

const readyTimeoutMs = 30_000;
const stopTimeoutMs = 10_000;

/** n distinct free ports. */
async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/**
 * Starts `members` processes of the spec together (fresh data dirs, free ports, one
 * --initial-cluster naming them all) and waits until each answers Maintenance/Status and knows a
 * leader. One member is named `default`, as etcd's default; members of a cluster m1, m2, ...
 * With opts.basePort, the ports are basePort, basePort + 1, ... (members x 2, or x 3 with a fast port).
 */
export async function startServer(spec: ServerSpec, members = 1, opts: { basePort?: number } = {}): Promise<RunningServer> {
  const http = hasHttpPort(spec);
  const count = members * (http ? 3 : 2);
  // basePort: consecutive ports from it (a caller given a port range); else free ephemeral ports.
  const ports = opts.basePort !== undefined ? Array.from({ length: count }, (_, i) => opts.basePort! + i) : await freePorts(count);
  const names = members === 1 ? ['default'] : Array.from({ length: members }, (_, i) => `m${i + 1}`);
  const peerUrl = (i: number): string => `http://127.0.0.1:${ports[members + i]}`;
  const initialCluster = names.map((n, i) => `${n}=${peerUrl(i)}`).join(',');
  const clusterToken = `etcd-ts-bench-${process.pid}-${Date.now()}`;
  const launched = names.map((name, i) => launch(spec, {
    name, dataDir: fs.mkdtempSync(path.join(os.tmpdir(), 'etcd-ts-bench-')),
    clientUrl: `http://127.0.0.1:${ports[i]}`, peerUrl: peerUrl(i), endpoint: `127.0.0.1:${ports[i]}`,
    httpUrl: http ? `http://127.0.0.1:${ports[2 * members + i]}` : '', httpEndpoint: http ? `127.0.0.1:${ports[2 * members + i]}` : '',
    initialCluster, clusterToken,
  }));
  const diedOf = (): RunningMember | undefined => launched.find((m) => m.exitInfo() !== null);
  const stopAll = async (): Promise<void> => { await Promise.all(launched.map((m) => m.stop())); };
  let version: string;
  try {
    const timeoutMs = readyTimeoutMs + (members - 1) * 10_000; // members start together on shared cores
    const versions = await Promise.all(launched.map((m) => waitReady(m, spec.label, () => diedOf() ?? null, timeoutMs)));
    version = versions[0];
  } catch (e) {
    await stopAll();
    throw e;
  }
  return {
    label: spec.label, members: launched, endpoint: launched[0].endpoint, endpoints: launched.map((m) => m.endpoint),
    httpEndpoints: http ? launched.map((m) => m.httpEndpoint!) : null, pid: launched[0].pid, pids: launched.map((m) => m.pid),
    version, commandLine: launched[0].commandLine,
    exitInfo: () => { const d = diedOf(); return d ? (members > 1 ? `member ${d.name} ${d.exitInfo()}` : d.exitInfo()) : null; },
    stderrTail: (n) => (diedOf() ?? launched[0]).stderrTail(n),
    stop: stopAll,
  };
}

// Children still running when this process exits are killed: one hook for all (not one per member).
const liveChildren = new Set<ChildProcess>();
process.once('exit', () => { for (const c of liveChildren) c.kill('SIGKILL'); });

/** Spawns one member from the template with these placeholder values. */
function launch(spec: ServerSpec, vars: Record<string, string>): RunningMember {
  const argv = spec.command.map((a) => a.replace(/\{(\w+)\}/g, (m, k: string) => vars[k] ?? m));
  // etcd reads every ETCD_* variable as a flag: do not pass ours on.
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCD_')) env[k] = v;
  const child: ChildProcess = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => { stderr = (stderr + s).slice(-16_384); });
  let exited: string | null = null;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, sig) => { exited = `exited with code ${code} signal ${sig}`; resolve(); });
    child.once('error', (e) => { exited = `failed to start: ${e.message}`; resolve(); });
  });
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  return {
    name: vars.name, endpoint: vars.endpoint, httpEndpoint: vars.httpEndpoint || null, pid: child.pid ?? 0, commandLine: argv.join(' '),
    exitInfo: () => exited,
    stderrTail: (n) => stderr.trim().split('\n').slice(-n).join('\n'),
    stop: async () => {
      if (exited === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs);
        await exit;
        clearTimeout(t);
      }
      fs.rmSync(vars.dataDir, { recursive: true, force: true });
    },
    kill9: async () => {
      if (exited === null) { child.kill('SIGKILL'); await exit; }
    },
  };
}

/** Polls Maintenance/Status until the member answers and knows a leader; returns its version. */
async function waitReady(m: RunningMember, label: string, died: () => RunningMember | null, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const d = died();
    if (d !== null || Date.now() > deadline) {
      const who = d ?? m;
      throw new Error(`${label}${who.name === 'default' ? '' : ` member ${who.name}`}: ${who.exitInfo() ?? `not ready after ${timeoutMs} ms (${last})`}\n` +
        `command: ${who.commandLine}\n${who.stderrTail(20)}`);
    }
    try {
      const st = await serverStatus(m.endpoint, 1000);
      if (st.leader !== '0') return st.version;
      last = 'no leader yet';
    } catch (e) {
      last = e instanceof Error ? e.message : String(e);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
