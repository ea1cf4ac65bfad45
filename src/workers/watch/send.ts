// How one watcher's matched events become responses. Without `fragment`, responses are cut only between
// revisions (a txn's events always arrive together), once they pass watchResponseBytesSoftMax. With
// `fragment`, a response at or above etcd's limit (--max-request-bytes plus gRPC's 512 KiB overhead, as
// etcd's watch server uses) is cut as etcd's sendFragments does (v3rpc/watch.go):
// each piece takes events while it stays under the limit (at least one), all but the last flagged fragment.
import { limits } from '../../shared/limits';

/** Bytes etcd counts for a response beyond its events (header, watch_id, flags), roughly. */
const RESPONSE_OVERHEAD_BYTES = 64;

export type EmitFn = (events: readonly Uint8Array[], fragment: boolean) => void;

/** Returns false when one revision exceeds maxPayload and cannot be sent whole (no fragment asked). */
export function sendEvents(parts: readonly Uint8Array[], revs: readonly number[], fragment: boolean, maxRequestBytes: number,
  maxPayload: number, emit: EmitFn): boolean {
  if (fragment) {
    // As etcd: one response for everything, fragmented if large (fragments bound each piece).
    let total = 0;
    for (const p of parts) total += p.length;
    emitFragments(parts, total, maxRequestBytes, emit);
    return true;
  }
  let from = 0;
  let bytes = 0;
  for (let i = 0; i < parts.length; i++) {
    bytes += parts[i].length;
    const revisionEnds = i + 1 === parts.length || revs[i + 1] !== revs[i];
    if (!revisionEnds || (bytes < limits.watchResponseBytesSoftMax && i + 1 < parts.length)) continue;
    if (bytes > maxPayload) return false;
    emit(parts.slice(from, i + 1), false);
    from = i + 1;
    bytes = 0;
  }
  return true;
}

function emitFragments(events: readonly Uint8Array[], bytes: number, maxRequestBytes: number, emit: EmitFn): void {
  if (bytes + RESPONSE_OVERHEAD_BYTES < maxRequestBytes || events.length < 2) {
    emit(events, false);
    return;
  }
  let i = 0;
  while (i < events.length) {
    let size = RESPONSE_OVERHEAD_BYTES;
    const from = i;
    while (i < events.length) {
      size += events[i].length;
      if (i > from && size >= maxRequestBytes) break;
      i++;
    }
    emit(events.slice(from, i), i < events.length);
  }
}
