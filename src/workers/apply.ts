// Apply worker: the only writer of MVCC state. It drains committed entries from the main->apply
// ring, applies up to applyBatchEntriesMax of them in ONE LMDB write transaction that also stores
// the applied index (so WAL replay is idempotent), encodes each response (with the full response
// header) and pushes results plus an APPLIED marker back on the apply->main ring.
import { parentPort, workerData } from 'node:worker_threads';
import { etcdserverpb } from '../shared/gen/etcd';
import { Ring } from '../shared/ring';
import { decodeEntry, EntryAuth, RequestKind } from '../shared/entry';
import type { AuthRequest } from './mvcc/auth_apply';
import {
  APPLIED_MSG_BYTES, BACKEND_COMMIT_BOUNDS_S, defragMsgBytes, DefragOp, encodeAuthMsg, INSTALL_MSG_HEADER, MSG_DEFRAG, readDefragMsg, writeDefragMsg, LEASE_MSG_BYTES, LeaseMsg, LeaseOp, MSG_INSTALL, readEntryMsg, RESULT_ERR,
  RESULT_MSG_HEADER, RESULT_OK, writeAppliedMsg, writeLeaseMsg, writeResultHeader, WorkerInit,
} from '../shared/apply_protocol';
import { MvccWriter, WriteRequest, WriteResult } from './mvcc/writer';
import { EntryType } from '../shared/entry_type';
import { toBigInt, toNum } from '../shared/long';
import { HeaderMaker } from '../shared/header';
import { SharedHistogram } from '../shared/shared_histogram';
import type { MembershipOp } from '../shared/confchange';
import { readSwitches } from '../shared/switches';
import { limits } from '../shared/limits';

const init = workerData as WorkerInit;
const store = MvccWriter.open(init.lmdbDir);
const inRing = new Ring(init.toApply as SharedArrayBuffer);
const outRing = new Ring(init.fromApply as SharedArrayBuffer);
const headers = new HeaderMaker(init.clusterId, init.memberId);
const batchMax = init.applyBatchEntriesMax ?? 4096;
const textDecoder = new TextDecoder();
/** Test switch (src/shared/switches.ts): a Put of this key kills the worker. */
const { applyFaultKey, applyCorruptKey } = readSwitches(process.env);
const CORRUPT_SUFFIX = Buffer.from('!corrupt');
const commitHistogram = init.backendCommitHistogram ? new SharedHistogram(init.backendCommitHistogram, BACKEND_COMMIT_BOUNDS_S) : null;

interface Pending {
  requestId: number;
  index: number;
  term: number;
  kind: RequestKind;
}

function decodeRequest(kind: RequestKind, body: Uint8Array): WriteRequest {
  switch (kind) {
    case RequestKind.Put: return { kind: 'put', req: etcdserverpb.PutRequest.decode(body) };
    case RequestKind.DeleteRange: return { kind: 'deleteRange', req: etcdserverpb.DeleteRangeRequest.decode(body) };
    case RequestKind.Txn: return { kind: 'txn', req: etcdserverpb.TxnRequest.decode(body) };
    case RequestKind.Compact: return { kind: 'compact', req: etcdserverpb.CompactionRequest.decode(body) };
    case RequestKind.MemberAttributes: {
      const a = JSON.parse(textDecoder.decode(body)) as { memberIdHex: string; name: string; clientURLs: string[] };
      return { kind: 'memberAttributes', memberIdHex: a.memberIdHex, attributes: { name: a.name, clientURLs: a.clientURLs } };
    }
    case RequestKind.ClusterVersion: return { kind: 'clusterVersion', version: textDecoder.decode(body) };
    case RequestKind.HealthCheck: return { kind: 'noop' };
    case RequestKind.LeaseGrant: return { kind: 'leaseGrant', req: etcdserverpb.LeaseGrantRequest.decode(body) };
    case RequestKind.LeaseRevoke: return { kind: 'leaseRevoke', req: etcdserverpb.LeaseRevokeRequest.decode(body) };
    case RequestKind.LeaseCheckpoint: return { kind: 'leaseCheckpoint', req: etcdserverpb.LeaseCheckpointRequest.decode(body) };
    case RequestKind.Membership: return { kind: 'membership', op: JSON.parse(textDecoder.decode(body)) as MembershipOp };
    case RequestKind.Alarm: return { kind: 'alarm', req: etcdserverpb.AlarmRequest.decode(body) };
    default: return { kind: 'auth', req: decodeAuthRequest(kind, body) };
  }
}

function decodeAuthRequest(kind: RequestKind, body: Uint8Array): AuthRequest {
  const pb = etcdserverpb;
  switch (kind) {
    case RequestKind.AuthEnable: return { op: 'enable' };
    case RequestKind.AuthDisable: return { op: 'disable' };
    case RequestKind.Authenticate: return { op: 'authenticate', req: pb.InternalAuthenticateRequest.decode(body) };
    case RequestKind.AuthUserAdd: return { op: 'userAdd', req: pb.AuthUserAddRequest.decode(body) };
    case RequestKind.AuthUserDelete: return { op: 'userDelete', req: pb.AuthUserDeleteRequest.decode(body) };
    case RequestKind.AuthUserChangePassword: return { op: 'userChangePassword', req: pb.AuthUserChangePasswordRequest.decode(body) };
    case RequestKind.AuthUserGrantRole: return { op: 'userGrantRole', req: pb.AuthUserGrantRoleRequest.decode(body) };
    case RequestKind.AuthUserGet: return { op: 'userGet', req: pb.AuthUserGetRequest.decode(body) };
    case RequestKind.AuthUserRevokeRole: return { op: 'userRevokeRole', req: pb.AuthUserRevokeRoleRequest.decode(body) };
    case RequestKind.AuthRoleAdd: return { op: 'roleAdd', req: pb.AuthRoleAddRequest.decode(body) };
    case RequestKind.AuthRoleGrantPermission: return { op: 'roleGrantPermission', req: pb.AuthRoleGrantPermissionRequest.decode(body) };
    case RequestKind.AuthRoleGet: return { op: 'roleGet', req: pb.AuthRoleGetRequest.decode(body) };
    case RequestKind.AuthRoleRevokePermission: return { op: 'roleRevokePermission', req: pb.AuthRoleRevokePermissionRequest.decode(body) };
    case RequestKind.AuthRoleDelete: return { op: 'roleDelete', req: pb.AuthRoleDeleteRequest.decode(body) };
    case RequestKind.AuthUserList: return { op: 'userList' };
    case RequestKind.AuthRoleList: return { op: 'roleList' };
    default: throw new Error(`invariant: request kind ${kind} is not an auth request`);
  }
}

/** The response message type of each auth request kind (all are {header, ...fields}). */
const authResponseTypes: Partial<Record<RequestKind, { encode(m: object): { finish(): Uint8Array } }>> = {
  [RequestKind.AuthEnable]: etcdserverpb.AuthEnableResponse,
  [RequestKind.AuthDisable]: etcdserverpb.AuthDisableResponse,
  [RequestKind.Authenticate]: etcdserverpb.AuthenticateResponse,
  [RequestKind.AuthUserAdd]: etcdserverpb.AuthUserAddResponse,
  [RequestKind.AuthUserDelete]: etcdserverpb.AuthUserDeleteResponse,
  [RequestKind.AuthUserChangePassword]: etcdserverpb.AuthUserChangePasswordResponse,
  [RequestKind.AuthUserGrantRole]: etcdserverpb.AuthUserGrantRoleResponse,
  [RequestKind.AuthUserGet]: etcdserverpb.AuthUserGetResponse,
  [RequestKind.AuthUserRevokeRole]: etcdserverpb.AuthUserRevokeRoleResponse,
  [RequestKind.AuthRoleAdd]: etcdserverpb.AuthRoleAddResponse,
  [RequestKind.AuthRoleGrantPermission]: etcdserverpb.AuthRoleGrantPermissionResponse,
  [RequestKind.AuthRoleGet]: etcdserverpb.AuthRoleGetResponse,
  [RequestKind.AuthRoleRevokePermission]: etcdserverpb.AuthRoleRevokePermissionResponse,
  [RequestKind.AuthRoleDelete]: etcdserverpb.AuthRoleDeleteResponse,
  [RequestKind.AuthUserList]: etcdserverpb.AuthUserListResponse,
  [RequestKind.AuthRoleList]: etcdserverpb.AuthRoleListResponse,
};

function encodeResponse(kind: RequestKind, resp: object, term: number): Uint8Array {
  const r = resp as { header?: etcdserverpb.IResponseHeader | null };
  r.header = headers.make(r.header?.revision ?? 0, term);
  switch (kind) {
    case RequestKind.Put: return etcdserverpb.PutResponse.encode(resp as etcdserverpb.IPutResponse).finish();
    case RequestKind.DeleteRange: return etcdserverpb.DeleteRangeResponse.encode(resp as etcdserverpb.IDeleteRangeResponse).finish();
    case RequestKind.Txn: return etcdserverpb.TxnResponse.encode(resp as etcdserverpb.ITxnResponse).finish();
    case RequestKind.Compact: return etcdserverpb.CompactionResponse.encode(resp as etcdserverpb.ICompactionResponse).finish();
    case RequestKind.LeaseGrant: return etcdserverpb.LeaseGrantResponse.encode(resp as etcdserverpb.ILeaseGrantResponse).finish();
    case RequestKind.LeaseRevoke: return etcdserverpb.LeaseRevokeResponse.encode(resp as etcdserverpb.ILeaseRevokeResponse).finish();
    case RequestKind.LeaseCheckpoint: return etcdserverpb.LeaseCheckpointResponse.encode(resp as etcdserverpb.ILeaseCheckpointResponse).finish();
    // etcd 3.4 answers Alarm without a header (its maintenance server does not fill one).
    case RequestKind.Alarm: return etcdserverpb.AlarmResponse.encode({ alarms: (resp as etcdserverpb.IAlarmResponse).alarms }).finish();
    case RequestKind.MemberAttributes:
    case RequestKind.Membership:
    case RequestKind.ClusterVersion:
    case RequestKind.HealthCheck:
      return new Uint8Array(0); // internal requests: the proposer only needs to know they applied
    default: {
      const t = authResponseTypes[kind];
      if (t === undefined) throw new Error(`invariant: no response type for request kind ${kind}`);
      return t.encode(resp).finish();
    }
  }
}

const textEncoder = new TextEncoder();

function pushResult(p: Pending, res: WriteResult): void {
  let status: number;
  let code = 0;
  let payload: Uint8Array;
  let revision = 0;
  if ('ok' in res) {
    status = RESULT_OK;
    revision = toNum((res.ok as { header?: etcdserverpb.IResponseHeader | null }).header?.revision);
    payload = encodeResponse(p.kind, res.ok, p.term);
  } else {
    status = RESULT_ERR;
    code = res.err.code;
    payload = textEncoder.encode(res.err.message);
  }
  const slot = reserveBlocking(RESULT_MSG_HEADER + payload.length);
  writeResultHeader(slot, status, code, p.requestId, p.index, revision);
  slot.set(payload, RESULT_MSG_HEADER);
  outRing.commit();
}

/** The main thread drains continuously; if the ring is full we wake it and wait for space. */
function reserveBlocking(len: number): Uint8Array {
  for (;;) {
    const slot = outRing.reserve(len);
    if (slot) return slot;
    outRing.notify();
    outRing.waitForSpaceSync(100);
  }
}

/** What the main thread's lessor must learn from one applied request (nothing for a refused one). */
function leaseEvents(req: WriteRequest, res: WriteResult, out: LeaseMsg[]): void {
  if (!('ok' in res)) return;
  switch (req.kind) {
    case 'leaseGrant':
      out.push({ op: LeaseOp.Grant, id: toBigInt(req.req.ID), ttl: toNum(req.req.TTL), remaining: 0 });
      break;
    case 'leaseRevoke':
      out.push({ op: LeaseOp.Revoke, id: toBigInt(req.req.ID), ttl: 0, remaining: 0 });
      break;
    case 'leaseCheckpoint':
      for (const c of req.req.checkpoints ?? []) {
        out.push({ op: LeaseOp.Checkpoint, id: toBigInt(c.ID), ttl: 0, remaining: Math.max(0, toNum(c.remaining_TTL)) });
      }
      break;
    default:
  }
}

/** Decodes entry messages into requests (no-ops and conf changes only move the index). */
function toItems(msgs: Uint8Array[]): { items: Array<{ index: number; req: WriteRequest; auth: EntryAuth | null }>; pendings: Pending[]; lastIndex: number } {
  const items: Array<{ index: number; req: WriteRequest; auth: EntryAuth | null }> = [];
  const pendings: Pending[] = [];
  let lastIndex = 0;
  for (const m of msgs) {
    const e = readEntryMsg(m);
    lastIndex = e.index;
    if (e.entryType !== EntryType.Normal || e.data.length === 0) continue; // no-op / conf change: index only
    const d = decodeEntry(e.data);
    const req = decodeRequest(d.kind, d.body);
    if (applyFaultKey !== null && req.kind === 'put' && applyFaultKey.equals(req.req.key ?? new Uint8Array(0))) {
      throw new Error('apply worker: injected fault (ETCD_TS_APPLY_FAULT_KEY)');
    }
    if (applyCorruptKey !== null && req.kind === 'put' && applyCorruptKey.equals(req.req.key ?? new Uint8Array(0))) {
      req.req.value = Buffer.concat([req.req.value ?? new Uint8Array(0), CORRUPT_SUFFIX]);
    }
    items.push({ index: e.index, req, auth: d.auth });
    pendings.push({ requestId: d.requestId, index: e.index, term: e.term, kind: d.kind });
  }
  return { items, pendings, lastIndex };
}

function applyBatch(msgs: Uint8Array[]): void {
  const { items, pendings, lastIndex } = toItems(msgs);
  keep(msgs);
  const t0 = performance.now();
  const results = store.applyBatch(items, lastIndex); // lastIndex covers trailing no-op entries
  commitHistogram?.observe((performance.now() - t0) / 1000);
  // Lease changes first: the lessor knows a lease before its grant is answered.
  const leaseMsgs: LeaseMsg[] = [];
  results.forEach((r: WriteResult | null, i: number) => {
    if (r !== null) leaseEvents(items[i].req, r, leaseMsgs);
  });
  for (const lm of leaseMsgs) {
    writeLeaseMsg(reserveBlocking(LEASE_MSG_BYTES), lm);
    outRing.commit();
  }
  pushAuthEvents();
  results.forEach((r: WriteResult | null, i: number) => {
    if (r !== null) pushResult(pendings[i], r);
  });
  reportApplied(lastIndex);
}

/** Auth changes, tokens and ended users, before the results: a client answered after a change is
 * checked against it on its next call. */
function pushAuthEvents(): void {
  for (const ev of store.takeAuthEvents()) {
    const msg = encodeAuthMsg(ev);
    reserveBlocking(msg.length).set(msg);
    outRing.commit();
  }
}

/** APPLIED after a batch or an install: everything up to the applied index (at least minIndex, the
 * batch's last entry, which may be a no-op) is applied; the watch worker learns the new revision. */
function reportApplied(minIndex: number): void {
  const slot = reserveBlocking(APPLIED_MSG_BYTES);
  const st = store.snapshotState(); // one meta read, not three
  writeAppliedMsg(slot, Math.max(minIndex, st.appliedIndex), st.revision, st.compactRevision);
  outRing.commit();
  outRing.notify();
}

/** A follower installs the leader's LMDB copy (a Raft snapshot), then reports the new state. */
function install(m: Uint8Array): void {
  if (defrag !== null) defrag.failed = 'a snapshot was installed during the copy';
  store.installFrom(textDecoder.decode(m.subarray(INSTALL_MSG_HEADER)));
  pushAuthEvents();
  reportApplied(0);
}

/** While Defragment copies the store: every entry message applied since DEFRAG_BEGIN, in order. */
let defrag: { kept: Uint8Array[]; bytes: number; failed: string | null } | null = null;

function keep(msgs: Uint8Array[]): void {
  if (defrag === null || defrag.failed !== null) return;
  for (const m of msgs) {
    defrag.kept.push(m);
    defrag.bytes += m.length;
  }
  if (defrag.bytes > limits.defragKeptEntryBytesMax) {
    defrag.failed = `more than ${limits.defragKeptEntryBytesMax} bytes of entries were applied during the copy`;
    defrag.kept = [];
  }
}

function replyDefrag(op: DefragOp, num: number, text: string): void {
  writeDefragMsg(reserveBlocking(defragMsgBytes(text)), op, num, text);
  outRing.commit();
  outRing.notify();
}

/**
 * DEFRAG_SWITCH: replays what was applied since the copy began into the copy (entries it holds are
 * skipped by index: applyBatch is idempotent) and makes it this worker's store. No entry is
 * applied meanwhile: that is the pause writes see (reads go on, on the old environment, until the main
 * thread switches on DEFRAG_SWITCHED).
 */
function switchTo(dir: string): void {
  const d = defrag;
  defrag = null;
  if (d === null || d.failed !== null) {
    replyDefrag(DefragOp.Failed, 0, d?.failed ?? 'no defragmentation was begun');
    return;
  }
  const t0 = performance.now();
  let copy: MvccWriter;
  try {
    copy = MvccWriter.open(dir);
  } catch (e) {
    replyDefrag(DefragOp.Failed, 0, `cannot open the copy: ${(e as Error).message}`); // the old store goes on
    return;
  }
  for (let i = 0; i < d.kept.length; i += batchMax) {
    const items = toItems(d.kept.slice(i, i + batchMax));
    copy.applyBatch(items.items, items.lastIndex);
  }
  copy.recordApplied(store.appliedIndex); // a trailing no-op entry the old store only holds in memory
  // This thread never returns to its event loop: the old handle's close and the copy's sync are left
  // to others (the compaction worker syncs the new environment before the main thread points to it).
  void store.adopt(copy);
  replyDefrag(DefragOp.Switched, performance.now() - t0, dir);
}

function onDefrag(m: Uint8Array): void {
  const r = readDefragMsg(m);
  if (r.op === DefragOp.Begin) {
    defrag = { kept: [], bytes: 0, failed: null };
    replyDefrag(DefragOp.Recording, 0, '');
  } else if (r.op === DefragOp.Switch) switchTo(r.text);
  else throw new Error(`invariant: unexpected defrag op ${r.op} to the apply worker`);
}

function loop(): void {
  const batch: Uint8Array[] = [];
  for (;;) {
    inRing.waitSync(1000);
    for (;;) {
      batch.length = 0;
      // Views are only valid inside drain: copy each message (entries are small; the copy is
      // what lets the producer reuse the space while we run the LMDB transaction).
      inRing.drain((m) => { batch.push(m.slice()); }, batchMax);
      if (batch.length === 0) break;
      // Entries before an install (or a defrag step) apply first, then it, then the entries after it.
      let from = 0;
      for (let i = 0; i < batch.length; i++) {
        if (batch[i][0] !== MSG_INSTALL && batch[i][0] !== MSG_DEFRAG) continue;
        if (i > from) applyBatch(batch.slice(from, i));
        if (batch[i][0] === MSG_INSTALL) install(batch[i]);
        else onDefrag(batch[i]);
        from = i + 1;
      }
      if (from < batch.length) applyBatch(from === 0 ? batch : batch.slice(from));
    }
  }
}

parentPort?.postMessage({ ready: true, appliedIndex: store.appliedIndex });
loop();
