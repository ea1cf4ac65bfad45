// Lock and Election, etcd-ts against Debian's etcd 3.4:
// - the v3lock and v3election gRPC services driven by the same script on both servers (client-chosen
//   lease IDs, so keys and revisions must match exactly): lock, a second lock waiting until unlock,
//   re-locking with the same lease, an unknown lease, a waiting lock whose client gives up (its key
//   is removed), an unlock without a key (the KV service's own check), campaign / leader / observe /
//   proclaim / resign, a second campaigner taking over, and the recipes' own errors;
// - etcdctl lock (mutual exclusion between concurrent holders) and etcdctl elect / elect -l, which use
//   the client-side recipes over KV, leases and watch;
// - that a waiting Lock and an Observe wait through the watch worker, as etcd's recipes watch through
//   their client: both carry on across a watch worker failure and restart (ETCD_TS_WATCH_FAULT_KEY), as a
//   Go client's watch resumes after its stream breaks.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { etcdserverpb, v3electionpb, v3lockpb } from '../../src/shared/gen/etcd';
import { etcdctl, etcdctlBin } from '../support/etcdctl';
import { RawGrpc } from '../support/grpc_raw';
import { cleanupServersAfter, Server, startEtcd, startEtcdTs } from '../support/procs';
import { sleep } from './watch_client';

const pb = etcdserverpb;
const str = (b: Uint8Array | null | undefined): string => Buffer.from(b ?? []).toString();
const num = (v: unknown): string => String(v ?? 0);

async function script(endpoint: string): Promise<string[]> {
  const c = new RawGrpc(endpoint);
  const out: string[] = [];
  const call = async (name: string, p: string, req: Uint8Array, show: (b: Buffer) => string): Promise<Buffer | null> => {
    const r = await c.unary(p, req);
    out.push(r.status === 0 ? `${name}: ${show(r.body as Buffer)}` : `${name}: status ${r.status} ${r.message}`);
    return r.status === 0 ? r.body : null;
  };
  const lockShow = (b: Buffer): string => { const r = v3lockpb.LockResponse.decode(b); return `key=${str(r.key)} rev=${num(r.header?.revision)}`; };
  const hdrShow = (b: Buffer): string => `rev=${num(etcdserverpb.ResponseHeader.decode(b.length ? b.subarray(2, 2 + b[1]) : b).revision)}`;
  const lk = (name: string, lease: number) => v3lockpb.LockRequest.encode({ name: Buffer.from(name), lease }).finish();
  const ul = (key: string) => v3lockpb.UnlockRequest.encode({ key: Buffer.from(key) }).finish();
  try {
    for (const ID of [1001, 1002, 1003]) await c.unary('/etcdserverpb.Lease/LeaseGrant', pb.LeaseGrantRequest.encode({ ID, TTL: 120 }).finish());
    // Lock.
    await call('lock L 1001', '/v3lockpb.Lock/Lock', lk('L', 1001), lockShow);
    const second = c.unary('/v3lockpb.Lock/Lock', lk('L', 1002));
    let secondDone = false;
    void second.then(() => { secondDone = true; });
    await sleep(300);
    out.push(`second lock waiting: ${!secondDone}`);
    await call('range L/', '/etcdserverpb.KV/Range', pb.RangeRequest.encode({ key: Buffer.from('L/'), rangeEnd: Buffer.from('L0'), keysOnly: true }).finish(),
      (b) => pb.RangeResponse.decode(b).kvs.map((kv) => `${str(kv.key)}@${num(kv.createRevision)}`).join(','));
    // A third waiter gives up: its key must be removed (Mutex.Lock's cleanup on a cancelled context).
    await c.unary('/v3lockpb.Lock/Lock', lk('L', 1003), { cancelAfterMs: 300 });
    await sleep(500);
    await call('range L/ after cancel', '/etcdserverpb.KV/Range', pb.RangeRequest.encode({ key: Buffer.from('L/'), rangeEnd: Buffer.from('L0'), keysOnly: true }).finish(),
      (b) => pb.RangeResponse.decode(b).kvs.map((kv) => str(kv.key)).join(','));
    await call('unlock L/3e9', '/v3lockpb.Lock/Unlock', ul('L/3e9'), hdrShow);
    const s2 = await second;
    out.push(`second lock: ${s2.status === 0 ? lockShow(s2.body as Buffer) : `status ${s2.status} ${s2.message}`}`);
    await call('relock L 1002', '/v3lockpb.Lock/Lock', lk('L', 1002), lockShow);
    await call('lock unknown lease', '/v3lockpb.Lock/Lock', lk('M', 999), lockShow);
    await call('unlock L/3ea', '/v3lockpb.Lock/Unlock', ul('L/3ea'), hdrShow);
    await call('unlock missing', '/v3lockpb.Lock/Unlock', ul('nothing'), hdrShow);
    // The recipes' writes pass the KV service's request checks, as etcd's do through its client.
    await call('unlock empty key', '/v3lockpb.Lock/Unlock', v3lockpb.UnlockRequest.encode({}).finish(), hdrShow);

    // Election.
    const E = '/v3electionpb.Election/';
    const leaderShow = (b: Buffer): string => { const r = v3electionpb.LeaderResponse.decode(b); return `kv=${str(r.kv?.key)}=${str(r.kv?.value)} rev=${num(r.header?.revision)}`; };
    await call('leader (none)', E + 'Leader', v3electionpb.LeaderRequest.encode({ name: Buffer.from('E') }).finish(), leaderShow);
    const obsConn = new RawGrpc(endpoint);
    const obs = obsConn.stream(E + 'Observe');
    obs.send(v3electionpb.LeaderRequest.encode({ name: Buffer.from('E') }).finish());
    obs.end();
    const camp = await call('campaign 1001', E + 'Campaign', v3electionpb.CampaignRequest.encode({ name: Buffer.from('E'), lease: 1001, value: Buffer.from('v1') }).finish(),
      (b) => { const r = v3electionpb.CampaignResponse.decode(b); return `key=${str(r.leader?.key)} rev=${num(r.leader?.rev)} lease=${num(r.leader?.lease)} hdr=${num(r.header?.revision)}`; });
    const leader1 = v3electionpb.CampaignResponse.decode(camp as Buffer).leader as v3electionpb.ILeaderKey;
    await call('leader', E + 'Leader', v3electionpb.LeaderRequest.encode({ name: Buffer.from('E') }).finish(), leaderShow);
    await obs.until(() => obs.messages.length >= 1, 'first observation');
    const pending = c.unary(E + 'Campaign', v3electionpb.CampaignRequest.encode({ name: Buffer.from('E'), lease: 1002, value: Buffer.from('v2') }).finish());
    // The waiting campaigner's key is written before the proclaim, on both servers (else their order races).
    for (let i = 0; i < 100; i++) {
      const r = await c.unary('/etcdserverpb.KV/Range', etcdserverpb.RangeRequest.encode({ key: Buffer.from('E/'), rangeEnd: Buffer.from('E0'), countOnly: true }).finish());
      if (r.status === 0 && Number(etcdserverpb.RangeResponse.decode(r.body as Buffer).count) >= 2) break;
      await sleep(50);
    }
    await call('proclaim v1b', E + 'Proclaim', v3electionpb.ProclaimRequest.encode({ leader: leader1, value: Buffer.from('v1b') }).finish(), hdrShow);
    await call('proclaim wrong rev', E + 'Proclaim', v3electionpb.ProclaimRequest.encode({ leader: { ...leader1, rev: 12345 }, value: Buffer.from('x') }).finish(), hdrShow);
    await call('proclaim no leader field', E + 'Proclaim', v3electionpb.ProclaimRequest.encode({ value: Buffer.from('x') }).finish(), hdrShow);
    await call('resign no leader field', E + 'Resign', v3electionpb.ResignRequest.encode({}).finish(), hdrShow);
    await obs.until(() => obs.messages.length >= 2, 'proclaimed value observed');
    await call('resign 1001', E + 'Resign', v3electionpb.ResignRequest.encode({ leader: leader1 }).finish(), hdrShow);
    const p = await pending;
    out.push(`second campaign: ${p.status === 0 ? (() => { const r = v3electionpb.CampaignResponse.decode(p.body as Buffer); return `key=${str(r.leader?.key)} rev=${num(r.leader?.rev)}`; })() : `status ${p.status}`}`);
    await obs.until(() => obs.messages.length >= 3, 'new leader observed');
    await call('leader after resign', E + 'Leader', v3electionpb.LeaderRequest.encode({ name: Buffer.from('E') }).finish(), leaderShow);
    for (const m of obs.messages) out.push(`observed ${leaderShow(m)}`);
    obs.cancel();
    obsConn.close();
  } finally {
    c.close();
  }
  return out;
}

describe('Lock and Election services: etcd-ts vs etcd 3.4', function () {
  this.timeout(120_000);
  let ours: Server | undefined;
  let ref: Server | undefined;
  cleanupServersAfter(() => [ours, ref]);

  before(async () => {
    [ours, ref] = await Promise.all([startEtcdTs(), startEtcd()]);
  });

  it('the same answers, keys and revisions to the same lock and election script', async () => {
    const [a, b] = await Promise.all([script(ours!.endpoint), script(ref!.endpoint)]);
    assert.deepEqual(a, b);
    // What it means, beyond agreeing with etcd:
    assert.ok(a.includes('second lock waiting: true'));
    assert.ok(a.some((l) => /^second lock: key=L\/3ea /.test(l)));
    assert.ok(a.includes('range L/ after cancel: L/3e9,L/3ea'), 'the cancelled waiter removed its key');
    assert.ok(a.some((l) => l === 'lock unknown lease: status 2 etcdserver: requested lease not found'), 'a recipe answers Unknown, as etcd');
    assert.ok(a.some((l) => l === 'leader (none): status 2 election: no leader'));
    assert.ok(a.some((l) => l === 'proclaim wrong rev: status 2 election: not leader'));
    assert.ok(a.includes('unlock empty key: status 2 etcdserver: key is not provided'));
    assert.ok(a.some((l) => l === 'proclaim no leader field: status 2 "leader" field must be provided'));
    assert.deepEqual(a.filter((l) => l.startsWith('observed')).map((l) => l.split(' ')[1]), ['kv=E/3e9=v1', 'kv=E/3e9=v1b', 'kv=E/3ea=v2']);
  });

  it('a lock without a lease gets a 60 s session lease, as etcd', async () => {
    for (const s of [ours!, ref!]) {
      const c = new RawGrpc(s.endpoint);
      try {
        const r = await c.unary('/v3lockpb.Lock/Lock', v3lockpb.LockRequest.encode({ name: Buffer.from('nolease') }).finish());
        assert.equal(r.status, 0, r.message);
        const key = str(v3lockpb.LockResponse.decode(r.body as Buffer).key);
        const m = /^nolease\/([0-9a-f]+)$/.exec(key);
        assert.ok(m, key);
        const t = await c.unary('/etcdserverpb.Lease/LeaseTimeToLive', pb.LeaseTimeToLiveRequest.encode({ ID: BigInt('0x' + m[1]).toString() as unknown as number }).finish());
        const ttl = pb.LeaseTimeToLiveResponse.decode(t.body as Buffer);
        assert.equal(num(ttl.grantedTTL), '60', s.kind);
      } finally {
        c.close();
      }
    }
  });
});

describe('etcdctl lock and elect against etcd-ts', function () {
  this.timeout(120_000);
  let s: Server | undefined;
  cleanupServersAfter(() => [s]);
  before(async () => { s = await startEtcdTs(); });

  it('etcdctl lock: concurrent holders never overlap', async () => {
    const log = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lock-')), 'log');
    const holder = (i: number) => etcdctl(s!.endpoint, ['lock', 'mylock', '--', 'sh', '-c', `echo in ${i} >> ${log}; sleep 0.3; echo out ${i} >> ${log}`]);
    const rs = await Promise.all([1, 2, 3, 4].map(holder));
    for (const r of rs) assert.equal(r.code, 0, r.stderr);
    const lines = fs.readFileSync(log, 'utf8').trim().split('\n');
    assert.equal(lines.length, 8);
    for (let i = 0; i < lines.length; i += 2) {
      const [a, b] = [lines[i].split(' '), lines[i + 1].split(' ')];
      assert.deepEqual([a[0], b[0], a[1]], ['in', 'out', b[1]], `overlap in ${lines.join(' | ')}`);
    }
  });

  it('etcdctl elect: a leader, an observer, and a successor once the leader exits', async () => {
    const first = spawn(etcdctlBin, [`--endpoints=${s!.endpoint}`, 'elect', 'myelection', 'proposal-1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let firstOut = '';
    first.stdout.on('data', (d: Buffer) => { firstOut += d.toString(); });
    const deadline = Date.now() + 10_000;
    while (!firstOut.includes('proposal-1') && Date.now() < deadline) await sleep(100);
    assert.match(firstOut, /^myelection\/[0-9a-f]+\nproposal-1\n$/);
    const observer = spawn(etcdctlBin, [`--endpoints=${s!.endpoint}`, 'elect', '-l', 'myelection'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let obsOut = '';
    observer.stdout.on('data', (d: Buffer) => { obsOut += d.toString(); });
    const second = spawn(etcdctlBin, [`--endpoints=${s!.endpoint}`, 'elect', 'myelection', 'proposal-2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let secondOut = '';
    second.stdout.on('data', (d: Buffer) => { secondOut += d.toString(); });
    try {
      while (!obsOut.includes('proposal-1') && Date.now() < deadline) await sleep(100);
      await sleep(500);
      assert.equal(secondOut, '', 'the second campaigner waits');
      first.kill('SIGINT'); // etcdctl resigns on interrupt
      const d2 = Date.now() + 10_000;
      while ((!secondOut.includes('proposal-2') || !obsOut.includes('proposal-2')) && Date.now() < d2) await sleep(100);
      assert.match(secondOut, /proposal-2/);
      assert.match(obsOut, /proposal-1[\s\S]*proposal-2/);
    } finally {
      for (const p of [first, observer, second]) p.kill('SIGKILL');
    }
  });
});

describe('Lock and Observe wait through the watch worker', function () {
  this.timeout(120_000);
  let s: Server | undefined;
  cleanupServersAfter(() => [s]);
  const FAULT_KEY = 'watch-worker-fault';

  it('a waiting Lock and an Observe carry on across a watch worker restart', async () => {
    s = await startEtcdTs({ env: { ETCD_TS_WATCH_FAULT_KEY: FAULT_KEY }, logLevel: 'error' });
    const c = new RawGrpc(s.endpoint);
    const obsConn = new RawGrpc(s.endpoint);
    const E = '/v3electionpb.Election/';
    try {
      for (const ID of [2001, 2002]) await c.unary('/etcdserverpb.Lease/LeaseGrant', pb.LeaseGrantRequest.encode({ ID, TTL: 120 }).finish());
      const held = await c.unary('/v3lockpb.Lock/Lock', v3lockpb.LockRequest.encode({ name: Buffer.from('R'), lease: 2001 }).finish());
      assert.equal(held.status, 0, held.message);
      const waiting = c.unary('/v3lockpb.Lock/Lock', v3lockpb.LockRequest.encode({ name: Buffer.from('R'), lease: 2002 }).finish());
      const camp = await c.unary(E + 'Campaign', v3electionpb.CampaignRequest.encode({ name: Buffer.from('F'), lease: 2001, value: Buffer.from('a') }).finish());
      assert.equal(camp.status, 0, camp.message);
      const obs = obsConn.stream(E + 'Observe');
      obs.send(v3electionpb.LeaderRequest.encode({ name: Buffer.from('F') }).finish());
      obs.end();
      await obs.until(() => obs.messages.length >= 1, 'first observation');

      // A client watch on the fault key makes the worker throw; the server restarts it.
      const crash = c.stream('/etcdserverpb.Watch/Watch');
      crash.send(pb.WatchRequest.encode({ createRequest: { key: Buffer.from(FAULT_KEY) } }).finish());
      await crash.until(() => crash.status !== undefined, 'the watch worker failure');
      assert.equal(crash.status, 14);

      // Both were waiting on watches the failure ended; they resume on the restarted worker.
      const leader = v3electionpb.CampaignResponse.decode(camp.body as Buffer).leader;
      const proclaimed = await c.unary(E + 'Proclaim', v3electionpb.ProclaimRequest.encode({ leader, value: Buffer.from('b') }).finish());
      assert.equal(proclaimed.status, 0, proclaimed.message);
      await obs.until(() => obs.messages.length >= 2, 'the value proclaimed after the restart');
      assert.equal(str(v3electionpb.LeaderResponse.decode(obs.messages[1]).kv?.value), 'b');
      assert.equal(obs.status, undefined, 'the Observe stream is still open');
      const unlocked = await c.unary('/v3lockpb.Lock/Unlock', v3lockpb.UnlockRequest.encode({ key: v3lockpb.LockResponse.decode(held.body as Buffer).key }).finish());
      assert.equal(unlocked.status, 0, unlocked.message);
      const got = await waiting;
      assert.equal(got.status, 0, got.message);
      assert.equal(str(v3lockpb.LockResponse.decode(got.body as Buffer).key), 'R/7d2');
      obs.cancel();
    } finally {
      obsConn.close();
      c.close();
    }
  });
});
