// What etcd's v3lock and v3election services stand on. etcd implements them with its own Go client
// recipes (clientv3/concurrency: Mutex, Election) looping back into the server; here the same
// algorithms (lock_service.ts, election_service.ts) call the server's own KV functions (EtcdServer.kv:
// the functions behind KV/Range, Txn and DeleteRange, so validation and the quota apply as to any
// client) and wait through the Watch handler (local_watch.ts), as the recipes watch through their
// client. Key names, revisions, headers and errors are etcd's, so a gRPC (or gateway) client cannot
// tell the difference.
//
// Fencing: a lock's key is deleted when its lease expires, but a holder may not notice in time.
// Anyone who acts under a lock must guard the action with the lock key's revision (a txn comparing
// the key's create_revision), the fencing token; Jepsen showed etcd locks alone do not give mutual
// exclusion. See docs/LEASES.md.
import { etcdserverpb, mvccpb } from '../../shared/gen/etcd';
import { Errors, EtcdError, GrpcCode } from '../../shared/errors';
import { limits } from '../../shared/limits';
import { toBigInt, toNum } from '../../shared/long';
import { prefixEnd } from '../../shared/key_range';
import type { CallContext } from '../net/rpc';
import type { KvApi, KvContext } from '../server';
import type { LocalWatch, LocalWatcher, LocalWatchSink } from '../watch/local_watch';
import type { Lessor } from './lessor';

export type Header = etcdserverpb.IResponseHeader;
const SortOrder = etcdserverpb.RangeRequest.SortOrder;
const SortTarget = etcdserverpb.RangeRequest.SortTarget;
const CompareTarget = etcdserverpb.Compare.CompareTarget;
const CompareResult = etcdserverpb.Compare.CompareResult;
const DELETE = mvccpb.Event.EventType.DELETE;

/** A plain error in etcd's recipes: grpc-go answers it as code Unknown with the text. */
export const recipeError = (message: string): EtcdError => new EtcdError(GrpcCode.Unknown, message);
const errCanceled = (): EtcdError => new EtcdError(GrpcCode.Canceled, 'context canceled');

/**
 * etcd's recipe servers call the server through a Go client, which turns every status it gets back
 * into a plain error; grpc-go then answers the recipe call with code Unknown and the same text
 * (for example "etcdserver: requested lease not found" comes back as Unknown, not NotFound).
 */
export async function asClientErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof EtcdError && e.code !== GrpcCode.Canceled) throw recipeError(e.message);
    throw e;
  }
}

/**
 * The cancellation of one Lock or Campaign call, as the recipes' context: registered once when the
 * call starts (a hook registered after the call was cancelled would never run), and asked by each
 * wait that follows.
 */
export class CallCancel {
  #canceled = false;
  #fn: (() => void) | null = null;

  constructor(ctx: CallContext) {
    ctx.onCancel?.(() => {
      this.#canceled = true;
      this.#fn?.();
    });
  }

  get canceled(): boolean {
    return this.#canceled;
  }

  /** fn runs when the call is cancelled, until the returned function is called (one wait at a time). */
  watch(fn: () => void): () => void {
    this.#fn = fn;
    return () => { if (this.#fn === fn) this.#fn = null; };
  }
}

/** Go's fmt "%x" of an int64 (a negative ID keeps its sign). */
export function hexId(id: bigint): string {
  return id.toString(16);
}

/** The recipes' compare "the key's create revision is rev" (0: the key does not exist). */
export const cmpCreate = (key: Uint8Array, rev: number): etcdserverpb.ICompare => ({
  key, target: CompareTarget.CREATE, result: CompareResult.EQUAL, createRevision: rev,
});

/** `name/`: the prefix under which a lock's or an election's keys live. */
export function recipePrefix(name: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(name), Buffer.from('/')]);
}

/** The client calls the recipes make, on this member's KV functions and Watch handler. */
export class RecipeClient {
  readonly #kv: KvApi;
  readonly #watches: LocalWatcher;
  readonly #lessor: Lessor;
  /** Whose calls these are: the Lock or Election call's credentials, as etcd's recipes pass the
   * incoming token on to the KV calls they make (none: the server's own). */
  readonly #ctx: KvContext | undefined;

  constructor(kv: KvApi, watches: LocalWatcher, lessor: Lessor, ctx?: KvContext) {
    this.#kv = kv;
    this.#watches = watches;
    this.#lessor = lessor;
    this.#ctx = ctx;
  }

  /** The same client making its KV calls with this call's credentials. */
  as(ctx: KvContext): RecipeClient {
    return new RecipeClient(this.#kv, this.#watches, this.#lessor, { metadata: ctx.metadata, peerCertificateCN: ctx.peerCertificateCN });
  }

  async txn(req: etcdserverpb.ITxnRequest): Promise<etcdserverpb.TxnResponse> {
    return etcdserverpb.TxnResponse.decode(await this.#kv.txn(etcdserverpb.TxnRequest.encode(req).finish(), this.#ctx));
  }

  async del(key: Uint8Array): Promise<etcdserverpb.DeleteRangeResponse> {
    return etcdserverpb.DeleteRangeResponse.decode(await this.#kv.deleteRange(etcdserverpb.DeleteRangeRequest.encode({ key }).finish(), this.#ctx));
  }

  /** A linearizable Get, as the Go client's default. */
  async get(req: etcdserverpb.IRangeRequest): Promise<{ header: Header; kvs: mvccpb.IKeyValue[] }> {
    const r = etcdserverpb.RangeResponse.decode(await this.#kv.range(etcdserverpb.RangeRequest.encode(req).finish(), this.#ctx));
    return { header: r.header ?? {}, kvs: r.kvs };
  }

  /** The first or last key created under prefix (clientv3.WithFirstCreate / WithLastCreate), at most maxCreateRev when given. */
  getByCreate(prefix: Buffer, order: 'first' | 'last', maxCreateRev = 0): Promise<{ header: Header; kvs: mvccpb.IKeyValue[] }> {
    return this.get({
      key: prefix, rangeEnd: prefixEnd(prefix), limit: 1, sortTarget: SortTarget.CREATE,
      sortOrder: order === 'first' ? SortOrder.ASCEND : SortOrder.DESCEND, maxCreateRevision: maxCreateRev,
    });
  }

  /** The lease a recipe session uses: the caller's, or (for 0) a fresh one with the session TTL, as concurrency.NewSession. */
  async sessionLease(lease: bigint): Promise<bigint> {
    if (lease !== 0n) return lease;
    const r = etcdserverpb.LeaseGrantResponse.decode(await this.#lessor.grant({ TTL: limits.recipeSessionTtlSeconds }));
    return toBigInt(r.ID);
  }

  /** A watch through the Watch handler (see local_watch.ts); throws "too many requests" past its limit. */
  watch(create: etcdserverpb.IWatchCreateRequest, sink: LocalWatchSink): LocalWatch {
    return this.#watches.watch(create, sink);
  }

  /**
   * concurrency's waitDelete: watches key from rev until a DELETE event. Fails as the Go client's
   * watch does: "context canceled" when the call is cancelled, etcd's compacted error when rev is
   * compacted, and with the status of a refusal by the watch service (a watch worker that fails and
   * restarts meanwhile is not one: the watch resumes, see local_watch.ts).
   */
  waitDelete(cancel: CallCancel, key: Uint8Array, rev: number): Promise<void> {
    if (cancel.canceled) return Promise.reject(errCanceled());
    return new Promise<void>((resolve, reject) => {
      let w: LocalWatch | null = null;
      let done = false;
      const finish = (err: EtcdError | null): void => {
        if (done) return;
        done = true;
        unwatch();
        w?.stop();
        if (err) reject(err);
        else resolve();
      };
      const unwatch = cancel.watch(() => finish(errCanceled()));
      try {
        w = this.watch({ key, startRevision: rev }, {
          onResponse: (r) => {
            if (toNum(r.compactRevision) > 0) finish(Errors.compacted());
            else if (r.canceled) finish(recipeError(r.cancelReason || 'lost watcher waiting for delete'));
            else if (r.events.some((ev) => ev.type === DELETE)) finish(null);
            return true;
          },
          onEnd: (code, message) => finish(new EtcdError(code, message)),
        });
      } catch (e) {
        finish(e instanceof EtcdError ? e : recipeError(String(e)));
      }
      if (done) w?.stop(); // ended while the watch was being opened
    });
  }

  /** concurrency's waitDeletes: until no key under prefix created at or below maxCreateRev is left. */
  async waitDeletes(cancel: CallCancel, prefix: Buffer, maxCreateRev: number): Promise<Header> {
    for (;;) {
      if (cancel.canceled) throw errCanceled();
      const r = await this.getByCreate(prefix, 'last', maxCreateRev);
      if (r.kvs.length === 0) return r.header;
      await this.waitDelete(cancel, r.kvs[0].key as Uint8Array, toNum(r.header.revision));
    }
  }
}
