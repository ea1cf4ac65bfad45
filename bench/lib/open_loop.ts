// Open-loop load at a fixed rate with coordinated omission corrected (the wrk2 model).
//
// A closed-loop client sends its next request only when the previous answer arrives, so while the
// server stalls it sends nothing, and the stall shows up as one slow request instead of the many a
// real user population would have waited through ("coordinated omission"). In open loop, request k
// has an intended start time t0 + k / rate, fixed in advance. A request is sent when it is due and a
// slot (a concurrency limit: at most `slots` requests in flight) is free; its latency is measured from
// its intended start, not from when it could actually be sent. Requests that queue behind a stall are
// therefore charged for the time they waited, as they would be by users arriving at that rate.
//
// Pure and clock-free (the caller passes `now`), so that tests drive it with a simulated clock.

/** Intended start times at a fixed rate, from startMs, optionally bounded by an end time and a count. */
export class OpenLoopPacer {
  readonly #intervalMs: number;
  readonly #startMs: number;
  readonly #endMs: number;
  readonly #limit: number;
  #k: number; // index of the next request

  constructor(ratePerSec: number, startMs: number, endMs = Infinity, limit = Infinity) {
    if (!(ratePerSec > 0)) throw new Error(`open loop: rate must be > 0, got ${ratePerSec}`);
    this.#intervalMs = 1000 / ratePerSec;
    this.#startMs = startMs;
    this.#endMs = endMs;
    this.#limit = limit;
    this.#k = 0;
  }

  /** Intended start of the next request, or Infinity when the schedule is exhausted. */
  peek(): number {
    if (this.#k >= this.#limit) return Infinity;
    const t = this.#startMs + this.#k * this.#intervalMs; // multiply, do not accumulate: no drift
    return t < this.#endMs ? t : Infinity;
  }

  /** Takes the next request off the schedule and returns its intended start. */
  take(): number {
    const t = this.peek();
    if (t !== Infinity) this.#k++;
    return t;
  }

  get taken(): number {
    return this.#k;
  }

  get intervalMs(): number {
    return this.#intervalMs;
  }
}

/**
 * Dispatches a pacer's requests onto a fixed number of slots. `send(slot, intendedMs)` starts a
 * request; the caller reports its end with `release(slot)` and records `endMs - intendedMs` as its
 * latency (that subtraction is the correction). `pump(now)` sends every due request that has a free
 * slot and returns when to pump next: the next intended time, or Infinity if no slot is free (the
 * next release pumps) or the schedule is done.
 */
export class OpenLoopDriver {
  readonly #pacer: OpenLoopPacer;
  readonly #send: (slot: number, intendedMs: number) => void;
  readonly #free: number[]; // stack of free slots
  #maxBacklog: number;      // most requests ever due but not yet sent (queued behind busy slots)

  constructor(pacer: OpenLoopPacer, slots: number, send: (slot: number, intendedMs: number) => void) {
    if (!(slots >= 1)) throw new Error('open loop: needs at least one slot');
    this.#pacer = pacer;
    this.#send = send;
    this.#free = Array.from({ length: slots }, (_, i) => slots - 1 - i);
    this.#maxBacklog = 0;
  }

  pump(nowMs: number): number {
    for (;;) {
      const due = this.#pacer.peek();
      if (due === Infinity) return Infinity;
      if (due > nowMs) return due;
      const slot = this.#free.pop();
      if (slot === undefined) {
        this.#noteBacklog(nowMs);
        return Infinity;
      }
      this.#send(slot, this.#pacer.take());
    }
  }

  release(slot: number): void {
    this.#free.push(slot);
  }

  /** True when the schedule is exhausted and nothing is in flight. */
  idle(slots: number): boolean {
    return this.#pacer.peek() === Infinity && this.#free.length === slots;
  }

  get done(): boolean {
    return this.#pacer.peek() === Infinity;
  }

  get maxBacklog(): number {
    return this.#maxBacklog;
  }

  #noteBacklog(nowMs: number): void {
    // Requests due by now but not sent, counted without taking them off the schedule.
    const p = this.#pacer.peek();
    const n = p <= nowMs ? 1 + Math.floor((nowMs - p) / this.#pacer.intervalMs) : 0;
    if (n > this.#maxBacklog) this.#maxBacklog = n;
  }
}
