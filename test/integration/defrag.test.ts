// Defragment while the member serves (src/main/defrag.ts). A store grown with 16 MiB of values that
// are then deleted and compacted shrinks under `etcdctl defrag`, while a writer keeps putting and
// reading keys and a watcher follows them: every acknowledged put is there afterwards with its value,
// the watcher got every put once and in order (the watch worker followed the store to its new
// directory), and the longest put and get latency during the defragmentation is printed. The member
// restarts on the new directory; a second defragmentation works too. `etcdctl defrag` prints what it
// prints against etcd 3.4 ("Finished defragmenting etcd member[...]").
//
//   npm run build && npx mocha --no-config --exit --timeout 180000 dist/test/integration/defrag.test.js
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { etcdserverpb } from '../../src/shared/gen/etcd';
import { etcdctl, etcdctlBin } from '../support/etcdctl';
import { RawGrpc } from '../support/grpc_raw';
import { cleanupServersAfter, Server, startEtcd, startEtcdTs } from '../support/procs';

async function status(s: Server): Promise<{ dbSize: number; revision: number }> {
  const r = await etcdctl(s.endpoint, ['endpoint', 'status', '-w', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout.replace(/":(\d{16,})/g, '":"$1"'))[0].Status;
  return { dbSize: j.dbSize, revision: j.header.revision };
}

async function fillAndDelete(s: Server): Promise<void> {
  const c = new RawGrpc(s.endpoint);
  try {
    const value = Buffer.alloc(8192, 0x61);
    for (let i = 0; i < 2048; i += 64) {
      await Promise.all(
        Array.from({ length: 64 }, (_, j) =>
          c.unary('/etcdserverpb.KV/Put', etcdserverpb.PutRequest.encode({ key: Buffer.from(`big/${i + j}`), value }).finish()),
        ),
      );
    }
    const del = await c.unary(
      '/etcdserverpb.KV/DeleteRange',
      etcdserverpb.DeleteRangeRequest.encode({ key: Buffer.from('big/'), rangeEnd: Buffer.from('big0') }).finish(),
    );
    assert.equal(del.status, 0, del.message);
    const rev = (await status(s)).revision;
    const cmp = await c.unary(
      '/etcdserverpb.KV/Compact',
      etcdserverpb.CompactionRequest.encode({ revision: rev, physical: true }).finish(),
    );
    assert.equal(cmp.status, 0, cmp.message);
  } finally {
    c.close();
  }
}

interface Load {
  acked: Map<string, string>;
  maxPutMs: number;
  maxGetMs: number;
  stop: () => Promise<void>;
}

/** 4 writers putting load/<n> and reading back what they put, until stopped. */
function startLoad(s: Server): Load {
  const c = new RawGrpc(s.endpoint);
  const load: Load = { acked: new Map(), maxPutMs: 0, maxGetMs: 0, stop: async () => undefined };
  let running = true;
  let seq = 0;
  const writer = async (): Promise<void> => {
    while (running) {
      const key = `load/${String(seq++).padStart(6, '0')}`;
      const value = `v${seq}`;
      let t = performance.now();
      const r = await c.unary(
        '/etcdserverpb.KV/Put',
        etcdserverpb.PutRequest.encode({ key: Buffer.from(key), value: Buffer.from(value) }).finish(),
      );
      load.maxPutMs = Math.max(load.maxPutMs, performance.now() - t);
      assert.equal(r.status, 0, r.message);
      load.acked.set(key, value);
      t = performance.now();
      const g = await c.unary('/etcdserverpb.KV/Range', etcdserverpb.RangeRequest.encode({ key: Buffer.from(key) }).finish());
      load.maxGetMs = Math.max(load.maxGetMs, performance.now() - t);
      assert.equal(g.status, 0, g.message);
      assert.equal(Buffer.from(etcdserverpb.RangeResponse.decode(g.body as Buffer).kvs[0]?.value ?? []).toString(), value);
    }
  };
  const writers = Array.from({ length: 4 }, writer);
  load.stop = async () => {
    running = false;
    await Promise.all(writers);
    c.close();
  };
  return load;
}

function dataFileBytes(s: Server): number {
  const memberDir = path.join(s.dataDir, 'member');
  const pointer = path.join(memberDir, 'lmdb.current');
  const name = fs.existsSync(pointer) ? fs.readFileSync(pointer, 'utf8') : 'lmdb';
  return fs.statSync(path.join(memberDir, name, 'data.mdb')).size;
}

describe('Defragment', function () {
  this.timeout(180_000);
  let s: Server | undefined;
  let ref: Server | undefined;
  cleanupServersAfter(() => [s, ref]);

  before(async () => {
    [s, ref] = await Promise.all([startEtcdTs(), startEtcd()]);
  });

  it('shrinks the store while the member serves writes, reads and a watch', async () => {
    assert.ok(s);
    await fillAndDelete(s);
    const before = { ...(await status(s)), file: dataFileBytes(s) };
    const watcher = spawn(etcdctlBin, [`--endpoints=${s.endpoint}`, 'watch', '--prefix', 'load/'], {
      env: { ...process.env, ETCDCTL_API: '3' },
    });
    let watched = '';
    watcher.stdout.on('data', (d: Buffer) => (watched += d.toString()));
    await new Promise((r) => setTimeout(r, 500));
    const load = startLoad(s);
    await new Promise((r) => setTimeout(r, 500));
    const t0 = performance.now();
    const r = await etcdctl(s.endpoint, ['defrag']);
    const defragMs = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 500));
    await load.stop();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `Finished defragmenting etcd member[${s.endpoint}]\n`);
    const after = { ...(await status(s)), file: dataFileBytes(s) };
    console.log(
      `      db ${before.dbSize} -> ${after.dbSize} bytes (file ${before.file} -> ${after.file}); defrag ${defragMs.toFixed(0)} ms; ` +
        `${load.acked.size} puts meanwhile; longest put ${load.maxPutMs.toFixed(1)} ms, get ${load.maxGetMs.toFixed(1)} ms`,
    );
    assert.ok(after.dbSize < before.dbSize / 4, `${after.dbSize} < ${before.dbSize} / 4`);
    assert.ok(after.file < before.file / 4, `file ${after.file} < ${before.file} / 4`);
    assert.ok(load.acked.size > 0);
    // Every acknowledged put, with its value (one range over the prefix, linearizable).
    const all = await etcdctl(s.endpoint, ['get', '--prefix', 'load/']);
    const lines = all.stdout.trim().split('\n');
    const got = new Map<string, string>();
    for (let i = 0; i + 1 < lines.length; i += 2) got.set(lines[i], lines[i + 1]);
    assert.deepEqual(got, load.acked);
    // The watcher saw each put once, in key (= write) order per writer... all of them, in revision order.
    await new Promise((r) => setTimeout(r, 500));
    watcher.kill();
    const puts = watched.split('\n').filter((l) => l.startsWith('load/'));
    assert.equal(puts.length, load.acked.size);
    assert.equal(new Set(puts).size, puts.length);
    assert.equal(fs.readFileSync(path.join(s.dataDir, 'member', 'lmdb.current'), 'utf8'), 'lmdb-1');
    assert.ok(!fs.existsSync(path.join(s.dataDir, 'member', 'lmdb')), 'the old generation is removed');
  });

  it('restarts on the defragmented store, and defragments again', async () => {
    assert.ok(s);
    const keys = (await etcdctl(s.endpoint, ['get', '--prefix', 'load/', '--count-only', '-w', 'json'])).stdout;
    await s.restart();
    assert.equal(
      (await etcdctl(s.endpoint, ['get', '--prefix', 'load/', '--count-only', '-w', 'json'])).stdout.replace(/"raft_term":\d+/, ''),
      keys.replace(/"raft_term":\d+/, ''),
    );
    assert.equal((await etcdctl(s.endpoint, ['put', 'after', 'restart'])).code, 0);
    const r = await etcdctl(s.endpoint, ['defrag']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.readFileSync(path.join(s.dataDir, 'member', 'lmdb.current'), 'utf8'), 'lmdb-2');
    assert.equal((await etcdctl(s.endpoint, ['get', 'after', '--print-value-only'])).stdout, 'restart\n');
  });

  it('prints what etcd 3.4 prints', async () => {
    assert.ok(s && ref);
    const [a, b] = await Promise.all([etcdctl(ref.endpoint, ['defrag']), etcdctl(s.endpoint, ['defrag'])]);
    const fix = (x: string, srv: Server): string => x.split(srv.endpoint).join('EP');
    assert.deepEqual({ code: b.code, out: fix(b.stdout, s), err: b.stderr }, { code: a.code, out: fix(a.stdout, ref), err: a.stderr });
  });
});
