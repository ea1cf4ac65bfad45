// etcd's Lease gRPC service (api/v3rpc/lease.go) over the lessor: grant and revoke go through the
// log; keep-alive, time-to-live and the lease list are answered by the leader's lessor.
import { etcdserverpb } from '../../shared/gen/etcd';
import { decodeRequest, EtcdError, GrpcCode, unmarshalError } from '../../shared/errors';
import { limits } from '../../shared/limits';
import { bigIntToLong, toBigInt } from '../../shared/long';
import type { CallContext, Registrar } from '../net/rpc';
import type { EntryAuth } from '../../shared/entry';
import { Lessor } from './lessor';

/** Response headers with the member's IDs, the current revision and term. */
export type HeaderFn = () => etcdserverpb.IResponseHeader;

/** etcd's quotaLeaseServer: refuses a grant (and raises NOSPACE) when the backend is over its quota. */
export type GrantQuotaCheck = () => Promise<void>;

/** entryAuth: the caller's user for a revoke (checked at apply: write permission on every attached key). */
export function registerLeaseService(
  t: Registrar,
  lessor: Lessor,
  header: HeaderFn,
  entryAuth: (ctx: CallContext) => EntryAuth,
  quota?: GrantQuotaCheck,
): void {
  const svc = '/etcdserverpb.Lease/';
  t.addUnary(svc + 'LeaseGrant', async (b) => {
    const req = decodeRequest(() => etcdserverpb.LeaseGrantRequest.decode(b));
    await quota?.();
    return lessor.grant(req);
  });
  t.addUnary(svc + 'LeaseRevoke', (b, ctx) => {
    const r = decodeRequest(() => etcdserverpb.LeaseRevokeRequest.decode(b));
    return lessor.revoke(toBigInt(r.ID), entryAuth(ctx));
  }, 'read'); // clientv3 repeats a revoke (a repeated one finds no lease and changes nothing)
  t.addUnary(svc + 'LeaseTimeToLive', async (b) => {
    const r = decodeRequest(() => etcdserverpb.LeaseTimeToLiveRequest.decode(b));
    const id = toBigInt(r.ID);
    const st = await lessor.timeToLive(id);
    const resp: etcdserverpb.ILeaseTimeToLiveResponse = st === null
      ? { header: header(), ID: r.ID, TTL: -1 }
      : { header: header(), ID: r.ID, TTL: st.ttl, grantedTTL: st.grantedTtl };
    if (st !== null && r.keys) resp.keys = lessor.attachedKeys(id);
    return etcdserverpb.LeaseTimeToLiveResponse.encode(resp).finish();
  }, 'read');
  t.addUnary(svc + 'LeaseLeases', async (b) => {
    decodeRequest(() => etcdserverpb.LeaseLeasesRequest.decode(b));
    const ids = await lessor.list();
    return etcdserverpb.LeaseLeasesResponse.encode({ header: header(), leases: ids.map((id) => ({ ID: bigIntToLong(id) })) }).finish();
  }, 'read');
  t.addStream(svc + 'LeaseKeepAlive', (stream) => {
    // Requests are answered in order, one at a time, as etcd's keep-alive loop does.
    const queue: bigint[] = [];
    let running = false;
    let ended = false;
    const finish = (code: GrpcCode, message = ''): void => {
      if (!stream.closed) stream.end(code, message);
    };
    // A client that sends but does not read: answers wait (requests queue up to
    // leaseKeepAliveQueueMax) until the stream drains, as etcd's loop blocks in Send.
    let blocked = false;
    stream.onDrain?.(() => {
      if (!blocked) return;
      blocked = false;
      void pump();
    });
    const pump = async (): Promise<void> => {
      if (running || blocked) return;
      running = true;
      try {
        while (queue.length > 0 && !stream.closed && !blocked) {
          const id = queue.shift() as bigint;
          const ttl = await lessor.renew(id);
          if (stream.closed) return;
          blocked = !stream.send(etcdserverpb.LeaseKeepAliveResponse.encode({ header: header(), ID: bigIntToLong(id), TTL: ttl }).finish());
        }
        if (ended && queue.length === 0) finish(GrpcCode.OK);
      } catch (e) {
        const err = e instanceof EtcdError ? e : new EtcdError(GrpcCode.Unknown, (e as Error).message);
        finish(err.code, err.message);
      } finally {
        running = false;
      }
    };
    return {
      onMessage(msg: Uint8Array): void {
        let req: etcdserverpb.LeaseKeepAliveRequest;
        try {
          req = etcdserverpb.LeaseKeepAliveRequest.decode(msg);
        } catch (e) {
          const err = unmarshalError(e);
          finish(err.code, err.message);
          return;
        }
        if (queue.length >= limits.leaseKeepAliveQueueMax) {
          finish(GrpcCode.ResourceExhausted, 'etcdserver: too many requests');
          return;
        }
        queue.push(toBigInt(req.ID));
        void pump();
      },
      onEnd(): void {
        ended = true;
        if (!running && queue.length === 0) finish(GrpcCode.OK);
      },
    };
  });
}
