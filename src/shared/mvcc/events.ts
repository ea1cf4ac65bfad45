// Watch replay from the revlog: etcd's kvsToEvents over unsynced revisions. A DELETE event's kv is the key
// with mod_revision patched to the delete's revision; prev_kv is the key's value at mod_revision - 1, as
// etcd's watch server reads it.
import { mvccpb } from '../gen/etcd';
import { Errors } from '../errors';
import { Dbs } from './dbs';
import { decodeRevKey, revKey } from './keys';
import { historyRecord } from './history';
import { toPb } from './records';
import { ReadView } from './view';

export interface EventsOptions {
  /** Last revision to include (default: current). */
  toRev?: number;
  /** Soft cap on events: the revision that reaches it is finished, so a txn's events are never split. */
  limit?: number;
  prevKv?: boolean;
  /** Keys to include; others are skipped before their record is read. */
  filter?: (key: Buffer) => boolean;
}

export interface EventsResult {
  events: mvccpb.IEvent[];
  /** The first revision not covered: continue from here. */
  nextRev: number;
}

export function readEvents(view: ReadView, dbs: Dbs, fromRev: number, opts: EventsOptions): EventsResult {
  if (fromRev < view.compactRev) throw Errors.compacted();
  const toRev = Math.min(opts.toRev ?? view.rev, view.rev);
  const limit = opts.limit ?? Infinity;
  const events: mvccpb.IEvent[] = [];
  let lastRev = -1;
  let stopped = false;
  for (const e of dbs.revlog.getRange({ start: revKey(Math.max(fromRev, 0), 0), end: revKey(toRev + 1, 0) })) {
    const { rev, sub } = decodeRevKey(e.key as Buffer);
    if (events.length >= limit && rev !== lastRev) {
      stopped = true;
      break;
    }
    lastRev = rev;
    const key = e.value;
    if (opts.filter && !opts.filter(key)) continue;
    const rec = historyRecord(dbs, key, rev, sub);
    if (rec === undefined) continue; // removed by compaction meanwhile
    const kv = view.decodeRecord(key, rev, sub, rec);
    const ev: mvccpb.IEvent = kv
      ? { kv: toPb(kv, false) }
      : { type: mvccpb.Event.EventType.DELETE, kv: { key, modRevision: rev } };
    if (opts.prevKv) {
      const prev = view.kvAt(key, rev - 1);
      if (prev) ev.prevKv = toPb(prev, false);
    }
    events.push(ev);
  }
  return { events, nextRev: stopped ? lastRev + 1 : Math.max(fromRev, toRev + 1) };
}
