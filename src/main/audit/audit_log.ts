// The audit log's output (--audit-log-path, docs/AUDIT.md): JSON lines appended to a file, rotated by
// size, or written to stdout. Lines are queued and written by one writer loop, one write per batch:
//  - batch mode: append() queues and returns; a write starts when auditFlushBytes are queued or
//    auditFlushIntervalMs after the first queued line. Queued plus in-flight bytes never pass
//    auditBufferBytesMax: a line that does not fit is dropped and counted (onDropped).
//  - blocking mode: appendAndWait() resolves once the write holding the line has returned (write(2),
//    not fsync). Lines queued while a write is in flight go out together in the next one. The queue
//    is bounded by the requests in flight: each line belongs to a request that waits for it.
// A failed write is counted as dropped lines and reported (onError); in blocking mode it rejects the
// waiting requests' promises.
// Invariants: at most one write (or rotation) runs at a time (#writing); #queuedBytes is the byte
// length of #queued; rotation happens only between writes, so a line is never split across files.
import * as fs from 'node:fs';
import { limits } from '../../shared/limits';

export type AuditMode = 'batch' | 'blocking';

export interface AuditLogOptions {
  /** A file path (appended to, created 0600), or '-' for stdout. */
  path: string;
  /** Rotate before a write would take the file past this many bytes (0: never rotate). */
  maxSizeBytes: number;
  /** Rotated files kept: path.1 (newest) .. path.N; 0 keeps none. */
  maxBackups: number;
  mode: AuditMode;
  /** Lines lost: dropped for lack of buffer space, or in a failed write. */
  onDropped: (lines: number) => void;
  onError: (e: Error) => void;
  /** Tests only: smaller bounds than limits'. */
  bufferBytesMax?: number;
  flushBytes?: number;
  flushIntervalMs?: number;
}

/** Where batches go. */
interface Output {
  write(buf: Buffer): Promise<void>;
  close(): Promise<void>;
}

type Waiter = (err: Error | null) => void;

export class AuditLog {
  readonly mode: AuditMode;
  readonly #o: AuditLogOptions;
  readonly #out: Output;
  readonly #bufferBytesMax: number;
  readonly #flushBytes: number;
  readonly #flushIntervalMs: number;
  #queued: string[] = [];
  #queuedBytes = 0;
  /** Blocking mode: one resolver per queued line, in the same order. */
  #waiters: Waiter[] = [];
  #inFlightBytes = 0;
  #writing = false;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  /** Resolves when the writer loop has nothing left (close() waits on it). */
  #idle: Promise<void> = Promise.resolve();

  private constructor(o: AuditLogOptions, out: Output) {
    this.mode = o.mode;
    this.#o = o;
    this.#out = out;
    this.#bufferBytesMax = o.bufferBytesMax ?? limits.auditBufferBytesMax;
    this.#flushBytes = o.flushBytes ?? limits.auditFlushBytes;
    this.#flushIntervalMs = o.flushIntervalMs ?? limits.auditFlushIntervalMs;
  }

  /** Opens the file (or stdout): a path that cannot be opened refuses the start. */
  static async open(o: AuditLogOptions): Promise<AuditLog> {
    const out = o.path === '-' ? new StdoutOutput() : await FileOutput.open(o.path, o.maxSizeBytes, o.maxBackups);
    return new AuditLog(o, out);
  }

  /** Lines dropped so far are reported through onDropped; this is what is queued, for tests. */
  get pendingBytes(): number {
    return this.#queuedBytes + this.#inFlightBytes;
  }

  /** Batch mode: queues a line (ending in '\n'), or drops and counts it when the buffer is full. */
  append(line: string): void {
    if (this.#closed) return this.#o.onDropped(1);
    const n = Buffer.byteLength(line);
    if (this.#queuedBytes + this.#inFlightBytes + n > this.#bufferBytesMax) return this.#o.onDropped(1);
    this.#queued.push(line);
    this.#queuedBytes += n;
    if (this.#writing) return; // the loop takes it after the write in flight
    if (this.#queuedBytes >= this.#flushBytes) this.#startWriter();
    else this.#timer ??= setTimeout(this.#onTimer, this.#flushIntervalMs);
  }

  /** Blocking mode: resolves once the line has been written; rejects if the write failed or the
   * buffer (the same bound as batch mode's) is full, so a stalled disk cannot grow it without end. */
  appendAndWait(line: string): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('etcd-ts: audit log closed'));
    const n = Buffer.byteLength(line);
    if (this.#queuedBytes + this.#inFlightBytes + n > this.#bufferBytesMax) {
      this.#o.onDropped(1);
      return Promise.reject(new Error('etcd-ts: audit log buffer full'));
    }
    return new Promise((resolve, reject) => {
      this.#queued.push(line);
      this.#queuedBytes += n;
      this.#waiters.push((err) => (err === null ? resolve() : reject(err)));
      if (!this.#writing) this.#startWriter();
    });
  }

  /** Writes what is queued and closes the file. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#queued.length > 0 && !this.#writing) this.#startWriter();
    await this.#idle;
    await this.#out.close();
  }

  readonly #onTimer = (): void => {
    this.#timer = null;
    if (!this.#writing && this.#queued.length > 0) this.#startWriter();
  };

  #startWriter(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    this.#writing = true;
    this.#idle = this.#writeLoop();
  }

  async #writeLoop(): Promise<void> {
    while (this.#queued.length > 0) {
      const lines = this.#queued;
      const waiters = this.#waiters;
      this.#inFlightBytes = this.#queuedBytes;
      this.#queued = [];
      this.#waiters = [];
      this.#queuedBytes = 0;
      let err: Error | null = null;
      try {
        await this.#out.write(Buffer.from(lines.join('')));
      } catch (e) {
        err = e instanceof Error ? e : new Error(String(e));
        this.#o.onDropped(lines.length);
        this.#o.onError(err);
      }
      this.#inFlightBytes = 0;
      for (const w of waiters) w(err);
      // Batch mode: between writes, wait for a full batch or the timer again, unless closing.
      if (this.mode === 'batch' && !this.#closed && this.#queuedBytes < this.#flushBytes) break;
    }
    this.#writing = false;
    if (this.#queued.length > 0) this.#timer ??= setTimeout(this.#onTimer, this.#flushIntervalMs);
  }
}

class StdoutOutput implements Output {
  write(buf: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      process.stdout.write(buf, (err) => (err ? reject(err) : resolve()));
    });
  }

  async close(): Promise<void> {}
}

/** A file rotated by size: path -> path.1 -> ... -> path.N, the oldest removed. */
export class FileOutput implements Output {
  readonly #path: string;
  readonly #maxSizeBytes: number;
  readonly #maxBackups: number;
  #fh: fs.promises.FileHandle;
  #size: number;

  private constructor(path: string, maxSizeBytes: number, maxBackups: number, fh: fs.promises.FileHandle, size: number) {
    this.#path = path;
    this.#maxSizeBytes = maxSizeBytes;
    this.#maxBackups = maxBackups;
    this.#fh = fh;
    this.#size = size;
  }

  static async open(path: string, maxSizeBytes: number, maxBackups: number): Promise<FileOutput> {
    const fh = await fs.promises.open(path, 'a', 0o600);
    const st = await fh.stat();
    return new FileOutput(path, maxSizeBytes, maxBackups, fh, st.size);
  }

  async write(buf: Buffer): Promise<void> {
    if (this.#maxSizeBytes > 0 && this.#size > 0 && this.#size + buf.length > this.#maxSizeBytes) await this.#rotate();
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await this.#fh.write(buf, off, buf.length - off);
      off += bytesWritten;
      this.#size += bytesWritten;
    }
  }

  /** Closes the file, shifts the backups up by one (dropping the one past maxBackups), starts anew. */
  async #rotate(): Promise<void> {
    await this.#fh.close();
    const p = this.#path;
    if (this.#maxBackups === 0) {
      await fs.promises.rm(p, { force: true });
    } else {
      await fs.promises.rm(`${p}.${this.#maxBackups}`, { force: true });
      for (let i = this.#maxBackups - 1; i >= 1; i--) await renameIfExists(`${p}.${i}`, `${p}.${i + 1}`);
      await fs.promises.rename(p, `${p}.1`);
    }
    this.#fh = await fs.promises.open(p, 'a', 0o600);
    this.#size = 0;
  }

  async close(): Promise<void> {
    await this.#fh.close();
  }
}

async function renameIfExists(from: string, to: string): Promise<void> {
  try {
    await fs.promises.rename(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
