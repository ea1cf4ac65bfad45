// The member's TLS settings, resolved once at start before anything else: --auto-tls and
// --peer-auto-tls generate (or reuse) a self-signed certificate under <data-dir>/fixtures/{client,peer}
// as etcd does, and every certificate file a port will need is loaded and checked here, so a missing
// file or a key that does not match its certificate stops the start with one line naming the file.
import * as path from 'node:path';
import { Config, ConfigError } from '../config';
import { Logger } from '../log';
import { emptyTlsInfo, loadTlsFiles, serverOptions, TlsInfo } from '../net/tls';
import { selfCert } from '../net/selfcert';
import { limits } from '../../shared/limits';
import { hostOf } from './urls';

export interface MemberTls {
  client: TlsInfo;
  peer: TlsInfo;
}

function resolveOne(cfg: Config, log: Logger, info: TlsInfo, urls: URL[]): TlsInfo {
  if (!info.autoTls) return info;
  const what = info.flagPrefix === '' ? 'client' : 'peer';
  if (info.certFile !== '') {
    log.warn(`ignoring ${what} auto TLS since certs given`);
    return info;
  }
  // etcd's SelfCert replaces the whole TLSInfo: no CA, so no client-certificate checks; only the
  // cipher suites are kept. A member dialing with it skips verifying its peers (selfSigned).
  const hosts = urls.map(hostOf);
  const files = selfCert(path.join(cfg.dataDir, 'fixtures', what), hosts, what === 'peer');
  if (info.clientCertAuth || info.trustedCaFile)
    log.warn(`${what} auto TLS: a self-signed certificate replaces the other ${what} TLS flags, as in etcd`);
  return { ...emptyTlsInfo(info.flagPrefix), ...files, cipherSuites: info.cipherSuites, selfSigned: true, autoTls: true };
}

/** Throws ConfigError with one line naming the file when a certificate file a port needs is unusable. */
export function resolveTls(cfg: Config, log: Logger): MemberTls {
  const clientUrls = [...cfg.listenClientUrls, ...cfg.listenClientHttpUrls];
  const client = resolveOne(cfg, log, cfg.clientTls, clientUrls);
  const peer = resolveOne(cfg, log, cfg.peerTls, cfg.listenPeerUrls);
  const peerUsesTls =
    cfg.listenPeerUrls.some((u) => u.protocol === 'https:') ||
    [...cfg.initialCluster.values()].flat().some((u) => u.startsWith('https://'));
  try {
    if (clientUrls.some((u) => u.protocol === 'https:')) serverOptions(client, limits.tlsHandshakeTimeoutMs);
    if (peerUsesTls || peer.certFile !== '') {
      if (peer.certFile === '') throw new Error('TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for https:// peer URLs');
      serverOptions(peer, limits.tlsHandshakeTimeoutMs);
      loadTlsFiles(peer);
    }
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  return { client, peer };
}
