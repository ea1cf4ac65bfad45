// etcd 3.4's JSON mapping of its protobuf messages, as its grpc-gateway (v1, golang/protobuf jsonpb
// with OrigName: true, EmitDefaults: false) reads and writes it. Driven by the .proto files in proto/
// (every file there is loaded, so a new service's messages need no code here), read with
// protobufjs reflection at start-up with the original field names kept.
//
// Out (decodeToJson): fields in .proto declaration order under their original names (cluster_id,
// dbSize, ID, ...); 64-bit integers as strings, 32-bit as numbers; bytes as standard base64; enums by
// name; zero scalars, empty repeated fields and unset messages omitted; a set oneof member always
// written (an empty message as {}); strings escaped as Go's encoding/json does (<, >, &, U+2028/9).
// In (encodeJson): original or lowerCamel names; unknown names ignored; null means unset; numbers
// as JSON numbers or strings; enums by name or number; bytes as padded standard base64. Bad input
// throws JsonInputError with the message Go's decoders give for the same input.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import Long from 'long';

/** Client input the gateway cannot map: InvalidArgument (or Unknown on a stream) with this message. */
export class JsonInputError extends Error {}

type Kind = 'int64' | 'uint64' | 'int32' | 'uint32' | 'bool' | 'string' | 'bytes' | 'double' | 'enum' | 'message';

interface FieldInfo {
  /** Original (.proto) name: the protobufjs property with keepCase, and the JSON name written out. */
  readonly name: string;
  /** JSON.stringify(name) + ':' (with a leading comma variant), precomputed for output. */
  readonly keyOut: string;
  readonly kind: Kind;
  readonly repeated: boolean;
  /** A member of a oneof: written whenever set, even with a zero value (jsonpb does). */
  readonly inOneof: boolean;
  /** For 'enum': name by number, number by name, and Go's type name for error messages. */
  readonly enumById: Record<number, string> | null;
  readonly enumByName: Record<string, number> | null;
  readonly goEnumName: string;
  /** For 'message': filled in after all codecs exist (types may be recursive). */
  msg: MessageCodec | null;
}

const SCALAR_KINDS: Record<string, Kind> = {
  int64: 'int64', sint64: 'int64', sfixed64: 'int64', uint64: 'uint64', fixed64: 'uint64',
  int32: 'int32', sint32: 'int32', sfixed32: 'int32', uint32: 'uint32', fixed32: 'uint32',
  bool: 'bool', string: 'string', bytes: 'bytes', double: 'double', float: 'double',
};

const GO_TYPE: Record<Kind, string> = {
  int64: 'int64', uint64: 'uint64', int32: 'int32', uint32: 'uint32', bool: 'bool', string: 'string',
  bytes: '[]uint8', double: 'float64', enum: 'int32', message: 'map[string]json.RawMessage',
};

/** protoc's json_name: underscores dropped, the following letter upper-cased. */
export function lowerCamel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase()).replace(/_/g, '');
}

/** Go's name for a (possibly nested) protobuf type: package.Outer_Inner. */
function goTypeName(t: protobuf.ReflectionObject): string {
  const parts: string[] = [];
  let o: protobuf.ReflectionObject | null = t;
  while (o && !(o instanceof protobuf.Namespace && !(o instanceof protobuf.Type))) {
    parts.unshift(o.name);
    o = o.parent;
  }
  const pkg = o && o.fullName ? o.fullName.replace(/^\./, '') : '';
  return (pkg ? pkg + '.' : '') + parts.join('_');
}

/** The JSON kind name Go's encoding/json uses in "cannot unmarshal X into ...". */
function jsonKind(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'object';
  return typeof v === 'boolean' ? 'bool' : typeof v;
}

const HTML_UNSAFE = /[<>&\u2028\u2029]/;
const HTML_UNSAFE_G = /[<>&\u2028\u2029]/g;
const HTML_ESC: Record<string, string> = { '<': '\\u003c', '>': '\\u003e', '&': '\\u0026', '\u2028': '\\u2028', '\u2029': '\\u2029' };

/** A JSON string as Go's encoding/json writes it (HTML-safe escaping). */
export function goJsonString(s: string): string {
  const j = JSON.stringify(s);
  return HTML_UNSAFE.test(j) ? j.replace(HTML_UNSAFE_G, (c) => HTML_ESC[c]) : j;
}

// --- base64 as Go's encoding/json decodes []byte (base64.StdEncoding, padding required) ---

const B64_VALUE = new Int16Array(256).fill(-1);
for (const [i, c] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].entries()) B64_VALUE[c.charCodeAt(0)] = i;

/** Padded standard base64 without line breaks: the common case, checked by one regex. */
const B64_CANONICAL = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Index of the first error Go's base64.StdEncoding.Decode reports for s, or -1 when it is valid. */
export function goBase64ErrorAt(s: string): number {
  if (B64_CANONICAL.test(s)) return -1;
  const n = s.length;
  let si = 0;
  for (;;) {
    let j = 0;
    for (; j < 4; j++) {
      if (si === n) {
        if (j === 0) return -1;
        return si - j; // a partial quantum: padding is required
      }
      const c = s.charCodeAt(si++);
      if (c < 256 && B64_VALUE[c] >= 0) continue;
      if (c === 10 || c === 13) { j--; continue; }
      if (c !== 61 /* = */) return si - 1;
      if (j < 2) return si - 1;
      if (j === 2) {
        while (si < n && (s.charCodeAt(si) === 10 || s.charCodeAt(si) === 13)) si++;
        if (si === n) return n;
        if (s.charCodeAt(si) !== 61) return si - 1;
        si++;
      }
      while (si < n && (s.charCodeAt(si) === 10 || s.charCodeAt(si) === 13)) si++;
      return si < n ? si : -1;
    }
  }
}

// --- numbers as jsonpb reads them: a JSON number, or the same literal in quotes ---

const NUMBER_LITERAL = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;
const INTEGER_LITERAL = /^-?(?:0|[1-9]\d*)$/;

/** Go's json scanner error for a quoted number that is not a JSON number literal. */
function numberSyntaxError(s: string): JsonInputError {
  if (s.length === 0) return new JsonInputError('unexpected end of JSON input');
  const m = /^-?(?:0|[1-9]\d*)?(?:\.\d*)?(?:[eE][+-]?\d*)?/.exec(s)![0];
  if (m.length === 0) return new JsonInputError(`invalid character ${goQuoteChar(s[0])} looking for beginning of value`);
  if (m.length === s.length) return new JsonInputError('unexpected end of JSON input');
  // A complete literal followed by more is "after top-level value"; a cut one is "in numeric literal".
  const complete = NUMBER_LITERAL.test(m);
  return new JsonInputError(`invalid character ${goQuoteChar(s[m.length])} ${complete ? 'after top-level value' : 'in numeric literal'}`);
}

function goQuoteChar(c: string): string {
  if (c === "'") return "'\\''";
  if (c === '"') return "'\"'";
  return `'${c}'`;
}

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

/** Integers any 64- or 32-bit field takes without a range check beyond the kind's sign and width. */
const SMALL_INT_TEXT = /^-?[1-9]\d{0,14}$|^0$/;

function intFromJson(f: FieldInfo, v: unknown): number | Long {
  // Fast path: a safe integer (JSON number or short decimal string); protobufjs encodes numbers for
  // 64-bit fields as they are.
  let small: number | null = null;
  if (typeof v === 'number' && Number.isSafeInteger(v)) small = v;
  else if (typeof v === 'string' && SMALL_INT_TEXT.test(v)) small = Number(v);
  if (small !== null && (f.kind === 'int64' || (f.kind === 'uint64' && small >= 0) ||
    (f.kind === 'int32' && small >= -(2 ** 31) && small < 2 ** 31) || (f.kind === 'uint32' && small >= 0 && small < 2 ** 32))) {
    return small;
  }
  let text: string;
  if (typeof v === 'number') text = Number.isInteger(v) && Math.abs(v) < 2 ** 53 ? v.toFixed(0) : String(v);
  else if (typeof v === 'string') {
    if (!NUMBER_LITERAL.test(v)) throw numberSyntaxError(v);
    text = v;
  } else {
    throw new JsonInputError(`json: cannot unmarshal ${jsonKind(v)} into Go value of type ${GO_TYPE[f.kind]}`);
  }
  const bad = (): JsonInputError => new JsonInputError(`json: cannot unmarshal number ${text} into Go value of type ${GO_TYPE[f.kind]}`);
  if (!INTEGER_LITERAL.test(text)) throw bad();
  const b = BigInt(text);
  switch (f.kind) {
    case 'int64':
      if (b < INT64_MIN || b > INT64_MAX) throw bad();
      return Long.fromString(text, false);
    case 'uint64':
      if (b < 0n || b > UINT64_MAX) throw bad();
      return Long.fromString(text, true);
    case 'int32':
      if (b < -(2n ** 31n) || b >= 2n ** 31n) throw bad();
      return Number(b);
    default: // uint32
      if (b < 0n || b >= 2n ** 32n) throw bad();
      return Number(b);
  }
}

function scalarFromJson(f: FieldInfo, v: unknown): unknown {
  switch (f.kind) {
    case 'int64': case 'uint64': case 'int32': case 'uint32':
      return intFromJson(f, v);
    case 'double':
      if (typeof v === 'number') return v;
      if (typeof v === 'string') {
        if (v === 'NaN') return NaN;
        if (v === 'Infinity') return Infinity;
        if (v === '-Infinity') return -Infinity;
        if (!NUMBER_LITERAL.test(v)) throw numberSyntaxError(v);
        return Number(v);
      }
      throw new JsonInputError(`json: cannot unmarshal ${jsonKind(v)} into Go value of type float64`);
    case 'bool':
      if (typeof v !== 'boolean') throw new JsonInputError(`json: cannot unmarshal ${jsonKind(v)} into Go value of type bool`);
      return v;
    case 'string':
      if (typeof v !== 'string') throw new JsonInputError(`json: cannot unmarshal ${jsonKind(v)} into Go value of type string`);
      return v;
    case 'bytes': {
      if (typeof v !== 'string') throw new JsonInputError(`json: cannot unmarshal ${jsonKind(v)} into Go value of type []uint8`);
      const at = goBase64ErrorAt(v);
      if (at >= 0) throw new JsonInputError(`illegal base64 data at input byte ${at}`);
      return Buffer.from(v, 'base64');
    }
    case 'enum': {
      if (typeof v === 'string') {
        const n = f.enumByName![v];
        if (n === undefined) throw new JsonInputError(`unknown value ${goJsonString(v)} for enum ${f.goEnumName}`);
        return n;
      }
      if (typeof v === 'number' && Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31) return v;
      if (typeof v === 'number') throw new JsonInputError(`json: cannot unmarshal number ${v} into Go value of type ${f.goEnumName}`);
      throw new JsonInputError(`json: cannot unmarshal ${jsonKind(v)} into Go value of type ${f.goEnumName}`);
    }
    default:
      return f.msg!.fromJson(v);
  }
}

function isZero(f: FieldInfo, v: unknown): boolean {
  if (v === null || v === undefined) return true;
  switch (f.kind) {
    case 'int64': case 'uint64':
      return typeof v === 'number' ? v === 0 : ((v as Long).low | (v as Long).high) === 0;
    case 'bytes': case 'string':
      return (v as { length: number }).length === 0;
    case 'bool':
      return v === false;
    case 'message':
      return false;
    default:
      return v === 0;
  }
}

// The last few 64-bit values that needed BigInt (cluster and member IDs repeat in every header).
const LONG_CACHE_SIZE = 4;
const longCacheHi = new Int32Array(LONG_CACHE_SIZE);
const longCacheLo = new Int32Array(LONG_CACHE_SIZE);
const longCacheUnsigned = new Uint8Array(LONG_CACHE_SIZE);
const longCacheText: string[] = new Array<string>(LONG_CACHE_SIZE).fill('');
let longCacheNext = 0;

/** Decimal text of a protobufjs Long, without Long's slow division loop. */
export function longToString(v: Long): string {
  const hi = v.high | 0;
  const lo = v.low >>> 0;
  const n = v.unsigned ? (hi >>> 0) * 4294967296 + lo : hi * 4294967296 + lo;
  if (Number.isSafeInteger(n)) return String(n);
  for (let i = 0; i < LONG_CACHE_SIZE; i++) {
    if (longCacheHi[i] === hi && longCacheLo[i] === (lo | 0) && longCacheUnsigned[i] === (v.unsigned ? 1 : 0) && longCacheText[i] !== '') return longCacheText[i];
  }
  const big = (BigInt(hi >>> 0) << 32n) | BigInt(lo);
  const text = (v.unsigned ? big : BigInt.asIntN(64, big)).toString();
  const k = longCacheNext;
  longCacheNext = (k + 1) % LONG_CACHE_SIZE;
  longCacheHi[k] = hi;
  longCacheLo[k] = lo | 0;
  longCacheUnsigned[k] = v.unsigned ? 1 : 0;
  longCacheText[k] = text;
  return text;
}

function scalarToJson(f: FieldInfo, v: unknown): string {
  switch (f.kind) {
    case 'int64': case 'uint64':
      return '"' + (typeof v === 'number' ? v.toFixed(0) : longToString(v as Long)) + '"';
    case 'bytes': {
      const u = v as Uint8Array;
      return '"' + Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('base64') + '"';
    }
    case 'string':
      return goJsonString(v as string);
    case 'bool':
      return v ? 'true' : 'false';
    case 'enum': {
      const name = f.enumById![v as number];
      return name === undefined ? String(v) : '"' + name + '"';
    }
    case 'double': {
      const d = v as number;
      return Number.isFinite(d) ? String(d) : `"${d > 0 ? 'Infinity' : d < 0 ? '-Infinity' : 'NaN'}"`;
    }
    case 'message':
      return f.msg!.toJson(v as Record<string, unknown>);
    default:
      return String(v);
  }
}

/** One message type's JSON mapping and binary codec (protobufjs reflection, code generated at load). */
export class MessageCodec {
  readonly type: protobuf.Type;
  readonly fields: FieldInfo[];
  /** JSON name (original and lowerCamel) -> field. */
  readonly #byJsonName: Map<string, FieldInfo>;

  constructor(type: protobuf.Type) {
    this.type = type;
    this.fields = [];
    this.#byJsonName = new Map();
    for (const pf of type.fieldsArray) {
      pf.resolve();
      const scalar = SCALAR_KINDS[pf.type];
      const isEnum = pf.resolvedType instanceof protobuf.Enum;
      const e = isEnum ? pf.resolvedType as protobuf.Enum : null;
      const f: FieldInfo = {
        name: pf.name, keyOut: goJsonString(pf.name) + ':',
        kind: scalar ?? (isEnum ? 'enum' : 'message'),
        repeated: pf.repeated, inOneof: pf.partOf !== null,
        enumById: e ? e.valuesById : null,
        enumByName: e ? e.values : null,
        goEnumName: e ? goTypeName(e) : '',
        msg: null,
      };
      if (pf.map) throw new Error(`jsonpb: map field ${type.fullName}.${pf.name} is not supported`);
      this.fields.push(f);
      this.#byJsonName.set(pf.name, f);
      if (!this.#byJsonName.has(lowerCamel(pf.name))) this.#byJsonName.set(lowerCamel(pf.name), f);
    }
  }

  /** A parsed JSON value -> a plain object protobufjs can encode. */
  fromJson(v: unknown): Record<string, unknown> {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      throw new JsonInputError(`json: cannot unmarshal ${jsonKind(v)} into Go value of type map[string]json.RawMessage`);
    }
    const out: Record<string, unknown> = {};
    const src = v as Record<string, unknown>;
    for (const key in src) {
      const f = this.#byJsonName.get(key);
      if (f === undefined) continue;
      const x = src[key];
      if (x === null) continue;
      if (f.repeated) {
        if (!Array.isArray(x)) throw new JsonInputError(`json: cannot unmarshal ${jsonKind(x)} into Go value of type []json.RawMessage`);
        out[f.name] = x.map((e) => scalarFromJson(f, e));
      } else {
        out[f.name] = scalarFromJson(f, x);
      }
    }
    return out;
  }

  /** A decoded message -> its JSON text. */
  toJson(m: Record<string, unknown>): string {
    let s = '{';
    for (const f of this.fields) {
      const v = m[f.name];
      if (f.repeated) {
        const a = v as unknown[] | undefined;
        if (!a || a.length === 0) continue;
        s += (s.length > 1 ? ',' : '') + f.keyOut + '[';
        for (let i = 0; i < a.length; i++) s += (i > 0 ? ',' : '') + scalarToJson(f, a[i]);
        s += ']';
        continue;
      }
      if (v === null || v === undefined) continue;
      if (!(f.inOneof && Object.prototype.hasOwnProperty.call(m, f.name)) && isZero(f, v)) continue;
      s += (s.length > 1 ? ',' : '') + f.keyOut + scalarToJson(f, v);
    }
    return s + '}';
  }

  encodeJson(v: unknown): Uint8Array {
    return this.type.encode(this.fromJson(v) as unknown as protobuf.Message).finish();
  }

  decodeToJson(bytes: Uint8Array): string {
    return this.toJson(this.type.decode(bytes) as unknown as Record<string, unknown>);
  }
}

/** All message types of the .proto files in one directory. */
export class JsonCodec {
  readonly #root: protobuf.Root;
  readonly #codecs = new Map<string, MessageCodec>();

  private constructor(root: protobuf.Root) {
    this.#root = root;
  }

  /** Loads every *.proto file in `dir` (imports resolved in the same directory). */
  static load(dir: string): JsonCodec {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(dir, target));
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.proto')).sort();
    root.loadSync(files.map((f) => path.join(dir, f)), { keepCase: true });
    root.resolveAll();
    return new JsonCodec(root);
  }

  /** The codec of a fully qualified message type (etcdserverpb.PutRequest), or null if no .proto defines it. */
  message(typeName: string): MessageCodec | null {
    const cached = this.#codecs.get(typeName);
    if (cached) return cached;
    let t: protobuf.Type;
    try {
      t = this.#root.lookupType(typeName);
    } catch {
      return null;
    }
    const c = new MessageCodec(t);
    this.#codecs.set(typeName, c);
    for (const f of c.fields) {
      if (f.kind !== 'message') continue;
      const pf = t.fields[f.name];
      f.msg = this.message((pf.resolvedType as protobuf.Type).fullName.replace(/^\./, ''));
    }
    return c;
  }
}

/** proto/ next to dist/ (this file is dist/src/main/gateway/jsonpb.js) or next to src/. */
export function defaultProtoDir(): string {
  for (const up of ['../../../../proto', '../../../proto']) {
    const d = path.resolve(__dirname, up);
    if (fs.existsSync(path.join(d, 'rpc.proto'))) return d;
  }
  throw new Error('jsonpb: proto/ directory not found');
}
