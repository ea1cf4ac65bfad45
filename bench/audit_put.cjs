// Put throughput of one etcd-ts member with auth enabled (a simple token in the `token` metadata), with
// the audit log off and in batch mode, alternating rounds (etcd-ts-bench has no auth yet). Ports 25301-25302.
//   npm run build && DUR=8000 ROUNDS=3 node bench/audit_put.cjs
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { etcdserverpb, withMember, closedLoop, median } = require('./lib/member_rounds.cjs');
const CONNS = 8, CLIENTS = 200, WARM = 2000, DUR = Number(process.env.DUR ?? 10000);
const val = Buffer.alloc(256, 0x76);
const bodies = Array.from({ length: 10000 }, (_, k) => etcdserverpb.PutRequest.encode({ key: Buffer.from(String(k).padStart(16, '0')), value: val }).finish());

function round(audit, i) {
  // Outside the member's dir, which withMember removes before the lines are counted.
  const logPath = path.join(os.tmpdir(), `audit-bench-${process.pid}-${i}.log`);
  const extra = audit ? ['--audit-log-path', logPath, '--audit-log-mode', audit] : [];
  return withMember('etcd-ts', 25301, extra, async (m) => {
    const token = await m.enableAuth();
    const sessions = Array.from({ length: CONNS }, () => m.connect());
    const r = await closedLoop(sessions, CLIENTS, '/etcdserverpb.KV/Put', bodies, token, WARM, DUR);
    return r;
  }).then((r) => {
    let lines = 0;
    if (audit) {
      lines = fs.readFileSync(logPath, 'utf8').split('\n').length - 1;
      fs.rmSync(logPath, { force: true });
    }
    console.log(JSON.stringify({ round: i, audit: audit || 'off', putsPerSec: r.perSec, errors: r.errors, auditLines: lines }));
    return r.perSec;
  });
}

(async () => {
  const rounds = Number(process.env.ROUNDS ?? 3);
  const off = [], on = [];
  for (let i = 0; i < rounds; i++) { off.push(await round(null, i)); on.push(await round('batch', i)); }
  console.log(JSON.stringify({ offMedian: Math.round(median(off)), batchMedian: Math.round(median(on)), ratio: +(median(on) / median(off)).toFixed(3), perRoundRatios: on.map((v, i) => +(v / off[i]).toFixed(3)) }));
})().catch((e) => { console.error(e); process.exit(1); });
