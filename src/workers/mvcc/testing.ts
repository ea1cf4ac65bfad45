// Support for the MVCC store's tests and benchmark: a store in a temp directory and a terse request driver
// that numbers entries like the apply worker does. Not used by the server.
import Long from 'long';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { etcdserverpb } from '../../shared/gen/etcd';
import { toNum } from '../../shared/long';
import { MvccWriter, WriteRequest, WriteResult } from './writer';

export const b = (s: string | Uint8Array): Buffer => (typeof s === 'string' ? Buffer.from(s, 'latin1') : Buffer.from(s));
export const str = (u: Uint8Array | null | undefined): string => (u ? Buffer.from(u).toString('latin1') : '');

export function tempDir(prefix = 'mvcc-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export class Driver {
  readonly dir: string;
  store: MvccWriter;
  index = 0;

  constructor(dir = tempDir()) {
    this.dir = dir;
    this.store = MvccWriter.open(dir);
  }

  /** Grants lease `id` through the apply path, as a committed LeaseGrant would. */
  grantLease(id: number | string, ttl = 60): etcdserverpb.ILeaseGrantResponse {
    return this.ok({ kind: 'leaseGrant', req: { ID: typeof id === 'string' ? Long.fromString(id) : id, TTL: ttl } });
  }

  revokeLease(id: number | string): etcdserverpb.ILeaseRevokeResponse {
    return this.ok({ kind: 'leaseRevoke', req: { ID: typeof id === 'string' ? Long.fromString(id) : id } });
  }

  apply(req: WriteRequest): WriteResult {
    const r = this.store.applyBatch([{ index: ++this.index, req }])[0];
    if (r === null) throw new Error('entry unexpectedly skipped');
    return r;
  }

  /** Applies and unwraps ok; throws the {err} as an Error with its message. */
  ok<T>(req: WriteRequest): T {
    const r = this.apply(req);
    if ('err' in r) throw new Error(r.err.message);
    return r.ok as T;
  }

  put(key: string, value: string, extra: etcdserverpb.IPutRequest = {}): etcdserverpb.IPutResponse {
    return this.ok({ kind: 'put', req: { key: b(key), value: b(value), ...extra } });
  }

  del(key: string, rangeEnd?: string, prevKv = false): etcdserverpb.IDeleteRangeResponse {
    return this.ok({ kind: 'deleteRange', req: { key: b(key), rangeEnd: rangeEnd === undefined ? undefined : b(rangeEnd), prevKv } });
  }

  txn(req: etcdserverpb.ITxnRequest): etcdserverpb.ITxnResponse {
    return this.ok({ kind: 'txn', req });
  }

  compact(revision: number): WriteResult {
    return this.apply({ kind: 'compact', req: { revision } });
  }

  range(key: string, rangeEnd?: string, extra: etcdserverpb.IRangeRequest = {}): etcdserverpb.IRangeResponse {
    return this.store.range({ key: b(key), rangeEnd: rangeEnd === undefined ? undefined : b(rangeEnd), ...extra });
  }

  /** key=value pairs of a range, in response order. */
  pairs(key: string, rangeEnd?: string, extra: etcdserverpb.IRangeRequest = {}): string[] {
    return (this.range(key, rangeEnd, extra).kvs ?? []).map((kv) => `${str(kv.key)}=${str(kv.value)}`);
  }

  async reopen(): Promise<void> {
    await this.store.close();
    this.store = MvccWriter.open(this.dir);
  }

  async close(): Promise<void> {
    await this.store.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A KeyValue's numbers: [create, mod, version]. */
export function revs(kv: { createRevision?: unknown; modRevision?: unknown; version?: unknown } | null | undefined): number[] {
  if (!kv) return [];
  return [toNum(kv.createRevision as number), toNum(kv.modRevision as number), toNum(kv.version as number)];
}
