// Watch streams as recorded by a test, and the checks of etcd's watch guarantees on them (etcd's
// documented guarantees, as its robustness tests check them):
//
//   ordered     events come in revision order; a later response never goes back
//   unique      an event (key, mod revision) is delivered once
//   atomic      all events of one revision come in one response
//   reliable    no gap: a watch over the whole keyspace from revision r sees every revision from r on
//               (every revision of a key-value store changes at least one key), up to where it stopped
//   resumable   a watch started (or restarted after a broken stream) at revision r delivers exactly the
//               events the reference watch has from r on
//
// The reference is a watch from revision 1 over every key, opened once the cluster is quiet; every other
// stream (another member's, and the live one kept open during the faults, resumed from its last revision
// on another member whenever its stream broke) must be a gap-free run of the reference.

export interface WatchEvent {
  type: 'put' | 'del';
  key: string;
  value: string; // '' for a delete
  modRev: number;
  createRev: number;
  version: number;
}

export interface WatchResponseRec {
  events: WatchEvent[];
}

/** One watch stream, or a chain of them resumed one after another (`segments`: where each began). */
export interface WatchRecord {
  name: string;
  startRev: number;
  responses: WatchResponseRec[];
  /** A segment per (re)connection: its member and the revision it asked for. */
  segments: Array<{ member: string; fromRev: number; why: string }>;
  /** The stream ended without reaching the target revision: why. */
  incomplete?: string;
}

export interface WatchProblem {
  guarantee: 'ordered' | 'unique' | 'atomic' | 'reliable' | 'resumable';
  watch: string;
  text: string;
}

const examplesPerKindMax = 10;

function ev(e: WatchEvent): string {
  return `${e.type} ${e.key}${e.type === 'put' ? `=${e.value}` : ''} @${e.modRev}`;
}

/** Ordered, unique and atomic within one record. */
function checkOwnOrder(w: WatchRecord, out: WatchProblem[]): void {
  let last = 0;
  const seen = new Set<string>();
  w.responses.forEach((r, i) => {
    let inThis = 0;
    for (const e of r.events) {
      const id = `${e.key}\u0000${e.modRev}`;
      if (seen.has(id)) out.push({ guarantee: 'unique', watch: w.name, text: `response ${i}: ${ev(e)} delivered again` });
      seen.add(id);
      if (e.modRev < last) out.push({ guarantee: 'ordered', watch: w.name, text: `response ${i}: ${ev(e)} after revision ${last}` });
      else if (e.modRev === last && inThis === 0)
        out.push({
          guarantee: 'atomic',
          watch: w.name,
          text: `response ${i}: revision ${last} continues from the previous response (${ev(e)})`,
        });
      last = Math.max(last, e.modRev);
      inThis++;
    }
  });
}

/** The reference: from revision 1 over every key, revisions must run without a gap. */
function checkReferenceGapFree(ref: WatchRecord, out: WatchProblem[]): void {
  let prev = 0;
  for (const r of ref.responses) {
    for (const e of r.events) {
      // The first revision with a change is 2 (1 is the empty store); each later one follows the last.
      const want = prev === 0 ? Math.max(2, ref.startRev) : prev + 1;
      if (e.modRev > prev && e.modRev !== want) {
        out.push({ guarantee: 'reliable', watch: ref.name, text: `revisions ${want}..${e.modRev - 1} missing before ${ev(e)}` });
      }
      prev = Math.max(prev, e.modRev);
    }
  }
}

function flat(w: WatchRecord): WatchEvent[] {
  return w.responses.flatMap((r) => r.events);
}

function same(a: WatchEvent, b: WatchEvent): boolean {
  return (
    a.type === b.type &&
    a.key === b.key &&
    a.value === b.value &&
    a.modRev === b.modRev &&
    a.createRev === b.createRev &&
    a.version === b.version
  );
}

/** `w` is the reference's events from its start revision on, without a gap, up to where `w` stopped. */
function checkAgainstReference(w: WatchRecord, ref: WatchEvent[], out: WatchProblem[]): void {
  const got = flat(w);
  let j = ref.findIndex((e) => e.modRev >= w.startRev);
  if (j < 0) j = ref.length;
  for (let i = 0; i < got.length; i++, j++) {
    const want = ref[j];
    if (want === undefined) {
      out.push({ guarantee: 'resumable', watch: w.name, text: `event ${i} ${ev(got[i])}: the reference watch has no such event` });
      return;
    }
    if (!same(got[i], want)) {
      const g = got[i].modRev > want.modRev ? 'reliable' : 'resumable';
      out.push({ guarantee: g, watch: w.name, text: `event ${i}: got ${ev(got[i])}, the reference has ${ev(want)} there` });
      return;
    }
  }
}

/** Checks every record's own order and each against the reference (records[0] is not special: pass it as ref). */
export function checkWatches(ref: WatchRecord, others: WatchRecord[]): WatchProblem[] {
  const out: WatchProblem[] = [];
  checkOwnOrder(ref, out);
  checkReferenceGapFree(ref, out);
  if (ref.incomplete) out.push({ guarantee: 'reliable', watch: ref.name, text: `stopped early: ${ref.incomplete}` });
  const refEvents = flat(ref);
  for (const w of others) {
    checkOwnOrder(w, out);
    checkAgainstReference(w, refEvents, out);
    if (w.incomplete) out.push({ guarantee: 'reliable', watch: w.name, text: `stopped early: ${w.incomplete}` });
  }
  // Keep the report readable: at most a few of each kind per watch.
  const counts = new Map<string, number>();
  return out.filter((p) => {
    const k = `${p.watch}/${p.guarantee}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
    return counts.get(k)! <= examplesPerKindMax;
  });
}

export function describeEvent(e: WatchEvent): string {
  return ev(e);
}
