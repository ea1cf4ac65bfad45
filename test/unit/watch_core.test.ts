// The watch worker's core (WatchCore) driven directly, without threads, over a real MVCC store: random
// writes (puts, deletes, multi-key txns), watchers created and canceled with random key ranges, filters and
// start revisions (past, now, future), fan-out and catch-up interleaved at random, streams that stop reading
// (tiny buffer limit) and drain later, and compactions. fast-check generates the runs; at the end every
// watcher's received events are checked against the recorded history:
//   ordered and unique (revision, key order), reliable (exactly the matching events from its start on, no
//   gap), atomic (one revision's events never in two responses), and a compacted watcher got exactly a
//   prefix and then canceled with compact_revision. Plus focused cases: created ids, progress, prev_kv, filters.
//
//   npx tsc -p . && npx mocha --no-config dist/test/unit/watch_core.test.js   (WATCH_PROP_RUNS=2000 for a long run)
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { etcdserverpb } from '../../src/shared/gen/etcd';
import { limits } from '../../src/shared/limits';
import { Driver, b } from '../../src/workers/mvcc/testing';
import { CreateRequest, ResponseSink, WatchCore } from '../../src/workers/watch/watch_core';
import { KEY_INF, KeyEnd } from '../../src/workers/watch/interval_index';
import { Resp, simplify } from '../integration/watch_client';

class CaptureSink implements ResponseSink {
  readonly maxResponseBytes = 16 * 1024 * 1024;
  readonly out: Array<{ streamId: number; resp: Resp }> = [];
  #slot: { streamId: number; buf: Uint8Array } | null = null;
  reserve(streamId: number, len: number): Uint8Array {
    this.#slot = { streamId, buf: new Uint8Array(len) };
    return this.#slot.buf;
  }
  commit(): void {
    const s = this.#slot!;
    this.out.push({ streamId: s.streamId, resp: simplify(etcdserverpb.WatchResponse.decode(s.buf)) });
    this.#slot = null;
  }
  readonly ended: Array<{ streamId: number; code: number; message: string }> = [];
  end(streamId: number, code: number, message: string): void {
    this.ended.push({ streamId, code, message });
  }
  /** Each response rebuilt independently of the worker's encoder: the watch_id field via protobufjs. */
  template(streamId: number, prefix: Uint8Array, suffix: Uint8Array, watchIds: readonly number[]): void {
    for (const watchId of watchIds) {
      const id = etcdserverpb.WatchResponse.encode({ watchId }).finish();
      const bytes = Buffer.concat([prefix, id, suffix]);
      this.out.push({ streamId, resp: simplify(etcdserverpb.WatchResponse.decode(bytes)) });
    }
  }
  of(streamId: number, watchId: number): Resp[] {
    return this.out.filter((o) => o.streamId === streamId && o.resp.watchId === watchId).map((o) => o.resp);
  }
}

interface Ev { rev: number; type: 'PUT' | 'DELETE'; key: string; value: string }

const opts = { prevKv: false, noPut: false, noDelete: false, progressNotify: false, fragment: false };
const KEYS = ['a', 'b', 'ba', 'bb', 'c', 'd'];

function setup(): { d: Driver; sink: CaptureSink; core: WatchCore; history: Ev[]; write: (f: () => void) => void } {
  const d = new Driver();
  const sink = new CaptureSink();
  const core = new WatchCore(d.store, sink, { clusterId: '1', memberId: '2', maxRequestBytes: 1024 * 1024 });
  const history: Ev[] = [];
  const write = (f: () => void): void => {
    const before = d.store.revision;
    f();
    for (const e of d.store.events(before + 1).events) {
      history.push({ rev: Number(e.kv!.modRevision), type: e.type === 1 ? 'DELETE' : 'PUT', key: String(e.kv!.key), value: String(e.kv!.value ?? '') });
    }
  };
  return { d, sink, core, history, write };
}

function inRange(key: string, start: string, end: KeyEnd | null): boolean {
  if (end === null) return key === start;
  return key >= start && (end === KEY_INF || key < end.toString());
}

describe('watch core', function () {
  this.timeout(120_000);
  const saved = { ...limits };
  afterEach(() => Object.assign(limits, saved));

  it('created ids, duplicate and empty range, cancel, progress', async () => {
    const { d, sink, core, write } = setup();
    write(() => d.put('a', '1'));
    core.create({ streamId: 1, watchId: 0, key: b('a'), end: null, startRevision: 0, opts });
    core.create({ streamId: 1, watchId: 5, key: b('a'), end: null, startRevision: 0, opts });
    core.create({ streamId: 1, watchId: 5, key: b('a'), end: null, startRevision: 0, opts });
    core.create({ streamId: 1, watchId: 0, key: b('b'), end: b('a'), startRevision: 0, opts });
    core.create({ streamId: 2, watchId: 0, key: b('a'), end: null, startRevision: 0, opts });
    const created = sink.out.map((o) => [o.streamId, o.resp.watchId, o.resp.created, o.resp.canceled, o.resp.cancelReason, o.resp.revision]);
    assert.deepEqual(created, [
      [1, 0, true, false, '', 2], [1, 5, true, false, '', 2],
      [1, -1, true, true, 'mvcc: duplicate watch ID provided on the WatchStream', 2],
      [1, -1, true, true, 'mvcc: watcher range is empty', 2], [2, 0, true, false, '', 2],
    ]);
    write(() => d.put('a', '2'));
    core.advance(d.store.revision);
    core.cancel(1, 5);
    core.cancel(1, 99);
    core.requestProgress(1);
    core.answerProgress();
    const tail = sink.out.slice(5).map((o) => [o.streamId, o.resp.watchId, o.resp.canceled, o.resp.events.length, o.resp.revision]);
    assert.deepEqual(tail, [[1, 0, false, 1, 3], [1, 5, false, 1, 3], [2, 0, false, 1, 3], [1, 5, true, 0, 3], [1, -1, false, 0, 3]]);
    await d.close();
  });

  it('a stream that sends requests but never reads their replies is ended past the hard limit; others go on', async () => {
    const { d, sink, core, write } = setup();
    limits.watchStreamBytesHardMax = 2000;
    core.create({ streamId: 1, watchId: 0, key: b('a'), end: null, startRevision: 0, opts });
    core.create({ streamId: 2, watchId: 0, key: b('a'), end: null, startRevision: 0, opts });
    let n = 0;
    while (sink.ended.length === 0 && n < 10_000) {
      core.requestProgress(1); // stream 1 never reports DRAINED
      core.answerProgress();
      core.drained(2, Number.MAX_SAFE_INTEGER);
      n++;
    }
    assert.deepEqual(sink.ended, [{ streamId: 1, code: 8, message: 'etcd-ts: watch stream is not reading its responses' }]);
    const replies = sink.out.filter((o) => o.streamId === 1).length;
    assert.ok(n > 10 && replies < 2000 / 10, `ended after ${n} requests`); // replies are 20-40 bytes: ended near the limit
    assert.equal(core.watcherCount, 1); // stream 1's watcher is gone
    write(() => d.put('a', '1'));
    core.advance(d.store.revision);
    assert.deepEqual(sink.out.filter((o) => o.resp.events.length > 0).map((o) => o.streamId), [2]);
    await d.close();
  });

  it('a shared (template) fan-out stops at the stream limit: the rest of its watchers are demoted, then caught up', async () => {
    const { d, sink, core, write } = setup();
    limits.watchBufferedBytesMax = 1000;
    for (let i = 0; i < 200; i++) core.create({ streamId: 1, watchId: 0, key: b('a'), end: null, startRevision: 0, opts });
    core.drained(1, Number.MAX_SAFE_INTEGER); // the created replies were read
    write(() => d.put('a', 'x'.repeat(100)));
    core.advance(d.store.revision);
    const live = sink.out.filter((o) => o.resp.events.length > 0).length;
    // Responses are about 130 bytes: live delivery stops just past 1,000 unacknowledged bytes.
    assert.ok(live > 0 && live <= 10, `${live} watchers got the event live`);
    assert.equal(core.stats.demoted, 200 - live);
    core.drained(1, Number.MAX_SAFE_INTEGER);
    while (core.catchUp()) core.drained(1, Number.MAX_SAFE_INTEGER);
    const ids = sink.out.filter((o) => o.resp.events.length > 0).map((o) => o.resp.watchId).sort((x, y) => x - y);
    assert.deepEqual(ids, Array.from({ length: 200 }, (_, i) => i)); // every watcher exactly once
    await d.close();
  });

  it('prev_kv, filters, progress notify', async () => {
    const { d, sink, core, write } = setup();
    write(() => d.put('k', 'v1'));
    core.create({ streamId: 1, watchId: 1, key: b('k'), end: null, startRevision: 0, opts: { ...opts, prevKv: true } });
    core.create({ streamId: 1, watchId: 2, key: b('k'), end: null, startRevision: 0, opts: { ...opts, noPut: true } });
    core.create({ streamId: 1, watchId: 3, key: b('k'), end: null, startRevision: 0, opts: { ...opts, noDelete: true, progressNotify: true } });
    write(() => d.put('k', 'v2'));
    write(() => d.del('k'));
    core.advance(d.store.revision);
    assert.deepEqual(sink.of(1, 1).flatMap((r) => r.events).map((e) => [e.type, e.value, e.prev]), [['PUT', 'v2', 'v1'], ['DELETE', '', 'v2']]);
    assert.deepEqual(sink.of(1, 2).flatMap((r) => r.events).map((e) => e.type), ['DELETE']);
    assert.deepEqual(sink.of(1, 3).flatMap((r) => r.events).map((e) => e.type), ['PUT']);
    core.progressTick(); // events since the last tick: no progress yet (etcd elides it)
    assert.equal(sink.of(1, 3).length, 2);
    core.progressTick();
    assert.deepEqual(sink.of(1, 3).slice(2).map((r) => [r.events.length, r.revision]), [[0, 4]]);
    await d.close();
  });

  const totals = { demoted: 0, compacted: 0, watchers: 0 };
  it('every guarantee holds under random writes, watches, slow streams and compaction', async () => {
    const keyArb = fc.constantFrom(...KEYS);
    const opArb = fc.oneof(
      { weight: 5, arbitrary: fc.record({ op: fc.constant('put' as const), key: keyArb }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('del' as const), key: keyArb }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('txn' as const), keys: fc.uniqueArray(keyArb, { minLength: 2, maxLength: 4 }) }) },
      { weight: 2, arbitrary: fc.record({ op: fc.constant('watch' as const), stream: fc.integer({ min: 1, max: 3 }), key: keyArb,
        kind: fc.integer({ min: 0, max: 2 }), back: fc.integer({ min: -2, max: 12 }), filter: fc.integer({ min: 0, max: 4 }) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('cancel' as const), pick: fc.nat() }) },
      { weight: 3, arbitrary: fc.record({ op: fc.constant('advance' as const) }) },
      { weight: 2, arbitrary: fc.record({ op: fc.constant('catchUp' as const) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('drain' as const), stream: fc.integer({ min: 1, max: 3 }) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('compact' as const), back: fc.integer({ min: 0, max: 6 }) }) },
    );
    await fc.assert(fc.asyncProperty(fc.array(opArb, { minLength: 20, maxLength: 200 }), async (ops) => {
      limits.watchBufferedBytesMax = 100; // a few responses: streams block and drain often
      limits.watchCatchUpEventsMax = 3;
      limits.watchFanoutEventsMax = 4;
      const t = setup();
      try {
        runOps(t, ops);
        checkAll(t);
        totals.demoted += t.core.stats.demoted;
        totals.compacted += t.core.stats.compactedCancels;
        totals.watchers += watchRecs.length;
      } finally {
        await t.d.close();
      }
    }), { numRuns: Number(process.env.WATCH_PROP_RUNS ?? 80) });
    // The runs must have exercised the interesting paths, or the property proves little.
    assert.ok(totals.demoted > 0 && totals.compacted > 0 && totals.watchers > 100, JSON.stringify(totals));
  });
});

type Op =
  | { op: 'put' | 'del'; key: string } | { op: 'txn'; keys: string[] }
  | { op: 'watch'; stream: number; key: string; kind: number; back: number; filter: number }
  | { op: 'cancel'; pick: number } | { op: 'advance' } | { op: 'catchUp' } | { op: 'drain'; stream: number }
  | { op: 'compact'; back: number };

interface WatchRec { req: CreateRequest; id: number; start: number; canceledByClient: boolean }

let watchRecs: WatchRec[] = [];
let seq = 0;
/** Revisions compacted at. As in etcd, compaction at R drops a tombstone AT R from history, so a watcher
 * reading from R on (allowed: only a start below R is "compacted") never sees that DELETE. */
const compactRevs = new Set<number>();
const droppable = (e: { rev: number; type: string }): boolean => e.type === 'DELETE' && compactRevs.has(e.rev);

function runOps(t: ReturnType<typeof setup>, ops: Op[]): void {
  watchRecs = [];
  compactRevs.clear();
  const { d, core, sink, write } = t;
  for (const o of ops) {
    switch (o.op) {
      case 'put': write(() => d.put(o.key, `v${++seq}`)); break;
      case 'del': write(() => d.del(o.key)); break;
      case 'txn': write(() => d.txn({ success: o.keys.map((k) => ({ requestPut: { key: b(k), value: b(`t${++seq}`) } })) })); break;
      case 'watch': createWatch(t, o); break;
      case 'cancel': {
        const live = watchRecs.filter((w) => !w.canceledByClient);
        if (live.length === 0) break;
        const w = live[o.pick % live.length];
        w.canceledByClient = true;
        core.cancel(w.req.streamId, w.id);
        break;
      }
      case 'advance': core.advance(d.store.revision); break;
      case 'catchUp': core.catchUp(); break;
      case 'drain': drainStream(core, sink, o.stream); break;
      case 'compact': {
        const rev = d.store.revision - o.back;
        if (rev > Math.max(0, d.store.compactRevision)) {
          d.compact(rev);
          compactRevs.add(rev);
        }
        d.store.compactStep(1000);
        break;
      }
    }
  }
  // Settle: the client reads everything, the worker catches up.
  for (let i = 0; i < 10_000; i++) {
    for (const s of [1, 2, 3]) drainStream(core, sink, s);
    core.advance(d.store.revision);
    if (!core.catchUp() && core.unsyncedCount === 0) break;
  }
  assert.equal(core.unsyncedCount, 0, 'every watcher caught up');
}

/** The client read everything sent so far on this stream. */
function drainStream(core: WatchCore, _sink: CaptureSink, stream: number): void {
  core.drained(stream, Number.MAX_SAFE_INTEGER);
}

function createWatch(t: ReturnType<typeof setup>, o: Extract<Op, { op: 'watch' }>): void {
  const end: KeyEnd | null = o.kind === 0 ? null : o.kind === 1 ? KEY_INF : b(o.key + '\xff');
  const startRevision = o.back < 0 ? 0 : Math.max(1, t.d.store.revision - o.back);
  const req: CreateRequest = {
    streamId: o.stream, watchId: 0, key: b(o.key), end, startRevision,
    opts: { ...opts, noPut: o.filter === 1, noDelete: o.filter === 2 },
  };
  const before = t.sink.out.length;
  t.core.create(req);
  const created = t.sink.out[before].resp;
  assert.ok(created.created);
  watchRecs.push({ req, id: created.watchId, start: startRevision === 0 ? created.revision + 1 : startRevision, canceledByClient: false });
}

function checkAll(t: ReturnType<typeof setup>): void {
  for (const w of watchRecs) {
    const resps = t.sink.of(w.req.streamId, w.id).filter((r) => !r.created);
    const want = t.history.filter((e) => e.rev >= w.start && inRange(e.key, w.req.key.toString(), w.req.end) &&
      !(w.req.opts.noPut && e.type === 'PUT') && !(w.req.opts.noDelete && e.type === 'DELETE') && !droppable(e));
    const got = resps.flatMap((r) => r.events.map((e) => ({ rev: e.mod, type: e.type, key: e.key, value: e.value }))).filter((e) => !droppable(e));
    const compacted = resps.find((r) => r.compactRevision > 0);
    const canceled = resps.findIndex((r) => r.canceled);
    assert.ok(canceled < 0 || canceled === resps.length - 1, 'nothing after cancel');
    if (w.canceledByClient || compacted) {
      assert.deepEqual(got, want.slice(0, got.length), 'a prefix of the history');
      if (compacted) {
        const next = got.length < want.length ? want[got.length].rev : Infinity;
        assert.ok(compacted.compactRevision > (got.length > 0 ? got[got.length - 1].rev : w.start - 1), 'compaction passed what it missed');
        assert.ok(next >= w.start);
      }
    } else {
      assert.deepEqual(got, want, `watcher ${w.req.streamId}/${w.id} from ${w.start}`);
    }
    const seen = new Set<number>();
    for (const r of resps) {
      const revs = new Set(r.events.map((e) => e.mod));
      for (const rev of revs) {
        assert.ok(!seen.has(rev), `revision ${rev} split across responses`);
        seen.add(rev);
      }
      if (r.events.length > 0) assert.ok(r.revision >= r.events[r.events.length - 1].mod, 'header revision covers events');
    }
  }
}
