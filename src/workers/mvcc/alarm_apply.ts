// etcd 3.4's Alarm apply (etcdserver/apply.go applierV3backend.Alarm, v3alarm.AlarmStore) and what an
// active alarm refuses (applierV3Capped for NOSPACE, applierV3Corrupt for CORRUPT). Runs in the apply
// worker, in the batch's LMDB transaction, so every member changes the same alarms at the same index.
//
// etcd swaps its applier when the first alarm of a type is raised or the last is cleared; a restart
// stacks them (capped, then corrupt on top). Here the refusals follow the stored set, as after etcd's
// restart: any CORRUPT alarm refuses writes, compaction and lease grant/revoke with "corrupt cluster";
// otherwise any NOSPACE alarm refuses Put, a Txn with a put in either branch, and LeaseGrant with
// "database space exceeded". Deletes, compaction and lease revokes go on under NOSPACE.
import { etcdserverpb } from '../../shared/gen/etcd';
import { EtcdError, Errors } from '../../shared/errors';
import { toUint64, uint64ToLong } from '../../shared/long';
import { Dbs } from '../../shared/mvcc/dbs';
import { deleteAlarm, hasAlarm, listAlarms, putAlarm, StoredAlarm } from '../../shared/mvcc/alarms';
import type { WriteRequest } from './writer';

const AlarmAction = etcdserverpb.AlarmRequest.AlarmAction;
const AlarmType = etcdserverpb.AlarmType;

export interface AlarmGate {
  noSpace: boolean;
  corrupt: boolean;
}

export function loadAlarmGate(dbs: Dbs): AlarmGate {
  const all = listAlarms(dbs);
  return { noSpace: all.some((a) => a.alarm === AlarmType.NOSPACE), corrupt: all.some((a) => a.alarm === AlarmType.CORRUPT) };
}

/** The error an active alarm answers for this request, or null when it applies as usual. */
export function gateRefusal(g: AlarmGate, req: WriteRequest): EtcdError | null {
  if (g.corrupt) {
    switch (req.kind) {
      case 'put':
      case 'deleteRange':
      case 'txn':
      case 'compact':
      case 'leaseGrant':
      case 'leaseRevoke':
        return Errors.corrupt();
      default:
    }
  }
  if (!g.noSpace) return null;
  if (req.kind === 'put' || req.kind === 'leaseGrant') return Errors.noSpace();
  if (req.kind === 'txn' && txnHasPut(req.req)) return Errors.noSpace();
  return null;
}

/** etcd's costTxn > 0: a put among the top-level ops of either branch (a nested txn's puts cost 0 there). */
function txnHasPut(r: etcdserverpb.ITxnRequest): boolean {
  return [...(r.success ?? []), ...(r.failure ?? [])].some((op) => op.requestPut != null);
}

/**
 * GET lists the alarms of the asked type (NONE: all); ACTIVATE adds one and answers it (an existing
 * one is answered as it is); DEACTIVATE removes one and answers it (nothing when there was none).
 * An unknown action answers an empty response.
 */
export function applyAlarm(dbs: Dbs, r: etcdserverpb.IAlarmRequest): etcdserverpb.IAlarmResponse {
  const a: StoredAlarm = { memberId: toUint64(r.memberID ?? 0), alarm: r.alarm ?? AlarmType.NONE };
  const resp: etcdserverpb.IAlarmResponse = {}; // no header: etcd 3.4 sends none
  const wire = (m: StoredAlarm): etcdserverpb.IAlarmMember => ({ memberID: uint64ToLong(m.memberId), alarm: m.alarm });
  switch (r.action ?? AlarmAction.GET) {
    case AlarmAction.GET:
      resp.alarms = listAlarms(dbs)
        .filter((m) => a.alarm === AlarmType.NONE || m.alarm === a.alarm)
        .map(wire);
      break;
    case AlarmAction.ACTIVATE:
      if (!hasAlarm(dbs, a)) putAlarm(dbs, a);
      resp.alarms = [wire(a)];
      break;
    case AlarmAction.DEACTIVATE:
      if (!hasAlarm(dbs, a)) break;
      deleteAlarm(dbs, a);
      resp.alarms = [wire(a)];
      break;
    default:
  }
  return resp;
}
