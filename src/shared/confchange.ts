// The payload of a ConfChange Raft entry, and the membership state it changes. etcd encodes
// raftpb.ConfChange with the member as JSON context; ours is JSON throughout (peers never talk to etcd
// members, so only our own format matters). Bootstrap writes one AddNode per initial member; MemberAdd,
// MemberRemove, MemberUpdate and MemberPromote propose one each (src/main/membership.ts).
export interface ConfChange {
  type: 'AddNode' | 'RemoveNode' | 'UpdateNode' | 'AddLearnerNode';
  /** uint64 member ID as a decimal string. */
  nodeId: string;
  member?: { name: string; peerURLs: string[] };
  /** AddNode of an existing learner: etcd's MemberPromote (ConfChangeAddNode with IsPromote). */
  promote?: boolean;
  /** The proposer's request ID: the apply result answers its MemberAdd/Remove/Update/Promote. */
  requestId?: number;
}

export function encodeConfChange(c: ConfChange): Uint8Array {
  return Buffer.from(JSON.stringify(c), 'utf8');
}

/** Throws on anything that is not a ConfChange we wrote (a corrupt entry is a broken invariant). */
export function decodeConfChange(data: Uint8Array): ConfChange {
  const c = JSON.parse(Buffer.from(data).toString('utf8')) as ConfChange;
  if (typeof c !== 'object' || c === null || typeof c.nodeId !== 'string' ||
    !['AddNode', 'RemoveNode', 'UpdateNode', 'AddLearnerNode'].includes(c.type)) {
    throw new Error('invariant: malformed ConfChange entry');
  }
  return c;
}

/** One member of the configuration, as stored (IDs as decimal strings). */
export interface MemberRecord {
  id: string;
  peerURLs: string[];
  isLearner: boolean;
  /** The member's tag in request IDs (src/main/node/node.ts), assigned once, never reused. */
  tag: number;
}

/**
 * The whole membership after a configuration change: the apply worker stores it in the `cluster`
 * table in the same transaction as the entry's applied index, so a restart (or a follower installing a
 * snapshot) starts from the membership at its applied index.
 */
export interface MembershipState {
  members: MemberRecord[];
  /** IDs removed from the cluster: never again a member (etcd's ErrIDRemoved). */
  removed: string[];
  nextTag: number;
}

/** The apply worker's instruction for one ConfChange entry: store `state`; answer with `error` if set. */
export interface MembershipOp {
  state: MembershipState;
  error?: { code: number; message: string };
}
