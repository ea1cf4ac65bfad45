// gRPC over our own HTTP/2 server (src/main/net/h2/): the one gRPC transport. It serves the method
// table it extends (GrpcMethods, rpc.ts: handlers, kinds, the guard) and owns only what is gRPC on
// HTTP/2: the request and response headers, message framing, grpc-status trailers, and when a call's
// deadline fires. Its status codes and messages for bad calls (unknown service/method, oversized and
// compressed messages, deadlines, unexpected EOF) are grpc-go's, pinned by h2_transport.test.ts.
// `server` is an H2Server that takes sockets through emit('connection', socket) (listener.ts).
//
// Wire format of a gRPC message inside DATA frames (h2/grpc_message.ts):
//   +--------+-----------------+------------------+
//   | u8 cmp | u32 BE length n | n bytes protobuf |
//   +--------+-----------------+------------------+
// A unary call: request headers, one message, END_STREAM; response headers, one message,
// trailers {grpc-status, grpc-message}. Errors are "trailers-only" responses.
//
// Per call there is one object (UnaryCall or BidiCall) that is the stream's listener; response
// header blocks are encoded once at load (RESPONSE_HEADERS, OK_TRAILERS), so a successful unary
// call writes HEADERS + DATA + HEADERS(trailers) from cached bytes plus the message.
import { EtcdError, GrpcCode } from '../../shared/errors';
import {
  CallContext, countSentFramed, deadlineOf, errorStatus, failureStatus, GrpcMethods, grpcTraffic, ServerStream, StreamHandler, UnaryMethod,
} from './rpc';
import { h2Limits } from './h2/constants';
import { GrpcMessageReader, MessageSink, writeGrpcMessage } from './h2/grpc_message';
import { encodeHeaderBlock } from './h2/hpack';
import { H2Server } from './h2/server';
import type { RequestHeaders } from './h2/session';
import type { H2Stream, StreamListener } from './h2/stream';
import { performance } from 'node:perf_hooks';
import type { GrpcServerMetrics, MethodStats } from '../grpc_metrics';

export interface GrpcTransportOptions {
  /** Largest accepted message, in bytes (etcd: --max-request-bytes + 512 KiB of gRPC overhead). */
  recvMessageBytesMax: number;
  streamsPerConnMax: number;
  /** etcd's --grpc-keepalive-min-time, -interval, -timeout, in ms (absent: off). */
  keepaliveMinTimeMs?: number;
  keepaliveIntervalMs?: number;
  keepaliveTimeoutMs?: number;
  onError?: (err: Error) => void;
}

/** grpc-message is percent-encoded (grpc spec: PROTOCOL-HTTP2.md, "Status-Message"). */
export function encodeGrpcMessage(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

type Fields = Array<[string, string]>;
const RESPONSE_FIELDS: Fields = [[':status', '200'], ['content-type', 'application/grpc']];
const RESPONSE_HEADERS = encodeHeaderBlock(RESPONSE_FIELDS);
const OK_TRAILERS = encodeHeaderBlock([['grpc-status', '0']]);
const UNSUPPORTED_MEDIA = encodeHeaderBlock([[':status', '415'], ['content-type', 'text/plain']]);

function statusFields(code: number, message: string): Fields {
  return message ? [['grpc-status', String(code)], ['grpc-message', encodeGrpcMessage(message)]] : [['grpc-status', String(code)]];
}

function trailersBlock(code: number, message: string): Buffer {
  return code === GrpcCode.OK && !message ? OK_TRAILERS : encodeHeaderBlock(statusFields(code, message));
}

function sendMessage(stream: H2Stream, msg: Uint8Array): void {
  if (stream.closed || stream.headersSent) return;
  stream.respond(RESPONSE_HEADERS, false);
  grpcTraffic.sentBytes += msg.length;
  writeGrpcMessage(stream, msg);
  stream.end(OK_TRAILERS);
}

/** A trailers-only response (grpc spec: PROTOCOL-HTTP2.md). */
function sendStatus(stream: H2Stream, code: GrpcCode, message: string): void {
  if (stream.closed || stream.headersSent) return;
  stream.respond(encodeHeaderBlock([...RESPONSE_FIELDS, ...statusFields(code, message)]), true);
}

function sendError(stream: H2Stream, e: unknown): void {
  const st = errorStatus(e);
  sendStatus(stream, st.code, st.message);
}

export class GrpcH2Transport extends GrpcMethods {
  readonly server: H2Server;
  #opts: GrpcTransportOptions;
  /** etcd's grpc_server_* metrics (grpc_metrics.ts); null until the member registers them. */
  #metrics: GrpcServerMetrics | null = null;

  constructor(opts: GrpcTransportOptions) {
    super();
    this.#opts = opts;
    const sessionOpts = {
      maxConcurrentStreams: opts.streamsPerConnMax,
      keepaliveMinTimeMs: opts.keepaliveMinTimeMs,
      keepaliveIntervalMs: opts.keepaliveIntervalMs,
      keepaliveTimeoutMs: opts.keepaliveTimeoutMs,
    };
    this.server = new H2Server(sessionOpts, {
      onStream: (stream, headers) => this.#onStream(stream, headers),
      onSessionError: (err) => opts.onError?.(err),
    });
  }

  /** Counts every call from now on in m (etcd's go-grpc-prometheus interceptors), after pre-registering
   * etcd's methods that this table serves. */
  setMetrics(m: GrpcServerMetrics): void {
    m.preRegister(this);
    this.#metrics = m;
  }

  #onStream(stream: H2Stream, headers: RequestHeaders): void {
    const path = headers[':path'] ?? '';
    const ctype = headers['content-type'] ?? '';
    if (headers[':method'] !== 'POST' || !ctype.startsWith('application/grpc')) {
      stream.respond(UNSUPPORTED_MEDIA, true);
      return;
    }
    const ctx: CallContext = {
      deadlineMs: deadlineOf(headers['grpc-timeout']), metadata: headers, peerCertificateCN: stream.session.peerCertificateCN,
      remoteAddress: stream.session.remoteAddress,
    };
    const unary = this.unaryMethod(path);
    if (unary) {
      stream.listener = new UnaryCall(stream, unary, ctx, this.#opts.recvMessageBytesMax, this.#callStats(path, true));
      return;
    }
    const bidi = this.streamHandler(path);
    if (bidi) {
      try {
        stream.listener = new BidiCall(stream, bidi, ctx, this.#opts.recvMessageBytesMax, this.#callStats(path, false));
      } catch (e) {
        sendError(stream, e);
      }
      return;
    }
    sendStatus(stream, GrpcCode.Unimplemented, this.unknownMethodMessage(path));
  }

  #callStats(path: string, unary: boolean): CallStats | null {
    const m = this.#metrics;
    return m === null ? null : new CallStats(m.method(path, unary), m.extensive);
  }
}

/** One call's share of its method's metrics: started once, handled once (with its time when extensive). */
class CallStats {
  readonly #m: MethodStats;
  readonly #timed: boolean;
  #t0 = -1;
  #handled = false;

  constructor(m: MethodStats, timed: boolean) {
    this.#m = m;
    this.#timed = timed;
  }

  start(): void {
    if (this.#timed) this.#t0 = performance.now();
    this.#m.started++;
  }

  received(): void {
    this.#m.received++;
  }

  sent(messages: number): void {
    this.#m.sent += messages;
  }

  handled(code: number): void {
    if (this.#handled) return;
    this.#handled = true;
    this.#m.handle(code, this.#t0 < 0 ? -1 : (performance.now() - this.#t0) / 1000);
  }
}

function onDeadline(call: UnaryCall): void {
  call.deadline();
}

/** One unary call: collects exactly one message until END_STREAM, runs the handler, answers. */
class UnaryCall implements StreamListener, MessageSink {
  readonly #stream: H2Stream;
  readonly #method: UnaryMethod;
  readonly #ctx: CallContext;
  readonly #reader: GrpcMessageReader;
  #got: Uint8Array | null = null;
  #failed = false;
  #timer: NodeJS.Timeout | null = null;
  /** Set once answered; cancel hooks run only for a call that ends unanswered. */
  #answered = false;
  #cancelFns: Array<() => void> | null = null;
  /** Counted from the handler's start, as etcd's unary interceptor (a call refused while decoding is not). */
  readonly #stats: CallStats | null;

  constructor(stream: H2Stream, method: UnaryMethod, ctx: CallContext, max: number, stats: CallStats | null) {
    this.#stream = stream;
    this.#method = method;
    this.#ctx = ctx;
    this.#reader = new GrpcMessageReader(max);
    this.#stats = stats;
  }

  onData(stream: H2Stream, buf: Buffer, start: number, end: number): void {
    if (this.#failed) return;
    try {
      this.#reader.push(buf, start, end, this);
    } catch (e) {
      this.#failed = true;
      sendError(stream, e);
    }
  }

  onMessage(msg: Uint8Array): void {
    if (this.#got !== null) throw new EtcdError(GrpcCode.Unimplemented, 'grpc: more than one message in a unary call');
    grpcTraffic.receivedBytes += msg.length;
    this.#got = msg;
  }

  onEnd(stream: H2Stream): void {
    if (this.#failed) return;
    if (this.#got === null || this.#reader.pending()) {
      sendStatus(stream, GrpcCode.Internal, 'grpc: error while reading the request: unexpected EOF');
      return;
    }
    this.#run(this.#got);
  }

  onClose(): void {
    this.#clearTimer();
    this.#cancel();
  }

  #cancel(): void {
    if (this.#answered) return;
    this.#answered = true;
    const fns = this.#cancelFns;
    this.#cancelFns = null;
    if (fns) for (const fn of fns) fn();
  }

  #run(body: Uint8Array): void {
    this.#stats?.start();
    this.#stats?.received();
    if (this.#ctx.deadlineMs > 0) this.#timer = setTimeout(onDeadline, Math.max(0, this.#ctx.deadlineMs - Date.now()), this);
    this.#ctx.onCancel = (fn) => { (this.#cancelFns ??= []).push(fn); };
    try {
      const r = this.#method.handler(body, this.#ctx);
      if (r instanceof Uint8Array) this.done(r);
      else r.then((out) => this.done(out), (e: unknown) => this.fail(e));
    } catch (e) {
      this.fail(e);
    }
  }

  done(out: Uint8Array): void {
    this.#answered = true;
    this.#clearTimer();
    sendMessage(this.#stream, out);
    if (this.#stats !== null) {
      this.#stats.handled(GrpcCode.OK);
      this.#stats.sent(1);
    }
  }

  fail(e: unknown): void {
    this.#answered = true;
    this.#clearTimer();
    const st = failureStatus(e, this.#method.kind);
    sendStatus(this.#stream, st.code, st.message);
    this.#stats?.handled(st.code);
  }

  /** The server's deadline: a read answers it; a write only stops waiting (rpc.ts MethodKind). */
  deadline(): void {
    this.#timer = null;
    if (this.#method.kind === 'read') {
      sendStatus(this.#stream, GrpcCode.DeadlineExceeded, 'context deadline exceeded');
      this.#stats?.handled(GrpcCode.DeadlineExceeded);
      this.#cancel();
      return;
    }
    const fns = this.#cancelFns;
    this.#cancelFns = null;
    if (fns) for (const fn of fns) fn();
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}

/** One bidirectional call; it is also the ServerStream its handler sends through. onCancel
 *  functions run once when the stream closes for any reason. */
class BidiCall implements StreamListener, MessageSink, ServerStream {
  readonly #stream: H2Stream;
  readonly #reader: GrpcMessageReader;
  readonly #handlers: { onMessage(msg: Uint8Array): void; onEnd(): void };
  #ended = false;
  #failed = false;
  #cancelFns: Array<() => void> = [];
  #drainFns: Array<() => void> = [];
  readonly #stats: CallStats | null;

  constructor(stream: H2Stream, h: StreamHandler, ctx: CallContext, max: number, stats: CallStats | null) {
    this.#stream = stream;
    this.#reader = new GrpcMessageReader(max);
    this.#stats = stats;
    stats?.start();
    stream.respond(RESPONSE_HEADERS, false);
    this.#handlers = h(this, ctx);
  }

  send(msg: Uint8Array): boolean {
    if (this.#ended || this.#stream.closed) return false;
    this.#stats?.sent(1);
    grpcTraffic.sentBytes += msg.length;
    writeGrpcMessage(this.#stream, msg);
    return this.#queueOk();
  }

  sendFramed(framed: Buffer, messages: number): boolean {
    if (this.#ended || this.#stream.closed) return false;
    countSentFramed(framed.length, messages);
    this.#stats?.sent(messages);
    // Pieces below copyPayloadBytesMax are copied into the session's (reused) output buffers; only what
    // the flow-control windows hold back is copied apart. A fresh copy of the whole write (what the
    // node:http2 transport, since removed, did) cost a full mark-compact every ~80 ms under paced watch
    // fan-out, whose writes pass 64 KiB.
    this.#stream.writeCopied(framed, h2Limits.copyPayloadBytesMax - 1);
    return this.#queueOk();
  }

  #queueOk(): boolean {
    const ok = this.#stream.queuedBytes < h2Limits.streamSendQueueBytesHigh;
    if (!ok) this.#stream.drainWanted = true;
    return ok;
  }

  onDrain(fn: () => void): void;
  onDrain(stream: H2Stream): void;
  /** As a ServerStream: registers fn. As the H2Stream's listener: runs them. */
  onDrain(arg: (() => void) | H2Stream): void {
    if (typeof arg === 'function') this.#drainFns.push(arg);
    else for (const fn of this.#drainFns) fn();
  }

  end(code: GrpcCode, message?: string): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#stats?.handled(code);
    if (!this.#stream.closed) this.#stream.end(trailersBlock(code, message ?? ''));
  }

  get closed(): boolean {
    return this.#ended || this.#stream.closed;
  }

  onCancel(fn: () => void): void {
    this.#cancelFns.push(fn);
  }

  onData(_stream: H2Stream, buf: Buffer, start: number, end: number): void {
    if (this.#failed) return;
    try {
      this.#reader.push(buf, start, end, this);
    } catch (e) {
      this.#failed = true;
      this.#fail(e);
    }
  }

  #fail(e: unknown): void {
    const err = e instanceof EtcdError ? e : new EtcdError(GrpcCode.Internal, String(e));
    this.end(err.code, err.message);
  }

  onMessage(msg: Uint8Array): void {
    grpcTraffic.receivedBytes += msg.length;
    this.#stats?.received();
    this.#handlers.onMessage(msg);
  }

  onEnd(): void {
    // A throwing handler fails its own call, not the connection (the session would answer GOAWAY).
    try {
      this.#handlers.onEnd();
    } catch (e) {
      this.#fail(e);
    }
  }

  onClose(): void {
    this.#ended = true;
    // Closed without a status of ours: the client went away (grpc-go's handler returns Canceled).
    this.#stats?.handled(GrpcCode.Canceled);
    const fns = this.#cancelFns;
    this.#cancelFns = [];
    for (const fn of fns) fn();
  }
}
