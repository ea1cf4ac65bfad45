// A watcher, the per-stream state the watch worker keeps, and watcher groups: synced watchers with the same
// key interval and the same options share one group, so an event is matched, encoded and concatenated
// once per group, and the interval index holds one entry per distinct interval (not per watcher).
import { KEY_INF, KeyEnd } from './interval_index';

/** One client stream, as the watch worker sees it. */
export class StreamState {
  readonly id: number;
  readonly watchers = new Map<number, Watcher>();
  /** Next server-chosen watch ID (etcd: per stream, from 0, skipping IDs the client chose). */
  nextId = 0;
  /** Bytes pushed to the main thread that it has not yet reported as accepted by the HTTP/2 stream. */
  unackedBytes = 0;
  /** Too many unacked bytes: its synced watchers fall back to unsynced until DRAINED lowers it. */
  blocked = false;
  constructor(id: number) {
    this.id = id;
  }
}

export interface WatcherOptions {
  prevKv: boolean;
  noPut: boolean;
  noDelete: boolean;
  progressNotify: boolean;
  fragment: boolean;
}

export class Watcher {
  readonly stream: StreamState;
  readonly id: number;
  readonly start: Buffer;
  /** null: the single key `start`; KEY_INF: every key >= start. */
  readonly end: KeyEnd | null;
  readonly opts: WatcherOptions;
  /**
   * The first revision not yet delivered. Unsynced: <= the worker's last revision. Synced: only meaningful
   * when above it (a start revision in the future); otherwise the watcher implicitly follows the fan-out.
   */
  nextRev: number;
  /** In the synced group (fed by fan-out) or the unsynced set (fed from history). */
  group: WatcherGroup | null = null;
  /** etcd's progress[id]: true when no event was sent since the last progress tick. */
  progressIdle = true;

  constructor(stream: StreamState, id: number, start: Buffer, end: KeyEnd | null, startRev: number, opts: WatcherOptions) {
    this.stream = stream;
    this.id = id;
    this.start = start;
    this.end = end;
    this.nextRev = startRev;
    this.opts = opts;
  }

  /** etcd's filterNoPut / filterNoDelete. */
  filters(isDelete: boolean): boolean {
    return isDelete ? this.opts.noDelete : this.opts.noPut;
  }
}

/** What events are batched for: a synced group, or unsynced watchers in one catch-up step. */
export interface BatchTarget {
  /** Its events carry prev_kv. */
  readonly prevKv: boolean;
  /** The event at rev (a delete or a put) is not for it. */
  skips(rev: number, isDelete: boolean): boolean;
}

/** Synced watchers sharing interval and options. */
export class WatcherGroup implements BatchTarget {
  readonly key: string;
  readonly start: Buffer;
  readonly end: KeyEnd | null;
  readonly prevKv: boolean;
  readonly noPut: boolean;
  readonly noDelete: boolean;
  readonly watchers = new Set<Watcher>();

  constructor(key: string, w: Watcher) {
    this.key = key;
    this.start = w.start;
    this.end = w.end;
    this.prevKv = w.opts.prevKv;
    this.noPut = w.opts.noPut;
    this.noDelete = w.opts.noDelete;
  }

  skips(_rev: number, isDelete: boolean): boolean {
    return isDelete ? this.noDelete : this.noPut;
  }

  static keyOf(w: Watcher): string {
    const o = w.opts;
    const end = w.end === null ? 'P' : w.end === KEY_INF ? 'I' : 'R' + w.end.toString('latin1');
    return `${o.prevKv ? 1 : 0}${o.noPut ? 1 : 0}${o.noDelete ? 1 : 0}${w.start.length}:${w.start.toString('latin1')}${end}`;
  }
}

/** Events matched for one group or watcher during one fan-out or catch-up step (scratch, not kept). */
export interface Batch {
  parts: Uint8Array[];
  revs: number[];
}
