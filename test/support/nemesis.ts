// Faults for a 3-member cluster on 127.0.0.1 (etcd-ts, or etcd 3.4 with ETCD_TS_TARGET=etcd), injected
// from outside the code under test, and a FaultCluster that knows how to find the leader, restart a
// member with other settings and put everything back.
//
// A nemesis has inject() and heal(). heal() is idempotent, never throws, and leaves every member running
// with its normal settings and no partition; FaultCluster.close() does the same and then stops everything,
// so a failure at any point still cleans up (SIGCONT before anything else: a stopped process ignores
// SIGTERM). The nemeses:
//
//   kill-leader      kill -9 of the leader; heal restarts it on the same data dir
//   kill-follower    the same for a follower
//   stop-leader      SIGSTOP of the leader (a long GC pause, a frozen VM); heal sends SIGCONT
//   partition        the leader (odd rounds: a follower) cut off from its peers in both directions
//                    (iptables, test/support/partition.ts; needs root); its clients still reach it
//   disk-stall       the leader restarted with ETCD_TS_WAL_SYNC_DELAY_MS (every WAL write waits that much
//                    longer: a slow disk, src/shared/switches.ts); heal restarts it without. etcd-ts only.
//   move-leader      leadership moved to a follower (Maintenance.MoveLeader, etcdctl move-leader)
//   member-readd     a follower removed (etcdctl member remove: it stops itself), then added back as a new
//                    member on the same URLs with an empty data dir (member add, --initial-cluster-state
//                    existing), as an operator replaces a broken member
//   none             nothing (a baseline)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { etcdctl } from './etcdctl';
import { Partition, partitionUnsupported } from './partition';
import { freePort, Server, ServerKind, startKind, StartOptions } from './procs';

const walSyncDelayMs = 300;
const leaderWaitMs = 15_000;
const memberExitWaitMs = 15_000;
const memberAddWaitMs = 30_000;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface MemberStatus {
  endpoint: string;
  memberId: string; // decimal, as etcdctl prints it
  leader: string;
}

/** A 3-member cluster whose members can be restarted with other settings, found by role, and cut off. */
export class FaultCluster {
  readonly members: Server[] = [];
  readonly names: string[] = [];
  readonly part: Partition | null;
  /** What the nemeses did, when (ms since the cluster's schedule clock), for the run's report. */
  readonly log: string[] = [];
  #opts: StartOptions[] = [];
  #dead: boolean[] = [];
  #stopped = new Set<number>(); // SIGSTOPped pids
  #t0 = Date.now();

  private constructor(
    readonly kind: ServerKind,
    readonly dir: string,
    part: Partition | null,
  ) {
    this.part = part;
  }

  /** Starts m1..m3 with data dirs under dir. Partitions need root and iptables (null part otherwise). */
  static async start(kind: ServerKind, dir: string, token: string): Promise<FaultCluster> {
    const ports = await Promise.all(Array.from({ length: 6 }, () => freePort()));
    const gidBase = 50_000 + (process.pid % 10_000) * 3;
    const canPartition = partitionUnsupported() === null;
    const part = canPartition ? new Partition(ports.slice(3).map((peerPort, i) => ({ gid: gidBase + i, peerPort }))) : null;
    const c = new FaultCluster(kind, dir, part);
    const names = ['m1', 'm2', 'm3'];
    const initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${ports[3 + i]}`).join(',');
    c.names.push(...names);
    c.#opts = names.map((name, i) => ({
      name,
      dataDir: path.join(dir, name),
      clientPort: ports[i],
      peerPort: ports[3 + i],
      initialCluster,
      token,
      readyTimeoutMs: 60_000,
      ...(canPartition ? { gid: gidBase + i } : {}),
    }));
    try {
      const started = await Promise.all(c.#opts.map((o) => startKind(kind, o)));
      started.forEach((s, i) => c.#track(i, s));
    } catch (e) {
      await c.close();
      throw e;
    }
    return c;
  }

  #track(i: number, s: Server): void {
    this.members[i] = s;
    this.#dead[i] = false;
    void s.exited().then(() => {
      if (this.members[i] === s) this.#dead[i] = true;
    });
  }

  note(what: string): void {
    this.log.push(`${String(Date.now() - this.#t0).padStart(7)} ms  ${what}`);
  }

  resetClock(): void {
    this.#t0 = Date.now();
  }

  endpoints(): string[] {
    return this.#opts.map((o) => `127.0.0.1:${o.clientPort}`);
  }

  isRunning(i: number): boolean {
    return !this.#dead[i];
  }

  /** Starts member i again (same ports and data dir unless `over` says otherwise), with extra env. */
  async restart(i: number, over: Partial<StartOptions> = {}): Promise<void> {
    this.sigcont(i);
    await this.members[i].stop('SIGTERM');
    const s = await startKind(this.kind, { ...this.#opts[i], ...over });
    this.#track(i, s);
  }

  async kill9(i: number): Promise<void> {
    this.sigcont(i);
    await this.members[i].kill9();
  }

  sigstop(i: number): void {
    const pid = this.members[i].pid;
    process.kill(pid, 'SIGSTOP');
    this.#stopped.add(pid);
  }

  sigcont(i: number): void {
    const pid = this.members[i]?.pid;
    if (pid === undefined || !this.#stopped.has(pid)) return;
    this.#stopped.delete(pid);
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      /* gone */
    }
  }

  /** Every member's status that answers (etcdctl endpoint status, one endpoint at a time). */
  async statuses(): Promise<Array<MemberStatus | null>> {
    return Promise.all(
      this.endpoints().map(async (ep, i) => {
        if (!this.isRunning(i) || this.#stopped.has(this.members[i].pid)) return null;
        const r = await etcdctl(ep, ['endpoint', 'status', '-w', 'json', '--dial-timeout=1s', '--command-timeout=2s'], { timeoutMs: 5000 });
        if (r.code !== 0) return null;
        const j = JSON.parse(r.stdout.replace(/"(member_id|leader|cluster_id)":(\d+)/g, '"$1":"$2"')) as Array<{
          Status: { header: { member_id: string }; leader: string };
        }>;
        return { endpoint: ep, memberId: j[0].Status.header.member_id, leader: j[0].Status.leader };
      }),
    );
  }

  /** The leader's index and every answering member's id (decimal), waiting up to leaderWaitMs for one. */
  async leader(): Promise<{ leader: number; ids: Array<string | null> }> {
    const until = Date.now() + leaderWaitMs;
    for (;;) {
      const st = await this.statuses();
      const ids = st.map((s) => s?.memberId ?? null);
      const claimed = st.find((s) => s !== null && s.leader !== '0')?.leader;
      const i = claimed === undefined ? -1 : ids.indexOf(claimed);
      if (i >= 0) return { leader: i, ids };
      if (Date.now() > until) throw new Error(`no leader after ${leaderWaitMs} ms (statuses: ${JSON.stringify(st)})`);
      await sleep(300);
    }
  }

  /** member remove of i through another member; waits for its process to stop (kills it after a while). */
  async removeMember(i: number): Promise<void> {
    const { ids } = await this.leader();
    const id = ids[i];
    if (id === null) throw new Error(`member ${this.names[i]} does not answer: cannot learn its id`);
    const via = this.endpoints().filter((_, j) => j !== i);
    const r = await retryUnhealthy(() => etcdctl(via.join(','), ['member', 'remove', BigInt(id).toString(16)]), memberAddWaitMs);
    if (r.code !== 0) throw new Error(`member remove failed: ${r.stderr.trim()}`);
    const exited = await Promise.race([this.members[i].exited().then(() => true), sleep(memberExitWaitMs).then(() => false)]);
    if (!exited) {
      this.note(`${this.names[i]} still running ${memberExitWaitMs} ms after its removal: killed`);
      await this.members[i].kill9();
    }
  }

  /** member add of i's URLs (it was removed), then i started with an empty data dir joining the cluster. */
  async addBack(i: number): Promise<void> {
    const o = this.#opts[i];
    const via = this.endpoints().filter((_, j) => j !== i);
    const peerUrl = `http://127.0.0.1:${o.peerPort}`;
    const r = await retryUnhealthy(() => etcdctl(via.join(','), ['member', 'add', o.name!, `--peer-urls=${peerUrl}`]), memberAddWaitMs);
    if (r.code !== 0) throw new Error(`member add failed: ${r.stderr.trim()}`);
    const initial = /ETCD_INITIAL_CLUSTER="([^"]+)"/.exec(r.stdout)?.[1];
    if (initial === undefined) throw new Error(`member add printed no ETCD_INITIAL_CLUSTER: ${r.stdout}`);
    fs.rmSync(o.dataDir!, { recursive: true, force: true });
    const s = await startKind(this.kind, { ...o, initialCluster: initial, extraArgs: ['--initial-cluster-state', 'existing'] });
    this.#track(i, s);
  }

  /** No partition, nothing stopped, every member running with its normal settings. Never throws. */
  async healAll(): Promise<string[]> {
    const errors: string[] = [];
    this.part?.heal();
    for (let i = 0; i < this.members.length; i++) this.sigcont(i);
    for (let i = 0; i < this.members.length; i++) {
      if (this.isRunning(i)) continue;
      try {
        await this.restart(i);
        this.note(`heal: restarted ${this.names[i]}`);
      } catch (e) {
        errors.push(`restart of ${this.names[i]}: ${(e as Error).message.split('\n')[0]}`);
      }
    }
    return errors;
  }

  /** Stops every member and removes the partition chain. Never throws. */
  async close(): Promise<void> {
    this.part?.close();
    for (let i = 0; i < this.members.length; i++) this.sigcont(i);
    await Promise.all(this.members.map((m) => m.stop('SIGTERM').catch(() => null)));
  }

  /** The members' stderr tails into dir/<name>.stderr. */
  saveLogs(dir: string): void {
    this.members.forEach((m, i) => fs.writeFileSync(path.join(dir, `${this.names[i]}.stderr`), m.stderr()));
  }
}

/** etcd refuses member add/remove until every voter has been connected for 5 s: retry as an operator would. */
async function retryUnhealthy(
  f: () => Promise<{ code: number | null; stdout: string; stderr: string }>,
  ms: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const until = Date.now() + ms;
  for (;;) {
    const r = await f();
    const transient =
      r.code !== 0 && /unhealthy cluster|leader changed|no leader|timed out|DeadlineExceeded|connection refused/i.test(r.stderr);
    if (!transient || Date.now() > until) return r;
    await sleep(500);
  }
}

export interface Nemesis {
  readonly name: string;
  /** How long a fault is held, when not the schedule's faultMs. */
  readonly holdMs?: number;
  /** Why it cannot run against this kind of cluster here, or null. */
  unsupported(c: { kind: ServerKind; canPartition: boolean }): string | null;
  inject(c: FaultCluster, round: number): Promise<void>;
  /** Undoes inject; the runner calls FaultCluster.healAll() after it in any case. */
  heal(c: FaultCluster): Promise<void>;
}

function followerOf(leader: number): number {
  return (leader + 1) % 3;
}

/** The member a nemesis acted on, for its heal. */
let target = -1;

const killLeader: Nemesis = {
  name: 'kill-leader',
  unsupported: () => null,
  async inject(c) {
    target = (await c.leader()).leader;
    c.note(`kill -9 ${c.names[target]} (leader)`);
    await c.kill9(target);
  },
  async heal(c) {
    if (target >= 0 && !c.isRunning(target)) {
      await c.restart(target);
      c.note(`restarted ${c.names[target]}`);
    }
  },
};

const killFollower: Nemesis = {
  name: 'kill-follower',
  unsupported: () => null,
  async inject(c) {
    target = followerOf((await c.leader()).leader);
    c.note(`kill -9 ${c.names[target]} (follower)`);
    await c.kill9(target);
  },
  heal: killLeader.heal,
};

const stopLeader: Nemesis = {
  name: 'stop-leader',
  unsupported: () => null,
  async inject(c) {
    target = (await c.leader()).leader;
    c.note(`SIGSTOP ${c.names[target]} (leader)`);
    c.sigstop(target);
  },
  async heal(c) {
    if (target < 0) return;
    c.sigcont(target);
    c.note(`SIGCONT ${c.names[target]}`);
  },
};

const partitionOne: Nemesis = {
  name: 'partition',
  unsupported: (c) => (c.canPartition ? null : (partitionUnsupported() ?? 'no partition')),
  async inject(c, round) {
    const l = (await c.leader()).leader;
    target = round % 2 === 0 ? l : followerOf(l);
    c.part!.isolate(target);
    c.note(`isolate ${c.names[target]} (${round % 2 === 0 ? 'leader' : 'follower'})`);
  },
  async heal(c) {
    c.part?.heal();
    c.note('heal partition');
  },
};

const diskStall: Nemesis = {
  name: 'disk-stall',
  holdMs: 5000, // the restart with the switch is slow already; give the slow member time to matter
  unsupported: (c) => (c.kind === 'etcd' ? 'ETCD_TS_WAL_SYNC_DELAY_MS is an etcd-ts switch' : null),
  async inject(c) {
    target = (await c.leader()).leader;
    c.note(`restart ${c.names[target]} (leader) with ETCD_TS_WAL_SYNC_DELAY_MS=${walSyncDelayMs}`);
    await c.restart(target, { env: { ETCD_TS_WAL_SYNC_DELAY_MS: String(walSyncDelayMs) } });
    c.note(`${c.names[target]} up with the slow disk`);
  },
  async heal(c) {
    if (target < 0) return;
    await c.restart(target);
    c.note(`restarted ${c.names[target]} with a normal disk`);
  },
};

const moveLeader: Nemesis = {
  name: 'move-leader',
  unsupported: () => null,
  async inject(c) {
    const { leader, ids } = await c.leader();
    const to = followerOf(leader);
    if (ids[to] === null) throw new Error(`follower ${c.names[to]} does not answer`);
    const r = await etcdctl(c.endpoints().join(','), ['move-leader', BigInt(ids[to]).toString(16)], { timeoutMs: 15_000 });
    c.note(`move-leader ${c.names[leader]} -> ${c.names[to]}: ${r.code === 0 ? 'ok' : r.stderr.trim().split('\n').pop()}`);
  },
  async heal() {
    /* nothing to undo */
  },
};

const memberReadd: Nemesis = {
  name: 'member-readd',
  unsupported: () => null,
  async inject(c) {
    target = followerOf((await c.leader()).leader);
    c.note(`member remove ${c.names[target]} (follower)`);
    await c.removeMember(target);
    c.note(`${c.names[target]} removed and stopped`);
  },
  async heal(c) {
    if (target < 0 || c.isRunning(target)) return;
    await c.addBack(target);
    c.note(`${c.names[target]} added back and started (empty data dir)`);
  },
};

/** Not a fault to survive: a self-test of the harness. A follower restarted with ETCD_TS_APPLY_CORRUPT_KEY
 * (src/shared/switches.ts) stores its own wrong value of one key, so its reads and watch differ from the
 * others'; a run must end in a violation. Not in "all". */
const corruptFollower: Nemesis = {
  name: 'corrupt-follower',
  unsupported: (c) => (c.kind === 'etcd' ? 'ETCD_TS_APPLY_CORRUPT_KEY is an etcd-ts switch' : null),
  async inject(c, round) {
    if (round > 0) return;
    target = followerOf((await c.leader()).leader);
    c.note(`restart ${c.names[target]} (follower) with ETCD_TS_APPLY_CORRUPT_KEY=${corruptKey}`);
    await c.restart(target, { env: { ETCD_TS_APPLY_CORRUPT_KEY: corruptKey } });
  },
  async heal() {
    /* stays corrupt: that is the point */
  },
};
export const corruptKey = '/lin/k0';

const none: Nemesis = {
  name: 'none',
  unsupported: () => null,
  async inject() {
    /* a baseline run */
  },
  async heal() {
    /* nothing */
  },
};

export const nemeses: readonly Nemesis[] = [
  killLeader,
  killFollower,
  stopLeader,
  partitionOne,
  diskStall,
  moveLeader,
  memberReadd,
  none,
  corruptFollower,
];

export function nemesisNamed(name: string): Nemesis {
  const n = nemeses.find((x) => x.name === name);
  if (n === undefined) throw new Error(`no nemesis "${name}" (${nemeses.map((x) => x.name).join(', ')})`);
  return n;
}

export interface Schedule {
  leadMs: number; // healthy load before the first fault
  faultMs: number; // each fault held this long
  healedMs: number; // healthy load after each heal
  totalMs: number; // the workload's length: faults start while lead + fault + healed still fit
}

/**
 * Runs the nemesis on the schedule until `totalMs` (or until stopped), healing after each round and at the
 * end whatever happens. Returns the errors of injects and heals (a run with one is not a verdict on the store).
 */
export async function runSchedule(c: FaultCluster, n: Nemesis, s: Schedule): Promise<string[]> {
  const errors: string[] = [];
  const start = Date.now();
  target = -1;
  try {
    await sleep(s.leadMs);
    const hold = n.holdMs ?? s.faultMs;
    for (let round = 0; Date.now() - start + hold + s.healedMs <= s.totalMs; round++) {
      try {
        await n.inject(c, round);
        await sleep(hold);
      } catch (e) {
        errors.push(`inject ${n.name} round ${round}: ${(e as Error).message.split('\n')[0]}`);
        c.note(`inject failed: ${(e as Error).message.split('\n')[0]}`);
      }
      try {
        await n.heal(c);
      } catch (e) {
        errors.push(`heal ${n.name} round ${round}: ${(e as Error).message.split('\n')[0]}`);
        c.note(`heal failed: ${(e as Error).message.split('\n')[0]}`);
      }
      errors.push(...(await c.healAll()));
      target = -1;
      await sleep(s.healedMs);
    }
  } finally {
    errors.push(...(await c.healAll()));
  }
  return errors;
}
