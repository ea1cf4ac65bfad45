// Checks the single-voter path of the raft core through RawNode, driving it the way the server's
// driver does (persist hardState+entries to MemoryStorage, send, apply, advance): campaign makes
// the only voter leader at once with a committed no-op; proposals commit in the same Ready;
// restart from the storage keeps term, vote and commit; readIndex answers immediately.
import { strict as assert } from 'node:assert';
import { RawNode } from '../../src/main/raft/rawnode';
import { MemoryStorage } from '../../src/main/raft/memory_storage';
import { Config, Entry, ProposalDroppedError, Ready, StateType } from '../../src/main/raft/types';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

function config(storage: MemoryStorage, applied = 0): Config {
  return {
    id: 1n, peers: [1n], electionTick: 10, heartbeatTick: 1, storage, applied,
    maxSizePerMsg: 1 << 20, maxInflightMsgs: 256, preVote: true, checkQuorum: true, rand: () => 0.5,
  };
}

/** One driver iteration: persist, (no peers to send to), apply, advance. Returns the Ready. */
function handle(node: RawNode, storage: MemoryStorage, applied: Entry[]): Ready {
  assert.ok(node.hasReady());
  const rd = node.ready();
  if (rd.hardState !== null) storage.setHardState(rd.hardState);
  storage.append(rd.entries);
  assert.equal(rd.messages.length, 0, 'a single voter sends nothing');
  applied.push(...rd.committedEntries);
  node.advance(rd);
  return rd;
}

describe('raft: single voter', () => {
  it('becomes leader at once on campaign, with a committed no-op', () => {
    const storage = new MemoryStorage([1n]);
    const node = new RawNode(config(storage));
    assert.equal(node.status().raftState, StateType.Follower);
    node.campaign();
    const st = node.status();
    assert.equal(st.raftState, StateType.Leader);
    assert.equal(st.term, 1);
    assert.equal(st.lead, 1n);
    const rd = handle(node, storage, []);
    assert.deepEqual(rd.softState, { lead: 1n, raftState: StateType.Leader });
    assert.deepEqual(rd.hardState, { term: 1, vote: 1n, commit: 1 });
    assert.equal(rd.entries.length, 1);
    assert.deepEqual([rd.entries[0].term, rd.entries[0].index, rd.entries[0].data.length], [1, 1, 0]);
    assert.deepEqual(rd.committedEntries.map((e) => e.index), [1]);
    assert.ok(rd.mustSync);
    assert.ok(!node.hasReady());
    assert.equal(node.status().applied, 1);
  });

  it('commits and hands out each proposal in the next Ready', () => {
    const storage = new MemoryStorage([1n]);
    const node = new RawNode(config(storage));
    const applied: Entry[] = [];
    node.campaign();
    handle(node, storage, applied);
    for (let i = 0; i < 5; i++) {
      node.propose(enc(`v${i}`));
      const rd = handle(node, storage, applied);
      assert.deepEqual(rd.entries.map((e) => e.index), [i + 2]);
      assert.deepEqual(rd.committedEntries.map((e) => dec(e.data)), [`v${i}`]);
      assert.deepEqual(rd.hardState, { term: 1, vote: 1n, commit: i + 2 });
      assert.equal(rd.softState, null);
    }
    // Several proposals before one Ready come out together, in order.
    node.propose(enc('a'));
    node.propose(enc('b'));
    const rd = handle(node, storage, applied);
    assert.deepEqual(rd.committedEntries.map((e) => dec(e.data)), ['a', 'b']);
    assert.deepEqual(applied.map((e) => e.index), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.equal(storage.lastIndex(), 8);
    const st = node.status();
    assert.deepEqual([st.commit, st.applied, st.lastIndex], [8, 8, 8]);
  });

  it('drops proposals until it is leader', () => {
    const storage = new MemoryStorage([1n]);
    const node = new RawNode(config(storage));
    assert.throws(() => node.propose(enc('x')), ProposalDroppedError);
  });

  it('campaigns by itself after the election timeout', () => {
    const storage = new MemoryStorage([1n]);
    const node = new RawNode(config(storage));
    // rand 0.5 with electionTick 10: randomized timeout 15 ticks.
    for (let i = 0; i < 14; i++) node.tick();
    assert.equal(node.status().raftState, StateType.Follower);
    node.tick();
    assert.equal(node.status().raftState, StateType.Leader);
    // The leader keeps ticking (heartbeats, check-quorum) without losing leadership.
    for (let i = 0; i < 100; i++) node.tick();
    assert.equal(node.status().raftState, StateType.Leader);
    assert.equal(node.status().term, 1);
  });

  it('restarts from storage with term, vote and commit, and re-applies from `applied`', () => {
    const storage = new MemoryStorage([1n]);
    let node = new RawNode(config(storage));
    node.campaign();
    handle(node, storage, []);
    node.propose(enc('x'));
    node.propose(enc('y'));
    handle(node, storage, []);

    // Restart with nothing applied: all committed entries are handed out again.
    node = new RawNode(config(storage));
    let st = node.status();
    assert.deepEqual([st.term, st.vote, st.commit, st.lastIndex, st.raftState], [1, 1n, 3, 3, StateType.Follower]);
    const applied: Entry[] = [];
    const rd = handle(node, storage, applied);
    assert.equal(rd.hardState, null, 'hardState unchanged since storage');
    assert.deepEqual(applied.map((e) => e.index), [1, 2, 3]);

    // Restart having applied 2: only 3 is handed out. Campaign bumps the term.
    node = new RawNode(config(storage, 2));
    const applied2: Entry[] = [];
    handle(node, storage, applied2);
    assert.deepEqual(applied2.map((e) => dec(e.data)), ['y']);
    node.campaign();
    st = node.status();
    assert.deepEqual([st.term, st.raftState], [2, StateType.Leader]);
    const rd2 = handle(node, storage, applied2);
    assert.deepEqual(rd2.hardState, { term: 2, vote: 1n, commit: 4 });
    node.propose(enc('z'));
    handle(node, storage, applied2);
    assert.deepEqual(applied2.map((e) => `${e.term}/${e.index}`), ['1/3', '2/4', '2/5']);
  });

  it('answers readIndex immediately with the commit index', () => {
    const storage = new MemoryStorage([1n]);
    const node = new RawNode(config(storage));
    node.campaign();
    handle(node, storage, []);
    node.propose(enc('x'));
    node.readIndex(enc('req-1'));
    const rd = handle(node, storage, []);
    assert.equal(rd.readStates.length, 1);
    assert.equal(rd.readStates[0].index, 2);
    assert.equal(dec(rd.readStates[0].requestCtx), 'req-1');
    assert.ok(!node.hasReady());
    node.readIndex(enc('req-2'));
    assert.ok(node.hasReady());
    const rd2 = handle(node, storage, []);
    assert.deepEqual(rd2.readStates.map((r) => [r.index, dec(r.requestCtx)]), [[2, 'req-2']]);
  });

  it('drops readIndex while not leader', () => {
    const storage = new MemoryStorage([1n]);
    const node = new RawNode(config(storage));
    node.readIndex(enc('r'));
    assert.ok(!node.hasReady());
  });

  it('refuses ready() twice without advance()', () => {
    const storage = new MemoryStorage([1n]);
    const node = new RawNode(config(storage));
    node.campaign();
    node.ready();
    assert.throws(() => node.ready(), /advance/);
  });

  it('also works without pre-vote and check-quorum', () => {
    const storage = new MemoryStorage([1n]);
    const node = new RawNode({ ...config(storage), preVote: false, checkQuorum: false });
    node.campaign();
    assert.equal(node.status().raftState, StateType.Leader);
    const rd = handle(node, storage, []);
    assert.deepEqual(rd.hardState, { term: 1, vote: 1n, commit: 1 });
  });
});

describe('raft: MemoryStorage', () => {
  const ent = (index: number, term: number): Entry => ({ index, term, type: 0, data: enc(`${term}/${index}`) });

  it('appends, overwrites a conflicting suffix, compacts and snapshots', () => {
    const s = new MemoryStorage([1n, 2n]);
    assert.deepEqual([s.firstIndex(), s.lastIndex()], [1, 0]);
    s.append([ent(1, 1), ent(2, 1), ent(3, 1)]);
    s.append([ent(2, 2)]);
    assert.deepEqual([s.lastIndex(), s.term(2)], [2, 2]);
    s.append([ent(3, 2), ent(4, 2)]);
    s.compact(2);
    assert.deepEqual([s.firstIndex(), s.lastIndex(), s.term(2)], [3, 4, 2]);
    assert.throws(() => s.term(1));
    assert.throws(() => s.entries(2, 4, 100));
    assert.deepEqual(s.entries(3, 5, 0).map((e) => e.index), [3], 'at least one entry');
    const snap = s.createSnapshot(3, enc('state'));
    assert.deepEqual(snap.metadata, { index: 3, term: 2, voters: [1n, 2n], learners: [] });
    const t = new MemoryStorage([]);
    t.applySnapshot(snap);
    assert.deepEqual([t.firstIndex(), t.lastIndex(), t.term(3)], [4, 3, 2]);
    assert.deepEqual(t.initialState().voters, [1n, 2n]);
  });
});
