// The TLS building blocks without a server process: the self-signed certificate of --auto-tls (parsed
// back by Node and by the openssl CLI), and TlsAcceptor on a bare TCP listener with small limits: the
// handshake timeout, the cap on handshakes in progress (and its count returning to zero), a certificate
// file replaced on disk served to the next connection, and --cipher-suites names mapped to OpenSSL's.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { Logger } from '../../src/main/log';
import { makeSelfSignedCert, selfCert } from '../../src/main/net/selfcert';
import { emptyTlsInfo, opensslCiphers, TlsAcceptor, TlsInfo, verifiedCommonName } from '../../src/main/net/tls';
import { makeTestPki, removeTestPki, TestPki } from '../support/certs';

const log = new Logger('error');

function listen(acceptor: TlsAcceptor): Promise<net.Server> {
  const srv = net.createServer((sock) => acceptor.accept(sock));
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

const portOf = (srv: net.Server): number => (srv.address() as net.AddressInfo).port;

function closedWithin(port: number, ms: number): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.on('error', () => undefined);
    sock.on('close', () => resolve(Date.now() - t0));
    setTimeout(() => {
      sock.destroy();
      reject(new Error(`open after ${ms} ms`));
    }, ms);
  });
}

describe('TLS: self-signed certificates (--auto-tls)', () => {
  it("is a valid X.509 v3 certificate for the hosts, self-signed, with etcd's organization", () => {
    const { certPem, keyPem } = makeSelfSignedCert({ hosts: ['127.0.0.1', 'localhost', '::1'], clientAuth: true });
    const x = new crypto.X509Certificate(certPem);
    assert.equal(x.subject, 'O=etcd');
    assert.equal(x.subjectAltName, 'IP Address:127.0.0.1, DNS:localhost, IP Address:0:0:0:0:0:0:0:1');
    assert.ok(x.checkPrivateKey(crypto.createPrivateKey(keyPem)));
    assert.deepEqual(x.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'selfcert-'));
    try {
      fs.writeFileSync(path.join(dir, 'c.pem'), certPem);
      assert.match(execFileSync('openssl', ['verify', '-CAfile', 'c.pem', 'c.pem'], { cwd: dir, encoding: 'utf8' }), /c\.pem: OK/);
      // Reused when both files exist, as etcd's SelfCert.
      const a = selfCert(path.join(dir, 'fixtures', 'client'), ['127.0.0.1'], false);
      const first = fs.readFileSync(a.certFile, 'utf8');
      selfCert(path.join(dir, 'fixtures', 'client'), ['127.0.0.1'], false);
      assert.equal(fs.readFileSync(a.certFile, 'utf8'), first);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("maps etcd's cipher suite names to OpenSSL's", () => {
    assert.equal(
      opensslCiphers(['TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256', 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305']),
      'ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305',
    );
    assert.equal(opensslCiphers([]), undefined);
    assert.throws(() => opensslCiphers(['TLS_FOO']), /unexpected TLS cipher suite "TLS_FOO"/);
  });
});

describe('TLS: TlsAcceptor limits and reload', function () {
  this.timeout(20_000);
  let dir: string;
  let info: TlsInfo;
  const servers: net.Server[] = [];

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acceptor-'));
    const { certPem, keyPem } = makeSelfSignedCert({ hosts: ['127.0.0.1'], clientAuth: false });
    fs.writeFileSync(path.join(dir, 'cert.pem'), certPem);
    fs.writeFileSync(path.join(dir, 'key.pem'), keyPem);
    info = { ...emptyTlsInfo(''), certFile: path.join(dir, 'cert.pem'), keyFile: path.join(dir, 'key.pem') };
  });
  afterEach(() => {
    for (const s of servers.splice(0)) s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('drops a silent connection after the handshake timeout, and caps handshakes in progress', async () => {
    const acceptor = new TlsAcceptor(info, { tlsHandshakeTimeoutMs: 500, tlsHandshakesInFlightMax: 2, tlsReloadCheckMs: 0 }, log, (s) =>
      s.end(),
    );
    const srv = await listen(acceptor);
    servers.push(srv);
    const port = portOf(srv);
    const silent = [closedWithin(port, 3000), closedWithin(port, 3000)];
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(acceptor.handshakesInFlight, 2);
    // A third one is over the cap: closed at once.
    assert.ok((await closedWithin(port, 3000)) < 300);
    for (const ms of await Promise.all(silent)) assert.ok(ms >= 400 && ms < 1500, `closed after ${ms} ms`);
    assert.equal(acceptor.handshakesInFlight, 0);
    // A real client still gets through.
    await new Promise<void>((resolve, reject) => {
      const c = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
        c.destroy();
        resolve();
      });
      c.on('error', reject);
    });
  });

  it('serves a replaced certificate file to the next connection', async () => {
    const acceptor = new TlsAcceptor(info, { tlsHandshakeTimeoutMs: 2000, tlsHandshakesInFlightMax: 8, tlsReloadCheckMs: 0 }, log, (s) =>
      s.end(),
    );
    const srv = await listen(acceptor);
    servers.push(srv);
    const served = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const c = tls.connect({ host: '127.0.0.1', port: portOf(srv), rejectUnauthorized: false }, () => {
          resolve(c.getPeerX509Certificate()!.fingerprint256);
          c.destroy();
        });
        c.on('error', reject);
      });
    const before = await served();
    const next = makeSelfSignedCert({ hosts: ['127.0.0.1'], clientAuth: false });
    // A half-replaced pair (new key, old certificate) is refused and the old pair stays in use.
    fs.writeFileSync(info.keyFile, next.keyPem);
    assert.equal(await served(), before);
    fs.writeFileSync(info.certFile, next.certPem);
    assert.equal(await served(), new crypto.X509Certificate(next.certPem).fingerprint256);
  });
});

describe('TLS: client certificate checks beyond the CA (--peer-cert-allowed-cn, --client-cert-allowed-hostname)', function () {
  this.timeout(20_000);
  let pki: TestPki;
  const servers: net.Server[] = [];
  before(() => {
    pki = makeTestPki();
  });
  after(() => {
    for (const s of servers) s.close();
    removeTestPki(pki);
  });

  /** Whether a client with `cert` gets an answer from an acceptor with `extra`; the answer is the CN it saw. */
  async function tryWith(extra: Partial<TlsInfo>, cert: { cert: string; key: string }): Promise<string | null> {
    const info: TlsInfo = {
      ...emptyTlsInfo('peer-'),
      certFile: pki.server.cert,
      keyFile: pki.server.key,
      trustedCaFile: pki.ca,
      clientCertAuth: true,
      ...extra,
    };
    const acceptor = new TlsAcceptor(info, { tlsHandshakeTimeoutMs: 2000, tlsHandshakesInFlightMax: 8, tlsReloadCheckMs: 0 }, log, (s) =>
      s.end(`${verifiedCommonName(s)}`),
    );
    const srv = await listen(acceptor);
    servers.push(srv);
    return new Promise((resolve) => {
      let got = '';
      const c = tls.connect({
        host: '127.0.0.1',
        port: portOf(srv),
        ca: fs.readFileSync(pki.ca),
        cert: fs.readFileSync(cert.cert),
        key: fs.readFileSync(cert.key),
      });
      c.on('data', (d: Buffer) => {
        got += d.toString();
      });
      c.on('error', () => undefined);
      c.on('close', () => resolve(got === '' ? null : got));
    });
  }

  it('passes the verified common name on, and refuses a certificate whose CN or hostname is not allowed', async () => {
    assert.equal(await tryWith({}, pki.client), 'client1');
    assert.equal(await tryWith({ allowedCn: 'client1' }, pki.client), 'client1');
    assert.equal(await tryWith({ allowedCn: 'm1' }, pki.client), null);
    assert.equal(await tryWith({ allowedHostname: 'localhost' }, pki.client), 'client1');
    assert.equal(await tryWith({ allowedHostname: 'example.com' }, pki.client), null);
    assert.equal(await tryWith({}, pki.stranger), null);
  });
});
