// Running bench/go/bin/kvbench (bench/go/kvbench/main.go: put, range, txn-put and new-connection load
// through etcd 3.4's Go client, with etcd tools/benchmark's client model) and reading its result: for
// bench/go_kv.ts and test/integration/go_bench_smoke.test.ts.
import { spawn } from 'node:child_process';
import * as path from 'node:path';

/** Built by `sh bench/go/build.sh`; this file is dist/bench/lib/kvbench.js. */
export const kvbenchBin = path.resolve(__dirname, '..', '..', '..', 'bench', 'go', 'bin', 'kvbench');

/** kvbench's JSON (main.go, type result); percentiles are -1 when no request succeeded. */
export interface KvbenchResult {
  op: string;
  endpoints: string[];
  conns: number;
  clients: number;
  total: number;
  tls: boolean;
  consistency?: string;
  compare?: boolean;
  ok: number;
  errors: number;
  errorSample: string[];
  seconds: number;
  reqPerSec: number;
  avgMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  clientCores: number;
  gomaxprocs: number;
}

/** Runs `kvbench <args>` and resolves with its JSON; rejects with its stderr tail when it fails. Killed after limitMs. */
export function runKvbench(args: string[], limitMs: number): Promise<KvbenchResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(kvbenchBin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, limitMs);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) {
        reject(new Error(`kvbench ${args[0]} exited with ${code ?? signal}: ${stderr.trim()}`));
        return;
      }
      try {
        resolve(JSON.parse(stdout) as KvbenchResult);
      } catch {
        reject(new Error(`kvbench printed no JSON: ${stdout.slice(0, 500)} ${stderr.trim()}`));
      }
    });
  });
}
