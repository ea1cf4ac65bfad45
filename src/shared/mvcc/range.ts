// etcd's applierV3backend.Range over a ReadView: limit+1 for `more`, fetch-all when sorting or filtering,
// count of every key in the interval (filters and limit do not change it), default ASCEND for non-KEY targets.
import { etcdserverpb } from '../gen/etcd';
import { Kv, approxNum, toPb } from './records';
import { ReadView, toInterval } from './view';
import { bytesCompare } from './keys';

const SortOrder = etcdserverpb.RangeRequest.SortOrder;
const SortTarget = etcdserverpb.RangeRequest.SortTarget;

export function applyRange(view: ReadView, r: etcdserverpb.IRangeRequest): etcdserverpb.IRangeResponse {
  const reqLimit = approxNum(r.limit);
  const minMod = approxNum(r.minModRevision);
  const maxMod = approxNum(r.maxModRevision);
  const minCreate = approxNum(r.minCreateRevision);
  const maxCreate = approxNum(r.maxCreateRevision);
  const sortOrder = r.sortOrder ?? SortOrder.NONE;
  const sortTarget = r.sortTarget ?? SortTarget.KEY;

  let limit = reqLimit;
  if (sortOrder !== SortOrder.NONE || minMod !== 0 || maxMod !== 0 || minCreate !== 0 || maxCreate !== 0) limit = 0;
  if (limit > 0) limit = limit + 1;

  const rr = view.rangeKeys(toInterval(r.key, r.rangeEnd), {
    rev: approxNum(r.revision),
    limit,
    countOnly: r.countOnly === true,
  });
  let kvs = rr.kvs;
  if (maxMod !== 0 || minMod !== 0 || maxCreate !== 0 || minCreate !== 0) {
    // One pass; a bound of 0 is unset (etcd's filters).
    kvs = kvs.filter((kv) => (maxMod === 0 || kv.mod <= maxMod) && (minMod === 0 || kv.mod >= minMod) &&
      (maxCreate === 0 || kv.create <= maxCreate) && (minCreate === 0 || kv.create >= minCreate));
  }

  let order = sortOrder;
  if (sortTarget !== SortTarget.KEY && order === SortOrder.NONE) order = SortOrder.ASCEND;
  if (order === SortOrder.ASCEND || order === SortOrder.DESCEND) sortKvs(kvs, sortTarget, order === SortOrder.DESCEND);

  const resp: etcdserverpb.IRangeResponse = { header: { revision: rr.rev } };
  if (reqLimit > 0 && kvs.length > reqLimit) {
    kvs = kvs.slice(0, reqLimit);
    resp.more = true;
  }
  if (rr.count !== 0) resp.count = rr.count;
  if (kvs.length > 0) resp.kvs = kvs.map((kv) => toPb(kv, r.keysOnly === true));
  return resp;
}

/**
 * Go's sort.Sort is not stable, but for up to 12 elements it is an insertion sort, which is: ties keep key
 * order for ASCEND and DESCEND alike. A stable sort reproduces that for small results and is deterministic
 * for large ones. Sort targets outside the enum are refused by validateRange (etcd 3.4 crashes on them).
 */
function sortKvs(kvs: Kv[], target: number, descending: boolean): void {
  const sign = descending ? -1 : 1;
  const cmp = (a: Kv, b: Kv): number => {
    switch (target) {
      case SortTarget.KEY: return bytesCompare(a.key, b.key);
      case SortTarget.VERSION: return a.version - b.version;
      case SortTarget.CREATE: return a.create - b.create;
      case SortTarget.MOD: return a.mod - b.mod;
      case SortTarget.VALUE: return bytesCompare(a.value, b.value);
      default: return 0;
    }
  };
  kvs.sort((a, b) => sign * Math.sign(cmp(a, b)));
}
