// The fast HTTP/JSON port (--listen-client-http-urls, uWebSockets.js) and what the differential test
// does not cover: /livez, /readyz and /metrics (parsed as Prometheus text format 0.0.4 on both ports,
// etcd's metric names present and consistent), the WebSocket API (pipelined KV requests answered by
// id, several watch streams on one connection, cancel, errors), and bad input on both ports (bodies
// over the limit, slow clients that send half a request or never read a watch) that must get a clear
// answer without stalling other clients. One etcd-ts server; no assertion depends on timing beyond
// generous "eventually" deadlines.
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { cleanupServersAfter, freePort, Server, startEtcdTs } from '../support/procs';
import { LineStream, post, request, WsClient } from '../support/http_client';
import { etcdserverpb } from '../../src/shared/gen/etcd';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

interface Sample { name: string; labels: string; value: number }

/** A strict parser of the Prometheus text format: every line is a comment, a sample, or empty. */
function parsePrometheus(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  assert.ok(text.endsWith('\n'), 'exposition ends with a newline');
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const t = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (t) {
      assert.ok(!types.has(t[1]), `one TYPE line for ${t[1]}`);
      types.set(t[1], t[2]);
      continue;
    }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$/.test(line)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$/.exec(line);
    assert.ok(m, `not a valid sample line: ${JSON.stringify(line)}`);
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    assert.ok(!Number.isNaN(value) || m[3] === 'NaN', `bad value in ${line}`);
    samples.push({ name: m[1], labels: m[2] ?? '', value });
  }
  return { samples, types };
}

function metric(samples: Sample[], name: string, labels = ''): number {
  const s = samples.find((x) => x.name === name && x.labels === labels);
  assert.ok(s, `metric ${name}${labels} present`);
  return s.value;
}

/** A raw HTTP/1.1 client connection, for requests a normal client would not send. */
function rawConnect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

describe('HTTP/JSON fast port (uWebSockets.js), WebSocket API, /metrics, bad input', function () {
  this.timeout(60_000);
  let srv: Server | undefined;
  let fastPort = 0;
  let fast = '';
  cleanupServersAfter(() => [srv]);

  before(async function () {
    fastPort = await freePort();
    fast = `http://127.0.0.1:${fastPort}`;
    srv = await startEtcdTs({ extraArgs: ['--listen-client-http-urls', fast] });
  });

  it('serves /livez, /readyz, /health and /version', async function () {
    assert.deepEqual(await request('GET', fast + '/livez').then((r) => [r.status, r.body]), [200, 'ok']);
    assert.deepEqual(await request('GET', fast + '/readyz').then((r) => [r.status, r.body]), [200, 'ok']);
    assert.deepEqual(await request('GET', fast + '/health').then((r) => [r.status, r.body]), [200, '{"health":"true"}']);
    const v = await request('GET', fast + '/version');
    assert.equal(v.status, 200);
    assert.equal((JSON.parse(v.body) as { etcdserver: string }).etcdserver, '3.4.23');
    assert.equal((await request('GET', fast + '/nope')).status, 404);
  });

  it('/metrics on both ports: Prometheus text 0.0.4 with etcd\'s names, counters that move', async function () {
    await post(fast + '/v3/kv/put', JSON.stringify({ key: b64('m'), value: b64('1') }));
    for (const base of [fast, srv!.clientUrl]) {
      const r = await request('GET', base + '/metrics');
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
      const { samples, types } = parsePrometheus(r.body);
      assert.equal(metric(samples, 'etcd_server_has_leader'), 1);
      assert.equal(metric(samples, 'etcd_server_is_leader'), 1);
      assert.ok(metric(samples, 'etcd_server_leader_changes_seen_total') >= 1);
      assert.ok(metric(samples, 'etcd_mvcc_db_total_size_in_bytes') > 0);
      assert.ok(metric(samples, 'etcd_debugging_mvcc_current_revision') >= 2);
      assert.ok(metric(samples, 'etcd_network_client_grpc_received_bytes_total') > 0, 'the readiness probe used gRPC');
      assert.equal(types.get('etcd_disk_wal_fsync_duration_seconds'), 'histogram');
      const buckets = samples.filter((s) => s.name === 'etcd_disk_wal_fsync_duration_seconds_bucket');
      assert.equal(buckets.length, 15);
      for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i].value >= buckets[i - 1].value, 'cumulative buckets');
      assert.equal(buckets[buckets.length - 1].labels, '{le="+Inf"}');
      assert.equal(buckets[buckets.length - 1].value, metric(samples, 'etcd_disk_wal_fsync_duration_seconds_count'));
      assert.ok(metric(samples, 'etcd_disk_wal_fsync_duration_seconds_count') > 0);
      assert.equal(types.get('etcd_disk_backend_commit_duration_seconds'), 'histogram');
      assert.ok(metric(samples, 'etcd_disk_backend_commit_duration_seconds_count') > 0, 'the apply worker timed its transactions');
      assert.equal(metric(samples, 'etcd_disk_backend_commit_duration_seconds_bucket', '{le="+Inf"}'),
        metric(samples, 'etcd_disk_backend_commit_duration_seconds_count'));
      assert.ok(metric(samples, 'etcd_ts_ring_capacity_bytes', '{ring="to_apply"}') > 0);
      for (const [name, type] of types) assert.ok(samples.some((s) => s.name === name || s.name.startsWith(name + '_')), `${type} ${name} has samples`);
    }
    const before = parsePrometheus((await request('GET', fast + '/metrics')).body).samples;
    await post(fast + '/v3/kv/range', JSON.stringify({ key: b64('m') }));
    const after = parsePrometheus((await request('GET', fast + '/metrics')).body).samples;
    assert.equal(metric(after, 'etcd_ts_gateway_http_port_requests_total'), metric(before, 'etcd_ts_gateway_http_port_requests_total') + 2);
  });

  it('WebSocket: pipelined KV requests are each answered once, by id, in etcd\'s JSON', async function () {
    const ws = await WsClient.connect('127.0.0.1', fastPort);
    try {
      const n = 200;
      for (let i = 0; i < n; i++) ws.send({ id: i, path: '/v3/kv/put', body: { key: b64(`p${i % 10}`), value: b64(String(i)) } });
      ws.send({ id: 'r', path: '/v3/kv/range', body: { key: b64('p'), range_end: b64('q'), count_only: true } });
      const msgs = await ws.waitMessages(n + 1);
      const ids = new Set(msgs.map((m) => m.id));
      assert.equal(ids.size, n + 1);
      for (const m of msgs) assert.ok('result' in m, JSON.stringify(m));
      const revs = msgs.filter((m) => typeof m.id === 'number').map((m) => Number((m.result as { header: { revision: string } }).header.revision));
      assert.equal(new Set(revs).size, n, 'every put got its own revision');
      const range = msgs.find((m) => m.id === 'r')!.result as { count: string };
      assert.equal(range.count, '10');
    } finally {
      ws.close();
    }
  });

  it('WebSocket: errors are answered by id, bad messages get id null, the connection stays usable', async function () {
    const ws = await WsClient.connect('127.0.0.1', fastPort);
    try {
      ws.send({ id: 1, path: '/v3/kv/range', body: { key: '' } });
      ws.sendText('{not json');
      ws.send({ path: '/v3/kv/range' });
      ws.send({ id: 2, path: '/v3/nope' });
      ws.send({ id: 3, path: '/v3/kv/range', body: { key: 'Zm9' } });
      ws.send({ id: 4, path: '/v3/lease/grant', body: { TTL: 5 } });
      ws.send({ id: 5, path: '/v3/kv/range', body: { key: b64('m') } });
      const msgs = await ws.waitMessages(7);
      const by = (id: unknown) => msgs.filter((m) => m.id === id);
      assert.deepEqual(by(1)[0].error, { code: 3, message: 'etcdserver: key is not provided', http_status: 400 });
      assert.equal(by(null).length, 2);
      assert.equal((by(2)[0].error as { code: number }).code, 5);
      assert.deepEqual(by(3)[0].error, { code: 3, message: 'illegal base64 data at input byte 0', http_status: 400 });
      const lease = by(4)[0];
      assert.ok('result' in lease || (lease.error as { code: number }).code === 12, JSON.stringify(lease));
      assert.equal(((by(5)[0].result as { kvs: Array<{ value: string }> }).kvs[0].value), b64('1'));
    } finally {
      ws.close();
    }
  });

  it('WebSocket: several watch streams on one connection, with KV requests in between, and cancel', async function () {
    const ws = await WsClient.connect('127.0.0.1', fastPort);
    try {
      ws.send({ id: 'a', path: '/v3/watch', body: { create_request: { key: b64('wa') } } });
      ws.send({ id: 'b', path: '/v3/watch', body: { create_request: { key: b64('wb'), prev_kv: true } } });
      await ws.waitMessages(2);
      ws.send({ id: 1, path: '/v3/kv/put', body: { key: b64('wa'), value: b64('1') } });
      ws.send({ id: 2, path: '/v3/kv/put', body: { key: b64('wb'), value: b64('1') } });
      ws.send({ id: 3, path: '/v3/kv/put', body: { key: b64('wb'), value: b64('2') } });
      const events = (msgs: Array<Record<string, unknown>>, id: string) => msgs.filter((m) => m.id === id && (m.result as { events?: unknown[] })?.events)
        .flatMap((m) => (m.result as { events: Array<{ kv: { value: string }; prev_kv?: { value: string } }> }).events);
      let msgs = await ws.waitUntil((m) => events(m, 'a').length >= 1 && events(m, 'b').length >= 2 && m.filter((x) => typeof x.id === 'number').length === 3);
      assert.deepEqual(events(msgs, 'a').map((e) => e.kv.value), [b64('1')]);
      assert.deepEqual(events(msgs, 'b').map((e) => [e.kv.value, e.prev_kv?.value]), [[b64('1'), undefined], [b64('2'), b64('1')]]);
      // A second WatchRequest on stream a (another watcher), then cancel of stream b.
      ws.send({ id: 'a', body: { create_request: { key: b64('wc') } } });
      ws.send({ id: 'b', cancel: true });
      msgs = await ws.waitUntil((m) => m.some((x) => x.id === 'b' && x.end === true) &&
        m.filter((x) => x.id === 'a' && (x.result as { created?: boolean })?.created).length === 2);
      const ended = msgs.find((m) => m.id === 'b' && m.end === true);
      assert.ok(ended, 'stream b ended');
      assert.equal((ended.error as { code: number }).code, 1);
      const created = msgs.filter((m) => m.id === 'a' && (m.result as { created?: boolean })?.created);
      assert.equal(created.length, 2);
      assert.equal((created[1].result as { watch_id: string }).watch_id, '1');
    } finally {
      ws.close();
    }
  });

  it('WebSocket binary framing: protobuf requests by gRPC method, unary and a watch stream, errors by id', async function () {
    const ws = await WsClient.connect('127.0.0.1', fastPort);
    const frame = (op: number, id: number, method: string, msg: Uint8Array): Buffer => {
      const h = Buffer.alloc(6);
      h[0] = op;
      h.writeUInt32LE(id, 1);
      h[5] = method.length;
      return Buffer.concat([h, Buffer.from(method, 'latin1'), msg]);
    };
    try {
      ws.sendBinary(frame(0, 7, '/etcdserverpb.Watch/Watch', etcdserverpb.WatchRequest.encode({ createRequest: { key: Buffer.from('bin') } }).finish()));
      await ws.waitBinaries(1);
      ws.sendBinary(frame(0, 1, '/etcdserverpb.KV/Put', etcdserverpb.PutRequest.encode({ key: Buffer.from('bin'), value: Buffer.from('v1') }).finish()));
      ws.sendBinary(frame(0, 2, '/etcdserverpb.KV/Range', etcdserverpb.RangeRequest.encode({ key: Buffer.from('') }).finish()));
      ws.sendBinary(frame(0, 3, '/etcdserverpb.Nope/X', new Uint8Array(0)));
      const got = await ws.waitBinaries(5);
      const by = (id: number) => got.filter((b) => b.readUInt32LE(1) === id);
      const created = etcdserverpb.WatchResponse.decode(by(7)[0].subarray(5));
      assert.equal(created.created, true);
      assert.equal(by(1)[0][0], 0);
      const put = etcdserverpb.PutResponse.decode(by(1)[0].subarray(5));
      assert.ok(Number(put.header!.revision) > 1);
      assert.equal(by(2)[0][0], 1);
      assert.equal(by(2)[0].readUInt32LE(5), 3);
      assert.equal(by(2)[0].subarray(9).toString(), 'etcdserver: key is not provided');
      assert.equal(by(3)[0].readUInt32LE(5), 12);
      assert.equal(by(3)[0].subarray(9).toString(), 'unknown service etcdserverpb.Nope');
      const ev = await ws.waitBinaries(5).then(() => etcdserverpb.WatchResponse.decode(by(7)[by(7).length - 1].subarray(5)));
      assert.equal(Buffer.from(ev.events[0].kv!.value!).toString(), 'v1');
      ws.sendBinary(frame(3, 7, '', new Uint8Array(0)));
      const end = (await ws.waitBinaries(6)).find((b) => b[0] === 2 && b.readUInt32LE(1) === 7);
      assert.ok(end, 'stream 7 ended');
      assert.equal(end.readUInt32LE(5), 1);
    } finally {
      ws.close();
    }
  });

  it('client port: an Upgrade other than websocket (curl --http2 sends "Upgrade: h2c") is served as a plain request', async function () {
    const port = Number(new URL(srv!.clientUrl).port);
    const ask = async (text: string): Promise<string> => {
      const s = await rawConnect(port);
      return new Promise((resolve) => {
        let got = '';
        s.on('data', (d) => { got += d.toString(); });
        s.on('close', () => resolve(got));
        s.write(text);
      });
    };
    const up = 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n';
    const health = await ask(`GET /health HTTP/1.1\r\nHost: x\r\n${up}\r\n`);
    assert.match(health, /^HTTP\/1\.1 200 [^]*\{"health":"true"\}$/);
    const body = JSON.stringify({ key: b64('m') });
    const range = await ask(`POST /v3/kv/range HTTP/1.1\r\nHost: x\r\n${up}Content-Length: ${body.length}\r\n\r\n${body}`);
    assert.match(range, /^HTTP\/1\.1 200 [^]*"kvs":\[\{"key":"bQ=="/);
  });

  for (const port of ['client', 'fast'] as const) {
    const base = (): string => (port === 'fast' ? fast : srv!.clientUrl);
    const portNo = (): number => Number(new URL(base()).port);

    it(`${port} port: a body over the limit is refused at once with 413, others are not disturbed`, async function () {
      const s = await rawConnect(portNo());
      const answer = new Promise<string>((resolve) => {
        let got = '';
        s.on('data', (d) => { got += d.toString(); });
        s.on('close', () => resolve(got));
        s.on('end', () => resolve(got));
      });
      s.write('POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\r\n{"key":');
      const text = await answer;
      assert.match(text, /^HTTP\/1\.1 413 /);
      assert.match(text, /"code":8/);
      s.destroy();
      assert.equal((await post(base() + '/v3/kv/range', JSON.stringify({ key: b64('m') }))).status, 200);
    });

    it(`${port} port: a client that sends half a request and stalls does not stall anyone else`, async function () {
      const slow: net.Socket[] = [];
      for (let i = 0; i < 20; i++) {
        const s = await rawConnect(portNo());
        s.on('error', () => undefined);
        s.write('POST /v3/kv/range HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"key":"b');
        slow.push(s);
      }
      try {
        const rs = await Promise.all(Array.from({ length: 50 }, () => post(base() + '/v3/kv/range', JSON.stringify({ key: b64('m') }))));
        assert.ok(rs.every((r) => r.status === 200));
      } finally {
        for (const s of slow) s.destroy();
      }
    });

    it(`${port} port: a watch client that never reads does not stall writes or other watchers`, async function () {
      const s = await rawConnect(portNo());
      s.on('error', () => undefined);
      const body = JSON.stringify({ create_request: { key: b64('slow/'), range_end: b64('slow0') } });
      s.write(`POST /v3/watch HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      s.pause(); // never read: the kernel buffers fill, then the server's send side
      try {
        const value = b64('v'.repeat(30_000));
        for (let i = 0; i < 200; i++) {
          const r = await post(base() + '/v3/kv/put', JSON.stringify({ key: b64(`slow/${i % 20}`), value }));
          assert.equal(r.status, 200);
        }
        const w = new LineStream(base() + '/v3/watch', JSON.stringify({ create_request: { key: b64('slow/1') } }));
        try {
          await w.waitLines(1);
          await post(base() + '/v3/kv/put', JSON.stringify({ key: b64('slow/1'), value: b64('x') }));
          const lines = await w.waitLines(2);
          assert.match(lines[1], /"events"/);
        } finally {
          w.close();
        }
      } finally {
        s.destroy();
      }
    });
  }
});

