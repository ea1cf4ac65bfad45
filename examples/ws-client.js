#!/usr/bin/env node
// Example client of etcd-ts's WebSocket API (docs/WEBSOCKET.md): pipelined puts and a range, and a
// watch stream, all on one connection. Uses the WebSocket global (Node.js 22+, or Node.js 20 with
// `node --experimental-websocket`), no packages.
//
//   etcd-ts --listen-client-http-urls http://127.0.0.1:2381 &
//   node --experimental-websocket examples/ws-client.js ws://127.0.0.1:2381/ws
'use strict';

const url = process.argv[2] ?? 'ws://127.0.0.1:2381/ws';
const b64 = (s) => Buffer.from(s).toString('base64');
const text = (b) => Buffer.from(b ?? '', 'base64').toString();

if (typeof WebSocket === 'undefined') {
  console.error('no WebSocket global: use Node.js 22+, or node --experimental-websocket on Node.js 20');
  process.exit(2);
}

/** A tiny client: call() returns a promise per unary call, stream() calls onResult per message. */
class EtcdWs {
  #ws;
  #next = 1;
  #pending = new Map();
  #streams = new Map();

  constructor(ws) {
    this.#ws = ws;
    ws.addEventListener('message', (ev) => this.#onMessage(JSON.parse(ev.data)));
  }

  static open(u) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(u);
      ws.addEventListener('open', () => resolve(new EtcdWs(ws)), { once: true });
      ws.addEventListener('error', () => reject(new Error(`cannot connect to ${u}`)), { once: true });
    });
  }

  #onMessage(m) {
    const s = this.#streams.get(m.id);
    if (s) {
      if (m.result) s.onResult(m.result);
      if (m.end) {
        this.#streams.delete(m.id);
        s.onEnd(m.error ?? null);
      }
      return;
    }
    const p = this.#pending.get(m.id);
    if (!p) return console.error('unattributed message', m);
    this.#pending.delete(m.id);
    if (m.error) p.reject(Object.assign(new Error(m.error.message), m.error));
    else p.resolve(m.result);
  }

  call(path, body) {
    const id = this.#next++;
    this.#ws.send(JSON.stringify({ id, path, body }));
    return new Promise((resolve, reject) => this.#pending.set(id, { resolve, reject }));
  }

  stream(path, body, onResult, onEnd = () => {}) {
    const id = `s${this.#next++}`;
    this.#streams.set(id, { onResult, onEnd });
    this.#ws.send(JSON.stringify({ id, path, body }));
    return {
      send: (b) => this.#ws.send(JSON.stringify({ id, body: b })),
      cancel: () => this.#ws.send(JSON.stringify({ id, cancel: true })),
    };
  }

  close() {
    this.#ws.close();
  }
}

async function main() {
  const etcd = await EtcdWs.open(url);
  let events = 0;
  const allSeen = new Promise((resolve) => {
    const watch = etcd.stream('/v3/watch', { create_request: { key: b64('demo/'), range_end: b64('demo0'), prev_kv: true } }, (r) => {
      if (r.created) console.log(`watch created at revision ${r.header.revision}`);
      for (const e of r.events ?? []) {
        console.log(`  event ${e.type ?? 'PUT'} ${text(e.kv.key)}=${text(e.kv.value)} (was ${e.prev_kv ? text(e.prev_kv.value) : 'absent'})`);
        if (++events === 10) {
          watch.cancel();
          resolve();
        }
      }
    }, (err) => console.log(`watch ended${err ? `: ${err.message}` : ''}`));
  });
  // Give the watch its created response before writing, then pipeline ten puts without waiting.
  await new Promise((r) => setTimeout(r, 100));
  const puts = [];
  for (let i = 0; i < 10; i++) puts.push(etcd.call('/v3/kv/put', { key: b64(`demo/${i % 3}`), value: b64(`v${i}`) }));
  const revs = (await Promise.all(puts)).map((r) => r.header.revision);
  console.log(`10 pipelined puts, revisions ${revs.join(',')}`);
  const range = await etcd.call('/v3/kv/range', { key: b64('demo/'), range_end: b64('demo0') });
  console.log(`range: ${range.count} keys: ${range.kvs.map((kv) => `${text(kv.key)}=${text(kv.value)}`).join(' ')}`);
  try {
    await etcd.call('/v3/kv/range', { key: '' });
  } catch (e) {
    console.log(`an error comes back by id: code ${e.code} (HTTP ${e.http_status}): ${e.message}`);
  }
  await allSeen;
  etcd.close();
}

main().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
