// kill -9 under concurrent writers: every acknowledged write must be there after a restart.
// Several rounds: start (or restart) etcd-ts on the same data dir, run concurrent writers that
// record each put the server acknowledged, SIGKILL the server at an arbitrary point, restart,
// and read every acknowledged key back (linearizable get). Timing varies run to run; the
// check does not depend on it.
import { strict as assert } from 'node:assert';
import { Etcd3 } from 'etcd3';
import { startEtcdTs } from '../support/procs';

describe('durability: kill -9 under concurrent writers', function () {
  this.timeout(180_000);

  it('keeps every acknowledged write across 4 SIGKILLs', async () => {
    const server = await startEtcdTs();
    const acked = new Map<string, string>();
    try {
      for (let round = 0; round < 4; round++) {
        const client = new Etcd3({ hosts: `http://${server.endpoint}` });
        let stop = false;
        const writer = async (w: number): Promise<void> => {
          for (let i = 0; !stop; i++) {
            const key = `r${round}/w${w}/k${i}`;
            const value = `v-${round}-${w}-${i}`;
            try {
              await client.put(key).value(value);
              acked.set(key, value);
            } catch {
              return; // the server went away mid-request: not acknowledged, nothing to check
            }
          }
        };
        const writers = Array.from({ length: 16 }, (_, w) => writer(w));
        // Let some writes land, then kill without warning.
        while (acked.size < (round + 1) * 300) await new Promise((r) => setTimeout(r, 20));
        await server.kill9();
        stop = true;
        await Promise.all(writers);
        client.close();
        await server.restart();
        const check = new Etcd3({ hosts: `http://${server.endpoint}` });
        try {
          const all = await check.getAll().prefix('r').strings();
          for (const [k, v] of acked) assert.equal(all[k], v, `acknowledged write ${k} lost after kill -9 in round ${round}`);
        } finally {
          check.close();
        }
      }
    } finally {
      await server.stop();
    }
  });
});
