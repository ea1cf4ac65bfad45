// Frame codec (src/main/net/h2/frame.ts): a run of frames is fed to FrameReader split at every
// possible byte boundary (and one byte at a time), and must come out as the same frames with the
// same payloads; payloads that straddled chunks must be fresh buffers (the gRPC layer keeps them).
// A declared length over the maximum is reported before its payload arrives.
import { strict as assert } from 'node:assert';
import { encodeFrame, FrameReader, FrameSink, writeFrameHeader } from '../../src/main/net/h2/frame';
import { GrpcMessageReader } from '../../src/main/net/h2/grpc_message';

interface Got { type: number; flags: number; sid: number; payload: string }

function collector(): { sink: FrameSink; got: Got[]; tooLarge: number[] } {
  const got: Got[] = [];
  const tooLarge: number[] = [];
  return {
    got, tooLarge,
    sink: {
      onFrame: (type, flags, sid, buf, start, end) => got.push({ type, flags, sid, payload: buf.toString('hex', start, end) }),
      onFrameTooLarge: (_t, len) => tooLarge.push(len),
    },
  };
}

const frames = [
  encodeFrame(0x4, 0, 0, Buffer.from('000300000064', 'hex')),
  encodeFrame(0x1, 0x5, 1, Buffer.from('828684', 'hex')),
  encodeFrame(0x0, 0x1, 1, Buffer.alloc(300, 0xab)),
  encodeFrame(0x6, 0, 0, Buffer.alloc(8, 1)),
  encodeFrame(0x4, 0x1, 0, Buffer.alloc(0)),
  encodeFrame(0x8, 0, 0x7fffffff, Buffer.from('00001000', 'hex')),
];
const all = Buffer.concat(frames);
const want: Got[] = frames.map((f) => ({ type: f[3], flags: f[4], sid: f.readUInt32BE(5) & 0x7fffffff, payload: f.toString('hex', 9) }));

describe('h2 frame codec', () => {
  it('parses frames from one chunk', () => {
    const c = collector();
    new FrameReader(c.sink, 16384).push(all);
    assert.deepEqual(c.got, want);
  });

  it('parses frames split at every byte boundary', () => {
    for (let cut = 1; cut < all.length; cut++) {
      const c = collector();
      const r = new FrameReader(c.sink, 16384);
      r.push(all.subarray(0, cut));
      r.push(all.subarray(cut));
      assert.deepEqual(c.got, want, `cut at ${cut}`);
    }
  });

  it('parses frames fed one byte at a time', () => {
    const c = collector();
    const r = new FrameReader(c.sink, 16384);
    for (let i = 0; i < all.length; i++) r.push(all.subarray(i, i + 1));
    assert.deepEqual(c.got, want);
  });

  it('a straddling payload is delivered in a fresh buffer, not the caller\'s chunk', () => {
    const bufs: Buffer[] = [];
    const r = new FrameReader({ onFrame: (_t, _f, _s, buf) => bufs.push(buf), onFrameTooLarge: () => assert.fail() }, 16384);
    const f = encodeFrame(0, 0, 1, Buffer.alloc(100, 7));
    const a = Buffer.from(f.subarray(0, 50));
    r.push(a);
    r.push(Buffer.from(f.subarray(50)));
    a.fill(0); // the caller reuses its chunk: the delivered payload must not change
    assert.equal(bufs.length, 1);
    assert.deepEqual(bufs[0], Buffer.alloc(100, 7));
  });

  it('reports a frame over the maximum from its header alone, then stops', () => {
    const c = collector();
    const r = new FrameReader(c.sink, 16384);
    const head = Buffer.alloc(9);
    writeFrameHeader(head, 0, 16385, 0, 0, 1);
    r.push(Buffer.concat([frames[0], head]));
    assert.deepEqual(c.tooLarge, [16385]);
    r.push(frames[1]);
    assert.equal(c.got.length, 1, 'nothing parsed after the error');
  });

  it('writeFrameHeader clears the reserved bit of the stream id', () => {
    const b = Buffer.alloc(9);
    writeFrameHeader(b, 0, 0x123456, 7, 0xff, 0xffffffff);
    assert.equal(b.toString('hex'), '12345607ff7fffffff');
  });
});

describe('h2 GrpcMessageReader', () => {
  it('reassembles a large message split into pieces, exactly sized, and reports a partial one as pending', () => {
    const body = Buffer.alloc(300_000);
    for (let i = 0; i < body.length; i++) body[i] = i * 7;
    const head = Buffer.from([0, 0, 0, 0, 0]);
    head.writeUInt32BE(body.length, 1);
    const wire = Buffer.concat([head, body, Buffer.from([0, 0, 0, 0, 1, 42])]);
    const reader = new GrpcMessageReader(1 << 20);
    const got: Uint8Array[] = [];
    const sink = { onMessage: (m: Uint8Array): void => { got.push(m); } };
    for (let off = 0; off < wire.length - 3; off += 16_384) reader.push(wire, off, Math.min(off + 16_384, wire.length - 3), sink);
    assert.equal(got.length, 1);
    assert.ok(Buffer.from(got[0]).equals(body));
    assert.equal(got[0].length, body.length);
    assert.equal(reader.pending(), true);
    reader.push(wire, wire.length - 3, wire.length, sink);
    assert.equal(reader.pending(), false);
    assert.deepEqual([...got[1]], [42]);
  });
});
