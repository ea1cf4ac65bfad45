// Whether two result files measured the same thing, for `etcd-ts-bench diff`: a verdict (faster, slower,
// within noise) only means something between runs of the same server under the same load model and the
// same workload. A closed-loop run's throughput against an open-loop run's (whose throughput is its
// offered rate; diff judges its p99 latency) is no regression, nor is etcd against etcd-ts, 200 clients
// against 50, 256-byte values against 1 KiB, or the gRPC lane against the JSON gateway.
import type { RunRecord } from './results';

/** What must be equal on both sides; absent fields of older files take their defaults. */
interface Setup {
  server: string;
  loop: 'closed loop' | 'open loop';
  loadModel: string;
  description: string;
  lane: string;
  target: string;
  members: number;
}

const FIELDS: ReadonlyArray<[keyof Setup, string]> = [
  ['server', 'servers'],
  ['loop', 'load models'],
  ['loadModel', 'load models'],
  ['description', 'workloads'],
  ['lane', 'lanes (how the load reaches the server)'],
  ['target', 'ports'],
  ['members', 'cluster sizes (members)'],
];

function setupOf(x: RunRecord): Setup {
  return {
    server: x.server,
    loop: x.openLoop ? 'open loop' : 'closed loop',
    loadModel: x.loadModel,
    description: x.description,
    lane: x.lane ?? 'grpc',
    target: x.target ?? 'client port',
    members: x.members ?? 1,
  };
}

/**
 * Why the runs of one workload in the base and head files cannot be compared ([] when they can): each
 * reason names what differs and both values. Runs of one side that differ among themselves are refused
 * too (a file that mixes them has no single baseline).
 */
export function incomparable(workload: string, base: readonly RunRecord[], head: readonly RunRecord[]): string[] {
  const reasons: string[] = [];
  const sides: Array<[string, readonly RunRecord[]]> = [
    ['base', base],
    ['head', head],
  ];
  for (const [side, runs] of sides) {
    if (runs.length === 0) return [`${workload}: ${side} has no runs of it`];
    const first = setupOf(runs[0]);
    for (const [field, what] of FIELDS) {
      const other = runs.map(setupOf).find((s) => s[field] !== first[field]);
      if (other) reasons.push(`${workload}: ${side} mixes ${what}: "${first[field]}" and "${other[field]}"`);
    }
  }
  const b = setupOf(base[0]);
  const h = setupOf(head[0]);
  const seen = new Set<string>();
  for (const [field, what] of FIELDS) {
    if (b[field] === h[field] || seen.has(what)) continue;
    seen.add(what);
    reasons.push(`${workload}: different ${what}: base "${b[field]}", head "${h[field]}"`);
  }
  return reasons;
}
