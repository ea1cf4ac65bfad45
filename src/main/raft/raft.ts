// Raft: the consensus state machine of one member, after etcd-io/raft raft.go. Pure: it reacts to
// tick() and step(message) by changing its state, appending to its in-memory log and queueing
// outgoing messages in `msgs`; RawNode turns that into Ready for the driver.
//
// Structure: step() handles what is common to every role (term comparison, votes, MsgHup), then
// dispatches to stepLeader / stepCandidate / stepFollower, each an exhaustive switch over
// MessageType whose cases call small handleX methods.
//
// Conf changes are simple (one member at a time, etcd's ConfChange v1; see confchange.ts): the
// driver decodes a committed ConfChange entry and calls applyConfChange; the leader accepts one
// ConfChange proposal at a time (pendingConfIndex). Joint consensus (ConfChange v2) is not here.
//
// The leader's own log counts toward the commit quorum only once it is durable (the Raft thesis
// §10.2.1, etcd-io/raft's async storage writes): appendEntry does not move the leader's own
// Progress.match; the driver reports persistence through RawNode.advance(), which calls
// selfPersisted(). So the driver may send MsgApp before its own fsync, in parallel with it, and an
// entry still commits only when a quorum holds it durably. A lone voter (one voter, no learners)
// sends nothing and keeps counting itself at append time, so its driver can overlap apply and fsync.
//
// Not yet implemented: joint consensus, lease-based reads, uncommitted-size limits.

import { assert, assertNever } from '../../shared/errors';
import { simpleChange } from './confchange';
import { RaftLog } from './log';
import { ProgressState } from './progress';
import { VoteResult } from './quorum';
import { ReadOnly } from './readonly';
import { ProgressTracker } from './tracker';
import {
  Config,
  ConfigExtras,
  ConfChange,
  ConfState,
  Entry,
  EntryType,
  ErrCompacted,
  HardState,
  Message,
  MessageType,
  NodeId,
  None,
  ProposalDroppedError,
  ReadState,
  SoftState,
  StateType,
} from './types';
import { bytesEqual, entriesSize, newMessage, voteRespMsgType } from './util';

/** Context of a MsgVote sent on a leader transfer: voters grant it even inside a leader lease. */
export const campaignTransferCtx = new Uint8Array([...'CampaignTransfer'].map((c) => c.charCodeAt(0)));

export enum CampaignType {
  PreElection = 0,
  Election = 1,
  Transfer = 2,
}

export class Raft {
  readonly id: NodeId;
  term: number;
  vote: NodeId;
  readonly raftLog: RaftLog;
  readonly trk: ProgressTracker;
  state: StateType;
  lead: NodeId;
  /** Leader only: the member we are handing leadership to, or None. */
  leadTransferee: NodeId;
  /** Outgoing messages, drained by RawNode.ready(). */
  msgs: Message[];
  /** Answered ReadIndex requests, drained by RawNode.ready(). */
  readStates: ReadState[];
  /** Leader only: pending safe ReadIndex requests; a new one per term (reset()). */
  readOnly: ReadOnly;
  /** Leader only: ReadIndex requests held until an entry of this term commits. */
  pendingReadIndexMessages: Message[];
  /**
   * Leader: index of the last ConfChange entry it appended (or, right after election, its last
   * index: any uncommitted entry might be one). While pendingConfIndex > applied a conf change is
   * pending and no other is accepted, so changes are applied one at a time.
   */
  pendingConfIndex: number;
  /** Ticks since the last election timeout reset (leader: since the last check-quorum). */
  electionElapsed: number;
  heartbeatElapsed: number;
  readonly electionTimeout: number;
  readonly heartbeatTimeout: number;
  /** In [electionTimeout, 2*electionTimeout); re-drawn from config.rand on every reset(). */
  randomizedElectionTimeout: number;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly forwardProposals: boolean;
  readonly maxMsgSize: number;
  readonly #rand: () => number;

  constructor(c: Config & ConfigExtras) {
    validateConfig(c);
    this.id = c.id;
    this.term = 0;
    this.vote = None;
    const maxCommitted = c.maxCommittedSizePerReady ?? c.maxSizePerMsg * c.maxInflightMsgs;
    this.raftLog = new RaftLog(c.storage, maxCommitted);
    this.trk = new ProgressTracker(c.maxInflightMsgs, 0);
    this.state = StateType.Follower;
    this.lead = None;
    this.leadTransferee = None;
    this.msgs = [];
    this.readStates = [];
    this.readOnly = new ReadOnly();
    this.pendingReadIndexMessages = [];
    this.pendingConfIndex = 0;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.electionTimeout = c.electionTick;
    this.heartbeatTimeout = c.heartbeatTick;
    this.randomizedElectionTimeout = c.electionTick;
    this.checkQuorum = c.checkQuorum;
    this.preVote = c.preVote;
    this.forwardProposals = c.forwardProposals ?? false;
    this.maxMsgSize = c.maxSizePerMsg;
    this.#rand = c.rand;

    const init = c.storage.initialState();
    // The storage's configuration wins; a brand-new cluster takes it from the config.
    const fromStorage = init.voters.length > 0 || init.learners.length > 0;
    const voters = fromStorage ? init.voters : c.peers;
    const learners = fromStorage ? init.learners : c.learners ?? [];
    this.trk.setConfig(voters, learners, this.raftLog.lastIndex() + 1);
    if (!isEmptyHardState(init.hardState)) this.loadState(init.hardState);
    if (c.applied > 0) this.raftLog.appliedTo(c.applied);
    this.becomeFollower(this.term, None);
  }

  private loadState(hs: HardState): void {
    assert(hs.commit >= this.raftLog.committed && hs.commit <= this.raftLog.lastIndex(),
      `hardState commit ${hs.commit} out of [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`);
    this.raftLog.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  softState(): SoftState {
    return { lead: this.lead, raftState: this.state };
  }

  /** Voters (and only voters) may campaign; a member removed from the config may not. */
  promotable(): boolean {
    const pr = this.trk.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && !this.raftLog.hasPendingSnapshot();
  }

  /** We are a learner of the current configuration (false when not a member at all). */
  isLearner(): boolean {
    return this.trk.progress.get(this.id)?.isLearner === true;
  }

  // ---- conf changes ----

  /**
   * Applies a committed conf change (the driver calls this as it applies the entry, in log order)
   * and returns the resulting configuration. Refused or no-op changes leave it unchanged.
   */
  applyConfChange(cc: ConfChange): ConfState {
    const res = simpleChange(this.trk.confState(), cc);
    if (!res.changed) return res.cs;
    const added = this.trk.applyConfState(res.cs, this.raftLog.lastIndex() + 1);
    this.switchToConfig(added);
    return this.trk.confState();
  }

  /** After etcd's switchToConfig: what a new configuration means for our role and our followers. */
  private switchToConfig(added: NodeId[]): void {
    const selfIsVoter = this.trk.voters.isVoter(this.id);
    if (!selfIsVoter && this.state !== StateType.Follower) {
      // A leader removed (or demoted) steps down (etcd's stepDownOnRemoval); a candidate stops
      // campaigning, since winning the votes of the others would make a leader outside the config.
      this.becomeFollower(this.term, None);
      return;
    }
    if (this.state !== StateType.Leader) return;
    // A removal can shrink the quorum enough to commit more: then everyone is told.
    if (!this.commitAndBroadcast()) {
      // Probe new members now instead of waiting for the next heartbeat or proposal.
      for (const id of added) if (id !== this.id) this.sendAppend(id);
    }
    if (this.leadTransferee !== None && !this.trk.voters.isVoter(this.leadTransferee)) this.abortLeaderTransfer();
  }

  // ---- sending ----

  /** Queues m from us. Vote messages carry their own term; local forwards carry none. */
  send(m: Message): void {
    m.from = this.id;
    const t = m.type;
    if (t === MessageType.Vote || t === MessageType.VoteResp || t === MessageType.PreVote || t === MessageType.PreVoteResp) {
      // Votes are sent for a term we are not (pre-vote) or not yet (granting) in.
      assert(m.term !== 0, `term should be set when sending ${MessageType[t]}`);
    } else {
      assert(m.term === 0, `term should not be set when sending ${MessageType[t]}`);
      // Forwarded proposals and reads keep term 0: they are local requests of the receiver.
      if (t !== MessageType.Prop && t !== MessageType.ReadIndex) m.term = this.term;
    }
    this.msgs.push(m);
  }

  /** Sends MsgApp (or MsgSnap) to `to` when not throttled; returns whether a message went out. */
  maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    let prevTerm: number;
    let ents: Entry[] = [];
    try {
      prevTerm = this.raftLog.term(prevIndex);
      if (pr.state !== ProgressState.Replicate || !pr.inflights.full()) {
        ents = this.raftLog.entries(pr.next, this.maxMsgSize);
      }
    } catch (e) {
      if (!(e instanceof ErrCompacted)) throw e;
      return this.maybeSendSnapshot(to);
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.send(newMessage({
      type: MessageType.App, to, index: prevIndex, logTerm: prevTerm, entries: ents, commit: this.raftLog.committed,
    }));
    pr.sentEntries(ents.length, entriesSize(ents));
    return true;
  }

  /** The follower needs entries we compacted: send our snapshot instead. */
  private maybeSendSnapshot(to: NodeId): boolean {
    const pr = this.trk.progress.get(to)!;
    // A follower we have not heard from lately probably won't take it; don't waste the transfer.
    if (!pr.recentActive) return false;
    const snapshot = this.raftLog.snapshot();
    assert(snapshot.metadata.index > 0, 'need non-empty snapshot');
    pr.becomeSnapshot(snapshot.metadata.index);
    this.send(newMessage({ type: MessageType.Snap, to, snapshot }));
    return true;
  }

  sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  bcastAppend(): void {
    this.trk.visit((id) => {
      if (id !== this.id) this.sendAppend(id);
    });
  }

  /** Heartbeats carry min(match, commit): a follower must never commit past what it holds. */
  sendHeartbeat(to: NodeId, ctx: Uint8Array | null): void {
    const pr = this.trk.progress.get(to)!;
    const commit = Math.min(pr.match, this.raftLog.committed);
    this.send(newMessage({ type: MessageType.Heartbeat, to, commit, context: ctx }));
  }

  bcastHeartbeat(): void {
    this.bcastHeartbeatWithCtx(this.readOnly.lastPendingRequestCtx());
  }

  private bcastHeartbeatWithCtx(ctx: Uint8Array | null): void {
    this.trk.visit((id) => {
      if (id !== this.id) this.sendHeartbeat(id, ctx);
    });
  }

  sendTimeoutNow(to: NodeId): void {
    this.send(newMessage({ type: MessageType.TimeoutNow, to }));
  }

  // ---- state transitions ----

  /** Resets per-term volatile state; a new term clears the vote. */
  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = None;
    }
    this.lead = None;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.trk.resetVotes();
    const last = this.raftLog.lastIndex();
    // Our own match is what we hold durably (a lone voter: everything; see appendEntry).
    const own = this.ownLogCountsAtAppend() ? last : this.raftLog.stableLastIndex();
    this.trk.visit((id, pr) => pr.reset(id === this.id ? own : 0, last + 1));
    this.pendingConfIndex = 0;
    this.pendingReadIndexMessages = [];
    // Requests recorded under an earlier leadership must not be answered by a later one: the
    // commit index they recorded may predate writes another leader committed in between.
    if (this.readOnly.pendingCount() > 0) this.readOnly = new ReadOnly();
  }

  private resetRandomizedElectionTimeout(): void {
    const r = this.#rand();
    assert(r >= 0 && r < 1, `config.rand returned ${r}, want [0, 1)`);
    this.randomizedElectionTimeout = this.electionTimeout + Math.floor(r * this.electionTimeout);
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.state = StateType.Follower;
  }

  becomeCandidate(): void {
    assert(this.state !== StateType.Leader, 'invalid transition [leader -> candidate]');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = StateType.Candidate;
  }

  /** Pre-candidate: asks for votes for term+1 without changing term or vote (§9.6 of the thesis). */
  becomePreCandidate(): void {
    assert(this.state !== StateType.Leader, 'invalid transition [leader -> pre-candidate]');
    this.trk.resetVotes();
    this.lead = None;
    this.state = StateType.PreCandidate;
  }

  becomeLeader(): void {
    assert(this.state !== StateType.Follower, 'invalid transition [follower -> leader]');
    this.reset(this.term);
    this.lead = this.id;
    this.state = StateType.Leader;
    const self = this.trk.progress.get(this.id)!;
    // We are always caught up with ourselves, and always active.
    self.becomeReplicate();
    self.recentActive = true;
    // Conservatively treat any uncommitted entry as a possible conf change.
    this.pendingConfIndex = this.raftLog.lastIndex();
    // The no-op entry: committing an entry of our own term commits everything before it (§5.4.2).
    this.appendEntry([{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) }]);
  }

  /**
   * Leader: appends ents at the end of our log. They count toward the commit quorum once the
   * driver reports them durable (selfPersisted), except for a lone voter, which commits them at once.
   */
  appendEntry(ents: Entry[]): void {
    let li = this.raftLog.lastIndex();
    const stamped = ents.map((e) => ({ ...e, term: this.term, index: ++li }));
    this.raftLog.append(stamped);
    if (this.ownLogCountsAtAppend()) {
      this.trk.progress.get(this.id)!.maybeUpdate(li);
      this.maybeCommit();
    }
  }

  /**
   * A lone voter (one voter, no learners) counts its own entries as soon as they are appended: it
   * sends them to no one, and its driver answers a client only once the entry is durable too.
   * Anyone else waits for selfPersisted: a leader that counted its unsynced log could "commit" an
   * entry with one follower's ack, send that commit index out, then crash and lose the entry.
   */
  private ownLogCountsAtAppend(): boolean {
    return this.trk.isSingleton() && this.trk.learners.size === 0;
  }

  /**
   * Leader: our log is durable through `index` (RawNode.advance calls this with the last index
   * below the unstable entries). Counts our own log toward the commit quorum (etcd-io/raft's
   * self MsgAppResp in async-storage-writes mode); when that commits more, tells the followers.
   */
  selfPersisted(index: number): void {
    if (this.state !== StateType.Leader) return;
    const pr = this.trk.progress.get(this.id);
    if (pr === undefined || !pr.maybeUpdate(index)) return;
    this.commitAndBroadcast();
  }

  /** Commits what a quorum now holds; if that moved the commit index, answers the ReadIndex requests
   * waiting for it and tells every member. Returns whether it moved. */
  private commitAndBroadcast(): boolean {
    if (!this.maybeCommit()) return false;
    this.releasePendingReadIndexMessages();
    this.bcastAppend();
    return true;
  }

  maybeCommit(): boolean {
    return this.raftLog.maybeCommit(this.trk.committed(), this.term);
  }

  committedEntryInCurrentTerm(): boolean {
    return this.raftLog.termOrZero(this.raftLog.committed) === this.term;
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = None;
  }

  // ---- ticks ----

  tick(): void {
    if (this.state === StateType.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  /** Followers and candidates: start an election after a randomized timeout without a leader. */
  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.step(newMessage({ type: MessageType.Hup, from: this.id }));
    }
  }

  /** Leader: heartbeats every heartbeatTimeout; check-quorum every electionTimeout. */
  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(newMessage({ type: MessageType.CheckQuorum, from: this.id }));
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.state === StateType.Leader && this.leadTransferee !== None) this.abortLeaderTransfer();
    }
    if (this.state !== StateType.Leader) return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(newMessage({ type: MessageType.Beat, from: this.id }));
    }
  }

  // ---- step: what every role does ----

  /** Processes one message. Throws ProposalDroppedError when a proposal cannot be accepted. */
  step(m: Message): void {
    if (!this.stepTerm(m)) return;
    switch (m.type) {
      case MessageType.Hup:
        this.hup(this.preVote ? CampaignType.PreElection : CampaignType.Election);
        return;
      case MessageType.Vote:
      case MessageType.PreVote:
        this.handleVoteRequest(m);
        return;
      default:
        this.stepByRole(m);
    }
  }

  /**
   * Compares m.term with ours: adopts a higher term (becoming follower), answers or drops stale
   * messages. Returns false when m needs no further processing.
   */
  private stepTerm(m: Message): boolean {
    if (m.term === 0) return true; // local message
    if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = bytesEqual(m.context, campaignTransferCtx);
        // Leader lease (§4.2.3): while we hear from a leader, ignore disruptive candidates.
        const inLease = this.checkQuorum && this.lead !== None && this.electionElapsed < this.electionTimeout;
        if (!force && inLease) return false;
      }
      if (m.type === MessageType.PreVote) {
        // A pre-vote never changes our term.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // We bump the term when the pre-vote wins a quorum.
      } else if (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, None);
      }
      return true;
    }
    if (m.term < this.term) {
      this.handleStaleTermMessage(m);
      return false;
    }
    return true;
  }

  private handleStaleTermMessage(m: Message): void {
    if ((this.checkQuorum || this.preVote) && (m.type === MessageType.Heartbeat || m.type === MessageType.App)) {
      // A leader partitioned away (whose term we passed) would otherwise never learn of the new
      // term, since with check-quorum/pre-vote we don't bump terms on its behalf: tell it.
      this.send(newMessage({ type: MessageType.AppResp, to: m.from }));
    } else if (m.type === MessageType.PreVote) {
      // Reject so the pre-candidate learns our term instead of waiting out its timeout.
      this.send(newMessage({ type: MessageType.PreVoteResp, to: m.from, term: this.term, reject: true }));
    }
    // Anything else from an old term is ignored.
  }

  private handleVoteRequest(m: Message): void {
    const canVote =
      this.vote === m.from ||
      (this.vote === None && this.lead === None) ||
      (m.type === MessageType.PreVote && m.term > this.term);
    const respType = voteRespMsgType(m.type);
    if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
      // Grant in the candidate's term: a pre-candidate counts it only at term+1.
      this.send(newMessage({ type: respType, to: m.from, term: m.term }));
      if (m.type === MessageType.Vote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send(newMessage({ type: respType, to: m.from, term: this.term, reject: true }));
    }
  }

  private hup(t: CampaignType): void {
    if (this.state === StateType.Leader) return;
    if (!this.promotable()) return;
    if (this.hasUnappliedConfChanges()) return;
    this.campaign(t);
  }

  /** A conf change committed but not applied might remove us; don't campaign until applied. */
  private hasUnappliedConfChanges(): boolean {
    if (this.raftLog.applied >= this.raftLog.committed) return false;
    const ents = this.raftLog.slice(Math.max(this.raftLog.applied + 1, this.raftLog.firstIndex()),
      this.raftLog.committed + 1, Number.MAX_SAFE_INTEGER);
    return ents.some((e) => e.type === EntryType.ConfChange);
  }

  campaign(t: CampaignType): void {
    let term: number;
    let voteMsg: MessageType;
    if (t === CampaignType.PreElection) {
      this.becomePreCandidate();
      voteMsg = MessageType.PreVote;
      term = this.term + 1; // pre-vote for the term we would campaign in
    } else {
      this.becomeCandidate();
      voteMsg = MessageType.Vote;
      term = this.term;
    }
    // Our own vote first: a single voter wins right here.
    if (this.poll(this.id, voteRespMsgType(voteMsg), true) === VoteResult.Won) {
      if (t === CampaignType.PreElection) this.campaign(CampaignType.Election);
      else this.becomeLeader();
      return;
    }
    const context = t === CampaignType.Transfer ? campaignTransferCtx : null;
    const index = this.raftLog.lastIndex();
    const logTerm = this.raftLog.lastTerm();
    for (const id of this.trk.voters.ids()) {
      if (id === this.id) continue;
      this.send(newMessage({ type: voteMsg, to: id, term, index, logTerm, context }));
    }
  }

  private poll(id: NodeId, _t: MessageType, granted: boolean): VoteResult {
    this.trk.recordVote(id, granted);
    return this.trk.tallyVotes().result;
  }

  private stepByRole(m: Message): void {
    switch (this.state) {
      case StateType.Leader:
        return this.stepLeader(m);
      case StateType.Candidate:
      case StateType.PreCandidate:
        return this.stepCandidate(m);
      case StateType.Follower:
        return this.stepFollower(m);
      default:
        assertNever(this.state);
    }
  }

  // ---- leader ----

  private stepLeader(m: Message): void {
    switch (m.type) {
      case MessageType.Beat:
        return this.bcastHeartbeat();
      case MessageType.CheckQuorum:
        return this.handleCheckQuorum();
      case MessageType.Prop:
        return this.handlePropose(m);
      case MessageType.ReadIndex:
        return this.handleReadIndex(m);
      case MessageType.AppResp:
        return this.handleAppendResponse(m);
      case MessageType.HeartbeatResp:
        return this.handleHeartbeatResponse(m);
      case MessageType.SnapStatus:
        return this.handleSnapStatus(m);
      case MessageType.Unreachable:
        return this.handleUnreachable(m);
      case MessageType.TransferLeader:
        return this.handleTransferLeader(m);
      case MessageType.Hup:
      case MessageType.App:
      case MessageType.Vote:
      case MessageType.VoteResp:
      case MessageType.Snap:
      case MessageType.Heartbeat:
      case MessageType.TimeoutNow:
      case MessageType.ReadIndexResp:
      case MessageType.PreVote:
      case MessageType.PreVoteResp:
        // Same-term App/Heartbeat/Snap cannot come from another leader (one leader per term);
        // late vote responses and our own TimeoutNow are irrelevant now.
        return;
      default:
        assertNever(m.type);
    }
  }

  private handleCheckQuorum(): void {
    if (!this.trk.quorumActive()) {
      // We can't reach a quorum: step down so clients look for the real leader.
      this.becomeFollower(this.term, None);
    }
    // Activity is measured per election timeout: start the next window.
    this.trk.visit((id, pr) => {
      if (id !== this.id) pr.recentActive = false;
    });
  }

  private handlePropose(m: Message): void {
    assert(m.entries.length > 0, 'stepped empty MsgProp');
    if (!this.trk.progress.has(this.id)) throw new ProposalDroppedError(); // removed from config
    if (this.leadTransferee !== None) throw new ProposalDroppedError(); // handing over leadership
    this.appendEntry(this.screenConfChanges(m));
    this.bcastAppend();
  }

  /**
   * One conf change at a time: while one is pending (appended, not yet applied), a local
   * ConfChange proposal is refused, and a forwarded one becomes an empty Normal entry (as in
   * etcd: the rest of the message is kept, and the proposer sees its change never applied).
   * Returns the entries to append (a copy when any is replaced: m may be shared).
   */
  private screenConfChanges(m: Message): Entry[] {
    let ents = m.entries;
    let first = 0;
    while (first < ents.length && ents[first].type !== EntryType.ConfChange) first++;
    if (first === ents.length) return ents; // the common case: no conf change
    const local = m.from === this.id || m.from === None;
    // Refuse before changing anything.
    if (local && this.pendingConfIndex > this.raftLog.applied) throw new ProposalDroppedError();
    const last = this.raftLog.lastIndex();
    for (let i = first; i < ents.length; i++) {
      if (ents[i].type !== EntryType.ConfChange) continue;
      if (this.pendingConfIndex <= this.raftLog.applied) {
        this.pendingConfIndex = last + i + 1;
        continue;
      }
      if (ents === m.entries) ents = ents.slice();
      ents[i] = { term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) };
    }
    return ents;
  }

  private handleReadIndex(m: Message): void {
    if (this.trk.isSingleton()) {
      this.respondToReadIndex(m, this.raftLog.committed);
      return;
    }
    // Until an entry of our term commits we don't know the full commit index (§6.4 step 1).
    if (!this.committedEntryInCurrentTerm()) {
      this.pendingReadIndexMessages.push(m);
      return;
    }
    this.sendReadIndexHeartbeats(m);
  }

  /** Safe read: record commit, then confirm leadership with a quorum of heartbeat acks. */
  private sendReadIndexHeartbeats(m: Message): void {
    const ctx = m.context ?? new Uint8Array(0);
    this.readOnly.addRequest(this.raftLog.committed, m);
    this.readOnly.recvAck(this.id, ctx);
    this.bcastHeartbeatWithCtx(ctx);
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const pending = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of pending) this.sendReadIndexHeartbeats(m);
  }

  /** Local requests become ReadStates; a follower's request gets a MsgReadIndexResp. */
  private respondToReadIndex(req: Message, index: number): void {
    const ctx = req.context ?? new Uint8Array(0);
    if (req.from === None || req.from === this.id) {
      this.readStates.push({ index, requestCtx: ctx });
      return;
    }
    this.send(newMessage({ type: MessageType.ReadIndexResp, to: req.from, index, context: ctx }));
  }

  private handleAppendResponse(m: Message): void {
    const pr = this.trk.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    if (m.reject) {
      // The follower's hint: its last index <= m.index with term <= our entry's. Skip to the
      // last index where our term is <= its term: everything after that surely mismatches.
      let nextProbeIdx = m.rejectHint;
      if (m.logTerm > 0) nextProbeIdx = this.raftLog.findConflictByTerm(m.rejectHint, m.logTerm).index;
      if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const oldPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index) && !(pr.match === m.index && pr.state === ProgressState.Probe)) return;
    if (pr.state === ProgressState.Probe) {
      pr.becomeReplicate();
    } else if (pr.state === ProgressState.Snapshot && pr.match + 1 >= this.raftLog.firstIndex()) {
      // Caught up past the snapshot through appends: we can replicate from our log again.
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === ProgressState.Replicate) {
      pr.inflights.freeLE(m.index);
    }
    if (!this.commitAndBroadcast() && oldPaused) {
      this.sendAppend(m.from);
    }
    // The window may have opened: send as many size-limited messages as it allows.
    while (this.maybeSendAppend(m.from, false)) {
      // keep sending
    }
    if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(m.from);
  }

  private handleHeartbeatResponse(m: Message): void {
    const pr = this.trk.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    pr.msgAppFlowPaused = false;
    if (pr.match < this.raftLog.lastIndex() || pr.state === ProgressState.Probe) this.sendAppend(m.from);
    if (m.context === null || m.context.byteLength === 0) return;
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (acks === null || this.trk.voters.voteResult(acks) !== VoteResult.Won) return;
    for (const rs of this.readOnly.advance(m.context)) this.respondToReadIndex(rs.req, rs.index);
  }

  private handleSnapStatus(m: Message): void {
    const pr = this.trk.progress.get(m.from);
    if (pr === undefined || pr.state !== ProgressState.Snapshot) return;
    if (m.reject) pr.pendingSnapshot = 0; // failed: probe from match instead
    pr.becomeProbe();
    // Wait for a heartbeat response before probing: the follower may still be installing it.
    pr.msgAppFlowPaused = true;
  }

  private handleUnreachable(m: Message): void {
    const pr = this.trk.progress.get(m.from);
    // Optimistic streaming likely lost messages: fall back to probing.
    if (pr !== undefined && pr.state === ProgressState.Replicate) pr.becomeProbe();
  }

  /** m.from is the transferee (RawNode.transferLeader puts it there, as etcd does). */
  private handleTransferLeader(m: Message): void {
    const pr = this.trk.progress.get(m.from);
    if (pr === undefined || pr.isLearner) return;
    const transferee = m.from;
    if (this.leadTransferee !== None) {
      if (this.leadTransferee === transferee) return; // already in progress
      this.abortLeaderTransfer();
    }
    if (transferee === this.id) return; // already leader
    // The transfer must finish within an election timeout (see tickHeartbeat).
    this.electionElapsed = 0;
    this.leadTransferee = transferee;
    if (pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(transferee);
    else this.sendAppend(transferee);
  }

  // ---- candidate and pre-candidate ----

  private stepCandidate(m: Message): void {
    const myVoteResp = this.state === StateType.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.Prop:
        throw new ProposalDroppedError();
      case MessageType.App:
        this.becomeFollower(m.term, m.from); // a leader of our term exists
        return this.handleAppendEntries(m);
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        return this.handleHeartbeat(m);
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        return this.handleSnapshot(m);
      case MessageType.VoteResp:
      case MessageType.PreVoteResp:
        if (m.type === myVoteResp) this.handleVoteResponse(m);
        return;
      case MessageType.Hup:
      case MessageType.Beat:
      case MessageType.AppResp:
      case MessageType.Vote:
      case MessageType.HeartbeatResp:
      case MessageType.Unreachable:
      case MessageType.SnapStatus:
      case MessageType.CheckQuorum:
      case MessageType.TransferLeader:
      case MessageType.TimeoutNow:
      case MessageType.ReadIndex:
      case MessageType.ReadIndexResp:
      case MessageType.PreVote:
        // No leader known: nothing to forward to; leader-only messages are stale.
        return;
      default:
        assertNever(m.type);
    }
  }

  private handleVoteResponse(m: Message): void {
    const res = this.poll(m.from, m.type, !m.reject);
    if (res === VoteResult.Won) {
      if (this.state === StateType.PreCandidate) {
        this.campaign(CampaignType.Election);
      } else {
        this.becomeLeader();
        this.bcastAppend();
      }
    } else if (res === VoteResult.Lost) {
      // A pre-candidate's term never changed, so this also returns it to its old term.
      this.becomeFollower(this.term, None);
    }
  }

  // ---- follower ----

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.Prop:
        if (this.lead === None || !this.forwardProposals) throw new ProposalDroppedError();
        return this.forwardToLeader(m);
      case MessageType.App:
        this.electionElapsed = 0;
        this.lead = m.from;
        return this.handleAppendEntries(m);
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        return this.handleHeartbeat(m);
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.lead = m.from;
        return this.handleSnapshot(m);
      case MessageType.TransferLeader:
      case MessageType.ReadIndex:
        if (this.lead === None) return; // dropped; the requester times out and retries
        return this.forwardToLeader(m);
      case MessageType.TimeoutNow:
        // Leadership transfer: campaign now, without pre-vote, overriding leases.
        return this.hup(CampaignType.Transfer);
      case MessageType.ReadIndexResp:
        this.readStates.push({ index: m.index, requestCtx: m.context ?? new Uint8Array(0) });
        return;
      case MessageType.Hup:
      case MessageType.Beat:
      case MessageType.AppResp:
      case MessageType.Vote:
      case MessageType.VoteResp:
      case MessageType.HeartbeatResp:
      case MessageType.Unreachable:
      case MessageType.SnapStatus:
      case MessageType.CheckQuorum:
      case MessageType.PreVote:
      case MessageType.PreVoteResp:
        return; // leader-only or late responses
      default:
        assertNever(m.type);
    }
  }

  private forwardToLeader(m: Message): void {
    if (m.type === MessageType.TransferLeader) {
      // m.from names the transferee, not the sender: keep it (send() would overwrite it).
      this.msgs.push({ ...m, to: this.lead, term: this.term });
      return;
    }
    this.send({ ...m, to: this.lead, term: 0 });
  }

  handleAppendEntries(m: Message): void {
    if (m.index < this.raftLog.committed) {
      // Everything up to committed already matches the leader's log; tell it where we are.
      this.send(newMessage({ type: MessageType.AppResp, to: m.from, index: this.raftLog.committed }));
      return;
    }
    const lastNew = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== null) {
      this.send(newMessage({ type: MessageType.AppResp, to: m.from, index: lastNew }));
      return;
    }
    // Reject with a hint: our last index <= m.index whose term <= m.logTerm. The leader can then
    // skip every index in between, which it would otherwise probe one by one.
    const hint = this.raftLog.findConflictByTerm(Math.min(m.index, this.raftLog.lastIndex()), m.logTerm);
    this.send(newMessage({
      type: MessageType.AppResp, to: m.from, index: m.index, reject: true, rejectHint: hint.index, logTerm: hint.term,
    }));
  }

  handleHeartbeat(m: Message): void {
    this.raftLog.commitTo(m.commit);
    this.send(newMessage({ type: MessageType.HeartbeatResp, to: m.from, context: m.context }));
  }

  handleSnapshot(m: Message): void {
    assert(m.snapshot !== null, 'MsgSnap without snapshot');
    const index = this.restore(m.snapshot) ? this.raftLog.lastIndex() : this.raftLog.committed;
    this.send(newMessage({ type: MessageType.AppResp, to: m.from, index }));
  }

  /** Installs snapshot s unless we already have its content; returns whether it was installed. */
  private restore(s: NonNullable<Message['snapshot']>): boolean {
    const md = s.metadata;
    if (md.index <= this.raftLog.committed) return false;
    if (this.state !== StateType.Follower) {
      // Only a follower may install a snapshot; become one at a higher term so a leader of our
      // term (which cannot exist) would be noticed. Defensive, as in etcd.
      this.becomeFollower(this.term + 1, None);
      return false;
    }
    if (!md.voters.includes(this.id) && !md.learners.includes(this.id)) return false;
    if (this.raftLog.matchTerm(md.index, md.term)) {
      // We hold the snapshot's last entry, so everything before it matches: just commit.
      this.raftLog.commitTo(md.index);
      return false;
    }
    this.raftLog.restore(s);
    this.trk.setConfig(md.voters, md.learners, this.raftLog.lastIndex() + 1);
    const self = this.trk.progress.get(this.id)!;
    self.maybeUpdate(self.next - 1);
    return true;
  }
}

export function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === None && hs.commit === 0;
}

function validateConfig(c: Config): void {
  assert(c.id !== None, 'cannot use none as id');
  assert(c.heartbeatTick > 0, 'heartbeat tick must be greater than 0');
  assert(c.electionTick > c.heartbeatTick, 'election tick must be greater than heartbeat tick');
  assert(c.maxInflightMsgs > 0, 'max inflight messages must be greater than 0');
  assert(c.maxSizePerMsg > 0, 'max size per message must be greater than 0');
}
