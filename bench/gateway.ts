// HTTP/JSON gateway throughput: wrk against etcd 3.4's gateway (its client port), etcd-ts's client
// port (node:http next to gRPC) and etcd-ts's --listen-client-http-urls port (uWebSockets.js), and a
// ceiling row: a uWS process that only parses each body and answers a constant (lib/noop_http.ts), the
// most that any server answering JSON over uWS can serve under the same wrk load on this machine.
// One server at a time on a fresh data dir (test/support/procs.ts), a warm-up, then `--rounds`
// measured runs per row, rounds interleaved across targets so slow minutes hit all of them. Prints a
// markdown table (median req/s of the rounds and the range). Not a test: never asserts on speed.
//
//   npx tsc -p . && node dist/bench/gateway.js --seconds 5 --rounds 3 --connections 50 [--threads 2] [--no-ceiling]
//
// Needs wrk (apt-get install -y wrk). The request bodies are bench/wrk/put.lua and range.lua.
import { execFileSync, spawn } from 'node:child_process';
import * as path from 'node:path';
import { freePort, removeDataDir, Server, startEtcd, startEtcdTs } from '../test/support/procs';
import { machineInfo } from './lib/machine';
import { etcdBin } from '../test/support/procs';

interface Started { url: string; stop: () => Promise<void> }
interface Target { name: string; start: () => Promise<Started> }

/** A server from test/support/procs: stopped and its data dir removed afterwards. */
function started(server: Server, url: string): Started {
  return { url, stop: async () => { await server.stop(); removeDataDir(server); } };
}

/** bench/lib/noop_http.ts in its own process (the ceiling row). */
async function startNoop(): Promise<Started> {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(__dirname, 'lib', 'noop_http.js'), String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`noop_http exited with ${code}`)));
    child.stdout.on('data', (d: Buffer) => { if (d.toString().includes('listening')) resolve(); });
  });
  child.removeAllListeners('exit');
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () => new Promise((resolve) => { child.once('exit', () => resolve()); child.kill('SIGTERM'); }),
  };
}
interface Workload { name: string; path: string; script: string }

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

const seconds = arg('seconds', 5);
const rounds = arg('rounds', 3);
const connections = arg('connections', 50);
const threads = arg('threads', 2);
const wrkDir = path.resolve(__dirname, '..', '..', 'bench', 'wrk');

const targets: Target[] = [
  { name: 'etcd 3.4 gateway (client port)', start: async () => { const s = await startEtcd(); return started(s, s.clientUrl); } },
  { name: 'etcd-ts client port (node:http)', start: async () => { const s = await startEtcdTs(); return started(s, s.clientUrl); } },
  {
    name: 'etcd-ts --listen-client-http-urls (uWS)',
    start: async () => {
      const url = `http://127.0.0.1:${await freePort()}`;
      return started(await startEtcdTs({ extraArgs: ['--listen-client-http-urls', url] }), url);
    },
  },
  // Not a server: the most a uWS JSON endpoint serves here (bench/lib/noop_http.ts); --no-ceiling omits it.
  ...(process.argv.includes('--no-ceiling') ? [] : [{ name: 'ceiling: no-op uWS, parse + constant answer', start: startNoop }]),
];

const workloads: Workload[] = [
  { name: 'POST /v3/kv/put', path: '/v3/kv/put', script: 'put.lua' },
  { name: 'POST /v3/kv/range (linearizable)', path: '/v3/kv/range', script: 'range.lua' },
  { name: 'POST /v3/kv/range (serializable)', path: '/v3/kv/range', script: 'range_serializable.lua' },
];

function wrk(url: string, script: string, secs: number): { rps: number; p50: string; p99: string; errors: number } {
  const out = execFileSync('wrk', [`-t${threads}`, `-c${connections}`, `-d${secs}s`, '--latency', '-s', path.join(wrkDir, script), url],
    { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 'NaN');
  const p50 = /\s50%\s+(\S+)/.exec(out)?.[1] ?? '?';
  const p99 = /\s99%\s+(\S+)/.exec(out)?.[1] ?? '?';
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = non2xx + (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return { rps, p50, p99, errors };
}

async function main(): Promise<void> {
  const results = new Map<string, Array<{ rps: number; p50: string; p99: string; errors: number }>>();
  for (let r = 0; r < rounds; r++) {
    for (const t of targets) {
      const { url, stop } = await t.start();
      try {
        execFileSync('curl', ['-s', '-o', '/dev/null', '-X', 'POST', `${url}/v3/kv/put`, '-d', '{"key":"Zm9v","value":"YmFy"}']);
        for (const w of workloads) {
          wrk(url + w.path, w.script, 1); // warm-up
          const res = wrk(url + w.path, w.script, seconds);
          const key = `${w.name}|${t.name}`;
          results.set(key, [...(results.get(key) ?? []), res]);
          process.stderr.write(`round ${r + 1} ${t.name} ${w.name}: ${res.rps.toFixed(0)} req/s p50 ${res.p50} p99 ${res.p99} errors ${res.errors}\n`);
        }
      } finally {
        await stop();
      }
    }
  }
  const m = machineInfo(etcdBin);
  console.log(`Machine: ${m.cpuModel}, ${m.cores} cores; Node ${m.node}; etcd ${m.etcd}; commit ${m.commit}.`);
  console.log(`Command: \`node dist/bench/gateway.js --seconds ${seconds} --rounds ${rounds} --connections ${connections} --threads ${threads}\` ` +
    `(wrk -t${threads} -c${connections} -d${seconds}s, ${rounds} interleaved rounds, median and range)\n`);
  console.log('| workload | target | req/s (median) | range over rounds | vs etcd | p50 / p99 (median round) | errors |');
  console.log('|---|---|---:|---:|---:|---:|---:|');
  for (const w of workloads) {
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const base = med(results.get(`${w.name}|${targets[0].name}`)!.map((x) => x.rps));
    for (const t of targets) {
      const rs = results.get(`${w.name}|${t.name}`)!;
      const sorted = [...rs].sort((a, b) => a.rps - b.rps);
      const mid = sorted[Math.floor(sorted.length / 2)];
      console.log(`| ${w.name} | ${t.name} | ${mid.rps.toFixed(0)} | ${sorted[0].rps.toFixed(0)}–${sorted[sorted.length - 1].rps.toFixed(0)} | ` +
        `${(mid.rps / base).toFixed(2)}× | ${mid.p50} / ${mid.p99} | ${rs.reduce((a, x) => a + x.errors, 0)} |`);
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
