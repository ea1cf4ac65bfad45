// Checks RawNode.proposeMany, which the driver uses to hand a turn's writes to Raft together: a
// leader appends them at once and sends each follower one MsgApp carrying all of them (proposing
// them one by one sends one MsgApp per write), a follower forwards them as one MsgProp, and a leader
// that is handing over leadership drops all of them and appends none.
import { strict as assert } from 'node:assert';
import { MemoryStorage } from '../../src/main/raft/memory_storage';
import { RawNode } from '../../src/main/raft/rawnode';
import { Config, Message, MessageType, NodeId, ProposalDroppedError, StateType } from '../../src/main/raft/types';
import { newMessage } from '../../src/main/raft/util';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

function config(id: NodeId, storage: MemoryStorage): Config {
  return {
    id,
    peers: [],
    electionTick: 10,
    heartbeatTick: 1,
    storage,
    applied: 0,
    maxSizePerMsg: 1 << 20,
    maxInflightMsgs: 256,
    preVote: false,
    checkQuorum: false,
    rand: () => 0,
  };
}

/** Persists one Ready and returns its messages. */
function drain(node: RawNode, storage: MemoryStorage): Message[] {
  const rd = node.ready();
  if (rd.hardState !== null) storage.setHardState(rd.hardState);
  storage.append(rd.entries);
  node.advance(rd);
  return rd.messages;
}

/** Node 1, leader of 1, 2, 3, with every follower caught up to the leader's no-op. */
function cluster(): { node: RawNode; storage: MemoryStorage } {
  const storage = new MemoryStorage([1n, 2n, 3n]);
  const node = new RawNode(config(1n, storage));
  node.campaign();
  drain(node, storage);
  for (const id of [2n, 3n]) node.step(newMessage({ type: MessageType.VoteResp, from: id, to: 1n, term: 1 }));
  assert.equal(node.status().raftState, StateType.Leader);
  drain(node, storage);
  const last = storage.lastIndex();
  for (const id of [2n, 3n]) node.step(newMessage({ type: MessageType.AppResp, from: id, to: 1n, term: 1, index: last }));
  drain(node, storage);
  return { node, storage };
}

describe('raft: proposals in batches (proposeMany)', () => {
  it('a leader sends each follower one MsgApp with every entry of the batch', () => {
    const { node, storage } = cluster();
    const before = storage.lastIndex();
    node.proposeMany(['a', 'b', 'c', 'd', 'e'].map(enc));
    const apps = drain(node, storage).filter((m) => m.type === MessageType.App);
    assert.deepEqual(apps.map((m) => m.to).sort(), [2n, 3n]);
    for (const m of apps) {
      assert.equal(m.index, before);
      assert.deepEqual(
        m.entries.map((e) => dec(e.data)),
        ['a', 'b', 'c', 'd', 'e'],
      );
      assert.deepEqual(
        m.entries.map((e) => e.index),
        [1, 2, 3, 4, 5].map((i) => before + i),
      );
    }
    // The same writes proposed one by one: a MsgApp per write and per follower.
    node.propose(enc('f'));
    node.propose(enc('g'));
    assert.equal(drain(node, storage).filter((m) => m.type === MessageType.App).length, 4);
  });

  it('one ack per follower commits the whole batch', () => {
    const { node, storage } = cluster();
    node.proposeMany(['x', 'y', 'z'].map(enc));
    drain(node, storage);
    const last = storage.lastIndex();
    node.step(newMessage({ type: MessageType.AppResp, from: 2n, to: 1n, term: 1, index: last }));
    const rd = node.ready();
    assert.deepEqual(
      rd.committedEntries.slice(-3).map((e) => dec(e.data)),
      ['x', 'y', 'z'],
    );
    node.advance(rd);
  });

  it('a follower forwards the batch to the leader as one MsgProp', () => {
    const storage = new MemoryStorage([1n, 2n, 3n]);
    const node = new RawNode({ ...config(2n, storage), forwardProposals: true });
    node.step(newMessage({ type: MessageType.Heartbeat, from: 1n, to: 2n, term: 1 }));
    drain(node, storage);
    node.proposeMany(['p', 'q'].map(enc));
    const props = drain(node, storage).filter((m) => m.type === MessageType.Prop);
    assert.equal(props.length, 1);
    assert.equal(props[0].to, 1n);
    assert.deepEqual(
      props[0].entries.map((e) => dec(e.data)),
      ['p', 'q'],
    );
  });

  it('takeCommitted hands out what an ack commits while a Ready is outstanding, once, and stops at a ConfChange', () => {
    const { node, storage } = cluster();
    node.proposeMany(['a', 'b'].map(enc));
    drain(node, storage);
    const durable = storage.lastIndex();
    // The next batch's Ready is outstanding (its WAL write in flight) when the followers' acks arrive.
    node.proposeMany(['c'].map(enc));
    const rd = node.ready();
    assert.deepEqual(node.takeCommitted(durable), []); // nothing committed yet
    node.step(newMessage({ type: MessageType.AppResp, from: 2n, to: 1n, term: 1, index: durable }));
    assert.deepEqual(
      node.takeCommitted(durable - 1).map((e) => dec(e.data)),
      ['a'],
    ); // bounded by maxIndex
    assert.deepEqual(
      node.takeCommitted(durable).map((e) => dec(e.data)),
      ['b'],
    );
    assert.deepEqual(node.takeCommitted(durable), []); // handed out once
    storage.append(rd.entries);
    node.advance(rd);
    const next = node.ready();
    assert.ok(!next.committedEntries.some((e) => ['a', 'b'].includes(dec(e.data))), 'not handed out again');
    node.advance(next);
    // A ConfChange and what follows it wait for a Ready.
    node.proposeConfChange(enc('cc'));
    node.proposeMany(['d'].map(enc));
    drain(node, storage);
    const last = storage.lastIndex();
    node.proposeMany(['e'].map(enc));
    const rd2 = node.ready();
    node.step(newMessage({ type: MessageType.AppResp, from: 3n, to: 1n, term: 1, index: last }));
    const taken = node.takeCommitted(last).map((e) => dec(e.data));
    assert.ok(!taken.includes('cc') && !taken.includes('d'), `took ${taken.join(',')}`);
    storage.append(rd2.entries);
    node.advance(rd2);
    const rd3 = node.ready();
    assert.deepEqual(
      rd3.committedEntries.map((e) => dec(e.data)).filter((d) => d === 'cc' || d === 'd'),
      ['cc', 'd'],
    );
    node.advance(rd3);
    assert.throws(() => node.takeCommitted(last), /takeCommitted\(\) outside a Ready/);
  });

  it('a leader handing over leadership drops the whole batch and appends nothing', () => {
    const { node, storage } = cluster();
    node.transferLeader(2n);
    drain(node, storage);
    const before = storage.lastIndex();
    assert.throws(() => node.proposeMany(['m', 'n'].map(enc)), ProposalDroppedError);
    drain(node, storage);
    assert.equal(storage.lastIndex(), before);
  });
});
