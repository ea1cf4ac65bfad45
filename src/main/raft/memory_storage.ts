// MemoryStorage: the Storage interface held in memory, shaped after etcd-io/raft storage.go.
// The driver appends what Ready says is durable; raft reads it back through Storage.
//
// Invariant: #ents[0] is a dummy entry whose index/term are those of the last snapshot (or 0/0),
// so firstIndex() = #ents[0].index + 1 and lastIndex() = #ents[0].index + #ents.length - 1.

import { assert } from '../../shared/errors';
import {
  ConfState,
  Entry,
  EntryType,
  ErrCompacted,
  ErrSnapOutOfDate,
  ErrUnavailable,
  HardState,
  NodeId,
  None,
  Snapshot,
  Storage,
} from './types';
import { limitSize } from './util';
import { copyConfState } from './confchange';

export class MemoryStorage implements Storage {
  #hardState: HardState;
  #snapshot: Snapshot;
  #ents: Entry[];

  constructor(voters: NodeId[], learners: NodeId[] = []) {
    this.#hardState = { term: 0, vote: None, commit: 0 };
    this.#snapshot = {
      metadata: { index: 0, term: 0, voters: [...voters], learners: [...learners] },
      data: new Uint8Array(0),
    };
    this.#ents = [dummyEntry(0, 0)];
  }

  initialState(): { hardState: HardState; voters: NodeId[]; learners: NodeId[] } {
    const md = this.#snapshot.metadata;
    return { hardState: { ...this.#hardState }, voters: [...md.voters], learners: [...md.learners] };
  }

  setHardState(hs: HardState): void {
    this.#hardState = { ...hs };
  }

  hardState(): HardState {
    return { ...this.#hardState };
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.#ents[0].index;
    if (lo <= offset) throw new ErrCompacted();
    if (hi > this.lastIndex() + 1) throw new ErrUnavailable();
    assert(lo <= hi, `entries: lo ${lo} > hi ${hi}`);
    return limitSize(this.#ents.slice(lo - offset, hi - offset), maxBytes);
  }

  term(index: number): number {
    const offset = this.#ents[0].index;
    if (index < offset) throw new ErrCompacted();
    if (index - offset >= this.#ents.length) throw new ErrUnavailable();
    return this.#ents[index - offset].term;
  }

  lastIndex(): number {
    return this.#ents[0].index + this.#ents.length - 1;
  }

  firstIndex(): number {
    return this.#ents[0].index + 1;
  }

  snapshot(): Snapshot {
    return this.#snapshot;
  }

  /** Replaces the whole state with a snapshot received from the leader. */
  applySnapshot(s: Snapshot): void {
    if (this.#snapshot.metadata.index >= s.metadata.index) throw new ErrSnapOutOfDate();
    this.#snapshot = s;
    this.#ents = [dummyEntry(s.metadata.index, s.metadata.term)];
  }

  /**
   * Records the application's state at `index` (<= applied <= commit) as the current snapshot.
   * cs is the configuration as of `index` (the ConfState returned by the last applyConfChange at
   * or before it); without it, the previous snapshot's configuration is carried over.
   */
  createSnapshot(index: number, data: Uint8Array, cs?: ConfState): Snapshot {
    if (index <= this.#snapshot.metadata.index) throw new ErrSnapOutOfDate();
    assert(index <= this.lastIndex(), `createSnapshot ${index} > lastIndex ${this.lastIndex()}`);
    const { voters, learners } = cs !== undefined ? copyConfState(cs) : this.#snapshot.metadata;
    this.#snapshot = {
      metadata: { index, term: this.term(index), voters, learners },
      data,
    };
    return this.#snapshot;
  }

  /** Drops entries <= index; the dummy entry keeps index's term so term(index) still answers. */
  compact(index: number): void {
    const offset = this.#ents[0].index;
    if (index <= offset) throw new ErrCompacted();
    assert(index <= this.lastIndex(), `compact ${index} > lastIndex ${this.lastIndex()}`);
    const i = index - offset;
    this.#ents = [dummyEntry(index, this.#ents[i].term), ...this.#ents.slice(i + 1)];
  }

  /**
   * Appends entries, which must be contiguous. Entries that overlap the held log overwrite it from
   * the first overlapping index on (raft only sends a conflicting suffix after truncation), and
   * entries already compacted away are ignored.
   */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0].index + entries.length - 1;
    if (last < first) return;
    if (first > entries[0].index) entries = entries.slice(first - entries[0].index);
    const offset = entries[0].index - this.#ents[0].index;
    assert(offset <= this.#ents.length, `append gap: lastIndex ${this.lastIndex()}, got ${entries[0].index}`);
    // In place: the common case appends at the end, and copying the whole log per Ready was a
    // measurable share of the main thread (O(log length) per append). entries() hands out copies,
    // so nobody else holds this array.
    if (offset < this.#ents.length) this.#ents.length = offset;
    for (const e of entries) this.#ents.push(e);
  }
}

function dummyEntry(index: number, term: number): Entry {
  return { index, term, type: EntryType.Normal, data: new Uint8Array(0) };
}
