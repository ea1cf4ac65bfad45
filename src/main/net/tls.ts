// TLS at the socket level, for every port that speaks it (client port, peer port): a listener hands a
// raw TCP socket to a TlsAcceptor, which runs the handshake in a node:tls server that never listens
// itself (sockets reach it through emit('connection')) and hands the decrypted TLSSocket on to the same
// code that serves cleartext connections (the h2 session, node:http, the peer transport).
//
//   raw socket ──► TlsAcceptor.accept ──► tls.Server (handshake: ALPN h2/http/1.1, client cert, CRL)
//                   │ at most tlsHandshakesInFlightMax at once; tlsHandshakeTimeoutMs each
//                   └─► onSecure(tlsSocket) after etcd's extra checks (allowed CN / hostname)
//
// Certificates are files, read again when they change (checked at most every tlsReloadCheckMs, on a
// new connection): etcd reloads them per handshake; a replaced certificate or CRL is used for new
// connections, established ones keep theirs. A file that cannot be loaded at start stops the member
// with a line naming it; a bad replacement later is logged and the previous files stay in use.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import type * as net from 'node:net';
import * as tls from 'node:tls';
import { Logger } from '../log';
import { StartupError } from '../startup_error';

/** etcd's TLSInfo, for one side (client or peer), as the flags give it. */
export interface TlsInfo {
  certFile: string;
  keyFile: string;
  trustedCaFile: string;
  /** --client-cert-auth / --peer-client-cert-auth: a client certificate signed by the CA is required. */
  clientCertAuth: boolean;
  crlFile: string;
  /** --peer-cert-allowed-cn: the client certificate's common name must be this. */
  allowedCn: string;
  /** --client-cert-allowed-hostname / --peer-cert-allowed-hostname: the client certificate must be valid for it. */
  allowedHostname: string;
  /** --auto-tls / --peer-auto-tls: generate a self-signed certificate when no files are given. */
  autoTls: boolean;
  /** etcd's cipher suite names (--cipher-suites), empty for Node's defaults. */
  cipherSuites: string[];
  /** Set when the certificate is the self-signed one auto TLS made: as clients, skip verifying peers. */
  selfSigned?: boolean;
  /** The flag names, for messages: "--cert-file" or "--peer-cert-file". */
  flagPrefix: '' | 'peer-';
}

export function emptyTlsInfo(flagPrefix: '' | 'peer-'): TlsInfo {
  return {
    certFile: '',
    keyFile: '',
    trustedCaFile: '',
    clientCertAuth: false,
    crlFile: '',
    allowedCn: '',
    allowedHostname: '',
    autoTls: false,
    cipherSuites: [],
    flagPrefix,
  };
}

/** etcd's (Go's crypto/tls) TLS 1.2 cipher suite names, mapped to OpenSSL's. TLS 1.3 suites are not
 * configurable, in Go as here. */
export const CIPHER_SUITES: Readonly<Record<string, string>> = {
  TLS_RSA_WITH_AES_128_CBC_SHA: 'AES128-SHA',
  TLS_RSA_WITH_AES_256_CBC_SHA: 'AES256-SHA',
  TLS_RSA_WITH_AES_128_CBC_SHA256: 'AES128-SHA256',
  TLS_RSA_WITH_AES_128_GCM_SHA256: 'AES128-GCM-SHA256',
  TLS_RSA_WITH_AES_256_GCM_SHA384: 'AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: 'ECDHE-ECDSA-AES128-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: 'ECDHE-ECDSA-AES256-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: 'ECDHE-RSA-AES128-SHA',
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: 'ECDHE-RSA-AES256-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256: 'ECDHE-ECDSA-AES128-SHA256',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256: 'ECDHE-RSA-AES128-SHA256',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
};

/** OpenSSL's cipher list for etcd's names; throws with etcd's message for an unknown one. */
export function opensslCiphers(names: string[]): string | undefined {
  if (names.length === 0) return undefined;
  return names
    .map((n) => {
      const c = CIPHER_SUITES[n];
      if (c === undefined) throw new Error(`unexpected TLS cipher suite "${n}" (--cipher-suites)`);
      return c;
    })
    .join(':');
}

function readFlagFile(info: TlsInfo, flag: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'no such file or directory' : err.code === 'EACCES' ? 'permission denied' : err.message;
    throw new StartupError(`--${info.flagPrefix}${flag} ${file}: open ${file}: ${why}`, { cause: e });
  }
}

/** The files read and checked: key matches certificate, CA and CRL parse. Throws one line naming the file. */
export function loadTlsFiles(info: TlsInfo): { cert: Buffer; key: Buffer; ca?: Buffer; crl?: Buffer } {
  const p = info.flagPrefix;
  const cert = readFlagFile(info, 'cert-file', info.certFile);
  const key = readFlagFile(info, 'key-file', info.keyFile);
  let x509: crypto.X509Certificate;
  try {
    x509 = new crypto.X509Certificate(cert);
  } catch (e) {
    throw new StartupError(`--${p}cert-file ${info.certFile}: not a PEM certificate (${(e as Error).message})`, { cause: e });
  }
  let pkey: crypto.KeyObject;
  try {
    pkey = crypto.createPrivateKey(key);
  } catch (e) {
    throw new StartupError(`--${p}key-file ${info.keyFile}: not a PEM private key (${(e as Error).message})`, { cause: e });
  }
  if (!x509.checkPrivateKey(pkey)) {
    throw new Error(
      `--${p}key-file ${info.keyFile} does not match --${p}cert-file ${info.certFile}: tls: private key does not match public key`,
    );
  }
  const ca = info.trustedCaFile ? readFlagFile(info, 'trusted-ca-file', info.trustedCaFile) : undefined;
  if (ca !== undefined) {
    try {
      new crypto.X509Certificate(ca);
    } catch (e) {
      throw new StartupError(`--${p}trusted-ca-file ${info.trustedCaFile}: not a PEM certificate (${(e as Error).message})`, { cause: e });
    }
  }
  const crlFlag = p === '' ? 'client-crl-file' : 'peer-crl-file';
  const crl = info.crlFile ? readFlagFile(info, crlFlag, info.crlFile) : undefined;
  return { cert, key, ca, crl };
}

/** Options for a node:tls server (or tls.createSecureContext) from the files. Throws naming the file. */
export function serverOptions(info: TlsInfo, handshakeTimeoutMs: number): tls.TlsOptions {
  const f = loadTlsFiles(info);
  const opts: tls.TlsOptions = {
    cert: f.cert,
    key: f.key,
    ca: f.ca,
    crl: f.crl,
    ciphers: opensslCiphers(info.cipherSuites),
    // Go's crypto/tls (etcd) speaks TLS 1.2 and 1.3.
    minVersion: 'TLSv1.2',
    requestCert: info.clientCertAuth,
    rejectUnauthorized: info.clientCertAuth,
    // The server's preference wins: gRPC clients offer only 'h2' and get it; clients that offer both
    // (curl, browsers) get HTTP/1.1, where the JSON gateway and /health are (our h2 serves only gRPC).
    ALPNProtocols: ['http/1.1', 'h2'],
    handshakeTimeout: handshakeTimeoutMs,
  };
  try {
    tls.createSecureContext(opts);
  } catch (e) {
    const crlFlag = info.flagPrefix === '' ? 'client-crl-file' : 'peer-crl-file';
    const which = /crl/i.test((e as Error).message) ? `--${crlFlag} ${info.crlFile}` : `--${info.flagPrefix}cert-file ${info.certFile}`;
    throw new StartupError(`${which}: ${(e as Error).message}`, { cause: e });
  }
  return opts;
}

/** Options for dialing with this side's certificate (the peer transport's client side). */
export function clientOptions(info: TlsInfo): tls.ConnectionOptions {
  const f = loadTlsFiles(info);
  return {
    cert: f.cert,
    key: f.key,
    ca: f.ca,
    ciphers: opensslCiphers(info.cipherSuites),
    minVersion: 'TLSv1.2',
    // etcd: a self-signed (auto TLS) member cannot verify its peers' self-signed certificates.
    rejectUnauthorized: !info.selfSigned,
    // Peers are dialed by the URLs they advertise; the certificate must be valid for that host (Go's
    // ServerName check), unless auto TLS.
  };
}

/** The common name of a socket's verified client certificate (for auth: issue 16); undefined when the
 * connection is cleartext, or no certificate was verified. */
export function verifiedCommonName(socket: net.Socket): string | undefined {
  const t = socket as tls.TLSSocket;
  if (!t.encrypted || !t.authorized) return undefined;
  const cn = t.getPeerCertificate()?.subject?.CN;
  return typeof cn === 'string' ? cn : Array.isArray(cn) ? cn[0] : undefined;
}

export interface TlsAcceptorLimits {
  tlsHandshakeTimeoutMs: number;
  tlsHandshakesInFlightMax: number;
  tlsReloadCheckMs: number;
}

/** Identity of a file's current content (cheap to compare on each new connection). */
function fileStamp(file: string): string {
  if (!file) return '';
  try {
    const s = fs.statSync(file);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

/** Identity of the contents of every file of info (certificate, key, CA, CRL): changes when one is replaced. */
export function tlsFilesStamp(i: TlsInfo): string {
  return [i.certFile, i.keyFile, i.trustedCaFile, i.crlFile].map(fileStamp).join('|');
}

export class TlsAcceptor {
  readonly #info: TlsInfo;
  readonly #lim: TlsAcceptorLimits;
  readonly #log: Logger;
  readonly #server: tls.Server;
  #stamp: string;
  #checkedAt = 0;
  #inFlight = 0;
  /** Rejection log lines in the current second (a handshake flood must not flood the log). */
  #logged = 0;
  #logWindow = 0;
  readonly #onSecure: (s: tls.TLSSocket) => void;

  /** Loads the files (throws a one-line message naming a bad one). onSecure gets every connection whose
   * handshake and checks passed. */
  constructor(info: TlsInfo, lim: TlsAcceptorLimits, log: Logger, onSecure: (s: tls.TLSSocket) => void) {
    this.#info = info;
    this.#onSecure = onSecure;
    this.#lim = lim;
    this.#log = log;
    this.#stamp = this.#stampNow();
    this.#server = tls.createServer(serverOptions(info, lim.tlsHandshakeTimeoutMs));
    this.#server.on('secureConnection', (s: tls.TLSSocket) => this.#secured(s));
    this.#server.on('tlsClientError', (e: Error, s: tls.TLSSocket) => this.#failed(e, s));
  }

  /** Connections whose handshake has not finished. */
  get handshakesInFlight(): number {
    return this.#inFlight;
  }

  /** Runs the handshake on a raw socket (which may hold unshifted bytes). */
  accept(raw: net.Socket): void {
    void raw.remoteAddress; // cached on the raw socket: rejections after the TLS socket closed still name it
    if (this.#inFlight >= this.#lim.tlsHandshakesInFlightMax) {
      this.#rejectLog('too many TLS handshakes in progress; connection dropped', raw, null);
      raw.destroy();
      return;
    }
    this.#maybeReload();
    // Each socket ends its handshake with exactly one of 'secureConnection' and 'tlsClientError'
    // (node:tls emits the latter also for a close or timeout before the handshake finished).
    this.#inFlight++;
    this.#server.emit('connection', raw);
  }

  #secured(s: tls.TLSSocket): void {
    this.#inFlight--;
    const refusal = this.#checkPeer(s);
    if (refusal !== null) {
      this.#rejectLog(refusal, s, s.servername);
      s.destroy();
      return;
    }
    s.on('error', () => s.destroy());
    this.#onSecure(s);
  }

  #failed(e: Error, s: tls.TLSSocket): void {
    this.#inFlight--;
    // node:tls reports a handshake timeout here but leaves the socket open.
    s.destroy();
    const reason = (e as Error & { reason?: string }).reason;
    const why = s.authorizationError ? `${s.authorizationError}: client certificate refused` : (reason ?? e.message);
    this.#rejectLog(why, s, s.servername);
  }

  /** etcd's checks beyond the CA: the client certificate's CN or host name. */
  #checkPeer(s: tls.TLSSocket): string | null {
    const { allowedCn, allowedHostname, clientCertAuth } = this.#info;
    if (!clientCertAuth || (!allowedCn && !allowedHostname)) return null;
    const cert = s.getPeerCertificate();
    if (allowedCn && cert?.subject?.CN !== allowedCn) {
      return `CommonName authentication failed (CN ${JSON.stringify(cert?.subject?.CN ?? '')}, allowed ${JSON.stringify(allowedCn)})`;
    }
    if (allowedHostname && tls.checkServerIdentity(allowedHostname, cert) !== undefined) {
      return `client certificate is not valid for the allowed hostname ${JSON.stringify(allowedHostname)}`;
    }
    return null;
  }

  #stampNow(): string {
    return tlsFilesStamp(this.#info);
  }

  /** Reloads the certificate files if they changed since the last check (etcd reads them per handshake). */
  #maybeReload(): void {
    const now = Date.now();
    if (now - this.#checkedAt < this.#lim.tlsReloadCheckMs) return;
    this.#checkedAt = now;
    const stamp = this.#stampNow();
    if (stamp === this.#stamp) return;
    try {
      this.#server.setSecureContext(serverOptions(this.#info, this.#lim.tlsHandshakeTimeoutMs));
      this.#stamp = stamp;
      this.#log.info('reloaded TLS certificate files', { 'cert-file': this.#info.certFile, 'crl-file': this.#info.crlFile || undefined });
    } catch (e) {
      // Maybe half replaced: keep the previous files and try again on a later connection.
      this.#log.warn('cannot reload TLS certificate files; keeping the previous ones', { error: (e as Error).message });
    }
  }

  #rejectLog(why: string, s: net.Socket, serverName: string | false | null | undefined): void {
    const sec = Math.floor(Date.now() / 1000);
    if (sec !== this.#logWindow) {
      this.#logWindow = sec;
      this.#logged = 0;
    }
    if (++this.#logged > 10) return;
    this.#log.warn('rejected connection', { 'remote-addr': remoteOf(s), 'server-name': serverName || '', error: why });
  }
}

/** "ip:port" of a connection, also once its TLS socket is closed (then from the raw socket it wraps). */
function remoteOf(s: net.Socket): string {
  const raw = (s as net.Socket & { _parent?: net.Socket })._parent;
  const addr = s.remoteAddress ?? raw?.remoteAddress;
  const port = s.remotePort ?? raw?.remotePort;
  return addr === undefined ? 'unknown' : `${addr}:${port}`;
}
