// The cluster's membership on the main thread: who the voters and learners are, their peer URLs, and
// which IDs were removed. It changes only when a committed ConfChange entry is handed to apply
// (RaftNode calls decide() in log order), so every member decides the same way at the same index:
// etcd's ValidateConfigurationChange, then the change. The decision travels to the apply worker, which
// stores the resulting state with the entry's applied index (src/shared/mvcc/cluster.ts), and to Raft
// (applyConfChange) and the peer transport.
import { ConfChange, MemberRecord, MembershipOp, MembershipState } from '../shared/confchange';
import { Errors, EtcdError } from '../shared/errors';
import { ConfChange as RaftConfChange, ConfChangeType, ConfState } from './raft/types';
import { compareIds as cmp } from './raft/util';

/** etcd 3.4's maxLearners. */
export const LEARNERS_MAX = 1;

export interface Member {
  id: bigint;
  peerURLs: string[];
  isLearner: boolean;
  tag: number;
}

export interface Decision {
  /** What Raft must apply (null: the change was refused and Raft's configuration stays as it is). */
  raft: RaftConfChange | null;
  /** For the apply worker (RequestKind.Membership); a refusal's error, which the proposer gets, is in it. */
  op: MembershipOp;
}

export class Membership {
  readonly #members = new Map<bigint, Member>();
  readonly #removed = new Set<bigint>();
  #nextTag = 0;

  /** A new cluster: the --initial-cluster members, tags in ID order (as bootstrap assigns them). */
  static initial(members: Array<{ id: bigint; peerURLs: string[] }>): Membership {
    const m = new Membership();
    for (const x of [...members].sort((a, b) => cmp(a.id, b.id))) {
      m.#members.set(x.id, { id: x.id, peerURLs: [...x.peerURLs], isLearner: false, tag: m.#nextTag++ });
    }
    return m;
  }

  static fromState(s: MembershipState): Membership {
    const m = new Membership();
    for (const r of s.members) m.#members.set(BigInt(r.id), { id: BigInt(r.id), peerURLs: [...r.peerURLs], isLearner: r.isLearner, tag: r.tag });
    for (const id of s.removed) m.#removed.add(BigInt(id));
    m.#nextTag = s.nextTag;
    return m;
  }

  toState(): MembershipState {
    return {
      members: this.list().map((x): MemberRecord => ({ id: x.id.toString(), peerURLs: [...x.peerURLs], isLearner: x.isLearner, tag: x.tag })),
      removed: [...this.#removed].sort(cmp).map((id) => id.toString()),
      nextTag: this.#nextTag,
    };
  }

  /** Members in ID order. */
  list(): Member[] {
    return [...this.#members.values()].sort((a, b) => cmp(a.id, b.id));
  }

  get(id: bigint): Member | undefined {
    return this.#members.get(id);
  }

  isRemoved(id: bigint): boolean {
    return this.#removed.has(id);
  }

  get size(): number {
    return this.#members.size;
  }

  voters(): Member[] {
    return this.list().filter((m) => !m.isLearner);
  }

  confState(): ConfState {
    const l = this.list();
    return { voters: l.filter((m) => !m.isLearner).map((m) => m.id), learners: l.filter((m) => m.isLearner).map((m) => m.id) };
  }

  /** The member (other than `except`) that already uses one of these peer URLs, if any. */
  peerUrlOwner(urls: string[], except?: bigint): Member | undefined {
    const want = new Set(urls);
    return this.list().find((m) => m.id !== except && m.peerURLs.some((u) => want.has(u)));
  }

  /**
   * etcd's ValidateConfigurationChange followed by the change itself. Deterministic: it depends only on
   * the state and the entry, so every member reaches the same decision at the same index.
   */
  decide(cc: ConfChange): Decision {
    const id = BigInt(cc.nodeId);
    const refuse = (e: EtcdError): Decision => ({ raft: null, op: { state: this.toState(), error: e.toWire() } });
    if (this.#removed.has(id)) return refuse(Errors.memberNotFound()); // etcd's ErrIDRemoved
    const cur = this.#members.get(id);
    let raft: Decision['raft'];
    switch (cc.type) {
      case 'AddNode':
      case 'AddLearnerNode': {
        if (cc.promote) {
          if (cur === undefined) return refuse(Errors.memberNotFound());
          if (!cur.isLearner) return refuse(Errors.memberNotLearner());
          cur.isLearner = false;
          raft = { type: ConfChangeType.AddNode, nodeId: id };
          break;
        }
        if (cur !== undefined) return refuse(Errors.memberExist());
        const urls = cc.member?.peerURLs ?? [];
        if (this.peerUrlOwner(urls) !== undefined) return refuse(Errors.peerURLExist());
        const learner = cc.type === 'AddLearnerNode';
        if (learner && this.list().filter((m) => m.isLearner).length >= LEARNERS_MAX) return refuse(Errors.tooManyLearners());
        this.#members.set(id, { id, peerURLs: [...urls], isLearner: learner, tag: this.#nextTag++ });
        raft = { type: learner ? ConfChangeType.AddLearnerNode : ConfChangeType.AddNode, nodeId: id };
        break;
      }
      case 'RemoveNode':
        if (cur === undefined) return refuse(Errors.memberNotFound());
        this.#members.delete(id);
        this.#removed.add(id);
        raft = { type: ConfChangeType.RemoveNode, nodeId: id };
        break;
      case 'UpdateNode': {
        if (cur === undefined) return refuse(Errors.memberNotFound());
        const urls = cc.member?.peerURLs ?? [];
        if (this.peerUrlOwner(urls, id) !== undefined) return refuse(Errors.peerURLExist());
        cur.peerURLs = [...urls];
        raft = { type: ConfChangeType.UpdateNode, nodeId: id };
        break;
      }
    }
    return { raft, op: { state: this.toState() } };
  }
}
