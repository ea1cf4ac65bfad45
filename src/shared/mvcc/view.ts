// A read view of the store at one LMDB snapshot (a read transaction, or the apply worker's write transaction):
// etcd's mvcc rangeKeys. `rev` is the view's current revision; reads at rev use `latest`, older reads use
// `history`, and nothing here depends on how many revisions a key has.
import { leaseExists } from './leases';
import { Errors, assert } from '../errors';
import { Dbs } from './dbs';
import {
  escapedBound, escapedKeyBytesMax, escapedLength, historyKeyEnd, decodeHistoryKey, isShortKey,
} from './keys';
import { isRecordOf, longHistoryKeys, longKeyFree, longLatestRange, unwrapRecord, xlatestKey } from './long_keys';
import { newestRecord } from './history';
import { Kv, RecordKind, decodeHistoryPut, decodeLatest, historyKind } from './records';

/** A key interval as etcd's index sees it: end null = the single key, end empty = to the last key. */
export interface KeyInterval {
  key: Buffer;
  end: Buffer | null;
}

export interface RangeKeysResult {
  kvs: Kv[];
  count: number;
  rev: number;
}

export function asBuffer(b: Uint8Array | null | undefined): Buffer {
  if (!b) return Buffer.alloc(0);
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** etcd's mkGteRange + index semantics: no range_end = one key, "\0" = every key >= key. */
export function toInterval(key: Uint8Array | null | undefined, rangeEnd: Uint8Array | null | undefined): KeyInterval {
  const end = asBuffer(rangeEnd);
  if (end.length === 0) return { key: asBuffer(key), end: null };
  if (end.length === 1 && end[0] === 0) return { key: asBuffer(key), end: Buffer.alloc(0) };
  return { key: asBuffer(key), end };
}

/** Longest prefix of k whose escaped form fits a history key. */
function storablePrefix(k: Buffer): Buffer {
  let n = 0;
  let esc = 0;
  while (n < k.length && esc + (k[n] === 0 ? 2 : 1) <= escapedKeyBytesMax) esc += k[n++] === 0 ? 2 : 1;
  return k.subarray(0, n);
}

/**
 * LMDB bounds for [start, end) in `latest` and `history`. A bound longer than any storable key is replaced
 * by its storable prefix p: for every storable key K, K >= S <=> K > p and K < E <=> K <= p (see keys.ts).
 */
function latestBounds(iv: KeyInterval): { start: Buffer; end?: Buffer } {
  const fix = (b: Buffer): Buffer => (escapedLength(b) <= escapedKeyBytesMax ? b : Buffer.concat([storablePrefix(b), Buffer.from([0])]));
  return { start: fix(iv.key), end: iv.end && iv.end.length > 0 ? fix(iv.end) : undefined };
}

function historyBounds(iv: KeyInterval): { start: Buffer; end?: Buffer } {
  const fix = (b: Buffer): Buffer => (escapedLength(b) <= escapedKeyBytesMax ? escapedBound(b) : historyKeyEnd(storablePrefix(b)));
  return { start: fix(iv.key), end: iv.end && iv.end.length > 0 ? fix(iv.end) : undefined };
}

export class ReadView {
  readonly #dbs: Dbs;
  /** The view's current revision. */
  readonly rev: number;
  /** etcd's compactMainRev: reads below it fail (-1 before any compaction). */
  readonly compactRev: number;

  constructor(dbs: Dbs, rev: number, compactRev: number) {
    this.#dbs = dbs;
    this.rev = rev;
    this.compactRev = compactRev;
  }

  hasLease(hi: number, lo: number): boolean {
    return leaseExists(this.#dbs, hi, lo);
  }

  /** The live record of key (one B-tree lookup in `latest`, independent of the key's history). */
  latest(key: Buffer): Kv | undefined {
    if (key.length === 0) return undefined;
    if (isShortKey(key)) {
      const b = this.#dbs.latest.getBinary(key);
      return b === undefined ? undefined : decodeLatest(key, b);
    }
    const v = this.#dbs.xlatest.getBinary(xlatestKey(key));
    return v !== undefined && isRecordOf(v, key) ? decodeLatest(key, unwrapRecord(v)) : undefined;
  }

  /** The key's value at rev (rev <= this.rev), or undefined if absent or deleted then. */
  kvAt(key: Buffer, rev: number): Kv | undefined {
    if (rev >= this.rev) return this.latest(key);
    if (key.length === 0) return undefined;
    const r = newestRecord(this.#dbs, key, rev);
    return r === undefined ? undefined : this.decodeRecord(key, r.rev, r.sub, r.rec);
  }

  /** False for a long key whose hash tag another stored key holds (long_keys.ts): its put is refused. */
  canStore(key: Buffer): boolean {
    return isShortKey(key) || longKeyFree(this.#dbs, key);
  }

  /** A history record as a KeyValue (undefined for a tombstone); a POINTER takes its value from `latest`. */
  decodeRecord(key: Buffer, rev: number, sub: number, rec: Buffer): Kv | undefined {
    const kind = historyKind(rec);
    if (kind === RecordKind.Tombstone) return undefined;
    const kv = decodeHistoryPut(key, rev, sub, rec);
    if (kind === RecordKind.PutPointer) {
      const live = this.latest(key);
      assert(live !== undefined && live.mod === rev && live.sub === sub, 'history pointer without its latest record');
      kv.value = live.value;
    }
    return kv;
  }

  /** etcd's rangeKeys: kvs (at most limit when limit > 0) and the count of all keys in the interval at rev. */
  rangeKeys(iv: KeyInterval, opts: { rev: number; limit: number; countOnly: boolean }): RangeKeysResult {
    let rev = opts.rev;
    if (rev > this.rev) throw Errors.futureRev();
    if (rev <= 0) rev = this.rev;
    if (rev < this.compactRev) throw Errors.compacted();
    if (iv.end === null) {
      const kv = this.kvAt(iv.key, rev);
      return { kvs: kv && !opts.countOnly ? [kv] : [], count: kv ? 1 : 0, rev: this.rev };
    }
    const r = rev === this.rev ? this.#rangeLatest(iv, opts) : this.#rangeHistory(iv, rev, opts);
    r.rev = this.rev;
    return r;
  }

  #rangeLatest(iv: KeyInterval, opts: { limit: number; countOnly: boolean }): RangeKeysResult {
    const long = longLatestRange(this.#dbs, iv.key, iv.end && iv.end.length > 0 ? iv.end : undefined);
    const r = this.#rangeLatestShort(iv, opts);
    if (long.length === 0) return r;
    r.count += long.length;
    if (!opts.countOnly) r.kvs = mergeByKey(r.kvs, long.map((e) => decodeLatest(e.key, e.record)), opts.limit);
    return r;
  }

  #rangeLatestShort(iv: KeyInterval, opts: { limit: number; countOnly: boolean }): RangeKeysResult {
    const { start, end } = latestBounds(iv);
    if (end !== undefined && Buffer.compare(start, end) >= 0) return { kvs: [], count: 0, rev: 0 };
    const latest = this.#dbs.latest;
    if (opts.countOnly) return { kvs: [], count: latest.getCount({ start, end }), rev: 0 };
    const kvs: Kv[] = [];
    const limit = opts.limit > 0 ? opts.limit : undefined;
    for (const e of latest.getRange({ start, end, limit })) kvs.push(decodeLatest(e.key, e.value));
    const count = limit !== undefined && kvs.length === limit ? latest.getCount({ start, end }) : kvs.length;
    return { kvs, count, rev: 0 };
  }

  /** Old revision: per key in the interval, one forward seek to find the key and one reverse seek to rev. */
  #rangeHistory(iv: KeyInterval, rev: number, opts: { limit: number; countOnly: boolean }): RangeKeysResult {
    const { start, end } = historyBounds(iv);
    const history = this.#dbs.history;
    const kvs: Kv[] = [];
    let count = 0;
    let pos = start;
    for (;;) {
      if (end !== undefined && Buffer.compare(pos, end) >= 0) break;
      let first: Buffer | undefined;
      for (const k of history.getKeys({ start: pos, end, limit: 1 })) first = k as Buffer;
      if (first === undefined) break;
      const parts = decodeHistoryKey(first);
      if (parts.rev <= rev) {
        const kv = this.kvAt(parts.key, rev);
        if (kv !== undefined) {
          count++;
          if (!opts.countOnly && (opts.limit <= 0 || kvs.length < opts.limit)) kvs.push(kv);
        }
      }
      pos = historyKeyEnd(parts.key);
    }
    const long: Kv[] = [];
    for (const key of longHistoryKeys(this.#dbs, iv.key, iv.end && iv.end.length > 0 ? iv.end : undefined)) {
      const kv = this.kvAt(key, rev);
      if (kv === undefined) continue;
      count++;
      if (!opts.countOnly) long.push(kv);
    }
    return { kvs: long.length === 0 ? kvs : mergeByKey(kvs, long, opts.limit), count, rev: 0 };
  }
}

/** Two key-ordered lists as one, cut to limit (<= 0: no limit). */
function mergeByKey(a: Kv[], b: Kv[], limit: number): Kv[] {
  const max = limit > 0 ? limit : Infinity;
  const out: Kv[] = [];
  let i = 0;
  let j = 0;
  while (out.length < max && (i < a.length || j < b.length)) {
    if (j >= b.length || (i < a.length && Buffer.compare(a[i].key, b[j].key) < 0)) out.push(a[i++]);
    else out.push(b[j++]);
  }
  return out;
}
