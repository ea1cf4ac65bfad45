// The peer transport: raft messages, snapshots and member-to-member requests over TCP, inside TLS for
// https:// peer URLs (the handshake in net/tls.ts, then the same protocol).
//
//   dialer                                     listener (every member accepts from everyone)
//   ── HELLO(magic, version, purpose, cluster, from, to) ──►  checks cluster ID, to == self, not removed
//   ◄── HELLO_ACK(status) ──                                  refuses with a status and a log line
//   purpose messages: one persistent connection per (sender, receiver), MESSAGES frames one way
//   purpose snapshot: one connection per transfer (snapshot.ts)
//   purpose request:  one multiplexed connection per (caller, callee) (request.ts)
//
// Frames are length-prefixed with a CRC-32C (frame.ts); raft messages use codec.ts.
//
// NOT etcd's peer protocol: this port does not speak rafthttp (HTTP /raft/stream, /raft/snapshot,
// /members). Members of a real etcd cluster cannot join an etcd-ts cluster, and an etcd-ts member
// cannot join etcd; an HTTP request to this port is refused with a log line saying so.
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import type * as tls from 'node:tls';
import { Logger } from '../log';
import { TlsAcceptor, TlsInfo } from '../net/tls';
import { Message } from '../raft/types';
import { limits, Limits } from '../../shared/limits';
import { idToHex } from '../../shared/ids';
import { GrpcCode } from '../../shared/errors';
import { PeerProtocolError, batchEncodedBytes, decodeMessages, encodeMessagesAfter, messageEncodedBytes } from './codec';
import {
  FRAME_HEADER_BYTES, Frame, FrameReader, FrameType, HELLO_FRAME_BYTES_MAX, HELLO_STATUS_TEXT, HelloStatus, PEER_PROTOCOL_VERSION,
  Purpose, decodeHello, encodeFrame, encodeHelloAck, looksLikeHttp, sealFrame,
} from './frame';
import { dial, Dialed, HostPort, parsePeerUrl, PeerDialTls } from './dial';
import { LinkEnv, MessageLink } from './link';
import { PeerRequestError, RequestLink, RequestServer, errorToWire } from './request';
import { SnapshotReceiver, encodeSnapResult, listSnapshotFiles, streamSnapshot } from './snapshot';

export { PeerProtocolError } from './codec';
export { PeerRequestError } from './request';

export type PeerLimits = Pick<Limits,
  'peerFrameBytesMax' | 'peerQueueMessagesMax' | 'peerQueueBytesMax' | 'peerDialTimeoutMs' | 'peerHandshakeTimeoutMs' |
  'peerBackoffMinMs' | 'peerBackoffMaxMs' | 'peerInboundConnectionsMax' | 'peerRequestsInflightMax' |
  'peerSnapshotBytesMax' | 'peerSnapshotFilesMax' | 'peerSnapshotChunkBytes' | 'peerSnapshotIdleTimeoutMs' |
  'peerSnapshotApplyTimeoutMs' | 'tlsHandshakeTimeoutMs' | 'tlsHandshakesInFlightMax' | 'tlsReloadCheckMs'>;

export interface PeerTransportOptions {
  selfId: bigint;
  clusterId: bigint;
  /** host/port pairs to listen on (from --listen-peer-urls; tls for https://). Port 0 picks a free port (see addresses()). */
  listen: Array<{ host: string; port: number; tls?: boolean }>;
  /** Peer TLS (the --peer-* certificate flags, auto TLS resolved): the handshake on listeners with tls,
   * and the certificate presented when dialing https:// peer URLs. */
  tls?: TlsInfo;
  log: Logger;
  /** Called for every received raft message batch, in order per sender. */
  onMessages(msgs: Message[]): void;
  /** A peer could not be reached / its queue overflowed (raft ReportUnreachable). */
  onUnreachable(id: bigint): void;
  /** A complete snapshot arrived: dir holds the files the sender streamed; msg is the raft MsgSnap
   * message (snapshot.data empty). The receiver owns dir; if this rejects, the transport removes dir. */
  onSnapshot(msg: Message, dir: string): Promise<void>;
  /** Request/response calls between members (lease keep-alive forwarding etc.). Throwing an object
   * with {code: number, message: string} (EtcdError) reaches the caller as PeerRequestError(message, code). */
  onRequest(from: bigint, kind: string, body: Uint8Array): Promise<Uint8Array>;
  /** A peer refused our connection because we were removed from the cluster. */
  onRemoved?(): void;
  /** The cluster's ID and membership (JSON) for a member joining it (Purpose.Discover). */
  onDiscover?(): Uint8Array;
  /** Parent of the temp dirs incoming snapshots are written to (default os.tmpdir()). */
  snapshotDir?: string;
  /** Overrides of the peer limits in src/shared/limits.ts (tests). */
  limits?: Partial<PeerLimits>;
}

interface Peer {
  urls: string[];
  link: MessageLink;
  req: RequestLink;
}

/** Per inbound connection state. */
interface Inbound {
  sock: net.Socket;
  reader: FrameReader;
  from: bigint | null;
  purpose: Purpose | null;
  req: RequestServer | null;
  snap: SnapshotReceiver | null;
  /** A snapshot frame run is in progress (socket paused). */
  snapRunning: boolean;
  /** Refused or failed: a final frame is being flushed, further input is ignored. */
  closing: boolean;
  handshakeTimer: NodeJS.Timeout | null;
}

export class PeerTransport {
  #o: PeerTransportOptions;
  #l: PeerLimits;
  #log: Logger;
  /** Shared by every peer's links and by snapshot dials. */
  #env: LinkEnv;
  #servers: net.Server[] = [];
  #peers = new Map<bigint, Peer>();
  #removed = new Set<bigint>();
  /** Every socket we opened or accepted, so stop() can close them all. */
  #sockets = new Set<net.Socket>();
  #inboundCount = 0;
  /** The current inbound message connection per sender (a newer one replaces it). */
  #inboundMessages = new Map<bigint, net.Socket>();
  /** Senders with a snapshot being received. */
  #inboundSnapshots = new Set<bigint>();
  /** Temp-dir removals of aborted snapshots, awaited by stop(). */
  #cleanups = new Set<Promise<void>>();
  #stopped = false;
  #track = (sock: net.Socket): void => {
    if (this.#stopped) sock.destroy();
    this.#sockets.add(sock);
    sock.once('close', () => this.#sockets.delete(sock));
  };

  constructor(opts: PeerTransportOptions) {
    this.#o = opts;
    this.#l = { ...limits, ...opts.limits };
    this.#log = opts.log.child({ component: 'peer', local: idToHex(opts.selfId) });
    this.#env = {
      selfId: opts.selfId, clusterId: opts.clusterId, limits: this.#l, log: this.#log, track: this.#track,
      tls: opts.tls && opts.tls.certFile ? new PeerDialTls(opts.tls, this.#l.tlsReloadCheckMs, this.#log) : null,
      onUnreachable: (pid: bigint) => this.#reportUnreachable(pid),
      onRemovedByPeer: (pid: bigint) => {
        this.#log.warn('a peer refused us: this member was removed from the cluster', { peer: idToHex(pid) });
        this.#o.onRemoved?.();
      },
    };
  }

  async start(): Promise<void> {
    let acceptor: TlsAcceptor | null = null;
    for (const { host, port, tls: secure } of this.#o.listen) {
      if (secure && acceptor === null) {
        if (!this.#o.tls?.certFile) throw new Error('https:// peer URLs need peer TLS (--peer-cert-file and --peer-key-file, or --peer-auto-tls)');
        acceptor = new TlsAcceptor(this.#o.tls, this.#l, this.#log, (s) => this.#onConnection(s));
      }
      const a = secure ? acceptor : null;
      const server = net.createServer((sock) => {
        if (a === null) return this.#onConnection(sock);
        // Tracked from the first byte: stop() closes connections still in their handshake too.
        this.#track(sock);
        sock.on('error', () => sock.destroy());
        a.accept(sock);
      });
      server.maxConnections = this.#l.peerInboundConnectionsMax;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port }, () => {
          server.removeListener('error', reject);
          resolve();
        });
      });
      server.on('error', (e) => this.#log.error('peer listener error', { error: e.message }));
      this.#servers.push(server);
      this.#log.info('listening for peers', { address: `${host}:${(server.address() as net.AddressInfo).port}`, tls: Boolean(secure) });
    }
  }

  /** The bound listen addresses (port resolved when 0 was asked). */
  addresses(): HostPort[] {
    const out: HostPort[] = [];
    for (const s of this.#servers) {
      const a = s.address();
      if (a !== null && typeof a === 'object') out.push({ host: a.address, port: a.port });
    }
    return out;
  }

  addPeer(id: bigint, urls: string[]): void {
    if (this.#stopped) return;
    this.#removed.delete(id);
    const existing = this.#peers.get(id);
    if (existing !== undefined) {
      this.updatePeer(id, urls);
      return;
    }
    for (const u of urls) parsePeerUrl(u); // refuse bad URLs at the call, not at the first dial
    const link = new MessageLink(id, urls, this.#env);
    this.#peers.set(id, { urls: [...urls], link, req: new RequestLink(id, urls, this.#env) });
    link.connect();
  }

  updatePeer(id: bigint, urls: string[]): void {
    const p = this.#peers.get(id);
    if (p === undefined) {
      this.addPeer(id, urls);
      return;
    }
    for (const u of urls) parsePeerUrl(u);
    if (sameUrls(p.urls, urls)) return;
    p.urls = [...urls];
    p.link.setUrls(urls);
    p.req.setUrls(urls);
  }

  removePeer(id: bigint): void {
    const p = this.#peers.get(id);
    this.#removed.add(id);
    if (p === undefined) return;
    this.#peers.delete(id);
    p.link.close();
    p.req.close(`peer ${idToHex(id)} was removed`);
    this.#inboundMessages.get(id)?.destroy();
  }

  send(msgs: Message[]): void {
    if (this.#stopped || msgs.length === 0) return;
    const byPeer = new Map<bigint, Message[]>();
    for (const m of msgs) {
      const list = byPeer.get(m.to);
      if (list === undefined) byPeer.set(m.to, [m]);
      else list.push(m);
    }
    for (const [to, list] of byPeer) {
      const p = this.#peers.get(to);
      if (p === undefined) {
        this.#log.debug('dropping messages to unknown peer', { peer: idToHex(to), messages: list.length });
        this.#reportUnreachable(to);
        continue;
      }
      this.#sendBatches(p, to, list);
    }
  }

  /** Splits one peer's messages into frames of at most peerFrameBytesMax, keeping their order. */
  #sendBatches(p: Peer, to: bigint, list: Message[]): void {
    const max = this.#l.peerFrameBytesMax;
    const emptyBytes = batchEncodedBytes([]);
    let batch: Message[] = [];
    let bytes = emptyBytes;
    const flush = (): void => {
      if (batch.length === 0) return;
      // bytes is the batch's encoded size, summed below: the encoder does not walk the messages twice.
      const frame = encodeMessagesAfter(batch, FRAME_HEADER_BYTES, bytes);
      frame[8] = FrameType.Messages;
      sealFrame(frame);
      p.link.sendFrame(frame, batch.length);
      batch = [];
      bytes = emptyBytes;
    };
    for (const m of list) {
      const n = messageEncodedBytes(m);
      if (emptyBytes + n > max) {
        this.#log.error('raft message larger than a peer frame, dropped', { peer: idToHex(to), type: m.type, bytes: n, max });
        this.#reportUnreachable(to);
        continue;
      }
      if (bytes + n > max) flush();
      batch.push(m);
      bytes += n;
    }
    flush();
  }

  async sendSnapshot(msg: Message, dir: string): Promise<void> {
    const to = msg.to;
    const p = this.#peers.get(to);
    if (this.#stopped) throw new PeerRequestError('peer transport stopped', GrpcCode.Unavailable);
    if (p === undefined) throw new PeerRequestError(`peer ${idToHex(to)} is not known`, GrpcCode.Unavailable);
    if (msg.snapshot === null) throw new Error('invariant: sendSnapshot needs a message with a snapshot');
    const files = await listSnapshotFiles(dir);
    const total = files.reduce((s, f) => s + f.size, 0);
    if (total > this.#l.peerSnapshotBytesMax || files.length > this.#l.peerSnapshotFilesMax) {
      throw new PeerRequestError(`snapshot of ${total} bytes in ${files.length} files exceeds the peer limits`, GrpcCode.ResourceExhausted);
    }
    const l = this.#l;
    const started = Date.now();
    let lastError: Error | null = null;
    // Try each URL once for the connection; the transfer itself is not retried (raft re-sends).
    for (const url of p.urls) {
      if (this.#stopped) break;
      let dialed: Dialed;
      try {
        dialed = await dial(this.#env, parsePeerUrl(url), Purpose.Snapshot, to);
      } catch (e) {
        lastError = e as Error;
        continue;
      }
      this.#log.info('sending snapshot', { peer: idToHex(to), index: msg.snapshot.metadata.index, files: files.length, bytes: total });
      await streamSnapshot(dialed.sock, dialed.reader, msg, dir, files, l, (code, message) => new PeerRequestError(message, code));
      this.#log.info('sent snapshot', { peer: idToHex(to), index: msg.snapshot.metadata.index, bytes: total, ms: Date.now() - started });
      return;
    }
    throw new PeerRequestError(`cannot connect to peer ${idToHex(to)} for a snapshot: ${lastError?.message}`, GrpcCode.Unavailable);
  }

  request(to: bigint, kind: string, body: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.#stopped) return Promise.reject(new PeerRequestError('peer transport stopped', GrpcCode.Unavailable));
    const p = this.#peers.get(to);
    if (p === undefined) return Promise.reject(new PeerRequestError(`peer ${idToHex(to)} is not known`, GrpcCode.Unavailable));
    return p.req.request(kind, body, timeoutMs);
  }

  /** Raft messages and frame bytes waiting for a peer (disconnected or backpressured); undefined if unknown. */
  queued(id: bigint): { messages: number; bytes: number } | undefined {
    const p = this.#peers.get(id);
    return p === undefined ? undefined : { messages: p.link.queuedMessages, bytes: p.link.queuedBytes };
  }

  /** The peers this transport talks to. */
  peerIds(): bigint[] {
    return [...this.#peers.keys()];
  }

  /** When the message connection to a peer came up (ms since the epoch), 0 if it is down or unknown. */
  activeSince(id: bigint): number {
    return this.#peers.get(id)?.link.liveSince ?? 0;
  }

  connected(): bigint[] {
    const out: bigint[] = [];
    for (const [id, p] of this.#peers) if (p.link.live) out.push(id);
    return out;
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const closing = this.#servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const p of this.#peers.values()) {
      p.link.close();
      p.req.close('peer transport stopped');
    }
    this.#peers.clear();
    const closed = [...this.#sockets].map((s) => new Promise<void>((resolve) => {
      if (s.closed) resolve();
      else s.once('close', () => resolve());
    }));
    for (const s of this.#sockets) s.destroy();
    await Promise.all([...closing, ...closed]);
    while (this.#cleanups.size > 0) await Promise.all([...this.#cleanups]);
  }

  #reportUnreachable(id: bigint): void {
    try {
      this.#o.onUnreachable(id);
    } catch (e) {
      this.#log.error('onUnreachable threw', { peer: idToHex(id), error: (e as Error).message });
    }
  }

  // ---- inbound ----

  #onConnection(sock: net.Socket): void {
    if (this.#stopped || this.#inboundCount >= this.#l.peerInboundConnectionsMax) {
      sock.destroy();
      return;
    }
    this.#track(sock);
    this.#inboundCount++;
    sock.on('close', () => { this.#inboundCount--; });
    sock.on('error', () => {}); // 'close' follows; refusals are logged where they are decided
    sock.setNoDelay(true);
    const c: Inbound = { sock, reader: new FrameReader(HELLO_FRAME_BYTES_MAX), from: null, purpose: null, req: null, snap: null, snapRunning: false, closing: false, handshakeTimer: null };
    c.handshakeTimer = setTimeout(() => {
      this.#log.warn('peer connection sent no handshake in time', { remote: remoteOf(sock) });
      sock.destroy();
    }, this.#l.peerHandshakeTimeoutMs);
    sock.on('close', () => {
      if (c.handshakeTimer !== null) clearTimeout(c.handshakeTimer);
      this.#onInboundClosed(c);
    });
    let first = true;
    sock.on('data', (chunk: Buffer) => {
      if (first && looksLikeHttp(chunk)) {
        this.#log.warn('refused HTTP on the peer port: etcd-ts members speak their own peer protocol, etcd members cannot join', { remote: remoteOf(sock) });
        sock.destroy();
        return;
      }
      first = false;
      if (c.closing) return;
      c.reader.push(chunk);
      if (c.purpose === Purpose.Snapshot) this.#pumpSnapshot(c);
      else this.#pump(c);
    });
  }

  /** Synchronous frame handling: handshake, messages, requests. */
  #pump(c: Inbound): void {
    try {
      for (let f = c.reader.next(); f !== null && !c.sock.destroyed && !c.closing; f = c.reader.next()) {
        if (c.purpose === null) {
          this.#onHello(c, f);
          if (c.purpose === Purpose.Snapshot) return this.#pumpSnapshot(c);
        } else if (c.purpose === Purpose.Messages) this.#onMessagesFrame(c, f);
        else (c.req as RequestServer).onFrame(f);
      }
    } catch (e) {
      this.#protocolError(c, e);
    }
  }

  #protocolError(c: Inbound, e: unknown): void {
    const fields = { remote: remoteOf(c.sock), peer: c.from === null ? undefined : idToHex(c.from), error: (e as Error).message };
    if (e instanceof PeerProtocolError) this.#log.warn('closing peer connection: protocol error', fields);
    else this.#log.error('closing peer connection: unexpected error', fields);
    c.sock.destroy();
  }

  #onHello(c: Inbound, f: Frame): void {
    const h = decodeHello(f);
    const refuse = (status: HelloStatus): void => {
      this.#log.warn(`refused peer connection: ${HELLO_STATUS_TEXT[status]}`, {
        remote: remoteOf(c.sock), 'remote-member': idToHex(h.from), 'remote-cluster': idToHex(h.clusterId),
        'local-cluster': idToHex(this.#o.clusterId), 'addressed-to': idToHex(h.to), version: h.version,
      });
      // Do not wait for the dialer to close: drop the connection once the refusal is flushed.
      c.sock.end(encodeHelloAck(status, HELLO_STATUS_TEXT[status]), () => c.sock.destroy());
      c.closing = true;
    };
    if (h.version !== PEER_PROTOCOL_VERSION) return refuse(HelloStatus.VersionUnsupported);
    if (h.purpose === Purpose.Discover) {
      if (this.#stopped || this.#o.onDiscover === undefined) return refuse(HelloStatus.Stopping);
      if (c.handshakeTimer !== null) clearTimeout(c.handshakeTimer);
      c.handshakeTimer = null;
      c.closing = true;
      c.sock.write(encodeHelloAck(HelloStatus.Ok, ''));
      c.sock.end(encodeFrame(FrameType.Members, this.#o.onDiscover()), () => c.sock.destroy());
      this.#log.info('answered a discovery request', { remote: remoteOf(c.sock) });
      return;
    }
    if (h.clusterId !== this.#o.clusterId) return refuse(HelloStatus.ClusterMismatch);
    if (h.to !== this.#o.selfId) return refuse(HelloStatus.MemberMismatch);
    if (this.#stopped) return refuse(HelloStatus.Stopping);
    if (this.#removed.has(h.from)) return refuse(HelloStatus.Removed);
    if (h.purpose !== Purpose.Messages && h.purpose !== Purpose.Snapshot && h.purpose !== Purpose.Request) return refuse(HelloStatus.BadPurpose);
    if (h.purpose === Purpose.Snapshot && this.#inboundSnapshots.has(h.from)) return refuse(HelloStatus.Busy);
    if (c.handshakeTimer !== null) clearTimeout(c.handshakeTimer);
    c.handshakeTimer = null;
    c.from = h.from;
    c.purpose = h.purpose;
    c.reader.setMaxPayload(this.#l.peerFrameBytesMax);
    c.sock.setKeepAlive(true, 5000);
    if (h.purpose === Purpose.Messages) {
      this.#inboundMessages.get(h.from)?.destroy();
      this.#inboundMessages.set(h.from, c.sock);
    } else if (h.purpose === Purpose.Request) {
      c.req = new RequestServer(h.from, c.sock, this.#l, (from, kind, body) => this.#o.onRequest(from, kind, body));
    } else {
      this.#inboundSnapshots.add(h.from);
      c.snap = new SnapshotReceiver(this.#l, this.#o.snapshotDir);
      c.sock.setTimeout(this.#l.peerSnapshotIdleTimeoutMs, () => {
        this.#log.warn('snapshot transfer from peer idle, closing', { peer: idToHex(h.from) });
        c.sock.destroy();
      });
    }
    c.sock.write(encodeHelloAck(HelloStatus.Ok, ''));
    this.#log.debug('accepted peer connection', { remote: remoteOf(c.sock), peer: idToHex(h.from), purpose: h.purpose });
  }

  #onMessagesFrame(c: Inbound, f: Frame): void {
    if (f.type !== FrameType.Messages) throw new PeerProtocolError(`unexpected frame type ${f.type} on message connection`);
    const msgs = decodeMessages(f.payload);
    const from = c.from as bigint;
    const self = this.#o.selfId;
    // Every message of a healthy peer passes: copy only when some must be dropped.
    const ok = msgs.every((m) => m.to === self && m.from === from) ? msgs : msgs.filter((m) => m.to === self && m.from === from);
    if (ok.length !== msgs.length) {
      this.#log.warn('dropped raft messages with a wrong sender or recipient', { peer: idToHex(from), dropped: msgs.length - ok.length });
    }
    if (ok.length === 0) return;
    try {
      this.#o.onMessages(ok);
    } catch (e) {
      this.#log.error('onMessages threw', { peer: idToHex(from), error: (e as Error).message });
    }
  }

  /** Snapshot frames are handled one at a time with the socket paused: disk speed is the backpressure. */
  #pumpSnapshot(c: Inbound): void {
    if (c.snapRunning || c.sock.destroyed || c.closing) return; // the running loop picks up the new frames
    c.snapRunning = true;
    c.sock.pause();
    void this.#runSnapshotFrames(c).then(() => {
      c.snapRunning = false;
      if (c.sock.destroyed) return;
      c.sock.resume();
      if (c.reader.hasFrame()) this.#pumpSnapshot(c);
    }, (e: unknown) => {
      c.snapRunning = false;
      const fields = { peer: idToHex(c.from as bigint), error: (e as Error).message };
      if (e instanceof PeerProtocolError) this.#log.warn('refused snapshot from peer', fields);
      else this.#log.error('cannot receive snapshot from peer', fields);
      if (c.sock.destroyed) return;
      const code = e instanceof PeerProtocolError ? GrpcCode.InvalidArgument : GrpcCode.Internal;
      c.sock.end(encodeSnapResult(code, `snapshot refused: ${(e as Error).message}`), () => c.sock.destroy());
      c.closing = true;
    });
  }

  async #runSnapshotFrames(c: Inbound): Promise<void> {
    const snap = c.snap as SnapshotReceiver;
    for (let f = c.reader.next(); f !== null && !c.sock.destroyed; f = c.reader.next()) {
      const done = await snap.handle(f);
      if (done !== null) {
        await this.#deliverSnapshot(c, done.msg, done.dir);
        return;
      }
    }
  }

  async #deliverSnapshot(c: Inbound, msg: Message, dir: string): Promise<void> {
    const from = c.from as bigint;
    c.sock.setTimeout(0);
    this.#log.info('received snapshot', { peer: idToHex(from), index: msg.snapshot?.metadata.index, dir });
    let code = 0;
    let message = '';
    try {
      await this.#o.onSnapshot(msg, dir);
    } catch (e) {
      ({ code, message } = errorToWire(e));
      this.#log.warn('onSnapshot failed', { peer: idToHex(from), error: message });
      this.#cleanupLater(fsp.rm(dir, { recursive: true, force: true }));
    }
    if (!c.sock.destroyed) c.sock.end(encodeSnapResult(code, message));
  }

  #onInboundClosed(c: Inbound): void {
    if (c.from === null) return;
    if (c.purpose === Purpose.Messages && this.#inboundMessages.get(c.from) === c.sock) this.#inboundMessages.delete(c.from);
    if (c.purpose === Purpose.Snapshot) {
      this.#inboundSnapshots.delete(c.from);
      if (c.snap !== null) this.#cleanupLater(c.snap.discard());
    }
  }

  #cleanupLater(p: Promise<unknown>): void {
    const q: Promise<void> = p.then(() => {}, (e: unknown) => {
      this.#log.warn('cannot remove snapshot temp dir', { error: (e as Error).message });
    }).finally(() => this.#cleanups.delete(q));
    this.#cleanups.add(q);
  }
}

function sameUrls(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((u, i) => u === b[i]);
}

function remoteOf(sock: net.Socket): string {
  return `${sock.remoteAddress ?? '?'}:${sock.remotePort ?? '?'}`;
}

/**
 * Asks the member at a peer URL for its cluster's ID and membership (the JSON its onDiscover returns):
 * how a member started with --initial-cluster-state existing learns the ID MemberAdd gave it.
 */
export async function discoverCluster(url: string, l: PeerLimits = limits, tlsOpts: tls.ConnectionOptions | null = null): Promise<unknown> {
  // dial() destroys its socket when it fails; after it succeeds, the finally below does.
  const env = { selfId: 0n, clusterId: 0n, limits: l, track: () => undefined, tls: tlsOpts };
  const { sock, reader } = await dial(env, parsePeerUrl(url), Purpose.Discover, 0n);
  try {
    return await new Promise<unknown>((resolve, reject) => {
      const fail = (e: Error): void => {
        clearTimeout(timer);
        reject(e);
      };
      const timer = setTimeout(() => reject(new Error(`no membership from ${url} in time`)), l.peerHandshakeTimeoutMs);
      /** Settles once the MEMBERS frame is in (it may have come with the HELLO_ACK). */
      const onFrame = (): void => {
        try {
          const f = reader.next();
          if (f === null) return;
          if (f.type !== FrameType.Members) fail(new PeerProtocolError(`unexpected frame type ${f.type} answering discovery`));
          else {
            clearTimeout(timer);
            resolve(JSON.parse(Buffer.from(f.payload).toString('utf8')));
          }
        } catch (e) {
          fail(e as Error);
        }
      };
      sock.on('data', (chunk: Buffer) => {
        reader.push(chunk);
        onFrame();
      });
      sock.on('close', () => fail(new Error(`connection to ${url} closed before the membership arrived`)));
      sock.resume();
      onFrame();
    });
  } finally {
    sock.destroy();
  }
}
