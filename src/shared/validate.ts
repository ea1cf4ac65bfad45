// Request checks made on the main thread before anything is proposed, as etcd's v3rpc layer does
// (api/v3rpc/key.go: checkRangeRequest, checkPutRequest, checkDeleteRequest, checkTxnRequest, checkIntervals).
// Each throws the EtcdError etcd returns, in etcd's order.
import { etcdserverpb } from './gen/etcd';
import { EtcdError, Errors, GrpcCode } from './errors';
import { Int64 } from './long';

type Bytes = Uint8Array | null | undefined;

/** etcd 3.4 has no check here and crashes (nil sorter) on a sort target outside the enum; 3.5 answers this. */
export const invalidSortOption = (): EtcdError => new EtcdError(GrpcCode.InvalidArgument, 'etcdserver: invalid sort option');

function len(b: Bytes): number {
  return b ? b.length : 0;
}

function isZero(v: Int64): boolean {
  if (v === null || v === undefined) return true;
  return typeof v === 'number' ? v === 0 : v.isZero();
}

export function validateRange(r: etcdserverpb.IRangeRequest): void {
  if (len(r.key) === 0) throw Errors.emptyKey();
  // etcd 3.4 treats an unknown sort order as "fetch all, no sort": accepted here too.
  const target = r.sortTarget ?? 0;
  if (!(target in etcdserverpb.RangeRequest.SortTarget) || typeof etcdserverpb.RangeRequest.SortTarget[target] !== 'string') {
    throw invalidSortOption();
  }
}

export function validatePut(r: etcdserverpb.IPutRequest): void {
  if (len(r.key) === 0) throw Errors.emptyKey();
  if (r.ignoreValue && len(r.value) !== 0) throw Errors.valueProvided();
  if (r.ignoreLease && !isZero(r.lease)) throw Errors.leaseProvided();
}

export function validateDeleteRange(r: etcdserverpb.IDeleteRangeRequest): void {
  if (len(r.key) === 0) throw Errors.emptyKey();
}

export function validateTxn(r: etcdserverpb.ITxnRequest, txnOpsMax: number): void {
  checkTxnRequest(r, txnOpsMax);
  // Overlaps are checked after the request, to avoid a quadratic blowup on huge txns (as etcd).
  checkIntervals(r.success ?? []);
  checkIntervals(r.failure ?? []);
}

function checkTxnRequest(r: etcdserverpb.ITxnRequest, txnOpsMax: number): void {
  const opc = Math.max(r.compare?.length ?? 0, r.success?.length ?? 0, r.failure?.length ?? 0);
  if (opc > txnOpsMax) throw Errors.tooManyOps();
  for (const c of r.compare ?? []) if (len(c.key) === 0) throw Errors.emptyKey();
  for (const op of r.success ?? []) checkRequestOp(op, txnOpsMax - opc);
  for (const op of r.failure ?? []) checkRequestOp(op, txnOpsMax - opc);
}

function checkRequestOp(op: etcdserverpb.IRequestOp, txnOpsMax: number): void {
  if (op.requestRange != null) return validateRange(op.requestRange);
  if (op.requestPut != null) return validatePut(op.requestPut);
  if (op.requestDeleteRange != null) return validateDeleteRange(op.requestDeleteRange);
  if (op.requestTxn != null) return checkTxnRequest(op.requestTxn, txnOpsMax);
  throw Errors.keyNotFound(); // an empty op, as etcd answers it
}

/**
 * etcd's adt "string affine" interval: the empty string is +infinity. A delete [key, end) overlaps a put of k
 * when key <= k < end; a delete without range_end is the point [key, key+"\0"). A delete whose range_end is
 * below its key (e.g. "\0" for "from key") overlaps nothing, exactly as in etcd.
 */
interface Interval {
  begin: Buffer;
  end: Buffer; // empty = +infinity
}

function affineLess(a: Buffer, b: Buffer): boolean {
  if (a.length === 0) return false;
  if (b.length === 0) return true;
  return Buffer.compare(a, b) < 0;
}

function buf(b: Bytes): Buffer {
  if (!b) return Buffer.alloc(0);
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function intersectsPoint(dels: Interval[], k: Buffer): boolean {
  return dels.some((d) => !affineLess(k, d.begin) && affineLess(k, d.end));
}

/** etcd's checkIntervals: puts may not repeat or fall in a delete, across nested txns as etcd orders it. */
function checkIntervals(reqs: etcdserverpb.IRequestOp[]): { puts: Set<string>; dels: Interval[] } {
  const dels: Interval[] = [];
  for (const op of reqs) {
    const d = op.requestPut == null && op.requestRange == null ? op.requestDeleteRange : null;
    if (d == null) continue;
    const key = buf(d.key);
    const end = len(d.rangeEnd) !== 0 ? buf(d.rangeEnd) : Buffer.concat([key, Buffer.from([0])]);
    dels.push({ begin: key, end });
  }
  const puts = new Set<string>();
  for (const op of reqs) {
    if (op.requestRange != null || op.requestPut != null || op.requestDeleteRange != null || op.requestTxn == null) continue;
    const t = checkIntervals(op.requestTxn.success ?? []);
    const e = checkIntervals(op.requestTxn.failure ?? []);
    for (const k of t.puts) {
      if (puts.has(k) || intersectsPoint(dels, Buffer.from(k, 'latin1'))) throw Errors.duplicateKey();
      puts.add(k);
    }
    for (const k of e.puts) {
      // a key put on both branches of one nested txn is fine: only one branch runs
      if (puts.has(k) && !t.puts.has(k)) throw Errors.duplicateKey();
      if (intersectsPoint(dels, Buffer.from(k, 'latin1'))) throw Errors.duplicateKey();
      puts.add(k);
    }
    // etcd unions only intervals that overlap ["\0", +inf): an inverted delete interval is dropped.
    for (const iv of [...t.dels, ...e.dels]) if (affineLess(Buffer.from([0]), iv.end)) dels.push(iv);
  }
  for (const op of reqs) {
    if (op.requestRange != null || op.requestPut == null) continue;
    const k = buf(op.requestPut.key);
    const ks = k.toString('latin1');
    if (puts.has(ks) || intersectsPoint(dels, k)) throw Errors.duplicateKey();
    puts.add(ks);
  }
  return { puts, dels };
}
