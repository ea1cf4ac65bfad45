// Range pool task (piscina): a serializable range over an LMDB read transaction, for scans too
// large to run inline on the main thread. Returns the encoded RangeResponse with its header
// (task and result types: src/shared/range_protocol.ts).
// The store is opened once per worker thread; LMDB shares one environment across threads.
import { etcdserverpb } from '../shared/gen/etcd';
import { MvccStore } from '../shared/mvcc/store';
import { generationOf } from '../shared/store_generation';
import { EtcdError } from '../shared/errors';
import { HeaderMaker } from '../shared/header';
import type { RangeTask, RangeTaskResult } from '../shared/range_protocol';

// Per worker thread, made on the first task: the member's store and IDs never change.
let store: MvccStore | null = null;
let headers: HeaderMaker | null = null;

export default function rangeTask(task: RangeTask): RangeTaskResult {
  // Defragment switched the store to a newer directory (src/main/defrag.ts): follow it. A task queued
  // before the switch may name the older one (removed by now): it reads the newer store, which holds
  // at least what that task could see.
  if (store !== null && store.dir !== task.lmdbDir && generationOf(task.lmdbDir) > generationOf(store.dir ?? '')) {
    void store.close();
    store = null;
  }
  store ??= MvccStore.open(task.lmdbDir, { readOnly: true });
  headers ??= new HeaderMaker(task.clusterId, task.memberId);
  try {
    if (task.kind === 'hashKV') return { ok: hashKVTask(store, headers, task) };
    if (task.kind === 'hash') {
      const h = store.hash();
      return { ok: etcdserverpb.HashResponse.encode({ header: headers.make(h.revision, task.raftTerm), hash: h.hash }).finish() };
    }
    const req = etcdserverpb.RangeRequest.decode(task.request);
    const resp = store.range(req);
    resp.header = headers.make(resp.header?.revision ?? 0, task.raftTerm);
    return { ok: etcdserverpb.RangeResponse.encode(resp).finish() };
  } catch (e) {
    if (e instanceof EtcdError) return { err: { code: e.code, message: e.message } };
    throw e;
  }
}

/** Maintenance.HashKV: a full scan of the history up to the revision, so it runs in the pool. */
function hashKVTask(s: MvccStore, headers: HeaderMaker, task: RangeTask): Uint8Array {
  const req = etcdserverpb.HashKVRequest.decode(task.request);
  const h = s.hashKV(Number(req.revision ?? 0));
  return etcdserverpb.HashKVResponse.encode({
    header: headers.make(h.revision, task.raftTerm),
    hash: h.hash >>> 0,
    compactRevision: h.compactRevision,
  }).finish();
}
