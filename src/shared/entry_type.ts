// etcd's raftpb.EntryType: what a Raft log entry holds. Defined here, below both threads, because it
// crosses them: the Raft core (src/main/raft/types.ts re-exports it), the WAL and the peer codec carry
// it, and so does the main -> apply ring (ENTRY's entryType byte, apply_protocol.ts), where the apply
// worker tells requests (Normal) from entries that only advance the applied index.
export enum EntryType {
  Normal = 0,
  ConfChange = 1,
}
