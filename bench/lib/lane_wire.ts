// Wire formats of the bench tool's HTTP/JSON and WebSocket lanes (lanes.ts), pure code with no I/O:
// the request templates and the response parsers that lane_conns.ts drives.
//
// Requests are templates as on the gRPC lane (workloads.ts): a whole request is encoded once per
// client with key slots, and each send rewrites only the keys in place. Keys in JSON are base64
// (etcd's gateway mapping of `bytes`); a key has a fixed length, so its base64 has too, and the
// slot is re-encoded from the key's bytes before each send, with no allocation.
//  - HTTP: `POST /v3/kv/put HTTP/1.1` + headers + the JSON body of etcd's gateway (keep-alive).
//  - WebSocket JSON (docs/WEBSOCKET.md): {"id":"NNNNNN","path":"/v3/kv/put","body":{...}} in a
//    masked text frame; the id is the client's index as 6 fixed-width digits, echoed back.
//  - WebSocket binary: u8 op 0 | u32 LE id | u8 n | method | protobuf (the gRPC template's message)
//    in a masked binary frame.
// Every template's frame header is fixed, so the whole wire buffer is written as it is.
import { KeyLayout, keyAt, RequestOptions, Template as GrpcTemplate, writeDigits } from './workloads';

/** Where a template's key slots and id are: enough to rewrite them per send. */
export interface WireTemplate {
  path: string;          // route or gRPC method, for messages
  framed: Buffer;        // the bytes sent as they are
  slots: number[][];     // slots[k]: offsets of key k (base64 text when b64, else the digits only)
  b64: boolean;
  idAt: number;          // -1: no id; else where the id goes (6 ASCII digits, or u32 LE when binaryId)
  binaryId: boolean;
  layout: KeyLayout;
  scratch: Buffer;       // one key, rewritten per slot (b64 templates)
}

// ---- base64 ----

const b64chars = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');

/** Length of the padded base64 text of n bytes. */
export function b64Length(n: number): number {
  return 4 * Math.ceil(n / 3);
}

/** Writes the padded base64 of src at dst[off..], as Buffer.toString('base64') would, without allocating. */
export function writeBase64(src: Buffer, dst: Buffer, off: number): void {
  let o = off;
  let i = 0;
  for (; i + 2 < src.length; i += 3) {
    const n = (src[i] << 16) | (src[i + 1] << 8) | src[i + 2];
    dst[o++] = b64chars[n >>> 18]; dst[o++] = b64chars[(n >>> 12) & 63]; dst[o++] = b64chars[(n >>> 6) & 63]; dst[o++] = b64chars[n & 63];
  }
  const rest = src.length - i;
  if (rest === 1) {
    const n = src[i] << 16;
    dst[o++] = b64chars[n >>> 18]; dst[o++] = b64chars[(n >>> 12) & 63]; dst[o++] = 61; dst[o] = 61;
  } else if (rest === 2) {
    const n = (src[i] << 16) | (src[i + 1] << 8);
    dst[o++] = b64chars[n >>> 18]; dst[o++] = b64chars[(n >>> 12) & 63]; dst[o++] = b64chars[(n >>> 6) & 63]; dst[o] = 61;
  }
}

/** Sets key slot k of a lane template to key index i. */
export function setWireKey(t: WireTemplate, k: number, i: number): void {
  const at = t.slots[k];
  if (!t.b64) {
    for (let j = 0; j < at.length; j++) writeDigits(t.framed, at[j], t.layout.digits, i);
    return;
  }
  writeDigits(t.scratch, t.layout.prefix.length, t.layout.digits, i);
  for (let j = 0; j < at.length; j++) writeBase64(t.scratch, t.framed, at[j]);
}

export const wsJsonIdDigits = 6;
export const wsJsonIdMax = 10 ** wsJsonIdDigits - 1;

/** Writes the request id: 6 digits (JSON) or u32 LE (binary). */
export function setWireId(t: WireTemplate, id: number): void {
  if (t.binaryId) t.framed.writeUInt32LE(id, t.idAt);
  else writeDigits(t.framed, t.idAt, wsJsonIdDigits, id);
}

// ---- JSON bodies (etcd 3.4's gateway mapping: bytes base64, enums by name, int64 as strings) ----

/** A JSON text with key slots; offsets are byte offsets (the text is ASCII). */
export interface JsonBody { route: string; text: string; slots: number[][] }

class JsonBuilder {
  text = '';
  readonly slots: number[][] = [];
  constructor(readonly keyB64: string) {}
  lit(s: string): this { this.text += s; return this; }
  /** A quoted base64 key for slot k. */
  key(k: number): this {
    while (this.slots.length <= k) this.slots.push([]);
    this.text += '"';
    this.slots[k].push(this.text.length);
    this.text += this.keyB64;
    this.text += '"';
    return this;
  }
}

function builder(l: KeyLayout): JsonBuilder {
  return new JsonBuilder(keyAt(l, 0).toString('base64'));
}

const serializable = (o: RequestOptions): string => (o.consistency === 's' ? ',"serializable":true' : '');

export function putJson(_o: RequestOptions, l: KeyLayout, value: Buffer): JsonBody {
  const b = builder(l).lit('{"key":').key(0).lit(`,"value":"${value.toString('base64')}"}`);
  return { route: '/v3/kv/put', text: b.text, slots: b.slots };
}

export function rangeJson(o: RequestOptions, l: KeyLayout, span: boolean): JsonBody {
  const b = builder(l).lit('{"key":').key(0);
  if (span) b.lit(',"range_end":').key(1);
  b.lit(`${serializable(o)}}`);
  return { route: '/v3/kv/range', text: b.text, slots: b.slots };
}

export function txnPutJson(o: RequestOptions, l: KeyLayout, value: Buffer): JsonBody {
  const v = value.toString('base64');
  const b = builder(l).lit('{"success":[');
  for (let k = 0; k < o.txnOps; k++) b.lit(`${k ? ',' : ''}{"request_put":{"key":`).key(k).lit(`,"value":"${v}"}}`);
  b.lit(']}');
  return { route: '/v3/kv/txn', text: b.text, slots: b.slots };
}

/** Txn: if version(key) > 0 then put(key) else range(key), as txnCompareTemplate. */
export function txnCompareJson(_o: RequestOptions, l: KeyLayout, value: Buffer): JsonBody {
  const b = builder(l).lit('{"compare":[{"key":').key(0).lit(',"target":"VERSION","result":"GREATER","version":"0"}],')
    .lit('"success":[{"request_put":{"key":').key(0).lit(`,"value":"${value.toString('base64')}"}}],`)
    .lit('"failure":[{"request_range":{"key":').key(0).lit('}}]}');
  return { route: '/v3/kv/txn', text: b.text, slots: b.slots };
}

export function deleteJson(_o: RequestOptions, l: KeyLayout): JsonBody {
  const b = builder(l).lit('{"key":').key(0).lit('}');
  return { route: '/v3/kv/deleterange', text: b.text, slots: b.slots };
}

// ---- lane wrappers ----

function shifted(slots: number[][], by: number): number[][] {
  return slots.map((s) => s.map((x) => x + by));
}

function wireTemplate(path: string, framed: Buffer, slots: number[][], b64: boolean, idAt: number, binaryId: boolean, l: KeyLayout): WireTemplate {
  return { path, framed, slots, b64, idAt, binaryId, layout: l, scratch: keyAt(l, 0) };
}

/** The HTTP/1.1 request of a JSON body (keep-alive is HTTP/1.1's default). */
export function httpRequest(body: JsonBody, host: string, l: KeyLayout): WireTemplate {
  const head = `POST ${body.route} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: ${body.text.length}\r\n\r\n`;
  return wireTemplate(body.route, Buffer.from(head + body.text, 'latin1'), shifted(body.slots, head.length), true, -1, false, l);
}

/** The header of a masked client frame (zero mask: valid, and the payload needs no XOR). */
export function wsFrameHeader(payloadBytes: number, binary: boolean): Buffer {
  const op = binary ? 0x82 : 0x81;
  if (payloadBytes < 126) return Buffer.from([op, 0x80 | payloadBytes, 0, 0, 0, 0]);
  if (payloadBytes < 65536) return Buffer.from([op, 0x80 | 126, payloadBytes >> 8, payloadBytes & 0xff, 0, 0, 0, 0]);
  const h = Buffer.alloc(14);
  h[0] = op; h[1] = 0x80 | 127;
  h.writeBigUInt64BE(BigInt(payloadBytes), 2);
  return h;
}

/** A WebSocket JSON request {"id":"NNNNNN","path":...,"body":...} in a masked text frame. */
export function wsJsonRequest(body: JsonBody, l: KeyLayout): WireTemplate {
  const before = '{"id":"';
  const mid = `${'0'.repeat(wsJsonIdDigits)}","path":"${body.route}","body":`;
  const payload = before + mid + body.text + '}';
  const h = wsFrameHeader(payload.length, false);
  const framed = Buffer.concat([h, Buffer.from(payload, 'latin1')]);
  const bodyAt = h.length + before.length + mid.length;
  return wireTemplate(body.route, framed, shifted(body.slots, bodyAt), true, h.length + before.length, false, l);
}

/** A WebSocket binary CALL of a gRPC template's message, in a masked binary frame. */
export function wsBinaryRequest(t: GrpcTemplate, l: KeyLayout): WireTemplate {
  const method = Buffer.from(t.path, 'latin1');
  const msg = t.framed.subarray(5);
  const head = Buffer.alloc(6);
  head[0] = 0; // CALL
  head[5] = method.length;
  const payloadBytes = head.length + method.length + msg.length;
  const h = wsFrameHeader(payloadBytes, true);
  const framed = Buffer.concat([h, head, method, msg]);
  return wireTemplate(t.path, framed, shifted(t.slots, h.length + head.length + method.length - 5), false, h.length + 1, true, l);
}

// ---- responses ----

const empty = Buffer.alloc(0);

/** One HTTP response: its status and, unless 2xx, its body (for the error's code and message). */
export interface HttpResponse { status: number; body: Buffer | null; close: boolean }

const enum HttpState { Head, Body, ChunkSize, ChunkData, Trailer }

/**
 * An HTTP/1.1 response parser for one connection: Content-Length and chunked bodies (Go's server
 * chunks a response larger than 2 KiB). push() returns every response completed by the bytes.
 * Bodies of 2xx responses are skipped, not kept.
 */
export class HttpResponseParser {
  #buf: Buffer = empty;
  #state: HttpState = HttpState.Head;
  #status = 0;
  #close = false;
  #remaining = 0;
  #chunks: Buffer[] | null = null;

  push(d: Buffer, out: HttpResponse[]): void {
    const b = this.#buf.length ? Buffer.concat([this.#buf, d]) : d;
    let off = 0;
    for (;;) {
      if (this.#state === HttpState.Head) {
        const end = b.indexOf('\r\n\r\n', off, 'latin1');
        if (end < 0) break;
        this.#head(b.toString('latin1', off, end + 2));
        off = end + 4;
        if ((this.#state as HttpState) === HttpState.Body && this.#remaining === 0) this.#finish(out); // #head() set the state
      } else if (this.#state === HttpState.Body || this.#state === HttpState.ChunkData) {
        const n = Math.min(this.#remaining, b.length - off);
        if (n === 0 && this.#remaining > 0) break;
        if (this.#chunks) this.#chunks.push(Buffer.from(b.subarray(off, off + n)));
        off += n;
        this.#remaining -= n;
        if (this.#remaining > 0) break;
        if (this.#state === HttpState.Body) this.#finish(out);
        else this.#state = HttpState.Trailer; // the CRLF after the chunk's data, read as an empty line
      } else {
        const eol = b.indexOf('\r\n', off, 'latin1');
        if (eol < 0) break;
        const line = b.toString('latin1', off, eol);
        off = eol + 2;
        if (this.#state === HttpState.ChunkSize) {
          const size = parseInt(line, 16); // chunk extensions after ';' are ignored by parseInt
          if (!Number.isFinite(size) || size < 0) throw new Error(`HTTP: bad chunk size ${JSON.stringify(line)}`);
          if (size === 0) { this.#state = HttpState.Trailer; this.#remaining = -1; } // last chunk: trailers follow
          else { this.#state = HttpState.ChunkData; this.#remaining = size; }
        } else if (this.#remaining === -1) { // trailer section of the last chunk, ends with an empty line
          if (line === '') this.#finish(out);
        } else { // the CRLF closing a chunk's data
          if (line !== '') throw new Error('HTTP: chunk data not followed by CRLF');
          this.#state = HttpState.ChunkSize;
        }
      }
    }
    this.#buf = off >= b.length ? empty : Buffer.from(b.subarray(off));
  }

  #head(head: string): void {
    if (!head.startsWith('HTTP/1.')) throw new Error(`HTTP: not a response: ${JSON.stringify(head.slice(0, 40))}`);
    this.#status = Number(head.slice(9, 12));
    const lower = head.toLowerCase();
    this.#close = /\r\nconnection:\s*close/.test(lower);
    this.#chunks = this.#status >= 200 && this.#status < 300 ? null : [];
    if (/\r\ntransfer-encoding:[^\r]*chunked/.test(lower)) {
      this.#state = HttpState.ChunkSize;
      return;
    }
    const m = /\r\ncontent-length:\s*(\d+)/.exec(lower);
    this.#state = HttpState.Body;
    this.#remaining = m ? Number(m[1]) : 0;
    if (!m && this.#status !== 204 && this.#status !== 304) throw new Error('HTTP: a response with neither Content-Length nor chunked body');
  }

  #finish(out: HttpResponse[]): void {
    out.push({ status: this.#status, body: this.#chunks ? Buffer.concat(this.#chunks) : null, close: this.#close });
    this.#state = HttpState.Head;
    this.#chunks = null;
    this.#remaining = 0;
  }
}

/** gRPC code and message of a failed gateway call: etcd's {"error":m,"message":m,"code":N}, else Unknown. */
export function gatewayError(status: number, body: Buffer | null): { code: number; message: string } {
  const text = body ? body.toString('utf8') : '';
  try {
    const j = JSON.parse(text) as { code?: unknown; message?: unknown; error?: unknown };
    if (typeof j.code === 'number') return { code: j.code, message: String(j.message ?? j.error ?? '') };
  } catch { /* not JSON */ }
  return { code: 2, message: `HTTP ${status} ${text.slice(0, 200)}`.trim() };
}

/** WebSocket frames from the server (unmasked): calls onFrame(opcode, payload) per complete frame. */
export class WsFrameParser {
  #buf: Buffer = empty;

  push(d: Buffer, onFrame: (op: number, payload: Buffer) => void): void {
    const b = this.#buf.length ? Buffer.concat([this.#buf, d]) : d;
    let off = 0;
    while (b.length - off >= 2) {
      if ((b[off] & 0x80) === 0) throw new Error('WebSocket: fragmented message (not used by the server)');
      const op = b[off] & 0x0f;
      if (b[off + 1] & 0x80) throw new Error('WebSocket: masked frame from the server');
      let len = b[off + 1] & 0x7f;
      let h = 2;
      if (len === 126) { if (b.length - off < 4) break; len = b.readUInt16BE(off + 2); h = 4; }
      else if (len === 127) { if (b.length - off < 10) break; len = Number(b.readBigUInt64BE(off + 2)); h = 10; }
      if (b.length - off < h + len) break;
      onFrame(op, b.subarray(off + h, off + h + len));
      off += h + len;
    }
    // A partial frame is copied: the socket's chunk may be reused by the caller.
    this.#buf = off >= b.length ? empty : Buffer.from(b.subarray(off));
  }
}

/** The answer of one WebSocket JSON message: the id (client index) and, if it failed, code and message. */
export function wsJsonAnswer(p: Buffer): { id: number; code: number; message: string | null } {
  // Fast path: {"id":"NNNNNN","result":... as the server writes it (id first).
  const prefix = 7; // {"id":"
  if (p[0] === 0x7b && p[prefix + wsJsonIdDigits] === 0x22 && p.toString('latin1', 0, prefix) === '{"id":"') {
    let id = 0;
    for (let i = prefix; i < prefix + wsJsonIdDigits; i++) id = id * 10 + (p[i] - 48);
    const after = prefix + wsJsonIdDigits + 1;
    if (p.toString('latin1', after, after + 10) === ',"result":') return { id, code: 0, message: null };
  }
  const m = JSON.parse(p.toString('utf8')) as { id?: unknown; error?: { code?: number; message?: string }; result?: unknown };
  const id = typeof m.id === 'string' ? Number(m.id) : typeof m.id === 'number' ? m.id : -1;
  if (m.error) return { id, code: m.error.code ?? 2, message: m.error.message ?? null };
  return { id, code: 0, message: null };
}

/** The answer of one WebSocket binary message: op 0 RESULT, op 1 ERROR (u32 LE code + message). */
export function wsBinaryAnswer(p: Buffer): { id: number; code: number; message: string | null } {
  const id = p.readUInt32LE(1);
  if (p[0] === 0) return { id, code: 0, message: null };
  if (p[0] === 1 && p.length >= 9) return { id, code: p.readUInt32LE(5), message: p.toString('utf8', 9) };
  return { id, code: 2, message: `unexpected binary reply op ${p[0]}` };
}

