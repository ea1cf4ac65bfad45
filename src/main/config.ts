// etcd's command-line flags, ETCD_* environment variables and YAML config file, with etcd 3.4's
// defaults. Every flag of etcd 3.4 is accepted: honoured, or (where etcd-ts lacks the behaviour) logged
// at start with what etcd-ts does instead, or refused when running without it would weaken what etcd
// guarantees (--force-new-cluster, discovery, corruption checks). An unknown flag is refused the way
// Go's flag package does.
import * as fs from 'node:fs';
import { limits, requestBytesCeiling } from '../shared/limits';
import { CIPHER_SUITES, emptyTlsInfo, TlsInfo } from './net/tls';
import { parseEtcdYaml, YamlValue } from './yaml_config';

export interface Config {
  name: string;
  dataDir: string;
  /** --wal-dir: the WAL's directory; '' is <data-dir>/member/wal. */
  walDir: string;
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
  /** Raft's pre-vote phase (etcd 3.4 default: false). */
  preVote: boolean;
  snapshotCount: number;
  /** --max-wals: WAL segments kept once the snapshot covers them (0: all). */
  maxWals: number;
  /** --max-snapshots: etcd-ts keeps no snapshot files at rest (LMDB is the snapshot), so any value holds. */
  maxSnapshots: number;
  /** --metrics extensive: also the gRPC handling-time histograms (etcd: any other value is basic). */
  metricsExtensive: boolean;
  heartbeatIntervalMs: number;
  electionTimeoutMs: number;
  quotaBackendBytes: number;
  maxRequestBytes: number;
  maxTxnOps: number;
  /** HTTP/2 streams one client connection may have open (etcd 3.4: math.MaxUint32). */
  maxConcurrentStreams: number;
  /** grpc-go's keepalive: pings closer than this (without data sent in between) are strikes (0: no policy). */
  grpcKeepaliveMinTimeMs: number;
  /** A connection silent this long gets a PING (0: never)... */
  grpcKeepaliveIntervalMs: number;
  /** ... and is closed when nothing arrives this long after it (0: never). */
  grpcKeepaliveTimeoutMs: number;
  autoCompactionMode: 'periodic' | 'revision';
  autoCompactionRetention: string;
  /** --experimental-compaction-batch-limit: revisions removed per compaction transaction. */
  compactionBatchLimit: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'panic' | 'fatal';
  /** 'stderr', 'stdout' or file paths (--log-outputs; etcd's 'default' is stderr here). */
  logOutputs: string[];
  /** --enable-grpc-gateway: the HTTP/JSON API on the client URLs. */
  enableGrpcGateway: boolean;
  listenClientHttpUrls: URL[];
  /** --listen-metrics-urls: extra listeners serving only /metrics and /health (https:// with the client TLS files). */
  listenMetricsUrls: URL[];
  /** --experimental-initial-corrupt-check: compare HashKV with the peers' before serving. */
  initialCorruptCheck: boolean;
  /** --force-new-cluster: restart this member's data as a one-member cluster (etcd's semantics). */
  forceNewCluster: boolean;
  /** --experimental-corrupt-check-time: the leader's HashKV comparison period (0: never). */
  corruptCheckTimeMs: number;
  /** etcd 3.4's --experimental-watch-progress-notify-interval (progress_notify watchers). */
  watchProgressNotifyIntervalMs: number;
  /** etcd-ts: the longest a watch fan-out pass waits to group revisions under load (0: never waits). */
  watchBatchMaxDelayMs: number;
  /** --cert-file, --key-file, --trusted-ca-file, --client-cert-auth, --client-crl-file, --auto-tls, ... */
  clientTls: TlsInfo;
  /** --peer-cert-file, --peer-key-file, --peer-trusted-ca-file, --peer-client-cert-auth, --peer-auto-tls, ... */
  peerTls: TlsInfo;
  /** Lines to log at start: flags accepted but not honoured, unknown ETCD_* variables, the config file. */
  notes: StartupNote[];
  /** --auth-token, --auth-token-ttl, --bcrypt-cost (authConfig below). */
  auth: AuthConfig;
  /** etcd-ts's audit log: --audit-log-path, --audit-log-max-size, --audit-log-max-backups, --audit-log-mode. */
  audit: AuditConfig;
}

/** The audit log (docs/AUDIT.md); etcd has none. */
export interface AuditConfig {
  /** A file, '-' for stdout, '' for no audit log (the default). */
  path: string;
  /** Rotate when the file would pass this size (0: never). */
  maxSizeBytes: number;
  /** Rotated files kept (path.1 .. path.N). */
  maxBackups: number;
  mode: 'batch' | 'blocking';
}

/** Authentication options: etcd 3.4's --auth-token, --auth-token-ttl and --bcrypt-cost. */
export interface AuthConfig {
  /** etcd's two token providers: 'simple' (the default) or 'jwt' (with `jwt` below). */
  tokenType: 'simple' | 'jwt';
  /** Simple tokens expire after this long without use (--auth-token-ttl, seconds in the flag). */
  tokenTtlMs: number;
  /** bcrypt cost of new password hashes (etcd: 4..31, an invalid value falls back to 10). */
  bcryptCost: number;
  /** --auth-token jwt,...: the options as given; the key files are read when the member starts. */
  jwt?: JwtOptions;
}

/** The signing algorithms etcd 3.4 accepts for JWT (golang-jwt's names; HS* take priv-key as the secret). */
export const JWT_SIGN_METHODS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'HS256', 'HS384', 'HS512'] as const;
export type JwtSignMethod = (typeof JWT_SIGN_METHODS)[number];

/** etcd's jwtOptions (auth/options.go): sign-method, pub-key, priv-key, ttl (default 5m). */
export interface JwtOptions {
  signMethod: JwtSignMethod;
  /** Key file paths; '' when not given. Only pub-key: this member verifies tokens but cannot issue them. */
  pubKeyFile: string;
  privKeyFile: string;
  ttlMs: number;
}

type FlagType = 'string' | 'bool' | 'uint' | 'int' | 'duration';

interface FlagDef {
  def: string;
  help: string;
  /** How etcd's flag package parses it (a bad value is refused with its text); 'string' when absent. */
  type?: FlagType;
  /** Accepted, not honoured: a value other than the default is logged at start with this sentence, which
   * says what etcd-ts does instead. */
  warn?: string;
  /** Refused at start when set to anything but the default: running without it would change what etcd
   * guarantees (data safety, the cluster a member joins). Says why. */
  refuse?: string;
}

/** Not implemented yet; another issue's. */
const NOT_YET = 'is not implemented yet:';

// etcd 3.4.23's flags (etcdmain/config.go), in its --help order, then the ones --help does not list, then
// etcd-ts's own. test/unit/config.test.ts compares the names with `etcd --help`.
const FLAGS: Record<string, FlagDef> = {
  // Member
  'name': { def: 'default', help: 'Human-readable name for this member.' },
  'data-dir': { def: '${name}.etcd', help: 'Path to the data directory.' },
  'wal-dir': { def: '', help: 'Path to the dedicated wal directory (etcd-ts\'s WAL segments go there instead of <data-dir>/member/wal).' },
  'snapshot-count': { def: String(limits.snapshotCount), type: 'uint', help: 'Number of committed transactions to trigger a snapshot to disk.' },
  'heartbeat-interval': { def: String(limits.heartbeatIntervalMs), type: 'uint', help: 'Time (in milliseconds) of a heartbeat interval.' },
  'election-timeout': { def: String(limits.electionTimeoutMs), type: 'uint', help: 'Time (in milliseconds) for an election to timeout.' },
  'initial-election-tick-advance': { def: 'true', type: 'bool', help: 'Whether to fast-forward initial election ticks on boot for faster election (etcd-ts: a lone member campaigns at once; members of a cluster wait one election timeout).' },
  'listen-peer-urls': { def: 'http://localhost:2380', help: 'List of URLs to listen on for peer traffic.' },
  'listen-client-urls': { def: 'http://localhost:2379', help: 'List of URLs to listen on for client traffic.' },
  'max-snapshots': { def: '5', type: 'uint', help: 'Maximum number of snapshot files to retain (0 is unlimited).' },
  'max-wals': { def: '5', type: 'uint', help: 'Maximum number of wal files to retain (0 is unlimited).' },
  'quota-backend-bytes': { def: '0', type: 'int', help: 'Raise alarms when backend size exceeds the given quota (0 defaults to low space quota).' },
  'backend-batch-interval': { def: '0s', type: 'duration', help: 'BackendBatchInterval is the maximum time before commit the backend transaction.',
    warn: 'does not apply: etcd-ts commits one LMDB transaction per batch of applied entries' },
  'backend-batch-limit': { def: '0', type: 'int', help: 'BackendBatchLimit is the maximum operations before commit the backend transaction.',
    warn: 'does not apply: etcd-ts commits one LMDB transaction per batch of applied entries' },
  'max-txn-ops': { def: String(limits.txnOpsMax), type: 'uint', help: 'Maximum number of operations permitted in a transaction.' },
  'max-request-bytes': { def: String(limits.requestBytesMax), type: 'uint', help: 'Maximum client request size in bytes the server will accept.' },
  'max-concurrent-streams': { def: '4294967295', type: 'uint', help: 'Maximum concurrent streams that each client can open at a time.' },
  'grpc-keepalive-min-time': { def: '5s', type: 'duration', help: 'Minimum duration interval that a client should wait before pinging server.' },
  'grpc-keepalive-interval': { def: '2h0m0s', type: 'duration', help: 'Frequency duration of server-to-client ping to check if a connection is alive (0 to disable).' },
  'grpc-keepalive-timeout': { def: '20s', type: 'duration', help: 'Additional duration of wait before closing a non-responsive connection (0 to disable).' },
  // Clustering
  'initial-advertise-peer-urls': { def: 'http://localhost:2380', help: 'List of this member\'s peer URLs to advertise to the rest of the cluster.' },
  'initial-cluster': { def: 'default=http://localhost:2380', help: 'Initial cluster configuration for bootstrapping.' },
  'initial-cluster-state': { def: 'new', help: 'Initial cluster state (\'new\' or \'existing\').' },
  'initial-cluster-token': { def: 'etcd-cluster', help: 'Initial cluster token for the etcd cluster during bootstrap.' },
  'advertise-client-urls': { def: 'http://localhost:2379', help: 'List of this member\'s client URLs to advertise to the public.' },
  'discovery': { def: '', help: 'Discovery URL used to bootstrap the cluster.',
    refuse: 'is not implemented: etcd-ts would bootstrap from --initial-cluster instead, another cluster than the one you meant' },
  'discovery-fallback': { def: 'proxy', help: 'Expected behavior (\'exit\' or \'proxy\') when discovery services fails.',
    warn: 'does not apply: etcd-ts has no discovery' },
  'discovery-proxy': { def: '', help: 'HTTP proxy to use for traffic to discovery service.', warn: 'does not apply: etcd-ts has no discovery' },
  'discovery-srv': { def: '', help: 'DNS srv domain used to bootstrap the cluster.',
    refuse: 'is not implemented (DNS discovery): etcd-ts would bootstrap from --initial-cluster instead, another cluster than the one you meant' },
  'discovery-srv-name': { def: '', help: 'Suffix to the dns srv name queried when bootstrapping.',
    refuse: 'is not implemented (DNS discovery): etcd-ts would bootstrap from --initial-cluster instead, another cluster than the one you meant' },
  'strict-reconfig-check': { def: 'true', type: 'bool', help: 'Reject reconfiguration requests that would cause quorum loss.' },
  'pre-vote': { def: 'false', type: 'bool', help: 'Enable to run an additional Raft election phase.' },
  'auto-compaction-retention': { def: '0', help: 'Auto compaction retention length. 0 means disable auto compaction.' },
  'auto-compaction-mode': { def: 'periodic', help: 'Interpret \'auto-compaction-retention\' one of: periodic|revision.' },
  'enable-v2': { def: 'false', type: 'bool', help: 'Accept etcd V2 client requests.', warn: 'does not apply: etcd-ts serves only the v3 API (v2 requests answer 404)' },
  // Security (TLS: src/main/net/tls.ts)
  'cert-file': { def: '', help: 'Path to the client server TLS cert file.' },
  'key-file': { def: '', help: 'Path to the client server TLS key file.' },
  'client-cert-auth': { def: 'false', type: 'bool', help: 'Enable client cert authentication.' },
  'client-crl-file': { def: '', help: 'Path to the client certificate revocation list file.' },
  'client-cert-allowed-hostname': { def: '', help: 'Allowed TLS hostname for client cert authentication.' },
  'trusted-ca-file': { def: '', help: 'Path to the client server TLS trusted CA cert file.' },
  'auto-tls': { def: 'false', type: 'bool', help: 'Client TLS using generated certificates.' },
  'peer-cert-file': { def: '', help: 'Path to the peer server TLS cert file.' },
  'peer-key-file': { def: '', help: 'Path to the peer server TLS key file.' },
  'peer-client-cert-auth': { def: 'false', type: 'bool', help: 'Enable peer client cert authentication.' },
  'peer-trusted-ca-file': { def: '', help: 'Path to the peer server TLS trusted CA file.' },
  'peer-cert-allowed-cn': { def: '', help: 'Required CN for client certs connecting to the peer endpoint.' },
  'peer-cert-allowed-hostname': { def: '', help: 'Allowed TLS hostname for inter peer authentication.' },
  'peer-auto-tls': { def: 'false', type: 'bool', help: 'Peer TLS using self-generated certificates if --peer-key-file and --peer-cert-file are not provided.' },
  'peer-crl-file': { def: '', help: 'Path to the peer certificate revocation list file.' },
  'cipher-suites': { def: '', help: 'Comma-separated list of supported TLS cipher suites between client/server and peers (empty will be auto-populated by Node.js).' },
  'cors': { def: '*', help: 'Comma-separated whitelist of origins for CORS, or cross-origin resource sharing, (empty or * means allow all).',
    warn: 'is not implemented: etcd-ts sends no CORS headers, so browsers refuse every cross-origin response' },
  'host-whitelist': { def: '*', help: 'Acceptable hostnames from HTTP client requests, if server is not secure (empty or * means allow all).',
    refuse: 'is not implemented: etcd-ts would answer HTTP requests for any Host' },
  // Auth (issue 16)
  'auth-token': { def: 'simple', help: 'Specify a v3 authentication token type and its options (\'simple\' or \'jwt\').' },
  'bcrypt-cost': { def: '10', type: 'uint', help: 'Specify the cost / strength of the bcrypt algorithm for hashing auth passwords. Valid values are between 4 and 31.' },
  'auth-token-ttl': { def: '300', type: 'uint', help: 'Time (in seconds) of the auth-token-ttl.' },
  // Profiling and Monitoring
  'enable-pprof': { def: 'false', type: 'bool', help: 'Enable runtime profiling data via HTTP server (Go only: for Node.js use NODE_OPTIONS=--cpu-prof or npm run flamegraph).',
    warn: 'does not apply to Node.js: there is no /debug/pprof; profile with NODE_OPTIONS="--cpu-prof --cpu-prof-dir=DIR" (or --heap-prof), or `npm run flamegraph`' },
  'metrics': { def: 'basic', help: 'Set level of detail for exported metrics, specify \'extensive\' to include histogram metrics.' },
  'listen-metrics-urls': { def: '', help: 'List of URLs to listen on for the metrics and health endpoints.' },
  // Logging
  'logger': { def: 'capnslog', help: 'Specify \'zap\' for structured logging or \'capnslog\' (etcd-ts always writes zap\'s JSON lines).' },
  'log-outputs': { def: 'default', help: 'Specify \'stdout\' or \'stderr\' to skip journald logging even when running under systemd, or list of comma separated output targets (file paths).' },
  'log-level': { def: 'info', help: 'Configures log level. Only supports debug, info, warn, error, panic, or fatal.' },
  // v2 Proxy
  'proxy': { def: 'off', help: 'Proxy mode setting (\'off\', \'readonly\' or \'on\').',
    refuse: 'is not implemented: etcd-ts would run a member with a data dir instead of a v2 proxy' },
  'proxy-failure-wait': { def: '5000', type: 'uint', help: 'Time (in milliseconds) an endpoint will be held in a failed state.', warn: 'does not apply: etcd-ts has no v2 proxy' },
  'proxy-refresh-interval': { def: '30000', type: 'uint', help: 'Time (in milliseconds) of the endpoints refresh interval.', warn: 'does not apply: etcd-ts has no v2 proxy' },
  'proxy-dial-timeout': { def: '1000', type: 'uint', help: 'Time (in milliseconds) for a dial to timeout.', warn: 'does not apply: etcd-ts has no v2 proxy' },
  'proxy-write-timeout': { def: '5000', type: 'uint', help: 'Time (in milliseconds) for a write to timeout.', warn: 'does not apply: etcd-ts has no v2 proxy' },
  'proxy-read-timeout': { def: '0', type: 'uint', help: 'Time (in milliseconds) for a read to timeout.', warn: 'does not apply: etcd-ts has no v2 proxy' },
  // Experimental
  'experimental-initial-corrupt-check': { def: 'false', type: 'bool', help: 'Enable to check data corruption before serving any client/peer traffic.' },
  'experimental-corrupt-check-time': { def: '0s', type: 'duration', help: 'Duration of time between cluster corruption check passes.' },
  'experimental-enable-v2v3': { def: '', help: 'Serve v2 requests through the v3 backend under a given prefix.', warn: 'does not apply: etcd-ts serves only the v3 API' },
  'experimental-backend-bbolt-freelist-type': { def: 'array', help: 'ExperimentalBackendFreelistType specifies the type of freelist that boltdb backend uses(array and map are supported types).',
    warn: 'does not apply: etcd-ts stores its state in LMDB, not bbolt' },
  'experimental-enable-lease-checkpoint': { def: 'false', type: 'bool', help: 'Accepted for compatibility: etcd-ts always checkpoints the remaining TTL of leases nobody renews (see docs/LEASES.md).' },
  'experimental-compaction-batch-limit': { def: String(limits.compactionBatchRevisions), type: 'int', help: 'ExperimentalCompactionBatchLimit sets the maximum revisions deleted in each compaction batch.' },
  'experimental-peer-skip-client-san-verification': { def: 'false', type: 'bool', help: 'Skip verification of SAN field in client certificate for peer connections (etcd-ts checks no SAN of a peer\'s client certificate).' },
  'experimental-watch-progress-notify-interval': { def: '10m0s', type: 'duration', help: 'Duration of periodic watch progress notifications.' },
  'experimental-warning-apply-duration': { def: '100ms', type: 'duration', help: 'Warning is generated if requests take more than this duration.',
    warn: `${NOT_YET} etcd-ts does not log slow applies (see /metrics: etcd_disk_backend_commit_duration_seconds)` },
  // Unsafe
  'force-new-cluster': { def: 'false', type: 'bool', help: 'Force to create a new one-member cluster.' },
  // To be deprecated
  'debug': { def: 'false', type: 'bool', help: 'Enable debug-level logging for etcd. Use \'--log-level=debug\' instead.' },
  'log-package-levels': { def: '', help: 'Specify a particular log level for each etcd package (eg: \'etcdmain=CRITICAL,etcdserver=DEBUG\').',
    warn: 'does not apply: etcd-ts has one --log-level for every part' },
  // In etcd 3.4's flag set, not in its --help
  'config-file': { def: '', help: 'Path to the server configuration file (etcd\'s YAML). Other command line flags and environment variables are then ignored.' },
  'log-output': { def: 'default', help: 'Deprecated: use --log-outputs.' },
  'enable-grpc-gateway': { def: 'true', type: 'bool', help: 'Enable GRPC gateway (the HTTP/JSON API on the client URLs).' },
  'experimental-enable-lease-checkpoint-persist': { def: 'false', type: 'bool', help: 'Enable persisting remainingTTL to prevent indefinite auto-renewal of long lived leases (etcd-ts always does).' },
  'unsafe-no-fsync': { def: 'false', type: 'bool', help: 'Disables fsync, unsafe, will cause data loss.',
    warn: 'does not apply: etcd-ts always syncs its WAL before it answers a write' },
  // etcd-ts's own
  'listen-client-http-urls': { def: '', help: 'List of URLs to listen on for HTTP/JSON client traffic (uWebSockets.js): the JSON API, WebSocket API, /health, /livez, /readyz, /version, /metrics.' },
  'watch-batch-max-delay': { def: `${limits.watchBatchMaxDelayMs}ms`, type: 'duration', help: 'etcd-ts only: under heavy watch fan-out, the longest a fan-out pass waits so that each watcher gets one response for several revisions (0s: every revision is sent at once; see docs/ARCHITECTURE.md, Watch).' },
  'audit-log-path': { def: '', help: 'etcd-ts only: write the audit log (one JSON line per authenticated request, every auth change and failed login; docs/AUDIT.md) to this file, or to stdout with \'-\'. Empty: no audit log.' },
  'audit-log-max-size': { def: '100', type: 'uint', help: 'etcd-ts only: size in megabytes at which the audit log file is rotated (0: never).' },
  'audit-log-max-backups': { def: '10', type: 'uint', help: 'etcd-ts only: rotated audit log files kept (<path>.1 is the newest).' },
  'audit-log-mode': { def: 'batch', help: 'etcd-ts only: \'batch\' (lines are buffered and written off the request path; a full buffer drops lines and counts them) or \'blocking\' (a request is answered once its line is written).' },
};

/** etcd 3.4 accepts these (flags of etcd 2) and logs that it ignores them; they take no value. */
const IGNORED_FLAGS = [
  'cluster-active-size', 'cluster-remove-delay', 'cluster-sync-interval', 'config', 'force', 'max-result-buffer',
  'max-retry-attempts', 'peer-heartbeat-interval', 'peer-election-timeout', 'retry-interval', 'snapshot', 'v', 'vv',
  // for coverage of etcd 2's "etcd -peer-addr ..." style: etcd 3.4's list ends here
];

/** Every flag name etcd-ts accepts (etcd's, the ignored ones, and its own). */
export function flagNames(): string[] {
  return [...Object.keys(FLAGS), ...IGNORED_FLAGS, 'version', 'help'];
}

export class ConfigError extends Error {}

/** Where a value came from, for messages: etcd names the flag, the variable or the file. */
interface Given {
  value: string;
  /** '--name=value', 'ETCD_NAME=value' or 'name: value in etcd.conf.yml'. */
  where: string;
  /** For parse errors: 'flag -name' (Go's flag package) or 'ETCD_NAME' (etcd's env reader). */
  label: string;
}

/** What cli.ts logs once the logger exists (etcd logs these at start too). */
export interface StartupNote {
  level: 'info' | 'warn';
  msg: string;
  fields?: Record<string, unknown>;
}

export interface ParseOptions {
  /** Reads --config-file (tests pass their own). */
  readFile?: (path: string) => string;
}

/**
 * Parses argv (without node and script) and env as etcd 3.4 does: flags first, then ETCD_* variables for
 * the flags not given (a variable for a flag also given is refused, as etcd does), unknown ETCD_*
 * variables warned about; or, with --config-file (or ETCD_CONFIG_FILE), the YAML file alone.
 */
export function parseConfig(argv: string[], env: NodeJS.ProcessEnv, opts: ParseOptions = {}): Config | 'help' | 'version' {
  const notes: StartupNote[] = [];
  const flags = parseArgv(argv, notes);
  if (flags === 'help' || flags === 'version') return flags;
  const configFile = flags.get('config-file')?.value || (env.ETCD_CONFIG_FILE ?? '');
  let given: Map<string, Given>;
  if (configFile !== '') {
    given = fromConfigFile(configFile, opts.readFile ?? ((p) => fs.readFileSync(p, 'utf8')), notes);
    notes.push({ level: 'info', msg: 'loaded server configuration, other configuration command line flags and environment variables will be ignored if provided', fields: { path: configFile } });
  } else {
    given = fromEnv(flags, env, notes);
  }
  for (const [name, g] of given) checkSupport(name, g, notes);
  return build((name) => given.get(name)?.value ?? FLAGS[name].def, given, notes);
}

function parseArgv(argv: string[], notes: StartupNote[]): Map<string, Given> | 'help' | 'version' {
  const given = new Map<string, Given>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help' || arg === '-help') return 'help';
    if (arg === '--version' || arg === '-version') return 'version';
    const m = /^--?([a-z0-9-]+)(?:=(.*))?$/s.exec(arg);
    if (!m) throw new ConfigError(`'${arg}' is not a valid flag`);
    const name = m[1];
    if (IGNORED_FLAGS.includes(name)) {
      notes.push({ level: 'warn', msg: `flag "-${name}" is no longer supported - ignoring.` });
      continue;
    }
    const def = FLAGS[name];
    if (!def) throw new ConfigError(`flag provided but not defined: -${name}`);
    let value = m[2];
    if (value === undefined) {
      if (def.type === 'bool') value = 'true';
      else if (i + 1 < argv.length) value = argv[++i];
      else throw new ConfigError(`flag needs an argument: -${name}`);
    }
    given.set(name, { value: typed(name, value, `flag -${name}`), where: `--${name}=${value}`, label: `flag -${name}` });
  }
  return given;
}

/** etcd's pkg/flags SetFlagsFromEnv and verifyEnv. ETCD_TS_* are etcd-ts's test switches (shared/switches.ts). */
function fromEnv(flags: Map<string, Given>, env: NodeJS.ProcessEnv, notes: StartupNote[]): Map<string, Given> {
  const given = new Map(flags);
  const used = new Set<string>();
  const names = [...Object.keys(FLAGS), ...IGNORED_FLAGS, 'version'];
  const byKey = new Map(names.map((n) => [envKey(n), n]));
  for (const [key, name] of byKey) {
    const v = env[key];
    if (v === undefined) continue;
    if (flags.has(name)) {
      throw new ConfigError(`conflicting environment variable "${key}" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)`);
    }
    if (v === '') continue;
    used.add(key);
    if (name === 'version' || name === 'config-file') continue;
    if (IGNORED_FLAGS.includes(name)) {
      notes.push({ level: 'warn', msg: `flag "-${name}" is no longer supported - ignoring.` });
      continue;
    }
    given.set(name, { value: typed(name, v, key), where: `${key}=${v}`, label: key });
  }
  for (const [key, v] of Object.entries(env)) {
    if (key.startsWith('ETCD_') && !key.startsWith('ETCD_TS_') && !used.has(key) && !byKey.has(key)) {
      notes.push({ level: 'warn', msg: `unrecognized environment variable ${key}=${v ?? ''}` });
    }
  }
  return given;
}

function envKey(name: string): string {
  return 'ETCD_' + name.toUpperCase().replace(/-/g, '_');
}

/** etcd.conf.yml: the keys are the flag names; TLS files under client-transport-security and
 * peer-transport-security; durations as nanoseconds (Go's JSON for time.Duration) or as "5s". */
function fromConfigFile(file: string, readFile: (p: string) => string, notes: StartupNote[]): Map<string, Given> {
  let doc: Map<string, YamlValue>;
  try {
    doc = parseEtcdYaml(readFile(file));
  } catch (e) {
    throw new ConfigError(`--config-file ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const given = new Map<string, Given>();
  const set = (name: string, key: string, v: YamlValue): void => {
    if (v === null) return;
    if (v instanceof Map) throw new ConfigError(`--config-file ${file}: "${key}" is not a map`);
    const raw = Array.isArray(v) ? v.filter((x) => x !== null).join(',') : v;
    const label = `"${key}" in ${file}`;
    const value = FLAGS[name].type === 'duration' && /^-?\d+$/.test(raw) ? `${raw}ns` : yamlBool(name, raw);
    given.set(name, { value: typed(name, value, label), where: `${key}: ${raw} (${file})`, label });
  };
  for (const [key, v] of doc) {
    const prefix = key === 'client-transport-security' ? '' : key === 'peer-transport-security' ? 'peer-' : null;
    if (prefix !== null) {
      if (!(v instanceof Map)) throw new ConfigError(`--config-file ${file}: "${key}" must be a map`);
      for (const [sub, sv] of v) {
        const name = TRANSPORT_SECURITY_KEYS.includes(sub) ? `${prefix}${sub}` : null;
        if (name === null || !FLAGS[name]) notes.push({ level: 'warn', msg: `config file ${file}: unknown field "${key}.${sub}" ignored` });
        else set(name, `${key}.${sub}`, sv);
      }
    } else if (FLAGS[key] && key !== 'config-file') {
      set(key, key, v);
    } else {
      notes.push({ level: 'warn', msg: `config file ${file}: unknown field "${key}" ignored` });
    }
  }
  return given;
}

/** etcd 3.4's securityConfig (embed/config.go): the TLS keys its config file takes. */
const TRANSPORT_SECURITY_KEYS = ['cert-file', 'key-file', 'client-cert-auth', 'trusted-ca-file', 'auto-tls'];

/** YAML 1.1 (yaml.v2, etcd's reader) also spells booleans yes/no/on/off. */
function yamlBool(name: string, raw: string): string {
  if (FLAGS[name].type !== 'bool') return raw;
  if (/^(y|Y|yes|Yes|YES|on|On|ON)$/.test(raw)) return 'true';
  if (/^(n|N|no|No|NO|off|Off|OFF)$/.test(raw)) return 'false';
  return raw;
}

/** Checks a value against the flag's type as Go's flag package does; booleans come back as true/false. */
function typed(name: string, value: string, label: string): string {
  const bad = (): never => {
    throw new ConfigError(`invalid value "${value}" for ${label}: parse error`);
  };
  switch (FLAGS[name].type ?? 'string') {
    case 'bool':
      if (/^(1|t|T|TRUE|true|True)$/.test(value)) return 'true';
      if (/^(0|f|F|FALSE|false|False)$/.test(value)) return 'false';
      return bad();
    case 'uint':
      return /^\d+$/.test(value) ? value : bad();
    case 'int':
      return /^-?\d+$/.test(value) ? value : bad();
    case 'duration':
      return parseDurationMs(value) === null ? bad() : value;
    case 'string':
      return value;
  }
}

/** A flag etcd-ts does not honour: refused when its value would change what etcd guarantees, else one
 * warning line at start naming it and saying what etcd-ts does instead. The default value is honoured. */
function checkSupport(name: string, g: Given, notes: StartupNote[]): void {
  const def = FLAGS[name];
  if (!def.refuse && !def.warn) return;
  if (sameValue(name, g.value, def.def)) return;
  if (def.refuse) throw new ConfigError(`${g.where} refused: --${name} ${def.refuse}`);
  notes.push({ level: 'warn', msg: `${g.where}: --${name} ${def.warn ?? ''}`, fields: { flag: name } });
}

function sameValue(name: string, a: string, b: string): boolean {
  if (a === b) return true;
  if (FLAGS[name].type === 'duration') return parseDurationMs(a) === parseDurationMs(b);
  if (FLAGS[name].type === 'uint' || FLAGS[name].type === 'int') return Number(a) === Number(b);
  return false;
}

function build(get: (name: string) => string, given: Map<string, Given>, notes: StartupNote[]): Config {
  const label = (n: string): string => given.get(n)?.label ?? `flag -${n}`;
  const num = (n: string, min: number): number => int(label(n), get(n), min);
  const dur = (n: string): number => duration(label(n), get(n));
  const flag = (n: string): boolean => get(n) === 'true';
  const name = get('name');
  const initialAdvertisePeerUrls = list(get('initial-advertise-peer-urls'));
  // etcd: when --name is changed but --initial-cluster is not given, the cluster is this member alone.
  const clusterSpec = given.has('initial-cluster') ? get('initial-cluster')
    : `${name}=${initialAdvertisePeerUrls.join(`,${name}=`)}`;
  const cfg: Config = {
    name,
    dataDir: given.has('data-dir') ? get('data-dir') : `${name}.etcd`,
    walDir: get('wal-dir'),
    listenClientUrls: urls(label('listen-client-urls'), get('listen-client-urls')),
    advertiseClientUrls: list(get('advertise-client-urls')),
    listenPeerUrls: urls(label('listen-peer-urls'), get('listen-peer-urls')),
    initialAdvertisePeerUrls,
    initialCluster: parseInitialCluster(clusterSpec),
    initialClusterState: oneOf(label('initial-cluster-state'), get('initial-cluster-state'), ['new', 'existing'] as const),
    initialClusterToken: get('initial-cluster-token'),
    strictReconfigCheck: flag('strict-reconfig-check'),
    preVote: flag('pre-vote'),
    snapshotCount: num('snapshot-count', 1),
    maxWals: num('max-wals', 0),
    maxSnapshots: num('max-snapshots', 0),
    metricsExtensive: get('metrics') === 'extensive',
    heartbeatIntervalMs: num('heartbeat-interval', 1),
    electionTimeoutMs: num('election-timeout', 1),
    quotaBackendBytes: num('quota-backend-bytes', 0) || limits.quotaBackendBytes,
    maxRequestBytes: num('max-request-bytes', 1),
    maxTxnOps: num('max-txn-ops', 1),
    maxConcurrentStreams: Math.min(num('max-concurrent-streams', 1), 0xffffffff),
    grpcKeepaliveMinTimeMs: dur('grpc-keepalive-min-time'),
    grpcKeepaliveIntervalMs: dur('grpc-keepalive-interval'),
    grpcKeepaliveTimeoutMs: dur('grpc-keepalive-timeout'),
    autoCompactionMode: oneOf(label('auto-compaction-mode'), get('auto-compaction-mode'), ['periodic', 'revision'] as const),
    autoCompactionRetention: get('auto-compaction-retention'),
    compactionBatchLimit: Number(get('experimental-compaction-batch-limit')) > 0 ? Number(get('experimental-compaction-batch-limit')) : limits.compactionBatchRevisions,
    logLevel: flag('debug') ? 'debug' : oneOf(label('log-level'), get('log-level'), ['debug', 'info', 'warn', 'error', 'panic', 'fatal'] as const),
    logOutputs: logOutputs(get, given, notes),
    enableGrpcGateway: flag('enable-grpc-gateway'),
    listenClientHttpUrls: get('listen-client-http-urls') ? urls(label('listen-client-http-urls'), get('listen-client-http-urls')) : [],
    listenMetricsUrls: get('listen-metrics-urls') ? urls(label('listen-metrics-urls'), get('listen-metrics-urls')) : [],
    initialCorruptCheck: flag('experimental-initial-corrupt-check'),
    forceNewCluster: flag('force-new-cluster'),
    corruptCheckTimeMs: dur('experimental-corrupt-check-time'),
    watchProgressNotifyIntervalMs: dur('experimental-watch-progress-notify-interval'),
    watchBatchMaxDelayMs: dur('watch-batch-max-delay'),
    clientTls: tlsInfo('', get),
    peerTls: tlsInfo('peer-', get),
    notes,
    auth: authConfig(get, notes),
    audit: {
      path: get('audit-log-path'),
      maxSizeBytes: num('audit-log-max-size', 0) * 1024 * 1024,
      maxBackups: num('audit-log-max-backups', 0),
      mode: oneOf(label('audit-log-mode'), get('audit-log-mode'), ['batch', 'blocking'] as const),
    },
  };
  checkLogger(get('logger'), given, notes);
  if (flag('experimental-enable-lease-checkpoint-persist') && !flag('experimental-enable-lease-checkpoint')) {
    throw new ConfigError('setting experimental-enable-lease-checkpoint-persist requires experimental-enable-lease-checkpoint');
  }
  validate(cfg);
  return cfg;
}

/** etcd 3.4: 'capnslog' (its default) or 'zap'. etcd-ts writes zap's JSON lines either way. */
function checkLogger(logger: string, given: Map<string, Given>, notes: StartupNote[]): void {
  if (logger !== 'zap' && logger !== 'capnslog') throw new ConfigError(`unknown logger option "${logger}"`);
  const g = given.get('logger');
  if (g !== undefined && logger === 'capnslog') {
    notes.push({ level: 'warn', msg: `${g.where}: etcd-ts writes JSON lines as --logger=zap does, not capnslog's text`, fields: { flag: 'logger' } });
  }
}

/** --log-outputs (or the deprecated --log-output): 'default' and 'stderr' are stderr, 'stdout', or file
 * paths (appended to). etcd's 'default' is journald under systemd; etcd-ts writes stderr there. */
function logOutputs(get: (name: string) => string, given: Map<string, Given>, notes: StartupNote[]): string[] {
  let outputs = list(get('log-outputs'));
  const old = given.get('log-output');
  if (old !== undefined) {
    notes.push({ level: 'warn', msg: `${old.where}: deprecated, use --log-outputs`, fields: { flag: 'log-output' } });
    if (!given.has('log-outputs')) outputs = list(old.value);
  }
  if (outputs.length === 0) outputs = ['default'];
  return [...new Set(outputs.map((o) => (o === 'default' ? 'stderr' : o)))];
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
function authConfig(get: (name: string) => string, notes: StartupNote[]): AuthConfig {
  const spec = get('auth-token');
  const [type, ...opts] = spec.split(',');
  const invalid = (): ConfigError => new ConfigError(`--auth-token ${JSON.stringify(spec)}: auth: invalid auth options`);
  const options = new Map<string, string>();
  for (const o of opts) {
    const kv = o.split('=');
    if (kv.length !== 2 || options.has(kv[0])) throw invalid();
    options.set(kv[0], kv[1]);
  }
  if (type !== 'simple' && type !== 'jwt') throw invalid();
  let cost = int('bcrypt-cost', get('bcrypt-cost'), 0);
  if (cost < 4 || cost > 31) cost = limits.bcryptCost; // etcd: invalid cost -> bcrypt.DefaultCost, with a warning
  const tokenTtlMs = int('auth-token-ttl', get('auth-token-ttl'), 0) * 1000 || limits.simpleTokenTtlMs;
  if (type === 'simple') return { tokenType: 'simple', tokenTtlMs, bcryptCost: cost };
  return { tokenType: 'jwt', tokenTtlMs, bcryptCost: cost, jwt: jwtOptions(spec, options, notes) };
}

/** etcd's jwtOptions.ParseWithDefaults: a bad ttl or sign method is "auth: invalid auth options";
 * unknown options are only warned about. Key files are read later (member start), as etcd reads
 * them when the server starts. */
function jwtOptions(spec: string, options: Map<string, string>, notes: StartupNote[]): JwtOptions {
  const invalid = (why: string): ConfigError => new ConfigError(`--auth-token ${JSON.stringify(spec)}: auth: invalid auth options (${why})`);
  const ttl = options.get('ttl') ?? '';
  const ttlMs = ttl === '' ? limits.jwtTokenTtlMs : parseDurationMs(ttl);
  if (ttlMs === null) throw invalid(`time: invalid duration ${JSON.stringify(ttl)}`);
  const method = options.get('sign-method') ?? '';
  if (!(JWT_SIGN_METHODS as readonly string[]).includes(method)) throw invalid('auth: invalid auth signature method');
  const unknown = [...options.keys()].filter((k) => !['sign-method', 'pub-key', 'priv-key', 'ttl'].includes(k));
  if (unknown.length > 0) notes.push({ level: 'warn', msg: 'unknown JWT options', fields: { keys: unknown } });
  return { signMethod: method as JwtSignMethod, pubKeyFile: options.get('pub-key') ?? '', privKeyFile: options.get('priv-key') ?? '', ttlMs };
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
    clientCertAuth: get(`${p}client-cert-auth`) === 'true',
    crlFile: get(p === '' ? 'client-crl-file' : 'peer-crl-file'),
    allowedCn: p === '' ? '' : get('peer-cert-allowed-cn'),
    allowedHostname: get(p === '' ? 'client-cert-allowed-hostname' : 'peer-cert-allowed-hostname'),
    autoTls: get(`${p}auto-tls`) === 'true',
    cipherSuites,
  };
}

/** etcd's checks of URL schemes against the certificate flags. */
function validateTls(cfg: Config): void {
  for (const u of [...cfg.listenClientUrls, ...cfg.listenPeerUrls, ...cfg.listenClientHttpUrls, ...cfg.listenMetricsUrls]) {
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
    const urls = what === 'client' ? [...cfg.listenClientUrls, ...cfg.listenClientHttpUrls, ...cfg.listenMetricsUrls] : cfg.listenPeerUrls;
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
function duration(label: string, s: string): number {
  const ms = parseDurationMs(s);
  if (ms === null) throw new ConfigError(`invalid value "${s}" for ${label}: parse error`);
  return ms;
}

function list(s: string): string[] {
  return s.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
}

function urls(label: string, s: string): URL[] {
  return list(s).map((x) => {
    try {
      const u = new URL(x);
      if (!u.port) throw new Error('no port');
      return u;
    } catch {
      throw new ConfigError(`invalid URL "${x}" in ${label.replace(/^flag -/, '--')}`);
    }
  });
}

function int(label: string, s: string, min: number): number {
  const n = Number(s);
  if (!/^\d+$/.test(s.trim()) || !Number.isSafeInteger(n) || n < min) throw new ConfigError(`invalid value "${s}" for ${label}`);
  return n;
}

function oneOf<T extends string>(label: string, s: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(s)) throw new ConfigError(`invalid value "${s}" for ${label}: one of ${allowed.join('|')}`);
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
    const note = d.refuse ? ` (etcd-ts refuses a value other than the default: --${name} ${d.refuse})` : d.warn ? ` (etcd-ts: --${name} ${d.warn})` : '';
    lines.push(`  --${name} '${d.def}'`, `      ${d.help}${note}`);
  }
  return lines.join('\n');
}
