// etcd 3.4 wraps its gateway in tmc/grpc-websocket-proxy: a WebSocket upgrade on any /v3/ route
// (typically /v3/watch) turns each client text message into the next piece of the request body and
// each line of the response into one text message. So a browser can watch:
//   new WebSocket('ws://127.0.0.1:2379/v3/watch').send('{"create_request":{"key":"Zm9v"}}')
//   <- {"result":{"header":{...},"created":true}}   (one message per response, no newline)
// This is that behaviour on top of the gateway core, for both ports (ws_node.ts for the client
// port's node:http, uws_server.ts for the fast port). The connection closes when the call ends.
import { GrpcCode } from '../../shared/errors';
import { CallContext, NO_CONTEXT } from '../net/rpc';
import { errorBody, Gateway, JsonValueSplitter, StreamBody, StreamSink, streamErrorLine } from './gateway';
import { Route } from './routes';

/** What the proxy needs from a WebSocket connection. */
export interface WsTextSocket {
  /** Sends one text message; false when the socket is past its backpressure mark. */
  sendText(text: string): boolean;
  /** Closes the connection normally (after what was sent). */
  close(): void;
}

export class WsProxyCall implements StreamSink {
  readonly #gw: Gateway;
  readonly #route: Route;
  readonly #sock: WsTextSocket;
  /** A unary route: the body until its first value. */
  readonly #split: JsonValueSplitter;
  /** A streaming route: the body feeds the call. */
  readonly #body: StreamBody;
  /** The upgrade request's token headers: the credentials of the connection's one call. */
  readonly #ctx: CallContext;
  #done = false;

  constructor(gw: Gateway, route: Route, sock: WsTextSocket, bodyBytesMax: number, ctx: CallContext = NO_CONTEXT) {
    this.#gw = gw;
    this.#ctx = ctx;
    this.#route = route;
    this.#sock = sock;
    this.#split = new JsonValueSplitter(bodyBytesMax);
    this.#body = new StreamBody(gw, route, this, bodyBytesMax, ctx);
  }

  /** One client text message: more of the request body (the proxy adds a newline after each). */
  onText(text: string): void {
    if (this.#done) return;
    if (this.#route.kind !== 'unary') {
      const reply = this.#body.push(text + '\n', false);
      if (reply !== null) this.#finish(reply.body);
      return;
    }
    const r = this.#split.push(text + '\n', false);
    if (r.values.length > 0) this.#unary(r.values[0]);
    else if (r.error !== undefined) this.#finish(errorBody(GrpcCode.Unknown, r.error));
  }

  #unary(value: unknown): void {
    this.#done = true;
    const r = this.#gw.unaryValue(this.#route, value, this.#ctx);
    if ('then' in r) void r.then((x) => this.#finish(x.body));
    else this.#finish(r.body);
  }

  #finish(text: string): void {
    this.#done = true;
    this.#sock.sendText(text);
    this.#sock.close();
  }

  result(json: string): boolean {
    return this.#sock.sendText('{"result":' + json + '}');
  }

  end(code: number, message: string): void {
    this.#done = true;
    if (code !== GrpcCode.OK) this.#sock.sendText(streamErrorMessage(code, message));
    this.#sock.close();
  }

  drained(): void {
    this.#body.call?.drained();
  }

  /** The client went away. */
  onClose(): void {
    if (!this.#done) this.#body.call?.cancel();
    this.#done = true;
  }
}

/** grpc-gateway's stream error chunk, as one message (no newline). */
function streamErrorMessage(code: number, message: string): string {
  return streamErrorLine(code, message).trimEnd();
}
