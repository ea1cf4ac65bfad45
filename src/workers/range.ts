// Range pool task (piscina): a serializable range over an LMDB read transaction, for scans too
// large to run inline on the main thread. Returns the encoded RangeResponse with its header.
// The store is opened once per worker thread; LMDB shares one environment across threads.
import Long from 'long';
import { etcdserverpb } from '../shared/gen/etcd';
import { MvccStore } from './mvcc/store';
import { EtcdError } from '../shared/errors';

export interface RangeTask {
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
