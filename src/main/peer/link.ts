// The persistent outbound raft-message connection to one peer. One connection, so messages to a peer
// arrive in the order they were sent. While it is down (or its socket is backpressured) frames wait in
// a queue bounded by message count and bytes; a frame that does not fit is dropped and raft is told
// the peer is unreachable (it probes again). Reconnects with exponential backoff plus jitter.
import * as net from 'node:net';
import { Logger } from '../log';
import { idToHex } from '../../shared/ids';
import { HelloStatus, Purpose } from './frame';
import { dial, DialEnv, HostPort, parsePeerUrl, PeerRefusedError } from './dial';

export interface LinkEnv extends DialEnv {
  log: Logger;
  onUnreachable(id: bigint): void;
  /** A peer refused us because we were removed from the cluster. */
  onRemovedByPeer(id: bigint): void;
}

interface Queued {
  frame: Buffer;
  messages: number;
}

export class MessageLink {
  readonly id: bigint;
  #env: LinkEnv;
  #addrs: HostPort[];
  #addrNext = 0;
  /** Live (handshaken) connection, or null. */
  #sock: net.Socket | null = null;
  #dialing = false;
  #retryTimer: NodeJS.Timeout | null = null;
  #backoffMs: number;
  /** Failed attempts since the last live connection (the first failure is logged at warn). */
  #failures = 0;
  /** The reason of the last failure logged at warn ('' once connected). */
  #lastWarned = '';
  #queue: Queued[] = [];
  #queueHead = 0;
  #queueMessages = 0;
  #queueBytes = 0;
  #closed = false;
  #liveSince = 0;

  constructor(id: bigint, urls: string[], env: LinkEnv) {
    this.id = id;
    this.#env = env;
    this.#addrs = urls.map(parsePeerUrl);
    this.#backoffMs = env.limits.peerBackoffMinMs;
  }

  get live(): boolean { return this.#sock !== null; }
  /** When the current connection came up (ms since the epoch), 0 while down. */
  get liveSince(): number { return this.#liveSince; }
  get queuedMessages(): number { return this.#queueMessages; }
  get queuedBytes(): number { return this.#queueBytes; }

  /** New URLs: the current connection (maybe to an old address) is dropped and redialed. */
  setUrls(urls: string[]): void {
    this.#addrs = urls.map(parsePeerUrl);
    this.#addrNext = 0;
    this.#backoffMs = this.#env.limits.peerBackoffMinMs;
    if (this.#sock !== null) this.#sock.destroy(); // 'close' schedules the redial
    else if (this.#retryTimer !== null) {
      // Waiting out a backoff against the old address: try the new one now.
      clearTimeout(this.#retryTimer);
      this.#retryTimer = null;
      this.#ensureDialing();
    }
  }

  /** Queues or writes one encoded frame holding `messages` raft messages. */
  sendFrame(frame: Buffer, messages: number): void {
    if (this.#closed) return;
    const sock = this.#sock;
    if (sock !== null && this.#queueMessages === 0 && !sock.writableNeedDrain) {
      sock.write(frame);
      return;
    }
    const l = this.#env.limits;
    if (this.#queueMessages + messages > l.peerQueueMessagesMax || this.#queueBytes + frame.length > l.peerQueueBytesMax) {
      this.#env.log.debug('peer queue full, dropping messages', { peer: idToHex(this.id), messages, queued: this.#queueMessages, queuedBytes: this.#queueBytes });
      this.#env.onUnreachable(this.id);
      return;
    }
    this.#queue.push({ frame, messages });
    this.#queueMessages += messages;
    this.#queueBytes += frame.length;
    if (sock === null) this.#ensureDialing();
  }

  /** Connects now, without waiting for a message (as etcd keeps a stream to every peer): how long a
   * peer has been connected is what MemberAdd and MemberRemove's health checks look at. */
  connect(): void {
    this.#ensureDialing();
  }

  /** Stops for good: closes the connection, drops the queue, cancels timers. */
  close(): void {
    this.#closed = true;
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#sock?.destroy();
    this.#sock = null;
    this.#queue = [];
    this.#queueHead = 0;
    this.#queueMessages = 0;
    this.#queueBytes = 0;
  }

  #ensureDialing(): void {
    if (this.#closed || this.#dialing || this.#sock !== null || this.#retryTimer !== null) return;
    if (this.#addrs.length === 0) return;
    this.#dialing = true;
    const addr = this.#addrs[this.#addrNext++ % this.#addrs.length];
    dial(this.#env, addr, Purpose.Messages, this.id).then(({ sock }) => this.#onLive(sock, addr), (e: Error) => this.#onDialFailed(e, addr));
  }

  #onLive(sock: net.Socket, addr: HostPort): void {
    this.#dialing = false;
    if (this.#closed) {
      sock.destroy();
      return;
    }
    this.#sock = sock;
    this.#liveSince = Date.now();
    this.#backoffMs = this.#env.limits.peerBackoffMinMs;
    this.#env.log.info(this.#failures > 0 ? 'peer connection re-established' : 'peer connection established',
      { peer: idToHex(this.id), address: `${addr.host}:${addr.port}` });
    this.#failures = 0;
    this.#lastWarned = '';
    // The receiver never writes on a message connection after the ACK; reading keeps 'close' timely.
    sock.on('data', () => {});
    sock.resume();
    sock.on('drain', () => this.#flush());
    sock.on('close', () => this.#onClosed(sock));
    this.#flush();
  }

  #flush(): void {
    const sock = this.#sock;
    while (sock !== null && this.#queueHead < this.#queue.length && !sock.writableNeedDrain) {
      const q = this.#queue[this.#queueHead++];
      this.#queueMessages -= q.messages;
      this.#queueBytes -= q.frame.length;
      sock.write(q.frame);
    }
    if (this.#queueHead === this.#queue.length) {
      this.#queue = [];
      this.#queueHead = 0;
    } else if (this.#queueHead > 1024) {
      this.#queue = this.#queue.slice(this.#queueHead);
      this.#queueHead = 0;
    }
  }

  #onClosed(sock: net.Socket): void {
    if (this.#sock !== sock) return;
    this.#sock = null;
    this.#liveSince = 0;
    if (this.#closed) return;
    this.#env.log.warn('peer connection lost', { peer: idToHex(this.id) });
    // Frames handed to the dead socket may be lost: raft probes the peer again.
    this.#env.onUnreachable(this.id);
    this.#scheduleRetry();
  }

  #onDialFailed(e: Error, addr: HostPort): void {
    this.#dialing = false;
    if (this.#closed) return;
    const fields = { peer: idToHex(this.id), address: `${addr.host}:${addr.port}`, error: e.message, retryMs: this.#backoffMs };
    // Warn on the first failure and whenever the reason changes (a peer that was down and now refuses
    // our TLS certificate says so), debug while the same reason repeats.
    this.#failures++;
    if (e.message !== this.#lastWarned) this.#env.log.warn('cannot connect to peer', fields);
    else this.#env.log.debug('cannot connect to peer', fields);
    this.#lastWarned = e.message;
    if (this.#queueMessages > 0) this.#env.onUnreachable(this.id);
    if (e instanceof PeerRefusedError && e.status === HelloStatus.Removed) this.#env.onRemovedByPeer(this.id);
    this.#scheduleRetry();
  }

  /** Redials after the backoff (with up to 50% jitter) so `connected()` recovers without traffic. */
  #scheduleRetry(): void {
    if (this.#closed || this.#retryTimer !== null) return;
    const l = this.#env.limits;
    const delay = Math.round(this.#backoffMs * (1 + Math.random() * 0.5));
    this.#backoffMs = Math.min(l.peerBackoffMaxMs, this.#backoffMs * 2);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#ensureDialing();
    }, delay);
  }
}
