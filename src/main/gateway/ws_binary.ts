// Binary WebSocket framing (docs/WEBSOCKET.md, "Binary framing"): protobuf messages named by their
// gRPC method, handed to the handlers as they are: no JSON, no base64, no gRPC framing. The same
// connection may mix binary and JSON messages; their stream IDs are separate namespaces.
//
// Client -> server, one WebSocket binary message:
//   +-------+-------------+--------+----------------------+---------------------+
//   | u8 op | u32 LE id   | u8 n   | n bytes method path  | protobuf message    |
//   +-------+-------------+--------+----------------------+---------------------+
//   op 0 CALL     method = "/etcdserverpb.KV/Range" ...: a unary call, or opens stream `id`
//                 (the message, if not empty, is its first request)
//   op 1 SEND     (n = 0) one more request on stream `id`
//   op 2 CLOSE    (n = 0, no message) half-close stream `id`
//   op 3 CANCEL   (n = 0, no message) abandon stream `id`
// Server -> client:
//   +-------+-------------+---------------------------------------------+
//   | u8 op | u32 LE id   | payload                                     |
//   +-------+-------------+---------------------------------------------+
//   op 0 RESULT   payload = protobuf response message (unary answer or one stream message)
//   op 1 ERROR    payload = u32 LE gRPC code, UTF-8 message (a unary call failed)
//   op 2 END      stream `id` ended; payload empty (OK) or u32 LE code + UTF-8 message
import { GrpcCode } from '../../shared/errors';
import { CallContext, errorStatus, failureStatus, InProcessStream, NO_CONTEXT, StreamHandler, UnaryMethod, unknownMethodMessage } from '../net/rpc';
import { HandlerSource } from './gateway';

export const enum BinOp { Call = 0, Send = 1, Close = 2, Cancel = 3 }
export const enum BinReply { Result = 0, Error = 1, End = 2 }

const HEADER_BYTES = 6;

export function replyFrame(op: BinReply, id: number, payload: Uint8Array | null): Uint8Array {
  const out = Buffer.allocUnsafe(5 + (payload?.length ?? 0));
  out[0] = op;
  out.writeUInt32LE(id, 1);
  if (payload) out.set(payload, 5);
  return out;
}

export function statusPayload(code: number, message: string): Uint8Array {
  const m = Buffer.from(message, 'utf8');
  const out = Buffer.allocUnsafe(4 + m.length);
  out.writeUInt32LE(code, 0);
  out.set(m, 4);
  return out;
}

export interface BinarySender {
  /** Sends one binary message; false when the socket is past its backpressure mark. */
  sendBinary(frame: Uint8Array): boolean;
  readonly streamsMax: number;
  readonly unaryInFlightMax: number;
  readonly recvMessageBytesMax: number;
  /** The context of this connection's calls (the client's address for the audit log), if any. */
  readonly callContext?: CallContext;
}

/** One binary stream: its handler's protobuf messages go out as RESULT frames. */
class BinaryStream extends InProcessStream {
  constructor(readonly conn: BinaryConnection, readonly id: number) {
    super();
  }

  protected writeMessage(msg: Uint8Array): boolean {
    return this.conn.out.sendBinary(replyFrame(BinReply.Result, this.id, msg));
  }

  protected writeEnd(code: number, message: string): void {
    this.conn.streams.delete(this.id);
    this.conn.out.sendBinary(replyFrame(BinReply.End, this.id, code === GrpcCode.OK ? null : statusPayload(code, message)));
  }

  override cancel(): void {
    this.conn.streams.delete(this.id);
    super.cancel();
  }
}

/** The binary side of one WebSocket. */
export class BinaryConnection {
  readonly streams = new Map<number, BinaryStream>();
  #inFlight = 0;

  constructor(readonly src: HandlerSource, readonly out: BinarySender) {}

  #error(id: number, code: number, message: string): void {
    this.out.sendBinary(replyFrame(BinReply.Error, id, statusPayload(code, message)));
  }

  /** One binary WebSocket message; `buf` is the caller's own copy (handlers may keep views of it). */
  onMessage(buf: Buffer): void {
    if (buf.length < HEADER_BYTES) return this.#error(0, GrpcCode.InvalidArgument, 'etcd-ts: binary frame shorter than its header');
    const op = buf[0];
    const id = buf.readUInt32LE(1);
    const n = buf[5];
    if (buf.length < HEADER_BYTES + n) return this.#error(id, GrpcCode.InvalidArgument, 'etcd-ts: binary frame cut inside its method name');
    const msg = buf.subarray(HEADER_BYTES + n);
    if (msg.length > this.out.recvMessageBytesMax) {
      return this.#error(id, GrpcCode.ResourceExhausted, `grpc: received message larger than max (${msg.length} vs. ${this.out.recvMessageBytesMax})`);
    }
    const open = this.streams.get(id);
    switch (op) {
      case BinOp.Call: {
        const method = buf.toString('latin1', HEADER_BYTES, HEADER_BYTES + n);
        const u = this.src.unaryMethod(method);
        if (u) return this.#unary(id, u, msg);
        const s = this.src.streamHandler(method);
        if (s) return this.#open(id, s, msg);
        return this.#error(id, GrpcCode.Unimplemented, unknownMethodMessage(method, this.src.methodPaths()));
      }
      case BinOp.Send:
        return open ? open.deliver(msg) : this.#error(id, GrpcCode.NotFound, `etcd-ts: no open stream ${id}`);
      case BinOp.Close:
        return open?.close();
      case BinOp.Cancel:
        if (open) {
          open.cancel();
          this.out.sendBinary(replyFrame(BinReply.End, id, statusPayload(GrpcCode.Canceled, 'context canceled')));
        }
        return;
      default:
        return this.#error(id, GrpcCode.InvalidArgument, `etcd-ts: unknown binary op ${op}`);
    }
  }

  #unary(id: number, m: UnaryMethod, msg: Uint8Array): void {
    if (this.#inFlight >= this.out.unaryInFlightMax) return this.#error(id, GrpcCode.ResourceExhausted, 'etcdserver: too many requests');
    let r: Promise<Uint8Array> | Uint8Array;
    try {
      r = m.handler(msg, this.out.callContext ?? NO_CONTEXT);
    } catch (e) {
      const st = failureStatus(e, m.kind);
      return this.#error(id, st.code, st.message);
    }
    if (r instanceof Uint8Array) {
      this.out.sendBinary(replyFrame(BinReply.Result, id, r));
      return;
    }
    this.#inFlight++;
    r.then((out) => {
      this.#inFlight--;
      this.out.sendBinary(replyFrame(BinReply.Result, id, out));
    }, (e: unknown) => {
      this.#inFlight--;
      const st = failureStatus(e, m.kind);
      this.#error(id, st.code, st.message);
    });
  }

  #open(id: number, h: StreamHandler, first: Uint8Array): void {
    if (this.streams.has(id)) return this.#error(id, GrpcCode.AlreadyExists, `etcd-ts: stream ${id} is already open`);
    if (this.streams.size >= this.out.streamsMax) return this.#error(id, GrpcCode.ResourceExhausted, 'etcd-ts: too many streams on this WebSocket');
    const s = new BinaryStream(this, id);
    this.streams.set(id, s);
    try {
      s.start(h, this.out.callContext ?? NO_CONTEXT);
    } catch (e) {
      const st = errorStatus(e);
      s.end(st.code, st.message);
      return;
    }
    // Always delivered: an empty request union is ignored by the watch service, as by etcd, and a
    // server-streaming call (Snapshot) has exactly one, possibly empty, request.
    s.deliver(first);
  }

  drained(): void {
    for (const s of this.streams.values()) s.drained();
  }

  closed(): void {
    for (const s of [...this.streams.values()]) s.cancel();
  }
}
