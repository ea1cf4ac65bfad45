// etcd's v3lock and v3election services. etcd implements them with its own Go client recipes
// (clientv3/concurrency: Mutex, Election) looping back into the server; here the same algorithms
// run against the local KV directly: writes are proposed through Raft exactly like client
// requests, reads follow a ReadIndex barrier, and "wait until this key is deleted" is checked after
// every applied batch instead of through a Watch. Key names, revisions, headers and errors are
// etcd's, so a gRPC (or gateway) client cannot tell the difference.
//
// Fencing: a lock's key is deleted when its lease expires, but a holder may not notice in time.
// Anyone who acts under a lock must guard the action with the lock key's revision (a txn comparing
// the key's create_revision), the fencing token; Jepsen showed etcd locks alone do not give mutual
// exclusion. See docs/LEASES.md.
import { etcdserverpb, mvccpb, v3electionpb, v3lockpb } from '../../shared/gen/etcd';
import { RequestKind } from '../../shared/entry';
import { decodeRequest, Errors, EtcdError, GrpcCode, unmarshalError } from '../../shared/errors';
import { limits } from '../../shared/limits';
import { bigIntToLong, toBigInt, toNum } from '../../shared/long';
import type { CallContext, ServerStream } from '../net/grpc';
import type { RaftNode } from '../node/node';
import type { MvccStore } from '../../shared/mvcc/store';
import { Registrar } from './lease_service';
import { prefixEnd } from '../../shared/key_range';
import { Lessor } from './lessor';

type Header = etcdserverpb.IResponseHeader;
const SortOrder = etcdserverpb.RangeRequest.SortOrder;
const SortTarget = etcdserverpb.RangeRequest.SortTarget;
const CompareTarget = etcdserverpb.Compare.CompareTarget;
const CompareResult = etcdserverpb.Compare.CompareResult;

/** A plain error in etcd's recipes: grpc-go answers it as code Unknown with the text. */
const recipeError = (message: string): EtcdError => new EtcdError(GrpcCode.Unknown, message);
const errSessionExpired = (): EtcdError => recipeError('mutex: session is expired');
const errNotLeader = (): EtcdError => recipeError('election: not leader');
const errNoLeader = (): EtcdError => recipeError('election: no leader');
const errMissingLeaderKey = (): EtcdError => recipeError('"leader" field must be provided');
const errCanceled = (): EtcdError => new EtcdError(GrpcCode.Canceled, 'context canceled');

/**
 * etcd's recipe servers call the server through a Go client, which turns every status it gets back
 * into a plain error; grpc-go then answers the recipe call with code Unknown and the same text
 * (for example "etcdserver: requested lease not found" comes back as Unknown, not NotFound).
 */
async function asClientErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof EtcdError && e.code !== GrpcCode.Canceled) throw recipeError(e.message);
    throw e;
  }
}

/** Reads and writes against this member, shaped like the client calls the recipes make. */
export class LocalKv {
  readonly #node: RaftNode;
  readonly #store: MvccStore;
  readonly #header: (revision?: number) => Header;
  #waiters = 0;

  constructor(node: RaftNode, store: MvccStore, header: (revision?: number) => Header) {
    this.#node = node;
    this.#store = store;
    this.#header = header;
  }

  async txn(req: etcdserverpb.ITxnRequest): Promise<etcdserverpb.TxnResponse> {
    return etcdserverpb.TxnResponse.decode(await this.#node.propose(RequestKind.Txn, etcdserverpb.TxnRequest.encode(req).finish()));
  }

  async del(key: Uint8Array): Promise<etcdserverpb.DeleteRangeResponse> {
    const body = etcdserverpb.DeleteRangeRequest.encode({ key }).finish();
    return etcdserverpb.DeleteRangeResponse.decode(await this.#node.propose(RequestKind.DeleteRange, body));
  }

  /** A linearizable Get, as the Go client's default. */
  async get(req: etcdserverpb.IRangeRequest): Promise<{ header: Header; kvs: mvccpb.IKeyValue[] }> {
    await this.#node.readBarrier();
    const r = this.#store.range(req);
    return { header: this.#header(toNum(r.header?.revision)), kvs: r.kvs ?? [] };
  }

  /** The first key created under prefix (clientv3.WithFirstCreate), at most maxCreateRev when given. */
  getByCreate(prefix: Buffer, order: 'first' | 'last', maxCreateRev = 0): Promise<{ header: Header; kvs: mvccpb.IKeyValue[] }> {
    return this.get({
      key: prefix, rangeEnd: prefixEnd(prefix), limit: 1, sortTarget: SortTarget.CREATE,
      sortOrder: order === 'first' ? SortOrder.ASCEND : SortOrder.DESCEND, maxCreateRevision: maxCreateRev,
    });
  }

  /**
   * Calls onBatch after every applied batch with the newest revision until it returns true, the
   * call is cancelled or the node stops. Bounded by recipeWaitersMax.
   */
  waitApplied(ctx: CallContext | null, onBatch: (revision: number) => boolean): Promise<void> {
    if (this.#waiters >= limits.recipeWaitersMax) return Promise.reject(Errors.tooManyRequests());
    this.#waiters++;
    return new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (err: EtcdError | null): void => {
        if (done) return;
        done = true;
        this.#waiters--;
        off();
        if (err) reject(err);
        else resolve();
      };
      const check = (rev: number): void => {
        try {
          if (onBatch(rev)) finish(null);
        } catch (e) {
          finish(e instanceof EtcdError ? e : recipeError((e as Error).message));
        }
      };
      const off = this.#node.onApplied(check);
      ctx?.onCancel?.(() => finish(errCanceled()));
      check(this.#node.revision);
    });
  }

  /** clientv3 concurrency's waitDelete: resolves once the key with this create revision is gone. */
  waitGone(ctx: CallContext | null, key: Uint8Array, createRev: number): Promise<void> {
    return this.waitApplied(ctx, () => {
      const kv = this.#store.range({ key, serializable: true }).kvs?.[0];
      return kv === undefined || toNum(kv.createRevision) !== createRev;
    });
  }

  /** clientv3 concurrency's waitDeletes: until no key under prefix created at or below maxCreateRev. */
  async waitDeletes(ctx: CallContext | null, prefix: Buffer, maxCreateRev: number): Promise<Header> {
    for (;;) {
      const r = await this.getByCreate(prefix, 'last', maxCreateRev);
      if (r.kvs.length === 0) return r.header;
      await this.waitGone(ctx, r.kvs[0].key as Uint8Array, toNum(r.kvs[0].createRevision));
    }
  }

  /** Events on [key, rangeEnd) after fromRev, from the MVCC history (throws "compacted"). */
  events(fromRev: number, key: Buffer, rangeEnd: Buffer | null): { events: mvccpb.IEvent[]; nextRev: number } {
    const filter = rangeEnd === null
      ? (k: Buffer) => k.equals(key)
      : (k: Buffer) => k.compare(key) >= 0 && k.compare(rangeEnd) < 0;
    return this.#store.events(fromRev, { filter });
  }

  header(revision?: number): Header {
    return this.#header(revision);
  }

  /** Runs fn after every applied batch until the returned function is called (Observe streams). */
  follow(fn: () => void): () => void {
    if (this.#waiters >= limits.recipeWaitersMax) throw Errors.tooManyRequests();
    this.#waiters++;
    const off = this.#node.onApplied(fn);
    let on = true;
    return () => {
      if (!on) return;
      on = false;
      this.#waiters--;
      off();
    };
  }
}

/** The lease a recipe session uses: the caller's, or (for 0) a fresh one with the session TTL, as concurrency.NewSession. */
async function sessionLease(lessor: Lessor, lease: bigint): Promise<bigint> {
  if (lease !== 0n) return lease;
  const r = etcdserverpb.LeaseGrantResponse.decode(await lessor.grant({ TTL: limits.recipeSessionTtlSeconds }));
  return toBigInt(r.ID);
}

/** Go's fmt "%x" of an int64 (a negative ID keeps its sign). */
function hexId(id: bigint): string {
  return id.toString(16);
}

const cmpCreate = (key: Uint8Array, rev: number): etcdserverpb.ICompare => ({
  key, target: CompareTarget.CREATE, result: CompareResult.EQUAL, createRevision: rev,
});

/** concurrency.Mutex.Lock as the v3lock server runs it. */
async function lock(kv: LocalKv, lessor: Lessor, ctx: CallContext, req: v3lockpb.LockRequest): Promise<v3lockpb.ILockResponse> {
  const lease = await sessionLease(lessor, toBigInt(req.lease));
  const pfx = Buffer.concat([Buffer.from(req.name), Buffer.from('/')]);
  const myKey = Buffer.concat([pfx, Buffer.from(hexId(lease), 'latin1')]);
  const getOwner: etcdserverpb.IRequestOp = {
    requestRange: { key: pfx, rangeEnd: prefixEnd(pfx), limit: 1, sortTarget: SortTarget.CREATE, sortOrder: SortOrder.ASCEND },
  };
  const resp = await kv.txn({
    compare: [cmpCreate(myKey, 0)],
    success: [{ requestPut: { key: myKey, value: Buffer.alloc(0), lease: bigIntToLong(lease) } }, getOwner],
    failure: [{ requestRange: { key: myKey } }, getOwner],
  });
  let myRev = toNum(resp.header?.revision);
  if (!resp.succeeded) myRev = toNum(resp.responses[0].responseRange?.kvs?.[0]?.createRevision);
  const owner = resp.responses[1].responseRange?.kvs ?? [];
  if (owner.length === 0 || toNum(owner[0].createRevision) === myRev) return { header: resp.header, key: myKey };
  try {
    await kv.waitDeletes(ctx, pfx, myRev - 1);
  } catch (e) {
    await kv.del(myKey).catch(() => undefined); // release the waiter's key, as Mutex.Lock does
    throw e;
  }
  const g = await kv.get({ key: myKey });
  if (g.kvs.length === 0) throw errSessionExpired();
  return { header: g.header, key: myKey };
}

export function registerLockService(t: Registrar, kv: LocalKv, lessor: Lessor): void {
  t.addUnary('/v3lockpb.Lock/Lock', async (b, ctx) => {
    const req = decodeRequest(() => v3lockpb.LockRequest.decode(b));
    return v3lockpb.LockResponse.encode(await asClientErrors(() => lock(kv, lessor, ctx, req))).finish();
  });
  t.addUnary('/v3lockpb.Lock/Unlock', async (b) => {
    const req = decodeRequest(() => v3lockpb.UnlockRequest.decode(b));
    const r = await asClientErrors(() => kv.del(req.key));
    return v3lockpb.UnlockResponse.encode({ header: r.header }).finish();
  });
}

interface Leadership {
  key: Uint8Array;
  rev: number;
  lease: bigint;
}

/** concurrency.Election.Proclaim: put the value while the leader key still has its create revision. */
async function proclaim(kv: LocalKv, l: Leadership, value: Uint8Array): Promise<Header> {
  const r = await kv.txn({
    compare: [cmpCreate(l.key, l.rev)],
    success: [{ requestPut: { key: l.key, value, lease: bigIntToLong(l.lease) } }],
  });
  if (!r.succeeded) throw errNotLeader();
  return r.header as Header;
}

/** concurrency.Election.Resign (a resumed election always has a session, so the txn always runs). */
async function resign(kv: LocalKv, l: Leadership): Promise<Header> {
  const r = await kv.txn({ compare: [cmpCreate(l.key, l.rev)], success: [{ requestDeleteRange: { key: l.key } }] });
  return r.header as Header;
}

async function campaign(kv: LocalKv, lessor: Lessor, ctx: CallContext, req: v3electionpb.CampaignRequest): Promise<v3electionpb.ICampaignResponse> {
  const lease = await sessionLease(lessor, toBigInt(req.lease));
  const pfx = Buffer.concat([Buffer.from(req.name), Buffer.from('/')]);
  const k = Buffer.concat([pfx, Buffer.from(hexId(lease), 'latin1')]);
  const value = Buffer.from(req.value);
  const resp = await kv.txn({
    compare: [cmpCreate(k, 0)],
    success: [{ requestPut: { key: k, value, lease: bigIntToLong(lease) } }],
    failure: [{ requestRange: { key: k } }],
  });
  const l: Leadership = { key: k, rev: toNum(resp.header?.revision), lease };
  if (!resp.succeeded) {
    const cur = resp.responses[0].responseRange?.kvs?.[0];
    l.rev = toNum(cur?.createRevision);
    if (!Buffer.from(cur?.value ?? []).equals(value)) {
      try {
        await proclaim(kv, l, value);
      } catch (e) {
        await resign(kv, l).catch(() => undefined);
        throw e;
      }
    }
  }
  try {
    await kv.waitDeletes(ctx, pfx, l.rev - 1);
  } catch (e) {
    if ((e as EtcdError).code === GrpcCode.Canceled) await resign(kv, l).catch(() => undefined);
    throw e;
  }
  return { header: resp.header, leader: { name: req.name, key: k, rev: l.rev, lease: bigIntToLong(lease) } };
}

function leadershipOf(req: { leader?: v3electionpb.ILeaderKey | null }): Leadership {
  const lk = req.leader;
  if (lk == null) throw errMissingLeaderKey();
  return { key: lk.key ?? Buffer.alloc(0), rev: toNum(lk.rev), lease: toBigInt(lk.lease) };
}

/**
 * concurrency.Election.Observe: the current leader's kv, then every value it proclaims, then the
 * next leader once its key is deleted. Follows the MVCC history after each applied batch.
 */
function observe(kv: LocalKv, name: Uint8Array, stream: ServerStream): { stop(): void } {
  const pfx = Buffer.concat([Buffer.from(name), Buffer.from('/')]);
  const end = prefixEnd(pfx);
  let stopped = false;
  let off: (() => void) | null = null;
  /** The client is not reading: stop following the history until the stream drains (as etcd's
   * Observe blocks in Send), so an observer never buffers without bound. */
  let paused = false;
  const send = (header: Header, kvv: mvccpb.IKeyValue): void => {
    if (!stream.send(v3electionpb.LeaderResponse.encode({ header, kv: kvv }).finish())) paused = true;
  };
  // state: either waiting for a first put under the prefix, or following one leader key.
  let following: Buffer | null = null;
  let next = 0;
  /** True while the current leader is being looked up (no history to follow meanwhile). */
  let lookingUp = true;
  const step = (): void => {
    for (;;) {
      if (stopped || stream.closed || lookingUp || paused) return;
      const r = following === null ? kv.events(next, pfx, end) : kv.events(next, following, null);
      next = r.nextRev;
      let changed = false;
      for (const ev of r.events) {
        const evKv = ev.kv as mvccpb.IKeyValue;
        if (following === null) {
          if (ev.type === mvccpb.Event.EventType.DELETE) continue;
          following = Buffer.from(evKv.key as Uint8Array);
          send({ ...kv.header(), revision: evKv.modRevision }, evKv);
          next = toNum(evKv.modRevision) + 1;
          changed = true;
          break;
        }
        if (ev.type === mvccpb.Event.EventType.DELETE) {
          following = null;
          changed = true;
          break;
        }
        send(kv.header(toNum(evKv.modRevision)), evKv);
        if (paused) {
          next = toNum(evKv.modRevision) + 1; // resume after this event
          return;
        }
      }
      if (!changed) return;
      if (following === null) {
        void restart();
        return;
      }
    }
  };
  const fail = (): void => {
    stopped = true;
    off?.();
    // etcd's observe closes its channel on any error; Observe then returns nil (status OK).
    if (!stream.closed) stream.end(GrpcCode.OK);
  };
  const restart = async (): Promise<void> => {
    lookingUp = true;
    try {
      const r = await kv.getByCreate(pfx, 'first');
      lookingUp = false;
      if (stopped || stream.closed) return;
      if (r.kvs.length === 0) {
        following = null;
        next = toNum(r.header.revision);
      } else {
        following = Buffer.from(r.kvs[0].key as Uint8Array);
        send(r.header, r.kvs[0]);
        next = toNum(r.header.revision) + 1;
      }
      step();
    } catch {
      fail();
    }
  };
  const safeStep = (): void => {
    try {
      step();
    } catch {
      fail();
    }
  };
  stream.onDrain?.(() => {
    if (!paused) return;
    paused = false;
    safeStep();
  });
  try {
    off = kv.follow(safeStep);
  } catch (e) {
    const err = e as EtcdError;
    stream.end(err.code, err.message);
    stopped = true;
  }
  if (!stopped) void restart();
  return {
    stop(): void {
      stopped = true;
      off?.();
    },
  };
}

export function registerElectionService(t: Registrar, kv: LocalKv, lessor: Lessor): void {
  const svc = '/v3electionpb.Election/';
  t.addUnary(svc + 'Campaign', async (b, ctx) => {
    const req = decodeRequest(() => v3electionpb.CampaignRequest.decode(b));
    return v3electionpb.CampaignResponse.encode(await asClientErrors(() => campaign(kv, lessor, ctx, req))).finish();
  });
  t.addUnary(svc + 'Proclaim', async (b) => {
    const req = decodeRequest(() => v3electionpb.ProclaimRequest.decode(b));
    const header = await asClientErrors(() => proclaim(kv, leadershipOf(req), Buffer.from(req.value)));
    return v3electionpb.ProclaimResponse.encode({ header }).finish();
  });
  t.addUnary(svc + 'Resign', async (b) => {
    const req = decodeRequest(() => v3electionpb.ResignRequest.decode(b));
    const header = await asClientErrors(() => resign(kv, leadershipOf(req)));
    return v3electionpb.ResignResponse.encode({ header }).finish();
  });
  t.addUnary(svc + 'Leader', async (b) => {
    const req = decodeRequest(() => v3electionpb.LeaderRequest.decode(b));
    const pfx = Buffer.concat([Buffer.from(req.name), Buffer.from('/')]);
    const r = await asClientErrors(() => kv.getByCreate(pfx, 'first'));
    if (r.kvs.length === 0) throw errNoLeader();
    return v3electionpb.LeaderResponse.encode({ header: r.header, kv: r.kvs[0] }).finish();
  });
  t.addStream(svc + 'Observe', (stream) => {
    let obs: { stop(): void } | null = null;
    stream.onCancel(() => obs?.stop());
    return {
      onMessage(msg: Uint8Array): void {
        if (obs !== null) return; // a server-streaming call has one request
        let req: v3electionpb.LeaderRequest;
        try {
          req = v3electionpb.LeaderRequest.decode(msg);
        } catch (e) {
          const err = unmarshalError(e);
          stream.end(err.code, err.message);
          return;
        }
        obs = observe(kv, req.name, stream);
      },
      onEnd(): void {
        // The client half-closes after its one request; the stream stays open for proclamations.
      },
    };
  });
}
