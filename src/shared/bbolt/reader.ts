// A read-only bbolt database reader (the file format's facts are in format.ts): etcd's backend, or a
// snapshot etcdctl saved. No Go at run time, no mmap, and never the whole file in memory: pages are read
// with positional reads as the walk needs them, so a cursor holds one page per tree level (plus the
// overflow pages of the largest element on its path).
//
// What is checked (a file that fails any of it is refused with BoltCorruptError, one line):
//   - the meta pages: magic, version, FNV-1a checksum; the valid one with the higher txid is used, as
//     bbolt's db.meta() does (the other may be a torn write of the last transaction);
//   - every page read: its header names the page id asked for, it has the flag the walk expects (branch
//     or leaf), and it lies below the meta's high-water mark and inside the file;
//   - every element: key and value inside the page (with its overflow pages).
// bbolt keeps no checksum of data pages, so a flipped byte inside a value cannot be detected here.
import * as fs from 'node:fs';
import {
  boltMagic,
  boltVersion,
  branchElementBytes,
  branchPageFlag,
  bucketHeaderBytes,
  bucketLeafFlag,
  defaultPageBytes,
  fnv1a64,
  leafElementBytes,
  leafPageFlag,
  metaBytes,
  metaPageFlag,
  pageHeaderBytes,
} from './format';

/** The file is not a readable bbolt database; message is one line naming the file and the fault. */
export class BoltCorruptError extends Error {
  constructor(file: string, what: string) {
    super(`${file}: not a valid bbolt database: ${what}`);
    this.name = 'BoltCorruptError';
  }
}

export interface BoltMeta {
  pageSize: number;
  /** Root page of the bucket of buckets. */
  root: bigint;
  freelist: bigint;
  /** First page id past the file's pages. */
  pgid: bigint;
  txid: bigint;
}

/** A bucket to walk: its root page, or (inline) its single leaf page held in its parent's value. */
export interface BucketRef {
  root: bigint;
  sequence: bigint;
  /** The inline leaf page (root === 0n), else null. */
  inline: Buffer | null;
}

/** One element of a bucket, in key order. value is null for a nested bucket (see `bucket`). */
export interface BoltEntry {
  key: Buffer;
  value: Buffer | null;
  /** The nested bucket's header value (bucket header and, inline, its page) when value is null. */
  bucketValue: Buffer | null;
}

interface Page {
  buf: Buffer;
  flags: number;
  count: number;
}

/** The most pages one element may span (overflow): a sanity bound against a corrupt header (4 GiB). */
const maxOverflowBytes = 4 * 1024 * 1024 * 1024;

export class BoltReader {
  readonly file: string;
  readonly meta: BoltMeta;
  readonly #fd: number;
  readonly #fileBytes: number;

  private constructor(file: string, fd: number, fileBytes: number, meta: BoltMeta) {
    this.file = file;
    this.#fd = fd;
    this.#fileBytes = fileBytes;
    this.meta = meta;
  }

  /** Opens file read-only and validates its meta pages. Throws BoltCorruptError. */
  static open(file: string): BoltReader {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const meta = readMeta(file, fd, size);
      return new BoltReader(file, fd, size, meta);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  close(): void {
    fs.closeSync(this.#fd);
  }

  /** The root bucket (the bucket of buckets). */
  rootBucket(): BucketRef {
    return { root: this.meta.root, sequence: 0n, inline: null };
  }

  /** A nested bucket of parent by name (etcd's buckets are nested in the root bucket), or null. */
  bucket(name: string | Buffer, parent: BucketRef = this.rootBucket()): BucketRef | null {
    const want = typeof name === 'string' ? Buffer.from(name) : name;
    for (const e of this.entries(parent, want)) {
      const c = Buffer.compare(e.key, want);
      if (c > 0) return null;
      if (c < 0) continue;
      if (e.bucketValue === null) throw this.#corrupt(`key ${want.toString()} is not a bucket`);
      return this.#bucketRef(e.bucketValue);
    }
    return null;
  }

  /**
   * The bucket's elements in key order, from the first key >= from (all when omitted). Keys and values
   * are views of freshly read page buffers: valid as long as the caller holds them.
   */
  *entries(b: BucketRef, from: Buffer | null = null): Generator<BoltEntry> {
    if (b.inline !== null) {
      yield* this.#leafEntries(this.#inlinePage(b.inline), from);
      return;
    }
    yield* this.#walk(b.root, from, 0);
  }

  *#walk(id: bigint, from: Buffer | null, depth: number): Generator<BoltEntry> {
    if (depth > 64) throw this.#corrupt(`tree deeper than 64 levels at page ${id}`);
    const p = this.#page(id);
    if (p.flags === leafPageFlag) {
      yield* this.#leafEntries(p, from);
      return;
    }
    if (p.flags !== branchPageFlag) throw this.#corrupt(`page ${id} has flags 0x${p.flags.toString(16)}, expected a branch or leaf page`);
    let start = 0;
    if (from !== null) {
      // The last child whose first key <= from (bbolt's cursor.searchPage).
      while (start + 1 < p.count && Buffer.compare(this.#branchKey(p, start + 1), from) <= 0) start++;
    }
    for (let i = start; i < p.count; i++) {
      const child = p.buf.readBigUInt64LE(pageHeaderBytes + i * branchElementBytes + 8);
      yield* this.#walk(child, i === start ? from : null, depth + 1);
    }
  }

  *#leafEntries(p: Page, from: Buffer | null): Generator<BoltEntry> {
    if (p.flags !== leafPageFlag) throw this.#corrupt(`expected a leaf page, found flags 0x${p.flags.toString(16)}`);
    const buf = p.buf;
    for (let i = 0; i < p.count; i++) {
      const at = pageHeaderBytes + i * leafElementBytes;
      if (at + leafElementBytes > buf.length) throw this.#corrupt(`leaf element ${i} past its page`);
      const flags = buf.readUInt32LE(at);
      const pos = buf.readUInt32LE(at + 4);
      const ksize = buf.readUInt32LE(at + 8);
      const vsize = buf.readUInt32LE(at + 12);
      const kAt = at + pos;
      if (kAt + ksize + vsize > buf.length) throw this.#corrupt(`leaf element ${i} runs past its page`);
      const key = buf.subarray(kAt, kAt + ksize);
      if (from !== null && Buffer.compare(key, from) < 0) continue;
      const v = buf.subarray(kAt + ksize, kAt + ksize + vsize);
      if ((flags & bucketLeafFlag) !== 0) yield { key, value: null, bucketValue: v };
      else yield { key, value: v, bucketValue: null };
    }
  }

  #branchKey(p: Page, i: number): Buffer {
    const at = pageHeaderBytes + i * branchElementBytes;
    const pos = p.buf.readUInt32LE(at);
    const ksize = p.buf.readUInt32LE(at + 4);
    if (at + pos + ksize > p.buf.length) throw this.#corrupt(`branch element ${i} runs past its page`);
    return p.buf.subarray(at + pos, at + pos + ksize);
  }

  #bucketRef(v: Buffer): BucketRef {
    if (v.length < bucketHeaderBytes) throw this.#corrupt('bucket header shorter than 16 bytes');
    const root = v.readBigUInt64LE(0);
    const sequence = v.readBigUInt64LE(8);
    if (root !== 0n) return { root, sequence, inline: null };
    if (v.length < bucketHeaderBytes + pageHeaderBytes) throw this.#corrupt('inline bucket without its page');
    return { root, sequence, inline: v.subarray(bucketHeaderBytes) };
  }

  #inlinePage(buf: Buffer): Page {
    return { buf, flags: buf.readUInt16LE(8), count: buf.readUInt16LE(10) };
  }

  /** Reads page id with its overflow pages (two positional reads). */
  #page(id: bigint): Page {
    const ps = this.meta.pageSize;
    if (id < 2n || id >= this.meta.pgid) throw this.#corrupt(`page ${id} outside the data pages (high-water mark ${this.meta.pgid})`);
    const off = Number(id) * ps;
    if (off + ps > this.#fileBytes) throw this.#corrupt(`page ${id} past the end of the file (${this.#fileBytes} bytes)`);
    const head = Buffer.allocUnsafe(ps);
    readFully(this.#fd, head, off);
    const gotId = head.readBigUInt64LE(0);
    if (gotId !== id) throw this.#corrupt(`page ${id} has id ${gotId} in its header`);
    const overflow = head.readUInt32LE(12);
    const flags = head.readUInt16LE(8);
    const count = head.readUInt16LE(10);
    if (overflow === 0) return { buf: head, flags, count };
    const bytes = (overflow + 1) * ps;
    if (bytes > maxOverflowBytes || off + bytes > this.#fileBytes || id + BigInt(overflow) >= this.meta.pgid)
      throw this.#corrupt(`page ${id} overflows past the end of the file (${overflow} overflow pages)`);
    const buf = Buffer.allocUnsafe(bytes);
    head.copy(buf, 0);
    readFully(this.#fd, buf.subarray(ps), off + ps);
    return { buf, flags, count };
  }

  #corrupt(what: string): BoltCorruptError {
    return new BoltCorruptError(this.file, what);
  }
}

function readFully(fd: number, buf: Buffer, position: number): void {
  let done = 0;
  while (done < buf.length) {
    const n = fs.readSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) throw new Error(`unexpected end of file at ${position + done}`);
    done += n;
  }
}

/** A meta page's body at off within buf, or the reason it is not valid. */
function parseMeta(buf: Buffer, off: number): BoltMeta | string {
  if (buf.length < off + pageHeaderBytes + metaBytes) return 'file too short for a meta page';
  if (buf.readUInt16LE(off + 8) !== metaPageFlag) return 'meta page flag missing';
  const m = off + pageHeaderBytes;
  if (buf.readUInt32LE(m) !== boltMagic) return 'bad magic';
  if (buf.readUInt32LE(m + 4) !== boltVersion) return `unsupported version ${buf.readUInt32LE(m + 4)}`;
  const want = buf.readBigUInt64LE(m + 56);
  if (fnv1a64(buf.subarray(m, m + 56)) !== want) return 'meta checksum mismatch';
  return {
    pageSize: buf.readUInt32LE(m + 8),
    root: buf.readBigUInt64LE(m + 16),
    freelist: buf.readBigUInt64LE(m + 32),
    pgid: buf.readBigUInt64LE(m + 40),
    txid: buf.readBigUInt64LE(m + 48),
  };
}

function readAt(fd: number, size: number, off: number, bytes: number): Buffer {
  const n = Math.max(0, Math.min(bytes, size - off));
  const b = Buffer.alloc(n);
  if (n > 0) readFully(fd, b, off);
  return b;
}

/** bbolt's getPageSize + db.meta(): page size from meta 0 (else meta 1 at the OS page size), then the
 * valid meta with the higher txid. */
function readMeta(file: string, fd: number, size: number): BoltMeta {
  const first = readAt(fd, size, 0, pageHeaderBytes + metaBytes);
  const m0 = parseMeta(first, 0);
  const pageSize = typeof m0 === 'string' ? defaultPageBytes : m0.pageSize;
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0)
    throw new BoltCorruptError(file, `meta page size ${pageSize} is not a power of two between 512 and 65536`);
  const m1 = parseMeta(readAt(fd, size, pageSize, pageHeaderBytes + metaBytes), 0);
  const valid = [m0, m1].filter((m): m is BoltMeta => typeof m !== 'string' && m.pageSize === pageSize);
  if (valid.length === 0) throw new BoltCorruptError(file, `both meta pages are invalid (${String(m0)}; ${String(m1)})`);
  const meta = valid.reduce((a, b) => (b.txid > a.txid ? b : a));
  if (meta.pgid * BigInt(pageSize) > BigInt(size))
    throw new BoltCorruptError(file, `file has ${size} bytes but its meta counts ${meta.pgid} pages of ${pageSize}`);
  if (meta.root < 2n || meta.root >= meta.pgid) throw new BoltCorruptError(file, `root bucket page ${meta.root} out of range`);
  return meta;
}
