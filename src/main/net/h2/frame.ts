// HTTP/2 frame codec (RFC 9113 4.1). Reading: FrameReader splits socket chunks into frames and
// hands each to a FrameSink as (buffer, start, end) without copying when the frame lies inside one
// chunk. A frame that straddles chunks is assembled into a freshly allocated buffer, never a reused
// one, so every payload a sink sees is stable: the gRPC layer may keep subarrays of it (a unary
// request body is used after later frames have arrived). Writing: writeFrameHeader into a caller's
// buffer, so frames are laid out back to back in one output buffer.
import { FRAME_HEADER_BYTES } from './constants';

export interface FrameSink {
  onFrame(type: number, flags: number, streamId: number, buf: Buffer, start: number, end: number): void;
  /** The declared length exceeds our SETTINGS_MAX_FRAME_SIZE; nothing more is parsed. */
  onFrameTooLarge(type: number, length: number): void;
}

export class FrameReader {
  #sink: FrameSink;
  #maxFrameBytes: number;
  /** Set by the sink (via stop()) after a connection error: remaining bytes are discarded. */
  #stopped = false;
  /** A partial 9-byte header carried over from the previous chunk. */
  #head = Buffer.alloc(FRAME_HEADER_BYTES);
  #headLen = 0;
  /** The payload of a frame whose header is known but whose payload spans chunks. */
  #payload: Buffer | null = null;
  #payloadLen = 0;
  #type = 0;
  #flags = 0;
  #streamId = 0;

  constructor(sink: FrameSink, maxFrameBytes: number) {
    this.#sink = sink;
    this.#maxFrameBytes = maxFrameBytes;
  }

  stop(): void {
    this.#stopped = true;
  }

  push(chunk: Buffer): void {
    let off = 0;
    if (this.#payload !== null) off = this.#continuePayload(chunk);
    else if (this.#headLen > 0) off = this.#continueHead(chunk);
    if (off < 0) return;
    while (!this.#stopped && chunk.length - off >= FRAME_HEADER_BYTES) {
      const len = (chunk[off] << 16) | (chunk[off + 1] << 8) | chunk[off + 2];
      const type = chunk[off + 3];
      if (len > this.#maxFrameBytes) return this.#tooLarge(type, len);
      const start = off + FRAME_HEADER_BYTES;
      if (chunk.length - start < len) {
        this.#beginPayload(chunk, off, len);
        return;
      }
      const flags = chunk[off + 4];
      const streamId = chunk.readUInt32BE(off + 5) & 0x7fffffff;
      off = start + len;
      this.#sink.onFrame(type, flags, streamId, chunk, start, off);
    }
    if (this.#stopped || off === chunk.length) return;
    chunk.copy(this.#head, 0, off);
    this.#headLen = chunk.length - off;
  }

  /** Fills the carried-over header; returns the offset after it, or -1 if the chunk ran out. */
  #continueHead(chunk: Buffer): number {
    const take = Math.min(FRAME_HEADER_BYTES - this.#headLen, chunk.length);
    chunk.copy(this.#head, this.#headLen, 0, take);
    this.#headLen += take;
    if (this.#headLen < FRAME_HEADER_BYTES) return -1;
    this.#headLen = 0;
    const h = this.#head;
    const len = (h[0] << 16) | (h[1] << 8) | h[2];
    if (len > this.#maxFrameBytes) {
      this.#tooLarge(h[3], len);
      return -1;
    }
    this.#setPending(h, 0, len);
    return this.#fillPayload(chunk, take);
  }

  #beginPayload(chunk: Buffer, off: number, len: number): void {
    this.#setPending(chunk, off, len);
    this.#fillPayload(chunk, off + FRAME_HEADER_BYTES);
  }

  #setPending(h: Buffer, off: number, len: number): void {
    this.#type = h[off + 3];
    this.#flags = h[off + 4];
    this.#streamId = h.readUInt32BE(off + 5) & 0x7fffffff;
    this.#payload = Buffer.allocUnsafe(len);
    this.#payloadLen = 0;
  }

  #continuePayload(chunk: Buffer): number {
    return this.#fillPayload(chunk, 0);
  }

  /** Copies payload bytes from chunk[off..]; delivers the frame when complete. Returns the offset
   *  after the consumed bytes, or -1 if the chunk was used up before the frame completed. */
  #fillPayload(chunk: Buffer, off: number): number {
    const p = this.#payload as Buffer;
    const take = Math.min(p.length - this.#payloadLen, chunk.length - off);
    chunk.copy(p, this.#payloadLen, off, off + take);
    this.#payloadLen += take;
    if (this.#payloadLen < p.length) return -1;
    this.#payload = null;
    this.#sink.onFrame(this.#type, this.#flags, this.#streamId, p, 0, p.length);
    return this.#stopped ? -1 : off + take;
  }

  #tooLarge(type: number, len: number): void {
    this.#stopped = true;
    this.#sink.onFrameTooLarge(type, len);
  }
}

/** Writes a 9-byte frame header at buf[off]; returns the offset of the payload. */
export function writeFrameHeader(buf: Buffer, off: number, length: number, type: number, flags: number, streamId: number): number {
  buf[off] = length >>> 16;
  buf[off + 1] = (length >>> 8) & 0xff;
  buf[off + 2] = length & 0xff;
  buf[off + 3] = type;
  buf[off + 4] = flags;
  buf.writeUInt32BE(streamId & 0x7fffffff, off + 5);
  return off + FRAME_HEADER_BYTES;
}

/** One whole frame in a new buffer (tests and rare control frames). */
export function encodeFrame(type: number, flags: number, streamId: number, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  writeFrameHeader(out, 0, payload.length, type, flags, streamId);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}
