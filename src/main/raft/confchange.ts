// Simple (one member at a time, non-joint) configuration changes, after etcd-io/raft
// confchange/confchange.go Changer.Simple for ConfChange v1. Pure: computes the next ConfState
// from the current one; Raft.applyConfChange installs it in the ProgressTracker.
//
// Why one at a time is safe without joint consensus: any majority of C and any majority of
// C ± one voter intersect, so the old and the new configuration cannot elect two leaders of
// the same term or commit conflicting entries (Raft thesis §4.1). The leader enforces "one at a
// time" with pendingConfIndex: it accepts no new ConfChange until the previous one is applied.
//
// Every change is idempotent (a snapshot may already contain it and the entry is applied again
// after a restart), and a change that would break the configuration is refused by returning the
// configuration unchanged:
//   AddNode         add a voter, or promote a learner; no-op for a voter
//   AddLearnerNode  add a learner; no-op for a learner; refused for a voter (no demotion here)
//   RemoveNode      remove a voter or learner; no-op for a stranger; refused for the last voter
//   UpdateNode      no change to the configuration (the driver updates member URLs)

import { assertNever } from '../../shared/errors';
import { ConfChange, ConfChangeType, ConfState, None } from './types';
import { sortIds } from './util';

export interface SimpleChangeResult {
  cs: ConfState;
  /** False when the change was a no-op or refused. */
  changed: boolean;
  /** Why a change was refused (for logs and transcripts), or null. */
  refused: string | null;
}

export function simpleChange(cur: ConfState, cc: ConfChange): SimpleChangeResult {
  const id = cc.nodeId;
  const voters = new Set(cur.voters);
  const learners = new Set(cur.learners);
  const same = (refused: string | null): SimpleChangeResult => ({ cs: copyConfState(cur), changed: false, refused });
  if (id === None && cc.type !== ConfChangeType.UpdateNode) return same('node id 0 is not a member id');
  switch (cc.type) {
    case ConfChangeType.AddNode:
      if (voters.has(id)) return same(null);
      learners.delete(id);
      voters.add(id);
      break;
    case ConfChangeType.AddLearnerNode:
      if (learners.has(id)) return same(null);
      if (voters.has(id)) return same(`cannot demote voter ${id} to learner with a simple change`);
      learners.add(id);
      break;
    case ConfChangeType.RemoveNode:
      if (!voters.has(id) && !learners.has(id)) return same(null);
      if (voters.has(id) && voters.size === 1) return same(`cannot remove the last voter ${id}`);
      voters.delete(id);
      learners.delete(id);
      break;
    case ConfChangeType.UpdateNode:
      return same(null);
    default:
      assertNever(cc.type);
  }
  return { cs: { voters: sortIds(voters), learners: sortIds(learners) }, changed: true, refused: null };
}

export function copyConfState(cs: ConfState): ConfState {
  return { voters: [...cs.voters], learners: [...cs.learners] };
}

/** etcd's rendering, e.g. `voters=(1 2 3) learners=(4)`; learners only when there are some. */
export function describeConfState(cs: ConfState): string {
  const s = `voters=(${cs.voters.join(' ')})`;
  return cs.learners.length > 0 ? `${s} learners=(${cs.learners.join(' ')})` : s;
}
