// Checks a client history (what clients invoked and saw, bench/go/lincheck's format) against the store's own
// history (every PUT event under the prefix, from a watch at revision 1). Each written value is unique in a
// run, so a value names its write:
//
//   duplicate  a value appears in more than one PUT event: one client write applied twice
//   lost       an acknowledged put / successful cas whose value is in no event, or at another revision than
//              the response's header revision
//   phantom    a value in the store that no operation wrote, or that a cas answered succeeded=false for
//   bad read   a get returned a value/mod revision pair that is not a PUT event of that key
//   stale read a get returned an older revision of its key than an acknowledged write of that key that
//              completed before the get was invoked (real-time order: linearizable reads may not go back)
//
// Writes of unknown outcome (any error) may or may not appear, once. Times are one clock per history.
// Not a full linearizability check (Porcupine/Knossos); these are the anomalies issue 13 is about and
// cheap ones next to them.

/** One operation, as bench/go/lincheck/main.go's type op writes it. */
export interface HistoryOp {
  client: number;
  kind: 'put' | 'get' | 'cas';
  key: string;
  value?: string;
  expect?: string;
  expectAbsent?: boolean;
  result: 'ok' | 'fail' | 'unknown';
  rev: number;
  read?: string;
  readFound?: boolean;
  readModRev?: number;
  invokeMs: number;
  completeMs: number;
  err?: string;
  /** The errors of earlier attempts the client retried, where the client reports them (etcd3_history.ts). */
  retried?: string[];
}

export interface PutEvent {
  key: string;
  value: string;
  modRevision: number;
}

export interface CheckResult {
  problems: string[];
  duplicates: number;
  lost: number;
  phantoms: number;
  badReads: number;
  staleReads: number;
  summary: string;
}

const examplesMax = 15;

function opText(o: HistoryOp): string {
  const what =
    o.kind === 'cas'
      ? `cas ${o.key} ${o.expectAbsent ? '(absent)' : JSON.stringify(o.expect)} -> ${o.value}`
      : o.kind === 'put'
        ? `put ${o.key} ${o.value}`
        : `get ${o.key}`;
  const t = `t=${o.invokeMs.toFixed(1)}..${o.completeMs.toFixed(1)} ms`;
  const retried = o.retried ? `; retried after: ${o.retried.join(' | ')}` : '';
  return `client ${o.client} ${what}: ${o.result}${o.rev ? ` rev ${o.rev}` : ''} (${t})${o.err ? ` err: ${o.err}` : ''}${retried}`;
}

/** Counts by kind:result, e.g. "put ok 812, put unknown 9, ...". */
function summarize(ops: HistoryOp[], events: PutEvent[]): string {
  const c = new Map<string, number>();
  for (const o of ops) c.set(`${o.kind} ${o.result}`, (c.get(`${o.kind} ${o.result}`) ?? 0) + 1);
  return `${ops.length} ops (${[...c]
    .sort()
    .map(([k, n]) => `${k} ${n}`)
    .join(', ')}), ${events.length} PUT events`;
}

/** Checks ops against events (every PUT under the prefix; other keys must be filtered out by the caller). */
export function checkHistory(ops: HistoryOp[], events: PutEvent[]): CheckResult {
  const problems: string[] = [];
  const note = (kind: string, n: number, lines: string[]): void => {
    if (n === 0) return;
    problems.push(
      `${n} ${kind}:`,
      ...lines.slice(0, examplesMax).map((l) => `  ${l}`),
      ...(n > examplesMax ? [`  ... ${n - examplesMax} more`] : []),
    );
  };
  const eventsOf = new Map<string, PutEvent[]>();
  for (const e of events) {
    const l = eventsOf.get(e.value);
    if (l) l.push(e);
    else eventsOf.set(e.value, [e]);
  }
  const writers = new Map<string, HistoryOp>();
  for (const o of ops) if (o.kind !== 'get' && o.value !== undefined) writers.set(o.value, o);

  // duplicate
  const dup: string[] = [];
  for (const [v, es] of eventsOf) {
    if (es.length < 2) continue;
    const w = writers.get(v);
    dup.push(
      `value ${v} put ${es.length} times, at revisions ${es.map((e) => e.modRevision).join(', ')} of ${es[0].key}; written by: ${w ? opText(w) : 'no operation'}`,
    );
  }
  note('values applied more than once', dup.length, dup);

  // lost
  const lost: string[] = [];
  for (const o of ops) {
    if (o.kind === 'get' || o.result !== 'ok') continue;
    const es = eventsOf.get(o.value!);
    if (!es) lost.push(`acknowledged, in no event: ${opText(o)}`);
    else if (!es.some((e) => e.modRevision === o.rev && e.key === o.key)) {
      lost.push(`acknowledged at rev ${o.rev}, in the store at ${es.map((e) => `${e.key}@${e.modRevision}`).join(', ')}: ${opText(o)}`);
    }
  }
  note('acknowledged writes lost or misplaced', lost.length, lost);

  // phantom
  const phantom: string[] = [];
  for (const [v, es] of eventsOf) {
    const w = writers.get(v);
    if (!w) phantom.push(`value ${v} at ${es[0].key}@${es[0].modRevision}: no operation wrote it`);
    else if (w.result === 'fail')
      phantom.push(`value ${v} at ${es[0].key}@${es[0].modRevision}: its cas answered succeeded=false: ${opText(w)}`);
  }
  note('values in the store that were never (successfully) written', phantom.length, phantom);

  const { bad, stale } = checkReads(ops, events);
  note('reads of a value/revision that is not in the store history', bad.length, bad);
  note('stale reads (older than an acknowledged write that completed before the read began)', stale.length, stale);

  return {
    problems,
    duplicates: dup.length,
    lost: lost.length,
    phantoms: phantom.length,
    badReads: bad.length,
    staleReads: stale.length,
    summary: summarize(ops, events),
  };
}

/** The bad-read and stale-read checks of every successful get. */
function checkReads(ops: HistoryOp[], events: PutEvent[]): { bad: string[]; stale: string[] } {
  const byKeyRev = new Map<string, string>(); // `${key}@${rev}` -> value
  const revOf = new Map<string, number>(); // value -> revision of its (first) PUT
  for (const e of events) {
    byKeyRev.set(`${e.key}@${e.modRevision}`, e.value);
    if (!revOf.has(e.value)) revOf.set(e.value, e.modRevision);
  }
  // Per key: acknowledged writes by completion time, with the highest revision acknowledged so far.
  const acked = new Map<string, Array<{ at: number; rev: number; maxRev: number; op: HistoryOp }>>();
  for (const o of ops) {
    if (o.kind === 'get' || o.result !== 'ok') continue;
    const rev = revOf.get(o.value!);
    if (rev === undefined) continue; // lost: reported above
    const l = acked.get(o.key) ?? [];
    l.push({ at: o.completeMs, rev, maxRev: 0, op: o });
    acked.set(o.key, l);
  }
  for (const l of acked.values()) {
    l.sort((a, b) => a.at - b.at);
    let m = 0;
    for (const w of l) {
      m = Math.max(m, w.rev);
      w.maxRev = m;
    }
  }
  const bad: string[] = [];
  const stale: string[] = [];
  for (const o of ops) {
    if (o.kind !== 'get' || o.result !== 'ok') continue;
    const readRev = o.readFound ? o.readModRev! : 0;
    if (o.readFound && byKeyRev.get(`${o.key}@${readRev}`) !== o.read) {
      bad.push(
        `read ${JSON.stringify(o.read)} at mod revision ${readRev}, the store has ${JSON.stringify(byKeyRev.get(`${o.key}@${readRev}`) ?? null)}: ${opText(o)}`,
      );
    }
    const l = acked.get(o.key);
    if (!l) continue;
    // The last acknowledged write that completed before this read was invoked.
    let lo = 0;
    let hi = l.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (l[mid].at < o.invokeMs) lo = mid + 1;
      else hi = mid;
    }
    if (lo === 0) continue;
    const before = l[lo - 1];
    if (before.maxRev > readRev) {
      const w = l.slice(0, lo).find((x) => x.rev === before.maxRev)!;
      stale.push(
        `read rev ${readRev} (${o.readFound ? o.read : 'absent'}) but rev ${w.rev} was acknowledged before: ${opText(o)}; the write: ${opText(w.op)}`,
      );
    }
  }
  return { bad, stale };
}
