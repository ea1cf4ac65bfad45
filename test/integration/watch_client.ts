// A raw gRPC Watch client over node:http2 for the watch tests: sends exact WatchRequests (client-chosen IDs,
// fragment, filters, progress requests) and records every decoded WatchResponse, so tests can compare what
// etcd-ts and etcd 3.4 send byte-for-byte in meaning. Not a test file itself.
import * as http2 from 'node:http2';
import { etcdserverpb } from '../../src/shared/gen/etcd';

export interface Resp {
  watchId: number;
  created: boolean;
  canceled: boolean;
  compactRevision: number;
  cancelReason: string;
  fragment: boolean;
  revision: number;
  events: Array<{ type: 'PUT' | 'DELETE'; key: string; value: string; mod: number; create: number; version: number; prev?: string }>;
}

function n(v: unknown): number {
  return v === null || v === undefined ? 0 : Number(String(v));
}

export function simplify(r: etcdserverpb.WatchResponse): Resp {
  return {
    watchId: n(r.watchId), created: r.created, canceled: r.canceled, compactRevision: n(r.compactRevision),
    cancelReason: r.cancelReason, fragment: r.fragment, revision: n(r.header?.revision),
    events: (r.events ?? []).map((e) => ({
      type: e.type === 1 ? 'DELETE' : 'PUT', key: Buffer.from(e.kv!.key!).toString(), value: Buffer.from(e.kv!.value ?? []).toString(),
      mod: n(e.kv!.modRevision), create: n(e.kv!.createRevision), version: n(e.kv!.version),
      ...(e.prevKv ? { prev: Buffer.from(e.prevKv.value ?? []).toString() } : {}),
    })),
  };
}

export class WatchClient {
  readonly responses: Resp[] = [];
  readonly raw: etcdserverpb.WatchResponse[] = [];
  status: string | undefined;
  /** grpc-message of the status, percent-decoded. */
  message: string | undefined;
  #session: http2.ClientHttp2Session;
  #stream: http2.ClientHttp2Stream;
  #buf = Buffer.alloc(0);
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** Bytes still missing for the message at the head of #buf (0: unknown). */
  #need = 0;
  #waiters: Array<() => void> = [];

  constructor(endpoint: string, opts: { paused?: boolean } = {}) {
    this.#session = http2.connect(`http://${endpoint}`);
    this.#session.on('error', () => undefined);
    this.#stream = this.#session.request({ ':method': 'POST', ':path': '/etcdserverpb.Watch/Watch', 'content-type': 'application/grpc', te: 'trailers' });
    this.#stream.on('error', () => undefined);
    this.#stream.on('trailers', (t) => {
      this.status = String(t['grpc-status']);
      this.message = decodeURIComponent(String(t['grpc-message'] ?? ''));
      this.#wake();
    });
    this.#stream.on('response', (h) => {
      if (h['grpc-status'] === undefined) return;
      this.status = String(h['grpc-status']);
      this.message = decodeURIComponent(String(h['grpc-message'] ?? ''));
      this.#wake();
    });
    if (opts.paused) this.#stream.pause();
    this.#stream.on('data', (c: Buffer) => this.#onData(c));
  }

  pause(): void { this.#stream.pause(); }
  resume(): void { this.#stream.resume(); }

  #onData(c: Buffer): void {
    // A large message arrives in many chunks: join them only once the whole message is here.
    this.#pending.push(c);
    this.#pendingBytes += c.length;
    if (this.#need > 0 && this.#pendingBytes < this.#need) return;
    this.#buf = Buffer.concat([this.#buf, ...this.#pending]);
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#need = 0;
    while (this.#buf.length >= 5) {
      const len = this.#buf.readUInt32BE(1);
      if (this.#buf.length < 5 + len) {
        this.#need = 5 + len - this.#buf.length;
        break;
      }
      const r = etcdserverpb.WatchResponse.decode(this.#buf.subarray(5, 5 + len));
      this.#buf = this.#buf.subarray(5 + len);
      this.raw.push(r);
      this.responses.push(simplify(r));
    }
    this.#wake();
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  send(req: etcdserverpb.IWatchRequest): void {
    const body = etcdserverpb.WatchRequest.encode(req).finish();
    const f = Buffer.alloc(5 + body.length);
    f.writeUInt32BE(body.length, 1);
    f.set(body, 5);
    this.#stream.write(f);
  }

  create(c: etcdserverpb.IWatchCreateRequest): void {
    this.send({ createRequest: c });
  }

  /** Resolves once pred holds over the responses so far (or rejects after timeoutMs). */
  async until(pred: (rs: Resp[]) => boolean, timeoutMs = 5000): Promise<Resp[]> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.responses)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; responses: ${JSON.stringify(this.responses)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 100));
        this.#waiters.push(() => { clearTimeout(t); r(); });
      });
    }
    return this.responses;
  }

  /** Events over all responses, in arrival order. */
  events(watchId?: number): Resp['events'] {
    return this.responses.filter((r) => watchId === undefined || r.watchId === watchId).flatMap((r) => r.events);
  }

  close(): void {
    this.#stream.close(http2.constants.NGHTTP2_CANCEL);
    this.#session.close();
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
