// etcd's v3lock service: concurrency.Mutex.Lock and Unlock as etcd's server runs them, over the
// recipe client (recipes.ts).
import { etcdserverpb, v3lockpb } from '../../shared/gen/etcd';
import { decodeRequest, EtcdError } from '../../shared/errors';
import { bigIntToLong, toBigInt, toNum } from '../../shared/long';
import { prefixEnd } from '../../shared/key_range';
import type { CallContext, Registrar } from '../net/rpc';
import { asClientErrors, CallCancel, cmpCreate, hexId, RecipeClient, recipeError, recipePrefix } from './recipes';

const SortOrder = etcdserverpb.RangeRequest.SortOrder;
const SortTarget = etcdserverpb.RangeRequest.SortTarget;
const errSessionExpired = (): EtcdError => recipeError('mutex: session is expired');

/** concurrency.Mutex.Lock as the v3lock server runs it. */
async function lock(c: RecipeClient, cancel: CallCancel, req: v3lockpb.LockRequest): Promise<v3lockpb.ILockResponse> {
  const lease = await c.sessionLease(toBigInt(req.lease));
  const pfx = recipePrefix(req.name);
  const myKey = Buffer.concat([pfx, Buffer.from(hexId(lease), 'latin1')]);
  const getOwner: etcdserverpb.IRequestOp = {
    requestRange: { key: pfx, rangeEnd: prefixEnd(pfx), limit: 1, sortTarget: SortTarget.CREATE, sortOrder: SortOrder.ASCEND },
  };
  const resp = await c.txn({
    compare: [cmpCreate(myKey, 0)],
    success: [{ requestPut: { key: myKey, value: Buffer.alloc(0), lease: bigIntToLong(lease) } }, getOwner],
    failure: [{ requestRange: { key: myKey } }, getOwner],
  });
  let myRev = toNum(resp.header?.revision);
  if (!resp.succeeded) myRev = toNum(resp.responses[0].responseRange?.kvs?.[0]?.createRevision);
  const owner = resp.responses[1].responseRange?.kvs ?? [];
  if (owner.length === 0 || toNum(owner[0].createRevision) === myRev) return { header: resp.header, key: myKey };
  try {
    await c.waitDeletes(cancel, pfx, myRev - 1);
  } catch (e) {
    await c.del(myKey).catch(() => undefined); // release the waiter's key, as Mutex.Lock does
    throw e;
  }
  const g = await c.get({ key: myKey });
  if (g.kvs.length === 0) throw errSessionExpired();
  return { header: g.header, key: myKey };
}

export function registerLockService(t: Registrar, c: RecipeClient): void {
  t.addUnary('/v3lockpb.Lock/Lock', async (b: Uint8Array, ctx: CallContext) => {
    const cancel = new CallCancel(ctx); // before the first await: the call may be cancelled during it
    const req = decodeRequest(() => v3lockpb.LockRequest.decode(b));
    return v3lockpb.LockResponse.encode(await asClientErrors(() => lock(c.as(ctx), cancel, req))).finish();
  });
  t.addUnary('/v3lockpb.Lock/Unlock', async (b, ctx) => {
    const req = decodeRequest(() => v3lockpb.UnlockRequest.decode(b));
    const r = await asClientErrors(() => c.as(ctx).del(req.key));
    return v3lockpb.UnlockResponse.encode({ header: r.header }).finish();
  });
}
