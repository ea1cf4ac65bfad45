// WAL record framing: encode into a caller's buffer (the batch buffer, no allocation per record)
// and decode from a segment's bytes during replay.
//
//   0          4          8      9                                   9+len
//   +----------+----------+------+-------------------------------------+
//   | len u32LE| crc u32LE| type | payload (len bytes)                 |
//   +----------+----------+------+-------------------------------------+
//               crc = CRC-32C(type byte + payload); len excludes the 9-byte header.
//
//   payload by type (all integers little-endian, u64 as two u32 words lo,hi for numbers < 2^53):
//   1 entry      | term u64 | index u64 | entryType u8 | data (len - 17 bytes) |
//   2 hardState  | term u64 | vote u64 (NodeId, full 64 bits) | commit u64 |     (len = 24)
//   3 snapshot   | index u64 | term u64 |                                        (len = 16)
//
// Unlike etcd, the CRC is per record, not chained across records: a record can be checked on its
// own, which is what torn-tail detection needs; ordering damage is caught by replay (index gaps).
import { Entry, EntryType, HardState } from '../raft/types';
import { crc32c } from '../../shared/crc32c';
import { assert } from '../../shared/errors';

export const enum RecordType {
  Entry = 1,
  HardState = 2,
  Snapshot = 3,
}

export const HEADER_BYTES = 9;
export const ENTRY_FIXED_BYTES = 17;
export const HARD_STATE_BYTES = 24;
export const SNAPSHOT_BYTES = 16;

const TWO_32 = 4294967296;
const U64_MAX = (1n << 64n) - 1n;

export type DecodedRecord =
  | { type: RecordType.Entry; entry: Entry }
  | { type: RecordType.HardState; hardState: HardState }
  | { type: RecordType.Snapshot; index: number; term: number };

export function entryRecordBytes(e: Entry): number {
  return HEADER_BYTES + ENTRY_FIXED_BYTES + e.data.length;
}

export const HARD_STATE_RECORD_BYTES = HEADER_BYTES + HARD_STATE_BYTES;
export const SNAPSHOT_RECORD_BYTES = HEADER_BYTES + SNAPSHOT_BYTES;

function putU64(dv: DataView, off: number, n: number): void {
  // n >>> 0 is n mod 2^32 for any safe integer, so the split is exact without BigInt.
  dv.setUint32(off, n >>> 0, true);
  dv.setUint32(off + 4, Math.floor(n / TWO_32), true);
}

/** Returns -1 when the value is not a safe integer (a corrupt or foreign record). */
function getU64(dv: DataView, off: number): number {
  const hi = dv.getUint32(off + 4, true);
  if (hi >= 0x200000) return -1;
  return hi * TWO_32 + dv.getUint32(off, true);
}

function finish(buf: Uint8Array, dv: DataView, off: number, type: RecordType, len: number): number {
  dv.setUint32(off, len, true);
  buf[off + 8] = type;
  dv.setUint32(off + 4, crc32c(buf, off + 8, off + HEADER_BYTES + len), true);
  return off + HEADER_BYTES + len;
}

/** Encodes one entry record at buf[off]; returns the offset after it. */
export function encodeEntry(buf: Uint8Array, dv: DataView, off: number, e: Entry): number {
  assert(Number.isSafeInteger(e.index) && e.index > 0, `wal: entry index ${e.index}`);
  assert(Number.isSafeInteger(e.term) && e.term >= 0, `wal: entry term ${e.term}`);
  const p = off + HEADER_BYTES;
  putU64(dv, p, e.term);
  putU64(dv, p + 8, e.index);
  buf[p + 16] = e.type;
  buf.set(e.data, p + ENTRY_FIXED_BYTES);
  return finish(buf, dv, off, RecordType.Entry, ENTRY_FIXED_BYTES + e.data.length);
}

export function encodeHardState(buf: Uint8Array, dv: DataView, off: number, hs: HardState): number {
  assert(Number.isSafeInteger(hs.term) && hs.term >= 0 && Number.isSafeInteger(hs.commit) && hs.commit >= 0,
    'wal: hardState term/commit');
  assert(hs.vote >= 0n && hs.vote <= U64_MAX, 'wal: hardState vote out of u64 range');
  const p = off + HEADER_BYTES;
  putU64(dv, p, hs.term);
  dv.setBigUint64(p + 8, hs.vote, true);
  putU64(dv, p + 16, hs.commit);
  return finish(buf, dv, off, RecordType.HardState, HARD_STATE_BYTES);
}

export function encodeSnapshot(buf: Uint8Array, dv: DataView, off: number, index: number, term: number): number {
  assert(Number.isSafeInteger(index) && index >= 0 && Number.isSafeInteger(term) && term >= 0,
    'wal: snapshot index/term');
  const p = off + HEADER_BYTES;
  putU64(dv, p, index);
  putU64(dv, p + 8, term);
  return finish(buf, dv, off, RecordType.Snapshot, SNAPSHOT_BYTES);
}

/** CRC check of the record at off whose header says `len`; the caller checked it fits. */
export function recordCrcOk(buf: Uint8Array, dv: DataView, off: number, len: number): boolean {
  return dv.getUint32(off + 4, true) === crc32c(buf, off + 8, off + HEADER_BYTES + len);
}

/** The payload length a type must have; entries only have a minimum. */
export function lengthFitsType(type: number, len: number): boolean {
  switch (type) {
    case RecordType.Entry: return len >= ENTRY_FIXED_BYTES;
    case RecordType.HardState: return len === HARD_STATE_BYTES;
    case RecordType.Snapshot: return len === SNAPSHOT_BYTES;
    default: return false;
  }
}

/**
 * Decodes a CRC-checked record. Returns null for an unknown type or a malformed payload. Entry
 * data is copied so the (large) segment buffer is not retained by the returned log.
 */
export function decodeRecord(buf: Uint8Array, dv: DataView, off: number, len: number): DecodedRecord | null {
  const type = buf[off + 8];
  if (!lengthFitsType(type, len)) return null;
  const p = off + HEADER_BYTES;
  if (type === RecordType.Entry) {
    const term = getU64(dv, p);
    const index = getU64(dv, p + 8);
    if (term < 0 || index <= 0) return null;
    // Uint8Array construction copies (Buffer#slice would alias the segment buffer).
    const data = new Uint8Array(buf.subarray(p + ENTRY_FIXED_BYTES, p + len));
    return { type, entry: { term, index, type: buf[p + 16] as EntryType, data } };
  }
  if (type === RecordType.HardState) {
    const term = getU64(dv, p);
    const commit = getU64(dv, p + 16);
    if (term < 0 || commit < 0) return null;
    return { type, hardState: { term, vote: dv.getBigUint64(p + 8, true), commit } };
  }
  const index = getU64(dv, p);
  const term = getU64(dv, p + 8);
  if (index < 0 || term < 0) return null;
  return { type: RecordType.Snapshot, index, term };
}
