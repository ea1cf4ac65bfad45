// Runs the real etcdctl (3.4, API v3) against one endpoint and captures exit code, stdout and stderr
// exactly as printed, so tests can compare them byte for byte or parse `-w json` output.
import { spawn } from 'node:child_process';

export const etcdctlBin = process.env.ETCD_TS_ETCDCTL_BIN ?? '/usr/bin/etcdctl';

// etcdctl reads ETCDCTL_* variables as flags; only the caller's explicit env may set them.
function ctlEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCDCTL_')) env[k] = v;
  return env;
}

export interface EtcdctlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface EtcdctlOptions {
  input?: string;           // written to stdin, then stdin is closed (txn -i reads it)
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;       // kill etcdctl after this long (default 30 s)
}

export function etcdctl(endpoint: string, args: string[], opts: EtcdctlOptions = {}): Promise<EtcdctlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(etcdctlBin, [`--endpoints=${endpoint}`, ...args], {
      env: { ...ctlEnv(), ETCDCTL_API: '3', ...(opts.env ?? {}) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (s: string) => { stdout += s; });
    child.stderr.on('data', (s: string) => { stderr += s; });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
    child.stdin.on('error', () => { /* etcdctl may exit before reading stdin */ });
    child.stdin.end(opts.input ?? '');
  });
}

/** etcdctl's JSON output, which tests inspect field by field as etcd prints it (no declared shape). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the one deliberate escape hatch for etcdctl's output
export type EtcdctlJson = any;

/**
 * Runs etcdctl with `-w json` appended and parses stdout. Throws with stderr when etcdctl fails.
 * Note: uint64 fields (cluster_id, member_id, ID) above 2^53 lose precision in JSON.parse; compare
 * those as text (see `etcdctl`) when exact values matter.
 */
export async function etcdctlJson<T = EtcdctlJson>(endpoint: string, args: string[], opts: EtcdctlOptions = {}): Promise<T> {
  const r = await etcdctl(endpoint, [...args, '-w', 'json'], opts);
  if (r.code !== 0) {
    throw new Error(`etcdctl ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
  return JSON.parse(r.stdout) as T;
}

/** For differential tests: keeps KV semantics; removes what legitimately differs between two clusters
 * or two runs (IDs and terms in headers, log timestamps, etcdctl's client id, 127.0.0.1 ports). */
export function normalize(r: EtcdctlResult): string {
  const fix = (s: string) => s
    .replace(/"(cluster_id|member_id|raft_term)":\d+/g, '"$1":0')
    .replace(/"(clusterId|memberId|raftTerm)":"\d+"/g, '"$1":"0"')
    .replace(/"ts":"[^"]*"/g, '"ts":"T"')
    .replace(/client-[0-9a-f-]{36}/g, 'client-X')
    .replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT');
  return `exit code: ${r.code}\n--- stdout ---\n${fix(r.stdout)}\n--- stderr ---\n${fix(r.stderr)}`;
}

/** Puts 64 KiB values (etcdctl, one at a time) until one is refused: the last line of its error, or
 * 'never refused' after 200 (about 12.5 MiB). For the --quota-backend-bytes and NOSPACE tests. */
export async function fillUntilRefused(s: { endpoint: string }): Promise<string> {
  const value = 'q'.repeat(64 * 1024);
  for (let i = 0; i < 200; i++) {
    const r = await etcdctl(s.endpoint, ['put', `quota/${i}`], { input: value });
    if (r.code !== 0) return r.stderr.trim().split('\n').pop() as string;
  }
  return 'never refused';
}
