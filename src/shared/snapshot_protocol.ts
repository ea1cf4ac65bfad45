// The messages between Maintenance.Snapshot's handler (src/main/snapshot.ts) and its worker
// (src/workers/snapshot.ts): the task goes in as workerData, one result comes back by postMessage.
import type { MembershipState } from './confchange';

export interface SnapshotTask {
  /** The store's directory (Defragment moves it; the handler names the current one). */
  lmdbDir: string;
  /** A new file for the snapshot (created by the worker; the handler removes it). */
  file: string;
  /** The membership to write when the store holds none (never changed since bootstrap). */
  membership: MembershipState;
}

export type SnapshotResult =
  { ok: { bytes: number; sha256: Uint8Array; revision: number; keyRecords: number; writeMs: number; hashMs: number } } | { err: string };
