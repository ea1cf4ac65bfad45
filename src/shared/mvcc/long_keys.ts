// Keys too long for `latest` and `history` (keys.ts isShortKey is false: the escaped key does not fit an
// LMDB key of 1978 bytes with its revision suffix). etcd accepts any key that fits in a request, so these
// live in two more databases with the same records, addressed by a bucket prefix and a hash tag:
//
//   xlatest   B(key, 1962) ‖ tag             -> u32 key length ‖ key ‖ latest record (records.ts)
//   xhistory  B(key, 1950) ‖ tag ‖ rev ‖ sub  -> u32 key length ‖ key ‖ history record
//
//   B(key, q) = esc(p) ‖ 00 01, p = the longest prefix of key whose escaped form is at most q bytes
//   tag       = the first 14 bytes of sha256(key), its first byte capped at 0xFE
//
// Buckets sort in key order: two long keys with different p differ inside esc(p) (or one p is the other
// followed by 0x00, whose 00 01 sorts below the other's next escaped byte, see keys.ts). Inside a bucket
// the keys sort by tag, not by key, so a range reads every long key it covers and sorts them: a range
// costs O(long keys in it) more, and one meta lookup when the store never held a long key (hasLongKeys). Point
// reads, writes and a key's revisions (tag ‖ rev ‖ sub) are single seeks as for short keys. Two keys
// with the same tag (a 2^-111 event per pair) cannot both be stored: the second put is refused.
//
// The short databases are untouched, so stores written before long keys existed read the same.
import { createHash } from 'node:crypto';
import { assert } from '../errors';
import { Dbs } from './dbs';
import { escapedLength, historyRevBytes, lmdbKeyBytesMax, writeEscaped, writeRev, readRevSub } from './keys';

const tagBytes = 14;
const longKeysFlag = Buffer.from('long');
const one = Buffer.from([1]);

/**
 * True once any long key was stored (meta "long", never cleared): ranges of a store without long keys
 * pay one meta lookup (~0.2 µs) instead of a seek in each long-key table and the bounds it needs.
 */
export function hasLongKeys(dbs: Dbs): boolean {
  return dbs.meta.getBinary(longKeysFlag) !== undefined;
}

/** Called by the writer of a long key, in the same write transaction. */
export function markLongKeys(dbs: Dbs): void {
  if (!hasLongKeys(dbs)) dbs.meta.putSync(longKeysFlag, one);
}
/** Longest esc(p) in an xlatest key: B ‖ tag fits LMDB's key size. */
const latestPrefixMax = lmdbKeyBytesMax - tagBytes - 2;
/** Longest esc(p) in an xhistory key: B ‖ tag ‖ rev ‖ sub fits. */
const historyPrefixMax = lmdbKeyBytesMax - tagBytes - 2 - historyRevBytes;

export function keyTag(key: Uint8Array): Buffer {
  const tag = createHash('sha256').update(key).digest().subarray(0, tagBytes);
  if (tag[0] === 0xff) tag[0] = 0xfe;
  return tag;
}

/**
 * head ‖ body as one LMDB key for tables that need each body's entry, not its order (leasekeys,
 * auth): inline when it fits, else head ‖ the body's first bytes ‖ keyTag(body), exactly LMDB's key
 * size, so the length alone tells a hashed key (isHashedKey) from an inline one. A hashed key's
 * table keeps the whole body in the value.
 */
export function fitKey(head: Uint8Array, body: Uint8Array): Buffer {
  if (head.length + body.length < lmdbKeyBytesMax) return Buffer.concat([head, body]);
  const out = Buffer.allocUnsafe(lmdbKeyBytesMax);
  out.set(head, 0);
  const kept = lmdbKeyBytesMax - head.length - tagBytes;
  out.set(body.subarray(0, kept), head.length);
  keyTag(body).copy(out, head.length + kept);
  return out;
}

export function isHashedKey(k: Uint8Array): boolean {
  return k.length === lmdbKeyBytesMax;
}

/** Raw length of the longest prefix of key whose escaped form is at most q bytes. */
function prefixLength(key: Uint8Array, q: number): number {
  let n = 0;
  let esc = 0;
  while (n < key.length && esc + (key[n] === 0 ? 2 : 1) <= q) esc += key[n++] === 0 ? 2 : 1;
  return n;
}

/** B(key, q) ‖ tag, with room for `extra` more bytes. Returns the buffer and the write position. */
function bucketAndTag(key: Uint8Array, q: number, tag: Buffer, extra: number): { out: Buffer; pos: number } {
  const p = key.subarray(0, prefixLength(key, q));
  const out = Buffer.allocUnsafe(escapedLength(p) + 2 + tagBytes + extra);
  let pos = writeEscaped(p, out, 0);
  out[pos++] = 0;
  out[pos++] = 1;
  pos += tag.copy(out, pos);
  return { out, pos };
}

export function xlatestKey(key: Uint8Array, tag = keyTag(key)): Buffer {
  return bucketAndTag(key, latestPrefixMax, tag, 0).out;
}

/** B ‖ tag: every xhistory record of key starts with it. */
export function xhistoryPrefix(key: Uint8Array, tag = keyTag(key)): Buffer {
  return bucketAndTag(key, historyPrefixMax, tag, 0).out;
}

export function xhistoryKey(key: Uint8Array, rev: number, sub: number, tag = keyTag(key)): Buffer {
  const { out, pos } = bucketAndTag(key, historyPrefixMax, tag, historyRevBytes);
  writeRev(out, pos, rev, sub);
  return out;
}

/** Just past every record of the key whose xhistory prefix is given (revisions stay below 2^56). */
export function xhistoryPrefixEnd(prefix: Buffer): Buffer {
  return Buffer.concat([prefix, Buffer.from([0xff])]);
}

export function xhistoryRev(hk: Uint8Array): { rev: number; sub: number } {
  return readRevSub(hk, hk.length - historyRevBytes);
}

/** u32 key length ‖ key ‖ record */
export function wrapRecord(key: Uint8Array, record: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + key.length + record.length);
  out.writeUInt32BE(key.length, 0);
  out.set(key, 4);
  out.set(record, 4 + key.length);
  return out;
}

export function unwrapKey(v: Buffer): Buffer {
  const n = v.readUInt32BE(0);
  assert(4 + n <= v.length, 'malformed long-key record');
  return v.subarray(4, 4 + n);
}

export function unwrapRecord(v: Buffer): Buffer {
  return v.subarray(4 + v.readUInt32BE(0));
}

/** True when the wrapped record belongs to key (and not to another key with the same tag). */
export function isRecordOf(v: Buffer, key: Uint8Array): boolean {
  const n = v.readUInt32BE(0);
  return n === key.length && Buffer.compare(v.subarray(4, 4 + n), key) === 0;
}

/**
 * LMDB bounds in a long-key database for the user keys [a, b) (b undefined: no end), with q the
 * database's prefix limit: every long key in [a, b) lies inside them. A few keys outside [a, b) may too
 * (those sharing the first q-1 escaped bytes with a or b); callers filter by the full key.
 *   start = esc(a) cut to q-1 bytes: a long key >= a has an esc(p) that is >= it.
 *   end   = esc(b) cut to q-1 bytes ‖ FF FF: a long key < b either differs below q-1 with a smaller byte,
 *           or shares those q-1 bytes and continues with at most one escaped byte and then 00 01.
 */
export function longBounds(a: Buffer, b: Buffer | undefined, history: boolean): { start: Buffer; end?: Buffer } {
  const q = history ? historyPrefixMax : latestPrefixMax;
  const cut = (k: Buffer): Buffer => {
    const out = Buffer.allocUnsafe(escapedLength(k));
    writeEscaped(k, out, 0);
    return out.subarray(0, Math.min(out.length, q - 1));
  };
  return { start: cut(a), end: b === undefined ? undefined : Buffer.concat([cut(b), Buffer.from([0xff, 0xff])]) };
}

/** The long keys in [a, b) with their xlatest records, in key order. */
export function longLatestRange(dbs: Dbs, a: Buffer, b: Buffer | undefined): Array<{ key: Buffer; record: Buffer }> {
  if (!hasLongKeys(dbs)) return [];
  const { start, end } = longBounds(a, b, false);
  if (end !== undefined && Buffer.compare(start, end) >= 0) return [];
  const out: Array<{ key: Buffer; record: Buffer }> = [];
  for (const { value } of dbs.xlatest.getRange({ start: start.length > 0 ? start : undefined, end }) as Iterable<{ value: Buffer }>) {
    const key = unwrapKey(value);
    if (Buffer.compare(key, a) < 0 || (b !== undefined && Buffer.compare(key, b) >= 0)) continue;
    out.push({ key, record: unwrapRecord(value) });
  }
  if (out.length > 1) out.sort((x, y) => Buffer.compare(x.key, y.key));
  return out;
}

/** The distinct long keys in [a, b) that have history records, in key order. */
export function longHistoryKeys(dbs: Dbs, a: Buffer, b: Buffer | undefined): Buffer[] {
  if (!hasLongKeys(dbs)) return [];
  const { start, end } = longBounds(a, b, true);
  const out: Buffer[] = [];
  let pos = start;
  for (;;) {
    if (end !== undefined && Buffer.compare(pos, end) >= 0) break;
    let first: { key: Buffer; value: Buffer } | undefined;
    for (const e of dbs.xhistory.getRange({ start: pos.length > 0 ? pos : undefined, end, limit: 1 }) as Iterable<{
      key: Buffer;
      value: Buffer;
    }>)
      first = e;
    if (first === undefined) break;
    const key = unwrapKey(first.value);
    if (Buffer.compare(key, a) >= 0 && (b === undefined || Buffer.compare(key, b) < 0)) out.push(Buffer.from(key));
    pos = xhistoryPrefixEnd(first.key.subarray(0, first.key.length - historyRevBytes));
  }
  if (out.length > 1) out.sort(Buffer.compare);
  return out;
}

/** True when key can be stored among the long keys: no other key holds its tag in either database. */
export function longKeyFree(dbs: Dbs, key: Buffer): boolean {
  const tag = keyTag(key);
  const live = dbs.xlatest.getBinary(xlatestKey(key, tag));
  if (live !== undefined && !isRecordOf(live, key)) return false;
  const prefix = xhistoryPrefix(key, tag);
  for (const { value } of dbs.xhistory.getRange({ start: prefix, end: xhistoryPrefixEnd(prefix), limit: 1 }) as Iterable<{
    value: Buffer;
  }>) {
    if (!isRecordOf(value, key)) return false;
  }
  return true;
}
