// The etcd v3 services on the main thread: decode, validate (as etcd's v3rpc layer does, before
// anything is proposed), route writes through Raft and reads to LMDB, encode. Handlers only see
// bytes in and bytes out (src/main/net/rpc.ts); the transport is GrpcH2Transport (net/grpc_h2.ts).
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import Piscina from 'piscina';
import { etcdserverpb } from '../shared/gen/etcd';
import { GrpcH2Transport } from './net/grpc_h2';
import { OnCancel, RaftNode } from './node/node';
import { alarmText, isTxnReadonly, MvccStore } from '../shared/mvcc/store';
import { EntryAuth, RequestKind } from '../shared/entry';
import { decodeRequest, Errors, EtcdError } from '../shared/errors';
import { toNum, toUint64, uint64ToLong } from '../shared/long';
import { limits } from '../shared/limits';
import { validateDeleteRange, validatePut, validateRange, validateTxn } from '../shared/validate';
import { ETCD_SERVER_VERSION } from '../shared/version';
import { HeaderMaker } from '../shared/header';
import type { RangeTask, RangeTaskResult } from '../shared/range_protocol';
import { Config } from './config';
import type { CallContext, StreamHandler } from './net/rpc';
import { Logger } from './log';
import { Lessor } from './lease/lessor';
import { registerLeaseService } from './lease/lease_service';
import { RecipeClient } from './lease/recipes';
import { registerLockService } from './lease/lock_service';
import { registerElectionService } from './lease/election_service';
import { LocalWatcher } from './watch/local_watch';
import type { Membership } from './membership';
import { onCompacted, requestCompaction } from './compactor';
import { AuthGate, AuthContext } from './auth/auth_gate';
import { registerAuthService } from './auth/auth_service';
import type { BcryptResult, BcryptTask } from '../shared/auth/bcrypt_task';
import { Defragmenter } from './defrag';
import { SnapshotService } from './snapshot';

export interface ServerDeps {
  cfg: Config;
  log: Logger;
  node: RaftNode;
  store: MvccStore;
  clusterId: bigint;
  memberId: bigint;
  /** The current membership (src/main/membership.ts); the Cluster service is src/main/cluster_service.ts. */
  membership: () => Membership;
  lmdbDir: string;
  compactor: Worker;
  /** The Watch stream handler (src/main/watch/watch_service.ts); absent in servers built without one. */
  watch?: { handler: StreamHandler };
  /** Lease bookkeeping (src/main/lease/); with it come the Lease service, and with watch too, Lock and Election. */
  lessor?: Lessor;
  /** Authentication (src/main/auth/): the Auth service and the permission checks. */
  auth: AuthGate;
  /** Defragment moved the store to dir (src/main/defrag.ts): for whoever starts workers later. */
  onStoreSwitched?: (dir: string) => void;
}

/** What a KV call carries besides its request: its cancel hook and who is calling (a token in the
 * metadata, or the client certificate's CN). */
export type KvContext = Pick<CallContext, 'onCancel'> & AuthContext;

/**
 * The KV service as functions of protobuf request bytes to response bytes: the gRPC KV handlers are
 * these functions, and in-process callers (Lock, Election) call them too, so every check on the way
 * (etcd's request validation, the quota, and next, permissions) applies to both.
 */
export interface KvApi {
  range(body: Uint8Array, ctx?: KvContext): Promise<Uint8Array>;
  put(body: Uint8Array, ctx?: KvContext): Promise<Uint8Array>;
  deleteRange(body: Uint8Array, ctx?: KvContext): Promise<Uint8Array>;
  txn(body: Uint8Array, ctx?: KvContext): Promise<Uint8Array>;
}

const SERVICE = 'etcdserverpb';

export class EtcdServer {
  /** gRPC on our own HTTP/2 framer; the gateway calls the same method table in process. */
  readonly transport: GrpcH2Transport;
  readonly kv: KvApi;
  readonly #d: ServerDeps;
  readonly #pool: Piscina;
  /** Password hashing and checking (src/workers/bcrypt.ts); threads start with the first login. */
  readonly #bcryptPool: Piscina;
  readonly #headers: HeaderMaker;
  /** IDs as decimal strings, as range tasks carry them to the pool. */
  readonly #clusterIdStr: string;
  readonly #memberIdStr: string;
  #physicalCompactRev = 0;
  #dbSize = 0;
  #dbSizeAt = 0;
  #physicalWaiters: Array<{ rev: number; resolve: () => void }> = [];
  /** The store's directory, named in range tasks; Defragment changes it. */
  #lmdbDir: string;
  readonly #defrag: Defragmenter;

  constructor(d: ServerDeps) {
    this.#d = d;
    this.#clusterIdStr = d.clusterId.toString();
    this.#memberIdStr = d.memberId.toString();
    this.#headers = new HeaderMaker(this.#clusterIdStr, this.#memberIdStr);
    this.#lmdbDir = d.lmdbDir;
    this.#defrag = new Defragmenter({
      memberDir: path.dirname(d.lmdbDir),
      node: d.node,
      store: d.store,
      compactor: d.compactor,
      log: d.log,
      onSwitched: (dir) => {
        this.#lmdbDir = dir;
        d.onStoreSwitched?.(dir);
      },
    });
    this.#pool = new Piscina({
      filename: path.join(__dirname, '../workers/range.js'),
      minThreads: 1,
      maxThreads: limits.rangeWorkersMax,
      maxQueue: limits.rangeQueueMax,
      idleTimeout: limits.rangeWorkerIdleMs,
    });
    this.#bcryptPool = new Piscina({
      filename: path.join(__dirname, '../workers/bcrypt.js'),
      minThreads: 0,
      maxThreads: limits.bcryptWorkersMax,
      maxQueue: limits.bcryptQueueMax,
      idleTimeout: limits.rangeWorkerIdleMs,
    });
    const transportOpts = {
      recvMessageBytesMax: d.cfg.maxRequestBytes + limits.grpcOverheadBytes,
      streamsPerConnMax: d.cfg.maxConcurrentStreams,
      keepaliveMinTimeMs: d.cfg.grpcKeepaliveMinTimeMs,
      keepaliveIntervalMs: d.cfg.grpcKeepaliveIntervalMs,
      keepaliveTimeoutMs: d.cfg.grpcKeepaliveTimeoutMs,
      onError: (err: Error) => d.log.debug('grpc session error', { error: err.message }),
    };
    this.transport = new GrpcH2Transport(transportOpts);
    this.kv = {
      range: (b, ctx) => this.#range(b, ctx),
      put: (b, ctx) => this.#put(b, ctx),
      deleteRange: (b, ctx) => this.#deleteRange(b, ctx),
      txn: (b, ctx) => this.#txn(b, ctx),
    };
    onCompacted(d.compactor, (rev) => this.#onPhysicalCompactDone(rev));
    this.#register();
    requestCompaction(d.compactor); // finish any compaction a restart interrupted
  }

  #bcrypt(task: BcryptTask): Promise<BcryptResult> {
    return runPooled<BcryptResult>(this.#bcryptPool, task);
  }

  async close(): Promise<void> {
    await this.#bcryptPool.destroy();
    await this.#pool.destroy();
  }

  /** Range pool size and backlog, for /metrics. */
  rangePoolStats(): { threads: number; queueSize: number } {
    return { threads: this.#pool.threads.length, queueSize: this.#pool.queueSize };
  }

  #register(): void {
    const t = this.transport;
    const kv = `/${SERVICE}.KV/`;
    t.addUnary(kv + 'Range', (b, ctx) => this.kv.range(b, ctx), 'read');
    t.addUnary(kv + 'Put', (b, ctx) => this.kv.put(b, ctx));
    t.addUnary(kv + 'DeleteRange', (b, ctx) => this.kv.deleteRange(b, ctx));
    t.addUnary(kv + 'Txn', (b, ctx) => this.kv.txn(b, ctx));
    t.addUnary(kv + 'Compact', (b, ctx) => this.#compact(b, ctx.onCancel, this.#d.auth.entryAuth(ctx)));
    t.addUnary(`/${SERVICE}.Maintenance/Status`, () => this.#status(), 'read');
    // etcd's authMaintenanceServer: HashKV, Hash and Defragment (with Snapshot) for root only.
    t.addUnary(`/${SERVICE}.Maintenance/HashKV`, (b, ctx) => {
      this.#d.auth.checkAdminMaintenance(ctx);
      return this.#hashKV(b);
    }, 'read');
    t.addUnary(`/${SERVICE}.Maintenance/Hash`, (b, ctx) => {
      this.#d.auth.checkAdminMaintenance(ctx);
      return this.#hash(b);
    }, 'read');
    // Repeating a Defragment only defragments again.
    t.addUnary(`/${SERVICE}.Maintenance/Defragment`, (b, ctx) => {
      this.#d.auth.checkAdminMaintenance(ctx);
      return this.#defragment(b);
    }, 'read');
    // etcd 3.4's snapshot file, made off the main thread and streamed (src/main/snapshot.ts); root only.
    const snapshots = new SnapshotService({
      lmdbDir: () => this.#lmdbDir,
      membership: () => this.#d.membership().toState(),
      checkAdmin: (ctx) => this.#d.auth.checkAdminMaintenance(ctx),
      log: this.#d.log,
    });
    t.addStream(`/${SERVICE}.Maintenance/Snapshot`, snapshots.handler);
    t.addUnary(`/${SERVICE}.Maintenance/Alarm`, (b, ctx) => this.#alarm(b, ctx.onCancel));
    registerAuthService(t, {
      gate: this.#d.auth,
      propose: (kind, body, onCancel, auth) => this.#d.node.propose(kind, body, onCancel, auth),
      readBarrier: () => this.#d.node.readBarrier(),
      hashPassword: (password) => this.#bcrypt({ op: 'hash', password, cost: this.#d.cfg.auth.bcryptCost }) as Promise<string>,
      checkPassword: (password, hash) => this.#bcrypt({ op: 'compare', password, hash }) as Promise<boolean>,
      log: this.#d.log,
    });
    // A repeated MoveLeader to the same member changes nothing more: etcd's DEADLINE_EXCEEDED is kept.
    t.addUnary(`/${SERVICE}.Maintenance/MoveLeader`, (b, ctx) => this.#moveLeader(b, ctx.deadlineMs), 'read');
    // etcd's interceptors: a learner serves only Status and serializable Range (isRPCSupportedForLearner).
    t.setGuard({
      unary: (p, body) => {
        if (!this.#d.node.isLearner || p === `/${SERVICE}.Maintenance/Status`) return;
        if (p === `/${SERVICE}.KV/Range` && decodeRequest(() => etcdserverpb.RangeRequest.decode(body)).serializable) return;
        throw Errors.notSupportedForLearner();
      },
      stream: () => {
        if (this.#d.node.isLearner) throw Errors.notSupportedForLearner();
      },
    });
    if (this.#d.watch) t.addStream(`/${SERVICE}.Watch/Watch`, this.#d.watch.handler);
    const lessor = this.#d.lessor;
    if (!lessor) return;
    registerLeaseService(t, lessor, () => this.header(), (ctx) => this.#d.auth.entryAuth(ctx), () => this.#checkQuota(LEASE_OVERHEAD_BYTES));
    // Lock and Election run etcd's client recipes over this server's own KV functions and Watch handler.
    if (!this.#d.watch) return;
    const client = new RecipeClient(this.kv, new LocalWatcher(this.#d.watch.handler), lessor);
    registerLockService(t, client);
    registerElectionService(t, client);
  }

  header(revision?: number): etcdserverpb.IResponseHeader {
    const node = this.#d.node;
    return this.#headers.make(revision ?? node.revision, node.term);
  }

  async #range(body: Uint8Array, ctx?: KvContext): Promise<Uint8Array> {
    const req = decodeRequest(() => etcdserverpb.RangeRequest.decode(body));
    validateRange(req);
    if (!req.serializable) await this.#d.node.readBarrier();
    const gate = this.#d.auth;
    if (!gate.mustCheck(ctx)) return this.#rangeLocal(req, body);
    return gate.serialized(ctx, (st, ai) => st.checkRange(ai, req.key, req.rangeEnd), () => this.#rangeLocal(req, body));
  }

  #rangeLocal(req: etcdserverpb.RangeRequest, body: Uint8Array): Promise<Uint8Array> | Uint8Array {
    if (rangeIsInline(req)) {
      const resp = this.#d.store.range(req);
      resp.header = this.header(toNum(resp.header?.revision));
      return etcdserverpb.RangeResponse.encode(resp).finish();
    }
    return this.#runPool('range', body);
  }

  async #runPool(kind: 'range' | 'hashKV' | 'hash', body: Uint8Array): Promise<Uint8Array> {
    const task: RangeTask = {
      kind, lmdbDir: this.#lmdbDir, clusterId: this.#clusterIdStr, memberId: this.#memberIdStr,
      raftTerm: this.#d.node.term, request: body,
    };
    const r = await runPooled<RangeTaskResult>(this.#pool, task);
    if ('err' in r) throw new EtcdError(r.err.code, r.err.message);
    return r.ok;
  }

  /** etcd's kv.HashByRev(rev) on this member's applied state (0: its current revision), for the
   * corruption checks (src/main/member/corrupt.ts); the errors are HashKV's (compacted, future revision). */
  async hashByRev(rev: number): Promise<{ hash: number; revision: number; compactRevision: number }> {
    const out = await this.#runPool('hashKV', etcdserverpb.HashKVRequest.encode({ revision: rev }).finish());
    const r = etcdserverpb.HashKVResponse.decode(out);
    return { hash: r.hash ?? 0, revision: toNum(r.header?.revision), compactRevision: toNum(r.compactRevision) };
  }

  /** HashKV is computed over the local state; as etcd, it reflects what this member has applied. */
  #hashKV(body: Uint8Array): Promise<Uint8Array> {
    decodeRequest(() => etcdserverpb.HashKVRequest.decode(body));
    return this.#runPool('hashKV', body);
  }

  /** Maintenance.Hash of this member's whole store (src/shared/mvcc/hash.ts hashAll), a full scan: in the pool. */
  #hash(body: Uint8Array): Promise<Uint8Array> {
    decodeRequest(() => etcdserverpb.HashRequest.decode(body));
    return this.#runPool('hash', body);
  }

  // Writes carry the caller's user into the log; the apply worker checks them against the auth store
  // as it is when they apply (etcd's authApplierV3), so a denied write still takes a Raft index, as in etcd.
  // Not async: below the quota a Put goes straight to propose(), without a promise or turn of its own.
  #put(body: Uint8Array, ctx?: KvContext): Promise<Uint8Array> {
    const req = decodeRequest(() => etcdserverpb.PutRequest.decode(body));
    validatePut(req);
    const auth = this.#d.auth.entryAuth(ctx);
    const cost = costPut(req);
    if (this.#overQuota(cost)) return this.#refuseNoSpace(cost);
    return this.#d.node.propose(RequestKind.Put, body, ctx?.onCancel, auth);
  }

  #deleteRange(body: Uint8Array, ctx?: KvContext): Promise<Uint8Array> {
    validateDeleteRange(decodeRequest(() => etcdserverpb.DeleteRangeRequest.decode(body)));
    return this.#d.node.propose(RequestKind.DeleteRange, body, ctx?.onCancel, this.#d.auth.entryAuth(ctx));
  }

  #txn(body: Uint8Array, ctx?: KvContext): Promise<Uint8Array> {
    const req = decodeRequest(() => etcdserverpb.TxnRequest.decode(body));
    validateTxn(req, this.#d.cfg.maxTxnOps);
    // As etcd's quotaKVServer, every txn is checked, a read-only one at cost 0 (refused once the
    // database has reached the quota).
    const cost = costTxn(req);
    if (this.#overQuota(cost)) return this.#refuseNoSpace(cost);
    if (!isTxnReadonly(req)) {
      const auth = this.#d.auth.entryAuth(ctx);
      return this.#d.node.propose(RequestKind.Txn, body, ctx?.onCancel, auth);
    }
    return this.#txnReadOnly(req, ctx);
  }

  /** As etcd: a txn that only reads is served from local state, after a ReadIndex barrier unless
   * every range in it is serializable. */
  async #txnReadOnly(req: etcdserverpb.TxnRequest, ctx?: KvContext): Promise<Uint8Array> {
    if (!isTxnSerializable(req)) await this.#d.node.readBarrier();
    if (!this.#d.auth.mustCheck(ctx)) return this.#txnLocal(req);
    return this.#d.auth.serialized(ctx, (st, ai) => st.checkTxn(ai, req), () => this.#txnLocal(req));
  }

  #txnLocal(req: etcdserverpb.TxnRequest): Uint8Array {
    const resp = this.#d.store.txnReadOnly(req);
    resp.header = this.header(toNum(resp.header?.revision));
    return etcdserverpb.TxnResponse.encode(resp).finish();
  }

  async #compact(body: Uint8Array, onCancel?: OnCancel, auth: EntryAuth | null = null): Promise<Uint8Array> {
    const req = decodeRequest(() => etcdserverpb.CompactionRequest.decode(body));
    const resp = await this.#d.node.propose(RequestKind.Compact, body, onCancel, auth);
    requestCompaction(this.#d.compactor);
    if (req.physical) await this.#waitPhysicalCompaction(toNum(req.revision));
    return resp;
  }

  /**
   * --quota-backend-bytes, checked as etcd's quota servers do before a Put, a writing Txn or a
   * LeaseGrant is proposed: when database size plus the request's cost (etcd's estimate) is not below
   * the quota, this member raises a NOSPACE alarm through the log (waiting until it is applied, as
   * etcd's quotaAlarmer does) and the request fails with "database space exceeded". The alarm latches:
   * every member then refuses puts, txns with puts and grants at apply until `alarm disarm`
   * (src/workers/mvcc/alarm_apply.ts). Deletes and compactions stay allowed. A negative quota turns the
   * check off, as etcd. The size is sampled at most every quotaSampleMs.
   */
  /** etcd's quota check, with the LeaseGrant path's signature: resolves, or refuses over the quota. */
  async #checkQuota(cost: number): Promise<void> {
    if (this.#overQuota(cost)) await this.#refuseNoSpace(cost);
  }

  /** The database size (sampled at most every quotaSampleMs) plus cost reaches the quota. */
  #overQuota(cost: number): boolean {
    const quota = this.#d.cfg.quotaBackendBytes;
    if (quota < 0) return false;
    const now = Date.now();
    if (now - this.#dbSizeAt > limits.quotaSampleMs) {
      this.#dbSize = this.#d.store.dbSizeBytes();
      this.#dbSizeAt = now;
    }
    return this.#dbSize + cost >= quota;
  }

  /** Over the quota: raises this member's NOSPACE alarm through the log (once), then refuses. */
  async #refuseNoSpace(cost: number): Promise<never> {
    const quota = this.#d.cfg.quotaBackendBytes;
    const own = this.#d.memberId;
    const raised = this.#d.store.alarms().some((a) => a.memberId === own && a.alarm === etcdserverpb.AlarmType.NOSPACE);
    if (!raised) {
      const req = { action: etcdserverpb.AlarmRequest.AlarmAction.ACTIVATE, memberID: uint64ToLong(own), alarm: etcdserverpb.AlarmType.NOSPACE };
      this.#d.log.warn('database space exceeded; raising NOSPACE alarm', { quota, size: this.#dbSize, cost });
      // etcd ignores the outcome of its alarm proposal too: the request fails either way.
      await this.#d.node.propose(RequestKind.Alarm, etcdserverpb.AlarmRequest.encode(req).finish()).catch(() => undefined);
    }
    throw Errors.noSpace();
  }

  /** etcd's Maintenance.Defragment, while this member keeps serving (src/main/defrag.ts). */
  async #defragment(body: Uint8Array): Promise<Uint8Array> {
    decodeRequest(() => etcdserverpb.DefragmentRequest.decode(body));
    await this.#defrag.defragment();
    return etcdserverpb.DefragmentResponse.encode({}).finish(); // etcd 3.4 sends no header either
  }

  /** etcd's Maintenance.Alarm: every action goes through the log (GET too) and is answered once applied. */
  async #alarm(body: Uint8Array, onCancel?: OnCancel): Promise<Uint8Array> {
    decodeRequest(() => etcdserverpb.AlarmRequest.decode(body));
    return this.#d.node.propose(RequestKind.Alarm, body, onCancel);
  }

  /** Starts a compaction at `revision` through Raft (auto-compaction uses this). */
  compactTo(revision: number): Promise<Uint8Array> {
    return this.#compact(etcdserverpb.CompactionRequest.encode({ revision }).finish());
  }

  #waitPhysicalCompaction(rev: number): Promise<void> {
    if (this.#physicalCompactRev >= rev) return Promise.resolve();
    return new Promise((resolve) => this.#physicalWaiters.push({ rev, resolve }));
  }

  #onPhysicalCompactDone(rev: number): void {
    this.#physicalCompactRev = Math.max(this.#physicalCompactRev, rev);
    const still: Array<{ rev: number; resolve: () => void }> = [];
    for (const w of this.#physicalWaiters) (w.rev <= this.#physicalCompactRev ? w.resolve() : still.push(w));
    this.#physicalWaiters = still;
  }

  #status(): Uint8Array {
    const st = this.#d.node.status();
    // As etcd 3.4's Status: "no leader" first, then each alarm in protobuf text format.
    const errors = st.lead === 0n ? [Errors.noLeader().message] : [];
    for (const a of this.#d.store.alarms()) errors.push(alarmText(a));
    return etcdserverpb.StatusResponse.encode({
      errors,
      header: this.header(),
      version: ETCD_SERVER_VERSION,
      dbSize: this.#d.store.dbSizeBytes(),
      leader: uint64ToLong(st.lead),
      raftIndex: st.commit,
      raftTerm: st.term,
      raftAppliedIndex: st.applied,
      dbSizeInUse: this.#d.store.dbSizeInUseBytes(),
      isLearner: st.isLearner,
    }).finish();
  }

  /** etcd's MoveLeader: only the leader may hand over, to a voting member; waits until it has. */
  async #moveLeader(body: Uint8Array, deadlineMs: number): Promise<Uint8Array> {
    const req = decodeRequest(() => etcdserverpb.MoveLeaderRequest.decode(body));
    const node = this.#d.node;
    if (!node.isLeader) throw Errors.notLeader();
    const target = toUint64(req.targetID);
    const m = this.#d.membership().get(target);
    if (m === undefined || m.isLearner) throw Errors.badLeaderTransferee();
    node.transferLeader(target);
    const until = deadlineMs > 0 ? deadlineMs : Date.now() + limits.requestTimeoutMs;
    while (node.leader !== target) {
      if (Date.now() >= until) throw Errors.timeoutLeaderTransfer();
      await new Promise((r) => setTimeout(r, this.#d.cfg.heartbeatIntervalMs));
    }
    return etcdserverpb.MoveLeaderResponse.encode({}).finish();
  }

}

/** Point reads and small bounded scans run inline (an LMDB read costs about a microsecond);
 * anything that may scan many keys goes to the range pool so the event loop never stalls. */
function rangeIsInline(r: etcdserverpb.IRangeRequest): boolean {
  if (!r.rangeEnd || r.rangeEnd.length === 0) return true;
  const limit = toNum(r.limit);
  if (r.countOnly || limit <= 0 || limit > limits.rangeInlineKeysMax) return false;
  if ((r.sortOrder ?? 0) !== 0) return false;
  return toNum(r.minModRevision) === 0 && toNum(r.maxModRevision) === 0 &&
    toNum(r.minCreateRevision) === 0 && toNum(r.maxCreateRevision) === 0;
}

/** etcd's quota costs (etcdserver/quota.go): a key's metadata and a lease are estimated, not measured. */
const KV_OVERHEAD_BYTES = 256;
const LEASE_OVERHEAD_BYTES = 64;

function costPut(r: etcdserverpb.IPutRequest): number {
  return KV_OVERHEAD_BYTES + (r.key?.length ?? 0) + (r.value?.length ?? 0);
}

/** The larger branch's puts (only top-level puts count, as in etcd). */
function costTxn(r: etcdserverpb.ITxnRequest): number {
  const cost = (ops: etcdserverpb.IRequestOp[] | null | undefined): number =>
    (ops ?? []).reduce((n, op) => n + (op.requestPut ? costPut(op.requestPut) : 0), 0);
  return Math.max(cost(r.success), cost(r.failure));
}

function isTxnSerializable(r: etcdserverpb.ITxnRequest): boolean {
  const ops = [...(r.success ?? []), ...(r.failure ?? [])];
  return ops.every((op) => op.requestRange?.serializable === true);
}

/** A task on a piscina pool whose queue is bounded: a full queue is etcd's "too many requests". */
async function runPooled<T>(pool: Piscina, task: unknown): Promise<T> {
  try {
    return (await pool.run(task)) as T;
  } catch (e) {
    if ((e as Error).message?.includes('Task queue is at limit')) throw Errors.tooManyRequests();
    throw e;
  }
}
