// A linearizability checker for one partition of a history (one key): the Wing–Gong algorithm with Lowe's
// memoization, in the shape Porcupine gives it (anishathalye/porcupine, checker.go; our own code).
//
// The history becomes a list of entries, a call and a return per operation, sorted by time (a call before
// a return at the same time: operations that touch are concurrent). They sit in a doubly linked list. The
// search walks it from the head: at a call entry it tries to linearize that operation next (the model
// accepts its output in the current state); if it does, and the pair (set of linearized operations, new
// state) was not seen before (the cache), the operation is "lifted" out of the list (call and return),
// pushed on a stack with the state before it, and the walk restarts at the head. Reaching a return entry
// means an operation that must already have taken effect has not been linearized: backtrack (pop, unlift,
// go on after the popped call). An empty list is a linearization; backtracking past the bottom of the
// stack means there is none.
//
// Unknown outcomes (a timeout or error: the operation may take effect at any time after its call, or
// never) are operations whose return is at +Infinity and whose model step accepts any output; an
// operation linearized at the very end affects nothing observed, so "never" is covered.
//
// The search is exponential in the worst case, so it has a step budget: past it, the answer is 'unknown',
// not a hang. On 'illegal' it reports the longest partial linearization found and the operations that
// could not be placed after it, the part a human needs to see.

export interface Model<S, I, O> {
  init(): S;
  /** Whether an operation with input `input` and output `output` may take effect in `state`, and the state after. */
  step(state: S, input: I, output: O): { ok: boolean; state: S };
  /** A string that is equal for equal states (the cache key). */
  key(state: S): string;
  describeState(state: S): string;
}

export interface Operation<I, O> {
  id: number; // index into the caller's list; echoed in results
  client: number;
  input: I;
  output: O;
  call: number; // ms
  ret: number; // ms; +Infinity for an unknown outcome
}

export type Verdict = 'ok' | 'illegal' | 'unknown';

export interface PartitionResult {
  verdict: Verdict;
  steps: number;
  /** The longest linearizable prefix found (operation ids in order); the whole order when 'ok'. */
  longest: number[];
  /** 'illegal': the unlinearized operations that had to take effect by the point where the longest prefix got stuck. */
  stuck: number[];
  /** The model's state after `longest`. */
  stateAfterLongest: string;
}

interface Node {
  id: number; // operation id; -1 for the head
  isCall: boolean;
  match: Node | null; // call -> its return
  next: Node | null;
  prev: Node | null;
}

function makeList<I, O>(ops: Operation<I, O>[]): Node {
  const entries: Array<{ t: number; isCall: boolean; op: number }> = [];
  ops.forEach((o, i) => {
    entries.push({ t: o.call, isCall: true, op: i }, { t: o.ret, isCall: false, op: i });
  });
  entries.sort((a, b) => (a.t !== b.t ? a.t - b.t : a.isCall === b.isCall ? 0 : a.isCall ? -1 : 1));
  const head: Node = { id: -1, isCall: false, match: null, next: null, prev: null };
  const returns = new Map<number, Node>();
  let tail = head;
  for (const e of entries) {
    const n: Node = { id: e.op, isCall: e.isCall, match: null, next: null, prev: tail };
    if (!e.isCall) returns.set(e.op, n);
    tail.next = n;
    tail = n;
  }
  for (let n = head.next; n !== null; n = n.next) if (n.isCall) n.match = returns.get(n.id)!;
  return head;
}

function lift(call: Node): void {
  call.prev!.next = call.next;
  call.next!.prev = call.prev; // a call always has its return after it
  const ret = call.match!;
  ret.prev!.next = ret.next;
  if (ret.next !== null) ret.next.prev = ret.prev;
}

function unlift(call: Node): void {
  const ret = call.match!;
  ret.prev!.next = ret;
  if (ret.next !== null) ret.next.prev = ret;
  call.prev!.next = call;
  call.next!.prev = call;
}

/** A set of operation indexes as bits, with a string form for the cache key. */
class Bitset {
  readonly #words: Uint32Array;
  constructor(n: number) {
    this.#words = new Uint32Array(Math.ceil(n / 32) || 1);
  }
  set(i: number): void {
    this.#words[i >>> 5] |= 1 << (i & 31);
  }
  clear(i: number): void {
    this.#words[i >>> 5] &= ~(1 << (i & 31));
  }
  key(): string {
    return Buffer.from(this.#words.buffer).toString('latin1');
  }
}

/**
 * Checks one partition. `ops[i].id` is reported back; the operations are indexed by their position.
 * stepBudget: model steps tried before giving up with 'unknown'.
 */
export function checkPartition<S, I, O>(model: Model<S, I, O>, ops: Operation<I, O>[], stepBudget: number): PartitionResult {
  const head = makeList(ops);
  const linearized = new Bitset(ops.length);
  const cache = new Set<string>();
  const calls: Array<{ node: Node; state: S }> = [];
  let state = model.init();
  let steps = 0;
  let longest: number[] = [];
  let longestState = model.describeState(state);
  let stuck: number[] = [];
  let entry = head.next;
  while (head.next !== null) {
    if (entry === null) throw new Error('linearizability search ran off the end of the list'); // a return always follows
    if (entry.isCall) {
      if (++steps > stepBudget) return result('unknown');
      const op = ops[entry.id];
      const r = model.step(state, op.input, op.output);
      if (r.ok) {
        linearized.set(entry.id);
        const k = linearized.key() + '\u0000' + model.key(r.state);
        if (!cache.has(k)) {
          cache.add(k);
          calls.push({ node: entry, state });
          state = r.state;
          lift(entry);
          entry = head.next;
          continue;
        }
        linearized.clear(entry.id);
      }
      entry = entry.next;
      continue;
    }
    // A return entry of an operation not linearized yet: the prefix on the stack cannot be extended.
    if (calls.length > longest.length || stuck.length === 0) {
      longest = calls.map((c) => ops[c.node.id].id);
      longestState = model.describeState(state);
      stuck = pendingUpTo(head, entry).map((i) => ops[i].id);
    }
    const top = calls.pop();
    if (top === undefined) return result('illegal');
    state = top.state;
    linearized.clear(top.node.id);
    unlift(top.node);
    entry = top.node.next;
  }
  longest = calls.map((c) => ops[c.node.id].id);
  return result('ok');

  function result(verdict: Verdict): PartitionResult {
    return { verdict, steps, longest, stuck: verdict === 'illegal' ? stuck : [], stateAfterLongest: longestState };
  }
}

/** The operations whose call is in the list before `ret` (ret's own operation among them): those that had to be placed. */
function pendingUpTo(head: Node, ret: Node): number[] {
  const out: number[] = [];
  for (let n = head.next; n !== null; n = n.next) {
    if (n.isCall) out.push(n.id);
    if (n === ret) break;
  }
  return out;
}
