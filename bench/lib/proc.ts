// Process readings from Linux /proc, shared by the benchmarks.
import * as fs from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on Linux). */
export const clockTicks = 100;

/** utime + stime of a process (all its threads), in microseconds; null where /proc is unavailable. */
export function procCpuUs(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
    return ((Number(f[11]) + Number(f[12])) / clockTicks) * 1e6;
  } catch {
    return null;
  }
}

/** Resident set size of a process in KiB (VmRSS), or NaN. */
export function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}
