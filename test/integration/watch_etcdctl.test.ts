// etcdctl watch against etcd-ts and Debian's etcd 3.4, differential on the printed output: the same
// writes on a fresh server of each kind, the same `etcdctl watch ...` command, byte-identical stdout.
// Covers `watch foo`, `watch --prefix /agents/`, `watch foo --rev=2 --prev-kv` (history replay with
// prev_kv), `watch` on a compacted revision (etcdctl prints the compaction error), and `watch -i` with
// two watches and a progress request (its blocks come from several goroutines, so compared as a multiset;
// the progress line is checked to carry a revision no event after it is at or below).
//
//   npx tsc -p . && npx mocha --no-config --exit --timeout 60000 dist/test/integration/watch_etcdctl.test.js
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { etcdctl, etcdctlBin } from '../support/etcdctl';
import { cleanupServersAfter, Server, startEtcd, startEtcdTs } from '../support/procs';
import { sleep } from './watch_client';

interface Running {
  out(): string;
  send(line: string): void;
  stop(): Promise<{ stdout: string; stderr: string }>;
}

function runCtl(endpoint: string, args: string[]): Running {
  const env: NodeJS.ProcessEnv = { ...process.env, ETCDCTL_API: '3' };
  for (const k of Object.keys(env)) if (k.startsWith('ETCDCTL_') && k !== 'ETCDCTL_API') delete env[k];
  const child = spawn(etcdctlBin, [`--endpoints=${endpoint}`, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  child.stdin.on('error', () => undefined);
  const exited = new Promise<void>((r) => child.on('close', () => r()));
  return {
    out: () => stdout,
    send: (line) => { child.stdin.write(line + '\n'); },
    async stop() {
      child.kill('SIGTERM');
      await exited;
      return { stdout, stderr };
    },
  };
}

async function waitFor(r: Running, marker: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!r.out().includes(marker)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${JSON.stringify(marker)}; got ${JSON.stringify(r.out())}`);
    await sleep(20);
  }
}

async function put(s: Server, k: string, v: string): Promise<void> {
  const r = await etcdctl(s.endpoint, ['put', k, v]);
  assert.equal(r.code, 0, r.stderr);
}

/** Runs the scenario on a server; returns what each etcdctl watch printed. */
async function scenario(s: Server): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  await put(s, 'foo', 'v1');                                           // rev 2
  await put(s, '/agents/a', '1');                                      // rev 3
  const single = runCtl(s.endpoint, ['watch', 'foo']);
  const prefix = runCtl(s.endpoint, ['watch', '--prefix', '/agents/']);
  await sleep(1000); // both watches established (etcdctl prints nothing until an event)
  await put(s, 'foo', 'v2');                                           // rev 4
  await put(s, '/agents/b', '2');                                      // rev 5
  await put(s, '/agentsX', 'no');                                      // rev 6
  assert.equal((await etcdctl(s.endpoint, ['del', 'foo'])).code, 0);  // rev 7
  await put(s, '/agents/a', '3');                                      // rev 8
  await put(s, 'foo', 'end');                                          // rev 9
  await waitFor(single, 'end');
  await waitFor(prefix, '3');
  out.single = (await single.stop()).stdout;
  out.prefix = (await prefix.stop()).stdout;
  const replay = runCtl(s.endpoint, ['watch', 'foo', '--rev=2', '--prev-kv']);
  await waitFor(replay, 'end');
  out.replay = (await replay.stop()).stdout;
  const ranged = runCtl(s.endpoint, ['watch', '/agents/a', '/agents/c', '--rev=1']);
  await waitFor(ranged, '3');
  out.ranged = (await ranged.stop()).stdout;
  assert.equal((await etcdctl(s.endpoint, ['compact', '5'])).code, 0);
  const compacted = runCtl(s.endpoint, ['watch', 'foo', '--rev=3']);
  await sleep(1500);
  const c = await compacted.stop();
  out.compacted = c.stdout + c.stderr.replace(/^\{.*\n/gm, '');
  return out;
}

describe('etcdctl watch: etcd-ts vs etcd 3.4', function () {
  this.timeout(120_000);
  let real: Server | undefined;
  let ts: Server | undefined;
  cleanupServersAfter(() => [real, ts]);

  it('prints the same for watch, --prefix, --rev --prev-kv, ranges and compacted revisions', async () => {
    real = await startEtcd();
    const want = await scenario(real);
    await real.stop();
    ts = await startEtcdTs();
    const got = await scenario(ts);
    assert.equal(want.single, 'PUT\nfoo\nv2\nDELETE\nfoo\n\nPUT\nfoo\nend\n'); // the reference itself is as expected
    assert.deepEqual(got, want);
  });

  it('watch -i: two watches and a progress request', async () => {
    ts ??= await startEtcdTs();
    const s = ts;
    const iaRev = Number(JSON.parse((await etcdctl(s.endpoint, ['put', 'ia', '1', '-w', 'json'])).stdout).header.revision);
    const r = runCtl(s.endpoint, ['watch', '-i']);
    await sleep(300);
    r.send(`watch ia --rev=${iaRev} --prev-kv`);
    r.send('watch --prefix ib');
    await sleep(800);
    r.send('progress');
    await waitFor(r, 'progress notify:');
    await put(s, 'ia', '2');
    await put(s, 'ib1', 'x');
    await waitFor(r, 'ib1\nx');
    const { stdout } = await r.stop();
    const progressRev = Number(/progress notify: (\d+)/.exec(stdout)![1]);
    const base = Number(JSON.parse((await etcdctl(s.endpoint, ['get', 'ia', '-w', 'json'])).stdout).header.revision);
    assert.ok(progressRev >= base - 2 && progressRev < base - 1, `progress ${progressRev} is below the writes after it (${base - 1}, ${base})`);
    // clientv3 hands a progress response (watch_id -1) to the watches on the stream: a line per watch,
    // for those that were set up when it arrived.
    assert.ok((stdout.match(/progress notify: \d+\n/g)?.length ?? 0) >= 1);
    const blocks = stdout.replace(/progress notify: \d+\n/g, '').split(/(?=PUT\n|DELETE\n)/).sort();
    const iaKv = JSON.parse((await etcdctl(s.endpoint, ['get', 'ia', '-w', 'json'])).stdout).kvs[0];
    assert.equal(Number(iaKv.mod_revision), base - 1);
    // ia's first put replayed from its revision (no previous value), the second with its previous value, and ib1.
    assert.deepEqual(blocks, ['PUT\nia\n1\n', 'PUT\nia\n1\nia\n2\n', 'PUT\nib1\nx\n'].sort(), JSON.stringify(stdout));
  });
});
