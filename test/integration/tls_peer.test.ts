// Peer TLS (issue 15): a 3-member cluster started with https:// peer URLs and --peer-auto-tls (each
// member generates its own self-signed certificate into <data-dir>/fixtures/peer, as etcd does) elects
// a leader and replicates writes to every member; a 2-member cluster with CA-signed peer certificates
// and --peer-client-cert-auth replicates, while a third member whose certificate comes from another CA
// is refused: it cannot join the quorum, and both sides log the refusal.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTestPki, removeTestPki, TestPki } from '../support/certs';
import { etcdctl, etcdctlJson } from '../support/etcdctl';
import { cleanupServersAfter, freePort, Server, startEtcdTs, StartOptions } from '../support/procs';

async function ports(n: number): Promise<number[]> {
  const out: number[] = [];
  while (out.length < n) {
    const p = await freePort();
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

async function waitFor(what: string, ms: number, ok: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('peer TLS: a 3-member --peer-auto-tls cluster', function () {
  this.timeout(180_000);
  const members: Server[] = [];
  cleanupServersAfter(() => members);

  before(async () => {
    const p = await ports(6);
    const names = ['m1', 'm2', 'm3'];
    const initialCluster = names.map((n, i) => `${n}=https://127.0.0.1:${p[3 + i]}`).join(',');
    members.push(
      ...(await Promise.all(
        names.map((name, i) =>
          startEtcdTs({
            name,
            clientPort: p[i],
            peerPort: p[3 + i],
            initialCluster,
            token: 'tls-auto',
            readyTimeoutMs: 60_000,
            peerScheme: 'https',
            extraArgs: ['--peer-auto-tls'],
          }),
        ),
      )),
    );
  });

  it('elects one leader and replicates writes to every member', async () => {
    const st = (await etcdctlJson(members[0].endpoint, ['endpoint', 'status'])) as Array<{ Status: { leader: number } }>;
    assert.ok(st[0].Status.leader, 'a leader');
    const put = await etcdctl(members[1].endpoint, ['put', 'peer-tls', 'replicated']);
    assert.equal(put.code, 0, put.stderr);
    for (const m of members) {
      await waitFor(
        `the write on ${m.endpoint}`,
        10_000,
        async () => (await etcdctl(m.endpoint, ['get', 'peer-tls', '--print-value-only', '--consistency=s'])).stdout === 'replicated\n',
      );
    }
    const ml = (await etcdctlJson(members[2].endpoint, ['member', 'list'])) as { members: Array<{ peerURLs: string[] }> };
    assert.ok(ml.members.every((m) => m.peerURLs[0].startsWith('https://')));
    for (const m of members) assert.ok(fs.existsSync(path.join(m.dataDir, 'fixtures', 'peer', 'cert.pem')));
  });
});

describe('peer TLS: CA-signed certificates with --peer-client-cert-auth, a member of another CA refused', function () {
  this.timeout(180_000);
  const members: Server[] = [];
  let pki: TestPki;
  cleanupServersAfter(() => members);
  after(() => removeTestPki(pki));

  it("two members with the CA's certificates form a quorum; the third, with another CA's, is refused", async () => {
    pki = makeTestPki();
    const p = await ports(6);
    const names = ['m1', 'm2', 'm3'];
    const initialCluster = names.map((n, i) => `${n}=https://127.0.0.1:${p[3 + i]}`).join(',');
    const opts = (i: number, cert: { cert: string; key: string }, readyTimeoutMs = 60_000): StartOptions => ({
      name: names[i],
      clientPort: p[i],
      peerPort: p[3 + i],
      initialCluster,
      token: 'tls-ca',
      readyTimeoutMs,
      peerScheme: 'https',
      extraArgs: ['--peer-cert-file', cert.cert, '--peer-key-file', cert.key, '--peer-trusted-ca-file', pki.ca, '--peer-client-cert-auth'],
    });
    // m3 trusts the right CA but presents a certificate of another one: it never gets a leader.
    const [m1, m2, m3] = await Promise.all([
      startEtcdTs(opts(0, pki.issue('m1', 'm1'))),
      startEtcdTs(opts(1, pki.issue('m2', 'm2'))),
      startEtcdTs(opts(2, pki.stranger, 8_000)).then(
        () => null,
        (e: Error) => e,
      ),
    ]);
    members.push(m1, m2);
    assert.ok(m3 instanceof Error, 'm3 with a certificate of another CA must not become ready');
    const put = await etcdctl(m1.endpoint, ['put', 'ca-signed', 'yes']);
    assert.equal(put.code, 0, put.stderr);
    await waitFor(
      'the write on m2',
      10_000,
      async () => (await etcdctl(m2.endpoint, ['get', 'ca-signed', '--print-value-only', '--consistency=s'])).stdout === 'yes\n',
    );
    // Both sides say why: m1 and m2 refused m3's certificate, and could not verify m3's when dialing it.
    for (const m of [m1, m2]) {
      assert.match(m.stderr(), /"msg":"rejected connection".*"error":"UNABLE_TO_VERIFY_LEAF_SIGNATURE: client certificate refused"/);
      assert.match(m.stderr(), /"msg":"cannot connect to peer".*"error":"[^"]*(certificate|verify)/i);
    }
    // m3's own log (the tail its failed start carries) shows its refused dials and the members' refused ones.
    assert.match(m3.message, /"msg":"(cannot connect to peer|rejected connection)"/);
  });
});
