// ProgressTracker: the configuration (voters, learners), the leader's Progress per member and the
// votes of the current election. After etcd-io/raft tracker/tracker.go.

import { JointConfig, MajorityConfig, VoteResult } from './quorum';
import { Progress } from './progress';
import { ConfState, NodeId } from './types';
import { sortIds } from './util';

export class ProgressTracker {
  voters: JointConfig;
  learners: Set<NodeId>;
  /** One entry per voter and learner. Iterate with visit() for a deterministic order. */
  readonly progress: Map<NodeId, Progress>;
  /** Votes received in the current (pre-)election; true = granted. */
  readonly votes: Map<NodeId, boolean>;
  readonly maxInflight: number;
  readonly maxInflightBytes: number;

  constructor(maxInflight: number, maxInflightBytes: number) {
    this.voters = new JointConfig(new MajorityConfig([]));
    this.learners = new Set();
    this.progress = new Map();
    this.votes = new Map();
    this.maxInflight = maxInflight;
    this.maxInflightBytes = maxInflightBytes;
  }

  /** Installs a configuration, creating Progress (next = nextIndex) for every member. */
  setConfig(voters: NodeId[], learners: NodeId[], nextIndex: number): void {
    this.voters = new JointConfig(new MajorityConfig(voters));
    this.learners = new Set(learners);
    this.progress.clear();
    for (const id of voters) this.progress.set(id, new Progress(nextIndex, this.maxInflight, this.maxInflightBytes, false));
    for (const id of learners) {
      if (!this.progress.has(id)) this.progress.set(id, new Progress(nextIndex, this.maxInflight, this.maxInflightBytes, true));
    }
  }

  /**
   * Switches to a new configuration (a conf change): members staying keep their Progress (a
   * promoted learner just stops being one), new members get a fresh Progress probing from
   * nextIndex and counted as recently active (so check-quorum doesn't step us down before they
   * had a chance to answer), removed members lose theirs along with any vote they cast.
   * Returns the ids of the new members, sorted.
   */
  applyConfState(cs: ConfState, nextIndex: number): NodeId[] {
    const members = new Set<NodeId>([...cs.voters, ...cs.learners]);
    for (const id of [...this.progress.keys()]) {
      if (!members.has(id)) {
        this.progress.delete(id);
        this.votes.delete(id);
      }
    }
    this.voters = new JointConfig(new MajorityConfig(cs.voters));
    this.learners = new Set(cs.learners);
    const added: NodeId[] = [];
    for (const id of members) {
      const isLearner = this.learners.has(id);
      const pr = this.progress.get(id);
      if (pr !== undefined) {
        pr.isLearner = isLearner;
        continue;
      }
      const fresh = new Progress(nextIndex, this.maxInflight, this.maxInflightBytes, isLearner);
      fresh.recentActive = true;
      this.progress.set(id, fresh);
      added.push(id);
    }
    return sortIds(added);
  }

  /** The configuration, both lists sorted. */
  confState(): ConfState {
    return { voters: this.voters.incoming.sorted(), learners: sortIds(this.learners) };
  }

  /** Calls f for every member in increasing id order. */
  visit(f: (id: NodeId, pr: Progress) => void): void {
    for (const id of sortIds(this.progress.keys())) f(id, this.progress.get(id)!);
  }

  /** True when the only voter is the given one (etcd IsSingleton; ignores learners). */
  isSingleton(): boolean {
    return this.voters.incoming.ids.size === 1 && this.voters.outgoing.ids.size === 0;
  }

  /** Largest index replicated on a quorum of voters (by Progress.match). */
  committed(): number {
    return this.voters.committedIndex((id) => this.progress.get(id)?.match);
  }

  /** Whether a quorum of voters was recently active (leader's check-quorum). */
  quorumActive(): boolean {
    const votes = new Map<NodeId, boolean>();
    this.visit((id, pr) => {
      if (!pr.isLearner) votes.set(id, pr.recentActive);
    });
    return this.voters.voteResult(votes) === VoteResult.Won;
  }

  resetVotes(): void {
    this.votes.clear();
  }

  /** Records a vote; only the first vote from a voter counts. */
  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    this.visit((id, pr) => {
      if (pr.isLearner) return;
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    });
    return { granted, rejected, result: this.voters.voteResult(this.votes) };
  }
}
