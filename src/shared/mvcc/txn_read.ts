// etcd's Txn compares and its read-only txns (applierV3backend.Txn without writes): the compares
// against the state before the txn pick a path through the (nested) branches. The apply worker's
// applyTxn (src/workers/mvcc/txn.ts) uses the same path and checks before it writes anything; a txn
// whose branches only range is served here from a read transaction, without the Raft log, as etcd
// serves it.
import { etcdserverpb } from '../gen/etcd';
import { Errors, assert } from '../errors';
import { Int64 } from '../long';
import { bytesCompare } from './keys';
import { applyRange } from './range';
import { Kv, approxNum, compareWords, int64Words } from './records';
import { ReadView, asBuffer, toInterval } from './view';

export type Op = etcdserverpb.IRequestOp;
const CompareTarget = etcdserverpb.Compare.CompareTarget;
const CompareResult = etcdserverpb.Compare.CompareResult;

/** The branch a RequestOp holds (protobufjs oneof), or null for an empty op. */
export function opKind(op: Op): 'range' | 'put' | 'deleteRange' | 'txn' | null {
  if (op.requestRange != null) return 'range';
  if (op.requestPut != null) return 'put';
  if (op.requestDeleteRange != null) return 'deleteRange';
  if (op.requestTxn != null) return 'txn';
  return null;
}

export function branch(rt: etcdserverpb.ITxnRequest, succeeded: boolean): Op[] {
  return (succeeded ? rt.success : rt.failure) ?? [];
}

export function isTxnReadonly(rt: etcdserverpb.ITxnRequest): boolean {
  return (rt.success ?? []).every((op) => opKind(op) === 'range') && (rt.failure ?? []).every((op) => opKind(op) === 'range');
}

/**
 * A txn whose branches only range (isTxnReadonly), at the view's revision: what applyTxn answers for
 * it, without a write transaction. Throws EtcdError (compacted / future revision in a range).
 */
export function readTxn(rv: ReadView, rt: etcdserverpb.ITxnRequest): etcdserverpb.ITxnResponse {
  assert(isTxnReadonly(rt), 'readTxn needs a txn without puts, deletes or nested txns');
  const path = compareToPath(rv, rt);
  checkRequests(rt, path, (op) => checkRange(rv, op));
  const resp: etcdserverpb.ITxnResponse = {};
  if (path[0]) resp.succeeded = true; // proto3 default false is left off the wire, as etcd does
  const responses = branch(rt, path[0]).map((op): etcdserverpb.IResponseOp => ({ responseRange: applyRange(rv, op.requestRange!) }));
  if (responses.length > 0) resp.responses = responses;
  resp.header = { revision: rv.rev };
  return resp;
}

/** Depth-first compare outcomes of the txn and of every nested txn on the chosen branches. */
export function compareToPath(rv: ReadView, rt: etcdserverpb.ITxnRequest): boolean[] {
  const ok = (rt.compare ?? []).every((c) => applyCompare(rv, c));
  const path = [ok];
  for (const op of branch(rt, ok)) if (op.requestTxn != null) path.push(...compareToPath(rv, op.requestTxn));
  return path;
}

/** Walks the chosen ops (not nested txns themselves); returns how many nested txns were consumed. */
export function checkRequests(rt: etcdserverpb.ITxnRequest, path: boolean[], f: (op: Op) => void): number {
  let txns = 0;
  let rest = path;
  for (const op of branch(rt, rest[0])) {
    if (op.requestTxn != null) {
      const n = checkRequests(op.requestTxn, rest.slice(1), f);
      txns += n + 1;
      rest = [rest[0], ...rest.slice(n + 2)];
      continue;
    }
    f(op);
  }
  return txns;
}

export function checkRange(rv: ReadView, op: Op): void {
  const r = op.requestRange;
  if (r == null) return;
  const rev = approxNum(r.revision);
  if (rev === 0) return;
  if (rev > rv.rev) throw Errors.futureRev();
  if (rev < rv.compactRev) throw Errors.compacted();
}

/** etcd's applyCompare: every key in the range must satisfy it; no key compares as a zero KeyValue. */
function applyCompare(rv: ReadView, c: etcdserverpb.ICompare): boolean {
  const rr = rv.rangeKeys(toInterval(c.key, c.rangeEnd), { rev: 0, limit: 0, countOnly: false });
  const target = c.target ?? CompareTarget.VERSION;
  if (rr.kvs.length === 0) {
    if (target === CompareTarget.VALUE) return false;
    return compareKv(c, undefined);
  }
  return rr.kvs.every((kv) => compareKv(c, kv));
}

function compareKv(c: etcdserverpb.ICompare, kv: Kv | undefined): boolean {
  let result: number;
  switch (c.target ?? CompareTarget.VERSION) {
    case CompareTarget.VALUE: result = bytesCompare(kv ? kv.value : Buffer.alloc(0), asBuffer(c.value)); break;
    case CompareTarget.CREATE: result = cmpNum(kv ? kv.create : 0, c.createRevision); break;
    case CompareTarget.MOD: result = cmpNum(kv ? kv.mod : 0, c.modRevision); break;
    case CompareTarget.VERSION: result = cmpNum(kv ? kv.version : 0, c.version); break;
    case CompareTarget.LEASE: {
      const w = int64Words(c.lease);
      result = compareWords(kv ? kv.leaseHi : 0, kv ? kv.leaseLo : 0, w.hi, w.lo);
      break;
    }
    default: result = 0;
  }
  switch (c.result ?? CompareResult.EQUAL) {
    case CompareResult.EQUAL: return result === 0;
    case CompareResult.NOT_EQUAL: return result !== 0;
    case CompareResult.GREATER: return result > 0;
    case CompareResult.LESS: return result < 0;
    default: return true;
  }
}

function cmpNum(ours: number, theirs: Int64): number {
  const t = approxNum(theirs);
  return ours < t ? -1 : ours > t ? 1 : 0;
}

assert(CompareTarget.LEASE === 4 && CompareResult.NOT_EQUAL === 3, 'compare enums as in etcd');
