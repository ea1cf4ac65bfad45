// A runnable demo of the agent registry against any etcd v3 endpoint:
//
//   npm start &                                   # etcd-ts on 127.0.0.1:2379
//   node dist/examples/agent-registry/demo.js [--endpoints 127.0.0.1:2379] [--agents 20] [--ttl 5]
//
// Registers N agents with two capabilities, lists them, follows the prefix, then lets half of them
// stop renewing and prints the DELETE events and the final listing once their leases expire.
import { Etcd3 } from 'etcd3';
import { discover, follow, register, Registration, snapshot } from './registry';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : dflt;
}

async function main(): Promise<void> {
  const endpoint = arg('endpoints', '127.0.0.1:2379').split(',')[0];
  const n = Number(arg('agents', '20'));
  const ttl = Number(arg('ttl', '5'));
  const client = new Etcd3({ hosts: `http://${endpoint}` });
  const regs: Registration[] = [];
  for (let i = 0; i < n; i++) {
    const capability = i % 2 === 0 ? 'summarize' : 'translate';
    regs.push(await register(client, { id: `agent-${i}`, capability, endpoint: `http://10.0.0.${i}:8080`, meta: { version: '1.0' } }, ttl));
  }
  const snap = await snapshot(client);
  console.log(`registered ${snap.agents.length} agents; summarize: ${(await discover(client, 'summarize')).length}`);
  const watcher = await follow(client, undefined, snap.nextRevision, {
    up: (a) => console.log(`up   ${a.capability}/${a.id} at ${a.endpoint}`),
    down: (k) => console.log(`down ${k}`),
  });
  console.log(`half of the agents stop renewing; their entries expire within ${ttl} s`);
  regs.slice(0, n / 2).forEach((r) => r.abandon());
  await new Promise((r) => setTimeout(r, (ttl + 2) * 1000));
  console.log(`live now: ${(await discover(client)).map((a) => a.id).join(', ')}`);
  await watcher.cancel();
  await Promise.all(regs.slice(n / 2).map((r) => r.deregister()));
  client.close();
}

main().catch((e: Error) => {
  console.error(e.message);
  process.exit(1);
});
