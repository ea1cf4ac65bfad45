// bench/go/lincheck's workload through the `etcd3` npm client, recording the same history (HistoryOp) for
// test/support/history_check.ts: C clients, each its own Etcd3 with every host, doing put / linearizable
// get / compare-and-set txn on K keys under a prefix, one operation at a time per client.
//
// Fault handling is etcd3's default (a circuit breaker per host; a global retry of up to 3 attempts on
// recoverable errors, DEADLINE_EXCEEDED and UNAVAILABLE among them, each attempt on another host) with ONE
// change: no retry once the operation's deadline has passed. Each operation has one absolute deadline (a
// Date computed when it is invoked, the call option `deadline`) that every attempt shares, but that alone
// does not stop a late retry: grpc-js still starts a call whose deadline is already past (its error reads
// "Deadline exceeded after 0.000s,remote_addr=..."), the request can reach a member, and Debian's etcd
// 3.4 applies it: a write applied twice with a correct server. So the global policy, equal to the
// default otherwise (lib/connection-pool.js: retry(handleWhen(isRecoverableError), { maxAttempts: 3 })),
// retries only before the deadline (not after grpc-js's own DEADLINE_EXCEEDED either). A retry after a
// server's DEADLINE_EXCEEDED that came before the client's deadline (issue 13) still goes out, as it
// does with the default policy.
//
// The error of every attempt the policy retried is kept (HistoryOp.retried). Any error is an unknown
// outcome. After an error that came back within 50 ms (every host's circuit breaker open), the client
// pauses 50 ms instead of spinning on the shared cores.
import { handleWhen, retry } from 'cockatiel';
import { Etcd3, isRecoverableError } from 'etcd3';
import { HistoryOp } from './history_check';
import { mulberry32 } from '../../src/shared/random';

export interface Etcd3WorkloadOptions {
  hosts: string[]; // "http://127.0.0.1:PORT"
  clients: number;
  keys: number;
  prefix: string;
  seconds: number;
  timeoutMs: number; // per operation
  seed: number;
}

const fastErrorPauseMs = 50;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A small seeded generator (src/shared/random.ts mulberry32): the op mix replays for a seed. */
const rng = mulberry32;

function errText(e: Error): string {
  return `${e.constructor.name}: ${e.message}`;
}

type Known = { value: string } | { absent: true };

/** One client and what its retry policy needs to know of the operation in flight. */
class Client {
  readonly etcd: Etcd3;
  deadlineMs = 0; // the current operation's deadline (Date.now() clock)
  retried: string[] = []; // errors of the current operation's attempts that were retried

  constructor(hosts: string[]) {
    const global = retry(
      handleWhen((e) => isRecoverableError(e) && !this.#past(e)),
      { maxAttempts: 3 },
    );
    global.onRetry((r) => {
      if ('error' in r) this.retried.push(errText(r.error));
    });
    this.etcd = new Etcd3({ hosts, dialTimeout: 5000, faultHandling: { global } });
  }

  /** The operation's deadline has passed: by the clock, or grpc-js says so (its own DEADLINE_EXCEEDED
   * reads "Deadline exceeded after ..."; its timer may fire a fraction of a ms before Date.now() agrees). */
  #past(e: Error): boolean {
    return Date.now() >= this.deadlineMs || e.message.includes('Deadline exceeded after');
  }
}

async function runClient(id: number, c: Client, o: Etcd3WorkloadOptions, base: number, stopAt: number): Promise<HistoryOp[]> {
  const rand = rng(o.seed * 1000 + id);
  const client = c.etcd;
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
    c.retried = [];
    op.invokeMs = now();
    c.deadlineMs = Date.now() + o.timeoutMs;
    const callOptions = { deadline: new Date(c.deadlineMs) };
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
        if ('absent' in k) op.expectAbsent = true;
        else op.expect = k.value;
        const r = await cmp.then(client.put(key).value(op.value!)).options(callOptions).commit();
        Object.assign(op, { result: r.succeeded ? 'ok' : 'fail', rev: Number(r.header.revision) });
        if (r.succeeded) last.set(key, { value: op.value! });
        else last.delete(key);
      }
    } catch (e) {
      op.result = 'unknown';
      op.err = errText(e as Error);
    }
    op.completeMs = now();
    if (c.retried.length > 0) op.retried = c.retried;
    ops.push(op);
    if (op.result === 'unknown' && op.completeMs - op.invokeMs < fastErrorPauseMs) await sleep(fastErrorPauseMs);
  }
  return ops;
}

/** Runs the workload for o.seconds and returns every client's operations. */
export async function runEtcd3Workload(o: Etcd3WorkloadOptions): Promise<HistoryOp[]> {
  const clients = Array.from({ length: o.clients }, () => new Client(o.hosts));
  try {
    const base = performance.now();
    const per = await Promise.all(clients.map((c, i) => runClient(i, c, o, base, o.seconds * 1000)));
    return per.flat();
  } finally {
    for (const c of clients) c.etcd.close();
  }
}
