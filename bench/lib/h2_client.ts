// A lean unary gRPC client for load generation over raw node:http2 (no grpc-js): one
// ClientHttp2Session per connection, many concurrent streams on it. Callers pass request bodies that
// are already gRPC-framed (5-byte prefix + protobuf, see frameGrpc), built once up front; the response
// body is discarded unread, and the call's outcome is the grpc-status of the trailers (or of the
// headers of a trailers-only response). A call allocates only what node:http2 itself allocates per
// stream: the listeners are bound once per H2Caller, not per call.
import * as http2 from 'node:http2';

/** The status of calls that end without a grpc-status (the stream was reset or the session failed). */
export const statusNone = -1;

/** Prefixes a protobuf message with the 5-byte gRPC message header (uncompressed, big-endian length). */
export function frameGrpc(message: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(5 + message.length);
  b[0] = 0;
  b.writeUInt32BE(message.length, 1);
  b.set(message, 5);
  return b;
}

/** Frames every message into one contiguous buffer and returns views of it (one allocation for the table). */
export function frameAll(messages: Uint8Array[]): Buffer[] {
  let total = 0;
  for (const m of messages) total += 5 + m.length;
  const all = Buffer.allocUnsafe(total);
  const out: Buffer[] = new Array(messages.length);
  let at = 0;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    all[at] = 0;
    all.writeUInt32BE(m.length, at + 1);
    all.set(m, at + 5);
    out[i] = all.subarray(at, at + 5 + m.length);
    at += 5 + m.length;
  }
  return out;
}

const requestOptions: http2.ClientSessionRequestOptions = { endStream: false };

/** A grpc-message header value (percent-encoded by the server); as is if it is not valid percent-encoding. */
export function percentDecode(s: string): string {
  try { return decodeURIComponent(s); } catch { return s; }
}

export class H2Connection {
  readonly #session: http2.ClientHttp2Session;
  readonly #endpoint: string;
  readonly #headers: Map<string, http2.OutgoingHttpHeaders>; // gRPC method path -> request headers, built once
  #error: string | null;

  constructor(endpoint: string) {
    this.#error = null;
    this.#endpoint = endpoint;
    this.#headers = new Map();
    this.#session = http2.connect(`http://${endpoint}`, {
      settings: { enablePush: false, initialWindowSize: 4 * 1024 * 1024 },
    });
    this.#session.on('error', (e: Error) => { this.#error ??= e.message; });
    this.#session.on('goaway', (code: number) => { this.#error ??= `GOAWAY ${code}`; });
  }

  /** The request headers of a gRPC method (e.g. /etcdserverpb.KV/Put), one object per path. */
  headers(path: string): http2.OutgoingHttpHeaders {
    let h = this.#headers.get(path);
    if (h === undefined) {
      h = {
        ':method': 'POST',
        ':scheme': 'http',
        ':authority': this.#endpoint,
        ':path': path,
        'content-type': 'application/grpc',
        te: 'trailers',
      };
      this.#headers.set(path, h);
    }
    return h;
  }

  /** Resolves once the HTTP/2 connection (and its SETTINGS exchange) is up. */
  waitForReady(timeoutMs: number): Promise<void> {
    const s = this.#session;
    if (s.connecting === false && !s.destroyed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { cleanup(); reject(new Error(`h2 connect timeout after ${timeoutMs} ms`)); }, timeoutMs);
      const onConnect = () => { cleanup(); resolve(); };
      const onError = (e: Error) => { cleanup(); reject(e); };
      const cleanup = () => { clearTimeout(timer); s.off('connect', onConnect); s.off('error', onError); };
      s.once('connect', onConnect);
      s.once('error', onError);
    });
  }

  /** The session's first error, if any (for error messages of calls without a status). */
  get error(): string | null {
    return this.#error;
  }

  /** Opens one stream and sends the framed request on it; the caller attaches its listeners. */
  open(path: string, framed: Buffer): http2.ClientHttp2Stream {
    const st = this.#session.request(this.headers(path), requestOptions);
    st.end(framed);
    return st;
  }

  /** Opens a long-lived (bidi) stream; the caller writes framed messages to it. */
  openStream(path: string): http2.ClientHttp2Stream {
    return this.#session.request(this.headers(path), requestOptions);
  }

  close(): void {
    this.#session.close();
  }
}

export type H2Done = (status: number, message: string | null) => void;

/**
 * One closed-loop client: at most one call in flight, so its stream listeners are bound once and
 * reused for every call. `done` gets the grpc-status (0 = OK, statusNone when the stream ended
 * without one) and, on failure, grpc-message or the stream error.
 */
export class H2Caller {
  readonly #conn: H2Connection;
  readonly #done: H2Done;
  #status: number;
  #message: string | null;
  readonly #onResponse: (headers: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader) => void;
  readonly #onTrailers: (trailers: http2.IncomingHttpHeaders) => void;
  readonly #onError: (e: Error) => void;
  readonly #onClose: () => void;

  constructor(conn: H2Connection, done: H2Done) {
    this.#conn = conn;
    this.#done = done;
    this.#status = statusNone;
    this.#message = null;
    // A trailers-only response carries grpc-status in its only HEADERS frame.
    this.#onResponse = (h) => {
      if (h['grpc-status'] !== undefined) this.#take(h);
      else if (h[':status'] !== 200) this.#message ??= `HTTP ${h[':status']}`;
    };
    this.#onTrailers = (h) => { this.#take(h); };
    this.#onError = (e) => { this.#message ??= e.message; };
    this.#onClose = () => {
      const status = this.#status;
      const message = status === 0 ? null : (this.#message ?? this.#conn.error ?? 'stream closed without grpc-status');
      this.#status = statusNone;
      this.#message = null;
      this.#done(status, message);
    };
  }

  #take(h: http2.IncomingHttpHeaders): void {
    const s = h['grpc-status'];
    this.#status = typeof s === 'string' ? Number(s) : statusNone;
    if (this.#status !== 0) {
      const m = h['grpc-message'];
      this.#message = typeof m === 'string' ? percentDecode(m) : null;
    }
  }

  /** Calls the unary gRPC method `path` (e.g. /etcdserverpb.KV/Put) with a framed request. */
  call(path: string, framed: Buffer): void {
    let st: http2.ClientHttp2Stream;
    try {
      st = this.#conn.open(path, framed);
    } catch (e) { // the session is closed or destroyed: fail this call, asynchronously like any other
      this.#message = e instanceof Error ? e.message : String(e);
      setImmediate(this.#onClose);
      return;
    }
    st.on('response', this.#onResponse);
    st.on('trailers', this.#onTrailers);
    st.on('error', this.#onError);
    st.on('close', this.#onClose);
    st.resume(); // discard the response body; a paused stream would never end
  }
}

/**
 * One closed-loop client on a long-lived bidi stream (e.g. Lease/LeaseKeepAlive): `send` writes one
 * framed request message, and `done(0)` is called once per complete response message. At most one
 * request is outstanding, so responses are matched to requests by order. If the stream ends, every
 * later send fails with the stream's grpc-status (or statusNone) without touching the network.
 */
export class H2StreamCaller {
  readonly #conn: H2Connection;
  readonly #path: string;
  readonly #done: H2Done;
  #stream: http2.ClientHttp2Stream | null;
  #pending: number;        // bytes still missing of the response message being received
  #headerLeft: number;     // bytes of the 5-byte gRPC message header still to read
  readonly #header: Buffer; // the message header being read (reused)
  #closedStatus: number | null;
  #closedMessage: string | null;
  #waiting: boolean;       // a request was sent and its response has not arrived yet

  constructor(conn: H2Connection, path: string, done: H2Done) {
    this.#conn = conn;
    this.#path = path;
    this.#done = done;
    this.#stream = null;
    this.#pending = 0;
    this.#headerLeft = 5;
    this.#header = Buffer.alloc(5);
    this.#closedStatus = null;
    this.#closedMessage = null;
    this.#waiting = false;
  }

  #open(): http2.ClientHttp2Stream {
    const st = this.#conn.openStream(this.#path);
    let status = statusNone;
    let message: string | null = null;
    const take = (h: http2.IncomingHttpHeaders): void => {
      if (h['grpc-status'] === undefined) return;
      status = Number(h['grpc-status']);
      const m = h['grpc-message'];
      message = typeof m === 'string' ? percentDecode(m) : null;
    };
    st.on('response', take);
    st.on('trailers', take);
    st.on('error', (e: Error) => { message ??= e.message; });
    st.on('data', (chunk: Buffer) => this.#onData(chunk));
    st.on('close', () => {
      const wasWaiting = this.#waiting;
      this.#closedStatus = status === 0 ? statusNone : status; // a stream that ends is a failure for a caller
      this.#closedMessage = message ?? this.#conn.error ?? 'stream closed';
      this.#stream = null;
      if (wasWaiting) { this.#waiting = false; this.#done(this.#closedStatus, this.#closedMessage); }
    });
    return st;
  }

  #onData(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.#headerLeft > 0) {
        const n = Math.min(this.#headerLeft, chunk.length - at);
        chunk.copy(this.#header, 5 - this.#headerLeft, at, at + n);
        this.#headerLeft -= n;
        at += n;
        if (this.#headerLeft === 0) this.#pending = this.#header.readUInt32BE(1);
        else continue;
      }
      const n = Math.min(this.#pending, chunk.length - at);
      this.#pending -= n;
      at += n;
      if (this.#pending === 0) {
        this.#headerLeft = 5;
        if (this.#waiting) { this.#waiting = false; this.#done(0, null); }
      }
    }
  }

  send(framed: Buffer): void {
    if (this.#closedStatus !== null) {
      const status = this.#closedStatus;
      const message = this.#closedMessage;
      setImmediate(() => this.#done(status, message));
      return;
    }
    let st = this.#stream;
    try {
      st ??= this.#stream = this.#open();
    } catch (e) {
      this.#closedStatus = statusNone;
      this.#closedMessage = e instanceof Error ? e.message : String(e);
      setImmediate(() => this.#done(statusNone, this.#closedMessage));
      return;
    }
    this.#waiting = true;
    st.write(framed);
  }

  close(): void {
    const st = this.#stream;
    this.#stream = null;
    if (st) st.close(http2.constants.NGHTTP2_CANCEL);
  }
}

/** gRPC status code names, for error reports. */
export const grpcCodeName: Record<number, string> = {
  [-1]: 'NO_STATUS', 0: 'OK', 1: 'CANCELLED', 2: 'UNKNOWN', 3: 'INVALID_ARGUMENT', 4: 'DEADLINE_EXCEEDED',
  5: 'NOT_FOUND', 6: 'ALREADY_EXISTS', 7: 'PERMISSION_DENIED', 8: 'RESOURCE_EXHAUSTED', 9: 'FAILED_PRECONDITION',
  10: 'ABORTED', 11: 'OUT_OF_RANGE', 12: 'UNIMPLEMENTED', 13: 'INTERNAL', 14: 'UNAVAILABLE', 15: 'DATA_LOSS',
  16: 'UNAUTHENTICATED',
};
