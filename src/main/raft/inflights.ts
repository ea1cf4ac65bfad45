// Inflights: the leader's bounded window of MsgApp sent to one follower and not yet acknowledged,
// after etcd-io/raft tracker/inflights.go. A ring of (last index, bytes) per message.
//
// Invariant: count <= size; the indexes in the ring increase from start.

import { assert } from '../../shared/errors';

export class Inflights {
  /** Max messages in flight (Config.maxInflightMsgs). */
  readonly size: number;
  /** Max payload bytes in flight; 0 means unbounded by bytes. */
  readonly maxBytes: number;
  #start: number;
  #count: number;
  #bytes: number;
  readonly #indexes: number[];
  readonly #sizes: number[];

  constructor(size: number, maxBytes: number) {
    assert(size > 0, 'inflights size must be > 0');
    this.size = size;
    this.maxBytes = maxBytes;
    this.#start = 0;
    this.#count = 0;
    this.#bytes = 0;
    this.#indexes = new Array<number>(size).fill(0);
    this.#sizes = new Array<number>(size).fill(0);
  }

  /** Records a MsgApp whose last entry is `index`, carrying `bytes` of payload. */
  add(index: number, bytes: number): void {
    assert(!this.full(), 'cannot add into a full inflights');
    const slot = (this.#start + this.#count) % this.size;
    this.#indexes[slot] = index;
    this.#sizes[slot] = bytes;
    this.#count++;
    this.#bytes += bytes;
  }

  /** Frees every message whose last index is <= to (acknowledged). */
  freeLE(to: number): void {
    while (this.#count > 0 && this.#indexes[this.#start] <= to) {
      this.#bytes -= this.#sizes[this.#start];
      this.#start = (this.#start + 1) % this.size;
      this.#count--;
    }
    if (this.#count === 0) this.#start = 0;
  }

  full(): boolean {
    return this.#count === this.size || (this.maxBytes !== 0 && this.#bytes >= this.maxBytes);
  }

  count(): number {
    return this.#count;
  }

  reset(): void {
    this.#start = 0;
    this.#count = 0;
    this.#bytes = 0;
  }
}
