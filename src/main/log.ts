// Structured JSON logs, one object per line, in the field style of etcd's zap logger
// ({"level","ts","caller"?, "msg", ...fields}), on stderr or where --log-outputs says. Below-level calls
// cost one comparison.
import * as fs from 'node:fs';
import { StartupError } from './startup_error';

const LEVELS = { debug: 0, info: 1, warn: 2, error: 3, panic: 4, fatal: 5 } as const;
export type LogLevel = keyof typeof LEVELS;

/** Writes one line. Synchronous: a fatal line is out before the process exits. */
export type LogSink = (line: string) => void;

const stderrSink: LogSink = (line) => { process.stderr.write(line); };

/**
 * --log-outputs: 'stderr', 'stdout' or file paths, opened for appending now (a path that cannot be
 * opened stops the start, naming it). stderr and stdout are synchronous for files and pipes on Linux;
 * files are written with writeSync.
 */
export function openLogOutputs(outputs: string[]): LogSink {
  const sinks = outputs.map((o): LogSink => {
    if (o === 'stderr') return stderrSink;
    if (o === 'stdout') return (line) => { process.stdout.write(line); };
    let fd: number;
    try {
      fd = fs.openSync(o, 'a', 0o600);
    } catch (e) {
      throw new StartupError(`--log-outputs ${o}: ${e instanceof Error ? e.message : String(e)}`);
    }
    return (line) => { fs.writeSync(fd, line); };
  });
  return sinks.length === 1 ? sinks[0] : (line) => { for (const s of sinks) s(line); };
}

export class Logger {
  #min: number;
  #base: Record<string, unknown>;
  readonly #sink: LogSink;
  constructor(level: LogLevel, base: Record<string, unknown> = {}, sink: LogSink = stderrSink) {
    this.#min = LEVELS[level];
    this.#base = base;
    this.#sink = sink;
  }
  child(fields: Record<string, unknown>): Logger {
    const l = new Logger('debug', { ...this.#base, ...fields }, this.#sink);
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
    this.#sink(JSON.stringify(rec, (_k, v) => (typeof v === 'bigint' ? v.toString(16) : v)) + '\n');
  }
}
