// Replay: the Raft log and state this member restarts from, rebuilt from the WAL and the state
// machine (LMDB, whose applied index is the snapshot). A new cluster's log is bootstrapped here; a
// state machine ahead of the WAL (a lone voter's overlap of apply and fsync) is adopted as a snapshot.
import { Logger } from '../log';
import { Membership } from '../membership';
import { MemoryStorage } from '../raft/memory_storage';
import { ConfState, EntryType } from '../raft/types';
import { Wal, WalOpenResult } from '../wal/wal';
import { decodeConfChange, encodeConfChange } from '../../shared/confchange';
import type { MvccStore } from '../../shared/mvcc/store';
import type { Identity } from './identity';
import { StartupError } from '../startup_error';

/** What Raft starts from. */
export interface RecoveredLog {
  storage: MemoryStorage;
  /** The membership at the applied index (the current one until the next ConfChange is applied). */
  membership: Membership;
  conf: ConfState;
  applied: number;
}

/**
 * The membership at the applied index: stored by the last applied ConfChange; before any, the
 * --initial-cluster members (a new cluster) or nobody (a joining member learns it from the leader).
 */
function membershipAtApplied(store: MvccStore, ident: Identity): Membership {
  const stored = store.membership();
  if (stored !== null) return Membership.fromState(stored);
  if (ident.joined) return Membership.fromState({ members: [], removed: [], nextTag: 0 });
  return Membership.initial(ident.members.map((m) => ({ id: BigInt(m.id), peerURLs: m.peerUrls })));
}

/** Rebuilds Raft's storage from what the WAL replayed and what the state machine has applied. */
export async function recoverLog(
  recovered: WalOpenResult,
  store: MvccStore,
  ident: Identity,
  applied: number,
  log: Logger,
): Promise<RecoveredLog> {
  const memberId = BigInt(ident.memberId);
  const membership = membershipAtApplied(store, ident);
  const conf = membership.confState();
  const storage = new MemoryStorage(conf.voters, conf.learners);
  if (recovered.snapshotIndex > 0) {
    // The state machine (LMDB) is the snapshot: it was synced up to at least this index before the
    // WAL released the entries below it.
    if (applied < recovered.snapshotIndex)
      throw new StartupError(`state machine applied index ${applied} is below the WAL snapshot ${recovered.snapshotIndex}: state lost`);
    storage.applySnapshot({
      metadata: { index: recovered.snapshotIndex, term: recovered.snapshotTerm, voters: conf.voters, learners: conf.learners },
      data: new Uint8Array(0),
    });
  }
  storage.append(recovered.entries);
  if (recovered.hardState === null && recovered.entries.length === 0 && recovered.snapshotIndex === 0 && applied === 0 && !ident.joined) {
    await bootstrapLog(recovered.wal, storage, ident);
  }
  if (applied > storage.lastIndex())
    await adoptStateMachine(recovered.wal, storage, applied, recovered.hardState?.term ?? 1, conf.voters, memberId, log);
  if (recovered.hardState) {
    // Entries are applied only once committed, so an applied index above the persisted commit
    // (whose HardState update was not yet synced) is itself proof of commitment.
    storage.setHardState({ ...recovered.hardState, commit: Math.max(recovered.hardState.commit, applied) });
  }
  return { storage, membership, conf, applied };
}

/**
 * The state machine is ahead of the WAL: a lone voter applies entries while their WAL write is in
 * flight (answering only after both), so a crash in between leaves LMDB with entries the WAL never
 * synced. Those writes were never acknowledged, and no other member holds a conflicting log, so
 * the state machine is adopted as a snapshot at its applied index. With peers this cannot happen
 * (apply follows persistence) and would mean a lost WAL: refuse to start.
 */
async function adoptStateMachine(
  wal: Wal,
  storage: MemoryStorage,
  applied: number,
  term: number,
  voters: bigint[],
  memberId: bigint,
  log: Logger,
): Promise<void> {
  const lastIndex = storage.lastIndex();
  if (voters.length !== 1 || voters[0] !== memberId) {
    throw new StartupError(`state machine applied index ${applied} is beyond the WAL's last index ${lastIndex}: WAL lost`);
  }
  log.warn('state machine is ahead of the WAL (crash during an fsync); adopting it as a snapshot', { applied, lastIndex });
  storage.applySnapshot({ metadata: { index: applied, term, voters, learners: [] }, data: new Uint8Array(0) });
  await wal.releaseTo(applied, term);
}

/**
 * A new cluster's log starts as etcd's does (etcd-io/raft Bootstrap): one ConfChange AddNode entry
 * per initial member at term 1, all committed. Applying them is the membership this member already
 * holds in identity.json (runtime reconfiguration is the multi-member issue).
 */
async function bootstrapLog(wal: Wal, storage: MemoryStorage, ident: Identity): Promise<void> {
  const entries = ident.members.map((m, i) => ({
    term: 1,
    index: i + 1,
    type: EntryType.ConfChange,
    data: encodeConfChange({ type: 'AddNode', nodeId: m.id, member: { name: m.name, peerURLs: m.peerUrls } }),
  }));
  const hardState = { term: 1, vote: 0n, commit: entries.length };
  await wal.save(hardState, entries);
  storage.append(entries);
  storage.setHardState(hardState);
}

/**
 * etcd's --force-new-cluster (restartAsStandaloneNode): the log's uncommitted tail is dropped, and a
 * RemoveNode entry for every other member (voters and learners, as the committed log leaves the
 * membership) is appended at the current term and marked committed, so this member applies them first
 * and then campaigns alone. Its data, revisions and IDs are kept; the removed members can never
 * rejoin (their IDs are removed), as in etcd.
 */
export async function forceNewCluster(rec: RecoveredLog, wal: Wal, memberId: bigint, log: Logger): Promise<void> {
  const storage = rec.storage;
  const hs = storage.hardState();
  const members = Membership.fromState(rec.membership.toState());
  if (hs.commit > rec.applied) {
    for (const e of storage.entries(rec.applied + 1, hs.commit + 1, Number.MAX_SAFE_INTEGER)) {
      if (e.type === EntryType.ConfChange) members.decide(decodeConfChange(e.data));
    }
  }
  if (members.get(memberId) === undefined)
    throw new StartupError('--force-new-cluster: this member is not in the cluster its log describes');
  const others = members.list().filter((m) => m.id !== memberId);
  log.warn('forcing a new one-member cluster', {
    removing: others.map((m) => m.id.toString(16)),
    commit: hs.commit,
    dropped: storage.lastIndex() - hs.commit,
  });
  if (others.length === 0) return;
  const entries = others.map((m, i) => ({
    term: hs.term,
    index: hs.commit + 1 + i,
    type: EntryType.ConfChange,
    data: encodeConfChange({ type: 'RemoveNode', nodeId: m.id.toString() }),
  }));
  const hardState = { ...hs, commit: hs.commit + entries.length };
  await wal.save(hardState, entries);
  storage.append(entries);
  storage.setHardState(hardState);
}
