// Progress: the leader's view of one follower's log, after etcd-io/raft tracker/progress.go.
//
// States:
//   Probe     - we don't know the follower's last index; send at most one MsgApp per heartbeat
//               interval (msgAppFlowPaused) and back off on rejections.
//   Replicate - the follower is caught up to `next-1`; stream MsgApps optimistically, bounded by
//               the inflights window.
//   Snapshot  - a snapshot was sent; nothing else is sent until it is reported applied/failed.
// Invariant: match < next.

import { assert } from '../../shared/errors';
import { Inflights } from './inflights';

export enum ProgressState {
  Probe = 0,
  Replicate = 1,
  Snapshot = 2,
}

export class Progress {
  /** Highest index known to be replicated on the follower. */
  match: number;
  /** Index of the next entry to send. */
  next: number;
  state: ProgressState;
  /** In Snapshot state: the index of the snapshot being sent. */
  pendingSnapshot: number;
  /** Heard from recently (reset each election timeout by check-quorum). */
  recentActive: boolean;
  /** In Probe state: a MsgApp with entries is outstanding; wait for a response or heartbeat. */
  msgAppFlowPaused: boolean;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(next: number, maxInflight: number, maxInflightBytes: number, isLearner: boolean) {
    this.match = 0;
    this.next = next;
    this.state = ProgressState.Probe;
    this.pendingSnapshot = 0;
    this.recentActive = false;
    this.msgAppFlowPaused = false;
    this.inflights = new Inflights(maxInflight, maxInflightBytes);
    this.isLearner = isLearner;
  }

  /** A new term: forget everything but membership; probe from `next`. */
  reset(match: number, next: number): void {
    this.resetState(ProgressState.Probe);
    this.match = match;
    this.next = next;
    this.recentActive = false;
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === ProgressState.Snapshot) {
      // Resume right after the snapshot (if it was applied, match caught up; if not, probe from it).
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
  }

  /** Accounts a MsgApp with `entries` entries of `bytes` payload just sent. */
  sentEntries(entries: number, bytes: number): void {
    switch (this.state) {
      case ProgressState.Replicate:
        if (entries > 0) {
          this.next += entries;
          this.inflights.add(this.next - 1, bytes);
        }
        this.msgAppFlowPaused = this.inflights.full();
        break;
      case ProgressState.Probe:
        // One probe at a time; an empty MsgApp (commit update) does not pause.
        if (entries > 0) this.msgAppFlowPaused = true;
        break;
      case ProgressState.Snapshot:
        assert(false, 'sending append in snapshot state');
    }
  }

  /** An AppResp acknowledged n; returns false when it is stale (not news). */
  maybeUpdate(n: number): boolean {
    if (n <= this.match) return false;
    this.match = n;
    this.next = Math.max(this.next, n + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  /**
   * An AppResp rejected the MsgApp at index `rejected`; matchHint is the follower's (term-adjusted)
   * guess of its last matching index. Returns false when the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      // Stale unless it rejects something past match; then resume right after match.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // Probe: only the rejection of our latest probe (at next-1) is news.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  /** Whether sending MsgApp to this follower is throttled. */
  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.msgAppFlowPaused;
      case ProgressState.Replicate:
        return this.msgAppFlowPaused;
      case ProgressState.Snapshot:
        return true;
    }
  }

  toString(): string {
    const st = ProgressState[this.state];
    return `${st} match=${this.match} next=${this.next}${this.isLearner ? ' learner' : ''}` +
      `${this.state === ProgressState.Snapshot ? ` pendingSnap=${this.pendingSnapshot}` : ''}` +
      `${this.msgAppFlowPaused ? ' paused' : ''} inflight=${this.inflights.count()}`;
  }
}
