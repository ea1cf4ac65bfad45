// The watch -> main record items (src/shared/watch_protocol.ts): FRAMED and TEMPLATE items, built here by
// hand from protobufjs-encoded responses, expand to exactly the gRPC-framed messages a client must receive
// (decoded back and compared), with the sizes expandedBytes announces; watch IDs 0 (field omitted), large,
// and -1 (10-byte varint). (Records cut into PART pieces are covered end to end by
// test/integration/watch_limits.test.ts: the cutting and joining code is private to the worker and the service.)
//
//   npx tsc -p . && npx mocha --no-config dist/test/unit/watch_protocol.test.js
import * as assert from 'node:assert/strict';
import { etcdserverpb, mvccpb } from '../../src/shared/gen/etcd';
import { expandedBytes, expandItems, ITEM_TEMPLATE, readResponseStreamId, RESPONSE_HEADER_BYTES, TEMPLATE_HEADER_BYTES, W_END, W_RESPONSE,
  W_RESPONSE_PART, writeResponseHeader, writeU32LE } from '../../src/shared/watch_protocol';

const header = { clusterId: 1, memberId: 2, revision: 77, raftTerm: 3 };
const events = [
  { kv: { key: Buffer.from('k1'), value: Buffer.from('v1'), modRevision: 77, createRevision: 70, version: 3 } },
  { type: mvccpb.Event.EventType.DELETE, kv: { key: Buffer.from('k2'), modRevision: 77 } },
];

function framed(msg: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + msg.length);
  out.writeUInt32BE(msg.length, 1);
  out.set(msg, 5);
  return out;
}

/** A TEMPLATE item: prefix = header field, suffix = events fields, each watch_id field as protobufjs encodes it. */
function template(ids: number[]): Buffer {
  const prefix = etcdserverpb.WatchResponse.encode({ header }).finish();
  const suffix = etcdserverpb.WatchResponse.encode({ events }).finish();
  const idFields = ids.map((id) => (id === 0 ? Buffer.alloc(0) : Buffer.from(etcdserverpb.WatchResponse.encode({ watchId: id }).finish())));
  const head = Buffer.alloc(TEMPLATE_HEADER_BYTES);
  head[0] = ITEM_TEMPLATE;
  writeU32LE(head, 1, prefix.length);
  writeU32LE(head, 5, suffix.length);
  writeU32LE(head, 9, ids.length);
  return Buffer.concat([head, prefix, suffix, ...idFields.flatMap((f) => [Buffer.from([f.length]), f])]);
}

function decodeAll(out: Buffer): etcdserverpb.WatchResponse[] {
  const rs: etcdserverpb.WatchResponse[] = [];
  for (let at = 0; at < out.length;) {
    assert.equal(out[at], 0);
    const len = out.readUInt32BE(at + 1);
    rs.push(etcdserverpb.WatchResponse.decode(out.subarray(at + 5, at + 5 + len)));
    at += 5 + len;
  }
  return rs;
}

describe('watch protocol: response record items', () => {
  it('FRAMED and TEMPLATE items expand to the same responses protobufjs decodes, in order', () => {
    const created = etcdserverpb.WatchResponse.encode({ header, watchId: 5, created: true }).finish();
    const progress = etcdserverpb.WatchResponse.encode({ header, watchId: -1 }).finish();
    const ids = [0, 1, 127, 128, 2 ** 40, -1];
    const items = Buffer.concat([framed(created), template(ids), framed(progress), template([9])]);
    const n = expandedBytes(items);
    const out = Buffer.alloc(n);
    const messages = expandItems(items, out);
    const rs = decodeAll(out);
    assert.equal(rs.length, 1 + ids.length + 1 + 1);
    assert.equal(messages, rs.length);
    assert.equal(Number(rs[0].watchId), 5);
    assert.equal(rs[0].created, true);
    const withEvents = [...rs.slice(1, 1 + ids.length), rs[rs.length - 1]];
    assert.deepEqual(withEvents.map((r) => Number(r.watchId)), [...ids, 9]);
    for (const r of withEvents) {
      assert.equal(Number(r.header!.revision), 77);
      assert.deepEqual(r.events.map((e) => [e.type, Buffer.from(e.kv!.key!).toString(), Number(e.kv!.modRevision)]), [[0, 'k1', 77], [1, 'k2', 77]]);
      assert.equal(r.created, false);
    }
    assert.equal(Number(rs[1 + ids.length].watchId), -1);
  });

  it('record headers carry the type, the stream ID (all 32 bits) and an END status code', () => {
    for (const [type, id, code] of [[W_RESPONSE, 1, 0], [W_RESPONSE_PART, 0xfffffffe, 0], [W_END, 123456, 8]]) {
      const rec = Buffer.alloc(RESPONSE_HEADER_BYTES + 5);
      writeResponseHeader(rec, id, type, code);
      assert.deepEqual([rec[0], readResponseStreamId(rec), rec[1]], [type, id, code]);
    }
  });
});
