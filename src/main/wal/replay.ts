// Rebuilds the Raft log from records in file order. The rules mirror what the writer may do:
//  - an entry whose index <= the last one overwrites the log from that index (Raft truncation);
//  - an entry past lastIndex + 1 starts the log afresh (legal only when a snapshot marker covers the
//    jump, which finish() checks);
//  - a snapshot marker drops entries <= its index (they live in the state machine now);
//  - hardState: the last one wins.
// Invariant: #entries is contiguous by index at all times.
import { Entry, HardState } from '../raft/types';
import { WalCorruptError } from './errors';

export class LogReplay {
  hardState: HardState | null;
  snapshotIndex: number;
  snapshotTerm: number;
  #entries: Entry[];
  /** File and offset of the record that holds #entries[0], for the error finish() may raise. */
  #startFile: string;
  #startOffset: number;

  constructor() {
    this.hardState = null;
    this.snapshotIndex = 0;
    this.snapshotTerm = 0;
    this.#entries = [];
    this.#startFile = '';
    this.#startOffset = 0;
  }

  addEntry(e: Entry, file: string, offset: number): void {
    const log = this.#entries;
    const n = log.length;
    if (n > 0) {
      const first = log[0].index;
      const last = log[n - 1].index;
      if (e.index <= first || e.index > last + 1) log.length = 0;
      else if (e.index <= last) log.length = e.index - first;
    }
    if (log.length === 0) {
      this.#startFile = file;
      this.#startOffset = offset;
    }
    log.push(e);
  }

  addSnapshot(index: number, term: number): void {
    if (index < this.snapshotIndex) return;
    this.snapshotIndex = index;
    this.snapshotTerm = term;
    const log = this.#entries;
    if (log.length === 0) return;
    const drop = index - log[0].index + 1;
    if (drop >= log.length) log.length = 0;
    else if (drop > 0) log.splice(0, drop);
    // #startFile/#startOffset now name an older record; only used in messages, close enough.
  }

  /**
   * The final log after the snapshot. Throws when entries between the snapshot and the log's first
   * entry are missing: a lost segment, or an index jump no snapshot marker explains.
   */
  finish(): Entry[] {
    const log = this.#entries;
    if (log.length > 0 && log[0].index > this.snapshotIndex + 1) {
      throw new WalCorruptError(this.#startFile, this.#startOffset,
        `log starts at index ${log[0].index} but snapshot index is ${this.snapshotIndex}: entries missing`);
    }
    return log;
  }
}
