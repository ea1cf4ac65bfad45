// The agent-registry recipe (examples/agent-registry) end to end with the `etcd3` client: 1,000
// agents register with a 5 s TTL through 10 client connections, a follower watches the prefix from
// the revision of its first listing, half of the agents stop renewing, and within TTL + 2 s the
// registry lists exactly the live half and the follower has seen exactly the matching DELETEs (and
// no other). ETCD_TS_TARGET=etcd runs the same test against Debian's etcd.
import * as assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { agentKey, discover, follow, register, Registration, snapshot } from '../../examples/agent-registry/registry';
import { cleanupServersAfter, Server, startKind, targetKind } from '../support/procs';
import { sleep } from './watch_client';

const AGENTS = 1000;
const CONNECTIONS = 10;
const TTL = 5;

describe('agent registry: 1,000 agents, half stop renewing', function () {
  this.timeout(120_000);
  let s: Server | undefined;
  const clients: Etcd3[] = [];
  cleanupServersAfter(() => [s]);
  after(() => { for (const c of clients) c.close(); });

  it('lists exactly the live half within TTL + 2 s, and a watcher saw exactly their DELETEs', async () => {
    s = await startKind(targetKind());
    for (let i = 0; i < CONNECTIONS; i++) clients.push(new Etcd3({ hosts: s.clientUrl, dialTimeout: 5000 }));
    const regs: Registration[] = new Array(AGENTS);
    const caps = ['summarize', 'translate', 'search', 'plan'];
    await Promise.all(clients.map(async (c, ci) => {
      for (let i = ci; i < AGENTS; i += CONNECTIONS) {
        regs[i] = await register(c, { id: `a${i}`, capability: caps[i % caps.length], endpoint: `http://10.0.${i >> 8}.${i & 255}:7000`, meta: { slots: i % 7 } }, TTL);
      }
    }));
    const observer = new Etcd3({ hosts: s.clientUrl });
    clients.push(observer);
    const snap = await snapshot(observer);
    assert.equal(snap.agents.length, AGENTS);
    assert.equal((await discover(observer, 'search')).length, AGENTS / caps.length);
    const downs: string[] = [];
    const ups: string[] = [];
    const watcher = await follow(observer, undefined, snap.nextRevision, {
      up: (a) => ups.push(a.id),
      down: (k) => downs.push(k),
    });

    const abandoned = new Set<string>();
    const live = new Set<string>();
    regs.forEach((_r, i) => (i % 2 === 0 ? abandoned : live).add(agentKey(caps[i % caps.length], `a${i}`)));
    const t0 = Date.now();
    regs.forEach((r, i) => { if (i % 2 === 0) r.abandon(); });

    const deadline = t0 + (TTL + 2) * 1000;
    let listed: string[];
    for (;;) {
      listed = (await discover(observer)).map((a) => agentKey(a.capability, a.id));
      if (listed.length === live.size && downs.length >= abandoned.size) break;
      if (Date.now() > deadline) break;
      await sleep(200);
    }
    const elapsed = Date.now() - t0;
    assert.equal(listed.length, live.size, `after ${elapsed} ms: ${listed.length} listed, ${downs.length} deletes seen`);
    assert.deepEqual(new Set(listed), live);
    assert.ok(elapsed <= (TTL + 2) * 1000, `took ${elapsed} ms`);
    await sleep(300); // any extra (wrong) event would arrive now
    assert.equal(downs.length, abandoned.size, 'one DELETE per abandoned agent, no more');
    assert.deepEqual(new Set(downs), abandoned);
    assert.deepEqual(ups, [], 'no registration changed');
    // The live half is still renewing: it stays after another full TTL.
    await sleep(TTL * 1000);
    assert.equal((await discover(observer)).length, live.size);
    await watcher.cancel();
    await Promise.all(regs.filter((_, i) => i % 2 === 1).map((r) => r.deregister()));
    assert.equal((await discover(observer)).length, 0);
  });
});
