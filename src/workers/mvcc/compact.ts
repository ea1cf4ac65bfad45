// Physical compaction in bounded steps, in the compaction worker, concurrently with applies (LMDB serialises
// the write transactions). It walks the revlog in revision order up to the scheduled compactRev C and keeps,
// per key, only the newest record <= C unless that is a tombstone — etcd's keyIndex.compact.
//
// Invariant (holds between steps): for every key, at most one history record at or below the cursor exists,
// and it is a PUT. Visiting record r of key k (r <= C): k's previous record is superseded by r <= C, so it
// goes; if r is a tombstone it goes too. Reads at revisions >= C never see a difference.
import { assert } from '../../shared/errors';
import { Dbs } from '../../shared/mvcc/dbs';
import { decodeRevKey, revKey } from '../../shared/mvcc/keys';
import { recordsAtOrBelow } from '../../shared/mvcc/history';
import { RecordKind, historyKind } from '../../shared/mvcc/records';
import { readProgress, readState, writeProgress } from '../../shared/mvcc/meta';

/** One bounded step; true when everything up to the scheduled compaction revision is removed. */
export function compactStep(dbs: Dbs, maxRevisions: number): boolean {
  assert(maxRevisions > 0, 'maxRevisions must be positive');
  return dbs.root.transactionSync(() => {
    const target = readState(dbs).compactRev;
    const p = readProgress(dbs);
    if (target <= p.doneRev) return true;
    const entries: Array<{ key: Buffer; value: Buffer }> = [];
    for (const e of dbs.revlog.getRange({ start: revKey(p.cursorRev, p.cursorSub), end: revKey(target + 1, 0), limit: maxRevisions })) {
      entries.push({ key: e.key as Buffer, value: e.value });
    }
    for (const e of entries) {
      const { rev, sub } = decodeRevKey(e.key);
      compactRecord(dbs, e.value, rev, sub);
    }
    const done = entries.length < maxRevisions;
    if (done) {
      writeProgress(dbs, { doneRev: target, cursorRev: target + 1, cursorSub: 0 });
    } else {
      const last = decodeRevKey(entries[entries.length - 1].key);
      writeProgress(dbs, { doneRev: p.doneRev, cursorRev: last.rev, cursorSub: last.sub + 1 });
    }
    return done;
  });
}

function compactRecord(dbs: Dbs, key: Buffer, rev: number, sub: number): void {
  // Materialised before deleting: no cursor stays open across the removal.
  const [self, ...older] = recordsAtOrBelow(dbs, key, rev, sub, 2);
  assert(self !== undefined && self.rev === rev && self.sub === sub, 'revlog entry without its history record');
  for (const prev of older) {
    assert(historyKind(prev.rec) !== RecordKind.PutPointer, 'superseded record is still a pointer');
    prev.db.removeSync(prev.hk);
    dbs.revlog.removeSync(revKey(prev.rev, prev.sub));
  }
  if (historyKind(self.rec) === RecordKind.Tombstone) {
    self.db.removeSync(self.hk);
    dbs.revlog.removeSync(revKey(rev, sub));
  }
}
