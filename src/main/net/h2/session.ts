// One HTTP/2 connection, server side (RFC 9113), over a raw net.Socket. Reads frames with
// FrameReader, keeps the stream map and both directions of flow control, decodes request headers
// with HPACK, and writes frames back to back into one output buffer that is flushed once per tick
// (process.nextTick), so a batch of responses costs one socket write.
//
// Errors: a connection error (RFC 9113 5.4.1) is thrown as ConnectionError from any frame handler,
// caught once in #onSocketData, answered with GOAWAY(code) and the socket is ended: a bad peer only
// loses its own connection. A stream error (5.4.2) is RST_STREAM(code) and the connection goes on.
//
// Flow control: DATA we receive is handed straight to the stream's listener, so the bytes are
// credited back at once; a WINDOW_UPDATE goes out when half a window has been consumed. DATA we send
// never exceeds min(stream window, connection window, peer MAX_FRAME_SIZE); what does not fit stays
// in the stream's queue and is resumed by the peer's WINDOW_UPDATE or SETTINGS.
//
// Keepalive, as grpc-go's server (etcd's --grpc-keepalive-*): a client PING that comes less than
// keepaliveMinTimeMs after its previous one, with no HEADERS or DATA sent by us in between, is a strike
// (with no open stream, less than 2 h after: grpc-go's PermitWithoutStream=false, as etcd sets it); the
// third strike ends the connection with GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings"), which grpc-go
// clients answer by pinging half as often. A connection we receive nothing on for keepaliveIntervalMs
// gets a PING; if nothing arrives keepaliveTimeoutMs after it, the connection is closed.
import { verifiedCommonName } from '../tls';
import { remoteAddressText } from '../rpc';
import type * as net from 'node:net';
import {
  DEFAULT_FRAME_BYTES, DEFAULT_WINDOW_BYTES, ErrorCode, Flag, FRAME_BYTES_LIMIT,
  FRAME_HEADER_BYTES, FrameType, h2Limits, PREFACE, SettingId, WINDOW_BYTES_LIMIT,
} from './constants';
import { FrameReader, FrameSink, writeFrameHeader } from './frame';
import { HeaderSink, HpackDecoder, HpackError } from './hpack';
import { H2Stream } from './stream';

/** Request headers, pseudo-headers included, as a null-prototype object (like node:http2's). */
export type RequestHeaders = Record<string, string>;

export interface H2Handler {
  onStream(stream: H2Stream, headers: RequestHeaders): void;
  onSessionError?(err: Error): void;
}

export interface H2SessionOptions {
  /** Our SETTINGS_MAX_CONCURRENT_STREAMS; streams past it are refused (REFUSED_STREAM). */
  maxConcurrentStreams: number;
  /** Least time between a client's PINGs (grpc-go's EnforcementPolicy.MinTime); 0: no policy. */
  keepaliveMinTimeMs?: number;
  /** Silence after which we PING the client (grpc-go's ServerParameters.Time); 0 or absent: never. */
  keepaliveIntervalMs?: number;
  /** Wait for anything after our PING before closing (ServerParameters.Timeout); 0 or absent: never. */
  keepaliveTimeoutMs?: number;
}

/** grpc-go: a client pinging without open streams must wait this long (defaultPingTimeout, 2 h). */
const PING_WITHOUT_STREAM_MS = 2 * 3600 * 1000;
/** grpc-go's maxPingStrikes: the connection ends at the strike after this many. */
const PING_STRIKES_MAX = 2;

class ConnectionError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

const EMPTY = Buffer.alloc(0);
const CONT_BUF_BYTES = 1024;
const PSEUDO_REQUEST = new Set([':method', ':scheme', ':path', ':authority']);
// RFC 9113 8.2.2: connection-specific fields make a request malformed.
const CONNECTION_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);
const DISCARD: HeaderSink = { onHeader() { /* trailers from a client carry nothing gRPC uses */ } };
/** A first header block opens with "dynamic table size = 0": we never index, see hpack.ts. */
const TABLE_SIZE_ZERO = Buffer.from([0x20]);

/** Output buffers no socket holds any more, shared by this thread's sessions (at most outBuffersFreeMax). */
const freeOutBuffers: Buffer[] = [];

function takeOutBuffer(): Buffer {
  return freeOutBuffers.pop() ?? Buffer.allocUnsafeSlow(h2Limits.outBufferBytes);
}

function giveOutBuffer(b: Buffer): void {
  if (b.length === h2Limits.outBufferBytes && freeOutBuffers.length < h2Limits.outBuffersFreeMax) freeOutBuffers.push(b);
}

export class H2Session implements FrameSink, HeaderSink {
  readonly #socket: net.Socket;
  readonly #opts: H2SessionOptions;
  readonly #handler: H2Handler;
  readonly #reader: FrameReader;
  readonly #decoder = new HpackDecoder(h2Limits.decoderTableBytes);
  readonly #streams = new Map<number, H2Stream>();
  /** Streams with queued DATA stalled on the connection window, resumed in insertion order. */
  readonly #blocked = new Set<H2Stream>();
  readonly #onClosed: (s: H2Session) => void;
  #prefaceLeft = PREFACE.length;
  #gotSettings = false;
  #lastStreamId = 0;
  // Peer settings (RFC 9113 6.5.2 defaults until its SETTINGS arrive).
  #peerInitialWindow = DEFAULT_WINDOW_BYTES;
  #peerMaxFrame = DEFAULT_FRAME_BYTES;
  // Connection-level windows.
  #connSendWindow = DEFAULT_WINDOW_BYTES;
  #connRecvWindow = DEFAULT_WINDOW_BYTES;
  #connRecvUnacked = 0;
  /** PING/SETTINGS/RST_STREAM frames received in the current one-second window (flood control). */
  #controlFrames = 0;
  #controlWindowStart = 0;
  // A header block being continued by CONTINUATION frames (#contStreamId 0: none).
  #contStreamId = 0;
  #contEndStream = false;
  #contSelfDep = false;
  #contBuf = Buffer.allocUnsafe(CONT_BUF_BYTES);
  #contLen = 0;
  // Request header collection (this session is the HPACK sink).
  #req: RequestHeaders = Object.create(null) as RequestHeaders;
  #regularSeen = false;
  #malformed = false;
  // Output.
  #out = takeOutBuffer();
  #outLen = 0;
  #outChunks: Buffer[] = [];
  /** Output buffers sealed into #outChunks since the last flush: reused once the socket took them. */
  #sealed: Buffer[] = [];
  /** Bytes in #outChunks (output gathered this tick, not yet handed to the socket). */
  #outChunkBytes = 0;
  #flushScheduled = false;
  #firstHeaderBlock = true;
  #goawaySent = false;
  #goawayReceived = false;
  #dead = false;
  #readPaused = false;
  // Keepalive (see the top of the file).
  #pingStrikes = 0;
  #lastPingAt = -Infinity;
  /** We sent HEADERS or DATA since the client's last PING: its next PING is no strike. */
  #sentSincePing = false;
  /** Bytes arrived since the keepalive timer last fired. */
  #activity = false;
  #keepalivePingSent = false;
  #keepaliveTimer: NodeJS.Timeout | null = null;
  /** The common name of the client's verified TLS certificate; undefined on cleartext (net/tls.ts). */
  readonly peerCertificateCN: string | undefined;
  /** The client's address, for the audit log: read once per connection. */
  readonly remoteAddress: string;

  constructor(socket: net.Socket, opts: H2SessionOptions, handler: H2Handler, onClosed: (s: H2Session) => void) {
    this.#socket = socket;
    this.#opts = opts;
    this.#handler = handler;
    this.#onClosed = onClosed;
    this.#reader = new FrameReader(this, h2Limits.recvFrameBytesMax);
    this.peerCertificateCN = verifiedCommonName(socket);
    this.remoteAddress = remoteAddressText(socket.remoteAddress, socket.remotePort);
    socket.on('data', this.#onSocketData);
    socket.on('close', this.#onSocketClose);
    socket.on('error', this.#onSocketError);
    socket.on('end', this.#onSocketEnd);
    this.#writeInitialSettings();
    if ((opts.keepaliveIntervalMs ?? 0) > 0 && (opts.keepaliveTimeoutMs ?? 0) > 0) {
      this.#keepaliveTimer = setTimeout(this.#onKeepaliveTimer, opts.keepaliveIntervalMs).unref();
    }
  }

  // ---- socket events (arrow fields: one closure per connection, none per frame) ----

  #onSocketData = (chunk: Buffer): void => {
    if (this.#dead) return;
    this.#activity = true;
    try {
      if (this.#prefaceLeft > 0) {
        const rest = this.#consumePreface(chunk);
        if (rest === null) return;
        chunk = rest;
      }
      this.#reader.push(chunk);
    } catch (e) {
      if (e instanceof ConnectionError) this.#connectionError(e.code, e.message);
      else if (e instanceof HpackError) this.#connectionError(ErrorCode.COMPRESSION_ERROR, e.message);
      else this.#connectionError(ErrorCode.INTERNAL_ERROR, e instanceof Error ? e.message : String(e));
    }
  };

  #onSocketClose = (): void => this.#teardown();
  #onSocketError = (): void => { this.#socket.destroy(); };
  #onSocketEnd = (): void => { if (!this.#socket.destroyed) this.#socket.end(); };
  #onDrain = (): void => {
    this.#readPaused = false;
    if (this.#dead) return;
    this.#socket.resume();
    this.#resumeBlocked();
  };
  #flushBound = (): void => this.#flush();

  #consumePreface(chunk: Buffer): Buffer | null {
    const n = Math.min(this.#prefaceLeft, chunk.length);
    const at = PREFACE.length - this.#prefaceLeft;
    if (chunk.compare(PREFACE, at, at + n, 0, n) !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'bad connection preface');
    this.#prefaceLeft -= n;
    return n === chunk.length ? null : chunk.subarray(n);
  }

  // ---- frame dispatch ----

  onFrame(type: number, flags: number, sid: number, buf: Buffer, start: number, end: number): void {
    if (this.#contStreamId !== 0 && type !== FrameType.CONTINUATION) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'expected CONTINUATION');
    }
    if (!this.#gotSettings && (type !== FrameType.SETTINGS || (flags & Flag.ACK) !== 0)) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'first frame is not SETTINGS');
    }
    if (type === FrameType.PING || type === FrameType.SETTINGS || type === FrameType.RST_STREAM) this.#countControlFrame();
    switch (type) {
      case FrameType.DATA: return this.#onData(flags, sid, buf, start, end);
      case FrameType.HEADERS: return this.#onHeaders(flags, sid, buf, start, end);
      case FrameType.PRIORITY: return this.#onPriority(sid, buf, start, end);
      case FrameType.RST_STREAM: return this.#onRstStream(sid, buf, start, end);
      case FrameType.SETTINGS: return this.#onSettings(flags, sid, buf, start, end);
      case FrameType.PUSH_PROMISE: throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE from a client');
      case FrameType.PING: return this.#onPing(flags, sid, buf, start, end);
      case FrameType.GOAWAY: return this.#onGoaway(sid, end - start);
      case FrameType.WINDOW_UPDATE: return this.#onWindowUpdate(sid, buf, start, end);
      case FrameType.CONTINUATION: return this.#onContinuation(flags, sid, buf, start, end);
      default: return; // RFC 9113 4.1: unknown frame types are ignored
    }
  }

  /**
   * Frames that make us work without carrying a request (PING and SETTINGS we must answer, client
   * RST_STREAMs: the "rapid reset" pattern) are capped per connection per second; past the cap the
   * connection ends with GOAWAY(ENHANCE_YOUR_CALM). The cap is far above what grpc-go's BDP pings
   * or any honest client send.
   */
  #countControlFrame(): void {
    const now = Date.now();
    if (now - this.#controlWindowStart >= 1000) {
      this.#controlWindowStart = now;
      this.#controlFrames = 0;
    }
    if (++this.#controlFrames > h2Limits.controlFramesPerSecondMax) {
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'too many control frames');
    }
  }

  onFrameTooLarge(type: number, length: number): void {
    this.#connectionError(ErrorCode.FRAME_SIZE_ERROR, `frame of type ${type} is ${length} bytes, over ${h2Limits.recvFrameBytesMax}`);
  }

  /** Returns the payload end after removing PADDED padding; the payload starts at start + 1. */
  #unpaddedEnd(buf: Buffer, start: number, end: number): number {
    if (end - start < 1) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'padded frame without pad length');
    const pad = buf[start];
    if (pad >= end - start) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'padding exceeds the payload');
    return end - pad;
  }

  #onData(flags: number, sid: number, buf: Buffer, start: number, end: number): void {
    if (sid === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on stream 0');
    const frameBytes = end - start; // padding counts toward flow control (RFC 9113 6.9.1)
    if (frameBytes > this.#connRecvWindow) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window exceeded');
    this.#connRecvWindow -= frameBytes;
    this.#creditConnection(frameBytes);
    if (flags & Flag.PADDED) {
      end = this.#unpaddedEnd(buf, start, end);
      start++;
    }
    const stream = this.#streams.get(sid);
    if (stream === undefined) {
      if (sid > this.#lastStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on an idle stream');
      return; // closed (or reset by us): ignored, already counted for the connection
    }
    if (stream.remoteClosed) return this.#streamError(stream, ErrorCode.STREAM_CLOSED);
    if (frameBytes > stream.recvWindow) return this.#streamError(stream, ErrorCode.FLOW_CONTROL_ERROR);
    stream.recvWindow -= frameBytes;
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if (!endStream) this.#creditStream(stream, frameBytes);
    if (end > start) stream.listener?.onData(stream, buf, start, end);
    if (endStream) this.#remoteEnded(stream);
  }

  #creditConnection(n: number): void {
    this.#connRecvUnacked += n;
    if (this.#connRecvUnacked < h2Limits.connRecvWindowBytes / 2) return;
    this.#writeWindowUpdate(0, this.#connRecvUnacked);
    this.#connRecvWindow += this.#connRecvUnacked;
    this.#connRecvUnacked = 0;
  }

  #creditStream(stream: H2Stream, n: number): void {
    stream.recvUnacked += n;
    if (stream.recvUnacked < h2Limits.streamRecvWindowBytes / 2) return;
    this.#writeWindowUpdate(stream.id, stream.recvUnacked);
    stream.recvWindow += stream.recvUnacked;
    stream.recvUnacked = 0;
  }

  #remoteEnded(stream: H2Stream): void {
    if (stream.closed) return;
    stream.remoteClosed = true;
    stream.listener?.onEnd(stream);
    if (!stream.closed && stream.localClosed) this.#closeStream(stream, false);
  }

  #onHeaders(flags: number, sid: number, buf: Buffer, start: number, end: number): void {
    if (sid === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS on stream 0');
    if (flags & Flag.PADDED) {
      end = this.#unpaddedEnd(buf, start, end);
      start++;
    }
    let selfDep = false;
    if (flags & Flag.PRIORITY) {
      if (end - start < 5) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'HEADERS priority fields truncated');
      selfDep = (buf.readUInt32BE(start) & 0x7fffffff) === sid;
      start += 5;
    }
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if (flags & Flag.END_HEADERS) return this.#onHeaderBlock(sid, endStream, selfDep, buf, start, end);
    this.#contStreamId = sid;
    this.#contEndStream = endStream;
    this.#contSelfDep = selfDep;
    this.#contLen = 0;
    this.#appendContinuation(buf, start, end);
  }

  #onContinuation(flags: number, sid: number, buf: Buffer, start: number, end: number): void {
    if (this.#contStreamId === 0 || sid !== this.#contStreamId) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'unexpected CONTINUATION');
    }
    this.#appendContinuation(buf, start, end);
    if ((flags & Flag.END_HEADERS) === 0) return;
    this.#contStreamId = 0;
    this.#onHeaderBlock(sid, this.#contEndStream, this.#contSelfDep, this.#contBuf, 0, this.#contLen);
    // Decoded fields are strings: a buffer grown by one large block need not stay with the connection.
    if (this.#contBuf.length > CONT_BUF_BYTES) this.#contBuf = Buffer.allocUnsafe(CONT_BUF_BYTES);
  }

  #appendContinuation(buf: Buffer, start: number, end: number): void {
    const need = this.#contLen + end - start;
    if (need > h2Limits.headerBlockBytesMax) throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'header block too large');
    if (need > this.#contBuf.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, 2 * this.#contBuf.length));
      this.#contBuf.copy(grown, 0, 0, this.#contLen);
      this.#contBuf = grown;
    }
    buf.copy(this.#contBuf, this.#contLen, start, end);
    this.#contLen = need;
  }

  /** A complete header block: a new request, or trailers on an open stream. */
  #onHeaderBlock(sid: number, endStream: boolean, selfDep: boolean, buf: Buffer, start: number, end: number): void {
    if (sid <= this.#lastStreamId) return this.#onTrailers(sid, endStream, buf, start, end);
    if ((sid & 1) === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'client opened an even stream id');
    this.#lastStreamId = sid;
    this.#req = Object.create(null) as RequestHeaders;
    this.#regularSeen = false;
    this.#malformed = false;
    const fits = this.#decoder.decode(buf, start, end, this, h2Limits.headerListBytesMax);
    if (selfDep || this.#malformed || !this.#requestComplete()) return this.#writeRstStream(sid, ErrorCode.PROTOCOL_ERROR);
    if (!fits) return this.#writeRstStream(sid, ErrorCode.FRAME_SIZE_ERROR); // as grpc-go does for a truncated list
    if (this.#goawaySent || this.#streams.size >= this.#opts.maxConcurrentStreams) {
      return this.#writeRstStream(sid, ErrorCode.REFUSED_STREAM);
    }
    const stream = new H2Stream(this, sid, this.#peerInitialWindow, h2Limits.streamRecvWindowBytes);
    stream.remoteClosed = endStream;
    this.#streams.set(sid, stream);
    this.#handler.onStream(stream, this.#req);
    if (endStream) this.#remoteEnded(stream);
  }

  /** HEADERS on a known stream id. The block is decoded regardless: the HPACK table must follow. */
  #onTrailers(sid: number, endStream: boolean, buf: Buffer, start: number, end: number): void {
    this.#decoder.decode(buf, start, end, DISCARD, h2Limits.headerListBytesMax);
    const stream = this.#streams.get(sid);
    if (stream === undefined) return; // closed; RFC 9113 5.1 lets us ignore frames after our RST_STREAM
    if (stream.remoteClosed) return this.#streamError(stream, ErrorCode.STREAM_CLOSED);
    if (!endStream) return this.#streamError(stream, ErrorCode.PROTOCOL_ERROR); // trailers must end the stream
    this.#remoteEnded(stream);
  }

  /** HPACK sink: collects request fields and flags malformed requests (RFC 9113 8.2, 8.3). */
  onHeader(name: string, value: string): void {
    if (name.charCodeAt(0) === 0x3a) {
      if (this.#regularSeen || !PSEUDO_REQUEST.has(name) || this.#req[name] !== undefined) this.#malformed = true;
    } else {
      this.#regularSeen = true;
      if (!validFieldName(name)) this.#malformed = true;
      else if (name === 'te' ? value !== 'trailers' : CONNECTION_HEADERS.has(name)) this.#malformed = true;
    }
    const prev = this.#req[name];
    this.#req[name] = prev === undefined ? value : prev + ', ' + value;
  }

  #requestComplete(): boolean {
    const r = this.#req;
    if (r[':method'] === 'CONNECT') return r[':authority'] !== undefined && r[':path'] === undefined && r[':scheme'] === undefined;
    return r[':method'] !== undefined && r[':scheme'] !== undefined && r[':path'] !== undefined && r[':path'] !== '';
  }

  #onPriority(sid: number, buf: Buffer, start: number, end: number): void {
    if (sid === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PRIORITY on stream 0');
    if (end - start !== 5) return this.#streamErrorById(sid, ErrorCode.FRAME_SIZE_ERROR);
    if ((buf.readUInt32BE(start) & 0x7fffffff) === sid) return this.#streamErrorById(sid, ErrorCode.PROTOCOL_ERROR);
    // Priorities are deprecated (RFC 9113 5.3) and meaningless for gRPC: ignored.
  }

  #onRstStream(sid: number, _buf: Buffer, start: number, end: number): void {
    if (sid === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (end - start !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'RST_STREAM length is not 4');
    if (sid > this.#lastStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on an idle stream');
    const stream = this.#streams.get(sid);
    if (stream !== undefined) this.#closeStream(stream, true);
  }

  #onSettings(flags: number, sid: number, buf: Buffer, start: number, end: number): void {
    if (sid !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (flags & Flag.ACK) {
      if (end !== start) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      return;
    }
    if ((end - start) % 6 !== 0) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS length is not a multiple of 6');
    this.#gotSettings = true;
    for (let p = start; p < end; p += 6) this.#applySetting(buf.readUInt16BE(p), buf.readUInt32BE(p + 2));
    this.#frameAt(0, FrameType.SETTINGS, Flag.ACK, 0);
    for (const s of this.#streams.values()) this.pump(s); // a larger INITIAL_WINDOW_SIZE may unblock
  }

  #applySetting(id: number, value: number): void {
    switch (id) {
      case SettingId.HEADER_TABLE_SIZE:
        return; // honoured trivially: our encoder never indexes
      case SettingId.ENABLE_PUSH:
        if (value > 1) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'ENABLE_PUSH is not 0 or 1');
        return;
      case SettingId.INITIAL_WINDOW_SIZE: {
        if (value > WINDOW_BYTES_LIMIT) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'INITIAL_WINDOW_SIZE too large');
        const delta = value - this.#peerInitialWindow;
        this.#peerInitialWindow = value;
        for (const s of this.#streams.values()) {
          s.sendWindow += delta;
          if (s.sendWindow > WINDOW_BYTES_LIMIT) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'stream window overflow');
        }
        return;
      }
      case SettingId.MAX_FRAME_SIZE:
        if (value < DEFAULT_FRAME_BYTES || value > FRAME_BYTES_LIMIT) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'MAX_FRAME_SIZE out of range');
        this.#peerMaxFrame = value;
        return;
      default:
        return; // MAX_CONCURRENT_STREAMS (we open none), MAX_HEADER_LIST_SIZE (advisory), unknown ids
    }
  }

  #onPing(flags: number, sid: number, buf: Buffer, start: number, end: number): void {
    if (sid !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PING on a stream');
    if (end - start !== 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'PING length is not 8');
    if (flags & Flag.ACK) return;
    const off = this.#frameAt(8, FrameType.PING, Flag.ACK, 0);
    buf.copy(this.#out, off, start, end);
    this.#enforcePingPolicy();
  }

  /** grpc-go's http2Server.handlePing policy (see the top of the file). */
  #enforcePingPolicy(): void {
    const minTime = this.#opts.keepaliveMinTimeMs ?? 0;
    if (minTime <= 0) return;
    const now = Date.now();
    const last = this.#lastPingAt;
    this.#lastPingAt = now;
    if (this.#sentSincePing) {
      this.#sentSincePing = false;
      this.#pingStrikes = 0;
      return;
    }
    const least = this.#streams.size === 0 ? PING_WITHOUT_STREAM_MS : minTime;
    if (last + least > now) this.#pingStrikes++;
    if (this.#pingStrikes > PING_STRIKES_MAX) throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'too_many_pings');
  }

  /** Server keepalive: PING a silent connection; close it if still silent a timeout later. */
  #onKeepaliveTimer = (): void => {
    this.#keepaliveTimer = null;
    if (this.#dead) return;
    if (this.#activity) {
      this.#activity = false;
      this.#keepalivePingSent = false;
      this.#keepaliveTimer = setTimeout(this.#onKeepaliveTimer, this.#opts.keepaliveIntervalMs).unref();
      return;
    }
    if (this.#keepalivePingSent) {
      this.#handler.onSessionError?.(new Error('h2: keepalive ping not answered; closing the connection'));
      this.#teardown();
      this.#socket.destroy();
      return;
    }
    this.#keepalivePingSent = true;
    const off = this.#frameAt(8, FrameType.PING, 0, 0);
    this.#out.fill(0, off, off + 8);
    this.#keepaliveTimer = setTimeout(this.#onKeepaliveTimer, this.#opts.keepaliveTimeoutMs).unref();
  };

  #onGoaway(sid: number, length: number): void {
    if (sid !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'GOAWAY on a stream');
    if (length < 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'GOAWAY shorter than 8 bytes');
    this.#goawayReceived = true;
    this.#maybeFinish();
  }

  #onWindowUpdate(sid: number, buf: Buffer, start: number, end: number): void {
    if (end - start !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE length is not 4');
    const inc = buf.readUInt32BE(start) & 0x7fffffff;
    if (sid === 0) {
      if (inc === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.#connSendWindow += inc;
      if (this.#connSendWindow > WINDOW_BYTES_LIMIT) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window overflow');
      return this.#resumeBlocked();
    }
    const stream = this.#streams.get(sid);
    if (stream === undefined) {
      if (sid > this.#lastStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE on an idle stream');
      return;
    }
    if (inc === 0) return this.#streamError(stream, ErrorCode.PROTOCOL_ERROR);
    stream.sendWindow += inc;
    if (stream.sendWindow > WINDOW_BYTES_LIMIT) return this.#streamError(stream, ErrorCode.FLOW_CONTROL_ERROR);
    this.pump(stream);
  }

  #resumeBlocked(): void {
    for (const s of this.#blocked) {
      if (this.#connSendWindow <= 0 || this.#outputFull()) return;
      this.#blocked.delete(s);
      this.pump(s);
    }
  }

  // ---- sending, called by H2Stream ----

  writeResponseHeaders(stream: H2Stream, block: Buffer, endStream: boolean): void {
    this.#writeHeaderBlock(stream.id, block, endStream);
    if (endStream) this.#localEnded(stream);
  }

  /** Writes as much queued DATA as the windows allow, then the trailers once the queue is empty. */
  pump(stream: H2Stream): void {
    if (stream.closed || this.#dead) return;
    while (stream.queuedBytes > 0) {
      // The socket already holds socketWriteQueueBytesMax unsent: keep the data in the stream's
      // queue (its ServerStream.send reports backpressure) until the socket drains.
      if (this.#outputFull()) {
        this.#blocked.add(stream);
        return;
      }
      const n = Math.min(stream.queuedBytes, stream.sendWindow, this.#connSendWindow, this.#peerMaxFrame);
      if (n <= 0) {
        if (this.#connSendWindow <= 0) this.#blocked.add(stream);
        return;
      }
      this.#writeData(stream, n);
    }
    if (stream.trailers !== null && !stream.localClosed) {
      this.#writeHeaderBlock(stream.id, stream.trailers, true);
      this.#localEnded(stream);
    }
  }

  resetStream(stream: H2Stream, code: ErrorCode): void {
    this.#streamError(stream, code);
  }

  /** Graceful shutdown: GOAWAY(NO_ERROR), in-flight streams finish, new ones are refused. */
  close(): void {
    if (this.#goawaySent || this.#dead) return;
    this.#writeGoaway(ErrorCode.NO_ERROR, '');
    this.#maybeFinish();
  }

  /** Our side is done: closed if the client is too; else, as gRPC servers do, RST_STREAM(NO_ERROR)
   *  tells the client to stop sending a request we no longer read (RFC 9113 8.1). */
  #localEnded(stream: H2Stream): void {
    stream.localClosed = true;
    if (!stream.remoteClosed) this.#writeRstStream(stream.id, ErrorCode.NO_ERROR);
    this.#closeStream(stream, false);
  }

  #streamError(stream: H2Stream, code: ErrorCode): void {
    this.#writeRstStream(stream.id, code);
    this.#closeStream(stream, true);
  }

  #streamErrorById(sid: number, code: ErrorCode): void {
    const stream = this.#streams.get(sid);
    if (stream !== undefined) this.#streamError(stream, code);
    else this.#writeRstStream(sid, code);
  }

  #closeStream(stream: H2Stream, reset: boolean): void {
    if (stream.closed) return;
    stream.closed = true;
    stream.queue.length = 0;
    stream.queuedBytes = 0;
    this.#streams.delete(stream.id);
    this.#blocked.delete(stream);
    stream.listener?.onClose(stream, reset);
    this.#maybeFinish();
  }

  #maybeFinish(): void {
    if ((this.#goawaySent || this.#goawayReceived) && this.#streams.size === 0 && !this.#dead) {
      this.#flush();
      this.#socket.end();
    }
  }

  #connectionError(code: ErrorCode, message: string): void {
    if (this.#dead) return;
    this.#handler.onSessionError?.(new Error(`h2: ${message}`));
    this.#reader.stop();
    this.#writeGoaway(code, message);
    this.#flush();
    this.#socket.end();
    this.#teardown();
    // A peer that never closes its side must not keep the socket: end() waits for it otherwise.
    setTimeout(destroySocket, 1000, this.#socket).unref();
  }

  #teardown(): void {
    if (this.#dead) return;
    this.#dead = true;
    if (this.#keepaliveTimer !== null) clearTimeout(this.#keepaliveTimer);
    for (const s of [...this.#streams.values()]) this.#closeStream(s, true);
    this.#onClosed(this);
  }

  // ---- frame writers (into #out) ----

  /** Reserves a frame of payloadLen bytes in #out, writes its header, returns the payload offset. */
  #frameAt(payloadLen: number, type: number, flags: number, sid: number): number {
    const off = this.#reserve(FRAME_HEADER_BYTES + payloadLen);
    return writeFrameHeader(this.#out, off, payloadLen, type, flags, sid);
  }

  #writeInitialSettings(): void {
    const settings: Array<[number, number]> = [
      [SettingId.MAX_CONCURRENT_STREAMS, this.#opts.maxConcurrentStreams],
      [SettingId.INITIAL_WINDOW_SIZE, h2Limits.streamRecvWindowBytes],
      [SettingId.MAX_HEADER_LIST_SIZE, h2Limits.headerListBytesMax],
    ];
    let off = this.#frameAt(6 * settings.length, FrameType.SETTINGS, 0, 0);
    for (const [id, v] of settings) {
      this.#out.writeUInt16BE(id, off);
      this.#out.writeUInt32BE(v, off + 2);
      off += 6;
    }
    const raise = h2Limits.connRecvWindowBytes - DEFAULT_WINDOW_BYTES;
    this.#writeWindowUpdate(0, raise);
    this.#connRecvWindow += raise;
  }

  #writeWindowUpdate(sid: number, inc: number): void {
    const at = this.#frameAt(4, FrameType.WINDOW_UPDATE, 0, sid); // before reading #out
    this.#out.writeUInt32BE(inc, at);
  }

  #writeRstStream(sid: number, code: ErrorCode): void {
    const at = this.#frameAt(4, FrameType.RST_STREAM, 0, sid); // before reading #out
    this.#out.writeUInt32BE(code, at);
  }

  #writeGoaway(code: ErrorCode, debug: string): void {
    this.#goawaySent = true;
    const dbg = Buffer.from(debug.slice(0, 256), 'utf8');
    const off = this.#frameAt(8 + dbg.length, FrameType.GOAWAY, 0, 0);
    this.#out.writeUInt32BE(this.#lastStreamId, off);
    this.#out.writeUInt32BE(code, off + 4);
    dbg.copy(this.#out, off + 8);
  }

  /** HEADERS (+CONTINUATION when the block exceeds the peer's MAX_FRAME_SIZE). */
  #writeHeaderBlock(sid: number, block: Buffer, endStream: boolean): void {
    if (this.#firstHeaderBlock) {
      this.#firstHeaderBlock = false;
      block = Buffer.concat([TABLE_SIZE_ZERO, block]);
    }
    const es = endStream ? Flag.END_STREAM : 0;
    if (block.length <= this.#peerMaxFrame) {
      // Reserve first, then read #out: reserving may seal the current buffer and start a new one,
      // and `block.copy(this.#out, this.#frameAt(...))` would evaluate the OLD buffer first.
      const at = this.#frameAt(block.length, FrameType.HEADERS, Flag.END_HEADERS | es, sid);
      block.copy(this.#out, at);
      this.#sentSincePing = true;
      return;
    }
    let type: number = FrameType.HEADERS;
    for (let p = 0; p < block.length; p += this.#peerMaxFrame) {
      const n = Math.min(this.#peerMaxFrame, block.length - p);
      const last = p + n === block.length;
      const flags = (last ? Flag.END_HEADERS : 0) | (type === FrameType.HEADERS ? es : 0);
      const at = this.#frameAt(n, type, flags, sid);
      block.copy(this.#out, at, p, p + n);
      type = FrameType.CONTINUATION;
    }
  }

  /** One DATA frame of n bytes taken from the stream's queue: small pieces are copied into #out,
   *  large ones are passed to the socket by reference. */
  #writeData(stream: H2Stream, n: number): void {
    this.#sentSincePing = true;
    const payloadAt = this.#frameAt(0, FrameType.DATA, 0, stream.id);
    this.#out.writeUIntBE(n, payloadAt - FRAME_HEADER_BYTES, 3); // the payload is appended below
    let left = n;
    while (left > 0) {
      const piece = stream.queue[stream.queueHead];
      const take = Math.min(piece.length - stream.headOffset, left);
      if (take < h2Limits.copyPayloadBytesMax) {
        const at = this.#reserve(take); // before reading #out (see #writeHeaderBlock)
        piece.copy(this.#out, at, stream.headOffset, stream.headOffset + take);
      } else {
        this.#sealOut();
        this.#outChunks.push(piece.subarray(stream.headOffset, stream.headOffset + take));
        this.#outChunkBytes += take;
      }
      stream.headOffset += take;
      left -= take;
      if (stream.headOffset === piece.length) {
        stream.queue[stream.queueHead++] = EMPTY;
        stream.headOffset = 0;
      }
    }
    if (stream.queueHead === stream.queue.length) stream.queue.length = stream.queueHead = 0;
    // A stream that never fully drains (window-bound watch) must not grow a prefix of sent slots.
    else if (stream.queueHead >= 64 && stream.queueHead * 2 >= stream.queue.length) {
      stream.queue.splice(0, stream.queueHead);
      stream.queueHead = 0;
    }
    stream.queuedBytes -= n;
    stream.sendWindow -= n;
    this.#connSendWindow -= n;
    if (stream.drainWanted && stream.queuedBytes < h2Limits.streamSendQueueBytesHigh) {
      stream.drainWanted = false;
      // Deferred: the listener may send again, which must not re-enter this write loop.
      queueMicrotask(() => { if (!stream.closed) stream.listener?.onDrain?.(stream); });
    }
  }

  // ---- output buffer ----

  /** Returns an offset in #out with room for n bytes (and claims them). */
  #reserve(n: number): number {
    if (this.#outLen + n > this.#out.length) {
      this.#sealOut();
      if (n > this.#out.length) this.#out = Buffer.allocUnsafe(n);
    }
    const off = this.#outLen;
    this.#outLen += n;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      process.nextTick(this.#flushBound);
    }
    return off;
  }

  /** Moves the filled part of #out to the chunk list and starts a fresh buffer (no copy). */
  #sealOut(): void {
    if (this.#outLen === 0) return;
    this.#outChunks.push(this.#out.subarray(0, this.#outLen));
    this.#outChunkBytes += this.#outLen;
    this.#sealed.push(this.#out);
    this.#out = takeOutBuffer();
    this.#outLen = 0;
  }

  #releaseSealed(reusable: boolean): void {
    if (reusable) for (const b of this.#sealed) giveOutBuffer(b);
    this.#sealed.length = 0;
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#socket.destroyed || !this.#socket.writable) {
      this.#outLen = 0;
      this.#outChunks.length = 0;
      this.#outChunkBytes = 0;
      this.#releaseSealed(true);
      return;
    }
    let ok = true;
    // #out is written by reference, not copied. The socket keeps a reference only to bytes it could
    // not pass to the kernel at once (Writable counts them in writableLength until the write
    // completes); when it took everything, #out is free to reuse, else a fresh one is started.
    // With a watch stream's tens of KiB per pass, the copy cost one allocation per write and the
    // garbage collections that follow.
    if (this.#outChunks.length === 0) {
      if (this.#outLen === 0) return;
      ok = this.#socket.write(this.#out.subarray(0, this.#outLen));
    } else {
      if (this.#outLen > 0) this.#outChunks.push(this.#out.subarray(0, this.#outLen));
      this.#socket.cork();
      for (const c of this.#outChunks) ok = this.#socket.write(c);
      this.#socket.uncork();
      this.#outChunks.length = 0;
      this.#outChunkBytes = 0;
    }
    // Sealed buffers too: a burst of output (a watch pass of several streams' responses) then reuses the
    // same few buffers instead of allocating 64 KiB of external memory per seal, which makes V8 run full
    // mark-compacts.
    const taken = this.#socket.writableLength === 0;
    this.#releaseSealed(taken);
    if (this.#outLen > 0 && !taken) this.#out = takeOutBuffer();
    this.#outLen = 0;
    if (!ok && !this.#readPaused && this.#socket.writableLength > h2Limits.socketWriteQueueBytesMax) {
      this.#readPaused = true;
      this.#socket.pause();
      this.#socket.once('drain', this.#onDrain);
    }
    if (!this.#readPaused && this.#blocked.size > 0) this.#resumeBlocked();
  }

  /** Output waiting for the socket (gathered this tick, or queued in the socket past its limit) is
   *  at socketWriteQueueBytesMax: DATA stays in the streams' queues, which report backpressure. */
  #outputFull(): boolean {
    return this.#readPaused || this.#outChunkBytes + this.#outLen > h2Limits.socketWriteQueueBytesMax;
  }
}

function destroySocket(socket: net.Socket): void {
  socket.destroy();
}

/** RFC 9113 8.2.1: no upper case, controls, space, DEL or non-ASCII in a field name. */
function validFieldName(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c <= 0x20 || (c >= 0x41 && c <= 0x5a) || c >= 0x7f) return false;
  }
  return name.length > 0;
}
