// etcd's applierV3backend.Put and DeleteRange against a WriteTxn (standalone or inside a Txn).
import { etcdserverpb } from '../../shared/gen/etcd';
import { Errors } from '../../shared/errors';
import { int64Words, toPb } from '../../shared/mvcc/records';
import { ReadView, asBuffer, toInterval } from '../../shared/mvcc/view';
import { WriteTxn } from './write';

/**
 * The one refusal etcd would not make: a long key whose hash tag another stored key holds (a 2^-111
 * event, long_keys.ts). Deterministic on every member: it depends on the store's content only.
 */
export function checkStorable(view: ReadView, key: Uint8Array | null | undefined): void {
  if (!view.canStore(asBuffer(key))) throw Errors.requestTooLarge();
}

export function applyPut(wt: WriteTxn, p: etcdserverpb.IPutRequest): etcdserverpb.IPutResponse {
  const key = asBuffer(p.key);
  checkStorable(wt.view(), key);
  let value = asBuffer(p.value);
  let { hi, lo } = int64Words(p.lease);
  if ((hi !== 0 || lo !== 0) && !wt.hasLease(hi, lo)) throw Errors.leaseNotFound();
  const resp: etcdserverpb.IPutResponse = { header: {} };
  // Read once: the same record is the put's predecessor in WriteTxn.put.
  const prev = wt.view().latest(key);
  if ((p.ignoreValue || p.ignoreLease) && prev === undefined) throw Errors.keyNotFound();
  if (prev !== undefined) {
    if (p.ignoreValue) value = prev.value;
    if (p.ignoreLease) ({ leaseHi: hi, leaseLo: lo } = prev);
    if (p.prevKv) resp.prevKv = toPb(prev, false);
  }
  wt.put(key, value, hi, lo, prev);
  resp.header = { revision: wt.beginRev + 1 };
  return resp;
}

export function applyDeleteRange(wt: WriteTxn, dr: etcdserverpb.IDeleteRangeRequest): etcdserverpb.IDeleteRangeResponse {
  const iv = toInterval(dr.key, dr.rangeEnd);
  const resp: etcdserverpb.IDeleteRangeResponse = {};
  const deleted = wt.deleteRange(iv);
  const n = deleted.length;
  if (dr.prevKv && n > 0) resp.prevKvs = deleted.map((kv) => toPb(kv, false));
  if (n !== 0) resp.deleted = n;
  resp.header = { revision: n !== 0 || wt.changes > 0 ? wt.beginRev + 1 : wt.beginRev };
  return resp;
}
