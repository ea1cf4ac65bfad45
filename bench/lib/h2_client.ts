// A lean unary gRPC client for load generation over raw node:http2 (no grpc-js): one
// ClientHttp2Session per connection, many concurrent streams on it. Callers pass request bodies that
// are already gRPC-framed (5-byte prefix + protobuf, see frameGrpc), built once up front; the response
// body is discarded unread, and the call's outcome is the grpc-status of the trailers (or of the
// headers of a trailers-only response). A call allocates only what node:http2 itself allocates per
// stream: the listeners are bound once per H2Caller, not per call.
import * as http2 from 'node:http2';
import { Workload } from './kv_client';

const methodPath: Record<Workload, string> = {
  put: '/etcdserverpb.KV/Put',
  range: '/etcdserverpb.KV/Range',
};

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

function percentDecode(s: string): string {
  try { return decodeURIComponent(s); } catch { return s; }
}

export class H2Connection {
  readonly #session: http2.ClientHttp2Session;
  readonly #headers: Record<Workload, http2.OutgoingHttpHeaders>;
  #error: string | null;

  constructor(endpoint: string) {
    this.#error = null;
    this.#session = http2.connect(`http://${endpoint}`, {
      settings: { enablePush: false, initialWindowSize: 4 * 1024 * 1024 },
    });
    this.#session.on('error', (e: Error) => { this.#error ??= e.message; });
    this.#session.on('goaway', (code: number) => { this.#error ??= `GOAWAY ${code}`; });
    const headers = (path: string): http2.OutgoingHttpHeaders => ({
      ':method': 'POST',
      ':scheme': 'http',
      ':authority': endpoint,
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    this.#headers = { put: headers(methodPath.put), range: headers(methodPath.range) };
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
  open(workload: Workload, framed: Buffer): http2.ClientHttp2Stream {
    const st = this.#session.request(this.#headers[workload], requestOptions);
    st.end(framed);
    return st;
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

  call(workload: Workload, framed: Buffer): void {
    let st: http2.ClientHttp2Stream;
    try {
      st = this.#conn.open(workload, framed);
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

/** gRPC status code names, for error reports. */
export const grpcCodeName: Record<number, string> = {
  [-1]: 'NO_STATUS', 0: 'OK', 1: 'CANCELLED', 2: 'UNKNOWN', 3: 'INVALID_ARGUMENT', 4: 'DEADLINE_EXCEEDED',
  5: 'NOT_FOUND', 6: 'ALREADY_EXISTS', 7: 'PERMISSION_DENIED', 8: 'RESOURCE_EXHAUSTED', 9: 'FAILED_PRECONDITION',
  10: 'ABORTED', 11: 'OUT_OF_RANGE', 12: 'UNIMPLEMENTED', 13: 'INTERNAL', 14: 'UNAVAILABLE', 15: 'DATA_LOSS',
  16: 'UNAUTHENTICATED',
};
