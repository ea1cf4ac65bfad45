// Where client requests enter: gRPC and HTTP/1.1 (the JSON gateway, /health, /metrics) on each
// --listen-client-urls port (one listener tells them apart by their first bytes), and the
// uWebSockets.js port (--listen-client-http-urls). Every path calls the same handlers, registered on
// the gRPC transport by the services (src/main/server.ts and the others).
import * as net from 'node:net';
import { Config } from '../config';
import { Gateway } from '../gateway/gateway';
import { defaultProtoDir, JsonCodec } from '../gateway/jsonpb';
import { FastPort, UwsTlsOptions } from '../gateway/uws_server';
import { createHttp1Server } from '../http1';
import { Logger } from '../log';
import { ClientRoutes, listenClient, routeSecure } from '../net/listener';
import { opensslCiphers, TlsAcceptor, TlsInfo } from '../net/tls';
import { RaftNode } from '../node/node';
import { EtcdServer } from '../server';
import type { GatewayCounters } from '../server_metrics';
import { RequestKind } from '../../shared/entry';
import { gatewayBodyBytesMax, Limits } from '../../shared/limits';
import { hostOf } from './urls';

/** The member's request counters, and the registry /metrics renders. */
export interface MemberMetrics {
  counters: GatewayCounters;
  render(): string;
}

export interface ClientPortDeps {
  cfg: Config;
  /** The client certificate flags, auto TLS resolved (member.ts). */
  tls: TlsInfo;
  /** The member's limits (deriveLimits): the WebSocket caps grow with --max-request-bytes. */
  lim: Readonly<Limits>;
  log: Logger;
  node: RaftNode;
  server: EtcdServer;
  /** The member's metrics: request counters, and the registry /metrics renders. */
  metrics: MemberMetrics;
}

export class ClientPorts {
  readonly #listeners: net.Server[] = [];
  readonly #fastPorts: FastPort[] = [];

  /** WebSockets open on the fast ports (a gauge in /metrics). */
  get webSocketsOpen(): number {
    return this.#fastPorts.reduce((n, f) => n + f.webSocketsOpen, 0);
  }

  /** Opens every client port; a port that cannot be bound fails the start. */
  async open(d: ClientPortDeps): Promise<void> {
    const { cfg, lim, log, node, server, metrics, tls } = d;
    // As etcd 3.4's /health: a leader must exist and a request must commit through the log.
    const healthy = async (): Promise<boolean> => {
      if (!node.hasLeader) return false;
      await node.propose(RequestKind.HealthCheck, new Uint8Array(0));
      return true;
    };
    const recvMessageBytesMax = cfg.maxRequestBytes + lim.grpcOverheadBytes;
    const gateway = new Gateway(server.transport, JsonCodec.load(defaultProtoDir()), { recvMessageBytesMax });
    const bodyBytesMax = gatewayBodyBytesMax(cfg.maxRequestBytes);
    const renderMetrics = (): string => metrics.render();
    const h1 = createHttp1Server(
      { healthy },
      {
        // --enable-grpc-gateway=false: /v3/* is not served on the client URLs (404), as etcd.
        gateway: cfg.enableGrpcGateway
          ? {
              gateway,
              bodyBytesMax,
              streamSendHighBytes: lim.gatewayStreamSendHighBytes,
              onRequest: () => metrics.counters.clientPortRequests.inc(),
            }
          : undefined,
        metrics: renderMetrics,
      },
    );
    const routes: ClientRoutes = { h2: server.transport.server, h1 };
    await this.#openClientUrls(
      cfg.listenClientUrls,
      routes,
      tls,
      lim,
      log,
      cfg.listenClientHttpUrls.some((u) => u.protocol === 'https:'),
    );
    await this.#openMetricsUrls(cfg.listenMetricsUrls, healthy, renderMetrics, tls, lim, log);
    for (const u of cfg.listenClientHttpUrls) {
      const fast = new FastPort({
        gateway,
        bodyBytesMax,
        healthy,
        metrics: renderMetrics,
        ready: async () => {
          if (!node.hasLeader) return false;
          await node.readBarrier();
          return true;
        },
        limits: {
          streamSendHighBytes: lim.gatewayStreamSendHighBytes,
          wsIdleTimeoutSeconds: lim.wsIdleTimeoutSeconds,
          wsSendHighBytes: lim.wsSendHighBytes,
          wsSendBytesMax: lim.wsSendBytesMax,
          wsStreamsPerConnMax: lim.wsStreamsPerConnMax,
          wsUnaryInFlightMax: lim.wsUnaryInFlightMax,
        },
        onHttpRequest: () => metrics.counters.fastPortRequests.inc(),
        onWsMessage: () => metrics.counters.wsMessages.inc(),
        onError: (e) => log.error('HTTP/JSON port: request failed', { error: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
        tls: u.protocol === 'https:' ? uwsTls(tls) : undefined,
        tlsReloadCheckMs: lim.tlsReloadCheckMs,
        onTlsReload: (error) =>
          error === null
            ? log.info('reloaded TLS certificate files for SNI clients of the HTTP/JSON port', { address: u.href })
            : log.warn('cannot reload TLS certificate files; keeping the previous ones', { address: u.href, error }),
      });
      await fast.listen(hostOf(u), Number(u.port));
      this.#fastPorts.push(fast);
      log.info('serving client HTTP/JSON traffic (uWebSockets.js)', { address: u.href, tls: u.protocol === 'https:' });
    }
  }

  /** One listener per host:port; https:// URLs get TLS, the same host:port as http:// and https:// both. */
  async #openClientUrls(
    urls: URL[],
    routes: ClientRoutes,
    tls: TlsInfo,
    lim: Readonly<Limits>,
    log: Logger,
    fastHttps: boolean,
  ): Promise<void> {
    const byAddr = new Map<string, { host: string; port: number; plain: boolean; secure: boolean; hrefs: string[] }>();
    for (const u of urls) {
      const key = `${hostOf(u)}:${u.port}`;
      const e = byAddr.get(key) ?? { host: hostOf(u), port: Number(u.port), plain: false, secure: false, hrefs: [] };
      if (u.protocol === 'https:') e.secure = true;
      else e.plain = true;
      e.hrefs.push(u.href);
      byAddr.set(key, e);
    }
    const anySecure = [...byAddr.values()].some((e) => e.secure);
    if (!anySecure && !fastHttps && tls.certFile !== '')
      log.warn('scheme is HTTP while key and cert files are present; ignoring key and cert files', { 'client-url': urls[0]?.href });
    // One acceptor for every https:// client URL: the same files, the same handshake bound.
    const acceptor = anySecure ? new TlsAcceptor(tls, lim, log.child({ component: 'client-tls' }), (s) => routeSecure(s, routes)) : null;
    for (const e of byAddr.values()) {
      this.#listeners.push(
        await listenClient(e.host, e.port, {
          routes,
          tls: e.secure ? acceptor : null,
          plain: e.plain,
          firstByteTimeoutMs: lim.tlsHandshakeTimeoutMs,
        }),
      );
      log.info('serving client traffic', { address: e.hrefs.join(','), tls: e.secure, 'client-cert-auth': e.secure && tls.clientCertAuth });
    }
  }

  /** --listen-metrics-urls: as etcd 3.4's serveMetrics, a mux of /metrics and /health alone (the same
   * handlers as on the client port) over HTTP/1.1; https:// URLs use the client TLS files. */
  async #openMetricsUrls(
    urls: URL[],
    healthy: () => Promise<boolean>,
    renderMetrics: () => string,
    tls: TlsInfo,
    lim: Readonly<Limits>,
    log: Logger,
  ): Promise<void> {
    if (urls.length === 0) return;
    const h1 = createHttp1Server({ healthy }, { metrics: renderMetrics, metricsHealthOnly: true });
    const secure = urls.some((u) => u.protocol === 'https:');
    // ALPN may pick h2 for a client offering only h2: there is no HTTP/2 server here, so it is closed.
    const acceptor = secure
      ? new TlsAcceptor(tls, lim, log.child({ component: 'metrics-tls' }), (s) =>
          s.alpnProtocol === 'h2' ? s.destroy() : h1.emit('connection', s),
        )
      : null;
    for (const u of urls) {
      const l = net.createServer((socket) => {
        socket.setNoDelay(true);
        socket.on('error', () => socket.destroy());
        if (u.protocol === 'https:' && acceptor !== null) acceptor.accept(socket);
        else h1.emit('connection', socket);
      });
      await new Promise<void>((resolve, reject) => {
        l.once('error', reject);
        l.listen(Number(u.port), hostOf(u), () => {
          l.off('error', reject);
          resolve();
        });
      });
      this.#listeners.push(l);
      log.info('serving metrics', { address: u.href, tls: u.protocol === 'https:' });
    }
  }

  close(): void {
    for (const l of this.#listeners) l.close();
    for (const f of this.#fastPorts) f.close();
  }
}

/** The certificate flags as uWebSockets.js' SSLApp takes them (server certificate and ciphers; config.ts
 * refuses client-certificate auth there: SSLApp cannot require a client certificate). */
function uwsTls(tls: TlsInfo): UwsTlsOptions {
  return {
    key_file_name: tls.keyFile,
    cert_file_name: tls.certFile,
    ...(tls.cipherSuites.length > 0 ? { ssl_ciphers: opensslCiphers(tls.cipherSuites) } : {}),
  };
}
