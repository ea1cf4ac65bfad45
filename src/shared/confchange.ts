// The payload of a ConfChange Raft entry. etcd encodes raftpb.ConfChange with the member as JSON
// context; ours is JSON throughout (peers never talk to etcd members, so only our own format
// matters). Bootstrap writes one AddNode per initial member.
export interface ConfChange {
  type: 'AddNode' | 'RemoveNode' | 'UpdateNode' | 'AddLearnerNode';
  /** uint64 member ID as a decimal string. */
  nodeId: string;
  member?: { name: string; peerURLs: string[] };
}

export function encodeConfChange(c: ConfChange): Uint8Array {
  return Buffer.from(JSON.stringify(c), 'utf8');
}
