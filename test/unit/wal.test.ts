// WAL behaviour through its public API, in fresh os.tmpdir() directories: records written by save()
// come back from Wal.open() exactly (round trip, Raft overwrite, snapshot release across segment
// cuts); group commit resolves 1000 concurrent calls in order with far fewer fdatasyncs; batches are
// split at batchBytesMax; and the CRC-32C matches the published check value.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Wal, WalCorruptError } from '../../src/main/wal/wal';
import { Entry, EntryType, HardState } from '../../src/main/raft/types';
import { crc32c } from '../../src/shared/crc32c';

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'wal-test-'));
}

function ent(index: number, term = 1, size = 16): Entry {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (index * 7 + i) & 0xff;
  return { index, term, type: index % 5 === 0 ? EntryType.ConfChange : EntryType.Normal, data };
}

function range(lo: number, hi: number, term = 1, size = 16): Entry[] {
  const out: Entry[] = [];
  for (let i = lo; i <= hi; i++) out.push(ent(i, term, size));
  return out;
}

function segmentFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.endsWith('.wal')).sort();
}

describe('wal: crc32c', () => {
  it('matches the CRC-32C check value and chains', () => {
    const b = Buffer.from('123456789');
    assert.equal(crc32c(b), 0xe3069283);
    assert.equal(crc32c(b, 4, 9, crc32c(b, 0, 4)), 0xe3069283);
    assert.equal(crc32c(new Uint8Array(0)), 0);
  });
});

describe('wal: write and replay', () => {
  const dirs: string[] = [];
  const fresh = (): string => { const d = tmpDir(); dirs.push(d); return d; };
  after(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

  it('opens empty, then round-trips hardState and entries', async () => {
    const dir = fresh();
    const r0 = await Wal.open(dir);
    assert.deepEqual([r0.hardState, r0.entries, r0.snapshotIndex, r0.snapshotTerm, r0.truncatedTail],
      [null, [], 0, 0, false]);
    const hs: HardState = { term: 3, vote: (1n << 64n) - 1n, commit: 7 };
    const entries = [...range(1, 5, 1, 0), ...range(6, 10, 3, 1000)];
    await r0.wal.save(hs, entries);
    await r0.wal.save({ term: 2 ** 40, vote: 0x8000000000000001n, commit: 2 ** 52 }, []);
    await r0.wal.close();
    const r1 = await Wal.open(dir);
    assert.deepEqual(r1.hardState, { term: 2 ** 40, vote: 0x8000000000000001n, commit: 2 ** 52 });
    assert.deepEqual(r1.entries, entries);
    assert.equal(r1.truncatedTail, false);
    assert.deepEqual(segmentFiles(dir), ['0000000000000000-0000000000000001.wal']);
    await r1.wal.close();
  });

  it('overwrites the log from a re-written index (Raft truncation)', async () => {
    const dir = fresh();
    const { wal } = await Wal.open(dir);
    await wal.save(null, range(1, 10, 1));
    await wal.save(null, range(6, 8, 2));
    await wal.save(null, range(3, 3, 3));
    await wal.save(null, range(4, 5, 3));
    await wal.close();
    const r = await Wal.open(dir);
    assert.deepEqual(r.entries, [...range(1, 2, 1), ...range(3, 5, 3)]);
    // Appending after reopen continues the overwritten log.
    await r.wal.save(null, range(6, 6, 4));
    await r.wal.close();
    const r2 = await Wal.open(dir);
    assert.deepEqual(r2.entries, [...range(1, 2, 1), ...range(3, 5, 3), ...range(6, 6, 4)]);
    await r2.wal.close();
  });

  it('group commit: 1000 concurrent saves resolve in order with few fdatasyncs', async () => {
    const dir = fresh();
    const { wal } = await Wal.open(dir);
    const order: number[] = [];
    const calls: Promise<void>[] = [];
    for (let i = 1; i <= 1000; i++) {
      const hs = i % 100 === 0 ? { term: 1, vote: 1n, commit: i } : null;
      calls.push(wal.save(hs, [ent(i)]).then(() => { order.push(i); }));
    }
    await Promise.all(calls);
    assert.deepEqual(order, range(1, 1000).map((e) => e.index));
    const st = wal.stats();
    assert.ok(st.fsyncs <= 10, `fsyncs ${st.fsyncs} for 1000 calls`);
    assert.equal(st.records, 1010);
    await wal.close();
    const r = await Wal.open(dir);
    assert.deepEqual(r.entries, range(1, 1000));
    assert.deepEqual(r.hardState, { term: 1, vote: 1n, commit: 1000 });
    await r.wal.close();
  });

  it('group commit: calls made while a write is in flight share the next fdatasync', async () => {
    const dir = fresh();
    const { wal } = await Wal.open(dir);
    const order: number[] = [];
    const calls: Promise<void>[] = [];
    for (let i = 1; i <= 1000; i++) {
      calls.push(wal.save(null, [ent(i)]).then(() => { order.push(i); }));
      if (i % 10 === 0) await new Promise((r) => setImmediate(r)); // let I/O progress between calls
    }
    await Promise.all(calls);
    assert.deepEqual(order, range(1, 1000).map((e) => e.index));
    assert.ok(wal.stats().fsyncs < 1000 / 2, `fsyncs ${wal.stats().fsyncs} for 1000 calls`);
    await wal.close();
  });

  it('splits batches at batchBytesMax and writes an oversized record alone', async () => {
    const dir = fresh();
    const { wal } = await Wal.open(dir, { batchBytesMax: 4096 });
    const small = range(1, 100, 1, 200); // 226-byte records: 18 per 4 KiB batch
    await wal.save({ term: 1, vote: 2n, commit: 50 }, small);
    assert.ok(wal.stats().fsyncs >= 6, `fsyncs ${wal.stats().fsyncs}`);
    const big = ent(101, 1, 10_000);
    await Promise.all([wal.save(null, [big]), wal.save(null, [ent(102)])]);
    assert.equal(wal.stats().lastBatchRecords, 1);
    await wal.close();
    const r = await Wal.open(dir);
    assert.deepEqual(r.entries, [...small, big, ent(102)]);
    assert.deepEqual(r.hardState, { term: 1, vote: 2n, commit: 50 });
    await r.wal.close();
  });

  it('cuts segments, releases old ones, and replays from the newer segments', async () => {
    const dir = fresh();
    const { wal } = await Wal.open(dir, { segmentBytes: 4096 });
    for (let i = 1; i <= 200; i++) await wal.save({ term: 2, vote: 3n, commit: i - 1 }, [ent(i, 2, 100)]);
    const before = segmentFiles(dir);
    assert.ok(before.length >= 5, `segments ${before.length}`);
    assert.match(before[1], /^0000000000000001-[0-9a-f]{16}\.wal$/);
    await wal.releaseTo(150, 2);
    const after = segmentFiles(dir);
    assert.ok(after.length < before.length && after.length >= 1, `${before.length} -> ${after.length}`);
    await wal.save({ term: 2, vote: 3n, commit: 200 }, []);
    await wal.close();
    const r = await Wal.open(dir, { segmentBytes: 4096 });
    assert.deepEqual([r.snapshotIndex, r.snapshotTerm], [150, 2]);
    assert.deepEqual(r.entries, range(151, 200, 2, 100));
    assert.deepEqual(r.hardState, { term: 2, vote: 3n, commit: 200 });
    // Installing a snapshot beyond the log: release first, then the entries after it.
    await r.wal.releaseTo(300, 3);
    await r.wal.save({ term: 3, vote: 0n, commit: 305 }, range(301, 310, 3, 100));
    await r.wal.close();
    const r2 = await Wal.open(dir, { segmentBytes: 4096 });
    assert.deepEqual([r2.snapshotIndex, r2.snapshotTerm], [300, 3]);
    assert.deepEqual(r2.entries, range(301, 310, 3, 100));
    assert.deepEqual(r2.hardState, { term: 3, vote: 0n, commit: 305 });
    await r2.wal.close();
  });

  it('keeps the hardState when every segment holding one was released', async () => {
    const dir = fresh();
    const { wal } = await Wal.open(dir, { segmentBytes: 1024, maxSegments: 1 });
    await wal.save({ term: 5, vote: 9n, commit: 40 }, range(1, 40, 5, 100));
    for (let i = 41; i <= 60; i++) await wal.save(null, [ent(i, 5, 100)]);
    await wal.releaseTo(59, 5);
    await wal.close();
    assert.ok(!segmentFiles(dir).includes('0000000000000000-0000000000000001.wal'));
    const r = await Wal.open(dir);
    assert.deepEqual(r.hardState, { term: 5, vote: 9n, commit: 40 });
    assert.deepEqual(r.entries, [ent(60, 5, 100)]);
    await r.wal.close();
  });

  it('keeps at most maxSegments covered segments (--max-wals), oldest removed first, never an uncovered one', async () => {
    const dir = fresh();
    const { wal } = await Wal.open(dir, { segmentBytes: 1024, maxSegments: 3 });
    for (let i = 1; i <= 100; i++) await wal.save({ term: 1, vote: 1n, commit: i }, [ent(i, 1, 100)]);
    // Nothing is covered yet: every segment stays, whatever the limit.
    const all = segmentFiles(dir);
    assert.ok(all.length > 6, `segments ${all.length}`);
    await wal.releaseTo(40, 1);
    const left = segmentFiles(dir);
    // Segments holding entries above 40 stay; the covered ones go down to the limit, oldest first.
    const firstKept = left[0];
    assert.ok(left.length >= 3, `kept ${left.length}`);
    assert.deepEqual(left, all.slice(all.indexOf(firstKept)));
    assert.ok(parseInt(left[0].slice(17, 33), 16) <= 41, `${left[0]} must hold entry 41`);
    await wal.releaseTo(100, 1);
    assert.deepEqual(segmentFiles(dir), all.slice(-3));
    for (let i = 101; i <= 200; i++) await wal.save({ term: 1, vote: 1n, commit: i }, [ent(i, 1, 100)]);
    await wal.releaseTo(195, 1);
    assert.equal(segmentFiles(dir).length, 3);
    await wal.close();
    const r = await Wal.open(dir, { segmentBytes: 1024, maxSegments: 3 });
    assert.deepEqual(r.entries, range(196, 200, 1, 100));
    assert.equal(r.snapshotIndex, 195);
    await r.wal.close();
  });

  it('keeps every segment with maxSegments 0, replays only from the snapshot on, and trims on reopen', async () => {
    const dir = fresh();
    const { wal } = await Wal.open(dir, { segmentBytes: 1024, maxSegments: 0 });
    for (let i = 1; i <= 100; i++) await wal.save({ term: 1, vote: 2n, commit: i }, [ent(i, 1, 100)]);
    await wal.releaseTo(90, 1);
    await wal.save({ term: 1, vote: 2n, commit: 100 }, range(101, 110, 1, 100));
    await wal.close();
    const all = segmentFiles(dir);
    assert.ok(all.length > 10 && all[0] === '0000000000000000-0000000000000001.wal', `segments ${all.length}`);
    // A covered segment is not read at start-up (etcd reads from its snapshot on): damage there is harmless.
    fs.writeFileSync(path.join(dir, all[0]), Buffer.from('not a wal segment'));
    const r = await Wal.open(dir, { segmentBytes: 1024, maxSegments: 0 });
    assert.deepEqual(r.entries, range(91, 110, 1, 100));
    assert.deepEqual(r.hardState, { term: 1, vote: 2n, commit: 100 });
    await r.wal.close();
    assert.deepEqual(segmentFiles(dir), all);
    // A restart with a limit removes the covered surplus.
    const r2 = await Wal.open(dir, { segmentBytes: 1024, maxSegments: 2 });
    assert.deepEqual(r2.entries, range(91, 110, 1, 100));
    await r2.wal.close();
    const left = segmentFiles(dir);
    assert.ok(left.length < all.length && left.length >= 2, `kept ${left.length}`);
    assert.deepEqual(left, all.slice(-left.length));
    const r3 = await Wal.open(dir, { segmentBytes: 1024, maxSegments: 2 });
    assert.deepEqual(r3.entries, range(91, 110, 1, 100));
    await r3.wal.close();
  });

  it('refuses an index gap that no snapshot marker explains, and a missing segment', async () => {
    const dir = fresh();
    const { wal } = await Wal.open(dir);
    await wal.save(null, range(1, 5));
    await wal.save(null, range(9, 10));
    await wal.close();
    await assert.rejects(Wal.open(dir), WalCorruptError);

    const dir2 = fresh();
    const w2 = (await Wal.open(dir2, { segmentBytes: 512 })).wal;
    for (let i = 1; i <= 30; i++) await w2.save(null, [ent(i, 1, 100)]);
    await w2.close();
    const files = segmentFiles(dir2);
    fs.unlinkSync(path.join(dir2, files[1]));
    await assert.rejects(Wal.open(dir2), /segment seq 1 is missing/);
  });

  it('rejects calls after close', async () => {
    const { wal } = await Wal.open(fresh());
    const pending = wal.save(null, [ent(1)]);
    await wal.close();
    await pending;
    await assert.rejects(wal.save(null, [ent(2)]), /closed/);
  });
});
