// Quorum arithmetic, after etcd-io/raft quorum/. A MajorityConfig is one set of voters; a
// JointConfig is the pair (incoming, outgoing) used during joint consensus — outgoing is empty
// until conf changes are implemented, and an empty config agrees with everything.

import { NodeId } from './types';
import { sortIds } from './util';

export enum VoteResult {
  Pending = 0,
  Lost = 1,
  Won = 2,
}

export class MajorityConfig {
  readonly ids: ReadonlySet<NodeId>;

  constructor(ids: Iterable<NodeId>) {
    this.ids = new Set(ids);
  }

  /** Voter ids in increasing order (deterministic iteration for messages and transcripts). */
  sorted(): NodeId[] {
    return sortIds(this.ids);
  }

  /**
   * The largest index acknowledged by a majority: sort acked indexes descending and take the
   * quorum-th. An empty config commits everything (so joint configs reduce to the other half).
   */
  committedIndex(acked: (id: NodeId) => number | undefined): number {
    if (this.ids.size === 0) return Number.MAX_SAFE_INTEGER;
    const idx: number[] = [];
    for (const id of this.ids) idx.push(acked(id) ?? 0);
    idx.sort((a, b) => b - a);
    return idx[(this.ids.size >> 1)];
  }

  /** Election outcome given votes so far (true = granted); missing voters are pending. */
  voteResult(votes: ReadonlyMap<NodeId, boolean>): VoteResult {
    if (this.ids.size === 0) return VoteResult.Won;
    let granted = 0;
    let missing = 0;
    for (const id of this.ids) {
      const v = votes.get(id);
      if (v === undefined) missing++;
      else if (v) granted++;
    }
    const q = (this.ids.size >> 1) + 1;
    if (granted >= q) return VoteResult.Won;
    if (granted + missing >= q) return VoteResult.Pending;
    return VoteResult.Lost;
  }
}

export class JointConfig {
  readonly incoming: MajorityConfig;
  readonly outgoing: MajorityConfig;

  constructor(incoming: MajorityConfig, outgoing: MajorityConfig = new MajorityConfig([])) {
    this.incoming = incoming;
    this.outgoing = outgoing;
  }

  /** All voter ids of both halves, sorted. */
  ids(): NodeId[] {
    const all = new Set<NodeId>([...this.incoming.ids, ...this.outgoing.ids]);
    return sortIds(all);
  }

  isVoter(id: NodeId): boolean {
    return this.incoming.ids.has(id) || this.outgoing.ids.has(id);
  }

  committedIndex(acked: (id: NodeId) => number | undefined): number {
    return Math.min(this.incoming.committedIndex(acked), this.outgoing.committedIndex(acked));
  }

  voteResult(votes: ReadonlyMap<NodeId, boolean>): VoteResult {
    const r1 = this.incoming.voteResult(votes);
    const r2 = this.outgoing.voteResult(votes);
    if (r1 === r2) return r1;
    if (r1 === VoteResult.Lost || r2 === VoteResult.Lost) return VoteResult.Lost;
    return VoteResult.Pending;
  }
}
