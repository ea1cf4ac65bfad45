// WAL damage on disk, made by editing segment files between close() and open(): a torn tail (the
// last record cut at every byte offset, a CRC failure ending at EOF or followed only by zeros) is
// truncated and reported with truncatedTail; a zero-filled remainder (preallocated space) ends the log
// without being reported; any other damage (every byte of an early record flipped, with or without
// preallocated zeros after it, a bad record in a non-last segment) fails open() with WalCorruptError
// naming the file and byte offset. Most cases build the WAL without preallocation (preallocBytes 0), so
// that the file's size is where its records end.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Wal, WalCorruptError } from '../../src/main/wal/wal';
import { scanSegment } from '../../src/main/wal/segment';
import { Entry, EntryType } from '../../src/main/raft/types';

function ent(index: number, term = 1, size = 16): Entry {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (index * 13 + i) & 0xff;
  return { index, term, type: EntryType.Normal, data };
}

function segmentFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.endsWith('.wal')).sort().map((n) => path.join(dir, n));
}

/** A one-segment WAL with entries 1..5 and, as its last record, `last`; returns sizes around it. */
async function buildWal(dir: string, last: 'entry' | 'hardState'):
  Promise<{ file: string; bytes: Buffer; before: number }> {
  const { wal } = await Wal.open(dir, { preallocBytes: 0 });
  for (let i = 1; i <= 5; i++) await wal.save({ term: 1, vote: 1n, commit: i - 1 }, [ent(i)]);
  const file = segmentFiles(dir)[0];
  const before = fs.statSync(file).size;
  if (last === 'entry') await wal.save(null, [ent(6, 1, 300)]);
  else await wal.save({ term: 2, vote: 2n, commit: 5 }, []);
  await wal.close();
  return { file, bytes: fs.readFileSync(file), before };
}

async function expectFiveEntries(dir: string, torn: boolean): Promise<void> {
  const r = await Wal.open(dir);
  assert.equal(r.truncatedTail, torn);
  assert.deepEqual(r.entries.map((e) => e.index), [1, 2, 3, 4, 5]);
  assert.deepEqual(r.entries[4], ent(5));
  assert.deepEqual(r.hardState, { term: 1, vote: 1n, commit: 4 });
  await r.wal.close();
}

describe('wal: torn tail and corruption', () => {
  const dirs: string[] = [];
  const fresh = (): string => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'wal-recovery-'));
    dirs.push(d);
    return d;
  };
  after(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

  for (const last of ['entry', 'hardState'] as const) {
    it(`truncates a last ${last} record cut at every byte offset`, async () => {
      const dir = fresh();
      const { file, bytes, before } = await buildWal(dir, last);
      for (let cut = before; cut < bytes.length; cut++) {
        fs.writeFileSync(file, bytes.subarray(0, cut));
        await expectFiveEntries(dir, cut > before);
        assert.equal(fs.statSync(file).size, before, `file truncated to the last good record (cut ${cut})`);
      }
      // The WAL keeps working after a truncation.
      fs.writeFileSync(file, bytes.subarray(0, before + 3));
      const r = await Wal.open(dir);
      await r.wal.save(null, [ent(6, 1, 300)]);
      await r.wal.close();
      const r2 = await Wal.open(dir);
      assert.deepEqual(r2.entries.map((e) => e.index), [1, 2, 3, 4, 5, 6]);
      assert.equal(r2.truncatedTail, false);
      await r2.wal.close();
    });
  }

  it('truncates a last record that fails its CRC and ends at EOF', async () => {
    const dir = fresh();
    const { file, bytes, before } = await buildWal(dir, 'entry');
    for (const at of [before + 4, before + 8, before + 30, bytes.length - 1]) {
      const b = Buffer.from(bytes);
      b[at] ^= 0x40;
      fs.writeFileSync(file, b);
      await expectFiveEntries(dir, true);
    }
  });

  it('ends the log at a zero-filled remainder (the last write never reached the disk, or preallocated space), without calling it torn', async () => {
    const dir = fresh();
    const { file, bytes, before } = await buildWal(dir, 'entry');
    const b = Buffer.from(bytes);
    b.fill(0, before);
    fs.writeFileSync(file, Buffer.concat([b, Buffer.alloc(8192)]));
    await expectFiveEntries(dir, false);
    assert.equal(fs.statSync(file).size, b.length + 8192, 'the zeros stay: the next write goes at the end of the records');
  });

  it('truncates a last record that fails its CRC and is followed only by zeros (a torn write into preallocated space)', async () => {
    const dir = fresh();
    const { file, bytes, before } = await buildWal(dir, 'entry');
    for (const at of [before + 4, before + 30, bytes.length - 1]) {
      const b = Buffer.concat([bytes, Buffer.alloc(4096)]);
      b[at] ^= 0x40;
      fs.writeFileSync(file, b);
      await expectFiveEntries(dir, true);
    }
  });

  it('refuses an early record whose length was flipped to land in preallocated zeros', async () => {
    const dir = fresh();
    const { file, bytes } = await buildWal(dir, 'entry');
    const b = Buffer.concat([bytes, Buffer.alloc(64 * 1024)]);
    b.writeUInt32LE(bytes.length + 1000, 0); // the first record now claims to run into the zeros
    fs.writeFileSync(file, b);
    await assert.rejects(Wal.open(dir), (err: unknown) => err instanceof WalCorruptError && err.offset === 0);
  });

  it('preallocates: writes go into zeros ahead of them, survive a reopen, and a cut trims the old segment', async () => {
    const dir = fresh();
    const { wal } = await Wal.open(dir, { preallocBytes: 64 * 1024, segmentBytes: 256 * 1024 });
    for (let i = 1; i <= 5; i++) await wal.save({ term: 1, vote: 1n, commit: i - 1 }, [ent(i)]);
    await wal.close();
    const [file] = segmentFiles(dir);
    assert.ok(fs.statSync(file).size >= 64 * 1024, 'zeros were written ahead of the records');
    await expectFiveEntries(dir, false);
    const r = await Wal.open(dir, { preallocBytes: 64 * 1024, segmentBytes: 256 * 1024 });
    for (let i = 6; i <= 400; i++) await r.wal.save(null, [ent(i, 1, 2000)]);
    await r.wal.close();
    const files = segmentFiles(dir);
    assert.ok(files.length >= 3, `cut into ${files.length} segments`);
    for (const f of files.slice(0, -1)) {
      const b = fs.readFileSync(f);
      assert.equal(scanSegment(b, f, false, () => undefined).validBytes, b.length, `${path.basename(f)} ends with its last record, not preallocated zeros`);
    }
    const again = await Wal.open(dir);
    assert.equal(again.truncatedTail, false);
    assert.deepEqual(again.entries.map((e) => e.index), Array.from({ length: 400 }, (_, k) => k + 1));
    await again.wal.close();
  });

  it('refuses every single-byte flip in an early record', async () => {
    const dir = fresh();
    const { file, bytes } = await buildWal(dir, 'entry');
    const firstRecordBytes = 9 + 24; // hardState records come after the entry of each save
    for (let at = 0; at < 9 + 17 + 16 + firstRecordBytes; at++) {
      const b = Buffer.from(bytes);
      b[at] ^= 0xff;
      fs.writeFileSync(file, b);
      await assert.rejects(Wal.open(dir), (err: unknown) => {
        assert.ok(err instanceof WalCorruptError, String(err));
        assert.ok(err.message.includes(file), err.message);
        assert.match(err.message, /byte offset \d+/);
        return true;
      }, `flip at ${at}`);
    }
  });

  it('refuses a damaged tail of a segment that is not the last', async () => {
    const dir = fresh();
    const { wal } = await Wal.open(dir, { segmentBytes: 1024, preallocBytes: 0 });
    for (let i = 1; i <= 40; i++) await wal.save(null, [ent(i, 1, 100)]);
    await wal.close();
    const files = segmentFiles(dir);
    assert.ok(files.length >= 3);
    const first = fs.readFileSync(files[0]);
    fs.writeFileSync(files[0], first.subarray(0, first.length - 5));
    await assert.rejects(Wal.open(dir), WalCorruptError);
    const flipped = Buffer.from(first);
    flipped[flipped.length - 1] ^= 1;
    fs.writeFileSync(files[0], flipped);
    await assert.rejects(Wal.open(dir), (err: unknown) =>
      err instanceof WalCorruptError && err.file === files[0]);
  });

  it('refuses a bad record followed by more data in the last segment', async () => {
    const dir = fresh();
    const { file, bytes, before } = await buildWal(dir, 'entry');
    const b = Buffer.concat([bytes, Buffer.from([1, 2, 3])]);
    b[before + 20] ^= 1; // the last record is now bad and three bytes follow it
    fs.writeFileSync(file, b);
    await assert.rejects(Wal.open(dir), (err: unknown) =>
      err instanceof WalCorruptError && err.offset === before);
  });
});
