// etcd's alarms (etcdserver/api/v3alarm): which member raised which alarm. Changed only by applied
// Alarm entries (every member stores the same set), kept in the `cluster` table so a Raft snapshot
// (installFrom copies that table) and a restart carry them:
//   alarm/<type, 2 decimal digits>/<member id, 16 hex digits> -> empty
// The key order is the order we list them in: by type, then member ID. (etcd lists them in Go map
// order, which is random; with one alarm there is no difference.)
import { etcdserverpb } from '../gen/etcd';
import { Dbs } from './dbs';

export interface StoredAlarm {
  memberId: bigint;
  /** etcdserverpb.AlarmType: 0 NONE, 1 NOSPACE, 2 CORRUPT (any other number is stored as given). */
  alarm: number;
}

const prefix = 'alarm/';

function alarmKey(a: StoredAlarm): Buffer {
  return Buffer.from(`${prefix}${String(a.alarm).padStart(2, '0')}/${a.memberId.toString(16).padStart(16, '0')}`);
}

function parseAlarmKey(k: Buffer): StoredAlarm {
  const s = k.toString('latin1');
  return { alarm: Number(s.slice(prefix.length, prefix.length + 2)), memberId: BigInt('0x' + s.slice(prefix.length + 3)) };
}

/** Every alarm, by type then member ID. */
export function listAlarms(dbs: Dbs): StoredAlarm[] {
  const out: StoredAlarm[] = [];
  const range = dbs.cluster.getRange({ start: Buffer.from(prefix), end: Buffer.from('alarm0') }) as Iterable<{ key: Buffer }>;
  for (const { key } of range) out.push(parseAlarmKey(key));
  return out;
}

export function hasAlarm(dbs: Dbs, a: StoredAlarm): boolean {
  return dbs.cluster.getBinary(alarmKey(a)) !== undefined;
}

export function putAlarm(dbs: Dbs, a: StoredAlarm): void {
  dbs.cluster.putSync(alarmKey(a), Buffer.alloc(0));
}

export function deleteAlarm(dbs: Dbs, a: StoredAlarm): void {
  dbs.cluster.removeSync(alarmKey(a));
}

/** An alarm as etcd 3.4's Status lists it in `errors`: the AlarmMember in protobuf text format
 * (gogoproto's String(): each set field as `name:value ` with a trailing space, zero fields left out). */
export function alarmText(a: StoredAlarm): string {
  let s = '';
  if (a.memberId !== 0n) s += `memberID:${a.memberId} `;
  if (a.alarm !== 0) s += `alarm:${etcdserverpb.AlarmType[a.alarm] ?? a.alarm} `;
  return s;
}
