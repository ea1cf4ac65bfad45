// Target lanes: how the load reaches the server. Every lane runs the same KV workloads with the same
// load models, histograms and results; only the transport and the request encoding differ (a
// Transport in load_worker.ts, the requests in workloads.ts for gRPC and lane_wire.ts for the others).
import { LaneName, laneNames } from './load_types';
import { isWatchWorkload, WorkloadName } from './workloads';

export function isLaneName(s: string): s is LaneName {
  return (laneNames as readonly string[]).includes(s);
}

/** The lane as results name it: grpc, http, ws/json or ws/binary. */
export function laneLabel(lane: LaneName, wsBinary: boolean): string {
  return lane === 'ws' ? `ws/${wsBinary ? 'binary' : 'json'}` : lane;
}

/**
 * How many connections a lane opens for `clients` clients when `connections` are asked for: the HTTP
 * lane one per client (HTTP/1.1 carries one request at a time), the others no more than there are
 * clients (the clients share them round-robin).
 */
export function laneConnections(lane: LaneName, clients: number, connections: number): number {
  return lane === 'http' ? clients : Math.min(connections, clients);
}

/** Why a workload cannot run on a lane, or null if it can: the lanes besides gRPC run the unary KV workloads. */
export function laneRefuses(w: WorkloadName, lane: LaneName): string | null {
  if (lane === 'grpc') return null;
  if (isWatchWorkload(w) || w === 'lease-keepalive' || w === 'lease-grant-revoke') {
    return `--lane ${lane} runs the KV workloads (put, range, range-prefix, txn-put, txn-compare, delete, mixed), not ${w}`;
  }
  return null;
}
