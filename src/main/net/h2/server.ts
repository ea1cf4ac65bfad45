// The HTTP/2 server object handed to the client listener: like node:http2's server it accepts
// sockets through emit('connection', socket), so listenMultiplexed can pass it connections whose
// first bytes were the preface (it pause()s and unshift()s them first: the session's 'data'
// listener sees those bytes first, once the listener resumes the socket).
import type * as net from 'node:net';
import { H2Handler, H2Session, H2SessionOptions } from './session';

export class H2Server {
  readonly #opts: H2SessionOptions;
  readonly #handler: H2Handler;
  readonly #sessions = new Set<H2Session>();
  readonly #forget = (s: H2Session): void => { this.#sessions.delete(s); };

  constructor(opts: H2SessionOptions, handler: H2Handler) {
    this.#opts = opts;
    this.#handler = handler;
  }

  emit(event: 'connection', socket: net.Socket): boolean {
    if (event !== 'connection') return false;
    this.#sessions.add(new H2Session(socket, this.#opts, this.#handler, this.#forget));
    return true;
  }

  /** Graceful: GOAWAY(NO_ERROR) on every connection; each ends when its streams have finished. */
  close(): void {
    for (const s of this.#sessions) s.close();
  }
}
