// Maintenance.Snapshot while writes go on. A store of 8000 keys with 2 KiB values (a ~20 MB snapshot);
// four writers keep putting. A raw gRPC client asks for a snapshot and stops reading after the first
// message (HTTP/2 flow control holds the server's sending): the writers' puts are still acknowledged
// while the stream is held. Then it reads the rest, and checks the stream as etcd sends it (32 KiB blobs,
// remaining_bytes counting down, then the SHA-256 of everything sent) and that the snapshot is of one
// point in time: `etcdctl snapshot status` gives a revision R at least that of the last put acknowledged
// before the request and below that of every put acknowledged after the first message; etcd 3.4
// restored from it serves exactly what etcd-ts serves at revision R.
//
//   npm run build && npx mocha --no-config --exit --timeout 300000 dist/test/integration/snapshot_concurrent.test.js
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as os from 'node:os';
import * as path from 'node:path';
import { etcdserverpb } from '../../src/shared/gen/etcd';
import { etcdctl, etcdctlJson } from '../support/etcdctl';
import { RawGrpc } from '../support/grpc_raw';
import { cleanupServersAfter, freePort, Server, startEtcd, startEtcdTs } from '../support/procs';

const keys = 8000;
const valueBytes = 2048;

async function put(c: RawGrpc, key: string, value: Buffer): Promise<number> {
  const r = await c.unary('/etcdserverpb.KV/Put', etcdserverpb.PutRequest.encode({ key: Buffer.from(key), value }).finish());
  assert.equal(r.status, 0, r.message);
  return Number(etcdserverpb.PutResponse.decode(r.body!).header!.revision);
}

interface Writers {
  /** Revisions of acknowledged puts with the time (a counter of events) they were acknowledged. */
  acked: Array<{ rev: number; at: number }>;
  stop(): Promise<void>;
}

let clock = 0;

function startWriters(c: RawGrpc): Writers {
  const acked: Writers['acked'] = [];
  let stopped = false;
  const loops = Array.from({ length: 4 }, async (_, w) => {
    for (let i = 0; !stopped; i++) {
      const rev = await put(c, `w/${w}/${i % 50}`, Buffer.from(`${w}-${i}`));
      acked.push({ rev, at: ++clock });
    }
  });
  return {
    acked,
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

interface Reply {
  remaining: number;
  blob: Buffer;
}

describe('snapshot: writes go on while a snapshot streams, and it is of one point in time', function () {
  this.timeout(300_000);
  let ts: Server | undefined;
  let restored: Server | undefined;
  let dir = '';
  cleanupServersAfter(() => [ts, restored]);
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'snapshot-concurrent-'));
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('held stream, writes acknowledged, one revision', async () => {
    ts = await startEtcdTs({ logLevel: 'warn' });
    const c = new RawGrpc(ts.endpoint);
    try {
      for (let i = 0; i < keys; i += 64) {
        await Promise.all(
          Array.from({ length: 64 }, (_, j) => put(c, `bulk/${String(i + j).padStart(5, '0')}`, Buffer.alloc(valueBytes, (i + j) & 0xff))),
        );
      }
      const writers = startWriters(c);
      while (writers.acked.length < 20) await new Promise((r) => setTimeout(r, 20));

      const beforeRequest = Math.max(...writers.acked.map((a) => a.rev));
      const session = http2.connect(`http://${ts.endpoint}`);
      session.on('error', () => undefined);
      const req = session.request({
        ':method': 'POST',
        ':path': '/etcdserverpb.Maintenance/Snapshot',
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      let buf = Buffer.alloc(0);
      const replies: Reply[] = [];
      let status: string | undefined;
      let firstAt = -1;
      const first = new Promise<void>((resolve) => {
        req.on('data', (d: Buffer) => {
          if (firstAt < 0) {
            firstAt = ++clock;
            req.pause(); // stop reading: flow control holds the server
            resolve();
          }
          buf = Buffer.concat([buf, d]);
          while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
            const m = etcdserverpb.SnapshotResponse.decode(buf.subarray(5, 5 + buf.readUInt32BE(1)));
            replies.push({ remaining: Number(m.remainingBytes ?? 0), blob: Buffer.from(m.blob ?? []) });
            buf = buf.subarray(5 + buf.readUInt32BE(1));
          }
        });
      });
      let message = '';
      const ended = new Promise<void>((resolve, reject) => {
        req.on('trailers', (h) => {
          status = String(h['grpc-status']);
          message = decodeURIComponent(String(h['grpc-message'] ?? ''));
        });
        req.on('end', () => resolve());
        req.on('error', reject);
      });
      const frame = Buffer.alloc(5);
      req.end(frame); // an empty SnapshotRequest
      await Promise.race([first, ended]);
      assert.ok(firstAt > 0, `the snapshot ended without data: status ${status} ${message}`);

      // Writes are acknowledged while the stream is held.
      const heldFrom = writers.acked.length;
      const deadline = Date.now() + 60_000;
      while (writers.acked.length < heldFrom + 100) {
        assert.ok(
          Date.now() < deadline,
          `puts stalled while the snapshot stream was held (${writers.acked.length - heldFrom} acknowledged)`,
        );
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(status, undefined, 'the server finished sending a ~20 MB snapshot to a client that reads nothing');
      req.resume();
      await ended;
      await writers.stop();
      session.close();
      assert.equal(status, '0');

      // The stream as etcd sends it.
      const data = replies.slice(0, -1);
      const total = data.reduce((n, r) => n + r.blob.length, 0);
      let sent = 0;
      for (const [i, r] of data.entries()) {
        if (i < data.length - 1) assert.equal(r.blob.length, 32 * 1024);
        sent += r.blob.length;
        assert.equal(r.remaining, total - sent);
      }
      const bytes = Buffer.concat(data.map((r) => r.blob));
      const last = replies[replies.length - 1]!;
      assert.equal(last.remaining, 0);
      assert.deepEqual(last.blob, createHash('sha256').update(bytes).digest());
      assert.ok(total > keys * valueBytes, `snapshot of ${total} bytes`);

      const file = path.join(dir, 'snap.db');
      fs.writeFileSync(file, Buffer.concat([bytes, last.blob]));
      const st = await etcdctlJson(ts.endpoint, ['snapshot', 'status', file]);
      const rev: number = st.revision;
      assert.ok(rev >= beforeRequest, `snapshot revision ${rev} < ${beforeRequest}, acknowledged before the request`);
      for (const a of writers.acked)
        if (a.at > firstAt)
          assert.ok(a.rev > rev, `a put acknowledged after the first message is in the snapshot (rev ${a.rev} <= ${rev})`);
      console.log(
        `      snapshot: ${total} bytes at revision ${rev}; ${writers.acked.length} puts acknowledged, ${writers.acked.filter((a) => a.at > firstAt).length} after its first message`,
      );

      const peerPort = await freePort();
      const peer = `http://127.0.0.1:${peerPort}`;
      const dataDir = path.join(dir, 'restored');
      const r = await etcdctl('127.0.0.1:1', [
        'snapshot',
        'restore',
        file,
        '--data-dir',
        dataDir,
        '--name',
        'm1',
        '--initial-cluster',
        `m1=${peer}`,
        '--initial-advertise-peer-urls',
        peer,
      ]);
      assert.equal(r.code, 0, r.stderr);
      restored = await startEtcd({ name: 'm1', dataDir, peerPort, initialCluster: `m1=${peer}`, logLevel: 'warn' });
      const want = await etcdctlJson(ts.endpoint, ['get', '', '--prefix', '--rev', String(rev)]);
      const got = await etcdctlJson(restored.endpoint, ['get', '', '--prefix']);
      assert.equal(got.header.revision, rev);
      assert.equal(got.count, want.count);
      assert.deepEqual(got.kvs, want.kvs);

      // Clients that go away, while the file is made and while it is sent: nothing is left behind in
      // the member dir, and the next snapshot is served (the concurrency count came back down).
      const memberDir = path.join(ts.dataDir, 'member');
      const leftovers = (): string[] => fs.readdirSync(memberDir).filter((n) => n.startsWith('snapshot-'));
      // Cancelled at once, after 300 ms (while the worker writes the file, on this store), and after
      // the first message: whichever phase each one hits, nothing may stay behind.
      for (const cancelAfter of [0, 300, -1]) {
        const cancelAfterData = cancelAfter < 0;
        const s2 = http2.connect(`http://${ts.endpoint}`);
        s2.on('error', () => undefined);
        const r2 = s2.request({
          ':method': 'POST',
          ':path': '/etcdserverpb.Maintenance/Snapshot',
          'content-type': 'application/grpc',
          te: 'trailers',
        });
        r2.on('error', () => undefined);
        const data = new Promise<void>((resolve) => r2.once('data', () => resolve()));
        r2.end(Buffer.alloc(5));
        if (cancelAfterData) await data;
        else await new Promise((r) => setTimeout(r, cancelAfter));
        r2.close(http2.constants.NGHTTP2_CANCEL);
        s2.close();
      }
      const until = Date.now() + 30_000;
      while (leftovers().length > 0) {
        assert.ok(Date.now() < until, `left in ${memberDir}: ${leftovers().join(', ')}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const again = await etcdctl(ts.endpoint, ['snapshot', 'save', path.join(dir, 'again.db')]);
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(leftovers(), []);
    } finally {
      c.close();
    }
  });
});
