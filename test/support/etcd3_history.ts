// bench/go/lincheck's workload through the `etcd3` npm client, recording the same history (HistoryOp) for
// test/support/history_check.ts: C clients, each its own Etcd3 with every host and the client's default
// fault handling (a global retry of up to 3 attempts on recoverable errors, Unavailable and
// DeadlineExceeded among them, and a circuit breaker per host), doing put / linearizable get /
// compare-and-set txn on K keys under a prefix, one operation at a time per client.
//
// Each operation gets ONE absolute deadline (a Date computed when it is invoked, passed as the call option
// `deadline`), so every attempt the client's retry policy makes shares it: no retry leaves after the
// deadline the caller gave up at. Any error is an unknown outcome. After an error that came back within
// 50 ms (every host's circuit breaker open), the client pauses 50 ms instead of spinning.
import { Etcd3 } from 'etcd3';
import { HistoryOp } from './history_check';

export interface Etcd3WorkloadOptions {
  hosts: string[];     // "http://127.0.0.1:PORT"
  clients: number;
  keys: number;
  prefix: string;
  seconds: number;
  timeoutMs: number;   // per operation
  seed: number;
}

/** A small seeded generator (mulberry32): the op mix replays for a seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const fastErrorPauseMs = 50;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

type Known = { value: string } | { absent: true };

async function runClient(id: number, client: Etcd3, o: Etcd3WorkloadOptions, base: number, stopAt: number): Promise<HistoryOp[]> {
  const rand = rng(o.seed * 1000 + id);
  const last = new Map<string, Known>();
  const ops: HistoryOp[] = [];
  let seq = 0;
  const now = (): number => performance.now() - base;
  while (now() < stopAt) {
    const key = `${o.prefix}k${Math.floor(rand() * o.keys)}`;
    let kind = (['put', 'get', 'cas'] as const)[Math.floor(rand() * 3)];
    if (kind === 'cas' && !last.has(key)) kind = 'get';
    const op: HistoryOp = { client: id, kind, key, result: 'unknown', rev: 0, invokeMs: 0, completeMs: 0 };
    if (kind !== 'get') op.value = `c${id}-${++seq}`;
    op.invokeMs = now();
    const callOptions = { deadline: new Date(Date.now() + o.timeoutMs) };
    try {
      if (kind === 'put') {
        const r = await client.put(key).value(op.value!).options(callOptions).exec();
        Object.assign(op, { result: 'ok', rev: Number(r.header.revision) });
        last.set(key, { value: op.value! });
      } else if (kind === 'get') {
        const r = await client.get(key).options(callOptions).exec();
        Object.assign(op, { result: 'ok', rev: Number(r.header.revision) });
        const kv = r.kvs[0];
        if (kv) {
          Object.assign(op, { read: kv.value.toString(), readFound: true, readModRev: Number(kv.mod_revision) });
          last.set(key, { value: op.read! });
        } else {
          last.set(key, { absent: true });
        }
      } else {
        const k = last.get(key)!;
        const cmp = 'absent' in k ? client.if(key, 'Create', '==', 0) : client.if(key, 'Value', '==', k.value);
        if ('absent' in k) op.expectAbsent = true; else op.expect = k.value;
        const r = await cmp.then(client.put(key).value(op.value!)).options(callOptions).commit();
        Object.assign(op, { result: r.succeeded ? 'ok' : 'fail', rev: Number(r.header.revision) });
        if (r.succeeded) last.set(key, { value: op.value! }); else last.delete(key);
      }
    } catch (e) {
      op.result = 'unknown';
      op.err = `${(e as Error).constructor.name}: ${(e as Error).message}`;
    }
    op.completeMs = now();
    ops.push(op);
    // An error that came back at once (the client's circuit breakers all open: BrokenCircuitError) would
    // otherwise spin this loop on the shared cores; a pause, as an application would make.
    if (op.result === 'unknown' && op.completeMs - op.invokeMs < fastErrorPauseMs) await sleep(fastErrorPauseMs);
  }
  return ops;
}

/** Runs the workload for o.seconds and returns every client's operations. */
export async function runEtcd3Workload(o: Etcd3WorkloadOptions): Promise<HistoryOp[]> {
  const clients = Array.from({ length: o.clients }, () => new Etcd3({ hosts: o.hosts, dialTimeout: 5000 }));
  try {
    const base = performance.now();
    const per = await Promise.all(clients.map((c, i) => runClient(i, c, o, base, o.seconds * 1000)));
    return per.flat();
  } finally {
    for (const c of clients) c.close();
  }
}
