// HPACK (src/main/net/h2/hpack.ts, huffman.ts): the RFC 7541 Appendix C examples, decoded with one
// decoder per sequence so the dynamic table carries over, once without Huffman (C.3, C.5) and once
// with (C.4, C.6), checking the fields and the table size after each block; integer edge cases
// (C.1); Huffman round trips and the invalid encodings the RFC names (padding over 7 bits,
// padding not all ones, EOS); and malformed blocks, which must throw HpackError, never crash.
import { strict as assert } from 'node:assert';
import { DynamicTable, encodeHeaderBlock, encodeInt, HeaderSink, HpackDecoder, HpackError } from '../../src/main/net/h2/hpack';
import { huffmanDecode, huffmanEncode, huffmanEncodedLength, HuffmanError } from '../../src/main/net/h2/huffman';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function decodeAll(d: HpackDecoder, block: Buffer, max = 1 << 20): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const sink: HeaderSink = { onHeader: (n, v) => out.push([n, v]) };
  assert.equal(d.decode(block, 0, block.length, sink, max), true);
  return out;
}

const REQ1: Array<[string, string]> = [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']];
const REQ2: Array<[string, string]> = [...REQ1, ['cache-control', 'no-cache']];
const REQ3: Array<[string, string]> = [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']];
const RESP1: Array<[string, string]> = [[':status', '302'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'], ['location', 'https://www.example.com']];
const RESP2: Array<[string, string]> = [[':status', '307'], ...RESP1.slice(1)];
const RESP3: Array<[string, string]> = [[':status', '200'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:22 GMT'], ['location', 'https://www.example.com'], ['content-encoding', 'gzip'], ['set-cookie', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1']];

const sequences: Array<{ name: string; tableBytes: number; steps: Array<{ block: string; want: Array<[string, string]>; size: number }> }> = [
  { name: 'C.3 requests without Huffman', tableBytes: 4096, steps: [
    { block: '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d', want: REQ1, size: 57 },
    { block: '8286 84be 5808 6e6f 2d63 6163 6865', want: REQ2, size: 110 },
    { block: '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65', want: REQ3, size: 164 },
  ] },
  { name: 'C.4 requests with Huffman', tableBytes: 4096, steps: [
    { block: '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff', want: REQ1, size: 57 },
    { block: '8286 84be 5886 a8eb 1064 9cbf', want: REQ2, size: 110 },
    { block: '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf', want: REQ3, size: 164 },
  ] },
  { name: 'C.5 responses without Huffman (256-byte table: evictions)', tableBytes: 256, steps: [
    { block: '4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d', want: RESP1, size: 222 },
    { block: '4803 3330 37c1 c0bf', want: RESP2, size: 222 },
    { block: '88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31', want: RESP3, size: 215 },
  ] },
  { name: 'C.6 responses with Huffman (256-byte table: evictions)', tableBytes: 256, steps: [
    { block: '4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3', want: RESP1, size: 222 },
    { block: '4883 640e ffc1 c0bf', want: RESP2, size: 222 },
    { block: '88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07', want: RESP3, size: 215 },
  ] },
];

describe('h2 HPACK: RFC 7541 Appendix C', () => {
  for (const seq of sequences) {
    it(seq.name, () => {
      const d = new HpackDecoder(seq.tableBytes);
      for (const step of seq.steps) {
        assert.deepEqual(decodeAll(d, hex(step.block)), step.want);
        assert.equal(d.table.bytes, step.size);
      }
    });
  }

  it('C.5.3 leaves exactly the three newest entries (eviction order)', () => {
    const d = new HpackDecoder(256);
    for (const step of sequences[2].steps) decodeAll(d, hex(step.block));
    assert.deepEqual([0, 1, 2].map((i) => d.table.name(i)), ['set-cookie', 'content-encoding', 'date']);
    assert.equal(d.table.length, 3);
  });

  it('C.2 literal forms: with indexing, without indexing, never indexed, indexed', () => {
    const d = new HpackDecoder(4096);
    assert.deepEqual(decodeAll(d, hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572')), [['custom-key', 'custom-header']]);
    assert.equal(d.table.bytes, 55);
    assert.deepEqual(decodeAll(d, hex('040c 2f73 616d 706c 652f 7061 7468')), [[':path', '/sample/path']]);
    assert.deepEqual(decodeAll(d, hex('1008 7061 7373 776f 7264 0673 6563 7265 74')), [['password', 'secret']]);
    assert.deepEqual(decodeAll(d, hex('82')), [[':method', 'GET']]);
    assert.equal(d.table.length, 1, 'only the with-indexing literal entered the table');
  });

  it('C.1 integers: 10 and 1337 with a 5-bit prefix, 42 at an octet boundary', () => {
    const a: number[] = [];
    encodeInt(a, 10, 5, 0);
    assert.deepEqual(a, [0x0a]);
    const b: number[] = [];
    encodeInt(b, 1337, 5, 0);
    assert.deepEqual(b, [0x1f, 0x9a, 0x0a]);
    const c: number[] = [];
    encodeInt(c, 42, 8, 0);
    assert.deepEqual(c, [42]);
  });
});

describe('h2 HPACK: Huffman', () => {
  const samples = ['www.example.com', 'no-cache', 'custom-key', 'private', 'application/grpc', '', 'grpc-go/1.26.0',
    String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i))];
  for (const s of samples) {
    it(`round trip ${JSON.stringify(s.slice(0, 20))}${s.length > 20 ? '…' : ''}`, () => {
      const buf = Buffer.alloc(huffmanEncodedLength(s));
      assert.equal(huffmanEncode(s, buf, 0), buf.length);
      assert.equal(huffmanDecode(buf, 0, buf.length, Buffer.alloc(2 * buf.length + 1)), s);
    });
  }

  it('encodes the RFC example strings exactly', () => {
    const enc = (s: string): string => {
      const b = Buffer.alloc(huffmanEncodedLength(s));
      huffmanEncode(s, b, 0);
      return b.toString('hex');
    };
    assert.equal(enc('www.example.com'), 'f1e3c2e5f23a6ba0ab90f4ff');
    assert.equal(enc('Mon, 21 Oct 2013 20:13:21 GMT'), 'd07abe941054d444a8200595040b8166e082a62d1bff');
  });

  const bad: Array<[string, string]> = [
    ['ff', 'padding over 7 bits'], ['1fff', '"a" then a whole byte of padding'], ['00', 'padding not all ones'],
    ['ffffffff fc', 'EOS inside the string'], ['52bc30ffffffff', 'padding ends on a partial symbol'],
  ];
  for (const [h, why] of bad) {
    it(`rejects ${why}`, () => {
      const b = hex(h);
      assert.throws(() => huffmanDecode(b, 0, b.length, Buffer.alloc(64)), HuffmanError);
    });
  }
});

describe('h2 HPACK: malformed blocks throw HpackError', () => {
  const cases: Array<[string, string]> = [
    ['80', 'indexed field 0'],
    ['be', 'dynamic index past the table'],
    ['3fe21f', 'table size update (4097) over SETTINGS_HEADER_TABLE_SIZE'],
    ['8220', 'table size update after a field'],
    ['400a6375', 'string running past the block'],
    ['ff8080808080', 'integer overflow'],
    ['0f', 'truncated integer'],
    ['4085ffffffffff00', 'invalid Huffman in a name'],
  ];
  for (const [h, why] of cases) {
    it(why, () => {
      const d = new HpackDecoder(4096);
      const b = hex(h);
      assert.throws(() => d.decode(b, 0, b.length, { onHeader() { /* */ } }, 1 << 20), HpackError);
    });
  }

  it('a size update at the start of a block is accepted and shrinks the table', () => {
    const d = new HpackDecoder(4096);
    decodeAll(d, hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'));
    assert.deepEqual(decodeAll(d, hex('20 82')), [[':method', 'GET']]);
    assert.equal(d.table.length, 0);
  });

  it('the header list cap stops delivery but decoding goes on (table stays in step)', () => {
    const d = new HpackDecoder(4096);
    const got: string[] = [];
    const block = hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572 82');
    assert.equal(d.decode(block, 0, block.length, { onHeader: (n) => got.push(n) }, 40), false);
    assert.deepEqual(got, []);
    assert.equal(d.table.length, 1);
  });
});

describe('h2 HPACK: encoder and dynamic table', () => {
  it('encoded response blocks decode back to the same fields', () => {
    const fields: Array<[string, string]> = [[':status', '200'], ['content-type', 'application/grpc'], ['grpc-status', '0'], ['grpc-message', 'a%20b']];
    const block = encodeHeaderBlock(fields);
    assert.equal(block[0], 0x88, ':status 200 is static index 8');
    assert.deepEqual(decodeAll(new HpackDecoder(4096), block), fields);
  });

  it('the ring grows past its initial capacity and evicts oldest first', () => {
    const t = new DynamicTable(4096);
    for (let i = 0; i < 100; i++) t.add(`k${i}`, 'v');
    assert.equal(t.name(0), 'k99');
    assert.ok(t.bytes <= 4096);
    const oldest = t.name(t.length - 1);
    assert.equal(oldest, `k${100 - t.length}`);
    t.add('x'.repeat(5000), '');
    assert.equal(t.length, 0, 'an entry larger than the table empties it');
  });
});
