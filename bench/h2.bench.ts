// Unary no-op gRPC calls per second through our gRPC transport (GrpcH2Transport, src/main/net/h2/),
// with two clients: node:http2 with `connections` sessions and `inflight` concurrent streams on each,
// and a raw-frame client (the node:http2 client is slower than the server). Each stream is one POST
// with a 5-byte-framed 16-byte message; the handler returns its input. The server runs in a worker
// thread so client and server each have a core (this machine has two). Prints one JSON document.
// (Until its removal, the node:http2-based transport ran here too: docs/BENCHMARKS.md has the
// comparison.) Run: npx tsc -p . && node dist/bench/h2.bench.js [seconds]
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import { GrpcH2Transport } from '../src/main/net/grpc_h2';
import * as netMod from 'node:net';
import { PREFACE } from '../src/main/net/h2/constants';
import { encodeFrame, FrameReader } from '../src/main/net/h2/frame';
import { encodeHeaderBlock } from '../src/main/net/h2/hpack';
import { listenMultiplexed } from '../src/main/net/listener';

const KIND = 'h2 GrpcH2Transport';

async function serverMain(): Promise<void> {
  const t = new GrpcH2Transport({ recvMessageBytesMax: 2 * 1024 * 1024, streamsPerConnMax: 1000 });
  t.addUnary('/bench.S/Noop', (b) => b);
  const srv = await listenMultiplexed('127.0.0.1', 0, t.server, http.createServer());
  parentPort?.postMessage((srv.address() as net.AddressInfo).port);
}

const BODY = (() => {
  const b = Buffer.alloc(5 + 16, 0x61);
  b[0] = 0;
  b.writeUInt32BE(16, 1);
  return b;
})();
const HEADERS = { ':method': 'POST', ':path': '/bench.S/Noop', 'content-type': 'application/grpc', te: 'trailers' };

/** Keeps `inflight` calls running on the session until `until`; resolves with the count done. */
function drive(session: http2.ClientHttp2Session, inflight: number, until: number): Promise<number> {
  return new Promise((resolve) => {
    let done = 0;
    let running = 0;
    const start = (): void => {
      running++;
      const req = session.request(HEADERS);
      req.on('data', () => { /* drain */ });
      req.on('error', () => { running--; });
      req.on('close', () => {
        running--;
        done++;
        if (Date.now() < until) start();
        else if (running === 0) resolve(done);
      });
      req.end(BODY);
    };
    for (let i = 0; i < inflight; i++) start();
  });
}

/** A bare HTTP/2 client over net: the node:http2 client tops out near 20k calls/s on this machine,
 *  below the server, so this one shows what the servers can do. It keeps `inflight` streams
 *  open, writes each new request as one pre-encoded HEADERS + DATA pair, counts END_STREAM trailers,
 *  ACKs SETTINGS and returns connection window credit for the DATA it receives. */
function driveRaw(port: number, inflight: number, until: number): Promise<number> {
  const block = encodeHeaderBlock([[':method', 'POST'], [':scheme', 'http'], [':path', HEADERS[':path']], [':authority', 'b'],
    ['content-type', 'application/grpc'], ['te', 'trailers']]);
  const socket = netMod.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  let nextId = 1;
  let done = 0;
  let running = 0;
  let credit = 0;
  const request = (): Buffer => {
    const id = nextId;
    nextId += 2;
    running++;
    return Buffer.concat([encodeFrame(1, 4, id, block), encodeFrame(0, 1, id, BODY)]);
  };
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    const reader = new FrameReader({
      onFrame: (type, flags, sid, _b, start, end) => {
        if (type === 4 && (flags & 1) === 0) out.push(encodeFrame(4, 1, 0));
        if (type === 0) credit += end - start;
        if (type === 3) throw new Error(`bench request reset: RST_STREAM ${_b.readUInt32BE(start)}`);
        if (type === 1 && (flags & 1) !== 0 && sid !== 0) {
          running--;
          done++;
          if (Date.now() < until) out.push(request());
        }
      },
      onFrameTooLarge: () => { throw new Error('frame too large'); },
    }, 1 << 24);
    socket.on('data', (c: Buffer) => {
      reader.push(c);
      if (credit > 32768) {
        const p = Buffer.alloc(4);
        p.writeUInt32BE(credit);
        out.push(encodeFrame(8, 0, 0, p));
        credit = 0;
      }
      if (out.length > 0) socket.write(Buffer.concat(out.splice(0)));
      if (running === 0) { socket.destroy(); resolve(done); }
    });
    socket.write(Buffer.concat([PREFACE, encodeFrame(4, 0, 0), ...Array.from({ length: inflight }, request)]));
  });
}

async function runRawCase(seconds: number, connections: number, inflight: number): Promise<Record<string, unknown>> {
  const worker = new Worker(__filename);
  const port = await new Promise<number>((r) => worker.once('message', r));
  await Promise.all(Array.from({ length: connections }, () => driveRaw(port, inflight, Date.now() + 500)));
  const t0 = process.hrtime.bigint();
  const counts = await Promise.all(Array.from({ length: connections }, () => driveRaw(port, inflight, Date.now() + seconds * 1000)));
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  await worker.terminate();
  const calls = counts.reduce((a, b) => a + b, 0);
  return { transport: KIND, client: 'raw frames', connections, inflightPerConnection: inflight, calls, seconds: +elapsed.toFixed(2), callsPerSec: Math.round(calls / elapsed) };
}

async function runCase(seconds: number, connections: number, inflight: number): Promise<Record<string, unknown>> {
  const worker = new Worker(__filename);
  const port = await new Promise<number>((r) => worker.once('message', r));
  const sessions = Array.from({ length: connections }, () => http2.connect(`http://127.0.0.1:${port}`, { settings: { initialWindowSize: 1 << 20 } }));
  await Promise.all(sessions.map((s) => new Promise((r) => s.once('remoteSettings', r))));
  await Promise.all(sessions.map((s) => drive(s, inflight, Date.now() + 500))); // warm-up
  const t0 = process.hrtime.bigint();
  const counts = await Promise.all(sessions.map((s) => drive(s, inflight, Date.now() + seconds * 1000)));
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  for (const s of sessions) s.close();
  await worker.terminate();
  const calls = counts.reduce((a, b) => a + b, 0);
  return { transport: KIND, client: 'node:http2', connections, inflightPerConnection: inflight, calls, seconds: +elapsed.toFixed(2), callsPerSec: Math.round(calls / elapsed) };
}

function progress(r: Record<string, unknown>): Record<string, unknown> {
  process.stderr.write(`${JSON.stringify(r)}\n`);
  return r;
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 5);
  const results: Array<Record<string, unknown>> = [];
  for (const [connections, inflight] of [[4, 64], [1, 1]] as const) results.push(progress(await runCase(seconds, connections, inflight)));
  for (const [connections, inflight] of [[4, 256], [1, 1]] as const) results.push(progress(await runRawCase(seconds, connections, inflight)));
  process.stdout.write(JSON.stringify({ bench: 'h2 unary no-op', node: process.version, results }, null, 2) + '\n');
}

if (isMainThread) {
  main().catch((e) => { console.error(e); process.exit(1); });
} else {
  void serverMain();
}
