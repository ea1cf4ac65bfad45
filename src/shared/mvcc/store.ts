// The MVCC key-value store as every thread reads it: etcd v3.4's mvcc semantics over LMDB (layout in dbs.ts,
// keys.ts, records.ts). This class only reads; the one writer of keys and state is MvccWriter
// (src/workers/mvcc/writer.ts, a subclass), opened by the apply worker (applyBatch) and the compaction
// worker (compactStep). The main thread, the range workers and the watch worker open this class.
//
// Each thread opens its own handle on the same directory; lmdb-js shares one environment per process.
// Nothing is cached in memory across calls, so open is O(1) and every call sees the latest committed state.
import { getClusterVersion, getMemberAttributes, getMembership, MemberAttributes } from './cluster';
import type { MembershipState } from '../confchange';
import { leaseKeys, listLeases, StoredLease } from './leases';
import { etcdserverpb } from '../gen/etcd';
import { Dbs, openDbs } from './dbs';
import { State, readProgress, readState, writeState } from './meta';
import { applyRange } from './range';
import { isTxnReadonly, readTxn } from './txn_read';
import { ReadView } from './view';
import { hashAll, hashKV } from './hash';
import { EventsOptions, EventsResult, readEvents } from './events';
import { AuthSnapshot, readAuthSnapshot } from './auth';
import { alarmText, listAlarms, StoredAlarm } from './alarms';

export { alarmText, isTxnReadonly };
export type { MemberAttributes, StoredAlarm, StoredLease, AuthSnapshot };

export interface OpenOptions {
  readOnly?: boolean;
  mapSizeBytes?: number;
}

export class MvccStore {
  /** Replaced by reopen (Defragment switches the store to a compacted copy); every call reads it anew. */
  #dbs: Dbs;
  #dir: string | null = null;

  protected constructor(dbs: Dbs, dir: string | null = null) {
    this.#dbs = dbs;
    this.#dir = dir;
  }

  /** The directory this handle reads (null for a store opened by a subclass without one). */
  get dir(): string | null {
    return this.#dir;
  }

  /**
   * Switches this handle to the environment in dir (a defragmented copy with the same content) and
   * closes the previous one. Callers keep the same MvccStore object; the next call reads the new one.
   */
  async reopen(dir: string): Promise<void> {
    const old = this.#dbs;
    this.swapDbs(MvccStore.openDbs(dir, {}), dir);
    await old.root.close();
  }

  /** Installs dbs (opened on dir) in place of the current handles; subclasses that keep their own copy override it. */
  protected swapDbs(dbs: Dbs, dir: string): void {
    this.#dbs = dbs;
    this.#dir = dir;
  }

  /**
   * Opens the store in directory dir, creating it if needed. O(1): no index is rebuilt. readOnly is advisory:
   * when the store does not exist yet (a reader started before the apply worker), it is created writable.
   */
  static open(dir: string, opts: OpenOptions = {}): MvccStore {
    return new MvccStore(MvccStore.openDbs(dir, opts), dir);
  }

  /** open's LMDB handles (the writer's open shares them). */
  protected static openDbs(dir: string, opts: OpenOptions): Dbs {
    let dbs: Dbs;
    let writable = !opts.readOnly;
    try {
      dbs = openDbs(dir, opts);
    } catch (e) {
      if (writable) throw e;
      dbs = openDbs(dir, { ...opts, readOnly: false });
      writable = true;
    }
    if (writable && dbs.meta.getBinary(Buffer.from('state')) === undefined) {
      const d = dbs;
      d.root.transactionSync(() => writeState(d, readState(d)));
    }
    return dbs;
  }

  /** The attributes a member published through the log, or null if it has not started yet. */
  memberAttributes(memberIdHex: string): MemberAttributes | null {
    return this.#read(() => getMemberAttributes(this.#dbs, memberIdHex));
  }

  /** The membership after the last applied configuration change, or null before any. */
  membership(): MembershipState | null {
    return this.#read(() => getMembership(this.#dbs));
  }

  /** The cluster version the leader set through the log, or null before the first one. */
  clusterVersion(): string | null {
    return this.#read(() => getClusterVersion(this.#dbs));
  }

  /** The auth store: enabled flag, revision, users and roles (the main thread's auth gate reads it
   * at start and after every applied auth change). */
  authSnapshot(): AuthSnapshot {
    return this.#read(() => readAuthSnapshot(this.#dbs));
  }

  /** The active alarms as applied here, by type then member ID (etcd's alarm store). */
  alarms(): StoredAlarm[] {
    return this.#read(() => listAlarms(this.#dbs));
  }

  /** Every stored lease with its TTL and last checkpointed remaining TTL (the lessor loads these at start). */
  leases(): StoredLease[] {
    return this.#read(() => listLeases(this.#dbs));
  }

  /** The keys attached to a lease, in key order. */
  leaseKeys(id: bigint): Buffer[] {
    return this.#read(() => leaseKeys(this.#dbs, Number(BigInt.asIntN(32, id >> 32n)), Number(BigInt.asUintN(32, id))));
  }

  /** A serializable range at req.revision (0 = current). Throws EtcdError. Header carries revision only. */
  range(req: etcdserverpb.IRangeRequest): etcdserverpb.IRangeResponse {
    return this.#read(() => {
      const st = readState(this.#dbs);
      return applyRange(new ReadView(this.#dbs, st.rev, st.compactRev), req);
    });
  }

  /**
   * Watch replay: events of revisions >= fromRev in revision order (etcd's kvsToEvents, optional prev_kv).
   * Throws "compacted" when fromRev is below the compact revision.
   */
  events(fromRev: number, opts: EventsOptions = {}): EventsResult {
    return this.#read(() => {
      const st = readState(this.#dbs);
      return readEvents(new ReadView(this.#dbs, st.rev, st.compactRev), this.#dbs, fromRev, opts);
    });
  }

  /**
   * A txn whose branches only range (etcd's isTxnReadonly), served from a read transaction without the Raft
   * log, as etcd does. Throws EtcdError (compacted / future revision in a range).
   */
  txnReadOnly(req: etcdserverpb.ITxnRequest): etcdserverpb.ITxnResponse {
    return this.#read(() => {
      const st = readState(this.#dbs);
      return readTxn(new ReadView(this.#dbs, st.rev, st.compactRev), req);
    });
  }

  get revision(): number {
    return this.freshState().rev;
  }

  /** etcd's compactMainRev: the last scheduled compaction (-1 before any). */
  get compactRevision(): number {
    return this.freshState().compactRev;
  }

  /** The revision up to which compaction has physically finished (-1 before any). */
  get compactedRevision(): number {
    return this.#read(() => readProgress(this.#dbs).doneRev);
  }

  get appliedIndex(): number {
    return this.freshState().applied;
  }

  /** The meta state (revision, applied index, compact revision) from one fresh read. */
  protected freshState(): State {
    return this.#read(() => readState(this.#dbs));
  }

  /** Entries per database (tests and metrics): live keys, history records, revlog records. */
  recordCounts(): { latest: number; history: number; revlog: number } {
    return this.#read(() => {
      const { latest, history, revlog, xlatest, xhistory } = this.#dbs;
      return {
        latest: latest.getCount() + xlatest.getCount(),
        history: history.getCount() + xhistory.getCount(),
        revlog: revlog.getCount(),
      };
    });
  }

  /** Bytes of the LMDB file in use up to its last page (etcd's db size). */
  dbSizeBytes(): number {
    const s = this.#dbs.root.getStats() as { pageSize: number; lastPageNumber: number };
    return (s.lastPageNumber + 1) * s.pageSize;
  }

  /** Pages held by the store's B-trees (etcd's db size in use: size minus free pages). */
  dbSizeInUseBytes(): number {
    return this.#read(() => this.#pagesInUse());
  }

  #pagesInUse(): number {
    const { root, latest, history, revlog, meta, leases, leasekeys, cluster, xlatest, xhistory, auth } = this.#dbs;
    type Stats = { pageSize: number; treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number };
    const rootStats = root.getStats() as Stats;
    let pages = 2; // LMDB's two meta pages
    for (const db of [root, latest, history, revlog, meta, leases, leasekeys, cluster, xlatest, xhistory, auth]) {
      const s = db === root ? rootStats : (db.getStats() as Stats);
      pages += s.treeBranchPageCount + s.treeLeafPageCount + s.overflowPages;
    }
    return pages * rootStats.pageSize;
  }

  /** etcd's HashKV: crc32c over the mvcc records in (compactRev, rev], plus the revisions it covered. */
  hashKV(rev: number): { hash: number; compactRevision: number; revision: number } {
    return this.#read(() => hashKV(this.#dbs, readState(this.#dbs), rev));
  }

  /** Maintenance.Hash: a hash of every table (hash.ts hashAll) and the revision it covers. */
  hash(): { hash: number; revision: number } {
    return this.#read(() => hashAll(this.#dbs, readState(this.#dbs)));
  }

  /** Writes a consistent copy of the environment into dir (data.mdb), for a follower's snapshot, or
   *  with compact (Defragment) page by page from the B-trees, leaving out free pages. */
  backup(dir: string, compact = false): Promise<void> {
    return (this.#dbs.root as unknown as { backup(p: string, compact: boolean): Promise<void> }).backup(dir, compact);
  }

  /**
   * Every read runs in a fresh read transaction that is released when it returns: a thread that
   * reads and then goes idle (the compaction worker, a range-pool worker) must not pin an old
   * snapshot, or LMDB can never reuse the pages freed since and the file grows with every write.
   */
  #read<T>(fn: () => T): T {
    const root = this.#dbs.root;
    root.resetReadTxn();
    try {
      return fn();
    } finally {
      root.resetReadTxn();
    }
  }

  /** Closes this thread's handle (resolves once closed). */
  close(): Promise<void> {
    return this.#dbs.root.close();
  }
}
