// HTTP/1.1 on the client port, as etcd 3.4 serves it next to gRPC: /health, /version, /metrics, and
// the JSON gateway under /v3/ and /v3beta/ (src/main/gateway/http_node.ts). Anything else answers
// 404 like Go's ServeMux ("404 page not found").
import * as http from 'node:http';
import type * as net from 'node:net';
import { PassThrough } from 'node:stream';
import { ETCD_CLUSTER_VERSION, ETCD_SERVER_VERSION } from '../shared/version';
import { handleGatewayRequest, NodeGatewayOptions, requestContext } from './gateway/http_node';
import { acceptWebSocket } from './gateway/ws_node';
import { WsProxyCall } from './gateway/ws_proxy';
import { PROMETHEUS_CONTENT_TYPE } from './metrics';

export interface HealthSource {
  /** Resolves true when there is a leader and a no-op commits through the log. */
  healthy(): Promise<boolean>;
}

export interface Http1Extras {
  gateway?: NodeGatewayOptions;
  /** The Prometheus exposition text of /metrics. */
  metrics?: () => string;
  /** --listen-metrics-urls: only /metrics and /health (etcd's HandleMetricsHealth mux; no /version). */
  metricsHealthOnly?: boolean;
}

export function createHttp1Server(health: HealthSource, extras: Http1Extras = {}): http.Server {
  const server = http.createServer(handler);
  function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = (req.url ?? '/').split('?')[0];
    if (extras.gateway && handleGatewayRequest(extras.gateway, req, res, url)) return;
    // As etcd's etcdhttp handlers: GET only, else Go's http.Error 405 with Allow: GET.
    if ((url === '/health' || (url === '/version' && extras.metricsHealthOnly !== true)) && req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET');
      res.setHeader('X-Content-Type-Options', 'nosniff');
      return send(res, 405, 'Method Not Allowed\n', 'text/plain; charset=utf-8');
    }
    if (url === '/version' && extras.metricsHealthOnly !== true) {
      return send(res, 200, JSON.stringify({ etcdserver: ETCD_SERVER_VERSION, etcdcluster: ETCD_CLUSTER_VERSION }));
    }
    if (url === '/metrics' && extras.metrics) {
      return send(res, 200, extras.metrics(), PROMETHEUS_CONTENT_TYPE);
    }
    if (url === '/health') {
      // etcd writes the JSON without a Content-Type, so Go's sniffing makes it text/plain.
      const type = 'text/plain; charset=utf-8';
      health.healthy().then(
        (ok) => send(res, ok ? 200 : 503, JSON.stringify({ health: ok ? 'true' : 'false' }), type),
        () => send(res, 503, JSON.stringify({ health: 'false' }), type),
      );
      return;
    }
    send(res, 404, '404 page not found\n', 'text/plain; charset=utf-8');
  }
  const gw = extras.gateway;
  if (gw) {
    // etcd's gateway is wrapped in grpc-websocket-proxy: a WebSocket on a /v3/ route (ws_proxy.ts).
    server.on('upgrade', (req: http.IncomingMessage, socket: import('node:stream').Duplex, head: Buffer) => {
      socket.on('error', () => socket.destroy());
      // With an 'upgrade' listener node:http hands over every Upgrade request (curl --http2 sends
      // "Upgrade: h2c"): anything but a WebSocket is answered as the plain request it also is.
      if (String(req.headers.upgrade).toLowerCase() !== 'websocket') return serveIgnoringUpgrade(req, socket as net.Socket, head, handler);
      const route = gw.gateway.route((req.url ?? '/').split('?')[0]);
      if (!route) {
        socket.end('HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nNot Found\n');
        return;
      }
      acceptWebSocket(req, socket, head, gw.bodyBytesMax, gw.streamSendHighBytes, (ws) => {
        const call = new WsProxyCall(gw.gateway, route, ws, gw.bodyBytesMax, requestContext(req));
        return { onText: (t) => call.onText(t), onClose: () => call.onClose(), onDrain: () => call.drained() };
      });
    });
  }
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.maxHeadersCount = 100;
  return server;
}

function send(res: http.ServerResponse, status: number, body: string, type = 'application/json'): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * Serves an Upgrade request whose upgrade we decline (RFC 9110 7.8: a server may ignore Upgrade):
 * node:http stopped parsing at its headers and will not deliver the body, so the handler gets a
 * stream fed from `head` and the socket (Content-Length bodies only), and the connection closes
 * after the response.
 */
function serveIgnoringUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer,
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => void): void {
  const res = new http.ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket);
  const body = Object.assign(new PassThrough(), { headers: req.headers, method: req.method, url: req.url });
  const len = Number(req.headers['content-length'] ?? 0);
  let got = 0;
  // Bounded: the socket pauses while the handler has not read what `body` holds, and once the
  // response is sent the rest of the body is no longer read (the connection closes).
  const feed = (d: Buffer): void => {
    const take = d.subarray(0, Math.max(0, len - got));
    got += take.length;
    if (take.length > 0 && !body.write(take)) {
      socket.pause();
      body.once('drain', () => socket.resume());
    }
    if (got >= len) {
      socket.off('data', feed);
      body.end();
    }
  };
  res.on('finish', () => {
    socket.off('data', feed);
    socket.resume(); // what else arrives is dropped until the close
    res.detachSocket(socket);
    socket.end();
  });
  if (req.headers['transfer-encoding'] !== undefined) {
    res.writeHead(411, { 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close' });
    res.end('Length Required\n');
    return;
  }
  handler(body as unknown as http.IncomingMessage, res);
  if (!(len > 0) || !Number.isFinite(len)) body.end();
  else {
    feed(head);
    if (got < len) socket.on('data', feed);
  }
}
