// HPACK (RFC 7541). The decoder is complete: static and dynamic tables, table size updates, all
// literal forms, Huffman strings, and a cap on the decoded header list. The encoder is minimal on
// purpose: responses use only static-table indices and literals without indexing (no Huffman), so
// it keeps no state and the peer's SETTINGS_HEADER_TABLE_SIZE can never be exceeded (the session
// opens its first header block with a "table size 0" update so that even a peer that lowers the
// setting later finds nothing to expect). Response blocks are built once and cached by callers.
import { huffmanDecode, HuffmanError } from './huffman';

/** RFC 7541 Appendix A; index i+1 is STATIC_TABLE[i]. */
const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''],
  ['cache-control', ''], ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''],
  ['content-length', ''], ['content-location', ''], ['content-range', ''], ['content-type', ''],
  ['cookie', ''], ['date', ''], ['etag', ''], ['expect', ''], ['expires', ''], ['from', ''], ['host', ''],
  ['if-match', ''], ['if-modified-since', ''], ['if-none-match', ''], ['if-range', ''],
  ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''], ['location', ''], ['max-forwards', ''],
  ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''], ['referer', ''], ['refresh', ''],
  ['retry-after', ''], ['server', ''], ['set-cookie', ''], ['strict-transport-security', ''],
  ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''], ['www-authenticate', ''],
];
const STATIC_COUNT = STATIC_TABLE.length; // 61
/** RFC 7541 4.1: an entry's size is its name and value octets plus 32. */
const ENTRY_OVERHEAD = 32;

export class HpackError extends Error {}

export interface HeaderSink {
  onHeader(name: string, value: string): void;
}

/** The dynamic table as a ring of (name, value) with the newest entry at index 0. */
export class DynamicTable {
  #names: string[] = new Array<string>(16);
  #values: string[] = new Array<string>(16);
  #newest = -1; // ring slot of index 0
  #count = 0;
  #bytes = 0;
  #maxBytes: number;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }
  get length(): number { return this.#count; }
  get bytes(): number { return this.#bytes; }
  get maxBytes(): number { return this.#maxBytes; }

  #slot(i: number): number {
    return (this.#newest - i + this.#names.length) % this.#names.length;
  }
  name(i: number): string { return this.#names[this.#slot(i)]; }
  value(i: number): string { return this.#values[this.#slot(i)]; }

  setMaxBytes(n: number): void {
    this.#maxBytes = n;
    this.#evictTo(n);
  }

  /** RFC 7541 4.4: evict until the new entry fits; an entry larger than the table empties it. */
  add(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    if (size > this.#maxBytes) {
      this.#evictTo(0);
      return;
    }
    this.#evictTo(this.#maxBytes - size);
    if (this.#count === this.#names.length) this.#grow();
    this.#newest = (this.#newest + 1) % this.#names.length;
    this.#names[this.#newest] = name;
    this.#values[this.#newest] = value;
    this.#count++;
    this.#bytes += size;
  }

  #evictTo(bytes: number): void {
    while (this.#bytes > bytes) {
      const oldest = this.#slot(this.#count - 1);
      this.#bytes -= this.#names[oldest].length + this.#values[oldest].length + ENTRY_OVERHEAD;
      this.#names[oldest] = this.#values[oldest] = '';
      this.#count--;
    }
  }

  #grow(): void {
    const names = new Array<string>(this.#names.length * 2);
    const values = new Array<string>(this.#names.length * 2);
    for (let i = 0; i < this.#count; i++) {
      names[this.#count - 1 - i] = this.name(i);
      values[this.#count - 1 - i] = this.value(i);
    }
    this.#names = names;
    this.#values = values;
    this.#newest = this.#count - 1;
  }
}

export class HpackDecoder {
  readonly table: DynamicTable;
  /** Our SETTINGS_HEADER_TABLE_SIZE: the largest size update the peer may send. */
  #settingsMaxBytes: number;
  #scratch = Buffer.allocUnsafe(256);
  #buf: Buffer = this.#scratch;
  #pos = 0;
  #end = 0;

  constructor(settingsMaxBytes: number) {
    this.#settingsMaxBytes = settingsMaxBytes;
    this.table = new DynamicTable(settingsMaxBytes);
  }

  /** Decodes one complete header block, calling sink for each field while the header list stays
   *  within listBytesMax (RFC 7541 4.1 sizes). Decoding always runs to the end, because the dynamic
   *  table must stay in step with the peer's encoder. Returns false if the list was too large.
   *  Throws HpackError on a malformed block (a connection error: COMPRESSION_ERROR). */
  decode(buf: Buffer, start: number, end: number, sink: HeaderSink, listBytesMax: number): boolean {
    this.#buf = buf;
    this.#pos = start;
    this.#end = end;
    let listBytes = 0;
    let sawField = false;
    try {
      while (this.#pos < end) {
        const b = buf[this.#pos];
        if ((b & 0xe0) === 0x20) {
          // RFC 7541 4.2: size updates are only allowed before the first field of a block.
          if (sawField) throw new HpackError('hpack: dynamic table size update after a header field');
          this.#sizeUpdate();
          continue;
        }
        sawField = true;
        const name = this.#field(b);
        const value = this.#fieldValue;
        listBytes += name.length + value.length + ENTRY_OVERHEAD;
        if (listBytes <= listBytesMax) sink.onHeader(name, value);
      }
    } catch (e) {
      if (e instanceof HuffmanError) throw new HpackError(e.message);
      throw e;
    }
    return listBytes <= listBytesMax;
  }

  #fieldValue = '';

  /** Decodes one field representation starting with byte b; returns the name, sets #fieldValue. */
  #field(b: number): string {
    if (b & 0x80) { // 6.1 indexed
      const i = this.#int(7);
      if (i === 0) throw new HpackError('hpack: index 0');
      this.#fieldValue = this.#valueAt(i);
      return this.#nameAt(i);
    }
    const withIndexing = (b & 0xc0) === 0x40; // 6.2.1; else 6.2.2 without / 6.2.3 never indexed
    const i = this.#int(withIndexing ? 6 : 4);
    const name = i === 0 ? this.#string() : this.#nameAt(i);
    const value = this.#string();
    if (withIndexing) this.table.add(name, value);
    this.#fieldValue = value;
    return name;
  }

  #sizeUpdate(): void {
    const n = this.#int(5);
    if (n > this.#settingsMaxBytes) throw new HpackError(`hpack: table size update ${n} over ${this.#settingsMaxBytes}`);
    this.table.setMaxBytes(n);
  }

  #nameAt(i: number): string {
    if (i <= STATIC_COUNT) return STATIC_TABLE[i - 1][0];
    if (i - STATIC_COUNT > this.table.length) throw new HpackError(`hpack: index ${i} out of range`);
    return this.table.name(i - STATIC_COUNT - 1);
  }

  #valueAt(i: number): string {
    if (i <= STATIC_COUNT) return STATIC_TABLE[i - 1][1];
    if (i - STATIC_COUNT > this.table.length) throw new HpackError(`hpack: index ${i} out of range`);
    return this.table.value(i - STATIC_COUNT - 1);
  }

  /** RFC 7541 5.1 prefixed integer. Values past 2^28 are refused: no legal field needs them. */
  #int(prefixBits: number): number {
    const mask = (1 << prefixBits) - 1;
    let v = this.#buf[this.#pos++] & mask;
    if (v < mask) return v;
    for (let shift = 0; ; shift += 7) {
      if (this.#pos >= this.#end) throw new HpackError('hpack: truncated integer');
      if (shift > 21) throw new HpackError('hpack: integer overflow');
      const b = this.#buf[this.#pos++];
      v += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return v;
    }
  }

  /** RFC 7541 5.2 string literal, Huffman or raw octets, as a latin1 string. */
  #string(): string {
    if (this.#pos >= this.#end) throw new HpackError('hpack: truncated string');
    const huffman = (this.#buf[this.#pos] & 0x80) !== 0;
    const len = this.#int(7);
    if (len > this.#end - this.#pos) throw new HpackError('hpack: string past the end of the block');
    const start = this.#pos;
    this.#pos += len;
    if (!huffman) return this.#buf.toString('latin1', start, start + len);
    // The shortest code is 5 bits, so len octets decode to at most len*8/5 symbols.
    if (this.#scratch.length < 2 * len) this.#scratch = Buffer.allocUnsafe(2 * len);
    return huffmanDecode(this.#buf, start, start + len, this.#scratch);
  }
}

// ---- encoder ----

const STATIC_NAME_INDEX = new Map<string, number>();
const STATIC_PAIR_INDEX = new Map<string, number>();
for (let i = STATIC_COUNT - 1; i >= 0; i--) {
  STATIC_NAME_INDEX.set(STATIC_TABLE[i][0], i + 1);
  STATIC_PAIR_INDEX.set(STATIC_TABLE[i][0] + '\0' + STATIC_TABLE[i][1], i + 1);
}

/** RFC 7541 5.1: writes v with an N-bit prefix, `high` holding the representation's top bits. */
export function encodeInt(out: number[], v: number, prefixBits: number, high: number): void {
  const mask = (1 << prefixBits) - 1;
  if (v < mask) {
    out.push(high | v);
    return;
  }
  out.push(high | mask);
  v -= mask;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
}

function encodeRawString(out: number[], s: string): void {
  encodeInt(out, s.length, 7, 0);
  for (let i = 0; i < s.length; i++) out.push(s.charCodeAt(i) & 0xff);
}

/** A header block for fields (lower-case names, latin1 values): static indices where the whole
 *  field is in the static table, else a literal without indexing (static name index if any). */
export function encodeHeaderBlock(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  const out: number[] = [];
  for (const [name, value] of fields) {
    const pair = STATIC_PAIR_INDEX.get(name + '\0' + value);
    if (pair !== undefined) {
      encodeInt(out, pair, 7, 0x80);
      continue;
    }
    const nameIndex = STATIC_NAME_INDEX.get(name) ?? 0;
    encodeInt(out, nameIndex, 4, 0x00);
    if (nameIndex === 0) encodeRawString(out, name);
    encodeRawString(out, value);
  }
  return Buffer.from(out);
}
