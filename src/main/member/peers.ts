// The member's links to its peers: our own framed protocol on --listen-peer-urls (not etcd's: etcd
// members cannot join an etcd-ts cluster). The peer port opens at start, as etcd's does, even for a
// lone member, so a taken port is a start-up error and not a MemberAdd that can never complete. The
// peers follow the membership: at start, after each applied ConfChange, after a snapshot.
import { Config } from '../config';
import { Logger } from '../log';
import { TlsInfo } from '../net/tls';
import { Membership } from '../membership';
import { PeerTransport } from '../peer/transport';
import type { Message } from '../raft/types';
import { EtcdError, GrpcCode } from '../../shared/errors';
import { Limits } from '../../shared/limits';
import { hostOf } from './urls';
import { StartupError } from '../startup_error';

/** Where what arrives from peers goes (given when the port opens, once Raft and the services exist). */
export interface PeerInbound {
  onMessages(msgs: Message[]): void;
  onUnreachable(id: bigint): void;
  /** A snapshot from the leader; the receiver owns dir. */
  onSnapshot(msg: Message, dir: string): Promise<void>;
  /** A call from another member (forwarded lease calls, MemberPromote). */
  onRequest(from: bigint, kind: string, body: Uint8Array): Promise<Uint8Array>;
  /** The cluster's ID and membership, for a member joining it. */
  onDiscover(): Uint8Array;
  /** A peer refused us: this member was removed from the cluster. */
  onRemoved(): void;
}

export class PeerLinks {
  readonly #cfg: Config;
  readonly #lim: Readonly<Limits>;
  readonly #selfId: bigint;
  readonly #clusterId: bigint;
  readonly #log: Logger;
  readonly #tls: TlsInfo;
  /** Open from start() to stop(); before, messages are dropped (Raft sends them again). */
  #transport: PeerTransport | null = null;

  /** tls: the peer certificate flags, auto TLS resolved (tls_setup.ts). */
  constructor(cfg: Config, lim: Readonly<Limits>, selfId: bigint, clusterId: bigint, log: Logger, tls: TlsInfo) {
    this.#tls = tls;
    this.#cfg = cfg;
    this.#lim = lim;
    this.#selfId = selfId;
    this.#clusterId = clusterId;
    this.#log = log;
  }

  /** Opens the peer port. A port that cannot be bound fails the start. */
  async start(inbound: PeerInbound): Promise<void> {
    const t = new PeerTransport({
      selfId: this.#selfId,
      clusterId: this.#clusterId,
      log: this.#log,
      listen: this.#cfg.listenPeerUrls.map((u) => ({ host: hostOf(u), port: Number(u.port), tls: u.protocol === 'https:' })),
      tls: this.#tls,
      onMessages: (msgs) => inbound.onMessages(msgs),
      onUnreachable: (id) => inbound.onUnreachable(id),
      onSnapshot: (msg, dir) => inbound.onSnapshot(msg, dir),
      onRequest: (from, kind, body) => inbound.onRequest(from, kind, body),
      onDiscover: () => inbound.onDiscover(),
      onRemoved: () => inbound.onRemoved(),
      // Frames grow with --max-request-bytes (a MsgApp carries a largest request).
      limits: {
        peerFrameBytesMax: this.#lim.peerFrameBytesMax,
        peerQueueBytesMax: this.#lim.peerQueueBytesMax,
        tlsHandshakeTimeoutMs: this.#lim.tlsHandshakeTimeoutMs,
        tlsHandshakesInFlightMax: this.#lim.tlsHandshakesInFlightMax,
      },
    });
    try {
      await t.start();
    } catch (e) {
      await t.stop();
      throw new StartupError(
        `cannot listen for peers on ${this.#cfg.listenPeerUrls.map((u) => u.host).join(',')}: ${(e as Error).message}`,
      );
    }
    this.#transport = t;
  }

  /** Peers follow the membership. Only IDs the cluster removed are dropped (and refused from now on): a
   * member replaying the log from its start does not know every member yet. */
  follow(membership: Membership): void {
    const t = this.#transport;
    if (t === null) return;
    for (const m of membership.list()) if (m.id !== this.#selfId) t.addPeer(m.id, m.peerURLs);
    for (const id of t.peerIds()) if (membership.isRemoved(id)) t.removePeer(id);
  }

  /** A joining member, before its first applied ConfChange: the members the cluster told it about. */
  addPeers(members: Array<{ id: bigint; peerUrls: string[] }>): void {
    for (const m of members) if (m.id !== this.#selfId) this.#transport?.addPeer(m.id, m.peerUrls);
  }

  send(msgs: Message[]): void {
    this.#transport?.send(msgs);
  }

  sendSnapshot(msg: Message, dir: string): Promise<void> {
    const t = this.#transport;
    if (t === null) return Promise.reject(new Error('the peer port is not open'));
    return t.sendSnapshot(msg, dir);
  }

  /** A call to another member's services, with its EtcdError if it fails. */
  request(to: bigint, kind: string, body: Uint8Array): Promise<Uint8Array> {
    const t = this.#transport;
    if (t === null) return Promise.reject(new EtcdError(GrpcCode.Unavailable, 'etcdserver: not capable'));
    return t.request(to, kind, body, this.#lim.requestTimeoutMs).catch((e: Error & { code?: number }) => {
      throw new EtcdError(typeof e.code === 'number' ? e.code : GrpcCode.Unavailable, e.message);
    });
  }

  /** When the connection to a peer came up (ms since the epoch), 0 if it is not connected. */
  activeSince(id: bigint): number {
    return this.#transport?.activeSince(id) ?? 0;
  }

  async stop(): Promise<void> {
    await this.#transport?.stop();
  }
}
