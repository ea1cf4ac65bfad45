// Connections of the bench tool's HTTP/JSON and WebSocket lanes, on node:net only (the requests and
// parsers are in lane_wire.ts):
//  - HttpConn: one keep-alive HTTP/1.1 connection with one request in flight (no pipelining, as a
//    browser or Go's http.Client); reconnects when the server closed it.
//  - WsConn: one WebSocket (RFC 6455 client framing) carrying any number of pipelined requests;
//    the writes of one tick leave in one writev (cork until the next tick).
import * as crypto from 'node:crypto';
import * as net from 'node:net';
import { gatewayError, HttpResponse, HttpResponseParser, WsFrameParser } from './lane_wire';

export type Done = (status: number, message: string | null) => void;

/** gRPC code for a transport failure (connection refused or closed): Unavailable, as gRPC clients report it. */
export const unavailable = 14;

/** "HOST:PORT" (the bench tool's endpoint form) to host and port; throws on anything else. */
export function hostPort(endpoint: string): { host: string; port: number } {
  const i = endpoint.lastIndexOf(':');
  const port = Number(endpoint.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port <= 0) throw new Error(`endpoint ${JSON.stringify(endpoint)}: expected HOST:PORT`);
  return { host: endpoint.slice(0, i), port };
}

export class HttpConn {
  readonly #host: string;
  readonly #port: number;
  #sock: net.Socket | null;
  #parser: HttpResponseParser;
  #done: Done | null;
  readonly #out: HttpResponse[];
  #lastError: string | null;

  constructor(endpoint: string) {
    const { host, port } = hostPort(endpoint);
    this.#host = host;
    this.#port = port;
    this.#sock = null;
    this.#parser = new HttpResponseParser();
    this.#done = null;
    this.#out = [];
    this.#lastError = null;
  }

  /** Connects now (rather than at the first request), so that a refused endpoint fails the run early. */
  ready(timeoutMs: number): Promise<void> {
    const s = this.#open();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { s.destroy(); reject(new Error(`HTTP ${this.#host}:${this.#port}: no connection within ${timeoutMs} ms`)); }, timeoutMs);
      s.once('connect', () => { clearTimeout(t); resolve(); });
      s.once('error', (e) => { clearTimeout(t); reject(new Error(`HTTP ${this.#host}:${this.#port}: ${e.message}`)); });
    });
  }

  /** Sends one whole request (a keep-alive connection has one in flight); `done` is called once. */
  send(request: Buffer, done: Done): void {
    if (this.#done !== null) throw new Error('HttpConn: a request is already in flight');
    this.#done = done;
    (this.#sock ?? this.#open()).write(request);
  }

  close(): void {
    const s = this.#sock;
    this.#sock = null;
    s?.destroy();
  }

  #open(): net.Socket {
    const s = net.connect(this.#port, this.#host);
    s.setNoDelay(true);
    this.#sock = s;
    this.#parser = new HttpResponseParser();
    s.on('data', (d: Buffer) => { if (this.#sock === s) this.#onData(s, d); });
    s.on('error', (e) => { this.#lastError = e.message; });
    s.on('close', () => {
      if (this.#sock !== s) return;
      this.#sock = null;
      this.#fail(unavailable, `connection closed${this.#lastError ? `: ${this.#lastError}` : ''}`);
    });
    return s;
  }

  #onData(s: net.Socket, d: Buffer): void {
    try {
      this.#parser.push(d, this.#out);
    } catch (e) {
      this.#sock = null;
      s.destroy();
      this.#fail(2, e instanceof Error ? e.message : String(e));
      return;
    }
    for (let i = 0; i < this.#out.length; i++) {
      const r = this.#out[i];
      if (r.close) { this.#sock = null; s.end(); } // the server closes it: the next request opens another
      if (r.status >= 200 && r.status < 300) this.#complete(0, null);
      else { const e = gatewayError(r.status, r.body); this.#complete(e.code, e.message); }
    }
    this.#out.length = 0;
  }

  #complete(status: number, message: string | null): void {
    const d = this.#done;
    if (d === null) throw new Error('HttpConn: a response without a request');
    this.#done = null;
    d(status, message);
  }

  #fail(status: number, message: string): void {
    if (this.#done !== null) this.#complete(status, message);
  }
}

export class WsConn {
  readonly #sock: net.Socket;
  readonly #parser: WsFrameParser;
  #corked: boolean;
  #closed: string | null;
  /** A text (JSON) or binary message from the server. */
  onMessage: (payload: Buffer, binary: boolean) => void;
  /** The connection ended (once). */
  onClose: (reason: string) => void;

  private constructor(sock: net.Socket) {
    this.#sock = sock;
    this.#parser = new WsFrameParser();
    this.#corked = false;
    this.#closed = null;
    this.onMessage = () => undefined;
    this.onClose = () => undefined;
  }

  /** Opens ws://endpoint/path and completes the upgrade handshake. */
  static open(endpoint: string, path: string, timeoutMs: number): Promise<WsConn> {
    const { host, port } = hostPort(endpoint);
    return new Promise((resolve, reject) => {
      const sock = net.connect(port, host);
      sock.setNoDelay(true);
      const t = setTimeout(() => { sock.destroy(); reject(new Error(`WebSocket ${endpoint}${path}: no upgrade within ${timeoutMs} ms`)); }, timeoutMs);
      const key = crypto.randomBytes(16).toString('base64');
      sock.once('connect', () => {
        sock.write(`GET ${path} HTTP/1.1\r\nHost: ${endpoint}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      });
      let head = Buffer.alloc(0);
      const onError = (e: Error): void => { clearTimeout(t); reject(new Error(`WebSocket ${endpoint}${path}: ${e.message}`)); };
      const onData = (d: Buffer): void => {
        head = Buffer.concat([head, d]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        clearTimeout(t);
        sock.off('data', onData);
        sock.off('error', onError);
        const status = head.toString('latin1', 0, end);
        if (!/^HTTP\/1\.1 101/.test(status)) {
          sock.destroy();
          reject(new Error(`WebSocket ${endpoint}${path}: upgrade refused: ${status.split('\r\n')[0]}`));
          return;
        }
        const c = new WsConn(sock);
        c.#attach(head.subarray(end + 4));
        resolve(c);
      };
      sock.on('data', onData);
      sock.on('error', onError);
    });
  }

  #attach(rest: Buffer): void {
    const s = this.#sock;
    s.on('data', (d: Buffer) => this.#onData(d));
    s.on('error', (e) => this.#end(e.message));
    s.on('close', () => this.#end('connection closed'));
    if (rest.length) this.#onData(rest);
  }

  #onData(d: Buffer): void {
    try {
      this.#parser.push(d, (op, payload) => {
        if (op === 1 || op === 2) this.onMessage(payload, op === 2);
        else if (op === 9) this.#write(Buffer.concat([Buffer.from([0x8a, 0x80 | payload.length, 0, 0, 0, 0]), payload])); // pong
        else if (op === 8) this.#end(`closed by the server${payload.length >= 2 ? ` (code ${payload.readUInt16BE(0)} ${payload.toString('utf8', 2)})` : ''}`);
      });
    } catch (e) {
      this.#end(e instanceof Error ? e.message : String(e));
    }
  }

  #end(reason: string): void {
    if (this.#closed !== null) return;
    this.#closed = reason;
    this.#sock.destroy();
    this.onClose(reason);
  }

  /** Why it closed, or null while open. */
  get closed(): string | null {
    return this.#closed;
  }

  /** Writes one whole frame; the frames written in one tick leave together. */
  send(frame: Buffer): void {
    this.#write(frame);
  }

  #write(b: Buffer): void {
    if (!this.#corked) {
      this.#corked = true;
      this.#sock.cork();
      process.nextTick(() => { this.#corked = false; this.#sock.uncork(); });
    }
    this.#sock.write(b);
  }

  close(): void {
    this.#closed ??= 'closed by the client';
    this.#sock.destroy();
  }
}
