// Membership-change decisions on this member: the current Membership (src/main/membership.ts decides
// each committed ConfChange in log order), what Raft, the apply worker and the peers do with it, and
// what happens when the change removes this member (it stops, as etcd's removed members do).
import { Logger } from '../log';
import { Membership } from '../membership';
import type { ConfChangeDecision } from '../node/node';
import type { Entry } from '../raft/types';
import { decodeConfChange } from '../../shared/confchange';
import { encodeEntry, RequestKind } from '../../shared/entry';
import { idToHex } from '../../shared/ids';
import type { MvccStore } from '../../shared/mvcc/store';
import type { PeerLinks } from './peers';

/** After a removal is applied, the entry's apply and any reply in flight go out before the member stops. */
const REMOVED_STOP_DELAY_MS = 200;

export class ConfChanges {
  readonly #memberId: bigint;
  readonly #store: MvccStore;
  readonly #peers: PeerLinks;
  readonly #log: Logger;
  readonly #onRemoved: () => void;
  /** The membership at the applied index; replaced only by an applied change or an installed snapshot. */
  #current: Membership;
  #removed = false;

  /** onRemoved: asks the process to stop (once, a moment after the removal was applied). */
  constructor(memberId: bigint, initial: Membership, store: MvccStore, peers: PeerLinks, log: Logger, onRemoved: () => void) {
    this.#memberId = memberId;
    this.#current = initial;
    this.#store = store;
    this.#peers = peers;
    this.#log = log;
    this.#onRemoved = onRemoved;
  }

  get current(): Membership {
    return this.#current;
  }

  /** A committed ConfChange entry, in log order (RaftNode hands it over as it goes to apply). */
  decide(e: Entry): ConfChangeDecision {
    const cc = decodeConfChange(e.data);
    const d = this.#current.decide(cc);
    if (d.raft !== null) {
      const id = d.raft.nodeId;
      this.#log.info('applied a membership change', {
        change: cc.type,
        promote: cc.promote === true,
        'member-id': idToHex(id),
        index: e.index,
      });
      if (id === this.#memberId && cc.type === 'RemoveNode') this.removedSelf();
      else this.#peers.follow(this.#current);
    }
    return { raft: d.raft, applyData: encodeEntry(RequestKind.Membership, cc.requestId ?? 0, Buffer.from(JSON.stringify(d.op))) };
  }

  /** The leader's state replaced ours: so did its membership. */
  snapshotInstalled(): void {
    const st = this.#store.membership();
    if (st !== null) this.#current = Membership.fromState(st);
    if (this.#current.isRemoved(this.#memberId)) this.removedSelf();
    else this.#peers.follow(this.#current);
  }

  /** etcd stops a member once it is removed from the cluster; so do we. */
  removedSelf(): void {
    if (this.#removed) return;
    this.#removed = true;
    this.#log.warn('the member has been permanently removed from the cluster; stopping', { 'member-id': idToHex(this.#memberId) });
    setTimeout(this.#onRemoved, REMOVED_STOP_DELAY_MS);
  }
}
