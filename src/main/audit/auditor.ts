// What goes into the audit log (docs/AUDIT.md): one JSON line per call that went through the auth gate
// while auth is enabled, allowed or refused, and, whatever the auth state, every change to users, roles
// and permissions, auth enable/disable and every Authenticate. The method table (net/rpc.ts
// GrpcMethods) calls unary() around each unary handler and stream() when a stream opens, but only while
// an Auditor is set: with the audit log off, a call pays one null check. Watch creations are reported
// by the watch service's authorize hook (member.ts), with their keys.
//
// Never in a line: a password (SHAPES never names the password fields of Authenticate, UserAdd and
// UserChangePassword, so they are never printed) or a token (the metadata is only handed to the auth
// gate, which returns the user).
import type { AuthGate } from '../auth/auth_gate';
import { EtcdError, GrpcCode, GRPC_CODE_NAMES as CODE_NAMES } from '../../shared/errors';
import { limits } from '../../shared/limits';
import { CallAudit, CallContext, failureStatus, MethodKind, UnaryHandler } from '../net/rpc';
import type { AuditLog } from './audit_log';

const PERM_TYPES = ['READ', 'WRITE', 'READWRITE'];

/** Which top-level request fields a method's line shows (protobuf field numbers). Never a password field. */
interface Shape {
  key?: number;
  end?: number;
  /** The user a user-management call (or Authenticate) is about. */
  user?: number;
  /** The role it is about. */
  role?: number;
  /** An authpb.Permission message: perm_type (1), key (2), range_end (3). */
  perm?: number;
  /** A TxnRequest: the keys of its compares and operations (txnFields). */
  txn?: true;
}

const AUTH = '/etcdserverpb.Auth/';
const AUTHENTICATE = AUTH + 'Authenticate';

const SHAPES = new Map<string, Shape>([
  ['/etcdserverpb.KV/Range', { key: 1, end: 2 }],
  ['/etcdserverpb.KV/Put', { key: 1 }],
  ['/etcdserverpb.KV/DeleteRange', { key: 1, end: 2 }],
  ['/etcdserverpb.KV/Txn', { txn: true }],
  ['/v3lockpb.Lock/Lock', { key: 1 }],
  ['/v3lockpb.Lock/Unlock', { key: 1 }],
  [AUTHENTICATE, { user: 1 }], // field 2, the password, is never printed
  [AUTH + 'UserAdd', { user: 1 }], // 2 password, 4 hashedPassword: never printed
  [AUTH + 'UserGet', { user: 1 }],
  [AUTH + 'UserDelete', { user: 1 }],
  [AUTH + 'UserChangePassword', { user: 1 }], // 2 password, 3 hashedPassword: never printed
  [AUTH + 'UserGrantRole', { user: 1, role: 2 }],
  [AUTH + 'UserRevokeRole', { user: 1, role: 2 }],
  [AUTH + 'RoleAdd', { role: 1 }],
  [AUTH + 'RoleGet', { role: 1 }],
  [AUTH + 'RoleDelete', { role: 1 }],
  [AUTH + 'RoleGrantPermission', { role: 1, perm: 2 }],
  [AUTH + 'RoleRevokePermission', { role: 1, key: 2, end: 3 }],
]);

/** Logged whatever the auth state: the changes to the auth store, and logins. */
const ALWAYS = new Set(
  [
    'AuthEnable',
    'AuthDisable',
    'Authenticate',
    'UserAdd',
    'UserDelete',
    'UserChangePassword',
    'UserGrantRole',
    'UserRevokeRole',
    'RoleAdd',
    'RoleDelete',
    'RoleGrantPermission',
    'RoleRevokePermission',
  ].map((m) => AUTH + m),
);

const WATCH = '/etcdserverpb.Watch/Watch';

export interface AuditorDeps {
  log: AuditLog;
  /** --name. */
  member: string;
  gate: AuthGate;
}

/** Raised to the client in blocking mode when its line could not be written. */
export function auditWriteFailed(): EtcdError {
  return new EtcdError(GrpcCode.Unavailable, 'etcd-ts: audit log write failed');
}

export class Auditor implements CallAudit {
  readonly #log: AuditLog;
  readonly #blocking: boolean;
  readonly #gate: AuthGate;
  /** `{"time":` is written per line; this is what follows the time: the member, JSON-quoted. */
  readonly #memberJson: string;

  constructor(d: AuditorDeps) {
    this.#log = d.log;
    this.#blocking = d.log.mode === 'blocking';
    this.#gate = d.gate;
    this.#memberJson = zapString(Buffer.from(d.member, 'utf8'));
  }

  /** Runs a unary call, and logs it when it is audited. */
  unary(path: string, kind: MethodKind, body: Uint8Array, ctx: CallContext, h: UnaryHandler): Promise<Uint8Array> | Uint8Array {
    if (!this.#gate.enabled && !ALWAYS.has(path)) return h(body, ctx);
    const start = Date.now();
    // The caller before the call: a UserDelete or a password change may end the caller's own token.
    const user = path === AUTHENTICATE ? '' : this.#caller(ctx);
    const head = this.#head(start, user, ctx, path) + requestFields(path, body);
    let out: Promise<Uint8Array> | Uint8Array;
    try {
      out = h(body, ctx);
    } catch (e) {
      return this.#failed(head, kind, e);
    }
    if (out instanceof Uint8Array) return this.#answered(head, out);
    return out.then(
      (resp) => this.#answered(head, resp),
      (e: unknown) => this.#failed(head, kind, e),
    );
  }

  /** A stream opened (err null) or was refused by the method guard. */
  stream(path: string, ctx: CallContext, err: unknown): void {
    if (!this.#gate.enabled) return;
    const head = this.#head(Date.now(), this.#caller(ctx), ctx, path);
    this.#write(head + result(err === null ? GrpcCode.OK : failureStatus(err, 'read').code, err), false);
  }

  /** A watch creation checked by the watch service: refusal is null when it was allowed. Not awaited
   * in blocking mode (a watch's events do not wait for its line). */
  watchCreate(ctx: CallContext, key: Uint8Array, end: Uint8Array, refusal: string | null): void {
    if (!this.#gate.enabled) return;
    let line = this.#head(Date.now(), this.#caller(ctx), ctx, WATCH) + keyField('key', key);
    if (end.length > 0) line += keyField('range_end', end);
    line += refusal === null ? result(GrpcCode.OK, null) : `,"code":"PermissionDenied","code_num":7,"error":${jsonString(refusal)}`;
    this.#write(line, false);
  }

  #caller(ctx: CallContext): string {
    return this.#gate.userOf(ctx); // '' for an invalid token: the call is refused, and its line says so
  }

  #head(t: number, user: string, ctx: CallContext, path: string): string {
    const remote = ctx.remoteAddress ?? '';
    return `{"time":"${new Date(t).toISOString()}","member":${this.#memberJson},"user":${zapString(Buffer.from(user, 'utf8'))},"remote":${jsonString(remote)},"method":${jsonString(path)}`;
  }

  #answered(head: string, resp: Uint8Array): Promise<Uint8Array> | Uint8Array {
    const rev = headerRevision(resp);
    const line = head + (rev > 0 ? `,"revision":${rev}` : '') + ',"code":"OK","code_num":0';
    if (!this.#blocking) {
      this.#write(line, false);
      return resp;
    }
    return this.#write(line, true).then(() => resp);
  }

  #failed(head: string, kind: MethodKind, e: unknown): Promise<never> | never {
    const st = failureStatus(e, kind);
    const line = head + result(st.code, e);
    if (!this.#blocking) {
      this.#write(line, false);
      throw e;
    }
    // The call failed either way: its own error is what the client gets, written or not.
    return this.#write(line, true).then(
      () => {
        throw e;
      },
      () => {
        throw e;
      },
    );
  }

  #write(line: string, wait: boolean): Promise<void> {
    if (!wait) {
      this.#log.append(line + '}\n');
      return DONE;
    }
    return this.#log.appendAndWait(line + '}\n').catch(() => {
      throw auditWriteFailed();
    });
  }
}

const DONE = Promise.resolve();

/** ,"code":..,"code_num":.. and, for etcd's own errors (fixed texts), the message. */
function result(code: number, e: unknown): string {
  let s = `,"code":"${CODE_NAMES[code] ?? 'Unknown'}","code_num":${code}`;
  if (e instanceof EtcdError) s += `,"error":${jsonString(e.message)}`;
  return s;
}

function jsonString(s: string): string {
  return JSON.stringify(s);
}

// --- request fields, read from the protobuf bytes without decoding the whole request ---

/** The fields of SHAPES for this method, as `,"name":value` pieces. */
export function requestFields(path: string, body: Uint8Array): string {
  const shape = SHAPES.get(path);
  if (shape === undefined) return '';
  const f = topLevelFields(body);
  let s = '';
  if (shape.user !== undefined) s += keyField('target_user', f.get(shape.user) ?? EMPTY);
  if (shape.role !== undefined) s += keyField('target_role', f.get(shape.role) ?? EMPTY);
  if (shape.perm !== undefined) {
    const p = topLevelFields(f.get(shape.perm) ?? EMPTY);
    const t = p.get(1);
    s += `,"perm_type":"${PERM_TYPES[t === undefined ? 0 : t[0]] ?? 'UNKNOWN'}"` + keyField('key', p.get(2) ?? EMPTY);
    const e = p.get(3);
    if (e !== undefined && e.length > 0) s += keyField('range_end', e);
  }
  if (shape.key !== undefined) s += keyField('key', f.get(shape.key) ?? EMPTY);
  if (shape.end !== undefined) {
    const e = f.get(shape.end);
    if (e !== undefined && e.length > 0) s += keyField('range_end', e);
  }
  if (shape.txn === true) s += txnFields(body);
  return s;
}

/** RequestOp's fields (etcdserverpb): the operation each holds, and its key and range_end fields. */
const REQUEST_OPS: ReadonlyArray<[field: number, op: string, key: number, end: number]> = [
  [1, 'range', 1, 2],
  [2, 'put', 1, 0],
  [3, 'delete_range', 1, 2],
];
/** TxnRequest: compare (1), success (2), failure (3); Compare: key (3), range_end (64); RequestOp.request_txn (4). */
const TXN_COMPARE = 1;
const TXN_SUCCESS = 2;
const TXN_FAILURE = 3;
const COMPARE_KEY = 3;
const COMPARE_END = 64;
const REQUEST_TXN = 4;

/**
 * `,"txn":[{"op":..,"key":..,"range_end":..},...]`: what a Txn compares and touches, in request order
 * (compares, then the success branch, then the failure branch, a nested txn's in its place), whichever
 * branch ran. At most auditTxnOpsMax items, then `,"txn_truncated":true`.
 */
function txnFields(body: Uint8Array): string {
  const items: string[] = [];
  let truncated = false;
  const add = (op: string, key: Uint8Array | undefined, end: Uint8Array | undefined): void => {
    if (items.length >= limits.auditTxnOpsMax) {
      truncated = true;
      return;
    }
    let item = `{"op":"${op}"` + keyField('key', key ?? EMPTY);
    if (end !== undefined && end.length > 0) item += keyField('range_end', end);
    items.push(item + '}');
  };
  const walk = (txn: Uint8Array, depth: number): void => {
    for (const [field, value] of lengthDelimitedFields(txn)) {
      if (field === TXN_COMPARE) {
        const c = topLevelFields(value);
        add('compare', c.get(COMPARE_KEY), c.get(COMPARE_END));
      } else if (field === TXN_SUCCESS || field === TXN_FAILURE) {
        for (const [opField, req] of lengthDelimitedFields(value)) {
          if (opField === REQUEST_TXN) {
            // Nesting is bounded by the request's size; the depth bound keeps a hostile one cheap.
            if (depth < limits.auditTxnOpsMax) walk(req, depth + 1);
            else truncated = true;
            continue;
          }
          const shape = REQUEST_OPS.find((r) => r[0] === opField);
          if (shape === undefined) continue;
          const f = topLevelFields(req);
          add(shape[1], f.get(shape[2]), shape[3] === 0 ? undefined : f.get(shape[3]));
        }
      }
    }
  };
  walk(body, 0);
  return `,"txn":[${items.join(',')}]` + (truncated ? ',"txn_truncated":true' : '');
}

const EMPTY = new Uint8Array(0);

/** `,"name":"<bytes as zap prints them>"`, cut at auditKeyBytesMax (then `,"name_truncated":true`). */
function keyField(name: string, b: Uint8Array): string {
  const max = limits.auditKeyBytesMax;
  if (b.length <= max) return `,"${name}":${zapString(b)}`;
  return `,"${name}":${zapString(b.subarray(0, max))},"${name}_truncated":true`;
}

/**
 * Length-delimited fields and varints at the top level of a message: field number -> bytes (the
 * last occurrence, as protobuf does); a varint is returned as one byte holding its low 7 bits, enough
 * for an enum. A malformed message yields what was read before the damage (the handler refuses it).
 */
export function topLevelFields(b: Uint8Array): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  walkFields(b, (field, value) => out.set(field, value));
  return out;
}

/** Every length-delimited field at the top level of a message, repeated ones included, in order. */
export function lengthDelimitedFields(b: Uint8Array): Array<[number, Uint8Array]> {
  const out: Array<[number, Uint8Array]> = [];
  walkFields(b, (field, value, wire) => {
    if (wire === 2) out.push([field, value]);
  });
  return out;
}

/** Visits the top-level varint (as one byte holding its low 7 bits) and length-delimited fields of a
 * message, stopping at the first malformed byte. */
function walkFields(b: Uint8Array, visit: (field: number, value: Uint8Array, wire: number) => void): void {
  let i = 0;
  while (i < b.length) {
    const tag = readVarint(b, i);
    if (tag === null) break;
    i = tag.next;
    const field = Math.floor(tag.value / 8);
    const wire = tag.value % 8;
    if (wire === 0) {
      const v = readVarint(b, i);
      if (v === null) break;
      visit(field, Uint8Array.of(v.value % 128), 0);
      i = v.next;
    } else if (wire === 2) {
      const n = readVarint(b, i);
      if (n === null || n.next + n.value > b.length) break;
      visit(field, b.subarray(n.next, n.next + n.value), 2);
      i = n.next + n.value;
    } else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else break;
  }
}

/** A varint as a number (exact up to 2^53; revisions are far below). */
function readVarint(b: Uint8Array, at: number): { value: number; next: number } | null {
  let value = 0;
  let mul = 1;
  for (let i = at; i < b.length && i < at + 10; i++) {
    const c = b[i];
    value += (c & 0x7f) * mul;
    mul *= 128;
    if (c < 0x80) return { value, next: i + 1 };
  }
  return null;
}

/** The revision of a response's header (field 1 of every etcd response; revision is its field 3),
 * or 0 when there is none (Defragment's response has no header). */
export function headerRevision(resp: Uint8Array): number {
  if (resp.length < 2 || resp[0] !== 0x0a) return 0;
  const n = readVarint(resp, 1);
  if (n === null || n.next + n.value > resp.length) return 0;
  const h = resp.subarray(n.next, n.next + n.value);
  let i = 0;
  while (i < h.length) {
    const tag = readVarint(h, i);
    if (tag === null) return 0;
    const v = readVarint(h, tag.next);
    if (v === null || tag.value % 8 !== 0) return 0; // every ResponseHeader field is a varint
    if (tag.value === 0x18) return v.value;
    i = v.next;
  }
  return 0;
}

// --- bytes as zap's JSON encoder prints them (zapcore safeAddByteString) ---

const HEX = '0123456789abcdef';

/**
 * A JSON string of the bytes as etcd's logs print a key (zap.ByteString / zap.String of string(key)):
 * ASCII as is except `"` and `\` (escaped), \n \r \t, other bytes below 0x20 as \u00XX; each valid
 * UTF-8 sequence as is; each byte of an invalid one as \ufffd (Go's utf8.DecodeRune: one byte at a
 * time, surrogates and overlong forms invalid).
 */
export function zapString(b: Uint8Array): string {
  let ascii = true;
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (c < 0x20 || c >= 0x7f || c === 0x22 || c === 0x5c) {
      ascii = false;
      break;
    }
  }
  if (ascii) return '"' + Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1') + '"';
  let s = '"';
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    if (c < 0x80) {
      s += asciiEscaped(c);
      i++;
      continue;
    }
    const n = utf8SequenceLength(b, i);
    if (n === 0) {
      s += '\\ufffd';
      i++;
      continue;
    }
    s += Buffer.from(b.buffer, b.byteOffset + i, n).toString('utf8');
    i += n;
  }
  return s + '"';
}

function asciiEscaped(c: number): string {
  if (c >= 0x20 && c !== 0x22 && c !== 0x5c) return String.fromCharCode(c);
  switch (c) {
    case 0x22:
      return '\\"';
    case 0x5c:
      return '\\\\';
    case 0x0a:
      return '\\n';
    case 0x0d:
      return '\\r';
    case 0x09:
      return '\\t';
    default:
      return '\\u00' + HEX[c >> 4] + HEX[c & 0xf];
  }
}

/** The length of the valid UTF-8 sequence starting at b[i] (a byte >= 0x80), or 0 when invalid (Go's
 * accept ranges: C2..DF; E0 A0..BF; E1..EC, EE..EF 80..BF; ED 80..9F; F0 90..BF; F1..F3; F4 80..8F). */
function utf8SequenceLength(b: Uint8Array, i: number): number {
  const c = b[i];
  let n: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) n = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c === 0xe0) lo = 0xa0;
    else if (c === 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c === 0xf0) lo = 0x90;
    else if (c === 0xf4) hi = 0x8f;
  } else return 0;
  if (i + n > b.length) return 0;
  if (b[i + 1] < lo || b[i + 1] > hi) return 0;
  for (let k = 2; k < n; k++) if (b[i + k] < 0x80 || b[i + k] > 0xbf) return 0;
  return n;
}
