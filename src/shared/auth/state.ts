// The auth store's rules as etcd 3.4's authStore applies them (auth/store.go, range_perm_cache.go),
// over an AuthSnapshot read from LMDB. Both threads hold one: the apply worker checks writes and
// auth management at apply time (etcd's authApplierV3), the main thread checks reads, watches and
// admin-only calls before serving them. Rebuilt whole after every auth change, as etcd refreshes its
// range permission cache; a check is then a map lookup and a binary search, never a scan of roles.
//
// Invariants: each user's read and write intervals are merged (sorted, disjoint, non-adjacent), so
// "do the permissions cover [key, end)" (etcd's IntervalTree.Contains) is one binary search.
import { authpb } from '../gen/etcd';
import { Errors } from '../errors';
import type { AuthSnapshot } from '../mvcc/auth';

export const ROOT_USER = 'root';
export const ROOT_ROLE = 'root';

/** Who is calling: etcd's AuthInfo (revision 0: no credentials). */
export interface AuthInfo {
  user: string;
  revision: number;
}

export const enum PermType {
  Read = 0,
  Write = 1,
  ReadWrite = 2,
}

/** [start, end) over byte strings; end null is +infinity (etcd's empty BytesAffineComparable). */
interface Interval {
  start: Buffer;
  end: Buffer | null;
}

/** Merged, sorted, disjoint intervals. */
class IntervalSet {
  readonly #ivs: Interval[];

  constructor(ivs: Interval[]) {
    this.#ivs = mergeIntervals(ivs);
  }

  /** Does one interval hold the key? (etcd's checkKeyPoint: Intersects with the point.) */
  containsKey(key: Buffer): boolean {
    const iv = this.#floor(key);
    return iv !== undefined && (iv.end === null || key.compare(iv.end) < 0);
  }

  /** Do the intervals cover all of [start, end)? (etcd's checkKeyInterval: Contains.) */
  covers(start: Buffer, end: Buffer | null): boolean {
    const iv = this.#floor(start);
    if (iv === undefined || (iv.end !== null && start.compare(iv.end) >= 0)) return false;
    if (iv.end === null) return true;
    return end !== null && end.compare(iv.end) <= 0;
  }

  /** The last interval starting at or before key. */
  #floor(key: Buffer): Interval | undefined {
    let lo = 0;
    let hi = this.#ivs.length - 1;
    let found: Interval | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.#ivs[mid].start.compare(key) <= 0) {
        found = this.#ivs[mid];
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }
}

function endCmp(a: Buffer | null, b: Buffer | null): number {
  if (a === null) return b === null ? 0 : 1;
  if (b === null) return -1;
  return a.compare(b);
}

function mergeIntervals(ivs: Interval[]): Interval[] {
  const sorted = ivs.filter((iv) => iv.end === null || iv.start.compare(iv.end) < 0).sort((a, b) => a.start.compare(b.start));
  const out: Interval[] = [];
  for (const iv of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && (last.end === null || iv.start.compare(last.end) <= 0)) {
      if (endCmp(iv.end, last.end) > 0) last.end = iv.end;
    } else out.push({ start: iv.start, end: iv.end });
  }
  return out;
}

/** A permission's interval as etcd's getMergedPerms builds it: no range end is the key itself,
 * range end "\0" is every key from the key on. */
function permInterval(p: authpb.IPermission): Interval {
  const key = Buffer.from(p.key ?? new Uint8Array(0));
  const re = p.rangeEnd ?? new Uint8Array(0);
  if (re.length === 0) return { start: key, end: Buffer.concat([key, Buffer.from([0])]) };
  if (re.length === 1 && re[0] === 0) return { start: key, end: null };
  return { start: key, end: Buffer.from(re) };
}

interface UserPerms {
  read: IntervalSet;
  write: IntervalSet;
  isRoot: boolean;
}

export class AuthState {
  readonly enabled: boolean;
  readonly revision: number;
  readonly #snap: AuthSnapshot;
  readonly #perms = new Map<string, UserPerms>();

  constructor(snap: AuthSnapshot) {
    this.#snap = snap;
    this.enabled = snap.enabled;
    this.revision = snap.revision;
    for (const [name, u] of snap.users) this.#perms.set(name, this.#merge(u));
  }

  static empty(): AuthState {
    return new AuthState({ enabled: false, revision: 0, users: new Map(), roles: new Map() });
  }

  get snapshot(): AuthSnapshot {
    return this.#snap;
  }

  user(name: string): authpb.IUser | undefined {
    return this.#snap.users.get(name);
  }

  role(name: string): authpb.IRole | undefined {
    return this.#snap.roles.get(name);
  }

  #merge(u: authpb.IUser): UserPerms {
    const read: Interval[] = [];
    const write: Interval[] = [];
    for (const roleName of u.roles ?? []) {
      const role = this.#snap.roles.get(roleName);
      if (role === undefined) continue;
      for (const p of role.keyPermission ?? []) {
        const iv = permInterval(p);
        const t = (p.permType ?? 0) as number;
        if (t === PermType.Read || t === PermType.ReadWrite) read.push(iv);
        if (t === PermType.Write || t === PermType.ReadWrite) write.push({ ...iv });
      }
    }
    return { read: new IntervalSet(read), write: new IntervalSet(write), isRoot: hasRootRole(u) };
  }

  /** etcd's isOpPermitted: throws the error etcd returns, or returns when the operation may run. */
  checkOp(
    ai: AuthInfo | null,
    key: Uint8Array | null | undefined,
    rangeEnd: Uint8Array | null | undefined,
    type: PermType.Read | PermType.Write,
  ): void {
    if (!this.enabled) return;
    if (ai === null || ai.revision === 0) throw Errors.userEmpty();
    if (ai.revision < this.revision) throw Errors.authOldRevision();
    const perms = this.#perms.get(ai.user);
    if (perms === undefined) throw Errors.permissionDenied();
    if (perms.isRoot) return;
    const set = type === PermType.Read ? perms.read : perms.write;
    const k = Buffer.from(key ?? new Uint8Array(0));
    const re = rangeEnd ?? new Uint8Array(0);
    let ok: boolean;
    if (re.length === 0) ok = set.containsKey(k);
    else ok = set.covers(k, re.length === 1 && re[0] === 0 ? null : Buffer.from(re));
    if (!ok) throw Errors.permissionDenied();
  }

  checkRange(ai: AuthInfo | null, key: Uint8Array | null | undefined, rangeEnd: Uint8Array | null | undefined): void {
    this.checkOp(ai, key, rangeEnd, PermType.Read);
  }

  checkPut(ai: AuthInfo | null, key: Uint8Array | null | undefined): void {
    this.checkOp(ai, key, null, PermType.Write);
  }

  checkDeleteRange(ai: AuthInfo | null, key: Uint8Array | null | undefined, rangeEnd: Uint8Array | null | undefined): void {
    this.checkOp(ai, key, rangeEnd, PermType.Write);
  }

  /** etcd's IsAdminPermitted (no revision check, as etcd). */
  checkAdmin(ai: AuthInfo | null): void {
    if (!this.enabled) return;
    if (ai === null || ai.user === '') throw Errors.userEmpty();
    const u = this.#snap.users.get(ai.user);
    if (u === undefined) throw Errors.userNotFound();
    if (!hasRootRole(u)) throw Errors.permissionDenied();
  }

  hasRole(user: string, role: string): boolean {
    return (this.#snap.users.get(user)?.roles ?? []).includes(role);
  }

  /** etcd's checkTxnAuth, with nested txns checked too (etcd 3.4 skipped them: a hole etcd 3.5 closed). */
  checkTxn(
    ai: AuthInfo | null,
    txn: {
      compare?: Array<{ key?: Uint8Array | null; rangeEnd?: Uint8Array | null }> | null;
      success?: TxnOp[] | null;
      failure?: TxnOp[] | null;
    },
  ): void {
    if (!this.enabled) return;
    for (const c of txn.compare ?? []) this.checkRange(ai, c.key, c.rangeEnd);
    this.#checkOps(ai, txn.success ?? []);
    this.#checkOps(ai, txn.failure ?? []);
  }

  #checkOps(ai: AuthInfo | null, ops: TxnOp[]): void {
    for (const op of ops) {
      if (op.requestRange) this.checkRange(ai, op.requestRange.key, op.requestRange.rangeEnd);
      else if (op.requestPut) {
        this.checkPut(ai, op.requestPut.key);
        if (op.requestPut.prevKv) this.checkRange(ai, op.requestPut.key, null);
      } else if (op.requestDeleteRange) {
        const d = op.requestDeleteRange;
        if (d.prevKv) this.checkRange(ai, d.key, d.rangeEnd);
        this.checkDeleteRange(ai, d.key, d.rangeEnd);
      } else if (op.requestTxn) this.checkTxn(ai, op.requestTxn);
    }
  }
}

interface TxnOp {
  requestRange?: { key?: Uint8Array | null; rangeEnd?: Uint8Array | null } | null;
  requestPut?: { key?: Uint8Array | null; prevKv?: boolean | null } | null;
  requestDeleteRange?: { key?: Uint8Array | null; rangeEnd?: Uint8Array | null; prevKv?: boolean | null } | null;
  requestTxn?: Parameters<AuthState['checkTxn']>[1] | null;
}

/** etcd's hasRootRole (roles are kept sorted, but a linear look is as cheap for a handful). */
export function hasRootRole(u: authpb.IUser): boolean {
  return (u.roles ?? []).includes(ROOT_ROLE);
}
