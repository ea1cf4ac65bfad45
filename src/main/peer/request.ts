// Member-to-member request/response on one multiplexed connection per peer (dialed on first use).
//   REQUEST   u32 request ID, u16 len + UTF-8 kind, body bytes
//   RESPONSE  u32 request ID, u32 gRPC code (0 = OK), body bytes (OK) or UTF-8 error message
// Requests in flight are bounded per peer on both sides; each has its own timeout; a lost connection
// fails every request on it with Unavailable (the caller decides whether to retry).
import * as net from 'node:net';
import { Logger } from '../log';
import { idToHex } from '../../shared/ids';
import { GrpcCode } from '../../shared/errors';
import { PeerProtocolError, Reader, Writer } from './codec';
import { FRAME_HEADER_BYTES, Frame, FrameReader, FrameType, Purpose, allocFrame, decodeResult, encodeResult, sealFrame } from './frame';
import { dial, DialEnv, HostPort, parsePeerUrl } from './dial';
import type { PeerLimits } from './transport';

/** A failed peer request: the remote handler's gRPC code and message, or a local transport failure. */
export class PeerRequestError extends Error {
  constructor(message: string, readonly code: number) {
    super(message);
    this.name = 'PeerRequestError';
  }
}

export interface RequestEnv extends DialEnv {
  log: Logger;
}

interface Pending {
  resolve(body: Uint8Array): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
  /** Set while the request waits for the connection. */
  frame: Buffer | null;
}

export function encodeRequest(id: number, kind: string, body: Uint8Array): Buffer {
  const k = Buffer.from(kind, 'utf8');
  const buf = allocFrame(FrameType.Request, 4 + 2 + k.length + body.length);
  const w = new Writer(buf);
  w.off = FRAME_HEADER_BYTES;
  w.u32(id);
  w.u16(k.length);
  w.raw(k);
  w.raw(body);
  sealFrame(buf);
  return buf;
}

export function decodeRequest(f: Frame): { id: number; kind: string; body: Uint8Array } {
  const r = new Reader(f.payload);
  return { id: r.u32(), kind: r.str(), body: r.rest() };
}

/** {code, message} of anything a handler threw: EtcdError-like objects keep their gRPC code. */
export function errorToWire(e: unknown): { code: number; message: string } {
  if (typeof e === 'object' && e !== null) {
    const o = e as { code?: unknown; message?: unknown };
    const message = typeof o.message === 'string' ? o.message : String(e);
    if (typeof o.code === 'number' && Number.isInteger(o.code) && o.code > 0 && o.code <= 0xffff_ffff) return { code: o.code, message };
    return { code: GrpcCode.Unknown, message };
  }
  return { code: GrpcCode.Unknown, message: String(e) };
}

/** Caller side of the request connection to one peer. */
export class RequestLink {
  readonly id: bigint;
  #env: RequestEnv;
  #addrs: HostPort[];
  #addrNext = 0;
  #sock: net.Socket | null = null;
  #dialing = false;
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #closed = false;

  constructor(id: bigint, urls: string[], env: RequestEnv) {
    this.id = id;
    this.#env = env;
    this.#addrs = urls.map(parsePeerUrl);
  }

  setUrls(urls: string[]): void {
    this.#addrs = urls.map(parsePeerUrl);
    this.#addrNext = 0;
    this.#sock?.destroy();
  }

  request(kind: string, body: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.#closed) return Promise.reject(new PeerRequestError(`peer ${idToHex(this.id)} was removed`, GrpcCode.Unavailable));
    const l = this.#env.limits;
    if (this.#pending.size >= l.peerRequestsInflightMax) {
      return Promise.reject(new PeerRequestError(`too many requests in flight to peer ${idToHex(this.id)}`, GrpcCode.ResourceExhausted));
    }
    if (4 + 2 + Buffer.byteLength(kind) + body.length > l.peerFrameBytesMax || Buffer.byteLength(kind) > 0xffff) {
      return Promise.reject(new PeerRequestError('peer request too large', GrpcCode.ResourceExhausted));
    }
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0xffff_ffff ? 1 : this.#nextId + 1;
    const frame = encodeRequest(id, kind, body);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new PeerRequestError(`peer request ${kind} to ${idToHex(this.id)} timed out after ${timeoutMs} ms`, GrpcCode.DeadlineExceeded));
      }, timeoutMs);
      const p: Pending = { resolve, reject, timer, frame: null };
      this.#pending.set(id, p);
      if (this.#sock !== null) this.#sock.write(frame);
      else {
        p.frame = frame;
        this.#ensureDialing();
      }
    });
  }

  close(reason: string): void {
    this.#closed = true;
    this.#sock?.destroy();
    this.#sock = null;
    this.#failAll(reason);
  }

  #failAll(reason: string, onlyWaiting = false): void {
    for (const [id, p] of this.#pending) {
      if (onlyWaiting && p.frame === null) continue;
      clearTimeout(p.timer);
      this.#pending.delete(id);
      p.reject(new PeerRequestError(reason, GrpcCode.Unavailable));
    }
  }

  #ensureDialing(): void {
    if (this.#dialing || this.#sock !== null || this.#closed || this.#addrs.length === 0) return;
    this.#dialing = true;
    const addr = this.#addrs[this.#addrNext++ % this.#addrs.length];
    dial(this.#env, addr, Purpose.Request, this.id).then(({ sock, reader }) => this.#onLive(sock, reader), (e: Error) => {
      this.#dialing = false;
      this.#env.log.debug('peer request connection failed', { peer: idToHex(this.id), error: e.message });
      this.#failAll(`peer ${idToHex(this.id)} unreachable: ${e.message}`, true);
    });
  }

  #onLive(sock: net.Socket, reader: FrameReader): void {
    this.#dialing = false;
    if (this.#closed) {
      sock.destroy();
      return;
    }
    this.#sock = sock;
    sock.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      try {
        for (let f = reader.next(); f !== null; f = reader.next()) this.#onResponse(f);
      } catch (e) {
        this.#env.log.warn('bad frame from peer on request connection', { peer: idToHex(this.id), error: (e as Error).message });
        sock.destroy();
      }
    });
    sock.on('close', () => {
      if (this.#sock !== sock) return;
      this.#sock = null;
      // Requests already written may or may not have run remotely: the caller decides.
      this.#failAll(`connection to peer ${idToHex(this.id)} lost`);
    });
    sock.resume();
    for (const p of this.#pending.values()) {
      if (p.frame === null) continue;
      sock.write(p.frame);
      p.frame = null;
    }
  }

  #onResponse(f: Frame): void {
    if (f.type !== FrameType.Response) throw new PeerProtocolError(`unexpected frame type ${f.type} on request connection`);
    const res = decodeResult(f);
    const p = this.#pending.get(res.id);
    if (p === undefined) return; // timed out already
    this.#pending.delete(res.id);
    clearTimeout(p.timer);
    if (res.code === 0) p.resolve(res.body);
    else p.reject(new PeerRequestError(Buffer.from(res.body).toString('utf8'), res.code));
  }
}

/** Serving side of one inbound request connection. */
export class RequestServer {
  #inflight = 0;
  constructor(
    readonly from: bigint,
    readonly sock: net.Socket,
    readonly limits: PeerLimits,
    readonly handler: (from: bigint, kind: string, body: Uint8Array) => Promise<Uint8Array>,
  ) {}

  onFrame(f: Frame): void {
    if (f.type !== FrameType.Request) throw new PeerProtocolError(`unexpected frame type ${f.type} on request connection`);
    const req = decodeRequest(f);
    if (this.#inflight >= this.limits.peerRequestsInflightMax) {
      this.#reply(req.id, GrpcCode.ResourceExhausted, Buffer.from('etcdserver: too many requests'));
      return;
    }
    this.#inflight++;
    Promise.resolve()
      .then(() => this.handler(this.from, req.kind, req.body))
      .then((body) => {
        if (body.length + 8 > this.limits.peerFrameBytesMax) this.#reply(req.id, GrpcCode.ResourceExhausted, Buffer.from('peer response too large'));
        else this.#reply(req.id, 0, body);
      }, (e: unknown) => {
        const w = errorToWire(e); // code is never 0 (OK)
        this.#reply(req.id, w.code, Buffer.from(w.message, 'utf8'));
      })
      .finally(() => { this.#inflight--; });
  }

  #reply(id: number, code: number, body: Uint8Array): void {
    if (this.sock.destroyed) return;
    this.sock.write(encodeResult(FrameType.Response, id, code, body));
  }
}
