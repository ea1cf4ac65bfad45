// The LMDB environment of the MVCC store: one env, four named databases, binary keys and values.
//
//   latest   user key            -> latest record (records.ts)   live keys only: O(1) in the key's revision count
//   history  key‖00 00‖rev‖sub   -> history record               every revision incl. tombstones (keys.ts)
//   revlog   rev‖sub             -> user key                     global write order: watch replay, compaction
//   meta     name                -> f64 fields                   state, compaction progress
//   xlatest, xhistory                                            latest and history of keys too long for them (long_keys.ts)
//
// The apply worker is the only writer of latest/history/revlog/meta.state; the compaction worker removes
// history+revlog records and writes meta.compact. LMDB serialises the two writers; readers never block.
import { open, Database, RootDatabase } from 'lmdb';

export interface Dbs {
  root: RootDatabase;
  latest: Database<Buffer, Buffer>;
  history: Database<Buffer, Buffer>;
  revlog: Database<Buffer, Buffer>;
  meta: Database<Buffer, Buffer>;
  /** `latest` and `history` of the keys that do not fit them (see long_keys.ts). */
  xlatest: Database<Buffer, Buffer>;
  xhistory: Database<Buffer, Buffer>;
  /** Lease ID -> lease record (see leases.ts). */
  leases: Database<Buffer, Buffer>;
  /** Lease ID ‖ user key -> empty: the keys attached to each lease (see leases.ts). */
  leasekeys: Database<Buffer, Buffer>;
  /** Member attributes and cluster version (see cluster.ts). */
  cluster: Database<Buffer, Buffer>;
  /** Users, roles, the enabled flag and the auth revision (see auth.ts). */
  auth: Database<Buffer, Buffer>;
}

/** Default map size reservation (address space, not disk): grows on demand in lmdb-js. */
const defaultMapSizeBytes = 1024 * 1024 * 1024;

export function openDbs(dir: string, opts: { readOnly?: boolean; mapSizeBytes?: number }): Dbs {
  const root = open(dir, {
    // Durability comes from the WAL, fdatasynced before apply; the applied index is stored in the same
    // LMDB transaction, so a lost LMDB tail is replayed from the WAL. sync() forces a flush.
    noSync: true,
    overlappingSync: false,
    // No MDB_WRITEMAP, although it was faster (76k vs 44k single-put commits/s in bench/mvcc.bench.ts):
    // with it, LMDB's mdb_freelist_save asserts ("x <= dl[0].mid") and aborts the process when a
    // transaction frees pages it dirtied itself (loose pages) while no free list is loaded, which
    // lease revokes mixed with puts hit within seconds (the same bug ModSecurity and lmdb-js #212
    // report; the assertion is still in LMDB's tip). Correctness first.
    useWritemap: false,
    maxDbs: 12,
    readOnly: opts.readOnly ?? false,
    mapSize: opts.mapSizeBytes ?? defaultMapSizeBytes,
  });
  const sub = (name: string): Database<Buffer, Buffer> =>
    root.openDB<Buffer, Buffer>({ name, keyEncoding: 'binary', encoding: 'binary' });
  return { root, latest: sub('latest'), history: sub('history'), revlog: sub('revlog'), meta: sub('meta'), xlatest: sub('xlatest'), xhistory: sub('xhistory'), leases: sub('leases'), leasekeys: sub('leasekeys'), cluster: sub('cluster'), auth: sub('auth') };
}
