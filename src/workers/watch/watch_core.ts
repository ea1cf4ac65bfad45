// The watch worker's state machine, without threads (tests drive it directly): streams and their watchers,
// the synced group (fed once per committed revision range by fan-out) and the unsynced set (fed from
// history in bounded chunks), etcd's watchable_store.go synced/unsynced/victims, in one thread.
//
// Invariants (the worker is single-threaded, so they hold between calls):
//   * lastRev: every event <= lastRev was delivered to every synced watcher that matches it.
//   * a synced watcher has received every matching event in [its start, lastRev]; an unsynced one every
//     matching event below its nextRev (nextRev <= lastRev). Catch-up reads [nextRev, lastRev] from history;
//     a watcher joins the synced group only once nextRev > lastRev, so no event is missed or repeated.
//   * a response never splits a revision (atomic txns), except etcd-style fragments when asked for.
import { etcdserverpb, mvccpb } from '../../shared/gen/etcd';
import { assert, EtcdError, GrpcCode, isEtcdError } from '../../shared/errors';
import { limits } from '../../shared/limits';
import { toNum } from '../../shared/long';
import type { EventsOptions, EventsResult } from '../../shared/mvcc/events';
import {
  encodeControlResponse, encodeEventField, eventResponseBytes, FLAG_CANCELED, FLAG_CREATED, flagResponseBytes, HeaderCache, writeEventResponse,
  writeFlagResponse,
} from './encode';
import { IntervalIndex, KEY_INF, KeyEnd } from './interval_index';
import { Batch, BatchTarget, StreamState, Watcher, WatcherGroup, WatcherOptions } from './watcher';
import { sendEvents } from './send';
import { GRPC_PREFIX_BYTES } from '../../shared/watch_protocol';

/** What the core needs from the MVCC store (MvccStore satisfies it). */
export interface WatchStore {
  events(fromRev: number, opts?: EventsOptions): EventsResult;
  range(req: etcdserverpb.IRangeRequest): etcdserverpb.IRangeResponse;
  readonly revision: number;
  readonly compactRevision: number;
}

/** Where encoded responses go: reserve a slot for streamId, write it, commit. */
export interface ResponseSink {
  reserve(streamId: number, len: number): Uint8Array;
  commit(): void;
  /** Ends the client's stream with a gRPC status (after what was already written to it). */
  end(streamId: number, code: number, message: string): void;
  /** One response per watch ID, each prefix ‖ watch_id field ‖ suffix (see watch_protocol's TEMPLATE). */
  template(streamId: number, prefix: Uint8Array, suffix: Uint8Array, watchIds: readonly number[]): void;
  /** Largest response the sink can carry. */
  readonly maxResponseBytes: number;
}

export interface CreateRequest {
  streamId: number;
  watchId: number;
  key: Buffer;
  /** null: single key; KEY_INF: from key; else range end (exclusive). */
  end: KeyEnd | null;
  startRevision: number;
  opts: WatcherOptions;
}

export interface CoreOptions {
  clusterId: string;
  memberId: string;
  maxRequestBytes: number;
}

const EMPTY_RANGE = 'mvcc: watcher range is empty';
const DUPLICATE_ID = 'mvcc: duplicate watch ID provided on the WatchStream';
const TOO_MANY = 'etcd-ts: too many watchers on this stream';
const BACKLOG = 'etcd-ts: watch stream is not reading its responses';

export class WatchCore {
  readonly #store: WatchStore;
  readonly #sink: ResponseSink;
  readonly #headers: HeaderCache;
  readonly #maxRequestBytes: number;
  readonly #streams = new Map<number, StreamState>();
  /** Streams with blocked set (see blockedStreamCount). */
  #blockedStreams = 0;
  readonly #groups = new Map<string, WatcherGroup>();
  readonly #syncedIndex = new IntervalIndex<WatcherGroup>();
  readonly #unsynced = new Set<Watcher>();
  readonly #progressWatchers = new Set<Watcher>();
  readonly #progressRequests: StreamState[] = [];
  /** Scratch for #deliverShared: the watch IDs per stream (cleared after each call). */
  readonly #idsByStream = new Map<StreamState, number[]>();
  #lastRev: number;
  /** Watchers over all streams (kept, not recounted: the worker loop asks every iteration). */
  #watcherCount = 0;
  term = 0;
  /** Counters for tests and metrics. */
  readonly stats = { eventsRead: 0, responses: 0, demoted: 0, compactedCancels: 0 };

  constructor(store: WatchStore, sink: ResponseSink, o: CoreOptions) {
    this.#store = store;
    this.#sink = sink;
    this.#headers = new HeaderCache(o.clusterId, o.memberId);
    this.#maxRequestBytes = o.maxRequestBytes;
    this.#lastRev = store.revision;
  }

  get lastRev(): number {
    return this.#lastRev;
  }

  /** With no watcher at all there is nobody to deliver to: move lastRev up without reading events. */
  skipTo(rev: number): void {
    assert(this.watcherCount === 0, 'skipTo with watchers');
    if (rev > this.#lastRev) this.#lastRev = rev;
  }

  get watcherCount(): number {
    return this.#watcherCount;
  }

  get unsyncedCount(): number {
    return this.#unsynced.size;
  }

  /** Streams over watchBufferedBytesMax, waiting for DRAINED (the worker asks the main thread to ring for it). */
  get blockedStreamCount(): number {
    return this.#blockedStreams;
  }

  #block(s: StreamState): void {
    if (s.blocked || s.unackedBytes <= limits.watchBufferedBytesMax) return;
    s.blocked = true;
    this.#blockedStreams++;
  }

  #stream(id: number): StreamState {
    let s = this.#streams.get(id);
    if (!s) {
      s = new StreamState(id);
      this.#streams.set(id, s);
    }
    return s;
  }

  // ---- control ------------------------------------------------------------------------------

  /** etcd's recvLoop create + watchStream.Watch: answers created (or created+canceled on error). */
  create(r: CreateRequest): void {
    const s = this.#stream(r.streamId);
    this.#createOne(s, r);
    this.#limitRequestReplies(s);
  }

  #createOne(s: StreamState, r: CreateRequest): void {
    const wsrev = this.#store.revision; // fresh: at least what any client was answered for its writes
    const fail = (reason: string): void => this.#control(s, { header: this.#header(wsrev), watchId: -1, created: true, canceled: true, cancelReason: reason });
    if (r.end !== null && r.end !== KEY_INF && Buffer.compare(r.key, r.end) >= 0) return fail(EMPTY_RANGE);
    let id = r.watchId;
    if (id === 0) {
      while (s.watchers.has(s.nextId)) s.nextId++;
      id = s.nextId++;
    } else if (s.watchers.has(id)) {
      return fail(DUPLICATE_ID);
    }
    if (s.watchers.size >= limits.watchersPerStreamMax) return fail(TOO_MANY);
    const start = r.startRevision > 0 ? r.startRevision : wsrev + 1;
    const w = new Watcher(s, id, r.key, r.end, start, r.opts);
    s.watchers.set(id, w);
    this.#watcherCount++;
    if (r.opts.progressNotify) this.#progressWatchers.add(w);
    this.#flagResponse(s, wsrev, id, FLAG_CREATED);
    if (start > this.#lastRev) this.#joinSynced(w);
    else this.#unsynced.add(w);
  }

  /** Cancels a watcher; unknown IDs are ignored, as etcd. */
  cancel(streamId: number, watchId: number): void {
    const s = this.#streams.get(streamId);
    const w = s?.watchers.get(watchId);
    if (!s || !w) return;
    this.#remove(w);
    this.#flagResponse(s, this.#lastRev, watchId, FLAG_CANCELED);
    this.#limitRequestReplies(s);
  }

  /**
   * Replies to requests (created, canceled, progress) are not bounded by watchBufferedBytesMax, which
   * stops only events. etcd bounds them by no longer reading the stream's requests while its reply
   * channel is full; the transport here cannot pause one stream's reads, so a stream whose unread bytes
   * pass watchStreamBytesHardMax is ended with RESOURCE_EXHAUSTED instead of growing without bound.
   */
  #limitRequestReplies(s: StreamState): void {
    if (s.unackedBytes <= limits.watchStreamBytesHardMax || !this.#streams.has(s.id)) return;
    this.closeStream(s.id);
    this.#sink.end(s.id, GrpcCode.ResourceExhausted, BACKLOG);
  }

  /** A progress_request: answered after the next fan-out, with a revision no later event can be at or below. */
  requestProgress(streamId: number): void {
    this.#progressRequests.push(this.#stream(streamId));
  }

  closeStream(streamId: number): void {
    const s = this.#streams.get(streamId);
    if (!s) return;
    for (const w of s.watchers.values()) this.#remove(w);
    this.#streams.delete(streamId);
    if (s.blocked) this.#blockedStreams--;
  }

  /** The main thread wrote `bytes` more of this stream's responses to HTTP/2 without backpressure. */
  drained(streamId: number, bytes: number): void {
    const s = this.#streams.get(streamId);
    if (!s) return;
    s.unackedBytes = Math.max(0, s.unackedBytes - bytes);
    if (s.blocked && s.unackedBytes <= limits.watchBufferedBytesMax / 2) {
      s.blocked = false;
      this.#blockedStreams--;
    }
  }

  #remove(w: Watcher): void {
    if (w.stream.watchers.delete(w.id)) this.#watcherCount--;
    this.#progressWatchers.delete(w);
    if (!this.#unsynced.delete(w)) this.#leaveSynced(w);
  }

  #joinSynced(w: Watcher): void {
    const key = WatcherGroup.keyOf(w);
    let g = this.#groups.get(key);
    if (!g) {
      g = new WatcherGroup(key, w);
      this.#groups.set(key, g);
      this.#syncedIndex.add(g.start, g.end, g);
    }
    g.watchers.add(w);
    w.group = g;
  }

  #leaveSynced(w: Watcher): void {
    const g = w.group;
    if (!g) return;
    g.watchers.delete(w);
    w.group = null;
    if (g.watchers.size === 0) {
      this.#groups.delete(g.key);
      this.#syncedIndex.remove(g.start, g.end, g);
    }
  }

  // ---- responses ------------------------------------------------------------------------------

  #header(rev: number): etcdserverpb.IResponseHeader {
    return this.#headers.header(rev, this.term);
  }

  /** The frequent control responses (created, canceled, progress): header ‖ watch_id ‖ flag, straight
   * into the sink with the cached header bytes (no protobufjs objects: creating 10,000 watchers should
   * leave little garbage behind). */
  #flagResponse(s: StreamState, rev: number, watchId: number, flag: number): void {
    const header = this.#headers.field(rev, this.term);
    const len = flagResponseBytes(header, watchId, flag);
    writeFlagResponse(this.#sink.reserve(s.id, len), header, watchId, flag);
    this.#commit(s, len);
  }

  #control(s: StreamState, r: etcdserverpb.IWatchResponse): void {
    this.#emit(s, encodeControlResponse(r));
  }

  #emit(s: StreamState, bytes: Uint8Array): void {
    this.#sink.reserve(s.id, bytes.length).set(bytes);
    this.#commit(s, bytes.length);
  }

  #commit(s: StreamState, len: number): void {
    this.#sink.commit();
    this.stats.responses++;
    s.unackedBytes += len + GRPC_PREFIX_BYTES; // as the main thread counts them: framed
    this.#block(s);
  }

  /** Sends one watcher its events (already matched and encoded), split at revision boundaries. */
  #sendEvents(w: Watcher, parts: readonly Uint8Array[], revs: readonly number[], rev: number): void {
    w.progressIdle = false;
    const headerField = this.#headers.field(rev, this.term);
    const ok = sendEvents(parts, revs, w.opts.fragment, this.#maxRequestBytes, this.#sink.maxResponseBytes - headerField.length - 16,
      (chunk, fragment) => {
        const len = eventResponseBytes(headerField, w.id, fragment, chunkBytes(chunk));
        writeEventResponse(this.#sink.reserve(w.stream.id, len), headerField, w.id, fragment, chunk);
        this.#commit(w.stream, len);
      });
    if (!ok) {
      // One revision larger than the ring can carry (prev_kv of many large values without fragment).
      this.#remove(w);
      this.#control(w.stream, { header: this.#header(rev), watchId: w.id, canceled: true, cancelReason: 'etcd-ts: watch response too large; use fragment' });
    }
  }

  // ---- fan-out (synced) -------------------------------------------------------------------------

  /** The apply worker committed up to rev: read the new events once and fan them out to synced watchers. */
  advance(rev: number): void {
    while (this.#lastRev < rev) {
      let res: EventsResult;
      try {
        res = this.#store.events(this.#lastRev + 1, { toRev: rev, limit: limits.watchFanoutEventsMax });
      } catch (e) {
        // (events() reads one LMDB snapshot: a compaction scheduled meanwhile does not change what it returns.)
        if (!isEtcdError(e)) throw e;
        this.#demoteAllSynced(); // compacted past lastRev (the worker fell far behind): catch-up cancels them
        this.#lastRev = rev;
        return;
      }
      const toRev = res.nextRev - 1;
      this.stats.eventsRead += res.events.length;
      this.#fanOut(res.events, toRev);
      this.#lastRev = toRev;
    }
  }

  #fanOut(events: mvccpb.IEvent[], toRev: number): void {
    for (const [g, batch] of this.#batch(events, this.#syncedIndex)) this.#deliverShared(g.watchers, batch, toRev, true);
  }

  /**
   * Matches events against an index of targets and batches them per target, in revision order. An event
   * is encoded at most twice (with and without prev_kv), however many targets it matches.
   */
  #batch<T extends BatchTarget>(events: mvccpb.IEvent[], index: IntervalIndex<T>): Map<T, Batch> {
    const batches = new Map<T, Batch>();
    const matched: T[] = [];
    for (const ev of events) {
      const key = ev.kv!.key as Buffer;
      const rev = toNum(ev.kv!.modRevision);
      const isDelete = ev.type === mvccpb.Event.EventType.DELETE;
      matched.length = 0;
      index.stab(key, matched);
      let plain: Uint8Array | null = null;
      let withPrev: Uint8Array | null = null;
      for (const t of matched) {
        if (t.skips(rev, isDelete)) continue;
        const bytes = t.prevKv ? (withPrev ??= encodeEventField(this.#withPrevKv(ev))) : (plain ??= encodeEventField(ev));
        let batch = batches.get(t);
        if (!batch) batches.set(t, (batch = { parts: [], revs: [] }));
        batch.parts.push(bytes);
        batch.revs.push(rev);
      }
    }
    return batches;
  }

  /**
   * Watchers that all get the same events (a synced group; unsynced watchers with the same interval,
   * options and next revision): unless the batch must be cut (large) or a watcher starts inside it, each
   * stream gets one template (header ‖ watch_id ‖ events, events concatenated once) listing its watchers'
   * IDs, instead of one response per watcher. Synced: a watcher whose stream is blocked is demoted.
   */
  #deliverShared(watchers: Iterable<Watcher>, batch: Batch, toRev: number, synced: boolean): void {
    const bytes = chunkBytes(batch.parts);
    const shared = bytes < limits.watchResponseBytesSoftMax && bytes + 64 < this.#maxRequestBytes;
    const byStream = this.#idsByStream;
    const prefix = this.#headers.field(toRev, this.term);
    // Deleting the current element while iterating a Set is safe; demotion removes only w.
    for (const w of watchers) {
      if (synced && w.stream.blocked) this.#demote(w);
      else if (synced && (!shared || w.nextRev > batch.revs[0])) this.#deliverSynced(w, batch, toRev);
      else if (!shared) this.#sendEvents(w, batch.parts, batch.revs, toRev);
      else {
        w.progressIdle = false;
        let ids = byStream.get(w.stream);
        if (ids === undefined) byStream.set(w.stream, (ids = []));
        ids.push(w.id);
        // Counted as each watcher joins the template, so a stream that passes the limit in this batch
        // has its remaining synced watchers demoted, as separate responses would (the bound holds).
        w.stream.unackedBytes += GRPC_PREFIX_BYTES + eventResponseBytes(prefix, w.id, false, bytes);
        this.#block(w.stream);
      }
    }
    if (byStream.size === 0) return;
    const suffix = batch.parts.length === 1 ? batch.parts[0] : Buffer.concat(batch.parts, bytes);
    for (const [s, ids] of byStream) {
      this.#sink.template(s.id, prefix, suffix, ids);
      this.stats.responses += ids.length;
    }
    byStream.clear();
  }

  /** etcd's victim: stop feeding it live events; it catches up from history once its stream drains. */
  #demote(w: Watcher): void {
    this.#toUnsynced(w);
    this.stats.demoted++;
  }

  /** From the synced group to the unsynced set: it catches up from lastRev + 1 (or its later start). */
  #toUnsynced(w: Watcher): void {
    this.#leaveSynced(w);
    w.nextRev = Math.max(w.nextRev, this.#lastRev + 1);
    this.#unsynced.add(w);
  }

  #deliverSynced(w: Watcher, batch: Batch, toRev: number): void {
    if (w.nextRev > batch.revs[0]) {
      // A start revision inside this chunk (created with a future start_revision): only its part.
      const from = batch.revs.findIndex((r) => r >= w.nextRev);
      if (from < 0) return;
      this.#sendEvents(w, batch.parts.slice(from), batch.revs.slice(from), toRev);
      return;
    }
    this.#sendEvents(w, batch.parts, batch.revs, toRev);
  }

  #demoteAllSynced(): void {
    for (const g of [...this.#groups.values()]) {
      for (const w of [...g.watchers]) this.#toUnsynced(w);
    }
  }

  /** etcd's sendLoop reads prev_kv at mod_revision - 1, only for watchers that asked for it. */
  #withPrevKv(ev: mvccpb.IEvent): mvccpb.IEvent {
    const rev = toNum(ev.kv!.modRevision) - 1;
    if (rev < 1) return ev;
    try {
      const r = this.#store.range({ key: ev.kv!.key, revision: rev });
      return r.kvs && r.kvs.length > 0 ? { ...ev, prevKv: r.kvs[0] } : ev;
    } catch (e) {
      if (e instanceof EtcdError) return ev; // compacted meanwhile: no prev_kv, as etcd
      throw e;
    }
  }

  // ---- catch-up (unsynced) ------------------------------------------------------------------------

  /**
   * One bounded catch-up chunk for the unsynced watchers whose streams are not blocked (etcd's
   * syncWatchers): one history read from the smallest nextRev, matched through a temporary interval index.
   * Returns true when more catch-up work is ready to run now.
   */
  catchUp(): boolean {
    if (this.#unsynced.size === 0) return false; // the common case, every loop iteration: no allocation
    const ready: Watcher[] = [];
    for (const w of this.#unsynced) if (!w.stream.blocked) ready.push(w);
    if (ready.length === 0) return false;
    const live = this.#cancelCompacted(ready);
    if (live.length === 0) return this.#anyUnsyncedReady();
    // Watchers with the same interval, options and next revision get the same events (a stream demoted
    // from a group is the common case): one cluster each, matched once and sent as templates.
    let minRev = Infinity;
    const index = new IntervalIndex<Cluster>();
    const clusters = new Map<string, Cluster>();
    for (const w of live) {
      minRev = Math.min(minRev, w.nextRev);
      const k = `${w.nextRev}@${WatcherGroup.keyOf(w)}`;
      let c = clusters.get(k);
      if (c === undefined) {
        clusters.set(k, (c = new Cluster(w)));
        index.add(w.start, w.end, c);
      }
      c.members.push(w);
    }
    let res: EventsResult;
    try {
      res = this.#store.events(minRev, { toRev: this.#lastRev, limit: limits.watchCatchUpEventsMax });
    } catch (e) {
      if (isEtcdError(e)) return true; // compacted between our check and the read: cancel next round
      throw e;
    }
    this.stats.eventsRead += res.events.length;
    for (const [c, batch] of this.#batch(res.events, index)) this.#deliverShared(c.members, batch, this.#lastRev, false);
    for (const w of live) {
      if (!w.stream.watchers.has(w.id)) continue; // removed while sending (response too large)
      w.nextRev = Math.max(w.nextRev, res.nextRev);
      if (w.nextRev > this.#lastRev) {
        this.#unsynced.delete(w);
        this.#joinSynced(w);
      }
    }
    return this.#anyUnsyncedReady();
  }

  #anyUnsyncedReady(): boolean {
    for (const w of this.#unsynced) if (!w.stream.blocked) return true;
    return false;
  }

  /** etcd's chooseAll: a watcher whose next revision was compacted is canceled with compact_revision. */
  #cancelCompacted(ready: Watcher[]): Watcher[] {
    const compactRev = this.#store.compactRevision;
    if (compactRev <= 0) return ready;
    const live: Watcher[] = [];
    for (const w of ready) {
      if (w.nextRev >= compactRev) {
        live.push(w);
        continue;
      }
      this.#remove(w);
      this.stats.compactedCancels++;
      // etcd sends this from the mvcc layer with revision 0 in the header.
      this.#control(w.stream, { header: this.#header(0), watchId: w.id, canceled: true, compactRevision: compactRev });
    }
    return live;
  }

  // ---- progress -----------------------------------------------------------------------------------

  /**
   * Answers progress requests: header revision = the highest revision below every event this stream
   * may still receive (lastRev, or below the first revision an unsynced watcher still waits for).
   */
  answerProgress(): void {
    for (const s of this.#progressRequests.splice(0)) {
      if (!this.#streams.has(s.id)) continue;
      let rev = this.#lastRev;
      for (const w of s.watchers.values()) if (w.group === null) rev = Math.min(rev, w.nextRev - 1);
      this.#flagResponse(s, rev, -1, 0);
      this.#limitRequestReplies(s);
    }
  }

  /** etcd's progress ticker: synced watchers that asked and got no event since the last tick get one. */
  progressTick(): void {
    for (const w of this.#progressWatchers) {
      if (w.progressIdle && w.group !== null && !w.stream.blocked) {
        this.#flagResponse(w.stream, this.#lastRev, w.id, 0);
      }
      w.progressIdle = true;
    }
  }
}

/** Unsynced watchers with the same interval, options and next revision, during one catch-up step. */
class Cluster implements BatchTarget {
  readonly rep: Watcher;
  readonly members: Watcher[];
  readonly prevKv: boolean;

  constructor(rep: Watcher) {
    this.rep = rep;
    this.members = [];
    this.prevKv = rep.opts.prevKv;
  }

  skips(rev: number, isDelete: boolean): boolean {
    return rev < this.rep.nextRev || this.rep.filters(isDelete);
  }
}

function chunkBytes(parts: readonly Uint8Array[]): number {
  let n = 0;
  for (const p of parts) n += p.length;
  return n;
}
