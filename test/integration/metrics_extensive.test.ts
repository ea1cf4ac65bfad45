// --metrics extensive against etcd 3.4: real etcd and etcd-ts are started side by side, each gets the
// same calls through etcdctl (put, get, a watch ended by the client), and their /metrics are compared by
// series identity (metric name and label set, not values). The grpc_server_* families must be the same
// as etcd's: each etcd-ts series is one etcd also has, and etcd's extra series belong only to methods
// etcd-ts does not serve (grpc.health.v1.Health; Maintenance.Snapshot while it is not registered).
// The HELP and TYPE lines match, grpc_server_handling_seconds has prometheus.DefBuckets at extensive
// and does not exist at basic (on either server), and the calls made are counted.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { etcdctl, etcdctlBin } from '../support/etcdctl';
import { request } from '../support/http_client';
import { cleanupServersAfter, Server, startEtcd, startEtcdTs } from '../support/procs';

const UNSERVED = ['grpc.health.v1.Health', 'Maintenance",grpc_type="server_stream'];

async function exercise(s: Server): Promise<string> {
  assert.equal((await etcdctl(s.endpoint, ['put', 'k', 'v'])).code, 0);
  assert.equal((await etcdctl(s.endpoint, ['get', 'k'])).code, 0);
  // A watch the client ends: etcdctl is killed once the stream is open.
  const w = spawn(etcdctlBin, ['--endpoints', s.endpoint, 'watch', 'w'], { env: { ...process.env, ETCDCTL_API: '3' } });
  await new Promise((r) => setTimeout(r, 500));
  w.kill('SIGTERM');
  await new Promise((r) => w.once('exit', r));
  await new Promise((r) => setTimeout(r, 300));
  return (await request('GET', `${s.clientUrl}/metrics`)).body;
}

/** Series identities (name{labels}) of the metric families whose names start with prefix. */
function series(text: string, prefix: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    if (line.startsWith(prefix)) out.add(line.slice(0, line.lastIndexOf(' ')));
  }
  return out;
}

function headers(text: string, prefix: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(`# HELP ${prefix}`) || l.startsWith(`# TYPE ${prefix}`));
}

function value(text: string, id: string): number {
  const line = text.split('\n').find((l) => l.startsWith(id + ' '));
  assert.ok(line, `no series ${id}`);
  return Number(line.slice(id.length + 1));
}

describe('metrics: --metrics extensive and the grpc_server_* families, against etcd 3.4', function () {
  this.timeout(120_000);
  let servers: Server[] = [];
  cleanupServersAfter(() => servers);

  it('exposes the same grpc_server_* series as etcd, with the handling-time histogram only at extensive', async () => {
    const [etcdExt, tsExt, etcdBasic, tsBasic] = await Promise.all([
      startEtcd({ logLevel: 'warn', extraArgs: ['--metrics', 'extensive'] }),
      startEtcdTs({ logLevel: 'warn', extraArgs: ['--metrics', 'extensive'] }),
      startEtcd({ logLevel: 'warn' }),
      startEtcdTs({ logLevel: 'warn' }),
    ]);
    servers = [etcdExt, tsExt, etcdBasic, tsBasic];
    assert.ok(!tsExt.stderr().includes('--metrics'), 'a warning about --metrics');
    const [eExt, tExt, eBasic, tBasic] = await Promise.all(servers.map((s) => exercise(s)));

    for (const [e, t, level] of [
      [eExt, tExt, 'extensive'],
      [eBasic, tBasic, 'basic'],
    ] as const) {
      assert.deepEqual(headers(t, 'grpc_'), headers(e, 'grpc_'), `${level}: HELP/TYPE lines`);
      const es = series(e, 'grpc_');
      const ts = series(t, 'grpc_');
      const extraInTs = [...ts].filter((x) => !es.has(x));
      assert.deepEqual(extraInTs, [], `${level}: series etcd does not have`);
      const missing = [...es].filter((x) => !ts.has(x) && !UNSERVED.some((u) => x.includes(u)));
      assert.deepEqual(missing, [], `${level}: etcd's series missing from etcd-ts`);
      assert.ok(ts.size > 700, `${level}: only ${ts.size} grpc series`);
    }
    assert.ok([...series(eExt, 'grpc_server_handling_seconds')].length > 0, 'etcd has the histogram at extensive');
    assert.equal([...series(eBasic, 'grpc_server_handling_seconds')].length, 0, 'etcd has no histogram at basic');

    const put = 'grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"';
    const watch = 'grpc_method="Watch",grpc_service="etcdserverpb.Watch",grpc_type="bidi_stream"';
    for (const t of [tExt, tBasic]) {
      assert.equal(value(t, `grpc_server_started_total{${put}}`), 1);
      assert.equal(value(t, `grpc_server_handled_total{grpc_code="OK",${put}}`), 1);
      assert.equal(value(t, `grpc_server_msg_received_total{${put}}`), 1);
      assert.equal(value(t, `grpc_server_started_total{${watch}}`), 1);
      assert.ok(value(t, `grpc_server_msg_received_total{${watch}}`) >= 1);
    }
    assert.equal(value(tExt, `grpc_server_handling_seconds_count{${put}}`), 1);
    assert.equal(value(tExt, `grpc_server_handling_seconds_bucket{${put},le="+Inf"}`), 1);
    assert.equal(value(tExt, `grpc_server_handling_seconds_count{${watch}}`), 1);
  });
});
