// etcd's v3election service: concurrency.Election's Campaign, Proclaim, Resign, Leader and Observe
// as etcd's server runs them, over the recipe client (recipes.ts).
import { etcdserverpb, mvccpb, v3electionpb } from '../../shared/gen/etcd';
import { decodeRequest, EtcdError, GrpcCode, unmarshalError } from '../../shared/errors';
import { bigIntToLong, toBigInt, toNum } from '../../shared/long';
import { prefixEnd } from '../../shared/key_range';
import type { CallContext, Registrar, ServerStream } from '../net/rpc';
import type { LocalWatch } from '../watch/local_watch';
import { asClientErrors, CallCancel, cmpCreate, Header, hexId, RecipeClient, recipeError, recipePrefix } from './recipes';

const PUT = mvccpb.Event.EventType.PUT;
const DELETE = mvccpb.Event.EventType.DELETE;
const errNotLeader = (): EtcdError => recipeError('election: not leader');
const errNoLeader = (): EtcdError => recipeError('election: no leader');
const errMissingLeaderKey = (): EtcdError => recipeError('"leader" field must be provided');

interface Leadership {
  key: Uint8Array;
  rev: number;
  lease: bigint;
}

/** concurrency.Election.Proclaim: put the value while the leader key still has its create revision. */
async function proclaim(c: RecipeClient, l: Leadership, value: Uint8Array): Promise<Header> {
  const r = await c.txn({
    compare: [cmpCreate(l.key, l.rev)],
    success: [{ requestPut: { key: l.key, value, lease: bigIntToLong(l.lease) } }],
  });
  if (!r.succeeded) throw errNotLeader();
  return r.header as Header;
}

/** concurrency.Election.Resign (a resumed election always has a session, so the txn always runs). */
async function resign(c: RecipeClient, l: Leadership): Promise<Header> {
  const r = await c.txn({ compare: [cmpCreate(l.key, l.rev)], success: [{ requestDeleteRange: { key: l.key } }] });
  return r.header as Header;
}

async function campaign(c: RecipeClient, cancel: CallCancel, req: v3electionpb.CampaignRequest): Promise<v3electionpb.ICampaignResponse> {
  const lease = await c.sessionLease(toBigInt(req.lease));
  const pfx = recipePrefix(req.name);
  const k = Buffer.concat([pfx, Buffer.from(hexId(lease), 'latin1')]);
  const value = Buffer.from(req.value);
  const resp = await c.txn({
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
        await proclaim(c, l, value);
      } catch (e) {
        await resign(c, l).catch(() => undefined);
        throw e;
      }
    }
  }
  try {
    await c.waitDeletes(cancel, pfx, l.rev - 1);
  } catch (e) {
    if ((e as EtcdError).code === GrpcCode.Canceled) await resign(c, l).catch(() => undefined);
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
 * concurrency.Election.Observe on one stream: the current leader's kv (or, with none, the first put
 * under the prefix), then every value it proclaims, then, once its key is deleted, the next leader.
 * One watch at a time, as etcd's observe loop. While the client does not read, the watch is paused
 * (as etcd's Observe blocks in Send), so an observer never buffers without bound. Any failure ends
 * the stream with OK, as etcd's observe closes its channel and Observe returns nil.
 */
class Observer {
  readonly #c: RecipeClient;
  readonly #pfx: Buffer;
  readonly #stream: ServerStream;
  #watch: LocalWatch | null = null;
  #stopped = false;
  #paused = false;

  constructor(c: RecipeClient, name: Uint8Array, stream: ServerStream) {
    this.#c = c;
    this.#pfx = recipePrefix(name);
    this.#stream = stream;
    stream.onDrain?.(() => {
      if (!this.#paused) return;
      this.#paused = false;
      this.#watch?.resume();
    });
  }

  stop(): void {
    this.#stopped = true;
    this.#closeWatch();
  }

  /** Looks up the leader: the first key created under the prefix. */
  async lookup(): Promise<void> {
    let r: { header: Header; kvs: mvccpb.IKeyValue[] };
    try {
      r = await this.#c.getByCreate(this.#pfx, 'first');
    } catch {
      return this.#fail();
    }
    if (this.#over()) return;
    if (r.kvs.length === 0) return this.#watchFirstPut(toNum(r.header.revision));
    this.#send(r.header, r.kvs[0]);
    this.#follow(r.kvs[0].key as Uint8Array, toNum(r.header.revision) + 1);
  }

  /** No leader: the first put under the prefix is the next one (deletes are skipped, as etcd does). */
  #watchFirstPut(rev: number): void {
    this.#open({ key: this.#pfx, rangeEnd: prefixEnd(this.#pfx), startRevision: rev }, (resp) => {
      const ev = resp.events.find((e) => e.type === PUT);
      if (ev === undefined) return;
      const kv = ev.kv as mvccpb.IKeyValue;
      this.#closeWatch();
      this.#send({ ...resp.header, revision: kv.modRevision }, kv);
      this.#follow(kv.key as Uint8Array, toNum(kv.modRevision) + 1);
    });
  }

  /** Sends every put of the leader's key from rev on, until its delete; then looks up the next leader. */
  #follow(key: Uint8Array, rev: number): void {
    this.#open({ key, startRevision: rev }, (resp) => {
      for (const ev of resp.events) {
        if (ev.type === DELETE) {
          this.#closeWatch();
          void this.lookup();
          return;
        }
        this.#send(resp.header ?? {}, ev.kv as mvccpb.IKeyValue);
      }
    });
  }

  /** Opens the one watch; onEvents gets its responses that carry events. */
  #open(create: etcdserverpb.IWatchCreateRequest, onEvents: (resp: etcdserverpb.WatchResponse) => void): void {
    if (this.#over()) return;
    try {
      this.#watch = this.#c.watch(create, {
        onResponse: (resp) => {
          if (this.#over()) return false;
          if (resp.canceled || toNum(resp.compactRevision) > 0) this.#fail();
          else if (resp.events.length > 0) onEvents(resp);
          return !this.#paused;
        },
        onEnd: () => this.#fail(),
      });
    } catch (e) {
      // Too many in-process watches: the stream ends with that status.
      this.stop();
      const err = e instanceof EtcdError ? e : new EtcdError(GrpcCode.Internal, String(e));
      if (!this.#stream.closed) this.#stream.end(err.code, err.message);
    }
  }

  #send(header: Header, kv: mvccpb.IKeyValue): void {
    if (!this.#stream.send(v3electionpb.LeaderResponse.encode({ header, kv }).finish())) this.#paused = true;
  }

  #over(): boolean {
    return this.#stopped || this.#stream.closed;
  }

  #closeWatch(): void {
    const w = this.#watch;
    this.#watch = null;
    w?.stop();
  }

  #fail(): void {
    this.stop();
    if (!this.#stream.closed) this.#stream.end(GrpcCode.OK);
  }
}

export function registerElectionService(t: Registrar, c: RecipeClient): void {
  const svc = '/v3electionpb.Election/';
  t.addUnary(svc + 'Campaign', async (b: Uint8Array, ctx: CallContext) => {
    const cancel = new CallCancel(ctx); // before the first await: the call may be cancelled during it
    const req = decodeRequest(() => v3electionpb.CampaignRequest.decode(b));
    return v3electionpb.CampaignResponse.encode(await asClientErrors(() => campaign(c.as(ctx), cancel, req))).finish();
  });
  t.addUnary(svc + 'Proclaim', async (b, ctx) => {
    const req = decodeRequest(() => v3electionpb.ProclaimRequest.decode(b));
    const header = await asClientErrors(() => proclaim(c.as(ctx), leadershipOf(req), Buffer.from(req.value)));
    return v3electionpb.ProclaimResponse.encode({ header }).finish();
  });
  t.addUnary(svc + 'Resign', async (b, ctx) => {
    const req = decodeRequest(() => v3electionpb.ResignRequest.decode(b));
    const header = await asClientErrors(() => resign(c.as(ctx), leadershipOf(req)));
    return v3electionpb.ResignResponse.encode({ header }).finish();
  });
  t.addUnary(
    svc + 'Leader',
    async (b, ctx) => {
      const req = decodeRequest(() => v3electionpb.LeaderRequest.decode(b));
      const r = await asClientErrors(() => c.as(ctx).getByCreate(recipePrefix(req.name), 'first'));
      if (r.kvs.length === 0) throw errNoLeader();
      return v3electionpb.LeaderResponse.encode({ header: r.header, kv: r.kvs[0] }).finish();
    },
    'read',
  );
  t.addStream(svc + 'Observe', (stream, ctx) => {
    let obs: Observer | null = null;
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
        obs = new Observer(c.as(ctx), req.name, stream);
        void obs.lookup();
      },
      onEnd(): void {
        // The client half-closes after its one request; the stream stays open for proclamations.
      },
    };
  });
}
