// A bbolt database file written in one pass from sorted input, page by page into a sink: the format of
// etcd's backend and of `etcdctl snapshot save` (layouts in format.ts). No Go at run time.
//
// Shape of the file it writes (page size P, ids in file order):
//
//   page 0, 1   meta (txid 0 and 1, both naming the same root; bbolt opens the higher txid)
//   page 2      freelist, empty (nothing in the file is free)
//   page 3..    the buckets' B+trees, bottom up: a leaf page as soon as it is full, a branch page as soon
//               as one level's page is full, each bucket's root after its last leaf, the root bucket (the
//               bucket of buckets, named by the meta pages) last
//
// Pages 0-2 name things known only at the end (the root page, the page count), so the sink gets them
// last, by position (`writeAt(0, ...)`); every other page is appended in id order as it is made. Memory
// stays at one pending page per tree level per open bucket, whatever the number of keys.
//
// As bbolt writes them: keys strictly increasing (bytes.Compare) and never empty; a leaf's elements then
// its keys and values packed after them (`pos` counted from the element); a branch element names its
// child's first key; a page too large for P spills into overflow pages (count P-sized pages, overflow =
// count - 1); a bucket whose one leaf fits in P/4 and holds no sub-bucket is written inline in its
// parent's value (header with root 0 ‖ the leaf as a page with id 0), as bbolt's Bucket.inlineable; an
// empty bucket is inline. Pages are filled up to P (bbolt's FillPercent 1.0, as `bbolt compact` uses).
import { closeSync, openSync, writeSync } from 'node:fs';
import { assert } from '../errors';
import {
  boltMagic,
  boltVersion,
  branchElementBytes,
  branchPageFlag,
  bucketHeaderBytes,
  bucketLeafFlag,
  defaultPageBytes,
  fnv1a64,
  freelistPageFlag,
  inlineBucketFraction,
  leafElementBytes,
  leafPageFlag,
  metaBytes,
  metaPageFlag,
  pageHeaderBytes,
} from './format';

/** Where the pages go. append() gets pages 3.. in id order; writeAt(0, ...) gets pages 0-2 once, at the end.
 * The bytes are the writer's again when either returns (the writer reuses its page buffer): copy them. */
export interface PageSink {
  append(bytes: Buffer): void;
  writeAt(offset: number, bytes: Buffer): void;
}

/**
 * A PageSink on a new file: appends collect in a buffer of bufferBytes and go out in one write each;
 * the header pages go to their place once finished. Synchronous (for a worker thread).
 */
export class FileSink implements PageSink {
  readonly #fd: number;
  readonly #buf: Buffer;
  #used = 0;
  /** File offset of the buffer's first byte. */
  #at: number;

  constructor(path: string, firstOffset: number, bufferBytes: number) {
    this.#fd = openSync(path, 'wx', 0o600);
    this.#buf = Buffer.allocUnsafe(bufferBytes);
    this.#at = firstOffset;
  }

  append(bytes: Buffer): void {
    if (this.#used + bytes.length > this.#buf.length) this.#drain();
    if (bytes.length >= this.#buf.length) {
      this.#writeAll(bytes, this.#at);
      this.#at += bytes.length;
      return;
    }
    bytes.copy(this.#buf, this.#used);
    this.#used += bytes.length;
  }

  writeAt(offset: number, bytes: Buffer): void {
    this.#drain();
    this.#writeAll(bytes, offset);
  }

  /** Writes what is buffered and closes the file. */
  close(): void {
    this.#drain();
    closeSync(this.#fd);
  }

  #drain(): void {
    if (this.#used === 0) return;
    this.#writeAll(this.#buf.subarray(0, this.#used), this.#at);
    this.#at += this.#used;
    this.#used = 0;
  }

  #writeAll(b: Buffer, offset: number): void {
    for (let done = 0; done < b.length;) done += writeSync(this.#fd, b, done, b.length - done, offset + done);
  }
}

/** Byte offset of the first page append() gets (page 3). */
export function firstAppendOffset(pageBytes: number): number {
  return firstDataPage * pageBytes;
}

/** First page id of the trees: after meta 0, meta 1 and the freelist. */
const firstDataPage = 3;
const freelistPage = 2;
/** bbolt panics on a page of 0xFFFF elements or more (node.write). */
const pageElementsMax = 0xfffe;

interface Element {
  key: Buffer;
  /** Leaf: the value (a bucket header ‖ inline page for a sub-bucket). */
  value: Buffer;
  /** Leaf: 0 or bucketLeafFlag. */
  flags: number;
  /** Branch: the child page. */
  pgid: number;
}

/** One level of a bucket's tree: the page being filled, and how many pages it has written. */
class Level {
  elements: Element[] = [];
  /** Bytes of the pending page as bbolt's node.size() counts them (header + elements + keys + values). */
  bytes = pageHeaderBytes;
  written = 0;
  constructor(readonly leaf: boolean) {}
}

/** A bucket being written: its tree levels (0 = leaves), bottom up. */
class Tree {
  readonly levels: Level[] = [new Level(true)];
  /** The last key added, to check the order. */
  last: Buffer | null = null;
  hasSubBucket = false;
  constructor(readonly parent: Tree | null) {}
}

export class BoltWriter {
  readonly pageBytes: number;
  readonly #sink: PageSink;
  /** Next page id to write. */
  #next = firstDataPage;
  #root: Tree | null = new Tree(null);
  /** The open bucket, innermost. */
  #open: { tree: Tree; name: Buffer } | null = null;
  readonly #stack: Array<{ tree: Tree; name: Buffer }> = [];
  #finished = false;
  /** The page being encoded, reused (sinks copy what they get). Grows for overflow pages. */
  #page: Buffer;

  constructor(sink: PageSink, pageBytes = defaultPageBytes) {
    assert(pageBytes >= 1024 && (pageBytes & (pageBytes - 1)) === 0, 'page size must be a power of two >= 1024');
    this.pageBytes = pageBytes;
    this.#sink = sink;
    this.#page = Buffer.alloc(pageBytes);
  }

  /** Pages written so far past the header pages (the file is this many pages plus 3 once finished). */
  get pagesWritten(): number {
    return this.#next - firstDataPage;
  }

  /** Opens a bucket inside the open one (or at the top). Names, like keys, come in increasing order. */
  beginBucket(name: Uint8Array): void {
    assert(!this.#finished, 'writer finished');
    const parent = this.#open?.tree ?? this.#root!;
    const n = asBuffer(name);
    this.#checkOrder(parent, n);
    parent.hasSubBucket = true;
    const open = { tree: new Tree(parent), name: n };
    if (this.#open !== null) this.#stack.push(this.#open);
    this.#open = open;
  }

  /**
   * Adds key -> value to the open bucket; keys strictly increasing. The writer keeps key and value (not
   * copies) until their page is written: the caller must not change them.
   */
  put(key: Uint8Array, value: Uint8Array): void {
    assert(this.#open !== null, 'put outside a bucket');
    const k = asBuffer(key);
    this.#checkOrder(this.#open.tree, k);
    this.#add(this.#open.tree, 0, { key: k, value: asBuffer(value), flags: 0, pgid: 0 });
  }

  /** Closes the open bucket: writes its remaining pages (or makes it inline) and adds it to its parent. */
  endBucket(): void {
    assert(this.#open !== null, 'no open bucket');
    const { tree, name } = this.#open;
    const value = this.#close(tree, true);
    this.#open = this.#stack.pop() ?? null;
    this.#add(tree.parent!, 0, { key: name, value, flags: bucketLeafFlag, pgid: 0 });
  }

  /** Writes the root bucket's pages, then pages 0-2. Returns the file's size in bytes. */
  finish(): number {
    assert(this.#open === null && !this.#finished, 'finish with an open bucket');
    const header = this.#close(this.#root!, false);
    const rootPage = Number(header.readBigUInt64LE(0));
    this.#finished = true;
    this.#root = null;
    const pages = this.#next;
    const head = Buffer.alloc(firstDataPage * this.pageBytes);
    for (const txid of [0, 1]) this.#writeMeta(head, txid, rootPage, pages);
    const fl = head.subarray(freelistPage * this.pageBytes);
    fl.writeBigUInt64LE(BigInt(freelistPage), 0);
    fl.writeUInt16LE(freelistPageFlag, 8);
    this.#sink.writeAt(0, head);
    return pages * this.pageBytes;
  }

  #writeMeta(head: Buffer, txid: number, rootPage: number, pages: number): void {
    const p = head.subarray(txid * this.pageBytes, (txid + 1) * this.pageBytes);
    p.writeBigUInt64LE(BigInt(txid), 0);
    p.writeUInt16LE(metaPageFlag, 8);
    const m = p.subarray(pageHeaderBytes, pageHeaderBytes + metaBytes);
    m.writeUInt32LE(boltMagic, 0);
    m.writeUInt32LE(boltVersion, 4);
    m.writeUInt32LE(this.pageBytes, 8);
    m.writeUInt32LE(0, 12);
    m.writeBigUInt64LE(BigInt(rootPage), 16); // root bucket: root page, sequence 0
    m.writeBigUInt64LE(0n, 24);
    m.writeBigUInt64LE(BigInt(freelistPage), 32);
    m.writeBigUInt64LE(BigInt(pages), 40);
    m.writeBigUInt64LE(BigInt(txid), 48);
    m.writeBigUInt64LE(fnv1a64(m.subarray(0, 56)), 56);
  }

  #checkOrder(t: Tree, key: Buffer): void {
    assert(key.length > 0, 'bbolt keys are never empty');
    assert(t.last === null || Buffer.compare(t.last, key) < 0, 'keys must be strictly increasing');
    t.last = key;
  }

  /** Adds an element to level i of t, writing the level's page first when the element does not fit. */
  #add(t: Tree, i: number, e: Element): void {
    if (i === t.levels.length) t.levels.push(new Level(false));
    const lv = t.levels[i]!;
    const size = (lv.leaf ? leafElementBytes + e.value.length : branchElementBytes) + e.key.length;
    if (lv.elements.length > 0 && (lv.bytes + size > this.pageBytes || lv.elements.length >= pageElementsMax)) this.#flush(t, i);
    lv.elements.push(e);
    lv.bytes += size;
  }

  /** Writes level i's page and adds it to level i+1. */
  #flush(t: Tree, i: number): void {
    const lv = t.levels[i]!;
    const first = lv.elements[0]!.key;
    const pgid = this.#writePage(lv);
    this.#add(t, i + 1, { key: first, value: Buffer.alloc(0), flags: 0, pgid });
  }

  /** Writes a level's pending elements as the next page(s); returns its page id. */
  #writePage(lv: Level): number {
    const pgid = this.#next;
    const count = Math.ceil(lv.bytes / this.pageBytes);
    if (this.#page.length < count * this.pageBytes) this.#page = Buffer.alloc(count * this.pageBytes);
    const page = this.#page.subarray(0, count * this.pageBytes);
    page.fill(0); // the bytes past the data, as bbolt's zeroed pages
    encodePage(page, pgid, lv, count - 1);
    this.#next += count;
    lv.elements = [];
    lv.bytes = pageHeaderBytes;
    lv.written++;
    this.#sink.append(page);
    return pgid;
  }

  /**
   * Ends a tree: returns its bucket value (header, and the inline page when inline is allowed and it
   * fits). Writes the rest of its levels up to one root page.
   */
  #close(t: Tree, inlineAllowed: boolean): Buffer {
    const leaves = t.levels[0]!;
    if (
      inlineAllowed &&
      t.levels.length === 1 &&
      leaves.written === 0 &&
      !t.hasSubBucket &&
      leaves.bytes <= this.pageBytes / inlineBucketFraction
    ) {
      const value = Buffer.alloc(bucketHeaderBytes + leaves.bytes);
      encodePage(value.subarray(bucketHeaderBytes), 0, leaves, 0);
      return value; // root 0, sequence 0
    }
    let root = -1;
    for (let i = 0; root < 0; i++) {
      const lv = t.levels[i]!;
      const above = t.levels[i + 1];
      if (lv.written === 0 && lv.elements.length === 1 && i > 0 && above === undefined) {
        root = lv.elements[0]!.pgid; // this level is one element naming the root page below it
      } else if (lv.written === 0 && above === undefined) {
        root = this.#writePage(lv); // a single page (maybe an empty leaf): the root
      } else if (lv.elements.length > 0) {
        this.#flush(t, i);
      }
    }
    const header = Buffer.alloc(bucketHeaderBytes);
    header.writeBigUInt64LE(BigInt(root), 0);
    return header;
  }
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.length);
}

/** node.write: the page header, then the elements, then each element's key and value. */
function encodePage(p: Buffer, pgid: number, lv: Level, overflow: number): void {
  p.writeBigUInt64LE(BigInt(pgid), 0);
  p.writeUInt16LE(lv.leaf ? leafPageFlag : branchPageFlag, 8);
  p.writeUInt16LE(lv.elements.length, 10);
  p.writeUInt32LE(overflow, 12);
  let data = pageHeaderBytes + lv.elements.length * (lv.leaf ? leafElementBytes : branchElementBytes);
  lv.elements.forEach((e, n) => {
    const at = pageHeaderBytes + n * (lv.leaf ? leafElementBytes : branchElementBytes);
    if (lv.leaf) {
      p.writeUInt32LE(e.flags, at);
      p.writeUInt32LE(data - at, at + 4);
      p.writeUInt32LE(e.key.length, at + 8);
      p.writeUInt32LE(e.value.length, at + 12);
    } else {
      p.writeUInt32LE(data - at, at);
      p.writeUInt32LE(e.key.length, at + 4);
      p.writeBigUInt64LE(BigInt(e.pgid), at + 8);
    }
    data += e.key.copy(p, data);
    if (lv.leaf) data += e.value.copy(p, data);
  });
}
