// Network partitions between cluster members on 127.0.0.1, made with iptables from outside the code under
// test: isolate(i) cuts member i off from its peers in both directions while its clients still reach it
// (client ports are never matched), heal() lets everything through again.
//
// How, per member: each runs with a group id of its own (StartOptions.gid in procs.ts), and every peer
// connection is TCP to some member's peer port (src/main/peer/dial.ts: messages, request and snapshot
// connections all dial a peer URL; the listener accepts on the peer port). Loopback packets pass OUTPUT
// once, when sent, so one chain hooked from OUTPUT (-o lo -p tcp) sees both directions. isolate(i) adds:
//
//   owner gid G_i, to another member's peer port    -> CONNMARK M   (i dials out)
//   to i's peer port  (--dport P_i)                  -> CONNMARK M   (the others dial in)
//   from i's peer port (--sport P_i)                 -> CONNMARK M   (i answers on accepted connections)
//   connmark M                                       -> DROP         (every packet of those connections,
//                                                                      including the peers' replies to i)
//
// M is new for every isolate() so that connections marked by an earlier cut (their conntrack entries keep
// the mark) are not dropped by a later cut of another member. heal() flushes the chain.
//
// The chain (ETCDTS_<pid>) and its OUTPUT hook are removed by close(), and on process exit or SIGINT/SIGTERM
// if close() never ran. Needs root and iptables with the owner, multiport and connmark matches;
// partitionUnsupported() says why not.
import { execFileSync, spawnSync } from 'node:child_process';

export interface PartitionMember {
  /** The member process's group id (StartOptions.gid). */
  gid: number;
  peerPort: number;
}

const markBase = 0x4e740000; // arbitrary; only this chain's rules set or match it

function ipt(args: string[]): void {
  execFileSync('iptables', ['-w', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}

function iptQuiet(args: string[]): void {
  spawnSync('iptables', ['-w', ...args], { stdio: 'ignore' });
}

/** Why partitions cannot be made here, or null when they can (root and a working iptables). */
export function partitionUnsupported(): string | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not root (iptables needs it)';
  const r = spawnSync('iptables', ['-w', '-L', 'OUTPUT', '-n'], { encoding: 'utf8' });
  if (r.error) return `iptables not found (${r.error.message}); apt-get install iptables`;
  if (r.status !== 0) return `iptables -L OUTPUT failed: ${(r.stderr ?? '').trim()}`;
  return null;
}

const open = new Set<Partition>();

export class Partition {
  readonly chain: string;
  #members: PartitionMember[];
  #cuts = 0;
  #closed = false;
  /** The member cut off now, or -1. */
  isolated = -1;

  constructor(members: PartitionMember[], chainName = `ETCDTS_${process.pid}`) {
    this.#members = members;
    this.chain = chainName;
    iptQuiet(['-D', 'OUTPUT', ...this.#hook()]); // a leftover of an earlier process with this pid
    iptQuiet(['-F', this.chain]);
    iptQuiet(['-X', this.chain]);
    ipt(['-N', this.chain]);
    if (open.size === 0) watchExit(true);
    open.add(this);
    ipt(['-I', 'OUTPUT', '1', ...this.#hook()]);
  }

  #hook(): string[] {
    return ['-o', 'lo', '-p', 'tcp', '-j', this.chain];
  }

  /** Cuts member i off from every other member, both directions (heals any earlier cut first). */
  isolate(i: number): void {
    if (this.#closed) throw new Error('partition closed');
    const m = this.#members[i];
    if (m === undefined) throw new Error(`no member ${i}`);
    this.heal();
    const mark = String(markBase + ++this.#cuts);
    const others = this.#members
      .filter((_, j) => j !== i)
      .map((o) => o.peerPort)
      .join(',');
    const c = this.chain;
    ipt([
      '-A',
      c,
      '-p',
      'tcp',
      '-m',
      'owner',
      '--gid-owner',
      String(m.gid),
      '-m',
      'multiport',
      '--dports',
      others,
      '-j',
      'CONNMARK',
      '--set-mark',
      mark,
    ]);
    ipt(['-A', c, '-p', 'tcp', '--dport', String(m.peerPort), '-j', 'CONNMARK', '--set-mark', mark]);
    ipt(['-A', c, '-p', 'tcp', '--sport', String(m.peerPort), '-j', 'CONNMARK', '--set-mark', mark]);
    ipt(['-A', c, '-m', 'connmark', '--mark', mark, '-j', 'DROP']);
    this.isolated = i;
  }

  /** Lets every peer packet through again. */
  heal(): void {
    if (this.#closed) return;
    ipt(['-F', this.chain]);
    this.isolated = -1;
  }

  /** Removes the rules, the OUTPUT hook and the chain. Idempotent; never throws. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    open.delete(this);
    if (open.size === 0) watchExit(false);
    iptQuiet(['-D', 'OUTPUT', ...this.#hook()]);
    iptQuiet(['-F', this.chain]);
    iptQuiet(['-X', this.chain]);
  }

  /** The chain's rules with packet counts, for a failure message. */
  rules(): string {
    const r = spawnSync('iptables', ['-w', '-L', this.chain, '-n', '-v'], { encoding: 'utf8' });
    return (r.stdout ?? '') + (r.stderr ?? '');
  }
}

// Never leave rules behind: on exit, and on SIGINT/SIGTERM (which skip 'exit' handlers otherwise), while
// a partition is open.
function closeAll(): void {
  for (const p of open) p.close();
}
function onSignal(sig: NodeJS.Signals): void {
  closeAll();
  process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
}
function watchExit(on: boolean): void {
  const f = on ? process.on.bind(process) : process.off.bind(process);
  f('exit', closeAll);
  f('SIGINT', onSignal);
  f('SIGTERM', onSignal);
}
