// Binary encoding of raft Messages for the peer transport (our own format, not raftpb: the peer port
// does not speak etcd's protocol). One payload carries a batch of messages:
//
//   payload  = u8 CODEC_VERSION, u32 count, message*count
//   message  = u8 type, u64 from, u64 to, u64 term, u64 logTerm, u64 index, u64 commit, u64 rejectHint,
//              u8 flags (1 reject, 2 context present, 4 snapshot present),
//              u32 nEntries, entry*nEntries, [u32 len, context bytes], [snapshot metadata]
//   entry    = u8 type, u64 term, u64 index, u32 len, data bytes
//   snapshot = u64 index, u64 term, u32 nVoters, u64*nVoters, u32 nLearners, u64*nLearners
//
// All integers little-endian. Terms and indexes are JS numbers below 2^53 written as u64 (two u32
// halves, no BigInt on the hot path); node IDs are etcd's uint64 IDs (bigint). snapshot.data is NOT
// carried here: a snapshot's state travels as files on its own connection (transport.ts), so a decoded
// snapshot always has empty data. Decoding validates every field and bound and throws
// PeerProtocolError on anything malformed; it never trusts a count to size an allocation.
import { Entry, EntryType, Message, MessageType, NodeId, Snapshot } from '../raft/types';

export const CODEC_VERSION = 1;

/** Malformed bytes from a peer (bad frame, bad handshake, undecodable message). Never a crash. */
export class PeerProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PeerProtocolError';
  }
}

const TWO32 = 2 ** 32;
const U64_MAX = (1n << 64n) - 1n;
const MESSAGE_TYPE_MAX = MessageType.PreVoteResp;
const ENTRY_TYPE_MAX = EntryType.ConfChange;
const FLAG_REJECT = 1;
const FLAG_CONTEXT = 2;
const FLAG_SNAPSHOT = 4;
const BATCH_HEADER_BYTES = 1 + 4;
/** Fixed part of a message: type, 7 u64s, flags, nEntries. */
const MESSAGE_FIXED_BYTES = 1 + 7 * 8 + 1 + 4;
const ENTRY_FIXED_BYTES = 1 + 8 + 8 + 4;

/** Encoded bytes of one message inside a batch (for splitting batches into frames). */
export function messageEncodedBytes(m: Message): number {
  let n = MESSAGE_FIXED_BYTES;
  for (const e of m.entries) n += ENTRY_FIXED_BYTES + e.data.length;
  if (m.context !== null) n += 4 + m.context.length;
  if (m.snapshot !== null) {
    n += 8 + 8 + 4 + 8 * m.snapshot.metadata.voters.length + 4 + 8 * m.snapshot.metadata.learners.length;
  }
  return n;
}

/** Bytes encodeMessages() will produce for these messages. */
export function batchEncodedBytes(msgs: readonly Message[]): number {
  let n = BATCH_HEADER_BYTES;
  for (const m of msgs) n += messageEncodedBytes(m);
  return n;
}

export function encodeMessages(msgs: readonly Message[]): Buffer {
  return encodeMessagesAfter(msgs, 0);
}

/** Like encodeMessages, with `prefixBytes` left unwritten in front (a frame header: one copy less).
 * `payloadBytes` is batchEncodedBytes(msgs) when the caller already summed it (checked below). */
export function encodeMessagesAfter(msgs: readonly Message[], prefixBytes: number, payloadBytes = batchEncodedBytes(msgs)): Buffer {
  const buf = Buffer.allocUnsafe(prefixBytes + payloadBytes);
  const w = new Writer(buf);
  w.off = prefixBytes;
  w.u8(CODEC_VERSION);
  w.u32(msgs.length);
  for (const m of msgs) writeMessage(w, m);
  if (w.off !== buf.length) throw new Error(`invariant: encoded ${w.off} bytes, sized ${buf.length}`);
  return buf;
}

export function decodeMessages(buf: Uint8Array): Message[] {
  const r = new Reader(buf);
  const version = r.u8();
  if (version !== CODEC_VERSION) throw new PeerProtocolError(`unsupported message codec version ${version}`);
  const count = r.u32();
  r.need(count * MESSAGE_FIXED_BYTES);
  const out: Message[] = [];
  for (let i = 0; i < count; i++) out.push(readMessage(r));
  if (r.off !== buf.length) throw new PeerProtocolError(`${buf.length - r.off} trailing bytes after ${count} messages`);
  return out;
}

function writeMessage(w: Writer, m: Message): void {
  w.u8(m.type);
  w.id(m.from);
  w.id(m.to);
  w.num(m.term);
  w.num(m.logTerm);
  w.num(m.index);
  w.num(m.commit);
  w.num(m.rejectHint);
  w.u8((m.reject ? FLAG_REJECT : 0) | (m.context !== null ? FLAG_CONTEXT : 0) | (m.snapshot !== null ? FLAG_SNAPSHOT : 0));
  w.u32(m.entries.length);
  for (const e of m.entries) {
    w.u8(e.type);
    w.num(e.term);
    w.num(e.index);
    w.bytes(e.data);
  }
  if (m.context !== null) w.bytes(m.context);
  if (m.snapshot !== null) {
    const md = m.snapshot.metadata;
    w.num(md.index);
    w.num(md.term);
    w.ids(md.voters);
    w.ids(md.learners);
  }
}

function readMessage(r: Reader): Message {
  const type = r.u8();
  if (type > MESSAGE_TYPE_MAX) throw new PeerProtocolError(`unknown message type ${type}`);
  const from = r.id();
  const to = r.id();
  const term = r.num();
  const logTerm = r.num();
  const index = r.num();
  const commit = r.num();
  const rejectHint = r.num();
  const flags = r.u8();
  if (flags & ~(FLAG_REJECT | FLAG_CONTEXT | FLAG_SNAPSHOT)) throw new PeerProtocolError(`unknown message flags ${flags}`);
  const nEntries = r.u32();
  r.need(nEntries * ENTRY_FIXED_BYTES);
  const entries: Entry[] = [];
  for (let i = 0; i < nEntries; i++) {
    const et = r.u8();
    if (et > ENTRY_TYPE_MAX) throw new PeerProtocolError(`unknown entry type ${et}`);
    entries.push({ type: et as EntryType, term: r.num(), index: r.num(), data: r.bytes() });
  }
  const context = flags & FLAG_CONTEXT ? r.bytes() : null;
  let snapshot: Snapshot | null = null;
  if (flags & FLAG_SNAPSHOT) {
    const sIndex = r.num();
    const sTerm = r.num();
    snapshot = { metadata: { index: sIndex, term: sTerm, voters: r.ids(), learners: r.ids() }, data: new Uint8Array(0) };
  }
  return {
    type: type as MessageType, from, to, term, logTerm, index, entries, commit,
    reject: (flags & FLAG_REJECT) !== 0, rejectHint, context, snapshot,
  };
}

/** Writes into a buffer sized exactly beforehand. Shared with the frame code in frame.ts. */
export class Writer {
  off = 0;
  constructor(readonly buf: Buffer) {}
  u8(v: number): void { this.buf[this.off++] = v; }
  u16(v: number): void { this.buf.writeUInt16LE(v, this.off); this.off += 2; }
  u32(v: number): void { this.buf.writeUInt32LE(v, this.off); this.off += 4; }
  /** A non-negative safe integer as u64. */
  num(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new Error(`invariant: ${v} is not a non-negative safe integer`);
    this.buf.writeUInt32LE(v >>> 0, this.off);
    this.buf.writeUInt32LE(Math.floor(v / TWO32), this.off + 4);
    this.off += 8;
  }
  id(v: NodeId): void {
    if (v < 0n || v > U64_MAX) throw new Error(`invariant: node ID ${v} out of uint64 range`);
    this.buf.writeBigUInt64LE(v, this.off);
    this.off += 8;
  }
  ids(v: readonly NodeId[]): void {
    this.u32(v.length);
    for (const id of v) this.id(id);
  }
  bytes(v: Uint8Array): void {
    this.u32(v.length);
    this.buf.set(v, this.off);
    this.off += v.length;
  }
  raw(v: Uint8Array): void {
    this.buf.set(v, this.off);
    this.off += v.length;
  }
}

/** Bounds-checked reads; every failure is a PeerProtocolError. Shared with frame.ts. */
export class Reader {
  off = 0;
  readonly #dv: DataView;
  constructor(readonly buf: Uint8Array) {
    this.#dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  get remaining(): number { return this.buf.length - this.off; }
  need(n: number): void {
    if (n > this.buf.length - this.off) throw new PeerProtocolError(`truncated: need ${n} bytes at offset ${this.off} of ${this.buf.length}`);
  }
  u8(): number { this.need(1); return this.buf[this.off++]; }
  u16(): number { this.need(2); const v = this.#dv.getUint16(this.off, true); this.off += 2; return v; }
  u32(): number { this.need(4); const v = this.#dv.getUint32(this.off, true); this.off += 4; return v; }
  num(): number {
    this.need(8);
    const lo = this.#dv.getUint32(this.off, true);
    const hi = this.#dv.getUint32(this.off + 4, true);
    this.off += 8;
    if (hi >= 1 << 21) throw new PeerProtocolError(`integer at offset ${this.off - 8} exceeds 2^53`);
    return hi * TWO32 + lo;
  }
  id(): NodeId {
    this.need(8);
    const v = this.#dv.getBigUint64(this.off, true);
    this.off += 8;
    return v;
  }
  ids(): NodeId[] {
    const n = this.u32();
    this.need(n * 8);
    const out: NodeId[] = [];
    for (let i = 0; i < n; i++) out.push(this.id());
    return out;
  }
  /** u32 length + bytes, copied (the result must not pin the whole frame). */
  bytes(): Uint8Array {
    const n = this.u32();
    return this.raw(n);
  }
  raw(n: number): Uint8Array {
    this.need(n);
    const v = new Uint8Array(n);
    v.set(this.buf.subarray(this.off, this.off + n));
    this.off += n;
    return v;
  }
  /** u16 length + UTF-8. */
  str(): string {
    const n = this.u16();
    this.need(n);
    const v = Buffer.from(this.buf.buffer, this.buf.byteOffset + this.off, n).toString('utf8');
    this.off += n;
    return v;
  }
  rest(): Uint8Array { return this.raw(this.remaining); }
}
