// Outbound connection set-up shared by the three connection purposes: TCP connect to one of a peer's
// URLs, HELLO, wait for HELLO_ACK. Resolves with the socket and its frame reader (which may already
// hold bytes past the ACK); rejects on connect failure, refusal, timeout or garbage.
import * as net from 'node:net';
import * as tls from 'node:tls';
import { PeerProtocolError } from './codec';
import {
  FrameReader, HELLO_FRAME_BYTES_MAX, HELLO_STATUS_TEXT, HelloStatus, PEER_PROTOCOL_VERSION, Purpose,
  decodeHelloAck, encodeHello,
} from './frame';
import type { PeerLimits } from './transport';
import { clientOptions, tlsFilesStamp, TlsInfo } from '../net/tls';
import type { Logger } from '../log';

export interface HostPort {
  host: string;
  port: number;
  /** An https:// URL: dialed with TLS (the peer certificate flags). */
  secure?: boolean;
}

/** "http://10.0.0.1:2380", "https://[::1]:2380", "tcp://host:2380" or "host:2380" to host and port;
 * https:// means TLS. */
export function parsePeerUrl(url: string): HostPort {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `tcp://${url}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new Error(`invalid peer URL ${JSON.stringify(url)}`);
  }
  const port = Number(u.port || (u.protocol === 'https:' ? 443 : u.protocol === 'http:' ? 80 : NaN));
  if (!u.hostname || !Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`invalid peer URL ${JSON.stringify(url)}`);
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return u.protocol === 'https:' ? { host, port, secure: true } : { host, port };
}

/** The dialed peer answered HELLO with a refusal (other cluster, other member, busy, ...). */
export class PeerRefusedError extends Error {
  constructor(readonly status: HelloStatus, detail: string) {
    super(`peer refused connection: ${HELLO_STATUS_TEXT[status] ?? `status ${status}`}${detail ? ` (${detail})` : ''}`);
    this.name = 'PeerRefusedError';
  }
}

/** What every outbound peer connection needs besides its address, purpose and callee. */
export interface DialEnv {
  selfId: bigint;
  clusterId: bigint;
  /** Connect plus handshake must finish within peerDialTimeoutMs + peerHandshakeTimeoutMs. */
  limits: PeerLimits;
  /** Called with the socket as soon as it exists, so the owner can destroy it on stop(). */
  track(sock: net.Socket): void;
  /** TLS client options (this member's peer certificate) for https:// peer URLs, fixed or re-read when
   * the files change (PeerDialTls); null without peer TLS. */
  tls?: tls.ConnectionOptions | PeerDialTls | null;
}

/**
 * This member's peer certificate for dialing, re-read when its files are replaced: etcd builds the
 * client TLS config from the files for every new connection, so a rotated certificate, key or CA is
 * used by the next dial without a restart. Here the files' identities (inode, size, mtime) are
 * compared at most every checkMs, at a dial; connections already established keep their TLS session.
 * Files that do not load (half written) leave the previous ones in use, retried at a later dial.
 */
export class PeerDialTls {
  readonly #info: TlsInfo;
  readonly #checkMs: number;
  readonly #log: Logger | null;
  #opts: tls.ConnectionOptions;
  #stamp: string;
  #checkedAt: number;

  /** Loads the files now (throws a one-line message naming a bad one). */
  constructor(info: TlsInfo, checkMs: number, log: Logger | null) {
    this.#info = info;
    this.#checkMs = checkMs;
    this.#log = log;
    this.#stamp = tlsFilesStamp(info);
    this.#opts = PeerDialTls.#load(info);
    this.#checkedAt = Date.now();
  }

  /** One secure context for every dial with these files (a context per dial would parse them each time). */
  static #load(info: TlsInfo): tls.ConnectionOptions {
    const o = clientOptions(info);
    return { secureContext: tls.createSecureContext(o), rejectUnauthorized: o.rejectUnauthorized };
  }

  /** The options for the next dial. */
  options(): tls.ConnectionOptions {
    const now = Date.now();
    if (now - this.#checkedAt < this.#checkMs) return this.#opts;
    this.#checkedAt = now;
    const stamp = tlsFilesStamp(this.#info);
    if (stamp === this.#stamp) return this.#opts;
    try {
      this.#opts = PeerDialTls.#load(this.#info);
      this.#stamp = stamp;
      this.#log?.info('reloaded peer TLS certificate files for dialing', { 'cert-file': this.#info.certFile });
    } catch (e) {
      this.#log?.warn('cannot reload peer TLS certificate files; keeping the previous ones', { error: (e as Error).message });
    }
    return this.#opts;
  }
}

function connect(env: DialEnv, addr: HostPort): net.Socket {
  if (!addr.secure) return net.connect({ host: addr.host, port: addr.port });
  const o = env.tls instanceof PeerDialTls ? env.tls.options() : env.tls;
  if (!o) throw new Error(`https://${addr.host}:${addr.port} is a TLS peer URL, but this member has no peer TLS (--peer-cert-file and --peer-key-file, or --peer-auto-tls)`);
  // The certificate must be valid for the host dialed (an IP is checked against IP SANs); servername
  // only for names (RFC 6066 has no IP server names).
  return tls.connect({ ...o, host: addr.host, port: addr.port, servername: net.isIP(addr.host) ? undefined : addr.host });
}

/** A handshaken connection, paused: attach 'data' and call sock.resume(); the reader may hold bytes. */
export interface Dialed {
  sock: net.Socket;
  reader: FrameReader;
}

export function dial(env: DialEnv, addr: HostPort, purpose: Purpose, to: bigint): Promise<Dialed> {
  const l = env.limits;
  return new Promise((resolve, reject) => {
    const sock = connect(env, addr);
    env.track(sock);
    // Errors always end in 'close', which is what owners watch; this keeps a late error from being
    // an unhandled 'error' event between resolve() and the owner attaching its listeners.
    sock.on('error', () => {});
    sock.setNoDelay(true);
    const reader = new FrameReader(HELLO_FRAME_BYTES_MAX);
    let settled = false;
    const cleanup = (): void => {
      clearTimeout(timer);
      sock.removeListener(addr.secure ? 'secureConnect' : 'connect', onConnect);
      sock.removeListener('data', onData);
      sock.removeListener('error', fail);
      sock.removeListener('close', onClose);
    };
    const fail = (e: Error): void => {
      if (settled) return;
      settled = true;
      cleanup();
      sock.destroy();
      reject(e);
    };
    let connected = false;
    const onClose = (): void => fail(new Error(!addr.secure ? 'connection closed during peer handshake'
      : connected ? 'connection closed during peer handshake (did the peer refuse our TLS certificate? see its log)' : 'connection closed during the TLS handshake'));
    const onConnect = (): void => {
      connected = true;
      sock.setKeepAlive(true, 5000);
      sock.write(encodeHello({ version: PEER_PROTOCOL_VERSION, purpose, clusterId: env.clusterId, from: env.selfId, to }));
    };
    const onData = (chunk: Buffer): void => {
      reader.push(chunk);
      try {
        const f = reader.next();
        if (f === null) return;
        const ack = decodeHelloAck(f);
        if (ack.status !== HelloStatus.Ok) return fail(new PeerRefusedError(ack.status, ack.detail));
        if (ack.version !== PEER_PROTOCOL_VERSION) return fail(new PeerProtocolError(`peer speaks protocol version ${ack.version}`));
      } catch (e) {
        return fail(e as Error);
      }
      settled = true;
      cleanup();
      // Paused until the owner attaches its 'data' listener and resumes: no byte is lost in between.
      sock.pause();
      reader.setMaxPayload(l.peerFrameBytesMax);
      resolve({ sock, reader });
    };
    const timeoutMs = l.peerDialTimeoutMs + l.peerHandshakeTimeoutMs;
    const timer = setTimeout(() => fail(new Error(`peer dial/handshake timed out after ${timeoutMs} ms`)), timeoutMs);
    sock.on(addr.secure ? 'secureConnect' : 'connect', onConnect);
    sock.on('data', onData);
    sock.on('error', fail);
    sock.on('close', onClose);
  });
}
