// Result files of the bench tool (JSON: the machine, the versions, the exact command, every run with
// its merged latency histogram) and the reports made from them: an HTML page with latency-percentile
// plots, a Markdown table for docs/BENCHMARKS.md, and the samples that `diff` judges.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import * as hdr from 'hdr-histogram-js';
import { etcdserverpb } from '../../src/shared/gen/etcd';
import { KvConnection } from './kv_client';
import { LoadResult } from './load';
import { machineInfo, MachineInfo } from './machine';
import { median, Samples } from './verdict';
import { paths } from './workloads';

export const schema = 'etcd-ts-bench/1';

export interface RunRecord {
  server: string;      // label: etcd, etcd-ts, or the endpoint for a run against a given endpoint
  serverVersion: string;
  workload: string;
  description: string;
  round: number;
  loadModel: string;   // "closed loop, 200 clients over 8 connections" / "open loop at 1000 req/s, ..."
  openLoop: boolean;
  result: LoadResult & { extra?: Record<string, number> };
  lane?: string;       // grpc, http, ws/json, ws/binary (absent in files before lanes: grpc)
  target?: string;     // which port the lane used: "client port" or "fast port" (--listen-client-http-urls)
  members?: number;    // members of the server measured (absent in older files: 1)
  case?: string;       // a suite's case (e.g. put-c16): runs are grouped and diffed by it (absent: by workload)
}

/** What runs are grouped and diffed by: a suite's case, else the workload. */
export const caseOf = (x: RunRecord): string => x.case ?? x.workload;

export interface ResultFile {
  schema: string;
  kind: 'run' | 'compare' | 'suite';
  date: string;
  command: string;
  machine: MachineInfo;
  loadAvgStart: number[]; // os.loadavg() when the command started: other work on the machine
  loadAvgEnd: number[];   // ... and when it ended
  options: Record<string, unknown>;
  servers: Array<{ label: string; version: string; command?: string; members?: number }>;
  runs: RunRecord[];
  failures: Array<{ server: string; round: number; workload: string | null; message: string }>; // runs that could not complete
}

/** Version and leader (member ID, "0" if none) reported by Maintenance/Status over gRPC. */
export async function serverStatus(endpoint: string, timeoutMs: number): Promise<{ version: string; leader: string }> {
  const c = new KvConnection(endpoint);
  try {
    await c.waitForReady(timeoutMs);
    const raw = await new Promise<Buffer>((resolve, reject) => {
      c.callPath(paths.status, Buffer.alloc(0), (err, res) => (err ? reject(err) : resolve(res!)));
    });
    const st = etcdserverpb.StatusResponse.decode(raw);
    return { version: st.version, leader: st.leader.toString() };
  } finally {
    c.close();
  }
}

/** Version reported by Maintenance/Status (etcd-ts reports the etcd version it implements). */
export async function serverVersion(endpoint: string, timeoutMs: number): Promise<string> {
  return (await serverStatus(endpoint, timeoutMs)).version;
}

/** Version reported by POST /v3/maintenance/status of an HTTP/JSON gateway (the HTTP and WebSocket lanes). */
export function gatewayVersion(endpoint: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request(`http://${endpoint}/v3/maintenance/status`, { method: 'POST', timeout: timeoutMs, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => {
        try {
          const j = JSON.parse(body) as { version?: unknown };
          if (res.statusCode === 200 && typeof j.version === 'string') { resolve(j.version); return; }
        } catch { /* below */ }
        reject(new Error(`POST /v3/maintenance/status: HTTP ${res.statusCode} ${body.slice(0, 200)}`));
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end('{}');
  });
}

export function newResultFile(kind: ResultFile['kind'], command: string, etcdBin: string, options: Record<string, unknown>): ResultFile {
  return {
    schema, kind, date: new Date().toISOString(), command, machine: machineInfo(etcdBin),
    loadAvgStart: os.loadavg(), loadAvgEnd: [], options, servers: [], runs: [], failures: [],
  };
}

export function writeJson(file: string, r: ResultFile): void {
  if (r.loadAvgEnd.length === 0) r.loadAvgEnd = os.loadavg();
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(r, null, 1) + '\n');
}

export function readResultFile(file: string): ResultFile {
  const r = JSON.parse(fs.readFileSync(file, 'utf8')) as ResultFile;
  if (r.schema !== schema) throw new Error(`${file}: not an etcd-ts-bench result file (schema ${JSON.stringify(r.schema)})`);
  r.loadAvgStart ??= [];
  r.loadAvgEnd ??= [];
  r.failures ??= [];
  return r;
}

/** The samples of one server and workload (or suite case), for diff. */
export function samplesOf(r: ResultFile, server: string, workload: string): Samples | null {
  const runs = r.runs.filter((x) => x.server === server && caseOf(x) === workload);
  if (runs.length === 0) return null;
  return {
    throughput: runs.map((x) => x.result.reqPerSec), p99Ms: runs.map((x) => x.result.p99Ms),
    errors: runs.reduce((a, x) => a + x.result.errors, 0), openLoop: runs.every((x) => x.openLoop),
  };
}

// ---- formatting ----

/** A number for a markdown table, d decimals; n/a when it is not finite (a missing value is NaN). */
export const fmtNum = (x: number, d = 0): string => (Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : 'n/a');
/** x / y with d decimals; n/a when either is missing or y is 0. */
export const ratioText = (x: number, y: number, d = 2): string => (Number.isFinite(x) && Number.isFinite(y) && y !== 0 ? (x / y).toFixed(d) : 'n/a');
export const fmtRate = (n: number): string => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toPrecision(3));
export const fmtMs = (n: number): string => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

export function summaryLine(x: RunRecord): string {
  const r = x.result;
  const errs = Object.entries(r.errorsByCode).map(([k, n]) => `${k} ${n}`).join(', ');
  const unit = x.workload.startsWith('watch') ? 'events/s' : 'req/s';
  return `${x.server} ${caseOf(x)}${x.round ? ` round ${x.round}` : ''}: ${fmtRate(r.reqPerSec)} ${unit} (${r.ops} in ${(r.measuredMs / 1000).toFixed(1)} s), ` +
    `latency ms p50 ${fmtMs(r.p50Ms)} p90 ${fmtMs(r.p90Ms)} p99 ${fmtMs(r.p99Ms)} p99.9 ${fmtMs(r.p999Ms)} max ${fmtMs(r.maxMs)}, ` +
    `errors ${r.errors}${errs ? ` (${errs}; first: ${r.firstError})` : ''}, generator ${r.generatorCpu.toFixed(2)} cores = ${r.cpuUsPerReq.toFixed(1)} µs/${unit === 'req/s' ? 'req' : 'event'}` +
    (r.serverCpu !== null ? `, server ${r.serverCpu.toFixed(2)} cores` : '') +
    (r.maxBacklog > 0 ? `, open-loop backlog up to ${r.maxBacklog}` : '') +
    (r.machineCpu !== null && r.machineCpu > 0.9 * os.cpus().length
      ? ` [machine CPU saturated: ${r.machineCpu.toFixed(2)} of ${os.cpus().length} cores busy, ${r.generatorCpu.toFixed(2)} of them the generator: the shared CPU, not only the server, limits this run]` : '') +
    (x.result.extra ? `, ${Object.entries(x.result.extra).map(([k, v]) => `${k} ${fmtRate(v)}`).join(', ')}` : '');
}

// ---- Markdown (docs/BENCHMARKS.md) ----

function groups(r: ResultFile): Array<{ workload: string; description: string; byServer: Map<string, RunRecord[]> }> {
  const out: Array<{ workload: string; description: string; byServer: Map<string, RunRecord[]> }> = [];
  for (const x of r.runs) {
    let g = out.find((y) => y.workload === caseOf(x));
    if (!g) out.push((g = { workload: caseOf(x), description: x.description, byServer: new Map() }));
    const l = g.byServer.get(x.server) ?? [];
    l.push(x);
    g.byServer.set(x.server, l);
  }
  return out;
}

export function markdownReport(r: ResultFile): string {
  const m = r.machine;
  const servers = r.servers.map((s) => s.label);
  const members = Math.max(1, ...r.servers.map((s) => s.members ?? 1));
  const lines = [
    `## Compare: etcd vs etcd-ts${members > 1 ? `, ${members}-member clusters` : ''} (etcd-ts-bench compare)`,
    '',
    `Machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.kernel}; Node ${m.node}; etcd binary ${m.etcd}; commit ${m.commit}; data dirs on ${m.tmpFs}; ${r.date.slice(0, 16).replace('T', ' ')} UTC; ` +
    `load average ${r.loadAvgStart.map((x) => x.toFixed(1)).join(' ')} at the start, ${(r.loadAvgEnd.length ? r.loadAvgEnd : os.loadavg()).map((x) => x.toFixed(1)).join(' ')} at the end (other jobs shared the machine when these are well above 0).`,
    '',
    `Command: \`${r.command}\``,
    '',
    `Servers (one at a time, fresh data dir each, order alternated per round): ${r.servers.map((s) => `${s.label} (reports ${s.version})`).join(', ')}. ` +
    (members > 1 ? `Each server kind ran as a cluster of ${members} members on this machine (127.0.0.1, fresh data dirs, one --initial-cluster), the load spread over every member's endpoint. ` : '') +
    'Medians over the rounds, each round\'s value in the "per round" column (in round order). Ratio = ' + `${servers[1] ?? 'B'} / ${servers[0] ?? 'A'} of the medians. ` +
    'The load generator runs on the same machine and its CPU use is in the last column (near the core count, it is the limit).',
    '',
  ];
  const general = r.failures.filter((f) => f.workload === null || !r.runs.some((x) => caseOf(x) === f.workload));
  if (general.length) lines.push(...general.map((f) => `- ${f.server}, round ${f.round}${f.workload ? `, ${f.workload}` : ''}: ${f.message}`), '');
  for (const g of groups(r)) {
    const first = [...g.byServer.values()][0][0];
    const unit = g.workload.startsWith('watch') ? 'events/s' : 'req/s';
    // Sides on different lanes (--a-lane / --b-lane) have different load models: name each.
    const models = [...g.byServer].map(([server, runs]) => ({ server, model: runs[0].loadModel }));
    const model = models.every((m) => m.model === first.loadModel) ? first.loadModel : models.map((m) => `${m.server}: ${m.model}`).join('; ');
    lines.push(`### ${g.workload}`, '', `${g.description}; ${model}.`, '');
    lines.push(`| server | ${unit} (median) | per round | p50 ms | p99 ms | p99.9 ms | errors | generator cores |`);
    lines.push('|---|---:|---|---:|---:|---:|---:|---:|');
    const med = new Map<string, number>();
    for (const [server, runs] of g.byServer) {
      const tp = runs.map((x) => x.result.reqPerSec);
      med.set(server, median(tp));
      const mm = (f: (x: LoadResult) => number) => fmtMs(median(runs.map((x) => f(x.result))));
      lines.push(`| ${server} | ${fmtRate(median(tp))} | ${tp.map(fmtRate).join(', ')} | ${mm((x) => x.p50Ms)} | ${mm((x) => x.p99Ms)} | ${mm((x) => x.p999Ms)} | ` +
        `${runs.reduce((a, x) => a + x.result.errors, 0)} | ${median(runs.map((x) => x.result.generatorCpu)).toFixed(2)} |`);
    }
    if (servers.length === 2 && med.has(servers[0]) && med.has(servers[1])) {
      lines.push('', `Ratio ${servers[1]} / ${servers[0]}: ${(med.get(servers[1])! / med.get(servers[0])!).toFixed(2)}.`);
    }
    const notes: string[] = [];
    for (const [server, runs] of g.byServer) {
      for (const x of runs) {
        if (x.result.errors === 0) continue;
        const codes = Object.entries(x.result.errorsByCode).map(([k, n]) => `${k} ${n}`).join(', ');
        notes.push(`- ${server}, round ${x.round}: ${x.result.errors} errors (${codes}); first: ${x.result.firstError}`);
      }
    }
    for (const f of r.failures) {
      if (f.workload === g.workload) notes.push(`- ${f.server}, round ${f.round}: no result: ${f.message}`);
    }
    if (notes.length) lines.push('', ...notes);
    lines.push('');
  }
  return lines.join('\n');
}

/** Replaces (or appends) the section between `<!-- tag:begin ... -->` and `<!-- tag:end -->` of a Markdown file. */
export function writeMarkedSection(file: string, tag: string, body: string, generator = 'etcd-ts-bench'): void {
  const beginTag = `<!-- ${tag}:begin`;
  const begin = `${beginTag} (generated by ${generator}; edits inside are overwritten) -->`;
  const end = `<!-- ${tag}:end -->`;
  const section = `${begin}\n${body.trimEnd()}\n${end}\n`;
  const old = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmarks\n\n';
  const i = old.indexOf(beginTag);
  const j = old.indexOf(end);
  const next = i >= 0 && j > i ? old.slice(0, i) + section + old.slice(j + end.length).replace(/^\n/, '') : `${old.trimEnd()}\n\n${section}`;
  fs.writeFileSync(file, next);
}

// ---- HTML report with latency-percentile plots ----

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);
const palette = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

/** Latency (ms) at percentiles spread evenly on the 1/(1 - p) log axis, from 0 to 99.999. */
function percentileCurve(histogramB64: string): Array<{ x: number; p: number; ms: number }> {
  const h = hdr.decodeFromCompressedBase64(histogramB64);
  if (h.totalCount === 0) return [];
  const pts: Array<{ x: number; p: number; ms: number }> = [];
  for (let k = 0; k <= 100; k++) {
    const x = k / 20; // log10(1 / (1 - p)), 0 .. 5
    const p = 100 * (1 - 10 ** -x);
    pts.push({ x, p, ms: h.getValueAtPercentile(p) / 1000 });
  }
  return pts;
}

function plotSvg(series: Array<{ name: string; histogram: string }>): string {
  const W = 760, H = 320, L = 60, R = 10, T = 10, B = 40;
  const curves = series.map((s) => ({ name: s.name, pts: percentileCurve(s.histogram) }));
  const maxMs = Math.max(0.001, ...curves.flatMap((c) => c.pts.map((p) => p.ms)));
  const minMs = Math.max(0.001, Math.min(...curves.flatMap((c) => c.pts.map((p) => p.ms)).filter((v) => v > 0), maxMs));
  const ly0 = Math.floor(Math.log10(minMs));
  const ly1 = Math.ceil(Math.log10(maxMs)) || ly0 + 1;
  const X = (x: number) => L + (x / 5) * (W - L - R);
  const Y = (ms: number) => T + (1 - (Math.log10(Math.max(ms, 10 ** ly0)) - ly0) / Math.max(1, ly1 - ly0)) * (H - T - B);
  const out: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`];
  for (let e = ly0; e <= ly1; e++) {
    out.push(`<line x1="${L}" x2="${W - R}" y1="${Y(10 ** e)}" y2="${Y(10 ** e)}" stroke="#ddd"/><text x="${L - 4}" y="${Y(10 ** e) + 4}" text-anchor="end">${10 ** e >= 1 ? 10 ** e : (10 ** e).toFixed(-e)} ms</text>`);
  }
  ['0%', '90%', '99%', '99.9%', '99.99%', '99.999%'].forEach((label, i) => {
    out.push(`<line x1="${X(i)}" x2="${X(i)}" y1="${T}" y2="${H - B}" stroke="#ddd"/><text x="${X(i)}" y="${H - B + 14}" text-anchor="middle">${label}</text>`);
  });
  out.push(`<text x="${(L + W) / 2}" y="${H - 6}" text-anchor="middle">percentile</text>`);
  curves.forEach((c, i) => {
    if (c.pts.length === 0) return;
    const d = c.pts.map((p, j) => `${j ? 'L' : 'M'}${X(p.x).toFixed(1)},${Y(p.ms).toFixed(1)}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${palette[i % palette.length]}" stroke-width="1.5"><title>${esc(c.name)}</title></path>`);
    out.push(`<rect x="${L + 10}" y="${T + 6 + i * 15}" width="10" height="10" fill="${palette[i % palette.length]}"/><text x="${L + 24}" y="${T + 15 + i * 15}">${esc(c.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('');
}

export function htmlReport(files: Array<{ name: string; r: ResultFile }>): string {
  const parts: string[] = [];
  for (const { name, r } of files) {
    const m = r.machine;
    parts.push(`<h2>${esc(name)}</h2><p>${esc(r.date)} · <code>${esc(r.command)}</code><br>${esc(`${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.kernel}, Node ${m.node}, etcd ${m.etcd}, commit ${m.commit}, data on ${m.tmpFs}`)}<br>` +
      `servers: ${esc(r.servers.map((s) => `${s.label} (${s.version})`).join(', '))}</p>`);
    for (const g of groups(r)) {
      const series: Array<{ name: string; histogram: string }> = [];
      const rows: string[] = [];
      for (const [server, runs] of g.byServer) {
        for (const x of runs) {
          const label = `${server}${runs.length > 1 ? ` round ${x.round}` : ''}`;
          series.push({ name: label, histogram: x.result.histogram });
          const q = x.result;
          rows.push(`<tr><td>${esc(label)}</td><td>${fmtRate(q.reqPerSec)}</td><td>${fmtMs(q.p50Ms)}</td><td>${fmtMs(q.p90Ms)}</td><td>${fmtMs(q.p99Ms)}</td><td>${fmtMs(q.p999Ms)}</td><td>${fmtMs(q.maxMs)}</td><td>${q.errors}</td><td>${q.generatorCpu.toFixed(2)}</td></tr>`);
        }
      }
      const first = [...g.byServer.values()][0][0];
      parts.push(`<h3>${esc(g.workload)}</h3><p>${esc(g.description)}; ${esc(first.loadModel)}</p>${plotSvg(series)}` +
        `<table border="1" cellspacing="0" cellpadding="3"><tr><th>run</th><th>${g.workload.startsWith('watch') ? 'events/s' : 'req/s'}</th><th>p50 ms</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>errors</th><th>generator cores</th></tr>${rows.join('')}</table>`);
    }
  }
  return `<!doctype html><meta charset="utf-8"><title>etcd-ts-bench report</title><body style="font-family:sans-serif;max-width:900px">` +
    `<h1>etcd-ts-bench report</h1><p>Latency percentile plots (log scales; x = percentile on a 1/(1-p) axis). Latency of open-loop runs is measured from when each request was due.</p>${parts.join('\n')}</body>`;
}
