// Single-producer single-consumer ring of variable-length binary messages over a SharedArrayBuffer.
// The main thread and each worker talk through a pair of these (one per direction). Exactly one
// Ring instance produces and exactly one (on the other thread) consumes; each caches the offset it
// alone writes. Producer methods: tryPush, pushAssumeCapacity, reserve/commit, notify,
// waitForSpaceAsync/Sync. Consumer methods: drain, waitSync, waitAsync. isEmpty/usedBytes: either.
//
// Header (Int32 words; each group of words written by one thread sits on its own 64-byte cache line
// so the producer's stores do not invalidate the consumer's line and vice versa):
//
//   byte   word  name              writer                 meaning
//   ----   ----  ----------------  ---------------------  -----------------------------------------
//      0      0  MAGIC             Ring.create (once)     RING_MAGIC, 'RING'
//      4      1  VERSION           Ring.create (once)     RING_VERSION; bumped on any layout change
//      8      2  CAPACITY          Ring.create (once)     data bytes, multiple of 8, <= 2^30
//     12      3  HEADER_BYTES      Ring.create (once)     RING_HEADER_BYTES (data starts here)
//         ...    (padding to 64)
//     64     16  HEAD              producer               ring offset of the next record to write
//     68     17  PRODUCER_WAITING  producer               # of waitForSpace* calls in progress
//     72     18  PUSHED            producer               messages pushed, mod 2^32
//         ...    (padding to 128)
//    128     32  TAIL              consumer               ring offset of the next record to read
//    132     33  CONSUMER_WAITING  consumer               # of waitSync/waitAsync calls in progress
//    136     34  POPPED            consumer               messages drained, mod 2^32
//         ...    (padding to 192)
//    192         data[CAPACITY]
//
// Ring offsets: HEAD and TAIL run over [0, 2*CAPACITY) and the byte position of an offset is
// `offset mod CAPACITY`. Counting two laps tells a full ring from an empty one without a spare slot:
//   used = (HEAD - TAIL) mod 2*CAPACITY,   invariant 0 <= used <= CAPACITY,
//   empty <=> HEAD == TAIL.  2*CAPACITY <= 2^31, so offsets fit an Int32 word.
//
// Records: [u32 length][payload][pad to 8], 8-aligned, never split across the end of the data
// region: when a record does not fit before the end, the producer writes WRAP_MARKER as the length
// word (the rest of the lap is skipped) and writes the record at position 0; both become visible
// with one HEAD store. Publication order: the producer writes the record, then Atomics.store(HEAD);
// the consumer Atomics.load(HEAD), reads records, then Atomics.store(TAIL) to free them. Atomics are
// sequentially consistent, which also makes the waiting flags race-free (see notify/waitSync).
import { assert } from './errors';

export const RING_MAGIC = 0x52494e47; // 'RING'
export const RING_VERSION = 1;
/** Bytes before the data region: three 64-byte lines (read-only, producer-written, consumer-written). */
export const RING_HEADER_BYTES = 192;
/** Largest data capacity: keeps 2*capacity offsets inside an Int32 word. */
export const RING_CAPACITY_BYTES_MAX = 2 ** 30;

const W_MAGIC = 0;
const W_VERSION = 1;
const W_CAPACITY = 2;
const W_HEADER_BYTES = 3;
const W_HEAD = 16;
const W_PRODUCER_WAITING = 17;
const W_PUSHED = 18;
const W_TAIL = 32;
const W_CONSUMER_WAITING = 33;
const W_POPPED = 34;

const RECORD_ALIGN_BYTES = 8;
const LENGTH_BYTES = 4;
/** Length word meaning "nothing more before the end of the data region; continue at 0". */
const WRAP_MARKER = 0xffffffff;

type WaitAsyncResult =
  | { async: false; value: 'not-equal' | 'timed-out' }
  | { async: true; value: Promise<'ok' | 'timed-out'> };
// Atomics.waitAsync is in Node 20 (V8) but not in TypeScript's ES2022 lib.
const AtomicsWaitAsync = Atomics as unknown as {
  waitAsync(ta: Int32Array, index: number, value: number, timeoutMs?: number): WaitAsyncResult;
};
const RESOLVED: Promise<void> = Promise.resolve();

function recordBytes(len: number): number {
  return (len + LENGTH_BYTES + RECORD_ALIGN_BYTES - 1) & ~(RECORD_ALIGN_BYTES - 1);
}

export class Ring {
  readonly capacityBytes: number;
  /**
   * Largest message tryPush can ever accept, and one an empty ring always accepts wherever HEAD is:
   * a record at position p fits either before the end (cap - p) or, after a wrap marker, at 0 (p),
   * and max(cap - p, p) >= cap/2 rounded up to 8. So a ring holds two messages of this size at most.
   */
  readonly maxMessageBytes: number;
  readonly #i32: Int32Array;
  /** Length words, indexed by (RING_HEADER_BYTES + position) >> 2. */
  readonly #u32: Uint32Array;
  /** The data region; message views are subarrays of it. */
  readonly #data: Uint8Array;
  /** 2 * capacityBytes: the range of HEAD and TAIL. */
  readonly #laps: number;
  /** Consumer: publish TAIL mid-drain once this many bytes were consumed, so a blocked producer moves. */
  readonly #publishEveryBytes: number;
  // Producer-only state.
  /** Our own HEAD (we are its only writer). */
  #head: number;
  /** Last TAIL we loaded; reloaded only when it says there is no room. */
  #tailSeen: number;
  /** TAIL observed by the last failed push, or -1: waitForSpace* waits for TAIL to move off it. */
  #tailAtFull: number;
  /** HEAD after the reserved record, or -1 when nothing is reserved. */
  #reservedHead: number;
  #pushed: number;
  // Consumer-only state.
  /** Our own TAIL (we are its only writer). */
  #tail: number;
  #popped: number;
  #draining: boolean;
  readonly #onConsumerWake: () => void;
  readonly #onProducerWake: () => void;

  /** Allocates a ring with `bytes` of data space (rounded up to a multiple of 8) plus the header. */
  static create(bytes: number): SharedArrayBuffer {
    assert(Number.isSafeInteger(bytes) && bytes > 0, 'ring bytes must be a positive integer');
    const capacity = Math.ceil(bytes / RECORD_ALIGN_BYTES) * RECORD_ALIGN_BYTES;
    assert(capacity <= RING_CAPACITY_BYTES_MAX, 'ring bytes exceed RING_CAPACITY_BYTES_MAX');
    const sab = new SharedArrayBuffer(RING_HEADER_BYTES + capacity);
    const i32 = new Int32Array(sab, 0, RING_HEADER_BYTES >> 2);
    i32[W_VERSION] = RING_VERSION;
    i32[W_CAPACITY] = capacity;
    i32[W_HEADER_BYTES] = RING_HEADER_BYTES;
    Atomics.store(i32, W_MAGIC, RING_MAGIC); // last, so a valid magic implies a complete header
    return sab;
  }

  constructor(sab: SharedArrayBuffer) {
    assert(sab instanceof SharedArrayBuffer && sab.byteLength > RING_HEADER_BYTES, 'ring: not a ring buffer');
    const i32 = new Int32Array(sab, 0, RING_HEADER_BYTES >> 2);
    assert(Atomics.load(i32, W_MAGIC) === RING_MAGIC, 'ring: bad magic');
    assert(i32[W_VERSION] === RING_VERSION, `ring: version ${i32[W_VERSION]}, expected ${RING_VERSION}`);
    assert(i32[W_HEADER_BYTES] === RING_HEADER_BYTES, 'ring: bad header size');
    const capacity = i32[W_CAPACITY];
    assert(capacity > 0 && capacity % RECORD_ALIGN_BYTES === 0 && capacity <= RING_CAPACITY_BYTES_MAX &&
      RING_HEADER_BYTES + capacity === sab.byteLength, 'ring: bad capacity');
    this.capacityBytes = capacity;
    this.maxMessageBytes = Math.ceil(capacity / RECORD_ALIGN_BYTES / 2) * RECORD_ALIGN_BYTES - LENGTH_BYTES;
    this.#i32 = i32;
    this.#u32 = new Uint32Array(sab);
    this.#data = new Uint8Array(sab, RING_HEADER_BYTES, capacity);
    this.#laps = 2 * capacity;
    this.#publishEveryBytes = Math.max(RECORD_ALIGN_BYTES, capacity >>> 2);
    this.#head = Atomics.load(i32, W_HEAD);
    this.#tailSeen = Atomics.load(i32, W_TAIL);
    this.#tailAtFull = -1;
    this.#reservedHead = -1;
    this.#pushed = Atomics.load(i32, W_PUSHED);
    this.#tail = this.#tailSeen;
    this.#popped = Atomics.load(i32, W_POPPED);
    this.#draining = false;
    this.#onConsumerWake = () => { Atomics.sub(this.#i32, W_CONSUMER_WAITING, 1); };
    this.#onProducerWake = () => { Atomics.sub(this.#i32, W_PRODUCER_WAITING, 1); };
  }

  // ---- producer ----------------------------------------------------------------------------

  /** Producer: copies msg in; false when there is not enough free space (backpressure). Does NOT wake the consumer. */
  tryPush(msg: Uint8Array): boolean {
    const at = this.#claim(msg.length);
    if (at < 0) return false;
    this.#data.set(msg, at);
    this.commit();
    return true;
  }

  /** Producer: like tryPush but asserts success. */
  pushAssumeCapacity(msg: Uint8Array): void {
    assert(this.tryPush(msg), 'ring: pushAssumeCapacity on a full ring');
  }

  /**
   * Producer: reserves len bytes and returns a view of them to encode into directly; commit()
   * publishes. Null when full. Until commit() the consumer sees nothing; no other push may intervene.
   */
  reserve(len: number): Uint8Array | null {
    const at = this.#claim(len);
    return at < 0 ? null : this.#data.subarray(at, at + len);
  }

  /** Producer: publishes the record claimed by reserve() (and by tryPush). */
  commit(): void {
    assert(this.#reservedHead !== -1, 'ring: commit() without reserve()');
    const head = this.#reservedHead;
    this.#reservedHead = -1;
    this.#head = head;
    this.#tailAtFull = -1;
    Atomics.store(this.#i32, W_HEAD, head); // publishes the record (written before this store)
    this.#pushed = (this.#pushed + 1) | 0;
    Atomics.store(this.#i32, W_PUSHED, this.#pushed);
  }

  /**
   * Producer: wakes a consumer blocked in waitSync/waitAsync, only if one is waiting. Race-free:
   * we stored HEAD before loading CONSUMER_WAITING; the consumer increments CONSUMER_WAITING before
   * Atomics.wait re-reads HEAD. So either we see the flag, or its wait sees the new HEAD.
   */
  notify(): void {
    if (Atomics.load(this.#i32, W_CONSUMER_WAITING) !== 0) Atomics.notify(this.#i32, W_HEAD);
  }

  /**
   * Producer side: resolves when space was freed since the last failed push (or since the call, if
   * the last push succeeded), or after timeoutMs. The caller retries its push. Keep one waiter at a time.
   */
  waitForSpaceAsync(timeoutMs: number): Promise<void> {
    const i32 = this.#i32;
    const expected = this.#tailAtFull !== -1 ? this.#tailAtFull : Atomics.load(i32, W_TAIL);
    Atomics.add(i32, W_PRODUCER_WAITING, 1);
    const r = AtomicsWaitAsync.waitAsync(i32, W_TAIL, expected, timeoutMs);
    if (!r.async) {
      Atomics.sub(i32, W_PRODUCER_WAITING, 1);
      return RESOLVED;
    }
    return r.value.then(this.#onProducerWake);
  }

  /** Producer in a worker: like waitForSpaceAsync but blocks (Atomics.wait). */
  waitForSpaceSync(timeoutMs: number): void {
    const i32 = this.#i32;
    const expected = this.#tailAtFull !== -1 ? this.#tailAtFull : Atomics.load(i32, W_TAIL);
    Atomics.add(i32, W_PRODUCER_WAITING, 1);
    Atomics.wait(i32, W_TAIL, expected, timeoutMs);
    Atomics.sub(i32, W_PRODUCER_WAITING, 1);
  }

  /**
   * Claims a record for a len-byte payload: writes its length word (and a wrap marker if needed)
   * and sets #reservedHead. Returns the payload's position in #data, or -1 when there is no room.
   */
  #claim(len: number): number {
    assert(this.#reservedHead === -1, 'ring: reserve() without commit()');
    assert(len >>> 0 === len && len <= this.maxMessageBytes, 'ring: message length not in [0, maxMessageBytes]');
    const capacity = this.capacityBytes;
    const record = recordBytes(len);
    const head = this.#head;
    const pos = head >= capacity ? head - capacity : head;
    const toEnd = capacity - pos;
    const need = record <= toEnd ? record : toEnd + record; // a wrap wastes the rest of the lap
    if (need > this.#freeBytes(this.#tailSeen)) {
      this.#tailSeen = Atomics.load(this.#i32, W_TAIL);
      if (need > this.#freeBytes(this.#tailSeen)) {
        this.#tailAtFull = this.#tailSeen;
        return -1;
      }
    }
    let at = pos;
    if (record > toEnd) {
      this.#u32[(RING_HEADER_BYTES + pos) >> 2] = WRAP_MARKER;
      at = 0;
    }
    this.#u32[(RING_HEADER_BYTES + at) >> 2] = len;
    const next = head + need;
    this.#reservedHead = next >= this.#laps ? next - this.#laps : next;
    return at + LENGTH_BYTES;
  }

  #freeBytes(tail: number): number {
    let used = this.#head - tail;
    if (used < 0) used += this.#laps;
    return this.capacityBytes - used;
  }

  // ---- consumer ----------------------------------------------------------------------------

  /**
   * Consumer: calls fn for each available message, in push order, up to maxMessages. The view is
   * valid only during the call (its bytes are freed after). Returns how many. If fn throws, that
   * message counts as consumed and the exception propagates. Not re-entrant. Wakes a producer
   * waiting for space.
   */
  drain(fn: (msg: Uint8Array) => void, maxMessages: number = Infinity): number {
    assert(!this.#draining, 'ring: drain() re-entered');
    const capacity = this.capacityBytes;
    const laps = this.#laps;
    const u32 = this.#u32;
    const head = Atomics.load(this.#i32, W_HEAD); // acquire: records before head are complete
    let tail = this.#tail;
    let n = 0;
    let unpublishedBytes = 0;
    let unpublishedMessages = 0;
    this.#draining = true;
    try {
      while (tail !== head && n < maxMessages) {
        const pos = tail >= capacity ? tail - capacity : tail;
        const len = u32[(RING_HEADER_BYTES + pos) >> 2];
        if (len === WRAP_MARKER) {
          tail += capacity - pos;
          if (tail >= laps) tail -= laps;
          continue;
        }
        assert(len <= this.maxMessageBytes, 'ring: corrupt record length');
        const record = recordBytes(len);
        tail += record;
        if (tail >= laps) tail -= laps;
        n++;
        unpublishedMessages++;
        unpublishedBytes += record;
        const at = pos + LENGTH_BYTES;
        fn(this.#data.subarray(at, at + len));
        if (unpublishedBytes >= this.#publishEveryBytes) {
          this.#publishTail(tail, unpublishedMessages);
          unpublishedBytes = 0;
          unpublishedMessages = 0;
        }
      }
    } finally {
      this.#draining = false;
      if (tail !== this.#tail) this.#publishTail(tail, unpublishedMessages);
    }
    return n;
  }

  /** Consumer: frees everything before tail, then wakes a producer waiting for space (same race argument as notify). */
  #publishTail(tail: number, messages: number): void {
    const i32 = this.#i32;
    this.#tail = tail;
    Atomics.store(i32, W_TAIL, tail);
    this.#popped = (this.#popped + messages) | 0;
    Atomics.store(i32, W_POPPED, this.#popped);
    if (Atomics.load(i32, W_PRODUCER_WAITING) !== 0) Atomics.notify(i32, W_TAIL);
  }

  /** Consumer in a worker: blocks (Atomics.wait) until data is available or timeoutMs passes. */
  waitSync(timeoutMs: number): void {
    const i32 = this.#i32;
    const tail = this.#tail;
    if (Atomics.load(i32, W_HEAD) !== tail) return;
    Atomics.add(i32, W_CONSUMER_WAITING, 1);
    Atomics.wait(i32, W_HEAD, tail, timeoutMs); // returns at once if HEAD moved after our check
    Atomics.sub(i32, W_CONSUMER_WAITING, 1);
  }

  /**
   * Consumer on the main thread: resolves when data is available (Atomics.waitAsync, does not block
   * the event loop), or after timeoutMs. A pending wait does not keep Node's event loop alive by
   * itself (nodejs/node#61941): the process needs another handle (a server, a worker) meanwhile.
   */
  waitAsync(timeoutMs: number): Promise<void> {
    const i32 = this.#i32;
    const tail = this.#tail;
    if (Atomics.load(i32, W_HEAD) !== tail) return RESOLVED;
    Atomics.add(i32, W_CONSUMER_WAITING, 1);
    const r = AtomicsWaitAsync.waitAsync(i32, W_HEAD, tail, timeoutMs);
    if (!r.async) {
      Atomics.sub(i32, W_CONSUMER_WAITING, 1);
      return RESOLVED;
    }
    return r.value.then(this.#onConsumerWake);
  }

  // ---- either side -------------------------------------------------------------------------

  isEmpty(): boolean {
    return Atomics.load(this.#i32, W_HEAD) === Atomics.load(this.#i32, W_TAIL);
  }

  /** Bytes between TAIL and HEAD, including length words, padding and skipped wrap space. */
  usedBytes(): number {
    const used = Atomics.load(this.#i32, W_HEAD) - Atomics.load(this.#i32, W_TAIL);
    return used < 0 ? used + this.#laps : used;
  }

  /** Messages pushed since create, mod 2^32 (gauges, debugging). */
  pushedMessages(): number {
    return Atomics.load(this.#i32, W_PUSHED) >>> 0;
  }

  /** Messages drained since create, mod 2^32 (gauges, debugging). */
  poppedMessages(): number {
    return Atomics.load(this.#i32, W_POPPED) >>> 0;
  }
}
