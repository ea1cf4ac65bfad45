// Snapshot streaming on its own connection (so heartbeats on the message connection are never stuck
// behind gigabytes). After the handshake the sender writes
//
//   SNAP_META   u32 len + encodeMessages([MsgSnap]), u32 nFiles, (u16 len + UTF-8 name, u64 size)*nFiles
//   SNAP_CHUNK  u32 file index, u64 offset, bytes          (files in order, chunks in order; each
//                                                           frame's CRC-32C covers its chunk)
//   SNAP_END    (empty)
//
// and the receiver answers one SNAP_RESULT (u32 0, u32 gRPC code, body: UTF-8 error message) after its
// onSnapshot resolved or failed, or as soon as the stream is refused (too large, bad name, disk error).
// Only the regular files directly in the directory are sent (an LMDB copy is one or two files).
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as net from 'node:net';
import { Message } from '../raft/types';
import { PeerProtocolError, Reader, Writer, decodeMessages, encodeMessages } from './codec';
import { FRAME_HEADER_BYTES, Frame, FrameReader, FrameType, allocFrame, decodeResult, encodeResult, sealFrame } from './frame';
import type { PeerLimits } from './transport';

export interface SnapFile {
  name: string;
  size: number;
}

/** Regular files directly in dir, sorted by name. */
export async function listSnapshotFiles(dir: string): Promise<SnapFile[]> {
  const ents = await fsp.readdir(dir, { withFileTypes: true });
  const out: SnapFile[] = [];
  for (const e of ents) {
    if (!e.isFile()) continue;
    const st = await fsp.stat(path.join(dir, e.name));
    out.push({ name: e.name, size: st.size });
  }
  out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return out;
}

export function encodeSnapMeta(msg: Message, files: SnapFile[]): Buffer {
  const m = encodeMessages([msg]);
  const names = files.map((f) => Buffer.from(f.name, 'utf8'));
  let n = 4 + m.length + 4;
  for (const nm of names) n += 2 + nm.length + 8;
  const buf = allocFrame(FrameType.SnapMeta, n);
  const w = new Writer(buf);
  w.off = FRAME_HEADER_BYTES;
  w.bytes(m);
  w.u32(files.length);
  files.forEach((f, i) => {
    w.u16(names[i].length);
    w.raw(names[i]);
    w.num(f.size);
  });
  sealFrame(buf);
  return buf;
}

/** A file name a sender may ask us to create: one path component, no tricks. */
function validFileName(name: string): boolean {
  return name.length > 0 && name.length <= 255 && name !== '.' && name !== '..' &&
    !/[/\\\0]/.test(name) && path.basename(name) === name;
}

export function decodeSnapMeta(payload: Uint8Array, l: PeerLimits): { msg: Message; files: SnapFile[] } {
  const r = new Reader(payload);
  const msgs = decodeMessages(r.bytes());
  if (msgs.length !== 1 || msgs[0].snapshot === null) throw new PeerProtocolError('snapshot stream must carry exactly one message with a snapshot');
  const n = r.u32();
  if (n > l.peerSnapshotFilesMax) throw new PeerProtocolError(`snapshot has ${n} files, more than ${l.peerSnapshotFilesMax}`);
  const files: SnapFile[] = [];
  const seen = new Set<string>();
  let total = 0;
  for (let i = 0; i < n; i++) {
    const name = r.str();
    const size = r.num();
    if (!validFileName(name) || seen.has(name)) throw new PeerProtocolError(`bad snapshot file name ${JSON.stringify(name)}`);
    seen.add(name);
    total += size;
    files.push({ name, size });
  }
  if (total > l.peerSnapshotBytesMax) throw new PeerProtocolError(`snapshot of ${total} bytes exceeds ${l.peerSnapshotBytesMax}`);
  if (r.remaining !== 0) throw new PeerProtocolError('trailing bytes in snapshot metadata');
  return { msg: msgs[0], files };
}

/**
 * Writes `files` from `dir` to a handshaken snapshot connection, then waits for the result.
 * Resolves on success; rejects with `makeError(code, message)` when the receiver reports a failure,
 * or with an Error when the connection fails or times out. Always destroys the socket.
 */
export async function streamSnapshot(
  sock: net.Socket, reader: FrameReader, msg: Message, dir: string, files: SnapFile[], l: PeerLimits,
  makeError: (code: number, message: string) => Error,
): Promise<void> {
  let result: { code: number; message: string } | null = null;
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const notify = (): void => { const w = wake; wake = null; w?.(); };
  sock.on('data', (chunk: Buffer) => {
    reader.push(chunk);
    try {
      const f = reader.next();
      if (f === null) return;
      if (f.type !== FrameType.SnapResult) throw new PeerProtocolError(`unexpected frame type ${f.type} on snapshot connection`);
      const res = decodeResult(f);
      result = { code: res.code, message: Buffer.from(res.body).toString('utf8') };
    } catch (e) {
      failure = e as Error;
      sock.destroy();
    }
    notify();
  });
  sock.on('drain', notify);
  sock.on('close', () => {
    if (failure === null && result === null) failure = new Error('snapshot connection closed before the receiver answered');
    notify();
  });
  sock.setTimeout(l.peerSnapshotIdleTimeoutMs, () => {
    failure ??= new Error(`snapshot transfer idle for ${l.peerSnapshotIdleTimeoutMs} ms`);
    sock.destroy();
  });
  sock.resume();
  const stopped = (): boolean => result !== null || failure !== null;
  const waitEvent = (): Promise<void> => new Promise((res) => { wake = res; });
  const write = async (buf: Buffer): Promise<void> => {
    if (stopped()) return;
    if (!sock.write(buf)) while (sock.writableNeedDrain && !stopped()) await waitEvent();
  };
  try {
    await write(encodeSnapMeta(msg, files));
    for (let i = 0; i < files.length && !stopped(); i++) await streamFile(path.join(dir, files[i].name), i, files[i].size, l, write, stopped);
    await write(allocEnd());
    if (!stopped()) sock.setTimeout(l.peerSnapshotApplyTimeoutMs);
    while (!stopped()) await waitEvent();
  } finally {
    sock.destroy();
  }
  const res = result as { code: number; message: string } | null;
  if (res !== null) {
    if (res.code === 0) return;
    throw makeError(res.code, res.message);
  }
  throw failure ?? new Error('snapshot transfer failed');
}

function allocEnd(): Buffer {
  const b = allocFrame(FrameType.SnapEnd, 0);
  sealFrame(b);
  return b;
}

async function streamFile(
  file: string, index: number, size: number, l: PeerLimits, write: (b: Buffer) => Promise<void>, stopped: () => boolean,
): Promise<void> {
  const fh = await fsp.open(file, 'r');
  try {
    let off = 0;
    while (off < size && !stopped()) {
      const want = Math.min(l.peerSnapshotChunkBytes, size - off);
      const frame = allocFrame(FrameType.SnapChunk, 12 + want);
      const { bytesRead } = await fh.read(frame, FRAME_HEADER_BYTES + 12, want, off);
      if (bytesRead !== want) throw new Error(`snapshot file ${file} shrank while being sent (read ${off + bytesRead} of ${size} bytes)`);
      const w = new Writer(frame);
      w.off = FRAME_HEADER_BYTES;
      w.u32(index);
      w.num(off);
      sealFrame(frame);
      await write(frame);
      off += want;
    }
  } finally {
    await fh.close();
  }
}

/**
 * Receiving side of one snapshot stream: writes into a fresh temp dir, checks every file arrived
 * whole, then hands (message, dir) to onSnapshot. Frames are processed one at a time (the caller
 * pauses the socket while handle() runs, so disk speed is the backpressure).
 */
export class SnapshotReceiver {
  #l: PeerLimits;
  #parent: string;
  #dir: string | null = null;
  #msg: Message | null = null;
  #files: SnapFile[] = [];
  #fileIdx = 0;
  #fileOff = 0;
  #fh: fsp.FileHandle | null = null;
  #handedOff = false;
  /** The frame being handled; discard() waits for it so a late mkdtemp/open cannot leak a dir. */
  #busy: Promise<unknown> | null = null;
  #discarded = false;

  constructor(l: PeerLimits, parentDir: string | undefined) {
    this.#l = l;
    this.#parent = parentDir ?? os.tmpdir();
  }

  /** Handles one frame; returns the complete snapshot once SNAP_END has been verified. */
  handle(f: Frame): Promise<{ msg: Message; dir: string } | null> {
    if (this.#discarded) return Promise.reject(new Error('snapshot receiver discarded'));
    const p = this.#handle(f);
    this.#busy = p;
    return p;
  }

  async #handle(f: Frame): Promise<{ msg: Message; dir: string } | null> {
    switch (f.type) {
      case FrameType.SnapMeta: return this.#meta(f.payload);
      case FrameType.SnapChunk: return this.#chunk(f.payload);
      case FrameType.SnapEnd: return this.#end();
      default: throw new PeerProtocolError(`unexpected frame type ${f.type} on snapshot connection`);
    }
  }

  async #meta(payload: Uint8Array): Promise<null> {
    if (this.#msg !== null) throw new PeerProtocolError('duplicate snapshot metadata');
    const { msg, files } = decodeSnapMeta(payload, this.#l);
    this.#msg = msg;
    this.#files = files;
    await fsp.mkdir(this.#parent, { recursive: true });
    this.#dir = await fsp.mkdtemp(path.join(this.#parent, 'etcd-ts-snap-'));
    await this.#openNext();
    return null;
  }

  /** Opens files in order, creating empty ones on the way, until one still expects bytes. */
  async #openNext(): Promise<void> {
    while (this.#fileIdx < this.#files.length) {
      const f = this.#files[this.#fileIdx];
      const fh = await fsp.open(path.join(this.#dir as string, f.name), fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o600);
      if (f.size > 0) {
        this.#fh = fh;
        this.#fileOff = 0;
        return;
      }
      await fh.close();
      this.#fileIdx++;
    }
  }

  async #chunk(payload: Uint8Array): Promise<null> {
    if (this.#msg === null || this.#fh === null) throw new PeerProtocolError('snapshot chunk outside a file');
    const r = new Reader(payload);
    const idx = r.u32();
    const off = r.num();
    const data = payload.subarray(r.off);
    const f = this.#files[this.#fileIdx];
    if (idx !== this.#fileIdx || off !== this.#fileOff || data.length === 0 || off + data.length > f.size) {
      throw new PeerProtocolError(`snapshot chunk out of order: file ${idx} offset ${off} (+${data.length}), expected file ${this.#fileIdx} offset ${this.#fileOff}`);
    }
    let done = 0;
    while (done < data.length) done += (await this.#fh.write(data, done, data.length - done)).bytesWritten;
    this.#fileOff += data.length;
    if (this.#fileOff === f.size) {
      await this.#fh.close();
      this.#fh = null;
      this.#fileIdx++;
      await this.#openNext();
    }
    return null;
  }

  async #end(): Promise<{ msg: Message; dir: string }> {
    if (this.#msg === null || this.#dir === null) throw new PeerProtocolError('snapshot end before metadata');
    if (this.#fileIdx !== this.#files.length) {
      throw new PeerProtocolError(`snapshot ended early: ${this.#files.length - this.#fileIdx} files incomplete`);
    }
    this.#handedOff = true;
    return { msg: this.#msg, dir: this.#dir };
  }

  /** Removes the temp dir unless it was handed to onSnapshot. Safe to call more than once. */
  async discard(): Promise<void> {
    this.#discarded = true;
    await this.#busy?.catch(() => {});
    const fh = this.#fh;
    this.#fh = null;
    await fh?.close().catch(() => {});
    if (this.#dir !== null && !this.#handedOff) {
      const d = this.#dir;
      this.#dir = null;
      await fsp.rm(d, { recursive: true, force: true });
    }
  }
}

export function encodeSnapResult(code: number, message: string): Buffer {
  return encodeResult(FrameType.SnapResult, 0, code, Buffer.from(message, 'utf8'));
}
