// Test and fault-injection switches: the one place that reads etcd-ts's own ETCD_TS_* environment
// variables (etcd's ETCD_* flags are read by src/main/config.ts). Production code asks for them here,
// on the main thread and in workers alike, instead of reading process.env where it needs them.
//
//   ETCD_TS_WAL_SYNC_DELAY_MS=N   every WAL write waits N ms more before it resolves (a slow disk;
//                                 test/integration/watch_durable.test.ts)
//   ETCD_TS_WAL_SEGMENT_BYTES=N   WAL segments are cut past N bytes instead of limits.walSegmentBytes (many
//                                 small segments for --max-wals; test/integration/retention_wal.test.ts)
//   ETCD_TS_WATCH_FAULT_KEY=K     the watch worker throws when a watcher on key K is created (a worker
//                                 crash; test/integration/watch_crash.test.ts)
//   ETCD_TS_WATCH_BATCH_US=N      watch fan-out pacing per response, in µs, instead of
//                                 limits.watchBatchDelayPerResponseUs (test/integration/watch_batch.test.ts)
//   ETCD_TS_APPLY_FAULT_KEY=K     the apply worker throws when it applies a Put of key K, before the
//                                 batch commits (a dead worker; test/integration/crash_policy.test.ts)
//   ETCD_TS_APPLY_CORRUPT_KEY=K   the apply worker stores a Put of key K with "!corrupt" appended to its
//                                 value (this member's store silently differs from its peers';
//                                 test/integration/corrupt_check.test.ts)
//   ETCD_TS_IMPORT_KILL_AT_RECORDS=N  the import of an etcd data dir SIGKILLs the process once N key
//                                 records are in the new store (test/integration/import_etcd.test.ts)
//   ETCD_TS_IMPORT_KILL_AT_STEP=S  the same after step S of the import: `wal` (our WAL written, the
//                                 store not yet the member's) or `store` (the store switched, identity.json
//                                 not yet written)
import { limits } from './limits';

export interface Switches {
  readonly walSyncDelayMs: number;
  readonly walSegmentBytes: number;
  readonly watchFaultKey: Buffer | null;
  readonly applyFaultKey: Buffer | null;
  readonly applyCorruptKey: Buffer | null;
  readonly watchBatchUsPerResponse: number;
  readonly importKillAtRecords: number;
  readonly importKillAtStep: string;
}

/** Reads the switches from an environment (process.env where they apply). Unset or invalid: off. */
export function readSwitches(env: NodeJS.ProcessEnv): Switches {
  return Object.freeze({
    walSyncDelayMs: Number(env.ETCD_TS_WAL_SYNC_DELAY_MS ?? 0) || 0,
    walSegmentBytes: Number(env.ETCD_TS_WAL_SEGMENT_BYTES) > 0 ? Number(env.ETCD_TS_WAL_SEGMENT_BYTES) : limits.walSegmentBytes,
    watchFaultKey: env.ETCD_TS_WATCH_FAULT_KEY ? Buffer.from(env.ETCD_TS_WATCH_FAULT_KEY) : null,
    applyFaultKey: env.ETCD_TS_APPLY_FAULT_KEY ? Buffer.from(env.ETCD_TS_APPLY_FAULT_KEY) : null,
    applyCorruptKey: env.ETCD_TS_APPLY_CORRUPT_KEY ? Buffer.from(env.ETCD_TS_APPLY_CORRUPT_KEY) : null,
    watchBatchUsPerResponse: Number(env.ETCD_TS_WATCH_BATCH_US) || limits.watchBatchDelayPerResponseUs,
    importKillAtRecords: Number(env.ETCD_TS_IMPORT_KILL_AT_RECORDS ?? 0) || 0,
    importKillAtStep: env.ETCD_TS_IMPORT_KILL_AT_STEP ?? '',
  });
}
