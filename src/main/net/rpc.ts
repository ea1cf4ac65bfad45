// The handler interface between the etcd services and whatever carries their calls. Services
// register handlers by method path (addUnary, addStream) and see bytes in, bytes out; the carriers
// call them: gRPC on our HTTP/2 framer (grpc_h2.ts) and, in process, the HTTP/JSON gateway and the
// WebSocket API (src/main/gateway/). Nothing here knows HTTP/2, so a feature of the carrier (TLS)
// is added in one place and a feature of the calls (deadlines, the learner guard, how a failed
// write is answered) in this one.
import { Errors, EtcdError, GrpcCode } from '../../shared/errors';

/** Request metadata as received (gRPC custom metadata and HTTP/2 headers), lower-case names. */
export type CallMetadata = Readonly<Record<string, string | undefined>>;

export interface CallContext {
  /** Absolute deadline in ms (Date.now() clock), or 0 when the client set none. */
  deadlineMs: number;
  metadata: CallMetadata;
  /** Unary calls: registers fn to run if the call ends before it is answered (client cancel, reset
   * or deadline), so a handler that waits (Lock, Campaign) can stop and clean up. */
  onCancel?: (fn: () => void) => void;
  /** The common name of the client's verified TLS certificate (--client-cert-auth), for auth (issue 16). */
  peerCertificateCN?: string;
  /** A call the server makes itself on a client's behalf after checking it (the watches of Lock and
   * Election, whose keys the recipe's own reads were checked for): not checked again. */
  serverInternal?: boolean;
  /** The client's address ("ip:port", "[ip6]:port"), for the audit log; set by the carriers. */
  remoteAddress?: string;
}

/** An address as Go's net.Addr prints it: "ip:port", "[ip6]:port"; the ip alone without a port. */
export function remoteAddressText(ip: string | undefined, port?: number): string {
  if (ip === undefined) return '';
  if (port === undefined) return ip;
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** The context of an in-process call (HTTP/JSON, WebSocket, Lock and Election): no deadline, no gRPC metadata. */
export const NO_CONTEXT: CallContext = { deadlineMs: 0, metadata: {} };

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

/** The gRPC status of a handler's failure: an EtcdError or a {code, message} from a worker keeps
 *  its code and message; anything else is UNKNOWN. */
export function errorStatus(e: unknown): { code: number; message: string } {
  if (e instanceof EtcdError) return { code: e.code, message: e.message };
  if (e && typeof e === 'object' && 'code' in e && 'message' in e && typeof (e as { code: unknown }).code === 'number') {
    return e as { code: number; message: string };
  }
  return { code: GrpcCode.Unknown, message: e instanceof Error ? e.message : String(e) };
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

/** The audit log's hook (src/main/audit/auditor.ts), see GrpcMethods.setAudit. */
export interface CallAudit {
  /** Runs h(body, ctx) and logs the call if it is audited; in blocking mode answers only once logged. */
  unary(path: string, kind: MethodKind, body: Uint8Array, ctx: CallContext, h: UnaryHandler): Promise<Uint8Array> | Uint8Array;
  /** A stream opened (err null) or was refused before its handler ran. */
  stream(path: string, ctx: CallContext, err: unknown): void;
}

/** See GrpcMethods.setGuard. */
export interface MethodGuard {
  unary(path: string, body: Uint8Array): void;
  stream(path: string): void;
}

export type StreamHandler = (
  stream: ServerStream,
  ctx: CallContext,
) => {
  onMessage(msg: Uint8Array): void;
  onEnd(): void;
};

/** What a service registers its methods with (the method table below; tests pass their own). */
export interface Registrar {
  addUnary(path: string, h: UnaryHandler, kind?: MethodKind): void;
  addStream(path: string, h: StreamHandler): void;
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
export function parseGrpcTimeout(v: string | undefined): number {
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
export function deadlineOf(grpcTimeout: string | undefined): number {
  const timeoutMs = parseGrpcTimeout(grpcTimeout);
  return timeoutMs > 0 ? Date.now() + timeoutMs + 1 : 0;
}

/** gRPC message bytes received from and sent to clients, for /metrics
 * (etcd_network_client_grpc_received_bytes_total / _sent_bytes_total). Counted as etcd's gRPC codec
 * counts them: each message's protobuf bytes, without gRPC's 5-byte length prefix. */
export const grpcTraffic = { receivedBytes: 0, sentBytes: 0 };

/** Counts what ServerStream.sendFramed sent: `messages` framed messages, `framedBytes` with their prefixes. */
export function countSentFramed(framedBytes: number, messages: number): void {
  grpcTraffic.sentBytes += framedBytes - 5 * messages;
}

/** The method table: what the gRPC transport serves (GrpcH2Transport extends it), and what the
 * HTTP/JSON gateway calls in process (gateway.ts HandlerSource). */
export class GrpcMethods implements Registrar {
  readonly #unary = new Map<string, UnaryMethod>();
  readonly #streams = new Map<string, StreamHandler>();
  #guard: MethodGuard | null = null;
  /** The audit log's hook, null when --audit-log-path is empty: then a call pays one null check. */
  #audit: CallAudit | null = null;

  /** A check before every call (etcd's interceptors, e.g. what a learner may serve): throwing an
   * EtcdError refuses the call with its status. Applies to handlers added before and after. */
  setGuard(g: MethodGuard): void {
    this.#guard = g;
  }

  /** Every call, the refused ones included, goes through a.unary / a.stream (the audit log). Applies
   * to handlers added before and after. */
  setAudit(a: CallAudit | null): void {
    this.#audit = a;
  }

  /** Whether calls are audited: carriers then put the client's address in the call's context. */
  get auditing(): boolean {
    return this.#audit !== null;
  }

  /** Registers a unary method; kind 'write' (the default) unless every call of it is safe to repeat. */
  addUnary(path: string, h: UnaryHandler, kind: MethodKind = 'write'): void {
    const guarded: UnaryHandler = (body, ctx) => {
      this.#guard?.unary(path, body);
      return h(body, ctx);
    };
    const handler: UnaryHandler = (body, ctx) => {
      const a = this.#audit;
      return a === null ? guarded(body, ctx) : a.unary(path, kind, body, ctx, guarded);
    };
    this.#unary.set(path, { handler, kind });
  }

  addStream(path: string, h: StreamHandler): void {
    this.#streams.set(path, (ss, ctx) => {
      try {
        this.#guard?.stream(path);
      } catch (e) {
        this.#audit?.stream(path, ctx, e);
        const st = errorStatus(e);
        ss.end(st.code, st.message);
        return { onMessage: () => undefined, onEnd: () => undefined };
      }
      this.#audit?.stream(path, ctx, null);
      return h(ss, ctx);
    });
  }

  /** The method registered for a path: handler and kind (the transport and the gateway call it). */
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

type StreamCallbacks = ReturnType<StreamHandler>;

/**
 * A ServerStream whose handler runs in process (HTTP/JSON, WebSocket JSON and binary, and the watches
 * of Lock and Election): the state the handler's side and the client's side share. Subclasses write the output: writeMessage (one
 * response) and writeEnd (once, when the call ends with a status).
 */
export abstract class InProcessStream implements ServerStream {
  /** Null until start(): a stream may be registered before its handler runs. */
  #handlers: StreamCallbacks | null = null;
  #ended = false;
  #inputClosed = false;
  #cancelFns: Array<() => void> = [];
  #drainFns: Array<() => void> = [];

  protected abstract writeMessage(msg: Uint8Array): boolean;
  protected abstract writeEnd(code: number, message: string): void;

  /** Runs the handler; it may throw (nothing was started then). */
  start(h: StreamHandler, ctx: CallContext = NO_CONTEXT): void {
    this.#handlers = h(this, ctx);
  }

  // --- ServerStream (the handler's side) ---

  send(msg: Uint8Array): boolean {
    if (this.#ended) return false;
    return this.writeMessage(msg);
  }

  end(code: GrpcCode, message?: string): void {
    if (this.#ended) return;
    this.#ended = true;
    this.writeEnd(code, message ?? '');
    // As the gRPC transport does when a stream closes for any reason: the handler's cleanup runs (a
    // Watch stream ended by the server frees its stream entry and its watchers in the worker).
    this.#runCancelFns();
  }

  get closed(): boolean {
    return this.#ended;
  }

  onCancel(fn: () => void): void {
    this.#cancelFns.push(fn);
  }

  onDrain(fn: () => void): void {
    this.#drainFns.push(fn);
  }

  // --- the client's side ---

  /** One request message; a handler that throws ends the call with the error's status. */
  deliver(bytes: Uint8Array): void {
    if (this.#inputClosed || this.#ended || this.#handlers === null) return;
    try {
      this.#handlers.onMessage(bytes);
    } catch (e) {
      const st = errorStatus(e);
      this.end(st.code, st.message);
    }
  }

  /** The client finished sending (half-close). */
  close(): void {
    if (this.#inputClosed || this.#handlers === null) return;
    this.#inputClosed = true;
    try {
      this.#handlers.onEnd();
    } catch (e) {
      const st = errorStatus(e);
      this.end(st.code, st.message);
    }
  }

  /** The sink can take more again. */
  drained(): void {
    for (const fn of this.#drainFns) fn();
  }

  /** The client went away: the call is over without an answer. */
  cancel(): void {
    this.#inputClosed = true;
    this.#ended = true;
    this.#runCancelFns();
  }

  /** Each cancel callback runs once, whichever way the call ended. */
  #runCancelFns(): void {
    const fns = this.#cancelFns;
    this.#cancelFns = [];
    for (const fn of fns) fn();
  }
}

/** One streaming call of the JSON gateway: responses go to a StreamSink as JSON. */
