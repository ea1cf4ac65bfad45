// The MVCC store's writer: applies committed requests in LMDB write transactions (the apply worker) and
// removes compacted revisions in bounded steps (the compaction worker). Only workers open it; every read
// method is MvccStore's (src/shared/mvcc/store.ts), which the other threads open instead.
import { MemberAttributes, putClusterVersion, putMemberAttributes, putMembership } from '../../shared/mvcc/cluster';
import type { MembershipOp } from '../../shared/confchange';
import { approxNum } from '../../shared/mvcc/records';
import { etcdserverpb } from '../../shared/gen/etcd';
import { Errors, assert, assertNever, isEtcdError } from '../../shared/errors';
import { Dbs, openDbs } from '../../shared/mvcc/dbs';
import { State, readState, writeState } from '../../shared/mvcc/meta';
import { MvccStore, OpenOptions } from '../../shared/mvcc/store';
import { applyLeaseCheckpoint, applyLeaseGrant, applyLeaseRevoke } from './lease_apply';
import { compactStep } from './compact';
import { applyDeleteRange, applyPut } from './ops';
import { applyTxn } from './txn';
import { WriteTxn } from './write';
import { applyAuth, AuthEvent, AuthRequest, AuthResponse, checkLeasePuts } from './auth_apply';
import { AuthState } from '../../shared/auth/state';
import { readAuthSnapshot } from '../../shared/mvcc/auth';
import type { EntryAuth } from '../../shared/entry';
import { AlarmGate, applyAlarm, gateRefusal, loadAlarmGate } from './alarm_apply';

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
  /** etcd's Maintenance.Alarm, applied on every member (GET too: it is answered after the log, as etcd). */
  | { kind: 'alarm'; req: etcdserverpb.IAlarmRequest }
  /** Committed through the log for its own sake (etcd's /health quorum GET): changes nothing. */
  | { kind: 'noop' }
  /** The Auth service's requests (auth_apply.ts). */
  | { kind: 'auth'; req: AuthRequest };

export type WriteResult =
  | { ok: etcdserverpb.IPutResponse | etcdserverpb.IDeleteRangeResponse | etcdserverpb.ITxnResponse | etcdserverpb.ICompactionResponse
      | etcdserverpb.ILeaseGrantResponse | etcdserverpb.ILeaseRevokeResponse | etcdserverpb.ILeaseCheckpointResponse | AuthResponse
      | etcdserverpb.IAlarmResponse }
  | { err: { code: number; message: string } };

export class MvccWriter extends MvccStore {
  #dbs: Dbs;
  /** Applied index of no-op entries not yet written; folded into the next applyBatch or close. */
  #pendingApplied = 0;
  /** The auth store as of the last applied entry (rebuilt after each change, in the same transaction). */
  #auth: AuthState;
  /** What the main thread must learn from the auth requests applied since the last takeAuthEvents(). */
  #authEvents: AuthEvent[] = [];
  /** Which active alarms refuse which requests (etcd's capped and corrupt appliers). Only this
   *  writer changes alarms, so the cache is refreshed after each applied Alarm and each install. */
  #alarmGate: AlarmGate;

  private constructor(dbs: Dbs, dir: string) {
    super(dbs, dir);
    this.#dbs = dbs;
    this.#auth = new AuthState(readAuthSnapshot(dbs));
    this.#alarmGate = loadAlarmGate(dbs);
  }

  /** The auth events of the batches applied since the last call (in apply order). */
  takeAuthEvents(): AuthEvent[] {
    const e = this.#authEvents;
    this.#authEvents = [];
    return e;
  }

  /** Opens (or creates) the store in dir for writing. */
  static override open(dir: string, opts: OpenOptions = {}): MvccWriter {
    return new MvccWriter(MvccStore.openDbs(dir, { ...opts, readOnly: false }), dir);
  }

  protected override swapDbs(dbs: Dbs, dir: string): void {
    super.swapDbs(dbs, dir);
    this.#dbs = dbs;
    this.#alarmGate = loadAlarmGate(dbs);
  }

  /**
   * Takes over other's environment (a copy this worker has caught up) and closes its own; other must
   * not be used afterwards. Keeps this writer's pending no-op applied index.
   */
  async adopt(other: MvccWriter): Promise<void> {
    const old = this.#dbs;
    const dir = other.dir;
    if (dir === null) throw new Error('invariant: adopt needs a writer opened on a directory');
    this.swapDbs(other.#dbs, dir);
    await old.root.close();
  }

  /**
   * Applies a batch in one LMDB write transaction, storing the last applied index with it. Entries at or below
   * the stored applied index are skipped (WAL replay) and get null. Operating errors become {err}.
   * appliedIndex (optional) is the index of the batch's last entry when it ends in entries without a request
   * (leader no-ops, conf changes): stored in the same transaction.
   */
  applyBatch(items: ReadonlyArray<{ index: number; req: WriteRequest; auth?: EntryAuth | null }>, appliedIndex = 0): Array<WriteResult | null> {
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
        results.push(this.#applyOne(st, it.req, it.index, it.auth ?? null));
      }
      st.applied = Math.max(st.applied, this.#pendingApplied, appliedIndex);
      writeState(dbs, st);
      return results;
    });
  }

  /** Records an applied index with no state change (leader no-op entries); folded into the next applyBatch. */
  recordApplied(index: number): void {
    this.#pendingApplied = Math.max(this.#pendingApplied, index);
  }

  #applyOne(st: State, req: WriteRequest, index: number, ai: EntryAuth | null): WriteResult {
    const wt = new WriteTxn(this.#dbs, st.rev, st.compactRev);
    const refused = gateRefusal(this.#alarmGate, req);
    if (refused !== null) return { err: refused.toWire() };
    try {
      this.#checkPermission(req, ai);
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
        case 'auth': {
          const r = applyAuth(this.#dbs, this.#auth, ai, index, req.req, this.#authEvents);
          this.#auth = r.state;
          ok = { ...r.resp, header: { revision: st.rev } };
          break;
        }
        case 'alarm':
          ok = applyAlarm(this.#dbs, req.req);
          this.#alarmGate = loadAlarmGate(this.#dbs);
          break;
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

  /** etcd's authApplierV3: with auth enabled, a client's write runs only if its user may make it
   * with the auth store as it is now (a stale auth revision is refused). An entry without auth
   * fields is the server's own (a lease expiry: etcd's WithRoot) and is not checked. */
  #checkPermission(req: WriteRequest, ai: EntryAuth | null): void {
    const a = this.#auth;
    if (!a.enabled || ai === null) return;
    switch (req.kind) {
      case 'put':
        a.checkPut(ai, req.req.key);
        checkLeasePuts(this.#dbs, a, ai, req.req.lease);
        if (req.req.prevKv) a.checkRange(ai, req.req.key, null);
        return;
      case 'deleteRange':
        a.checkDeleteRange(ai, req.req.key, req.req.rangeEnd);
        if (req.req.prevKv) a.checkRange(ai, req.req.key, req.req.rangeEnd);
        return;
      case 'txn': a.checkTxn(ai, req.req); return;
      case 'leaseRevoke': checkLeasePuts(this.#dbs, a, ai, req.req.ID); return;
      default:
    }
  }

  /** One bounded physical compaction step; true once everything up to compactRevision is removed. */
  compactStep(maxRevisions: number): boolean {
    return compactStep(this.#dbs, maxRevisions);
  }

  /** Revision, compact revision and applied index from ONE read of the meta state (the apply
   *  worker reports all three after every batch). */
  snapshotState(): { revision: number; compactRevision: number; appliedIndex: number } {
    const st = this.freshState();
    return { revision: st.rev, compactRevision: st.compactRev, appliedIndex: Math.max(st.applied, this.#pendingApplied) };
  }

  override get appliedIndex(): number {
    return Math.max(super.appliedIndex, this.#pendingApplied);
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
        for (const name of ['latest', 'history', 'revlog', 'meta', 'leases', 'leasekeys', 'cluster', 'auth', 'xlatest', 'xhistory'] as const) {
          dbs[name].clearSync();
          for (const { key, value } of src[name].getRange({}) as Iterable<{ key: Buffer; value: Buffer }>) dbs[name].putSync(key, value);
        }
      });
      this.#pendingApplied = 0;
      this.#auth = new AuthState(readAuthSnapshot(dbs));
      this.#authEvents.push({ type: 'changed' });
      this.#alarmGate = loadAlarmGate(dbs);
      return readState(dbs).applied;
    } finally {
      void src.root.close();
    }
  }

  /**
   * Defragment's copy: LMDB's compacting copy of this environment into dir (MvccStore.backup), then one
   * small write transaction on the copy, so that the copy's free-page database is no longer empty when
   * the apply worker's first transaction on it (the replay, which rewrites hundreds of pages) commits.
   *
   * Why: a compacting copy has an empty free-page database. In the LMDB of lmdb-js (3.5.6, its own
   * free-list code in mdb_page_alloc), a commit that freed more page numbers than fit in one node
   * (about 250 at 4 KiB pages) needs an overflow page for its free-list record; when that record is
   * the first one, mdb_page_alloc then searches the free-page database whose root leaf was created a
   * moment before and is still empty, and reads a key of size 0: `Assertion 'key.mv_size > 0' failed
   * in mdb_page_alloc()` (lmdb-js #317, there after clearSync), or a segfault. The transaction here
   * rewrites the meta state unchanged: it frees only the few pages on the path to that record, an
   * inline free-list record, and the free-page database stays non-empty from then on (every commit
   * that frees pages adds its own record first).
   * Reproduced and checked in test/unit/mvcc-defrag-copy.test.ts.
   */
  async compactCopyTo(dir: string): Promise<void> {
    await this.backup(dir, true);
    const copy = MvccWriter.open(dir);
    try {
      const dbs = copy.#dbs;
      dbs.root.transactionSync(() => writeState(dbs, readState(dbs)));
    } finally {
      await copy.close();
    }
  }

  /** Forces LMDB's dirty pages to disk (the store is opened noSync: the WAL is the durability). */
  sync(): Promise<void> {
    const root = this.#dbs.root as unknown as { sync(cb: (err?: Error) => void): void };
    return new Promise((resolve, reject) => root.sync((err) => (err ? reject(err) : resolve())));
  }

  /** Persists a pending no-op applied index and closes this thread's handle (resolves once closed). */
  override close(): Promise<void> {
    const dbs = this.#dbs;
    if (this.#pendingApplied > 0 && this.#pendingApplied > readState(dbs).applied) {
      dbs.root.transactionSync(() => {
        const st = readState(dbs);
        st.applied = Math.max(st.applied, this.#pendingApplied);
        writeState(dbs, st);
      });
    }
    return super.close();
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
