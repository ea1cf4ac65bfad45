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
