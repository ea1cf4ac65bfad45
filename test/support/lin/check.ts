// The whole check of one run: the clients' history (what each client invoked, when, and what it saw) and
// the store's own history (watch streams), as etcd's robustness tests do it:
//
//  1. Settle unknown writes with the reference watch (from revision 1, every key, opened after the heal).
//     Every value written is unique in a run, so a PUT event names its write: a write of unknown outcome
//     whose value is in the watch did happen, at that revision; one whose value never appears did not
//     happen and is dropped. Its return time is bounded by the first response that showed a revision at
//     least that one (the store had applied it by then), else +Infinity. Deletes carry no value: an
//     unknown delete stays unknown (it may take effect at any time after its call, or never).
//  2. Watch-side checks of the history: no value applied twice, no acknowledged write missing from the
//     watch or at another revision than acknowledged, no value in the store that nobody wrote or whose cas
//     answered succeeded=false.
//  3. Revisions in real time, across keys: an operation invoked after another completed never reports a
//     smaller revision, and a write gets a larger one than anything observed before it was invoked.
//  4. Linearizability per key (P-compositionality), porcupine.ts with the key model of model.ts, each key
//     with a step budget: past it that key's verdict is 'unknown', reported as such, not as a pass.
//  5. The watch guarantees of every recorded stream (watch.ts).
import { HistoryOp } from '../history_check';
import { checkPartition, Operation, PartitionResult } from './porcupine';
import { describeInput, describeOutput, Input, keyModel, Output } from './model';
import { checkWatches, WatchEvent, WatchProblem, WatchRecord } from './watch';

/** A client operation: HistoryOp (bench/go/lincheck's record) plus deletes. */
export type LinOp = Omit<HistoryOp, 'kind'> & { kind: HistoryOp['kind'] | 'del'; deleted?: number };

export interface CheckOptions {
  stepBudgetPerKey?: number;
}

export interface KeyVerdict {
  key: string;
  ops: number;
  verdict: PartitionResult['verdict'];
  steps: number;
  /** 'illegal': a text excerpt around the violation. */
  excerpt?: string;
  /** For the visualization: the key's model operations and the result. */
  modelOps: Array<Operation<Input, Output>>;
  result: PartitionResult;
}

export interface RunCheck {
  verdict: 'ok' | 'violation' | 'unknown';
  problems: string[];
  keys: KeyVerdict[];
  watchProblems: WatchProblem[];
  summary: string;
}

const defaultStepBudget = 2_000_000;
const examplesMax = 10;

export function opText(o: LinOp): string {
  let what: string;
  if (o.kind === 'cas') what = `cas ${o.key} ${o.expectAbsent ? '(absent)' : JSON.stringify(o.expect)} -> ${o.value}`;
  else if (o.kind === 'put') what = `put ${o.key} ${o.value}`;
  else if (o.kind === 'del') what = `del ${o.key}${o.result === 'ok' ? ` deleted ${o.deleted ?? '?'}` : ''}`;
  else what = `get ${o.key}${o.result === 'ok' ? ` -> ${o.readFound ? `${JSON.stringify(o.read)} mod@${o.readModRev}` : 'absent'}` : ''}`;
  return `client ${o.client} ${what}: ${o.result}${o.rev ? ` @${o.rev}` : ''} (t=${o.invokeMs.toFixed(1)}..${o.completeMs.toFixed(1)} ms)${o.err ? ` err: ${o.err}` : ''}`;
}

function inputOf(o: LinOp): Input {
  if (o.kind === 'put') return { kind: 'put', value: o.value! };
  if (o.kind === 'get') return { kind: 'get' };
  if (o.kind === 'del') return { kind: 'del' };
  return { kind: 'cas', expect: o.expectAbsent ? null : (o.expect ?? ''), value: o.value! };
}

function knownOutput(o: LinOp): Output {
  if (o.kind === 'put') return { known: true, kind: 'put', rev: o.rev };
  if (o.kind === 'del') return { known: true, kind: 'del', rev: o.rev, deleted: o.deleted ?? 0 };
  if (o.kind === 'cas') return { known: true, kind: 'cas', rev: o.rev, succeeded: o.result === 'ok' };
  return { known: true, kind: 'get', rev: o.rev, found: o.readFound === true, value: o.read ?? '', modRev: o.readModRev ?? 0 };
}

class Problems {
  readonly lines: string[] = [];
  add(kind: string, items: string[]): void {
    if (items.length === 0) return;
    this.lines.push(`${items.length} ${kind}:`, ...items.slice(0, examplesMax).map((l) => `  ${l}`));
    if (items.length > examplesMax) this.lines.push(`  ... ${items.length - examplesMax} more`);
  }
}

/** A model operation of a key; `src` is the client operation (index into the run's ops) it comes from. */
type SettledOp = Operation<Input, Output> & { key: string; src: number };

/**
 * How many times the client may have sent this write: once, plus each retry after an error that does not
 * prove the earlier attempt never reached a member. The etcd3 npm client (test/support/etcd3_history.ts)
 * retries a write on another member after UNAVAILABLE "Connection dropped" (the member died with the
 * request in flight): both attempts can be applied, a client double write, not the store's. Only
 * "No connection established" proves an attempt was never sent. clientv3 (Go) retries a write only
 * when it was never sent and reports no retries: its writes must be applied at most once.
 */
function sendsOf(o: LinOp): number {
  return 1 + (o.retried ?? []).filter((e) => !e.includes('No connection established')).length;
}

/** Step 1 and 2: the model operations (settled) and the problems the watch shows directly. */
function settle(ops: LinOp[], events: WatchEvent[], p: Problems, resent: string[]): SettledOp[] {
  const keys = new Set(ops.map((o) => o.key));
  const putsOf = new Map<string, WatchEvent[]>();
  for (const e of events) {
    if (e.type !== 'put' || !keys.has(e.key)) continue;
    const l = putsOf.get(e.value) ?? [];
    l.push(e);
    putsOf.set(e.value, l);
  }
  const dels = new Set(events.filter((e) => e.type === 'del').map((e) => `${e.key}@${e.modRev}`));
  const writers = new Map<string, LinOp>();
  for (const o of ops) if ((o.kind === 'put' || o.kind === 'cas') && o.value !== undefined) writers.set(o.value, o);
  const firstSeenAt = earliestCompletionByRevision(ops);

  const dup: string[] = [];
  const lost: string[] = [];
  const phantom: string[] = [];
  const early: string[] = [];
  for (const [v, es] of putsOf) {
    const w = writers.get(v);
    if (!w) phantom.push(`${es[0].key}=${v} @${es[0].modRev}: no operation wrote it`);
    else if (es.length > sendsOf(w)) {
      const why = sendsOf(w) > 1 ? ` (the client sent it ${sendsOf(w)} times)` : '';
      dup.push(`${v} applied ${es.length} times${why} (@${es.map((e) => e.modRev).join(', @')}); ${opText(w)}`);
    } else if (w.result === 'fail' && es.length >= sendsOf(w)) {
      phantom.push(`${es[0].key}=${v} @${es[0].modRev}: its cas answered succeeded=false: ${opText(w)}`);
    }
    if (w && es.length > 1 && es.length <= sendsOf(w)) resent.push(v);
  }
  const out: SettledOp[] = [];
  const settled = (o: LinOp, src: number, e: WatchEvent): void => {
    const by = firstSeenAt(e.modRev);
    if (by < o.invokeMs)
      early.push(`applied @${e.modRev}, a response showed that revision at t=${by.toFixed(1)} ms, before the call: ${opText(o)}`);
    out.push({
      id: out.length,
      src,
      key: o.key,
      client: o.client,
      input: inputOf(o),
      call: o.invokeMs,
      output: { known: false, rev: e.modRev },
      ret: Math.max(by, o.invokeMs),
    });
  };
  ops.forEach((o, src) => {
    const base = { src, key: o.key, client: o.client, input: inputOf(o), call: o.invokeMs };
    const applied = o.kind === 'put' || o.kind === 'cas' ? (putsOf.get(o.value!) ?? []).filter((e) => e.key === o.key) : [];
    if (o.result !== 'unknown') {
      if ((o.kind === 'put' || o.kind === 'cas') && o.result === 'ok' && !applied.some((e) => e.modRev === o.rev)) {
        const es = putsOf.get(o.value!) ?? [];
        lost.push(
          `${es.length === 0 ? 'in no event' : `in the watch at ${es.map((e) => `${e.key}@${e.modRev}`).join(', ')}`}: ${opText(o)}`,
        );
      }
      if (o.kind === 'del' && o.result === 'ok' && (o.deleted ?? 0) > 0 && !dels.has(`${o.key}@${o.rev}`)) {
        lost.push(`no DELETE event of ${o.key} @${o.rev}: ${opText(o)}`);
      }
      out.push({ ...base, id: out.length, output: knownOutput(o), ret: o.completeMs });
      // Earlier attempts of a write the client resent took effect too: each is an operation of its own.
      if (sendsOf(o) > 1) for (const e of applied) if (!(o.result === 'ok' && e.modRev === o.rev)) settled(o, src, e);
      return;
    }
    if (o.kind === 'get') return; // a read that returned nothing constrains nothing
    if (o.kind === 'del') {
      out.push({ ...base, id: out.length, output: { known: false }, ret: Infinity });
      return;
    }
    // Applied (at that revision) or, in no event, never. Resent: each application is an attempt.
    for (const e of applied.slice(0, sendsOf(o))) settled(o, src, e);
  });
  p.add('values applied more than once (a write applied twice)', dup);
  p.add('acknowledged writes missing from the watch or at another revision', lost);
  p.add('values in the store that were never (successfully) written', phantom);
  p.add('writes applied before they were invoked', early);
  return out;
}

/** rev -> the earliest completion time of any acknowledged response whose header revision is >= rev. */
function earliestCompletionByRevision(ops: LinOp[]): (rev: number) => number {
  const known = ops.filter((o) => o.result !== 'unknown' && o.rev > 0).sort((a, b) => a.rev - b.rev);
  const suffixMin = new Array<number>(known.length + 1).fill(Infinity);
  for (let i = known.length - 1; i >= 0; i--) suffixMin[i] = Math.min(suffixMin[i + 1], known[i].completeMs);
  return (rev) => {
    let lo = 0;
    let hi = known.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (known[mid].rev < rev) lo = mid + 1;
      else hi = mid;
    }
    return suffixMin[lo];
  };
}

/** Step 3: revisions never go back in real time, across keys. */
function checkRevisionOrder(ops: LinOp[], p: Problems): void {
  const known = ops.filter((o) => o.result !== 'unknown' && o.rev > 0);
  const byComplete = [...known].sort((a, b) => a.completeMs - b.completeMs);
  const byInvoke = [...known].sort((a, b) => a.invokeMs - b.invokeMs);
  const bad: string[] = [];
  let i = 0;
  let maxSeen: LinOp | null = null;
  for (const o of byInvoke) {
    for (; i < byComplete.length && byComplete[i].completeMs < o.invokeMs; i++) {
      if (maxSeen === null || byComplete[i].rev > maxSeen.rev) maxSeen = byComplete[i];
    }
    if (maxSeen === null) continue;
    const changes =
      (o.kind === 'put' || o.kind === 'cas' || o.kind === 'del') && o.result === 'ok' && (o.kind !== 'del' || (o.deleted ?? 0) > 0);
    if (o.rev < maxSeen.rev || (changes && o.rev === maxSeen.rev)) {
      bad.push(`${opText(o)} reports revision ${o.rev}, but before it was invoked this completed: ${opText(maxSeen)}`);
    }
  }
  p.add('operations whose revision went back in real time', bad);
}

/** Checks a run. `ref`: the reference watch (from revision 1, every key); `watches`: other streams. */
export function checkRun(ops: LinOp[], ref: WatchRecord, watches: WatchRecord[], opts: CheckOptions = {}): RunCheck {
  const p = new Problems();
  const events = ref.responses.flatMap((r) => r.events);
  const resent: string[] = [];
  const modelOps = settle(ops, events, p, resent);
  checkRevisionOrder(ops, p);
  const byKey = new Map<string, SettledOp[]>();
  for (const o of modelOps) {
    const l = byKey.get(o.key) ?? [];
    l.push({ ...o, id: l.length });
    byKey.set(o.key, l);
  }
  const keys: KeyVerdict[] = [];
  for (const [key, kops] of [...byKey].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const result = checkPartition(keyModel, kops, opts.stepBudgetPerKey ?? defaultStepBudget);
    const kv: KeyVerdict = { key, ops: kops.length, verdict: result.verdict, steps: result.steps, modelOps: kops, result };
    if (result.verdict === 'illegal') {
      kv.excerpt = excerpt(kops, result, ops);
      p.lines.push(`key ${key} is not linearizable:`, ...kv.excerpt.split('\n').map((l) => `  ${l}`));
    }
    keys.push(kv);
  }
  const watchProblems = checkWatches(ref, watches);
  for (const w of watchProblems) p.lines.push(`watch ${w.watch}: ${w.guarantee}: ${w.text}`);
  const undecided = keys.filter((k) => k.verdict === 'unknown');
  const verdict = p.lines.length > 0 ? 'violation' : undecided.length > 0 ? 'unknown' : 'ok';
  if (undecided.length > 0) p.lines.push(`undecided (step budget spent): ${undecided.map((k) => `${k.key} (${k.ops} ops)`).join(', ')}`);
  return { verdict, problems: p.lines, keys, watchProblems, summary: summarize(ops, events, keys, watches.length + 1, resent) };
}

function summarize(ops: LinOp[], events: WatchEvent[], keys: KeyVerdict[], watchCount: number, resent: string[]): string {
  const c = new Map<string, number>();
  for (const o of ops) c.set(`${o.kind} ${o.result}`, (c.get(`${o.kind} ${o.result}`) ?? 0) + 1);
  const kinds = [...c]
    .sort()
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  const steps = keys.reduce((s, k) => s + k.steps, 0);
  const r =
    resent.length > 0
      ? `; ${resent.length} writes applied more than once after the client resent them (${resent.slice(0, 5).join(', ')})`
      : '';
  return `${ops.length} ops (${kinds}); ${events.length} events; ${watchCount} watches; ${keys.length} keys, ${steps} search steps${r}`;
}

/** The minimal history around a key's violation: where the longest linearization got stuck. */
function excerpt(kops: SettledOp[], r: PartitionResult, ops: LinOp[]): string {
  const byId = new Map(kops.map((o) => [o.id, o]));
  const line = (id: number): string => {
    const o = byId.get(id)!;
    const ret = Number.isFinite(o.ret) ? o.ret.toFixed(1) : 'inf';
    return `#${id} client ${o.client} ${describeInput(o.input)} -> ${describeOutput(o.output)} [${o.call.toFixed(1)}..${ret} ms]${ops[o.src].err ? ` err: ${ops[o.src].err}` : ''}${ops[o.src].retried ? ` resent after: ${ops[o.src].retried!.join(' | ')}` : ''}`;
  };
  const tail = r.longest.slice(-8);
  const lines = [
    `longest linearizable prefix: ${r.longest.length} of ${kops.length} operations; its last ${tail.length}:`,
    ...tail.map((id) => `  ${line(id)}`),
    `state after it: ${r.stateAfterLongest}`,
    `none of these can take effect next (each had to, by the first return among them):`,
    ...r.stuck.map((id) => `  ${line(id)}`),
  ];
  return lines.join('\n');
}
