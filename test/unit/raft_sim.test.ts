// Seeded simulation of whole raft clusters (3 and 5 voters), after TigerBeetle's VOPR. One PRNG
// seed drives everything: message drops, delays (so reorders), partitions, crashes that lose the
// Ready being persisted (unsynced writes), restarts from storage, compaction, proposals and
// leader transfers. Invariants checked throughout:
//   - at most one leader per term;
//   - log matching: two persisted logs agreeing on (index, term) agree on every entry up to it;
//   - state machine safety: every member applies the same entry at each index (a hash chain of
//     the applied sequence is compared per index, across snapshots and restarts);
//   - leader completeness: a new leader holds every entry anyone has applied;
//   - commit durability: a leader's commit index is held durably (in storage) by a quorum of its
//     voters, its own unsynced log not counting (a lone voter, which counts it, never occurs here);
// and at the end, with faults stopped, every member converges to the same applied state and a
// final proposal commits everywhere (liveness).
// Membership changes too: the cluster is bootstrapped with its configuration as the log's first
// entries ("add 1", ... as etcd's RawNode.Bootstrap does), and two spare nodes start with an empty
// configuration. Mid-run the leader adds a spare as a learner, promotes learners and removes
// members (voters, the leader itself included, down to 3 voters), one change at a time. Each
// member applies committed changes before or after advance() (chosen per Ready), and snapshots
// carry the configuration. As etcd's transport does, messages from removed members are dropped.
// "Every member" in the final check means the members of the final configuration.
// A leader writes in parallel with sending, as src/main/node/node.ts does: when
// RawNode.messagesBeforePersist allows it, its messages go out first and its write stays in flight
// for a random number of rounds while it keeps receiving acks and ticking; a crash meanwhile loses
// that unsynced tail (entries and HardState).
// A failure names its seed; replay it with RAFT_SEED=<seed> RAFT_NODES=<n>. RAFT_SIM_SEEDS=<k>
// runs k seeds per cluster size instead of the CI default.
import { strict as assert } from 'node:assert';
import { RawNode } from '../../src/main/raft/rawnode';
import { MemoryStorage } from '../../src/main/raft/memory_storage';
import { copyConfState } from '../../src/main/raft/confchange';
import {
  ConfChange, ConfChangeType, ConfState, EntryType, Message, MessageType, NodeId, ProposalDroppedError, Ready, Snapshot, StateType,
} from '../../src/main/raft/types';
import { bootstrapEntries, decodeConfChange, encodeConfChange } from '../support/confchange_text';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/** mulberry32: small, fast, good enough for fault injection; fully determined by the seed. */
class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** FNV-1a chained over the applied sequence: equal hashes at an index mean equal histories. */
function chain(h: number, index: number, term: number, data: Uint8Array): number {
  let x = h ^ index;
  x = Math.imul(x, 16777619) ^ term;
  for (let i = 0; i < data.length; i++) x = Math.imul(x ^ data[i], 16777619);
  return Math.imul(x, 16777619) >>> 0;
}

interface SimNode {
  id: NodeId;
  storage: MemoryStorage;
  node: RawNode | null; // null while crashed
  /** Bumped on every restart, so late snapshot reports for an old incarnation are ignored. */
  incarnation: number;
  appliedIndex: number;
  appliedHash: number;
  /** The configuration as this member's application applied it (what its snapshots record). */
  conf: ConfState;
  /** A leader's Ready whose messages went out and whose write is in flight (lost on a crash). */
  pending: Ready | null;
}

const spareCount = 2;

interface InFlight {
  m: Message;
  at: number;
  senderIncarnation: number;
}

interface Faults {
  drop: number;
  duplicate: number;
  crash: number;
  crashBeforePersist: number;
  partition: number;
}

class Sim {
  readonly rng: Rng;
  readonly nodes: SimNode[] = [];
  net: InFlight[] = [];
  /** Partition group per node id; messages between groups are dropped. */
  group = new Map<NodeId, number>();
  now = 0;
  faults: Faults;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  // Global observations for the checkers.
  readonly leaderOfTerm = new Map<number, NodeId>();
  readonly hashAt = new Map<number, number>();
  readonly termAt = new Map<number, number>();
  maxApplied = 0;
  proposed = 0;
  readonly stats = {
    crashes: 0, lostReadies: 0, parallelWrites: 0, lostParallelWrites: 0, commitChecks: 0, snapshots: 0, transfers: 0, partitions: 0, restarts: 0, confChanges: 0, confApplied: 0,
  };
  /** Per leader: its term and voters, and the commit index it had when last checked. */
  readonly lastCommitSeen = new Map<NodeId, { key: string; commit: number }>();
  /** Members whose removal committed (some member applied it): their messages are dropped. */
  readonly removed = new Set<NodeId>();
  trace: string[] = [];

  constructor(seed: number, n: number) {
    this.rng = new Rng(seed);
    this.preVote = this.rng.chance(0.5);
    this.checkQuorum = this.rng.chance(0.5);
    // Each seed draws its own fault intensities, from calm to hostile.
    const k = this.rng.next() * 4;
    this.faults = {
      drop: 0.02 + this.rng.next() * 0.2, duplicate: 0.02, crash: 0.001 * k, crashBeforePersist: 0.001 * k, partition: 0.003 * k,
    };
    // Bootstrap: committed ConfChange entries 1..n at term 1 on every initial voter; spares
    // (ids n+1..) start empty. Everyone starts with an empty configuration and builds it by
    // applying the log (or a snapshot).
    const boot = bootstrapEntries(Array.from({ length: n }, (_, i) => BigInt(i + 1)));
    for (let i = 0; i < n + spareCount; i++) {
      const id = BigInt(i + 1);
      const storage = new MemoryStorage([]);
      if (i < n) {
        storage.append(boot);
        storage.setHardState({ term: 1, vote: 0n, commit: n });
      }
      const sn: SimNode = {
        id, storage, node: null, incarnation: 0, appliedIndex: 0, appliedHash: 0, conf: { voters: [], learners: [] }, pending: null,
      };
      this.start(sn);
      this.nodes.push(sn);
      this.group.set(id, 0);
    }
  }

  log(s: string): void {
    this.trace.push(`[${this.now}] ${s}`);
    if (this.trace.length > Number(process.env.RAFT_TRACE ?? 60)) this.trace.shift();
  }

  start(sn: SimNode): void {
    const snap = sn.storage.snapshot();
    sn.appliedIndex = snap.metadata.index;
    sn.appliedHash = snap.data.length > 0 ? Number(dec(snap.data)) : 0;
    sn.conf = copyConfState(snap.metadata);
    sn.incarnation++;
    sn.pending = null;
    const r = new Rng(this.rng.int(2 ** 32));
    sn.node = new RawNode({
      id: sn.id, peers: [], electionTick: 10, heartbeatTick: 2, storage: sn.storage, applied: sn.appliedIndex,
      maxSizePerMsg: 64, maxInflightMsgs: 4, preVote: this.preVote, checkQuorum: this.checkQuorum,
      rand: () => r.next(),
    });
  }

  /**
   * One Ready of one node: persist, send, apply, advance — or crash before persisting. A leader
   * may send first and leave its write in flight (sn.pending), finished in a later round.
   */
  handleReady(sn: SimNode): void {
    const node = sn.node;
    if (node === null) return;
    if (sn.pending !== null) {
      // The write in flight completes after a random number of rounds (or the node crashes first).
      if (!this.rng.chance(0.3)) return;
      const rd = sn.pending;
      sn.pending = null;
      if (this.rng.chance(this.faults.crashBeforePersist * 5)) {
        this.log(`${sn.id} crashes with its parallel write in flight (${rd.entries.length} entries lost)`);
        this.stats.lostParallelWrites++;
        sn.node = null;
        return;
      }
      this.persistApplyAdvance(sn, node, rd, false);
      return;
    }
    if (!node.hasReady()) return;
    const rd = node.ready();
    if (node.messagesBeforePersist(rd)) {
      this.send(sn, rd);
      sn.pending = rd;
      this.stats.parallelWrites++;
      return;
    }
    if (this.rng.chance(this.faults.crashBeforePersist)) {
      this.log(`${sn.id} crashes before persisting a Ready (${rd.entries.length} entries lost)`);
      this.stats.lostReadies++;
      sn.node = null;
      return;
    }
    this.persistApplyAdvance(sn, node, rd, true);
  }

  send(sn: SimNode, rd: Ready): void {
    for (const m of rd.messages) {
      if (m.type !== MessageType.Snap) continue;
      this.stats.snapshots++;
      m.snapshot = this.freshSnapshot(sn);
    }
    for (const m of rd.messages) {
      this.net.push({ m, at: this.now + this.rng.int(3), senderIncarnation: sn.incarnation });
      // Occasionally the network delivers a message twice, later (a retransmission).
      if (this.rng.chance(this.faults.duplicate)) this.net.push({ m, at: this.now + this.rng.int(20), senderIncarnation: sn.incarnation });
    }
  }

  /** Persists rd (then sends its messages when `send`), applies its committed entries, advances. */
  persistApplyAdvance(sn: SimNode, node: RawNode, rd: Ready, send: boolean): void {
    if (rd.snapshot !== null) {
      sn.storage.applySnapshot(rd.snapshot);
      this.applySnapshot(sn, rd.snapshot.metadata.index, Number(dec(rd.snapshot.data)));
      sn.conf = copyConfState(rd.snapshot.metadata);
    }
    if (rd.hardState !== null) sn.storage.setHardState(rd.hardState);
    sn.storage.append(rd.entries);
    if (send) this.send(sn, rd);
    // Committed entries are applied only once durable here (they may be in rd.entries).
    const durable = sn.storage.lastIndex();
    // The driver may apply conf changes while handling the Ready or after advance(): both work.
    const afterAdvance = this.rng.chance(0.5);
    const late: ConfChange[] = [];
    for (const e of rd.committedEntries) {
      assert.equal(e.index, sn.appliedIndex + 1, `${sn.id} applies ${e.index} after ${sn.appliedIndex}`);
      assert.ok(e.index <= durable, `${sn.id} applies ${e.index} above its durable index ${durable}`);
      this.recordApplied(sn, e.index, e.term, chain(sn.appliedHash, e.index, e.term, e.data));
      if (e.type !== EntryType.ConfChange) continue;
      if (afterAdvance) late.push(decodeConfChange(e));
      else this.applyConfChange(sn, decodeConfChange(e));
    }
    node.advance(rd);
    for (const cc of late) this.applyConfChange(sn, cc);
    if (rd.softState !== null && rd.softState.raftState === StateType.Leader) this.checkLeaderCompleteness(sn);
    this.maybeCompact(sn);
  }

  applyConfChange(sn: SimNode, cc: ConfChange): void {
    sn.conf = sn.node!.applyConfChange(cc);
    this.stats.confApplied++;
    if (cc.type === ConfChangeType.RemoveNode && !this.isMember(sn.conf, cc.nodeId)) {
      if (!this.removed.has(cc.nodeId)) this.log(`${cc.nodeId} removed (applied by ${sn.id})`);
      this.removed.add(cc.nodeId);
    }
  }

  isMember(cs: ConfState, id: NodeId): boolean {
    return cs.voters.includes(id) || cs.learners.includes(id);
  }

  /** The leader proposes one membership change: add a spare as learner, promote, or remove. */
  proposeConfChange(): void {
    const ld = this.leader();
    if (ld === null) return;
    const cfg = ld.node!.status().config;
    const options: Array<[string, NodeId]> = [];
    for (const sn of this.nodes) {
      if (!this.isMember(cfg, sn.id) && !this.removed.has(sn.id) && sn.id > BigInt(this.nodes.length - spareCount)) {
        options.push(['add-learner', sn.id]);
      }
    }
    for (const id of cfg.learners) options.push(['add', id], ['remove', id]);
    if (cfg.voters.length > 3) for (const id of cfg.voters) options.push(['remove', id]);
    if (options.length === 0) return;
    const [kind, id] = options[this.rng.int(options.length)];
    try {
      ld.node!.proposeConfChange(encodeConfChange(kind, id));
      this.stats.confChanges++;
      this.log(`${ld.id} proposes ${kind} ${id}`);
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e;
    }
  }

  /**
   * The snapshot to send a follower, built from the current applied state as etcd's server does
   * (createMergedSnapshotMessage): the storage's last snapshot may predate the follower's
   * addition, and a member ignores a snapshot whose configuration does not include it, so
   * sending that one would never catch up a new member.
   */
  freshSnapshot(sn: SimNode): Snapshot {
    const s = sn.storage;
    if (sn.appliedIndex > s.snapshot().metadata.index && sn.appliedIndex <= s.lastIndex()) {
      s.createSnapshot(sn.appliedIndex, enc(String(sn.appliedHash)), sn.conf);
    }
    return s.snapshot();
  }

  applySnapshot(sn: SimNode, index: number, hash: number): void {
    const seen = this.hashAt.get(index);
    assert.ok(seen === undefined || seen === hash, `${sn.id} snapshot at ${index} diverges`);
    sn.appliedIndex = index;
    sn.appliedHash = hash;
  }

  recordApplied(sn: SimNode, index: number, term: number, hash: number): void {
    const seen = this.hashAt.get(index);
    if (seen === undefined) {
      this.hashAt.set(index, hash);
      this.termAt.set(index, term);
    } else {
      assert.equal(hash, seen, `${sn.id} applied a different entry at ${index} (term ${term}, first seen term ${this.termAt.get(index)})`);
    }
    sn.appliedIndex = index;
    sn.appliedHash = hash;
    this.maxApplied = Math.max(this.maxApplied, index);
  }

  /** Keeps logs short enough that lagging followers need snapshots. */
  maybeCompact(sn: SimNode): void {
    const s = sn.storage;
    if (sn.appliedIndex - s.firstIndex() < 30 || !this.rng.chance(0.2)) return;
    const at = sn.appliedIndex;
    if (at > s.lastIndex() || at <= s.snapshot().metadata.index) return;
    s.createSnapshot(at, enc(String(sn.appliedHash)), sn.conf);
    s.compact(at - this.rng.int(5));
  }

  checkLeaderCompleteness(sn: SimNode): void {
    const r = sn.node!.raft;
    const first = r.raftLog.firstIndex();
    for (let i = Math.max(first, 1); i <= this.maxApplied; i++) {
      const t = this.termAt.get(i);
      if (t === undefined) continue;
      assert.equal(r.raftLog.termOrZero(i), t, `new leader ${sn.id} (term ${r.term}) lacks committed entry ${i}`);
    }
  }

  /**
   * Every leader's commit index is durable on a quorum of its voters (storage, not raft's memory).
   * Checked when it advanced under an unchanged leader, term and configuration: an index committed
   * under an earlier configuration stays committed without a quorum of the new one holding it.
   */
  checkCommitDurable(): void {
    for (const sn of this.nodes) {
      if (sn.node === null || sn.node.status().raftState !== StateType.Leader) continue;
      const r = sn.node.raft;
      const c = r.raftLog.committed;
      const voters = r.trk.voters.incoming.sorted();
      const key = `${r.term}/${voters.join(',')}`;
      const prev = this.lastCommitSeen.get(sn.id);
      this.lastCommitSeen.set(sn.id, { key, commit: c });
      if (prev === undefined || prev.key !== key || prev.commit >= c) continue;
      const term = r.raftLog.termOrZero(c);
      let holding = 0;
      for (const id of voters) {
        const s = this.nodes[Number(id) - 1].storage;
        if (s.snapshot().metadata.index >= c || (c >= s.firstIndex() && c <= s.lastIndex() && s.term(c) === term)) holding++;
      }
      this.stats.commitChecks++;
      assert.ok(holding * 2 > voters.length,
        `leader ${sn.id} (term ${r.term}) committed ${c} but only ${holding} of ${voters.length} voters hold it durably`);
    }
  }

  checkOneLeaderPerTerm(): void {
    for (const sn of this.nodes) {
      if (sn.node === null) continue;
      const st = sn.node.status();
      if (st.raftState !== StateType.Leader) continue;
      const prev = this.leaderOfTerm.get(st.term);
      assert.ok(prev === undefined || prev === sn.id, `two leaders in term ${st.term}: ${prev} and ${sn.id}`);
      this.leaderOfTerm.set(st.term, sn.id);
    }
  }

  /** Log matching over what each member has persisted. */
  checkLogMatching(): void {
    const logs = this.nodes.map((sn) => {
      const s = sn.storage;
      return s.lastIndex() >= s.firstIndex() ? s.entries(s.firstIndex(), s.lastIndex() + 1, Infinity) : [];
    });
    for (let a = 0; a < logs.length; a++) {
      for (let b = a + 1; b < logs.length; b++) {
        const byIndex = new Map(logs[b].map((e) => [e.index, e]));
        let matched = false; // walking down from the top: once (index, term) agree, all below must
        for (let k = logs[a].length - 1; k >= 0; k--) {
          const ea = logs[a][k];
          const eb = byIndex.get(ea.index);
          if (eb === undefined) continue;
          if (ea.term === eb.term) {
            matched = true;
            assert.equal(dec(ea.data), dec(eb.data), `logs of ${a + 1} and ${b + 1} differ at ${ea.index}`);
          } else {
            assert.ok(!matched, `log matching violated between ${a + 1} and ${b + 1} at ${ea.index}`);
          }
        }
      }
    }
  }

  deliver(): void {
    const due = this.net.filter((f) => f.at <= this.now);
    this.net = this.net.filter((f) => f.at > this.now);
    // Random order among due messages: reordering beyond what the delays give.
    for (let i = due.length - 1; i > 0; i--) {
      const j = this.rng.int(i + 1);
      [due[i], due[j]] = [due[j], due[i]];
    }
    for (const f of due) this.deliverOne(f);
  }

  deliverOne(f: InFlight): void {
    const to = this.nodes[Number(f.m.to) - 1];
    const from = this.nodes[Number(f.m.from) - 1];
    const lost = to.node === null || this.group.get(f.m.from) !== this.group.get(f.m.to) || this.removed.has(f.m.from) ||
      this.rng.chance(this.faults.drop);
    if (!lost) to.node!.step(f.m);
    if (f.m.type === MessageType.Snap && from.node !== null && from.incarnation === f.senderIncarnation) {
      from.node.reportSnapshot(to.id, lost);
    } else if (lost && from.node !== null && from.incarnation === f.senderIncarnation && this.rng.chance(0.2)) {
      from.node.reportUnreachable(to.id);
    }
  }

  injectFaults(): void {
    const f = this.faults;
    if (this.rng.chance(f.partition)) {
      const heal = this.rng.chance(0.5);
      for (const sn of this.nodes) this.group.set(sn.id, heal ? 0 : this.rng.int(2));
      this.stats.partitions++;
      this.log(heal ? 'partition healed' : `partition ${this.nodes.map((sn) => this.group.get(sn.id)).join('')}`);
    }
    for (const sn of this.nodes) {
      if (sn.node !== null && this.rng.chance(f.crash)) {
        this.log(`${sn.id} crashes${sn.pending !== null ? ` with its parallel write in flight (${sn.pending.entries.length} entries lost)` : ''}`);
        this.stats.crashes++;
        if (sn.pending !== null) this.stats.lostParallelWrites++;
        sn.node = null;
        sn.pending = null;
      } else if (sn.node === null && this.rng.chance(0.02)) {
        this.log(`${sn.id} restarts`);
        this.stats.restarts++;
        this.start(sn);
      }
    }
  }

  leader(): SimNode | null {
    let best: SimNode | null = null;
    for (const sn of this.nodes) {
      if (sn.node === null || sn.node.status().raftState !== StateType.Leader) continue;
      if (best === null || sn.node.status().term > best.node!.status().term) best = sn;
    }
    return best;
  }

  propose(): void {
    const ld = this.leader();
    if (ld === null) return;
    try {
      ld.node!.propose(enc(`p${this.proposed}`));
      this.proposed++;
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e;
    }
  }

  step(faulty: boolean): void {
    this.now++;
    if (faulty) this.injectFaults();
    if (this.rng.chance(0.3)) this.propose();
    if (faulty && this.rng.chance(0.004)) this.proposeConfChange();
    if (faulty && this.rng.chance(0.002)) {
      const ld = this.leader();
      const to = BigInt(1 + this.rng.int(this.nodes.length));
      if (ld !== null) {
        this.log(`transfer leadership ${ld.id} -> ${to}`);
        this.stats.transfers++;
        ld.node!.transferLeader(to);
      }
    }
    for (const sn of this.nodes) if (sn.node !== null && this.rng.chance(0.95)) sn.node.tick();
    for (let round = 0; round < 3; round++) {
      for (const sn of this.nodes) this.handleReady(sn);
      this.deliver();
      this.checkOneLeaderPerTerm();
      this.checkCommitDurable();
    }
    if (this.now % 50 === 0) this.checkLogMatching();
  }

  describeNodes(): string {
    return this.nodes.map((sn) => {
      if (sn.node === null) return `${sn.id}: crashed`;
      const st = sn.node.status();
      return `${sn.id}: ${StateType[st.raftState]} term=${st.term} lead=${st.lead} commit=${st.commit} applied=${st.applied} ` +
        `last=${st.lastIndex} voters=${st.config.voters} learners=${st.config.learners} snap=${sn.storage.snapshot().metadata.index}`;
    }).join('\n');
  }

    /** The members of the current leader's configuration (everyone while there is no leader). */
  members(): SimNode[] {
    const ld = this.leader();
    if (ld === null) return this.nodes;
    const cfg = ld.node!.status().config;
    return this.nodes.filter((sn) => this.isMember(cfg, sn.id));
  }

  /** Stops faults, restarts everyone, and waits until all members applied the same final entry. */
  converge(): void {
    this.faults = { drop: 0, duplicate: 0, crash: 0, crashBeforePersist: 0, partition: 0 };
    for (const sn of this.nodes) {
      this.group.set(sn.id, 0);
      if (sn.node === null) this.start(sn);
    }
    const deadline = this.now + 3000;
    const target = `final-${this.proposed}`;
    let finalIndex = 0;
    while (this.now < deadline) {
      this.now++;
      for (const sn of this.nodes) sn.node!.tick();
      for (const sn of this.nodes) this.handleReady(sn);
      this.deliver();
      this.checkOneLeaderPerTerm();
      const ld = this.leader();
      if (finalIndex === 0 && ld !== null) {
        try {
          ld.node!.propose(enc(target));
          finalIndex = ld.node!.status().lastIndex;
        } catch (e) {
          if (!(e instanceof ProposalDroppedError)) throw e;
        }
      }
      // A leader change may have dropped the final entry: propose it again at the new leader.
      if (finalIndex > 0 && this.termAt.has(finalIndex) === false && ld !== null && ld.node!.status().lastIndex < finalIndex) finalIndex = 0;
      const quiet = this.net.every((f) => this.removed.has(f.m.from));
      if (finalIndex > 0 && this.members().every((sn) => sn.appliedIndex >= finalIndex) && quiet) break;
    }
    const members = this.members();
    assert.ok(finalIndex > 0 && members.every((sn) => sn.appliedIndex >= finalIndex),
      `no convergence: applied ${this.nodes.map((sn) => sn.appliedIndex).join(',')}, final index ${finalIndex}, ` +
      `members ${members.map((sn) => sn.id).join(',')}\n${this.describeNodes()}`);
    const top = Math.min(...members.map((sn) => sn.appliedIndex));
    const hashes = members.map((sn) => (sn.appliedIndex === top ? sn.appliedHash : this.hashAt.get(top)));
    assert.ok(hashes.every((h) => h === hashes[0]), 'applied states differ');
    this.checkLogMatching();
  }
}

function runSim(seed: number, n: number, steps: number): Sim {
  const sim = new Sim(seed, n);
  try {
    for (let i = 0; i < steps; i++) sim.step(true);
    sim.converge();
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const replay = `RAFT_SEED=${seed} RAFT_NODES=${n}`;
    throw new Error(`raft sim failed: ${replay} at t=${sim.now}: ${msg}\nlast events:\n${sim.trace.join('\n')}`, { cause: e });
  }
  return sim;
}

describe('raft: seeded cluster simulation', function () {
  this.timeout(120_000);
  const steps = Number(process.env.RAFT_SIM_STEPS ?? 3000);
  if (process.env.RAFT_SEED !== undefined) {
    const seed = Number(process.env.RAFT_SEED);
    const n = Number(process.env.RAFT_NODES ?? 3);
    it(`replays seed ${seed} with ${n} nodes`, () => {
      const sim = runSim(seed, n, steps);
      console.log(`  seed ${seed}: ${sim.maxApplied} entries applied, ${sim.leaderOfTerm.size} terms with a leader, ` +
        `preVote=${sim.preVote} checkQuorum=${sim.checkQuorum} ${JSON.stringify(sim.stats)}`);
    });
    return;
  }
  const count = Number(process.env.RAFT_SIM_SEEDS ?? 40);
  for (const n of [3, 5]) {
    it(`${n} nodes, ${count} seeds x ${steps} steps`, () => {
      let applied = 0;
      let terms = 0;
      let changes = 0;
      let removals = 0;
      let parallel = 0;
      let lostParallel = 0;
      let commitChecks = 0;
      for (let seed = 1; seed <= count; seed++) {
        const sim = runSim(seed * 7919 + n, n, steps);
        applied += sim.maxApplied;
        terms += sim.leaderOfTerm.size;
        changes += sim.stats.confChanges;
        removals += sim.removed.size;
        parallel += sim.stats.parallelWrites;
        lostParallel += sim.stats.lostParallelWrites;
        commitChecks += sim.stats.commitChecks;
      }
      // The simulation must actually exercise replication and elections, not idle.
      assert.ok(applied > count * 50, `only ${applied} entries applied over ${count} seeds`);
      assert.ok(terms > count * 2, `only ${terms} leader terms over ${count} seeds`);
      // ...and membership changes: proposed, and carried through to removals.
      assert.ok(changes > count && removals > count / 4, `only ${changes} conf changes, ${removals} removals over ${count} seeds`);
      // ...and the leader's parallel write, including crashes that lose it.
      assert.ok(parallel > count * 100 && lostParallel > count / 4, `only ${parallel} parallel writes, ${lostParallel} lost`);
      assert.ok(commitChecks > count * 50, `only ${commitChecks} commit durability checks`);
      console.log(`    ${n} nodes: ${applied} entries applied, ${terms} leader terms, ${changes} conf changes, ${removals} removals, ` +
        `${parallel} leader writes in parallel with sends (${lostParallel} lost in a crash), ${commitChecks} commits checked durable`);
    });
  }
});

