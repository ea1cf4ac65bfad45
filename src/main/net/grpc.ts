// gRPC over HTTP/2 cleartext (prior knowledge), on node:http2. This is the transport seam: the
// server registers handlers by method path and never touches HTTP/2 itself, so a purpose-built
// framer can replace node:http2 later without changing any handler (see docs/ARCHITECTURE.md).
//
// Wire format of a gRPC message inside DATA frames:
//   +--------+-----------------+------------------+
//   | u8 cmp | u32 BE length n | n bytes protobuf |
//   +--------+-----------------+------------------+
// A unary call: request headers, one message, END_STREAM; response headers, one message,
// trailers {grpc-status, grpc-message}. Errors are "trailers-only" responses.
import * as http2 from 'node:http2';
import { Errors, EtcdError, GrpcCode } from '../../shared/errors';
import { GrpcMessageReader } from './h2/grpc_message';

export interface CallContext {
  /** Absolute deadline in ms (Date.now() clock), or 0 when the client set none. */
  deadlineMs: number;
  metadata: http2.IncomingHttpHeaders;
  /** Unary calls: registers fn to run if the call ends before it is answered (client cancel, reset
   * or deadline), so a handler that waits (Lock, Campaign) can stop and clean up. */
  onCancel?: (fn: () => void) => void;
  /** The common name of the client's verified TLS certificate (--client-cert-auth), for auth (issue 16). */
  peerCertificateCN?: string;
}

export type UnaryHandler = (body: Uint8Array, ctx: CallContext) => Promise<Uint8Array> | Uint8Array;

/**
 * How a unary method may be answered when its outcome is not known (issue 13). etcd's clients retry
 * some statuses for every method: clientv3 3.4 resends on DEADLINE_EXCEEDED or CANCELLED whenever its
 * own deadline has not passed, and the `etcd3` npm client retries UNAVAILABLE, DEADLINE_EXCEEDED and
 * others. A write answered with one of those while its proposal may still be applied can be applied
 * twice. So:
 * - 'read' (reads, and calls a client may repeat without harm): at the server's deadline the call
 *   answers DEADLINE_EXCEEDED at once, as etcd's read paths return the context's error.
 * - 'write' (the default: refuse by default): the server never answers DEADLINE_EXCEEDED or CANCELLED.
 *   At the deadline it only runs the call's cancel hooks (a proposal not yet handed to Raft is
 *   dropped); the client's own deadline, which is never later than ours, reports the timeout. A
 *   failure the handler returns with either code is answered as etcd's own proposal timeout,
 *   UNAVAILABLE "etcdserver: request timed out", which clientv3 does not retry for a mutation.
 */
export type MethodKind = 'read' | 'write';

/** A registered unary method: its handler (the guard included) and its kind. */
export interface UnaryMethod {
  readonly handler: UnaryHandler;
  readonly kind: MethodKind;
}

/** The status a failed call is answered with: for a write, never one a client retries on its own. */
export function failureStatus(e: unknown, kind: MethodKind): { code: number; message: string } {
  const st = errorStatus(e);
  if (kind === 'write' && (st.code === GrpcCode.DeadlineExceeded || st.code === GrpcCode.Canceled)) return Errors.timeout().toWire();
  return st;
}

/** A bidirectional stream: the handler gets each decoded message and a sender. */
export interface ServerStream {
  /** Queues one message. The transport may keep a reference to `msg` until it is written (the h2
   * transport does for messages of 4 KiB and more): do not reuse its memory after the call. */
  send(msg: Uint8Array): boolean;
  /** Optional: queues bytes that are already gRPC-framed messages (prefix ‖ message, back to back;
   * `messages` of them), as one write. Unlike send(), framed is the caller's again when the call
   * returns: the transport copies whatever it cannot write at once. Returns false on backpressure, as
   * send(). */
  sendFramed?(framed: Buffer, messages: number): boolean;
  /** Ends the call with a status. */
  end(code: GrpcCode, message?: string): void;
  readonly closed: boolean;
  onCancel(fn: () => void): void;
  /** Called each time the transport can take more after send() returned false (optional: a transport
   * without it is treated as never applying backpressure). */
  onDrain?(fn: () => void): void;
}
/** See GrpcMethods.setGuard. */
export interface MethodGuard {
  unary(path: string, body: Uint8Array): void;
  stream(path: string): void;
}

export type StreamHandler = (stream: ServerStream, ctx: CallContext) => {
  onMessage(msg: Uint8Array): void;
  onEnd(): void;
};

export interface GrpcTransportOptions {
  /** Largest accepted message, in bytes (etcd: --max-request-bytes + 512 KiB of gRPC overhead). */
  recvMessageBytesMax: number;
  streamsPerConnMax: number;
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

/** grpc-go's wording for a path no handler serves: "unknown service S" or "unknown method M for service S". */
export function unknownMethodMessage(path: string, knownPaths: Iterable<string>): string {
  const m = /^\/([^/]+)\/([^/]+)$/.exec(path);
  if (!m) return `malformed method name: "${path}"`;
  const prefix = `/${m[1]}/`;
  const known = [...knownPaths].some((p) => p.startsWith(prefix));
  return known ? `unknown method ${m[2]} for service ${m[1]}` : `unknown service ${m[1]}`;
}

/** grpc-timeout: "<digits><unit>", unit in H M S m u n. Returns ms, or 0 when absent/invalid. */
export function parseGrpcTimeout(v: string | string[] | undefined): number {
  if (typeof v !== 'string' || v.length < 2) return 0;
  const n = Number(v.slice(0, -1));
  if (!Number.isFinite(n) || n < 0) return 0;
  const unitMs: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };
  const u = unitMs[v[v.length - 1]];
  return u === undefined ? 0 : Math.max(1, n * u);
}

/**
 * The absolute deadline (Date.now() clock, ms) of a call with this grpc-timeout, or 0 for none. One
 * millisecond is added because Date.now() truncates: the headers arrived up to 1 ms after the value it
 * returns, and the client's deadline runs from when it sent them, so ours must never come first.
 */
export function deadlineOf(grpcTimeout: string | string[] | undefined): number {
  const timeoutMs = parseGrpcTimeout(grpcTimeout);
  return timeoutMs > 0 ? Date.now() + timeoutMs + 1 : 0;
}

const RESPONSE_HEADERS = { ':status': 200, 'content-type': 'application/grpc' };

/** gRPC message bytes received from and sent to clients by either transport, for /metrics
 * (etcd_network_client_grpc_received_bytes_total / _sent_bytes_total). Counted as etcd's gRPC codec
 * counts them: each message's protobuf bytes, without gRPC's 5-byte length prefix. */
export const grpcTraffic = { receivedBytes: 0, sentBytes: 0 };

/** Counts what ServerStream.sendFramed sent: `messages` framed messages, `framedBytes` with their prefixes. */
export function countSentFramed(framedBytes: number, messages: number): void {
  grpcTraffic.sentBytes += framedBytes - 5 * messages;
}

/** The method table of a gRPC transport: what it serves, and what the HTTP/JSON gateway calls in
 * process (gateway.ts HandlerSource). Both transports (this file, grpc_h2.ts) extend it. */
export class GrpcMethods {
  readonly #unary = new Map<string, UnaryMethod>();
  readonly #streams = new Map<string, StreamHandler>();
  #guard: MethodGuard | null = null;

  /** A check before every call (etcd's interceptors, e.g. what a learner may serve): throwing an
   * EtcdError refuses the call with its status. Applies to handlers added before and after. */
  setGuard(g: MethodGuard): void {
    this.#guard = g;
  }

  /** Registers a unary method; kind 'write' (the default) unless every call of it is safe to repeat. */
  addUnary(path: string, h: UnaryHandler, kind: MethodKind = 'write'): void {
    const handler: UnaryHandler = (body, ctx) => {
      this.#guard?.unary(path, body);
      return h(body, ctx);
    };
    this.#unary.set(path, { handler, kind });
  }

  addStream(path: string, h: StreamHandler): void {
    this.#streams.set(path, (ss, ctx) => {
      try {
        this.#guard?.stream(path);
      } catch (e) {
        const st = errorStatus(e);
        ss.end(st.code, st.message);
        return { onMessage: () => undefined, onEnd: () => undefined };
      }
      return h(ss, ctx);
    });
  }

  /** The method registered for a path: handler and kind (both transports and the gateway call it). */
  unaryMethod(path: string): UnaryMethod | undefined {
    return this.#unary.get(path);
  }

  streamHandler(path: string): StreamHandler | undefined {
    return this.#streams.get(path);
  }

  methodPaths(): string[] {
    return [...this.#unary.keys(), ...this.#streams.keys()];
  }

  /** grpc-go's Unimplemented status message for a path no handler serves. */
  unknownMethodMessage(path: string): string {
    return unknownMethodMessage(path, this.methodPaths());
  }
}

export class GrpcTransport extends GrpcMethods {
  readonly server: http2.Http2Server;
  #opts: GrpcTransportOptions;

  constructor(opts: GrpcTransportOptions) {
    super();
    this.#opts = opts;
    this.server = http2.createServer({
      settings: { maxConcurrentStreams: opts.streamsPerConnMax, maxHeaderListSize: 64 * 1024 },
      maxSessionMemory: 64,
    });
    this.server.on('stream', (stream, headers) => this.#onStream(stream, headers));
    this.server.on('sessionError', (err) => opts.onError?.(err));
  }

  #onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on('error', () => { /* RST from the client: nothing to clean beyond the stream */ });
    const path = headers[':path'] ?? '';
    const ctype = headers['content-type'] ?? '';
    if (headers[':method'] !== 'POST' || !ctype.startsWith('application/grpc')) {
      stream.respond({ ':status': 415, 'content-type': 'text/plain' }, { endStream: true });
      return;
    }
    const ctx: CallContext = { deadlineMs: deadlineOf(headers['grpc-timeout']), metadata: headers };
    const unary = this.unaryMethod(path);
    if (unary) return this.#serveUnary(stream, unary, ctx);
    const bidi = this.streamHandler(path);
    if (bidi) return this.#serveStream(stream, bidi, ctx);
    sendStatus(stream, GrpcCode.Unimplemented, this.unknownMethodMessage(path));
  }

  #serveUnary(stream: http2.ServerHttp2Stream, h: UnaryMethod, ctx: CallContext): void {
    const reader = new GrpcMessageReader(this.#opts.recvMessageBytesMax);
    let got: Uint8Array | null = null;
    let failed = false;
    const sink = {
      onMessage: (m: Uint8Array): void => {
        if (got !== null) throw new EtcdError(GrpcCode.Unimplemented, 'grpc: more than one message in a unary call');
        grpcTraffic.receivedBytes += m.length;
        got = m;
      },
    };
    stream.on('data', (chunk: Buffer) => {
      if (failed) return;
      try {
        reader.push(chunk, 0, chunk.length, sink);
      } catch (e) {
        failed = true;
        sendError(stream, e);
      }
    });
    stream.on('end', () => {
      if (failed) return;
      if (got === null || reader.pending()) {
        sendStatus(stream, GrpcCode.Internal, 'grpc: error while reading the request: unexpected EOF');
        return;
      }
      this.#runUnary(stream, h, got, ctx);
    });
  }

  #runUnary(stream: http2.ServerHttp2Stream, m: UnaryMethod, body: Uint8Array, ctx: CallContext): void {
    let timer: NodeJS.Timeout | null = null;
    let answered = false;
    const cancelFns: Array<() => void> = [];
    const cancel = (): void => {
      if (answered) return;
      answered = true;
      for (const fn of cancelFns.splice(0)) fn();
    };
    ctx.onCancel = (fn) => { cancelFns.push(fn); };
    stream.once('close', cancel);
    if (ctx.deadlineMs > 0) {
      timer = setTimeout(() => {
        timer = null;
        // A read answers its deadline; a write only stops waiting (see MethodKind).
        if (m.kind === 'read') sendStatus(stream, GrpcCode.DeadlineExceeded, 'context deadline exceeded');
        for (const fn of cancelFns.splice(0)) fn();
        if (m.kind === 'read') answered = true;
      }, Math.max(0, ctx.deadlineMs - Date.now()));
    }
    const done = (out: Uint8Array): void => {
      answered = true;
      if (timer) clearTimeout(timer);
      sendMessage(stream, out);
    };
    const fail = (e: unknown): void => {
      answered = true;
      if (timer) clearTimeout(timer);
      const st = failureStatus(e, m.kind);
      sendStatus(stream, st.code, st.message);
    };
    try {
      const r = m.handler(body, ctx);
      if (r instanceof Uint8Array) done(r);
      else r.then(done, fail);
    } catch (e) {
      fail(e);
    }
  }

  #serveStream(stream: http2.ServerHttp2Stream, h: StreamHandler, ctx: CallContext): void {
    stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
    let ended = false;
    const cancelFns: Array<() => void> = [];
    const ss: ServerStream = {
      send: (msg) => (ended || stream.destroyed ? false : stream.write(frame(msg))),
      sendFramed: (framed, messages) => {
        if (ended || stream.destroyed) return false;
        countSentFramed(framed.length, messages);
        return stream.write(Buffer.from(framed)); // node:http2 keeps what it is given until it is written
      },
      end: (code, message) => {
        if (ended) return;
        ended = true;
        if (stream.destroyed) return;
        stream.once('wantTrailers', () => stream.sendTrailers(statusTrailers(code, message ?? '')));
        stream.end();
      },
      get closed() { return ended || stream.destroyed; },
      onCancel: (fn) => { cancelFns.push(fn); },
      onDrain: (fn) => { stream.on('drain', fn); },
    };
    const h2 = h(ss, ctx);
    const handlers = { onMessage: (m: Uint8Array) => { grpcTraffic.receivedBytes += m.length; h2.onMessage(m); }, onEnd: () => h2.onEnd() };
    const reader = new GrpcMessageReader(this.#opts.recvMessageBytesMax);
    stream.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk, 0, chunk.length, handlers);
      } catch (e) {
        const err = e instanceof EtcdError ? e : new EtcdError(GrpcCode.Internal, String(e));
        ss.end(err.code, err.message);
      }
    });
    stream.on('end', () => handlers.onEnd());
    stream.on('close', () => {
      ended = true;
      for (const fn of cancelFns) fn();
    });
  }
}

function frame(msg: Uint8Array): Buffer {
  grpcTraffic.sentBytes += msg.length;
  const out = Buffer.allocUnsafe(5 + msg.length);
  out[0] = 0;
  out.writeUInt32BE(msg.length, 1);
  out.set(msg, 5);
  return out;
}

function statusTrailers(code: number, message: string): http2.OutgoingHttpHeaders {
  return message ? { 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(message) } : { 'grpc-status': String(code) };
}

function sendMessage(stream: http2.ServerHttp2Stream, msg: Uint8Array): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
  stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
  stream.end(frame(msg));
}

export function sendStatus(stream: http2.ServerHttp2Stream, code: GrpcCode, message: string): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond({ ...RESPONSE_HEADERS, ...statusTrailers(code, message) }, { endStream: true });
}

/** The gRPC status of a handler's failure: an EtcdError or a {code, message} from a worker keeps
 *  its code and message; anything else is UNKNOWN. Shared by both transports. */
export function errorStatus(e: unknown): { code: number; message: string } {
  if (e instanceof EtcdError) return { code: e.code, message: e.message };
  if (e && typeof e === 'object' && 'code' in e && 'message' in e && typeof (e as { code: unknown }).code === 'number') {
    return e as { code: number; message: string };
  }
  return { code: GrpcCode.Unknown, message: e instanceof Error ? e.message : String(e) };
}

function sendError(stream: http2.ServerHttp2Stream, e: unknown): void {
  const st = errorStatus(e);
  sendStatus(stream, st.code, st.message);
}
