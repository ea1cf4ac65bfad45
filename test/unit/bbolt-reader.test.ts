// The bbolt reader (src/shared/bbolt/reader.ts) and etcd's WAL reader (src/main/wal/etcd_wal.ts) on files
// real etcd 3.4 writes: a seeded random workload (keys of 1..200 bytes, values up to 300 bytes and a few
// of 6..20 KiB that need overflow pages, deletes) is written to etcd, which then stops. Checked:
//   - the key bucket holds exactly the written revisions, in order, with the values written (so the
//     walk over branch pages, leaf pages and overflow pages is complete and in order);
//   - a walk from any key gives the same suffix as filtering the full walk;
//   - a damaged meta page falls back to the other; both damaged, a truncated file, or a page whose
//     header names another page are refused with BoltCorruptError;
//   - etcd's WAL: the member and cluster IDs etcd reported, one Put entry per put, the HardState commit;
//     a flipped byte is a crc mismatch (WalCorruptError); a zeroed tail is a torn write, left out.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Etcd3 } from 'etcd3';
import { BoltCorruptError, BoltEntry, BoltReader } from '../../src/shared/bbolt/reader';
import { decodeKeyValue, decodeRevision, encodeRevision } from '../../src/shared/bbolt/etcd_codec';
import { branchPageFlag, pageHeaderBytes } from '../../src/shared/bbolt/format';
import { decodeInternalRaftRequest, listEtcdWalFiles, readEtcdWal } from '../../src/main/wal/etcd_wal';
import { WalCorruptError } from '../../src/main/wal/errors';
import { mulberry32 } from '../../src/shared/random';
import { cleanupServersAfter, Server, startEtcd } from '../support/procs';

interface Written {
  rev: number;
  key: string;
  value: string | null; // null: a delete (tombstone)
}

function randomString(rand: () => number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(33 + Math.floor(rand() * 90));
  return s;
}

describe('bbolt reader and etcd WAL reader on files etcd 3.4 wrote', function () {
  this.timeout(120_000);
  let etcd: Server | undefined;
  cleanupServersAfter(() => [etcd]);
  const written: Written[] = [];
  let dataDir = '';
  let memberId = '';
  let clusterId = '';
  let puts = 0;
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'bbolt-reader-'));
  after(() => fs.rmSync(scratch, { recursive: true, force: true }));

  before(async () => {
    etcd = await startEtcd({ readyProbe: 'etcdctl' });
    dataDir = etcd.dataDir;
    const client = new Etcd3({ hosts: `http://${etcd.endpoint}` });
    const rand = mulberry32(20261208);
    try {
      const keys: string[] = [];
      for (let i = 0; i < 1500; i++) {
        const reuse = keys.length > 0 && rand() < 0.2;
        const key = reuse ? keys[Math.floor(rand() * keys.length)] : randomString(rand, 1 + Math.floor(rand() * 200));
        if (!reuse) keys.push(key);
        if (reuse && rand() < 0.3) {
          const r = await client.delete().key(key);
          if (Number(r.deleted) > 0) written.push({ rev: Number(r.header.revision), key, value: null });
          continue;
        }
        const big = rand() < 0.01;
        const value = randomString(rand, big ? 6000 + Math.floor(rand() * 14000) : Math.floor(rand() * 300));
        const r = await client.put(key).value(value);
        written.push({ rev: Number(r.header.revision), key, value });
        puts++;
      }
      const st = await client.maintenance.status();
      memberId = String(st.header.member_id);
      clusterId = String(st.header.cluster_id);
    } finally {
      client.close();
    }
    await etcd.stop('SIGTERM');
    assert.ok(
      written.some((w) => w.value !== null && w.value.length > 4096),
      'the workload has values needing overflow pages',
    );
  });

  const dbFile = (): string => path.join(dataDir, 'member', 'snap', 'db');
  const keyEntries = (r: BoltReader, from: Buffer | null = null): BoltEntry[] => {
    const b = r.bucket('key');
    assert.ok(b !== null);
    return [...r.entries(b, from)];
  };

  it('walks the key bucket: every revision written, in order, with its value', () => {
    const r = BoltReader.open(dbFile());
    try {
      const b = r.bucket('key');
      assert.ok(b !== null && b.inline === null);
      const root = Buffer.alloc(pageHeaderBytes);
      fs.readSync(fs.openSync(dbFile(), 'r'), root, 0, pageHeaderBytes, Number(b.root) * r.meta.pageSize);
      assert.equal(root.readUInt16LE(8), branchPageFlag, 'the key bucket is big enough to have branch pages');
      const got = keyEntries(r).map((e) => {
        const rev = decodeRevision(e.key);
        const kv = decodeKeyValue(e.value!);
        return { rev: rev.main, key: kv.key.toString('latin1'), value: rev.tombstone ? null : kv.value.toString('latin1') };
      });
      assert.equal(got.length, written.length);
      assert.deepEqual(got, written);
      for (const name of ['meta', 'lease', 'members', 'cluster', 'auth', 'alarm']) assert.ok(r.bucket(name) !== null, name);
      assert.equal(r.bucket('no such bucket'), null);
    } finally {
      r.close();
    }
  });

  it('a walk from any key is the suffix of the full walk', () => {
    const r = BoltReader.open(dbFile());
    try {
      const all = keyEntries(r).map((e) => Buffer.from(e.key));
      const rand = mulberry32(7);
      for (let i = 0; i < 60; i++) {
        const rev = 1 + Math.floor(rand() * (written[written.length - 1].rev + 2));
        const from = encodeRevision(rev, 0);
        const want = all.filter((k) => Buffer.compare(k, from) >= 0);
        const got = keyEntries(r, from).map((e) => Buffer.from(e.key));
        assert.deepEqual(got, want, `from revision ${rev}`);
      }
    } finally {
      r.close();
    }
  });

  it('falls back to the other meta page, and refuses a damaged file', () => {
    const copy = path.join(scratch, 'db');
    const damaged = (fn: (b: Buffer, pageSize: number) => void): string => {
      const b = fs.readFileSync(dbFile());
      fn(b, b.readUInt32LE(pageHeaderBytes + 8));
      fs.writeFileSync(copy, b);
      return copy;
    };
    const good = BoltReader.open(dbFile());
    const { meta } = good;
    const total = keyEntries(good).length;
    good.close();
    // The meta with the higher txid damaged: the other one (one transaction older) is used.
    const newer = meta.txid % 2n === 0n ? 0 : 1;
    const r = BoltReader.open(damaged((b, ps) => (b[newer * ps + pageHeaderBytes + 20] ^= 0xff)));
    assert.equal(r.meta.txid, meta.txid - 1n);
    r.close();
    assert.throws(
      () => BoltReader.open(damaged((b, ps) => ((b[pageHeaderBytes + 20] ^= 0xff), (b[ps + pageHeaderBytes + 20] ^= 0xff)))),
      (e: Error) => e instanceof BoltCorruptError && /both meta pages are invalid/.test(e.message),
    );
    fs.writeFileSync(copy, fs.readFileSync(dbFile()).subarray(0, Number(meta.pgid) * meta.pageSize - meta.pageSize));
    assert.throws(() => BoltReader.open(copy), BoltCorruptError);
    // A page header naming another page: every page of the key bucket's tree gets hit by some walk.
    const keyRoot = (() => {
      const g = BoltReader.open(dbFile());
      const id = Number(g.bucket('key')!.root);
      g.close();
      return id;
    })();
    const hit = damaged((b, ps) => b.writeBigUInt64LE(BigInt(keyRoot + 1), keyRoot * ps));
    const bad = BoltReader.open(hit);
    try {
      assert.throws(
        () => keyEntries(bad).length === total,
        (e: Error) => e instanceof BoltCorruptError && /has id/.test(e.message),
      );
    } finally {
      bad.close();
    }
  });

  it("reads etcd's WAL: IDs, one Put entry per put, the commit", () => {
    const wal = readEtcdWal(path.join(dataDir, 'member', 'wal'));
    assert.equal(wal.nodeId.toString(), memberId);
    assert.equal(wal.clusterId.toString(), clusterId);
    assert.ok(wal.hardState !== null);
    const last = wal.entries[wal.entries.length - 1];
    assert.equal(wal.hardState.commit, last.index, 'a cleanly stopped member committed its whole log');
    const putEntries = wal.entries.filter((e) => e.data.length > 0 && e.type === 0 && decodeInternalRaftRequest(e.data).field === 4);
    assert.equal(putEntries.length, puts);
    assert.equal(wal.tornTail, false);
  });

  it("refuses a flipped byte in etcd's WAL, and leaves out a torn tail", () => {
    const walDir = path.join(dataDir, 'member', 'wal');
    const name = listEtcdWalFiles(walDir)[0];
    const orig = fs.readFileSync(path.join(walDir, name));
    const full = readEtcdWal(walDir);
    const dir = path.join(scratch, 'wal');
    fs.mkdirSync(dir, { recursive: true });
    // A byte in the middle of the records (etcd's random values: no all-zero sector near it).
    const end = (() => {
      let off = 0;
      while (orig.readBigUInt64LE(off) !== 0n) {
        const l = orig.readBigUInt64LE(off);
        const n = Number(l & 0xffffffffffffffn);
        const pad = Number(l >> 56n) & 0x80 ? Number(l >> 56n) & 7 : 0;
        off += 8 + n + pad;
      }
      return off;
    })();
    // Inside the record bytes of a frame in the middle (never its padding, which no CRC covers, nor the
    // last frame, which a torn write may explain).
    const frames: Array<{ off: number; n: number }> = [];
    for (let off = 0; off < end;) {
      const l = orig.readBigUInt64LE(off);
      const n = Number(l & 0xffffffffffffffn);
      frames.push({ off, n });
      off += 8 + n + (Number(l >> 56n) & 0x80 ? Number(l >> 56n) & 7 : 0);
    }
    assert.ok(frames.length >= 3, `only ${frames.length} WAL frames`);
    const mid = frames[Math.floor(frames.length / 2)];
    const flipped = Buffer.from(orig);
    flipped[mid.off + 8 + Math.floor(mid.n / 2)] ^= 0x55;
    fs.writeFileSync(path.join(dir, name), flipped);
    assert.throws(() => readEtcdWal(dir), WalCorruptError);
    // The last frame cut in the middle and zeroed from there: a torn write.
    let lastFrame = 0;
    for (let off = 0; off < end;) {
      lastFrame = off;
      const l = orig.readBigUInt64LE(off);
      off += 8 + Number(l & 0xffffffffffffffn) + (Number(l >> 56n) & 0x80 ? Number(l >> 56n) & 7 : 0);
    }
    const torn = Buffer.from(orig);
    torn.fill(0, lastFrame + 8, lastFrame + 8 + 1024);
    fs.writeFileSync(path.join(dir, name), torn);
    const w = readEtcdWal(dir);
    assert.equal(w.tornTail, true);
    assert.ok(w.entries.length <= full.entries.length && w.entries.length >= full.entries.length - 1);
  });
});
