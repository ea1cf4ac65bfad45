// One client port, several protocols, as etcd does: a connection whose first bytes are the HTTP/2
// preface ("PRI * HTTP/2.0") goes to gRPC, anything else to the HTTP/1.1 server. With TLS (an https://
// listen URL) the handshake runs first (net/tls.ts) and ALPN picks the protocol ('h2' or 'http/1.1';
// a client that offers neither is sniffed like cleartext). When the same host:port is listed as both
// http:// and https://, the first byte decides: 0x16 (a TLS handshake record: the ClientHello) is TLS,
// anything else cleartext, as etcd's cmux does.
import * as net from 'node:net';
import * as http from 'node:http';
import type * as tls from 'node:tls';
import type { TlsAcceptor } from './tls';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
/** TLS record type of a handshake message: the first byte a TLS client sends. */
const TLS_HANDSHAKE_RECORD = 0x16;

/** Anything that takes over a connection the way an http.Server or http2 server does. */
export interface ConnectionSink {
  emit(event: 'connection', socket: net.Socket): boolean;
}

/** Where a client connection goes once its protocol is known. */
export interface ClientRoutes {
  h2: ConnectionSink;
  h1: http.Server;
}

/** Hands the socket to h2 or h1 by its first bytes (it is paused and the bytes put back first). */
function routeByPreface(socket: net.Socket, routes: ClientRoutes, first?: Buffer): void {
  const decide = (chunk: Buffer): void => {
    const n = Math.min(chunk.length, PREFACE.length);
    // Wait for enough bytes to decide, but never more than the preface length.
    if (n < PREFACE.length && chunk.length < 3) {
      socket.once('data', (more: Buffer) => decide(Buffer.concat([chunk, more])));
      return;
    }
    socket.pause();
    socket.unshift(chunk);
    const isH2 = chunk.subarray(0, n).equals(PREFACE.subarray(0, n));
    (isH2 ? routes.h2 : routes.h1).emit('connection', socket);
    process.nextTick(() => socket.resume());
  };
  if (first !== undefined) decide(first);
  else socket.once('data', decide);
}

/** A TLS connection after its handshake: ALPN decides, else its first bytes. */
export function routeSecure(socket: tls.TLSSocket, routes: ClientRoutes): void {
  socket.setNoDelay(true);
  if (socket.alpnProtocol === 'h2') routes.h2.emit('connection', socket);
  else if (socket.alpnProtocol === 'http/1.1') routes.h1.emit('connection', socket);
  else routeByPreface(socket, routes);
}

export interface ClientListenOptions {
  routes: ClientRoutes;
  /** Set for an https:// URL on this host:port: connections are TLS (and routeSecure'd by the acceptor). */
  tls: TlsAcceptor | null;
  /** An http:// URL on this host:port: cleartext connections are served. */
  plain: boolean;
  /** A mixed port drops a connection that sends no first byte within this (the TLS handshake timeout). */
  firstByteTimeoutMs: number;
}

export function listenClient(host: string, port: number, o: ClientListenOptions): Promise<net.Server> {
  const { routes, tls: acceptor, plain } = o;
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => socket.destroy());
    if (acceptor === null) return routeByPreface(socket, routes);
    if (!plain) return acceptor.accept(socket);
    const timer = setTimeout(() => socket.destroy(), o.firstByteTimeoutMs);
    socket.once('close', () => clearTimeout(timer));
    socket.once('data', (chunk: Buffer) => {
      clearTimeout(timer);
      if (chunk[0] !== TLS_HANDSHAKE_RECORD) return routeByPreface(socket, routes, chunk);
      socket.pause();
      socket.unshift(chunk); // node:tls reads bytes already buffered in the socket first
      acceptor.accept(socket);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, backlog: 1024 }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/** Cleartext only (tests and callers without TLS). */
export function listenMultiplexed(host: string, port: number, h2: ConnectionSink, h1: http.Server): Promise<net.Server> {
  return listenClient(host, port, { routes: { h2, h1 }, tls: null, plain: true, firstByteTimeoutMs: 0 });
}
