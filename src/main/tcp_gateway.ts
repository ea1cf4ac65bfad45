// `etcd-ts gateway start`: etcd 3.4's TCP gateway (etcdmain/gateway.go, proxy/tcpproxy). A plain TCP
// proxy: each accepted connection is joined to one endpoint, picked round-robin among the active ones;
// an endpoint that refuses a dial is made inactive (the next one is tried for the same connection)
// and dialled again every --retry-delay, active once a dial succeeds. Bytes are copied both ways
// unchanged (TLS, HTTP/2 and gRPC pass through); when either side ends, both are closed.
//
// Flags and defaults are etcd's: --listen-addr 127.0.0.1:23790, --endpoints 127.0.0.1:2379 (comma
// separated or repeated; a scheme is stripped), --retry-delay 1m. DNS SRV discovery (--discovery-srv)
// is refused with one line: etcd-ts has no discovery.
//
// Limits etcd leaves open: a dial gives up after limits.tcpGatewayDialTimeoutMs (Go's has no timeout but
// the kernel's), and past limits.tcpGatewayConnectionsMax open connections a new one is closed at once.
import * as dns from 'node:dns/promises';
import * as net from 'node:net';
import { Logger } from './log';
import { parseDurationMs } from './config';
import { limits } from '../shared/limits';

export interface GatewayArgs {
  listenAddr: string;
  endpoints: string[];
  retryDelayMs: number;
  discoverySrv: string;
}

const GATEWAY_HELP = `gateway related command

Usage:
  etcd-ts gateway [command]

Available Commands:
  start       start the gateway

Flags:
  -h, --help   help for gateway

Use "etcd-ts gateway [command] --help" for more information about a command.
`;

const START_USAGE = `Usage:
  etcd-ts gateway start [flags]

Flags:
      --discovery-srv string        DNS domain used to bootstrap initial cluster
      --discovery-srv-name string   service name to query when using DNS discovery
      --endpoints strings           comma separated etcd cluster endpoints (default [127.0.0.1:2379])
  -h, --help                        help for start
      --insecure-discovery          accept insecure SRV records
      --listen-addr string          listen address (default "127.0.0.1:23790")
      --retry-delay duration        duration of delay before retrying failed endpoints (default 1m0s)
      --trusted-ca-file string      path to the client server TLS CA file for verifying the discovered endpoints when discovery-srv is provided.
`;

/** A bad command line: the message is printed as cobra does ("Error: ..." then the usage), exit 1. */
export class GatewayUsageError extends Error {}

const STRING_FLAGS = new Set(['listen-addr', 'discovery-srv', 'discovery-srv-name', 'trusted-ca-file', 'endpoints', 'retry-delay']);

/** Parses `start`'s flags as pflag does: --name value, --name=value, -h; a bool takes no value. */
export function parseGatewayStart(argv: string[]): GatewayArgs | 'help' {
  const a: GatewayArgs = { listenAddr: '127.0.0.1:23790', endpoints: ['127.0.0.1:2379'], retryDelayMs: 60_000, discoverySrv: '' };
  let endpointsGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help') return 'help';
    if (!arg.startsWith('-')) continue; // cobra ignores positional arguments of a command that takes none
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    if (name === 'insecure-discovery') {
      if (eq >= 0 && !/^(true|false|1|0|t|f|TRUE|FALSE|True|False)$/.test(body.slice(eq + 1))) {
        throw new GatewayUsageError(
          `invalid argument "${body.slice(eq + 1)}" for "--insecure-discovery" flag: strconv.ParseBool: parsing "${body.slice(eq + 1)}": invalid syntax`,
        );
      }
      continue;
    }
    if (!STRING_FLAGS.has(name)) throw new GatewayUsageError(`unknown flag: --${name}`);
    let value: string;
    if (eq >= 0) value = body.slice(eq + 1);
    else if (i + 1 < argv.length) value = argv[++i];
    else throw new GatewayUsageError(`flag needs an argument: --${name}`);
    if (name === 'listen-addr') a.listenAddr = value;
    else if (name === 'discovery-srv') a.discoverySrv = value;
    else if (name === 'endpoints') {
      a.endpoints = endpointsGiven ? [...a.endpoints, ...csv(value)] : csv(value);
      endpointsGiven = true;
    } else if (name === 'retry-delay') {
      const ms = parseDurationMs(value);
      if (ms === null)
        throw new GatewayUsageError(`invalid argument "${value}" for "--retry-delay" flag: time: invalid duration "${value}"`);
      a.retryDelayMs = ms;
    }
  }
  return a;
}

function csv(v: string): string[] {
  return v === '' ? [] : v.split(',');
}

/** etcd's stripSchema: "http://h:p" -> "h:p". */
function stripSchema(ep: string): string {
  try {
    const u = new URL(ep);
    if (u.host !== '') return u.host;
  } catch {
    // not a URL: host:port as given
  }
  return ep;
}

/** Go's net.SplitHostPort for what the gateway takes; null when it is not host:port. */
export function splitHostPort(hp: string): { host: string; port: string } | null {
  const m = /^\[([^\]]*)\]:([^:]*)$/.exec(hp) ?? /^([^:[\]]*):([^:[\]]*)$/.exec(hp);
  return m === null ? null : { host: m[1], port: m[2] };
}

async function lookupHost(host: string): Promise<string[] | null> {
  try {
    return (await dns.lookup(host === '' ? 'localhost' : host, { all: true })).map((r) => r.address);
  } catch {
    return null;
  }
}

class Remote {
  readonly host: string;
  readonly port: number;
  readonly addr: string;
  inactive = false;
  constructor(host: string, port: number) {
    this.host = host;
    this.port = port;
    this.addr = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  }
}

function dial(r: Remote): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: r.host, port: r.port });
    const timer = setTimeout(() => s.destroy(new Error(`dial tcp ${r.addr}: i/o timeout`)), limits.tcpGatewayDialTimeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

export class TcpProxy {
  readonly #remotes: Remote[];
  readonly #log: Logger;
  readonly #retryDelayMs: number;
  readonly #open = new Set<net.Socket>();
  #pickCount = 0;
  #server: net.Server | null = null;
  #monitor: NodeJS.Timeout | null = null;

  constructor(endpoints: Array<{ host: string; port: number }>, retryDelayMs: number, log: Logger) {
    this.#remotes = endpoints.map((e) => new Remote(e.host, e.port));
    // etcd: a zero MonitorInterval is 5 minutes.
    this.#retryDelayMs = retryDelayMs > 0 ? retryDelayMs : 5 * 60_000;
    this.#log = log;
  }

  /** Listens on addr; resolves once listening. */
  listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const srv = net.createServer({ pauseOnConnect: true }, (sock) => void this.#serve(sock));
      srv.once('error', reject);
      srv.listen({ host, port }, () => {
        srv.removeListener('error', reject);
        srv.on('error', (e) => this.#log.error('gateway listener failed', { error: e.message }));
        this.#server = srv;
        this.#log.info('ready to proxy client requests', { endpoints: this.#remotes.map((r) => r.addr) });
        this.#monitor = setInterval(() => this.#reactivate(), this.#retryDelayMs);
        resolve();
      });
    });
  }

  close(): void {
    if (this.#monitor !== null) clearInterval(this.#monitor);
    this.#server?.close();
    for (const s of this.#open) s.destroy();
  }

  /** Round-robin over the remotes from the last pick, skipping inactive ones (tcpproxy's pick). */
  #pick(): Remote | null {
    const n = this.#remotes.length;
    for (let i = 0; i < n; i++) {
      const r = this.#remotes[this.#pickCount % n];
      this.#pickCount++;
      if (!r.inactive) return r;
    }
    return null;
  }

  async #serve(conn: net.Socket): Promise<void> {
    conn.on('error', () => conn.destroy());
    if (this.#open.size >= limits.tcpGatewayConnectionsMax) {
      conn.destroy();
      return;
    }
    this.#open.add(conn);
    conn.once('close', () => this.#open.delete(conn));
    let out: net.Socket | null = null;
    while (out === null && !conn.destroyed) {
      const r = this.#pick();
      if (r === null) break;
      try {
        out = await dial(r);
      } catch (e) {
        r.inactive = true;
        this.#log.warn('deactivated endpoint', { address: r.addr, interval: `${this.#retryDelayMs / 1000}s`, error: (e as Error).message });
      }
    }
    if (out === null || conn.destroyed) {
      out?.destroy();
      conn.destroy();
      return;
    }
    this.#join(conn, out);
  }

  /**
   * Copies both ways. When one side ends, what it sent is flushed to the other, then both close (as
   * tcpproxy's io.Copy then Close of both); an error on either closes both at once.
   */
  #join(a: net.Socket, b: net.Socket): void {
    this.#open.add(b);
    b.once('close', () => this.#open.delete(b));
    const both = (): void => {
      a.destroy();
      b.destroy();
    };
    a.on('error', both);
    b.on('error', both);
    a.once('close', both);
    b.once('close', both);
    a.pipe(b, { end: false });
    b.pipe(a, { end: false });
    a.once('end', () => b.end(both));
    b.once('end', () => a.end(both));
    a.resume();
  }

  #reactivate(): void {
    for (const r of this.#remotes) {
      if (!r.inactive) continue;
      dial(r).then(
        (s) => {
          s.destroy();
          r.inactive = false;
          this.#log.info('activated', { address: r.addr });
        },
        (e: Error) =>
          this.#log.warn('failed to activate endpoint (stay inactive for another interval)', {
            address: r.addr,
            interval: `${this.#retryDelayMs / 1000}s`,
            error: e.message,
          }),
      );
    }
  }
}

/** Checks the endpoints and the listen address as etcd's startGateway does; on failure, what etcd prints. */
async function resolveStart(
  a: GatewayArgs,
): Promise<{ remotes: Array<{ host: string; port: number }>; listen: { host: string; port: number } } | string> {
  if (a.discoverySrv !== '') return 'etcd-ts gateway: --discovery-srv is not supported (etcd-ts has no DNS discovery); give --endpoints\n';
  const remotes: Array<{ host: string; port: number }> = [];
  for (const ep of a.endpoints.map(stripSchema)) {
    const hp = splitHostPort(ep);
    if (hp === null) return `error parsing endpoint "${ep}"`; // etcd: Printf without a newline
    remotes.push({ host: hp.host, port: Number.parseInt(hp.port, 10) || 0 });
  }
  const l = splitHostPort(a.listenAddr);
  if (l === null) return `failed to validate listen address: ${a.listenAddr}\n`;
  const laddrs = await lookupHost(l.host);
  if (laddrs === null) return `failed to resolve listen host: ${l.host}\n`;
  for (const r of remotes) {
    const eaddrs = await lookupHost(r.host);
    if (eaddrs === null) return `failed to resolve endpoint host: ${r.host}\n`;
    if (String(r.port) !== l.port) continue;
    const same = eaddrs.find((ea) => laddrs.includes(ea));
    if (same !== undefined) {
      return `SRV or endpoint (${r.host}:${r.port}->${same}:${r.port}) should not resolve to the gateway listen addr (${a.listenAddr})\n`;
    }
  }
  if (remotes.length === 0) return 'no endpoints found\n';
  return { remotes, listen: { host: l.host, port: Number(l.port) } };
}

/**
 * `etcd-ts gateway ...` (argv after "gateway"). Resolves with an exit code when it ends before
 * serving (help, bad flags); otherwise serves until SIGINT/SIGTERM.
 */
export async function runGateway(argv: string[]): Promise<number> {
  if (argv[0] !== 'start') {
    process.stdout.write(GATEWAY_HELP);
    return 0;
  }
  let a: GatewayArgs | 'help';
  try {
    a = parseGatewayStart(argv.slice(1));
  } catch (e) {
    if (!(e instanceof GatewayUsageError)) throw e;
    // cobra prints the error and the usage; etcd then prints the error again (fmt.Fprint, no newline).
    process.stderr.write(`Error: ${e.message}\n${START_USAGE}\n${e.message}`);
    return 1;
  }
  if (a === 'help') {
    process.stdout.write(`start the gateway\n\n${START_USAGE}`);
    return 0;
  }
  const r = await resolveStart(a);
  if (typeof r === 'string') {
    // etcd prints these with fmt.Println: on stdout.
    process.stdout.write(r);
    return 1;
  }
  const log = new Logger('info');
  const proxy = new TcpProxy(r.remotes, a.retryDelayMs, log);
  try {
    await proxy.listen(r.listen.host, r.listen.port);
  } catch (e) {
    process.stderr.write(`listen tcp ${a.listenAddr}: ${(e as Error).message}\n`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  proxy.close();
  return 0;
}
