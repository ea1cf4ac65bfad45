// Bad input at the gRPC layer, sent with a raw HTTP/2 client so that nothing client-side
// interferes: unknown services and methods, oversized messages (both of etcd's limits:
// the gRPC receive limit of --max-request-bytes + 512 KiB, and etcd's own "request is too large"
// below it), compressed frames, and malformed protobuf. Status codes and messages are compared
// with Debian's etcd 3.4 where etcd defines them; malformed protobuf must be INVALID_ARGUMENT (the
// foundation issue's rule; grpc-go itself says INTERNAL). After every bad call, a normal Put on
// the same connection must still succeed: bad input never takes the server down.
import { strict as assert } from 'node:assert';
import { etcdserverpb } from '../../src/shared/gen/etcd';
import { RawGrpc, UnaryReply } from '../support/grpc_raw';
import { cleanupServersAfter, Server, startEtcd, startEtcdTs } from '../support/procs';

const put = (key: string, valueBytes = 3): Buffer =>
  Buffer.from(etcdserverpb.PutRequest.encode({ key: Buffer.from(key), value: Buffer.alloc(valueBytes, 0x61) }).finish());

const cases: Array<{ name: string; path: string; msg: () => Buffer; flag?: number }> = [
  { name: 'unknown service', path: '/etcdserverpb.Nope/Range', msg: () => Buffer.alloc(0) },
  { name: 'unknown method of a known service', path: '/etcdserverpb.KV/Nope', msg: () => Buffer.alloc(0) },
  { name: 'value over --max-request-bytes', path: '/etcdserverpb.KV/Put', msg: () => put('big', 1_600_000) },
  { name: 'message over the gRPC receive limit', path: '/etcdserverpb.KV/Put', msg: () => put('huge', 2_200_000) },
  { name: 'empty key', path: '/etcdserverpb.KV/Put', msg: () => put('') },
];

describe('gRPC bad input: same codes and messages as etcd, server keeps serving', function () {
  this.timeout(60_000);
  let ours: Server | undefined;
  let ref: Server | undefined;
  cleanupServersAfter(() => [ours, ref]);
  const clients: RawGrpc[] = [];
  after(() => { for (const c of clients) c.close(); });

  before(async () => {
    [ours, ref] = await Promise.all([startEtcdTs(), startEtcd()]);
  });

  const connect = (s: Server): RawGrpc => {
    const c = new RawGrpc(s.endpoint);
    clients.push(c);
    return c;
  };
  const call = (c: RawGrpc, path: string, msg: Buffer, compressedFlag = 0): Promise<UnaryReply> => c.unary(path, msg, { compressedFlag });

  for (const c of cases) {
    it(`${c.name}`, async () => {
      const a = connect(ref as Server);
      const b = connect(ours as Server);
      const [ra, rb] = await Promise.all([call(a, c.path, c.msg(), c.flag), call(b, c.path, c.msg(), c.flag)]);
      assert.deepEqual({ status: rb.status, message: rb.message }, { status: ra.status, message: ra.message });
      const ok = await call(b, '/etcdserverpb.KV/Put', put('after'));
      assert.equal(ok.status, 0, `server stopped serving after "${c.name}": ${ok.message}`);
    });
  }

  it('malformed protobuf is INVALID_ARGUMENT, and the server keeps serving', async () => {
    const b = connect(ours as Server);
    const r = await call(b, '/etcdserverpb.KV/Put', Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]));
    assert.equal(r.status, 3, r.message);
    assert.match(r.message, /^grpc: error unmarshalling request/);
    const ok = await call(b, '/etcdserverpb.KV/Range', Buffer.from(etcdserverpb.RangeRequest.encode({ key: Buffer.from('after') }).finish()));
    assert.equal(ok.status, 0);
  });

  it('a compressed frame without grpc-encoding is refused, not crashed on', async () => {
    const b = connect(ours as Server);
    const r = await call(b, '/etcdserverpb.KV/Put', put('z'), 1);
    assert.notEqual(r.status, 0);
    assert.notEqual(r.status, -1);
    const ok = await call(b, '/etcdserverpb.KV/Put', put('after2'));
    assert.equal(ok.status, 0);
  });
});
