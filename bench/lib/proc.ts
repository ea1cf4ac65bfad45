// Process readings from Linux /proc, shared by the benchmarks.
import * as fs from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on Linux). */
export const clockTicks = 100;

/** utime + stime of a process (all its threads), in microseconds; null where /proc is unavailable. */
export function procCpuUs(pid: number): number | null {
  try {
    return statCpuUs(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/** utime + stime from the text of a /proc/.../stat file, in microseconds. */
function statCpuUs(stat: string): number {
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
  return ((Number(f[11]) + Number(f[12])) / clockTicks) * 1e6;
}

/** Resident set size of a process in KiB (VmRSS), or NaN. */
export function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** utime + stime of each thread of a process, in microseconds, keyed "tid name" (empty where /proc is unavailable). */
export function threadCpuUs(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      out.set(`${tid} ${stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))}`, statCpuUs(stat));
    } catch {
      // the thread ended
    }
  }
  return out;
}

/** Per-thread CPU between two threadCpuUs readings, as "name tid: cores" for threads above minCores, busiest first. */
export function threadCoresText(before: Map<string, number>, after: Map<string, number>, seconds: number, minCores = 0.02): string {
  return [...after].map(([k, us]) => [k, (us - (before.get(k) ?? 0)) / 1e6 / seconds] as const)
    .filter(([, c]) => c >= minCores).sort((x, y) => y[1] - x[1])
    .map(([k, c]) => `${k.split(' ').slice(1).join(' ')} ${k.split(' ')[0]}: ${c.toFixed(2)}`).join(', ');
}
