// Property test: random sequences of put / delete / txn / compact / compactStep applied to the store and to a
// tiny in-memory model (a full map per revision), with every range (any interval, revision, limit,
// count_only) answered identically, errors included. Keys include 0x00 and 0xFF bytes. fast-check prints a
// failing seed and path that replay exactly.
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { etcdserverpb } from '../../src/shared/gen/etcd';
import { toNum } from '../../src/shared/long';
import { Driver, b, str } from '../../src/workers/mvcc/testing';

interface MKv { value: string; create: number; mod: number; version: number }
type MState = Map<string, MKv>;

const cmpKey = (x: string, y: string): number => Buffer.compare(b(x), b(y));

class Model {
  rev = 1;
  compactRev = -1;
  readonly states = new Map<number, MState>([[1, new Map()]]);

  cur(): MState { return this.states.get(this.rev)!; }

  /** Applies writes (in order) at rev+1; bumps only if something changed. */
  write(ops: Array<{ put?: [string, string]; del?: [string, string | undefined] }>): void {
    const m = new Map(this.cur());
    const next = this.rev + 1;
    let changed = false;
    for (const op of ops) {
      if (op.put) {
        const [k, v] = op.put;
        const old = m.get(k);
        m.set(k, { value: v, create: old ? old.create : next, mod: next, version: (old ? old.version : 0) + 1 });
        changed = true;
      } else if (op.del) {
        for (const k of inInterval([...m.keys()], op.del[0], op.del[1])) { m.delete(k); changed = true; }
      }
    }
    if (changed) { this.rev = next; this.states.set(next, m); }
  }

  range(key: string, end: string | undefined, rev: number, limit: number): { err?: string; keys?: string[]; count?: number; more?: boolean } {
    if (rev > this.rev) return { err: 'etcdserver: mvcc: required revision is a future revision' };
    const at = rev <= 0 ? this.rev : rev;
    if (at < this.compactRev) return { err: 'etcdserver: mvcc: required revision has been compacted' };
    const m = this.states.get(at)!;
    const keys = inInterval([...m.keys()], key, end).sort(cmpKey);
    const shown = limit > 0 ? keys.slice(0, limit) : keys;
    return { keys: shown.map((k) => { const kv = m.get(k)!; return `${k}=${kv.value}@${kv.create}/${kv.mod}/${kv.version}`; }), count: keys.length, more: limit > 0 && keys.length > limit };
  }
}

function inInterval(keys: string[], key: string, end: string | undefined): string[] {
  if (end === undefined) return keys.filter((k) => k === key);
  if (end === '\x00') return keys.filter((k) => cmpKey(k, key) >= 0);
  return keys.filter((k) => cmpKey(k, key) >= 0 && cmpKey(k, end) < 0);
}

const keyArb = fc.constantFrom('a', 'a\x00', 'ab', 'b', 'b\xff', '\x00', 'c', '\xff');
// Keys around and beyond what fits LMDB's key size (long_keys.ts): several share a bucket (the first 1950
// escaped bytes), one bucket boundary falls inside an escaped 0x00, and short keys sit between them.
const X = 'x'.repeat(1949);
const longKeyArb = fc.constantFrom(
  'a', 'x', 'y', X, X + '\x00', X + '\x00a', X + '\x00b', X + 'a', X + 'a'.repeat(20), X + 'a'.repeat(20) + 'b',
  X + 'a'.repeat(20) + 'c', X + 'a'.repeat(20) + '\x00', X + 'b'.repeat(30), 'x'.repeat(1964), 'x'.repeat(1965),
  'x'.repeat(65536), '\x00'.repeat(982), '\x00'.repeat(983), '\x00'.repeat(5000), '\xff'.repeat(3000),
);
type Cmd =
  | { t: 'put'; k: string; v: string }
  | { t: 'del'; k: string; end: string | undefined }
  | { t: 'txn'; puts: string[]; dels: string[]; v: string }
  | { t: 'compact'; back: number }
  | { t: 'step'; n: number }
  | { t: 'range'; k: string; end: string | undefined; back: number; limit: number; countOnly: boolean };

const cmdArbOf = (keyArb: fc.Arbitrary<string>): fc.Arbitrary<Cmd> => {
  const endArb = fc.option(fc.oneof(keyArb, fc.constant('\x00')), { nil: undefined });
  return fc.oneof(
  { weight: 5, arbitrary: fc.record({ t: fc.constant('put' as const), k: keyArb, v: fc.string({ maxLength: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('del' as const), k: keyArb, end: endArb }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('txn' as const), puts: fc.uniqueArray(keyArb, { maxLength: 3 }), dels: fc.uniqueArray(keyArb, { maxLength: 2 }), v: fc.string({ maxLength: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('compact' as const), back: fc.integer({ min: -1, max: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('step' as const), n: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 5, arbitrary: fc.record({ t: fc.constant('range' as const), k: keyArb, end: endArb, back: fc.integer({ min: -1, max: 10 }), limit: fc.integer({ min: -1, max: 3 }), countOnly: fc.boolean() }) },
  );
};

function storeRange(d: Driver, c: Extract<Cmd, { t: 'range' }>, rev: number): ReturnType<Model['range']> {
  try {
    const r = d.store.range({ key: b(c.k), rangeEnd: c.end === undefined ? undefined : b(c.end), revision: rev, limit: c.limit, countOnly: c.countOnly });
    const keys = (r.kvs ?? []).map((kv) => `${str(kv.key)}=${str(kv.value)}@${toNum(kv.createRevision)}/${toNum(kv.modRevision)}/${toNum(kv.version)}`);
    return { keys, count: toNum(r.count), more: r.more === true };
  } catch (e) {
    return { err: (e as Error).message };
  }
}

function run(d: Driver, m: Model, c: Cmd): void {
  switch (c.t) {
    case 'put': d.put(c.k, c.v); m.write([{ put: [c.k, c.v] }]); break;
    case 'del': d.del(c.k, c.end); m.write([{ del: [c.k, c.end] }]); break;
    case 'txn': {
      // puts and single-key deletes on distinct keys pass etcd's duplicate check
      const dels = c.dels.filter((k) => !c.puts.includes(k));
      const ops: etcdserverpb.IRequestOp[] = [
        ...dels.map((k) => ({ requestDeleteRange: { key: b(k) } })),
        ...c.puts.map((k) => ({ requestPut: { key: b(k), value: b(c.v) } })),
      ];
      const r = d.txn({ success: ops });
      m.write([...dels.map((k) => ({ del: [k, undefined] as [string, undefined] })), ...c.puts.map((k) => ({ put: [k, c.v] as [string, string] }))]);
      assert.equal(toNum(r.header?.revision), m.rev);
      break;
    }
    case 'compact': {
      const rev = m.rev - c.back;
      const r = d.compact(rev);
      const want = rev <= m.compactRev ? 'compacted' : rev > m.rev ? 'future' : 'ok';
      assert.equal('ok' in r ? 'ok' : r.err.message.includes('compacted') ? 'compacted' : 'future', want);
      if (want === 'ok') m.compactRev = rev;
      break;
    }
    case 'step': d.store.compactStep(c.n); break;
    case 'range': {
      const rev = c.back < 0 ? 0 : m.rev - c.back;
      const want = m.range(c.k, c.end, rev, c.limit);
      if (c.countOnly && !want.err) { want.keys = []; want.more = false; }
      assert.deepEqual(storeRange(d, c, rev), want);
      break;
    }
  }
  assert.equal(d.store.revision, m.rev);
}

describe('mvcc store vs model (property)', () => {
  const property = (keys: fc.Arbitrary<string>): fc.IAsyncProperty<[Cmd[]]> => fc.asyncProperty(fc.array(cmdArbOf(keys), { minLength: 1, maxLength: 60 }), async (cmds) => {
      const d = new Driver();
      const m = new Model();
      try {
        for (const c of cmds) run(d, m, c);
        // finish physical compaction and check every revision still readable is unchanged
        while (!d.store.compactStep(3));
        for (let rev = Math.max(1, m.compactRev); rev <= m.rev; rev++) {
          assert.deepEqual(storeRange(d, { t: 'range', k: '\x00', end: '\x00', back: 0, limit: 0, countOnly: false }, rev), m.range('\x00', '\x00', rev, 0));
        }
      } finally {
        await d.close();
      }
    });

  it('answers every range like the model over random histories', async function () {
    this.timeout(120_000);
    await fc.assert(property(keyArb), { numRuns: 150 });
  });

  it('the same with keys of up to 64 KiB, longer than an LMDB key', async function () {
    this.timeout(180_000);
    await fc.assert(property(longKeyArb), { numRuns: 150 });
  });
});
