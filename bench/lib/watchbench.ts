// Running bench/go/bin/watchbench (bench/go/watchbench/main.go: the watch fan-out through etcd 3.4's Go
// client) and reading its result: for bench/watch_go.ts and test/integration/go_client.test.ts.
import { spawn } from 'node:child_process';
import * as path from 'node:path';

/** Built by `sh bench/go/build.sh`; this file is dist/bench/lib/watchbench.js. */
export const watchbenchBin = path.resolve(__dirname, '..', '..', '..', 'bench', 'go', 'bin', 'watchbench');

/** watchbench's JSON (main.go, type result); latencies are -1 when there were no samples. */
export interface GoResult {
  writes: number; writeSec: number; writesPerSec: number; events: number; expected: number; complete: boolean;
  deliverSec: number; eventsPerSec: number; p50Ms: number; p99Ms: number; samples: number; unmatchedSamples: number;
  clientCpuSec: number; clientCores: number; gomaxprocs: number;
  watchersShort: number; watchersOver: number; disorderedEvents: number; revSumMismatch: number; sampledMissing: number;
  errors: string[] | null;
}

/**
 * Runs watchbench against endpoint with args (its flags) and resolves with its JSON. onPhase sees the
 * "#phase start" and "#phase end" lines it writes around the measured interval, as they come. Killed
 * after limitMs (watchbench bounds itself; this is a backstop).
 */
export function runWatchbench(endpoint: string, args: string[], limitMs: number, onPhase?: (phase: 'start' | 'end') => void): Promise<GoResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(watchbenchBin, ['--endpoint', endpoint, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderrTail = '';
    let pending = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); }, limitMs);
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => {
      pending += d.toString();
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line === '#phase start') onPhase?.('start');
        else if (line === '#phase end') onPhase?.('end');
        else stderrTail = (stderrTail + line + '\n').slice(-4000);
      }
    });
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) { reject(new Error(`watchbench exited with ${code ?? signal}: ${stderrTail.trim()}`)); return; }
      try {
        resolve(JSON.parse(stdout) as GoResult);
      } catch {
        reject(new Error(`watchbench printed no JSON: ${stdout.slice(0, 500)} ${stderrTail.trim()}`));
        return;
      }
      if (stderrTail.trim()) console.error(`watchbench stderr: ${stderrTail.trim()}`);
    });
  });
}

/** What was wrong with a run's deliveries, or nothing: every watcher must get every Put's event once, in order. */
export function deliveryProblems(r: GoResult): string[] {
  const p: string[] = [];
  if (r.events !== r.expected) p.push(`${r.events} of ${r.expected} expected events arrived (${r.expected - r.events} missing)`);
  if (r.watchersShort) p.push(`${r.watchersShort} watchers got fewer than ${r.writes} events`);
  if (r.watchersOver) p.push(`${r.watchersOver} watchers got more than ${r.writes} events`);
  if (r.disorderedEvents) p.push(`${r.disorderedEvents} events arrived with a mod revision not above the previous one`);
  if (r.revSumMismatch) p.push(`${r.revSumMismatch} watchers' sum of mod revisions differs from the Puts'`);
  if (r.sampledMissing) p.push(`${r.sampledMissing} (sampled watcher, Put revision) pairs never arrived`);
  if (r.unmatchedSamples) p.push(`${r.unmatchedSamples} sampled events matched no Put revision`);
  for (const e of r.errors ?? []) p.push(`error: ${e}`);
  return p;
}
