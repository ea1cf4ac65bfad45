// Structured JSON logs on stderr, one object per line, in the field style of etcd's zap logger
// ({"level","ts","caller"?, "msg", ...fields}). Below-level calls cost one comparison.
const LEVELS = { debug: 0, info: 1, warn: 2, error: 3, panic: 4, fatal: 5 } as const;
export type LogLevel = keyof typeof LEVELS;

export class Logger {
  #min: number;
  #base: Record<string, unknown>;
  constructor(level: LogLevel, base: Record<string, unknown> = {}) {
    this.#min = LEVELS[level];
    this.#base = base;
  }
  child(fields: Record<string, unknown>): Logger {
    const l = new Logger('debug', { ...this.#base, ...fields });
    l.#min = this.#min;
    return l;
  }
  debug(msg: string, fields?: Record<string, unknown>): void { this.#write('debug', msg, fields); }
  info(msg: string, fields?: Record<string, unknown>): void { this.#write('info', msg, fields); }
  warn(msg: string, fields?: Record<string, unknown>): void { this.#write('warn', msg, fields); }
  error(msg: string, fields?: Record<string, unknown>): void { this.#write('error', msg, fields); }
  /** Always written, whatever the level (src/main/fatal.ts exits right after it). stderr is synchronous
   * for files and pipes on Linux, so the line is out before the process ends. */
  fatal(msg: string, fields?: Record<string, unknown>): void { this.#write('fatal', msg, fields); }
  #write(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    if (LEVELS[level] < this.#min) return;
    const rec = { level, ts: new Date().toISOString(), msg, ...this.#base, ...fields };
    process.stderr.write(JSON.stringify(rec, (_k, v) => (typeof v === 'bigint' ? v.toString(16) : v)) + '\n');
  }
}
