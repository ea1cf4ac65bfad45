// int64 fields decode as Long (protobufjs uses the long package when present) so that 64-bit IDs keep
// full precision.
// Revisions, counts and limits stay far below 2^53 and are handled as numbers.
import Long from 'long';

export type Int64 = number | Long | null | undefined;

/** A revision, count or limit as a JS number; asserts it is exactly representable. */
export function toNum(v: Int64): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return v;
  const n = v.toNumber();
  if (!Number.isSafeInteger(n)) throw new RangeError(`int64 ${v.toString()} out of the safe integer range`);
  return n;
}

/** A signed int64 (lease IDs) as a bigint, exact over the whole range. */
export function toBigInt(v: Int64): bigint {
  if (v === null || v === undefined) return 0n;
  if (typeof v === 'number') return BigInt(v);
  const u = (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
  return v.unsigned ? u : BigInt.asIntN(64, u);
}

/** A bigint as a signed int64 Long for protobufjs. */
export function bigIntToLong(v: bigint): Long {
  return longOfBits(v, false);
}

/** A uint64 (member IDs) as a bigint. */
export function toUint64(v: Int64): bigint {
  return BigInt.asUintN(64, toBigInt(v));
}

/** A bigint as an unsigned int64 Long, for uint64 fields (member IDs). */
export function uint64ToLong(v: bigint): Long {
  return longOfBits(v, true);
}

function longOfBits(v: bigint, unsigned: boolean): Long {
  const u = BigInt.asUintN(64, v);
  return Long.fromBits(Number(u & 0xffffffffn) | 0, Number(u >> 32n) | 0, unsigned);
}
