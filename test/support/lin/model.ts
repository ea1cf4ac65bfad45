// The model the linearizability checker (porcupine.ts) checks a key's history against: one etcd key as a
// register with put, linearizable get, compare-and-set (a txn: compare the value, or that the key is
// absent, then put) and delete, each operation also reporting revisions.
//
// State: the key's value (null: absent) and the revision of its last change (`rev`: the mod revision of
// the value, or the revision of the delete; 0 before any; -1 when the last change was a write of unknown
// outcome whose revision nobody reported). Revision rules, where both sides are known:
//   - a write that changes the key gets a revision greater than the key's last change;
//   - a get that finds the key reads exactly the mod revision of the state's value;
//   - a response's header revision is at least the key's last change.
//
// Outputs may be unknown (`known: false`): the operation may have taken effect; the step then accepts it
// with whatever effect its input has in that state (a cas changes the key only if its compare holds).

export type Input =
  | { kind: 'put'; value: string }
  | { kind: 'get' }
  | { kind: 'cas'; expect: string | null; value: string } // expect null: CreateRevision == 0 (absent)
  | { kind: 'del' };

export type Output =
  | { known: false; rev?: number } // rev: the revision it took effect at, when a watch showed it (settled)
  | { known: true; kind: 'put'; rev: number }
  | { known: true; kind: 'get'; rev: number; found: boolean; value: string; modRev: number }
  | { known: true; kind: 'cas'; rev: number; succeeded: boolean }
  | { known: true; kind: 'del'; rev: number; deleted: number };

export interface KeyState {
  value: string | null;
  rev: number;
}

const unknownRev = -1;

function later(rev: number, than: number): boolean {
  return rev < 0 || than < 0 || rev > than;
}

function atLeast(headerRev: number, than: number): boolean {
  return headerRev <= 0 || than < 0 || headerRev >= than;
}

function write(value: string | null, rev: number | undefined): KeyState {
  return { value, rev: rev ?? unknownRev };
}

const no = (s: KeyState): { ok: boolean; state: KeyState } => ({ ok: false, state: s });
const yes = (s: KeyState): { ok: boolean; state: KeyState } => ({ ok: true, state: s });

function stepUnknown(s: KeyState, input: Input, rev: number | undefined): { ok: boolean; state: KeyState } {
  if (rev !== undefined && !later(rev, s.rev)) return no(s);
  switch (input.kind) {
    case 'put':
      return yes(write(input.value, rev));
    case 'get':
      return yes(s);
    case 'cas':
      return input.expect === s.value ? yes(write(input.value, rev)) : rev !== undefined ? no(s) : yes(s);
    case 'del':
      return s.value === null ? yes(s) : yes(write(null, rev));
  }
}

export function step(s: KeyState, input: Input, output: Output): { ok: boolean; state: KeyState } {
  if (!output.known) return stepUnknown(s, input, output.rev);
  if (output.kind !== input.kind) throw new Error(`output ${output.kind} for input ${input.kind}`);
  if (!atLeast(output.rev, s.rev)) return no(s);
  switch (output.kind) {
    case 'put':
      return later(output.rev, s.rev) ? yes(write((input as { value: string }).value, output.rev)) : no(s);
    case 'get':
      if (!output.found) return s.value === null ? yes(s) : no(s);
      return s.value === output.value && (s.rev < 0 || s.rev === output.modRev) ? yes(s) : no(s);
    case 'cas': {
      const cas = input as { expect: string | null; value: string };
      if (cas.expect !== s.value) return output.succeeded ? no(s) : yes(s);
      return output.succeeded && later(output.rev, s.rev) ? yes(write(cas.value, output.rev)) : no(s);
    }
    case 'del':
      if (output.deleted !== (s.value === null ? 0 : 1)) return no(s);
      if (output.deleted === 0) return yes(s);
      return later(output.rev, s.rev) ? yes(write(null, output.rev)) : no(s);
  }
}

export const keyModel = {
  init: (): KeyState => ({ value: null, rev: 0 }),
  step,
  key: (s: KeyState): string => `${s.rev}\u0000${s.value ?? '\u0001'}`,
  describeState: (s: KeyState): string => `${s.value === null ? 'absent' : JSON.stringify(s.value)}${s.rev >= 0 ? ` @${s.rev}` : ' @?'}`,
};

export function describeInput(i: Input): string {
  switch (i.kind) {
    case 'put':
      return `put ${i.value}`;
    case 'get':
      return 'get';
    case 'cas':
      return `cas ${i.expect === null ? '(absent)' : i.expect} -> ${i.value}`;
    case 'del':
      return 'del';
  }
}

export function describeOutput(o: Output): string {
  if (!o.known) return o.rev !== undefined ? `unknown, applied @${o.rev} (watch)` : 'unknown';
  switch (o.kind) {
    case 'put':
      return `ok @${o.rev}`;
    case 'get':
      return `${o.found ? `${JSON.stringify(o.value)} mod@${o.modRev}` : 'absent'} (header @${o.rev})`;
    case 'cas':
      return `${o.succeeded ? 'succeeded' : 'failed'} @${o.rev}`;
    case 'del':
      return `deleted ${o.deleted} @${o.rev}`;
  }
}
