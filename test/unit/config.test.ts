// Checks etcd's flag handling (defaults, --flag value / --flag=value / -flag, ETCD_* env as etcd 3.4
// reads it, the YAML config file, refusal of unknown flags, a warning or a refusal for each flag etcd-ts
// does not honour) and etcd's member/cluster ID derivation, against values printed by Debian's etcd 3.4
// for its default single-member configuration. The flag table is compared with `etcd --help` of the
// installed etcd 3.4 (CI installs it), so a flag etcd has and etcd-ts lacks fails here.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { ConfigError, flagNames, parseConfig, parseDurationMs, parseRetentionMs, Config, ParseOptions, usage } from '../../src/main/config';
import { computeClusterId, computeMemberId, idToHex } from '../../src/shared/ids';
import { deriveLimits, limitProblems, limits, requestBytesCeiling } from '../../src/shared/limits';

function cfg(argv: string[], env: NodeJS.ProcessEnv = {}, opts: ParseOptions = {}): Config {
  const c = parseConfig(argv, env, opts);
  if (typeof c === 'string') throw new Error('unexpected ' + c);
  return c;
}

describe('config: etcd flags', () => {
  it('has etcd defaults', () => {
    const c = cfg([]);
    assert.equal(c.name, 'default');
    assert.equal(c.dataDir, 'default.etcd');
    assert.equal(c.listenClientUrls[0].href, 'http://localhost:2379/');
    assert.equal(c.initialClusterToken, 'etcd-cluster');
    assert.equal(c.snapshotCount, 100000);
    assert.equal(c.heartbeatIntervalMs, 100);
    assert.equal(c.electionTimeoutMs, 1000);
    assert.equal(c.maxRequestBytes, 1572864);
    assert.equal(c.maxTxnOps, 128);
    assert.deepEqual([...c.initialCluster], [['default', ['http://localhost:2380']]]);
  });
  it('accepts --flag value, --flag=value, -flag and ETCD_* env', () => {
    const c = cfg(['--name', 'm1', '-max-txn-ops=7', '--initial-advertise-peer-urls=http://127.0.0.1:2380'],
      { ETCD_SNAPSHOT_COUNT: '42', ETCD_PRE_VOTE: 'true', ETCD_TS_WAL_SYNC_DELAY_MS: '1', ETCD_AUTO_TLS: '' });
    assert.equal(c.name, 'm1');
    assert.equal(c.dataDir, 'm1.etcd');
    assert.equal(c.maxTxnOps, 7);
    assert.equal(c.snapshotCount, 42);
    assert.equal(c.preVote, true);
    assert.deepEqual([...c.initialCluster], [['m1', ['http://127.0.0.1:2380']]]);
    assert.deepEqual(c.notes, [], 'ETCD_TS_* (our switches) and empty variables raise no warning');
  });
  it('reads ETCD_* as etcd 3.4 does: unknown ones warned about, bad values and conflicts refused with its text', () => {
    // Texts printed by etcd 3.4.23 (pkg/flags): `ETCD_FOO=bar etcd`, `ETCD_SNAPSHOT_COUNT=abc etcd`, `ETCD_NAME=x etcd --name y`.
    assert.deepEqual(cfg([], { ETCD_FOO: 'bar' }).notes, [{ level: 'warn', msg: 'unrecognized environment variable ETCD_FOO=bar' }]);
    assert.throws(() => cfg([], { ETCD_SNAPSHOT_COUNT: 'abc' }), /^Error: invalid value "abc" for ETCD_SNAPSHOT_COUNT: parse error$/);
    assert.throws(() => cfg([], { ETCD_PRE_VOTE: 'maybe' }), /^Error: invalid value "maybe" for ETCD_PRE_VOTE: parse error$/);
    assert.throws(() => cfg([], { ETCD_INITIAL_CLUSTER_STATE: 'old' }), /invalid value "old" for ETCD_INITIAL_CLUSTER_STATE/);
    assert.throws(() => cfg(['--name', 'y'], { ETCD_NAME: 'x' }),
      /^Error: conflicting environment variable "ETCD_NAME" is shadowed by corresponding command-line flag \(either unset environment variable or disable flag\)$/);
    assert.throws(() => cfg(['--snapshot-count', 'abc']), /^Error: invalid value "abc" for flag -snapshot-count: parse error$/);
  });
  it('refuses unknown flags like Go flag does', () => {
    assert.throws(() => cfg(['--no-such-flag', 'x']), (e: Error) => e instanceof ConfigError && /flag provided but not defined: -no-such-flag/.test(e.message));
  });
  it('every flag of etcd 3.4 --help is in the table (when /usr/bin/etcd is installed, as in CI)', function () {
    if (!fs.existsSync('/usr/bin/etcd')) this.skip();
    // etcd prints its help on stdout and exits 0.
    const help = execFileSync('/usr/bin/etcd', ['--help'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const theirs = [...help.matchAll(/^\s+--([a-z0-9-]+)/gm)].map((m) => m[1]);
    assert.ok(theirs.length >= 80, `parsed ${theirs.length} flags from etcd --help`);
    const ours = new Set(flagNames());
    assert.deepEqual(theirs.filter((f) => !ours.has(f)), [], 'etcd 3.4 flags missing from etcd-ts');
    const shown = usage();
    assert.deepEqual(theirs.filter((f) => f !== 'help' && f !== 'version' && f !== 'config-file' && !shown.includes(`--${f} '`)), [],
      'etcd-ts --help lists them');
  });
  it('every flag of etcd 3.4 starts with its default value and no warning', () => {
    const all = flagNames().filter((f) => !['help', 'version', 'config-file'].includes(f) && f.length > 2);
    assert.deepEqual(cfg([]).notes, []);
    // Each flag given explicitly with etcd's default (bool flags with =false/=true) is accepted silently.
    const defaults: Record<string, string> = {
      'max-snapshots': '5', 'max-wals': '5', 'backend-batch-interval': '0s', 'backend-batch-limit': '0', 'discovery-fallback': 'proxy',
      'cors': '*', 'host-whitelist': '*', 'auth-token': 'simple', 'bcrypt-cost': '10', 'auth-token-ttl': '300', 'metrics': 'basic',
      'proxy': 'off', 'experimental-corrupt-check-time': '0s', 'force-new-cluster': 'false', 'enable-pprof': 'false', 'enable-v2': 'false',
      'experimental-initial-corrupt-check': 'false', 'unsafe-no-fsync': 'false', 'grpc-keepalive-interval': '2h', 'logger': 'zap',
    };
    for (const [f, v] of Object.entries(defaults)) assert.deepEqual(cfg([`--${f}=${v}`]).notes, [], f);
    assert.ok(all.length > 80);
  });
  it('a flag it does not honour is accepted with one warning naming it and what etcd-ts does instead', () => {
    const notes = (argv: string[]) => cfg(argv).notes.map((n) => n.msg);
    assert.deepEqual(notes(['--backend-batch-limit', '10']), ['--backend-batch-limit=10: --backend-batch-limit does not apply: etcd-ts commits one LMDB transaction per batch of applied entries']);
    assert.deepEqual(notes(['--max-wals', '10', '--max-snapshots', '0']), [], '--max-wals and --max-snapshots are honoured');
    assert.deepEqual([cfg(['--max-wals', '0']).maxWals, cfg([]).maxWals, cfg(['--max-snapshots', '2']).maxSnapshots], [0, 5, 2]);
    assert.deepEqual(notes(['--listen-metrics-urls', 'http://127.0.0.1:2381']), [], '--listen-metrics-urls is honoured');
    assert.deepEqual(cfg(['--listen-metrics-urls', 'http://127.0.0.1:2381,http://127.0.0.1:2382']).listenMetricsUrls.map((u) => u.port), ['2381', '2382']);
    assert.throws(() => cfg(['--listen-metrics-urls', 'https://127.0.0.1:2381']), /TLS key\/cert \(--cert-file, --key-file\) must be provided for client url https:\/\/127.0.0.1:2381/);
    assert.deepEqual(notes(['--experimental-initial-corrupt-check', '--experimental-corrupt-check-time', '1m']), [], 'corruption checks are honoured');
    const cc = cfg(['--experimental-initial-corrupt-check', '--experimental-corrupt-check-time', '1m']);
    assert.deepEqual([cc.initialCorruptCheck, cc.corruptCheckTimeMs], [true, 60_000]);
    assert.match(notes(['--enable-pprof'])[0], /^--enable-pprof=true: .*--cpu-prof/);
    assert.deepEqual(notes(['--auth-token', 'simple', '--bcrypt-cost', '12', '--auth-token-ttl', '60']), [], 'auth flags are honoured (issue 16)');
    assert.throws(() => cfg(['--auth-token', 'jwt,pub-key=a']), /auth: invalid auth options \(auth: invalid auth signature method\)/);
    assert.throws(() => cfg(['--auth-token', 'jwt,sign-method=RS256,ttl=10']), /auth: invalid auth options \(time: invalid duration "10"\)/);
    assert.throws(() => cfg(['--auth-token', 'jwt,sign-method=none']), /auth: invalid auth signature method/);
    assert.throws(() => cfg(['--auth-token', 'jwt,sign-method=RS256,ttl=1m,ttl=2m']), /auth: invalid auth options/);
    assert.throws(() => cfg(['--auth-token', 'oauth']), /auth: invalid auth options/);
    const j = cfg(['--auth-token', 'jwt,pub-key=p.pem,priv-key=k.pem,sign-method=ES384,ttl=10m']).auth;
    assert.deepEqual(j.jwt, { signMethod: 'ES384', pubKeyFile: 'p.pem', privKeyFile: 'k.pem', ttlMs: 600_000 });
    assert.equal(j.tokenType, 'jwt');
    assert.equal(cfg(['--auth-token', 'jwt,sign-method=HS256,priv-key=s']).auth.jwt?.ttlMs, 300_000, "etcd's default JWT ttl is 5m");
    assert.deepEqual(cfg(['--auth-token', 'jwt,sign-method=RS256,priv-key=k,colour=blue']).notes, [{ level: 'warn', msg: 'unknown JWT options', fields: { keys: ['colour'] } }]);
    assert.deepEqual(notes(['--metrics', 'extensive']), [], '--metrics is honoured');
    assert.deepEqual([cfg(['--metrics', 'extensive']).metricsExtensive, cfg([]).metricsExtensive, cfg(['--metrics', 'other']).metricsExtensive], [true, false, false]);
    assert.match(notes(['--logger', 'capnslog'])[0], /--logger=capnslog: etcd-ts writes JSON lines as --logger=zap does/);
    assert.deepEqual(notes(['-v']), ['flag "-v" is no longer supported - ignoring.'], 'etcd 2 flags, as etcd 3.4');
    assert.match(cfg(['--backend-batch-limit', '0', '--backend-batch-interval', '1s']).notes[0].msg, /--backend-batch-interval=1s/);
    assert.deepEqual(cfg(['--unsafe-no-fsync']).notes[0].fields, { flag: 'unsafe-no-fsync' });
    assert.throws(() => cfg(['--logger', 'syslog']), /^Error: unknown logger option "syslog"$/);
  });
  it('a value that would weaken what etcd guarantees is refused, not ignored', () => {
    assert.equal(cfg(['--force-new-cluster']).forceNewCluster, true); // implemented: etcd's disaster recovery
    assert.throws(() => cfg(['--discovery', 'https://discovery.etcd.io/x']), /refused: --discovery is not implemented/);
    assert.throws(() => cfg(['--discovery-srv', 'example.com']), /refused/);
    assert.throws(() => cfg(['--proxy', 'on']), /refused/);
    assert.throws(() => cfg(['--host-whitelist', 'example.com']), /refused/);
    assert.equal(cfg([], { ETCD_FORCE_NEW_CLUSTER: 'true' }).forceNewCluster, true);
    assert.doesNotThrow(() => cfg(['--force-new-cluster=false', '--experimental-corrupt-check-time=0s']));
  });
  it('honours --pre-vote, --wal-dir, --grpc-keepalive-*, --log-outputs, --debug, --enable-grpc-gateway, --experimental-compaction-batch-limit', () => {
    const d = cfg([]);
    assert.deepEqual([d.preVote, d.walDir, d.grpcKeepaliveMinTimeMs, d.grpcKeepaliveIntervalMs, d.grpcKeepaliveTimeoutMs, d.logOutputs, d.enableGrpcGateway, d.compactionBatchLimit],
      [false, '', 5000, 7_200_000, 20_000, ['stderr'], true, 1000]);
    const c = cfg(['--pre-vote', '--wal-dir', '/ssd/wal', '--grpc-keepalive-min-time=1s', '--grpc-keepalive-interval', '0', '--grpc-keepalive-timeout=1m',
      '--log-outputs', 'stdout,/var/log/etcd.log,stdout', '--debug', '--enable-grpc-gateway=false', '--experimental-compaction-batch-limit', '50']);
    assert.deepEqual([c.preVote, c.walDir, c.grpcKeepaliveMinTimeMs, c.grpcKeepaliveIntervalMs, c.grpcKeepaliveTimeoutMs, c.logOutputs, c.logLevel, c.enableGrpcGateway, c.compactionBatchLimit],
      [true, '/ssd/wal', 1000, 0, 60_000, ['stdout', '/var/log/etcd.log'], 'debug', false, 50]);
    const old = cfg(['--log-output', 'stdout']);
    assert.deepEqual(old.logOutputs, ['stdout']);
    assert.match(old.notes[0].msg, /deprecated, use --log-outputs/);
    assert.throws(() => cfg(['--grpc-keepalive-min-time', '5']), /invalid value "5" for flag -grpc-keepalive-min-time: parse error/);
    assert.throws(() => cfg(['--experimental-enable-lease-checkpoint-persist']), /requires experimental-enable-lease-checkpoint/);
  });
  it('--config-file (or ETCD_CONFIG_FILE): etcd\'s YAML, the flags and variables then ignored', () => {
    const yaml = [
      '# This is the configuration file for the etcd server.',
      'name: \'m1\'',
      'data-dir: /var/lib/etcd   # comment',
      'wal-dir:',
      'snapshot-count: 10000',
      'heartbeat-interval: 100',
      'election-timeout: 1000',
      'listen-peer-urls: http://127.0.0.1:2380',
      'listen-client-urls: "http://127.0.0.1:2379,http://127.0.0.1:22379"',
      'initial-advertise-peer-urls: http://127.0.0.1:2380',
      'advertise-client-urls: http://127.0.0.1:2379',
      'initial-cluster: m1=http://127.0.0.1:2380',
      'initial-cluster-state: \'new\'',
      'strict-reconfig-check: false',
      'pre-vote: yes',
      'grpc-keepalive-min-time: 1000000000',
      'cipher-suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]',
      'client-transport-security:',
      '  cert-file: /etc/etcd/server.crt',
      '  key-file: /etc/etcd/server.key',
      '  client-cert-auth: true',
      '  trusted-ca-file: /etc/etcd/ca.crt',
      '  auto-tls: false',
      'peer-transport-security:',
      '  auto-tls: true',
      'log-outputs:',
      '  - stderr',
      'max-wals: 7',
      'no-such-field: 1',
    ].join('\n');
    const read = (p: string): string => { assert.equal(p, '/etc/etcd.yml'); return yaml; };
    for (const c of [cfg(['--config-file', '/etc/etcd.yml', '--name', 'ignored'], {}, { readFile: read }),
      cfg([], { ETCD_CONFIG_FILE: '/etc/etcd.yml', ETCD_NAME: 'ignored', ETCD_TYPO: 'x' }, { readFile: read })]) {
      assert.equal(c.name, 'm1');
      assert.equal(c.dataDir, '/var/lib/etcd');
      assert.equal(c.walDir, '');
      assert.equal(c.snapshotCount, 10000);
      assert.deepEqual(c.listenClientUrls.map((u) => u.port), ['2379', '22379']);
      assert.equal(c.strictReconfigCheck, false);
      assert.equal(c.preVote, true);
      assert.equal(c.grpcKeepaliveMinTimeMs, 1000, 'a time.Duration in Go\'s JSON is nanoseconds');
      assert.deepEqual([c.clientTls.certFile, c.clientTls.clientCertAuth, c.clientTls.trustedCaFile, c.peerTls.autoTls], ['/etc/etcd/server.crt', true, '/etc/etcd/ca.crt', true]);
      assert.equal(c.clientTls.cipherSuites.length, 2);
      assert.deepEqual(c.notes.map((n) => n.msg), [
        'config file /etc/etcd.yml: unknown field "no-such-field" ignored',
        'loaded server configuration, other configuration command line flags and environment variables will be ignored if provided',
      ]);
      assert.equal(c.maxWals, 7);
    }
    assert.throws(() => cfg(['--config-file', 'x.yml'], {}, { readFile: () => 'snapshot-count: lots' }), /invalid value "lots" for "snapshot-count" in x.yml: parse error/);
    assert.throws(() => cfg(['--config-file', 'x.yml'], {}, { readFile: () => 'a:\n  b:\n    c: 1' }), /--config-file x.yml: line 3: nesting deeper/);
    assert.throws(() => cfg(['--config-file', 'x.yml'], {}, { readFile: () => 'proxy: on' }), /refused/);
    assert.throws(() => cfg(['--config-file', '/no/such.yml']), /ENOENT/);
  });
  it('takes --listen-client-http-urls (the uWebSockets.js HTTP/JSON port), https:// with what SSLApp supports', () => {
    const c = cfg(['--listen-client-http-urls', 'http://127.0.0.1:8080,http://localhost:8081']);
    assert.deepEqual(c.listenClientHttpUrls.map((u) => u.href), ['http://127.0.0.1:8080/', 'http://localhost:8081/']);
    assert.deepEqual(cfg([]).listenClientHttpUrls, []);
    assert.doesNotThrow(() => cfg(['--listen-client-http-urls', 'https://127.0.0.1:8080', '--auto-tls']));
    assert.throws(() => cfg(['--listen-client-http-urls', 'https://127.0.0.1:8080', '--cert-file', 'a', '--key-file', 'b', '--client-crl-file', 'c']),
      /--client-cert-auth, --client-crl-file and --client-cert-allowed-hostname are not supported on the uWebSockets.js port/);
    assert.throws(() => cfg(['--listen-client-http-urls', 'https://127.0.0.1:8080', '--cert-file', 'a', '--key-file', 'b', '--client-cert-auth']),
      /cannot require a client certificate/);
  });
  it('takes etcd 3.4\'s TLS flags and ETCD_* variables, and checks them against https:// URLs as etcd', () => {
    const c = cfg(['--cert-file', 's.crt', '--key-file', 's.key', '--client-cert-auth', '--trusted-ca-file', 'ca.crt',
      '--listen-client-urls', 'https://127.0.0.1:2379', '--peer-auto-tls', '--peer-cert-allowed-cn', 'm1',
      '--cipher-suites', 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384'],
    { ETCD_CLIENT_CRL_FILE: 'crl.pem', ETCD_PEER_CLIENT_CERT_AUTH: 'true' });
    assert.deepEqual(
      { cert: c.clientTls.certFile, key: c.clientTls.keyFile, ca: c.clientTls.trustedCaFile, auth: c.clientTls.clientCertAuth, crl: c.clientTls.crlFile },
      { cert: 's.crt', key: 's.key', ca: 'ca.crt', auth: true, crl: 'crl.pem' });
    assert.deepEqual({ auto: c.peerTls.autoTls, auth: c.peerTls.clientCertAuth, cn: c.peerTls.allowedCn }, { auto: true, auth: true, cn: 'm1' });
    assert.equal(c.peerTls.cipherSuites.length, 2);
    assert.throws(() => cfg(['--listen-client-urls', 'https://127.0.0.1:2379']),
      /^Error: TLS key\/cert \(--cert-file, --key-file\) must be provided for client url https:\/\/127\.0\.0\.1:2379 with HTTPS scheme$/);
    assert.throws(() => cfg(['--listen-peer-urls', 'https://127.0.0.1:2380']), /--peer-cert-file, --peer-key-file\) must be provided for peer url/);
    assert.doesNotThrow(() => cfg(['--listen-client-urls', 'https://127.0.0.1:2379', '--auto-tls']));
    assert.throws(() => cfg(['--key-file', 's.key']), /--cert-file and --key-file must be given together/);
    assert.throws(() => cfg(['--cipher-suites', 'RC4']), /unexpected TLS cipher suite "RC4"/);
    assert.throws(() => cfg(['--listen-client-urls', 'unix://x:1']), /only http:\/\/ and https:\/\//);
  });
  it('validates values and the election/heartbeat relation', () => {
    assert.throws(() => cfg(['--max-txn-ops', 'abc']), /invalid value "abc" for flag -max-txn-ops/);
    assert.throws(() => cfg(['--election-timeout', '300']), /at least as 5 times/);
    assert.throws(() => cfg(['--log-level', 'chatty']), /invalid value/);
  });
  it('reads the audit log flags (etcd-ts only) from flags and ETCD_AUDIT_LOG_*', () => {
    assert.deepEqual(cfg([]).audit, { path: '', maxSizeBytes: 100 * 1024 * 1024, maxBackups: 10, mode: 'batch' });
    const c = cfg(['--audit-log-path', '/var/log/etcd-audit.log', '--audit-log-max-size', '5'],
      { ETCD_AUDIT_LOG_MAX_BACKUPS: '3', ETCD_AUDIT_LOG_MODE: 'blocking' });
    assert.deepEqual(c.audit, { path: '/var/log/etcd-audit.log', maxSizeBytes: 5 * 1024 * 1024, maxBackups: 3, mode: 'blocking' });
    assert.equal(cfg(['--audit-log-path', '-']).audit.path, '-');
    assert.throws(() => cfg(['--audit-log-mode', 'async']), /invalid value "async" for flag -audit-log-mode: one of batch\|blocking/);
    assert.throws(() => cfg(['--audit-log-max-size', '-1']), /invalid value "-1" for flag -audit-log-max-size/);
    assert.deepEqual(cfg(['--audit-log-path', 'a.log']).notes, [], 'honoured: no warning');
  });
  it('parses auto-compaction retention', () => {
    assert.equal(parseRetentionMs('1'), 3_600_000);
    assert.equal(parseRetentionMs('1h30m'), 5_400_000);
    assert.equal(parseRetentionMs('90s'), 90_000);
    assert.equal(parseRetentionMs('bogus'), null);
    assert.throws(() => cfg(['--auto-compaction-mode', 'revision', '--auto-compaction-retention', '1h']), /invalid --auto-compaction-retention/);
  });
  it('parses Go durations for the watch flags (etcd 3.4\'s progress interval, etcd-ts\'s batch delay)', () => {
    assert.equal(parseDurationMs('10m0s'), 600_000);
    assert.equal(parseDurationMs('20ms'), 20);
    assert.equal(parseDurationMs('1.5s'), 1500);
    assert.equal(parseDurationMs('250us'), 0.25);
    assert.equal(parseDurationMs('0'), 0);
    assert.equal(parseDurationMs('20'), null, 'a bare number other than 0 has no unit (Go: missing unit)');
    assert.equal(parseDurationMs('5x'), null);
    const d = cfg([]);
    assert.equal(d.watchProgressNotifyIntervalMs, 600_000);
    assert.equal(d.watchBatchMaxDelayMs, 20);
    const c = cfg(['--experimental-watch-progress-notify-interval', '2s'], { ETCD_WATCH_BATCH_MAX_DELAY: '0s' });
    assert.equal(c.watchProgressNotifyIntervalMs, 2000);
    assert.equal(c.watchBatchMaxDelayMs, 0);
    assert.throws(() => cfg(['--watch-batch-max-delay', 'soon']), /invalid value "soon" for flag -watch-batch-max-delay/);
  });
});

describe('ids: etcd member and cluster ID derivation', () => {
  it('matches etcd 3.4 for the default single member', () => {
    const m = computeMemberId(['http://localhost:2380'], 'etcd-cluster');
    assert.equal(idToHex(m), '8e9e05c52164694d');
    assert.equal(idToHex(computeClusterId([m])), 'cdf818194e3a8c32');
  });
  it('depends on the token and sorts peer URLs', () => {
    const a = computeMemberId(['http://b:2380', 'http://a:2380'], 't');
    assert.equal(a, computeMemberId(['http://a:2380', 'http://b:2380'], 't'));
    assert.notEqual(a, computeMemberId(['http://a:2380', 'http://b:2380'], 'u'));
  });
});

// Limits derived from the configuration (src/shared/limits.ts deriveLimits): every size that holds a
// largest request grows with --max-request-bytes, the result keeps every relation, and a value past
// what etcd-ts can hold is refused at start with a message, not a hang on a full ring.
describe('config: limits derived from the flags', () => {
  it('the defaults derive the default table', () => {
    const l = deriveLimits(cfg([]));
    assert.equal(l.requestBytesMax, limits.requestBytesMax);
    assert.equal(l.ringBytes, limits.ringBytes);
    assert.equal(l.peerFrameBytesMax, limits.peerFrameBytesMax);
    assert.deepEqual(limitProblems(l), []);
    assert.ok(Object.isFrozen(l));
  });
  it('a 100 MiB --max-request-bytes grows the rings, WAL batch, peer frames and WebSocket cap', () => {
    const l = deriveLimits(cfg(['--max-request-bytes', String(100 * 1024 * 1024)]));
    const msg = 100 * 1024 * 1024 + limits.grpcOverheadBytes;
    assert.equal(l.ringBytes, 2 * msg);
    assert.equal(l.watchResponseRingBytes, 4 * msg);
    assert.equal(l.walBatchBytesMax, msg);
    assert.equal(l.peerFrameBytesMax, 2 * msg);
    assert.ok(l.peerQueueBytesMax >= l.peerFrameBytesMax);
    assert.deepEqual(limitProblems(l), []);
  });
  it('refuses --max-request-bytes past the ceiling with one clear message', () => {
    assert.throws(() => cfg(['--max-request-bytes', String(requestBytesCeiling + 1)]),
      (e: unknown) => e instanceof ConfigError && /--max-request-bytes \d+ is larger than etcd-ts accepts/.test(e.message));
    assert.throws(() => deriveLimits({ ...cfg([]), maxRequestBytes: requestBytesCeiling + 1 }), RangeError);
  });
  it('a table that breaks a relation names it', () => {
    assert.deepEqual(limitProblems({ ...limits, ringBytes: 1024 }), ['ringBytes must hold two max requests']);
  });
});
