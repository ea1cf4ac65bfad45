// WebSocket API throughput (docs/WEBSOCKET.md): C connections, each keeping W requests in flight
// (pipelined), for S seconds, against one etcd-ts started with --listen-client-http-urls. JSON text
// frames and binary protobuf frames, Put and Range (linearizable). The load generator is this one
// Node.js process on the same machine, so it shares the cores with the server. Not a test.
//
//   npx tsc -p . && node dist/bench/ws_load.js --seconds 5 --connections 4 --window 64
import * as crypto from 'node:crypto';
import * as net from 'node:net';
import { freePort, removeDataDir, startEtcdTs } from '../test/support/procs';
import { etcdserverpb } from '../src/shared/gen/etcd';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

const seconds = arg('seconds', 5);
const connections = arg('connections', 4);
const windowSize = arg('window', 64);

/** A lean client: masked frames out, a callback per message in. */
class Conn {
  #sock: net.Socket;
  #buf: Buffer = Buffer.alloc(0);
  onMessage: (payload: Buffer, binary: boolean) => void = () => undefined;

  private constructor(sock: net.Socket, rest: Buffer) {
    this.#sock = sock;
    sock.on('data', (d: Buffer) => this.#onData(d));
    if (rest.length) this.#onData(rest);
  }

  static open(port: number): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const sock = net.connect(port, '127.0.0.1', () => {
        sock.setNoDelay(true);
        sock.write(`GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      });
      let head = Buffer.alloc(0);
      const onData = (d: Buffer): void => {
        head = Buffer.concat([head, d]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        sock.off('data', onData);
        resolve(new Conn(sock, head.subarray(end + 4)));
      };
      sock.on('data', onData);
      sock.on('error', reject);
    });
  }

  #onData(d: Buffer): void {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, d]) : d;
    let off = 0;
    const b = this.#buf;
    while (b.length - off >= 2) {
      const op = b[off] & 0x0f;
      let len = b[off + 1] & 0x7f;
      let h = 2;
      if (len === 126) { if (b.length - off < 4) break; len = b.readUInt16BE(off + 2); h = 4; }
      else if (len === 127) { if (b.length - off < 10) break; len = Number(b.readBigUInt64BE(off + 2)); h = 10; }
      if (b.length - off < h + len) break;
      this.onMessage(b.subarray(off + h, off + h + len), op === 2);
      off += h + len;
    }
    this.#buf = off === b.length ? Buffer.alloc(0) : b.subarray(off);
  }

  send(payload: Buffer, binary: boolean): void {
    const n = payload.length;
    const head = n < 126 ? Buffer.from([binary ? 0x82 : 0x81, 0x80 | n]) : Buffer.from([binary ? 0x82 : 0x81, 0x80 | 126, n >> 8, n & 0xff]);
    // A zero mask: valid framing (the client must mask; any key is allowed) and no copy to XOR.
    this.#sock.write(Buffer.concat([head, Buffer.alloc(4), payload]));
  }

  close(): void {
    this.#sock.destroy();
  }
}

function binFrame(id: number, method: string, msg: Uint8Array): Buffer {
  const h = Buffer.alloc(6);
  h[0] = 0;
  h.writeUInt32LE(id, 1);
  h[5] = method.length;
  return Buffer.concat([h, Buffer.from(method, 'latin1'), msg]);
}

async function run(port: number, kind: 'json' | 'binary', op: 'put' | 'range'): Promise<{ rps: number; errors: number }> {
  const conns = await Promise.all(Array.from({ length: connections }, () => Conn.open(port)));
  let done = 0;
  let errors = 0;
  let stop = false;
  const key = Buffer.from('foo');
  const protoReq = op === 'put'
    ? binFrame(0, '/etcdserverpb.KV/Put', etcdserverpb.PutRequest.encode({ key, value: Buffer.from('bar') }).finish())
    : binFrame(0, '/etcdserverpb.KV/Range', etcdserverpb.RangeRequest.encode({ key }).finish());
  const jsonReq = (id: number): Buffer => Buffer.from(op === 'put'
    ? `{"id":${id},"path":"/v3/kv/put","body":{"key":"Zm9v","value":"YmFy"}}`
    : `{"id":${id},"path":"/v3/kv/range","body":{"key":"Zm9v"}}`);
  let nextId = 1;
  const sendOne = (c: Conn): void => {
    const id = nextId++ >>> 0;
    if (kind === 'json') c.send(jsonReq(id), false);
    else {
      const f = Buffer.from(protoReq);
      f.writeUInt32LE(id, 1);
      c.send(f, true);
    }
  };
  for (const c of conns) {
    c.onMessage = (p, binary) => {
      if (binary ? p[0] !== 0 : p.includes('"error"')) errors++;
      done++;
      if (!stop) sendOne(c);
    };
  }
  await new Promise((r) => setTimeout(r, 500)); // connections settle
  for (const c of conns) for (let i = 0; i < windowSize; i++) sendOne(c);
  await new Promise((r) => setTimeout(r, 1000)); // warm-up
  const d0 = done;
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const rps = (done - d0) / (Number(process.hrtime.bigint() - t0) / 1e9);
  stop = true;
  await new Promise((r) => setTimeout(r, 300));
  for (const c of conns) c.close();
  return { rps, errors };
}

async function main(): Promise<void> {
  const port = await freePort();
  const srv = await startEtcdTs({ extraArgs: ['--listen-client-http-urls', `http://127.0.0.1:${port}`] });
  try {
    console.log(`Command: \`node dist/bench/ws_load.js --seconds ${seconds} --connections ${connections} --window ${windowSize}\`\n`);
    console.log('| framing | request | req/s | errors |');
    console.log('|---|---|---:|---:|');
    for (const op of ['put', 'range'] as const) {
      for (const kind of ['json', 'binary'] as const) {
        const r = await run(port, kind, op);
        console.log(`| ${kind} | ${op === 'put' ? 'Put' : 'Range (linearizable)'} | ${r.rps.toFixed(0)} | ${r.errors} |`);
      }
    }
  } finally {
    await srv.stop();
    removeDataDir(srv);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
