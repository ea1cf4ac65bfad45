// The linearizability checker (test/support/lin/) on hand-made histories: ones with a known violation
// (stale read, lost write, double write, two cas from the same value both succeeding, a watch that goes
// back or splits a revision, a gap) must fail, and good ones, with unknown outcomes that did and did not
// take effect, must pass. The search has a step budget: a history too big for it is 'unknown', not a pass.
import { strict as assert } from 'node:assert';
import { checkRun, LinOp } from '../support/lin/check';
import { checkPartition, Operation } from '../support/lin/porcupine';
import { Input, keyModel, Output } from '../support/lin/model';
import { renderHtml } from '../support/lin/html';
import { WatchEvent, WatchRecord } from '../support/lin/watch';

const K = '/k';

function op(client: number, kind: LinOp['kind'], t: [number, number], more: Partial<LinOp> = {}): LinOp {
  return { client, kind, key: K, result: 'ok', rev: 0, invokeMs: t[0], completeMs: t[1], ...more };
}
const put = (c: number, v: string, t: [number, number], rev: number, more: Partial<LinOp> = {}): LinOp =>
  op(c, 'put', t, { value: v, rev, ...more });
const get = (c: number, t: [number, number], rev: number, read: string | null, modRev = 0): LinOp =>
  op(c, 'get', t, read === null ? { rev } : { rev, read, readFound: true, readModRev: modRev });
const cas = (c: number, expect: string | null, v: string, t: [number, number], rev: number, ok: boolean): LinOp =>
  op(c, 'cas', t, { value: v, rev, result: ok ? 'ok' : 'fail', ...(expect === null ? { expectAbsent: true } : { expect }) });
const unknown = (o: LinOp): LinOp => ({ ...o, result: 'unknown', rev: 0, err: 'context deadline exceeded' });

const putEv = (v: string, rev: number, key = K): WatchEvent => ({ type: 'put', key, value: v, modRev: rev, createRev: 0, version: 0 });
const delEv = (rev: number, key = K): WatchEvent => ({ type: 'del', key, value: '', modRev: rev, createRev: 0, version: 0 });

/** A reference watch with one response per event (or as grouped). */
function watch(groups: WatchEvent[][], name = 'ref', startRev = 1): WatchRecord {
  return { name, startRev, responses: groups.map((events) => ({ events })), segments: [{ member: 'm1', fromRev: startRev, why: 'test' }] };
}
const ref = (...evs: WatchEvent[]): WatchRecord => watch(evs.map((e) => [e]));

function verdict(ops: LinOp[], w: WatchRecord, others: WatchRecord[] = []): ReturnType<typeof checkRun> {
  return checkRun(ops, w, others);
}

describe('linearizability checker: known-good histories pass', () => {
  it('sequential put, get, cas, delete, get', () => {
    const ops = [
      put(0, 'a', [0, 10], 2),
      get(1, [11, 12], 2, 'a', 2),
      cas(0, 'a', 'b', [13, 14], 3, true),
      cas(1, 'a', 'c', [15, 16], 3, false),
      op(1, 'del', [17, 18], { rev: 4, deleted: 1 }),
      get(0, [19, 20], 4, null),
      cas(0, null, 'd', [21, 22], 5, true),
    ];
    const r = verdict(ops, ref(putEv('a', 2), putEv('b', 3), delEv(4), putEv('d', 5)));
    assert.equal(r.verdict, 'ok', r.problems.join('\n'));
  });

  it('concurrent writes linearized in revision order, with a read that sees the later one while both overlap', () => {
    const ops = [put(0, 'a', [0, 50], 3), put(1, 'b', [5, 40], 2), get(2, [10, 20], 3, 'a', 3), get(2, [60, 70], 3, 'a', 3)];
    const r = verdict(ops, ref(putEv('b', 2), putEv('a', 3)));
    assert.equal(r.verdict, 'ok', r.problems.join('\n'));
  });

  it('unknown outcomes: a timed-out put that happened (seen later) and one that never did', () => {
    const ops = [
      put(0, 'a', [0, 10], 2),
      unknown(put(1, 'b', [20, 1500], 0)),
      get(2, [1600, 1610], 3, 'b', 3),
      unknown(put(1, 'never', [1700, 3200], 0)),
      get(2, [3300, 3310], 3, 'b', 3),
      unknown(op(0, 'get', [3400, 4900])),
    ];
    const r = verdict(ops, ref(putEv('a', 2), putEv('b', 3)));
    assert.equal(r.verdict, 'ok', r.problems.join('\n'));
  });

  it('an unknown delete may take effect late (after later reads still saw the value)', () => {
    const ops = [
      put(0, 'a', [0, 10], 2),
      unknown(op(1, 'del', [20, 1500])),
      get(2, [1600, 1610], 2, 'a', 2),
      get(2, [1700, 1710], 3, null),
    ];
    const r = verdict(ops, ref(putEv('a', 2), delEv(3)));
    assert.equal(r.verdict, 'ok', r.problems.join('\n'));
  });

  it('the porcupine core alone: an unknown write at +Infinity may take effect late or never', () => {
    const ops: Array<Operation<Input, Output>> = [
      { id: 0, client: 0, input: { kind: 'put', value: 'x' }, output: { known: false }, call: 0, ret: Infinity },
      {
        id: 1,
        client: 1,
        input: { kind: 'get' },
        output: { known: true, kind: 'get', rev: 0, found: false, value: '', modRev: 0 },
        call: 10,
        ret: 20,
      },
      {
        id: 2,
        client: 1,
        input: { kind: 'get' },
        output: { known: true, kind: 'get', rev: 0, found: true, value: 'x', modRev: 0 },
        call: 30,
        ret: 40,
      },
    ];
    const r = checkPartition(keyModel, ops, 1000);
    assert.equal(r.verdict, 'ok');
    assert.deepEqual(r.longest, [1, 0, 2]);
  });
});

describe('linearizability checker: known violations fail', () => {
  it('stale read: a get invoked after a put completed reads the older value', () => {
    const ops = [put(0, 'a', [0, 10], 2), put(0, 'b', [20, 30], 3), get(1, [40, 50], 3, 'a', 2)];
    const r = verdict(ops, ref(putEv('a', 2), putEv('b', 3)));
    assert.equal(r.verdict, 'violation');
    const k = r.keys.find((x) => x.key === K)!;
    assert.equal(k.verdict, 'illegal');
    assert.match(k.excerpt!, /get -> "a" mod@2/);
    assert.deepEqual(k.result.stuck, [2]);
    const html = renderHtml('stale read', r);
    assert.match(html, /class="op stuck/);
  });

  it('lost write: an acknowledged put missing from the store', () => {
    const ops = [put(0, 'a', [0, 10], 2), put(1, 'b', [20, 30], 3)];
    const r = verdict(ops, ref(putEv('a', 2)));
    assert.equal(r.verdict, 'violation');
    assert.match(r.problems.join('\n'), /acknowledged writes missing from the watch/);
  });

  it('lost write seen by reads: a later get does not see an acknowledged put', () => {
    const ops = [put(0, 'a', [0, 10], 2), put(1, 'b', [20, 30], 3), get(2, [40, 50], 3, 'a', 2)];
    // The store kept b (so the watch-side checks pass) but a read afterwards returned a: not linearizable.
    const r = verdict(ops, ref(putEv('a', 2), putEv('b', 3)));
    assert.equal(r.keys[0].verdict, 'illegal');
  });

  it('double write: one value applied at two revisions', () => {
    const ops = [unknown(put(0, 'a', [0, 1500], 0)), put(1, 'b', [20, 30], 3)];
    const r = verdict(ops, ref(putEv('a', 2), putEv('b', 3), putEv('a', 4)));
    assert.equal(r.verdict, 'violation');
    assert.match(r.problems.join('\n'), /values applied more than once/);
  });

  it('a write the client resent after "Connection dropped" may be applied once per attempt, not more', () => {
    const resent = { retried: ['GRPCUnavailableError: 14 UNAVAILABLE: Connection dropped'] };
    const ops = [put(0, 'a', [0, 100], 3, resent), get(1, [10, 20], 2, 'a', 2), get(1, [110, 120], 3, 'a', 3)];
    const twice = ref(putEv('a', 2), putEv('a', 3));
    const ok = verdict(ops, twice);
    assert.equal(ok.verdict, 'ok', ok.problems.join('\n'));
    assert.match(ok.summary, /1 writes applied more than once after the client resent them/);
    assert.equal(verdict(ops, ref(putEv('a', 2), putEv('a', 3), putEv('a', 4))).verdict, 'violation');
    // Never sent the first time: at most once again.
    const notSent = ops.map((o) => (o.retried ? { ...o, retried: ['UNAVAILABLE: No connection established. Last error: null'] } : o));
    assert.match(verdict(notSent, twice).problems.join('\n'), /values applied more than once/);
    // A resent cas whose first attempt succeeded and whose last found the value changed (by itself).
    const casOps = [put(0, 'a', [0, 10], 2), cas(1, 'a', 'b', [20, 100], 4, false)];
    const casResent = [casOps[0], { ...casOps[1], ...resent }];
    assert.equal(verdict(casResent, ref(putEv('a', 2), putEv('b', 3))).verdict, 'ok');
    assert.equal(verdict(casOps, ref(putEv('a', 2), putEv('b', 3))).verdict, 'violation');
  });

  it('two cas from the same value both succeed', () => {
    const ops = [put(0, 'a', [0, 10], 2), cas(1, 'a', 'b', [20, 40], 3, true), cas(2, 'a', 'c', [21, 41], 4, true)];
    const r = verdict(ops, ref(putEv('a', 2), putEv('b', 3), putEv('c', 4)));
    assert.equal(r.verdict, 'violation');
    assert.equal(r.keys[0].verdict, 'illegal');
  });

  it('a failed cas whose value is in the store anyway', () => {
    const ops = [put(0, 'a', [0, 10], 2), cas(1, 'x', 'b', [20, 40], 2, false)];
    const r = verdict(ops, ref(putEv('a', 2), putEv('b', 3)));
    assert.match(r.problems.join('\n'), /never \(successfully\) written/);
  });

  it('revisions going back in real time across keys', () => {
    const ops = [put(0, 'a', [0, 10], 5), { ...put(1, 'b', [20, 30], 4), key: '/other' }];
    const r = verdict(ops, ref(putEv('b', 4, '/other'), putEv('a', 5)));
    assert.match(r.problems.join('\n'), /revision went back in real time/);
  });

  it('reordered, split and gapped watches', () => {
    const ops = [put(0, 'a', [0, 10], 2), put(0, 'b', [20, 30], 3), put(0, 'c', [40, 50], 4)];
    const good = ref(putEv('a', 2), putEv('b', 3), putEv('c', 4));
    assert.equal(verdict(ops, good).verdict, 'ok');
    const reordered = watch([[putEv('a', 2)], [putEv('c', 4)], [putEv('b', 3)]], 'live');
    assert.ok(verdict(ops, good, [reordered]).watchProblems.some((p) => p.guarantee === 'ordered'));
    const txn = watch([[putEv('a', 2), putEv('x', 3, '/x')], [putEv('b', 3)]], 'split');
    assert.ok(checkRun([], txn, []).watchProblems.some((p) => p.guarantee === 'atomic'));
    const gap = watch([[putEv('a', 2)], [putEv('c', 4)]], 'live');
    assert.ok(verdict(ops, good, [gap]).watchProblems.some((p) => p.guarantee === 'reliable'));
    const refGap = ref(putEv('a', 2), putEv('c', 4));
    assert.ok(checkRun([], refGap, []).watchProblems.some((p) => p.guarantee === 'reliable'));
    const resumedWrong = watch([[putEv('b', 3)], [putEv('c', 4)]], 'resumed', 2);
    assert.ok(verdict(ops, good, [resumedWrong]).watchProblems.some((p) => p.guarantee === 'reliable'));
    const dupe = watch([[putEv('a', 2)], [putEv('a', 2)], [putEv('b', 3)]], 'live');
    assert.ok(verdict(ops, good, [dupe]).watchProblems.some((p) => p.guarantee === 'unique'));
  });
});

describe('linearizability checker: bounded search', () => {
  it("answers 'unknown' when the step budget is spent instead of searching on", () => {
    // Many overlapping puts and reads of values that force backtracking.
    const ops: Array<Operation<Input, Output>> = [];
    for (let i = 0; i < 14; i++) {
      ops.push({ id: i, client: i, input: { kind: 'put', value: `v${i}` }, output: { known: false }, call: 0, ret: Infinity });
    }
    ops.push({
      id: 14,
      client: 99,
      input: { kind: 'get' },
      output: { known: true, kind: 'get', rev: 0, found: true, value: 'nope', modRev: 0 },
      call: 1,
      ret: 2,
    });
    const r = checkPartition(keyModel, ops, 500);
    assert.equal(r.verdict, 'unknown');
    assert.equal(r.steps, 501);
    // With enough budget: illegal (no put wrote "nope").
    assert.equal(checkPartition(keyModel, ops, 10_000_000).verdict, 'illegal');
  });
});
