// Unstable: entries (and possibly an incoming snapshot) that raft holds but the driver has not yet
// reported durable through advance(). Shaped after etcd-io/raft log_unstable.go.
//
// Invariants: entries[i].index === offset + i; when snapshot !== null,
// offset === snapshot.metadata.index + 1 at the time it was restored.

import { assert } from '../../shared/errors';
import { Entry, Snapshot } from './types';

export class Unstable {
  snapshot: Snapshot | null;
  entries: Entry[];
  offset: number;

  constructor(offset: number) {
    this.snapshot = null;
    this.entries = [];
    this.offset = offset;
  }

  /** First index known from an unstable snapshot, or null. */
  maybeFirstIndex(): number | null {
    return this.snapshot !== null ? this.snapshot.metadata.index + 1 : null;
  }

  /** Last index held here (entries, else snapshot), or null. */
  maybeLastIndex(): number | null {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot !== null ? this.snapshot.metadata.index : null;
  }

  /** Term of entry i if held here, or null. */
  maybeTerm(i: number): number | null {
    if (i < this.offset) {
      if (this.snapshot !== null && this.snapshot.metadata.index === i) return this.snapshot.metadata.term;
      return null;
    }
    const last = this.maybeLastIndex();
    if (last === null || i > last) return null;
    return this.entries[i - this.offset].term;
  }

  /** Entries up to i (with term t) are durable: drop them unless they were overwritten since. */
  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    if (gt === null || gt !== t || i < this.offset) return;
    this.entries = this.entries.slice(i + 1 - this.offset);
    this.offset = i + 1;
  }

  stableSnapTo(i: number): void {
    if (this.snapshot !== null && this.snapshot.metadata.index === i) this.snapshot = null;
  }

  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  /** Appends ents, first truncating any held entries at or after ents[0].index. */
  truncateAndAppend(ents: Entry[]): void {
    if (ents.length === 0) return;
    const after = ents[0].index;
    if (after === this.offset + this.entries.length) {
      // In place: a leader appends one proposal at a time, and a copy per append made a Ready of n
      // proposals cost O(n²). Nothing outside holds this array (RawNode.ready copies it).
      for (const e of ents) this.entries.push(e);
    } else if (after <= this.offset) {
      // The log is being replaced from before what we hold: the durable part is overwritten too.
      this.offset = after;
      this.entries = ents.slice();
    } else {
      this.entries = this.slice(this.offset, after).concat(ents);
    }
  }

  /** Entries [lo, hi); the range must lie within [offset, offset + entries.length]. */
  slice(lo: number, hi: number): Entry[] {
    assert(lo <= hi && lo >= this.offset && hi <= this.offset + this.entries.length,
      `unstable.slice[${lo},${hi}) out of [${this.offset},${this.offset + this.entries.length}]`);
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
