// A unary gRPC client written directly as HTTP/2 frames on a TCP socket (no node:http2), for load
// generation where node:http2's per-stream cost (a stream object, header objects, events, an
// async-hooks resource per call) would make the generator the bottleneck. It reuses etcd-ts's own
// frame reader and HPACK decoder (src/main/net/h2/) and does only what a unary client needs:
//  - requests: one pre-encoded HPACK block per method path (static-table indices and literals without
//    indexing, so our encoder keeps no state), written with the framed request as HEADERS + DATA
//    (END_STREAM); all writes of one tick are corked into one socket write;
//  - responses: every header block is HPACK-decoded (the peer's dynamic table must stay in step) and
//    the call's outcome is the grpc-status of its trailers (or of a trailers-only response); DATA is
//    counted for flow control and discarded;
//  - flow control: the connection send window and the peer's initial stream window are respected
//    (calls wait in a queue when the window is short), DATA is split at the peer's max frame size,
//    and receive credit is returned with WINDOW_UPDATE; SETTINGS and PING are acknowledged; the
//    peer's MAX_CONCURRENT_STREAMS is respected; RST_STREAM fails its call, GOAWAY fails the calls
//    above its last stream id and every later call.
import * as net from 'node:net';
import { encodeFrame, FrameReader, writeFrameHeader } from '../../src/main/net/h2/frame';
import { encodeHeaderBlock, HpackDecoder } from '../../src/main/net/h2/hpack';
import {
  DEFAULT_FRAME_BYTES, DEFAULT_HEADER_TABLE_BYTES, DEFAULT_WINDOW_BYTES, FRAME_HEADER_BYTES, Flag, FrameType, PREFACE, SettingId,
} from '../../src/main/net/h2/constants';
import { percentDecode, statusNone } from './h2_client';
import { hostPort } from './lane_conns';

export type RawDone = (status: number, message: string | null) => void;

const ourStreamWindowBytes = 4 * 1024 * 1024;   // SETTINGS_INITIAL_WINDOW_SIZE we announce
const ourConnWindowBytes = 16 * 1024 * 1024;    // connection receive window we open at start
const creditFlushBytes = 1024 * 1024;           // return receive credit in chunks of at least this
const headerListBytesMax = 64 * 1024;

interface Pending { path: string; framed: Buffer; done: RawDone }

/** The state of one call between HEADERS and its trailers. */
class Call {
  status: number;
  message: string | null;
  readonly done: RawDone;
  constructor(done: RawDone) {
    this.status = statusNone;
    this.message = null;
    this.done = done;
  }
}

export class RawH2Connection {
  readonly #socket: net.Socket;
  readonly #reader: FrameReader;
  readonly #hpack: HpackDecoder;
  readonly #blocks: Map<string, Buffer>; // path -> HPACK header block
  readonly #calls: Map<number, Call>;
  readonly #queue: Pending[];            // calls waiting for send window or a concurrency slot
  #queueHead: number;
  #nextId: number;
  #connSendWindow: number;
  #peerStreamWindow: number;
  #peerMaxFrame: number;
  #peerMaxStreams: number;
  #recvCredit: number;
  #corked: boolean;
  #error: string | null;
  #headerStream: number;                  // stream whose header block is being assembled (CONTINUATION)
  #headerFlags: number;
  #headerParts: Buffer[];
  readonly #ready: Promise<void>;

  constructor(endpoint: string) {
    const { host, port } = hostPort(endpoint);
    this.#hpack = new HpackDecoder(DEFAULT_HEADER_TABLE_BYTES);
    this.#blocks = new Map();
    this.#calls = new Map();
    this.#queue = [];
    this.#queueHead = 0;
    this.#nextId = 1;
    this.#connSendWindow = DEFAULT_WINDOW_BYTES;
    this.#peerStreamWindow = DEFAULT_WINDOW_BYTES;
    this.#peerMaxFrame = DEFAULT_FRAME_BYTES;
    this.#peerMaxStreams = Infinity;
    this.#recvCredit = 0;
    this.#corked = false;
    this.#error = null;
    this.#headerStream = 0;
    this.#headerFlags = 0;
    this.#headerParts = [];
    this.#reader = new FrameReader({
      onFrame: (type, flags, sid, buf, start, end) => this.#onFrame(type, flags, sid, buf, start, end),
      onFrameTooLarge: (type, len) => this.#fail(`frame of type ${type} too large: ${len} bytes`),
    }, 1 << 24);
    this.#socket = net.connect(port, host);
    this.#socket.setNoDelay(true);
    this.#ready = new Promise((resolve, reject) => {
      this.#socket.once('connect', () => resolve());
      this.#socket.once('error', reject);
    });
    this.#socket.on('error', (e) => this.#fail(e.message));
    this.#socket.on('close', () => this.#fail('connection closed'));
    this.#socket.on('data', (chunk: Buffer) => this.#reader.push(chunk));
    const settings = Buffer.alloc(12);
    settings.writeUInt16BE(SettingId.ENABLE_PUSH, 0); settings.writeUInt32BE(0, 2);                   // ENABLE_PUSH 0
    settings.writeUInt16BE(SettingId.INITIAL_WINDOW_SIZE, 6); settings.writeUInt32BE(ourStreamWindowBytes, 8); // INITIAL_WINDOW_SIZE
    const inc = Buffer.alloc(4);
    inc.writeUInt32BE(ourConnWindowBytes - DEFAULT_WINDOW_BYTES);
    this.#socket.write(Buffer.concat([PREFACE, encodeFrame(FrameType.SETTINGS, 0, 0, settings), encodeFrame(FrameType.WINDOW_UPDATE, 0, 0, inc)]));
  }

  waitForReady(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((_, reject) => { timer = setTimeout(() => reject(new Error(`connect timeout after ${timeoutMs} ms`)), timeoutMs); });
    return Promise.race([this.#ready, timeout]).finally(() => clearTimeout(timer));
  }

  get error(): string | null {
    return this.#error;
  }

  /** Starts a unary call of `path` with a gRPC-framed request; `done` gets its grpc-status. */
  call(path: string, framed: Buffer, done: RawDone): void {
    if (this.#error !== null) {
      const m = this.#error;
      setImmediate(() => done(statusNone, m));
      return;
    }
    if (framed.length > this.#peerStreamWindow) {
      setImmediate(() => done(statusNone, `request of ${framed.length} bytes exceeds the peer's stream window ${this.#peerStreamWindow}`));
      return;
    }
    if (this.#queueHead < this.#queue.length || !this.#canSend(framed.length)) {
      this.#queue.push({ path, framed, done });
      return;
    }
    this.#send(path, framed, done);
  }

  #canSend(bytes: number): boolean {
    return bytes <= this.#connSendWindow && this.#calls.size < this.#peerMaxStreams;
  }

  #block(path: string): Buffer {
    let b = this.#blocks.get(path);
    if (b === undefined) {
      b = encodeHeaderBlock([[':method', 'POST'], [':scheme', 'http'], [':path', path], [':authority', 'bench'],
        ['content-type', 'application/grpc'], ['te', 'trailers']]);
      this.#blocks.set(path, b);
    }
    return b;
  }

  #send(path: string, framed: Buffer, done: RawDone): void {
    const id = this.#nextId;
    this.#nextId += 2;
    const block = this.#block(path);
    const dataFrames = Math.max(1, Math.ceil(framed.length / this.#peerMaxFrame));
    const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + block.length + dataFrames * FRAME_HEADER_BYTES + framed.length);
    writeFrameHeader(out, 0, block.length, FrameType.HEADERS, Flag.END_HEADERS, id);
    block.copy(out, FRAME_HEADER_BYTES);
    let at = FRAME_HEADER_BYTES + block.length;
    for (let off = 0, i = 0; i < dataFrames; i++) {
      const n = Math.min(this.#peerMaxFrame, framed.length - off);
      writeFrameHeader(out, at, n, FrameType.DATA, i === dataFrames - 1 ? Flag.END_STREAM : 0, id);
      framed.copy(out, at + FRAME_HEADER_BYTES, off, off + n);
      at += FRAME_HEADER_BYTES + n;
      off += n;
    }
    this.#connSendWindow -= framed.length;
    this.#calls.set(id, new Call(done));
    this.#write(out);
  }

  #write(b: Buffer): void {
    if (!this.#corked) {
      this.#corked = true;
      this.#socket.cork();
      process.nextTick(() => { this.#corked = false; this.#socket.uncork(); });
    }
    this.#socket.write(b);
  }

  #drainQueue(): void {
    while (this.#queueHead < this.#queue.length && this.#error === null) {
      const p = this.#queue[this.#queueHead];
      if (!this.#canSend(p.framed.length)) break;
      this.#queueHead++;
      this.#send(p.path, p.framed, p.done);
    }
    if (this.#queueHead === this.#queue.length) { this.#queue.length = 0; this.#queueHead = 0; }
  }

  #onFrame(type: number, flags: number, sid: number, buf: Buffer, start: number, end: number): void {
    switch (type) {
      case FrameType.DATA: this.#onData(end - start); break;
      case FrameType.HEADERS: this.#onHeaders(flags, sid, buf, start, end); break;
      case FrameType.CONTINUATION: this.#onContinuation(flags, sid, buf, start, end); break;
      case FrameType.RST_STREAM: this.#finish(sid, statusNone, `RST_STREAM ${buf.readUInt32BE(start)}`); break;
      case FrameType.SETTINGS: if ((flags & Flag.ACK) === 0) this.#onSettings(buf, start, end); break;
      case FrameType.PING: if ((flags & Flag.ACK) === 0) this.#write(encodeFrame(FrameType.PING, Flag.ACK, 0, buf.subarray(start, end))); break;
      case FrameType.GOAWAY: this.#onGoaway(buf, start, end); break;
      case FrameType.WINDOW_UPDATE:
        if (sid === 0) { this.#connSendWindow += buf.readUInt32BE(start) & 0x7fffffff; this.#drainQueue(); }
        break;
      default: break; // PRIORITY, unknown types: ignored (RFC 9113 5.5)
    }
  }

  /** DATA is discarded; its bytes (padding included) are returned as connection credit in chunks. */
  #onData(bytes: number): void {
    this.#recvCredit += bytes;
    if (this.#recvCredit >= creditFlushBytes) {
      const inc = Buffer.allocUnsafe(4);
      inc.writeUInt32BE(this.#recvCredit);
      this.#recvCredit = 0;
      this.#write(encodeFrame(FrameType.WINDOW_UPDATE, 0, 0, inc));
    }
  }

  #onHeaders(flags: number, sid: number, buf: Buffer, start: number, end: number): void {
    let s = start;
    let e = end;
    if (flags & Flag.PADDED) { e -= buf[s]; s += 1; }
    if (flags & Flag.PRIORITY) s += 5;
    if (flags & Flag.END_HEADERS) { this.#headerBlock(flags, sid, buf, s, e); return; }
    this.#headerStream = sid;
    this.#headerFlags = flags;
    this.#headerParts = [Buffer.from(buf.subarray(s, e))];
  }

  #onContinuation(flags: number, sid: number, buf: Buffer, start: number, end: number): void {
    if (sid !== this.#headerStream) { this.#fail('CONTINUATION on an unexpected stream'); return; }
    this.#headerParts.push(Buffer.from(buf.subarray(start, end)));
    if (flags & Flag.END_HEADERS) {
      const all = Buffer.concat(this.#headerParts);
      this.#headerParts = [];
      this.#headerStream = 0;
      this.#headerBlock(this.#headerFlags, sid, all, 0, all.length);
    }
  }

  /** Decodes a complete header block (always: the HPACK table must stay in step) and ends the call on END_STREAM. */
  #headerBlock(flags: number, sid: number, buf: Buffer, start: number, end: number): void {
    const call = this.#calls.get(sid);
    try {
      this.#hpack.decode(buf, start, end, {
        onHeader: (name, value) => {
          if (call === undefined) return;
          if (name === 'grpc-status') call.status = Number(value);
          else if (name === 'grpc-message') call.message = percentDecode(value);
          else if (name === ':status' && value !== '200') call.message ??= `HTTP ${value}`;
        },
      }, headerListBytesMax);
    } catch (e) {
      this.#fail(`HPACK: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    if ((flags & Flag.END_STREAM) && call !== undefined) this.#finish(sid, call.status, call.status === 0 ? null : call.message ?? 'no grpc-status');
  }

  #onSettings(buf: Buffer, start: number, end: number): void {
    for (let at = start; at + 6 <= end; at += 6) {
      const id = buf.readUInt16BE(at);
      const v = buf.readUInt32BE(at + 2);
      if (id === SettingId.MAX_CONCURRENT_STREAMS) this.#peerMaxStreams = v;
      else if (id === SettingId.INITIAL_WINDOW_SIZE) this.#peerStreamWindow = v;
      else if (id === SettingId.MAX_FRAME_SIZE) this.#peerMaxFrame = v;
    }
    this.#write(encodeFrame(FrameType.SETTINGS, Flag.ACK, 0));
    this.#drainQueue();
  }

  #onGoaway(buf: Buffer, start: number, end: number): void {
    const last = buf.readUInt32BE(start) & 0x7fffffff;
    const code = buf.readUInt32BE(start + 4);
    const why = `GOAWAY ${code}${end > start + 8 ? ` ${buf.toString('latin1', start + 8, end)}` : ''}`;
    for (const id of [...this.#calls.keys()]) if (id > last) this.#finish(id, statusNone, why);
    this.#error ??= why;
  }

  #finish(sid: number, status: number, message: string | null): void {
    const call = this.#calls.get(sid);
    if (call === undefined) return;
    this.#calls.delete(sid);
    call.done(status, message);
    this.#drainQueue();
  }

  /** Fails every call in flight or queued; later calls fail at once. */
  #fail(why: string): void {
    this.#error ??= why;
    this.#reader.stop();
    const calls = [...this.#calls.values()];
    this.#calls.clear();
    const queued = this.#queue.slice(this.#queueHead);
    this.#queue.length = 0;
    this.#queueHead = 0;
    for (const c of calls) c.done(statusNone, this.#error);
    for (const p of queued) p.done(statusNone, this.#error);
    this.#socket.destroy();
  }

  close(): void {
    if (this.#error === null) this.#error = 'closed';
    this.#socket.end();
  }
}
