// The MVCC key-value store: etcd v3.4's mvcc semantics over LMDB (layout in dbs.ts, keys.ts, records.ts).
//
// Threads: the apply worker calls applyBatch (the only writer of keys and state), the compaction worker calls
// compactStep, range workers and the main thread call range. Each opens its own MvccStore on the same
// directory; lmdb-js shares one environment per process. Nothing is cached in memory across calls, so open is
// O(1) and every call sees the latest committed state.
import { getClusterVersion, getMemberAttributes, getMembership, MemberAttributes, putClusterVersion, putMemberAttributes, putMembership } from './cluster';
import type { MembershipOp, MembershipState } from '../../shared/confchange';
import { applyLeaseCheckpoint, applyLeaseGrant, applyLeaseRevoke, leaseKeys, listLeases, StoredLease } from './leases';
import { approxNum } from './records';
import { etcdserverpb } from '../../shared/gen/etcd';
import { Errors, assert, assertNever, isEtcdError } from '../../shared/errors';
import { Dbs, openDbs } from './dbs';
import { compactStep } from './compact';
import { State, readProgress, readState, writeState } from './meta';
import { applyDeleteRange, applyPut } from './ops';
import { applyRange } from './range';
import { applyTxn, isTxnReadonly } from './txn';
import { ReadView } from './view';
import { WriteTxn } from './write';
import { hashKV } from './hash';
import { EventsOptions, EventsResult, readEvents } from './events';

export type WriteRequest =
  | { kind: 'put'; req: etcdserverpb.IPutRequest }
  | { kind: 'deleteRange'; req: etcdserverpb.IDeleteRangeRequest }
  | { kind: 'txn'; req: etcdserverpb.ITxnRequest }
  | { kind: 'compact'; req: etcdserverpb.ICompactionRequest }
  | { kind: 'memberAttributes'; memberIdHex: string; attributes: MemberAttributes }
  | { kind: 'clusterVersion'; version: string }
  /** A configuration change as the main thread decided it: store the state, answer the error if any. */
  | { kind: 'membership'; op: MembershipOp }
  | { kind: 'leaseGrant'; req: etcdserverpb.ILeaseGrantRequest }
  | { kind: 'leaseRevoke'; req: etcdserverpb.ILeaseRevokeRequest }
  | { kind: 'leaseCheckpoint'; req: etcdserverpb.ILeaseCheckpointRequest }
  /** Committed through the log for its own sake (etcd's /health quorum GET): changes nothing. */
  | { kind: 'noop' };

export type WriteResult =
  | { ok: etcdserverpb.IPutResponse | etcdserverpb.IDeleteRangeResponse | etcdserverpb.ITxnResponse | etcdserverpb.ICompactionResponse
      | etcdserverpb.ILeaseGrantResponse | etcdserverpb.ILeaseRevokeResponse | etcdserverpb.ILeaseCheckpointResponse }
  | { err: { code: number; message: string } };

export { isTxnReadonly };

export interface OpenOptions {
  readOnly?: boolean;
  mapSizeBytes?: number;
}

export class MvccStore {
  readonly #dbs: Dbs;
  /** Applied index of no-op entries not yet written; folded into the next applyBatch or close. */
  #pendingApplied = 0;

  private constructor(dbs: Dbs) {
    this.#dbs = dbs;
  }

  /**
   * Opens the store in directory dir, creating it if needed. O(1): no index is rebuilt. readOnly is advisory:
   * when the store does not exist yet (a reader started before the apply worker), it is created writable.
   */
  static open(dir: string, opts: OpenOptions = {}): MvccStore {
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
    return new MvccStore(dbs);
  }

  /**
   * Applies a batch in one LMDB write transaction, storing the last applied index with it. Entries at or below
   * the stored applied index are skipped (WAL replay) and get null. Operating errors become {err}.
   * appliedIndex (optional) is the index of the batch's last entry when it ends in entries without a request
   * (leader no-ops, conf changes): stored in the same transaction.
   */
  applyBatch(items: ReadonlyArray<{ index: number; req: WriteRequest }>, appliedIndex = 0): Array<WriteResult | null> {
    const dbs = this.#dbs;
    return dbs.root.transactionSync(() => {
      const st = readState(dbs);
      const results: Array<WriteResult | null> = [];
      for (const it of items) {
        if (it.index <= st.applied) {
          results.push(null);
          continue;
        }
        st.applied = it.index;
        results.push(this.#applyOne(st, it.req));
      }
      st.applied = Math.max(st.applied, this.#pendingApplied, appliedIndex);
      writeState(dbs, st);
      return results;
    });
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

  /** Every stored lease with its TTL and last checkpointed remaining TTL (the lessor loads these at start). */
  leases(): StoredLease[] {
    return this.#read(() => listLeases(this.#dbs));
  }

  /** The keys attached to a lease, in key order. */
  leaseKeys(id: bigint): Buffer[] {
    return this.#read(() => leaseKeys(this.#dbs, Number(BigInt.asIntN(32, id >> 32n)), Number(BigInt.asUintN(32, id))));
  }

  /** Records an applied index with no state change (leader no-op entries); folded into the next applyBatch. */
  recordApplied(index: number): void {
    this.#pendingApplied = Math.max(this.#pendingApplied, index);
  }

  #applyOne(st: State, req: WriteRequest): WriteResult {
    const wt = new WriteTxn(this.#dbs, st.rev, st.compactRev);
    try {
      let ok: WriteResult extends infer R ? (R extends { ok: infer O } ? O : never) : never;
      switch (req.kind) {
        case 'put': ok = applyPut(wt, req.req); break;
        case 'deleteRange': ok = applyDeleteRange(wt, req.req); break;
        case 'txn': ok = applyTxn(wt, req.req); break;
        case 'compact': ok = applyCompaction(st, req.req); break;
        case 'memberAttributes': putMemberAttributes(this.#dbs, req.memberIdHex, req.attributes); ok = {}; break;
        case 'clusterVersion': putClusterVersion(this.#dbs, req.version); ok = {}; break;
        case 'membership':
          // Stored even when refused (the state is then unchanged): a restart needs it either way.
          putMembership(this.#dbs, req.op.state);
          if (req.op.error) return { err: req.op.error };
          ok = {};
          break;
        case 'noop': ok = {}; break;
        case 'leaseGrant': ok = applyLeaseGrant(this.#dbs, st.rev, req.req); break;
        case 'leaseRevoke': ok = applyLeaseRevoke(wt, this.#dbs, req.req); break;
        case 'leaseCheckpoint': ok = applyLeaseCheckpoint(this.#dbs, st.rev, req.req); break;
        default: return assertNever(req);
      }
      if (wt.changes > 0) st.rev = wt.beginRev + 1;
      return { ok };
    } catch (e) {
      if (!isEtcdError(e)) throw e;
      assert(wt.changes === 0, 'an operating error after a write would leave a partial request');
      return { err: e.toWire() };
    }
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
    assert(isTxnReadonly(req), 'txnReadOnly needs a txn without puts, deletes or nested txns');
    return this.#read(() => {
      const st = readState(this.#dbs);
      return applyTxn(new WriteTxn(this.#dbs, st.rev, st.compactRev), req);
    });
  }

  /** One bounded physical compaction step; true once everything up to compactRevision is removed. */
  compactStep(maxRevisions: number): boolean {
    return compactStep(this.#dbs, maxRevisions);
  }

  /** Revision, compact revision and applied index from ONE read of the meta state (the apply
   *  worker reports all three after every batch). */
  snapshotState(): { revision: number; compactRevision: number; appliedIndex: number } {
    const st = this.#fresh();
    return { revision: st.rev, compactRevision: st.compactRev, appliedIndex: Math.max(st.applied, this.#pendingApplied) };
  }

  get revision(): number {
    return this.#fresh().rev;
  }

  /** etcd's compactMainRev: the last scheduled compaction (-1 before any). */
  get compactRevision(): number {
    return this.#fresh().compactRev;
  }

  /** The revision up to which compaction has physically finished (-1 before any). */
  get compactedRevision(): number {
    return this.#read(() => readProgress(this.#dbs).doneRev);
  }

  get appliedIndex(): number {
    return Math.max(this.#fresh().applied, this.#pendingApplied);
  }

  #fresh(): State {
    return this.#read(() => readState(this.#dbs));
  }

  /** Entries per database (tests and metrics): live keys, history records, revlog records. */
  recordCounts(): { latest: number; history: number; revlog: number } {
    return this.#read(() => {
      const { latest, history, revlog } = this.#dbs;
      return { latest: latest.getCount(), history: history.getCount(), revlog: revlog.getCount() };
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
    const { root, latest, history, revlog, meta, leases, leasekeys, cluster } = this.#dbs;
    type Stats = { pageSize: number; treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number };
    const rootStats = root.getStats() as Stats;
    let pages = 2; // LMDB's two meta pages
    for (const db of [root, latest, history, revlog, meta, leases, leasekeys, cluster]) {
      const s = db === root ? rootStats : (db.getStats() as Stats);
      pages += s.treeBranchPageCount + s.treeLeafPageCount + s.overflowPages;
    }
    return pages * rootStats.pageSize;
  }

  /** etcd's HashKV: crc32c over the mvcc records in (compactRev, rev], plus the revisions it covered. */
  hashKV(rev: number): { hash: number; compactRevision: number; revision: number } {
    return this.#read(() => hashKV(this.#dbs, readState(this.#dbs), rev));
  }

  /**
   * Replaces this store's whole state with the LMDB environment in dir (a leader's copy: a Raft
   * snapshot) in ONE write transaction, unless the copy is not newer than what is applied here.
   * Returns the applied index after the call.
   */
  installFrom(dir: string): number {
    const src = openDbs(dir, { readOnly: true });
    try {
      const dbs = this.#dbs;
      const theirs = readState(src).applied;
      if (theirs <= readState(dbs).applied) return readState(dbs).applied;
      dbs.root.transactionSync(() => {
        for (const name of ['latest', 'history', 'revlog', 'meta', 'leases', 'leasekeys', 'cluster'] as const) {
          dbs[name].clearSync();
          for (const { key, value } of src[name].getRange({}) as Iterable<{ key: Buffer; value: Buffer }>) dbs[name].putSync(key, value);
        }
      });
      this.#pendingApplied = 0;
      return readState(dbs).applied;
    } finally {
      void src.root.close();
    }
  }

  /** Writes a consistent copy of the environment into dir (data.mdb), for a follower's snapshot. */
  backup(dir: string): Promise<void> {
    return (this.#dbs.root as unknown as { backup(p: string, compact: boolean): Promise<void> }).backup(dir, false);
  }

  /** Forces LMDB's dirty pages to disk (the store is opened noSync: the WAL is the durability). */
  sync(): Promise<void> {
    const root = this.#dbs.root as unknown as { sync(cb: (err?: Error) => void): void };
    return new Promise((resolve, reject) => root.sync((err) => (err ? reject(err) : resolve())));
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

  /** Persists a pending no-op applied index and closes this thread's handle (resolves once closed). */
  close(): Promise<void> {
    const dbs = this.#dbs;
    if (this.#pendingApplied > 0 && this.#pendingApplied > readState(dbs).applied) {
      dbs.root.transactionSync(() => {
        const st = readState(dbs);
        st.applied = Math.max(st.applied, this.#pendingApplied);
        writeState(dbs, st);
      });
    }
    return dbs.root.close();
  }
}

/** etcd's store.updateCompactRev: schedules compaction; physical removal happens in compactStep. */
function applyCompaction(st: State, c: etcdserverpb.ICompactionRequest): etcdserverpb.ICompactionResponse {
  const rev = approxNum(c.revision);
  if (rev <= st.compactRev) throw Errors.compacted();
  if (rev > st.rev) throw Errors.futureRev();
  st.compactRev = rev;
  return { header: { revision: st.rev } };
}

