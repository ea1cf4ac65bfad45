// One client port, two protocols, as etcd does: a connection whose first bytes are the HTTP/2
// preface ("PRI * HTTP/2.0") goes to gRPC, anything else to the HTTP/1.1 server.
import * as net from 'node:net';
import * as http from 'node:http';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** Anything that takes over a connection the way an http.Server or http2 server does. */
export interface ConnectionSink {
  emit(event: 'connection', socket: net.Socket): boolean;
}

export function listenMultiplexed(host: string, port: number, h2: ConnectionSink, h1: http.Server): Promise<net.Server> {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    const onData = (chunk: Buffer): void => {
      const n = Math.min(chunk.length, PREFACE.length);
      // Wait for enough bytes to decide, but never more than the preface length.
      if (n < PREFACE.length && chunk.length < 3) {
        socket.once('data', (more: Buffer) => onData(Buffer.concat([chunk, more])));
        return;
      }
      socket.pause();
      socket.unshift(chunk);
      const isH2 = chunk.subarray(0, n).equals(PREFACE.subarray(0, n));
      (isH2 ? h2 : h1).emit('connection', socket);
      process.nextTick(() => socket.resume());
    };
    socket.once('data', onData);
    socket.on('error', () => socket.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, backlog: 1024 }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
