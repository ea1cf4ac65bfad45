// The HPACK Huffman code (RFC 7541 Appendix B). The code is canonical: codes are assigned in order
// of (length, symbol), so the 257 code lengths below determine every code; we derive the codes at
// load and check the two that the RFC prints at the ends of the table. Decoding walks a flattened
// binary tree one bit at a time: header strings are short, and after the first request of a
// connection most fields arrive as HPACK indices, so this is off the hot path.
import { strict as assert } from 'node:assert';

/** Code lengths in bits for symbols 0..255, then EOS (256). */
const CODE_BITS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];
const EOS = 256;
const SYMBOLS = 257;

/** Canonical code assignment: walk lengths in increasing order, symbols in order within a length. */
function buildCodes(): Uint32Array {
  const codes = new Uint32Array(SYMBOLS);
  const order = [...Array(SYMBOLS).keys()].sort((a, b) => CODE_BITS[a] - CODE_BITS[b] || a - b);
  let code = 0;
  let bits = CODE_BITS[order[0]];
  for (const sym of order) {
    code = code * 2 ** (CODE_BITS[sym] - bits);
    bits = CODE_BITS[sym];
    codes[sym] = code;
    code++;
  }
  return codes;
}

const HUFFMAN_CODES = buildCodes();
const HUFFMAN_BITS = Uint8Array.from(CODE_BITS);
// The RFC's first and last rows, to catch a mistyped length above.
assert(HUFFMAN_CODES[0] === 0x1ff8 && HUFFMAN_CODES[EOS] === 0x3fffffff && HUFFMAN_CODES[48] === 0);

/** Decoding tree: node n has children at tree[2n] (bit 0) and tree[2n+1] (bit 1). A child value
 *  > 0 is the next node; <= 0 is a leaf holding -symbol; 0 never names a node (root is 0). */
const TREE = buildTree();

function buildTree(): Int32Array {
  const tree = new Int32Array(2 * SYMBOLS).fill(-1 << 30); // -2^30 marks "no child yet"
  let nodes = 1;
  for (let sym = 0; sym < SYMBOLS; sym++) {
    let node = 0;
    for (let i = HUFFMAN_BITS[sym] - 1; i > 0; i--) {
      const slot = 2 * node + ((HUFFMAN_CODES[sym] >>> i) & 1);
      if (tree[slot] === -1 << 30) tree[slot] = nodes++;
      node = tree[slot];
    }
    tree[2 * node + (HUFFMAN_CODES[sym] & 1)] = -sym;
  }
  assert(nodes === SYMBOLS - 1, 'a full binary tree with 257 leaves has 256 internal nodes');
  return tree;
}

export class HuffmanError extends Error {}

/** Decodes buf[start, end) into a latin1 string. Invalid padding or an EOS symbol throws
 *  (RFC 7541 5.2: both are decoding errors). `scratch` receives the octets. */
export function huffmanDecode(buf: Uint8Array, start: number, end: number, scratch: Buffer): string {
  let node = 0;
  let n = 0;
  let padBits = 0; // bits consumed since the last complete symbol
  let padOnes = true; // whether those bits were all 1s (the EOS prefix)
  for (let i = start; i < end; i++) {
    const byte = buf[i];
    for (let b = 7; b >= 0; b--) {
      const bit = (byte >>> b) & 1;
      const next = TREE[2 * node + bit];
      padBits++;
      if (bit === 0) padOnes = false;
      if (next > 0) {
        node = next;
        continue;
      }
      const sym = -next;
      if (sym === EOS) throw new HuffmanError('hpack: EOS in huffman string');
      scratch[n++] = sym;
      node = 0;
      padBits = 0;
      padOnes = true;
    }
  }
  if (padBits > 7 || !padOnes) throw new HuffmanError('hpack: invalid huffman padding');
  return scratch.toString('latin1', 0, n);
}

/** Encoded length in bytes of the latin1 string s. */
export function huffmanEncodedLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += HUFFMAN_BITS[s.charCodeAt(i) & 0xff];
  return (bits + 7) >>> 3;
}

/** Writes the Huffman encoding of s at out[off]; returns the new offset. Pads with EOS-prefix 1s. */
export function huffmanEncode(s: string, out: Uint8Array, off: number): number {
  let acc = 0; // pending bits, at most 7 + 30 < 53: exact in a double
  let accBits = 0;
  for (let i = 0; i < s.length; i++) {
    const sym = s.charCodeAt(i) & 0xff;
    acc = acc * 2 ** HUFFMAN_BITS[sym] + HUFFMAN_CODES[sym];
    accBits += HUFFMAN_BITS[sym];
    while (accBits >= 8) {
      accBits -= 8;
      const top = Math.floor(acc / 2 ** accBits);
      out[off++] = top;
      acc -= top * 2 ** accBits;
    }
  }
  if (accBits > 0) out[off++] = (acc << (8 - accBits)) | (0xff >>> accBits);
  return off;
}
