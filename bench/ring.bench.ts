// Micro-benchmark of src/shared/ring.ts: main -> worker -> main round trips through a pair of rings
// (1 MiB each), the worker echoing every message. Main pushes with tryPush and waits with
// waitForSpaceAsync / waitAsync (event loop never blocked); the worker drains with waitSync.
// Cases: 64 B and 1 KiB messages, "batched" (both sides notify once per 64 pushes and at the end
// of each drain) and "unbatched" (notify after every push), all pipelined; plus a ping-pong case
// (one message in flight) for the round-trip latency. Prints one JSON document.
// Run: npx tsc -p . && node dist/bench/ring.bench.js
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { Ring } from '../src/shared/ring';

const RING_BYTES = 1024 * 1024;

const WORKER_CODE = `
const { workerData, parentPort } = require('node:worker_threads');
const { Ring } = require(workerData.ringPath);
const a = new Ring(workerData.a), b = new Ring(workerData.b);
const batch = workerData.batch;
let ended = false, n = 0;
function onMessage(m) {
  if (m.length === 0) ended = true;
  while (!b.tryPush(m)) { b.notify(); b.waitForSpaceSync(1000); }
  if (++n === batch) { b.notify(); n = 0; }
}
while (!ended) {
  if (a.drain(onMessage) === 0) a.waitSync(1000);
  else b.notify();
}
b.notify();
parentPort.postMessage('done');
`;

interface Result {
  case: string;
  messageBytes: number;
  messages: number;
  notifyEvery: number;
  inFlightMax: number | 'ring';
  seconds: number;
  messagesPerSec: number;
  /** Payload bytes per second, one way (each byte also travels back). */
  mbPerSec: number;
  roundTripUsMean?: number;
}

async function runCase(name: string, messageBytes: number, messages: number, notifyEvery: number,
  inFlightMax: number): Promise<Result> {
  const a = Ring.create(RING_BYTES);
  const b = Ring.create(RING_BYTES);
  const out = new Ring(a);
  const back = new Ring(b);
  const worker = new Worker(WORKER_CODE, {
    eval: true,
    workerData: { a, b, batch: notifyEvery, ringPath: path.join(__dirname, '../src/shared/ring.js') },
  });
  const done = new Promise<void>((resolve, reject) => {
    worker.once('message', () => resolve());
    worker.once('error', reject);
  });
  await new Promise((r) => setTimeout(r, 20)); // let the worker start and block in waitSync

  const msg = new Uint8Array(messageBytes).fill(7);
  const end = new Uint8Array(0);
  let received = 0;
  let ended = false;
  const onEcho = (m: Uint8Array): void => {
    if (m.length === 0) ended = true;
    else received++;
  };
  const start = process.hrtime.bigint();
  const produce = async (): Promise<void> => {
    let sent = 0;
    while (sent < messages) {
      let n = 0;
      while (sent < messages && out.tryPush(msg)) {
        sent++;
        if (++n === notifyEvery) { out.notify(); n = 0; }
      }
      out.notify();
      if (sent < messages) await out.waitForSpaceAsync(1000);
    }
    while (!out.tryPush(end)) await out.waitForSpaceAsync(1000);
    out.notify();
  };
  const consume = async (): Promise<void> => {
    while (!ended) {
      if (back.drain(onEcho) === 0) await back.waitAsync(1000);
    }
  };
  if (inFlightMax === 1) {
    // Ping-pong: one loop, so the wait for the echo is the only wait.
    for (let i = 0; i < messages; i++) {
      out.pushAssumeCapacity(msg);
      out.notify();
      while (back.drain(onEcho) === 0) await back.waitAsync(1000);
    }
    out.pushAssumeCapacity(end);
    out.notify();
    await consume();
  } else {
    await Promise.all([produce(), consume()]);
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await done;
  await worker.terminate();
  if (received !== messages) throw new Error(`${name}: received ${received} of ${messages}`);
  const r: Result = {
    case: name,
    messageBytes,
    messages,
    notifyEvery,
    inFlightMax: inFlightMax === Infinity ? 'ring' : inFlightMax,
    seconds: round(seconds, 3),
    messagesPerSec: Math.round(messages / seconds),
    mbPerSec: round((messages * messageBytes) / seconds / 1e6, 1),
  };
  if (inFlightMax === 1) r.roundTripUsMean = round((seconds / messages) * 1e6, 2);
  return r;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick'); // CI smoke run
  const k = quick ? 0.05 : 1;
  await runCase('warmup', 64, Math.round(200_000 * k), 64, Infinity);
  const results: Result[] = [];
  results.push(await runCase('64B batched', 64, Math.round(4_000_000 * k), 64, Infinity));
  results.push(await runCase('64B unbatched', 64, Math.round(4_000_000 * k), 1, Infinity));
  results.push(await runCase('1KiB batched', 1024, Math.round(1_000_000 * k), 64, Infinity));
  results.push(await runCase('1KiB unbatched', 1024, Math.round(1_000_000 * k), 1, Infinity));
  results.push(await runCase('64B ping-pong', 64, Math.round(50_000 * k), 1, 1));
  console.log(JSON.stringify({
    bench: 'ring',
    node: process.version,
    ringBytes: RING_BYTES,
    note: 'main -> worker -> main echo; messagesPerSec counts round trips; mbPerSec is one-way payload',
    results,
  }, null, 2));
}

main().catch((e) => { console.error(e); process.exit(1); });
