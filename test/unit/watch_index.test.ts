// The watch worker's interval index: every stabbing query must return exactly the items whose interval
// holds the key, checked against a brute-force scan over random intervals (single keys, ranges, from-key)
// with adds and removes interleaved (fast-check), plus the shapes watchers use most (one prefix, nested
// prefixes).
//
//   npx tsc -p . && npx mocha --no-config dist/test/unit/watch_index.test.js
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { IntervalIndex, KEY_INF, KeyEnd } from '../../src/workers/watch/interval_index';

interface Item { id: number; start: Buffer; end: KeyEnd | null }

function contains(it: Item, key: Buffer): boolean {
  if (it.end === null) return key.equals(it.start);
  return Buffer.compare(key, it.start) >= 0 && (it.end === KEY_INF || Buffer.compare(key, it.end) < 0);
}

const keyArb = fc.uint8Array({ minLength: 0, maxLength: 3, max: 4 }).map((u) => Buffer.from(u));

describe('watch interval index', () => {
  it('matches a brute-force scan under random adds, removes and queries', () => {
    const itemArb = fc.tuple(keyArb, keyArb, fc.integer({ min: 0, max: 2 })).map(([a, b, kind]): Omit<Item, 'id'> | null => {
      if (kind === 0) return { start: a, end: null };
      if (kind === 1) return { start: a, end: KEY_INF };
      const [s, e] = Buffer.compare(a, b) < 0 ? [a, b] : [b, a];
      return Buffer.compare(s, e) < 0 ? { start: s, end: e } : null;
    });
    const opArb = fc.oneof(
      fc.record({ op: fc.constant('add' as const), item: itemArb }),
      fc.record({ op: fc.constant('remove' as const), pick: fc.nat() }),
      fc.record({ op: fc.constant('query' as const), key: keyArb }),
    );
    fc.assert(fc.property(fc.array(opArb, { maxLength: 200 }), (ops) => {
      const idx = new IntervalIndex<Item>();
      const live: Item[] = [];
      let nextId = 0;
      for (const o of ops) {
        if (o.op === 'add' && o.item) {
          const it = { ...o.item, id: nextId++ };
          idx.add(it.start, it.end, it);
          live.push(it);
        } else if (o.op === 'remove' && live.length > 0) {
          const [it] = live.splice(o.pick % live.length, 1);
          idx.remove(it.start, it.end, it);
        } else if (o.op === 'query') {
          const got: Item[] = [];
          idx.stab(o.key, got);
          const want = live.filter((it) => contains(it, o.key)).map((it) => it.id).sort((a, b) => a - b);
          assert.deepEqual(got.map((it) => it.id).sort((a, b) => a - b), want);
        }
      }
      assert.equal(idx.size, live.length);
    }), { numRuns: 300 });
  });

  it('nested prefixes and many distinct ranges', () => {
    const idx = new IntervalIndex<string>();
    const prefixes = ['/', '/a/', '/a/b/', '/a/b/c/'];
    for (const p of prefixes) {
      const end = Buffer.from(p);
      end[end.length - 1]++;
      idx.add(Buffer.from(p), end, p);
    }
    for (let i = 0; i < 1000; i++) idx.add(Buffer.from(`/k/${String(i).padStart(4, '0')}`), null, `pt${i}`);
    const out: string[] = [];
    idx.stab(Buffer.from('/a/b/c/d'), out);
    assert.deepEqual(out.sort(), ['/', '/a/', '/a/b/', '/a/b/c/']);
    out.length = 0;
    idx.stab(Buffer.from('/k/0042'), out);
    assert.deepEqual(out.sort(), ['/', 'pt42']);
    out.length = 0;
    idx.stab(Buffer.from('0'), out);
    assert.deepEqual(out, []);
  });
});
