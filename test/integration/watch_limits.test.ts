// Size limits on Watch, etcd-ts against etcd 3.4 (the same requests to both; skipped for etcd when its
// binary is missing): one revision whose events are larger than the watch worker's response ring (a
// DeleteRange of 24 keys of 1 MiB, watched with prev_kv and without fragment: about 48 MiB) arrives as
// etcd sends it, one whole response with every event and every prev_kv value intact; the same with
// fragment arrives in pieces under --max-request-bytes, flagged fragment except the last, that join to
// the same events.
//
//   npx tsc -p . && npx mocha --no-config --exit --timeout 120000 dist/test/integration/watch_limits.test.js
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Etcd3 } from 'etcd3';
import { cleanupServersAfter, etcdBin, Server, ServerKind, startKind } from '../support/procs';
import { Resp, WatchClient } from './watch_client';

const KEYS = 24;
const VALUE_BYTES = 1024 * 1024;

interface Seen { responses: number; fragments: number; events: number; prevOk: boolean; keys: string[] }

async function bigRevision(kind: ServerKind, fragment: boolean): Promise<Seen> {
  const s: Server = await startKind(kind);
  const kv = new Etcd3({ hosts: s.clientUrl, dialTimeout: 5_000 });
  const w = new WatchClient(s.endpoint);
  try {
    for (let i = 0; i < KEYS; i++) await kv.put(`big/${String(i).padStart(2, '0')}`).value(Buffer.alloc(VALUE_BYTES, 97 + i));
    w.create({ key: Buffer.from('big/'), rangeEnd: Buffer.from('big0'), prevKv: true, fragment });
    await w.until((rs) => rs.some((r) => r.created));
    await kv.delete().prefix('big/');
    const got = await w.until((rs) => rs.flatMap((r) => r.events).length >= KEYS, 60_000);
    const withEvents = got.filter((r: Resp) => r.events.length > 0);
    const events = withEvents.flatMap((r) => r.events);
    const raw = w.raw.flatMap((r) => r.events ?? []);
    const prevOk = raw.every((e) => {
      const i = Number(Buffer.from(e.kv!.key!).toString().slice(4));
      const v = Buffer.from(e.prevKv?.value ?? []);
      return v.length === VALUE_BYTES && v[0] === 97 + i && v[VALUE_BYTES - 1] === 97 + i;
    });
    return {
      responses: withEvents.length, fragments: withEvents.filter((r) => r.fragment).length, events: events.length, prevOk,
      keys: events.map((e) => `${e.type} ${e.key}`),
    };
  } finally {
    w.close();
    kv.close();
    await s.stop();
  }
}

describe('watch size limits: etcd-ts vs etcd 3.4', function () {
  this.timeout(240_000);
  cleanupServersAfter();
  const kinds: ServerKind[] = fs.existsSync(etcdBin) ? ['etcd', 'etcd-ts'] : ['etcd-ts'];
  const expectedKeys = Array.from({ length: KEYS }, (_, i) => `DELETE big/${String(i).padStart(2, '0')}`);

  for (const kind of kinds) {
    it(`${kind}: one revision larger than the response ring, without fragment: one whole response`, async () => {
      const r = await bigRevision(kind, false);
      assert.deepEqual(r, { responses: 1, fragments: 0, events: KEYS, prevOk: true, keys: expectedKeys });
    });
    it(`${kind}: the same with fragment: pieces under --max-request-bytes that join to the same events`, async () => {
      const r = await bigRevision(kind, true);
      // 1.5 MiB limit, 2 MiB per event with prev_kv: one event per piece, all but the last flagged.
      assert.deepEqual(r, { responses: KEYS, fragments: KEYS - 1, events: KEYS, prevOk: true, keys: expectedKeys });
    });
  }
});
