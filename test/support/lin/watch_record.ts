// Records watch streams over raw gRPC (test/support/grpc_raw.ts: no client library resuming or filtering
// anything) for the checks of watch.ts:
//
//   LiveWatch   open through the faults: every key from revision 1; when its stream breaks (the member was
//               killed, removed, or the watch canceled) it resumes from the revision after the last one it
//               saw on the next member, as clientv3 does; stop(rev) lets it run until it has seen rev.
//   watchOnce   one stream from a revision until it has seen a target revision (the reference watch).
import { RawGrpc, RawStream } from '../grpc_raw';
import { etcdserverpb, mvccpb } from '../../../src/shared/gen/etcd';
import { WatchEvent, WatchRecord, WatchResponseRec } from './watch';

const reconnectPauseMs = 200;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function toEvent(e: mvccpb.IEvent): WatchEvent {
  const kv = e.kv!;
  return {
    type: (e.type ?? 0) === mvccpb.Event.EventType.DELETE ? 'del' : 'put',
    key: Buffer.from(kv.key ?? []).toString(),
    value: Buffer.from(kv.value ?? []).toString(),
    modRev: Number(String(kv.modRevision ?? 0)),
    createRev: Number(String(kv.createRevision ?? 0)),
    version: Number(String(kv.version ?? 0)),
  };
}

function lastRev(w: WatchRecord): number {
  for (let i = w.responses.length - 1; i >= 0; i--) {
    const ev = w.responses[i].events;
    if (ev.length > 0) return ev[ev.length - 1].modRev;
  }
  return 0;
}

function openWatch(endpoint: string, fromRev: number): { c: RawGrpc; s: RawStream } {
  const c = new RawGrpc(endpoint);
  const s = c.stream('/etcdserverpb.Watch/Watch');
  const all = Buffer.from([0]); // key "\0" with range end "\0": every key
  s.send(etcdserverpb.WatchRequest.encode({ createRequest: { key: all, rangeEnd: all, startRevision: fromRev } }).finish());
  return { c, s };
}

/**
 * Reads responses from s into w until done() or the stream ends; returns why it ended ('' for done()).
 * A canceled response (compaction, or the member refused) ends it.
 */
async function pump(s: RawStream, w: WatchRecord, done: () => boolean, idleMs: number): Promise<string> {
  let read = 0;
  let lastProgress = Date.now();
  for (;;) {
    for (; read < s.messages.length; read++) {
      const r = etcdserverpb.WatchResponse.decode(s.messages[read]);
      if (r.canceled) return `canceled: ${r.cancelReason || `compact revision ${String(r.compactRevision)}`}`;
      const events = (r.events ?? []).map(toEvent);
      if (events.length > 0) w.responses.push({ events } satisfies WatchResponseRec);
      lastProgress = Date.now();
    }
    if (done()) return '';
    if (s.status !== undefined) return `stream ended (status ${s.status}${s.message ? ` ${s.message}` : ''})`;
    if (Date.now() - lastProgress > idleMs) return `no response for ${idleMs} ms`;
    try {
      await s.until(() => s.messages.length > read || s.status !== undefined || done(), 'a watch response', 500);
    } catch {
      /* a poll interval without news */
    }
  }
}

/** A watch kept open through the faults, resumed on another member whenever its stream breaks. */
export class LiveWatch {
  readonly rec: WatchRecord;
  #target = Infinity; // stop once this revision was seen
  #stopBy = Infinity; // give up at this time (ms)
  #running: Promise<void>;

  constructor(
    name: string,
    readonly endpoints: () => string[],
  ) {
    this.rec = { name, startRev: 1, responses: [], segments: [] };
    this.#running = this.#run();
  }

  async #run(): Promise<void> {
    let member = 0;
    let why = 'start';
    while (lastRev(this.rec) < this.#target) {
      if (Date.now() > this.#stopBy) {
        this.rec.incomplete = `did not reach revision ${this.#target} (last ${lastRev(this.rec)}; last segment ended: ${why})`;
        return;
      }
      const eps = this.endpoints();
      const ep = eps[member % eps.length];
      const fromRev = lastRev(this.rec) + 1 || 1;
      this.rec.segments.push({ member: ep, fromRev: Math.max(fromRev, 1), why });
      const { c, s } = openWatch(ep, Math.max(fromRev, 1));
      // While faults go on, a stream that stays quiet may be on a cut-off member: move on after a while.
      why = await pump(s, this.rec, () => lastRev(this.rec) >= this.#target || Date.now() > this.#stopBy, 10_000);
      s.cancel();
      c.close();
      member++;
      if (why !== '') await sleep(reconnectPauseMs);
    }
  }

  /** Runs until revision `rev` was seen (or gives up after timeoutMs and marks the record incomplete). */
  async stop(rev: number, timeoutMs: number): Promise<WatchRecord> {
    this.#target = rev;
    this.#stopBy = Date.now() + timeoutMs;
    await this.#running;
    return this.rec;
  }
}

/** One watch from fromRev on endpoint until it has seen targetRev (or timeoutMs). */
export async function watchOnce(
  name: string,
  endpoint: string,
  fromRev: number,
  targetRev: number,
  timeoutMs: number,
): Promise<WatchRecord> {
  const rec: WatchRecord = { name, startRev: fromRev, responses: [], segments: [{ member: endpoint, fromRev, why: 'start' }] };
  const { c, s } = openWatch(endpoint, fromRev);
  const until = Date.now() + timeoutMs;
  try {
    const why = await pump(s, rec, () => lastRev(rec) >= targetRev || Date.now() > until, timeoutMs);
    if (lastRev(rec) < targetRev) rec.incomplete = `did not reach revision ${targetRev} (last ${lastRev(rec)}): ${why || 'timed out'}`;
  } finally {
    s.cancel();
    c.close();
  }
  return rec;
}
