// Starts single-member servers as child processes for integration tests and benchmarks: real etcd
// (`/usr/bin/etcd`, or $ETCD_TS_ETCD_BIN) and etcd-ts (`node dist/src/main/cli.js`), both with etcd's flags,
// on free 127.0.0.1 ports and a fresh data dir. Readiness is a real request (`etcdctl endpoint
// health`, which commits a quorum read through gRPC), polled until it succeeds; a process that exits
// or is not ready in time fails with its stderr tail. Every started server is tracked so that
// `stopAllServers()` (hooked by `cleanupServersAfter()` and on process exit) never leaks processes.
import { spawn, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { etcdctl } from './etcdctl';

export type ServerKind = 'etcd' | 'etcd-ts';

export interface StartOptions {
  name?: string;            // member name, etcd's default "default"
  dataDir?: string;         // created if missing; default: a fresh dir under os.tmpdir()
  token?: string;           // --initial-cluster-token, etcd's default "etcd-cluster"
  logLevel?: string;        // --log-level; "warn" keeps stderr small
  readyTimeoutMs?: number;  // default 20 s
  extraArgs?: string[];
  /** etcd-ts only: node options before the script (e.g. --cpu-prof, not allowed in NODE_OPTIONS). */
  nodeArgs?: string[];
  env?: NodeJS.ProcessEnv;
  clientPort?: number;      // default: a free port
  /** 'http' (default): poll GET /health, then one etcdctl check. 'etcdctl': poll only with etcdctl
   * endpoint health (a linearizable read: unlike etcd 3.4's /health, it adds no Raft entry, so
   * raft indexes stay comparable between servers). 'http-only': GET /health alone (a learner refuses
   * etcdctl's check, a KV read, as etcd's learners do). */
  readyProbe?: 'http' | 'etcdctl' | 'http-only';
  peerPort?: number;        // default: a free port
  /** --initial-cluster (default: this member alone, name=peerUrl). */
  initialCluster?: string;
  /** Group id of the process (uid unchanged: root stays root, so the data dir stays writable). A gid of
   * its own lets iptables' owner match tell this member's sockets apart (test/support/partition.ts). */
  gid?: number;
  /** Serve clients over TLS (https:// client URL; add the certificate flags to extraArgs): readiness
   * probes and `ctlArgs` use these files. */
  clientTls?: ClientTlsFiles;
  /** https:// peer URLs (add --peer-* flags to extraArgs). */
  peerScheme?: 'http' | 'https';
}

/** What a client presents to a TLS server: the CA to verify it (or insecure), and its own certificate. */
export interface ClientTlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
  /** Skip verifying the server (auto TLS): etcdctl --insecure-skip-tls-verify. */
  insecure?: boolean;
}

/** etcdctl's flags for these files. */
export function ctlTlsArgs(t: ClientTlsFiles | undefined): string[] {
  if (t === undefined) return [];
  return [
    ...(t.ca ? [`--cacert=${t.ca}`] : []), ...(t.cert ? [`--cert=${t.cert}`] : []), ...(t.key ? [`--key=${t.key}`] : []),
    ...(t.insecure ? ['--insecure-skip-tls-verify', '--insecure-transport=false'] : []),
  ];
}

export interface Server {
  readonly kind: ServerKind;
  readonly endpoint: string;     // "127.0.0.1:PORT", the form etcdctl --endpoints and grpc take
  readonly clientUrl: string;    // "http://127.0.0.1:PORT"
  readonly peerUrl: string;
  readonly dataDir: string;
  readonly pid: number;
  /** etcdctl flags this server's clients need (TLS files), empty for cleartext. */
  readonly ctlArgs: string[];
  /** Sends `signal`, waits for exit (SIGKILL after 10 s) and returns the exit code (null if killed by a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  kill9(): Promise<void>;
  /** Resolves with the exit code (null if killed by a signal) once the current process exits on its own. */
  exited(): Promise<number | null>;
  /** Stops (SIGTERM) if running, then starts again on the same ports and data dir and waits until ready. */
  restart(): Promise<void>;
  /** The last stderr bytes of the current process (bounded). */
  stderr(): string;
  /** Milliseconds from the last (re)start's spawn until /health first answered healthy. */
  readonly readyMs: number;
}

const stderrBytesMax = 64 * 1024;
const stopTimeoutMs = 10_000;
const pollIntervalMs = 150;
const repoRoot = path.resolve(__dirname, '..', '..', '..'); // dist/test/support -> repo root

export const etcdBin = process.env.ETCD_TS_ETCD_BIN ?? '/usr/bin/etcd';
export const etcdTsCli = path.join(repoRoot, 'dist', 'src', 'main', 'cli.js');

const live = new Set<ServerImpl>();

/** GET /health: true when it answers 200 with {"health":"true"}; false on any error. */
function httpHealthy(clientUrl: string, t?: ClientTlsFiles): Promise<boolean> {
  return new Promise((resolve) => {
    const get = clientUrl.startsWith('https:') ? https.get : http.get;
    const tlsOpts = t === undefined ? {} : {
      ca: t.ca ? fs.readFileSync(t.ca) : undefined, cert: t.cert ? fs.readFileSync(t.cert) : undefined,
      key: t.key ? fs.readFileSync(t.key) : undefined, rejectUnauthorized: !t.insecure,
    };
    const req = get(`${clientUrl}/health`, { timeout: 1000, ...tlsOpts }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve(res.statusCode === 200 && body.includes('"true"')));
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => { req.destroy(); resolve(false); });
  });
}

/** A port that was free a moment ago: listen on port 0, read the port, close. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address() as net.AddressInfo;
      srv.close(() => resolve(addr.port));
    });
  });
}

// etcd reads every ETCD_* environment variable as a flag (and warns about unknown ones), so the
// test harness's own ETCD_TS_* settings must not reach it.
function childEnv(kind: ServerKind): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (kind === 'etcd' && k.startsWith('ETCD_')) continue;
    env[k] = v;
  }
  return env;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

class ServerImpl implements Server {
  readonly endpoint: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly ctlArgs: string[];
  pid = 0;
  #child: ChildProcess | null = null;
  #exited: Promise<number | null> = Promise.resolve(null);
  #exitInfo: string | null = null;
  #stderr = '';

  constructor(readonly kind: ServerKind, readonly dataDir: string, readonly clientPort: number,
    readonly peerPort: number, readonly opts: StartOptions) {
    const scheme = opts.clientTls ? 'https' : 'http';
    this.endpoint = opts.clientTls ? `https://127.0.0.1:${clientPort}` : `127.0.0.1:${clientPort}`;
    this.clientUrl = `${scheme}://127.0.0.1:${clientPort}`;
    this.peerUrl = `${opts.peerScheme ?? 'http'}://127.0.0.1:${peerPort}`;
    this.ctlArgs = ctlTlsArgs(opts.clientTls);
  }

  #command(): { cmd: string; args: string[] } {
    const name = this.opts.name ?? 'default';
    const flags = [
      '--name', name,
      '--data-dir', this.dataDir,
      '--listen-client-urls', this.clientUrl,
      '--advertise-client-urls', this.clientUrl,
      '--listen-peer-urls', this.peerUrl,
      '--initial-advertise-peer-urls', this.peerUrl,
      '--initial-cluster', this.opts.initialCluster ?? `${name}=${this.peerUrl}`,
      '--initial-cluster-token', this.opts.token ?? 'etcd-cluster',
      '--log-level', this.opts.logLevel ?? 'warn',
      ...(this.opts.extraArgs ?? []),
    ];
    if (this.kind === 'etcd') return { cmd: etcdBin, args: ['--logger', 'zap', ...flags] };
    return { cmd: process.execPath, args: [...(this.opts.nodeArgs ?? []), etcdTsCli, ...flags] };
  }

  async start(): Promise<void> {
    const { cmd, args } = this.#command();
    if (this.kind === 'etcd-ts' && !fs.existsSync(etcdTsCli)) {
      throw new Error(`etcd-ts is not built: ${etcdTsCli} does not exist (run npx tsc -p .)`);
    }
    this.#stderr = '';
    this.#exitInfo = null;
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...childEnv(this.kind), ...(this.opts.env ?? {}) },
      ...(this.opts.gid !== undefined ? { gid: this.opts.gid } : {}),
    });
    this.#child = child;
    this.pid = child.pid ?? 0;
    live.add(this);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (s: string) => {
      this.#stderr += s;
      if (this.#stderr.length > stderrBytesMax) this.#stderr = this.#stderr.slice(-stderrBytesMax);
    });
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exitInfo = `exited with code ${code} signal ${signal}`;
        this.#child = null;
        live.delete(this);
        resolve(code);
      });
      child.once('error', (err) => {
        this.#exitInfo = `failed to spawn: ${err.message}`;
        this.#child = null;
        live.delete(this);
        resolve(null);
      });
    });
    await this.#waitReady(this.opts.readyTimeoutMs ?? 20_000, `${cmd} ${args.join(' ')}`);
  }

  async #waitReady(timeoutMs: number, commandLine: string): Promise<void> {
    const started = Date.now();
    const deadline = started + timeoutMs;
    let last = '';
    // Cheap first: GET /health every few ms (both servers answer {"health":"true"} once they have
    // a leader and serve); then one real gRPC request through etcdctl confirms.
    const probe = this.opts.readyProbe ?? 'http';
    const probeHttp = probe === 'http' || probe === 'http-only';
    while (probeHttp && Date.now() < deadline && this.#exitInfo === null && !(await httpHealthy(this.clientUrl, this.opts.clientTls))) await sleep(5);
    this.readyMs = Date.now() - started;
    // A learner answers /health but refuses etcdctl's health check (a KV read), as etcd's learners do.
    if (probe === 'http-only' && this.#exitInfo === null && Date.now() < deadline) return;
    while (Date.now() < deadline) {
      if (this.#exitInfo !== null) break;
      const r = await etcdctl(this.endpoint, [...this.ctlArgs, 'endpoint', 'health', '--dial-timeout=1s', '--command-timeout=2s']);
      // etcdctl 3.4 prints the health line on stderr.
      if (r.code === 0 && (r.stdout + r.stderr).includes('is healthy')) return;
      last = (r.stdout + r.stderr).trim().split('\n').slice(-2).join('\n');
      await sleep(pollIntervalMs);
    }
    const why = this.#exitInfo ?? `not ready after ${timeoutMs} ms (last health check: ${last})`;
    await this.kill9();
    throw new Error(`${this.kind} ${why}\ncommand: ${commandLine}\n--- stderr tail ---\n${this.stderrTail(40)}`);
  }

  stderr(): string {
    return this.#stderr;
  }

  /** Milliseconds from the last (re)start's spawn until /health first answered healthy. */
  readyMs = -1;

  stderrTail(lines: number): string {
    return this.#stderr.trimEnd().split('\n').slice(-lines).join('\n');
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const child = this.#child;
    if (!child) return this.#exited;
    child.kill(signal);
    const timer = setTimeout(() => { if (this.#child === child) child.kill('SIGKILL'); }, stopTimeoutMs);
    try {
      return await this.#exited;
    } finally {
      clearTimeout(timer);
    }
  }

  exited(): Promise<number | null> {
    return this.#exited;
  }

  async kill9(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    child.kill('SIGKILL');
    await this.#exited;
  }

  async restart(): Promise<void> {
    await this.stop('SIGTERM');
    await this.start();
  }

  killSync(): void {
    try { this.#child?.kill('SIGKILL'); } catch { /* already gone */ }
  }
}

async function startServer(kind: ServerKind, opts: StartOptions = {}): Promise<Server> {
  const dataDir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), `${kind}-test-`));
  fs.mkdirSync(dataDir, { recursive: true });
  const clientPort = opts.clientPort ?? await freePort();
  let peerPort = opts.peerPort ?? await freePort();
  while (peerPort === clientPort) peerPort = await freePort();
  const s = new ServerImpl(kind, dataDir, clientPort, peerPort, opts);
  try {
    await s.start();
  } catch (e) {
    if (opts.dataDir === undefined) removeDataDir(s); // ours, and the caller never gets to clean it
    throw e;
  }
  return s;
}

/** Real etcd (Debian 3.4.23), one member. */
export function startEtcd(opts?: StartOptions): Promise<Server> {
  return startServer('etcd', opts);
}

/** etcd-ts (`node dist/src/main/cli.js`), one member. */
export function startEtcdTs(opts?: StartOptions): Promise<Server> {
  return startServer('etcd-ts', opts);
}

export function startKind(kind: ServerKind, opts?: StartOptions): Promise<Server> {
  return startServer(kind, opts);
}

/**
 * Starts a cluster of `size` etcd-ts members (m1, m2, ...) on free 127.0.0.1 ports, as etcd's are
 * started: the same --initial-cluster and token on every member, all at once. `opts` go to every member,
 * `perMember(i)` to member i (0-based) on top of them.
 */
export async function startEtcdTsCluster(
  size: number, token: string, opts: StartOptions = {}, perMember: (i: number) => StartOptions = () => ({}),
): Promise<Server[]> {
  const ports = await Promise.all(Array.from({ length: 2 * size }, () => freePort()));
  const names = Array.from({ length: size }, (_, i) => `m${i + 1}`);
  const initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${ports[size + i]}`).join(',');
  return Promise.all(
    names.map((name, i) =>
      startEtcdTs({ readyTimeoutMs: 60_000, ...opts, ...perMember(i), name, clientPort: ports[i], peerPort: ports[size + i], initialCluster, token }),
    ),
  );
}

/** The server kind a test should target: `ETCD_TS_TARGET=etcd` validates a test against real etcd. */
export function targetKind(envName = 'ETCD_TS_TARGET'): ServerKind {
  const v = process.env[envName] ?? process.env.ETCD_TS_TARGET ?? 'etcd-ts';
  if (v !== 'etcd' && v !== 'etcd-ts') throw new Error(`${envName} must be "etcd" or "etcd-ts", got "${v}"`);
  return v;
}

/** Stops every server still running (SIGTERM, then SIGKILL after 10 s). */
export async function stopAllServers(): Promise<void> {
  await Promise.all([...live].map((s) => s.stop('SIGTERM')));
}

/** Removes a data dir created under os.tmpdir(); refuses anything else. */
export function removeDataDir(s: Server): void {
  if (s.dataDir.startsWith(os.tmpdir() + path.sep)) fs.rmSync(s.dataDir, { recursive: true, force: true });
}

/** Registers a mocha `after` hook that stops the given servers (or all live ones) and removes their data dirs. */
export function cleanupServersAfter(servers?: () => Array<Server | undefined>): void {
  after(async function () {
    this.timeout(30_000);
    const list = servers ? servers().filter((s): s is Server => s !== undefined) : [...live];
    await Promise.all(list.map((s) => s.stop('SIGTERM')));
    for (const s of list) removeDataDir(s);
  });
}

// Last line of defence: never leave a server behind when the test process exits.
process.on('exit', () => { for (const s of live) s.killSync(); });
