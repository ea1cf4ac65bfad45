// The Raft driver on the main thread: ticks the pure core, runs its Ready loop (WAL append with
// group commit, then apply), tracks proposals until their result comes back from the apply
// worker, and serves ReadIndex barriers for linearizable reads.
//
// Write path:  propose() -> RawNode.propose -> Ready.entries -> Wal.save (one fdatasync per
// Ready; everything proposed while the previous sync ran rides in the next one) -> committed
// entries pushed on the apply ring -> apply worker (LMDB txn + applied index) -> RESULT on the
// return ring -> the proposal's promise resolves with the encoded response.
// A proposal is answered only after its entry is fsynced AND applied. A leader sends its MsgApps
// before its own Wal.save when the Ready keeps the durable term and vote (see #handleReady), so
// leader and followers sync in parallel; everyone else persists first, then sends.
import { RawNode } from '../raft/rawnode';
import { MemoryStorage } from '../raft/memory_storage';
import { ConfChange as RaftConfChange, ConfState, Entry, EntryType, Message, MessageType, NodeId, ProposalDroppedError, Ready, StateType } from '../raft/types';
import { ConfChange, encodeConfChange } from '../../shared/confchange';
import { Wal } from '../wal/wal';
import { Ring } from '../../shared/ring';
import { encodeEntry, EntryAuth, RequestKind } from '../../shared/entry';
import {
  defragMsgBytes, DefragOp, MSG_DEFRAG, readDefragMsg, writeDefragMsg, ENTRY_MSG_HEADER, INSTALL_MSG_HEADER, AuthMsg, LeaseMsg, MSG_AUTH, MSG_INSTALL, MSG_APPLIED, MSG_LEASE, MSG_RESULT, readAuthMsg, readAppliedMsg, readLeaseMsg, readResultMsg, RESULT_OK,
  writeEntryMsg,
} from '../../shared/apply_protocol';
import { assert, EtcdError, Errors } from '../../shared/errors';
import { fatal } from '../fatal';
import { Logger } from '../log';

export interface NodeOptions {
  id: NodeId;
  voters: NodeId[];
  heartbeatIntervalMs: number;
  electionTimeoutMs: number;
  maxRequestBytes: number;
  pendingProposalsMax: number;
  /** Linearizable reads waiting for a ReadIndex; more get "too many requests". */
  pendingReadsMax: number;
  requestTimeoutMs: number;
  raftLogRetainEntries: number;
  /** Applied entries between state-machine snapshots (etcd --snapshot-count). */
  snapshotCount: number;
  /** ...or this many bytes of entry data, whichever comes first. */
  snapshotEntryBytes: number;
  /** Makes everything applied so far durable in the state machine (an LMDB env sync). */
  syncStateMachine: () => Promise<void>;
  /** Sends Raft messages to peers (the peer transport); absent for a lone member. */
  send?: (msgs: Message[]) => void;
  /** Sends a MsgSnap's state to its follower; resolves when it has it. Null when one is already on its
   * way to that follower. termAt: the log's term at an index. Raft hears the outcome (reportSnapshot). */
  sendSnapshot?: (m: Message, termAt: (index: number) => number) => Promise<void> | null;
  /** This member's tag in request IDs (unique per member of the cluster, 0..8191): a result of an
   * entry another member proposed must never match one of our proposals. */
  requestIdTag?: number;
  /** The configuration at the applied index (voters only: a lone voter may overlap apply and fsync). */
  confState?: ConfState;
}

/** What the driver is built from, besides its options: Raft, storage, the apply rings, and the two
 * decisions it hands outward as entries are applied. Everything is given at construction. */
export interface NodeDeps {
  log: Logger;
  raw: RawNode;
  storage: MemoryStorage;
  wal: Wal;
  /** The state machine's applied index at start. */
  applied: number;
  toApply: Ring;
  fromApply: Ring;
  /** Decides committed ConfChange entries, in log order (src/main/member/conf_changes.ts). */
  decideConfChange: (e: Entry) => ConfChangeDecision;
  /** Called with the newest revision that is both applied and durable (the watch worker's fan-out limit). */
  onDurableRevision: (revision: number) => void;
}

/** What the driver does with a committed ConfChange entry (src/main/membership.ts decides it). */
export interface ConfChangeDecision {
  /** The change for Raft's configuration, or null when the change was refused. */
  raft: RaftConfChange | null;
  /** The entry for the apply worker that replaces the ConfChange on the apply ring (RequestKind.Membership). */
  applyData: Uint8Array;
}

interface Proposal {
  resolve: (resp: Uint8Array) => void;
  reject: (err: EtcdError) => void;
  timer: NodeJS.Timeout;
  /** Set while the proposal waits for a leader and is not in Raft yet (see #proposeTracked): it hands
   * the proposal to Raft. Null once handed over; from then on its outcome is unknown until applied. */
  submit: ((requestId: number) => void) | null;
  /** A normal write waiting in #batch for the next Ready turn: its entry's bytes. Null once handed over. */
  entry: ((requestId: number) => Uint8Array) | null;
  /** What Raft dropping it at submission is answered with (leader but not accepting, for example). */
  dropped: () => EtcdError;
}

/** Registers a function to run when the client gives up (cancel, reset, deadline): CallContext.onCancel. */
export type OnCancel = (fn: () => void) => void;

interface ReadBatch {
  ctx: number;
  /** Called with no argument when the read may proceed, or with the error that ends it. */
  waiters: Array<(err?: EtcdError) => void>;
  /** Set once the ReadState arrived: reads may proceed when applied >= index. */
  index: number;
  /** When the ReadIndex request was (last) sent; unanswered ones are sent again (see #retryReads). */
  sentAt: number;
}

/** etcd's readIndexRetryTime: a ReadIndex request lost on the way (leader change, dropped
 * message) is sent again after this long, so reads do not wait for their timeout. */
const readIndexRetryMs = 500;

export class RaftNode {
  readonly #opts: NodeOptions;
  readonly #log: Logger;
  readonly #raw: RawNode;
  readonly #storage: MemoryStorage;
  readonly #wal: Wal;
  readonly #toApply: Ring;
  readonly #fromApply: Ring;
  readonly #proposals = new Map<number, Proposal>();
  /** Request IDs of proposals waiting for a leader, in arrival order (each in #proposals with submit set). */
  #awaitingLeader: number[] = [];
  /** Normal writes proposed since the last Ready turn, in arrival order: they go to Raft together in one
   * MsgProp (#flushBatch), so a leader appends them once and sends each follower one MsgApp for all,
   * which the follower acknowledges once. Proposing them one by one cost a MsgApp, an ack and an
   * in-flight slot per write and per follower. */
  #batch: number[] = [];
  /** True while the Ready loop waits for a WAL write whose Ready's committed entries are all handed to
   * apply: entries committed meanwhile may follow them at once (#applyTaken). */
  #applyWhileSaving = false;
  /** The last #applyCommitted call: each waits for the one before it, so entries reach the apply ring
   * in log order. */
  #applyTail: Promise<void> = Promise.resolve();
  #awaitingFlushScheduled = false;
  #nextRequestId: number;
  #running = false;
  #scheduled = false;
  #stopped = false;
  #ticker: NodeJS.Timeout | null = null;
  #applied: number;
  #revision = 1;
  #compactRevision = 0;
  #lead: NodeId = 0n;
  /** Leader changes seen (to a leader or to none), for etcd_server_leader_changes_seen_total. */
  #leaderChanges = 0;
  #term = 0;
  #commit = 0;
  #readSeq = 0;
  #readQueue: Array<(err?: EtcdError) => void> = [];
  #readBatches: ReadBatch[] = [];
  /** Linearizable reads waiting for their ReadIndex (bounded by pendingReadsMax). */
  #readsWaiting = 0;
  /** Index of the last state-machine snapshot: the WAL holds nothing needed below it. */
  #snapshotIndex: number;
  #snapshotting = false;
  #campaignWhenApplied = false;
  /** One voter (us) and no learners: apply and fsync may overlap (see #handleReady). */
  #loneVoter: boolean;
  #isLearner: boolean;
  readonly #decideConfChange: (e: Entry) => ConfChangeDecision;
  readonly #onDurableRevision: (revision: number) => void;
  /** Index of the last result the apply worker returned: results come in log order (asserted). */
  #lastResultIndex = 0;
  /** Configurations by the index that made them, for the ConfState of state-machine snapshots. */
  #confHistory: Array<{ index: number; cs: ConfState }>;
  /** Highest index whose entry the WAL has fsynced. */
  #durableIndex: number;
  /** Revisions applied ahead of their fsync (a lone voter's overlap), in index order, waiting for #durableIndex. */
  #heldRevisions: Array<{ index: number; revision: number }> = [];
  /** Results applied ahead of their fsync, in index order, waiting for #durableIndex. */
  #held: Array<{ index: number; proposal: Proposal; ok: boolean; code: number; payload: Uint8Array }> = [];
  /** Entry bytes persisted since the last snapshot started, and the index they reach. */
  #bytesSinceSnapshot = 0;
  /** The log's last index when this process started: results of entries up to it are not ours. */
  readonly #startLastIndex: number;
  /** Applied lease changes, in apply order (the lessor; src/main/lease/lessor.ts). */
  readonly #leaseListeners: Array<(m: LeaseMsg) => void> = [];
  readonly #authListeners: Array<(m: AuthMsg) => void> = [];
  /** Called with true when this member becomes leader and false when it stops being leader. */
  readonly #leadershipListeners: Array<(isLeader: boolean) => void> = [];
  readonly #installListeners: Array<() => void> = [];
  #defragListener: ((op: DefragOp, num: number, text: string) => void) | null = null;
  /** Called after each applied batch with the newest revision (lock and election waiters). */
  readonly #appliedListeners = new Set<(revision: number) => void>();

  constructor(opts: NodeOptions, d: NodeDeps) {
    const { raw, storage, applied } = d;
    this.#opts = opts;
    this.#log = d.log;
    this.#raw = raw;
    this.#storage = storage;
    this.#wal = d.wal;
    this.#applied = applied;
    this.#toApply = d.toApply;
    this.#fromApply = d.fromApply;
    this.#decideConfChange = d.decideConfChange;
    this.#onDurableRevision = d.onDurableRevision;
    this.#snapshotIndex = storage.firstIndex() - 1;
    const cs = opts.confState ?? { voters: opts.voters, learners: [] };
    this.#confHistory = [{ index: applied, cs }];
    this.#loneVoter = isLone(cs, opts.id);
    this.#isLearner = cs.learners.includes(opts.id);
    this.#durableIndex = storage.lastIndex();
    // Request IDs: the member's tag in the high bits, a counter below (2^40 proposals per process).
    // Unique across members; entries from before this start (at or below the log's last index now)
    // are never matched (#startLastIndex), so a restarted counter cannot collide with them.
    this.#nextRequestId = (opts.requestIdTag ?? 0) * 2 ** 40 + 1;
    this.#startLastIndex = storage.lastIndex();
  }

  /** Raft messages from peers (the peer transport calls this). */
  step(msgs: Message[]): void {
    if (this.#stopped) return;
    for (const m of msgs) {
      // Local-only message types never come from the network.
      if (m.type === MessageType.Hup || m.type === MessageType.Beat || m.type === MessageType.Unreachable ||
        m.type === MessageType.SnapStatus || m.type === MessageType.CheckQuorum) continue;
      try {
        this.#raw.step(m);
      } catch (e) {
        // A proposal forwarded to us when we cannot take it is dropped, as etcd-io/raft drops it; any
        // other throw is a broken Raft invariant (one crash policy: src/main/fatal.ts).
        if (!(e instanceof ProposalDroppedError)) fatal(this.#log, 'raft step failed', e);
        this.#log.debug('raft dropped a forwarded proposal', { from: m.from });
      }
    }
    if (this.#applyWhileSaving) this.#applyTaken();
    this.#schedule();
  }

  /** While this Ready's WAL write runs, what a peer's message just committed (a follower's ack, on a
   * leader) goes to apply now rather than after the write (RawNode.takeCommitted). */
  #applyTaken(): void {
    const ents = this.#raw.takeCommitted(this.#durableIndex);
    if (ents.length > 0) this.#applyCommitted(ents).catch((e: unknown) => fatal(this.#log, 'handing committed entries to apply failed', e));
  }

  reportSnapshot(id: NodeId, failed: boolean): void {
    if (this.#stopped) return;
    this.#raw.reportSnapshot(id, failed);
    this.#schedule();
  }

  /** Called after a snapshot from the leader replaced the state machine (the lessor reloads). */
  onSnapshotInstalled(fn: () => void): void {
    this.#installListeners.push(fn);
  }

  /**
   * A follower received the leader's state (msg is the MsgSnap, dir its LMDB copy): the apply
   * worker replaces its state with the copy (one transaction), then Raft takes the snapshot and
   * the log continues after it. Entries the copy already covers are skipped by the apply worker.
   */
  /**
   * Defragment's messages to the apply worker (apply_protocol.ts MSG_DEFRAG), in order with the
   * committed entries; its replies go to onReply, in order with its results (a reply is handled before
   * the results and APPLIED of entries applied after it).
   */
  async sendDefrag(op: DefragOp, text: string): Promise<void> {
    const len = defragMsgBytes(text);
    const slot = this.#toApply.reserve(len) ?? await this.#applySlotWhenFree(len);
    writeDefragMsg(slot, op, 0, text);
    this.#toApply.commit();
    this.#toApply.notify();
  }

  onDefragReply(fn: ((op: DefragOp, num: number, text: string) => void) | null): void {
    this.#defragListener = fn;
  }

  async installSnapshot(msg: Message, dir: string): Promise<void> {
    if (this.#stopped || msg.snapshot === null) return;
    const index = msg.snapshot.metadata.index;
    if (index <= this.#applied) {
      this.step([msg]); // nothing to install; Raft answers the leader
      return;
    }
    const path = Buffer.from(dir, 'utf8');
    const len = INSTALL_MSG_HEADER + path.length;
    const slot = this.#toApply.reserve(len) ?? await this.#applySlotWhenFree(len);
    slot.fill(0, 0, INSTALL_MSG_HEADER);
    slot[0] = MSG_INSTALL;
    slot.set(path, INSTALL_MSG_HEADER);
    this.#toApply.commit();
    this.#toApply.notify();
    // The apply worker answers the install with an APPLIED message; wait for it, not in a poll loop.
    await new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        off();
        resolve();
      };
      const off = this.onApplied(() => { if (this.#applied >= index || this.#stopped) done(); });
      const timer = setTimeout(() => {
        off();
        reject(new Error(`snapshot at ${index} was not installed in time (applied ${this.#applied})`));
      }, this.#opts.requestTimeoutMs * 4);
      if (this.#applied >= index) done();
    });
    if (this.#stopped) return;
    for (const fn of this.#installListeners) fn();
    this.#log.info('installed snapshot from the leader', { index, term: msg.snapshot.metadata.term, from: msg.from });
    this.step([msg]);
  }

  reportUnreachable(id: NodeId): void {
    if (this.#stopped) return;
    this.#raw.reportUnreachable(id);
  }

  /** Asks the leader to hand leadership to `to` (etcd's MoveLeader). */
  transferLeader(to: NodeId): void {
    this.#raw.transferLeader(to);
    this.#schedule();
  }

  get leader(): NodeId {
    return this.#lead;
  }

  start(): void {
    const st = this.#raw.status();
    // A lone voter need not wait an election timeout (etcd fast-forwards its ticks for the same
    // reason). Raft refuses to campaign while committed conf changes are unapplied, so campaign
    // once the apply worker has caught up with the commit index.
    this.#campaignWhenApplied = this.#loneVoter && st.raftState !== StateType.Leader;
    this.#maybeCampaign();
    this.#ticker = setInterval(() => {
      this.#raw.tick();
      this.#retryReads();
      this.#schedule();
    }, this.#opts.heartbeatIntervalMs);
    this.#drainResultsLoop().catch((e: unknown) => fatal(this.#log, 'apply results loop failed', e));
    this.#schedule();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#ticker) clearInterval(this.#ticker);
    for (const [, p] of this.#proposals) {
      clearTimeout(p.timer);
      p.reject(Errors.stopped());
    }
    this.#proposals.clear();
    for (const h of this.#held.splice(0)) {
      clearTimeout(h.proposal.timer);
      h.proposal.reject(Errors.stopped());
    }
    for (const b of this.#readBatches) b.waiters.length = 0;
    while (this.#running) await new Promise((r) => setTimeout(r, 5));
  }

  /**
   * Proposes a write; resolves with the encoded response once the entry is durable and applied.
   * onCancel (the call's CallContext.onCancel): a proposal still waiting for a leader when the client
   * gives up is dropped and never reaches Raft.
   * auth: who proposes it (every client request passes one, empty without credentials; see
   * shared/entry.ts); none for the server's own requests.
   */
  propose(kind: RequestKind, body: Uint8Array, onCancel?: OnCancel, auth: EntryAuth | null = null): Promise<Uint8Array> {
    const entry = (requestId: number): Uint8Array => encodeEntry(kind, requestId, body, auth);
    return this.#proposeTracked(body.length, (requestId) => this.#raw.propose(entry(requestId)), Errors.notCapable, onCancel, entry);
  }

  /**
   * Proposes a membership change (Cluster service); resolves once the entry is durable and applied,
   * or rejects with the membership error the apply decided (member exists, not found, ...). While
   * another change is pending the leader refuses it: "request timed out", as etcd's proposer ends.
   */
  proposeConfChange(cc: ConfChange): Promise<Uint8Array> {
    return this.#proposeTracked(0, (requestId) => this.#raw.proposeConfChange(encodeConfChange({ ...cc, requestId })), Errors.timeout);
  }

  /**
   * Hands a new request ID to `submit` (which appends to Raft) and waits for its result or the timeout.
   * bodyBytes: the request's size, refused past --max-request-bytes.
   *
   * With no leader known the proposal waits for one, as etcd's raft node blocks Propose until there
   * is a leader (its propc is nil meanwhile), bounded by the request timeout and the client's cancel:
   * a proposal that never reached Raft can be refused with any status. Once handed to Raft (here, or
   * forwarded to the leader by Raft) its outcome is unknown until applied: the timeout answers etcd's
   * "request timed out" (UNAVAILABLE), which clientv3 does not retry for a mutation (rpc.ts MethodKind).
   * entry: given for a normal write, which is batched with the others of this turn (#batch); it is
   * still cancellable until the batch is handed to Raft.
   */
  #proposeTracked(
    bodyBytes: number, submit: (requestId: number) => void, dropped: () => EtcdError, onCancel?: OnCancel, entry?: (requestId: number) => Uint8Array,
  ): Promise<Uint8Array> {
    if (this.#stopped) return Promise.reject(Errors.stopped());
    if (this.#proposals.size >= this.#opts.pendingProposalsMax) return Promise.reject(Errors.tooManyRequests());
    if (bodyBytes > this.#opts.maxRequestBytes) return Promise.reject(Errors.requestTooLarge());
    const requestId = this.#nextRequestId++;
    const waitForLeader = this.#lead === 0n;
    const batched = !waitForLeader && entry !== undefined;
    if (!waitForLeader && !batched) {
      try {
        submit(requestId);
      } catch (e) {
        if (e instanceof ProposalDroppedError) return Promise.reject(dropped());
        throw e;
      }
    }
    const changes = this.#leaderChanges;
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        const p = this.#proposals.get(requestId);
        this.#proposals.delete(requestId);
        // etcd's parseProposeCtxErr: a leader change while waiting is the likely reason.
        const err = this.#leaderChanges !== changes && p?.submit === null ? Errors.timeoutDueToLeaderFail() : Errors.timeout();
        if (p?.submit != null) this.#compactAwaiting();
        reject(err);
      }, this.#opts.requestTimeoutMs);
      this.#proposals.set(requestId, { resolve, reject, timer, submit: waitForLeader || batched ? submit : null, entry: batched ? entry : null, dropped });
      if (waitForLeader || batched) {
        (waitForLeader ? this.#awaitingLeader : this.#batch).push(requestId);
        onCancel?.(() => this.#dropUnsubmitted(requestId));
      }
      this.#schedule();
    });
  }

  /** The client gave up on a proposal: if it has not reached Raft, it never will. */
  #dropUnsubmitted(requestId: number): void {
    const p = this.#proposals.get(requestId);
    if (p === undefined || p.submit === null) return;
    this.#proposals.delete(requestId);
    clearTimeout(p.timer);
    p.reject(Errors.timeout());
    this.#compactAwaiting();
  }

  /**
   * Hands this turn's normal writes to Raft in one MsgProp. With no leader known any more they wait for
   * one instead, as a write proposed now would. Raft drops all of them or none (a leader handing over
   * leadership, or removed): each is then answered as a dropped proposal.
   */
  #flushBatch(): void {
    if (this.#batch.length === 0) return;
    const ids = this.#batch;
    this.#batch = [];
    if (this.#lead === 0n) {
      for (const id of ids) if (this.#proposals.get(id)?.submit != null) this.#awaitingLeader.push(id);
      return;
    }
    const datas: Uint8Array[] = [];
    const taken: Array<[number, Proposal]> = [];
    for (const id of ids) {
      const p = this.#proposals.get(id);
      if (p === undefined || p.entry === null) continue; // timed out or cancelled meanwhile
      datas.push(p.entry(id));
      taken.push([id, p]);
    }
    if (datas.length === 0) return;
    try {
      this.#raw.proposeMany(datas);
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e;
      for (const [id, p] of taken) {
        this.#proposals.delete(id);
        clearTimeout(p.timer);
        p.reject(p.dropped());
      }
      return;
    }
    for (const [, p] of taken) {
      p.submit = null;
      p.entry = null;
    }
  }

  /** Keeps #awaitingLeader bounded while no leader comes: forgets IDs that no longer wait. */
  #compactAwaiting(): void {
    if (this.#awaitingLeader.length <= 2 * this.#proposals.size + 1024) return;
    this.#awaitingLeader = this.#awaitingLeader.filter((id) => this.#proposals.get(id)?.submit != null);
  }

  /** A leader is known again: hands the proposals that waited for one to Raft, in arrival order. */
  #submitAwaiting(): void {
    this.#awaitingFlushScheduled = false;
    if (this.#stopped || this.#lead === 0n) return;
    const ids = this.#awaitingLeader;
    this.#awaitingLeader = [];
    for (const id of ids) {
      const p = this.#proposals.get(id);
      if (p === undefined || p.submit === null) continue; // timed out or cancelled meanwhile
      const submit = p.submit;
      p.submit = null;
      p.entry = null;
      try {
        submit(id);
      } catch (e) {
        // Runs from setImmediate: a throw would be an uncaught exception, not the crash policy.
        if (!(e instanceof ProposalDroppedError)) fatal(this.#log, 'proposing a write that waited for a leader failed', e);
        this.#proposals.delete(id);
        clearTimeout(p.timer);
        p.reject(p.dropped());
      }
    }
    this.#schedule();
  }

  /** Resolves when a read issued now may be served from local state linearizably (ReadIndex). */
  readBarrier(): Promise<void> {
    if (this.#stopped) return Promise.reject(Errors.stopped());
    if (this.#lead === 0n) return Promise.reject(Errors.noLeader());
    if (this.#readsWaiting >= this.#opts.pendingReadsMax) return Promise.reject(Errors.tooManyRequests());
    this.#readsWaiting++;
    return new Promise<void>((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        done = true;
        this.#readsWaiting--;
        reject(Errors.timeout());
      }, this.#opts.requestTimeoutMs);
      this.#readQueue.push((err?: EtcdError) => {
        if (done) return;
        done = true;
        this.#readsWaiting--;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      });
      this.#schedule();
    });
  }

  /** For Maintenance.Status and auto-compaction (allocates; per-request paths use the getters). */
  status(): { term: number; lead: NodeId; commit: number; applied: number; revision: number; compactRevision: number; isLearner: boolean } {
    return {
      term: this.#term, lead: this.#lead, commit: this.#commit, applied: this.#applied,
      revision: this.#revision, compactRevision: this.#compactRevision, isLearner: this.isLearner,
    };
  }

  /** Whether this member is a learner in the configuration Raft holds now (checked on every request). */
  get isLearner(): boolean {
    return this.#isLearner;
  }

  /** The leader's view of every member's log (empty on a follower): MemberPromote's readiness check. */
  progress(): Array<{ id: NodeId; match: number }> {
    return this.#raw.progress();
  }

  /** The term of a log entry this member still holds (a snapshot's metadata). */
  termAt(index: number): number {
    return this.#storage.term(index);
  }

  /** Current Raft term, for response headers. */
  get term(): number {
    return this.#term;
  }

  /** Newest applied MVCC revision, for response headers. */
  get revision(): number {
    return this.#revision;
  }

  get leaderChanges(): number {
    return this.#leaderChanges;
  }

  get hasLeader(): boolean {
    return this.#lead !== 0n;
  }

  get isLeader(): boolean {
    return this.#lead === this.#opts.id;
  }

  /** The current election timeout (etcd extends lease deadlines by it when a leader takes over). */
  get electionTimeoutMs(): number {
    return this.#opts.electionTimeoutMs;
  }

  onLeadership(fn: (isLeader: boolean) => void): void {
    this.#leadershipListeners.push(fn);
  }

  /** Registers fn for every applied lease change, in apply order (the lessor). */
  onLeaseApplied(fn: (m: LeaseMsg) => void): void {
    this.#leaseListeners.push(fn);
  }

  /** Registers fn for every applied auth change, token and ended user, in apply order (the auth gate). */
  onAuthApplied(fn: (m: AuthMsg) => void): void {
    this.#authListeners.push(fn);
  }

  /** Registers fn to run after every applied batch; returns the function that unregisters it. */
  onApplied(fn: (revision: number) => void): () => void {
    this.#appliedListeners.add(fn);
    return () => this.#appliedListeners.delete(fn);
  }

  #maybeCampaign(): void {
    if (!this.#campaignWhenApplied) return;
    const st = this.#raw.status();
    if (st.raftState === StateType.Leader) {
      this.#campaignWhenApplied = false;
      return;
    }
    if (this.#applied < st.commit) return;
    this.#campaignWhenApplied = false;
    this.#raw.campaign();
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled || this.#running || this.#stopped) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#runReady();
    });
  }

  #issueReadIndex(): void {
    if (this.#readQueue.length === 0) return;
    const ctx = ++this.#readSeq;
    const ctxBytes = this.#readCtx(ctx);
    this.#readBatches.push({ ctx, waiters: this.#readQueue, index: -1, sentAt: Date.now() });
    this.#readQueue = [];
    this.#raw.readIndex(ctxBytes);
  }

  /** ReadIndex context: [member ID u64][sequence f64]. The leader tracks pending reads by context,
   * so contexts must be unique across the cluster, not only on this member. */
  #readCtx(seq: number): Uint8Array {
    const b = new Uint8Array(16);
    const v = new DataView(b.buffer);
    v.setBigUint64(0, this.#opts.id, true);
    v.setFloat64(8, seq, true);
    return b;
  }

  #retryReads(): void {
    const now = Date.now();
    for (const b of this.#readBatches) {
      if (b.index >= 0 || now - b.sentAt < readIndexRetryMs) continue;
      b.sentAt = now;
      this.#raw.readIndex(this.#readCtx(b.ctx));
    }
  }

  async #runReady(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      this.#flushBatch();
      this.#issueReadIndex();
      while (!this.#stopped && this.#raw.hasReady()) {
        const rd = this.#raw.ready();
        await this.#handleReady(rd);
        this.#raw.advance(rd);
        this.#flushBatch();
        this.#issueReadIndex();
      }
    } catch (e) {
      // A failed WAL write (a failed fsync stays failed), a full ring that broke its protocol, a Raft
      // invariant: nothing after it may be acknowledged.
      fatal(this.#log, 'raft ready loop failed', e);
    } finally {
      this.#running = false;
    }
    if (!this.#stopped && (this.#batch.length > 0 || this.#raw.hasReady())) this.#schedule();
  }

  async #handleReady(rd: Ready): Promise<void> {
    // A leader that keeps its durable term and vote sends its MsgApps and heartbeats now, so its WAL
    // write runs in parallel with the followers' (the Raft thesis §10.2.1). Safe because Raft counts
    // the leader's own log toward the commit quorum only once advance(rd) reports it durable, and
    // the commit index these messages carry is already durable here (messagesBeforePersist checks).
    // Decided before anything else runs: it must see Raft exactly as ready() left it.
    const early = this.#opts.send !== undefined && this.#raw.messagesBeforePersist(rd);
    if (early) this.#sendMessages(rd.messages);
    if (rd.softState) this.#onSoftState(rd.softState.lead);
    // A lone voter's committed entries may be applied while their WAL write is in flight (etcd
    // does the same for its leader): apply and fsync overlap, and the answer still waits for both
    // (results above the durable index are held). With peers, only what is durable here (below).
    const overlap = this.#loneVoter;
    if (rd.snapshot) {
      // The state machine already holds the snapshot (installSnapshot): make it durable, then
      // record the snapshot in the WAL so a restart replays only what follows it.
      const meta = rd.snapshot.metadata;
      await this.#opts.syncStateMachine();
      await this.#wal.releaseTo(meta.index, meta.term);
      this.#storage.applySnapshot(rd.snapshot);
      this.#resetConfHistory(meta.index, { voters: meta.voters, learners: meta.learners });
      this.#snapshotIndex = Math.max(this.#snapshotIndex, meta.index);
      if (meta.index > this.#commit) this.#commit = meta.index;
    }
    // Committed entries this member already holds durably do not wait for this Ready's WAL write either
    // (etcd's raftNode hands them to its applier before storage.Save too): committed means durable on a
    // quorum, and these are durable here, so a restart finds them in the WAL. This takes one WAL write
    // out of every cluster write's path: the leader learns of a commit while its next batch is being
    // written. Entries above the durable index (a follower told of a commit in the same MsgApp that
    // carries them) wait for the write, and so do a ConfChange and what follows it: its decision changes
    // Raft's configuration and the transport, which etcd also orders after the save.
    const applyFirst = overlap ? rd.committedEntries.length : this.#durablyHeldPrefix(rd.committedEntries);
    // etcd's MustSync: new entries, term or vote must be durable before anything depends on them; a
    // Ready that only moves the commit index needs no write (etcd writes it without a sync). The commit
    // index is recovered without it: from the applied index in LMDB, and from the leader. Skipping it
    // keeps a synchronous WAL write out of every write's path on the leader (between the followers'
    // acks and the apply) and on followers (between a commit notice and the next ack).
    // The apply worker is woken before the write is queued: queueing the write first measured slower for
    // a lone writer (p50 0.42 against 0.39 ms, 6 alternating rounds), the apply being the longer step.
    const mustSave = rd.entries.length > 0 || (rd.hardState !== null && rd.mustSync);
    if (applyFirst > 0) await this.#applyCommitted(rd.committedEntries.slice(0, applyFirst));
    const saving = mustSave ? this.#wal.save(rd.hardState, rd.entries) : null;
    if (saving !== null) {
      // Entries committed while the write runs may go to apply at once, if none of this Ready's waits.
      this.#applyWhileSaving = applyFirst === rd.committedEntries.length && !overlap;
      try {
        await saving;
      } finally {
        this.#applyWhileSaving = false;
      }
    }
    if (rd.entries.length > 0) {
      this.#storage.append(rd.entries);
      for (const e of rd.entries) this.#bytesSinceSnapshot += e.data.length;
    }
    if (rd.hardState) {
      this.#storage.setHardState(rd.hardState);
      this.#term = rd.hardState.term;
      this.#commit = rd.hardState.commit;
    }
    // Storage holds only what the WAL has synced. Only entries above the commit index may be replaced by
    // a new leader's, so the durable index never goes back below what was committed.
    const durable = this.#storage.lastIndex();
    assert(durable >= Math.min(this.#durableIndex, this.#commit), `durable index went back from ${this.#durableIndex} to ${durable} (commit ${this.#commit})`);
    this.#durableIndex = durable;
    this.#releaseHeld();
    // Term, vote and entries are durable: now the messages that depend on them may go out.
    if (!early && rd.messages.length > 0) this.#sendMessages(rd.messages);
    if (applyFirst < rd.committedEntries.length) await this.#applyCommitted(rd.committedEntries.slice(applyFirst));
    for (const rs of rd.readStates) this.#onReadState(rs.index, rs.requestCtx);
  }

  /** Raft messages go out as they are, except a snapshot, which goes on its own connection. */
  #sendMessages(msgs: Message[]): void {
    const send = this.#opts.send;
    if (send === undefined) return;
    let plain = msgs;
    for (const m of msgs) {
      if (m.type !== MessageType.Snap) continue;
      if (plain === msgs) plain = msgs.filter((x) => x.type !== MessageType.Snap);
      const sent = this.#opts.sendSnapshot?.(m, (i) => this.termAt(i));
      sent?.then(() => this.reportSnapshot(m.to, false), () => this.reportSnapshot(m.to, true));
    }
    if (plain.length > 0) send(plain);
  }

  /** How many of these committed entries may go to apply before this Ready's WAL write: those at or below
   * the durable index, up to the first ConfChange. */
  #durablyHeldPrefix(entries: Entry[]): number {
    let n = 0;
    while (n < entries.length && entries[n].index <= this.#durableIndex && entries[n].type !== EntryType.ConfChange) n++;
    return n;
  }

  /** Hands committed entries to the apply worker, in the order of the calls (the Ready loop's and
   * #applyTaken's), each call after the one before it. */
  #applyCommitted(entries: Entry[]): Promise<void> {
    const run = this.#applyTail.then(() => this.#pushCommitted(entries));
    this.#applyTail = run.catch(() => {}); // the failure is the caller's (the Ready loop's, or fatal)
    return run;
  }

  async #pushCommitted(entries: Entry[]): Promise<void> {
    if (entries.length === 0) return;
    for (const e of entries) await this.#pushApply(e);
    this.#toApply.notify();
    const last = entries[entries.length - 1].index;
    if (last > this.#commit) this.#commit = last;
    this.#maybeCompactLog(Math.min(last, this.#durableIndex));
  }

  /** Answers proposals whose entries are now both applied and durable, and publishes their revision. */
  #releaseHeld(): void {
    const revs = this.#heldRevisions.splice(0, this.#durablePrefix(this.#heldRevisions));
    if (revs.length > 0) this.#onDurableRevision(revs[revs.length - 1].revision);
    if (this.#held.length === 0) return;
    for (const h of this.#held.splice(0, this.#durablePrefix(this.#held))) this.#settle(h.proposal, h.ok, h.code, h.payload);
    this.#releaseReads();
  }

  /** How many of these index-ordered items are at or below the durable index. */
  #durablePrefix(items: ReadonlyArray<{ index: number }>): number {
    let n = 0;
    while (n < items.length && items[n].index <= this.#durableIndex) n++;
    return n;
  }

  #onSoftState(lead: NodeId): void {
    if (lead !== this.#lead) {
      this.#log.info(lead === 0n ? 'raft lost leader' : 'raft elected leader', { leader: lead, term: this.#raw.status().term });
      const was = this.isLeader;
      // etcd 3.4's linearizableReadLoop: reads whose ReadIndex is still unanswered when a new leader is
      // elected end with "leader changed" (clients retry it); those already answered stay valid.
      if (lead !== 0n) this.#failUnansweredReads(Errors.leaderChanged());
      this.#lead = lead;
      if (lead !== 0n) this.#leaderChanges++;
      this.#term = this.#raw.status().term;
      // Outside the Ready being handled: proposals that waited for a leader go to Raft next turn.
      if (lead !== 0n && this.#awaitingLeader.length > 0 && !this.#awaitingFlushScheduled) {
        this.#awaitingFlushScheduled = true;
        setImmediate(() => this.#submitAwaiting());
      }
      if (was !== this.isLeader) for (const fn of this.#leadershipListeners) fn(!was);
    }
  }

  async #pushApply(e: Entry): Promise<void> {
    let type = e.type;
    let data = e.data;
    if (e.type === EntryType.ConfChange) {
      // Decided here, in log order, as it is handed to apply: Raft's configuration, the membership and
      // the transport change at the same point of the log on every member.
      const d = this.#decide(e);
      if (d.raft !== null) {
        const cs = this.#raw.applyConfChange(d.raft);
        this.#confHistory.push({ index: e.index, cs });
        this.#followConf(cs);
      }
      type = EntryType.Normal;
      data = d.applyData;
    }
    const len = ENTRY_MSG_HEADER + data.length;
    const slot = this.#toApply.reserve(len) ?? await this.#applySlotWhenFree(len);
    writeEntryMsg(slot, type, e.index, e.term, data);
    this.#toApply.commit();
  }

  #decide(e: Entry): ConfChangeDecision {
    return this.#decideConfChange(e);
  }

  /** The configuration as of `index` (the newest change at or below it), for a snapshot's metadata. */
  #confStateAt(index: number): ConfState {
    let cs = this.#confHistory[0].cs;
    for (const h of this.#confHistory) if (h.index <= index) cs = h.cs;
    // Older changes than the one in force at `index` are no longer needed.
    while (this.#confHistory.length > 1 && this.#confHistory[1].index <= index) this.#confHistory.shift();
    return cs;
  }

  /** After a snapshot from the leader: its configuration is the one in force from its index on. */
  #resetConfHistory(index: number, cs: ConfState): void {
    this.#confHistory = [{ index, cs }];
    this.#followConf(cs);
  }

  /** What this member's role in a new configuration changes here. */
  #followConf(cs: ConfState): void {
    this.#loneVoter = isLone(cs, this.#opts.id);
    this.#isLearner = cs.learners.includes(this.#opts.id);
  }

  /** Backpressure: the apply worker is behind; let it drain until len bytes fit. */
  async #applySlotWhenFree(len: number): Promise<Uint8Array> {
    for (;;) {
      this.#toApply.notify();
      await this.#toApply.waitForSpaceAsync(100);
      const slot = this.#toApply.reserve(len);
      if (slot) return slot;
    }
  }

  /** Keeps raftLogRetainEntries applied entries in memory; older ones are released. */
  #maybeCompactLog(applied: number): void {
    const keep = this.#opts.raftLogRetainEntries;
    const first = this.#storage.firstIndex();
    // Never drop entries the snapshot does not cover: the term lookup for the next snapshot needs them.
    const to = Math.min(applied - keep, this.#snapshotIndex);
    if (to - first > keep) this.#storage.compact(to);
  }

  #onReadState(index: number, ctxBytes: Uint8Array): void {
    if (ctxBytes.byteLength !== 16) return;
    const v = new DataView(ctxBytes.buffer, ctxBytes.byteOffset, ctxBytes.byteLength);
    if (v.getBigUint64(0, true) !== this.#opts.id) return;
    const ctx = v.getFloat64(8, true);
    for (const b of this.#readBatches) if (b.ctx === ctx) b.index = index;
    this.#releaseReads();
  }

  #failUnansweredReads(err: EtcdError): void {
    const keep: ReadBatch[] = [];
    for (const b of this.#readBatches) {
      if (b.index >= 0) keep.push(b);
      else for (const w of b.waiters) w(err);
    }
    this.#readBatches = keep;
  }

  #releaseReads(): void {
    while (this.#readBatches.length > 0) {
      const b = this.#readBatches[0];
      // Linearizable reads never observe an entry that is applied but not yet durable.
      if (b.index < 0 || b.index > Math.min(this.#applied, this.#durableIndex)) return;
      this.#readBatches.shift();
      for (const w of b.waiters) w();
    }
  }

  async #drainResultsLoop(): Promise<void> {
    while (!this.#stopped) {
      await this.#fromApply.waitAsync(1000);
      while (this.#fromApply.drain((m) => this.#onApplyMessage(m)) > 0) { /* keep draining */ }
      this.#releaseReads();
      this.#maybeSnapshot();
      this.#maybeCampaign();
    }
  }

  /**
   * Every snapshotCount applied entries: make the state machine durable up to the applied index,
   * then let the WAL drop what precedes it. LMDB is the snapshot (it stores its applied index), so
   * a restart replays only the WAL tail after it, never the whole history.
   */
  #maybeSnapshot(): void {
    if (this.#snapshotting || this.#stopped) return;
    const index = Math.min(this.#applied, this.#durableIndex);
    if (index <= this.#snapshotIndex) return;
    if (index - this.#snapshotIndex < this.#opts.snapshotCount && this.#bytesSinceSnapshot < this.#opts.snapshotEntryBytes) return;
    this.#snapshotting = true;
    this.#bytesSinceSnapshot = 0;
    const term = this.#storage.term(index);
    this.#opts.syncStateMachine()
      .then(() => this.#wal.releaseTo(index, term))
      .then(() => {
        if (index > this.#storage.snapshot().metadata.index) this.#storage.createSnapshot(index, new Uint8Array(0), this.#confStateAt(index));
        this.#snapshotIndex = index;
        this.#log.info('saved snapshot', { index, term });
      }, (e: unknown) => fatal(this.#log, 'saving a snapshot failed (state machine sync or WAL release)', e))
      .finally(() => { this.#snapshotting = false; });
  }

  #onApplyMessage(m: Uint8Array): void {
    if (m[0] === MSG_APPLIED) {
      const a = readAppliedMsg(m);
      if (a.appliedIndex > this.#applied) this.#applied = a.appliedIndex;
      this.#revision = a.revision;
      this.#compactRevision = a.compactRevision;
      // Watchers see a revision only once its entry is durable here, as linearizable reads do: a lone
      // voter applies while the fsync runs, and an event must not outlive a crash that loses its entry.
      if (a.appliedIndex > this.#durableIndex) this.#heldRevisions.push({ index: a.appliedIndex, revision: a.revision });
      else {
        this.#heldRevisions.length = 0; // an index at or below the durable one covers every earlier batch
        this.#onDurableRevision(a.revision);
      }
      for (const fn of this.#appliedListeners) fn(a.revision);
      return;
    }
    if (m[0] === MSG_DEFRAG) {
      const d = readDefragMsg(m);
      this.#defragListener?.(d.op, d.num, d.text);
      return;
    }
    if (m[0] === MSG_LEASE) {
      const lm = readLeaseMsg(m);
      for (const fn of this.#leaseListeners) fn(lm);
      return;
    }
    if (m[0] === MSG_AUTH) {
      const am = readAuthMsg(m);
      for (const fn of this.#authListeners) fn(am);
      return;
    }
    if (m[0] !== MSG_RESULT) return;
    const r = readResultMsg(m);
    // The apply worker applies in log order; a result out of order would answer the wrong client.
    assert(r.index > this.#lastResultIndex, `apply results out of order: ${r.index} after ${this.#lastResultIndex}`);
    this.#lastResultIndex = r.index;
    if (r.index <= this.#startLastIndex) return; // proposed before this process started
    const p = this.#proposals.get(r.requestId);
    if (!p) return; // replayed entry, or its client timed out
    this.#proposals.delete(r.requestId);
    const ok = r.status === RESULT_OK;
    if (r.index > this.#durableIndex) {
      this.#held.push({ index: r.index, proposal: p, ok, code: r.code, payload: r.payload.slice() });
      return;
    }
    this.#settle(p, ok, r.code, r.payload.slice());
  }

  /** payload must be the caller's own copy (ring views die with the drain). */
  #settle(p: Proposal, ok: boolean, code: number, payload: Uint8Array): void {
    clearTimeout(p.timer);
    if (ok) p.resolve(payload);
    else p.reject(new EtcdError(code, Buffer.from(payload).toString('utf8')));
  }

}

function isLone(cs: ConfState, id: NodeId): boolean {
  return cs.voters.length === 1 && cs.voters[0] === id && cs.learners.length === 0;
}
