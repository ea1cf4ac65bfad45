// Renders a V8 .cpuprofile as a flamegraph: stacks merged by function, widths proportional to
// sampled time, drawn bottom-up as inline SVG in one HTML file (no scripts needed; <title> gives
// the hover text). Idle and GC time stay visible as their own frames, so a mostly idle thread
// looks mostly idle. writeFlamegraphs renders a whole --cpu-prof-dir into flamegraphs/ (the
// flamegraph tool and bench/watch.ts --prof); topSelf summarises a profile as text.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }>;
  samples: number[];
  timeDeltas: number[];
}

interface Frame { name: string; selfUs: number; totalUs: number; children: Map<string, Frame> }

function frameName(n: CpuProfile['nodes'][number]): string {
  const fn = n.callFrame.functionName || '(anonymous)';
  const file = n.callFrame.url ? n.callFrame.url.split('/').slice(-2).join('/') : '';
  return file ? `${fn} ${file}:${n.callFrame.lineNumber + 1}` : fn;
}

/** Builds the merged call tree with total time per frame. */
function buildTree(p: CpuProfile): Frame {
  const self = new Map<number, number>();
  p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const isChild = new Set(p.nodes.flatMap((n) => n.children ?? []));
  const root: Frame = { name: 'all', selfUs: 0, totalUs: 0, children: new Map() };
  const visit = (id: number, parent: Frame): number => {
    const n = byId.get(id);
    if (!n) return 0;
    const name = frameName(n);
    let f = parent.children.get(name);
    if (!f) parent.children.set(name, (f = { name, selfUs: 0, totalUs: 0, children: new Map() }));
    const own = self.get(id) ?? 0;
    f.selfUs += own;
    let total = own;
    for (const c of n.children ?? []) total += visit(c, f);
    f.totalUs += total;
    return total;
  };
  for (const n of p.nodes) if (!isChild.has(n.id)) root.totalUs += visit(n.id, root);
  return root;
}

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);

function color(name: string): string {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  if (name.startsWith('(idle)')) return '#ddd';
  if (name.startsWith('(garbage')) return '#9cf';
  return `hsl(${20 + (h % 40)}, ${70 + (h % 20)}%, ${55 + (h % 15)}%)`;
}

export function renderFlamegraphHtml(p: CpuProfile, title: string, meta: string): string {
  const root = buildTree(p);
  const width = 1600;
  const rowH = 16;
  const rects: string[] = [];
  let maxDepth = 0;
  const draw = (f: Frame, x: number, depth: number): void => {
    const w = (f.totalUs / Math.max(1, root.totalUs)) * width;
    if (w < 0.5) return;
    maxDepth = Math.max(maxDepth, depth);
    const pct = ((f.totalUs / Math.max(1, root.totalUs)) * 100).toFixed(2);
    const label = w > 40 ? `<text x="${(x + 3).toFixed(1)}" y="${depth * rowH + 12}" font-size="11">${esc(f.name.slice(0, Math.floor(w / 7)))}</text>` : '';
    rects.push(`<g><title>${esc(f.name)} — ${(f.totalUs / 1000).toFixed(1)} ms (${pct}%), self ${(f.selfUs / 1000).toFixed(1)} ms</title>` +
      `<rect x="${x.toFixed(1)}" y="${depth * rowH}" width="${w.toFixed(1)}" height="${rowH - 1}" fill="${color(f.name)}"/>${label}</g>`);
    let cx = x;
    for (const c of [...f.children.values()].sort((a, b) => b.totalUs - a.totalUs)) {
      draw(c, cx, depth + 1);
      cx += (c.totalUs / Math.max(1, root.totalUs)) * width;
    }
  };
  draw(root, 0, 0);
  const height = (maxDepth + 1) * rowH;
  return `<!doctype html><meta charset="utf-8"><title>${esc(title)}</title>
<body style="font-family:sans-serif"><h3>${esc(title)}</h3><p>${esc(meta)}</p>
<p>Total sampled ${(root.totalUs / 1e6).toFixed(2)} s. Width = time; the root is at the top; hover for details.</p>
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="monospace">${rects.join('\n')}</svg></body>`;
}

/** The n functions with the most self time, one per line (ms and share of the thread's samples). */
export function topSelf(p: CpuProfile, n: number): string {
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const self = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const name = frameName(byId.get(p.samples[i])!);
    const dt = p.timeDeltas[i] ?? 0;
    self.set(name, (self.get(name) ?? 0) + dt);
    total += dt;
  }
  return [...self].sort((x, y) => y[1] - x[1]).slice(0, n)
    .map(([k, us]) => `  ${(us / 1000).toFixed(0).padStart(6)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`).join('\n');
}

/**
 * Renders each thread's .cpuprofile in profDir (node --cpu-prof-dir) as flamegraphs/<name> at the
 * repository root, where name(commit, profile, profile file) names it, each headed by the command,
 * commit, machine and time; then removes profDir. Returns the files written (relative to the
 * root), in the order of the profile files, with their profiles.
 */
export function writeFlamegraphs(profDir: string, command: string,
  name: (commit: string, p: CpuProfile, profFile: string) => string): Array<{ file: string; profile: CpuProfile }> {
  const root = path.join(__dirname, '..', '..', '..');
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root }).toString().trim();
  const meta = `${command} | commit ${commit} | ${os.cpus()[0]?.model ?? '?'} x${os.cpus().length} | node ${process.version} | ${new Date().toISOString()}`;
  fs.mkdirSync(path.join(root, 'flamegraphs'), { recursive: true });
  const written: Array<{ file: string; profile: CpuProfile }> = [];
  for (const f of fs.readdirSync(profDir).filter((x) => x.endsWith('.cpuprofile')).sort()) {
    const profile = JSON.parse(fs.readFileSync(path.join(profDir, f), 'utf8')) as CpuProfile;
    const n = name(commit, profile, f);
    const file = path.join('flamegraphs', n);
    fs.writeFileSync(path.join(root, file), renderFlamegraphHtml(profile, n, meta));
    written.push({ file, profile });
  }
  fs.rmSync(profDir, { recursive: true, force: true });
  return written;
}
