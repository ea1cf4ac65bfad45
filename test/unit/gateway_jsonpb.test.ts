// Unit tests of the gateway's JSON mapping (src/main/gateway/jsonpb.ts), its JSON value scanner
// (json_scan.ts) and the Prometheus registry (metrics.ts). The expected strings are what etcd 3.4's
// gateway (grpc-gateway v1 + golang/protobuf jsonpb + Go's encoding/json) answers for the same input,
// taken from curl against Debian's etcd 3.4.23; the integration test gateway_diff.test.ts compares
// whole answers against a running etcd.
import * as assert from 'node:assert/strict';
import Long from 'long';
import { defaultProtoDir, goBase64ErrorAt, JsonCodec, JsonInputError, longToString, lowerCamel } from '../../src/main/gateway/jsonpb';
import { parseFirstValue, quoteLongNumbers, scanFirstValue } from '../../src/main/gateway/json_scan';
import { JsonValueSplitter, httpStatusFromCode, errorBody, streamErrorLine } from '../../src/main/gateway/gateway';
import { ROUTES, routeMap } from '../../src/main/gateway/routes';
import { etcdserverpb } from '../../src/shared/gen/etcd';
import { exponentialBuckets, Registry, SharedHistogramMetric } from '../../src/main/metrics';
import { SharedHistogram } from '../../src/shared/shared_histogram';

const codec = JsonCodec.load(defaultProtoDir());
const msg = (t: string) => {
  const c = codec.message(t);
  assert.ok(c, t);
  return c;
};
const inputError = (fn: () => unknown, message: string) =>
  assert.throws(fn, (e: Error) => e instanceof JsonInputError && e.message === message);

describe('gateway JSON mapping (jsonpb)', () => {
  it('writes 64-bit integers exactly (Long without its division loop)', () => {
    for (const t of ['0', '1', '4294967295', '4294967296', '9007199254740993', '18446744073709551615', '324952591200643719']) {
      assert.equal(longToString(Long.fromString(t, true)), t);
      assert.equal(longToString(Long.fromString(t, true)), t); // cached
    }
    for (const t of ['-1', '-4294967296', '-9223372036854775808', '9223372036854775807', '-9007199254740993']) assert.equal(longToString(Long.fromString(t, false)), t);
  });

  it('writes original field names in declaration order, int64 as strings, bytes as base64, zero values omitted', () => {
    const bytes = etcdserverpb.RangeResponse.encode({
      header: { clusterId: Long.fromString('324952591200643719', true), memberId: 7, revision: 3, raftTerm: 2 },
      kvs: [{ key: Buffer.from('foo'), createRevision: 2, modRevision: 3, version: 2, value: Buffer.from('bar') }],
      count: 1, more: false,
    }).finish();
    assert.equal(msg('etcdserverpb.RangeResponse').decodeToJson(bytes),
      '{"header":{"cluster_id":"324952591200643719","member_id":"7","revision":"3","raft_term":"2"},' +
      '"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"3","version":"2","value":"YmFy"}],"count":"1"}');
  });

  it('keeps camelCase .proto names as etcd does (dbSize, ID, peerURLs) and writes uint32 as a number', () => {
    const st = etcdserverpb.StatusResponse.encode({ header: { revision: 5 }, version: '3.4.23', dbSize: 20480, raftIndex: 9 }).finish();
    assert.equal(msg('etcdserverpb.StatusResponse').decodeToJson(st), '{"header":{"revision":"5"},"version":"3.4.23","dbSize":"20480","raftIndex":"9"}');
    const h = etcdserverpb.HashResponse.encode({ header: {}, hash: 4037444381 }).finish();
    assert.equal(msg('etcdserverpb.HashResponse').decodeToJson(h), '{"header":{},"hash":4037444381}');
  });

  it('writes a set oneof member even when empty, and enums by name', () => {
    const t = etcdserverpb.TxnResponse.encode({ succeeded: true, responses: [{ responsePut: { header: { revision: 4 } } }, { responseDeleteRange: {} }] }).finish();
    assert.equal(msg('etcdserverpb.TxnResponse').decodeToJson(t),
      '{"succeeded":true,"responses":[{"response_put":{"header":{"revision":"4"}}},{"response_delete_range":{}}]}');
    const w = etcdserverpb.WatchResponse.encode({ watchId: 1, events: [{ type: 1, kv: { key: Buffer.from('a') } }, { kv: { key: Buffer.from('b') } }] }).finish();
    assert.equal(msg('etcdserverpb.WatchResponse').decodeToJson(w), '{"watch_id":"1","events":[{"type":"DELETE","kv":{"key":"YQ=="}},{"kv":{"key":"Yg=="}}]}');
  });

  it('escapes strings as Go encoding/json does', () => {
    const m = etcdserverpb.StatusResponse.encode({ version: '<a&b>\u2028' }).finish();
    assert.equal(msg('etcdserverpb.StatusResponse').decodeToJson(m), '{"version":"\\u003ca\\u0026b\\u003e\\u2028"}');
  });

  it('reads original and lowerCamel names, quoted or bare numbers, enum names or numbers, and ignores unknown fields', () => {
    const c = msg('etcdserverpb.RangeRequest');
    const a = etcdserverpb.RangeRequest.decode(c.encodeJson({ key: 'Zm9v', range_end: 'Zm9w', limit: '5', sort_order: 'DESCEND', sortTarget: 2, countOnly: true, bogus: 1 }));
    assert.equal(Buffer.from(a.key).toString(), 'foo');
    assert.equal(Buffer.from(a.rangeEnd).toString(), 'fop');
    assert.equal(Number(a.limit), 5);
    assert.equal(a.sortOrder, 2);
    assert.equal(a.sortTarget, 2);
    assert.equal(a.countOnly, true);
    const big = etcdserverpb.RangeRequest.decode(c.encodeJson({ revision: '9223372036854775807', min_mod_revision: null }));
    assert.equal(big.revision.toString(), '9223372036854775807');
    const t = etcdserverpb.TxnRequest.decode(msg('etcdserverpb.TxnRequest').encodeJson({
      compare: [{ key: 'Zm9v', result: 'EQUAL', target: 'VALUE', value: 'YmFy' }],
      success: [{ request_put: { key: 'YQ==', value: 'Yg==' } }], failure: [{ requestRange: { key: 'YQ==' } }],
    }));
    assert.equal(Buffer.from(t.compare[0].value!).toString(), 'bar');
    assert.equal(Buffer.from(t.success[0].requestPut!.value!).toString(), 'b');
    assert.ok(t.failure[0].requestRange);
  });

  it('refuses bad input with the messages of etcd 3.4\'s gateway', () => {
    const c = msg('etcdserverpb.RangeRequest');
    inputError(() => c.encodeJson({ key: 123 }), 'json: cannot unmarshal number into Go value of type []uint8');
    inputError(() => c.encodeJson({ key: 'Zm9v', limit: 'x' }), "invalid character 'x' looking for beginning of value");
    inputError(() => c.encodeJson({ key: 'Zm9v', limit: 1.5 }), 'json: cannot unmarshal number 1.5 into Go value of type int64');
    inputError(() => c.encodeJson({ key: 'Zm9v', sort_order: 'FOO' }), 'unknown value "FOO" for enum etcdserverpb.RangeRequest_SortOrder');
    inputError(() => c.encodeJson({ key: 'Zm9' }), 'illegal base64 data at input byte 0');
    inputError(() => c.encodeJson({ key: 'Zm9vYQ' }), 'illegal base64 data at input byte 4');
    inputError(() => c.encodeJson({ key: 'Zm9v_-' }), 'illegal base64 data at input byte 4');
    inputError(() => c.encodeJson([]), 'json: cannot unmarshal array into Go value of type map[string]json.RawMessage');
    inputError(() => c.encodeJson({ serializable: 'yes' }), 'json: cannot unmarshal string into Go value of type bool');
    inputError(() => c.encodeJson({ revision: '18446744073709551616' }), 'json: cannot unmarshal number 18446744073709551616 into Go value of type int64');
  });

  it('decodes base64 exactly where Go does', () => {
    assert.equal(goBase64ErrorAt(''), -1);
    assert.equal(goBase64ErrorAt('YQ=='), -1);
    assert.equal(goBase64ErrorAt('YQ='), 3);
    assert.equal(goBase64ErrorAt('Y==='), 1);
    assert.equal(goBase64ErrorAt('YQ==YQ=='), 4);
    assert.equal(goBase64ErrorAt('YQ==\n'), -1);
    assert.equal(goBase64ErrorAt('Y Q=='), 1);
    assert.equal(lowerCamel('prev_kv'), 'prevKv');
    assert.equal(lowerCamel('ID'), 'ID');
  });
});

describe('gateway JSON value scanning', () => {
  it('finds the first value and Go\'s errors', () => {
    assert.deepEqual(parseFirstValue(''), { value: undefined });
    assert.deepEqual(parseFirstValue('{"key":"Zm9v"} xx'), { value: { key: 'Zm9v' } });
    assert.deepEqual(parseFirstValue('{"key":"Zm9v"'), { error: 'unexpected EOF' });
    assert.deepEqual(parseFirstValue('xx'), { error: "invalid character 'x' looking for beginning of value" });
    assert.deepEqual(parseFirstValue('{"a":1,}'), { error: "invalid character '}' looking for beginning of object key string" });
    assert.deepEqual(parseFirstValue('{"a" 1}'), { error: "invalid character '1' after object key" });
    assert.deepEqual(parseFirstValue('{"a":1 "b":2}'), { error: "invalid character '\"' after object key:value pair" });
    assert.deepEqual(parseFirstValue('[1 2]'), { error: "invalid character '2' after array element" });
    assert.deepEqual(parseFirstValue('{"a":tru}'), { error: "invalid character '}' in literal true (expecting 'e')" });
    assert.equal(scanFirstValue('  {"a":"}"} {').kind, 'value');
  });

  it('keeps integers above 2^53 exact (lease and member IDs sent as bare JSON numbers)', () => {
    assert.equal(quoteLongNumbers('{"ID":2324035631685989908,"TTL":30}'), '{"ID":"2324035631685989908","TTL":30}');
    assert.equal(quoteLongNumbers('{"a":"x 12345678901234567890 y","b":[-9223372036854775808, 1.5e300]}'),
      '{"a":"x 12345678901234567890 y","b":["-9223372036854775808", 1.5e300]}');
    assert.equal(quoteLongNumbers('{"a":"\\"}'), '{"a":"\\"}');
    const v = parseFirstValue('{"revision":9007199254740993}') as { value: unknown };
    const r = etcdserverpb.RangeRequest.decode(msg('etcdserverpb.RangeRequest').encodeJson(v.value));
    assert.equal(r.revision.toString(), '9007199254740993');
  });

  it('splits a streamed body into values across chunk boundaries', () => {
    const s = new JsonValueSplitter(1024);
    assert.deepEqual(s.push('{"a":1} {"b"', false), { values: [{ a: 1 }] });
    assert.deepEqual(s.push(':"x}"}\n{"c":[', false), { values: [{ b: 'x}' }] });
    assert.deepEqual(s.push('1]}', true), { values: [{ c: [1] }] });
    const bad = new JsonValueSplitter(1024);
    assert.deepEqual(bad.push('{"a":1} x', true), { values: [{ a: 1 }], error: "invalid character 'x' looking for beginning of value" });
    const small = new JsonValueSplitter(8);
    assert.equal(small.push('{"a":"0123456789', false).error, 'request body too large');
  });
});

describe('gateway routes and errors', () => {
  it('maps every route under /v3/ and /v3beta/ and has etcd\'s status mapping', () => {
    const m = routeMap();
    for (const r of ROUTES) {
      assert.equal(m.get(r.path), r);
      assert.equal(m.get(r.path.replace('/v3/', '/v3beta/')), r);
    }
    assert.equal(m.get('/v3/kv/put')!.method, '/etcdserverpb.KV/Put');
    assert.equal(m.get('/v3/lock/lock')!.requestType, 'v3lockpb.LockRequest');
    assert.deepEqual([3, 5, 7, 8, 9, 11, 12, 14, 16].map(httpStatusFromCode), [400, 404, 403, 429, 412, 400, 501, 503, 401]);
    assert.equal(errorBody(3, 'etcdserver: key is not provided'),
      '{"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":3}');
    assert.equal(streamErrorLine(14, 'x'), '{"error":{"grpc_code":14,"http_code":503,"message":"x","http_status":"Service Unavailable"}}\n');
  });
});

describe('metrics registry (Prometheus text format 0.0.4)', () => {
  it('renders counters, gauges and cumulative histograms sorted by name', () => {
    const r = new Registry();
    const h = r.histogram('b_seconds', 'A histogram.', exponentialBuckets(0.001, 2, 3));
    r.counter('a_total', 'A counter.').inc(3);
    r.gauge('c', 'A gauge.', () => 1.5);
    h.observe(0.0005);
    h.observe(0.003);
    h.observe(10);
    assert.equal(r.render(), [
      '# HELP a_total A counter.', '# TYPE a_total counter', 'a_total 3',
      '# HELP b_seconds A histogram.', '# TYPE b_seconds histogram',
      'b_seconds_bucket{le="0.001"} 1', 'b_seconds_bucket{le="0.002"} 1', 'b_seconds_bucket{le="0.004"} 2',
      'b_seconds_bucket{le="+Inf"} 3', 'b_seconds_sum 10.0035', 'b_seconds_count 3',
      '# HELP c A gauge.', '# TYPE c gauge', 'c 1.5', '',
    ].join('\n'));
    assert.throws(() => r.counter('a_total', 'again'), /registered twice/);
    const sab = SharedHistogram.create(2);
    const writer = new SharedHistogram(sab, [0.1, 1]);
    writer.observe(0.05);
    writer.observe(5);
    const r2 = new Registry();
    r2.register(new SharedHistogramMetric('w_seconds', 'From another thread.', new SharedHistogram(sab, [0.1, 1])));
    assert.equal(r2.render(), '# HELP w_seconds From another thread.\n# TYPE w_seconds histogram\n' +
      'w_seconds_bucket{le="0.1"} 1\nw_seconds_bucket{le="1"} 1\nw_seconds_bucket{le="+Inf"} 2\nw_seconds_sum 5.05\nw_seconds_count 2\n');
  });
});
