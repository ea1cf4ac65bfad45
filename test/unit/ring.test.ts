// Checks the SharedArrayBuffer SPSC ring (src/shared/ring.ts): header validation, push/drain round
// trips of random sizes through many wraparounds against a model queue (seeded, so a failure replays),
// backpressure on a full ring, the maxMessageBytes guarantee at every head position, reserve/commit,
// the waiting primitives, and a two-thread stream of 1,000,000 messages main -> worker -> main with
// waitSync in the worker and waitAsync on the main thread, checking order, content and checksums.
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { Ring, RING_HEADER_BYTES, RING_VERSION } from '../../src/shared/ring';
import { mulberry32 } from '../../src/shared/random';

const prng = mulberry32;

function pair(bytes: number): { producer: Ring; consumer: Ring; sab: SharedArrayBuffer } {
  const sab = Ring.create(bytes);
  return { producer: new Ring(sab), consumer: new Ring(sab), sab };
}

function drainAll(r: Ring, max?: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  r.drain((m) => { out.push(m.slice()); }, max);
  return out;
}

function filled(len: number, seed: number): Uint8Array {
  const m = new Uint8Array(len);
  for (let i = 0; i < len; i++) m[i] = (seed + i * 7) & 0xff;
  return m;
}

describe('shared/ring', () => {
  describe('layout', () => {
    it('rounds capacity up to 8 and sizes the buffer as header + capacity', () => {
      const sab = Ring.create(1001);
      const r = new Ring(sab);
      assert.equal(r.capacityBytes, 1008);
      assert.equal(sab.byteLength, RING_HEADER_BYTES + 1008);
      assert.ok(r.isEmpty());
      assert.equal(r.usedBytes(), 0);
      assert.equal(RING_VERSION, 1);
    });

    it('rejects a buffer with a bad magic, version or size', () => {
      assert.throws(() => new Ring(new SharedArrayBuffer(RING_HEADER_BYTES + 64)), /bad magic/);
      const sab = Ring.create(64);
      new Int32Array(sab)[1] = RING_VERSION + 1;
      assert.throws(() => new Ring(sab), /version/);
      const sab2 = Ring.create(64);
      const bigger = new SharedArrayBuffer(sab2.byteLength + 8);
      new Uint8Array(bigger).set(new Uint8Array(sab2));
      assert.throws(() => new Ring(bigger), /bad capacity/);
      assert.throws(() => Ring.create(0), /positive/);
    });
  });

  describe('single thread', () => {
    it('round-trips random sizes through hundreds of wraparounds (model check)', () => {
      for (const seed of [1, 2, 3, 42, 1234]) {
        const rnd = prng(seed);
        const { producer, consumer } = pair(1000);
        const model: Uint8Array[] = [];
        let pushedBytes = 0;
        let n = 0;
        for (let step = 0; step < 20_000; step++) {
          if (rnd() < 0.55) {
            const big = rnd() < 0.05;
            const len = Math.floor(rnd() * (big ? producer.maxMessageBytes + 1 : 64));
            const msg = filled(len, n);
            const ok = producer.tryPush(msg);
            if (ok) { model.push(msg); pushedBytes += len; n++; }
            else assert.ok(model.length > 0, `seed ${seed}: an empty ring refused ${len} bytes`);
          } else {
            const max = 1 + Math.floor(rnd() * 8);
            const want = model.splice(0, max);
            const got = drainAll(consumer, max);
            assert.deepEqual(got, want, `seed ${seed} step ${step}`);
          }
          const used = consumer.usedBytes();
          assert.ok(used >= 0 && used <= consumer.capacityBytes, `seed ${seed}: used ${used}`);
          assert.equal(consumer.isEmpty(), model.length === 0);
          assert.equal(producer.pushedMessages() - consumer.poppedMessages(), model.length);
        }
        assert.deepEqual(drainAll(consumer), model.splice(0));
        assert.ok(consumer.isEmpty());
        assert.ok(pushedBytes > 100 * consumer.capacityBytes, `seed ${seed}: only ${pushedBytes} bytes, too few laps`);
      }
    });

    it('backpressure: tryPush is false on a full ring, and succeeds after a drain', () => {
      const { producer, consumer } = pair(256);
      const msg = filled(20, 9); // 24-byte records: 4 length + 20 payload, already 8-aligned
      let n = 0;
      while (producer.tryPush(msg)) n++;
      assert.equal(n, Math.floor(256 / 24));
      assert.equal(producer.tryPush(msg), false);
      assert.equal(producer.tryPush(msg), false);
      assert.equal(producer.reserve(20), null);
      assert.throws(() => producer.pushAssumeCapacity(msg), /full ring/);
      assert.ok(consumer.usedBytes() <= consumer.capacityBytes);
      assert.equal(consumer.drain(() => {}, 1), 1);
      assert.equal(producer.tryPush(msg), true);
      assert.equal(producer.tryPush(msg), false);
      assert.equal(drainAll(consumer).length, n);
      assert.ok(consumer.isEmpty());
    });

    it('fills the ring to exactly capacityBytes (full and empty are told apart)', () => {
      const { producer, consumer } = pair(64);
      for (let i = 0; i < 8; i++) producer.pushAssumeCapacity(filled(4, i)); // 8-byte records
      assert.equal(consumer.usedBytes(), 64);
      assert.equal(consumer.isEmpty(), false);
      assert.equal(producer.tryPush(new Uint8Array(0)), false);
      const got = drainAll(consumer);
      assert.equal(got.length, 8);
      got.forEach((m, i) => assert.deepEqual(m, filled(4, i)));
      assert.ok(consumer.isEmpty());
    });

    it('an empty ring accepts maxMessageBytes at every head position; one more byte asserts', () => {
      for (const bytes of [8, 24, 64, 120, 1000]) {
        const { producer, consumer } = pair(bytes);
        const cap = producer.capacityBytes;
        const max = producer.maxMessageBytes;
        assert.ok(max + 4 >= cap / 2, `capacity ${cap}: max ${max}`);
        for (let pos = 0; pos < 2 * cap + 8; pos += 8) {
          // Move HEAD/TAIL by one 8-byte record (4 payload bytes), then try the largest message.
          const big = filled(max, pos);
          producer.pushAssumeCapacity(big);
          assert.deepEqual(drainAll(consumer), [big], `capacity ${cap} at ${pos}`);
          assert.throws(() => producer.tryPush(new Uint8Array(max + 1)), /maxMessageBytes/);
          if (cap > 8) {
            producer.pushAssumeCapacity(filled(4, pos));
            assert.equal(drainAll(consumer).length, 1);
          }
        }
      }
    });

    it('reserve/commit writes in place; reserve twice or commit alone asserts', () => {
      const { producer, consumer } = pair(128);
      assert.throws(() => producer.commit(), /without reserve/);
      const v = producer.reserve(10);
      assert.ok(v);
      assert.equal(v.length, 10);
      v.set(filled(10, 3));
      assert.ok(consumer.isEmpty(), 'not visible before commit');
      assert.throws(() => producer.reserve(1), /without commit/);
      assert.throws(() => producer.tryPush(new Uint8Array(1)), /without commit/);
      producer.commit();
      assert.deepEqual(drainAll(consumer), [filled(10, 3)]);
      const z = producer.reserve(0);
      assert.ok(z && z.length === 0);
      producer.commit();
      assert.deepEqual(drainAll(consumer), [new Uint8Array(0)]);
      // Reserve across the end: the record goes to position 0 behind a wrap marker.
      const rnd = prng(7);
      for (let i = 0; i < 500; i++) {
        const len = Math.floor(rnd() * (producer.maxMessageBytes + 1));
        const w = producer.reserve(len);
        assert.ok(w, `empty ring refused ${len}`);
        w.set(filled(len, i));
        producer.commit();
        assert.deepEqual(drainAll(consumer), [filled(len, i)]);
      }
    });

    it('drain: respects maxMessages, consumes a message whose callback throws, is not re-entrant', () => {
      const { producer, consumer } = pair(256);
      for (let i = 0; i < 5; i++) producer.pushAssumeCapacity(filled(3, i));
      assert.equal(consumer.drain(() => {}, 2), 2);
      assert.throws(() => consumer.drain(() => { throw new Error('boom'); }), /boom/);
      assert.throws(() => consumer.drain(() => { consumer.drain(() => {}); }), /re-entered/);
      // 1 message went to 'boom', 1 to the re-entrant call; 1 left.
      assert.deepEqual(drainAll(consumer), [filled(3, 4)]);
      assert.equal(consumer.drain(() => {}), 0);
    });
  });

  describe('waiting', () => {
    it('waitSync and waitAsync return at once when data is there, and time out when not', async () => {
      const { producer, consumer } = pair(64);
      let t = Date.now();
      consumer.waitSync(30);
      assert.ok(Date.now() - t >= 25, 'waitSync timed out');
      t = Date.now();
      await consumer.waitAsync(30);
      assert.ok(Date.now() - t >= 25, 'waitAsync timed out');
      producer.pushAssumeCapacity(new Uint8Array(1));
      t = Date.now();
      consumer.waitSync(1000);
      await consumer.waitAsync(1000);
      assert.ok(Date.now() - t < 500);
    });

    it('notify wakes waitAsync; a drain wakes waitForSpaceAsync after a failed push', async () => {
      const { producer, consumer } = pair(64);
      const t = Date.now();
      const waiting = consumer.waitAsync(5000);
      producer.pushAssumeCapacity(new Uint8Array(28)); // two 32-byte records: ring full
      producer.notify();
      producer.pushAssumeCapacity(new Uint8Array(28));
      await waiting;
      assert.ok(Date.now() - t < 2000, 'woken by notify, not by the timeout');
      assert.equal(producer.tryPush(new Uint8Array(1)), false);
      // Space freed between the failed push and the wait still counts (no lost wake-up).
      assert.equal(consumer.drain(() => {}), 2);
      await producer.waitForSpaceAsync(5000);
      assert.equal(producer.tryPush(new Uint8Array(28)), true);
      assert.equal(producer.tryPush(new Uint8Array(28)), true);
      assert.equal(producer.tryPush(new Uint8Array(1)), false);
      setTimeout(() => consumer.drain(() => {}), 20);
      const t2 = Date.now();
      await producer.waitForSpaceAsync(5000);
      assert.ok(Date.now() - t2 < 2000, 'woken by drain, not by the timeout');
    });
  });

  describe('two threads', () => {
    it('streams 1,000,000 messages main -> worker -> main in order with matching checksums', async function () {
      this.timeout(120_000);
      const total = 1_000_000;
      const a = Ring.create(64 * 1024); // main -> worker
      const b = Ring.create(64 * 1024); // worker -> main
      const out = new Ring(a);
      const back = new Ring(b);
      const worker = new Worker(WORKER_CODE, {
        eval: true,
        workerData: { a, b, ringPath: path.join(__dirname, '../../src/shared/ring.js') },
      });
      const workerDone = new Promise<{ count: number; sum: number; bad: string | null }>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`worker exited ${code}`)));
      });

      let sentSum = CHECKSUM_SEED;
      const produce = async (): Promise<void> => {
        let seq = 0;
        while (seq < total) {
          let batch = 0;
          for (;;) {
            if (seq === total) break;
            const len = messageLength(seq);
            const v = out.reserve(len);
            if (v === null) break;
            sentSum = fillMessage(v, seq, sentSum);
            out.commit();
            seq++;
            if (++batch === 64) { out.notify(); batch = 0; }
          }
          out.notify();
          if (seq < total) await out.waitForSpaceAsync(1000);
        }
        while (!out.tryPush(new Uint8Array(0))) await out.waitForSpaceAsync(1000); // end of stream
        out.notify();
      };

      let echoSum = CHECKSUM_SEED;
      let received = 0;
      let ended = false;
      let firstBad: string | null = null;
      const onEcho = (m: Uint8Array): void => {
        if (m.length === 0) { ended = true; return; }
        const r = checkMessage(m, received, echoSum);
        if (typeof r === 'string') firstBad ??= r;
        else echoSum = r;
        received++;
      };
      const consume = async (): Promise<void> => {
        while (!ended) {
          if (back.drain(onEcho) === 0) await back.waitAsync(1000);
        }
      };

      await Promise.all([produce(), consume()]);
      const w = await workerDone;
      assert.equal(w.bad, null);
      assert.equal(firstBad, null);
      assert.equal(w.count, total);
      assert.equal(received, total);
      assert.equal(w.sum, sentSum, 'worker checksum');
      assert.equal(echoSum, sentSum, 'echo checksum');
      assert.ok(out.isEmpty() && back.isEmpty());
      await worker.terminate();
    });
  });
});

// ---- the stream shared by both threads (these functions are also sent to the worker as source) ----

const CHECKSUM_SEED = 0x811c9dc5 | 0;

/** Mostly 4..67 bytes, 1 in 256 up to 6 KiB, so records wrap at every offset. */
function messageLength(seq: number): number {
  const h = Math.imul(seq ^ 0x5bd1e995, 0x9e3779b1) >>> 0;
  return (h & 0xff) === 0 ? 4 + (h >>> 8) % 6144 : 4 + (h >>> 8) % 64;
}

/** Writes message seq (u32 seq, then a pattern) into v; returns the FNV-1a checksum extended by it. */
function fillMessage(v: Uint8Array, seq: number, sum: number): number {
  v[0] = seq & 0xff; v[1] = (seq >>> 8) & 0xff; v[2] = (seq >>> 16) & 0xff; v[3] = seq >>> 24;
  for (let i = 4; i < v.length; i++) v[i] = (seq + i * 31) & 0xff;
  for (let i = 0; i < v.length; i++) sum = Math.imul(sum ^ v[i], 16777619);
  return sum;
}

/** Checks m is message seq; returns the extended checksum, or a description of the first difference. */
function checkMessage(m: Uint8Array, seq: number, sum: number): number | string {
  if (m.length !== messageLength(seq)) return `seq ${seq}: length ${m.length}, expected ${messageLength(seq)}`;
  const got = (m[0] | (m[1] << 8) | (m[2] << 16) | (m[3] << 24)) >>> 0;
  if (got !== seq) return `seq ${seq}: got message ${got}`;
  for (let i = 4; i < m.length; i++) {
    if (m[i] !== ((seq + i * 31) & 0xff)) return `seq ${seq}: byte ${i} differs`;
  }
  for (let i = 0; i < m.length; i++) sum = Math.imul(sum ^ m[i], 16777619);
  return sum;
}

// The worker drains ring a with waitSync, checks every message, echoes it on ring b (blocking in
// waitForSpaceSync when b is full), and posts its count and checksum when the empty end message comes.
const WORKER_CODE = `
const { workerData, parentPort } = require('node:worker_threads');
const { Ring } = require(workerData.ringPath);
const CHECKSUM_SEED = ${CHECKSUM_SEED};
${messageLength.toString()}
${checkMessage.toString()}
const a = new Ring(workerData.a);
const b = new Ring(workerData.b);
let count = 0, sum = CHECKSUM_SEED, bad = null, ended = false, batch = 0;
function onMessage(m) {
  if (m.length === 0) ended = true;
  else {
    const r = checkMessage(m, count, sum);
    if (typeof r === 'string') { if (bad === null) bad = r; } else sum = r;
    count++;
  }
  while (!b.tryPush(m)) { b.notify(); b.waitForSpaceSync(1000); }
  if (++batch === 64) { b.notify(); batch = 0; }
}
while (!ended) {
  if (a.drain(onMessage) === 0) a.waitSync(1000);
  else b.notify();
}
b.notify();
parentPort.postMessage({ count, sum, bad });
`;
