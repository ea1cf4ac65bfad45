// Starts the servers that `etcd-ts-bench compare` measures: Debian's etcd, etcd-ts, or any command,
// one at a time, each on a fresh data dir under os.tmpdir() and free 127.0.0.1 ports. A command is a
// template with placeholders {dataDir}, {clientUrl}, {peerUrl}, {endpoint}; readiness is a real gRPC
// request (Maintenance/Status) that succeeds. The process's stderr tail is kept for error messages.
import { spawn, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from '../../test/support/procs';
import { serverVersion } from './results';

export interface ServerSpec { label: string; command: string[] } // command: argv template

export interface RunningServer {
  label: string;
  endpoint: string;
  pid: number;
  version: string;
  commandLine: string;
  /** null while running; else how it exited (e.g. "exited with code 134 signal null"). */
  exitInfo(): string | null;
  /** The last lines of its stderr. */
  stderrTail(lines: number): string;
  stop(): Promise<void>;
}

const repoRoot = path.resolve(__dirname, '..', '..', '..'); // dist/bench/lib -> repo root
const etcdFlags = [
  '--name', 'default', '--data-dir', '{dataDir}',
  '--listen-client-urls', '{clientUrl}', '--advertise-client-urls', '{clientUrl}',
  '--listen-peer-urls', '{peerUrl}', '--initial-advertise-peer-urls', '{peerUrl}',
  '--initial-cluster', 'default={peerUrl}', '--log-level', 'error',
];

/** `etcd`, `etcd-ts`, or `cmd:<shell-free command template>` (split on spaces). */
export function serverSpec(name: string, etcdBin: string): ServerSpec {
  if (name === 'etcd') return { label: 'etcd', command: [etcdBin, '--logger', 'zap', ...etcdFlags] };
  if (name === 'etcd-ts') return { label: 'etcd-ts', command: [process.execPath, path.join(repoRoot, 'dist', 'src', 'main', 'cli.js'), ...etcdFlags] };
  if (name.startsWith('cmd:')) {
    const argv = name.slice(4).trim().split(/\s+/);
    return { label: path.basename(argv[0]), command: argv };
  }
  throw new Error(`server ${JSON.stringify(name)}: use etcd, etcd-ts or cmd:<command with {dataDir} {clientUrl} {peerUrl}>`);
}

const readyTimeoutMs = 30_000;
const stopTimeoutMs = 10_000;

export async function startServer(spec: ServerSpec): Promise<RunningServer> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcd-ts-bench-'));
  const clientPort = await freePort();
  let peerPort = await freePort();
  while (peerPort === clientPort) peerPort = await freePort();
  const vars: Record<string, string> = {
    dataDir, clientUrl: `http://127.0.0.1:${clientPort}`, peerUrl: `http://127.0.0.1:${peerPort}`, endpoint: `127.0.0.1:${clientPort}`,
  };
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
  const cleanup = (): void => { fs.rmSync(dataDir, { recursive: true, force: true }); };
  const stop = async (): Promise<void> => {
    if (exited === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs);
      await exit;
      clearTimeout(t);
    }
    cleanup();
  };
  process.once('exit', () => { if (exited === null) child.kill('SIGKILL'); });
  const deadline = Date.now() + readyTimeoutMs;
  let last = '';
  for (;;) {
    if (exited !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`${spec.label}: ${exited ?? `not ready after ${readyTimeoutMs} ms (${last})`}\ncommand: ${argv.join(' ')}\n${stderr.trim().split('\n').slice(-20).join('\n')}`);
    }
    try {
      const version = await serverVersion(vars.endpoint, 1000);
      return {
        label: spec.label, endpoint: vars.endpoint, pid: child.pid ?? 0, version, commandLine: argv.join(' '), stop,
        exitInfo: () => exited,
        stderrTail: (n) => stderr.trim().split('\n').slice(-n).join('\n'),
      };
    } catch (e) {
      last = e instanceof Error ? e.message : String(e);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
