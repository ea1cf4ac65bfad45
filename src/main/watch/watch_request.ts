// WatchRequest -> control message for the watch worker, with etcd's normalisation (v3rpc/watch.go recvLoop):
// an empty key is "\0" (the smallest key), an empty range_end is a single key, range_end "\0" is every key
// >= key. Unknown or empty request unions are ignored, as etcd does.
import { etcdserverpb } from '../../shared/gen/etcd';
import { EtcdError, GrpcCode } from '../../shared/errors';
import { toNum } from '../../shared/long';
import {
  CREATE_FRAGMENT, CREATE_FROM_KEY, CREATE_NO_DELETE, CREATE_NO_PUT, CREATE_PREV_KV, CREATE_PROGRESS_NOTIFY, CreateMsg,
} from '../../shared/watch_protocol';

export type ParsedWatchRequest =
  | { kind: 'create'; msg: Omit<CreateMsg, 'streamId'> }
  | { kind: 'cancel'; watchId: number }
  | { kind: 'progress' }
  | { kind: 'ignore' };

const ZERO = new Uint8Array([0]);
const EMPTY = new Uint8Array(0);

export function parseWatchRequest(body: Uint8Array): ParsedWatchRequest {
  let req: etcdserverpb.WatchRequest;
  try {
    req = etcdserverpb.WatchRequest.decode(body);
  } catch (e) {
    // grpc-go fails the stream when a message does not unmarshal.
    throw new EtcdError(GrpcCode.Internal, `grpc: failed to unmarshal the received message ${(e as Error).message}`);
  }
  switch (req.requestUnion) {
    case 'createRequest': return parseCreate(req.createRequest!);
    case 'cancelRequest': return { kind: 'cancel', watchId: toNum(req.cancelRequest!.watchId) };
    case 'progressRequest': return { kind: 'progress' };
    default: return { kind: 'ignore' };
  }
}

function parseCreate(c: etcdserverpb.IWatchCreateRequest): ParsedWatchRequest {
  const key = c.key && c.key.length > 0 ? c.key : ZERO;
  let end = c.rangeEnd && c.rangeEnd.length > 0 ? c.rangeEnd : EMPTY;
  let flags = 0;
  if (end.length === 1 && end[0] === 0) {
    flags |= CREATE_FROM_KEY;
    end = EMPTY;
  }
  if (c.prevKv) flags |= CREATE_PREV_KV;
  if (c.progressNotify) flags |= CREATE_PROGRESS_NOTIFY;
  if (c.fragment) flags |= CREATE_FRAGMENT;
  for (const f of c.filters ?? []) {
    if (f === etcdserverpb.WatchCreateRequest.FilterType.NOPUT) flags |= CREATE_NO_PUT;
    else if (f === etcdserverpb.WatchCreateRequest.FilterType.NODELETE) flags |= CREATE_NO_DELETE;
  }
  // A negative start_revision reaches etcd's mvcc as is: below any compaction it is canceled as compacted,
  // otherwise it behaves as a replay from the first revision. Revision 0 means "from now".
  const startRevision = toNum(c.startRevision);
  return { kind: 'create', msg: { watchId: toNum(c.watchId), startRevision: startRevision < 0 ? 1 : startRevision, flags, key, end } };
}
