// The metrics one member exposes at /metrics (client port and fast port). etcd 3.4's names and help
// texts where we measure the same quantity; etcd_ts_* for our own (rings, workers, gateway).
// Gauges are read when scraped; nothing here runs on a request's path except counter increments.
import { Counter, exponentialBuckets, Histogram, LabeledGauge, Registry, SharedHistogramMetric } from './metrics';
import { SharedHistogram } from '../shared/shared_histogram';
import { BACKEND_COMMIT_BOUNDS_S } from '../shared/apply_protocol';
import { grpcTraffic } from './net/rpc';
import { ETCD_SERVER_VERSION } from '../shared/version';
import type { GrpcServerMetrics } from './grpc_metrics';

/** Created before the WAL opens, so the WAL can report into it. */
export interface EarlyMetrics {
  registry: Registry;
  walFsync: Histogram;
  /** Handed to the apply worker (WorkerInit.backendCommitHistogram), which times its LMDB write transactions. */
  backendCommitSab: SharedArrayBuffer;
}

export function createEarlyMetrics(): EarlyMetrics {
  const registry = new Registry();
  // etcd: prometheus.ExponentialBuckets(0.001, 2, 14).
  const walFsync = registry.histogram('etcd_disk_wal_fsync_duration_seconds', 'The latency distributions of fsync called by WAL.',
    exponentialBuckets(0.001, 2, 14));
  // etcd times its bolt commit; ours is the apply worker's LMDB write transaction per batch (noSync:
  // the WAL is the durability, so this is the in-memory B-tree work, not a disk flush).
  const backendCommitSab = SharedHistogram.create(BACKEND_COMMIT_BOUNDS_S.length);
  registry.register(new SharedHistogramMetric('etcd_disk_backend_commit_duration_seconds',
    'The latency distributions of commit called by backend.', new SharedHistogram(backendCommitSab, BACKEND_COMMIT_BOUNDS_S)));
  return { registry, walFsync, backendCommitSab };
}

export interface MemberMetricSources {
  node: {
    readonly hasLeader: boolean; readonly leaderChanges: number; readonly revision: number;
    status(): { lead: bigint; commit: number; applied: number; compactRevision: number };
  };
  memberId: bigint;
  store: { dbSizeBytes(): number; dbSizeInUseBytes(): number };
  quotaBackendBytes: number;
  watchStreams: () => number;
  rings: Array<{ name: string; ring: { usedBytes(): number; readonly capacityBytes: number } }>;
  rangePool: { threads: () => number; queueSize: () => number };
  /** etcd's grpc_server_* series (the handling-time histogram only with --metrics extensive). */
  grpc: GrpcServerMetrics;
}

export interface GatewayCounters {
  clientPortRequests: Counter;
  fastPortRequests: Counter;
  wsMessages: Counter;
}

export function registerMemberMetrics(m: EarlyMetrics, s: MemberMetricSources, wsOpen: () => number): GatewayCounters {
  const r = m.registry;
  for (const g of s.grpc.metrics()) r.register(g);
  r.gauge('etcd_server_has_leader', 'Whether or not a leader exists. 1 is existence, 0 is not.', () => (s.node.hasLeader ? 1 : 0));
  r.gauge('etcd_server_is_leader', 'Whether or not this member is a leader. 1 if is, 0 otherwise.', () => (s.node.status().lead === s.memberId ? 1 : 0));
  r.counter('etcd_server_leader_changes_seen_total', 'The number of leader changes seen.', () => s.node.leaderChanges);
  r.gauge('etcd_server_proposals_committed_total', 'The total number of consensus proposals committed.', () => s.node.status().commit);
  r.gauge('etcd_server_proposals_applied_total', 'The total number of consensus proposals applied.', () => s.node.status().applied);
  r.gauge('etcd_server_quota_backend_bytes', 'Current backend storage quota size in bytes.', () => s.quotaBackendBytes);
  r.register(new LabeledGauge('etcd_server_version', 'Which version is running. 1 for \'server_version\' label with current version.',
    () => [[{ server_version: ETCD_SERVER_VERSION }, 1]]));
  r.gauge('etcd_mvcc_db_total_size_in_bytes', 'Total size of the underlying database physically allocated in bytes.', () => s.store.dbSizeBytes());
  r.gauge('etcd_mvcc_db_total_size_in_use_in_bytes', 'Total size of the underlying database logically in use in bytes.', () => s.store.dbSizeInUseBytes());
  r.gauge('etcd_debugging_mvcc_current_revision', 'The current revision of store.', () => s.node.revision);
  r.gauge('etcd_debugging_mvcc_compact_revision', 'The revision of the last compaction in store.', () => Math.max(0, s.node.status().compactRevision));
  r.gauge('etcd_debugging_mvcc_watch_stream_total', 'Total number of watch streams.', s.watchStreams);
  r.counter('etcd_network_client_grpc_received_bytes_total', 'The total number of bytes received from grpc clients.', () => grpcTraffic.receivedBytes);
  r.counter('etcd_network_client_grpc_sent_bytes_total', 'The total number of bytes sent to grpc clients.', () => grpcTraffic.sentBytes);
  r.counter('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  });
  r.gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', () => process.memoryUsage.rss());
  const start = Date.now() / 1000 - process.uptime();
  r.gauge('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', () => start);
  r.register(new LabeledGauge('etcd_ts_ring_used_bytes', 'Bytes waiting in a SharedArrayBuffer ring between the main thread and a worker.',
    () => s.rings.map((x) => [{ ring: x.name }, x.ring.usedBytes()])));
  r.register(new LabeledGauge('etcd_ts_ring_capacity_bytes', 'Capacity of a SharedArrayBuffer ring.',
    () => s.rings.map((x) => [{ ring: x.name }, x.ring.capacityBytes])));
  r.gauge('etcd_ts_range_pool_threads', 'Threads in the range worker pool.', s.rangePool.threads);
  r.gauge('etcd_ts_range_pool_queue_size', 'Range tasks waiting for a range worker.', s.rangePool.queueSize);
  r.gauge('etcd_ts_websocket_connections', 'Open WebSocket connections on the HTTP/JSON port.', wsOpen);
  return {
    clientPortRequests: r.counter('etcd_ts_gateway_client_port_requests_total', 'HTTP/JSON gateway requests served on the client port.'),
    fastPortRequests: r.counter('etcd_ts_gateway_http_port_requests_total', 'HTTP requests served on the --listen-client-http-urls port.'),
    wsMessages: r.counter('etcd_ts_websocket_messages_received_total', 'WebSocket messages received on the HTTP/JSON port.'),
  };
}
