// The watch benchmark's writers. By default they run on a thread of their own (bench/watch.ts starts
// this file as a Worker): a Put's answer is then read by an event loop that is not also parsing the
// fan-out's watch events, as a Go client's writer goroutine is scheduled apart from its watch
// goroutines. With the writers on the watchers' event loop (--writer-thread 0, runWriters called
// there), every Put cycle also waits for the generator to get through the events that arrived before
// the answer, and the benchmark measures the generator as much as the server.
import { parentPort, workerData } from 'node:worker_threads';
import * as http2 from 'node:http2';
import { performance } from 'node:perf_hooks';
import { frameGrpc } from './h2_client';
import { put } from './watch_wire';
import { etcdserverpb } from '../../src/shared/gen/etcd';

export interface WriterJob { clientUrl: string; prefix: string; keys: number; valueBytes: number; writers: number; seconds: number }

/** What the writers did; times are in the clock runWriters was given. */
export interface WriterResult { writes: number; t0: number; tw: number; revs: Float64Array; sentAt: Float64Array; error: string | null }

/**
 * `job.writers` loops, each with one Put outstanding, over `job.keys` keys under the prefix (round
 * robin) for `job.seconds`; records each Put's revision and when it was sent (clock()).
 */
export async function runWriters(job: WriterJob, clock: () => number): Promise<WriterResult> {
  const session = http2.connect(job.clientUrl);
  session.on('error', () => { /* the Put that fails reports it */ });
  const prefix = Buffer.from(job.prefix);
  const value = Buffer.alloc(job.valueBytes, 0x76);
  const frames = Array.from({ length: job.keys }, (_, i) =>
    frameGrpc(etcdserverpb.PutRequest.encode({ key: Buffer.concat([prefix, Buffer.from(`key/${String(i).padStart(6, '0')}`)]), value }).finish()));
  let error: string | null = null;
  try {
    await put(session, frameGrpc(etcdserverpb.PutRequest.encode({ key: Buffer.from('/wbench-warmup'), value }).finish())); // outside the prefix
  } catch (e) {
    error = (e as Error).message;
  }
  let revs = new Float64Array(1 << 16);
  let sent = new Float64Array(1 << 16);
  let writes = 0;
  let next = 0;
  const t0 = clock();
  const stopAt = t0 + job.seconds * 1000;
  const writer = async (): Promise<void> => {
    while (clock() < stopAt && error === null) {
      const frame = frames[next++ % job.keys];
      const at = clock();
      let rev: number;
      try {
        rev = await put(session, frame);
      } catch (e) {
        error = (e as Error).message;
        return;
      }
      if (writes === revs.length) {
        const r = new Float64Array(revs.length * 2); r.set(revs); revs = r;
        const s = new Float64Array(sent.length * 2); s.set(sent); sent = s;
      }
      revs[writes] = rev;
      sent[writes] = at;
      writes++;
    }
  };
  await Promise.all(Array.from({ length: job.writers }, writer));
  const tw = clock();
  session.close();
  return { writes, t0, tw, revs: revs.slice(0, writes), sentAt: sent.slice(0, writes), error };
}

if (parentPort) {
  // On a thread of its own: epoch milliseconds, which the starting thread converts to its own clock.
  const port = parentPort;
  runWriters(workerData as WriterJob, () => performance.timeOrigin + performance.now())
    .then((r) => port.postMessage(r), (e: unknown) => port.postMessage({ writes: 0, t0: 0, tw: 0, revs: new Float64Array(0), sentAt: new Float64Array(0), error: String(e) }));
}
