// The client side of a Watch stream shared by the watch benchmarks (bench/watch.ts and watch_load.ts):
// a minimal protobuf wire scanner for WatchResponses (event count, watch_id, created/canceled, and each
// event's kv.mod_revision), one HTTP/2 connection with one Watch stream that splits the gRPC messages,
// and a single Put. WatchResponses are not decoded with protobufjs: that alone would cap the generator
// well below the servers.
import * as http2 from 'node:http2';
import { etcdserverpb } from '../../src/shared/gen/etcd';
import { frameGrpc, grpcCodeName } from './h2_client';
import { paths } from './workloads';

export class Scanner {
  pos: number; // read position in the buffer being scanned

  constructor() {
    this.pos = 0;
  }

  varint(b: Buffer): number {
    let v = 0;
    let mul = 1;
    for (;;) {
      const x = b[this.pos++];
      v += (x & 0x7f) * mul;
      if (x < 0x80) return v;
      mul *= 128;
    }
  }
  skip(b: Buffer, wire: number): void {
    if (wire === 0) this.varint(b);
    else if (wire === 2) { const n = this.varint(b); this.pos += n; }
    else if (wire === 1) this.pos += 8;
    else if (wire === 5) this.pos += 4;
    else throw new Error(`unexpected wire type ${wire}`);
  }
  /** mod_revision (KeyValue field 3) of the Event in b[start, end), or 0. */
  modRevision(b: Buffer, start: number, end: number): number {
    this.pos = start;
    while (this.pos < end) {
      const tag = this.varint(b);
      if (tag === ((2 << 3) | 2)) { // Event.kv
        const kvEnd = this.varint(b) + this.pos;
        while (this.pos < kvEnd) {
          const t = this.varint(b);
          if (t === (3 << 3)) return this.varint(b);
          this.skip(b, t & 7);
        }
        return 0;
      }
      this.skip(b, tag & 7);
    }
    return 0;
  }
}

export interface ScanResult { watchId: number; events: number; created: boolean; canceled: boolean }

export const newScanResult = (): ScanResult => ({ watchId: 0, events: 0, created: false, canceled: false });

/** Scans one WatchResponse in b[start, end) into out; calls onRev(mod_revision) per event when given. */
export function scanResponse(sc: Scanner, b: Buffer, start: number, end: number, out: ScanResult, onRev: ((rev: number) => void) | null): void {
  out.watchId = 0; out.events = 0; out.created = false; out.canceled = false;
  sc.pos = start;
  while (sc.pos < end) {
    const tag = sc.varint(b);
    const field = tag >>> 3;
    if (field === 11 && (tag & 7) === 2) {
      const evEnd = sc.varint(b) + sc.pos;
      out.events++;
      if (onRev) onRev(sc.modRevision(b, sc.pos, evEnd));
      sc.pos = evEnd;
    } else if (field === 2 && (tag & 7) === 0) out.watchId = sc.varint(b);
    else if (field === 3 && (tag & 7) === 0) out.created = sc.varint(b) !== 0;
    else if (field === 4 && (tag & 7) === 0) out.canceled = sc.varint(b) !== 0;
    else sc.skip(b, tag & 7);
  }
}

export const grpcHeaders = (path: string): http2.OutgoingHttpHeaders => ({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });

export interface WatchStreamOptions {
  /** HTTP/2 receive window of the stream and the connection; 65535 is the protocol's and node:http2's default. */
  window?: number;
  /** Called on a session or stream error (the first one is also kept in `error`). */
  onError?: (message: string) => void;
}

/** One connection with one Watch stream; onMessage per gRPC message (body in buf[start, end)). */
export class WatchStream {
  readonly session: http2.ClientHttp2Session;
  readonly stream: http2.ClientHttp2Stream;
  #buf: Buffer;
  error: string | null;

  constructor(endpoint: string, onMessage: (buf: Buffer, start: number, end: number) => void, o: WatchStreamOptions = {}) {
    const window = o.window ?? 65535;
    const fail = (e: Error): void => { this.error ??= e.message; o.onError?.(e.message); };
    this.#buf = Buffer.alloc(0);
    this.error = null;
    this.session = http2.connect(`http://${endpoint}`, { settings: { initialWindowSize: window } });
    if (window > 65535) this.session.on('connect', () => this.session.setLocalWindowSize(window));
    this.session.on('error', fail);
    this.stream = this.session.request(grpcHeaders(paths.watch));
    this.stream.on('error', fail);
    this.stream.on('data', (chunk: Buffer) => {
      const buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
      let off = 0;
      while (buf.length - off >= 5) {
        const len = buf.readUInt32BE(off + 1);
        if (buf.length - off < 5 + len) break;
        onMessage(buf, off + 5, off + 5 + len);
        off += 5 + len;
      }
      this.#buf = off === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(off)); // a copy: do not pin big chunks
    });
  }

  create(key: Buffer, rangeEnd?: Buffer): void {
    this.stream.write(frameGrpc(etcdserverpb.WatchRequest.encode({ createRequest: { key, rangeEnd } }).finish()));
  }

  close(): void {
    this.stream.close(http2.constants.NGHTTP2_CANCEL);
    this.session.close();
  }
}

/** One Put (frame: a framed PutRequest); resolves with the revision of its response header. */
export function put(session: http2.ClientHttp2Session, frame: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = session.request(grpcHeaders(paths.put));
    let status = '';
    let message = '';
    const chunks: Buffer[] = [];
    const take = (h: http2.IncomingHttpHeaders): void => {
      if (h['grpc-status'] !== undefined) { status = String(h['grpc-status']); message = String(h['grpc-message'] ?? ''); }
    };
    req.on('response', take);
    req.on('trailers', take);
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      if (status !== '0') { reject(Object.assign(new Error(`Put: ${grpcCodeName[Number(status)] ?? status} ${message}`), { code: Number(status) })); return; }
      const b = Buffer.concat(chunks);
      resolve(Number(etcdserverpb.PutResponse.decode(b.subarray(5)).header?.revision ?? 0));
    });
    req.on('error', reject);
    req.end(frame);
  });
}
