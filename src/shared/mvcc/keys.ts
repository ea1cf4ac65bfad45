// Binary key encodings of the MVCC store's LMDB databases.
//
// LMDB compares keys with memcmp, shorter-first on a common prefix: the same order as Go's bytes.Compare,
// so `latest` stores the user key as is. A `history` key appends a revision to the user key, and keys may
// contain any byte (0x00 included), so the user key is escaped to keep every key's records contiguous and
// in user-key order:
//
//   history key = esc(key) ‖ 0x00 0x00 ‖ rev (8 bytes BE) ‖ sub (4 bytes BE)
//   esc(key)    = key with every 0x00 byte written as 0x00 0xFF
//
// For user keys a < b, esc(a)‖00 00‖... < esc(b)‖00 00‖...: at the first difference the escaped bytes keep the
// order, and when a is a prefix of b the terminator 00 00 sorts below the next escaped byte of b (>= 00 FF or
// >= 01). So [esc(a), esc(b)) bounds exactly the history records of the user keys in [a, b).
//
//   revlog key  = rev (8 bytes BE) ‖ sub (4 bytes BE)      (global write order, for watch replay and compaction)
import { assert } from '../errors';

/** LMDB's maximum key size with the default 4 KiB page (lmdb-js DEFAULT_MAX_KEY_SIZE). */
export const lmdbKeyBytesMax = 1978;
/** Bytes of rev ‖ sub. */
export const historyRevBytes = 12;
/** Bytes after esc(key) in a history key: terminator, revision, sub revision. */
const historySuffixBytes = 2 + 8 + 4;
/** Largest escaped user key that fits in a history key. */
export const escapedKeyBytesMax = lmdbKeyBytesMax - historySuffixBytes;
const revKeyBytes = 12;
const two32 = 0x1_0000_0000;

/** Bytes of esc(key). */
export function escapedLength(key: Uint8Array): number {
  let n = key.length;
  for (let i = 0; i < key.length; i++) if (key[i] === 0) n++;
  return n;
}

/**
 * True when a user key is stored in `latest` and `history` (its history key fits LMDB's key size);
 * longer keys are stored in xlatest and xhistory (long_keys.ts).
 */
export function isShortKey(key: Uint8Array): boolean {
  return key.length <= escapedKeyBytesMax && escapedLength(key) <= escapedKeyBytesMax;
}

/** Writes esc(key) into out at pos; returns the end position. */
export function writeEscaped(key: Uint8Array, out: Buffer, pos: number): number {
  for (let i = 0; i < key.length; i++) {
    const b = key[i];
    out[pos++] = b;
    if (b === 0) out[pos++] = 0xff;
  }
  return pos;
}

export function writeRev(out: Buffer, pos: number, rev: number, sub: number): void {
  assert(rev >= 0 && Number.isSafeInteger(rev) && sub >= 0 && sub < two32, 'revision out of range');
  out.writeUInt32BE(Math.floor(rev / two32), pos);
  out.writeUInt32BE(rev >>> 0, pos + 4);
  out.writeUInt32BE(sub, pos + 8);
}

function readRevMain(buf: Uint8Array, pos: number): number {
  return readSub(buf, pos) * two32 + readSub(buf, pos + 4);
}

export function readRevSub(buf: Uint8Array, pos: number): { rev: number; sub: number } {
  return { rev: readRevMain(buf, pos), sub: readSub(buf, pos + 8) };
}

function readSub(buf: Uint8Array, pos: number): number {
  return ((buf[pos] << 24) >>> 0) + ((buf[pos + 1] << 16) | (buf[pos + 2] << 8) | buf[pos + 3]);
}

/** esc(key) ‖ 00 00 ‖ rev ‖ sub */
export function historyKey(key: Uint8Array, rev: number, sub: number): Buffer {
  const out = Buffer.allocUnsafe(escapedLength(key) + historySuffixBytes);
  let pos = writeEscaped(key, out, 0);
  out[pos++] = 0;
  out[pos++] = 0;
  writeRev(out, pos, rev, sub);
  return out;
}

/** esc(key): lower bound of the key's records, and exclusive upper bound of all smaller keys' records. */
export function escapedBound(key: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(escapedLength(key));
  writeEscaped(key, out, 0);
  return out;
}

/** esc(key) ‖ 00 01: just past every record of key, below every record of a larger key. */
export function historyKeyEnd(key: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(escapedLength(key) + 2);
  const pos = writeEscaped(key, out, 0);
  out[pos] = 0;
  out[pos + 1] = 1;
  return out;
}

export interface HistoryKeyParts {
  key: Buffer;
  rev: number;
  sub: number;
}

/** Inverse of historyKey. */
export function decodeHistoryKey(hk: Uint8Array): HistoryKeyParts {
  const end = hk.length - historySuffixBytes;
  assert(end >= 1 && hk[end] === 0 && hk[end + 1] === 0, 'malformed history key');
  const key = Buffer.allocUnsafe(end);
  let n = 0;
  for (let i = 0; i < end; i++) {
    key[n++] = hk[i];
    if (hk[i] === 0) {
      assert(hk[i + 1] === 0xff, 'malformed escape in history key');
      i++;
    }
  }
  return { key: key.subarray(0, n), rev: readRevMain(hk, end + 2), sub: readSub(hk, end + 10) };
}

/** rev ‖ sub */
export function revKey(rev: number, sub: number): Buffer {
  const out = Buffer.allocUnsafe(revKeyBytes);
  writeRev(out, 0, rev, sub);
  return out;
}

export function decodeRevKey(k: Uint8Array): { rev: number; sub: number } {
  assert(k.length === revKeyBytes, 'malformed revlog key');
  return { rev: readRevMain(k, 0), sub: readSub(k, 8) };
}

/** Go's bytes.Compare. */
export function bytesCompare(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}
