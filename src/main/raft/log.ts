// RaftLog: the log as raft sees it, stable storage followed by unstable entries, plus the commit
// and applied cursors. Shaped after etcd-io/raft log.go.
//
// Invariants: applied <= committed <= lastIndex(); firstIndex()-1 <= applied once a snapshot is
// restored (the snapshot's index counts as applied).

import { assert } from '../../shared/errors';
import { Unstable } from './unstable';
import { Entry, ErrCompacted, ErrUnavailable, Snapshot, Storage } from './types';
import { limitSize } from './util';

export class RaftLog {
  readonly storage: Storage;
  readonly unstable: Unstable;
  /** Highest index known to be stored on a quorum. */
  committed: number;
  /** Highest index the application has applied (reported through advance). */
  applied: number;
  /** Byte budget of committed entries handed out in one Ready. */
  readonly maxNextEntsSize: number;

  constructor(storage: Storage, maxNextEntsSize: number) {
    this.storage = storage;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applied = first - 1;
    this.maxNextEntsSize = maxNextEntsSize;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /** Term of entry i; throws ErrCompacted below firstIndex()-1 and ErrUnavailable past lastIndex(). */
  term(i: number): number {
    if (i < this.firstIndex() - 1) throw new ErrCompacted();
    if (i > this.lastIndex()) throw new ErrUnavailable();
    return this.termInBounds(i);
  }

  /** term(i), or 0 when i is compacted or not yet held (etcd's zeroTermOnOutOfBounds). Bounds are
   * checked instead of catching term()'s errors: this runs for every entry of every MsgApp a
   * follower gets (findConflict), and an Error per new entry cost 7% of a follower's main thread. */
  termOrZero(i: number): number {
    if (i < this.firstIndex() - 1 || i > this.lastIndex()) return 0;
    return this.termInBounds(i);
  }

  /** Whether entry i has term t; false when i is compacted or not yet held. */
  matchTerm(i: number, t: number): boolean {
    if (i < this.firstIndex() - 1 || i > this.lastIndex()) return false;
    return this.termInBounds(i) === t;
  }

  /** Term of i in [firstIndex()-1, lastIndex()], which unstable or storage holds: storage changes
   * only between calls into raft, never between the bound check and this read (etcd maps storage
   * errors to term 0 too because its storage may be compacted concurrently). */
  private termInBounds(i: number): number {
    return this.unstable.maybeTerm(i) ?? this.storage.term(i);
  }

  /**
   * Follower side of MsgApp: when our entry at `index` has `logTerm`, append ents (truncating any
   * conflicting suffix), advance commit to min(committed, last new index), and return that last
   * new index. Returns null when the log does not match at `index`.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: Entry[]): number | null {
    if (!this.matchTerm(index, logTerm)) return null;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      assert(ci > this.committed, `entry ${ci} conflicts with committed entry (committed ${this.committed})`);
      this.append(ents.slice(ci - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  append(ents: Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    assert(ents[0].index - 1 >= this.committed, `append after ${ents[0].index - 1} is below committed ${this.committed}`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * Index of the first entry of ents that is not already in the log with the same term (0 when
   * all are). ents must be contiguous.
   */
  findConflict(ents: Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * Largest index <= index whose term is <= term (or the compaction point), with its term. The
   * leader uses it on a rejection hint to skip a whole term of mismatching entries at once.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (; index > 0; index--) {
      let t: number;
      try {
        t = this.term(index);
      } catch (e) {
        if (e instanceof ErrCompacted || e instanceof ErrUnavailable) return { index, term: 0 };
        throw e;
      }
      if (t <= term) return { index, term: t };
    }
    return { index: 0, term: 0 };
  }

  /** Raft paper §5.4.1: a candidate's log is at least as up-to-date as ours. */
  isUpToDate(lastIndex: number, term: number): boolean {
    const ourTerm = this.lastTerm();
    return term > ourTerm || (term === ourTerm && lastIndex >= this.lastIndex());
  }

  commitTo(tocommit: number): void {
    if (this.committed >= tocommit) return; // never decrease commit
    assert(tocommit <= this.lastIndex(), `commitTo ${tocommit} past lastIndex ${this.lastIndex()}`);
    this.committed = tocommit;
  }

  /** Leader: commit maxIndex if it holds an entry of the current term (§5.4.2). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.termOrZero(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    assert(i <= this.committed && i >= this.applied, `appliedTo ${i} outside [${this.applied}, ${this.committed}]`);
    this.applied = i;
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  /**
   * Last index of the durable log: everything below the unstable entries, which the driver
   * reported persisted through advance(). 0 while an unstable snapshot is pending (none of it is).
   */
  stableLastIndex(): number {
    return this.unstable.snapshot !== null ? 0 : this.unstable.offset - 1;
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries;
  }

  /** Committed entries not yet applied, bounded by maxNextEntsSize. */
  nextEnts(): Entry[] {
    const off = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed + 1 > off) return this.slice(off, this.committed + 1, this.maxNextEntsSize);
    return [];
  }

  hasNextEnts(): boolean {
    return this.committed + 1 > Math.max(this.applied + 1, this.firstIndex());
  }

  hasPendingSnapshot(): boolean {
    return this.unstable.snapshot !== null;
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Entries from i to the end, at most maxSize bytes (at least one); throws ErrCompacted. */
  entries(i: number, maxSize: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxSize);
  }

  /** Entries [lo, hi) from storage then unstable, at most maxSize bytes (at least one). */
  slice(lo: number, hi: number, maxSize: number): Entry[] {
    this.mustCheckOutOfBounds(lo, hi);
    if (lo === hi) return [];
    let ents: Entry[] = [];
    const off = this.unstable.offset;
    if (lo < off) {
      const stored = this.storage.entries(lo, Math.min(hi, off), maxSize);
      // Storage returned fewer than asked: the size limit was hit, so stop here.
      if (stored.length < Math.min(hi, off) - lo) return stored;
      ents = stored;
    }
    if (hi > off) {
      const uns = this.unstable.slice(Math.max(lo, off), hi);
      ents = ents.length > 0 ? ents.concat(uns) : uns;
    }
    return limitSize(ents, maxSize);
  }

  /** Replaces the log with a snapshot (follower installing the leader's snapshot). */
  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }

  allEntries(): Entry[] {
    for (;;) {
      try {
        return this.entries(this.firstIndex(), Number.MAX_SAFE_INTEGER);
      } catch (e) {
        // Compaction raced with us (only possible with concurrent storage); retry.
        if (!(e instanceof ErrCompacted)) throw e;
      }
    }
  }

  private mustCheckOutOfBounds(lo: number, hi: number): void {
    assert(lo <= hi, `invalid slice ${lo} > ${hi}`);
    if (lo < this.firstIndex()) throw new ErrCompacted();
    assert(hi <= this.lastIndex() + 1, `slice[${lo},${hi}) out of bound [${this.firstIndex()},${this.lastIndex()}]`);
  }
}
