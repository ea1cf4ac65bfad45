// WAL micro-benchmark: N concurrent savers, each looping save(null, [one 256-byte entry]) for a fixed
// time, in a fresh os.tmpdir() WAL. Prints one JSON object: saves/s, fdatasyncs/s, mean fdatasync
// latency and entries per fdatasync (the group-commit factor) for 1 and 256 savers, with fsync on
// (the real cost) and off (the CPU cost of encode + write alone).
// Run: node dist/bench/wal.bench.js   (WAL_BENCH_SECONDS=5 by default, per configuration)
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Wal } from '../src/main/wal/wal';
import { EntryType } from '../src/main/raft/types';

const SECONDS = Number(process.env.WAL_BENCH_SECONDS ?? 5);
const ENTRY_BYTES = 256;

interface Result {
  savers: number;
  fsync: boolean;
  savesPerSec: number;
  fsyncsPerSec: number;
  meanFsyncMs: number;
  entriesPerFsync: number;
  mbPerSec: number;
}

async function run(savers: number, fsync: boolean): Promise<Result> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wal-bench-'));
  const { wal } = await Wal.open(dir, { fsync });
  const data = new Uint8Array(ENTRY_BYTES).fill(7);
  let next = 1;
  let saves = 0;
  const deadline = performance.now() + SECONDS * 1000;
  const saver = async (): Promise<void> => {
    while (performance.now() < deadline) {
      // Index taken at call time; calls queue in order, so the log stays contiguous.
      await wal.save(null, [{ index: next++, term: 1, type: EntryType.Normal, data }]);
      saves++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: savers }, saver));
  const secs = (performance.now() - t0) / 1000;
  const st = wal.stats();
  await wal.close();
  fs.rmSync(dir, { recursive: true, force: true });
  const round = (x: number): number => Math.round(x * 100) / 100;
  return {
    savers,
    fsync,
    savesPerSec: Math.round(saves / secs),
    fsyncsPerSec: Math.round(st.fsyncs / secs),
    meanFsyncMs: st.fsyncs > 0 ? round((st.fsyncSeconds / st.fsyncs) * 1000) : 0,
    entriesPerFsync: st.fsyncs > 0 ? round(saves / st.fsyncs) : 0,
    mbPerSec: round(st.bytesWritten / secs / 1e6),
  };
}

async function main(): Promise<void> {
  const results: Result[] = [];
  for (const fsync of [true, false]) {
    for (const savers of [1, 256]) results.push(await run(savers, fsync));
  }
  process.stdout.write(JSON.stringify({
    bench: 'wal', entryBytes: ENTRY_BYTES, secondsEach: SECONDS, node: process.version, results,
  }, null, 2) + '\n');
}

void main();
