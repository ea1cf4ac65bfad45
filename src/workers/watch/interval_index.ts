// Which watchers does a key belong to? A stabbing query over half-open key intervals, in about
// log(intervals) + matches, never a scan of all watchers (etcd's watcher_group.go uses an interval tree
// for the same reason).
//
// Two parts:
//   * points: single-key watches (the common case) in a Map keyed by the key's latin1 string: O(1).
//   * ranges: [start, end) intervals (prefix, range_end, from-key with end = +inf) in a centered interval
//     tree (de Berg et al. 10.1). Each node holds a center key; intervals containing the center sit at the
//     node in two orders (by start ascending, by end descending); those wholly left or right of it go to
//     the subtrees. A query walks one root-to-leaf path (depth log n) and at each node reads only matching
//     intervals, stopping at the first that does not match.
// The tree is static: built lazily on the first query after an add or remove (O(n log n)), so a burst of
// creates costs one rebuild. Callers group watchers with the same interval into one item (see
// WatcherGroup in watcher.ts), so n is the number of DISTINCT intervals, and adding a watcher to an
// existing group does not touch this index at all.
import { assert } from '../../shared/errors';

/** End of a from-key interval (range_end "\0"): larger than every key. */
export const KEY_INF: unique symbol = Symbol('+inf');
export type KeyEnd = Buffer | typeof KEY_INF;

interface Range<T> {
  start: Buffer;
  end: KeyEnd;
  item: T;
}

interface Node<T> {
  center: Buffer;
  byStart: Range<T>[];
  byEnd: Range<T>[];
  left: Node<T> | null;
  right: Node<T> | null;
}

function cmpEnd(a: KeyEnd, b: KeyEnd): number {
  if (a === KEY_INF) return b === KEY_INF ? 0 : 1;
  if (b === KEY_INF) return -1;
  return Buffer.compare(a, b);
}

/** key < end */
function beforeEnd(key: Buffer, end: KeyEnd): boolean {
  return end === KEY_INF || Buffer.compare(key, end) < 0;
}

export class IntervalIndex<T> {
  readonly #points = new Map<string, T[]>();
  readonly #ranges = new Map<T, Range<T>>();
  #root: Node<T> | null = null;
  #dirty = false;

  /** Adds a single-key item (end null) or a [start, end) item. An item may be added once. */
  add(start: Buffer, end: KeyEnd | null, item: T): void {
    if (end === null) {
      const k = start.toString('latin1');
      const list = this.#points.get(k);
      if (list) list.push(item);
      else this.#points.set(k, [item]);
      return;
    }
    assert(!this.#ranges.has(item), 'interval index: item added twice');
    assert(end === KEY_INF || Buffer.compare(start, end) < 0, 'interval index: empty range');
    this.#ranges.set(item, { start, end, item });
    this.#dirty = true;
  }

  remove(start: Buffer, end: KeyEnd | null, item: T): void {
    if (end === null) {
      const k = start.toString('latin1');
      const list = this.#points.get(k);
      const i = list ? list.indexOf(item) : -1;
      assert(list !== undefined && i >= 0, 'interval index: removing an unknown point');
      list.splice(i, 1);
      if (list.length === 0) this.#points.delete(k);
      return;
    }
    assert(this.#ranges.delete(item), 'interval index: removing an unknown range');
    this.#dirty = true;
  }

  get size(): number {
    let n = this.#ranges.size;
    for (const l of this.#points.values()) n += l.length;
    return n;
  }

  /** Pushes onto out every item whose interval contains key. */
  stab(key: Buffer, out: T[]): void {
    const pts = this.#points.size > 0 ? this.#points.get(key.toString('latin1')) : undefined;
    if (pts) for (const p of pts) out.push(p);
    if (this.#ranges.size === 0) return;
    if (this.#dirty) {
      this.#root = build([...this.#ranges.values()]);
      this.#dirty = false;
    }
    let n = this.#root;
    while (n !== null) {
      const c = Buffer.compare(key, n.center);
      if (c < 0) {
        // Every interval here ends after the center, hence after key: only the start decides.
        for (const r of n.byStart) {
          if (Buffer.compare(r.start, key) > 0) break;
          out.push(r.item);
        }
        n = n.left;
      } else {
        // Every interval here starts at or before the center, hence before key: only the end decides.
        for (const r of n.byEnd) {
          if (!beforeEnd(key, r.end)) break;
          out.push(r.item);
        }
        n = c === 0 ? null : n.right;
      }
    }
  }
}

function build<T>(ranges: Range<T>[]): Node<T> | null {
  if (ranges.length === 0) return null;
  const starts = ranges.map((r) => r.start).sort(Buffer.compare);
  const center = starts[starts.length >> 1];
  const left: Range<T>[] = [];
  const right: Range<T>[] = [];
  const mid: Range<T>[] = [];
  for (const r of ranges) {
    if (!beforeEnd(center, r.end)) left.push(r);
    else if (Buffer.compare(r.start, center) > 0) right.push(r);
    else mid.push(r);
  }
  assert(mid.length > 0, 'interval index: the median start lies in its own interval');
  return {
    center,
    byStart: [...mid].sort((a, b) => Buffer.compare(a.start, b.start)),
    byEnd: mid.sort((a, b) => cmpEnd(b.end, a.end)),
    left: build(left),
    right: build(right),
  };
}
