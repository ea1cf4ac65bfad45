// --max-wals and --max-snapshots: a member with small WAL segments (ETCD_TS_WAL_SEGMENT_BYTES) and a
// small --snapshot-count takes thousands of writes; the WAL directory then holds at most --max-wals
// segments (as etcd's purge leaves it; only segments a snapshot covers are removed), no snapshot file is
// left in the member directory, and after a clean restart and after kill -9 every acknowledged write
// reads back. With --max-wals 0 (etcd: unlimited) every segment is kept, and a restart with a limit
// trims them.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Etcd3 } from 'etcd3';
import { cleanupServersAfter, Server, startEtcdTs } from '../support/procs';

const SEGMENT_BYTES = 16 * 1024;

function walFiles(s: Server): string[] {
  return fs.readdirSync(path.join(s.dataDir, 'member', 'wal')).filter((f) => f.endsWith('.wal'));
}

async function writeMany(s: Server, prefix: string, total: number): Promise<Map<string, string>> {
  const acked = new Map<string, string>();
  const client = new Etcd3({ hosts: `http://${s.endpoint}` });
  try {
    for (let i = 0; i < total; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, async (_, j) => {
          const k = `${prefix}${i + j}`;
          const v = `v${i + j}-`.padEnd(200, 'x');
          await client.put(k).value(v);
          acked.set(k, v);
        }),
      );
    }
  } finally {
    client.close();
  }
  return acked;
}

async function checkAll(s: Server, prefix: string, acked: Map<string, string>, how: string): Promise<void> {
  const client = new Etcd3({ hosts: `http://${s.endpoint}` });
  try {
    const all: Record<string, string> = await client.getAll().prefix(prefix).strings();
    assert.equal(Object.keys(all).length, acked.size, `${how}: key count`);
    for (const [k, v] of acked) assert.equal(all[k], v, `${how}: ${k}`);
  } finally {
    client.close();
  }
}

async function waitFor(what: string, cond: () => boolean): Promise<void> {
  for (let t = 0; t < 200 && !cond(); t++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(cond(), what);
}

describe('retention: --max-wals and --max-snapshots', function () {
  this.timeout(180_000);
  let server: Server | undefined;
  cleanupServersAfter(() => [server]);

  it('keeps at most --max-wals segments and no snapshot files, and every acknowledged write survives restarts', async () => {
    const s = await startEtcdTs({
      logLevel: 'info',
      env: { ...process.env, ETCD_TS_WAL_SEGMENT_BYTES: String(SEGMENT_BYTES) },
      extraArgs: ['--snapshot-count', '100', '--max-wals', '3', '--max-snapshots', '2'],
    });
    server = s;
    const acked = await writeMany(s, 'ret/', 3000);
    // 3000 entries of ~250 bytes are dozens of 16 KiB segments; the snapshot every 100 entries covers
    // all but the newest, so the purge brings the directory down to the limit.
    await waitFor(`WAL files ${walFiles(s).length} > 3`, () => walFiles(s).length <= 3);
    assert.ok(s.stderr().includes('"saved snapshot"'), 'no snapshot was saved');
    assert.ok(!/max-(wals|snapshots)/.test(s.stderr()), 'a warning about --max-wals or --max-snapshots');
    const memberFiles = fs.readdirSync(path.join(s.dataDir, 'member'));
    assert.ok(!memberFiles.some((f) => f.startsWith('snap')), `snapshot files left: ${memberFiles.join(' ')}`);
    for (const how of ['restart', 'kill9'] as const) {
      if (how === 'kill9') await s.kill9();
      await s.restart();
      await checkAll(s, 'ret/', acked, how);
      assert.ok(walFiles(s).length <= 3, `${how}: ${walFiles(s).length} WAL files`);
    }
    const more = await writeMany(s, 'ret2/', 500);
    await waitFor(`WAL files ${walFiles(s).length} > 3 after more writes`, () => walFiles(s).length <= 3);
    await s.kill9();
    await s.restart();
    await checkAll(s, 'ret/', acked, 'final');
    await checkAll(s, 'ret2/', more, 'final');
  });

  it('keeps every segment with --max-wals 0, and a restart with a limit trims them', async () => {
    const env = { ...process.env, ETCD_TS_WAL_SEGMENT_BYTES: String(SEGMENT_BYTES) };
    const s = await startEtcdTs({ logLevel: 'info', env, extraArgs: ['--snapshot-count', '100', '--max-wals', '0'] });
    server = s;
    const acked = await writeMany(s, 'all/', 1500);
    await waitFor('no snapshot saved', () => s.stderr().includes('"saved snapshot"'));
    const kept = walFiles(s).length;
    // ~1500 * 250 bytes over 16 KiB segments: every one of them is still there.
    assert.ok(kept >= 15, `only ${kept} WAL files kept with --max-wals 0`);
    assert.ok(walFiles(s).includes('0000000000000000-0000000000000001.wal'), 'the first segment was removed');
    await s.stop();
    const limited = await startEtcdTs({
      logLevel: 'info',
      env,
      dataDir: s.dataDir,
      extraArgs: ['--snapshot-count', '100', '--max-wals', '2'],
    });
    server = limited;
    assert.ok(walFiles(limited).length <= 2, `${walFiles(limited).length} WAL files after a restart with --max-wals 2`);
    await checkAll(limited, 'all/', acked, 'restart with --max-wals 2');
  });
});
