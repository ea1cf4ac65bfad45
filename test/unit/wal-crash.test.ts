// Crash safety of acknowledged saves: this file, run as a child process (WAL_CRASH_CHILD=dir), keeps
// 32 save() calls in flight and prints each index once its save() resolves; the parent SIGKILLs it at
// a random moment, reopens the WAL and checks that every printed index is present with its data.
// Three rounds on the same directory, so the child also reopens after a kill (torn tails, segment
// cuts at 64 KiB, hardStates). SIGKILL loses no page cache, so this checks the write/ack ordering and
// replay, not the disk's flush behaviour.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Wal } from '../../src/main/wal/wal';
import { Entry, EntryType } from '../../src/main/raft/types';

const SEGMENT_BYTES = 64 * 1024;
const IN_FLIGHT = 32;

function dataFor(index: number): Uint8Array {
  const data = new Uint8Array(100);
  new DataView(data.buffer).setFloat64(0, index, true);
  for (let i = 8; i < data.length; i++) data[i] = (index + i) & 0xff;
  return data;
}

async function runChild(dir: string): Promise<void> {
  const { wal, entries } = await Wal.open(dir, { segmentBytes: SEGMENT_BYTES });
  let next = entries.length > 0 ? entries[entries.length - 1].index + 1 : 1;
  const saveOne = async (): Promise<void> => {
    for (;;) {
      const index = next++;
      const e: Entry = { index, term: 1, type: EntryType.Normal, data: dataFor(index) };
      const hs = index % 10 === 0 ? { term: 1, vote: 1n, commit: index - 1 } : null;
      await wal.save(hs, [e]);
      process.stdout.write(`${index}\n`); // synchronous for pipes on Linux: printed means sent
    }
  };
  for (let i = 0; i < IN_FLIGHT; i++) void saveOne();
}

if (process.env.WAL_CRASH_CHILD !== undefined) {
  void runChild(process.env.WAL_CRASH_CHILD);
} else {
  describe('wal: crash while saving (SIGKILL)', () => {
    let dir = '';
    before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wal-crash-')); });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    for (let round = 1; round <= 3; round++) {
      it(`round ${round}: every acknowledged save survives`, async () => {
        const acked = await runAndKill(dir, 150 + Math.floor(Math.random() * 400));
        assert.ok(acked.length > 0, 'child acknowledged nothing');
        const r = await Wal.open(dir, { segmentBytes: SEGMENT_BYTES });
        const byIndex = new Map(r.entries.map((e) => [e.index, e]));
        for (const index of acked) {
          const e = byIndex.get(index);
          assert.ok(e !== undefined, `acknowledged index ${index} missing`);
          assert.deepEqual(e.data, dataFor(index));
        }
        assert.deepEqual(r.entries.map((e) => e.index), r.entries.map((_, i) => i + 1), 'contiguous from 1');
        await r.wal.close();
      });
    }
  });
}

/** Starts the child, SIGKILLs it `killAfterMs` after its first ack; returns the acked indexes. */
function runAndKill(dir: string, killAfterMs: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [__filename], {
      env: { ...process.env, WAL_CRASH_CHILD: dir },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const acked: number[] = [];
    let partial = '';
    let timer: NodeJS.Timeout | null = null;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s: string) => {
      const lines = (partial + s).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) acked.push(Number(l));
      if (timer === null) timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`child exited early: code ${code} signal ${signal}`));
      else resolve(acked);
    });
  });
}
