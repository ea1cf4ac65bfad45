// ReadOnly: the leader's pending ReadIndex requests in safe mode (Raft thesis §6.4), after
// etcd-io/raft read_only.go. A request records the commit index when it arrived; it becomes
// answerable once a quorum acknowledges a heartbeat carrying its context, which proves we were
// still leader after it arrived. Requests are answered in arrival order: an ack for a later
// context also covers every earlier one.
//
// Lease-based reads are not implemented (etcd's ReadOnlyLeaseBased); the option is left for later.

import { Message, NodeId } from './types';
import { bytesKey } from './util';

export interface ReadIndexStatus {
  req: Message;
  index: number;
  acks: Map<NodeId, boolean>;
}

export class ReadOnly {
  readonly #pending: Map<string, ReadIndexStatus>;
  /** Context keys in arrival order. Invariant: same key set as #pending. */
  #queue: string[];

  constructor() {
    this.#pending = new Map();
    this.#queue = [];
  }

  /** Queues read request m (context in m.context) to be served at `index`. Duplicates are ignored. */
  addRequest(index: number, m: Message): void {
    const key = bytesKey(m.context ?? new Uint8Array(0));
    if (this.#pending.has(key)) return;
    this.#pending.set(key, { req: m, index, acks: new Map() });
    this.#queue.push(key);
  }

  /** Records id's heartbeat ack for ctx; returns the acks so far (null if ctx is unknown). */
  recvAck(id: NodeId, ctx: Uint8Array): ReadonlyMap<NodeId, boolean> | null {
    const rs = this.#pending.get(bytesKey(ctx));
    if (rs === undefined) return null;
    rs.acks.set(id, true);
    return rs.acks;
  }

  /** Dequeues and returns every request up to and including the one with context ctx. */
  advance(ctx: Uint8Array): ReadIndexStatus[] {
    const key = bytesKey(ctx);
    const at = this.#queue.indexOf(key);
    if (at < 0) return [];
    const done = this.#queue.slice(0, at + 1);
    this.#queue = this.#queue.slice(at + 1);
    const out: ReadIndexStatus[] = [];
    for (const k of done) {
      out.push(this.#pending.get(k)!);
      this.#pending.delete(k);
    }
    return out;
  }

  /** Context of the newest pending request, sent on heartbeats; null when none are pending. */
  lastPendingRequestCtx(): Uint8Array | null {
    if (this.#queue.length === 0) return null;
    return this.#pending.get(this.#queue[this.#queue.length - 1])!.req.context;
  }

  pendingCount(): number {
    return this.#queue.length;
  }
}
