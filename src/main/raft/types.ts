// Types of the pure Raft core, shaped after etcd-io/raft (raftpb, rawnode.go). No I/O here:
// the driver (src/main/node/) persists what Ready says, sends messages, and applies entries.
import { EntryType } from '../../shared/entry_type';

/** Member IDs are etcd's uint64 IDs. */
export type NodeId = bigint;
export const None: NodeId = 0n;

/** etcd's raftpb.EntryType; defined in src/shared because the apply worker reads it off the ring too. */
export { EntryType };

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  /** Normal: an encoded request (empty for the leader's no-op). ConfChange: an encoded ConfChange. */
  data: Uint8Array;
}

export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

export enum StateType {
  Follower = 0,
  Candidate = 1,
  Leader = 2,
  PreCandidate = 3,
}

export interface SoftState {
  lead: NodeId;
  raftState: StateType;
}

/** A configuration: both lists sorted ascending, disjoint. */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

/** A snapshot's index, term, and the configuration in force at its index. */
export interface SnapshotMetadata extends ConfState {
  index: number;
  term: number;
}

export interface Snapshot {
  metadata: SnapshotMetadata;
  /** Opaque to raft: the application's state at metadata.index. */
  data: Uint8Array;
}

export enum MessageType {
  Hup = 0,
  Beat = 1,
  Prop = 2,
  App = 3,
  AppResp = 4,
  Vote = 5,
  VoteResp = 6,
  Snap = 7,
  Heartbeat = 8,
  HeartbeatResp = 9,
  Unreachable = 10,
  SnapStatus = 11,
  CheckQuorum = 12,
  TransferLeader = 13,
  TimeoutNow = 14,
  ReadIndex = 15,
  ReadIndexResp = 16,
  PreVote = 17,
  PreVoteResp = 18,
}

export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  rejectHint: number;
  /** ReadIndex request context, echoed in ReadState. */
  context: Uint8Array | null;
  snapshot: Snapshot | null;
}

export interface ReadState {
  index: number;
  requestCtx: Uint8Array;
}

export interface Ready {
  /** Changed volatile state, or null when unchanged. */
  softState: SoftState | null;
  /** Changed HardState to persist before sending messages, or null when unchanged. */
  hardState: HardState | null;
  /** Entries to append to stable storage BEFORE messages are sent. */
  entries: Entry[];
  /** Snapshot to persist and install, or null. */
  snapshot: Snapshot | null;
  /** Entries committed and not yet handed out; apply in order (after `entries` are persisted). */
  committedEntries: Entry[];
  /** Messages to send AFTER entries and hardState are durable; a leader keeping the durable term
   * and vote may send them before, in parallel with its write (see rawnode.ts). */
  messages: Message[];
  readStates: ReadState[];
  /** True when hardState/entries must be fsynced before messages go out. */
  mustSync: boolean;
}

export interface Storage {
  initialState(): { hardState: HardState; voters: NodeId[]; learners: NodeId[] };
  /** Entries in [lo, hi), at most maxBytes of data (at least one entry when any exist). */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  term(index: number): number;
  lastIndex(): number;
  firstIndex(): number;
  snapshot(): Snapshot;
}

export interface Config {
  id: NodeId;
  /** Voters of a new cluster; ignored when storage already holds a configuration. */
  peers: NodeId[];
  learners?: NodeId[];
  electionTick: number;
  heartbeatTick: number;
  storage: Storage;
  /** Last applied index (on restart, from the state machine). */
  applied: number;
  maxSizePerMsg: number;
  maxInflightMsgs: number;
  preVote: boolean;
  checkQuorum: boolean;
  /** Seeded generator in [0, 1): the only source of randomness (election timeout jitter). */
  rand: () => number;
}

/** A proposal the core refuses (no leader known, leader transfer in progress, ...). */
export class ProposalDroppedError extends Error {
  constructor() {
    super('raft proposal dropped');
  }
}

// ---- Additions (raft core): storage errors and optional tuning. Existing names above are frozen. ----

/** Storage.entries/term: the requested index precedes firstIndex()-1 (compacted into a snapshot). */
export class ErrCompacted extends Error {
  constructor() {
    super('requested index is unavailable due to compaction');
  }
}

/** Storage.entries/term: the requested index is past lastIndex(). */
export class ErrUnavailable extends Error {
  constructor() {
    super('requested entry at index is unavailable');
  }
}

/** MemoryStorage.applySnapshot/createSnapshot: the snapshot is older than the one held. */
export class ErrSnapOutOfDate extends Error {
  constructor() {
    super('requested index is older than the existing snapshot');
  }
}

/** Optional knobs beyond Config; defaults in parentheses. */
export interface ConfigExtras {
  /** Bytes of committed entries handed out per Ready (maxSizePerMsg * maxInflightMsgs). */
  maxCommittedSizePerReady?: number;
  /** Followers forward proposals to the leader instead of throwing ProposalDroppedError (false). */
  forwardProposals?: boolean;
}

// ---- Conf changes: simple, one-at-a-time membership changes (etcd's ConfChange v1). ----

export enum ConfChangeType {
  AddNode = 0,
  RemoveNode = 1,
  UpdateNode = 2,
  AddLearnerNode = 3,
}

/** A decoded ConfChange entry; the entry's data encoding belongs to the driver, not to raft. */
export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
}
