// The lessor: etcd's lease bookkeeping on the main thread. What a lease IS (its ID, TTL, attached
// keys, last checkpoint) lives in LMDB and changes only through applied log entries; the lessor
// follows those changes (LEASE messages from the apply worker, in apply order) and adds the one
// thing that is not replicated: each lease's wall-clock deadline, kept only while this member leads.
//
// - Only the leader decides that a lease expired, and the expiry is a LeaseRevoke proposed through
//   Raft, so every member deletes the same keys at the same revision. Revokes are rate-bounded
//   (leaseRevokesPerSecond) and retried after leaseRevokeRetryMs if one fails.
// - When a member becomes leader every deadline restarts from the lease's remaining TTL plus an
//   election timeout (etcd's Promote). A follower holds no deadlines (etcd's "forever").
// - Checkpoints (beyond etcd's default): every leaseCheckpointIntervalMs the leader records the
//   remaining TTL of leases nobody renewed since the previous pass. A new leader or a restarted
//   member counts down from that value instead of the full TTL, so repeated restarts or leader
//   changes cannot keep an abandoned lease alive forever (etcd issue 9888). A renewal clears the
//   checkpoint through the log before it is answered, so a restart never shortens a renewed lease.
import { etcdserverpb } from '../../shared/gen/etcd';
import { EntryAuth, RequestKind } from '../../shared/entry';
import { LeaseMsg, LeaseOp } from '../../shared/apply_protocol';
import { Errors, EtcdError } from '../../shared/errors';
import { limits } from '../../shared/limits';
import { IdGenerator } from '../../shared/ids';
import type { RaftNode } from '../node/node';
import type { MvccStore } from '../../shared/mvcc/store';
import type { Logger } from '../log';
import { bigIntToLong } from '../../shared/long';

interface Lease {
  id: bigint;
  /** Granted TTL in seconds. */
  ttl: number;
  /** Last checkpointed remaining TTL in seconds (0 = none). */
  checkpoint: number;
  /** Wall-clock deadline (ms) while this member leads; Infinity otherwise. */
  expiryMs: number;
  /** Renewed (or granted) since the last checkpoint pass. */
  renewed: boolean;
  /** A revoke for this lease is in flight, or failed at this time (ms) and waits to be retried. */
  revokeAtMs: number;
  revoking: boolean;
  /** Keep-alives of an expired lease wait for its revoke (etcd answers them TTL 0 once it is gone). */
  revokeWaiters: Array<() => void>;
}

export interface LessorOptions {
  memberId: bigint;
  /** etcd's minimum TTL: ceil(1.5 * election timeout) seconds; shorter grants are raised to it. */
  minTtlSeconds: number;
  /** Sends a lessor call to another member (the leader) over the peer transport; absent alone. */
  forward?: (to: bigint, kind: string, body: Uint8Array) => Promise<Uint8Array>;
}

const idBytes = (id: bigint): Uint8Array => {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(id);
  return b;
};
const idOf = (b: Uint8Array): bigint => Buffer.from(b).readBigInt64BE(0);

export class Lessor {
  readonly #node: RaftNode;
  readonly #store: MvccStore;
  readonly #log: Logger;
  readonly #opts: LessorOptions;
  readonly #leases = new Map<bigint, Lease>();
  readonly #ids: IdGenerator;
  #primary = false;
  #expiryTimer: NodeJS.Timeout | null = null;
  #checkpointTimer: NodeJS.Timeout | null = null;
  #revokesInFlight = 0;

  constructor(node: RaftNode, store: MvccStore, log: Logger, opts: LessorOptions) {
    this.#node = node;
    this.#store = store;
    this.#log = log;
    this.#opts = opts;
    this.#ids = new IdGenerator(opts.memberId);
    // Load what LMDB holds now, then follow applied changes. Messages for changes already in this
    // load may follow it; applying them again is harmless (grant sets, revoke deletes, checkpoint sets).
    this.#reload();
    node.onLeaseApplied((m) => this.#onApplied(m));
    node.onSnapshotInstalled(() => this.#reload());
    node.onLeadership((isLeader) => (isLeader ? this.#promote() : this.#demote()));
    if (node.isLeader) this.#promote();
  }

  /** Loads the stored leases (at start, and when a snapshot replaced the state machine). */
  #reload(): void {
    for (const l of this.#leases.values()) this.#wake(l);
    this.#leases.clear();
    for (const l of this.#store.leases()) this.#leases.set(l.id, this.#fresh(l.id, l.ttl, l.remaining));
  }

  start(): void {
    this.#expiryTimer = setInterval(() => this.#revokeExpired(), limits.leaseExpiryCheckMs);
    this.#checkpointTimer = setInterval(() => this.#checkpointPass(), limits.leaseCheckpointIntervalMs);
  }

  stop(): void {
    if (this.#expiryTimer) clearInterval(this.#expiryTimer);
    if (this.#checkpointTimer) clearInterval(this.#checkpointTimer);
    for (const l of this.#leases.values()) this.#wake(l);
  }

  /** LeaseGrant: the ID (when 0) and the minimum TTL are settled here so the log carries them. */
  async grant(req: etcdserverpb.ILeaseGrantRequest): Promise<Uint8Array> {
    let id = BigInt((req.ID ?? 0).toString());
    while (id === 0n) id = this.#ids.next() & ((1n << 63n) - 1n);
    const ttl = Math.max(Number((req.TTL ?? 0).toString()), this.#opts.minTtlSeconds);
    const body = etcdserverpb.LeaseGrantRequest.encode({ ID: bigIntToLong(id), TTL: ttl }).finish();
    return this.#node.propose(RequestKind.LeaseGrant, body);
  }

  /** auth: the client's user (a client's revoke); none for the leader's own expiry revokes. */
  revoke(id: bigint, auth: EntryAuth | null = null): Promise<Uint8Array> {
    return this.#node.propose(RequestKind.LeaseRevoke, etcdserverpb.LeaseRevokeRequest.encode({ ID: bigIntToLong(id) }).finish(), undefined, auth);
  }

  /** etcd's lessor.Renew: the granted TTL, or 0 for a lease that does not exist (or expired). */
  async renew(id: bigint): Promise<number> {
    const fwd = this.#forwardTarget();
    if (fwd !== null) return Number(Buffer.from(await fwd('lease-renew', idBytes(id))).toString());
    this.#checkPrimary();
    const l = this.#leases.get(id);
    if (l === undefined) return 0;
    if (l.expiryMs <= Date.now()) {
      // Expired: etcd waits until the revoke is applied and then answers "not found".
      await this.#untilRevoked(l);
      return 0;
    }
    if (l.checkpoint > 0) {
      await this.#node.propose(RequestKind.LeaseCheckpoint, etcdserverpb.LeaseCheckpointRequest.encode({
        checkpoints: [{ ID: bigIntToLong(id), remaining_TTL: 0 }],
      }).finish());
    }
    const now = this.#leases.get(id);
    if (now === undefined) return 0;
    now.expiryMs = Date.now() + now.ttl * 1000;
    now.renewed = true;
    return now.ttl;
  }

  /** etcd's LeaseTimeToLive fields, or null for an unknown lease. */
  async timeToLive(id: bigint): Promise<{ ttl: number; grantedTtl: number } | null> {
    const fwd = this.#forwardTarget();
    if (fwd !== null) return JSON.parse(Buffer.from(await fwd('lease-ttl', idBytes(id))).toString()) as { ttl: number; grantedTtl: number } | null;
    this.#checkPrimary();
    const l = this.#leases.get(id);
    if (l === undefined) return null;
    // etcd: int64(Remaining().Seconds()), truncated toward zero.
    return { ttl: Math.trunc((l.expiryMs - Date.now()) / 1000), grantedTtl: l.ttl };
  }

  attachedKeys(id: bigint): Buffer[] {
    return this.#store.leaseKeys(id);
  }

  /** LeaseLeases: every lease, soonest deadline first (etcd sorts by expiry; the leader's view). */
  async list(): Promise<bigint[]> {
    const fwd = this.#forwardTarget();
    if (fwd !== null) return (JSON.parse(Buffer.from(await fwd('lease-list', new Uint8Array(0))).toString()) as string[]).map((x) => BigInt(x));
    return [...this.#leases.values()].sort((a, b) => a.expiryMs - b.expiryMs).map((l) => l.id);
  }

  /** A follower's calls go to the leader's lessor (etcd forwards them to the leader too). */
  #forwardTarget(): ((kind: string, body: Uint8Array) => Promise<Uint8Array>) | null {
    if (this.#primary) return null;
    const lead = this.#node.leader;
    const f = this.#opts.forward;
    if (lead === 0n || f === undefined) return null; // #checkPrimary answers "no leader"
    return (kind, body) => f(lead, kind, body);
  }

  /** Serves a call a follower forwarded (see #forwardTarget); only the leader answers. */
  async serveForwarded(kind: string, body: Uint8Array): Promise<Uint8Array> {
    this.#checkPrimary();
    switch (kind) {
      case 'lease-renew': return Buffer.from(String(await this.renew(idOf(body))));
      case 'lease-ttl': return Buffer.from(JSON.stringify(await this.timeToLive(idOf(body))));
      case 'lease-list': return Buffer.from(JSON.stringify((await this.list()).map((x) => x.toString())));
      default: throw Errors.notCapable();
    }
  }

  #checkPrimary(): void {
    if (this.#primary) return;
    throw this.#node.hasLeader ? Errors.notLeader() : Errors.noLeader();
  }

  #fresh(id: bigint, ttl: number, checkpoint: number): Lease {
    const l: Lease = {
      id, ttl, checkpoint, expiryMs: Infinity, renewed: true, revokeAtMs: 0, revoking: false, revokeWaiters: [],
    };
    if (this.#primary) this.#refresh(l, 0);
    return l;
  }

  /** etcd's Lease.refresh: the deadline is now + extend + remaining (checkpoint, else full TTL). */
  #refresh(l: Lease, extendMs: number): void {
    l.expiryMs = Date.now() + extendMs + (l.checkpoint > 0 ? l.checkpoint : l.ttl) * 1000;
  }

  #onApplied(m: LeaseMsg): void {
    switch (m.op) {
      case LeaseOp.Grant:
        this.#leases.set(m.id, this.#fresh(m.id, m.ttl, 0));
        break;
      case LeaseOp.Revoke: {
        const l = this.#leases.get(m.id);
        if (l === undefined) break;
        this.#leases.delete(m.id);
        this.#wake(l);
        break;
      }
      case LeaseOp.Checkpoint: {
        const l = this.#leases.get(m.id);
        if (l === undefined) break;
        l.checkpoint = m.remaining;
        if (this.#primary) this.#refresh(l, 0);
        break;
      }
    }
  }

  #promote(): void {
    this.#primary = true;
    const extend = this.#node.electionTimeoutMs;
    for (const l of this.#leases.values()) {
      this.#refresh(l, extend);
      l.renewed = false;
    }
    this.#log.info('lessor promoted', { leases: this.#leases.size });
  }

  #demote(): void {
    this.#primary = false;
    for (const l of this.#leases.values()) {
      l.expiryMs = Infinity;
      this.#wake(l);
    }
  }

  #wake(l: Lease): void {
    for (const w of l.revokeWaiters.splice(0)) w();
  }

  #untilRevoked(l: Lease): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, limits.requestTimeoutMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      l.revokeWaiters.push(done);
    });
  }

  /** etcd's revokeExpiredLeases: at most leaseRevokesPerSecond/2 per 500 ms pass. */
  #revokeExpired(): void {
    if (!this.#primary) return;
    const now = Date.now();
    let budget = Math.max(1, Math.floor((limits.leaseRevokesPerSecond * limits.leaseExpiryCheckMs) / 1000)) - this.#revokesInFlight;
    for (const l of this.#leases.values()) {
      if (budget <= 0) break;
      if (l.expiryMs > now || l.revoking || l.revokeAtMs > now) continue;
      budget--;
      l.revoking = true;
      this.#revokesInFlight++;
      this.revoke(l.id).then(
        () => { l.revoking = false; },
        (e: EtcdError) => {
          l.revoking = false;
          l.revokeAtMs = Date.now() + limits.leaseRevokeRetryMs;
          // "not found": someone else revoked it; anything else is retried.
          if (e.message !== Errors.leaseNotFound().message) this.#log.warn('lease revoke failed', { lease: l.id.toString(16), error: e.message });
        },
      ).finally(() => { this.#revokesInFlight--; });
    }
  }

  /** Records the remaining TTL of leases nobody renewed since the previous pass. */
  #checkpointPass(): void {
    if (!this.#primary) return;
    const now = Date.now();
    const batches: Array<Array<{ ID: ReturnType<typeof bigIntToLong>; remaining_TTL: number }>> = [];
    let cur: Array<{ ID: ReturnType<typeof bigIntToLong>; remaining_TTL: number }> = [];
    for (const l of this.#leases.values()) {
      const wasRenewed = l.renewed;
      l.renewed = false;
      if (wasRenewed || l.revoking) continue;
      const remaining = Math.ceil((l.expiryMs - now) / 1000);
      if (remaining <= 0 || remaining === l.checkpoint) continue;
      if (batches.length >= limits.leaseCheckpointEntriesPerPass) continue; // the rest next pass
      cur.push({ ID: bigIntToLong(l.id), remaining_TTL: remaining });
      if (cur.length >= limits.leaseCheckpointBatchMax) {
        batches.push(cur);
        cur = [];
      }
    }
    if (cur.length > 0 && batches.length < limits.leaseCheckpointEntriesPerPass) batches.push(cur);
    for (const checkpoints of batches) {
      this.#node.propose(RequestKind.LeaseCheckpoint, etcdserverpb.LeaseCheckpointRequest.encode({ checkpoints }).finish())
        .catch((e: Error) => this.#log.warn('lease checkpoint failed', { error: e.message }));
    }
  }
}
