// The peer transport (src/main/peer/transport.ts) over real TCP on 127.0.0.1 (ports picked by the OS):
// three members exchange raft messages and each receiver sees every sender's messages in order; a batch
// larger than a frame is split in order and a message larger than a frame is dropped and reported; a peer
// that is down gets its bounded queue once it comes up (overflow reported via onUnreachable, the
// queued prefix delivered in order); a peer that stops reading does not hold up the others; a member of
// another cluster and a dialer meaning another member are refused with a log line; a multi-MB snapshot
// directory arrives byte-identical (and a failing onSnapshot reaches the sender with its code), one
// snapshot per sender at a time, a stalled or oversized transfer leaves no temp dir behind; requests
// return bodies, propagate {code, message} errors, time out and fail fast for unknown or down peers;
// garbage, HTTP and silent connections to the port are closed without harm; updatePeer redials the new
// URL; stop() closes everything
// (this file finishes without mocha --exit). Waits poll for conditions, never for fixed durations.
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Logger } from '../../src/main/log';
import { Message, MessageType } from '../../src/main/raft/types';
import { PeerRequestError, PeerTransport, PeerTransportOptions } from '../../src/main/peer/transport';
import { EtcdError, Errors } from '../../src/shared/errors';
import { freePort } from '../support/procs';
import {
  FrameReader, FrameType, HelloStatus, PEER_PROTOCOL_VERSION, Purpose, decodeHello, encodeFrame, encodeHello, encodeHelloAck,
} from '../../src/main/peer/frame';
import { encodeSnapMeta } from '../../src/main/peer/snapshot';

const CLUSTER = 0xcafe_f00d_dead_beefn;

class CaptureLogger extends Logger {
  readonly lines: Array<{ level: string; msg: string; fields?: Record<string, unknown> }> = [];
  constructor() { super("error"); }
  override child(): Logger { return this; }
  override debug(): void {}
  override info(msg: string, fields?: Record<string, unknown>): void { this.lines.push({ level: 'info', msg, fields }); }
  override warn(msg: string, fields?: Record<string, unknown>): void { this.lines.push({ level: 'warn', msg, fields }); }
  override error(msg: string, fields?: Record<string, unknown>): void { this.lines.push({ level: 'error', msg, fields }); }
}

interface Member {
  id: bigint;
  t: PeerTransport;
  url: string;
  log: CaptureLogger;
  /** Received messages per sender, in arrival order. */
  got: Map<bigint, Message[]>;
  unreachable: bigint[];
  snapshots: Array<{ msg: Message; dir: string }>;
}

const open: PeerTransport[] = [];

async function member(id: bigint, over: Partial<PeerTransportOptions> = {}, port = 0): Promise<Member> {
  const log = new CaptureLogger();
  const got = new Map<bigint, Message[]>();
  const unreachable: bigint[] = [];
  const snapshots: Member['snapshots'] = [];
  const t = new PeerTransport({
    selfId: id, clusterId: CLUSTER, listen: [{ host: '127.0.0.1', port }], log,
    onMessages: (msgs) => {
      for (const m of msgs) {
        const l = got.get(m.from) ?? [];
        l.push(m);
        got.set(m.from, l);
      }
    },
    onUnreachable: (pid) => { unreachable.push(pid); },
    onSnapshot: async (msg, dir) => { snapshots.push({ msg, dir }); },
    onRequest: async (_from, kind, body) => {
      if (kind === 'echo') return Buffer.from(body).reverse();
      throw new Error(`no handler for ${kind}`);
    },
    ...over,
  });
  await t.start();
  open.push(t);
  return { id, t, url: `http://127.0.0.1:${t.addresses()[0].port}`, log, got, unreachable, snapshots };
}

function heartbeat(from: bigint, to: bigint, seq: number, data?: Uint8Array): Message {
  return {
    type: data ? MessageType.App : MessageType.Heartbeat, from, to, term: 1, logTerm: 0, index: seq, commit: 0, reject: false, rejectHint: 0,
    entries: data ? [{ term: 1, index: seq, type: 0, data }] : [], context: null, snapshot: null,
  };
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function seqs(m: Member, from: bigint): number[] {
  return (m.got.get(from) ?? []).map((x) => x.index);
}

function range(a: number, b: number): number[] {
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
}

/** Opens a raw connection, writes bytes, resolves when the server closes it. */
function rawExchange(port: number, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.write(bytes));
    const got: Buffer[] = [];
    sock.on('data', (d) => got.push(d));
    sock.on('error', () => {});
    sock.on('close', () => resolve(Buffer.concat(got)));
  });
}

describe('peer transport', function () {
  afterEach(async () => {
    await Promise.all(open.splice(0).map((t) => t.stop()));
  });

  it('three members exchange messages, in order per sender', async () => {
    const ms = [await member(1n), await member(2n), await member(0xffff_ffff_ffff_fff0n)];
    for (const a of ms) for (const b of ms) if (a !== b) a.t.addPeer(b.id, [b.url]);
    const N = 600;
    for (let seq = 1; seq <= N; seq += 3) {
      for (const a of ms) {
        const batch: Message[] = [];
        for (const b of ms) if (a !== b) for (let k = 0; k < 3; k++) batch.push(heartbeat(a.id, b.id, seq + k, seq % 2 ? new Uint8Array(seq) : undefined));
        a.t.send(batch);
      }
      if (seq % 60 === 1) await new Promise((r) => setImmediate(r));
    }
    for (const b of ms) for (const a of ms) if (a !== b) await waitFor(() => seqs(b, a.id).length >= N, `${a.id}->${b.id}`);
    for (const b of ms) for (const a of ms) if (a !== b) {
      assert.deepEqual(seqs(b, a.id), range(1, N), `order ${a.id}->${b.id}`);
      for (const m of b.got.get(a.id)!) if (m.entries.length) assert.equal(m.entries[0].data.length, m.index - ((m.index - 1) % 3));
    }
    for (const a of ms) assert.deepEqual(new Set(a.t.connected()), new Set(ms.filter((b) => b !== a).map((b) => b.id)));
    for (const a of ms) assert.deepEqual(a.unreachable, []);
  });

  it('splits a batch larger than a frame, in order, and drops (and reports) a message larger than a frame', async () => {
    const a = await member(1n, { limits: { peerFrameBytesMax: 10_000 } });
    const b = await member(2n);
    a.t.addPeer(2n, [b.url]);
    const batch = range(1, 60).map((seq) => heartbeat(1n, 2n, seq, new Uint8Array(1000).fill(seq)));
    batch.splice(30, 0, heartbeat(1n, 2n, 1000, new Uint8Array(20_000)));
    a.t.send(batch);
    assert.deepEqual(a.unreachable, [2n]);
    await waitFor(() => seqs(b, 1n).length >= 60, 'split batch');
    assert.deepEqual(seqs(b, 1n), range(1, 60));
    for (const m of b.got.get(1n)!) assert.ok(m.entries[0].data.every((x) => x === m.index));
  });

  it('queues for a peer that is down, reports overflow, delivers the queued prefix when it comes up', async () => {
    const port = await freePort();
    const a = await member(1n, { limits: { peerQueueMessagesMax: 10, peerBackoffMaxMs: 200 } });
    a.t.addPeer(2n, [`http://127.0.0.1:${port}`]);
    a.t.addPeer(3n, ['http://127.0.0.1:1']); // never up
    for (let seq = 1; seq <= 25; seq++) a.t.send([heartbeat(1n, 2n, seq)]);
    assert.ok(a.unreachable.includes(2n), 'overflow reported');
    await waitFor(() => a.log.lines.some((l) => l.msg === 'cannot connect to peer'), 'a failed dial');
    assert.deepEqual(a.t.connected(), []);
    const b = await member(2n, {}, port);
    await waitFor(() => a.t.connected().includes(2n), 'reconnect with backoff');
    await waitFor(() => seqs(b, 1n).length >= 10, 'queued messages');
    a.t.send([heartbeat(1n, 2n, 100)]);
    await waitFor(() => seqs(b, 1n).length >= 11, 'new message');
    assert.deepEqual(seqs(b, 1n), [...range(1, 10), 100]);
    // A message to an unknown peer is dropped and reported, never thrown.
    a.t.send([heartbeat(1n, 9n, 1)]);
    assert.ok(a.unreachable.includes(9n));
    assert.deepEqual(a.t.connected(), [2n]);
  });

  it('follows a peer to its new URL (updatePeer)', async () => {
    const a = await member(1n);
    const b1 = await member(2n);
    a.t.addPeer(2n, [b1.url]);
    a.t.send([heartbeat(1n, 2n, 1)]);
    await waitFor(() => seqs(b1, 1n).length === 1, 'first message');
    await b1.t.stop();
    const b2 = await member(2n);
    a.t.updatePeer(2n, ['http://127.0.0.1:1', b2.url]);
    for (let seq = 2; seq <= 20; seq++) a.t.send([heartbeat(1n, 2n, seq)]);
    await waitFor(() => a.t.connected().includes(2n), 'connected to the new URL');
    a.t.send([heartbeat(1n, 2n, 21)]);
    await waitFor(() => seqs(b2, 1n).includes(21), 'message at the new URL');
    const got = seqs(b2, 1n);
    assert.deepEqual(got, [...got].sort((x, y) => x - y), 'in order');
    a.t.removePeer(2n);
    assert.deepEqual(a.t.connected(), []);
    assert.equal(a.t.queued(2n), undefined);
  });

  it('a peer that stops reading does not hold up the others, and its queue stays bounded', async () => {
    // A fake member 2 that accepts the handshake and then never reads.
    const stalled: net.Socket[] = [];
    const fake = net.createServer((sock) => {
      const r = new FrameReader(64);
      sock.on('data', (d) => {
        r.push(d);
        const f = r.next();
        if (f) {
          decodeHello(f);
          sock.write(encodeHelloAck(HelloStatus.Ok, ''));
          sock.pause();
          stalled.push(sock);
        }
      });
      sock.on('error', () => {});
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    try {
      const a = await member(1n, { limits: { peerQueueBytesMax: 1024 * 1024 } });
      const c = await member(3n);
      a.t.addPeer(2n, [`http://127.0.0.1:${(fake.address() as net.AddressInfo).port}`]);
      a.t.addPeer(3n, [c.url]);
      const blob = new Uint8Array(64 * 1024);
      for (let seq = 1; seq <= 1500; seq++) {
        a.t.send([heartbeat(1n, 2n, seq, blob), heartbeat(1n, 3n, seq)]);
        if (seq % 50 === 0) await new Promise((r) => setTimeout(r, 1));
      }
      await waitFor(() => a.unreachable.includes(2n), 'overflow of the stalled peer');
      const q = a.t.queued(2n)!;
      assert.ok(q.bytes <= 1024 * 1024 && q.messages > 0, `queue bounded: ${JSON.stringify(q)}`);
      await waitFor(() => seqs(c, 1n).length >= 1500, 'messages to the healthy peer');
      assert.deepEqual(seqs(c, 1n), range(1, 1500));
      assert.ok(!a.unreachable.includes(3n));
      assert.ok(process.memoryUsage().rss < 1.5 * 1024 * 1024 * 1024);
    } finally {
      for (const s of stalled) s.destroy();
      await new Promise<void>((r) => fake.close(() => r()));
    }
  });

  it('refuses a member of another cluster and a dialer meaning another member, with a log line', async () => {
    const b = await member(2n);
    const x = await member(1n, { clusterId: 0x1234n });
    x.t.addPeer(2n, [b.url]);
    x.t.send([heartbeat(1n, 2n, 1)]);
    await waitFor(() => b.log.lines.some((l) => l.msg === 'refused peer connection: cluster ID mismatch'), 'cluster refusal log');
    const line = b.log.lines.find((l) => l.msg === 'refused peer connection: cluster ID mismatch')!;
    assert.equal(line.fields?.['remote-cluster'], '1234');
    await waitFor(() => x.log.lines.some((l) => /cluster ID mismatch/.test(String(l.fields?.error))), 'dialer sees the refusal');
    await waitFor(() => x.unreachable.includes(2n), 'unreachable reported');

    const y = await member(1n);
    y.t.addPeer(7n, [b.url]); // stale URL: member 7 is not there
    y.t.send([heartbeat(1n, 7n, 1)]);
    await waitFor(() => b.log.lines.some((l) => l.msg.startsWith('refused peer connection: member ID mismatch')), 'member refusal log');
    await assert.rejects(y.t.request(7n, 'echo', Buffer.from('x'), 10_000), (e: unknown) => e instanceof PeerRequestError && e.code === 14 && /member ID mismatch/.test(e.message));
    assert.deepEqual(x.t.connected(), []);
    assert.deepEqual(y.t.connected(), []);
    assert.equal(b.got.size, 0);
  });

  it('streams a snapshot directory with a multi-MB file byte-identical, and reports a failing onSnapshot', async () => {
    const src = fs.mkdtempSync(path.join(os.tmpdir(), 'peer-snap-src-'));
    const recvParent = fs.mkdtempSync(path.join(os.tmpdir(), 'peer-snap-recv-'));
    try {
      const big = crypto.randomBytes(5 * 1024 * 1024 + 12345);
      fs.writeFileSync(path.join(src, 'data.mdb'), big);
      fs.writeFileSync(path.join(src, 'lock.mdb'), Buffer.from('lock'));
      fs.writeFileSync(path.join(src, 'empty'), Buffer.alloc(0));
      fs.mkdirSync(path.join(src, 'subdir'));
      let received: { msg: Message; files: Record<string, Buffer> } | null = null;
      let fail = false;
      const b = await member(2n, {
        snapshotDir: recvParent,
        onSnapshot: async (msg, dir) => {
          const files: Record<string, Buffer> = {};
          for (const n of fs.readdirSync(dir)) files[n] = fs.readFileSync(path.join(dir, n));
          received = { msg, files };
          if (fail) throw Errors.corrupt();
          fs.rmSync(dir, { recursive: true });
        },
      });
      const a = await member(1n);
      a.t.addPeer(2n, [b.url]);
      const msg: Message = {
        ...heartbeat(1n, 2n, 0), type: MessageType.Snap, term: 4,
        snapshot: { metadata: { index: 1234, term: 3, voters: [1n, 2n, 3n], learners: [] }, data: new Uint8Array(0) },
      };
      // Heartbeats keep flowing on their own connection while the snapshot streams.
      const sending = a.t.sendSnapshot(msg, src);
      a.t.send([heartbeat(1n, 2n, 1)]);
      await sending;
      const r = received as unknown as { msg: Message; files: Record<string, Buffer> };
      assert.deepEqual(r.msg, msg);
      assert.deepEqual(Object.keys(r.files).sort(), ['data.mdb', 'empty', 'lock.mdb']);
      assert.ok(r.files['data.mdb'].equals(big));
      assert.equal(r.files['lock.mdb'].toString(), 'lock');
      assert.equal(r.files.empty.length, 0);
      await waitFor(() => seqs(b, 1n).length === 1, 'heartbeat');

      fail = true;
      await assert.rejects(a.t.sendSnapshot(msg, src), (e: unknown) => e instanceof PeerRequestError && e.code === 15 && e.message === 'etcdserver: corrupt cluster');
      await waitFor(() => fs.readdirSync(recvParent).length === 0, 'failed snapshot dir removed');
      await assert.rejects(a.t.sendSnapshot({ ...msg, to: 9n }, src), PeerRequestError);
    } finally {
      fs.rmSync(src, { recursive: true, force: true });
      fs.rmSync(recvParent, { recursive: true, force: true });
    }
  });

  it('receives one snapshot per sender at a time, and drops a stalled transfer with its partial dir', async () => {
    const src = fs.mkdtempSync(path.join(os.tmpdir(), 'peer-snap-src-'));
    const recvParent = fs.mkdtempSync(path.join(os.tmpdir(), 'peer-snap-recv-'));
    try {
      fs.writeFileSync(path.join(src, 'data.mdb'), crypto.randomBytes(100_000));
      let release: () => void = () => {};
      const held = new Promise<void>((r) => { release = r; });
      let calls = 0;
      const b = await member(2n, {
        snapshotDir: recvParent,
        onSnapshot: async (_msg, dir) => { calls++; await held; fs.rmSync(dir, { recursive: true }); },
      });
      const a = await member(1n);
      a.t.addPeer(2n, [b.url]);
      const msg: Message = { ...heartbeat(1n, 2n, 0), type: MessageType.Snap, snapshot: { metadata: { index: 5, term: 1, voters: [1n], learners: [] }, data: new Uint8Array(0) } };
      const first = a.t.sendSnapshot(msg, src);
      await waitFor(() => calls === 1, 'first snapshot delivered');
      await assert.rejects(a.t.sendSnapshot(msg, src), (e: unknown) => e instanceof PeerRequestError && /already being received/.test(e.message));
      release();
      await first;

      // A sender that handshakes and sends metadata, then goes silent: closed after the idle timeout.
      const c = await member(2n, { snapshotDir: recvParent, limits: { peerSnapshotIdleTimeoutMs: 300 } });
      const port = c.t.addresses()[0].port;
      const sock = net.connect(port, '127.0.0.1');
      sock.on('error', () => {});
      sock.resume();
      sock.write(encodeHello({ version: PEER_PROTOCOL_VERSION, purpose: Purpose.Snapshot, clusterId: CLUSTER, from: 3n, to: 2n }));
      sock.write(encodeSnapMeta({ ...msg, from: 3n }, [{ name: 'data.mdb', size: 1000 }]));
      sock.write(encodeFrame(FrameType.SnapChunk, Buffer.concat([Buffer.alloc(12), Buffer.alloc(10)])));
      await waitFor(() => fs.readdirSync(recvParent).length === 1, 'partial dir created');
      await new Promise<void>((r) => sock.on('close', () => r()));
      await waitFor(() => fs.readdirSync(recvParent).length === 0, 'partial dir removed');
      assert.equal(calls, 1);
      assert.ok(c.log.lines.some((l) => l.msg === 'snapshot transfer from peer idle, closing'));
      assert.equal(c.snapshots.length, 0);
    } finally {
      fs.rmSync(src, { recursive: true, force: true });
      fs.rmSync(recvParent, { recursive: true, force: true });
    }
  });

  it('refuses a snapshot larger than the limit and removes the partial dir', async () => {
    const src = fs.mkdtempSync(path.join(os.tmpdir(), 'peer-snap-src-'));
    const recvParent = fs.mkdtempSync(path.join(os.tmpdir(), 'peer-snap-recv-'));
    try {
      fs.writeFileSync(path.join(src, 'data.mdb'), crypto.randomBytes(300_000));
      const b = await member(2n, { snapshotDir: recvParent, limits: { peerSnapshotBytesMax: 100_000 } });
      const a = await member(1n);
      a.t.addPeer(2n, [b.url]);
      const msg: Message = { ...heartbeat(1n, 2n, 0), type: MessageType.Snap, snapshot: { metadata: { index: 5, term: 1, voters: [1n], learners: [] }, data: new Uint8Array(0) } };
      await assert.rejects(a.t.sendSnapshot(msg, src), (e: unknown) => e instanceof PeerRequestError && /exceeds 100000/.test(e.message));
      assert.equal(b.snapshots.length, 0);
      await waitFor(() => fs.readdirSync(recvParent).length === 0, 'no partial dir');
    } finally {
      fs.rmSync(src, { recursive: true, force: true });
      fs.rmSync(recvParent, { recursive: true, force: true });
    }
  });

  it('requests: bodies, error codes and messages, timeouts, bounded in-flight, unknown and down peers', async () => {
    let release: () => void = () => {};
    const held = new Promise<void>((r) => { release = r; });
    const b = await member(2n, {
      onRequest: async (from, kind, body) => {
        switch (kind) {
          case 'echo': return Buffer.concat([Buffer.from(`${from}:`), body]);
          case 'lease': throw Errors.leaseNotFound();
          case 'plain': throw new Error('something broke');
          case 'hold': await held; return new Uint8Array(0);
          default: throw new EtcdError(12, `unknown kind ${kind}`);
        }
      },
    });
    const a = await member(1n, { limits: { peerRequestsInflightMax: 50 } });
    a.t.addPeer(2n, [b.url]);
    const replies = await Promise.all(range(1, 40).map((i) => a.t.request(2n, 'echo', Buffer.from(`n${i}`), 20_000)));
    assert.deepEqual(replies.map((r) => Buffer.from(r).toString()), range(1, 40).map((i) => `1:n${i}`));
    const big = crypto.randomBytes(3 * 1024 * 1024);
    assert.ok(Buffer.from(await a.t.request(2n, 'echo', big, 20_000)).subarray(2).equals(big));

    await assert.rejects(a.t.request(2n, 'lease', new Uint8Array(0), 20_000),
      (e: unknown) => e instanceof PeerRequestError && e.code === 5 && e.message === 'etcdserver: requested lease not found');
    await assert.rejects(a.t.request(2n, 'plain', new Uint8Array(0), 20_000),
      (e: unknown) => e instanceof PeerRequestError && e.code === 2 && e.message === 'something broke');
    await assert.rejects(a.t.request(2n, 'nope', new Uint8Array(0), 20_000),
      (e: unknown) => e instanceof PeerRequestError && e.code === 12 && e.message === 'unknown kind nope');
    // Held by the handler: the caller's timeout fires (the answer never comes before release()).
    const timedOut = a.t.request(2n, 'hold', new Uint8Array(0), 100);
    await assert.rejects(timedOut, (e: unknown) => e instanceof PeerRequestError && e.code === 4);
    // Bounded in flight: 50 held requests fill the window, the 51st fails at once.
    const heldReqs = range(1, 50).map(() => a.t.request(2n, 'hold', new Uint8Array(0), 60_000));
    await assert.rejects(a.t.request(2n, 'echo', new Uint8Array(0), 60_000), (e: unknown) => e instanceof PeerRequestError && e.code === 8);
    release();
    await Promise.all(heldReqs);

    await assert.rejects(a.t.request(9n, 'echo', new Uint8Array(0), 1000), (e: unknown) => e instanceof PeerRequestError && e.code === 14);
    a.t.addPeer(3n, [`http://127.0.0.1:${await freePort()}`]);
    await assert.rejects(a.t.request(3n, 'echo', new Uint8Array(0), 20_000), (e: unknown) => e instanceof PeerRequestError && e.code === 14);
  });

  it('closes garbage, HTTP and silent connections and keeps working', async () => {
    const b = await member(2n, { limits: { peerHandshakeTimeoutMs: 300 } });
    const port = b.t.addresses()[0].port;
    for (let i = 0; i < 20; i++) await rawExchange(port, crypto.randomBytes(1 + i * 50));
    await rawExchange(port, Buffer.from('GET /raft/stream/message/1 HTTP/1.1\r\nHost: x\r\n\r\n'));
    assert.ok(b.log.lines.some((l) => /refused HTTP on the peer port/.test(l.msg)));
    // A valid-length frame with a bad CRC, then a handshake with a bad magic.
    const bad = Buffer.from([10, 0, 0, 0, 1, 2, 3, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    await rawExchange(port, bad);
    // Silent: connects, sends nothing; closed after the handshake timeout.
    await rawExchange(port, Buffer.alloc(0));
    assert.ok(b.log.lines.some((l) => l.msg === 'peer connection sent no handshake in time'));
    const a = await member(1n);
    a.t.addPeer(2n, [b.url]);
    a.t.send([heartbeat(1n, 2n, 1)]);
    await waitFor(() => seqs(b, 1n).length === 1, 'message after garbage');
  });

  it('stop() closes listeners and connections; later calls neither throw nor connect', async () => {
    const a = await member(1n);
    const b = await member(2n);
    a.t.addPeer(2n, [b.url]);
    b.t.addPeer(1n, [a.url]);
    a.t.send([heartbeat(1n, 2n, 1)]);
    b.t.send([heartbeat(2n, 1n, 1)]);
    await waitFor(() => a.t.connected().length === 1 && b.t.connected().length === 1, 'connected');
    const pending = a.t.request(2n, 'echo', Buffer.from('x'), 60_000);
    await pending;
    await b.t.stop();
    await waitFor(() => a.t.connected().length === 0, 'a sees the loss');
    await waitFor(() => a.unreachable.includes(2n), 'loss reported');
    const aPort = a.t.addresses()[0].port;
    await a.t.stop();
    assert.deepEqual(a.t.connected(), []);
    a.t.send([heartbeat(1n, 2n, 2)]);
    await assert.rejects(a.t.request(2n, 'echo', new Uint8Array(0), 1000), PeerRequestError);
    const refused = await new Promise<boolean>((resolve) => {
      const s = net.connect(aPort, '127.0.0.1', () => { s.destroy(); resolve(false); });
      s.on('error', () => resolve(true));
    });
    assert.ok(refused, 'listener closed');
  });
});
