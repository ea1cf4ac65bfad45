// Segment files: naming (etcd's "%016x-%016x.wal", seq-firstIndex), listing, and scanning one
// segment's bytes into records with torn-tail detection.
//
// Torn tail rule: only the LAST record of the LAST segment may be damaged by a crash mid-write, so
// only there is damage treated as "truncate and continue". Anything else is a WalCorruptError.
// An all-zero remainder ends a segment cleanly (the WAL writes zeros ahead of its records; a segment
// cut before a crash may keep its unused ones).
import * as fsp from 'node:fs/promises';
import {
  DecodedRecord, HEADER_BYTES, decodeRecord, lengthFitsType, recordCrcOk,
} from './record';
import { WalCorruptError } from './errors';

export interface SegmentName {
  seq: number;
  /** lastIndex + 1 when the segment was cut: every live entry of EARLIER segments is below this. */
  firstIndex: number;
  name: string;
}

const NAME_RE = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;
export const TMP_SUFFIX = '.tmp';

export function segmentName(seq: number, firstIndex: number): SegmentName {
  const hex = (n: number): string => n.toString(16).padStart(16, '0');
  return { seq, firstIndex, name: `${hex(seq)}-${hex(firstIndex)}.wal` };
}

export function parseSegmentName(name: string): SegmentName | null {
  const m = NAME_RE.exec(name);
  if (m === null) return null;
  const seq = parseInt(m[1], 16);
  const firstIndex = parseInt(m[2], 16);
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(firstIndex)) return null;
  return { seq, firstIndex, name };
}

/** Segments sorted by seq. A missing seq in the middle is corruption (a lost file). */
export async function listSegments(dir: string): Promise<SegmentName[]> {
  const segs: SegmentName[] = [];
  for (const name of await fsp.readdir(dir)) {
    const s = parseSegmentName(name);
    if (s !== null) segs.push(s);
  }
  segs.sort((a, b) => a.seq - b.seq);
  for (let i = 1; i < segs.length; i++) {
    if (segs[i].seq !== segs[i - 1].seq + 1) {
      throw new WalCorruptError(`${dir}/${segs[i].name}`, 0, `segment seq ${segs[i - 1].seq + 1} is missing`);
    }
  }
  return segs;
}

export interface ScanResult {
  /** Bytes of whole, valid records from the start of the file. */
  validBytes: number;
  /** True when a torn tail follows validBytes (only possible when isLast). */
  torn: boolean;
}

type Damage = 'short header' | 'length runs past end of file' | 'crc mismatch';

/**
 * Calls onRecord for every record of one segment, in order. Throws WalCorruptError for damage
 * that is not a torn tail of the last segment.
 */
export function scanSegment(buf: Buffer, file: string, isLast: boolean,
  onRecord: (r: DecodedRecord, offset: number) => void): ScanResult {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const size = buf.length;
  let off = 0;
  while (off < size) {
    if (buf[off] === 0 && allZero(buf, off)) break;
    const damage = damageAt(buf, dv, off);
    if (damage !== null) {
      if (isLast && isTornTail(buf, dv, off, damage)) return { validBytes: off, torn: true };
      throw new WalCorruptError(file, off, damage);
    }
    const len = dv.getUint32(off, true);
    const rec = decodeRecord(buf, dv, off, len);
    if (rec === null) throw new WalCorruptError(file, off, `bad record type ${buf[off + 8]} or payload`);
    onRecord(rec, off);
    off += HEADER_BYTES + len;
  }
  return { validBytes: off, torn: false };
}

function damageAt(buf: Buffer, dv: DataView, off: number): Damage | null {
  if (buf.length - off < HEADER_BYTES) return 'short header';
  const len = dv.getUint32(off, true);
  if (off + HEADER_BYTES + len > buf.length) return 'length runs past end of file';
  return recordCrcOk(buf, dv, off, len) ? null : 'crc mismatch';
}

/**
 * A torn tail is what a crash during the last write leaves: the record is cut short by EOF, or it fails
 * its CRC and ends at EOF, or it fails its CRC and only zeros (preallocated space) follow it. A record
 * whose length field was itself flipped can look like any of these (in preallocated space a wrong
 * length easily lands on zeros), so apart from a CRC failure ending exactly at EOF, damage counts as
 * torn only when no valid record starts anywhere after it.
 */
function isTornTail(buf: Buffer, dv: DataView, off: number, damage: Damage): boolean {
  if (damage === 'crc mismatch') {
    const end = off + HEADER_BYTES + dv.getUint32(off, true);
    if (end === buf.length) return true;
    if (!allZero(buf, end)) return false;
  }
  return !validRecordAfter(buf, dv, off);
}

function allZero(buf: Buffer, from: number): boolean {
  for (let i = from; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

/** Cheap filters (type byte, length for the type, fits in file) before any CRC is computed. */
function validRecordAfter(buf: Buffer, dv: DataView, off: number): boolean {
  for (let p = off + 1; p + HEADER_BYTES <= buf.length; p++) {
    const len = dv.getUint32(p, true);
    if (p + HEADER_BYTES + len > buf.length || !lengthFitsType(buf[p + 8], len)) continue;
    if (recordCrcOk(buf, dv, p, len)) return true;
  }
  return false;
}
