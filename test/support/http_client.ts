// Small HTTP and WebSocket clients for the gateway tests, on node:net/node:http only (no dependency).
// post(): one request, status + headers + body. streamLines(): a streaming POST whose response lines
// are collected until the caller closes it. WsClient: RFC 6455 client framing (masked text frames,
// ping answered, no extensions), enough for the JSON WebSocket API.
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import * as tls from 'node:tls';
import * as net from 'node:net';

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export function request(method: string, url: string, body?: string | Buffer, headers: http.OutgoingHttpHeaders = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export const post = (url: string, body?: string | Buffer): Promise<HttpResult> => request('POST', url, body);

/** Lets a test wait for what arrives: until() re-checks its condition at each wake() (an arrival)
 * and at least every 200 ms. */
class Waiter {
  #waiters: Array<() => void> = [];

  wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** Resolves once done() holds or ended() does; rejects with what() after timeoutMs. */
  async until(done: () => boolean, ended: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done() && !ended()) {
      if (Date.now() > deadline) throw new Error(what());
      await new Promise<void>((r) => {
        const t = setTimeout(r, 200);
        this.#waiters.push(() => { clearTimeout(t); r(); });
      });
    }
  }
}

/** A streaming POST: `lines` fills as response lines arrive; close() ends it. */
export class LineStream {
  readonly lines: string[] = [];
  status = 0;
  ended = false;
  #req: http.ClientRequest;
  readonly #waiter = new Waiter();

  constructor(url: string, body: string) {
    this.#req = http.request(url, { method: 'POST', agent: false }, (res) => {
      this.status = res.statusCode ?? 0;
      let pending = '';
      res.setEncoding('utf8');
      res.on('data', (s: string) => {
        pending += s;
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          this.lines.push(pending.slice(0, nl));
          pending = pending.slice(nl + 1);
        }
        this.#waiter.wake();
      });
      res.on('end', () => {
        if (pending.length > 0) this.lines.push(pending);
        this.ended = true;
        this.#waiter.wake();
      });
      res.on('error', () => undefined);
    });
    this.#req.on('error', () => { this.ended = true; this.#waiter.wake(); });
    this.#req.end(body);
  }

  /** Resolves once at least n lines arrived (or the response ended); rejects after timeoutMs. */
  async waitLines(n: number, timeoutMs = 10_000): Promise<string[]> {
    await this.waitUntil((ls) => ls.length >= n, timeoutMs);
    return this.lines.slice(0, n);
  }

  /** Resolves once done(lines) holds (or the response ended); rejects after timeoutMs. */
  async waitUntil(done: (lines: string[]) => boolean, timeoutMs = 10_000): Promise<string[]> {
    await this.#waiter.until(() => done(this.lines), () => this.ended, timeoutMs,
      () => `timed out waiting for lines, got ${JSON.stringify(this.lines)}`);
    return this.lines.slice();
  }

  close(): void {
    this.#req.destroy();
  }
}

/** A minimal WebSocket client (text messages). */
export class WsClient {
  readonly messages: string[] = [];
  readonly binaries: Buffer[] = [];
  closed = false;
  #sock: net.Socket;
  #buf = Buffer.alloc(0);
  readonly #waiter = new Waiter();

  private constructor(sock: net.Socket, rest: Buffer) {
    this.#sock = sock;
    sock.on('data', (d: Buffer) => this.#onData(d));
    sock.on('close', () => { this.closed = true; this.#waiter.wake(); });
    sock.on('error', () => undefined);
    if (rest.length) this.#onData(rest);
  }

  /** tlsOptions: wss:// (TLS with these options). headers: more upgrade request headers (Authorization). */
  static connect(host: string, port: number, path = '/ws', tlsOptions?: tls.ConnectionOptions, headers: Record<string, string> = {}): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const key = crypto.randomBytes(16).toString('base64');
      const sock: net.Socket = tlsOptions ? tls.connect({ ...tlsOptions, host, port }) : net.connect(port, host);
      sock.once(tlsOptions ? 'secureConnect' : 'connect', () => {
        sock.write(`GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
          Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n');
      });
      let head = Buffer.alloc(0);
      const onData = (d: Buffer): void => {
        head = Buffer.concat([head, d]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        sock.off('data', onData);
        const text = head.subarray(0, end).toString();
        const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
        if (!/^HTTP\/1\.1 101/.test(text) || !text.includes(accept)) {
          sock.destroy();
          return reject(new Error(`WebSocket upgrade refused: ${text.split('\r\n')[0]}`));
        }
        resolve(new WsClient(sock, head.subarray(end + 4)));
      };
      sock.on('data', onData);
      sock.on('error', reject);
    });
  }

  #onData(d: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, d]);
    for (;;) {
      if (this.#buf.length < 2) return;
      const op = this.#buf[0] & 0x0f;
      let len = this.#buf[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.#buf.length < 4) return;
        len = this.#buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.#buf.length < 10) return;
        len = Number(this.#buf.readBigUInt64BE(2));
        off = 10;
      }
      if (this.#buf.length < off + len) return;
      const payload = this.#buf.subarray(off, off + len);
      this.#buf = this.#buf.subarray(off + len);
      if (op === 0x1) this.messages.push(payload.toString('utf8'));
      else if (op === 0x2) this.binaries.push(Buffer.from(payload));
      else if (op === 0x9) this.#frame(0xa, payload);
      else if (op === 0x8) this.#sock.end();
      this.#waiter.wake();
    }
  }

  #frame(op: number, payload: Buffer): void {
    const mask = crypto.randomBytes(4);
    const n = payload.length;
    const head = n < 126 ? Buffer.from([0x80 | op, 0x80 | n]) : n < 65536
      ? Buffer.concat([Buffer.from([0x80 | op, 0x80 | 126]), Buffer.from([n >> 8, n & 0xff])])
      : (() => { const b = Buffer.alloc(10); b[0] = 0x80 | op; b[1] = 0x80 | 127; b.writeBigUInt64BE(BigInt(n), 2); return b; })();
    const body = Buffer.from(payload);
    for (let i = 0; i < n; i++) body[i] ^= mask[i & 3];
    this.#sock.write(Buffer.concat([head, mask, body]));
  }

  sendBinary(b: Buffer): void {
    this.#frame(0x2, b);
  }

  /** The binary messages received so far, once at least n arrived. */
  async waitBinaries(n: number, timeoutMs = 10_000): Promise<Buffer[]> {
    await this.#waiter.until(() => this.binaries.length >= n, () => this.closed, timeoutMs,
      () => `timed out waiting for ${n} binary WebSocket messages, got ${this.binaries.length}`);
    return this.binaries.slice();
  }

  sendText(s: string): void {
    this.#frame(0x1, Buffer.from(s, 'utf8'));
  }

  send(obj: unknown): void {
    this.sendText(JSON.stringify(obj));
  }

  /** The parsed messages received so far, once at least n arrived. */
  waitMessages(n: number, timeoutMs = 10_000): Promise<Array<Record<string, unknown>>> {
    return this.waitUntil((m) => m.length >= n, timeoutMs);
  }

  /** The parsed messages received so far, once done(messages) holds. */
  async waitUntil(done: (msgs: Array<Record<string, unknown>>) => boolean, timeoutMs = 10_000): Promise<Array<Record<string, unknown>>> {
    const parsed = (): Array<Record<string, unknown>> => this.messages.map((m) => JSON.parse(m) as Record<string, unknown>);
    await this.#waiter.until(() => done(parsed()), () => this.closed, timeoutMs,
      () => `timed out waiting for WebSocket messages, got ${JSON.stringify(this.messages)}`);
    return parsed();
  }

  close(): void {
    this.#sock.destroy();
  }
}
