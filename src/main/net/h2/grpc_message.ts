// Reassembles length-prefixed gRPC messages from DATA payloads (error texts as grpc-go's; the cases
// are pinned in test/integration/h2_transport.test.ts):
//   +--------+-----------------+------------------+
//   | u8 cmp | u32 BE length n | n bytes protobuf |
//   +--------+-----------------+------------------+
// A message that lies inside one DATA payload is delivered as a subarray of it (payloads are stable,
// see frame.ts); only a message spanning frames is copied, into a buffer of exactly its size.
import { EtcdError, GrpcCode } from '../../../shared/errors';
import { h2Limits } from './constants';
import type { H2Stream } from './stream';

/** First allocation for a message spanning payloads (four 16 KiB DATA frames). */
const MSG_FIRST_BYTES = 64 * 1024;

export interface MessageSink {
  onMessage(msg: Uint8Array): void;
}

export class GrpcMessageReader {
  readonly #max: number;
  /** The 5-byte prefix when it spans payloads (#prefixLen bytes so far). */
  #prefix: Buffer | null = null;
  #prefixLen = 0;
  /** The message being assembled across payloads: #msgLen of #msgWant bytes so far, in a buffer
   *  grown as bytes arrive (a 5-byte prefix claiming a huge length must not allocate it up front). */
  #msg: Buffer | null = null;
  #msgLen = 0;
  #msgWant = 0;

  constructor(max: number) {
    this.#max = max;
  }

  /** Bytes of an incomplete message are buffered: the stream ended mid-message if true at END_STREAM. */
  pending(): boolean {
    return this.#prefixLen > 0 || this.#msg !== null;
  }

  /** Throws EtcdError for a compressed or oversized message; sink errors propagate. */
  push(buf: Buffer, start: number, end: number, sink: MessageSink): void {
    let off = start;
    while (off < end) {
      if (this.#msg !== null) {
        off = this.#fill(buf, off, end, sink);
        continue;
      }
      let len: number;
      if (this.#prefixLen === 0 && end - off >= 5) {
        len = this.#checkPrefix(buf, off);
        off += 5;
      } else {
        const p = (this.#prefix ??= Buffer.allocUnsafe(5));
        const take = Math.min(5 - this.#prefixLen, end - off);
        buf.copy(p, this.#prefixLen, off, off + take);
        this.#prefixLen += take;
        off += take;
        if (this.#prefixLen < 5) return;
        this.#prefixLen = 0;
        len = this.#checkPrefix(p, 0);
      }
      if (end - off >= len) {
        sink.onMessage(buf.subarray(off, off + len));
        off += len;
      } else {
        this.#msg = Buffer.allocUnsafe(Math.min(len, MSG_FIRST_BYTES));
        this.#msgLen = 0;
        this.#msgWant = len;
      }
    }
  }

  #checkPrefix(b: Buffer, off: number): number {
    if (b[off] !== 0) throw new EtcdError(GrpcCode.Unimplemented, 'grpc: Decompressor is not installed for grpc-encoding');
    const len = b.readUInt32BE(off + 1);
    if (len > this.#max) throw new EtcdError(GrpcCode.ResourceExhausted, `grpc: received message larger than max (${len} vs. ${this.#max})`);
    return len;
  }

  #fill(buf: Buffer, off: number, end: number, sink: MessageSink): number {
    let m = this.#msg as Buffer;
    const take = Math.min(this.#msgWant - this.#msgLen, end - off);
    if (this.#msgLen + take > m.length) {
      // Doubling, capped at the exact size, so the delivered buffer is always exactly the message.
      const grown = Buffer.allocUnsafe(Math.min(this.#msgWant, Math.max(2 * m.length, this.#msgLen + take)));
      m.copy(grown, 0, 0, this.#msgLen);
      this.#msg = m = grown;
    }
    buf.copy(m, this.#msgLen, off, off + take);
    this.#msgLen += take;
    if (this.#msgLen === this.#msgWant) {
      this.#msg = null;
      sink.onMessage(m);
    }
    return off + take;
  }
}

/** Queues one gRPC message frame on the stream: one buffer with the prefix for a small message, or
 *  the 5-byte prefix and the message itself by reference (no copy) for a large one. */
export function writeGrpcMessage(stream: H2Stream, msg: Uint8Array): void {
  if (msg.length >= h2Limits.copyPayloadBytesMax) {
    const head = Buffer.allocUnsafe(5);
    head[0] = 0;
    head.writeUInt32BE(msg.length, 1);
    stream.write(head, Buffer.isBuffer(msg) ? msg : Buffer.from(msg.buffer, msg.byteOffset, msg.length));
    return;
  }
  const out = Buffer.allocUnsafe(5 + msg.length);
  out[0] = 0;
  out.writeUInt32BE(msg.length, 1);
  out.set(msg, 5);
  stream.write(out);
}
