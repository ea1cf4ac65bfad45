// State-machine snapshots release the WAL: with --snapshot-count 500, after a few thousand writes
// the server logs "saved snapshot", and a restart (clean, then kill -9) replays only the WAL tail
// after the last snapshot (the "recovered WAL" log line reports how many entries it read), with
// every write still readable. This is what keeps restart time independent of history length.
import { strict as assert } from 'node:assert';
import { Etcd3 } from 'etcd3';
import { cleanupServersAfter, Server, startEtcdTs } from '../support/procs';

function recoveredEntries(stderr: string): number {
  const lines = stderr.split('\n').filter((l) => l.includes('"recovered WAL"'));
  assert.ok(lines.length > 0, `no "recovered WAL" line in:\n${stderr}`);
  return (JSON.parse(lines[lines.length - 1]) as { entries: number }).entries;
}

describe('snapshots: WAL release and restart replay', function () {
  this.timeout(120_000);
  let server: Server | undefined;
  cleanupServersAfter(() => [server]);

  it('replays only the tail after the last snapshot, and keeps every write', async () => {
    const snapshotCount = 500;
    const s = await startEtcdTs({ logLevel: 'info', extraArgs: ['--snapshot-count', String(snapshotCount)] });
    server = s;
    const client = new Etcd3({ hosts: `http://${s.endpoint}` });
    const total = 4000;
    try {
      for (let i = 0; i < total; i += 100) {
        await Promise.all(Array.from({ length: 100 }, (_, j) => client.put(`snap/${i + j}`).value(`v${i + j}`)));
      }
    } finally {
      client.close();
    }
    // The snapshot runs after apply; wait for its log line rather than for a fixed time.
    for (let t = 0; t < 200 && !s.stderr().includes('"saved snapshot"'); t++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(s.stderr().includes('"saved snapshot"'), 'no snapshot was saved');

    for (const how of ['restart', 'kill9'] as const) {
      if (how === 'kill9') await s.kill9();
      await s.restart();
      const replayed = recoveredEntries(s.stderr());
      assert.ok(replayed < total, `${how}: replayed ${replayed} WAL entries, expected only the tail after a snapshot`);
      const check = new Etcd3({ hosts: `http://${s.endpoint}` });
      try {
        const all: Record<string, string> = await check.getAll().prefix('snap/').strings();
        assert.equal(Object.keys(all).length, total, `${how}: keys lost`);
        for (let i = 0; i < total; i += 397) assert.equal(all[`snap/${i}`], `v${i}`);
      } finally {
        check.close();
      }
    }
  });
});
