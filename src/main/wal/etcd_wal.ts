// A reader of etcd 3.4's WAL (etcd's wal/ package; not our own format, which is wal.ts), for importing
// an etcd data dir. Read only: the files are never opened for writing.
//
// Files `%016x-%016x.wal` (sequence, first index), read in sequence order. Each is a run of frames:
//
//   +-----------------------------+-----------------------------+---------------+
//   | length field u64 LE         | walpb.Record (protobuf)     | 0..7 pad bytes|
//   +-----------------------------+-----------------------------+---------------+
//   length field: low 56 bits the record's bytes; when the top bit is set, the top byte's low 3 bits
//   are the pad bytes that align the next frame to 8. A zero length field ends the file (etcd
//   preallocates files with zeros).
//
//   walpb.Record: type int64 = 1, crc uint32 = 2, data bytes = 3. crc is CRC-32C chained over the data
//   of every record in the log (crc_n = crc32c(data_n, crc_{n-1})); a crcType record (each file starts
//   with one) carries the chain's value so far and restarts it there.
//   types: 1 metadata (etcdserverpb.Metadata: NodeID = 1, ClusterID = 2), 2 entry (raftpb.Entry: Type = 1,
//   Term = 2, Index = 3, Data = 4), 3 state (raftpb.HardState: term = 1, vote = 2, commit = 3),
//   4 crc, 5 snapshot (walpb.Snapshot: index = 1, term = 2).
//
// Entries follow Raft's rules as etcd's ReadAll does: an entry at an index already in the log replaces
// it and everything after; a snapshot record drops the entries at or below it. Damage in the last
// file's tail that looks like a torn write (a zeroed sector inside the frame: etcd's isTornEntry) ends
// the log there, as etcd's repair would; any other damage is WalCorruptError.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Reader } from 'protobufjs/minimal';
import { crc32c } from '../../shared/crc32c';
import { Entry, EntryType, HardState } from '../raft/types';
import { WalCorruptError } from './errors';
import { LogReplay } from './replay';

export const enum EtcdRecordType {
  Metadata = 1,
  Entry = 2,
  State = 3,
  Crc = 4,
  Snapshot = 5,
}

/** etcd's WAL file name (wal/util.go walName). */
const NAME_RE = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;
/** etcd's isTornEntry looks at 512-byte sectors (minSectorSize). */
const SECTOR_BYTES = 512;
/** A record longer than this is damage (etcd 3.4 has no explicit bound; its files are 64 MiB). */
const RECORD_BYTES_MAX = 512 * 1024 * 1024;

/** An entry as etcd wrote it; data is etcd's payload (an InternalRaftRequest or a raftpb.ConfChange). */
export interface EtcdEntry extends Entry {
  /** 2 is etcd's EntryConfChangeV2, which etcd 3.4 never writes; the importer refuses it. */
  etcdType: number;
}

export interface EtcdWal {
  nodeId: bigint;
  clusterId: bigint;
  hardState: HardState | null;
  /** The last snapshot record (0, 0 for none): the log holds the entries after it. */
  snapshotIndex: number;
  snapshotTerm: number;
  /** Entries after the snapshot, contiguous, in index order. */
  entries: EtcdEntry[];
  /** Every ConfChange entry seen, including those at or below the snapshot (membership when the
   * database holds none: what `etcdctl snapshot restore` writes), by index. */
  confChanges: EtcdEntry[];
  files: number;
  records: number;
  /** A torn write at the end was left out. */
  tornTail: boolean;
}

/** etcd's WAL files in dir, in sequence order; none means there is no etcd WAL. */
export function listEtcdWalFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const names = fs.readdirSync(dir).filter((n) => NAME_RE.test(n));
  names.sort();
  for (let i = 1; i < names.length; i++) {
    const prev = parseInt(names[i - 1].slice(0, 16), 16);
    const seq = parseInt(names[i].slice(0, 16), 16);
    if (seq !== prev + 1) throw new WalCorruptError(path.join(dir, names[i]), 0, `etcd WAL file with sequence ${prev + 1} is missing`);
  }
  return names;
}

/** Reads every etcd WAL file in dir. */
export function readEtcdWal(dir: string): EtcdWal {
  const names = listEtcdWalFiles(dir);
  if (names.length === 0) throw new WalCorruptError(dir, 0, 'no etcd WAL files');
  const st = new ReadState();
  for (let i = 0; i < names.length; i++) {
    const file = path.join(dir, names[i]);
    const buf = fs.readFileSync(file);
    if (readFile(st, buf, file, i === names.length - 1)) {
      st.out.tornTail = true;
      break;
    }
  }
  if (st.metadataSeen === false) throw new WalCorruptError(dir, 0, 'no metadata record');
  const out = st.out;
  out.entries = st.replay.finish() as EtcdEntry[];
  out.hardState = st.replay.hardState;
  out.snapshotIndex = st.replay.snapshotIndex;
  out.snapshotTerm = st.replay.snapshotTerm;
  out.confChanges = [...st.confChanges.values()].sort((a, b) => a.index - b.index);
  out.files = names.length;
  return out;
}

class ReadState {
  crc = 0;
  metadataSeen = false;
  replay = new LogReplay();
  confChanges = new Map<number, EtcdEntry>();
  out: EtcdWal = {
    nodeId: 0n,
    clusterId: 0n,
    hardState: null,
    snapshotIndex: 0,
    snapshotTerm: 0,
    entries: [],
    confChanges: [],
    files: 0,
    records: 0,
    tornTail: false,
  };
}

/** Reads one file's frames; true when it ended in a torn write (only the last file may). */
function readFile(st: ReadState, buf: Buffer, file: string, isLast: boolean): boolean {
  let off = 0;
  while (off + 8 <= buf.length) {
    const lenField = buf.readBigUInt64LE(off);
    if (lenField === 0n) return false;
    const recBytes = Number(lenField & 0x00ff_ffff_ffff_ffffn);
    const top = Number(lenField >> 56n);
    const pad = (top & 0x80) !== 0 ? top & 0x7 : 0;
    const end = off + 8 + recBytes;
    const damage = (what: string): boolean => {
      if (isLast && tornAt(buf, off + 8, end)) return true;
      throw new WalCorruptError(file, off, what);
    };
    if (recBytes > RECORD_BYTES_MAX || end + pad > buf.length) return damage('frame runs past the end of the file');
    let rec: { type: number; crc: number; data: Buffer };
    try {
      rec = decodeRecord(buf.subarray(off + 8, end));
    } catch (e) {
      return damage(`undecodable record: ${(e as Error).message}`);
    }
    if (rec.type === EtcdRecordType.Crc) {
      if (st.crc !== 0 && rec.crc !== st.crc) return damage('crc record does not continue the chain');
      st.crc = rec.crc;
    } else {
      const crc = crc32c(rec.data, 0, rec.data.length, st.crc);
      if (crc !== rec.crc) return damage('crc mismatch');
      st.crc = crc;
      applyRecord(st, rec.type, rec.data, file, off);
    }
    st.out.records++;
    off = end + pad;
  }
  return false;
}

/** etcd's isTornEntry: the record's bytes [start, end) split at sector boundaries; a torn write leaves
 * one of the pieces all zeros. A frame running past the end of the file is torn too. */
function tornAt(buf: Buffer, start: number, end: number): boolean {
  const last = Math.min(end, buf.length);
  for (let s = start - (start % SECTOR_BYTES); s < last; s += SECTOR_BYTES) {
    const a = Math.max(s, start);
    const b = Math.min(s + SECTOR_BYTES, last);
    let zero = true;
    for (let i = a; i < b && zero; i++) zero = buf[i] === 0;
    if (zero && b > a) return true;
  }
  return end > buf.length;
}

function applyRecord(st: ReadState, type: number, data: Buffer, file: string, off: number): void {
  switch (type) {
    case EtcdRecordType.Metadata: {
      const m = decodeMetadata(data);
      if (st.metadataSeen && (m.nodeId !== st.out.nodeId || m.clusterId !== st.out.clusterId))
        throw new WalCorruptError(file, off, "metadata differs from the first file's");
      st.metadataSeen = true;
      st.out.nodeId = m.nodeId;
      st.out.clusterId = m.clusterId;
      return;
    }
    case EtcdRecordType.Entry: {
      const e = decodeEntry(data);
      if (e.etcdType === EntryType.ConfChange) st.confChanges.set(e.index, e);
      st.replay.addEntry(e, file, off);
      return;
    }
    case EtcdRecordType.State: {
      const hs = decodeHardState(data);
      // etcd skips an empty HardState (raft.IsEmptyHardState) when saving; keep the last real one.
      if (hs.term !== 0 || hs.commit !== 0 || hs.vote !== 0n) st.replay.hardState = hs;
      return;
    }
    case EtcdRecordType.Snapshot: {
      const s = decodeWalSnapshot(data);
      st.replay.addSnapshot(s.index, s.term);
      return;
    }
    default:
      throw new WalCorruptError(file, off, `unknown record type ${type}`);
  }
}

/** A protobuf uint64 as a safe integer (indexes and terms); larger is damage. */
function safe(v: { toNumber(): number; high: number }): number {
  if (v.high >>> 0 >= 0x200000) throw new Error('uint64 field beyond 2^53');
  return v.toNumber();
}

function u64(v: { low: number; high: number }): bigint {
  return (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
}

type Long64 = { low: number; high: number; toNumber(): number };

/** Walks the fields of a protobuf message: onField returns true when it consumed the field. */
function fields(buf: Uint8Array, onField: (r: Reader, field: number, wire: number) => boolean): void {
  const r = Reader.create(buf);
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (!onField(r, field, wire)) r.skipType(wire);
  }
}

function decodeRecord(buf: Uint8Array): { type: number; crc: number; data: Buffer } {
  let type = 0;
  let crc = 0;
  let data: Buffer = Buffer.alloc(0);
  fields(buf, (r, f, w) => {
    if (f === 1 && w === 0) type = (r.int64() as unknown as Long64).toNumber();
    else if (f === 2 && w === 0) crc = r.uint32() >>> 0;
    else if (f === 3 && w === 2) data = Buffer.from(r.bytes());
    else return false;
    return true;
  });
  return { type, crc, data };
}

function decodeMetadata(buf: Uint8Array): { nodeId: bigint; clusterId: bigint } {
  let nodeId = 0n;
  let clusterId = 0n;
  fields(buf, (r, f, w) => {
    if (f === 1 && w === 0) nodeId = u64(r.uint64() as unknown as Long64);
    else if (f === 2 && w === 0) clusterId = u64(r.uint64() as unknown as Long64);
    else return false;
    return true;
  });
  return { nodeId, clusterId };
}

export function decodeEntry(buf: Uint8Array): EtcdEntry {
  let etcdType = 0;
  let term = 0;
  let index = 0;
  let data: Uint8Array = new Uint8Array(0);
  fields(buf, (r, f, w) => {
    if (f === 1 && w === 0) etcdType = r.int32();
    else if (f === 2 && w === 0) term = safe(r.uint64() as unknown as Long64);
    else if (f === 3 && w === 0) index = safe(r.uint64() as unknown as Long64);
    else if (f === 4 && w === 2) data = r.bytes();
    else return false;
    return true;
  });
  const type = etcdType === 1 ? EntryType.ConfChange : EntryType.Normal;
  return { term, index, type, data, etcdType };
}

function decodeHardState(buf: Uint8Array): HardState {
  let term = 0;
  let vote = 0n;
  let commit = 0;
  fields(buf, (r, f, w) => {
    if (f === 1 && w === 0) term = safe(r.uint64() as unknown as Long64);
    else if (f === 2 && w === 0) vote = u64(r.uint64() as unknown as Long64);
    else if (f === 3 && w === 0) commit = safe(r.uint64() as unknown as Long64);
    else return false;
    return true;
  });
  return { term, vote, commit };
}

function decodeWalSnapshot(buf: Uint8Array): { index: number; term: number } {
  let index = 0;
  let term = 0;
  fields(buf, (r, f, w) => {
    if (f === 1 && w === 0) index = safe(r.uint64() as unknown as Long64);
    else if (f === 2 && w === 0) term = safe(r.uint64() as unknown as Long64);
    else return false;
    return true;
  });
  return { index, term };
}

/** etcd's raftpb.ConfChange: type (0 AddNode, 1 RemoveNode, 2 UpdateNode, 3 AddLearnerNode), node ID, context. */
export interface EtcdConfChange {
  type: number;
  nodeId: bigint;
  context: Uint8Array;
}

export function decodeEtcdConfChange(buf: Uint8Array): EtcdConfChange {
  let type = 0;
  let nodeId = 0n;
  let context: Uint8Array = new Uint8Array(0);
  fields(buf, (r, f, w) => {
    if (f === 2 && w === 0) type = r.int32();
    else if (f === 3 && w === 0) nodeId = u64(r.uint64() as unknown as Long64);
    else if (f === 4 && w === 2) context = r.bytes();
    else return false;
    return true;
  });
  return { type, nodeId, context };
}

/**
 * The sub-messages of an etcdserverpb.InternalRaftRequest: which request it carries (its field number)
 * and that request's own bytes, the header (RequestHeader: ID = 1, username = 2, auth_revision = 3) and
 * the ID. Only the field number is interpreted here; the caller maps it to a request.
 */
export interface EtcdRaftRequest {
  id: bigint;
  field: number;
  body: Uint8Array;
  username: string;
  authRevision: number;
  /** etcd 3.4 gives every InternalRaftRequest a header; an entry without one is a bare v2 Request. */
  hasHeader: boolean;
}

export function decodeInternalRaftRequest(buf: Uint8Array): EtcdRaftRequest {
  const out: EtcdRaftRequest = { id: 0n, field: 0, body: new Uint8Array(0), username: '', authRevision: 0, hasHeader: false };
  fields(buf, (r, f, w) => {
    if (f === 1 && w === 0) out.id = u64(r.uint64() as unknown as Long64);
    else if (f === 100 && w === 2) {
      out.hasHeader = true;
      fields(r.bytes(), (h, hf, hw) => {
        if (hf === 2 && hw === 2) out.username = h.string();
        else if (hf === 3 && hw === 0) out.authRevision = safe(h.uint64() as unknown as Long64);
        else return false;
        return true;
      });
    } else if (w === 2 && out.field === 0) {
      out.field = f;
      out.body = r.bytes();
    } else return false;
    return true;
  });
  return out;
}

/** An etcd v2 store request (etcdserverpb.Request): Method = 2, Path = 3, Val = 4. etcd 3.4 publishes
 * member attributes and the cluster version through these. */
export function decodeV2Request(buf: Uint8Array): { method: string; path: string; val: string } {
  const out = { method: '', path: '', val: '' };
  fields(buf, (r, f, w) => {
    if (f === 2 && w === 2) out.method = r.string();
    else if (f === 3 && w === 2) out.path = r.string();
    else if (f === 4 && w === 2) out.val = r.string();
    else return false;
    return true;
  });
  return out;
}
