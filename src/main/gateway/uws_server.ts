// The fast HTTP/JSON port (--listen-client-http-urls) on uWebSockets.js: the same JSON API as the
// client port's gateway (same Gateway core, same answers), /health, /livez, /readyz, /version,
// /metrics, and the WebSocket API at /ws (docs/WEBSOCKET.md). uWS runs its sockets inside Node's
// event loop on this thread; handlers are called in process, never through a gRPC connection.
//
// uWS rules this code keeps: a request object is valid only during the route callback (everything
// needed is read there); a response needs onAborted before any asynchronous work and must not be
// touched after it fired; body chunks are views valid only during onData (copied or decoded there);
// writes from outside a uWS callback are corked. A WebSocket must not be used after its close event.
import * as fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import * as tls from 'node:tls';
import { limits } from '../../shared/limits';
import { GrpcCode } from '../../shared/errors';
import { ETCD_CLUSTER_VERSION, ETCD_SERVER_VERSION } from '../../shared/version';
import { CallContext } from '../net/rpc';
import { errorBody, Gateway, gatewayContext, GatewayReply, GatewayStream, HTTP_STATUS_TEXT, httpStatusFromCode, StreamBody, streamErrorLine, StreamSink, withRemote } from './gateway';
import { Route } from './routes';
import { goJsonString } from './jsonpb';
import { quoteLongNumbers } from './json_scan';
import { PROMETHEUS_CONTENT_TYPE } from '../metrics';
import { CORS_HEADERS } from './http_node';
import { AUTHENTICATE_METHOD, BinaryConnection, BinarySender } from './ws_binary';
import { WsProxyCall, WsTextSocket } from './ws_proxy';

/** Loaded on first use: a server without --listen-client-http-urls never loads the native module. */
let uwsModule: UwsModule | null = null;
export function uws(): UwsModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  uwsModule ??= require('@trufflesuite/uws-js-unofficial') as UwsModule;
  return uwsModule;
}

// --- the parts of uWebSockets.js' API used here ---
interface UwsResponse {
  writeStatus(s: string): UwsResponse;
  writeHeader(k: string, v: string): UwsResponse;
  write(chunk: string | Uint8Array): boolean;
  end(body?: string | Uint8Array, closeConnection?: boolean): UwsResponse;
  onAborted(fn: () => void): UwsResponse;
  onData(fn: (chunk: ArrayBuffer, isLast: boolean) => void): UwsResponse;
  onWritable(fn: (offset: number) => boolean): UwsResponse;
  cork(fn: () => void): UwsResponse;
  close(): UwsResponse;
  getRemoteAddressAsText(): ArrayBuffer;
}
interface UwsRequest {
  getUrl(): string;
  getMethod(): string;
  getHeader(k: string): string;
}
interface UwsWebSocket<T> {
  send(msg: string | Uint8Array, isBinary?: boolean): number;
  getBufferedAmount(): number;
  getUserData(): { state: T };
  cork(fn: () => void): void;
  end(code?: number, msg?: string): void;
  getRemoteAddressAsText(): ArrayBuffer;
}
interface UwsApp {
  any(pattern: string, h: (res: UwsResponse, req: UwsRequest) => void): UwsApp;
  ws(pattern: string, behavior: Record<string, unknown>): UwsApp;
  listen(host: string, port: number, cb: (token: unknown) => void): UwsApp;
  missingServerName(cb: (hostname: string) => void): UwsApp;
  addServerName(hostname: string, o: UwsTlsOptions): UwsApp;
  removeServerName(hostname: string): UwsApp;
  domain(hostname: string): UwsApp;
}
/** uWebSockets.js' SSLApp options. With ca_file_name uSockets verifies a client certificate that is presented
 * but does not require one (curl without a certificate got 200, 2026-12-08): client-certificate auth
 * stays refused on this port (config.ts). */
export interface UwsTlsOptions {
  key_file_name: string;
  cert_file_name: string;
  ca_file_name?: string;
  ssl_ciphers?: string;
}
interface UwsModule {
  App(): UwsApp;
  SSLApp(o: UwsTlsOptions): UwsApp;
  us_listen_socket_close(token: unknown): void;
  us_socket_local_port(token: unknown): number;
  DISABLED: number;
}

export interface FastPortDeps {
  gateway: Gateway;
  bodyBytesMax: number;
  /** As /health on the client port: a leader, and a no-op committed through the log. */
  healthy(): Promise<boolean>;
  /** /readyz: a leader and a linearizable read barrier. */
  ready(): Promise<boolean>;
  metrics(): string;
  limits: { streamSendHighBytes: number; wsIdleTimeoutSeconds: number; wsSendHighBytes: number; wsSendBytesMax: number;
    wsStreamsPerConnMax: number; wsUnaryInFlightMax: number };
  onHttpRequest?: () => void;
  onWsMessage?: () => void;
  /** A programmer error caught at the uWS boundary (logged; the connection is closed). */
  onError?: (e: unknown) => void;
  /** https:// and wss:// through uWebSockets.js' SSLApp (certificate files checked by the caller). */
  tls?: UwsTlsOptions;
  /** How often the certificate files are checked for replacement (UwsTlsReload), and what it reports. */
  tlsReloadCheckMs?: number;
  onTlsReload?: (error: string | null) => void;
}

/** Identity of a file's current content: inode, size, mtime (changes when it is replaced). */
function fileStamp(file: string | undefined): string {
  if (!file) return '';
  try {
    const st = fs.statSync(file);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

/**
 * Certificate reload on the fast port, as far as uWebSockets.js allows. SSLApp reads its files once,
 * into the default context that every connection without SNI uses, and it has no call to replace it;
 * nor can a second SSLApp take over the port (uSockets sets neither SO_REUSEPORT nor SO_REUSEADDR on
 * Linux, so listening again fails while any connection on the port is open; tried 2026-12-08). What it
 * has is one context per SNI name: each server name a client sends gets its own context, loaded from the
 * files when first seen (missingServerName), and when the files are replaced every such context is
 * loaded again (removeServerName + addServerName). So a client that dials a host NAME (and sends SNI)
 * gets the new certificate on its next connection; a client that dials an IP address (no SNI, as
 * etcdctl and Go clients do for IPs) keeps getting the certificate the port started with until a
 * restart. Established connections keep their session either way. Names are bounded
 * (limits.uwsSniNamesMax): past it, a new name gets the default context.
 */
class UwsTlsReload {
  readonly #app: UwsApp;
  readonly #opts: UwsTlsOptions;
  readonly #names = new Set<string>();
  readonly #report: (error: string | null) => void;
  readonly #timer: NodeJS.Timeout;
  /** Registers the port's routes on the app's currently selected domain: uWS routes per SNI domain. */
  readonly #routes: (app: UwsApp) => void;
  #stamp: string;
  /** The stamp of files that failed to load, so a broken set is reported once. */
  #failed = '';

  constructor(app: UwsApp, opts: UwsTlsOptions, checkMs: number, report: (error: string | null) => void, routes: (app: UwsApp) => void) {
    this.#app = app;
    this.#routes = routes;
    this.#opts = opts;
    this.#report = report;
    this.#stamp = this.#stampNow();
    app.missingServerName((hostname) => {
      if (this.#names.size >= limits.uwsSniNamesMax) return;
      this.#names.add(hostname);
      this.#add(hostname);
    });
    this.#timer = setInterval(() => this.#check(), checkMs);
    this.#timer.unref();
  }

  close(): void {
    clearInterval(this.#timer);
  }

  /** A context for hostname from the files as they are now, with the port's routes under its domain. */
  #add(hostname: string): void {
    this.#app.addServerName(hostname, this.#opts);
    this.#routes(this.#app.domain(hostname));
  }

  #stampNow(): string {
    return [this.#opts.cert_file_name, this.#opts.key_file_name, this.#opts.ca_file_name].map(fileStamp).join('|');
  }

  #check(): void {
    const stamp = this.#stampNow();
    if (stamp === this.#stamp || stamp === this.#failed) return;
    try {
      // uWS logs and carries on with a context it could not load: check the files here first.
      tls.createSecureContext({
        cert: fs.readFileSync(this.#opts.cert_file_name),
        key: fs.readFileSync(this.#opts.key_file_name),
        ca: this.#opts.ca_file_name ? fs.readFileSync(this.#opts.ca_file_name) : undefined,
      });
    } catch (e) {
      this.#failed = stamp;
      this.#report((e as Error).message);
      return;
    }
    for (const h of this.#names) {
      this.#app.removeServerName(h);
      this.#add(h);
    }
    this.#stamp = stamp;
    this.#report(null);
  }
}

function noReport(): void {
  /* nothing to report to */
}

function guard(fn: () => void, onError?: (e: unknown) => void): void {
  try {
    fn();
  } catch (e) {
    onError?.(e);
  }
}

const STATUS_LINE: Record<number, string> = {};
for (const [code, text] of Object.entries(HTTP_STATUS_TEXT)) STATUS_LINE[Number(code)] = `${code} ${text}`;
const statusLine = (s: number): string => STATUS_LINE[s] ?? `${s} Unknown`;

function writeCors(res: UwsResponse): void {
  for (const k in CORS_HEADERS) res.writeHeader(k, CORS_HEADERS[k]);
}

/** A gateway answer with the fast port's status line and headers (bench/lib/noop_http.ts uses it too). */
export function sendReply(res: UwsResponse, r: GatewayReply): void {
  res.writeStatus(statusLine(r.status));
  writeCors(res);
  res.writeHeader('Content-Type', 'application/json');
  if (r.status === 200) res.writeHeader('Grpc-Metadata-Content-Type', 'application/grpc');
  res.end(r.body);
}

/** The gateway mux's own plain-text answers (unknown route, wrong method), with its headers. */
function gatewayText(res: UwsResponse, status: number, body: string): void {
  res.writeStatus(statusLine(status));
  writeCors(res);
  res.writeHeader('Content-Type', 'text/plain; charset=utf-8').writeHeader('X-Content-Type-Options', 'nosniff').end(body);
}

/** A request's or an upgrade's token headers (gatewayContext); read inside the uWS callback. */
function uwsContext(req: UwsRequest): CallContext {
  return gatewayContext(req.getHeader('authorization'), req.getHeader('grpc-metadata-token'));
}

function sendText(res: UwsResponse, status: number, body: string, type: string): void {
  res.writeStatus(statusLine(status)).writeHeader('Content-Type', type).end(body);
}

export class FastPort {
  readonly #d: FastPortDeps;
  readonly #app: UwsApp;
  readonly #tlsReload: UwsTlsReload | null;
  #token: unknown = null;
  #wsOpen = 0;

  constructor(d: FastPortDeps) {
    this.#d = d;
    this.#app = d.tls ? uws().SSLApp(d.tls) : uws().App();
    this.#routes(this.#app);
    this.#tlsReload = d.tls
      ? new UwsTlsReload(this.#app, d.tls, d.tlsReloadCheckMs ?? limits.tlsReloadCheckMs, d.onTlsReload ?? noReport, (app) => this.#routes(app))
      : null;
  }

  /** Registers every route on app (the default domain, or an SNI domain selected with app.domain()). */
  #routes(app: UwsApp): void {
    const d = this.#d;
    // Both WebSocket endpoints: no compression, the body limit per message, a bounded send buffer.
    const wsLimits = {
      compression: uws().DISABLED,
      maxPayloadLength: d.bodyBytesMax,
      idleTimeout: d.limits.wsIdleTimeoutSeconds,
      maxBackpressure: d.limits.wsSendBytesMax,
      closeOnBackpressureLimit: true,
      sendPingsAutomatically: true,
    };
    app.ws('/ws', {
      ...wsLimits,
      upgrade: (res: UwsResponse & { upgrade: (...a: unknown[]) => void }, req: UwsRequest, ctx: unknown) => {
        // uWS copies the user data's own properties: the state object rides in one of them.
        res.upgrade({ state: new WsState(this, uwsContext(req)) }, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'),
          req.getHeader('sec-websocket-extensions'), ctx);
      },
      open: (ws: UwsWebSocket<WsState>) => {
        this.#wsOpen++;
        const state = ws.getUserData().state;
        state.ws = ws;
        if (d.gateway.auditing) state.auditRemote(Buffer.from(ws.getRemoteAddressAsText()).toString());
      },
      message: (ws: UwsWebSocket<WsState>, msg: ArrayBuffer, isBinary: boolean) => {
        d.onWsMessage?.();
        // An exception escaping a uWS callback ends the process: a bug in one request must not.
        const state = ws.getUserData().state;
        // The ArrayBuffer is valid only during this callback: decoded (text) or copied (binary) here.
        guard(() => (isBinary ? state.onBinary(Buffer.from(msg.slice(0))) : state.onMessage(Buffer.from(msg).toString('utf8'))), d.onError);
      },
      drain: (ws: UwsWebSocket<WsState>) => ws.getUserData().state.onDrain(),
      close: (ws: UwsWebSocket<WsState>) => {
        this.#wsOpen--;
        ws.getUserData().state.onClose();
      },
    });
    // etcd 3.4's grpc-websocket-proxy: a WebSocket on a /v3/ route (ws_proxy.ts).
    app.ws('/v3/*', {
      ...wsLimits,
      upgrade: (res: UwsResponse & { upgrade: (...a: unknown[]) => void }, req: UwsRequest, ctx: unknown) => {
        const route = d.gateway.route(req.getUrl());
        if (!route) return gatewayText(res, 404, 'Not Found\n');
        res.upgrade({ state: new ProxyState(this, route, uwsContext(req)) }, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'),
          req.getHeader('sec-websocket-extensions'), ctx);
      },
      open: (ws: UwsWebSocket<ProxyState>) => ws.getUserData().state.open(ws),
      message: (ws: UwsWebSocket<ProxyState>, msg: ArrayBuffer, isBinary: boolean) => {
        const state = ws.getUserData().state;
        guard(() => (isBinary ? state.close() : state.call?.onText(Buffer.from(msg).toString('utf8'))), d.onError);
      },
      drain: (ws: UwsWebSocket<ProxyState>) => ws.getUserData().state.call?.drained(),
      close: (ws: UwsWebSocket<ProxyState>) => ws.getUserData().state.closed(),
    });
    app.any('/*', (res, req) => {
      try {
        this.#onRequest(res, req);
      } catch (e) {
        d.onError?.(e);
        res.close();
      }
    });
  }

  get webSocketsOpen(): number {
    return this.#wsOpen;
  }

  get deps(): FastPortDeps {
    return this.#d;
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#app.listen(host, port, (token) => {
        if (!token) return reject(new Error(`uWebSockets.js: cannot listen on ${host}:${port}`));
        this.#token = token;
        resolve(uws().us_socket_local_port(token));
      });
    });
  }

  close(): void {
    this.#tlsReload?.close();
    if (this.#token) uws().us_listen_socket_close(this.#token);
    this.#token = null;
  }

  #onRequest(res: UwsResponse, req: UwsRequest): void {
    this.#d.onHttpRequest?.();
    const url = req.getUrl();
    const method = req.getMethod().toUpperCase();
    if (url.startsWith('/v3/') || url.startsWith('/v3beta/')) return this.#gateway(res, req, url, method);
    switch (url) {
      case '/version':
        if (method !== 'GET' && method !== 'HEAD') return sendText(res, 405, 'Method Not Allowed\n', 'text/plain; charset=utf-8');
        return sendText(res, 200, JSON.stringify({ etcdserver: ETCD_SERVER_VERSION, etcdcluster: ETCD_CLUSTER_VERSION }), 'application/json');
      case '/metrics':
        return sendText(res, 200, this.#d.metrics(), PROMETHEUS_CONTENT_TYPE);
      case '/livez':
        return sendText(res, 200, 'ok', 'text/plain; charset=utf-8');
      case '/health':
        if (method !== 'GET' && method !== 'HEAD') return sendText(res, 405, 'Method Not Allowed\n', 'text/plain; charset=utf-8');
        return this.#async(res, this.#d.healthy(), (ok) => [ok ? 200 : 503, JSON.stringify({ health: ok ? 'true' : 'false' }), 'text/plain; charset=utf-8']);
      case '/readyz':
        return this.#async(res, this.#d.ready(), (ok) => [ok ? 200 : 503, ok ? 'ok' : 'not ready', 'text/plain; charset=utf-8']);
      default:
        return sendText(res, 404, '404 page not found\n', 'text/plain; charset=utf-8');
    }
  }

  #async(res: UwsResponse, p: Promise<boolean>, f: (ok: boolean) => [number, string, string]): void {
    let aborted = false;
    res.onAborted(() => { aborted = true; });
    const done = (ok: boolean): void => {
      if (aborted) return;
      const [status, body, type] = f(ok);
      res.cork(() => sendText(res, status, body, type));
    };
    p.then(done, () => done(false)).catch((e: unknown) => this.#d.onError?.(e));
  }

  #gateway(res: UwsResponse, req: UwsRequest, url: string, method: string): void {
    const route = this.#d.gateway.route(url);
    if (!route) return gatewayText(res, 404, 'Not Found\n');
    if (method === 'OPTIONS') return gatewayText(res, 200, '');
    if (method !== 'POST') return gatewayText(res, 405, 'Method Not Allowed\n');
    const declared = Number(req.getHeader('content-length') || 0);
    if (declared > this.#d.bodyBytesMax) {
      res.writeStatus(statusLine(413)).writeHeader('Content-Type', 'application/json')
        .end(errorBody(GrpcCode.ResourceExhausted, 'http: request body too large'), true);
      return;
    }
    const ctx = uwsContext(req);
    if (route.kind === 'unary') this.#unary(res, route, ctx);
    else new HttpStreamCall(this, res, route, ctx);
  }

  #unary(res: UwsResponse, route: Route, ctx: CallContext): void {
    const state = { aborted: false };
    res.onAborted(() => { state.aborted = true; });
    let chunks: Buffer[] | null = null;
    let bytes = 0;
    res.onData((ab, isLast) => {
      if (state.aborted) return;
      bytes += ab.byteLength;
      if (bytes > this.#d.bodyBytesMax) {
        // A chunked body past the limit (a declared one was refused with 413 before reading):
        // closing drops the rest; onAborted fires and nothing more is written.
        res.close();
        return;
      }
      if (isLast && chunks === null) return this.#runUnary(res, route, Buffer.from(ab).toString('utf8'), state, ctx);
      (chunks ??= []).push(Buffer.from(new Uint8Array(ab))); // a copy: the view dies with this callback
      if (isLast) this.#runUnary(res, route, Buffer.concat(chunks).toString('utf8'), state, ctx);
    });
  }

  #runUnary(res: UwsResponse, route: Route, body: string, state: { aborted: boolean }, ctx: CallContext): void {
    const gw = this.#d.gateway;
    const r = gw.unary(route, body, gw.auditing ? withRemote(ctx, Buffer.from(res.getRemoteAddressAsText()).toString()) : ctx);
    if (!('then' in r)) return void res.cork(() => sendReply(res, r));
    r.then((x) => {
      if (!state.aborted) res.cork(() => sendReply(res, x));
    }).catch((e: unknown) => this.#d.onError?.(e));
  }
}

/** A streaming route over HTTP on the fast port (watch, keepalive, ...): newline-delimited results. */
class HttpStreamCall implements StreamSink {
  readonly #res: UwsResponse;
  readonly #body: StreamBody;
  /** A UTF-8 character may be cut between two body chunks. */
  readonly #utf8 = new StringDecoder('utf8');
  #aborted = false;
  #done = false;
  #headersSent = false;
  #waitingWritable = false;

  constructor(port: FastPort, res: UwsResponse, route: Route, ctx: CallContext) {
    this.#res = res;
    this.#body = new StreamBody(port.deps.gateway, route, this, port.deps.bodyBytesMax, ctx);
    res.onAborted(() => {
      this.#aborted = true;
      if (!this.#done) this.#body.call?.cancel();
      this.#done = true;
    });
    res.onData((ab, isLast) => {
      if (this.#done) return;
      const chunk = Buffer.from(ab);
      const reply = this.#body.push(isLast ? this.#utf8.write(chunk) + this.#utf8.end() : this.#utf8.write(chunk), isLast);
      if (reply !== null) this.#reply(reply);
    });
  }

  #reply(r: GatewayReply): void {
    this.#done = true;
    if (!this.#aborted) this.#res.cork(() => sendReply(this.#res, r));
  }

  #writeHead(): void {
    if (this.#headersSent) return;
    this.#headersSent = true;
    this.#res.writeStatus('200 OK');
    writeCors(this.#res);
    this.#res.writeHeader('Content-Type', 'application/json').writeHeader('Grpc-Metadata-Content-Type', 'application/grpc');
  }

  // The line being written by result(), for #corkedWrite: one bound callback per call, not a
  // closure per message.
  #line = '';
  #wrote = true;
  readonly #corkedWrite = (): void => {
    this.#writeHead();
    this.#wrote = this.#res.write(this.#line);
  };

  result(json: string): boolean {
    if (this.#aborted || this.#done) return false;
    this.#line = '{"result":' + json + '}\n';
    this.#res.cork(this.#corkedWrite);
    this.#line = '';
    const ok = this.#wrote;
    if (!ok && !this.#waitingWritable) {
      this.#waitingWritable = true;
      this.#res.onWritable(() => {
        this.#waitingWritable = false;
        this.#body.call?.drained();
        return true;
      });
    }
    return ok;
  }

  end(code: number, message: string): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#aborted) return;
    this.#res.cork(() => {
      this.#writeHead();
      this.#res.end(code === GrpcCode.OK ? '' : streamErrorLine(code, message));
    });
  }
}

// --- WebSocket API (docs/WEBSOCKET.md) ---

/** One open stream on a WebSocket: forwards its results as {"id":..,"result":..} messages. */
class WsStreamSink implements StreamSink {
  call: GatewayStream | null = null;
  constructor(readonly state: WsState, readonly idJson: string, readonly key: string) {}
  result(json: string): boolean {
    return this.state.send('{"id":' + this.idJson + ',"result":' + json + '}');
  }
  end(code: number, message: string): void {
    this.state.streams.delete(this.key);
    this.state.send(code === GrpcCode.OK ? `{"id":${this.idJson},"end":true}`
      : `{"id":${this.idJson},"end":true,"error":${wsError(code, message)}}`);
  }
}

function wsError(code: number, message: string): string {
  return `{"code":${code},"message":${goJsonString(message)},"http_status":${httpStatusFromCode(code)}}`;
}

interface WsRequest {
  id?: unknown;
  path?: unknown;
  body?: unknown;
  close?: unknown;
  cancel?: unknown;
}

export class WsState implements BinarySender {
  ws: UwsWebSocket<WsState> | null = null;
  #binary: BinaryConnection | null = null;
  readonly streams = new Map<string, WsStreamSink>();
  #inFlight = 0;
  #closed = false;
  readonly #port: FastPort;
  /** The connection's credentials: the upgrade's token headers, then the token of the last
   * Authenticate call on this connection that succeeded (docs/WEBSOCKET.md, "Authentication"),
   * and the client's address while the audit log is on. */
  #ctx: CallContext;

  constructor(port: FastPort, ctx: CallContext) {
    this.#port = port;
    this.#ctx = ctx;
  }

  get callContext(): CallContext {
    return this.#ctx;
  }

  authenticated(token: string): void {
    if (token === '') return;
    const remote = this.#ctx.remoteAddress;
    this.#ctx = gatewayContext(undefined, token);
    if (remote !== undefined) this.#ctx = withRemote(this.#ctx, remote);
  }

  /** The audit log is on: the connection's calls carry the client's address. */
  auditRemote(remoteAddress: string): void {
    this.#ctx = withRemote(this.#ctx, remoteAddress);
  }

  /** Sends one text message; false when the socket is past its backpressure mark (or gone). */
  send(text: string): boolean {
    return this.#send(text, false);
  }

  // The message being sent by #send, for #corked: one bound callback per socket, not a closure per message.
  #out: string | Uint8Array = '';
  #outBinary = false;
  #buffered = 0;
  readonly #corked = (): void => {
    const ws = this.ws as UwsWebSocket<WsState>;
    ws.send(this.#out, this.#outBinary);
    this.#buffered = ws.getBufferedAmount();
  };

  #send(data: string | Uint8Array, binary: boolean): boolean {
    const ws = this.ws;
    if (this.#closed || ws === null) return false;
    this.#out = data;
    this.#outBinary = binary;
    ws.cork(this.#corked);
    this.#out = '';
    return this.#buffered < this.#port.deps.limits.wsSendHighBytes;
  }

  #sendError(idJson: string, code: number, message: string): void {
    this.send(`{"id":${idJson},"error":${wsError(code, message)}}`);
  }

  /** A binary message: protobuf framing (ws_binary.ts), created on first use. */
  onBinary(buf: Buffer): void {
    this.#binary ??= new BinaryConnection(this.#port.deps.gateway.handlers, this);
    this.#binary.onMessage(buf);
  }

  sendBinary(frame: Uint8Array): boolean {
    return this.#send(frame, true);
  }

  get streamsMax(): number {
    return this.#port.deps.limits.wsStreamsPerConnMax;
  }

  get unaryInFlightMax(): number {
    return this.#port.deps.limits.wsUnaryInFlightMax;
  }

  get recvMessageBytesMax(): number {
    return this.#port.deps.gateway.recvMessageBytesMax;
  }

  onMessage(text: string): void {
    let m: WsRequest;
    try {
      m = JSON.parse(quoteLongNumbers(text)) as WsRequest;
    } catch (e) {
      return this.#sendError('null', GrpcCode.InvalidArgument, `etcd-ts: malformed JSON message: ${(e as Error).message}`);
    }
    if (m === null || typeof m !== 'object' || Array.isArray(m)) return this.#sendError('null', GrpcCode.InvalidArgument, 'etcd-ts: a message must be a JSON object');
    if (typeof m.id !== 'number' && typeof m.id !== 'string') return this.#sendError('null', GrpcCode.InvalidArgument, 'etcd-ts: "id" (a number or a string) is required');
    const idJson = JSON.stringify(m.id);
    const key = typeof m.id + ':' + String(m.id);
    const open = this.streams.get(key);
    if (open) return this.#onStreamMessage(open, m);
    if (typeof m.path !== 'string') return this.#sendError(idJson, GrpcCode.InvalidArgument, 'etcd-ts: "path" is required (no stream is open with this id)');
    const route = this.#port.deps.gateway.route(m.path);
    if (!route) return this.#sendError(idJson, GrpcCode.NotFound, `etcd-ts: unknown path ${m.path}`);
    if (route.kind === 'unary') return this.#unary(route, idJson, m.body);
    this.#openStream(route, idJson, key, m);
  }

  #unary(route: Route, idJson: string, body: unknown): void {
    if (this.#inFlight >= this.#port.deps.limits.wsUnaryInFlightMax) {
      return this.#sendError(idJson, GrpcCode.ResourceExhausted, 'etcdserver: too many requests');
    }
    const r = this.#port.deps.gateway.unaryValue(route, body, this.#ctx);
    const authenticate = route.method === AUTHENTICATE_METHOD;
    const reply = (x: GatewayReply): void => {
      if (x.status === 200 && authenticate) this.authenticated((JSON.parse(x.body) as { token?: string }).token ?? '');
      if (x.status === 200) this.send('{"id":' + idJson + ',"result":' + x.body + '}');
      else this.send('{"id":' + idJson + ',"error":' + wsErrorFromBody(x) + '}');
    };
    if (!('then' in r)) return reply(r);
    this.#inFlight++;
    r.then((x) => {
      this.#inFlight--;
      reply(x);
    }).catch((e: unknown) => this.#port.deps.onError?.(e));
  }

  #openStream(route: Route, idJson: string, key: string, m: WsRequest): void {
    if (this.streams.size >= this.#port.deps.limits.wsStreamsPerConnMax) {
      return this.#sendError(idJson, GrpcCode.ResourceExhausted, 'etcd-ts: too many streams on this WebSocket');
    }
    const sink = new WsStreamSink(this, idJson, key);
    this.streams.set(key, sink);
    const opened = this.#port.deps.gateway.openStream(route, m.body, m.body !== undefined, sink, this.#ctx);
    if (!(opened instanceof GatewayStream)) {
      this.streams.delete(key);
      this.send('{"id":' + idJson + ',"end":true,"error":' + wsErrorFromBody(opened) + '}');
      return;
    }
    sink.call = opened;
    if (m.close === true) opened.close();
  }

  #onStreamMessage(s: WsStreamSink, m: WsRequest): void {
    const call = s.call;
    if (!call) return;
    if (m.cancel === true) {
      this.streams.delete(s.key);
      call.cancel();
      this.send(`{"id":${s.idJson},"end":true,"error":${wsError(GrpcCode.Canceled, 'context canceled')}}`);
      return;
    }
    if (m.body !== undefined) call.sendJson(m.body);
    if (m.close === true) call.close();
  }

  onDrain(): void {
    const ws = this.ws;
    if (!ws || ws.getBufferedAmount() >= this.#port.deps.limits.wsSendHighBytes) return;
    for (const s of this.streams.values()) s.call?.drained();
    this.#binary?.drained();
  }

  onClose(): void {
    this.#closed = true;
    this.ws = null;
    const all = [...this.streams.values()];
    this.streams.clear();
    for (const s of all) s.call?.cancel();
    this.#binary?.closed();
  }
}

/** A gateway error reply's body {"error","message","code"} as the WebSocket error object. */
function wsErrorFromBody(r: GatewayReply): string {
  const e = JSON.parse(r.body) as { code: number; message: string };
  return wsError(e.code, e.message);
}

/** One grpc-websocket-proxy connection on the fast port. */
class ProxyState implements WsTextSocket {
  call: WsProxyCall | null = null;
  #ws: UwsWebSocket<ProxyState> | null = null;
  #closed = false;
  constructor(readonly port: FastPort, readonly route: Route, readonly ctx: CallContext) {}

  open(ws: UwsWebSocket<ProxyState>): void {
    this.#ws = ws;
    this.call = new WsProxyCall(this.port.deps.gateway, this.route, this, this.port.deps.bodyBytesMax, this.ctx);
  }

  sendText(text: string): boolean {
    const ws = this.#ws;
    if (this.#closed || ws === null) return false;
    let buffered = 0;
    ws.cork(() => {
      ws.send(text, false);
      buffered = ws.getBufferedAmount();
    });
    return buffered < this.port.deps.limits.wsSendHighBytes;
  }

  close(): void {
    const ws = this.#ws;
    if (this.#closed || ws === null) return;
    ws.end(1000);
  }

  closed(): void {
    this.#closed = true;
    this.#ws = null;
    this.call?.onClose();
  }
}
