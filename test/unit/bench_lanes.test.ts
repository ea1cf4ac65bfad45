// The wire formats of the bench tool's HTTP/JSON and WebSocket lanes (bench/lib/lane_wire.ts), with
// no server: every request template, with keys written in place, is decoded back the way the server
// decodes it (HTTP head + body through etcd-ts's own jsonpb mapping, WebSocket frames by their
// header) and must be the same protobuf request as the gRPC lane's template for the same keys; and
// the response parsers (HTTP/1.1 Content-Length and chunked, WebSocket frames of all three length
// forms) must give the same answers however the bytes are split across reads.
import { strict as assert } from 'node:assert';
import { defaultProtoDir, JsonCodec } from '../../src/main/gateway/jsonpb';
import { etcdserverpb } from '../../src/shared/gen/etcd';
import * as L from '../../bench/lib/lane_wire';
import * as W from '../../bench/lib/workloads';

const codec = JsonCodec.load(defaultProtoDir());

type Shape = 'put' | 'range' | 'range-prefix' | 'txn-put' | 'txn-compare' | 'delete';
const shapes: Shape[] = ['put', 'range', 'range-prefix', 'txn-put', 'txn-compare', 'delete'];
const typeOf: Record<string, { req: string; grpc: string }> = {
  '/v3/kv/put': { req: 'etcdserverpb.PutRequest', grpc: W.paths.put },
  '/v3/kv/range': { req: 'etcdserverpb.RangeRequest', grpc: W.paths.range },
  '/v3/kv/txn': { req: 'etcdserverpb.TxnRequest', grpc: W.paths.txn },
  '/v3/kv/deleterange': { req: 'etcdserverpb.DeleteRangeRequest', grpc: W.paths.deleteRange },
};

function templates(o: W.RequestOptions, shape: Shape): { grpc: W.Template; json: L.JsonBody; l: W.KeyLayout } {
  const l = W.layoutFor(o);
  const v = W.makeValue(o.valueSize, 7);
  switch (shape) {
    case 'put': return { grpc: W.putTemplate(o, l, v), json: L.putJson(o, l, v), l };
    case 'range': return { grpc: W.rangeTemplate(o, l, false), json: L.rangeJson(o, l, false), l };
    case 'range-prefix': return { grpc: W.rangeTemplate(o, l, true), json: L.rangeJson(o, l, true), l };
    case 'txn-put': return { grpc: W.txnPutTemplate(o, l, v), json: L.txnPutJson(o, l, v), l };
    case 'txn-compare': return { grpc: W.txnCompareTemplate(o, l, v), json: L.txnCompareJson(o, l, v), l };
    case 'delete': return { grpc: W.deleteTemplate(o, l), json: L.deleteJson(o, l), l };
  }
}

/** The protobuf bytes the server would decode from a JSON body (etcd-ts's gateway mapping). */
function jsonToProto(route: string, text: string): Buffer {
  const c = codec.message(typeOf[route].req);
  assert.ok(c, route);
  return Buffer.from(c.encodeJson(JSON.parse(text)));
}

/**
 * Decoded protobuf of a request type as a plain object with every default filled in, to compare
 * messages rather than encodings (the gRPC template sends serializable=false explicitly, the JSON none).
 */
function asObject(route: string, bytes: Uint8Array): unknown {
  const opts = { defaults: true, longs: String, bytes: String, enums: String };
  switch (route) {
    case '/v3/kv/put': return etcdserverpb.PutRequest.toObject(etcdserverpb.PutRequest.decode(bytes), opts);
    case '/v3/kv/range': return etcdserverpb.RangeRequest.toObject(etcdserverpb.RangeRequest.decode(bytes), opts);
    case '/v3/kv/txn': return etcdserverpb.TxnRequest.toObject(etcdserverpb.TxnRequest.decode(bytes), opts);
    case '/v3/kv/deleterange': return etcdserverpb.DeleteRangeRequest.toObject(etcdserverpb.DeleteRangeRequest.decode(bytes), opts);
  }
  throw new Error(`no request type for ${route}`);
}

/** Splits an HTTP request into head lines and body. */
function parseHttpRequest(b: Buffer): { line: string; headers: Map<string, string>; body: string } {
  const s = b.toString('latin1');
  const end = s.indexOf('\r\n\r\n');
  const [line, ...hs] = s.slice(0, end).split('\r\n');
  const headers = new Map(hs.map((h) => [h.slice(0, h.indexOf(':')).toLowerCase(), h.slice(h.indexOf(':') + 1).trim()] as [string, string]));
  return { line, headers, body: s.slice(end + 4) };
}

/** A client frame: FIN, opcode, the mask bit set with a zero key, the payload. */
function parseClientFrame(b: Buffer): { op: number; payload: Buffer } {
  assert.equal(b[0] & 0x80, 0x80, 'FIN');
  assert.equal(b[1] & 0x80, 0x80, 'masked');
  let len = b[1] & 0x7f;
  let h = 2;
  if (len === 126) { len = b.readUInt16BE(2); h = 4; } else if (len === 127) { len = Number(b.readBigUInt64BE(2)); h = 10; }
  assert.deepEqual([...b.subarray(h, h + 4)], [0, 0, 0, 0], 'zero mask key');
  assert.equal(b.length, h + 4 + len, 'frame length');
  return { op: b[0] & 0x0f, payload: b.subarray(h + 4) };
}

/** Writes the same keys into a gRPC template and a lane template. */
function setKeys(shape: Shape, o: W.RequestOptions, g: W.Template, t: L.WireTemplate, i: number): void {
  const keys = shape === 'range-prefix' ? [i, i + o.rangeSpan] : shape === 'txn-put' ? Array.from({ length: o.txnOps }, (_, k) => (i + k) % o.keySpace) : [i];
  keys.forEach((key, k) => { W.setKey(g, k, key); L.setWireKey(t, k, key); });
}

const optionSets: W.RequestOptions[] = [
  W.defaultRequestOptions,
  { ...W.defaultRequestOptions, keySize: 7, valueSize: 0, keySpace: 1000, consistency: 's', txnOps: 3, rangeSpan: 5 },
  { ...W.defaultRequestOptions, keySize: 32, valueSize: 70_000, keySpace: 99_999, txnOps: 2 }, // 64-bit WS length, chunk-sized JSON
];
const indexes = (o: W.RequestOptions): number[] => [0, 1, 9, 10, 123, o.keySpace - 1];

describe('bench lanes: request templates decode back to the gRPC request', () => {
  it('writeBase64 writes what Buffer.toString("base64") gives, every length and padding', () => {
    for (let n = 0; n <= 40; n++) {
      const src = Buffer.from(Array.from({ length: n }, (_, i) => (i * 97 + n * 31) & 0xff));
      const dst = Buffer.alloc(L.b64Length(n) + 2, 0x2e);
      L.writeBase64(src, dst, 1);
      assert.equal(dst.toString('latin1', 1, 1 + L.b64Length(n)), src.toString('base64'));
      assert.equal(dst[0], 0x2e);
      assert.equal(dst[dst.length - 1], 0x2e, 'writes nothing past the base64');
    }
  });

  for (const shape of shapes) {
    it(`${shape}: HTTP request`, () => {
      for (const o of optionSets) {
        const { grpc, json, l } = templates(o, shape);
        const t = L.httpRequest(json, '127.0.0.1:2379', l);
        for (const i of indexes(o)) {
          setKeys(shape, o, grpc, t, i);
          const r = parseHttpRequest(t.framed);
          assert.equal(r.line, `POST ${json.route} HTTP/1.1`);
          assert.equal(r.headers.get('host'), '127.0.0.1:2379');
          assert.equal(r.headers.get('content-type'), 'application/json');
          assert.equal(Number(r.headers.get('content-length')), Buffer.byteLength(r.body));
          assert.equal(typeOf[json.route].grpc, grpc.path);
          assert.deepEqual(asObject(json.route, jsonToProto(json.route, r.body)), asObject(json.route, grpc.framed.subarray(5)), `${shape} key ${i}`);
        }
      }
    });

    it(`${shape}: WebSocket JSON frame`, () => {
      for (const o of optionSets) {
        const { grpc, json, l } = templates(o, shape);
        const t = L.wsJsonRequest(json, l);
        for (const [n, i] of indexes(o).entries()) {
          setKeys(shape, o, grpc, t, i);
          const id = [0, 7, 4242, L.wsJsonIdMax][n % 4];
          L.setWireId(t, id);
          const f = parseClientFrame(t.framed);
          assert.equal(f.op, 1, 'text frame');
          const m = JSON.parse(f.payload.toString('utf8')) as { id: string; path: string; body: unknown };
          assert.equal(Number(m.id), id);
          assert.equal(m.path, json.route);
          assert.deepEqual(asObject(json.route, jsonToProto(json.route, JSON.stringify(m.body))), asObject(json.route, grpc.framed.subarray(5)));
        }
      }
    });

    it(`${shape}: WebSocket binary frame`, () => {
      for (const o of optionSets) {
        const { grpc, l } = templates(o, shape);
        const t = L.wsBinaryRequest(templates(o, shape).grpc, l);
        for (const i of indexes(o)) {
          setKeys(shape, o, grpc, t, i);
          L.setWireId(t, i * 3 + 1);
          const f = parseClientFrame(t.framed);
          assert.equal(f.op, 2, 'binary frame');
          assert.equal(f.payload[0], 0, 'op CALL');
          assert.equal(f.payload.readUInt32LE(1), i * 3 + 1);
          const n = f.payload[5];
          assert.equal(f.payload.toString('latin1', 6, 6 + n), grpc.path);
          assert.ok(f.payload.subarray(6 + n).equals(grpc.framed.subarray(5)), `${shape} key ${i}: the gRPC message, byte for byte`);
        }
      }
    });
  }
});

/** Feeds bytes to a parser split at `cut` (and in one piece when cut is 0). */
function splits(b: Buffer): Buffer[][] {
  const out: Buffer[][] = [[b]];
  for (let cut = 1; cut < b.length; cut++) out.push([b.subarray(0, cut), b.subarray(cut)]);
  out.push([...b].map((x) => Buffer.from([x]))); // a byte at a time
  return out;
}

describe('bench lanes: response parsers', () => {
  it('HTTP/1.1: Content-Length, empty, chunked (with a trailer) and error bodies, however split', () => {
    const err = '{"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":3}';
    const wire = Buffer.from([
      'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"x":"abc"}',
      'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\n9;ext=1\r\n"012345"}\r\n0\r\nX-Trailer: 1\r\n\r\n',
      `HTTP/1.1 400 Bad Request\r\ncontent-length: ${err.length}\r\nConnection: close\r\n\r\n${err}`,
      'HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n',
    ].join(''), 'latin1');
    for (const parts of splits(wire)) {
      const p = new L.HttpResponseParser();
      const out: L.HttpResponse[] = [];
      for (const x of parts) p.push(x, out);
      assert.deepEqual(out.map((r) => r.status), [200, 200, 200, 400, 503]);
      assert.deepEqual(out.map((r) => r.close), [false, false, false, true, false]);
      assert.deepEqual(out.map((r) => r.body?.toString() ?? null), [null, null, null, err, 'abcde'], 'bodies of 2xx are skipped');
      assert.deepEqual(L.gatewayError(out[3].status, out[3].body), { code: 3, message: 'etcdserver: key is not provided' });
      assert.deepEqual(L.gatewayError(out[4].status, out[4].body), { code: 2, message: 'HTTP 503 abcde' });
    }
  });

  it('HTTP/1.1: a response with neither length nor chunking is refused', () => {
    assert.throws(() => new L.HttpResponseParser().push(Buffer.from('HTTP/1.1 200 OK\r\n\r\n'), []), /neither Content-Length/);
    assert.throws(() => new L.HttpResponseParser().push(Buffer.from('SSH-2.0-x\r\n\r\n'), []), /not a response/);
  });

  it('WebSocket: frames with 7-bit, 16-bit and 64-bit lengths, however split', () => {
    const frame = (op: number, payload: Buffer): Buffer => {
      const n = payload.length;
      const h = n < 126 ? Buffer.from([0x80 | op, n]) : n < 65536 ? Buffer.from([0x80 | op, 126, n >> 8, n & 0xff])
        : Buffer.concat([Buffer.from([0x80 | op, 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b; })()]);
      return Buffer.concat([h, payload]);
    };
    const payloads = [Buffer.from('{"id":"000001","result":{}}'), Buffer.alloc(300, 0x61), Buffer.alloc(70_000, 0x62), Buffer.alloc(0)];
    const wire = Buffer.concat([frame(1, payloads[0]), frame(2, payloads[1]), frame(1, payloads[2]), frame(9, payloads[3])]);
    const cuts = [1, 2, 3, 30, 31, 33, 34, 340, wire.length - 1];
    for (const parts of [[wire], ...cuts.map((c) => [wire.subarray(0, c), wire.subarray(c)])]) {
      const p = new L.WsFrameParser();
      const got: Array<{ op: number; len: number; same: boolean }> = [];
      for (const x of parts) p.push(Buffer.from(x), (op, pl) => got.push({ op, len: pl.length, same: pl.equals(payloads[got.length]) }));
      assert.deepEqual(got, [{ op: 1, len: payloads[0].length, same: true }, { op: 2, len: 300, same: true }, { op: 1, len: 70_000, same: true }, { op: 9, len: 0, same: true }]);
    }
  });

  it('WebSocket answers: result and error, JSON (either field order) and binary', () => {
    assert.deepEqual(L.wsJsonAnswer(Buffer.from('{"id":"000042","result":{"header":{}}}')), { id: 42, code: 0, message: null });
    assert.deepEqual(L.wsJsonAnswer(Buffer.from('{"id":"000007","error":{"code":8,"message":"etcdserver: too many requests","http_status":429}}')),
      { id: 7, code: 8, message: 'etcdserver: too many requests' });
    assert.deepEqual(L.wsJsonAnswer(Buffer.from('{"result":{},"id":"000003"}')), { id: 3, code: 0, message: null });
    const ok = Buffer.alloc(5 + 3); ok[0] = 0; ok.writeUInt32LE(99, 1);
    assert.deepEqual(L.wsBinaryAnswer(ok), { id: 99, code: 0, message: null });
    const e = Buffer.concat([Buffer.from([1, 5, 0, 0, 0, 3, 0, 0, 0]), Buffer.from('etcdserver: key is not provided')]);
    assert.deepEqual(L.wsBinaryAnswer(e), { id: 5, code: 3, message: 'etcdserver: key is not provided' });
  });
});
