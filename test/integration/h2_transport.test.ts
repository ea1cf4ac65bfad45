// GrpcH2Transport (src/main/net/grpc_h2.ts) served in this process through the real client-port
// multiplexer (listenMultiplexed, with a dummy HTTP/1.1 server), driven by grpc-js (grpc.Client with
// identity serializers: unary echo, a 1 MiB response that needs many WINDOW_UPDATEs, errors, bidi
// echo, deadlines) and by node:http2 (many concurrent streams on one connection, a request over the
// receive limit, the compressed flag). A table of bad calls pins each answer's status code, message
// and HTTP status (grpc-go's wording; until the node:http2 fallback transport was removed, these were
// checked by running both transports side by side, and both answered exactly this). The last part
// starts the real server and drives it with etcdctl (grpc-go) and the etcd3 client (grpc-js).
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { GrpcH2Transport } from '../../src/main/net/grpc_h2';
import type { ServerStream } from '../../src/main/net/rpc';
import { listenMultiplexed } from '../../src/main/net/listener';
import { EtcdError, GrpcCode } from '../../src/shared/errors';
import { etcdctl } from '../support/etcdctl';
import { cleanupServersAfter, Server, startEtcdTs } from '../support/procs';

const RECV_MAX = 64 * 1024;
const MIB = 1024 * 1024;

function register(t: GrpcH2Transport): void {
  t.addUnary('/t.S/Echo', (b) => b);
  t.addUnary('/t.S/Big', () => Buffer.alloc(MIB, 0x62));
  t.addUnary('/t.S/Fail', () => Promise.reject(new EtcdError(GrpcCode.FailedPrecondition, 'etcdserver: nope ümlaut 100%')));
  t.addUnary('/t.S/Throw', () => { throw new Error('boom'); });
  t.addUnary('/t.S/Slow', () => new Promise((r) => setTimeout(() => r(Buffer.from('late')), 500)));
  t.addUnary('/t.S/SlowRead', () => new Promise((r) => setTimeout(() => r(Buffer.from('late')), 500)), 'read');
  // A write that stops waiting when its call is cancelled (as Lock does), with the code etcd's recipes use.
  t.addUnary('/t.S/WaitCancel', (_b, ctx) => new Promise((_r, reject) => {
    ctx.onCancel?.(() => reject(new EtcdError(GrpcCode.Canceled, 'context canceled')));
  }));
  t.addUnary('/t.S/FailDeadline', () => Promise.reject(new EtcdError(GrpcCode.DeadlineExceeded, 'peer request timed out')));
  t.addStream('/t.S/Bidi', (ss: ServerStream) => ({
    onMessage: (m) => { ss.send(m); ss.send(m); },
    onEnd: () => ss.end(GrpcCode.OK),
  }));
}

async function serve(t: GrpcH2Transport): Promise<{ port: number; close: () => void }> {
  register(t);
  const srv = await listenMultiplexed('127.0.0.1', 0, t.server, http.createServer((_q, r) => r.end('h1')));
  return { port: (srv.address() as net.AddressInfo).port, close: () => srv.close() };
}

interface Reply { status: number; message: string; body: Buffer; httpStatus: number }

function call(s: http2.ClientHttp2Session, path: string, msg: Buffer, opts: { flag?: number; headers?: http2.OutgoingHttpHeaders; raw?: Buffer } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = s.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...opts.headers });
    let status = -1;
    let message = '';
    let httpStatus = 0;
    const chunks: Buffer[] = [];
    const take = (h: http2.IncomingHttpHeaders): void => {
      if (h[':status'] !== undefined) httpStatus = Number(h[':status']);
      if (h['grpc-status'] !== undefined) status = Number(h['grpc-status']);
      if (typeof h['grpc-message'] === 'string') message = decodeURIComponent(h['grpc-message']);
    };
    req.on('response', take);
    req.on('trailers', take);
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ status, message, body: Buffer.concat(chunks), httpStatus }));
    req.on('error', reject);
    const head = Buffer.alloc(5);
    head[0] = opts.flag ?? 0;
    head.writeUInt32BE(msg.length, 1);
    req.end(opts.raw ?? Buffer.concat([head, msg]));
  });
}

const ident = (b: Buffer): Buffer => b;

describe('GrpcH2Transport in process', function () {
  this.timeout(30_000);
  let h2srv: { port: number; close: () => void };
  let client: grpc.Client;
  let session: http2.ClientHttp2Session;

  before(async () => {
    h2srv = await serve(new GrpcH2Transport({ recvMessageBytesMax: RECV_MAX, streamsPerConnMax: 1000 }));
    client = new grpc.Client(`127.0.0.1:${h2srv.port}`, grpc.credentials.createInsecure());
    session = http2.connect(`http://127.0.0.1:${h2srv.port}`);
    session.on('error', () => { /* surfaced by calls */ });
  });
  after(() => { client.close(); session.close(); h2srv.close(); });

  const unary = (path: string, body: Buffer, deadlineMs?: number): Promise<Buffer> => new Promise((resolve, reject) => {
    const opts = deadlineMs ? { deadline: Date.now() + deadlineMs } : {};
    client.makeUnaryRequest(path, ident, ident, body, new grpc.Metadata(), opts, (err, res) => (err ? reject(err) : resolve(res as Buffer)));
  });

  it('grpc-js: unary echo, including an empty message and one spanning many frames', async () => {
    assert.equal((await unary('/t.S/Echo', Buffer.from('hello'))).toString(), 'hello');
    assert.equal((await unary('/t.S/Echo', Buffer.alloc(0))).length, 0);
    const big = Buffer.alloc(RECV_MAX - 1, 0x7a);
    assert.deepEqual(await unary('/t.S/Echo', big), big);
  });

  it('grpc-js: a 1 MiB response (flow control against grpc-js windows), three at once', async () => {
    const rs = await Promise.all([0, 1, 2].map(() => unary('/t.S/Big', Buffer.alloc(0))));
    for (const r of rs) assert.deepEqual(r, Buffer.alloc(MIB, 0x62));
  });

  it('grpc-js: errors carry code and message; unknown service and method', async () => {
    await assert.rejects(unary('/t.S/Fail', Buffer.alloc(0)), { code: GrpcCode.FailedPrecondition, details: 'etcdserver: nope ümlaut 100%' });
    await assert.rejects(unary('/t.S/Throw', Buffer.alloc(0)), { code: GrpcCode.Unknown, details: 'boom' });
    await assert.rejects(unary('/t.Nope/X', Buffer.alloc(0)), { code: GrpcCode.Unimplemented, details: 'unknown service t.Nope' });
    await assert.rejects(unary('/t.S/X', Buffer.alloc(0)), { code: GrpcCode.Unimplemented, details: 'unknown method X for service t.S' });
    await assert.rejects(unary('/t.S/Echo', Buffer.alloc(RECV_MAX + 1)), { code: GrpcCode.ResourceExhausted });
  });

  it('grpc-js: deadline exceeded', async () => {
    await assert.rejects(unary('/t.S/Slow', Buffer.alloc(0), 100), { code: GrpcCode.DeadlineExceeded });
    assert.equal((await unary('/t.S/Slow', Buffer.alloc(0), 5000)).toString(), 'late');
  });

  it('grpc-js: bidi echo, each message answered twice, then OK', async () => {
    const st = client.makeBidiStreamRequest('/t.S/Bidi', ident, ident);
    const got: string[] = [];
    st.on('data', (d: Buffer) => got.push(d.toString()));
    const status = new Promise<grpc.StatusObject>((r) => st.on('status', r));
    st.on('error', () => { /* status carries it */ });
    for (const m of ['a', 'bb', 'x'.repeat(50_000)]) st.write(Buffer.from(m));
    st.end();
    assert.equal((await status).code, GrpcCode.OK);
    assert.deepEqual(got.map((s) => s.slice(0, 5)), ['a', 'a', 'bb', 'bb', 'xxxxx', 'xxxxx']);
  });

  it('grpc-js: cancelling a bidi stream', async () => {
    const st = client.makeBidiStreamRequest('/t.S/Bidi', ident, ident);
    const status = new Promise<grpc.StatusObject>((r) => st.on('status', r));
    st.on('error', () => { /* cancelled */ });
    st.write(Buffer.from('q'));
    await new Promise((r) => st.once('data', r));
    st.cancel();
    assert.equal((await status).code, GrpcCode.Canceled);
    assert.equal((await unary('/t.S/Echo', Buffer.from('after'))).toString(), 'after');
  });

  it('node:http2: 500 concurrent streams on one connection', async () => {
    const rs = await Promise.all(Array.from({ length: 500 }, (_, i) => call(session, '/t.S/Echo', Buffer.from(`m${i}`))));
    rs.forEach((r, i) => {
      assert.equal(r.status, 0);
      assert.equal(r.body.subarray(5).toString(), `m${i}`);
    });
  });

  it('node:http2: 3000 streams at once (answers for one tick overflow the 64 KiB output buffer)', async () => {
    // Regression: frames written while the output buffer was being swapped went into the old one.
    // 1000 concurrent streams (the limit) whose answers all leave in the same tick, three times over.
    const rs = await Promise.all(Array.from({ length: 3000 }, (_, i) => call(session, '/t.S/Echo', Buffer.from(`n${i}-${'x'.repeat(40)}`))));
    rs.forEach((r, i) => {
      assert.equal(r.status, 0);
      assert.equal(r.body.subarray(5).toString(), `n${i}-${'x'.repeat(40)}`);
    });
  });

  it('node:http2: 1 MiB responses on several streams at once', async () => {
    const rs = await Promise.all([0, 1, 2, 3].map(() => call(session, '/t.S/Big', Buffer.alloc(0))));
    for (const r of rs) assert.equal(r.body.length, MIB + 5);
  });

  it('HTTP/1.1 on the same port still reaches the HTTP/1.1 server', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      http.get(`http://127.0.0.1:${h2srv.port}/`, (res) => {
        let s = '';
        res.on('data', (c) => { s += c; });
        res.on('end', () => resolve(s));
      }).on('error', reject);
    });
    assert.equal(body, 'h1');
  });
});

describe('GrpcH2Transport: answers to bad calls', function () {
  this.timeout(30_000);
  let server: { port: number; close: () => void };
  let session: http2.ClientHttp2Session;
  before(async () => {
    server = await serve(new GrpcH2Transport({ recvMessageBytesMax: RECV_MAX, streamsPerConnMax: 100 }));
    session = http2.connect(`http://127.0.0.1:${server.port}`);
    session.on('error', () => { /* per call */ });
  });
  after(() => { session.close(); server.close(); });

  const two = Buffer.concat([Buffer.from([0, 0, 0, 0, 1, 0x61]), Buffer.from([0, 0, 0, 0, 1, 0x62])]);
  const deadline = { 'grpc-timeout': '50m' };
  const timedOut = { status: GrpcCode.Unavailable, message: 'etcdserver: request timed out', http: 200 };
  // want: what the call is answered ({status: -1} when no grpc-status comes back, as for a 415).
  const cases: Array<{ name: string; path: string; msg: Buffer; flag?: number; raw?: Buffer; headers?: http2.OutgoingHttpHeaders;
    want: { status: number; message: string; http: number } }> = [
    { name: 'unknown service', path: '/x.Y/Z', msg: Buffer.alloc(0), want: { status: GrpcCode.Unimplemented, message: 'unknown service x.Y', http: 200 } },
    { name: 'unknown method', path: '/t.S/Z', msg: Buffer.alloc(0), want: { status: GrpcCode.Unimplemented, message: 'unknown method Z for service t.S', http: 200 } },
    { name: 'malformed method name', path: '/nomethod', msg: Buffer.alloc(0), want: { status: GrpcCode.Unimplemented, message: 'malformed method name: "/nomethod"', http: 200 } },
    { name: 'message over the receive limit', path: '/t.S/Echo', msg: Buffer.alloc(RECV_MAX + 10),
      want: { status: GrpcCode.ResourceExhausted, message: `grpc: received message larger than max (${RECV_MAX + 10} vs. ${RECV_MAX})`, http: 200 } },
    { name: 'compressed flag', path: '/t.S/Echo', msg: Buffer.from('x'), flag: 1,
      want: { status: GrpcCode.Unimplemented, message: 'grpc: Decompressor is not installed for grpc-encoding', http: 200 } },
    { name: 'two messages in a unary call', path: '/t.S/Echo', msg: Buffer.alloc(0), raw: two,
      want: { status: GrpcCode.Unimplemented, message: 'grpc: more than one message in a unary call', http: 200 } },
    { name: 'truncated message', path: '/t.S/Echo', msg: Buffer.alloc(0), raw: Buffer.from([0, 0, 0, 0, 9, 1]),
      want: { status: GrpcCode.Internal, message: 'grpc: error while reading the request: unexpected EOF', http: 200 } },
    { name: 'no message at all', path: '/t.S/Echo', msg: Buffer.alloc(0), raw: Buffer.alloc(0),
      want: { status: GrpcCode.Internal, message: 'grpc: error while reading the request: unexpected EOF', http: 200 } },
    { name: 'handler error', path: '/t.S/Fail', msg: Buffer.alloc(0), want: { status: GrpcCode.FailedPrecondition, message: 'etcdserver: nope ümlaut 100%', http: 200 } },
    { name: 'handler throws', path: '/t.S/Throw', msg: Buffer.alloc(0), want: { status: GrpcCode.Unknown, message: 'boom', http: 200 } },
    { name: 'deadline of a read', path: '/t.S/SlowRead', msg: Buffer.alloc(0), headers: deadline,
      want: { status: GrpcCode.DeadlineExceeded, message: 'context deadline exceeded', http: 200 } },
    { name: 'deadline of a write', path: '/t.S/Slow', msg: Buffer.alloc(0), headers: deadline, want: { status: GrpcCode.OK, message: '', http: 200 } },
    { name: 'deadline of a write that waits for its cancel', path: '/t.S/WaitCancel', msg: Buffer.alloc(0), headers: deadline, want: timedOut },
    { name: 'a write failing with DEADLINE_EXCEEDED', path: '/t.S/FailDeadline', msg: Buffer.alloc(0), want: timedOut },
    { name: 'wrong content-type', path: '/t.S/Echo', msg: Buffer.alloc(0), headers: { 'content-type': 'text/plain' }, want: { status: -1, message: '', http: 415 } },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const r = await call(session, c.path, c.msg, { flag: c.flag, raw: c.raw, headers: c.headers });
      assert.deepEqual({ status: r.status, message: r.message, http: r.httpStatus }, c.want);
      const ok = await call(session, '/t.S/Echo', Buffer.from('ok'));
      assert.equal(ok.status, 0);
    });
  }

  // Issue 13: clientv3 resends any call answered DEADLINE_EXCEEDED or CANCELLED before its own deadline,
  // so a write that may still be applied is never answered with either (rpc.ts MethodKind). A raw
  // HTTP/2 client does not enforce the deadline itself, so what the server answers is visible here.
  it('a read answers its deadline; a write is never answered DEADLINE_EXCEEDED or CANCELLED', async () => {
    const read = await call(session, '/t.S/SlowRead', Buffer.alloc(0), { headers: deadline });
    assert.deepEqual([read.status, read.message], [GrpcCode.DeadlineExceeded, 'context deadline exceeded']);
    const write = await call(session, '/t.S/Slow', Buffer.alloc(0), { headers: deadline });
    assert.deepEqual([write.status, write.body.subarray(5).toString()], [GrpcCode.OK, 'late'], 'the write is answered with its outcome');
    const cancelled = await call(session, '/t.S/WaitCancel', Buffer.alloc(0), { headers: deadline });
    assert.deepEqual([cancelled.status, cancelled.message], [GrpcCode.Unavailable, 'etcdserver: request timed out']);
    const failed = await call(session, '/t.S/FailDeadline', Buffer.alloc(0));
    assert.deepEqual([failed.status, failed.message], [GrpcCode.Unavailable, 'etcdserver: request timed out']);
  });
});

describe('the real server (etcdctl = grpc-go, etcd3 = grpc-js)', function () {
  this.timeout(60_000);
  let s: Server | undefined;
  cleanupServersAfter(() => [s]);
  before(async function () {
    s = await startEtcdTs();
  });

  it('etcdctl put/get/del/txn/status/member list and a 1 MB value', async () => {
    const ep = (s as Server).endpoint;
    assert.equal((await etcdctl(ep, ['put', 'foo', 'bar'])).stdout, 'OK\n');
    assert.equal((await etcdctl(ep, ['get', 'foo'])).stdout, 'foo\nbar\n');
    const txn = await etcdctl(ep, ['txn'], { input: 'value("foo") = "bar"\n\nput foo baz\n\n\n' });
    assert.equal(txn.stdout, 'SUCCESS\n\nOK\n');
    assert.equal((await etcdctl(ep, ['get', 'foo', '--print-value-only'])).stdout, 'baz\n');
    assert.equal((await etcdctl(ep, ['del', 'foo'])).stdout, '1\n');
    assert.equal((await etcdctl(ep, ['endpoint', 'health'])).code, 0);
    assert.equal((await etcdctl(ep, ['endpoint', 'status', '-w', 'json'])).code, 0);
    assert.equal((await etcdctl(ep, ['member', 'list'])).code, 0);
    const big = 'v'.repeat(1_000_000);
    assert.equal((await etcdctl(ep, ['put', 'big'], { input: big })).stdout, 'OK\n');
    assert.equal((await etcdctl(ep, ['get', 'big', '--print-value-only'])).stdout, big + '\n');
    // etcdctl itself refuses to send over 2 MiB, so the transport's own limit is not reachable here;
    // 1.6 MB crosses many frames and reaches etcd's --max-request-bytes check.
    const tooBig = await etcdctl(ep, ['put', 'huge'], { input: 'v'.repeat(1_600_000) });
    assert.match(tooBig.stderr, /etcdserver: request is too large/);
  });

  it('etcd3 npm client: put/get many keys concurrently', async () => {
    const c = new Etcd3({ hosts: (s as Server).clientUrl, dialTimeout: 5_000 });
    try {
      await Promise.all(Array.from({ length: 200 }, (_, i) => c.put(`k${i}`).value(`v${i}`)));
      assert.equal(await c.get('k199').string(), 'v199');
      assert.equal(Object.keys(await c.getAll().prefix('k').strings()).length, 200);
    } finally {
      c.close();
    }
  });
});
