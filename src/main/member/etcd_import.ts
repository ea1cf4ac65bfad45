// Starting on an etcd 3.4 data dir (docs/MIGRATION.md): a stopped etcd member's --data-dir, or what
// `etcdctl snapshot restore` wrote. etcd's files are only read, never changed:
//
//   member/snap/db        bbolt: the state at etcd's consistent index (src/shared/bbolt/reader.ts)
//   member/wal/*.wal      etcd's WAL: member and cluster IDs, HardState, the entries after the snapshot
//   member/snap/*.snap    etcd's v2 snapshots (not needed: the WAL's snapshot record has the index)
//
// and etcd-ts's own files are added next to them:
//
//   member/ts-wal/        our WAL. etcd's WAL files and ours share the name pattern (%016x-%016x.wal), so
//                         on a data dir that holds etcd's database ours lives here instead of member/wal
//   member/lmdb-<n>/      the imported store, a store generation (store_generation.ts) made current
//                         once complete
//   member/identity.json  written last: its presence means the import is complete
//
// Steps (each restartable: until identity.json exists, a start imports again from etcd's files):
//   1. read etcd's WAL and the database's meta and members (this thread)
//   2. the import worker writes the database into a new store generation and syncs it
//   3. our WAL, made afresh: a snapshot marker at the applied index, then etcd's entries after it
//      (etcd_entries.ts), then etcd's HardState (term, vote, commit)
//   4. the new store becomes the current generation
//   5. identity.json (etcd's cluster and member IDs)
// The normal start then applies the WAL's committed entries past the applied index, as etcd would.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { BoltCorruptError, BoltReader } from '../../shared/bbolt/reader';
import { decodeMember, decodeMemberKey, decodeU64, metaKeys } from '../../shared/bbolt/etcd_codec';
import { etcdBuckets } from '../../shared/bbolt/format';
import type { MembershipState } from '../../shared/confchange';
import { idToHex } from '../../shared/ids';
import { assertImportFromWorker, ImportCounts, ImportWorkerInit } from '../../shared/import_protocol';
import { limits } from '../../shared/limits';
import { nextLmdbDir, setCurrentLmdbDir } from '../../shared/store_generation';
import { readSwitches } from '../../shared/switches';
import { Logger } from '../log';
import { Entry, HardState } from '../raft/types';
import { StartupError } from '../startup_error';
import { decodeEtcdConfChange, EtcdWal, listEtcdWalFiles, readEtcdWal } from '../wal/etcd_wal';
import { WalCorruptError } from '../wal/errors';
import { Wal } from '../wal/wal';
import { convertEtcdEntry, EtcdEntryError, parseMemberContext } from './etcd_entries';
import type { Identity } from './identity';

const IDENTITY = 'identity.json';

function etcdDbFile(memberDir: string): string {
  return path.join(memberDir, 'snap', 'db');
}

/** Our WAL's default directory: member/wal, or member/ts-wal beside an etcd database (see the top). */
export function defaultWalDir(memberDir: string): string {
  return fs.existsSync(etcdDbFile(memberDir)) ? path.join(memberDir, 'ts-wal') : path.join(memberDir, 'wal');
}

/** One member as etcd knows it. */
interface EtcdMember {
  id: bigint;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

/**
 * Imports the etcd data dir under memberDir when there is one and no import has completed (no
 * identity.json). walDir: where our WAL goes. Throws StartupError (one line) when etcd's files are
 * refused.
 */
export async function importEtcdIfPresent(memberDir: string, walDir: string, log: Logger): Promise<void> {
  if (fs.existsSync(path.join(memberDir, IDENTITY)) || !fs.existsSync(etcdDbFile(memberDir))) return;
  const t0 = Date.now();
  const dbFile = etcdDbFile(memberDir);
  const etcdWalDir = path.join(memberDir, 'wal');
  if (path.resolve(walDir) === path.resolve(etcdWalDir))
    throw new StartupError(`--wal-dir ${walDir} is etcd's WAL directory: give etcd-ts another one (or none)`);
  const holder = lockedFile([dbFile, ...listEtcdWalFiles(etcdWalDir).map((n) => path.join(etcdWalDir, n))]);
  if (holder !== null) throw new StartupError(`etcd data dir: ${holder} is locked: etcd is still running on it; stop it first`);
  log.info('importing an etcd data dir', { db: dbFile, wal: etcdWalDir });
  const wal = readWal(etcdWalDir);
  const { consistentIndex, members, removed } = readDbHead(dbFile, wal);
  const applied = Math.max(consistentIndex, wal.snapshotIndex);
  if (!members.some((m) => m.id === wal.nodeId))
    throw new StartupError(`etcd data dir: member ${idToHex(wal.nodeId)} (etcd's WAL) is not in the cluster its database describes`);
  const entries = convertEntries(wal, applied);
  const hardState = hardStateOf(wal, applied);
  const switches = readSwitches(process.env);

  const lmdbDir = nextLmdbDir(memberDir);
  const counts = await runImportWorker({
    dbFile,
    lmdbDir,
    applied,
    membership: membershipState(members, removed),
    attributes: members
      .filter((m) => m.name !== '' || m.clientURLs.length > 0)
      .map((m) => ({ memberIdHex: idToHex(m.id).padStart(16, '0'), name: m.name, clientURLs: m.clientURLs })),
    batchRecords: limits.importBatchRecords,
    killAtRecords: switches.importKillAtRecords,
  });
  await writeOwnWal(walDir, applied, termAt(wal, applied), hardState, entries);
  if (switches.importKillAtStep === 'wal') process.kill(process.pid, 'SIGKILL');
  setCurrentLmdbDir(memberDir, lmdbDir);
  if (switches.importKillAtStep === 'store') process.kill(process.pid, 'SIGKILL');
  writeIdentity(memberDir, wal, members);
  logDone(log, counts, wal, entries, applied, members.length, Date.now() - t0);
}

/**
 * The first of files that a process holds a lock on, else null. A running etcd holds an OFD lock on its
 * WAL files and an flock on its database; Linux lists both in /proc/locks by device and inode
 * ("maj:min:inode", major and minor in hex). Without /proc/locks nothing can be told: null.
 */
function lockedFile(files: string[]): string | null {
  let text: string;
  try {
    text = fs.readFileSync('/proc/locks', 'utf8');
  } catch {
    return null;
  }
  const held = new Set(text.split('\n').flatMap((l) => l.split(/\s+/).filter((t) => /^[0-9a-f]+:[0-9a-f]+:\d+$/.test(t))));
  for (const f of files) {
    const st = fs.statSync(f, { bigint: true });
    const major = Number(((st.dev >> 8n) & 0xfffn) | ((st.dev >> 32n) & ~0xfffn));
    const minor = Number((st.dev & 0xffn) | ((st.dev >> 12n) & ~0xffn));
    const id = `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}:${st.ino}`;
    if (held.has(id)) return f;
  }
  return null;
}

function logDone(log: Logger, c: ImportCounts, wal: EtcdWal, entries: Entry[], applied: number, members: number, ms: number): void {
  log.info('imported the etcd data dir', {
    'cluster-id': idToHex(wal.clusterId),
    'member-id': idToHex(wal.nodeId),
    members,
    'key-records': c.keyRecords,
    puts: c.puts,
    tombstones: c.tombstones,
    revision: c.revision,
    'compact-revision': c.compactRevision,
    leases: c.leases,
    users: c.users,
    roles: c.roles,
    alarms: c.alarms,
    'auth-enabled': c.authEnabled,
    'consistent-index': c.consistentIndex,
    'etcd-snapshot-index': wal.snapshotIndex,
    applied,
    'wal-entries-to-apply': entries.length,
    term: wal.hardState?.term ?? 0,
    ms,
  });
  if (c.orphanTombstones > 0) log.warn('etcd database had tombstones of keys with no live record', { count: c.orphanTombstones });
  if (wal.tornTail) log.warn("etcd's WAL ended in a torn write; the entries before it were imported");
}

function readWal(dir: string): EtcdWal {
  try {
    return readEtcdWal(dir);
  } catch (e) {
    if (e instanceof WalCorruptError) throw new StartupError(`etcd data dir: ${e.message}`);
    if ((e as NodeJS.ErrnoException).code === 'ENOENT')
      throw new StartupError(`etcd data dir: no WAL in ${dir} (an etcd --wal-dir elsewhere is not supported)`);
    throw e;
  }
}

/** The database's consistent index and membership (members bucket; else, as after `etcdctl snapshot
 * restore`, which empties it, the ConfChange entries of the WAL). */
function readDbHead(dbFile: string, wal: EtcdWal): { consistentIndex: number; members: EtcdMember[]; removed: bigint[] } {
  let reader: BoltReader;
  try {
    reader = BoltReader.open(dbFile);
  } catch (e) {
    if (e instanceof BoltCorruptError) throw new StartupError(e.message);
    throw e;
  }
  try {
    const meta = reader.bucket(etcdBuckets.meta);
    if (meta === null || reader.bucket(etcdBuckets.key) === null)
      throw new StartupError(`${dbFile}: no key and meta buckets: not an etcd database`);
    let consistentIndex = 0;
    for (const e of reader.entries(meta, Buffer.from(metaKeys.consistentIndex))) {
      if (e.key.toString() === metaKeys.consistentIndex && e.value !== null) consistentIndex = Number(decodeU64(e.value));
      break;
    }
    const members: EtcdMember[] = [];
    const mb = reader.bucket(etcdBuckets.members);
    for (const e of mb === null ? [] : reader.entries(mb)) if (e.value !== null) members.push(decodeMember(e.value));
    const removed: bigint[] = [];
    const rb = reader.bucket(etcdBuckets.membersRemoved);
    for (const e of rb === null ? [] : reader.entries(rb)) removed.push(decodeMemberKey(e.key));
    if (members.length > 0) return { consistentIndex, members, removed };
    return { consistentIndex, ...membersFromWal(wal) };
  } catch (e) {
    if (e instanceof StartupError) throw e;
    throw new StartupError(`${dbFile}: ${(e as Error).message}`);
  } finally {
    reader.close();
  }
}

/** The membership the WAL's ConfChange entries build, in index order (etcd's own ApplyConfChange). */
function membersFromWal(wal: EtcdWal): { members: EtcdMember[]; removed: bigint[] } {
  const byId = new Map<bigint, EtcdMember>();
  const removed: bigint[] = [];
  for (const e of wal.confChanges) {
    const cc = decodeEtcdConfChange(e.data);
    const ctx = parseMemberContext(cc.context);
    const cur = byId.get(cc.nodeId);
    if (cc.type === 1) {
      byId.delete(cc.nodeId);
      removed.push(cc.nodeId);
    } else if (ctx?.isPromote && cur !== undefined) {
      cur.isLearner = false;
    } else if (ctx !== null) {
      byId.set(cc.nodeId, {
        id: cc.nodeId,
        name: ctx.name || (cur?.name ?? ''),
        peerURLs: ctx.peerURLs,
        clientURLs: ctx.clientURLs.length > 0 ? ctx.clientURLs : (cur?.clientURLs ?? []),
        isLearner: cc.type === 3 || (cc.type === 2 && (cur?.isLearner ?? false)),
      });
    }
  }
  return { members: [...byId.values()], removed };
}

/** Tags in member-ID order (what a new cluster of these members would have). */
function membershipState(members: EtcdMember[], removed: bigint[]): MembershipState {
  const sorted = [...members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return {
    members: sorted.map((m, i) => ({ id: m.id.toString(), peerURLs: m.peerURLs, isLearner: m.isLearner, tag: i })),
    removed: [...new Set(removed)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map((id) => id.toString()),
    nextTag: sorted.length,
  };
}

/** etcd's entries past the applied index, as ours. */
function convertEntries(wal: EtcdWal, applied: number): Entry[] {
  const todo = wal.entries.filter((e) => e.index > applied);
  if (todo.length > 0 && todo[0].index !== applied + 1)
    throw new StartupError(`etcd data dir: the WAL's entries start at ${todo[0].index}, the database is at ${applied}: entries missing`);
  try {
    return todo.map(convertEtcdEntry);
  } catch (e) {
    if (e instanceof EtcdEntryError || e instanceof SyntaxError) throw new StartupError(`etcd data dir: WAL ${e.message}`);
    throw e;
  }
}

function termAt(wal: EtcdWal, index: number): number {
  if (index === wal.snapshotIndex) return wal.snapshotTerm;
  const e = wal.entries.find((x) => x.index === index);
  if (e !== undefined) return e.term;
  return wal.hardState?.term ?? 1;
}

function hardStateOf(wal: EtcdWal, applied: number): HardState {
  const hs = wal.hardState;
  const lastTerm = wal.entries.length > 0 ? wal.entries[wal.entries.length - 1].term : wal.snapshotTerm;
  if (hs === null) return { term: Math.max(lastTerm, 1), vote: 0n, commit: applied };
  return { term: hs.term, vote: hs.vote, commit: Math.max(hs.commit, applied) };
}

/** Step 3: our WAL, made afresh (a leftover of an interrupted import is removed first). */
async function writeOwnWal(dir: string, applied: number, term: number, hs: HardState, entries: Entry[]): Promise<void> {
  fs.rmSync(dir, { recursive: true, force: true });
  const { wal } = await Wal.open(dir);
  try {
    if (applied > 0) await wal.releaseTo(applied, term);
    await wal.save(hs, entries);
  } finally {
    await wal.close();
  }
}

/** Step 2. */
function runImportWorker(init: ImportWorkerInit): Promise<ImportCounts> {
  const worker = new Worker(path.join(__dirname, '../../workers/etcd_import.js'), { workerData: init });
  return new Promise((resolve, reject) => {
    let settled = false;
    worker.once('message', (m: unknown) => {
      settled = true;
      assertImportFromWorker(m);
      if (m.kind === 'done') resolve(m.counts);
      else reject(new StartupError(m.message));
    });
    worker.once('error', (e) => {
      settled = true;
      reject(e);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`etcd import worker exited with code ${code} before it answered`));
    });
  });
}

/** Step 5: etcd's IDs; the members as etcd knew them (identity.members records a cluster's start). */
function writeIdentity(memberDir: string, wal: EtcdWal, members: EtcdMember[]): void {
  const id: Identity = {
    clusterId: wal.clusterId.toString(),
    memberId: wal.nodeId.toString(),
    members: members.map((m) => ({ id: m.id.toString(), name: m.name, peerUrls: m.peerURLs })),
  };
  const file = path.join(memberDir, IDENTITY);
  const tmp = file + '.tmp';
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, JSON.stringify(id, null, 2));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  const dfd = fs.openSync(memberDir, 'r');
  try {
    fs.fsyncSync(dfd);
  } finally {
    fs.closeSync(dfd);
  }
}
