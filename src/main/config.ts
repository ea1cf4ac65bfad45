// etcd's command-line flags and ETCD_* environment variables, with etcd 3.4's defaults.
// A flag this version recognises but does not implement yet is refused with a clear message;
// an unknown flag is refused the way Go's flag package does.
import { limits, requestBytesCeiling } from '../shared/limits';
import { CIPHER_SUITES, emptyTlsInfo, TlsInfo } from './net/tls';

export interface Config {
  name: string;
  dataDir: string;
  listenClientUrls: URL[];
  advertiseClientUrls: string[];
  listenPeerUrls: URL[];
  initialAdvertisePeerUrls: string[];
  /** name -> peer URLs, from --initial-cluster. */
  initialCluster: Map<string, string[]>;
  initialClusterState: 'new' | 'existing';
  initialClusterToken: string;
  /** Refuse membership changes that would put quorum at risk (etcd 3.4 default: true). */
  strictReconfigCheck: boolean;
  snapshotCount: number;
  heartbeatIntervalMs: number;
  electionTimeoutMs: number;
  quotaBackendBytes: number;
  maxRequestBytes: number;
  maxTxnOps: number;
  /** HTTP/2 streams one client connection may have open (etcd 3.4: math.MaxUint32). */
  maxConcurrentStreams: number;
  autoCompactionMode: 'periodic' | 'revision';
  autoCompactionRetention: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'panic' | 'fatal';
  listenClientHttpUrls: URL[];
  /** etcd 3.4's --experimental-watch-progress-notify-interval (progress_notify watchers). */
  watchProgressNotifyIntervalMs: number;
  /** etcd-ts: the longest a watch fan-out pass waits to group revisions under load (0: never waits). */
  watchBatchMaxDelayMs: number;
  /** --cert-file, --key-file, --trusted-ca-file, --client-cert-auth, --client-crl-file, --auto-tls, ... */
  clientTls: TlsInfo;
  /** --peer-cert-file, --peer-key-file, --peer-trusted-ca-file, --peer-client-cert-auth, --peer-auto-tls, ... */
  peerTls: TlsInfo;
  /** --auth-token, --auth-token-ttl, --bcrypt-cost (authConfig below). */
  auth: AuthConfig;
}

/** Authentication options: etcd 3.4's --auth-token, --auth-token-ttl and --bcrypt-cost. */
export interface AuthConfig {
  /** Only 'simple' so far (etcd's default); jwt is refused at start until it is implemented. */
  tokenType: 'simple';
  /** Simple tokens expire after this long without use (--auth-token-ttl, seconds in the flag). */
  tokenTtlMs: number;
  /** bcrypt cost of new password hashes (etcd: 4..31, an invalid value falls back to 10). */
  bcryptCost: number;
}

interface FlagDef {
  def: string;
  help: string;
  /** Present for flags accepted by etcd that this version refuses unless left at the default. */
  unsupported?: string;
}

const FLAGS: Record<string, FlagDef> = {
  'name': { def: 'default', help: 'Human-readable name for this member.' },
  'data-dir': { def: '${name}.etcd', help: 'Path to the data directory.' },
  'listen-client-urls': { def: 'http://localhost:2379', help: 'List of URLs to listen on for client traffic.' },
  'advertise-client-urls': { def: 'http://localhost:2379', help: 'List of this member\'s client URLs to advertise to the public.' },
  'listen-peer-urls': { def: 'http://localhost:2380', help: 'List of URLs to listen on for peer traffic.' },
  'initial-advertise-peer-urls': { def: 'http://localhost:2380', help: 'List of this member\'s peer URLs to advertise to the rest of the cluster.' },
  'initial-cluster': { def: 'default=http://localhost:2380', help: 'Initial cluster configuration for bootstrapping.' },
  'initial-cluster-state': { def: 'new', help: 'Initial cluster state (\'new\' or \'existing\').' },
  'initial-cluster-token': { def: 'etcd-cluster', help: 'Initial cluster token for the etcd cluster during bootstrap.' },
  'strict-reconfig-check': { def: 'true', help: 'Reject reconfiguration requests that would cause quorum loss.' },
  'snapshot-count': { def: String(limits.snapshotCount), help: 'Number of committed transactions to trigger a snapshot to disk.' },
  'heartbeat-interval': { def: String(limits.heartbeatIntervalMs), help: 'Time (in milliseconds) of a heartbeat interval.' },
  'election-timeout': { def: String(limits.electionTimeoutMs), help: 'Time (in milliseconds) for an election to timeout.' },
  'quota-backend-bytes': { def: '0', help: 'Raise alarms when backend size exceeds the given quota (0 defaults to low space quota).' },
  'max-request-bytes': { def: String(limits.requestBytesMax), help: 'Maximum client request size in bytes the server will accept.' },
  'max-txn-ops': { def: String(limits.txnOpsMax), help: 'Maximum number of operations permitted in a transaction.' },
  'auto-compaction-mode': { def: 'periodic', help: 'Interpret \'auto-compaction-retention\' one of: periodic|revision.' },
  'auto-compaction-retention': { def: '0', help: 'Auto compaction retention length. 0 means disable auto compaction.' },
  'log-level': { def: 'info', help: 'Configures log level. Only supports debug, info, warn, error, panic, or fatal.' },
  'logger': { def: 'zap', help: 'Currently only supports \'zap\' for structured logging (JSON lines on stderr).' },
  'log-outputs': { def: 'default', help: 'Only \'default\' / \'stderr\' is supported.' },
  'listen-client-http-urls': { def: '', help: 'List of URLs to listen on for HTTP/JSON client traffic (uWebSockets.js): the JSON API, WebSocket API, /health, /livez, /readyz, /version, /metrics.' },
  'listen-metrics-urls': { def: '', help: 'List of URLs to listen on for the metrics and health endpoints.',
    unsupported: 'a separate metrics listener is not implemented in this version' },
  'cert-file': { def: '', help: 'Path to the client server TLS cert file.' },
  'key-file': { def: '', help: 'Path to the client server TLS key file.' },
  'client-cert-auth': { def: 'false', help: 'Enable client cert authentication.' },
  'client-crl-file': { def: '', help: 'Path to the client certificate revocation list file.' },
  'client-cert-allowed-hostname': { def: '', help: 'Allowed TLS hostname for client cert authentication.' },
  'trusted-ca-file': { def: '', help: 'Path to the client server TLS trusted CA cert file.' },
  'auto-tls': { def: 'false', help: 'Client TLS using generated certificates.' },
  'peer-cert-file': { def: '', help: 'Path to the peer server TLS cert file.' },
  'peer-key-file': { def: '', help: 'Path to the peer server TLS key file.' },
  'peer-client-cert-auth': { def: 'false', help: 'Enable peer client cert authentication.' },
  'peer-trusted-ca-file': { def: '', help: 'Path to the peer server TLS trusted CA file.' },
  'peer-cert-allowed-cn': { def: '', help: 'Required CN for client certs connecting to the peer endpoint.' },
  'peer-cert-allowed-hostname': { def: '', help: 'Allowed TLS hostname for inter peer authentication.' },
  'peer-auto-tls': { def: 'false', help: 'Peer TLS using self-generated certificates if --peer-key-file and --peer-cert-file are not provided.' },
  'peer-crl-file': { def: '', help: 'Path to the peer certificate revocation list file.' },
  'cipher-suites': { def: '', help: 'Comma-separated list of supported TLS cipher suites between client/server and peers (empty will be auto-populated by Node.js).' },
  'enable-v2': { def: 'false', help: 'Accept etcd V2 client requests.', unsupported: 'the v2 API is not implemented' },
  'enable-pprof': { def: 'false', help: 'Enable runtime profiling data via HTTP server.', unsupported: 'pprof is Go-specific' },
  'experimental-enable-lease-checkpoint': { def: 'false', help: 'Accepted for compatibility: etcd-ts always checkpoints the remaining TTL of leases nobody renews (see docs/LEASES.md).' },
  'experimental-watch-progress-notify-interval': { def: '10m0s', help: 'Duration of periodic watch progress notifications.' },
  'watch-batch-max-delay': { def: `${limits.watchBatchMaxDelayMs}ms`, help: 'etcd-ts only: under heavy watch fan-out, the longest a fan-out pass waits so that each watcher gets one response for several revisions (0s: every revision is sent at once; see docs/ARCHITECTURE.md, Watch).' },
  'auth-token': { def: 'simple', help: 'Specify auth token specific options (\'simple\' only in this version).' },
  'auth-token-ttl': { def: '300', help: 'The lifetime in seconds of the auth token.' },
  'bcrypt-cost': { def: String(limits.bcryptCost), help: 'Specify bcrypt algorithm cost factor for auth password hashing.' },
  'max-concurrent-streams': { def: '4294967295', help: 'Maximum concurrent streams that each client can open at a time.' },
};

export class ConfigError extends Error {}

/** Parses argv (without node and script) and env the way etcd does: flags win over ETCD_* env. */
export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): Config | 'help' | 'version' {
  const given = new Map<string, string>();
  for (const [name] of Object.entries(FLAGS)) {
    const v = env['ETCD_' + name.toUpperCase().replace(/-/g, '_')];
    if (v !== undefined) given.set(name, v);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help' || arg === '-help') return 'help';
    if (arg === '--version' || arg === '-version') return 'version';
    const m = /^--?([a-z0-9-]+)(?:=(.*))?$/s.exec(arg);
    if (!m) throw new ConfigError(`'${arg}' is not a valid flag`);
    const name = m[1];
    const def = FLAGS[name];
    if (!def) throw new ConfigError(`flag provided but not defined: -${name}`);
    let value = m[2];
    if (value === undefined) {
      const isBool = def.def === 'true' || def.def === 'false';
      if (isBool) value = 'true';
      else if (i + 1 < argv.length) value = argv[++i];
      else throw new ConfigError(`flag needs an argument: -${name}`);
    }
    given.set(name, value);
  }
  for (const [name, value] of given) {
    const def = FLAGS[name];
    if (def.unsupported && value !== def.def && value !== '') {
      throw new ConfigError(`--${name}: ${def.unsupported}`);
    }
  }
  // Accepted only with what they mean here: JSON lines from one logger, on stderr.
  if (given.has('logger') && given.get('logger') !== 'zap') {
    throw new ConfigError(`--logger ${given.get('logger')}: only 'zap' (structured JSON lines) is supported`);
  }
  const outputs = given.get('log-outputs');
  if (outputs !== undefined && outputs.split(',').some((o) => o !== 'default' && o !== 'stderr')) {
    throw new ConfigError(`--log-outputs ${outputs}: only 'default' or 'stderr' is supported in this version`);
  }
  return build((name) => given.get(name) ?? FLAGS[name].def, given);
}

function build(get: (name: string) => string, given: Map<string, string>): Config {
  const name = get('name');
  const initialAdvertisePeerUrls = list(get('initial-advertise-peer-urls'));
  // etcd: when --name is changed but --initial-cluster is not given, the cluster is this member alone.
  const clusterSpec = given.has('initial-cluster') ? get('initial-cluster')
    : `${name}=${initialAdvertisePeerUrls.join(`,${name}=`)}`;
  const cfg: Config = {
    name,
    dataDir: given.has('data-dir') ? get('data-dir') : `${name}.etcd`,
    listenClientUrls: urls('listen-client-urls', get('listen-client-urls')),
    advertiseClientUrls: list(get('advertise-client-urls')),
    listenPeerUrls: urls('listen-peer-urls', get('listen-peer-urls')),
    initialAdvertisePeerUrls,
    initialCluster: parseInitialCluster(clusterSpec),
    initialClusterState: oneOf('initial-cluster-state', get('initial-cluster-state'), ['new', 'existing'] as const),
    initialClusterToken: get('initial-cluster-token'),
    strictReconfigCheck: oneOf('strict-reconfig-check', get('strict-reconfig-check'), ['true', 'false'] as const) === 'true',
    snapshotCount: int('snapshot-count', get('snapshot-count'), 1),
    heartbeatIntervalMs: int('heartbeat-interval', get('heartbeat-interval'), 1),
    electionTimeoutMs: int('election-timeout', get('election-timeout'), 1),
    quotaBackendBytes: int('quota-backend-bytes', get('quota-backend-bytes'), 0) || limits.quotaBackendBytes,
    maxRequestBytes: int('max-request-bytes', get('max-request-bytes'), 1),
    maxTxnOps: int('max-txn-ops', get('max-txn-ops'), 1),
    maxConcurrentStreams: Math.min(int('max-concurrent-streams', get('max-concurrent-streams'), 1), 0xffffffff),
    autoCompactionMode: oneOf('auto-compaction-mode', get('auto-compaction-mode'), ['periodic', 'revision'] as const),
    autoCompactionRetention: get('auto-compaction-retention'),
    logLevel: oneOf('log-level', get('log-level'), ['debug', 'info', 'warn', 'error', 'panic', 'fatal'] as const),
    listenClientHttpUrls: get('listen-client-http-urls') ? urls('listen-client-http-urls', get('listen-client-http-urls')) : [],
    watchProgressNotifyIntervalMs: duration('experimental-watch-progress-notify-interval', get('experimental-watch-progress-notify-interval')),
    watchBatchMaxDelayMs: duration('watch-batch-max-delay', get('watch-batch-max-delay')),
    clientTls: tlsInfo('', get),
    peerTls: tlsInfo('peer-', get),
    auth: authConfig(get),
  };
  validate(cfg);
  return cfg;
}

function validate(cfg: Config): void {
  if (5 * cfg.heartbeatIntervalMs > cfg.electionTimeoutMs) {
    throw new ConfigError(`--election-timeout[${cfg.electionTimeoutMs}ms] should be at least as 5 times as --heartbeat-interval[${cfg.heartbeatIntervalMs}ms]`);
  }
  if (cfg.electionTimeoutMs > 50000) throw new ConfigError(`--election-timeout[${cfg.electionTimeoutMs}ms] is too long, and should be set less than 50000ms`);
  if (cfg.maxRequestBytes > requestBytesCeiling) {
    throw new ConfigError(`--max-request-bytes ${cfg.maxRequestBytes} is larger than etcd-ts accepts (${requestBytesCeiling} bytes, 128 MiB)`);
  }
  const mine = cfg.initialCluster.get(cfg.name);
  if (!mine) throw new ConfigError(`couldn't find local name "${cfg.name}" in the initial cluster configuration`);
  const sorted = (a: string[]) => [...a].sort().join(',');
  if (sorted(mine) !== sorted(cfg.initialAdvertisePeerUrls)) {
    throw new ConfigError(`--initial-cluster has ${cfg.name}=${mine.join(',')} but missing from --initial-advertise-peer-urls=${cfg.initialAdvertisePeerUrls.join(',')}`);
  }
  validateTls(cfg);
  const r = cfg.autoCompactionRetention;
  if (cfg.autoCompactionMode === 'revision' ? !/^\d+$/.test(r) : parseRetentionMs(r) === null) {
    throw new ConfigError(`invalid --auto-compaction-retention '${r}' for mode ${cfg.autoCompactionMode}`);
  }
}

/** --auth-token as etcd parses it (type, then comma-separated key=value options), --auth-token-ttl
 * and --bcrypt-cost. etcd refuses an unknown type or malformed option with "auth: invalid auth options". */
function authConfig(get: (name: string) => string): AuthConfig {
  const spec = get('auth-token');
  const [type, ...opts] = spec.split(',');
  const seen = new Set<string>();
  for (const o of opts) {
    const kv = o.split('=');
    if (kv.length !== 2 || seen.has(kv[0])) throw new ConfigError(`--auth-token ${JSON.stringify(spec)}: auth: invalid auth options`);
    seen.add(kv[0]);
  }
  if (type === 'jwt') throw new ConfigError('--auth-token jwt: JWT tokens are not implemented in this version (use simple)');
  if (type !== 'simple') throw new ConfigError(`--auth-token ${JSON.stringify(spec)}: auth: invalid auth options`);
  let cost = int('bcrypt-cost', get('bcrypt-cost'), 0);
  if (cost < 4 || cost > 31) cost = limits.bcryptCost; // etcd: invalid cost -> bcrypt.DefaultCost, with a warning
  return { tokenType: 'simple', tokenTtlMs: int('auth-token-ttl', get('auth-token-ttl'), 0) * 1000 || limits.simpleTokenTtlMs, bcryptCost: cost };
}

function bool(flag: string, s: string): boolean {
  return oneOf(flag, s, ['true', 'false'] as const) === 'true';
}

function tlsInfo(prefix: '' | 'peer-', get: (name: string) => string): TlsInfo {
  const cipherSuites = list(get('cipher-suites'));
  for (const c of cipherSuites) {
    if (CIPHER_SUITES[c] === undefined) throw new ConfigError(`unexpected TLS cipher suite "${c}" (--cipher-suites)`);
  }
  const p = prefix;
  return {
    ...emptyTlsInfo(prefix),
    certFile: get(`${p}cert-file`), keyFile: get(`${p}key-file`), trustedCaFile: get(`${p}trusted-ca-file`),
    clientCertAuth: bool(`${p}client-cert-auth`, get(`${p}client-cert-auth`)),
    crlFile: get(p === '' ? 'client-crl-file' : 'peer-crl-file'),
    allowedCn: p === '' ? '' : get('peer-cert-allowed-cn'),
    allowedHostname: get(p === '' ? 'client-cert-allowed-hostname' : 'peer-cert-allowed-hostname'),
    autoTls: bool(`${p}auto-tls`, get(`${p}auto-tls`)),
    cipherSuites,
  };
}

/** etcd's checks of URL schemes against the certificate flags. */
function validateTls(cfg: Config): void {
  for (const u of [...cfg.listenClientUrls, ...cfg.listenPeerUrls, ...cfg.listenClientHttpUrls]) {
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(`${u.href}: only http:// and https:// URLs are supported`);
  }
  const fastHttps = cfg.listenClientHttpUrls.find((u) => u.protocol === 'https:');
  // uWebSockets.js' SSLApp loads the files once and has no CRL or hostname check: refused, not ignored.
  // SSLApp with a CA file verifies a certificate a client presents but lets one without a certificate
  // in (measured with curl): client-certificate auth cannot be enforced there.
  if (fastHttps && (cfg.clientTls.clientCertAuth || cfg.clientTls.crlFile || cfg.clientTls.allowedHostname)) {
    throw new ConfigError(`--listen-client-http-urls ${fastHttps.href}: --client-cert-auth, --client-crl-file and --client-cert-allowed-hostname are not supported on the uWebSockets.js port (it cannot require a client certificate); serve those clients on --listen-client-urls`);
  }
  for (const [info, what] of [[cfg.clientTls, 'client'], [cfg.peerTls, 'peer']] as const) {
    const p = info.flagPrefix;
    if ((info.certFile === '') !== (info.keyFile === '')) {
      throw new ConfigError(`--${p}cert-file and --${p}key-file must be given together`);
    }
    const urls = what === 'client' ? [...cfg.listenClientUrls, ...cfg.listenClientHttpUrls] : cfg.listenPeerUrls;
    const https = urls.find((u) => u.protocol === 'https:');
    if (https && info.certFile === '' && !info.autoTls) {
      throw new ConfigError(`TLS key/cert (--${p}cert-file, --${p}key-file) must be provided for ${what} url ${https.href.replace(/\/$/, '')} with HTTPS scheme`);
    }
  }
}

/** periodic retention: an integer is hours (etcd), or a Go duration like "30m", "1h30m", "90s". */
export function parseRetentionMs(s: string): number | null {
  if (/^\d+$/.test(s)) return Number(s) * 3_600_000;
  return parseDurationMs(s);
}

const DURATION_UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 1e-3, 'µs': 1e-3, ns: 1e-6 };

/** A Go duration ("10m0s", "1h30m", "20ms", "0"), in milliseconds; null when it is not one. */
export function parseDurationMs(s: string): number | null {
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * DURATION_UNIT_MS[m[2]];
    consumed = re.lastIndex;
  }
  return consumed === s.length && s.length > 0 ? total : null;
}

/** A flag's Go duration in milliseconds, as etcd's flag package takes it (time.ParseDuration). */
function duration(flag: string, s: string): number {
  const ms = parseDurationMs(s);
  if (ms === null) throw new ConfigError(`invalid value "${s}" for flag -${flag}: parse error`);
  return ms;
}

function list(s: string): string[] {
  return s.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
}

function urls(flag: string, s: string): URL[] {
  return list(s).map((x) => {
    try {
      const u = new URL(x);
      if (!u.port) throw new Error('no port');
      return u;
    } catch {
      throw new ConfigError(`invalid URL "${x}" in --${flag}`);
    }
  });
}

function int(flag: string, s: string, min: number): number {
  const n = Number(s);
  if (!/^\d+$/.test(s.trim()) || !Number.isSafeInteger(n) || n < min) throw new ConfigError(`invalid value "${s}" for flag -${flag}`);
  return n;
}

function oneOf<T extends string>(flag: string, s: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(s)) throw new ConfigError(`invalid value "${s}" for flag -${flag}: one of ${allowed.join('|')}`);
  return s as T;
}

export function parseInitialCluster(s: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const part of list(s)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--initial-cluster: invalid member "${part}" (want name=url)`);
    const n = part.slice(0, eq);
    const u = part.slice(eq + 1);
    out.set(n, [...(out.get(n) ?? []), u]);
  }
  return out;
}

export function usage(): string {
  const lines = ['Usage: etcd-ts [flags]', '', 'etcd-ts takes etcd\'s flags (and ETCD_* environment variables):', ''];
  for (const [name, d] of Object.entries(FLAGS)) {
    lines.push(`  --${name} '${d.def}'`, `      ${d.help}${d.unsupported ? ` (not supported yet: ${d.unsupported})` : ''}`);
  }
  return lines.join('\n');
}
