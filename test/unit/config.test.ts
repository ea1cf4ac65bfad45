// Checks etcd's flag handling (defaults, --flag value / --flag=value / -flag, ETCD_* env, refusal
// of unknown and unsupported flags) and etcd's member/cluster ID derivation, against values
// printed by Debian's etcd 3.4 for its default single-member configuration.
import { strict as assert } from 'node:assert';
import { ConfigError, parseConfig, parseDurationMs, parseRetentionMs, Config } from '../../src/main/config';
import { computeClusterId, computeMemberId, idToHex } from '../../src/shared/ids';
import { deriveLimits, limitProblems, limits, requestBytesCeiling } from '../../src/shared/limits';

function cfg(argv: string[], env: NodeJS.ProcessEnv = {}): Config {
  const c = parseConfig(argv, env);
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
  it('accepts --flag value, --flag=value, -flag and ETCD_* env, flags winning', () => {
    const c = cfg(['--name', 'm1', '-max-txn-ops=7', '--initial-advertise-peer-urls=http://127.0.0.1:2380'],
      { ETCD_NAME: 'envname', ETCD_SNAPSHOT_COUNT: '42' });
    assert.equal(c.name, 'm1');
    assert.equal(c.dataDir, 'm1.etcd');
    assert.equal(c.maxTxnOps, 7);
    assert.equal(c.snapshotCount, 42);
    assert.deepEqual([...c.initialCluster], [['m1', ['http://127.0.0.1:2380']]]);
  });
  it('refuses unknown flags like Go flag does', () => {
    assert.throws(() => cfg(['--no-such-flag', 'x']), (e: Error) => e instanceof ConfigError && /flag provided but not defined: -no-such-flag/.test(e.message));
  });
  it('refuses flags it does not implement yet instead of ignoring them', () => {
    assert.throws(() => cfg(['--listen-metrics-urls', 'http://127.0.0.1:8080']), /not implemented/);
    assert.throws(() => cfg(['--log-outputs', '/var/log/etcd.log']), /only 'default' or 'stderr'/);
    assert.throws(() => cfg(['--logger', 'capnslog']), /only 'zap'/);
    assert.doesNotThrow(() => cfg(['--logger', 'zap', '--log-outputs', 'stderr']));
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
