// Transcript tests of the raft core, after etcd-io/raft's datadriven interaction tests. Each file
// in test/raft/testdata/*.txt is a sequence of blocks:
//
//   command arg1 arg2 key=value
//   ----
//   expected output (up to a blank line)
//
// The commands drive a cluster of RawNodes over MemoryStorage the way the server's driver does
// (persist, send, apply, advance) with an explicit message queue, so every message and Ready is
// visible. Randomness is fixed (rand = 0: election timeout = electionTick). Set RAFT_REWRITE=1 to
// rewrite the expected output from the actual one (then review the diff).
//
// Commands:
//   add-nodes N [pre-vote=true] [check-quorum=true] [max-inflight=N] [max-size=N]
//             [forward-proposals=true] [voters=ID,ID...] [learners=ID,...] [bootstrap=true]
//     adds N nodes numbered after the existing ones. Their configuration is voters/learners when
//     given (`voters=()` and `learners=()`: empty, a member joining an existing cluster), else
//     the new nodes themselves as voters. Options not given keep their previous value.
//     bootstrap=true writes the configuration as the log's first entries instead (committed
//     ConfChange entries "add 1", "add 2", ... at term 1, applied at once, like etcd's
//     RawNode.Bootstrap), so a member joining later learns it by replaying the log.
//   campaign ID | propose ID DATA | read-index ID CTX | transfer-leader ID TO
//   propose-conf-change ID add|add-learner|remove|update NODE
//     the change travels as the entry's data in the raft tests' text encoding ("add 4",
//     test/support/confchange_text.ts);
//     when a node applies a committed ConfChange entry the runner decodes it, calls
//     applyConfChange and prints `INFO <node> switched to configuration voters=(..) learners=(..)`
//   config [ID...]   each node's applied configuration and whether it is a learner
//   tick-election ID | tick-heartbeat ID | tick ID N
//   process-ready ID... | deliver-msgs [ID...] [drop=ID] | stabilize [ID...]
//   send-ready ID | persist-ready ID
//     the leader's parallel write, as src/main/node/node.ts does it: send-ready takes the Ready and
//     queues its messages BEFORE persisting anything (the write is in flight; the node keeps
//     stepping messages), persist-ready then persists it, applies its committed entries and calls
//     advance(); a crash in between loses the Ready's entries and hardState.
//   isolate ID | heal | compact ID INDEX | crash ID | restart ID
//   raft-state | raft-log ID | status ID | applied ID
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RawNode } from '../../src/main/raft/rawnode';
import { MemoryStorage } from '../../src/main/raft/memory_storage';
import { copyConfState, describeConfState, simpleChange } from '../../src/main/raft/confchange';
import {
  ConfState, Entry, EntryType, Message, NodeId, ProposalDroppedError, Ready, StateType,
} from '../../src/main/raft/types';
import { describeEntry, describeMessage, sortIds } from '../../src/main/raft/util';
import { bootstrapEntries, decodeConfChange, encodeConfChange } from '../support/confchange_text';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const testdata = path.join(__dirname, '../../../test/raft/testdata');

interface Member {
  id: NodeId;
  storage: MemoryStorage;
  node: RawNode | null; // null while crashed
  applied: string[];
  appliedIndex: number;
  /** Configurations the application applied, by index (for snapshots); first = the initial one. */
  confs: Array<{ index: number; cs: ConfState }>;
  /** A Ready whose messages went out (send-ready) and which is not yet persisted (persist-ready). */
  pending: Ready | null;
}

/** `voters=1,2,3` or `voters=()` / `voters=` (empty). */
function parseIds(v: string): NodeId[] {
  const t = v.replace(/[()]/g, '');
  return t === '' ? [] : t.split(',').map((x) => BigInt(x));
}

interface Options {
  preVote: boolean;
  checkQuorum: boolean;
  maxInflight: number;
  maxSize: number;
  forwardProposals: boolean;
}

class Env {
  readonly members: Member[] = [];
  queue: Message[] = [];
  readonly isolated = new Set<NodeId>();
  opts: Options = { preVote: false, checkQuorum: false, maxInflight: 256, maxSize: 1 << 20, forwardProposals: false };
  out: string[] = [];

  newNode(m: Member): RawNode {
    return new RawNode({
      id: m.id, peers: [], electionTick: 10, heartbeatTick: 1, storage: m.storage, applied: m.appliedIndex,
      maxSizePerMsg: this.opts.maxSize, maxInflightMsgs: this.opts.maxInflight,
      preVote: this.opts.preVote, checkQuorum: this.opts.checkQuorum, rand: () => 0,
      forwardProposals: this.opts.forwardProposals,
    });
  }

  get(id: string): Member {
    const m = this.members.find((x) => x.id === BigInt(id));
    assert.ok(m, `no node ${id}`);
    return m;
  }

  node(id: string): RawNode {
    const n = this.get(id).node;
    assert.ok(n, `node ${id} is crashed`);
    return n;
  }

  processReady(m: Member): boolean {
    const n = m.node;
    if (n === null || m.pending !== null || !n.hasReady()) return false;
    const rd = n.ready();
    this.out.push(`> ${m.id} handling Ready`);
    this.printReady(rd);
    this.persist(m, n, rd, true);
    return true;
  }

  /** send-ready: the messages go out now; persisting waits for persist-ready. */
  sendReady(m: Member): void {
    const n = m.node;
    assert.ok(n !== null && m.pending === null, `node ${m.id} is crashed or has a Ready pending`);
    if (!n.hasReady()) {
      this.out.push('no Ready');
      return;
    }
    const rd = n.ready();
    this.out.push(`> ${m.id} handling Ready: sending before persisting`);
    this.printReady(rd);
    this.queue.push(...rd.messages);
    m.pending = rd;
  }

  persistReady(m: Member): void {
    const n = m.node;
    assert.ok(n !== null && m.pending !== null, `node ${m.id} is crashed or has no Ready pending`);
    const rd = m.pending;
    m.pending = null;
    this.out.push(`> ${m.id} persisted its Ready (advance)`);
    this.persist(m, n, rd, false);
  }

  /** Persists rd (queueing its messages after that when `send`), applies, advances. */
  persist(m: Member, n: RawNode, rd: Ready, send: boolean): void {
    if (rd.snapshot !== null) {
      m.storage.applySnapshot(rd.snapshot);
      m.applied = JSON.parse(dec(rd.snapshot.data)) as string[];
      m.appliedIndex = rd.snapshot.metadata.index;
      const md = rd.snapshot.metadata;
      m.confs = [{ index: md.index, cs: copyConfState(md) }];
    }
    if (rd.hardState !== null) m.storage.setHardState(rd.hardState);
    m.storage.append(rd.entries);
    if (send) this.queue.push(...rd.messages);
    for (const e of rd.committedEntries) {
      if (e.data.length > 0) m.applied.push(dec(e.data));
      m.appliedIndex = e.index;
      if (e.type === EntryType.ConfChange) this.applyConfChange(m, n, e);
    }
    n.advance(rd);
  }

  applyConfChange(m: Member, n: RawNode, e: Entry): void {
    const cc = decodeConfChange(e);
    // Raft applies simpleChange to its current configuration; the same call tells why it refused.
    const { refused } = simpleChange(n.status().config, cc);
    const cs = n.applyConfChange(cc);
    m.confs.push({ index: e.index, cs });
    if (refused !== null) this.out.push(`INFO ${m.id} refused conf change ${JSON.stringify(dec(e.data))}: ${refused}`);
    else this.out.push(`INFO ${m.id} switched to configuration ${describeConfState(cs)}`);
  }

  /** Writes the configuration as committed ConfChange entries 1..n and applies them at once. */
  bootstrap(m: Member, voters: NodeId[], learners: NodeId[]): void {
    const ents = bootstrapEntries(voters, learners);
    m.storage.append(ents);
    m.storage.setHardState({ term: 1, vote: 0n, commit: ents.length });
    m.appliedIndex = ents.length;
    const n = this.newNode(m);
    for (const e of ents) {
      m.confs.push({ index: e.index, cs: n.applyConfChange(decodeConfChange(e)) });
      m.applied.push(dec(e.data));
    }
    m.node = n;
  }

  /** The configuration the application had applied at `index`. */
  confAt(m: Member, index: number): ConfState {
    let cs = m.confs[0].cs;
    for (const c of m.confs) if (c.index <= index) cs = c.cs;
    return cs;
  }

  printReady(rd: Ready): void {
    const o = this.out;
    o.push(`  Ready MustSync=${rd.mustSync}:`);
    if (rd.softState !== null) o.push(`  Lead:${rd.softState.lead} State:State${StateType[rd.softState.raftState]}`);
    if (rd.hardState !== null) o.push(`  HardState Term:${rd.hardState.term} Vote:${rd.hardState.vote} Commit:${rd.hardState.commit}`);
    if (rd.entries.length > 0) o.push('  Entries:', ...rd.entries.map((e) => `  ${describeEntry(e)}`));
    if (rd.snapshot !== null) {
      const md = rd.snapshot.metadata;
      const l = md.learners.length > 0 ? ` Learners:[${md.learners.join(' ')}]` : '';
      o.push(`  Snapshot Index:${md.index} Term:${md.term} Voters:[${md.voters.join(' ')}]${l}`);
    }
    if (rd.committedEntries.length > 0) {
      o.push('  CommittedEntries:', ...rd.committedEntries.map((e) => `  ${describeEntry(e)}`));
    }
    if (rd.messages.length > 0) o.push('  Messages:', ...rd.messages.map((m) => `  ${describeMessage(m)}`));
    for (const rs of rd.readStates) o.push(`  ReadState Index:${rs.index} Ctx:${JSON.stringify(dec(rs.requestCtx))}`);
  }

  /** Delivers queued messages addressed to `ids` (all when empty); drop=ID discards those to ID. */
  deliver(ids: NodeId[], drop: NodeId | null): boolean {
    let any = false;
    for (const m of this.members) {
      if (ids.length > 0 && !ids.includes(m.id)) continue;
      const msgs = this.queue.filter((x) => x.to === m.id);
      if (msgs.length === 0) continue;
      this.queue = this.queue.filter((x) => x.to !== m.id);
      any = true;
      this.out.push(`> ${m.id} receiving messages`);
      for (const msg of msgs) {
        const cut = this.isolated.has(msg.from) || this.isolated.has(msg.to);
        if (drop === m.id || cut || m.node === null) {
          this.out.push(`  ${describeMessage(msg)} DROPPED`);
          continue;
        }
        this.out.push(`  ${describeMessage(msg)}`);
        m.node.step(msg);
      }
    }
    return any;
  }

  stabilize(ids: NodeId[]): void {
    const sel = (): Member[] => this.members.filter((m) => ids.length === 0 || ids.includes(m.id));
    for (let round = 0; round < 1000; round++) {
      let any = false;
      for (const m of sel()) any = this.processReady(m) || any;
      any = this.deliver(sel().map((m) => m.id), null) || any;
      if (!any) return;
    }
    throw new Error('stabilize did not converge');
  }

  raftState(): void {
    for (const m of this.members) {
      if (m.node === null) {
        this.out.push(`${m.id}: crashed`);
        continue;
      }
      const st = m.node.status();
      this.out.push(`${m.id}: State${StateType[st.raftState]} Term:${st.term} Lead:${st.lead} Commit:${st.commit}`);
    }
  }

  run(cmd: string, args: string[], kv: Map<string, string>): void {
    const ids = args.filter((a) => /^\d+$/.test(a)).map((a) => BigInt(a));
    switch (cmd) {
      case 'add-nodes': {
        const bool = (k: string, prev: boolean): boolean => (kv.has(k) ? kv.get(k) === 'true' : prev);
        const o = this.opts;
        this.opts = {
          preVote: bool('pre-vote', o.preVote), checkQuorum: bool('check-quorum', o.checkQuorum),
          maxInflight: Number(kv.get('max-inflight') ?? o.maxInflight), maxSize: Number(kv.get('max-size') ?? o.maxSize),
          forwardProposals: bool('forward-proposals', o.forwardProposals),
        };
        const n = Number(args[0]);
        const base = this.members.length;
        const ids = Array.from({ length: n }, (_, i) => BigInt(base + i + 1));
        const voters = kv.has('voters') ? parseIds(kv.get('voters')!) : ids;
        const learners = kv.has('learners') ? parseIds(kv.get('learners')!) : [];
        const boot = kv.get('bootstrap') === 'true';
        for (const id of ids) {
          const m: Member = {
            id, storage: boot ? new MemoryStorage([]) : new MemoryStorage(voters, learners), node: null, applied: [], pending: null,
            appliedIndex: 0, confs: [{ index: 0, cs: boot ? { voters: [], learners: [] } : { voters: sortIds(voters), learners: sortIds(learners) } }],
          };
          if (boot) this.bootstrap(m, voters, learners);
          else m.node = this.newNode(m);
          this.members.push(m);
        }
        this.out.push('ok');
        return;
      }
      case 'propose-conf-change':
        try {
          this.node(args[0]).proposeConfChange(encodeConfChange(args[1], args[2]));
        } catch (e) {
          if (!(e instanceof ProposalDroppedError)) throw e;
          this.out.push(`error: ${e.message}`);
        }
        return;
      case 'config':
        for (const m of this.members) {
          if (ids.length > 0 && !ids.includes(m.id)) continue;
          if (m.node === null) {
            this.out.push(`${m.id}: crashed`);
            continue;
          }
          const st = m.node.status();
          this.out.push(`${m.id}: ${describeConfState(st.config)}${st.isLearner ? ' (learner)' : ''}`);
        }
        return;
      case 'campaign': return this.node(args[0]).campaign();
      case 'propose':
        try {
          this.node(args[0]).propose(enc(args[1]));
        } catch (e) {
          if (!(e instanceof ProposalDroppedError)) throw e;
          this.out.push('dropped');
        }
        return;
      case 'read-index': return this.node(args[0]).readIndex(enc(args[1]));
      case 'transfer-leader': return this.node(args[0]).transferLeader(BigInt(args[1]));
      case 'tick-election': return this.tick(args[0], 10);
      case 'tick-heartbeat': return this.tick(args[0], 1);
      case 'tick': return this.tick(args[0], Number(args[1]));
      case 'process-ready':
        for (const m of this.members) if (ids.includes(m.id)) this.processReady(m);
        return;
      case 'send-ready': return this.sendReady(this.get(args[0]));
      case 'persist-ready': return this.persistReady(this.get(args[0]));
      case 'deliver-msgs': {
        const drop = kv.has('drop') ? BigInt(kv.get('drop')!) : null;
        this.deliver(ids, drop);
        return;
      }
      case 'stabilize': return this.stabilize(ids);
      case 'isolate': this.isolated.add(ids[0]); return;
      case 'heal': {
        // Messages sent across the partition while it stood are lost, not delayed.
        const cut = (m: Message): boolean => this.isolated.has(m.from) || this.isolated.has(m.to);
        for (const m of this.queue.filter(cut)) this.out.push(`${describeMessage(m)} DROPPED`);
        this.queue = this.queue.filter((m) => !cut(m));
        this.isolated.clear();
        return;
      }
      case 'compact': {
        const m = this.get(args[0]);
        const idx = Number(args[1]);
        assert.ok(idx <= m.appliedIndex, 'compact past applied');
        m.storage.createSnapshot(idx, enc(JSON.stringify(m.applied.slice(0, this.appliedCountAt(m, idx)))), this.confAt(m, idx));
        m.storage.compact(idx);
        return;
      }
      case 'crash': {
        const m = this.get(args[0]);
        m.node = null;
        m.pending = null; // the write in flight is lost
        return;
      }
      case 'restart': {
        const m = this.get(args[0]);
        const snap = m.storage.snapshot();
        m.applied = snap.data.length > 0 ? (JSON.parse(dec(snap.data)) as string[]) : [];
        m.appliedIndex = snap.metadata.index;
        const md = snap.metadata;
        m.confs = [{ index: md.index, cs: copyConfState(md) }];
        m.node = this.newNode(m);
        return;
      }
      case 'raft-state': return this.raftState();
      case 'raft-log': {
        const s = this.get(args[0]).storage;
        const ents = s.lastIndex() >= s.firstIndex() ? s.entries(s.firstIndex(), s.lastIndex() + 1, Infinity) : [];
        if (ents.length === 0) this.out.push('log is empty: first index=' + s.firstIndex() + ', last index=' + s.lastIndex());
        for (const e of ents) this.out.push(describeEntry(e));
        return;
      }
      case 'status': {
        const st = this.node(args[0]).status();
        this.out.push(`${st.id}: State${StateType[st.raftState]} Term:${st.term} Vote:${st.vote} Lead:${st.lead} ` +
          `Commit:${st.commit} Applied:${st.applied} LastIndex:${st.lastIndex}`);
        const pr = this.node(args[0]).raft.trk;
        if (st.raftState === StateType.Leader) pr.visit((id, p) => this.out.push(`  ${id}: ${p.toString()}`));
        return;
      }
      case 'applied': {
        const m = this.get(args[0]);
        this.out.push(`${m.id}: index=${m.appliedIndex} [${m.applied.join(' ')}]`);
        return;
      }
      default:
        throw new Error(`unknown command ${cmd}`);
    }
  }

  /** Number of non-empty entries among 1..idx, to cut the applied list at a snapshot index. */
  appliedCountAt(m: Member, idx: number): number {
    const s = m.storage;
    let empty = 0;
    // Entries below firstIndex were already folded into the previous snapshot's list.
    const prev = s.snapshot();
    const base = prev.data.length > 0 ? (JSON.parse(dec(prev.data)) as string[]).length : 0;
    for (const e of s.entries(prev.metadata.index + 1, idx + 1, Infinity)) if (e.data.length === 0) empty++;
    return base + (idx - prev.metadata.index) - empty;
  }

  tick(id: string, n: number): void {
    const node = this.node(id);
    for (let i = 0; i < n; i++) node.tick();
  }
}

interface Block {
  /** Comment lines (and blank lines between them) just before the command, kept on rewrite. */
  comments: string[];
  line: number;
  command: string;
  expected: string;
}

function parseFile(text: string): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  let i = 0;
  let comments: string[] = [];
  while (i < lines.length) {
    const l = lines[i];
    if (l.startsWith('#')) comments.push(l);
    if (l.trim() === '' || l.startsWith('#')) {
      i++;
      continue;
    }
    const start = i;
    assert.equal(lines[i + 1], '----', `line ${i + 2}: expected ----`);
    i += 2;
    const exp: string[] = [];
    while (i < lines.length && lines[i] !== '') exp.push(lines[i++]);
    blocks.push({ comments, line: start + 1, command: l, expected: exp.join('\n') });
    comments = [];
  }
  return blocks;
}

function runBlock(env: Env, command: string): string {
  const [cmd, ...rest] = command.trim().split(/\s+/);
  const args = rest.filter((a) => !a.includes('='));
  const kv = new Map(rest.filter((a) => a.includes('=')).map((a) => a.split('=', 2) as [string, string]));
  env.out = [];
  env.run(cmd, args, kv);
  return env.out.length === 0 ? 'ok' : env.out.join('\n');
}

describe('raft: transcripts', () => {
  const files = fs.readdirSync(testdata).filter((f) => f.endsWith('.txt')).sort();
  it('has transcripts', () => assert.ok(files.length > 0));
  for (const f of files) {
    it(f, () => {
      const file = path.join(testdata, f);
      const blocks = parseFile(fs.readFileSync(file, 'utf8'));
      const env = new Env();
      const rewritten: string[] = [];
      const failures: string[] = [];
      for (const b of blocks) {
        const actual = runBlock(env, b.command);
        const c = b.comments.length > 0 ? b.comments.join('\n') + '\n' : '';
        rewritten.push(`${c}${b.command}\n----\n${actual}\n`);
        if (actual !== b.expected) failures.push(`${f}:${b.line}: ${b.command}\n--- expected\n${b.expected}\n--- actual\n${actual}`);
      }
      if (process.env.RAFT_REWRITE === '1') {
        fs.writeFileSync(file, rewritten.join('\n'));
        return;
      }
      assert.ok(failures.length === 0, failures[0]);
    });
  }
});
