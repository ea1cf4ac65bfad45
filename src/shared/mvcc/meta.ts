// The `meta` database: two records with disjoint writers, so the apply worker and the compaction worker
// never overwrite each other's fields.
//
//   "state"   rev f64 ‖ applied f64 ‖ compactRev f64     written by the apply worker only
//   "compact" doneRev f64 ‖ cursorRev f64 ‖ cursorSub f64  written by the compaction worker only
//   "long"    1 byte, present once any long key was stored   written by the apply worker only (long_keys.ts)
//
// compactRev is etcd's compactMainRev (scheduled; -1 before the first compaction); doneRev is the compaction
// physically finished; the cursor is the next revlog key compaction will look at.
import { assert } from '../errors';
import { Dbs } from './dbs';

export interface State {
  rev: number;
  applied: number;
  compactRev: number;
}

export interface CompactProgress {
  doneRev: number;
  cursorRev: number;
  cursorSub: number;
}

const stateKey = Buffer.from('state');
const compactKey = Buffer.from('compact');

function readF64s(dbs: Dbs, key: Buffer, n: number): number[] | undefined {
  const b = dbs.meta.getBinary(key);
  if (b === undefined) return undefined;
  assert(b.length === 8 * n, 'malformed meta record');
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(b.readDoubleBE(8 * i));
  return out;
}

function writeF64s(dbs: Dbs, key: Buffer, vals: number[]): void {
  const b = Buffer.allocUnsafe(8 * vals.length);
  vals.forEach((v, i) => b.writeDoubleBE(v, 8 * i));
  dbs.meta.putSync(key, b);
}

export const initialState: State = { rev: 1, applied: 0, compactRev: -1 };
const initialProgress: CompactProgress = { doneRev: -1, cursorRev: 0, cursorSub: 0 };

export function readState(dbs: Dbs): State {
  const v = readF64s(dbs, stateKey, 3);
  return v ? { rev: v[0], applied: v[1], compactRev: v[2] } : { ...initialState };
}

export function writeState(dbs: Dbs, s: State): void {
  writeF64s(dbs, stateKey, [s.rev, s.applied, s.compactRev]);
}

export function readProgress(dbs: Dbs): CompactProgress {
  const v = readF64s(dbs, compactKey, 3);
  return v ? { doneRev: v[0], cursorRev: v[1], cursorSub: v[2] } : { ...initialProgress };
}

export function writeProgress(dbs: Dbs, p: CompactProgress): void {
  writeF64s(dbs, compactKey, [p.doneRev, p.cursorRev, p.cursorSub]);
}
