// etcd 3.4 wraps its gateway in tmc/grpc-websocket-proxy: a WebSocket upgrade on any /v3/ route
// (typically /v3/watch) turns each client text message into the next piece of the request body and
// each line of the response into one text message. So a browser can watch:
//   new WebSocket('ws://127.0.0.1:2379/v3/watch').send('{"create_request":{"key":"Zm9v"}}')
//   <- {"result":{"header":{...},"created":true}}   (one message per response, no newline)
// This is that behaviour on top of the gateway core, for both ports (ws_node.ts for the client
// port's node:http, uws_server.ts for the fast port). The connection closes when the call ends.
import { GrpcCode } from '../../shared/errors';
import { errorBody, Gateway, GatewayStream, JsonValueSplitter, StreamSink, streamErrorLine } from './gateway';
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
  readonly #split: JsonValueSplitter;
  #call: GatewayStream | null = null;
  #done = false;

  constructor(gw: Gateway, route: Route, sock: WsTextSocket, bodyBytesMax: number) {
    this.#gw = gw;
    this.#route = route;
    this.#sock = sock;
    this.#split = new JsonValueSplitter(bodyBytesMax);
  }

  /** One client text message: more of the request body (the proxy adds a newline after each). */
  onText(text: string): void {
    if (this.#done) return;
    const r = this.#split.push(text + '\n', false);
    let i = 0;
    if (this.#call === null) {
      if (r.values.length === 0) {
        if (r.error !== undefined) this.#finish(errorBody(GrpcCode.Unknown, r.error));
        return;
      }
      if (this.#route.kind === 'unary') return this.#unary(r.values[0]);
      const opened = this.#gw.openStream(this.#route, r.values[0], true, this);
      if (!(opened instanceof GatewayStream)) return this.#finish(opened.body);
      this.#call = opened;
      i = 1;
    }
    for (; i < r.values.length; i++) this.#call.sendJson(r.values[i]);
    if (r.error !== undefined) this.#call.close();
  }

  #unary(value: unknown): void {
    this.#done = true;
    const r = this.#gw.unaryValue(this.#route, value);
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
    this.#call?.drained();
  }

  /** The client went away. */
  onClose(): void {
    if (!this.#done) this.#call?.cancel();
    this.#done = true;
  }
}

/** grpc-gateway's stream error chunk, as one message (no newline). */
function streamErrorMessage(code: number, message: string): string {
  return streamErrorLine(code, message).trimEnd();
}
