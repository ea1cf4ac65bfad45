// The bbolt writer (src/shared/bbolt/writer.ts) checked by bbolt itself: random databases (seeded;
// nested buckets, empty ones, values from empty to several pages, up to thousands of keys so trees have
// three levels, page sizes 1 KiB and 4 KiB) are written with FileSink, then read by bench/go/bin/boltdump,
// a Go program on Debian's go.etcd.io/bbolt (the library etcd 3.4 opens its backend with): tx.Check
// must report nothing, a cursor walk must give back exactly the buckets and entries written, in order,
// and a Get of every key (a seek through the branch pages) must find its value. The etcd codecs are
// checked the same way: a `key` and a `lease` bucket decoded by etcd's own mvccpb/leasepb types.
// A failing case prints its seed. Needs `sh bench/go/build.sh` (CI runs it; skipped elsewhere without it).
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { BoltWriter, FileSink, firstAppendOffset } from '../../src/shared/bbolt/writer';
import { encodeKeyValue, encodeLease, encodeLeaseKey, encodeRevision } from '../../src/shared/bbolt/etcd_codec';
import { mulberry32 } from '../../src/shared/random';

const boltdump = path.join(__dirname, '../../../bench/go/bin/boltdump');

interface Bucket {
  name: Buffer;
  entries: Array<{ key: Buffer; value: Buffer }>;
  subs: Bucket[];
}

function randomBytes(rand: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

/** Distinct random keys (sorted later), with names of sub-buckets among them. */
function randomBucket(rand: () => number, name: Buffer, depth: number): Bucket {
  const shape = rand();
  const n = shape < 0.15 ? 0 : shape < 0.5 ? Math.floor(rand() * 8) : shape < 0.85 ? Math.floor(rand() * 400) : Math.floor(rand() * 4000);
  const seen = new Set<string>();
  const entries: Bucket['entries'] = [];
  const subs: Bucket[] = [];
  const fresh = (): Buffer => {
    for (;;) {
      const k = randomBytes(rand, 1 + Math.floor(rand() * (rand() < 0.9 ? 24 : 300)));
      if (!seen.has(k.toString('hex'))) {
        seen.add(k.toString('hex'));
        return k;
      }
    }
  };
  for (let i = 0; i < n; i++) {
    const r = rand();
    const vlen = r < 0.1 ? 0 : r < 0.95 ? Math.floor(rand() * 200) : Math.floor(rand() * 12000);
    entries.push({ key: fresh(), value: randomBytes(rand, vlen) });
  }
  const nsubs = depth < 2 && rand() < 0.4 ? 1 + Math.floor(rand() * 3) : 0;
  for (let i = 0; i < nsubs; i++) subs.push(randomBucket(rand, fresh(), depth + 1));
  entries.sort((a, b) => Buffer.compare(a.key, b.key));
  subs.sort((a, b) => Buffer.compare(a.name, b.name));
  return { name, entries, subs };
}

/** Writes b's entries and sub-buckets merged in key order; returns the dump lines bbolt must print. */
function writeBucket(w: BoltWriter, b: Bucket, parent: string[], lines: string[]): void {
  const p = [...parent, b.name.toString('hex')];
  lines.push(`B ${p.join('/')}`);
  w.beginBucket(b.name);
  let i = 0;
  let j = 0;
  while (i < b.entries.length || j < b.subs.length) {
    const e = b.entries[i];
    const s = b.subs[j];
    if (s === undefined || (e !== undefined && Buffer.compare(e.key, s.name) < 0)) {
      w.put(e!.key, e!.value);
      lines.push(`K ${p.join('/')} ${e!.key.toString('hex')} ${e!.value.toString('hex')}`);
      i++;
    } else {
      writeBucket(w, s, p, lines);
      j++;
    }
  }
  w.endBucket();
}

function dump(file: string, etcd = false): string[] {
  try {
    return execFileSync(boltdump, etcd ? ['-etcd', file] : [file], { encoding: 'utf8', maxBuffer: 1 << 30 })
      .split('\n')
      .filter((l) => l !== '');
  } catch (e) {
    const out = (e as { stdout?: string }).stdout ?? '';
    throw new Error(
      `boltdump failed on ${file}:\n${out
        .split('\n')
        .filter((l) => l.startsWith('ERR'))
        .slice(0, 20)
        .join('\n')}`,
      { cause: e },
    );
  }
}

describe('bbolt: writer, read back by bbolt', function () {
  this.timeout(120_000);
  let dir: string;
  before(function () {
    if (!existsSync(boltdump)) {
      if (process.env.CI) throw new Error(`${boltdump} is missing: .ci/run builds it with sh bench/go/build.sh`);
      console.log(`      (skipped: ${boltdump} is missing; run sh bench/go/build.sh)`);
      this.skip();
    }
    dir = mkdtempSync(path.join(tmpdir(), 'bbolt-writer-'));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function writeFile(name: string, pageBytes: number, body: (w: BoltWriter) => void): string {
    const file = path.join(dir, name);
    const sink = new FileSink(file, firstAppendOffset(pageBytes), 64 * 1024);
    const w = new BoltWriter(sink, pageBytes);
    body(w);
    const size = w.finish();
    sink.close();
    assert.equal(statSync(file).size, size);
    return file;
  }

  it('an empty database, and one empty bucket', () => {
    assert.deepEqual(dump(writeFile('empty.db', 4096, () => undefined)), []);
    const f = writeFile('one.db', 4096, (w) => {
      w.beginBucket(Buffer.from('key'));
      w.endBucket();
    });
    assert.deepEqual(dump(f), [`B ${Buffer.from('key').toString('hex')}`]);
  });

  for (let seed = 1; seed <= 24; seed++) {
    it(`random buckets, seed ${seed}`, () => {
      const rand = mulberry32(seed);
      const pageBytes = rand() < 0.5 ? 1024 : 4096;
      const top: Bucket[] = [];
      const names = new Set<string>();
      const nTop = 1 + Math.floor(rand() * 10);
      for (let i = 0; i < nTop; i++) {
        const name = randomBytes(rand, 1 + Math.floor(rand() * 12));
        if (names.has(name.toString('hex'))) continue;
        names.add(name.toString('hex'));
        top.push(randomBucket(rand, name, 1));
      }
      top.sort((a, b) => Buffer.compare(a.name, b.name));
      const want: string[] = [];
      const file = writeFile(`seed-${seed}.db`, pageBytes, (w) => {
        for (const b of top) writeBucket(w, b, [], want);
      });
      const got = dump(file);
      assert.equal(got.length, want.length, `seed ${seed}: line count`);
      for (let i = 0; i < want.length; i++) assert.equal(got[i], want[i], `seed ${seed}: line ${i}`);
    });
  }

  it('etcd records decode with etcd types: KeyValue and Lease', () => {
    const want: string[] = [];
    const file = writeFile('etcd.db', 4096, (w) => {
      w.beginBucket(Buffer.from('key'));
      for (let rev = 2; rev < 3000; rev++) {
        const tomb = rev % 7 === 0;
        const key = Buffer.from(`k${rev % 50}`);
        const kv = tomb
          ? { key, createRevision: 0, modRevision: 0, version: 0, value: Buffer.alloc(0), lease: 0n }
          : {
              key,
              createRevision: rev - 1,
              modRevision: rev,
              version: 3,
              value: Buffer.alloc(rev % 5000, rev & 0xff),
              lease: rev % 3 === 0 ? 0x694d77a4fa3b2a04n : 0n,
            };
        const rk = encodeRevision(rev, rev % 2, tomb);
        w.put(rk, encodeKeyValue(kv));
        want.push(
          `KV ${rk.toString('hex')} ${key.toString('hex')} ${kv.createRevision} ${kv.modRevision} ${kv.version} ${kv.lease} ${kv.value.toString('hex')}`,
        );
      }
      w.endBucket();
      w.beginBucket(Buffer.from('lease'));
      for (const id of [1n, 0x694d77a4fa3b2a04n]) {
        w.put(encodeLeaseKey(id), encodeLease({ id, ttl: 3600, remainingTtl: id === 1n ? 0 : 17 }));
        want.push(`LEASE ${id} 3600 ${id === 1n ? 0 : 17}`);
      }
      w.endBucket();
    });
    const got = dump(file, true).filter((l) => l.startsWith('KV ') || l.startsWith('LEASE '));
    assert.deepEqual(got, want);
  });

  it('refuses keys out of order and empty keys', () => {
    const w = new BoltWriter({ append: () => undefined, writeAt: () => undefined });
    w.beginBucket(Buffer.from('b'));
    w.put(Buffer.from('x'), Buffer.alloc(0));
    assert.throws(() => w.put(Buffer.from('x'), Buffer.alloc(0)));
    assert.throws(() => w.put(Buffer.from('a'), Buffer.alloc(0)));
    assert.throws(() => w.put(Buffer.alloc(0), Buffer.alloc(0)));
    w.endBucket();
    assert.throws(() => w.beginBucket(Buffer.from('a')));
  });
});
