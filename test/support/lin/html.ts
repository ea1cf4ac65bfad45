// An HTML page of a failed check: per key that is not linearizable, a timeline (a row per client, each
// operation a bar from its call to its return; unknown outcomes run to the edge, striped), around the
// point where the search got stuck. The longest linearization's operations carry their order number; the
// operations that could not take effect next are red. Hovering a bar shows the operation. No scripts, no
// dependencies: one file to open in a browser.
import { describeInput, describeOutput } from './model';
import { KeyVerdict, RunCheck } from './check';

const widthPx = 1400;
const rowPx = 22;
const windowTailOps = 8; // the last operations of the longest linearization shown with the stuck ones
const windowMarginFraction = 0.1;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function keyTimeline(k: KeyVerdict): string {
  const stuck = new Set(k.result.stuck);
  const order = new Map(k.result.longest.map((id, i) => [id, i + 1]));
  // The window: the operations that could not be placed and the last ones placed before them, with a margin.
  const tail = new Set(k.result.longest.slice(-windowTailOps));
  const focus = k.modelOps.filter((o) => stuck.has(o.id) || tail.has(o.id));
  const lo = Math.min(...focus.map((o) => o.call));
  const finiteEnds = focus.map((o) => o.ret).filter(Number.isFinite);
  const hi = finiteEnds.length > 0 ? Math.max(...finiteEnds) : Math.max(...focus.map((o) => o.call));
  const margin = Math.max(1, (hi - lo) * windowMarginFraction);
  const t0 = lo - margin;
  const t1 = hi + margin;
  const shown = k.modelOps.filter((o) => o.ret >= t0 && o.call <= t1);
  const clients = [...new Set(shown.map((o) => o.client))].sort((a, b) => a - b);
  const x = (t: number): number => ((Math.min(Math.max(t, t0), t1) - t0) / (t1 - t0)) * widthPx;
  const bars = shown.map((o) => {
    const row = clients.indexOf(o.client);
    const left = x(o.call);
    const w = Math.max(3, x(o.ret) - left);
    const cls = ['op', stuck.has(o.id) ? 'stuck' : order.has(o.id) ? 'lin' : '', o.output.known ? '' : 'unknown', o.input.kind].join(' ');
    const title = `#${o.id} client ${o.client}: ${describeInput(o.input)} -> ${describeOutput(o.output)} [${o.call.toFixed(1)}..${Number.isFinite(o.ret) ? o.ret.toFixed(1) : 'inf'} ms]${order.has(o.id) ? ` linearized ${order.get(o.id)}` : ''}`;
    const label = `${order.has(o.id) ? `${order.get(o.id)}: ` : ''}${describeInput(o.input)}`;
    return `<div class="${cls}" style="left:${left.toFixed(1)}px;top:${row * rowPx}px;width:${w.toFixed(1)}px" title="${esc(title)}">${esc(label)}</div>`;
  });
  const labels = clients.map((c, i) => `<div class="client" style="top:${i * rowPx}px">client ${c}</div>`);
  return [
    `<h2>${esc(k.key)}: not linearizable</h2>`,
    `<pre>${esc(k.excerpt ?? '')}</pre>`,
    `<p>window ${t0.toFixed(0)}..${t1.toFixed(0)} ms, ${shown.length} of ${k.modelOps.length} operations of the key</p>`,
    `<div class="tl" style="height:${clients.length * rowPx}px;width:${widthPx + 80}px">${labels.join('')}<div class="bars">${bars.join('')}</div></div>`,
  ].join('\n');
}

/** The page for a check with problems (keys that are not linearizable get a timeline; all problems are listed). */
export function renderHtml(title: string, c: RunCheck): string {
  const keys = c.keys.filter((k) => k.verdict === 'illegal');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title><style>
body { font-family: sans-serif; font-size: 13px; }
pre { background: #f4f4f4; padding: 6px; }
.tl { position: relative; margin: 10px 0 30px; border-top: 1px solid #ccc; }
.client { position: absolute; left: 0; width: 75px; font-size: 11px; line-height: ${rowPx - 4}px; }
.bars { position: absolute; left: 80px; top: 0; }
.op { position: absolute; height: ${rowPx - 4}px; font-size: 10px; line-height: ${rowPx - 4}px; overflow: hidden; white-space: nowrap;
  background: #cfe0f5; border: 1px solid #6f94c4; box-sizing: border-box; }
.op.lin { background: #d4efd0; border-color: #5c9a53; }
.op.stuck { background: #f7b0b0; border: 2px solid #c00; z-index: 2; }
.op.unknown { background-image: repeating-linear-gradient(45deg, transparent 0 6px, rgba(0,0,0,0.08) 6px 12px); }
</style></head><body>
<h1>${esc(title)}</h1>
<p>${esc(c.summary)}</p>
<h2>Problems</h2>
<pre>${esc(c.problems.join('\n'))}</pre>
<p>Green: in the longest linearization found (its order before the colon). Red: could not take effect next.
Striped: unknown outcome (error or timeout). Hover a bar for the operation.</p>
${keys.map(keyTimeline).join('\n')}
</body></html>
`;
}
