// WebSocket API throughput (docs/WEBSOCKET.md): C connections, each keeping W requests in flight
// (pipelined), for S seconds, against one etcd-ts started with --listen-client-http-urls. JSON text
// frames and binary protobuf frames, Put and Range (linearizable). The load generator is this one
// Node.js process on the same machine, so it shares the cores with the server. Not a test.
//
//   npx tsc -p . && node dist/bench/ws_load.js --seconds 5 --connections 4 --window 64
import { freePort, removeDataDir, startEtcdTs } from '../test/support/procs';
import { WsConn } from './lib/lane_conns';
import { wsFrameHeader } from './lib/lane_wire';
import { etcdserverpb } from '../src/shared/gen/etcd';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

const seconds = arg('seconds', 5);
const connections = arg('connections', 4);
const windowSize = arg('window', 64);

function binFrame(id: number, method: string, msg: Uint8Array): Buffer {
  const h = Buffer.alloc(6);
  h[0] = 0;
  h.writeUInt32LE(id, 1);
  h[5] = method.length;
  return Buffer.concat([h, Buffer.from(method, 'latin1'), msg]);
}

async function run(port: number, kind: 'json' | 'binary', op: 'put' | 'range'): Promise<{ rps: number; errors: number }> {
  const conns = await Promise.all(Array.from({ length: connections }, () => WsConn.open(`127.0.0.1:${port}`, '/ws', 10_000)));
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
  const send = (c: WsConn, payload: Buffer, binary: boolean): void => c.send(Buffer.concat([wsFrameHeader(payload.length, binary), payload]));
  const sendOne = (c: WsConn): void => {
    const id = nextId++ >>> 0;
    if (kind === 'json') send(c, jsonReq(id), false);
    else {
      const f = Buffer.from(protoReq);
      f.writeUInt32LE(id, 1);
      send(c, f, true);
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
