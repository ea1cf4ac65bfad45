// Every size, count and timeout in one place, unit last. Relationships are asserted at load.
// `limits` holds the defaults. A member runs with deriveLimits(flags): the same table with the flags'
// values (--max-request-bytes, --max-txn-ops, ...) and every size that must hold the largest request
// grown to fit it, checked once at start-up (a flag that would break a relation is refused there, with
// a message) and frozen; the member passes those values to the parts it builds.
import { assert } from './errors';

export const limits = {
  /** etcd --max-request-bytes default: 1.5 MiB. */
  requestBytesMax: 1.5 * 1024 * 1024,
  /** grpc-go in etcd accepts requestBytesMax plus this overhead before refusing the frame. */
  grpcOverheadBytes: 512 * 1024,
  /** etcd --max-txn-ops default. */
  txnOpsMax: 128,
  /** etcd --quota-backend-bytes default: 2 GiB. */
  quotaBackendBytes: 2 * 1024 * 1024 * 1024,
  /** Entry bytes the apply worker keeps while Defragment copies the store (replayed into the copy
   *  before the switch); past this the defragmentation fails and the member carries on. */
  defragKeptEntryBytesMax: 256 * 1024 * 1024,
  /** How stale the database size used for the quota check may be. */
  quotaSampleMs: 100,
  /** etcd's bcrypt cost for stored passwords (--bcrypt-cost default, bcrypt.DefaultCost). */
  bcryptCost: 10,
  /** etcd's simple token TTL (--auth-token-ttl default 300 s), renewed on every use. */
  simpleTokenTtlMs: 300_000,
  /** How often expired simple tokens are dropped (etcd's simpleTokenTTLResolution). */
  simpleTokenSweepMs: 1000,
  /** etcd's JWT lifetime when --auth-token jwt,... gives no ttl (auth/options.go DefaultTTL, 5m). */
  jwtTokenTtlMs: 300_000,
  /** Simple tokens held at once per member; past it the oldest is dropped (etcd keeps them unbounded). */
  simpleTokensMax: 1_000_000,
  /** etcd --snapshot-count default. */
  snapshotCount: 100_000,
  /** etcd --heartbeat-interval and --election-timeout defaults. */
  heartbeatIntervalMs: 100,
  electionTimeoutMs: 1000,
  /** Bytes of one main->apply ring and of one apply->main ring. */
  ringBytes: 64 * 1024 * 1024,
  /** Proposals waiting for commit+apply; a full queue answers "too many requests". */
  pendingProposalsMax: 100_000,
  /** Linearizable reads waiting for a ReadIndex; a full queue answers "too many requests". */
  pendingReadsMax: 100_000,
  /** Entries in one apply batch (one LMDB write transaction). */
  applyBatchEntriesMax: 4096,
  /** Bytes of WAL records in one group-commit write. */
  walBatchBytesMax: 16 * 1024 * 1024,
  /** WAL segment size before cutting a new file (etcd: 64 MB). Smaller segments bound what a
   * restart must read past the last snapshot marker (replay parses about 140 MB/s here). */
  walSegmentBytes: 16 * 1024 * 1024,
  /** Zeros the WAL writes ahead of its records, a chunk at a time (page cache, not synced): a durable
   * (O_DSYNC) write into space that already exists changes no file size, so it needs no journal commit
   * of its own (etcd preallocates its segments with fallocate for the same reason). */
  walPreallocBytes: 1024 * 1024,
  /** `etcd-ts gateway start`: a dial to an endpoint fails after this (etcd's has no timeout of its own,
   * so the kernel's ~2 min SYN retries bound it), and connections open at once (etcd: unbounded). */
  tcpGatewayDialTimeoutMs: 10_000,
  tcpGatewayConnectionsMax: 10_000,
  /** SNI server names the fast port (uWebSockets.js) keeps a TLS context for, so a reloaded certificate
   * reaches clients that send SNI (gateway/uws_server.ts UwsTlsReload); past it, the default context. */
  uwsSniNamesMax: 64,
  /** WAL segments kept when the snapshot covers them (etcd --max-wals default; the flag sets it). */
  walSegmentsMax: 5,
  /** A state-machine snapshot (and WAL release) also every this many entry bytes, whatever
   * --snapshot-count says, so a restart never replays more than about this much plus a segment. */
  snapshotEntryBytes: 8 * 1024 * 1024,
  /** Revisions removed per compaction transaction, so writes are not stalled. */
  compactionBatchRevisions: 1000,
  /** Key records of an imported etcd database per LMDB write transaction (src/workers/mvcc/import_bolt.ts):
   * bounds the transaction's dirty pages (memory) while keeping commits few. */
  importBatchRecords: 20_000,
  /** A range without limit over more keys than this is answered from the range pool. */
  rangeInlineKeysMax: 256,
  /** Range worker pool size. */
  rangeWorkersMax: 2,
  /** Maintenance.Snapshot: the blob of one SnapshotResponse (etcd's snapshotSendBufferSize). */
  snapshotChunkBytes: 32 * 1024,
  /** Maintenance.Snapshot: bytes read from the snapshot file at a time (a whole number of chunks). */
  snapshotReadBytes: 512 * 1024,
  /** Maintenance.Snapshot: the writer's output buffer (one write to the file each time it fills). */
  snapshotWriteBufferBytes: 1024 * 1024,
  /** Maintenance.Snapshots being made or sent at once (each a worker thread while its file is written,
   * and a file of the store's size until sent); past it a call is answered "too many requests". */
  snapshotsConcurrentMax: 2,
  /** A range worker beyond the first is kept this long after its last task. piscina's default (0) ends
   * it at once, so every burst started a thread that loaded lmdb and opened the environment again, and
   * a shutdown could catch one mid-load (a fatal napi error at exit, seen once in CI). */
  rangeWorkerIdleMs: 60_000,
  /** Bcrypt pool threads (hashing at UserAdd/ChangePassword, checking at Authenticate): one per core of
   * the 2-core machines we measure on; etcd's Go runtime uses every core for the same work. */
  bcryptWorkersMax: 2,
  /** Bcrypt tasks queued before answering "too many requests" (each is ~50-100 ms of CPU at cost 10). */
  bcryptQueueMax: 1000,
  /** Range tasks queued for the pool before answering "too many requests". */
  rangeQueueMax: 10_000,
  /** Time a request waits for commit+apply before "request timed out" (etcd: 5 s + 2*election). */
  requestTimeoutMs: 7000,
  /** Raft log entries kept in memory after apply, for followers catching up (etcd: 5000). */
  raftLogRetainEntries: 5000,
  /** Watchers on one Watch stream (etcd has no bound; we refuse more with a canceled create). */
  watchersPerStreamMax: 100_000,
  /** Response bytes one Watch stream may have in flight (pushed by the watch worker, not yet accepted by
   * HTTP/2) before its watchers stop getting live events and catch up from history when it drains.
   * 2 MiB delivered more than 4 MiB in each of 4 paired runs of bench/watch.ts --writers 32
   * (docs/BENCHMARKS.md, Watch). */
  watchBufferedBytesMax: 2 * 1024 * 1024,
  /** Unread response bytes past which a Watch stream that keeps sending requests (whose replies are not
   * bounded by watchBufferedBytesMax) is ended with RESOURCE_EXHAUSTED. */
  watchStreamBytesHardMax: 16 * 1024 * 1024,
  /** A watch response is cut at the next revision boundary past this many event bytes. */
  watchResponseBytesSoftMax: 1024 * 1024,
  /** Events read per fan-out step (a revision is never split, so a step may exceed it by one txn). */
  watchFanoutEventsMax: 10_000,
  /** Events read per catch-up step for unsynced watchers (etcd: watchBatchMaxRevs = 1000 revisions). */
  watchCatchUpEventsMax: 1000,
  /** etcd's progressReportInterval for watchers created with progress_notify: 10 minutes (the default of
   * --experimental-watch-progress-notify-interval), and etcd's floor for that flag. */
  watchProgressNotifyIntervalMs: 10 * 60 * 1000,
  watchProgressNotifyIntervalMinMs: 100,
  /**
   * Fan-out pacing. After a pass that sent n watch responses, the next pass waits until
   * n × watchBatchDelayPerResponseUs has passed since this one began, at most --watch-batch-max-delay
   * (default watchBatchMaxDelayMs); revisions committed meanwhile go out together, one response per
   * watcher. So at most about 1 / watchBatchDelayPerResponseUs responses a second (50,000) go out one
   * revision each, and a quiet server sends each revision at once. A client pays mostly per response, not
   * per event (etcd 3.4's Go client: channel hand-offs and goroutine wake-ups per response;
   * docs/BENCHMARKS.md, "Watch through etcd's Go client").
   */
  watchBatchDelayPerResponseUs: 20,
  watchBatchMaxDelayMs: 20,
  /**
   * The watch worker's V8 young generation. Left to V8, it grows to tens of MiB while a burst of
   * watchers is being created, and a thread that waits in Atomics.wait gets none of V8's idle-time GCs
   * to give it back. 10,000 idle single-key watchers cost 2.4 kB of RSS each with a 48 MiB young
   * generation, 1.8–1.9 kB with 4 MiB (etcd 3.4: 2.1–2.3 kB). The fan-out rate did not change
   * measurably (docs/BENCHMARKS.md, "Memory per idle watcher").
   */
  watchWorkerYoungGenerationMb: 4,
  /** Bytes of the main->watch (control) ring and of the watch->main (responses) ring. */
  watchControlRingBytes: 8 * 1024 * 1024,
  watchResponseRingBytes: 32 * 1024 * 1024,
  /** Control messages queued on the main thread while the main->watch ring is full. */
  watchControlQueueMax: 100_000,
  /** In-process watch streams open at once (src/main/watch/local_watch.ts: a waiting Lock or Campaign,
   * an Election Observe); past it a new one is refused with "etcdserver: too many requests". */
  watchLocalStreamsMax: 10_000,
  /** An in-process watch whose stream broke (the watch worker failed) is opened again after this long,
   * and again until the restarted worker takes it (as etcd's Go client resumes a broken watch). */
  watchLocalResumeDelayMs: 100,

  // Leases (src/main/lease/).
  /** How often the leader looks for expired leases (etcd: 500 ms). */
  leaseExpiryCheckMs: 500,
  /** Expired-lease revokes proposed per second at most (etcd's leaseRevokeRate). */
  leaseRevokesPerSecond: 1000,
  /** An expired lease whose revoke failed is tried again after this long (etcd: 3 s). */
  leaseRevokeRetryMs: 3000,
  /** How often the leader checkpoints the remaining TTL of leases nobody renewed since the last pass. */
  leaseCheckpointIntervalMs: 5000,
  /** Checkpoints in one LeaseCheckpoint entry (etcd: 1000), and entries per pass. */
  leaseCheckpointBatchMax: 1000,
  leaseCheckpointEntriesPerPass: 10,
  /** Keep-alive requests queued on one LeaseKeepAlive stream before it is ended. */
  leaseKeepAliveQueueMax: 1000,
  /** etcd's concurrency.Session default TTL: a Lock request without a lease gets one this long. */
  recipeSessionTtlSeconds: 60,

  /** HTTP/JSON gateway: JSON bytes allowed beyond base64 of the largest gRPC message (field names,
   * quotes, whitespace). The body limit is gatewayBodyBytesMax(--max-request-bytes). */
  gatewayJsonOverheadBytes: 64 * 1024,
  /** A streaming HTTP response (watch, keepalive) past this many unsent bytes reports backpressure to
   * its handler (the watch worker then stops live delivery to it, as for a slow gRPC stream). */
  gatewayStreamSendHighBytes: 1024 * 1024,
  /** uWebSockets.js port: seconds a WebSocket may stay silent before it is closed (uWS sends pings). */
  wsIdleTimeoutSeconds: 120,
  /** Bytes a WebSocket may have waiting to be sent before its streams see backpressure. */
  wsSendHighBytes: 1024 * 1024,
  /** Hard cap: a client that stops reading and lets this much pile up is disconnected. */
  wsSendBytesMax: 64 * 1024 * 1024,
  /** Streams (watch, keepalive, ...) open on one WebSocket. */
  wsStreamsPerConnMax: 10_000,
  /** Unary requests in flight on one WebSocket (pipelined); more are answered "too many requests". */
  wsUnaryInFlightMax: 10_000,
  // Peer transport (src/main/peer/).
  /** Payload bytes of one peer frame (one batch of raft messages, one snapshot chunk, one request). A batch
   * that does not fit is split; a single message larger than this is dropped and reported unreachable. */
  peerFrameBytesMax: 64 * 1024 * 1024,
  /** Raft messages and their encoded bytes queued for one peer while it is disconnected or its socket is
   * backpressured; beyond either bound new messages are dropped and raft is told the peer is unreachable. */
  peerQueueMessagesMax: 4096,
  peerQueueBytesMax: 64 * 1024 * 1024,
  /** TCP connect timeout and the time a new connection has to complete the handshake. */
  peerDialTimeoutMs: 1000,
  peerHandshakeTimeoutMs: 5000,
  /** Reconnect backoff: doubles from min to max after each failed attempt, plus up to 50% jitter. */
  peerBackoffMinMs: 50,
  peerBackoffMaxMs: 2000,
  /** Inbound peer connections held at once (every member opens at most three to us, plus snapshots). */
  peerInboundConnectionsMax: 1024,
  /** Member-to-member requests waiting for an answer, per peer and direction. */
  peerRequestsInflightMax: 1024,
  /** A streamed snapshot (all its files) may not exceed this, nor have more files than this. */
  peerSnapshotBytesMax: 16 * 1024 * 1024 * 1024,
  peerSnapshotFilesMax: 1024,
  /** File bytes per snapshot chunk frame (each chunk carries its own CRC-32C in the frame header). */
  peerSnapshotChunkBytes: 1024 * 1024,
  /** A snapshot transfer fails when no bytes move for this long. */
  peerSnapshotIdleTimeoutMs: 30_000,
  /** The sender waits this long after the last chunk for the receiver's onSnapshot to finish. */
  peerSnapshotApplyTimeoutMs: 10 * 60 * 1000,
  /** A TLS connection (client or peer port) must finish its handshake within this, or it is dropped: a
   * client that connects and sends nothing does not hold a socket (etcd 3.4 waits forever; its 2020
   * security audit reported it). Also the first-byte wait of a port serving both http and https. */
  tlsHandshakeTimeoutMs: 10_000,
  /** TLS handshakes in progress at once per port kind; connections past it are closed at once, so a
   * handshake flood costs bounded CPU and memory and established connections keep being served. */
  tlsHandshakesInFlightMax: 256,
  /** Certificate, key, CA and CRL files are checked for replacement at most this often (on a new
   * connection); a replaced file is used from the next handshake on. */
  tlsReloadCheckMs: 1000,
  /** Audit log (--audit-log-path, docs/AUDIT.md), batch mode: lines not yet written (queued, and the
   * one write in flight) are at most this many bytes; a line that does not fit is dropped and counted
   * (etcd_ts_audit_log_dropped_lines_total). About 40,000 lines of 200 bytes. */
  auditBufferBytesMax: 8 * 1024 * 1024,
  /** Batch mode: a write starts as soon as this many bytes are queued ... */
  auditFlushBytes: 256 * 1024,
  /** ... and at most this long after the first line of a batch was queued. */
  auditFlushIntervalMs: 100,
  /** A key, range end or name is printed up to this many of its bytes (etcd accepts 1.5 MiB keys);
   * a longer one is cut there and the line says so ("key_truncated"). */
  auditKeyBytesMax: 1024,
  /** A Txn's audit line lists at most this many of its compares and operations (with their keys). */
  auditTxnOpsMax: 8,
  /** JWTs whose signature this member verified, kept (until they expire) so that a client's next call
   * with the same token does not verify it again; the oldest is forgotten past this many. */
  jwtVerifiedTokensMax: 4096,
};

/** Largest HTTP/JSON request body: base64 of the largest accepted gRPC message plus JSON overhead.
 * A body the gRPC size check would refuse anyway is cut off early instead of being buffered. */
export function gatewayBodyBytesMax(maxRequestBytes: number): number {
  return Math.ceil((maxRequestBytes + limits.grpcOverheadBytes) / 3) * 4 + limits.gatewayJsonOverheadBytes;
}

export type Limits = typeof limits;

/** The largest --max-request-bytes etcd-ts accepts (etcd has no bound; every ring, WAL batch and peer
 * frame grows with it, and the apply, watch and peer paths each hold a few such requests at once). */
export const requestBytesCeiling = 128 * 1024 * 1024;

/** Every relation the table must keep, as the messages of those it breaks (none: it is sound). */
export function limitProblems(l: Limits): string[] {
  const msg = l.requestBytesMax + l.grpcOverheadBytes;
  const rules: Array<[boolean, string]> = [
    [l.requestBytesMax > 0 && l.requestBytesMax <= requestBytesCeiling, `the largest request is between 1 and ${requestBytesCeiling} bytes`],
    [l.ringBytes >= 2 * msg, 'ringBytes must hold two max requests'],
    [l.walBatchBytesMax >= msg, 'a WAL batch must hold one max request'],
    [l.electionTimeoutMs >= 5 * l.heartbeatIntervalMs, 'the election timeout is at least 5 heartbeat intervals'],
    [l.watchResponseRingBytes >= 4 * msg, 'a watch response ring holds two max responses with prev_kv'],
    [l.watchControlRingBytes >= 2 * msg, 'a control ring holds a create with the largest key'],
    [l.watchBufferedBytesMax >= l.watchResponseBytesSoftMax, 'a stream buffers at least one response'],
    [l.watchStreamBytesHardMax >= 2 * l.watchBufferedBytesMax, 'request replies get room beyond the event buffer'],
    [l.txnOpsMax > 0, 'positive txn op count'],
    [l.snapshotReadBytes % l.snapshotChunkBytes === 0, 'a snapshot read is a whole number of chunks'],
    [l.wsSendBytesMax >= 4 * msg, 'a WebSocket holds a few max responses in base64'],
    [l.wsSendHighBytes < l.wsSendBytesMax, 'WebSocket backpressure starts below the disconnect cap'],
    [l.peerFrameBytesMax >= 2 * msg, 'a peer frame holds a MsgApp with a max request'],
    [l.peerQueueBytesMax >= l.peerFrameBytesMax, 'a peer queue holds one max frame'],
    [l.peerSnapshotChunkBytes + 64 <= l.peerFrameBytesMax, 'a snapshot chunk fits a frame'],
    [l.peerBackoffMinMs > 0 && l.peerBackoffMinMs <= l.peerBackoffMaxMs, 'peer backoff bounds'],
    [l.peerQueueMessagesMax > 0 && l.peerRequestsInflightMax > 0, 'positive peer bounds'],
    [l.tlsHandshakeTimeoutMs > 0 && l.tlsHandshakesInFlightMax > 0 && l.tlsReloadCheckMs >= 0, 'positive TLS bounds'],
    [l.auditFlushIntervalMs > 0 && l.auditFlushBytes > 0, 'positive audit log flush bounds'],
    // The longest line (two cut keys, or a Txn's auditTxnOpsMax items of two each, each byte at most 6
    // characters escaped, and the other fields) fits
    // one flush, and several flushes fit the buffer, so a write in flight never stops queueing.
    [(14 + 12 * l.auditTxnOpsMax) * l.auditKeyBytesMax + 1024 <= l.auditFlushBytes, 'an audit line with the longest keys fits one flush'],
    [l.auditBufferBytesMax >= 4 * l.auditFlushBytes, 'the audit buffer holds several flushes'],
  ];
  return rules.filter(([ok]) => !ok).map(([, m]) => m);
}

export function checkLimits(l: Limits): void {
  const problems = limitProblems(l);
  assert(problems.length === 0, `limits: ${problems.join('; ')}`);
}

/** The flags that set limits (src/main/config.ts Config has them all). */
export interface LimitFlags {
  maxRequestBytes: number;
  maxTxnOps: number;
  quotaBackendBytes: number;
  heartbeatIntervalMs: number;
  electionTimeoutMs: number;
  /** --experimental-compaction-batch-limit (absent: the default). */
  compactionBatchLimit?: number;
}

/**
 * The limits a member runs with: the defaults, the flags' values, and every size that holds a largest
 * request grown to fit it. Throws RangeError naming the broken relation (a flag out of range); the
 * result is frozen.
 */
export function deriveLimits(f: LimitFlags): Readonly<Limits> {
  const msg = f.maxRequestBytes + limits.grpcOverheadBytes;
  const peerFrameBytesMax = Math.max(limits.peerFrameBytesMax, 2 * msg);
  const l: Limits = {
    ...limits,
    requestBytesMax: f.maxRequestBytes, txnOpsMax: f.maxTxnOps, quotaBackendBytes: f.quotaBackendBytes,
    heartbeatIntervalMs: f.heartbeatIntervalMs, electionTimeoutMs: f.electionTimeoutMs,
    compactionBatchRevisions: f.compactionBatchLimit ?? limits.compactionBatchRevisions,
    ringBytes: Math.max(limits.ringBytes, 2 * msg),
    walBatchBytesMax: Math.max(limits.walBatchBytesMax, msg),
    watchResponseRingBytes: Math.max(limits.watchResponseRingBytes, 4 * msg),
    watchControlRingBytes: Math.max(limits.watchControlRingBytes, 2 * msg),
    wsSendBytesMax: Math.max(limits.wsSendBytesMax, 4 * msg),
    peerFrameBytesMax,
    peerQueueBytesMax: Math.max(limits.peerQueueBytesMax, peerFrameBytesMax),
  };
  const problems = limitProblems(l);
  if (problems.length > 0) throw new RangeError(problems.join('; '));
  return Object.freeze(l);
}

checkLimits(limits);
