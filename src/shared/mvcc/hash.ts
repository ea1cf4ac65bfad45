// etcd 3.4's HashKV (mvcc store.HashByRev): crc32c over "key" and then, in revision order, every mvcc record
// (bolt key ‖ marshalled mvccpb.KeyValue) up to rev, where records at or below compactRev count only if
// `keep` at rev holds them (the newest PUT <= rev of their key) — or, when keep is empty, if they survive
// the compaction (etcd still has them in bolt).
//   bolt key = main rev (8 BE) ‖ '_' ‖ sub (8 BE) [‖ 't' for a tombstone]
import { mvccpb } from '../gen/etcd';
import { crc32c } from '../crc32c';
import { Errors } from '../errors';
import { Dbs } from './dbs';
import { decodeRevKey, revKey } from './keys';
import { historyRecord, newestRecord } from './history';
import { Kv, RecordKind, historyKind, toPb } from './records';
import { State } from './meta';
import { ReadView } from './view';

function boltKey(rev: number, sub: number, tombstone: boolean): Buffer {
  const b = Buffer.alloc(tombstone ? 18 : 17);
  b.writeUInt32BE(Math.floor(rev / 0x1_0000_0000), 0);
  b.writeUInt32BE(rev >>> 0, 4);
  b[8] = 0x5f;
  b.writeUInt32BE(sub, 13);
  if (tombstone) b[17] = 0x74;
  return b;
}

export function hashKV(dbs: Dbs, st: State, reqRev: number): { hash: number; compactRevision: number; revision: number } {
  if (reqRev > 0 && reqRev <= st.compactRev) throw Errors.compacted();
  if (reqRev > 0 && reqRev > st.rev) throw Errors.futureRev();
  const rev = reqRev === 0 ? st.rev : reqRev;
  const view = new ReadView(dbs, st.rev, -1);
  const keepEmpty = view.rangeKeys({ key: Buffer.from([0]), end: Buffer.alloc(0) }, { rev, limit: 1, countOnly: true }).count === 0;
  const keepAt = keepEmpty ? st.compactRev : rev;
  let h = crc32c(Buffer.from('key'));
  for (const e of dbs.revlog.getRange({ start: revKey(0, 0), end: revKey(rev + 1, 0) })) {
    const { rev: r, sub } = decodeRevKey(e.key as Buffer);
    const key = e.value;
    if (r <= st.compactRev && !isNewestPutAt(dbs, key, r, sub, keepAt)) continue;
    const rec = historyRecord(dbs, key, r, sub);
    if (rec === undefined) continue;
    const tomb = historyKind(rec) === RecordKind.Tombstone;
    const kv: mvccpb.IKeyValue = tomb ? { key } : toPb(view.decodeRecord(key, r, sub, rec) as Kv, false);
    const bk = boltKey(r, sub, tomb);
    h = crc32c(bk, 0, bk.length, h);
    const rb = mvccpb.KeyValue.encode(kv).finish();
    h = crc32c(rb, 0, rb.length, h);
  }
  return { hash: h, compactRevision: st.compactRev, revision: st.rev };
}

/** True when (r, sub) is key's newest record at or below at, and a PUT. */
function isNewestPutAt(dbs: Dbs, key: Buffer, r: number, sub: number, at: number): boolean {
  const newest = newestRecord(dbs, key, at);
  return newest !== undefined && newest.rev === r && newest.sub === sub && historyKind(newest.rec) !== RecordKind.Tombstone;
}

/**
 * Maintenance.Hash: etcd hashes its whole bbolt file's buckets (all keys and values but meta's
 * consistent index). Ours is crc32c over every table's name and records in key order, with the meta
 * state's applied index left out (as etcd leaves out its consistent index) and the compaction worker's
 * progress record too (it differs between members while a physical compaction runs). Members with the
 * same applied state and finished compactions have the same hash; the value is not etcd's (the layouts
 * differ).
 */
export function hashAll(dbs: Dbs, st: State): { hash: number; revision: number } {
  let h = 0;
  const add = (b: Uint8Array): void => {
    h = crc32c(b, 0, b.length, h);
  };
  for (const name of ['latest', 'history', 'revlog', 'leases', 'leasekeys', 'cluster', 'xlatest', 'xhistory'] as const) {
    // The long-key tables count only when they hold something: stores without long keys hash as before.
    if ((name === 'xlatest' || name === 'xhistory') && dbs[name].getKeysCount({ limit: 1 }) === 0) continue;
    add(Buffer.from(name));
    for (const { key, value } of dbs[name].getRange({}) as Iterable<{ key: Buffer; value: Buffer }>) {
      add(key);
      add(value);
    }
  }
  const meta = Buffer.alloc(16);
  meta.writeDoubleBE(st.rev, 0);
  meta.writeDoubleBE(st.compactRev, 8);
  add(Buffer.from('meta'));
  add(meta);
  return { hash: h >>> 0, revision: st.rev };
}
