// Differential test of alarms (Maintenance.Alarm, `etcdctl alarm list|disarm`, Status's errors) against
// Debian's etcd 3.4: the same steps run in order on a fresh etcd (the reference) and a fresh etcd-ts, both
// with --quota-backend-bytes 1 MiB, and every step's exit code, stdout and stderr (etcdctl) or gRPC
// status, message and decoded response (raw calls) must be equal after normalizing what differs between
// two clusters: member and cluster IDs (here also `memberID` in alarms), terms, ports, timestamps.
//
// 1. The latch, with the database far below the quota: a NOSPACE alarm raised with a raw ACTIVATE for the
//    member's own ID refuses Put, a Txn with a put and LeaseGrant; Range, Delete, a delete-only Txn and
//    Compact keep working; `endpoint status` lists it; `alarm disarm` clears it and writes work again.
//    Then CORRUPT (refuses writes, deletes, compaction, grants; reads work), GET filtered by type,
//    ACTIVATE twice, DEACTIVATE of an alarm that is not raised.
// 2. The quota: 64 KiB puts until the first refusal (how many fit differs: bbolt and LMDB lay out pages
//    differently); then the alarm is listed, a small put is refused too (latched), and disarm clears it.
//
//   npm run build && npx mocha --no-config --exit --timeout 180000 dist/test/integration/diff_alarm.test.js
//   ETCD_TS_DIFF_SHOW=1 ...   also print the reference output of every step
import * as assert from 'node:assert/strict';
import { etcdserverpb } from '../../src/shared/gen/etcd';
import { uint64ToLong } from '../../src/shared/long';
import { etcdctl, normalize, fillUntilRefused } from '../support/etcdctl';
import { RawGrpc } from '../support/grpc_raw';
import { cleanupServersAfter, Server, startEtcd, startEtcdTs } from '../support/procs';

const { AlarmType } = etcdserverpb;
const { AlarmAction } = etcdserverpb.AlarmRequest;

type Step = { ctl: string[]; input?: string } | { alarm: { action: number; alarm: number; member: 'self' | 'other' | 'none' } };

const ctl = (...args: string[]): Step => ({ ctl: args });
const txn = (success: string[], failure: string[] = []): Step => ({
  ctl: ['txn', '-i'],
  input: ['', ...success, '', ...failure, '', ''].join('\n'),
});
const raw = (action: number, alarm: number, member: 'self' | 'other' | 'none' = 'self'): Step => ({ alarm: { action, alarm, member } });
const OTHER_MEMBER = 12345;

const latchSteps: Step[] = [
  ctl('put', 'a', '1'),
  ctl('put', 'b', '2'),
  ctl('alarm', 'list'),
  raw(AlarmAction.ACTIVATE, AlarmType.NOSPACE),
  ctl('alarm', 'list'),
  ctl('alarm', 'list', '-w', 'json'),
  ctl('put', 'c', '3'),
  ctl('get', 'a'),
  txn(['put t1 v']),
  txn(['del b']),
  txn(['get a'], ['put t2 v']),
  ctl('del', 'a'),
  ctl('lease', 'grant', '10'),
  ctl('compact', '2'),
  { ctl: ['endpoint', 'status', '-w', 'json'] },
  raw(AlarmAction.ACTIVATE, AlarmType.NOSPACE),
  raw(AlarmAction.GET, AlarmType.NOSPACE),
  raw(AlarmAction.GET, AlarmType.CORRUPT),
  ctl('alarm', 'disarm'),
  ctl('alarm', 'list'),
  ctl('put', 'c', '3'),
  raw(AlarmAction.DEACTIVATE, AlarmType.NOSPACE),
  raw(AlarmAction.ACTIVATE, AlarmType.CORRUPT, 'other'),
  ctl('put', 'd', '4'),
  ctl('get', 'c'),
  ctl('del', 'c'),
  txn(['del c']),
  ctl('compact', '3'),
  ctl('lease', 'grant', '10'),
  ctl('alarm', 'list'),
  ctl('alarm', 'disarm'),
  ctl('put', 'd', '4'),
  ctl('alarm', 'list', '-w', 'json'),
];

const quotaSteps: Step[] = [
  ctl('alarm', 'list'),
  { ctl: ['endpoint', 'status', '-w', 'json'] },
  ctl('put', 'small', 'x'),
  ctl('get', 'quota/0', '--keys-only'),
  ctl('del', 'quota/1'),
  ctl('alarm', 'disarm'),
  ctl('alarm', 'list'),
];

interface Side {
  s: Server;
  memberId: string;
}

async function memberIdOf(s: Server): Promise<string> {
  const r = await etcdctl(s.endpoint, ['endpoint', 'status', '-w', 'json']);
  const m = /"member_id":(\d+)/.exec(r.stdout);
  assert.ok(m, r.stdout + r.stderr);
  return m[1];
}

function fixIds(text: string, side: Side): string {
  return text
    .split(side.memberId)
    .join('SELF')
    .replace(/"dbSize(InUse)?":\d+/g, '"dbSize$1":N')
    .replace(/"(leader)":\d+/g, '"$1":N')
    .replace(/"raft(Index|AppliedIndex)":\d+/g, '"raft$1":N');
}

async function runStep(side: Side, step: Step): Promise<string> {
  if ('ctl' in step) return fixIds(normalize(await etcdctl(side.s.endpoint, step.ctl, { input: step.input })), side);
  const c = new RawGrpc(side.s.endpoint);
  try {
    const { action, alarm, member } = step.alarm;
    const memberID = member === 'self' ? side.memberId : member === 'other' ? String(OTHER_MEMBER) : '0';
    const r = await c.unary(
      '/etcdserverpb.Maintenance/Alarm',
      etcdserverpb.AlarmRequest.encode({ action, alarm, memberID: uint64ToLong(BigInt(memberID)) }).finish(),
    );
    let body = '';
    if (r.status === 0 && r.body) {
      const resp = etcdserverpb.AlarmResponse.toObject(etcdserverpb.AlarmResponse.decode(r.body), { longs: String, enums: String });
      body = JSON.stringify({ header: resp.header, alarms: resp.alarms ?? [] });
    }
    return fixIds(`status ${r.status} ${r.message} ${body}`, side);
  } finally {
    c.close();
  }
}

/** anyRevision: after the fill, where revisions differ by how many puts fit. */
async function runSteps(ref: Side, ours: Side, steps: Step[], anyRevision = false): Promise<void> {
  const fix = (t: string): string => (anyRevision ? t.replace(/"revision":\d+/g, '"revision":R') : t);
  for (const step of steps) {
    const [a, b] = (await Promise.all([runStep(ref, step), runStep(ours, step)])).map(fix);
    const label = 'ctl' in step ? `etcdctl ${step.ctl.join(' ')}` : `Alarm ${JSON.stringify(step.alarm)}`;
    if (process.env.ETCD_TS_DIFF_SHOW) console.log(`--- ${label}\n${a}`);
    assert.equal(b, a, `step: ${label}`);
  }
}

describe('alarms against etcd 3.4', function () {
  this.timeout(180_000);
  let ref: Side | undefined;
  let ours: Side | undefined;
  cleanupServersAfter(() => [ref?.s, ours?.s]);

  before(async () => {
    const quota = ['--quota-backend-bytes', String(1024 * 1024)];
    const [a, b] = await Promise.all([startEtcd({ extraArgs: quota }), startEtcdTs({ extraArgs: quota })]);
    ref = { s: a, memberId: await memberIdOf(a) };
    ours = { s: b, memberId: await memberIdOf(b) };
  });

  it('latches NOSPACE and CORRUPT as etcd: what they refuse, list, status and disarm', async () => {
    await runSteps(ref!, ours!, latchSteps);
  });

  it('raises NOSPACE at the quota through the log, latched until disarmed', async () => {
    const [a, b] = await Promise.all([fillUntilRefused(ref!.s), fillUntilRefused(ours!.s)]);
    assert.equal(a, 'Error: etcdserver: mvcc: database space exceeded');
    assert.equal(b, a);
    await runSteps(ref!, ours!, quotaSteps, true);
  });
});
