// The import of an etcd 3.4 database (bbolt, read with src/shared/bbolt/reader.ts) into an empty MVCC
// store: the state etcd's backend holds at its consistent index, written through the same writers the
// apply worker uses, so the records are the ones our own writes would have made:
//
//   key bucket     in revision order; each record a put or a tombstone through WriteTxn at its own
//                  revision and sub revision (compaction leaves gaps: a WriteTxn per revision), with the
//                  create revision and version etcd stored (its compacted history no longer shows them)
//   lease          lease records (TTL, remaining TTL of the last checkpoint); the key -> lease index
//                  follows from the puts
//   meta           the compaction revision (scheduled; finished marks what etcd already removed)
//   auth*, alarm   the auth store and the alarms as etcd holds them
//   cluster        cluster version; membership and member attributes as the main thread decided them
//
// Keys are written in LMDB transactions of batchRecords records; the store is a fresh directory that
// only becomes the member's store once everything is written (src/main/member/etcd_import.ts), so a
// crash mid-way leaves nothing a restart would use.
import { BoltReader, BucketRef } from '../../shared/bbolt/reader';
import {
  decodeAlarmKey,
  decodeAuthEnabled,
  decodeCompactRev,
  decodeKeyValue,
  decodeLease,
  decodeLeaseKey,
  decodeRevision,
  decodeRole,
  decodeU64,
  decodeUser,
  authKeys,
  clusterVersionKey,
  metaKeys,
} from '../../shared/bbolt/etcd_codec';
import { etcdBuckets } from '../../shared/bbolt/format';
import type { MembershipState } from '../../shared/confchange';
import type { ImportCounts } from '../../shared/import_protocol';
import { putAlarm } from '../../shared/mvcc/alarms';
import { putAuthEnabled, putAuthRevision, putRole, putUser } from '../../shared/mvcc/auth';
import { putClusterVersion, putMemberAttributes, putMembership } from '../../shared/mvcc/cluster';
import { Dbs } from '../../shared/mvcc/dbs';
import { encodeLeaseRecord, leaseKey } from '../../shared/mvcc/leases';
import { writeProgress, writeState } from '../../shared/mvcc/meta';
import { WriteTxn } from './write';

export interface BoltImportInput {
  /** member/snap/db of the etcd data dir (opened read-only). */
  dbFile: string;
  /** The applied index to store (etcd's consistent index, or its snapshot's if higher). */
  applied: number;
  membership: MembershipState;
  attributes: Array<{ memberIdHex: string; name: string; clientURLs: string[] }>;
  /** Key records per LMDB write transaction. */
  batchRecords: number;
  /** Called after each committed batch with the key records so far (progress, and the test switch). */
  onBatch?: (records: number) => void;
}

export type BoltImportCounts = ImportCounts;

/** The error of a record that does not decode: the file is refused (one line, at start-up). */
export class BoltImportError extends Error {}

/** Fills dbs (an empty store) from the etcd database. */
export function importBolt(dbs: Dbs, reader: BoltReader, input: BoltImportInput): BoltImportCounts {
  const c: BoltImportCounts = {
    keyRecords: 0,
    puts: 0,
    tombstones: 0,
    orphanTombstones: 0,
    revision: 1,
    compactRevision: -1,
    leases: 0,
    users: 0,
    roles: 0,
    alarms: 0,
    authEnabled: false,
    consistentIndex: 0,
  };
  const must = (name: string): BucketRef => {
    const b = reader.bucket(name);
    if (b === null) throw new BoltImportError(`${reader.file}: bucket ${name} is missing: not an etcd database`);
    return b;
  };
  const meta = readMeta(reader, must(etcdBuckets.meta));
  c.consistentIndex = meta.consistentIndex;
  c.compactRevision = meta.scheduled;
  const lastRev = importKeys(dbs, reader, must(etcdBuckets.key), c, input);
  c.revision = Math.max(lastRev, c.compactRevision, 1);
  dbs.root.transactionSync(() => {
    importLeases(dbs, reader, c);
    importAuth(dbs, reader, c);
    importAlarms(dbs, reader, c);
    const cluster = reader.bucket(etcdBuckets.cluster);
    const version = cluster === null ? null : find(reader, cluster, clusterVersionKey);
    if (version !== null) putClusterVersion(dbs, version.toString('utf8'));
    putMembership(dbs, input.membership);
    for (const a of input.attributes) putMemberAttributes(dbs, a.memberIdHex, { name: a.name, clientURLs: a.clientURLs });
    writeState(dbs, { rev: c.revision, applied: input.applied, compactRev: c.compactRevision });
    if (meta.finished >= 0) writeProgress(dbs, { doneRev: meta.finished, cursorRev: meta.finished + 1, cursorSub: 0 });
  });
  return c;
}

/** The value of one key of a bucket, or null. */
function find(reader: BoltReader, b: BucketRef, key: string): Buffer | null {
  const want = Buffer.from(key);
  for (const e of reader.entries(b, want)) return e.key.equals(want) && e.value !== null ? e.value : null;
  return null;
}

function readMeta(reader: BoltReader, b: BucketRef): { consistentIndex: number; scheduled: number; finished: number } {
  const ci = find(reader, b, metaKeys.consistentIndex);
  const sched = find(reader, b, metaKeys.scheduledCompactRev);
  const fin = find(reader, b, metaKeys.finishedCompactRev);
  return decoding(reader, 'meta', () => {
    const finished = fin === null ? -1 : decodeCompactRev(fin);
    // etcd's restore: compactMainRev is the scheduled compaction when one was scheduled after the
    // last finished one (it then finishes it), else the finished one.
    const scheduled = Math.max(sched === null ? -1 : decodeCompactRev(sched), finished);
    return { consistentIndex: ci === null ? 0 : Number(decodeU64(ci)), scheduled, finished };
  });
}

/** A decoder's assertion on etcd's bytes is the file's fault: one line naming the bucket. */
function decoding<T>(reader: BoltReader, bucket: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw new BoltImportError(`${reader.file}: bucket ${bucket}: ${(e as Error).message}`);
  }
}

function importKeys(dbs: Dbs, reader: BoltReader, bucket: BucketRef, c: BoltImportCounts, input: BoltImportInput): number {
  const it = reader.entries(bucket);
  let wt: WriteTxn | null = null;
  let lastRev = 0;
  let done = false;
  while (!done) {
    dbs.root.transactionSync(() => {
      for (let n = 0; n < input.batchRecords; n++) {
        const r = it.next();
        if (r.done === true) {
          done = true;
          return;
        }
        const { key, value } = r.value;
        if (value === null) throw new BoltImportError(`${reader.file}: bucket key holds a nested bucket`);
        const rev = decoding(reader, etcdBuckets.key, () => decodeRevision(key));
        const kv = decoding(reader, etcdBuckets.key, () => decodeKeyValue(value));
        if (rev.main < lastRev) throw new BoltImportError(`${reader.file}: bucket key out of revision order at ${rev.main}`);
        if (wt === null || wt.beginRev !== rev.main - 1) wt = new WriteTxn(dbs, rev.main - 1, c.compactRevision);
        wt.changes = rev.sub; // compaction may have removed earlier sub revisions of this revision
        if (rev.tombstone) {
          c.tombstones++;
          if (wt.deleteKeys([kv.key]) === 0) c.orphanTombstones++;
        } else {
          if (kv.modRevision !== rev.main || kv.key.length === 0)
            throw new BoltImportError(`${reader.file}: bucket key: record at revision ${rev.main} names mod revision ${kv.modRevision}`);
          const lease = BigInt.asUintN(64, kv.lease);
          const hi = Number(BigInt.asIntN(32, lease >> 32n));
          const lo = Number(lease & 0xffffffffn);
          wt.put(kv.key, kv.value, hi, lo, wt.view().latest(kv.key), { create: kv.createRevision, version: kv.version });
          c.puts++;
        }
        lastRev = rev.main;
        c.keyRecords++;
      }
    });
    input.onBatch?.(c.keyRecords);
  }
  return lastRev;
}

function importLeases(dbs: Dbs, reader: BoltReader, c: BoltImportCounts): void {
  const b = reader.bucket(etcdBuckets.lease);
  if (b === null) return;
  for (const e of reader.entries(b)) {
    if (e.value === null) continue;
    const id = decoding(reader, etcdBuckets.lease, () => decodeLeaseKey(e.key));
    const l = decoding(reader, etcdBuckets.lease, () => decodeLease(e.value as Buffer));
    const u = BigInt.asUintN(64, id);
    dbs.leases.putSync(leaseKey(Number(BigInt.asIntN(32, u >> 32n)), Number(u & 0xffffffffn)), encodeLeaseRecord(l.ttl, l.remainingTtl));
    c.leases++;
  }
}

function importAuth(dbs: Dbs, reader: BoltReader, c: BoltImportCounts): void {
  const auth = reader.bucket(etcdBuckets.auth);
  if (auth !== null) {
    const en = find(reader, auth, authKeys.enabled);
    const rev = find(reader, auth, authKeys.revision);
    c.authEnabled = en !== null && decodeAuthEnabled(en);
    if (en !== null) putAuthEnabled(dbs, c.authEnabled);
    if (rev !== null)
      putAuthRevision(
        dbs,
        decoding(reader, etcdBuckets.auth, () => Number(decodeU64(rev))),
      );
  }
  const users = reader.bucket(etcdBuckets.authUsers);
  for (const e of users === null ? [] : reader.entries(users)) {
    if (e.value === null) continue;
    putUser(
      dbs,
      decoding(reader, etcdBuckets.authUsers, () => decodeUser(e.value as Buffer)),
    );
    c.users++;
  }
  const roles = reader.bucket(etcdBuckets.authRoles);
  for (const e of roles === null ? [] : reader.entries(roles)) {
    if (e.value === null) continue;
    putRole(
      dbs,
      decoding(reader, etcdBuckets.authRoles, () => decodeRole(e.value as Buffer)),
    );
    c.roles++;
  }
}

function importAlarms(dbs: Dbs, reader: BoltReader, c: BoltImportCounts): void {
  const b = reader.bucket(etcdBuckets.alarm);
  if (b === null) return;
  for (const e of reader.entries(b)) {
    putAlarm(
      dbs,
      decoding(reader, etcdBuckets.alarm, () => decodeAlarmKey(e.key)),
    );
    c.alarms++;
  }
}
