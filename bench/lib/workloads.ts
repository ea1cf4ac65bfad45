// The workloads of the bench tool over etcd's gRPC API, modelled on etcd's own `benchmark` tool
// (tools/benchmark: put, range, txn-put, watch, watch-latency, lease-keepalive, ...). Used on both
// sides: the main thread validates options and plans a run; each load worker builds its requests.
//
// Requests are not encoded per call. For each request shape a worker encodes one template (a framed
// gRPC message) per client, with placeholder keys of the final key length, and records where each
// key's digits sit in the buffer; a call writes the key index's digits in place and sends the same
// buffer again. That is safe because a client has at most one request in flight, and node:http2 is
// done with a request's buffer once its stream has closed.
import { etcdserverpb } from '../../src/shared/gen/etcd';
import { frameGrpc } from './h2_client';

/** Unary and client-streaming KV/Lease workloads, run by the load workers (load_worker.ts). */
export const kvWorkloads = [
  'put', 'range', 'range-prefix', 'txn-put', 'txn-compare', 'delete', 'mixed',
  'lease-keepalive', 'lease-grant-revoke',
] as const;
/** Watch workloads, run on the main thread by watch_load.ts. */
export const watchWorkloads = ['watch', 'watch-latency'] as const;
export const allWorkloads = [...kvWorkloads, ...watchWorkloads] as const;

export type KvWorkloadName = typeof kvWorkloads[number];
export type WatchWorkloadName = typeof watchWorkloads[number];
export type WorkloadName = typeof allWorkloads[number];

export function isWorkloadName(s: string): s is WorkloadName {
  return (allWorkloads as readonly string[]).includes(s);
}
export function isWatchWorkload(s: WorkloadName): s is WatchWorkloadName {
  return (watchWorkloads as readonly string[]).includes(s);
}

/** What a request looks like. Plain data, so that it can be posted to a worker. */
export interface RequestOptions {
  keySize: number;       // bytes per key (prefix + zero-padded decimal index)
  valueSize: number;     // bytes per value
  keySpace: number;      // keys are indexes [0, keySpace)
  seqKeys: boolean;      // sequential keys (per client, interleaved) instead of uniform random
  consistency: 'l' | 's'; // Range: linearizable or serializable
  rangeSpan: number;     // range-prefix: keys per Range ([key(i), key(i + span)))
  txnOps: number;        // txn-put: puts per Txn
  readRatio: number;     // mixed: share of Ranges (the rest are Puts), 0..1
  leaseTtl: number;      // lease workloads: TTL of granted leases, seconds
}

export const defaultRequestOptions: RequestOptions = {
  keySize: 16, valueSize: 256, keySpace: 10_000, seqKeys: false, consistency: 'l',
  rangeSpan: 10, txnOps: 1, readRatio: 0.9, leaseTtl: 60,
};

/** Workloads that read or compare keys: the key space is written once before they run. */
export function needsPreload(w: WorkloadName): boolean {
  return w === 'range' || w === 'range-prefix' || w === 'txn-compare' || w === 'delete' || w === 'mixed';
}

export const paths = {
  put: '/etcdserverpb.KV/Put',
  range: '/etcdserverpb.KV/Range',
  txn: '/etcdserverpb.KV/Txn',
  deleteRange: '/etcdserverpb.KV/DeleteRange',
  leaseGrant: '/etcdserverpb.Lease/LeaseGrant',
  leaseRevoke: '/etcdserverpb.Lease/LeaseRevoke',
  leaseKeepAlive: '/etcdserverpb.Lease/LeaseKeepAlive',
  watch: '/etcdserverpb.Watch/Watch',
  status: '/etcdserverpb.Maintenance/Status',
} as const;

// ---- keys ----

export interface KeyLayout { prefix: Buffer; digits: number }

/**
 * Keys are `prefix + index` zero-padded to keySize bytes. The prefix is "bench/key/" when it fits
 * (the key the older benchmarks used at 16 bytes), else "k", so that small --key-size values work.
 * `maxIndex` is the largest index written (range-prefix writes key(i + span) as the range end).
 */
export function keyLayout(keySize: number, maxIndex: number): KeyLayout {
  const need = String(Math.max(0, maxIndex)).length;
  for (const p of ['bench/key/', 'k']) {
    if (keySize - p.length >= need) return { prefix: Buffer.from(p), digits: keySize - p.length };
  }
  throw new Error(`--key-size ${keySize} is too small for ${maxIndex + 1} keys (needs at least ${need + 1} bytes)`);
}

export function layoutFor(o: RequestOptions): KeyLayout {
  return keyLayout(o.keySize, o.keySpace - 1 + o.rangeSpan);
}

/** The key with index i, as a fresh buffer (setup and checks; the hot path writes digits in place). */
export function keyAt(l: KeyLayout, i: number): Buffer {
  const b = Buffer.alloc(l.prefix.length + l.digits);
  l.prefix.copy(b, 0);
  writeDigits(b, l.prefix.length, l.digits, i);
  return b;
}

/** The first key after every key with this prefix (etcd's prefix range end): the server's own. */
export { prefixEnd } from '../../src/shared/key_range';

/** Writes n as `digits` zero-padded decimal ASCII digits at buf[off..]. */
export function writeDigits(buf: Buffer, off: number, digits: number, n: number): void {
  for (let i = off + digits - 1; i >= off; i--) {
    const q = Math.floor(n / 10);
    buf[i] = 48 + (n - q * 10);
    n = q;
  }
}

// ---- templates ----

/** One framed request with key slots: offsets of the digits of each key placeholder. */
export interface Template {
  path: string;
  framed: Buffer;
  slots: number[][]; // slots[k] = every offset where key k's digits are (a key may appear twice)
  digits: number;
}

function placeholder(l: KeyLayout, slot: number): Buffer {
  return Buffer.concat([l.prefix, Buffer.alloc(l.digits, 0xf0 + slot)]);
}

function template(path: string, message: Uint8Array, l: KeyLayout, slotCount: number): Template {
  const framed = frameGrpc(message);
  const slots: number[][] = [];
  for (let k = 0; k < slotCount; k++) {
    const ph = placeholder(l, k);
    const at: number[] = [];
    for (let i = framed.indexOf(ph); i >= 0; i = framed.indexOf(ph, i + 1)) at.push(i + l.prefix.length);
    if (at.length === 0) throw new Error(`template ${path}: key slot ${k} not found`);
    slots.push(at);
  }
  return { path, framed, slots, digits: l.digits };
}

/** Sets key slot k of a template to key index i. */
export function setKey(t: Template, k: number, i: number): void {
  const at = t.slots[k];
  for (let j = 0; j < at.length; j++) writeDigits(t.framed, at[j], t.digits, i);
}

/** A value of valueSize bytes of letters, deterministic per seed. */
export function makeValue(valueSize: number, seed: number): Buffer {
  let x = (seed ^ 0x5bd1e995) >>> 0 || 1;
  const v = Buffer.alloc(valueSize);
  for (let i = 0; i < v.length; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    v[i] = 97 + (x % 26);
  }
  return v;
}

export function putTemplate(_o: RequestOptions, l: KeyLayout, value: Buffer): Template {
  return template(paths.put, etcdserverpb.PutRequest.encode({ key: placeholder(l, 0), value }).finish(), l, 1);
}

export function rangeTemplate(o: RequestOptions, l: KeyLayout, span: boolean): Template {
  const req: etcdserverpb.IRangeRequest = { key: placeholder(l, 0), serializable: o.consistency === 's' };
  if (span) req.rangeEnd = placeholder(l, 1);
  return template(paths.range, etcdserverpb.RangeRequest.encode(req).finish(), l, span ? 2 : 1);
}

export function txnPutTemplate(o: RequestOptions, l: KeyLayout, value: Buffer): Template {
  const success = Array.from({ length: o.txnOps }, (_, k) => ({ requestPut: { key: placeholder(l, k), value } }));
  return template(paths.txn, etcdserverpb.TxnRequest.encode({ success }).finish(), l, o.txnOps);
}

/** Txn: if version(key) > 0 (the key exists) then put(key) else range(key). */
export function txnCompareTemplate(_o: RequestOptions, l: KeyLayout, value: Buffer): Template {
  const key = placeholder(l, 0);
  const msg = etcdserverpb.TxnRequest.encode({
    compare: [{ key, target: etcdserverpb.Compare.CompareTarget.VERSION, result: etcdserverpb.Compare.CompareResult.GREATER, version: 0 }],
    success: [{ requestPut: { key, value } }],
    failure: [{ requestRange: { key } }],
  }).finish();
  return template(paths.txn, msg, l, 1);
}

export function deleteTemplate(_o: RequestOptions, l: KeyLayout): Template {
  return template(paths.deleteRange, etcdserverpb.DeleteRangeRequest.encode({ key: placeholder(l, 0) }).finish(), l, 1);
}

// ---- lease requests (hand-encoded: the lease ID is written in place as a fixed-width varint) ----

/**
 * Lease IDs are chosen by the client (LeaseGrantRequest.ID) so that no response has to be decoded:
 * id = 2^56 + n, n < 2^48, whose varint is always 9 bytes. n carries a per-run nonce, so that runs
 * against the same server do not collide.
 */
export const leaseIdVarintBytes = 9;

/** Writes the 9-byte varint of 2^56 + n (0 <= n < 2^48) at buf[off..]. */
export function writeLeaseIdVarint(buf: Buffer, off: number, n: number): void {
  for (let i = 0; i < 8; i++) {
    const q = Math.floor(n / 128);
    buf[off + i] = 0x80 | (n - q * 128);
    n = q;
  }
  buf[off + 8] = 0x01; // bit 56
}

export function leaseIdBigInt(n: number): bigint {
  return (1n << 56n) + BigInt(n);
}

/** Varint of a non-negative integer below 2^53. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 128) { const q = Math.floor(n / 128); out.push(0x80 | (n - q * 128)); n = q; }
  out.push(n);
  return out;
}

/** LeaseGrantRequest {TTL = 1, ID = 2}; returns the buffer and the ID varint's offset. */
export function leaseGrantFrame(ttl: number): { framed: Buffer; idAt: number } {
  const ttlBytes = varint(ttl);
  const msg = Buffer.from([0x08, ...ttlBytes, 0x10, ...new Array<number>(leaseIdVarintBytes).fill(0)]);
  return { framed: frameGrpc(msg), idAt: 5 + 2 + ttlBytes.length };
}

/** LeaseRevokeRequest / LeaseKeepAliveRequest {ID = 1}; returns the buffer and the ID varint's offset. */
export function leaseIdFrame(): { framed: Buffer; idAt: number } {
  return { framed: frameGrpc(Buffer.from([0x08, ...new Array<number>(leaseIdVarintBytes).fill(0)])), idAt: 6 };
}

// ---- human descriptions ----

export function describe(w: WorkloadName, o: RequestOptions): string {
  const keys = `${o.keySize}-byte keys, ${o.seqKeys ? 'sequential' : 'uniform random'} over ${o.keySpace}`;
  const cons = o.consistency === 's' ? 'serializable' : 'linearizable';
  switch (w) {
    case 'put': return `Put, ${keys}, ${o.valueSize}-byte values`;
    case 'range': return `Range (${cons}) of one preloaded key, ${keys}`;
    case 'range-prefix': return `Range (${cons}) of ${o.rangeSpan} consecutive preloaded keys, ${keys}`;
    case 'txn-put': return `Txn of ${o.txnOps} Put(s), ${keys}, ${o.valueSize}-byte values`;
    case 'txn-compare': return `Txn if version(key) > 0 then Put else Range, preloaded ${keys}, ${o.valueSize}-byte values`;
    case 'delete': return `DeleteRange of one key of a preloaded key space (keys already deleted are misses), ${keys}`;
    case 'mixed': return `${Math.round(o.readRatio * 100)}% Range (${cons}) / ${Math.round((1 - o.readRatio) * 100)}% Put, preloaded ${keys}, ${o.valueSize}-byte values`;
    case 'lease-keepalive': return `LeaseKeepAlive on a bidi stream per client, one lease (TTL ${o.leaseTtl} s) per client`;
    case 'lease-grant-revoke': return `LeaseGrant (TTL ${o.leaseTtl} s) then LeaseRevoke of it, each counted as a request`;
    case 'watch': return 'watchers on a prefix while writers put under it: events delivered/s and Put → event latency';
    case 'watch-latency': return 'Puts at a fixed rate to one key watched by every watcher: Put → event latency';
  }
}
