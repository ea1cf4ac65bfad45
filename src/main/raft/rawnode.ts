// RawNode: the driver's handle on one Raft member, after etcd-io/raft rawnode.go (classic,
// synchronous-storage Ready semantics).
//
// The driver loop:
//   while (node.hasReady()) {
//     const rd = node.ready();
//     persist rd.hardState, rd.entries (append, overwriting any conflicting suffix), rd.snapshot;
//     send rd.messages;                       // only after the above is durable (but see below)
//     apply rd.snapshot, then rd.committedEntries in order;
//     serve rd.readStates once applied >= readState.index;
//     node.advance(rd);                       // rd.entries are durable: the leader counts them
//   }
// Exactly one Ready may be outstanding: ready() must be followed by advance(rd) before the next
// ready(); the node may keep stepping messages and ticking in between (while the driver writes).
// A single-voter leader (no learners) commits its entries as they are appended, so one Ready may
// carry the same entries in `entries` and `committedEntries` (persist first, then apply).
//
// A leader may send rd.messages BEFORE persisting rd.entries, in parallel with its own write,
// when rd.hardState keeps the durable term and vote (the Raft thesis §10.2.1; etcd-io/raft's
// async storage writes). This is safe because its own log counts toward the commit quorum only
// from advance(rd) on (Raft.selfPersisted): an entry commits only when a quorum holds it durably,
// and a commit index it sends covers only entries of earlier Readies, already durable here.
// Term and vote changes, followers' acks and vote grants still go out only after the write.

import { assert } from '../../shared/errors';
import { Raft, isEmptyHardState } from './raft';
import { Config, ConfigExtras, ConfChange, ConfState, Entry, EntryType, HardState, Message, MessageType, NodeId, ProposalDroppedError, Ready, SoftState, StateType } from './types';
import { isLocalMsg, isResponseMsg, newMessage } from './util';

export interface Status {
  id: NodeId;
  term: number;
  vote: NodeId;
  commit: number;
  lead: NodeId;
  raftState: StateType;
  applied: number;
  lastIndex: number;
  /** This member is a learner of its current configuration. */
  isLearner: boolean;
  /** The configuration as this member has applied it (voters and learners sorted). */
  config: ConfState;
}

/** The leader's view of one member (RawNode.progress()). */
export interface MemberProgress {
  id: NodeId;
  /** Highest index known to be replicated on the member. */
  match: number;
  /** Next index the leader will send. */
  next: number;
  isLearner: boolean;
  /** Heard from within the current check-quorum window (or just added). */
  recentActive: boolean;
}

export class RawNode {
  readonly #raft: Raft;
  #prevSoftState: SoftState;
  #prevHardState: HardState;
  /** True between ready() and advance(). */
  #readyOutstanding: boolean;
  /** The last committed index handed to the driver (by ready() or takeCommitted()). */
  #handedOut = 0;

  constructor(config: Config & ConfigExtras) {
    this.#raft = new Raft(config);
    this.#prevSoftState = this.#raft.softState();
    this.#prevHardState = this.#raft.hardState();
    this.#readyOutstanding = false;
  }

  /** Advances logical time by one tick (election and heartbeat timeouts are counted in ticks). */
  tick(): void {
    this.#raft.tick();
  }

  /** Starts an election now (pre-vote first when enabled). A single voter becomes leader at once. */
  campaign(): void {
    this.#raft.step(newMessage({ type: MessageType.Hup, from: this.#raft.id }));
  }

  /** Appends data to the log; throws ProposalDroppedError unless we are a leader accepting it. */
  propose(data: Uint8Array): void {
    this.proposeMany([data]);
  }

  /** Proposes several normal entries in one MsgProp: one append and one MsgApp per follower for all of
   * them. Dropped (ProposalDroppedError) together or not at all. */
  proposeMany(datas: Uint8Array[]): void {
    assert(datas.length > 0, 'proposeMany without entries');
    this.#raft.step(newMessage({
      type: MessageType.Prop,
      from: this.#raft.id,
      entries: datas.map((data) => ({ term: 0, index: 0, type: EntryType.Normal, data })),
    }));
  }

  /**
   * Proposes a configuration change: appends an EntryType.ConfChange entry whose data (the
   * encoded change) is opaque to raft. Once it commits, the driver decodes it and calls
   * applyConfChange. Throws ProposalDroppedError when propose() would, and when we are leader and
   * a conf change is already pending (appended but not applied): one change at a time.
   */
  proposeConfChange(data: Uint8Array): void {
    this.#raft.step(newMessage({
      type: MessageType.Prop,
      from: this.#raft.id,
      entries: [{ term: 0, index: 0, type: EntryType.ConfChange, data }],
    }));
  }

  /**
   * Applies a committed conf change, decoded from a ConfChange entry by the driver, in log order
   * with the other committed entries (before or after advance() of the Ready that carried it).
   * Idempotent; refused changes (removing the last voter, demoting a voter) leave the
   * configuration unchanged. Returns the resulting configuration (to store in snapshots).
   */
  applyConfChange(cc: ConfChange): ConfState {
    return this.#raft.applyConfChange(cc);
  }

  /**
   * Requests a linearizable read point; the answer arrives as a ReadState with requestCtx = ctx
   * (ctx must be unique among pending reads). Dropped silently when no leader is known.
   */
  readIndex(ctx: Uint8Array): void {
    try {
      this.#raft.step(newMessage({ type: MessageType.ReadIndex, context: ctx }));
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e;
    }
  }

  /**
   * Delivers a message from the network. Local message types are refused; a message from an
   * unknown member that is a response is ignored; a dropped forwarded proposal is ignored.
   */
  step(m: Message): void {
    if (isLocalMsg(m.type)) return;
    if (isResponseMsg(m.type) && !this.#raft.trk.progress.has(m.from)) return;
    try {
      this.#raft.step(m);
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e;
    }
  }

  /** Asks the leader to hand leadership to `to` (etcd: MsgTransferLeader with From = transferee). */
  transferLeader(to: NodeId): void {
    this.#raft.step(newMessage({ type: MessageType.TransferLeader, from: to }));
  }

  /** Reports that a snapshot sent to `id` finished (failed = rejected/lost). */
  reportSnapshot(id: NodeId, failed: boolean): void {
    this.#raft.step(newMessage({ type: MessageType.SnapStatus, from: id, reject: failed }));
  }

  /** Reports that the last message to `id` could not be delivered. */
  reportUnreachable(id: NodeId): void {
    this.#raft.step(newMessage({ type: MessageType.Unreachable, from: id }));
  }

  hasReady(): boolean {
    const r = this.#raft;
    const ss = r.softState();
    if (ss.lead !== this.#prevSoftState.lead || ss.raftState !== this.#prevSoftState.raftState) return true;
    const hs = r.hardState();
    if (!isEmptyHardState(hs) && !hardStateEqual(hs, this.#prevHardState)) return true;
    if (r.raftLog.hasPendingSnapshot()) return true;
    if (r.msgs.length > 0 || r.raftLog.unstableEntries().length > 0 || r.raftLog.hasNextEnts()) return true;
    return r.readStates.length > 0;
  }

  /** What the driver must persist, send and apply now; follow with advance(rd). */
  ready(): Ready {
    assert(!this.#readyOutstanding, 'ready() called again before advance()');
    const r = this.#raft;
    const ss = r.softState();
    const hs = r.hardState();
    const softChanged = ss.lead !== this.#prevSoftState.lead || ss.raftState !== this.#prevSoftState.raftState;
    const hardChanged = !isEmptyHardState(hs) && !hardStateEqual(hs, this.#prevHardState);
    const entries = r.raftLog.unstableEntries().slice();
    const rd: Ready = {
      softState: softChanged ? ss : null,
      hardState: hardChanged ? hs : null,
      entries,
      snapshot: r.raftLog.unstable.snapshot,
      committedEntries: r.raftLog.nextEnts(),
      messages: r.msgs,
      readStates: r.readStates,
      // Term, vote and log changes must be fsynced: they are promises made to other members.
      mustSync: entries.length > 0 || hs.term !== this.#prevHardState.term || hs.vote !== this.#prevHardState.vote,
    };
    if (softChanged) this.#prevSoftState = ss;
    const nc = rd.committedEntries.length;
    this.#handedOut = Math.max(r.raftLog.applied, nc > 0 ? rd.committedEntries[nc - 1].index : 0);
    r.msgs = [];
    r.readStates = [];
    this.#readyOutstanding = true;
    return rd;
  }

  /**
   * While a Ready is outstanding (its WAL write in flight): the entries committed since, up to maxIndex
   * (the driver's durable index) and before any ConfChange, handed out now instead of in the next Ready,
   * and counted as applied. Lets a leader apply a write as soon as a follower's ack commits it, without
   * waiting for its own write of the next batch. The driver must already have handed every committed
   * entry of the outstanding Ready to its state machine, so that these follow them in log order.
   */
  takeCommitted(maxIndex: number): Entry[] {
    assert(this.#readyOutstanding, 'takeCommitted() outside a Ready');
    const log = this.#raft.raftLog;
    const lo = Math.max(this.#handedOut, log.applied) + 1;
    const hi = Math.min(log.committed, maxIndex);
    if (hi < lo || lo < log.firstIndex()) return [];
    const ents = log.slice(lo, hi + 1, log.maxNextEntsSize);
    let n = 0;
    while (n < ents.length && ents[n].type !== EntryType.ConfChange) n++;
    if (n === 0) return [];
    const taken = n === ents.length ? ents : ents.slice(0, n);
    this.#handedOut = taken[n - 1].index;
    log.appliedTo(this.#handedOut);
    return taken;
  }

  /** The driver has persisted, sent and applied everything in rd. */
  advance(rd: Ready): void {
    assert(this.#readyOutstanding, 'advance() without ready()');
    this.#readyOutstanding = false;
    const r = this.#raft;
    if (rd.hardState !== null) this.#prevHardState = rd.hardState;
    // takeCommitted() may already have handed out (and marked applied) entries past rd's.
    const n = rd.committedEntries.length;
    const appliedNow = n > 0 ? rd.committedEntries[n - 1].index : rd.snapshot !== null ? rd.snapshot.metadata.index : 0;
    if (appliedNow > r.raftLog.applied) r.raftLog.appliedTo(appliedNow);
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1];
      r.raftLog.stableTo(last.index, last.term);
    }
    if (rd.snapshot !== null) r.raftLog.stableSnapTo(rd.snapshot.metadata.index);
    // rd.entries are durable now: a leader counts them toward the commit quorum only from here.
    if (r.state === StateType.Leader) r.selfPersisted(r.raftLog.stableLastIndex());
  }

  /**
   * Whether the driver may send rd.messages BEFORE persisting rd, in parallel with its write (call
   * it right after ready()): we are leader, rd keeps the durable term and vote and installs no
   * snapshot, every message is a leader's (MsgApp, heartbeat, MsgSnap, TimeoutNow, ReadIndexResp),
   * and every commit index they carry is already durable here. Otherwise persist first.
   */
  messagesBeforePersist(rd: Ready): boolean {
    const r = this.#raft;
    if (r.state !== StateType.Leader || rd.snapshot !== null || rd.messages.length === 0) return false;
    const hs = rd.hardState;
    if (hs !== null && (hs.term !== this.#prevHardState.term || hs.vote !== this.#prevHardState.vote)) return false;
    const durable = r.raftLog.stableLastIndex();
    for (const m of rd.messages) {
      if (!earlyTypes[m.type] || m.commit > durable) return false;
    }
    return true;
  }

  status(): Status {
    const r = this.#raft;
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      commit: r.raftLog.committed,
      lead: r.lead,
      raftState: r.state,
      applied: r.raftLog.applied,
      lastIndex: r.raftLog.lastIndex(),
      isLearner: r.isLearner(),
      config: r.trk.confState(),
    };
  }

  /** The leader's view of every member, by increasing id; empty when we are not leader. */
  progress(): MemberProgress[] {
    const r = this.#raft;
    const out: MemberProgress[] = [];
    if (r.state !== StateType.Leader) return out;
    r.trk.visit((id, pr) => {
      out.push({ id, match: pr.match, next: pr.next, isLearner: pr.isLearner, recentActive: pr.recentActive });
    });
    return out;
  }

  /** The state machine itself, for tests and debugging output (not for the driver). */
  get raft(): Raft {
    return this.#raft;
  }
}

/** Message types a leader may send before its write is durable (messagesBeforePersist). */
const earlyTypes: boolean[] = (() => {
  const t: boolean[] = [];
  for (const k of [MessageType.App, MessageType.Heartbeat, MessageType.Snap, MessageType.TimeoutNow, MessageType.ReadIndexResp]) t[k] = true;
  return t;
})();

function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}


