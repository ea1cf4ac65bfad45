// Framing of the peer port: every byte on a peer connection is inside a frame
//
//   +---------------+---------------+---------+-------------------+
//   | u32 len (LE)  | u32 CRC-32C   | u8 type | payload (len)     |
//   +---------------+---------------+---------+-------------------+
//   CRC-32C covers the type byte and the payload.
//
// The first frame on a connection is HELLO from the dialer, answered by HELLO_ACK; a connection
// carries one purpose for its life (messages, snapshot, request). HELLO names the cluster and both
// member IDs, so a member of another cluster, or a dialer that meant another member (stale URL), is
// refused before any raft message is read.
//
// This is etcd-ts's own protocol: it does NOT speak etcd's peer protocol (HTTP /raft/stream/*,
// /raft/snapshot, rafthttp). Real etcd members cannot join an etcd-ts cluster or talk to its peer port.
import { crc32c } from '../../shared/crc32c';
import { PeerProtocolError, Reader, Writer } from './codec';

export const FRAME_HEADER_BYTES = 9;
/** "ETSP": etcd-ts peer. */
export const PEER_MAGIC = 0x45545350;
export const PEER_PROTOCOL_VERSION = 1;
/** HELLO is tiny: a connection that opens with a large length is refused before buffering it. */
export const HELLO_FRAME_BYTES_MAX = 64;

export const enum FrameType {
  Hello = 1,
  HelloAck = 2,
  Messages = 3,
  SnapMeta = 4,
  SnapChunk = 5,
  SnapEnd = 6,
  SnapResult = 7,
  Request = 8,
  Response = 9,
  /** Discover: the membership (JSON), for a member joining with --initial-cluster-state existing. */
  Members = 10,
}

export const enum Purpose {
  Messages = 1,
  Snapshot = 2,
  Request = 3,
  /** A member joining an existing cluster asks for its ID and members; HELLO's IDs are 0 (unknown). */
  Discover = 4,
}

export const enum HelloStatus {
  Ok = 0,
  ClusterMismatch = 1,
  MemberMismatch = 2,
  VersionUnsupported = 3,
  Busy = 4,
  BadPurpose = 5,
  TooManyConnections = 6,
  Removed = 7,
  Stopping = 8,
}

export const HELLO_STATUS_TEXT: Record<number, string> = {
  [HelloStatus.Ok]: 'ok',
  [HelloStatus.ClusterMismatch]: 'cluster ID mismatch',
  [HelloStatus.MemberMismatch]: 'member ID mismatch (connection meant for another member)',
  [HelloStatus.VersionUnsupported]: 'peer protocol version unsupported',
  [HelloStatus.Busy]: 'a snapshot from this member is already being received',
  [HelloStatus.BadPurpose]: 'unknown connection purpose',
  [HelloStatus.TooManyConnections]: 'too many peer connections',
  [HelloStatus.Removed]: 'member was removed from the cluster',
  [HelloStatus.Stopping]: 'member is stopping',
};

/** One frame with a payload, as bytes ready for socket.write(). */
export function encodeFrame(type: FrameType, payload: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  buf[8] = type;
  buf.set(payload, FRAME_HEADER_BYTES);
  sealFrame(buf);
  return buf;
}

/** Allocates a frame whose payload the caller writes at FRAME_HEADER_BYTES, then calls sealFrame. */
export function allocFrame(type: FrameType, payloadBytes: number): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payloadBytes);
  buf[8] = type;
  return buf;
}

export function sealFrame(buf: Buffer): void {
  buf.writeUInt32LE(buf.length - FRAME_HEADER_BYTES, 0);
  buf.writeUInt32LE(crc32c(buf, 8, buf.length), 4);
}

export interface Frame {
  type: FrameType;
  payload: Buffer;
}

/**
 * Incremental frame parser over socket chunks. Keeps received chunks in a list (no quadratic
 * concatenation) and cuts whole frames out of it. `maxPayload` bounds what one frame may announce,
 * so a peer can never make us buffer more than that plus one socket chunk.
 */
export class FrameReader {
  #chunks: Buffer[] = [];
  #buffered = 0;
  #maxPayload: number;
  constructor(maxPayload: number) {
    this.#maxPayload = maxPayload;
  }
  setMaxPayload(n: number): void { this.#maxPayload = n; }
  get bufferedBytes(): number { return this.#buffered; }
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }
  /** Whether a whole frame (or a frame header that next() will refuse) is buffered. */
  hasFrame(): boolean {
    if (this.#buffered < FRAME_HEADER_BYTES) return false;
    const len = this.#peek(FRAME_HEADER_BYTES).readUInt32LE(0);
    return len > this.#maxPayload || this.#buffered >= FRAME_HEADER_BYTES + len;
  }
  /** The next whole frame, or null when more bytes are needed. Throws PeerProtocolError. */
  next(): Frame | null {
    if (this.#buffered < FRAME_HEADER_BYTES) return null;
    const head = this.#peek(FRAME_HEADER_BYTES);
    const len = head.readUInt32LE(0);
    if (len > this.#maxPayload) throw new PeerProtocolError(`frame of ${len} bytes exceeds ${this.#maxPayload}`);
    const type = head[8];
    if (this.#buffered < FRAME_HEADER_BYTES + len) return null;
    const whole = this.#take(FRAME_HEADER_BYTES + len);
    if (crc32c(whole, 8, whole.length) !== head.readUInt32LE(4)) throw new PeerProtocolError(`frame CRC mismatch (type ${type}, ${len} bytes)`);
    return { type: type as FrameType, payload: whole.subarray(FRAME_HEADER_BYTES) };
  }
  #peek(n: number): Buffer {
    if (this.#chunks[0].length >= n) return this.#chunks[0];
    this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0];
  }
  #take(n: number): Buffer {
    let first = this.#chunks[0];
    if (first.length < n) {
      // Gather just enough chunks for this frame.
      let have = 0;
      let k = 0;
      while (have < n) have += this.#chunks[k++].length;
      first = Buffer.concat(this.#chunks.slice(0, k));
      this.#chunks.splice(0, k, first);
    }
    const out = first.subarray(0, n);
    if (first.length === n) this.#chunks.shift();
    else this.#chunks[0] = first.subarray(n);
    this.#buffered -= n;
    return out;
  }
}

export interface Hello {
  version: number;
  purpose: Purpose;
  clusterId: bigint;
  from: bigint;
  to: bigint;
}

export function encodeHello(h: Hello): Buffer {
  const buf = allocFrame(FrameType.Hello, 4 + 2 + 1 + 8 * 3);
  const w = new Writer(buf);
  w.off = FRAME_HEADER_BYTES;
  w.u32(PEER_MAGIC);
  w.u16(h.version);
  w.u8(h.purpose);
  w.id(h.clusterId);
  w.id(h.from);
  w.id(h.to);
  sealFrame(buf);
  return buf;
}

export function decodeHello(f: Frame): Hello {
  if (f.type !== FrameType.Hello) throw new PeerProtocolError(`expected HELLO, got frame type ${f.type}`);
  const r = new Reader(f.payload);
  const magic = r.u32();
  if (magic !== PEER_MAGIC) throw new PeerProtocolError(`bad peer magic 0x${magic.toString(16)}`);
  const h: Hello = { version: r.u16(), purpose: r.u8() as Purpose, clusterId: r.id(), from: r.id(), to: r.id() };
  if (r.remaining !== 0) throw new PeerProtocolError('trailing bytes in HELLO');
  return h;
}

export function encodeHelloAck(status: HelloStatus, detail: string): Buffer {
  const text = Buffer.from(detail.slice(0, 1000), 'utf8');
  const buf = allocFrame(FrameType.HelloAck, 1 + 2 + 2 + text.length);
  const w = new Writer(buf);
  w.off = FRAME_HEADER_BYTES;
  w.u8(status);
  w.u16(PEER_PROTOCOL_VERSION);
  w.u16(text.length);
  w.raw(text);
  sealFrame(buf);
  return buf;
}

export function decodeHelloAck(f: Frame): { status: HelloStatus; version: number; detail: string } {
  if (f.type !== FrameType.HelloAck) throw new PeerProtocolError(`expected HELLO_ACK, got frame type ${f.type}`);
  const r = new Reader(f.payload);
  const out = { status: r.u8() as HelloStatus, version: r.u16(), detail: r.str() };
  if (r.remaining !== 0) throw new PeerProtocolError('trailing bytes in HELLO_ACK');
  return out;
}

/** A result frame (request response, snapshot result): u32 id, u32 gRPC code, then body or message. */
export function encodeResult(type: FrameType, id: number, code: number, body: Uint8Array): Buffer {
  const buf = allocFrame(type, 8 + body.length);
  buf.writeUInt32LE(id, FRAME_HEADER_BYTES);
  buf.writeUInt32LE(code, FRAME_HEADER_BYTES + 4);
  buf.set(body, FRAME_HEADER_BYTES + 8);
  sealFrame(buf);
  return buf;
}

export function decodeResult(f: Frame): { id: number; code: number; body: Uint8Array } {
  const r = new Reader(f.payload);
  return { id: r.u32(), code: r.u32(), body: r.rest() };
}

/** Whether a refused connection's first bytes look like HTTP (an etcd member or a browser). */
export function looksLikeHttp(chunk: Buffer): boolean {
  const s = chunk.subarray(0, 4).toString('latin1');
  return s === 'GET ' || s === 'POST' || s === 'PUT ' || s === 'PRI ' || s === 'HEAD' || s === 'OPTI';
}
