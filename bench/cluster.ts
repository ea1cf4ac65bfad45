// 3-member clusters side by side: Debian's etcd 3.4 and etcd-ts, one cluster at a time on this
// machine (fresh data dirs, 127.0.0.1, order alternated per round). For each: Put throughput and
// latency with the load spread over all three members, linearizable Range the same way, and the
// failover time: kill -9 of the leader, then the time until a Put through a surviving member
// succeeds again (attempts are abandoned after 300 ms and retried at once).
//
//   node dist/bench/cluster.js [--rounds 3] [--duration 5] [--clients 200] [--conns 24] [--out FILE]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { etcdserverpb } from '../src/shared/gen/etcd';
import { etcdBin, ServerKind } from '../test/support/procs';
import { RawGrpc } from '../test/support/grpc_raw';
import { RunningMember, serverSpec, startServer } from './lib/servers';
import { defaultRequestOptions, RequestOptions } from './lib/workloads';
import { LoadResult, preloadKeys, runKvLoad } from './lib/load';
import { machineInfo } from './lib/machine';
import { median } from './lib/verdict';

interface Round { kind: ServerKind; put: LoadResult; range: LoadResult; failoverMs: number }

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
function argStr(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

/** Index of the member the others name as leader: each member's Status is asked once. */
async function leaderOf(members: RunningMember[]): Promise<number> {
  const status = await Promise.all(members.map(async (m) => {
    const c = new RawGrpc(m.endpoint);
    try {
      const r = await c.unary('/etcdserverpb.Maintenance/Status', new Uint8Array(0));
      return r.status === 0 && r.body ? etcdserverpb.StatusResponse.decode(r.body) : null;
    } finally {
      c.close();
    }
  }));
  for (const st of status) {
    if (st === null) continue;
    const lead = st.leader.toString();
    const i = status.findIndex((s) => s?.header?.memberId?.toString() === lead);
    if (i >= 0) return i;
  }
  throw new Error('no leader found');
}

/** Kill -9 the leader; ms until a Put through a survivor succeeds. */
async function failover(members: RunningMember[]): Promise<number> {
  const li = await leaderOf(members);
  const survivor = members[(li + 1) % members.length];
  const c = new RawGrpc(survivor.endpoint);
  const body = etcdserverpb.PutRequest.encode({ key: Buffer.from('failover'), value: Buffer.from('x') }).finish();
  try {
    const ok = await c.unary('/etcdserverpb.KV/Put', body);
    if (ok.status !== 0) throw new Error(`put before the kill failed: ${ok.message}`);
    const t0 = Date.now();
    await members[li].kill9();
    for (;;) {
      const r = await c.unary('/etcdserverpb.KV/Put', body, { cancelAfterMs: 300 });
      if (r.status === 0) return Date.now() - t0;
      if (Date.now() - t0 > 60_000) throw new Error('no write succeeded within 60 s of the leader kill');
      if (r.status !== 1) await new Promise((res) => setTimeout(res, 10));
    }
  } finally {
    c.close();
  }
}

async function measure(kind: ServerKind, o: { duration: number; clients: number; conns: number }): Promise<Round> {
  // The bench tool's launcher (bench/lib/servers.ts): fresh data dirs, free ports, one --initial-cluster.
  const cluster = await startServer(serverSpec(kind, etcdBin), 3);
  const members = cluster.members;
  try {
    const endpoints = members.map((m) => m.endpoint);
    const req: RequestOptions = { ...defaultRequestOptions };
    const base = { endpoint: endpoints[0], endpoints, client: 'raw' as const, clients: o.clients, connections: o.conns, req,
      warmupMs: 1000, durationMs: o.duration * 1000, total: 0, ratePerSec: 0 };
    const put = await runKvLoad({ ...base, workload: 'put' });
    await preloadKeys(endpoints[0], req, 'raw');
    const range = await runKvLoad({ ...base, workload: 'range' });
    const failoverMs = await failover(members);
    return { kind, put, range, failoverMs };
  } finally {
    await cluster.stop().catch(() => null);
  }
}

async function main(): Promise<void> {
  const rounds = arg('rounds', 3);
  const o = { duration: arg('duration', 5), clients: arg('clients', 200), conns: arg('conns', 24) };
  const results: Round[] = [];
  for (let r = 0; r < rounds; r++) {
    const order: ServerKind[] = r % 2 === 0 ? ['etcd', 'etcd-ts'] : ['etcd-ts', 'etcd'];
    for (const kind of order) {
      const x = await measure(kind, o);
      results.push(x);
      console.log(`round ${r + 1} ${kind}: put ${x.put.reqPerSec.toFixed(0)}/s p99 ${x.put.p99Ms.toFixed(1)} ms (errors ${x.put.errors}), ` +
        `range ${x.range.reqPerSec.toFixed(0)}/s p99 ${x.range.p99Ms.toFixed(1)} ms (errors ${x.range.errors}), failover ${x.failoverMs} ms`);
    }
  }
  const rows = (['etcd', 'etcd-ts'] as ServerKind[]).map((kind) => {
    const rs = results.filter((x) => x.kind === kind);
    return {
      kind,
      put: median(rs.map((x) => x.put.reqPerSec)), putP99: median(rs.map((x) => x.put.p99Ms)),
      range: median(rs.map((x) => x.range.reqPerSec)), rangeP99: median(rs.map((x) => x.range.p99Ms)),
      failover: median(rs.map((x) => x.failoverMs)), failovers: rs.map((x) => x.failoverMs),
    };
  });
  const md = [
    `Command: \`node dist/bench/cluster.js --rounds ${rounds} --duration ${o.duration} --clients ${o.clients} --conns ${o.conns}\``,
    '',
    '| cluster (3 members) | Put req/s | Put p99 ms | linearizable Range req/s | Range p99 ms | leader kill -9 to first write (ms, per round) |',
    '|---|---:|---:|---:|---:|---|',
    ...rows.map((r) => `| ${r.kind} | ${r.put.toFixed(0)} | ${r.putP99.toFixed(1)} | ${r.range.toFixed(0)} | ${r.rangeP99.toFixed(1)} | ${r.failover} (${r.failovers.join(', ')}) |`),
    '',
    `Ratios etcd-ts / etcd: Put ${(rows[1].put / rows[0].put).toFixed(2)}, Range ${(rows[1].range / rows[0].range).toFixed(2)}.`,
  ].join('\n');
  console.log('\n' + md);
  const out = argStr('out', path.join('results', `cluster-${new Date().toISOString().replace(/[:.]/g, '-')}.json`));
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify({ machine: machineInfo('/usr/bin/etcd'), options: o, rounds: results, summary: rows, markdown: md }, null, 2));
  console.log(`wrote ${out}`);
}

main().then(() => process.exit(0), (e: Error) => {
  console.error(e.stack ?? e.message);
  process.exit(1);
});
