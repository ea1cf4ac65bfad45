// Write-ahead log: Raft HardState and entries made durable with one fdatasync per batch (group
// commit), in segment files named like etcd's (`%016x-%016x.wal`, seq-firstIndex).
//
//   record:  0          4          8      9                        9+len
//            +----------+----------+------+--------------------------+
//            | len u32LE| crc u32LE| type | payload                  |
//            +----------+----------+------+--------------------------+
//            crc = CRC-32C(type + payload). Payloads (record.ts):
//            1 entry     term u64 | index u64 | entryType u8 | data
//            2 hardState term u64 | vote u64 | commit u64
//            3 snapshot  index u64 | term u64          (written by releaseTo)
//
//   segment: [hardState][snapshot]  header (when known), so replay works after older segments
//            [entry][entry]...[hardState][entry]...   are released; appended until > segmentBytes
//            [0 0 0 ...]                      zeros written ahead of the records (preallocation):
//                                             replay ends a segment at an all-zero remainder
//
// Write path: save() only queues. One loop (#run) drains the queue: it encodes as many queued
// records as fit in batchBytesMax into one reused buffer, issues one write and one fdatasync, then
// resolves the covered calls in call order. Calls made while that is in flight form the next batch.
// A save() bigger than a batch spans several rounds and resolves after its last one.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Entry, HardState } from '../raft/types';
import { limits } from '../../shared/limits';
import { assert } from '../../shared/errors';
import {
  HARD_STATE_RECORD_BYTES, RecordType, SNAPSHOT_RECORD_BYTES, encodeEntry, encodeHardState,
  encodeSnapshot, entryRecordBytes,
} from './record';
import { SegmentName, TMP_SUFFIX, listSegments, scanSegment, segmentName } from './segment';
import { LogReplay } from './replay';
import { WalCorruptError } from './errors';

export { WalCorruptError };

export interface WalOpenResult {
  wal: Wal;
  hardState: HardState | null;
  entries: Entry[];
  snapshotIndex: number;
  snapshotTerm: number;
  truncatedTail: boolean;
}

export interface WalOptions {
  segmentBytes?: number;
  batchBytesMax?: number;
  /** false skips fdatasync: benchmarks only, acknowledged writes are then NOT durable. */
  fsync?: boolean;
  /** Called with the seconds each durable (O_DSYNC) write took: the fsync latency /metrics reports. */
  onFsync?: (seconds: number) => void;
  /**
   * Fault injection for tests (ETCD_TS_WAL_SYNC_DELAY_MS, read by member.ts): each durable write reports
   * completion this many milliseconds late, as a slow disk would. 0 in production.
   */
  syncDelayMs?: number;
  /** Zeros written ahead of the records (limits.walPreallocBytes); 0 appends at the end of the file.
   * Only with fsync. */
  preallocBytes?: number;
  /**
   * etcd --max-wals: segments kept at most, counting the active one; 0 keeps every segment. Only
   * segments whose entries the snapshot marker covers are removed (oldest first), so more may stay
   * while the state machine has not caught up, as etcd's purge skips WAL files still locked.
   */
  maxSegments?: number;
}

export interface WalStats {
  fsyncs: number;
  fsyncSeconds: number;
  bytesWritten: number;
  /** Records written since open. */
  records: number;
  /** Records in the most recent write round (the group-commit batch size). */
  lastBatchRecords: number;
}

interface SaveOp {
  kind: 'save';
  hardState: HardState | null;
  entries: Entry[];
  /** Records already encoded: entries first, then the hardState (entries before the commit they name). */
  cursor: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

interface ReleaseOp {
  kind: 'release';
  index: number;
  term: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

type Op = SaveOp | ReleaseOp;

function recordCount(op: SaveOp): number {
  return op.entries.length + (op.hardState === null ? 0 : 1);
}

function recordBytesAt(op: SaveOp, i: number): number {
  return i < op.entries.length ? entryRecordBytes(op.entries[i]) : HARD_STATE_RECORD_BYTES;
}

async function writeFully(fh: fsp.FileHandle, buf: Uint8Array, len: number, position: number): Promise<void> {
  let done = 0;
  while (done < len) {
    const { bytesWritten } = await fh.write(buf, done, len - done, position + done);
    done += bytesWritten;
  }
}

/**
 * The segment being appended to is opened O_DSYNC when durability is on: each write returns only
 * once its data (and the metadata needed to read it back) is on disk, as write + fdatasync would,
 * in ONE thread-pool round trip instead of two.
 */
function openActive(file: string, fsync: boolean): Promise<fsp.FileHandle> {
  return fsp.open(file, fsync ? fs.constants.O_RDWR | fs.constants.O_DSYNC : 'r+');
}

/** Makes creates, renames and unlinks in dir durable. */
async function syncDir(dir: string): Promise<void> {
  const dh = await fsp.open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/**
 * Creates a segment atomically: header written and synced under a .tmp name, then renamed, so a
 * crash never leaves a segment without its header (which later replay may depend on).
 */
async function createSegment(dir: string, seg: SegmentName, header: Uint8Array, fsync: boolean): Promise<void> {
  const final = path.join(dir, seg.name);
  const tmp = final + TMP_SUFFIX;
  const fh = await fsp.open(tmp, 'w');
  try {
    await writeFully(fh, header, header.length, 0);
    if (fsync) await fh.datasync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, final);
  if (fsync) await syncDir(dir);
}

async function removeTempFiles(dir: string): Promise<void> {
  for (const name of await fsp.readdir(dir)) {
    if (name.endsWith('.wal' + TMP_SUFFIX)) await fsp.unlink(path.join(dir, name));
  }
}

/**
 * Replays every segment into replay; truncates a torn tail of the last one. Returns whether it did, and
 * where the last segment's records end (the next write's position: zeros may follow).
 */
async function replaySegments(dir: string, segs: SegmentName[], replay: LogReplay): Promise<{ truncated: boolean; lastEnd: number }> {
  let truncated = false;
  let lastEnd = 0;
  const lastFile = path.join(dir, segs[segs.length - 1].name);
  const lastBuf = await fsp.readFile(lastFile);
  for (let i = coveredPrefix(segs, lastSnapshotIn(lastBuf, lastFile)); i < segs.length; i++) {
    const file = path.join(dir, segs[i].name);
    const buf = i === segs.length - 1 ? lastBuf : await fsp.readFile(file);
    const res = scanSegment(buf, file, i === segs.length - 1, (rec, offset) => {
      if (rec.type === RecordType.Entry) replay.addEntry(rec.entry, file, offset);
      else if (rec.type === RecordType.HardState) replay.hardState = rec.hardState;
      else replay.addSnapshot(rec.index, rec.term);
    });
    if (res.torn) {
      const fh = await fsp.open(file, 'r+');
      try {
        await fh.truncate(res.validBytes);
        await fh.datasync();
      } finally {
        await fh.close();
      }
      truncated = true;
    }
    lastEnd = res.validBytes;
  }
  return { truncated, lastEnd };
}

/** The highest snapshot marker in the last segment (its header carries the one in force when it was cut). */
function lastSnapshotIn(buf: Buffer, file: string): number {
  let index = 0;
  scanSegment(buf, file, true, (rec) => {
    if (rec.type === RecordType.Snapshot && rec.index > index) index = rec.index;
  });
  return index;
}

/**
 * How many leading segments hold only entries at or below snapshotIndex (see Wal.#purge): replay would
 * drop them, and a later segment's header carries the hardState and marker they held, so they are not
 * read. Segments kept for --max-wals thus cost no start-up time, as etcd reads only the WAL files from
 * its snapshot on.
 */
function coveredPrefix(segs: SegmentName[], snapshotIndex: number): number {
  let k = 0;
  while (k < segs.length - 1 && segs[k + 1].firstIndex - 1 <= snapshotIndex) k++;
  return k;
}

/** A zero chunk for preallocation, shared (never written to). */
let zeros: Buffer | null = null;

function noFsyncObserver(): void { /* no metrics */ }

export class Wal {
  readonly #dir: string;
  readonly #segmentBytes: number;
  readonly #batchBytesMax: number;
  readonly #fsync: boolean;
  readonly #onFsync: (seconds: number) => void;
  readonly #syncDelayMs: number;
  /** Live segments by seq; the last is the one appended to. */
  readonly #segments: SegmentName[];
  #fh: fsp.FileHandle;
  /** End of the active segment's records = the position of the next write. */
  #fileBytes: number;
  /** The active segment's size: zeros from #fileBytes to here (preallocated). */
  #allocatedTo: number;
  /** The active segment opened without O_DSYNC, for writing zeros ahead (null until needed). */
  #allocFh: fsp.FileHandle | null;
  readonly #preallocBytes: number;
  readonly #maxSegments: number;
  /** Reused batch buffer (batchBytesMax); only touched by #run, never while its write is in flight. */
  readonly #buf: Buffer;
  readonly #dv: DataView;
  /** Pending calls in call order. Bounded by the driver (one save per Ready); asserted below. */
  #queue: Op[];
  #running: boolean;
  #closing: Promise<void> | null;
  /** Set on the first I/O error: after a failed fdatasync the file state is unknown, so stop. */
  #failure: Error | null;
  #idleWaiters: (() => void)[];
  // Last written state, for segment headers and segment names.
  #hardState: HardState | null;
  #lastIndex: number;
  #snapshotIndex: number;
  #snapshotTerm: number;
  // Stats.
  #fsyncs: number;
  #fsyncSeconds: number;
  #bytesWritten: number;
  #records: number;
  #lastBatchRecords: number;

  private constructor(dir: string, opts: Required<WalOptions>, segments: SegmentName[], fh: fsp.FileHandle,
    fileBytes: number, fileSize: number, replay: LogReplay, lastIndex: number) {
    this.#dir = dir;
    this.#segmentBytes = opts.segmentBytes;
    this.#batchBytesMax = opts.batchBytesMax;
    this.#fsync = opts.fsync;
    this.#onFsync = opts.onFsync;
    this.#syncDelayMs = opts.syncDelayMs;
    this.#segments = segments;
    this.#fh = fh;
    this.#fileBytes = fileBytes;
    this.#allocatedTo = fileSize;
    this.#allocFh = null;
    this.#preallocBytes = opts.fsync ? opts.preallocBytes : 0;
    this.#maxSegments = opts.maxSegments;
    this.#buf = Buffer.allocUnsafeSlow(opts.batchBytesMax);
    this.#dv = new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.byteLength);
    this.#queue = [];
    this.#running = false;
    this.#closing = null;
    this.#failure = null;
    this.#idleWaiters = [];
    this.#hardState = replay.hardState;
    this.#lastIndex = lastIndex;
    this.#snapshotIndex = replay.snapshotIndex;
    this.#snapshotTerm = replay.snapshotTerm;
    this.#fsyncs = 0;
    this.#fsyncSeconds = 0;
    this.#bytesWritten = 0;
    this.#records = 0;
    this.#lastBatchRecords = 0;
  }

  static async open(dir: string, opts: WalOptions = {}): Promise<WalOpenResult> {
    const o: Required<WalOptions> = {
      segmentBytes: opts.segmentBytes ?? limits.walSegmentBytes,
      batchBytesMax: opts.batchBytesMax ?? limits.walBatchBytesMax,
      fsync: opts.fsync ?? true,
      onFsync: opts.onFsync ?? noFsyncObserver,
      syncDelayMs: opts.syncDelayMs ?? 0,
      preallocBytes: opts.preallocBytes ?? limits.walPreallocBytes,
      maxSegments: opts.maxSegments ?? limits.walSegmentsMax,
    };
    // A batch must hold at least the fixed-size records; bigger entries go alone (oversized path).
    assert(o.batchBytesMax >= HARD_STATE_RECORD_BYTES + SNAPSHOT_RECORD_BYTES, 'wal: batchBytesMax too small');
    assert(o.segmentBytes > 0, 'wal: segmentBytes');
    assert(Number.isSafeInteger(o.maxSegments) && o.maxSegments >= 0, 'wal: maxSegments');
    await fsp.mkdir(dir, { recursive: true });
    await removeTempFiles(dir);
    const segments = await listSegments(dir);
    const replay = new LogReplay();
    let truncatedTail = false;
    let lastEnd = 0;
    if (segments.length === 0) {
      const first = segmentName(0, 1);
      await createSegment(dir, first, new Uint8Array(0), o.fsync);
      segments.push(first);
    } else {
      ({ truncated: truncatedTail, lastEnd } = await replaySegments(dir, segments, replay));
    }
    const entries = replay.finish();
    const lastIndex = entries.length > 0 ? entries[entries.length - 1].index : replay.snapshotIndex;
    const fh = await openActive(path.join(dir, segments[segments.length - 1].name), o.fsync);
    const { size } = await fh.stat();
    const wal = new Wal(dir, o, segments, fh, lastEnd, size, replay, lastIndex);
    // A restart with a smaller --max-wals trims what an earlier run kept.
    await wal.#purge();
    return {
      wal, hardState: replay.hardState, entries, snapshotIndex: replay.snapshotIndex,
      snapshotTerm: replay.snapshotTerm, truncatedTail,
    };
  }

  /**
   * Appends hardState (if non-null) and entries; resolves once the fdatasync covering them is done.
   * Group commit: calls made while a write+fdatasync is in flight share the next one. Calls resolve
   * in call order. The caller must not mutate `entries` or their data until the promise settles.
   */
  save(hardState: HardState | null, entries: Entry[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#enqueue({ kind: 'save', hardState, entries, cursor: 0, resolve, reject });
    });
  }

  /**
   * Records that state up to (index, term) is durable elsewhere (the state machine); segments whose
   * entries are all <= index are deleted. To install a snapshot beyond the log, call this BEFORE
   * saving the entries that follow the snapshot, or replay sees an unexplained index gap.
   */
  releaseTo(index: number, term: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#enqueue({ kind: 'release', index, term, resolve, reject });
    });
  }

  stats(): WalStats {
    return {
      fsyncs: this.#fsyncs, fsyncSeconds: this.#fsyncSeconds, bytesWritten: this.#bytesWritten,
      records: this.#records, lastBatchRecords: this.#lastBatchRecords,
    };
  }

  /** Waits for queued calls to finish, then closes the active segment. Later calls reject. */
  close(): Promise<void> {
    if (this.#closing === null) this.#closing = this.#closeNow();
    return this.#closing;
  }

  async #closeNow(): Promise<void> {
    if (this.#running) await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    await this.#allocFh?.close();
    await this.#fh.close();
  }

  #enqueue(op: Op): void {
    if (this.#failure !== null) return op.reject(this.#failure);
    if (this.#closing !== null) return op.reject(new Error('wal: closed'));
    assert(this.#queue.length < limits.pendingProposalsMax, 'wal: too many pending save() calls');
    this.#queue.push(op);
    if (!this.#running) {
      this.#running = true;
      // Start after the current synchronous code so calls made in the same tick share a batch;
      // a microtask adds no I/O latency.
      queueMicrotask(() => void this.#run());
    }
  }

  async #run(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const head = this.#queue[0];
        if (head.kind === 'release') {
          await this.#release(head);
          this.#queue.shift();
          head.resolve();
        } else {
          await this.#writeBatch();
        }
        if (this.#fileBytes > this.#segmentBytes) await this.#cut();
      }
    } catch (err) {
      this.#fail(err instanceof Error ? err : new Error(String(err)));
    }
    this.#running = false;
    for (const w of this.#idleWaiters.splice(0)) w();
  }

  #fail(err: Error): void {
    this.#failure = err;
    for (const op of this.#queue.splice(0)) op.reject(err);
  }

  /** One round: encode what fits, one write, one fdatasync, resolve the completed calls. */
  async #writeBatch(): Promise<void> {
    const { buf, bytes, opsDone, records } = this.#fillBatch();
    if (bytes > 0) {
      await this.#durableWrite(buf, bytes);
      this.#bytesWritten += bytes;
      this.#records += records;
      this.#lastBatchRecords = records;
    }
    for (const op of this.#queue.splice(0, opsDone)) op.resolve();
  }

  /**
   * Encodes queued save records from the head into the batch buffer until the next record would
   * exceed batchBytesMax or a release op is reached. A lone record larger than a batch gets its own
   * buffer. opsDone counts head ops whose every record is now encoded.
   */
  #fillBatch(): { buf: Buffer; bytes: number; opsDone: number; records: number } {
    const max = this.#batchBytesMax;
    let off = 0;
    let opsDone = 0;
    let records = 0;
    for (const op of this.#queue) {
      if (op.kind !== 'save') break;
      const n = recordCount(op);
      while (op.cursor < n) {
        const size = recordBytesAt(op, op.cursor);
        if (off + size > max) {
          if (off > 0) return { buf: this.#buf, bytes: off, opsDone, records };
          const big = Buffer.allocUnsafe(size);
          this.#encodeRecord(big, new DataView(big.buffer, big.byteOffset, size), 0, op);
          return { buf: big, bytes: size, opsDone: opsDone + (op.cursor === n ? 1 : 0), records: 1 };
        }
        off = this.#encodeRecord(this.#buf, this.#dv, off, op);
        records++;
      }
      opsDone++;
    }
    return { buf: this.#buf, bytes: off, opsDone, records };
  }

  /** Encodes op's record at op.cursor, advances the cursor, tracks the last written state. */
  #encodeRecord(buf: Buffer, dv: DataView, off: number, op: SaveOp): number {
    const i = op.cursor++;
    if (i < op.entries.length) {
      const e = op.entries[i];
      // An entry at index i ends the log at i (Raft overwrite truncates what follows).
      this.#lastIndex = e.index;
      return encodeEntry(buf, dv, off, e);
    }
    const hs = op.hardState;
    assert(hs !== null, 'wal: record cursor past the end');
    this.#hardState = { term: hs.term, vote: hs.vote, commit: hs.commit };
    return encodeHardState(buf, dv, off, hs);
  }

  /** Writes at the end of the active segment's records (into preallocated zeros when fsync is on);
   * durable on return when fsync is on (O_DSYNC). */
  async #durableWrite(buf: Buffer, bytes: number): Promise<void> {
    if (this.#fileBytes + bytes > this.#allocatedTo && this.#preallocBytes > 0) await this.#preallocate(this.#fileBytes + bytes);
    const t0 = performance.now();
    await writeFully(this.#fh, buf, bytes, this.#fileBytes);
    this.#fileBytes += bytes;
    if (this.#syncDelayMs > 0) await new Promise((r) => setTimeout(r, this.#syncDelayMs));
    if (!this.#fsync) return;
    const seconds = (performance.now() - t0) / 1000;
    this.#fsyncs++;
    this.#fsyncSeconds += seconds;
    this.#onFsync(seconds);
  }

  /**
   * Writes zeros from the segment's current end to preallocBytes past `end`, through a handle without
   * O_DSYNC (page cache only: the first durable write into them commits their allocation with it).
   * Appending to the end of the file made every durable write also change the file's size, which costs
   * an ext4 journal commit per write; it also waited for the apply worker's LMDB writes that the commit
   * carried along. Never touches bytes below #allocatedTo (records live below #fileBytes <= it).
   */
  async #preallocate(end: number): Promise<void> {
    const active = this.#segments[this.#segments.length - 1];
    this.#allocFh ??= await fsp.open(path.join(this.#dir, active.name), 'r+');
    const z = (zeros ??= Buffer.alloc(limits.walPreallocBytes));
    const to = end + this.#preallocBytes;
    for (let at = this.#allocatedTo; at < to; at += z.length) {
      await writeFully(this.#allocFh, z, Math.min(z.length, to - at), at);
    }
    this.#allocatedTo = to;
  }

  /** Durable snapshot marker first, then unlink: a crash in between leaves extra segments, not gaps. */
  async #release(op: ReleaseOp): Promise<void> {
    if (op.index <= this.#snapshotIndex) return;
    const bytes = encodeSnapshot(this.#buf, this.#dv, 0, op.index, op.term);
    await this.#durableWrite(this.#buf, bytes);
    this.#bytesWritten += bytes;
    this.#records++;
    this.#snapshotIndex = op.index;
    this.#snapshotTerm = op.term;
    if (op.index > this.#lastIndex) this.#lastIndex = op.index;
    await this.#purge();
  }

  /**
   * Removes the oldest segments while more than maxSegments remain (etcd's purge of --max-wals), each
   * only if the snapshot marker covers it: segment k holds no live entry above segments[k+1].firstIndex
   * - 1 (that was lastIndex when k+1 was cut; later overwrites only lower it). Never the last segment.
   * Replay skips covered segments (coveredPrefix), so keeping them costs disk, not start-up time.
   */
  async #purge(): Promise<void> {
    if (this.#maxSegments === 0) return;
    const segs = this.#segments;
    let k = 0;
    while (segs.length - k > this.#maxSegments && k < segs.length - 1 && segs[k + 1].firstIndex - 1 <= this.#snapshotIndex) k++;
    if (k === 0) return;
    for (const seg of segs.splice(0, k)) await fsp.unlink(path.join(this.#dir, seg.name));
    if (this.#fsync) await syncDir(this.#dir);
  }

  /** Starts the next segment with the current hardState and snapshot marker as its header. */
  async #cut(): Promise<void> {
    const last = this.#segments[this.#segments.length - 1];
    const seg = segmentName(last.seq + 1, this.#lastIndex + 1);
    const header = Buffer.allocUnsafe(HARD_STATE_RECORD_BYTES + SNAPSHOT_RECORD_BYTES);
    const dv = new DataView(header.buffer, header.byteOffset, header.byteLength);
    let off = 0;
    if (this.#hardState !== null) off = encodeHardState(header, dv, off, this.#hardState);
    if (this.#snapshotIndex > 0) off = encodeSnapshot(header, dv, off, this.#snapshotIndex, this.#snapshotTerm);
    await createSegment(this.#dir, seg, header.subarray(0, off), this.#fsync);
    if (this.#fsync) this.#fsyncs += 2;
    if (this.#allocFh !== null) {
      // The old segment's unused zeros go (replay would skip them anyway: not synced, a crash may keep them).
      await this.#allocFh.truncate(this.#fileBytes);
      await this.#allocFh.close();
      this.#allocFh = null;
    }
    await this.#fh.close();
    this.#fh = await openActive(path.join(this.#dir, seg.name), this.#fsync);
    this.#fileBytes = off;
    this.#allocatedTo = off;
    this.#bytesWritten += off;
    this.#segments.push(seg);
    await this.#purge();
  }
}
