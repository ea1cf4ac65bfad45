// A minimal RFC 6455 server side for node:http's 'upgrade' event, enough for etcd's WebSocket proxy
// on the client port (ws_proxy.ts): the handshake, masked client frames (text, continuation, ping,
// close; binary is refused), unmasked text frames out. Bounded: a message may not exceed
// `messageBytesMax` (close 1009); output past `sendHighBytes` reports backpressure.
import * as crypto from 'node:crypto';
import type * as http from 'node:http';
import type { Duplex } from 'node:stream';
import { WsTextSocket } from './ws_proxy';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export interface NodeWsHandlers {
  onText(text: string): void;
  onClose(): void;
  onDrain(): void;
}

/** Completes the handshake; returns null (after answering 400) if the request is not a WebSocket one. */
export function acceptWebSocket(req: http.IncomingMessage, socket: Duplex, head: Buffer, messageBytesMax: number,
  sendHighBytes: number, make: (ws: NodeWebSocket) => NodeWsHandlers): NodeWebSocket | null {
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string' || String(req.headers.upgrade).toLowerCase() !== 'websocket' || req.headers['sec-websocket-version'] !== '13') {
    socket.end('HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nBad Request\n');
    return null;
  }
  const accept = crypto.createHash('sha1').update(key + GUID).digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  const ws = new NodeWebSocket(socket, messageBytesMax, sendHighBytes);
  ws.start(make(ws), head);
  return ws;
}

export class NodeWebSocket implements WsTextSocket {
  readonly #socket: Duplex;
  readonly #max: number;
  readonly #high: number;
  #h: NodeWsHandlers | null = null;
  #buf: Buffer = Buffer.alloc(0);
  #fragments: Buffer[] = [];
  #fragmentBytes = 0;
  #closed = false;

  constructor(socket: Duplex, max: number, high: number) {
    this.#socket = socket;
    this.#max = max;
    this.#high = high;
  }

  start(h: NodeWsHandlers, head: Buffer): void {
    this.#h = h;
    this.#socket.on('data', (d: Buffer) => this.#onData(d));
    this.#socket.on('drain', () => h.onDrain());
    this.#socket.on('close', () => this.#gone());
    this.#socket.on('error', () => this.#gone());
    if (head.length) this.#onData(head);
  }

  #gone(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#h?.onClose();
  }

  #onData(d: Buffer): void {
    if (this.#closed) return;
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, d]) : d;
    for (;;) {
      const b = this.#buf;
      if (b.length < 2) return;
      const fin = (b[0] & 0x80) !== 0;
      const op = b[0] & 0x0f;
      const masked = (b[1] & 0x80) !== 0;
      let len = b[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        const big = b.readBigUInt64BE(2);
        if (big > BigInt(this.#max)) return this.#fail(1009);
        len = Number(big);
        off = 10;
      }
      if (!masked) return this.#fail(1002); // clients must mask (RFC 6455 5.1)
      if (this.#fragmentBytes + len > this.#max) return this.#fail(1009);
      if (b.length < off + 4 + len) return;
      const mask = b.subarray(off, off + 4);
      const payload = Buffer.from(b.subarray(off + 4, off + 4 + len));
      for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
      this.#buf = b.subarray(off + 4 + len);
      this.#frame(fin, op, payload);
      if (this.#closed) return;
    }
  }

  #frame(fin: boolean, op: number, payload: Buffer): void {
    switch (op) {
      case 0x0: case 0x1:
        this.#fragments.push(payload);
        this.#fragmentBytes += payload.length;
        if (fin) {
          const text = Buffer.concat(this.#fragments).toString('utf8');
          this.#fragments = [];
          this.#fragmentBytes = 0;
          this.#h?.onText(text);
        }
        return;
      case 0x8:
        this.#fail(1000);
        return;
      case 0x9:
        this.#write(0xa, payload);
        return;
      case 0xa:
        return;
      default:
        this.#fail(1003); // binary and unknown opcodes: the proxy speaks text
    }
  }

  #write(op: number, payload: Buffer): boolean {
    if (this.#closed) return false;
    const n = payload.length;
    let head: Buffer;
    if (n < 126) head = Buffer.from([0x80 | op, n]);
    else if (n < 65536) head = Buffer.from([0x80 | op, 126, n >> 8, n & 0xff]);
    else {
      head = Buffer.alloc(10);
      head[0] = 0x80 | op;
      head[1] = 127;
      head.writeBigUInt64BE(BigInt(n), 2);
    }
    this.#socket.write(head);
    this.#socket.write(payload);
    return (this.#socket as unknown as { writableLength: number }).writableLength < this.#high;
  }

  #fail(code: number): void {
    if (this.#closed) return;
    const p = Buffer.alloc(2);
    p.writeUInt16BE(code, 0);
    this.#write(0x8, p);
    this.#socket.end();
    this.#gone();
  }

  sendText(text: string): boolean {
    return this.#write(0x1, Buffer.from(text, 'utf8'));
  }

  close(): void {
    this.#fail(1000);
  }
}
