// etcd's applierV3backend.Txn: compares against the state before the txn pick a path through the (nested)
// branches (src/shared/mvcc/txn_read.ts); every chosen put and range is checked before anything is written,
// so a refused txn has no effect; then the ops run in order in one WriteTxn and share its revision.
import { etcdserverpb } from '../../shared/gen/etcd';
import { Errors } from '../../shared/errors';
import { applyRange } from '../../shared/mvcc/range';
import { int64Words } from '../../shared/mvcc/records';
import { branch, checkRange, checkRequests, compareToPath, isTxnReadonly, Op, opKind } from '../../shared/mvcc/txn_read';
import { ReadView, asBuffer } from '../../shared/mvcc/view';
import { applyDeleteRange, applyPut, checkStorable } from './ops';
import { WriteTxn } from './write';

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

function checkPut(rv: ReadView, op: Op): void {
  const p = op.requestPut;
  if (p == null) return;
  checkStorable(rv, p.key);
  if ((p.ignoreValue || p.ignoreLease) && rv.latest(asBuffer(p.key)) === undefined) throw Errors.keyNotFound();
  const { hi, lo } = int64Words(p.lease);
  if ((hi !== 0 || lo !== 0) && !rv.hasLease(hi, lo)) throw Errors.leaseNotFound();
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
