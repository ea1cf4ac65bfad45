// Raw gRPC calls over node:http2 for tests that compare etcd-ts with etcd 3.4 at the wire level:
// exact request bytes in, status code, message and decoded response out, with no client library
// retrying or rewriting anything. Not a test file itself.
import * as http2 from 'node:http2';

export interface UnaryReply {
  status: number;
  message: string;
  body: Buffer | null;
}

function frame(msg: Uint8Array, compressedFlag = 0): Buffer {
  const head = Buffer.alloc(5);
  head[0] = compressedFlag;
  head.writeUInt32BE(msg.length, 1);
  return Buffer.concat([head, Buffer.from(msg)]);
}

/** Splits gRPC length-prefixed messages out of buf; returns the messages and the unparsed rest. */
function unframe(buf: Buffer): { msgs: Buffer[]; rest: Buffer } {
  const msgs: Buffer[] = [];
  let off = 0;
  while (buf.length - off >= 5) {
    const len = buf.readUInt32BE(off + 1);
    if (buf.length - off < 5 + len) break;
    msgs.push(buf.subarray(off + 5, off + 5 + len));
    off += 5 + len;
  }
  return { msgs, rest: buf.subarray(off) };
}

export class RawGrpc {
  readonly session: http2.ClientHttp2Session;

  constructor(endpoint: string) {
    this.session = http2.connect(`http://${endpoint}`);
    this.session.on('error', () => undefined);
  }

  close(): void {
    this.session.close();
  }

  #request(path: string, headers?: Record<string, string>): http2.ClientHttp2Stream {
    return this.session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers });
  }

  /** One unary call. `cancelAfterMs` resets the stream after that long (a client giving up);
   * `compressedFlag` sets the gRPC message header's compressed byte (bad-input tests); `headers` are
   * added to the request's (a grpc-timeout, which this client sends but does not enforce). */
  unary(path: string, msg: Uint8Array, opts: { cancelAfterMs?: number; compressedFlag?: number; headers?: Record<string, string> } = {}): Promise<UnaryReply> {
    return new Promise((resolve, reject) => {
      const req = this.#request(path, opts.headers);
      let status = -1;
      let message = '';
      const chunks: Buffer[] = [];
      const take = (h: http2.IncomingHttpHeaders): void => {
        if (h['grpc-status'] !== undefined) status = Number(h['grpc-status']);
        if (typeof h['grpc-message'] === 'string') message = decodeURIComponent(h['grpc-message']);
      };
      let timer: NodeJS.Timeout | null = null;
      if (opts.cancelAfterMs !== undefined) {
        timer = setTimeout(() => {
          req.close(http2.constants.NGHTTP2_CANCEL);
          resolve({ status: 1, message: 'cancelled by the test', body: null });
        }, opts.cancelAfterMs);
      }
      req.on('response', take);
      req.on('trailers', take);
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (timer) clearTimeout(timer);
        const { msgs } = unframe(Buffer.concat(chunks));
        resolve({ status, message, body: msgs[0] ?? null });
      });
      req.on('error', (e) => {
        if (timer) clearTimeout(timer);
        reject(e);
      });
      req.end(frame(msg, opts.compressedFlag));
    });
  }

  /** A streaming call: send messages with send(), read decoded replies as they come. */
  stream(path: string): RawStream {
    return new RawStream(this.#request(path));
  }
}

export class RawStream {
  readonly messages: Buffer[] = [];
  status: number | undefined;
  message = '';
  readonly #req: http2.ClientHttp2Stream;
  #buf = Buffer.alloc(0);
  #waiters: Array<() => void> = [];

  constructor(req: http2.ClientHttp2Stream) {
    this.#req = req;
    const take = (h: http2.IncomingHttpHeaders): void => {
      if (h['grpc-status'] !== undefined) this.status = Number(h['grpc-status']);
      if (typeof h['grpc-message'] === 'string') this.message = decodeURIComponent(h['grpc-message']);
      this.#wake();
    };
    req.on('response', take);
    req.on('trailers', take);
    req.on('error', () => { this.status ??= -2; this.#wake(); });
    req.on('close', () => { this.status ??= -3; this.#wake(); });
    req.on('data', (c: Buffer) => {
      const { msgs, rest } = unframe(Buffer.concat([this.#buf, c]));
      this.#buf = Buffer.from(rest);
      this.messages.push(...msgs.map((m) => Buffer.from(m)));
      this.#wake();
    });
  }

  send(msg: Uint8Array): void {
    this.#req.write(frame(msg));
  }

  /** Half-closes the request side. */
  end(): void {
    this.#req.end();
  }

  cancel(): void {
    this.#req.close(http2.constants.NGHTTP2_CANCEL);
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Waits until cond() holds (checked after every message or status), failing after timeoutMs. */
  async until(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what} (got ${this.messages.length} messages, status ${this.status})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.#waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }
}
