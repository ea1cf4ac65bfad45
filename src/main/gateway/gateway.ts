// The HTTP/JSON gateway core, independent of the HTTP server that carries it (node:http on the client
// port, uWebSockets.js on --listen-client-http-urls, WebSocket messages). It calls the same
// UnaryHandler/StreamHandler functions the gRPC transports serve, in process: JSON -> protobuf bytes
// -> handler -> protobuf bytes -> JSON, with no gRPC framing, HTTP/2 or loopback connection.
//
// Behaviour copied from etcd 3.4's grpc-gateway (v1):
//  * unary: the first JSON value of the body is the request (an empty body is an empty request);
//    the answer is the response message, or {"error":m,"message":m,"code":N} with the HTTP status of
//    grpc-gateway's HTTPStatusFromCode.
//  * streams: each JSON value of the body is one request message; a first one that does not decode
//    is answered as an error (gRPC code Unknown, 500); later bad ones only stop reading. Every
//    response is one line {"result":...}; a stream that ends with an error writes one line
//    {"error":{"grpc_code":..,"http_code":..,"message":..,"http_status":..}}.
import { EtcdError, GrpcCode } from '../../shared/errors';
import { CallContext, failureStatus, InProcessStream, MethodKind, NO_CONTEXT, StreamHandler, UnaryMethod, unknownMethodMessage } from '../net/rpc';
import { JsonCodec, JsonInputError, MessageCodec, goJsonString } from './jsonpb';
import { Route, routeMap } from './routes';
import { scanFirstValue, parseFirstValue, quoteLongNumbers } from './json_scan';

/** What the gRPC transport's method table exposes to the gateway (GrpcMethods, rpc.ts). */
export interface HandlerSource {
  unaryMethod(method: string): UnaryMethod | undefined;
  streamHandler(method: string): StreamHandler | undefined;
  methodPaths(): string[];
  /** True while the audit log is on (GrpcMethods.auditing): carriers then pass the client's address. */
  readonly auditing?: boolean;
}

/** ctx with the client's address, for the audit log (carriers call it only while auditing). */
export function withRemote(ctx: CallContext, remoteAddress: string): CallContext {
  return { ...ctx, remoteAddress };
}

export interface GatewayOptions {
  /** Largest request message after JSON -> protobuf, as the gRPC server's limit (--max-request-bytes + overhead). */
  recvMessageBytesMax: number;
}

export interface GatewayReply {
  status: number;
  body: string;
}

/** grpc-gateway v1's HTTPStatusFromCode. */
export function httpStatusFromCode(code: number): number {
  switch (code) {
    case GrpcCode.OK: return 200;
    case GrpcCode.Canceled: return 408;
    case GrpcCode.Unknown: return 500;
    case GrpcCode.InvalidArgument: return 400;
    case GrpcCode.DeadlineExceeded: return 504;
    case GrpcCode.NotFound: return 404;
    case GrpcCode.AlreadyExists: return 409;
    case GrpcCode.PermissionDenied: return 403;
    case GrpcCode.Unauthenticated: return 401;
    case GrpcCode.ResourceExhausted: return 429;
    case GrpcCode.FailedPrecondition: return 412;
    case GrpcCode.Aborted: return 409;
    case GrpcCode.OutOfRange: return 400;
    case GrpcCode.Unimplemented: return 501;
    case GrpcCode.Internal: return 500;
    case GrpcCode.Unavailable: return 503;
    case GrpcCode.DataLoss: return 500;
    default: return 500;
  }
}

export const HTTP_STATUS_TEXT: Record<number, string> = {
  200: 'OK', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  408: 'Request Timeout', 409: 'Conflict', 412: 'Precondition Failed', 413: 'Payload Too Large', 429: 'Too Many Requests',
  500: 'Internal Server Error', 501: 'Not Implemented', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};

/** etcd's gateway error body: {"error":m,"message":m,"code":N}. */
export function errorBody(code: number, message: string): string {
  const m = goJsonString(message);
  return `{"error":${m},"message":${m},"code":${code}}`;
}

export function errorReply(code: number, message: string): GatewayReply {
  return { status: httpStatusFromCode(code), body: errorBody(code, message) };
}

/** One line of a stream that ended with an error (grpc-gateway's StreamError). */
export function streamErrorLine(code: number, message: string): string {
  const http = httpStatusFromCode(code);
  return `{"error":{"grpc_code":${code},"http_code":${http},"message":${goJsonString(message)},"http_status":"${HTTP_STATUS_TEXT[http] ?? ''}"}}\n`;
}

/** Where a stream's output goes: an HTTP response, a WebSocket, ... */
export interface StreamSink {
  /** One response message as JSON (without the {"result":..} envelope). false: slow down. */
  result(json: string): boolean;
  /** The call ended: OK, or an error the sink reports its own way. Called once. */
  end(code: number, message: string): void;
}

/**
 * The call context of a gateway request, as etcd 3.4's grpc-gateway makes it: the `Authorization`
 * header becomes the `authorization` metadata and `Grpc-Metadata-Token` the `token` metadata,
 * which the auth gate reads as the token (etcd's AuthInfoFromCtx: `token` first). No header: the
 * shared empty context.
 */
export function gatewayContext(authorization: string | undefined, token: string | undefined): CallContext {
  if (!authorization && !token) return NO_CONTEXT;
  return { deadlineMs: 0, metadata: { authorization: authorization || undefined, token: token || undefined } };
}

/** A resolved route: the handler and both codecs, looked up once per request. */
interface Bound {
  route: Route;
  req: MessageCodec;
  resp: MessageCodec;
}

export class Gateway {
  readonly #src: HandlerSource;
  readonly #codec: JsonCodec;
  readonly #opts: GatewayOptions;
  readonly #routes: Map<string, Route>;
  readonly #bound = new Map<Route, Bound | null>();

  constructor(src: HandlerSource, codec: JsonCodec, opts: GatewayOptions) {
    this.#src = src;
    this.#codec = codec;
    this.#opts = opts;
    this.#routes = routeMap();
  }

  /** The transport's handlers, for callers that speak protobuf themselves (binary WebSocket frames). */
  get handlers(): HandlerSource {
    return this.#src;
  }

  get recvMessageBytesMax(): number {
    return this.#opts.recvMessageBytesMax;
  }

  /** Whether calls are audited (see HandlerSource.auditing). */
  get auditing(): boolean {
    return this.#src.auditing === true;
  }

  route(path: string): Route | undefined {
    return this.#routes.get(path);
  }

  /** Codecs of a route, or null when no .proto defines its messages (a service not added yet). */
  #bind(route: Route): Bound | null {
    let b = this.#bound.get(route);
    if (b === undefined) {
      const req = this.#codec.message(route.requestType);
      const resp = this.#codec.message(route.responseType);
      b = req && resp ? { route, req, resp } : null;
      this.#bound.set(route, b);
    }
    return b;
  }

  #unimplemented(route: Route): GatewayReply {
    return errorReply(GrpcCode.Unimplemented, unknownMethodMessage(route.method, this.#src.methodPaths()));
  }

  /** JSON value -> request bytes, with the gRPC server's size limit. */
  #encode(b: Bound, value: unknown): Uint8Array {
    // An empty body (undefined) or a JSON null leaves the request empty, as jsonpb does.
    const bytes = b.req.encodeJson(value === undefined || value === null ? {} : value);
    if (bytes.length > this.#opts.recvMessageBytesMax) {
      throw new EtcdError(GrpcCode.ResourceExhausted, `grpc: received message larger than max (${bytes.length} vs. ${this.#opts.recvMessageBytesMax})`);
    }
    return bytes;
  }

  /** A unary route with a complete body. Never rejects: every failure is an error reply. */
  unary(route: Route, body: string, ctx: CallContext = NO_CONTEXT): Promise<GatewayReply> | GatewayReply {
    const b = this.#bind(route);
    const h = this.#src.unaryMethod(route.method);
    if (!b || !h) return this.#unimplemented(route);
    const parsed = parseFirstValue(body);
    if ('error' in parsed) return errorReply(GrpcCode.InvalidArgument, parsed.error);
    return this.call(b, h, parsed.value, ctx);
  }

  /** A unary call with an already parsed JSON value (the WebSocket API). */
  unaryValue(route: Route, value: unknown, ctx: CallContext = NO_CONTEXT): Promise<GatewayReply> | GatewayReply {
    const b = this.#bind(route);
    const h = this.#src.unaryMethod(route.method);
    if (!b || !h) return this.#unimplemented(route);
    return this.call(b, h, value, ctx);
  }

  call(b: Bound, m: UnaryMethod, value: unknown, ctx: CallContext = NO_CONTEXT): Promise<GatewayReply> | GatewayReply {
    let req: Uint8Array;
    try {
      req = this.#encode(b, value);
    } catch (e) {
      if (e instanceof JsonInputError) return errorReply(GrpcCode.InvalidArgument, e.message);
      return failure(e);
    }
    let out: Promise<Uint8Array> | Uint8Array;
    try {
      out = m.handler(req, ctx);
    } catch (e) {
      return failure(e, m.kind);
    }
    if (out instanceof Uint8Array) return { status: 200, body: b.resp.decodeToJson(out) };
    return out.then((bytes) => ({ status: 200, body: b.resp.decodeToJson(bytes) }), (e: unknown) => failure(e, m.kind));
  }

  /**
   * Opens a streaming route. `first` is the first request as JSON (undefined: none, the body was
   * empty); an undecodable one is an error reply and nothing is opened. Otherwise the returned call
   * takes later requests (send), the end of the client's input (close) and the client going away (cancel).
   */
  openStream(route: Route, first: unknown, hasFirst: boolean, sink: StreamSink, ctx: CallContext = NO_CONTEXT): GatewayStream | GatewayReply {
    const b = this.#bind(route);
    const h = this.#src.streamHandler(route.method);
    if (!b || !h) return this.#unimplemented(route);
    let firstBytes: Uint8Array | null = null;
    // A server-streaming call has exactly one request: an empty body is an empty request.
    if (hasFirst || route.kind === 'server-stream') {
      try {
        firstBytes = this.#encode(b, first);
      } catch (e) {
        // grpc-gateway returns the first decode error as it is: not a status, so Unknown.
        if (e instanceof JsonInputError) return errorReply(GrpcCode.Unknown, e.message);
        return failure(e);
      }
    }
    const call = new GatewayStream(b, sink, this);
    try {
      call.start(h, ctx);
    } catch (e) {
      return failure(e);
    }
    if (firstBytes) call.deliver(firstBytes);
    if (route.kind === 'server-stream') call.close();
    return call;
  }

  encodeForStream(b: Bound, value: unknown): Uint8Array | null {
    try {
      return this.#encode(b, value);
    } catch {
      return null;
    }
  }
}

/** The error reply of a failed call; a write is never answered with a status clients retry (rpc.ts MethodKind). */
function failure(e: unknown, kind: MethodKind = 'read'): GatewayReply {
  const st = failureStatus(e, kind);
  return errorReply(st.code, st.message);
}

export class GatewayStream extends InProcessStream {
  readonly #b: Bound;
  readonly #sink: StreamSink;
  readonly #gw: Gateway;

  constructor(b: Bound, sink: StreamSink, gw: Gateway) {
    super();
    this.#b = b;
    this.#sink = sink;
    this.#gw = gw;
  }

  protected writeMessage(msg: Uint8Array): boolean {
    return this.#sink.result(this.#b.resp.decodeToJson(msg));
  }

  protected writeEnd(code: number, message: string): void {
    this.#sink.end(code, message);
  }

  /** One more request as JSON; an undecodable one stops reading, as grpc-gateway does. */
  sendJson(value: unknown): void {
    const bytes = this.#gw.encodeForStream(this.#b, value);
    if (bytes === null) this.close();
    else this.deliver(bytes);
  }
}

/**
 * Splits a request body that arrives in chunks into JSON values, as a json.Decoder reads a stream.
 * Bounded: a value may not exceed `maxBytes` (the caller's body limit).
 */
export class JsonValueSplitter {
  #pending = '';
  readonly #maxBytes: number;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Appends text; returns the complete values now available, or an error message. */
  push(text: string, last: boolean): { values: unknown[]; error?: string } {
    this.#pending += text;
    const values: unknown[] = [];
    for (;;) {
      const r = scanFirstValue(last ? this.#pending + ' ' : this.#pending);
      if (r.kind === 'empty') {
        this.#pending = '';
        return { values };
      }
      if (r.kind === 'incomplete') {
        if (last) return { values, error: 'unexpected EOF' };
        if (this.#pending.length > this.#maxBytes) return { values, error: 'request body too large' };
        return { values };
      }
      if (r.kind === 'error') return { values, error: r.message };
      values.push(JSON.parse(quoteLongNumbers(this.#pending.slice(0, r.end))));
      this.#pending = this.#pending.slice(r.end);
    }
  }
}

/**
 * A streaming call fed by a request body that arrives in pieces (HTTP on either port, the WebSocket
 * proxy): the first JSON value opens the call (an empty body opens it with no request), later values
 * are more requests, and the end of the body or a value that does not parse half-closes it. After
 * that, more of the body is ignored.
 */
export class StreamBody {
  readonly #gw: Gateway;
  readonly #route: Route;
  readonly #sink: StreamSink;
  readonly #split: JsonValueSplitter;
  readonly #ctx: CallContext;
  #call: GatewayStream | null = null;
  #stopped = false;

  constructor(gw: Gateway, route: Route, sink: StreamSink, bodyBytesMax: number, ctx: CallContext = NO_CONTEXT) {
    this.#gw = gw;
    this.#ctx = ctx;
    this.#route = route;
    this.#sink = sink;
    this.#split = new JsonValueSplitter(bodyBytesMax);
  }

  /** The open call; null until the first request arrived. */
  get call(): GatewayStream | null {
    return this.#call;
  }

  /** True once the body was read to its end or to a value that does not parse. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** More of the body (`last`: its end). Returns the answer when the call could not open (the
   * caller sends it instead of a stream), else null. */
  push(text: string, last: boolean): GatewayReply | null {
    if (this.#stopped) return null;
    const r = this.#split.push(text, last);
    if (r.error !== undefined || last) this.#stopped = true;
    let i = 0;
    if (this.#call === null) {
      // The first request does not parse: answered as grpc-gateway does, before any stream.
      if (r.values.length === 0 && r.error !== undefined) return errorReply(GrpcCode.Unknown, r.error); // HTTP 500
      if (r.values.length === 0 && !last) return null; // wait for the first request
      const opened = this.#gw.openStream(this.#route, r.values[0], r.values.length > 0, this.#sink, this.#ctx);
      if (!(opened instanceof GatewayStream)) return opened;
      this.#call = opened;
      i = 1;
    }
    for (; i < r.values.length; i++) this.#call.sendJson(r.values[i]);
    if (this.#stopped) this.#call.close();
    return null;
  }
}
