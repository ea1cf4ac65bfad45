// Maintenance.Snapshot's content: the store at one LMDB read transaction, as etcd 3.4's bbolt backend
// would hold the same state (bucket layouts in src/shared/bbolt/etcd_codec.ts), written with the bbolt
// page writer. Synchronous from start to end: lmdb-js keeps one read transaction for a synchronous run
// (it renews it only on a later turn of the event loop), so every table is read at the same point while
// the apply worker goes on writing. The caller (src/workers/snapshot.ts) resets the read transaction
// before and after, as MvccStore's reads do.
//
//   key              every history record etcd would still hold: all revisions above the compaction
//                    revision, and at or below it only each key's newest record when that is a PUT (what
//                    etcd's compaction keeps), tombstones included, in revision order (the revlog's order)
//   meta             consistent_index = the applied Raft index; scheduled/finishedCompactRev = the
//                    compaction revision (the key bucket is written as if that compaction had finished)
//   lease            every lease: ID, TTL, the last checkpointed remaining TTL (attached keys are in the
//                    key bucket's records, from which etcd rebuilds them)
//   members, members_removed, cluster, alarm, auth, authUsers, authRoles   as etcd keeps them
import { assert } from '../errors';
import { BoltWriter } from '../bbolt/writer';
import { etcdBuckets } from '../bbolt/format';
import * as codec from '../bbolt/etcd_codec';
import type { MembershipState } from '../confchange';
import { mvccpb } from '../gen/etcd';
import { listAlarms } from './alarms';
import { readAuthEnabledRecord, readAuthSnapshot } from './auth';
import { getClusterVersion, getMemberAttributes, getMembership } from './cluster';
import { Dbs } from './dbs';
import { historyRecord, newestRecord } from './history';
import { decodeRevKey } from './keys';
import { listLeases } from './leases';
import { readState, State } from './meta';
import { historyKind, RecordKind, toPb } from './records';
import { ReadView } from './view';

export interface ExportSummary {
  /** The store's revision at the snapshot. */
  revision: number;
  /** The compaction revision (-1: never compacted). */
  compactRevision: number;
  /** The applied Raft index (meta.consistent_index). */
  appliedIndex: number;
  /** Records in the key bucket. */
  keyRecords: number;
}

type Put = (key: Uint8Array, value: Uint8Array) => void;

/**
 * Writes every bucket into w (which the caller finishes). `membership` is used when the store holds none
 * (a member that never applied a configuration change: its bootstrap membership is not in LMDB).
 */
export function exportBolt(dbs: Dbs, w: BoltWriter, membership: MembershipState): ExportSummary {
  const st = readState(dbs);
  let keyRecords = 0;
  const writers: Record<string, (put: Put) => void> = {
    [etcdBuckets.alarm]: (put) =>
      sorted(
        listAlarms(dbs).map((a) => [codec.encodeAlarmKey(a), Buffer.alloc(0)]),
        put,
      ),
    [etcdBuckets.auth]: (put) => writeAuth(dbs, put),
    [etcdBuckets.authRoles]: (put) =>
      sorted(
        [...readAuthSnapshot(dbs).roles.values()].map((r) => pair(codec.encodeRole(r))),
        put,
      ),
    [etcdBuckets.authUsers]: (put) =>
      sorted(
        [...readAuthSnapshot(dbs).users.values()].map((u) => pair(codec.encodeUser(u))),
        put,
      ),
    [etcdBuckets.cluster]: (put) => {
      const v = getClusterVersion(dbs);
      if (v !== null) put(Buffer.from(codec.clusterVersionKey), Buffer.from(v));
    },
    [etcdBuckets.key]: (put) => {
      keyRecords = writeKeys(dbs, st, put);
    },
    [etcdBuckets.lease]: (put) => {
      const leases = listLeases(dbs).map(
        (l) =>
          [
            codec.encodeLeaseKey(l.id),
            codec.encodeLease({ id: l.id, ttl: Math.ceil(l.ttl), remainingTtl: Math.ceil(l.remaining) }),
          ] as const,
      );
      sorted(leases, put);
    },
    [etcdBuckets.members]: (put) => writeMembers(dbs, getMembership(dbs) ?? membership, put),
    [etcdBuckets.membersRemoved]: (put) => {
      const removed = (getMembership(dbs) ?? membership).removed.map(
        (id) => [codec.encodeMemberKey(BigInt(id)), codec.memberRemovedValue] as const,
      );
      sorted(removed, put);
    },
    [etcdBuckets.meta]: (put) => writeMeta(st, put),
  };
  const names = Object.keys(writers).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (const name of names) {
    w.beginBucket(Buffer.from(name));
    writers[name]!((k, v) => w.put(k, v));
    w.endBucket();
  }
  return { revision: st.rev, compactRevision: st.compactRev, appliedIndex: st.applied, keyRecords };
}

function pair(e: { key: Buffer; value: Buffer }): readonly [Buffer, Buffer] {
  return [e.key, e.value];
}

/** Puts small buckets' entries in key order. */
function sorted(entries: ReadonlyArray<readonly [Buffer, Buffer]>, put: Put): void {
  for (const [k, v] of [...entries].sort((a, b) => Buffer.compare(a[0], b[0]))) put(k, v);
}

/** The key bucket, in revision order; returns the number of records. */
function writeKeys(dbs: Dbs, st: State, put: Put): number {
  const view = new ReadView(dbs, st.rev, st.compactRev);
  let n = 0;
  for (const { key: rk, value: key } of dbs.revlog.getRange({}) as Iterable<{ key: Buffer; value: Buffer }>) {
    const { rev, sub } = decodeRevKey(rk);
    // One read transaction: nothing past the state it read first (a write slipping in would show here).
    assert(rev <= st.rev, 'snapshot: a revision past the state read at its start');
    // At or below the compaction revision etcd keeps only each key's newest record, and only a PUT (the
    // compaction worker may not have removed the rest yet).
    if (rev <= st.compactRev && !isNewestPutAt(dbs, key, rev, sub, st.compactRev)) continue;
    const rec = historyRecord(dbs, key, rev, sub);
    if (rec === undefined) continue;
    if (historyKind(rec) === RecordKind.Tombstone) {
      put(codec.encodeRevision(rev, sub, true), mvccpb.KeyValue.encode({ key }).finish());
    } else {
      put(codec.encodeRevision(rev, sub), mvccpb.KeyValue.encode(toPb(view.decodeRecord(key, rev, sub, rec)!, false)).finish());
    }
    n++;
  }
  return n;
}

function isNewestPutAt(dbs: Dbs, key: Buffer, rev: number, sub: number, at: number): boolean {
  const newest = newestRecord(dbs, key, at);
  return newest !== undefined && newest.rev === rev && newest.sub === sub && historyKind(newest.rec) !== RecordKind.Tombstone;
}

function writeMeta(st: State, put: Put): void {
  const entries: Array<readonly [Buffer, Buffer]> = [[Buffer.from(codec.metaKeys.consistentIndex), codec.encodeU64(st.applied)]];
  if (st.compactRev > 0) {
    // The key bucket holds what the compaction keeps whether or not the compaction worker has finished
    // removing the rest: etcd's marks after a finished compaction.
    entries.push([Buffer.from(codec.metaKeys.scheduledCompactRev), codec.encodeCompactRev(st.compactRev)]);
    entries.push([Buffer.from(codec.metaKeys.finishedCompactRev), codec.encodeCompactRev(st.compactRev)]);
  }
  sorted(entries, put);
}

function writeAuth(dbs: Dbs, put: Put): void {
  const entries: Array<readonly [Buffer, Buffer]> = [
    [Buffer.from(codec.authKeys.revision), codec.encodeU64(readAuthSnapshot(dbs).revision)],
  ];
  const enabled = readAuthEnabledRecord(dbs);
  if (enabled !== undefined) entries.push([Buffer.from(codec.authKeys.enabled), codec.encodeAuthEnabled(enabled)]);
  sorted(entries, put);
}

function writeMembers(dbs: Dbs, m: MembershipState, put: Put): void {
  const entries = m.members.map((r) => {
    const id = BigInt(r.id);
    const attrs = getMemberAttributes(dbs, id.toString(16));
    const value = codec.encodeMember({
      id,
      peerURLs: r.peerURLs,
      isLearner: r.isLearner,
      name: attrs?.name ?? '',
      clientURLs: attrs?.clientURLs ?? [],
    });
    return [codec.encodeMemberKey(id), value] as const;
  });
  sorted(entries, put);
}
