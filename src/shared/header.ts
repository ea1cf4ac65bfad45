// etcd's ResponseHeader for one member: cluster and member IDs are fixed, so their Longs are built
// once per thread; only revision and raft term vary per response.
import Long from 'long';
import { etcdserverpb } from './gen/etcd';

export class HeaderMaker {
  readonly #clusterId: Long;
  readonly #memberId: Long;

  /** IDs as decimal uint64 strings (they cross to workers as strings). */
  constructor(clusterId: string, memberId: string) {
    this.#clusterId = Long.fromString(clusterId, true);
    this.#memberId = Long.fromString(memberId, true);
  }

  make(revision: number | Long, raftTerm: number): etcdserverpb.IResponseHeader {
    return { clusterId: this.#clusterId, memberId: this.#memberId, revision, raftTerm };
  }
}
