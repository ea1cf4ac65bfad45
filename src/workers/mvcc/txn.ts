// etcd's applierV3backend.Txn: compares against the state before the txn pick a path through the (nested)
// branches; every chosen put and range is checked before anything is written, so a refused txn has no
// effect; then the ops run in order in one WriteTxn and share its revision.
import { etcdserverpb } from '../../shared/gen/etcd';
import { Errors, assert } from '../../shared/errors';
import { Int64 } from '../../shared/long';
import { bytesCompare } from './keys';
import { applyDeleteRange, applyPut, checkStorable } from './ops';
import { applyRange } from './range';
import { Kv, approxNum, compareWords, int64Words } from './records';
import { ReadView, asBuffer, toInterval } from './view';
import { WriteTxn } from './write';

type Op = etcdserverpb.IRequestOp;
const CompareTarget = etcdserverpb.Compare.CompareTarget;
const CompareResult = etcdserverpb.Compare.CompareResult;

/** The branch a RequestOp holds (protobufjs oneof), or null for an empty op. */
function opKind(op: Op): 'range' | 'put' | 'deleteRange' | 'txn' | null {
  if (op.requestRange != null) return 'range';
  if (op.requestPut != null) return 'put';
  if (op.requestDeleteRange != null) return 'deleteRange';
  if (op.requestTxn != null) return 'txn';
  return null;
}

function branch(rt: etcdserverpb.ITxnRequest, succeeded: boolean): Op[] {
  return (succeeded ? rt.success : rt.failure) ?? [];
}

export function isTxnReadonly(rt: etcdserverpb.ITxnRequest): boolean {
  return (rt.success ?? []).every((op) => opKind(op) === 'range') && (rt.failure ?? []).every((op) => opKind(op) === 'range');
}

export function applyTxn(wt: WriteTxn, rt: etcdserverpb.ITxnRequest): etcdserverpb.ITxnResponse {
  const rv = wt.view();
  const path = compareToPath(rv, rt);
  if (!isTxnReadonly(rt)) checkRequests(rt, path, (op) => checkPut(rv, op));
  checkRequests(rt, path, (op) => checkRange(rv, op));
  const resp: etcdserverpb.ITxnResponse = {};
  runTxn(wt, rt, path, resp);
  resp.header = { revision: wt.rev };
  return resp;
}

/** Depth-first compare outcomes of the txn and of every nested txn on the chosen branches. */
function compareToPath(rv: ReadView, rt: etcdserverpb.ITxnRequest): boolean[] {
  const ok = (rt.compare ?? []).every((c) => applyCompare(rv, c));
  const path = [ok];
  for (const op of branch(rt, ok)) if (op.requestTxn != null) path.push(...compareToPath(rv, op.requestTxn));
  return path;
}

/** Walks the chosen ops (not nested txns themselves); returns how many nested txns were consumed. */
function checkRequests(rt: etcdserverpb.ITxnRequest, path: boolean[], f: (op: Op) => void): number {
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

function checkPut(rv: ReadView, op: Op): void {
  const p = op.requestPut;
  if (p == null) return;
  checkStorable(p.key);
  if ((p.ignoreValue || p.ignoreLease) && rv.latest(asBuffer(p.key)) === undefined) throw Errors.keyNotFound();
  const { hi, lo } = int64Words(p.lease);
  if ((hi !== 0 || lo !== 0) && !rv.hasLease(hi, lo)) throw Errors.leaseNotFound();
}

function checkRange(rv: ReadView, op: Op): void {
  const r = op.requestRange;
  if (r == null) return;
  const rev = approxNum(r.revision);
  if (rev === 0) return;
  if (rev > rv.rev) throw Errors.futureRev();
  if (rev < rv.compactRev) throw Errors.compacted();
}

/** Applies the chosen branch into resp; returns how many nested txns of path it consumed. */
function runTxn(wt: WriteTxn, rt: etcdserverpb.ITxnRequest, path: boolean[], resp: etcdserverpb.ITxnResponse): number {
  if (path[0]) resp.succeeded = true; // proto3 default false is left off the wire, as etcd does
  const responses: etcdserverpb.IResponseOp[] = [];
  let txns = 0;
  let rest = path;
  for (const op of branch(rt, path[0])) {
    switch (opKind(op)) {
      case 'range': responses.push({ responseRange: applyRange(wt.view(), op.requestRange!) }); break;
      case 'put': responses.push({ responsePut: applyPut(wt, op.requestPut!) }); break;
      case 'deleteRange': responses.push({ responseDeleteRange: applyDeleteRange(wt, op.requestDeleteRange!) }); break;
      case 'txn': {
        // A nested txn's own header stays empty, as in etcd (only the outer header is filled).
        const nested: etcdserverpb.ITxnResponse = { header: {} };
        const n = runTxn(wt, op.requestTxn!, rest.slice(1), nested);
        txns += n + 1;
        rest = [rest[0], ...rest.slice(n + 2)];
        responses.push({ responseTxn: nested });
        break;
      }
      case null: responses.push({}); break;
    }
  }
  if (responses.length > 0) resp.responses = responses;
  return txns;
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
