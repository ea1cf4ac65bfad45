// The peer codec and framing (src/main/peer/codec.ts, frame.ts): random raft message batches (fast-check:
// every field, uint64 IDs up to 2^64-1, terms/indexes up to 2^53-1, empty and large entries, context and
// snapshot metadata) encode and decode back to equal values; every truncation and random byte flips of a
// valid encoding, and random garbage, either decode or throw PeerProtocolError (never anything else);
// frames split at every byte boundary reassemble; a corrupted frame fails its CRC.
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { Entry, EntryType, Message, MessageType } from '../../src/main/raft/types';
import { PeerProtocolError, batchEncodedBytes, decodeMessages, encodeMessages } from '../../src/main/peer/codec';
import { FrameReader, FrameType, decodeHello, encodeFrame, encodeHello, Purpose, PEER_PROTOCOL_VERSION } from '../../src/main/peer/frame';

const idArb = fc.oneof(fc.constant(0n), fc.constant((1n << 64n) - 1n), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }));
const numArb = fc.oneof(fc.constant(0), fc.constant(Number.MAX_SAFE_INTEGER), fc.integer({ min: 0, max: 2 ** 32 + 5 }), fc.maxSafeNat());
const bytesArb = fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ maxLength: 64 }));

const entryArb: fc.Arbitrary<Entry> = fc.record({
  term: numArb, index: numArb, type: fc.constantFrom(EntryType.Normal, EntryType.ConfChange), data: bytesArb,
}).map((e) => ({ ...e }));

const messageArb: fc.Arbitrary<Message> = fc.record({
  type: fc.integer({ min: 0, max: MessageType.PreVoteResp }) as fc.Arbitrary<MessageType>,
  from: idArb, to: idArb, term: numArb, logTerm: numArb, index: numArb,
  entries: fc.array(entryArb, { maxLength: 5 }),
  commit: numArb, reject: fc.boolean(), rejectHint: numArb,
  context: fc.option(bytesArb, { nil: null }),
  snapshot: fc.option(fc.record({
    metadata: fc.record({ index: numArb, term: numArb, voters: fc.array(idArb, { maxLength: 5 }), learners: fc.array(idArb, { maxLength: 3 }) }).map((md) => ({ ...md })),
    data: fc.constant(new Uint8Array(0)),
  }).map((sn) => ({ ...sn })), { nil: null }),
}).map((m) => ({ ...m }));

function msg(over: Partial<Message> = {}): Message {
  return {
    type: MessageType.App, from: 1n, to: 2n, term: 3, logTerm: 2, index: 10, entries: [], commit: 9,
    reject: false, rejectHint: 0, context: null, snapshot: null, ...over,
  };
}

/** Decoding must either succeed or throw PeerProtocolError. */
function decodeOrProtocolError(buf: Uint8Array): void {
  try {
    decodeMessages(buf);
  } catch (e) {
    if (!(e instanceof PeerProtocolError)) throw e;
  }
}

describe('peer codec', () => {
  it('round-trips random message batches exactly', () => {
    fc.assert(fc.property(fc.array(messageArb, { maxLength: 8 }), (msgs) => {
      const buf = encodeMessages(msgs);
      assert.equal(buf.length, batchEncodedBytes(msgs));
      assert.deepEqual(decodeMessages(buf), msgs);
    }), { numRuns: 1000 });
  });

  it('carries large entries and many entries', () => {
    const big = new Uint8Array(3 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    const entries: Entry[] = [{ term: 5, index: 100, type: EntryType.Normal, data: big }];
    for (let i = 0; i < 10_000; i++) entries.push({ term: 5, index: 101 + i, type: EntryType.Normal, data: new Uint8Array(i % 3) });
    const m = msg({ entries, context: new Uint8Array([1, 2, 3]) });
    const [back] = decodeMessages(encodeMessages([m]));
    assert.deepEqual(back, m);
  });

  it('sends only snapshot metadata; data decodes empty', () => {
    const m = msg({ type: MessageType.Snap, snapshot: { metadata: { index: 7, term: 2, voters: [1n, 2n], learners: [3n] }, data: new Uint8Array([9, 9]) } });
    const [back] = decodeMessages(encodeMessages([m]));
    assert.deepEqual(back.snapshot, { metadata: { index: 7, term: 2, voters: [1n, 2n], learners: [3n] }, data: new Uint8Array(0) });
  });

  it('refuses integers above 2^53, unknown types and flags, trailing bytes, another version', () => {
    const good = encodeMessages([msg()]);
    const cases: Array<[string, (b: Buffer) => void]> = [
      ['version', (b) => { b[0] = 2; }],
      ['type', (b) => { b[5] = 19; }],
      ['term > 2^53', (b) => { b.writeUInt32LE(1 << 21, 5 + 1 + 16 + 4); }],
      ['flags', (b) => { b[5 + 1 + 16 + 40] = 8; }],
    ];
    for (const [name, mutate] of cases) {
      const b = Buffer.from(good);
      mutate(b);
      assert.throws(() => decodeMessages(b), PeerProtocolError, name);
    }
    assert.throws(() => decodeMessages(Buffer.concat([good, Buffer.from([0])])), PeerProtocolError);
  });

  it('never throws anything but PeerProtocolError on truncations, byte flips and garbage', () => {
    fc.assert(fc.property(fc.array(messageArb, { minLength: 1, maxLength: 3 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), (msgs, flips) => {
      const buf = encodeMessages(msgs);
      for (let cut = 0; cut < buf.length; cut += Math.max(1, buf.length >> 4)) {
        assert.throws(() => decodeMessages(buf.subarray(0, cut)), PeerProtocolError);
      }
      const b = Buffer.from(buf);
      for (const [pos, v] of flips) b[pos % b.length] = v;
      decodeOrProtocolError(b);
    }), { numRuns: 500 });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (g) => {
      decodeOrProtocolError(g);
      // A garbage batch claiming a huge count must not allocate for it.
      decodeOrProtocolError(Buffer.concat([Buffer.from([1, 0xff, 0xff, 0xff, 0xff]), g]));
    }), { numRuns: 2000 });
  });
});

describe('peer frames', () => {
  it('reassemble from any split of the byte stream', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { minLength: 1, maxLength: 6 }), fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1 }), (payloads, cuts) => {
      const stream = Buffer.concat(payloads.map((p) => encodeFrame(FrameType.Messages, p)));
      const r = new FrameReader(1000);
      const got: Uint8Array[] = [];
      let off = 0;
      let k = 0;
      while (off < stream.length) {
        const n = cuts[k++ % cuts.length];
        r.push(stream.subarray(off, off + n));
        off += n;
        for (let f = r.next(); f !== null; f = r.next()) got.push(new Uint8Array(f.payload));
      }
      assert.deepEqual(got, payloads.map((p) => new Uint8Array(p)));
      assert.equal(r.bufferedBytes, 0);
    }), { numRuns: 300 });
  });

  it('fail the CRC when a byte changes, and refuse an oversized length before buffering it', () => {
    const f = encodeFrame(FrameType.Messages, Buffer.from('hello raft'));
    for (let i = 4; i < f.length; i++) {
      const b = Buffer.from(f);
      b[i] ^= 0x40;
      const r = new FrameReader(1000);
      r.push(b);
      assert.throws(() => r.next(), PeerProtocolError, `byte ${i}`);
    }
    const r = new FrameReader(64);
    r.push(Buffer.from('GET /raft/stream HTTP/1.1\r\n'));
    assert.throws(() => r.next(), /exceeds 64/);
  });

  it('round-trip the handshake', () => {
    const h = { version: PEER_PROTOCOL_VERSION, purpose: Purpose.Snapshot, clusterId: (1n << 64n) - 2n, from: 0x8e9e05c52164694dn, to: 1n };
    const r = new FrameReader(64);
    r.push(encodeHello(h));
    assert.deepEqual(decodeHello(r.next()!), h);
  });
});
