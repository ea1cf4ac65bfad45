// The JSON gateway on the client port's HTTP/1.1 side (node:http; the listener hands it every
// connection that does not start with the HTTP/2 preface). Same routes and answers as etcd 3.4's
// gateway, including its plain-text 404/405 for unknown routes and wrong methods.
import type * as http from 'node:http';
import { GrpcCode } from '../../shared/errors';
import { remoteAddressText, type CallContext } from '../net/rpc';
import { errorBody, Gateway, gatewayContext, GatewayReply, StreamBody, streamErrorLine, withRemote } from './gateway';
import { Route } from './routes';

/** Headers etcd's gateway mux sends on every response. */
export const CORS_HEADERS: Record<string, string> = {
  'Access-Control-Allow-Headers': 'accept, content-type, authorization',
  'Access-Control-Allow-Methods': 'POST, GET, OPTIONS, PUT, DELETE',
  'Access-Control-Allow-Origin': '*',
};

export interface NodeGatewayOptions {
  gateway: Gateway;
  bodyBytesMax: number;
  streamSendHighBytes: number;
  /** Counts requests per outcome for /metrics. */
  onRequest?: (status: number) => void;
}

function sendText(res: http.ServerResponse, status: number, body: string, type: string): void {
  res.writeHead(status, { ...CORS_HEADERS, 'Content-Type': type, 'X-Content-Type-Options': 'nosniff', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function sendReply(res: http.ServerResponse, r: GatewayReply): void {
  if (res.destroyed) return;
  const headers: Record<string, string | number> = { ...CORS_HEADERS, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(r.body) };
  if (r.status === 200) headers['Grpc-Metadata-Content-Type'] = 'application/grpc';
  res.writeHead(r.status, headers);
  res.end(r.body);
}

/** Handles /v3/... and /v3beta/...; returns false for any other path. */
export function handleGatewayRequest(o: NodeGatewayOptions, req: http.IncomingMessage, res: http.ServerResponse, url: string): boolean {
  if (!url.startsWith('/v3/') && !url.startsWith('/v3beta/')) return false;
  const route = o.gateway.route(url);
  if (!route) {
    sendText(res, 404, 'Not Found\n', 'text/plain; charset=utf-8');
    return true;
  }
  if (req.method === 'OPTIONS') {
    sendText(res, 200, '', 'text/plain; charset=utf-8');
    return true;
  }
  if (req.method !== 'POST') {
    sendText(res, 405, 'Method Not Allowed\n', 'text/plain; charset=utf-8');
    return true;
  }
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > o.bodyBytesMax) return tooLarge(res, o), true;
  const ctx = requestContext(req);
  if (route.kind === 'unary') readUnary(o, route, req, res, ctx);
  else serveStream(o, route, req, res, ctx);
  return true;
}

/** The token headers of a gateway request or a WebSocket upgrade (gatewayContext). */
export function requestContext(req: http.IncomingMessage): CallContext {
  const token = req.headers['grpc-metadata-token'];
  return gatewayContext(req.headers.authorization, Array.isArray(token) ? token[0] : token);
}

function tooLarge(res: http.ServerResponse, o: NodeGatewayOptions): void {
  const body = errorBody(GrpcCode.ResourceExhausted, 'http: request body too large');
  res.writeHead(413, { ...CORS_HEADERS, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
  res.end(body);
  o.onRequest?.(413);
}

function readUnary(o: NodeGatewayOptions, route: Route, req: http.IncomingMessage, res: http.ServerResponse, ctx: CallContext): void {
  const chunks: Buffer[] = [];
  let bytes = 0;
  let failed = false;
  req.on('data', (c: Buffer) => {
    if (failed) return;
    bytes += c.length;
    if (bytes > o.bodyBytesMax) {
      failed = true;
      tooLarge(res, o);
      req.resume();
      return;
    }
    chunks.push(c);
  });
  req.on('end', () => {
    if (failed) return;
    const body = chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks).toString('utf8');
    const r = o.gateway.unary(route, body, o.gateway.auditing ? withRemote(ctx, remoteAddressText(req.socket.remoteAddress, req.socket.remotePort)) : ctx);
    if ('then' in r) r.then((x) => { o.onRequest?.(x.status); sendReply(res, x); }).catch(() => res.destroy());
    else {
      o.onRequest?.(r.status);
      sendReply(res, r);
    }
  });
}

/** A streaming route: each JSON value of the body is a request; each response is a line. */
function serveStream(o: NodeGatewayOptions, route: Route, req: http.IncomingMessage, res: http.ServerResponse, ctx: CallContext): void {
  let done = false;
  let headersSent = false;
  const writeHead = (status: number): void => {
    if (headersSent) return;
    headersSent = true;
    res.writeHead(status, { ...CORS_HEADERS, 'Content-Type': 'application/json', 'Grpc-Metadata-Content-Type': 'application/grpc', 'Transfer-Encoding': 'chunked' });
  };
  const sink = {
    result: (json: string): boolean => {
      if (res.destroyed) return false;
      writeHead(200);
      res.write('{"result":' + json + '}\n');
      return res.writableLength < o.streamSendHighBytes;
    },
    end: (code: number, message: string): void => {
      done = true;
      if (res.destroyed) return;
      if (code !== GrpcCode.OK) {
        writeHead(200);
        res.write(streamErrorLine(code, message));
      }
      writeHead(200);
      res.end();
    },
  };
  const body = new StreamBody(o.gateway, route, sink, o.bodyBytesMax, ctx);
  res.on('drain', () => body.call?.drained());
  res.on('close', () => {
    if (!done) body.call?.cancel();
    done = true;
  });
  const push = (text: string, last: boolean): void => {
    const opening = body.call === null;
    const reply = body.push(text, last);
    if (reply !== null) {
      done = true;
      o.onRequest?.(reply.status);
      sendReply(res, reply);
    } else if (opening && body.call !== null) {
      o.onRequest?.(200);
    }
  };
  req.setEncoding('utf8');
  req.on('data', (text: string) => {
    if (done) return;
    push(text, false);
    if (body.stopped) req.removeAllListeners('data');
  });
  req.on('end', () => {
    if (done) return;
    push('', true);
  });
}
