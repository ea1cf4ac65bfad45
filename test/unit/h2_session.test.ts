// The HTTP/2 session (src/main/net/h2/session.ts) under GrpcH2Transport, driven frame by frame by a
// raw client over a real TCP socket, so every byte on the wire is ours to choose: the handshake,
// PING, unary calls with CONTINUATION, padding, priority and Huffman/dynamic-table request headers,
// flow control in both directions with tiny windows, REFUSED_STREAM past max concurrent streams,
// client cancel, graceful GOAWAY, and bad frames, each of which must cost only its own connection
// (GOAWAY with the RFC 9113 error code, or RST_STREAM for stream errors) while the server keeps serving.
import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import { GrpcH2Transport } from '../../src/main/net/grpc_h2';
import { encodeFrame, FrameReader } from '../../src/main/net/h2/frame';
import { encodeHeaderBlock, HpackDecoder } from '../../src/main/net/h2/hpack';
import { huffmanEncode, huffmanEncodedLength } from '../../src/main/net/h2/huffman';
import { PREFACE } from '../../src/main/net/h2/constants';
import type { ServerStream } from '../../src/main/net/rpc';

const T = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST: 3, SETTINGS: 4, PUSH: 5, PING: 6, GOAWAY: 7, WU: 8, CONT: 9 };
const F = { END_STREAM: 1, ACK: 1, END_HEADERS: 4, PADDED: 8, PRIORITY: 0x20 };
const E = { NO_ERROR: 0, PROTOCOL: 1, FLOW: 3, STREAM_CLOSED: 5, FRAME_SIZE: 6, REFUSED: 7, COMPRESSION: 9 };

interface Frame { type: number; flags: number; sid: number; payload: Buffer }

class RawClient {
  readonly frames: Frame[] = [];
  readonly decoder = new HpackDecoder(4096);
  ended = false;
  #wake: (() => void) | null = null;
  constructor(readonly socket: net.Socket) {
    const reader = new FrameReader({
      onFrame: (type, flags, sid, buf, s, e) => { this.frames.push({ type, flags, sid, payload: Buffer.from(buf.subarray(s, e)) }); this.#wake?.(); },
      onFrameTooLarge: () => assert.fail('server sent an oversized frame'),
    }, 1 << 24);
    socket.on('data', (c: Buffer) => reader.push(c));
    socket.on('close', () => { this.ended = true; this.#wake?.(); });
    socket.on('error', () => { /* reset by the server after GOAWAY */ });
  }

  static async connect(port: number, settings: Array<[number, number]> = [], preface = true): Promise<RawClient> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    const c = new RawClient(socket);
    if (preface) {
      socket.write(PREFACE);
      c.settings(settings);
    }
    return c;
  }

  send(type: number, flags: number, sid: number, payload: Buffer = Buffer.alloc(0)): void {
    this.socket.write(encodeFrame(type, flags, sid, payload));
  }

  settings(s: Array<[number, number]>): void {
    const p = Buffer.alloc(6 * s.length);
    s.forEach(([id, v], i) => { p.writeUInt16BE(id, 6 * i); p.writeUInt32BE(v, 6 * i + 2); });
    this.send(T.SETTINGS, 0, 0, p);
  }

  windowUpdate(sid: number, inc: number): void {
    const p = Buffer.alloc(4);
    p.writeUInt32BE(inc);
    this.send(T.WU, 0, sid, p);
  }

  /** Waits for (and removes) the first frame matching pred. */
  async next(pred: (f: Frame) => boolean, timeoutMs = 3000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.frames.findIndex(pred);
      if (i >= 0) return this.frames.splice(i, 1)[0];
      if (this.ended) throw new Error('connection closed while waiting');
      if (Date.now() > deadline) throw new Error('timeout waiting for a frame');
      await new Promise<void>((r) => { this.#wake = r; setTimeout(r, 50); });
    }
  }

  async goaway(): Promise<number> {
    const f = await this.next((x) => x.type === T.GOAWAY);
    return f.payload.readUInt32BE(4);
  }

  headers(f: Frame): Record<string, string> {
    const out: Record<string, string> = {};
    this.decoder.decode(f.payload, 0, f.payload.length, { onHeader: (n, v) => { out[n] = v; } }, 1 << 20);
    return out;
  }

  /** Reads a whole gRPC response on sid: status, and the concatenated DATA bytes. */
  async response(sid: number): Promise<{ status: string; data: Buffer }> {
    const chunks: Buffer[] = [];
    let status = '';
    for (;;) {
      const f = await this.next((x) => x.sid === sid && (x.type === T.DATA || x.type === T.HEADERS || x.type === T.RST));
      if (f.type === T.RST) throw new Error(`RST_STREAM ${f.payload.readUInt32BE(0)}`);
      if (f.type === T.DATA) chunks.push(f.payload);
      else status = this.headers(f)['grpc-status'] ?? status;
      if (f.flags & F.END_STREAM) return { status, data: Buffer.concat(chunks) };
    }
  }

  close(): void { this.socket.destroy(); }
}

const reqBlock = (path: string): Buffer => encodeHeaderBlock([[':method', 'POST'], [':scheme', 'http'], [':path', path],
  [':authority', 'x'], ['content-type', 'application/grpc'], ['te', 'trailers']]);
const grpcMsg = (body: Buffer): Buffer => {
  const h = Buffer.alloc(5);
  h.writeUInt32BE(body.length, 1);
  return Buffer.concat([h, body]);
};
const sizeReq = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return grpcMsg(b); };

describe('h2 session: frames on the wire', function () {
  this.timeout(20_000);
  let server: net.Server;
  let port = 0;
  let transport: GrpcH2Transport;
  const cancelled: number[] = [];
  const floodSent: number[] = [];
  const clients: RawClient[] = [];
  const connect = async (settings: Array<[number, number]> = [], preface = true): Promise<RawClient> => {
    const c = await RawClient.connect(port, settings, preface);
    clients.push(c);
    return c;
  };

  before(async () => {
    transport = new GrpcH2Transport({ recvMessageBytesMax: 1 << 20, streamsPerConnMax: 4 });
    transport.addUnary('/t.S/Echo', (b) => b);
    transport.addUnary('/t.S/Sized', (b) => Buffer.alloc(Buffer.from(b).readUInt32BE(0), 0x61));
    transport.addUnary('/t.S/Never', () => new Promise<Uint8Array>(() => { /* never answers */ }));
    let n = 0;
    transport.addStream('/t.S/Bidi', (ss: ServerStream) => {
      const id = ++n;
      ss.onCancel(() => cancelled.push(id));
      return { onMessage: (m) => ss.send(m), onEnd: () => ss.end(0) };
    });
    // Sends 64 KiB messages until send() reports backpressure, then records how much it queued.
    transport.addStream('/t.S/Flood', (ss: ServerStream) => {
      const chunk = Buffer.alloc(64 * 1024, 0x66);
      return {
        onMessage: () => {
          let sent = 0;
          while (ss.send(chunk)) {
            sent += chunk.length;
            if (sent > 512 * 1024 * 1024) break; // never stopped: the test fails below
          }
          floodSent.push(sent);
        },
        onEnd: () => ss.end(0),
      };
    });
    server = net.createServer((s) => transport.server.emit('connection', s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as net.AddressInfo).port;
  });
  afterEach(() => { while (clients.length) clients.pop()?.close(); });
  after(() => server.close());

  it('handshake: SETTINGS + connection WINDOW_UPDATE, SETTINGS ACK, PING ACK', async () => {
    const c = await connect();
    const s = await c.next((f) => f.type === T.SETTINGS && !(f.flags & F.ACK));
    const got = new Map<number, number>();
    for (let i = 0; i < s.payload.length; i += 6) got.set(s.payload.readUInt16BE(i), s.payload.readUInt32BE(i + 2));
    assert.equal(got.get(3), 4, 'MAX_CONCURRENT_STREAMS');
    assert.ok((await c.next((f) => f.type === T.WU && f.sid === 0)).payload.readUInt32BE(0) > 0);
    await c.next((f) => f.type === T.SETTINGS && (f.flags & F.ACK) !== 0);
    c.send(T.PING, 0, 0, Buffer.from('01234567'));
    const ack = await c.next((f) => f.type === T.PING);
    assert.equal(ack.flags & F.ACK, F.ACK);
    assert.equal(ack.payload.toString(), '01234567');
  });

  it('unary echo over raw frames; response headers, message, trailers', async () => {
    const c = await connect();
    c.send(T.HEADERS, F.END_HEADERS, 1, reqBlock('/t.S/Echo'));
    c.send(T.DATA, F.END_STREAM, 1, grpcMsg(Buffer.from('hi')));
    const h = await c.next((f) => f.sid === 1 && f.type === T.HEADERS);
    assert.deepEqual(c.headers(h), { ':status': '200', 'content-type': 'application/grpc' });
    const r = await c.response(1);
    assert.equal(r.status, '0');
    assert.equal(r.data.subarray(5).toString(), 'hi');
  });

  it('CONTINUATION, PADDED and PRIORITY flags, a PRIORITY frame, Huffman and indexed request fields', async () => {
    const c = await connect();
    const block = reqBlock('/t.S/Echo');
    c.send(T.PRIORITY, 0, 1, Buffer.from([0, 0, 0, 0, 16]));
    const padded = Buffer.concat([Buffer.from([3, 0, 0, 0, 0, 16]), block.subarray(0, 5), Buffer.alloc(3)]);
    c.send(T.HEADERS, F.PADDED | F.PRIORITY, 1, padded);
    c.send(T.CONT, 0, 1, block.subarray(5, 9));
    c.send(T.CONT, F.END_HEADERS, 1, block.subarray(9));
    c.send(T.DATA, F.PADDED | F.END_STREAM, 1, Buffer.concat([Buffer.from([10]), grpcMsg(Buffer.from('pad')), Buffer.alloc(10)]));
    assert.equal((await c.response(1)).data.subarray(5).toString(), 'pad');
    // :path as a Huffman literal with incremental indexing (enters the dynamic table as index 62) ...
    const path = '/t.S/Echo';
    const huff = Buffer.alloc(huffmanEncodedLength(path));
    huffmanEncode(path, huff, 0);
    const head = encodeHeaderBlock([[':method', 'POST'], [':scheme', 'http']]);
    const rest = encodeHeaderBlock([['content-type', 'application/grpc']]);
    c.send(T.HEADERS, F.END_HEADERS, 3, Buffer.concat([head, Buffer.from([0x44, 0x80 | huff.length]), huff, rest]));
    c.send(T.DATA, F.END_STREAM, 3, grpcMsg(Buffer.from('h')));
    assert.equal((await c.response(3)).data.subarray(5).toString(), 'h');
    // ... and then by index (0x80 | 62).
    c.send(T.HEADERS, F.END_HEADERS, 5, Buffer.concat([head, Buffer.from([0x80 | 62]), rest]));
    c.send(T.DATA, F.END_STREAM, 5, grpcMsg(Buffer.from('i')));
    assert.equal((await c.response(5)).data.subarray(5).toString(), 'i');
  });

  it('stream flow control: a 10-byte window gets at most 10 bytes per WINDOW_UPDATE', async () => {
    const c = await connect([[4, 10]]);
    c.send(T.HEADERS, F.END_HEADERS, 1, reqBlock('/t.S/Sized'));
    c.send(T.DATA, F.END_STREAM, 1, sizeReq(300));
    let got = 0;
    let window = 10;
    for (;;) {
      const f = await c.next((x) => x.sid === 1 && (x.type === T.DATA || x.type === T.HEADERS));
      if (f.type === T.HEADERS && f.flags & F.END_STREAM) break;
      if (f.type !== T.DATA) continue;
      assert.ok(f.payload.length <= window, `sent ${f.payload.length} into a window of ${window}`);
      window -= f.payload.length;
      got += f.payload.length;
      if (window === 0) {
        await new Promise((r) => setTimeout(r, 20));
        assert.equal(c.frames.filter((x) => x.type === T.DATA).length, 0, 'no DATA past the window');
        window += 10;
        c.windowUpdate(1, 10);
      }
    }
    assert.equal(got, 305);
  });

  it('connection flow control: stops at 65535 bytes until a connection WINDOW_UPDATE; SETTINGS can raise stream windows', async () => {
    const c = await connect([[4, 1000]]);
    c.send(T.HEADERS, F.END_HEADERS, 1, reqBlock('/t.S/Sized'));
    c.send(T.DATA, F.END_STREAM, 1, sizeReq(100_000));
    const sum = async (): Promise<number> => {
      await new Promise((r) => setTimeout(r, 100));
      return c.frames.filter((x) => x.type === T.DATA).reduce((a, x) => a + x.payload.length, 0);
    };
    assert.equal(await sum(), 1000, 'stream window of 1000');
    c.settings([[4, 1 << 20]]); // raises the stream window by the delta (RFC 9113 6.9.2)
    assert.equal(await sum(), 65535, 'then the connection window');
    c.windowUpdate(0, 1 << 20);
    const r = await c.response(1);
    assert.equal(r.data.length, 100_005);
  });

  it('max concurrent streams: the stream past the limit is refused, others proceed', async () => {
    const c = await connect();
    for (const sid of [1, 3, 5, 7]) c.send(T.HEADERS, F.END_HEADERS, sid, reqBlock('/t.S/Never'));
    for (const sid of [1, 3, 5, 7]) c.send(T.DATA, F.END_STREAM, sid, grpcMsg(Buffer.alloc(0)));
    c.send(T.HEADERS, F.END_HEADERS, 9, reqBlock('/t.S/Echo'));
    const rst = await c.next((f) => f.type === T.RST && f.sid === 9);
    assert.equal(rst.payload.readUInt32BE(0), E.REFUSED);
    c.send(T.RST, 0, 1, Buffer.from([0, 0, 0, 8])); // cancel one: room for a new stream
    c.send(T.HEADERS, F.END_HEADERS, 11, reqBlock('/t.S/Echo'));
    c.send(T.DATA, F.END_STREAM, 11, grpcMsg(Buffer.from('ok')));
    assert.equal((await c.response(11)).status, '0');
  });

  it('bidi: messages both ways, then trailers; client RST_STREAM runs onCancel', async () => {
    const c = await connect();
    c.send(T.HEADERS, F.END_HEADERS, 1, reqBlock('/t.S/Bidi'));
    c.send(T.DATA, 0, 1, grpcMsg(Buffer.from('a')));
    c.send(T.DATA, 0, 1, Buffer.concat([grpcMsg(Buffer.from('b')), grpcMsg(Buffer.from('c')).subarray(0, 3)]));
    c.send(T.DATA, F.END_STREAM, 1, grpcMsg(Buffer.from('c')).subarray(3));
    const r = await c.response(1);
    assert.equal(r.status, '0');
    assert.deepEqual(r.data, Buffer.concat(['a', 'b', 'c'].map((s) => grpcMsg(Buffer.from(s)))));
    const before = cancelled.length;
    c.send(T.HEADERS, F.END_HEADERS, 3, reqBlock('/t.S/Bidi'));
    c.send(T.DATA, 0, 3, grpcMsg(Buffer.from('x')));
    await c.next((f) => f.sid === 3 && f.type === T.DATA);
    c.send(T.RST, 0, 3, Buffer.from([0, 0, 0, 8]));
    for (let i = 0; i < 50 && cancelled.length === before; i++) await new Promise((r2) => setTimeout(r2, 10));
    assert.equal(cancelled.length, before + 1);
  });

  it('graceful close: GOAWAY(NO_ERROR), the call in flight still completes, then the socket ends', async () => {
    const c = await connect();
    c.send(T.HEADERS, F.END_HEADERS, 1, reqBlock('/t.S/Echo'));
    await c.next((f) => f.type === T.SETTINGS && (f.flags & F.ACK) !== 0);
    transport.server.close();
    assert.equal(await c.goaway(), E.NO_ERROR);
    c.send(T.DATA, F.END_STREAM, 1, grpcMsg(Buffer.from('late')));
    assert.equal((await c.response(1)).data.subarray(5).toString(), 'late');
    for (let i = 0; i < 100 && !c.ended; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(c.ended);
  });

  const w32 = (v: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(v >>> 0); return b; };
  const setting = (id: number, v: number): Buffer => { const b = Buffer.alloc(6); b.writeUInt16BE(id); b.writeUInt32BE(v, 2); return b; };
  const connErrors: Array<{ name: string; code: number; send: (c: RawClient) => void; noSettings?: boolean }> = [
    { name: 'frame over MAX_FRAME_SIZE', code: E.FRAME_SIZE, send: (c) => c.send(T.DATA, 0, 1, Buffer.alloc(16385)) },
    { name: 'PING of 7 bytes', code: E.FRAME_SIZE, send: (c) => c.send(T.PING, 0, 0, Buffer.alloc(7)) },
    { name: 'SETTINGS on a stream', code: E.PROTOCOL, send: (c) => c.send(T.SETTINGS, 0, 1) },
    { name: 'SETTINGS of 5 bytes', code: E.FRAME_SIZE, send: (c) => c.send(T.SETTINGS, 0, 0, Buffer.alloc(5)) },
    { name: 'first frame not SETTINGS', code: E.PROTOCOL, noSettings: true, send: (c) => c.send(T.PING, 0, 0, Buffer.alloc(8)) },
    { name: 'bad HPACK (index 0)', code: E.COMPRESSION, send: (c) => c.send(T.HEADERS, F.END_HEADERS, 1, Buffer.from([0x80])) },
    { name: 'CONTINUATION without HEADERS', code: E.PROTOCOL, send: (c) => c.send(T.CONT, F.END_HEADERS, 1, reqBlock('/t.S/Echo')) },
    { name: 'another frame inside a header block', code: E.PROTOCOL, send: (c) => { c.send(T.HEADERS, 0, 1, reqBlock('/t.S/Echo')); c.send(T.PING, 0, 0, Buffer.alloc(8)); } },
    { name: 'connection WINDOW_UPDATE of 0', code: E.PROTOCOL, send: (c) => c.send(T.WU, 0, 0, w32(0)) },
    { name: 'connection window over 2^31-1', code: E.FLOW, send: (c) => c.send(T.WU, 0, 0, w32(0x7fffffff)) },
    { name: 'DATA on an idle stream', code: E.PROTOCOL, send: (c) => c.send(T.DATA, 0, 1, Buffer.alloc(1)) },
    { name: 'even stream id', code: E.PROTOCOL, send: (c) => c.send(T.HEADERS, F.END_HEADERS, 2, reqBlock('/t.S/Echo')) },
    { name: 'MAX_FRAME_SIZE below 16384', code: E.PROTOCOL, send: (c) => c.send(T.SETTINGS, 0, 0, setting(5, 100)) },
    { name: 'INITIAL_WINDOW_SIZE over 2^31-1', code: E.FLOW, send: (c) => c.send(T.SETTINGS, 0, 0, setting(4, 0x80000000)) },
    { name: 'PUSH_PROMISE from a client', code: E.PROTOCOL, send: (c) => c.send(T.PUSH, F.END_HEADERS, 1, Buffer.alloc(4)) },
    { name: 'padding longer than the payload', code: E.PROTOCOL, send: (c) => c.send(T.HEADERS, F.END_HEADERS | F.PADDED, 1, Buffer.from([5, 0x82])) },
    { name: 'RST_STREAM on an idle stream', code: E.PROTOCOL, send: (c) => c.send(T.RST, 0, 5, w32(8)) },
  ];
  for (const tc of connErrors) {
    it(`connection error → GOAWAY: ${tc.name}`, async () => {
      const c = tc.noSettings ? await connect([], false) : await connect();
      if (tc.noSettings) c.socket.write(PREFACE);
      tc.send(c);
      assert.equal(await c.goaway(), tc.code);
      const ok = await connect();
      ok.send(T.HEADERS, F.END_HEADERS, 1, reqBlock('/t.S/Echo'));
      ok.send(T.DATA, F.END_STREAM, 1, grpcMsg(Buffer.from('still')));
      assert.equal((await ok.response(1)).status, '0');
    });
  }

  it('a PING flood (or rapid resets) ends with GOAWAY(ENHANCE_YOUR_CALM); other connections keep working', async () => {
    const c = await connect();
    const ping = encodeFrame(T.PING, 0, 0, Buffer.alloc(8));
    c.socket.write(Buffer.concat(Array.from({ length: 12_000 }, () => ping)));
    assert.equal(await c.goaway(), 0xb);
    const ok = await connect();
    ok.send(T.HEADERS, F.END_HEADERS, 1, reqBlock('/t.S/Echo'));
    ok.send(T.DATA, F.END_STREAM, 1, grpcMsg(Buffer.from('calm')));
    assert.equal((await ok.response(1)).status, '0');
  });

  it('a client with huge windows that stops reading: send() reports backpressure, memory stays bounded', async () => {
    const c = await connect([[4, 0x7fffffff]]);
    c.windowUpdate(0, 0x7fffffff - 65535);
    c.socket.pause(); // never reads again
    c.send(T.HEADERS, F.END_HEADERS, 1, reqBlock('/t.S/Flood'));
    c.send(T.DATA, 0, 1, grpcMsg(Buffer.from('go')));
    for (let i = 0; i < 100 && floodSent.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(floodSent.length, 1, 'the flood handler never ran');
    assert.ok(floodSent[0] < 64 * 1024 * 1024, `send() kept accepting: ${floodSent[0]} bytes queued`);
  });

  it('a bad preface ends the connection', async () => {
    const c = await connect([], false);
    c.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    for (let i = 0; i < 100 && !c.ended; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(c.ended);
  });

  const streamErrors: Array<{ name: string; code: number; send: (c: RawClient) => void }> = [
    { name: 'stream WINDOW_UPDATE of 0', code: E.PROTOCOL, send: (c) => c.send(T.WU, 0, 1, w32(0)) },
    { name: 'DATA after END_STREAM', code: E.STREAM_CLOSED, send: (c) => { c.send(T.DATA, F.END_STREAM, 1, grpcMsg(Buffer.alloc(0))); c.send(T.DATA, 0, 1, Buffer.alloc(3)); } },
    { name: 'PRIORITY of 4 bytes', code: E.FRAME_SIZE, send: (c) => c.send(T.PRIORITY, 0, 1, Buffer.alloc(4)) },
  ];
  for (const tc of streamErrors) {
    it(`stream error → RST_STREAM: ${tc.name}`, async () => {
      const c = await connect();
      c.send(T.HEADERS, F.END_HEADERS, 1, reqBlock('/t.S/Never'));
      tc.send(c);
      const rst = await c.next((f) => f.type === T.RST && f.sid === 1);
      assert.equal(rst.payload.readUInt32BE(0), tc.code);
      c.send(T.HEADERS, F.END_HEADERS, 3, reqBlock('/t.S/Echo'));
      c.send(T.DATA, F.END_STREAM, 3, grpcMsg(Buffer.from('x')));
      assert.equal((await c.response(3)).status, '0', 'the connection goes on');
    });
  }

  it('malformed requests (upper-case name, missing :path, connection header) are RST_STREAM PROTOCOL_ERROR', async () => {
    const c = await connect();
    const bad = [
      encodeHeaderBlock([[':method', 'POST'], [':scheme', 'http'], [':path', '/t.S/Echo'], ['Content-Type', 'application/grpc']]),
      encodeHeaderBlock([[':method', 'POST'], [':scheme', 'http'], ['content-type', 'application/grpc']]),
      encodeHeaderBlock([[':method', 'POST'], [':scheme', 'http'], [':path', '/t.S/Echo'], ['connection', 'close']]),
      encodeHeaderBlock([['content-type', 'application/grpc'], [':method', 'POST'], [':scheme', 'http'], [':path', '/t.S/Echo']]),
    ];
    let sid = 1;
    for (const b of bad) {
      c.send(T.HEADERS, F.END_HEADERS | F.END_STREAM, sid, b);
      const rst = await c.next((f) => f.type === T.RST && f.sid === sid);
      assert.equal(rst.payload.readUInt32BE(0), E.PROTOCOL);
      sid += 2;
    }
  });

  it('random frames after the preface never crash the process', async () => {
    let seed = 12345;
    const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    for (let conn = 0; conn < 30; conn++) {
      const c = await connect();
      for (let i = 0; i < 20; i++) {
        const payload = Buffer.alloc(rnd(40));
        for (let j = 0; j < payload.length; j++) payload[j] = rnd(256);
        c.send(rnd(11), rnd(256), rnd(8), payload);
      }
      await new Promise((r) => setTimeout(r, 5));
      c.close();
    }
    const ok = await connect();
    ok.send(T.HEADERS, F.END_HEADERS, 1, reqBlock('/t.S/Echo'));
    ok.send(T.DATA, F.END_STREAM, 1, grpcMsg(Buffer.from('alive')));
    assert.equal((await ok.response(1)).data.subarray(5).toString(), 'alive');
  });
});

// etcd's --grpc-keepalive-min-time, -interval and -timeout, as grpc-go's server enforces them (see the
// top of src/main/net/h2/session.ts): pings too close together without data from us in between are
// strikes and the third one ends the connection with GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings"); a
// silent connection is pinged and, if still silent, closed.
describe('h2 session: keepalive (etcd --grpc-keepalive-*)', function () {
  this.timeout(20_000);
  let server: net.Server;
  let port = 0;
  const clients: RawClient[] = [];
  const connect = async (): Promise<RawClient> => {
    const c = await RawClient.connect(port);
    clients.push(c);
    return c;
  };
  before(async () => {
    const transport = new GrpcH2Transport({
      recvMessageBytesMax: 1 << 20, streamsPerConnMax: 4, keepaliveMinTimeMs: 5000, keepaliveIntervalMs: 300, keepaliveTimeoutMs: 300,
    });
    transport.addUnary('/t.S/Echo', (b) => b);
    transport.addStream('/t.S/Bidi', (ss: ServerStream) => ({ onMessage: (m) => ss.send(m), onEnd: () => ss.end(0) }));
    server = net.createServer((s) => transport.server.emit('connection', s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as net.AddressInfo).port;
  });
  afterEach(() => { while (clients.length) clients.pop()?.close(); });
  after(() => server.close());

  const pingAck = async (c: RawClient, data: string): Promise<void> => {
    c.send(T.PING, 0, 0, Buffer.from(data));
    await c.next((f) => f.type === T.PING && (f.flags & F.ACK) !== 0 && f.payload.toString() === data);
  };

  it('pings closer than the minimum time with nothing sent in between: GOAWAY(ENHANCE_YOUR_CALM, too_many_pings) at the third strike', async () => {
    const c = await connect();
    for (let i = 0; i < 3; i++) await pingAck(c, `ping000${i}`); // the first is free, then strikes 1 and 2
    c.send(T.PING, 0, 0, Buffer.from('ping0003'));
    const g = await c.next((f) => f.type === T.GOAWAY);
    assert.equal(g.payload.readUInt32BE(4), 0xb);
    assert.equal(g.payload.subarray(8).toString(), 'too_many_pings');
  });

  it('pings on a stream that gets data between them are no strikes (grpc-go\'s BDP pings)', async () => {
    const c = await connect();
    c.send(T.HEADERS, F.END_HEADERS, 1, reqBlock('/t.S/Bidi'));
    for (let i = 0; i < 6; i++) {
      c.send(T.DATA, 0, 1, grpcMsg(Buffer.from(`m${i}`)));
      await c.next((f) => f.type === T.DATA && f.sid === 1);
      await pingAck(c, `bdp0000${i}`);
    }
    c.send(T.DATA, F.END_STREAM, 1, Buffer.alloc(0));
    assert.equal((await c.response(1)).status, '0');
    assert.ok(!c.frames.some((f) => f.type === T.GOAWAY));
  });

  it('a silent connection gets a PING; answered, it stays; unanswered, it is closed after the timeout', async () => {
    const answering = await connect();
    const silent = await connect();
    let answered = 0;
    answering.socket.on('data', () => {
      for (;;) {
        const i = answering.frames.findIndex((f) => f.type === T.PING && !(f.flags & F.ACK));
        if (i < 0) break;
        const [p] = answering.frames.splice(i, 1);
        answering.send(T.PING, F.ACK, 0, p.payload);
        answered++;
      }
    });
    const p = await silent.next((f) => f.type === T.PING && !(f.flags & F.ACK), 2000);
    assert.equal(p.payload.length, 8);
    const t0 = Date.now();
    while (!silent.ended && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 50));
    assert.ok(silent.ended, 'the silent connection is closed');
    await new Promise((r) => setTimeout(r, 1200));
    assert.ok(answered >= 1, 'the server pinged the answering client');
    answering.send(T.HEADERS, F.END_HEADERS, 1, reqBlock('/t.S/Echo'));
    answering.send(T.DATA, F.END_STREAM, 1, grpcMsg(Buffer.from('alive')));
    assert.equal((await answering.response(1)).status, '0');
  });
});
