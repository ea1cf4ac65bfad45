// Checks simple conf changes in the raft core directly (the transcripts show whole clusters):
// the change table of confchange.ts (idempotent, refusals leave the configuration unchanged);
// what applying a change does to a leader (new members probed with next = lastIndex+1 and
// recentActive, removed members' Progress and votes gone, a removal advancing commit, a leader
// transfer to a removed member aborted, the leader stepping down when it removes itself); that
// applying after advance() works like applying before it; the one-pending-at-a-time rule,
// including etcd's conservative rule for a new leader; and that a member with an empty
// configuration ticks forever without campaigning or crashing.
import { strict as assert } from 'node:assert';
import { simpleChange } from '../../src/main/raft/confchange';
import { MemoryStorage } from '../../src/main/raft/memory_storage';
import { RawNode } from '../../src/main/raft/rawnode';
import {
  Config, ConfChangeType, ConfState, EntryType, MessageType, NodeId, ProposalDroppedError, StateType,
} from '../../src/main/raft/types';
import { newMessage } from '../../src/main/raft/util';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const { AddNode, AddLearnerNode, RemoveNode, UpdateNode } = ConfChangeType;

function config(id: NodeId, storage: MemoryStorage, applied = 0): Config {
  return {
    id, peers: [], electionTick: 10, heartbeatTick: 1, storage, applied,
    maxSizePerMsg: 1 << 20, maxInflightMsgs: 256, preVote: false, checkQuorum: false, rand: () => 0,
  };
}

/** Persists and "applies" (without applying conf changes) one Ready; returns it. */
function drain(node: RawNode, storage: MemoryStorage): ReturnType<RawNode['ready']> {
  const rd = node.ready();
  if (rd.hardState !== null) storage.setHardState(rd.hardState);
  storage.append(rd.entries);
  node.advance(rd);
  return rd;
}

/** Node 1 as leader of voters `voters` (the others never answer: their acks are stepped in). */
function leaderOf(voters: NodeId[]): { node: RawNode; storage: MemoryStorage } {
  const storage = new MemoryStorage(voters);
  const node = new RawNode(config(1n, storage));
  node.campaign();
  for (const id of voters) {
    if (id !== 1n) node.step(newMessage({ type: MessageType.VoteResp, from: id, to: 1n, term: 1 }));
  }
  assert.equal(node.status().raftState, StateType.Leader);
  drain(node, storage);
  return { node, storage };
}

function ack(node: RawNode, from: NodeId, index: number): void {
  node.step(newMessage({ type: MessageType.AppResp, from, to: 1n, term: node.status().term, index }));
}

const cs = (voters: bigint[], learners: bigint[] = []): ConfState => ({ voters, learners });

describe('raft: conf changes', () => {
  it('changes one member at a time; repeats are no-ops; bad changes are refused', () => {
    const base = cs([1n, 2n, 3n]);
    const table: Array<[ConfState, ConfChangeType, bigint, ConfState, boolean]> = [
      [base, AddNode, 4n, cs([1n, 2n, 3n, 4n]), true],
      [base, AddNode, 3n, base, false],
      [base, AddLearnerNode, 4n, cs([1n, 2n, 3n], [4n]), true],
      [cs([1n, 2n, 3n], [4n]), AddLearnerNode, 4n, cs([1n, 2n, 3n], [4n]), false],
      [cs([1n, 2n, 3n], [4n]), AddNode, 4n, cs([1n, 2n, 3n, 4n]), true], // promotion
      [base, AddLearnerNode, 2n, base, false], // no demotion
      [base, RemoveNode, 2n, cs([1n, 3n]), true],
      [cs([1n, 2n, 3n], [4n]), RemoveNode, 4n, base, true],
      [base, RemoveNode, 9n, base, false],
      [cs([1n], [2n]), RemoveNode, 1n, cs([1n], [2n]), false], // last voter
      [base, UpdateNode, 2n, base, false],
      [base, AddNode, 0n, base, false],
    ];
    for (const [cur, type, id, want, changed] of table) {
      const res = simpleChange(cur, { type, nodeId: id });
      const what = `${ConfChangeType[type]} ${id} on ${cur.voters}/${cur.learners}`;
      assert.deepEqual(res.cs, want, what);
      assert.equal(res.changed, changed, what);
      // Applying the result's change again changes nothing (a snapshot may already contain it).
      assert.deepEqual(simpleChange(res.cs, { type, nodeId: id }).cs, res.cs, `${what} twice`);
    }
  });

  it('probes a new member at once, from lastIndex+1, counted as recently active', () => {
    const { node, storage } = leaderOf([1n, 2n]);
    ack(node, 2n, 1);
    drain(node, storage);
    const last = node.status().lastIndex;
    const st = node.applyConfChange({ type: AddLearnerNode, nodeId: 3n });
    assert.deepEqual(st, cs([1n, 2n], [3n]));
    const p3 = node.progress().find((p) => p.id === 3n);
    assert.deepEqual(p3, { id: 3n, match: 0, next: last + 1, isLearner: true, recentActive: true });
    const rd = drain(node, storage);
    assert.deepEqual(rd.messages.filter((m) => m.to === 3n).map((m) => [m.type, m.index]), [[MessageType.App, last]]);
    // Promotion keeps what the leader knows of the member.
    ack(node, 3n, last);
    node.applyConfChange({ type: AddNode, nodeId: 3n });
    assert.deepEqual(node.progress().find((p) => p.id === 3n), { id: 3n, match: last, next: last + 1, isLearner: false, recentActive: true });
    assert.deepEqual(node.status().config, cs([1n, 2n, 3n]));
  });

  it('a removal can advance the commit index, and forgets the removed member', () => {
    const { node, storage } = leaderOf([1n, 2n, 3n]);
    node.propose(enc('x'));
    drain(node, storage);
    const x = node.status().lastIndex;
    assert.ok(node.status().commit < x, 'not committed with only our own ack');
    node.applyConfChange({ type: RemoveNode, nodeId: 2n });
    assert.ok(node.status().commit < x, '1 of {1 3} is not a quorum');
    node.applyConfChange({ type: RemoveNode, nodeId: 3n });
    assert.equal(node.status().commit, x, '1 of {1} is');
    assert.deepEqual(node.progress().map((p) => p.id), [1n]);
    // A late response from a removed member is ignored.
    ack(node, 3n, x);
    assert.deepEqual(node.progress().map((p) => p.id), [1n]);
  });

  it('a removed voter\'s vote no longer counts', () => {
    const storage = new MemoryStorage([1n, 2n, 3n]);
    const node = new RawNode(config(1n, storage));
    node.campaign();
    // Removing 3 before its vote arrives: {1 2} needs 2's vote too.
    node.applyConfChange({ type: RemoveNode, nodeId: 3n });
    node.step(newMessage({ type: MessageType.VoteResp, from: 3n, to: 1n, term: 1 }));
    assert.equal(node.status().raftState, StateType.Candidate);
    node.step(newMessage({ type: MessageType.VoteResp, from: 2n, to: 1n, term: 1 }));
    assert.equal(node.status().raftState, StateType.Leader);
  });

  it('a candidate removed from the configuration stops campaigning', () => {
    const storage = new MemoryStorage([1n, 2n, 3n]);
    const node = new RawNode(config(1n, storage));
    node.campaign();
    node.applyConfChange({ type: RemoveNode, nodeId: 1n });
    assert.equal(node.status().raftState, StateType.Follower);
    node.step(newMessage({ type: MessageType.VoteResp, from: 2n, to: 1n, term: 1 }));
    node.step(newMessage({ type: MessageType.VoteResp, from: 3n, to: 1n, term: 1 }));
    assert.equal(node.status().raftState, StateType.Follower);
  });

  it('aborts a leader transfer to a removed member; a removed leader steps down', () => {
    const { node, storage } = leaderOf([1n, 2n, 3n]);
    node.transferLeader(3n);
    assert.equal(node.raft.leadTransferee, 3n);
    node.applyConfChange({ type: RemoveNode, nodeId: 3n });
    assert.equal(node.raft.leadTransferee, 0n);
    drain(node, storage);
    node.applyConfChange({ type: RemoveNode, nodeId: 1n });
    const st = node.status();
    assert.equal(st.raftState, StateType.Follower);
    assert.deepEqual(st.config, cs([2n]));
    assert.deepEqual(node.progress(), []);
    assert.throws(() => node.propose(enc('y')), ProposalDroppedError);
    for (let i = 0; i < 100; i++) node.tick();
    assert.equal(node.status().raftState, StateType.Follower, 'a non-member never campaigns');
  });

  it('accepts one conf change at a time, applied before or after advance()', () => {
    for (const beforeAdvance of [true, false]) {
      const { node, storage } = leaderOf([1n]);
      node.proposeConfChange(enc('add 2'));
      assert.throws(() => node.proposeConfChange(enc('add 3')), ProposalDroppedError);
      node.propose(enc('ordinary proposals still go through'));
      const rd = node.ready();
      storage.append(rd.entries);
      if (rd.hardState !== null) storage.setHardState(rd.hardState);
      const cc = rd.committedEntries.find((e) => e.type === EntryType.ConfChange);
      assert.ok(cc !== undefined);
      if (beforeAdvance) node.applyConfChange({ type: AddNode, nodeId: 2n });
      node.advance(rd);
      if (!beforeAdvance) node.applyConfChange({ type: AddNode, nodeId: 2n });
      assert.deepEqual(node.status().config, cs([1n, 2n]));
      // Applied: the next one is accepted.
      node.proposeConfChange(enc('add 3'));
      const msgs = drain(node, storage).messages;
      assert.ok(msgs.some((m) => m.to === 2n && m.type === MessageType.App), 'the new member is probed');
    }
  });

  it('a forwarded conf change while one is pending becomes an empty entry', () => {
    const { node, storage } = leaderOf([1n, 2n]);
    node.proposeConfChange(enc('add 3'));
    const entries = [
      { term: 0, index: 0, type: EntryType.Normal, data: enc('a') },
      { term: 0, index: 0, type: EntryType.ConfChange, data: enc('remove 2') },
    ];
    const m = newMessage({ type: MessageType.Prop, from: 2n, to: 1n, entries });
    node.step(m);
    assert.equal(m.entries[1].type, EntryType.ConfChange, 'the message itself is left alone');
    const rd = drain(node, storage);
    assert.deepEqual(rd.entries.map((e) => [e.type, new TextDecoder().decode(e.data)]), [
      [EntryType.ConfChange, 'add 3'], [EntryType.Normal, 'a'], [EntryType.Normal, ''],
    ]);
  });

  it('a new leader refuses conf changes until it applied its whole log (etcd\'s conservative rule)', () => {
    const storage = new MemoryStorage([1n]);
    storage.append([1, 2, 3].map((i) => ({ term: 1, index: i, type: EntryType.Normal, data: enc(`e${i}`) })));
    storage.setHardState({ term: 1, vote: 1n, commit: 3 });
    const node = new RawNode(config(1n, storage, 1));
    node.campaign();
    assert.equal(node.status().raftState, StateType.Leader);
    assert.throws(() => node.proposeConfChange(enc('add 2')), ProposalDroppedError);
    drain(node, storage); // applies up to the new leader's no-op
    node.proposeConfChange(enc('add 2'));
  });

  it('a member with an empty configuration only follows', () => {
    const storage = new MemoryStorage([]);
    const node = new RawNode(config(4n, storage));
    for (let i = 0; i < 100; i++) node.tick();
    node.campaign();
    assert.ok(!node.hasReady());
    const st = node.status();
    assert.deepEqual([st.raftState, st.isLearner, st.config], [StateType.Follower, false, cs([])]);
    // The leader's heartbeat is answered.
    node.step(newMessage({ type: MessageType.Heartbeat, from: 1n, to: 4n, term: 2 }));
    const rd = drain(node, storage);
    assert.deepEqual(rd.messages.map((m) => [m.type, m.to, m.term]), [[MessageType.HeartbeatResp, 1n, 2]]);
    assert.equal(node.status().lead, 1n);
    // Once it applies its addition as a learner, it is one, and still does not campaign.
    node.applyConfChange({ type: AddLearnerNode, nodeId: 4n });
    assert.ok(node.status().isLearner);
    for (let i = 0; i < 100; i++) node.tick();
    assert.equal(node.status().raftState, StateType.Follower);
  });

  it('createSnapshot records the given configuration', () => {
    const storage = new MemoryStorage([1n]);
    storage.append([{ term: 1, index: 1, type: EntryType.Normal, data: enc('a') }, { term: 1, index: 2, type: EntryType.Normal, data: enc('b') }]);
    assert.deepEqual(storage.createSnapshot(1, enc('s')).metadata.voters, [1n]);
    const md = storage.createSnapshot(2, enc('s'), cs([1n, 2n], [3n])).metadata;
    assert.deepEqual([md.voters, md.learners], [[1n, 2n], [3n]]);
    assert.deepEqual(storage.initialState().learners, [3n]);
  });
});
