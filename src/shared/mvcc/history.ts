// A key's history records, in `history` for short keys and in `xhistory` for long ones (long_keys.ts):
// the reads that name one key and revision, for watch replay, HashKV and compaction.
import { Database } from 'lmdb';
import { Dbs } from './dbs';
import { decodeHistoryKey, escapedBound, historyKey, isShortKey } from './keys';
import { isRecordOf, keyTag, unwrapRecord, xhistoryKey, xhistoryPrefix, xhistoryRev } from './long_keys';

const maxSub = 0xffff_ffff;

export interface HistoryRecord {
  /** The LMDB key of the record, in `db`. */
  hk: Buffer;
  db: Database<Buffer, Buffer>;
  rev: number;
  sub: number;
  /** The record (records.ts), unwrapped for a long key. */
  rec: Buffer;
}

/** The record of key at (rev, sub), or undefined (never written, or removed by compaction). */
export function historyRecord(dbs: Dbs, key: Buffer, rev: number, sub: number): Buffer | undefined {
  if (isShortKey(key)) return dbs.history.getBinary(historyKey(key, rev, sub));
  const v = dbs.xhistory.getBinary(xhistoryKey(key, rev, sub));
  return v !== undefined && isRecordOf(v, key) ? unwrapRecord(v) : undefined;
}

/** Up to n of key's records at or below (rev, sub), newest first. */
export function recordsAtOrBelow(dbs: Dbs, key: Buffer, rev: number, sub: number, n: number): HistoryRecord[] {
  const out: HistoryRecord[] = [];
  if (isShortKey(key)) {
    for (const e of dbs.history.getRange({ start: historyKey(key, rev, sub), end: escapedBound(key), reverse: true, limit: n })) {
      const parts = decodeHistoryKey(e.key as Buffer);
      out.push({ hk: e.key as Buffer, db: dbs.history, rev: parts.rev, sub: parts.sub, rec: e.value });
    }
    return out;
  }
  const tag = keyTag(key);
  const start = xhistoryKey(key, rev, sub, tag);
  for (const e of dbs.xhistory.getRange({ start, end: xhistoryPrefix(key, tag), reverse: true, limit: n })) {
    if (!isRecordOf(e.value, key)) break;
    const at = xhistoryRev(e.key as Buffer);
    out.push({ hk: e.key as Buffer, db: dbs.xhistory, rev: at.rev, sub: at.sub, rec: unwrapRecord(e.value) });
  }
  return out;
}

/** key's newest record at or below rev. */
export function newestRecord(dbs: Dbs, key: Buffer, rev: number): HistoryRecord | undefined {
  return recordsAtOrBelow(dbs, key, rev, maxSub, 1)[0];
}
