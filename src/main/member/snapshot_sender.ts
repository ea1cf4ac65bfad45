// Sending a snapshot to a follower that fell behind the leader's log: the follower gets a copy of the
// LMDB environment (at least as new as the snapshot Raft asked for) on its own connection. One
// transfer per follower at a time; Raft hears how it ended from the driver (RaftNode reportSnapshot).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Logger } from '../log';
import { Membership } from '../membership';
import type { Message } from '../raft/types';
import { idToHex } from '../../shared/ids';
import { MvccStore } from '../../shared/mvcc/store';
import type { PeerLinks } from './peers';

export class SnapshotSender {
  readonly #memberDir: string;
  readonly #store: MvccStore;
  readonly #peers: PeerLinks;
  readonly #log: Logger;
  readonly #inFlight = new Set<bigint>();

  constructor(memberDir: string, store: MvccStore, peers: PeerLinks, log: Logger) {
    this.#memberDir = memberDir;
    this.#store = store;
    this.#peers = peers;
    this.#log = log;
  }

  /** Copies of snapshots being sent when the process died. */
  static removeLeftovers(memberDir: string): void {
    for (const f of fs.readdirSync(memberDir))
      if (f.startsWith('snap-out-')) fs.rmSync(path.join(memberDir, f), { recursive: true, force: true });
  }

  /**
   * Sends the state to m.to; resolves when the follower has it. Null when a transfer to that follower
   * is already running (Raft asks again if it still needs one). termAt: the log's term at an index.
   */
  send(m: Message, termAt: (index: number) => number): Promise<void> | null {
    if (this.#inFlight.has(m.to)) return null;
    this.#inFlight.add(m.to);
    const dir = fs.mkdtempSync(path.join(this.#memberDir, 'snap-out-'));
    this.#log.info('sending snapshot', { to: idToHex(m.to), index: m.snapshot?.metadata.index });
    return this.#store
      .backup(dir)
      .then(() => this.#peers.sendSnapshot(snapshotAtCopy(m, dir, termAt), dir))
      .catch((e: Error) => {
        this.#log.warn('sending snapshot failed', { to: idToHex(m.to), error: e.message });
        throw e;
      })
      .finally(() => {
        this.#inFlight.delete(m.to);
        fs.rmSync(dir, { recursive: true, force: true });
      });
  }
}

/**
 * The copy holds the state at its own applied index A, at or after the snapshot Raft asked for: the
 * message says A, A's term and the membership stored in the copy, so the follower's Raft and its
 * membership restart from exactly the state it installs.
 */
function snapshotAtCopy(m: Message, dir: string, termAt: (index: number) => number): Message {
  const copy = MvccStore.open(dir, { readOnly: true });
  try {
    const index = copy.appliedIndex;
    const st = copy.membership();
    const md = m.snapshot!.metadata;
    if (index <= md.index || st === null) return m;
    const cs = Membership.fromState(st).confState();
    let term: number;
    try {
      term = termAt(index);
    } catch {
      return m; // no longer in our log: the snapshot Raft asked for is still right for this copy
    }
    return { ...m, snapshot: { data: m.snapshot!.data, metadata: { index, term, voters: cs.voters, learners: cs.learners } } };
  } finally {
    void copy.close();
  }
}
