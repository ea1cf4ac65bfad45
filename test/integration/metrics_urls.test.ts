// --listen-metrics-urls: a member (real etcd 3.4 and etcd-ts, the same flags) serves /metrics and /health
// on an extra http:// listener with the client port's status codes and content types, and nothing else
// there: /version, /v3/ routes and unknown paths answer Go's 404, a POST to /health Go's 405.
//
//   npm run build && npx mocha --no-config --exit --timeout 60000 dist/test/integration/metrics_urls.test.js
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { makeTestPki, removeTestPki, TestPki } from '../support/certs';
import { cleanupServersAfter, freePort, Server, ServerKind, startKind } from '../support/procs';

interface Answer {
  status: number;
  type: string;
  body: string;
}

/** The CA that verifies https:// metrics URLs (set by the TLS test). */
let ca: Buffer | undefined;

function request(url: string, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const send = url.startsWith('https:') ? https.request : http.request;
    const req = send(url, { method, timeout: 5000, ca }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end(method === 'POST' ? '{}' : undefined);
  });
}

/** What the metrics port answers, with the metrics body reduced to whether it has etcd's metric names. */
async function probe(metricsUrl: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const m = await request(`${metricsUrl}/metrics`);
  out.metrics = { status: m.status, type: m.type, hasServerMetrics: m.body.includes('etcd_server_has_leader 1') };
  out.health = await request(`${metricsUrl}/health`);
  out.postHealth = (({ status, type, body }) => ({ status, type, body }))(await request(`${metricsUrl}/health`, 'POST'));
  for (const p of ['/version', '/v3/kv/range', '/', '/nope'])
    out[p] = await request(`${metricsUrl}${p}`, p === '/v3/kv/range' ? 'POST' : 'GET');
  return out;
}

describe('--listen-metrics-urls (etcd and etcd-ts)', function () {
  this.timeout(60_000);
  const servers: Server[] = [];
  cleanupServersAfter(() => servers);

  let pki: TestPki | undefined;
  after(() => removeTestPki(pki));

  async function start(kind: ServerKind, scheme = 'http', extraArgs: string[] = []): Promise<string> {
    const port = await freePort();
    const url = `${scheme}://127.0.0.1:${port}`;
    servers.push(await startKind(kind, { logLevel: 'warn', extraArgs: [...extraArgs, '--listen-metrics-urls', url] }));
    return url;
  }

  it('serves /metrics and /health only, as etcd does', async () => {
    const [etcdUrl, tsUrl] = await Promise.all([start('etcd'), start('etcd-ts')]);
    const [want, got] = await Promise.all([probe(etcdUrl), probe(tsUrl)]);
    assert.deepEqual(got, want);
    // Pin etcd's answers too, so that the comparison cannot pass by both failing.
    assert.deepEqual(want.health, { status: 200, type: 'text/plain; charset=utf-8', body: '{"health":"true"}' });
    assert.deepEqual(want.metrics, { status: 200, type: 'text/plain; version=0.0.4; charset=utf-8', hasServerMetrics: true });
    assert.deepEqual(want['/version'], { status: 404, type: 'text/plain; charset=utf-8', body: '404 page not found\n' });
  });

  it('serves https:// metrics URLs with the client certificate files, as etcd does', async () => {
    pki = makeTestPki();
    ca = fs.readFileSync(pki.ca);
    const tlsArgs = ['--cert-file', pki.server.cert, '--key-file', pki.server.key];
    const [etcdUrl, tsUrl] = await Promise.all([start('etcd', 'https', tlsArgs), start('etcd-ts', 'https', tlsArgs)]);
    const [want, got] = await Promise.all([probe(etcdUrl), probe(tsUrl)]);
    assert.deepEqual(got, want);
    assert.deepEqual(want.health, { status: 200, type: 'text/plain; charset=utf-8', body: '{"health":"true"}' });
  });
});
