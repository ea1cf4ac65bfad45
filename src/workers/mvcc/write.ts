// etcd's storeTxnWrite inside one LMDB write transaction: every change of one request shares the revision
// beginRev+1 with increasing sub revisions; the revision advances only if something changed.
import { leaseExists } from '../../shared/mvcc/leases';
import { attachKey, detachKey } from './lease_apply';
import { assert } from '../../shared/errors';
import { Dbs } from '../../shared/mvcc/dbs';
import { historyKey, revKey, isShortKey } from '../../shared/mvcc/keys';
import { keyTag, markLongKeys, wrapRecord, xhistoryKey, xlatestKey } from '../../shared/mvcc/long_keys';
import { Kv, encodeHistoryPut, encodeLatest, tombstoneRecord } from '../../shared/mvcc/records';
import { KeyInterval, ReadView } from '../../shared/mvcc/view';

export class WriteTxn {
  readonly #dbs: Dbs;
  /** The store's revision when the request began; changes are written at beginRev + 1. */
  readonly beginRev: number;
  readonly compactRev: number;
  /** Changes so far: the next sub revision. */
  changes = 0;

  constructor(dbs: Dbs, beginRev: number, compactRev: number) {
    this.#dbs = dbs;
    this.beginRev = beginRev;
    this.compactRev = compactRev;
  }

  /** etcd's storeTxnWrite.Range revision: the txn's own writes are visible at beginRev + 1. */
  get rev(): number {
    return this.changes > 0 ? this.beginRev + 1 : this.beginRev;
  }

  view(): ReadView {
    return new ReadView(this.#dbs, this.rev, this.compactRev);
  }

  hasLease(hi: number, lo: number): boolean {
    return leaseExists(this.#dbs, hi, lo);
  }

  /** `old` is the key's live record in this txn (view().latest(key)), which the caller has already read.
   * `given` (the import of an etcd database, whose compacted history no longer shows how a key was
   * created) sets the create revision and version instead of deriving them from `old`. */
  put(key: Buffer, value: Buffer, leaseHi: number, leaseLo: number, old: Kv | undefined, given?: { create: number; version: number }): void {
    assert(key.length > 0, 'put of an empty key must be refused before apply');
    const rev = this.beginRev + 1;
    const sub = this.changes++;
    const tag = tagOf(key);
    if (old !== undefined) this.#retire(old, tag);
    const sameLease = old !== undefined && old.leaseHi === leaseHi && old.leaseLo === leaseLo;
    if (!sameLease) {
      if (old !== undefined && (old.leaseHi !== 0 || old.leaseLo !== 0)) detachKey(this.#dbs, old.leaseHi, old.leaseLo, key);
      if (leaseHi !== 0 || leaseLo !== 0) attachKey(this.#dbs, leaseHi, leaseLo, key);
    }
    const kv: Kv = {
      key, value, leaseHi, leaseLo, mod: rev, sub,
      create: given ? given.create : old ? old.create : rev,
      version: given ? given.version : old ? old.version + 1 : 1,
    };
    if (tag === null) {
      this.#dbs.latest.putSync(key, encodeLatest(kv));
    } else {
      markLongKeys(this.#dbs);
      this.#dbs.xlatest.putSync(xlatestKey(key, tag), wrapRecord(key, encodeLatest(kv)));
    }
    this.#putHistory(key, tag, rev, sub, encodeHistoryPut(kv, false));
    this.#dbs.revlog.putSync(revKey(rev, sub), key);
  }

  /** Deletes every live key in the interval; returns them as they were (etcd's prev_kvs). */
  deleteRange(iv: KeyInterval): Kv[] {
    const doomed: Kv[] = this.view().rangeKeys(iv, { rev: 0, limit: 0, countOnly: false }).kvs;
    for (const kv of doomed) this.#delete(kv);
    return doomed;
  }

  /** Deletes each of these keys that is live (a lease revoke); returns how many were. */
  deleteKeys(keys: Buffer[]): number {
    let n = 0;
    for (const k of keys) {
      const kv = this.view().latest(k);
      if (kv === undefined) continue;
      this.#delete(kv);
      n++;
    }
    return n;
  }

  #delete(old: Kv): void {
    const rev = this.beginRev + 1;
    const sub = this.changes++;
    const tag = tagOf(old.key);
    this.#retire(old, tag);
    if (old.leaseHi !== 0 || old.leaseLo !== 0) detachKey(this.#dbs, old.leaseHi, old.leaseLo, old.key);
    this.#putHistory(old.key, tag, rev, sub, tombstoneRecord);
    if (tag === null) this.#dbs.latest.removeSync(old.key);
    else this.#dbs.xlatest.removeSync(xlatestKey(old.key, tag));
    this.#dbs.revlog.putSync(revKey(rev, sub), old.key);
  }

  /** The key's current history record stops being a pointer into `latest`: store its value in full. */
  #retire(old: Kv, tag: Buffer | null): void {
    this.#putHistory(old.key, tag, old.mod, old.sub, encodeHistoryPut(old, true));
  }

  /** A history record, in `history` for a short key (tag null) or `xhistory` for a long one. */
  #putHistory(key: Buffer, tag: Buffer | null, rev: number, sub: number, rec: Buffer): void {
    if (tag === null) this.#dbs.history.putSync(historyKey(key, rev, sub), rec);
    else this.#dbs.xhistory.putSync(xhistoryKey(key, rev, sub, tag), wrapRecord(key, rec));
  }
}

/** null for a key stored in `latest`/`history`, else its hash tag in the long-key tables (long_keys.ts). */
function tagOf(key: Buffer): Buffer | null {
  return isShortKey(key) ? null : keyTag(key);
}

