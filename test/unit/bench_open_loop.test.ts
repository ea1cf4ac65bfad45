// The bench tool's open-loop model (bench/lib/open_loop.ts): requests are due at a fixed rate and their
// latency runs from when they were due, so a server stall is charged to every request that queued
// behind it (coordinated omission corrected, as wrk2 does). Checked with a simulated clock: a one-slot
// "server" that answers in 1 ms but stalls once for 500 ms, driven at 100 req/s for 3 s. The corrected
// latencies must show the stall in about 50 requests; the naive ones (from the actual send) in one.
//
//   npx tsc -p . && npx mocha --no-config dist/test/unit/bench_open_loop.test.js
import * as assert from 'node:assert/strict';
import * as hdr from 'hdr-histogram-js';
import { OpenLoopDriver, OpenLoopPacer } from '../../bench/lib/open_loop';

interface SimResult { corrected: hdr.Histogram; naive: hdr.Histogram; correctedMs: number[]; sent: number; maxInFlight: number; intended: number[] }

/** Discrete-event simulation: `slots` request slots, service time from serviceMs(sendTime). */
function simulate(rate: number, durationMs: number, slots: number, serviceMs: (at: number) => number): SimResult {
  const corrected = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const naive = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const pacer = new OpenLoopPacer(rate, 0, durationMs);
  let now = 0;
  const inFlight: Array<{ slot: number; intended: number; sentAt: number; doneAt: number }> = [];
  const intended: number[] = [];
  const correctedMs: number[] = [];
  let sent = 0;
  let maxInFlight = 0;
  const driver = new OpenLoopDriver(pacer, slots, (slot, at) => {
    sent++;
    intended.push(at);
    inFlight.push({ slot, intended: at, sentAt: now, doneAt: now + serviceMs(now) });
    maxInFlight = Math.max(maxInFlight, inFlight.length);
  });
  let nextDue = driver.pump(now);
  for (;;) {
    inFlight.sort((a, b) => a.doneAt - b.doneAt);
    const nextDone = inFlight.length ? inFlight[0].doneAt : Infinity;
    if (nextDone === Infinity && nextDue === Infinity) break;
    if (nextDone <= nextDue) {
      const r = inFlight.shift()!;
      now = r.doneAt;
      driver.release(r.slot);
      corrected.recordValue(Math.round((now - r.intended) * 1000));
      correctedMs.push(now - r.intended);
      naive.recordValue(Math.round((now - r.sentAt) * 1000));
    } else {
      now = nextDue;
    }
    nextDue = driver.pump(now);
  }
  return { corrected, naive, correctedMs, sent, maxInFlight, intended };
}

describe('bench open loop (coordinated omission)', () => {
  it('charges a stall to every request that was due during it', () => {
    // 1 ms per request, except that the request sent at t = 1000 ms takes 500 ms.
    const r = simulate(100, 3000, 1, (at) => (at === 1000 ? 500 : 1));
    assert.equal(r.sent, 300);
    assert.equal(r.corrected.totalCount, 300);
    // About 50 requests were due while the slot was stuck: their corrected latency is 10..500 ms.
    const slow = r.correctedMs.filter((ms) => ms > 10).length;
    assert.ok(slow >= 45 && slow <= 55, `requests over 10 ms: ${slow}`);
    assert.ok(r.corrected.getValueAtPercentile(90) >= 100_000, `corrected p90 ${r.corrected.getValueAtPercentile(90)} µs`);
    assert.ok(Math.abs(r.corrected.maxValue - 500_000) < 1000, `corrected max ${r.corrected.maxValue} µs`);
    // Measured from the actual send, only the one stuck request is slow: the stall is hidden.
    assert.ok(r.naive.getValueAtPercentile(99) <= 1_100, `naive p99 ${r.naive.getValueAtPercentile(99)} µs`);
    assert.ok(r.naive.maxValue >= 499_000);
  });

  it('keeps the schedule: intended times are start + k / rate, without drift', () => {
    const r = simulate(1000, 1000, 4, () => 2.5);
    assert.equal(r.sent, 1000);
    r.intended.forEach((t, k) => assert.ok(Math.abs(t - k) < 1e-9, `request ${k} due at ${t}`));
    assert.ok(r.maxInFlight <= 4);
    // With 4 slots, 2.5 ms service and 1 ms spacing, nothing waits: every latency is the service time.
    assert.equal(r.corrected.getValueAtPercentile(100), r.naive.getValueAtPercentile(100));
  });

  it('never exceeds its slots and stops at the end time or the count', () => {
    const p = new OpenLoopPacer(10, 0, Infinity, 3);
    assert.deepEqual([p.take(), p.take(), p.take(), p.take()], [0, 100, 200, Infinity]);
    const q = new OpenLoopPacer(10, 50, 300);
    assert.deepEqual([q.take(), q.take(), q.take(), q.take()], [50, 150, 250, Infinity]);
    const r = simulate(10_000, 100, 2, () => 50);
    assert.equal(r.maxInFlight, 2);
  });
});
