// Range pool task (piscina): a serializable range over an LMDB read transaction, for scans too
// large to run inline on the main thread. Returns the encoded RangeResponse with its header.
// The store is opened once per worker thread; LMDB shares one environment across threads.
import Long from 'long';
import { etcdserverpb } from '../shared/gen/etcd';
import { MvccStore } from './mvcc/store';
import { EtcdError } from '../shared/errors';

export interface RangeTask {
  /** 'range' (default): request is a RangeRequest. 'hashKV': request is a HashKVRequest. */
  kind?: 'range' | 'hashKV';
  lmdbDir: string;
  clusterId: string;
  memberId: string;
  raftTerm: number;
  request: Uint8Array;
}

export type RangeTaskResult = { ok: Uint8Array } | { err: { code: number; message: string } };

let store: MvccStore | null = null;

export default function rangeTask(task: RangeTask): RangeTaskResult {
  store ??= MvccStore.open(task.lmdbDir, { readOnly: true });
  try {
    if (task.kind === 'hashKV') return { ok: hashKVTask(store, task) };
    const req = etcdserverpb.RangeRequest.decode(task.request);
    const resp = store.range(req);
    resp.header = {
      clusterId: Long.fromString(task.clusterId, true), memberId: Long.fromString(task.memberId, true),
      revision: resp.header?.revision ?? 0, raftTerm: task.raftTerm,
    };
    return { ok: etcdserverpb.RangeResponse.encode(resp).finish() };
  } catch (e) {
    if (e instanceof EtcdError) return { err: { code: e.code, message: e.message } };
    throw e;
  }
}

/** Maintenance.HashKV: a full scan of the history up to the revision, so it runs in the pool. */
function hashKVTask(s: MvccStore, task: RangeTask): Uint8Array {
  const req = etcdserverpb.HashKVRequest.decode(task.request);
  const h = s.hashKV(Number(req.revision ?? 0));
  return etcdserverpb.HashKVResponse.encode({
    header: {
      clusterId: Long.fromString(task.clusterId, true), memberId: Long.fromString(task.memberId, true),
      revision: h.revision, raftTerm: task.raftTerm,
    },
    hash: h.hash >>> 0,
    compactRevision: h.compactRevision,
  }).finish();
}
