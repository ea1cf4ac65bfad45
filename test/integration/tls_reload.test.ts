// Certificate reload without a restart (issue 15 scope 5) on the side that was missing it: outgoing peer
// connections. A member dials its peers with PeerDialTls, which re-reads --peer-cert-file, --peer-key-file
// and --peer-trusted-ca-file when they are replaced on disk (etcd builds its client TLS config from the
// files for each new connection). Against a TLS server of the test's own that speaks the peer HELLO and
// records the certificate each connection presented: a first dial presents the CA's client1; after the
// files are replaced with another CA's certificate, the next dial presents that one, while the first
// connection keeps working; after the trusted CA file is replaced with one that did not sign the server,
// a new dial is refused (the CA was reloaded too), and the established connection still works. Files
// that do not load (a half-written key) leave the previous ones in use.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { dial, DialEnv, PeerDialTls } from '../../src/main/peer/dial';
import { encodeHelloAck, FrameReader, HELLO_FRAME_BYTES_MAX, HelloStatus, Purpose } from '../../src/main/peer/frame';
import { emptyTlsInfo, TlsInfo } from '../../src/main/net/tls';
import { limits } from '../../src/shared/limits';
import { makeTestPki, removeTestPki, TestPki } from '../support/certs';

/** Replaces a file the way certificate tooling does: write a new file, rename it over the old one. */
function replace(to: string, from: string): void {
  fs.copyFileSync(from, to + '.new');
  fs.renameSync(to + '.new', to);
}

interface PeerServer {
  port: number;
  /** Issuer CN of the client certificate each accepted connection presented, in order. */
  issuers: string[];
  close(): void;
}

/** A TLS server that answers the peer HELLO with OK, then echoes every byte. */
function peerServer(pki: TestPki): Promise<PeerServer> {
  const issuers: string[] = [];
  const sockets = new Set<tls.TLSSocket>();
  const srv = tls.createServer(
    {
      cert: fs.readFileSync(pki.server.cert),
      key: fs.readFileSync(pki.server.key),
      ca: [fs.readFileSync(pki.ca), fs.readFileSync(pki.wrongCa)],
      requestCert: true,
      rejectUnauthorized: true,
    },
    (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
      issuers.push(String(s.getPeerCertificate().issuer?.CN));
      const reader = new FrameReader(HELLO_FRAME_BYTES_MAX);
      let greeted = false;
      s.on('data', (d: Buffer) => {
        if (greeted) return void s.write(d);
        reader.push(d);
        if (reader.next() === null) return;
        greeted = true;
        s.write(encodeHelloAck(HelloStatus.Ok, ''));
      });
    },
  );
  return new Promise((resolve) => {
    srv.listen(0, '127.0.0.1', () => {
      resolve({
        port: (srv.address() as net.AddressInfo).port,
        issuers,
        close: () => {
          for (const s of sockets) s.destroy();
          srv.close();
        },
      });
    });
  });
}

async function echo(sock: net.Socket, text: string): Promise<string> {
  const got = new Promise<string>((resolve) => sock.once('data', (d: Buffer) => resolve(d.toString())));
  sock.resume();
  sock.write(text);
  return got;
}

describe('TLS reload: outgoing peer connections use replaced certificate files', function () {
  this.timeout(60_000);
  let pki: TestPki | undefined;
  let server: PeerServer | undefined;
  const socks: net.Socket[] = [];
  after(() => {
    for (const s of socks) s.destroy();
    server?.close();
    removeTestPki(pki);
  });

  it('a new dial presents the new certificate and checks with the new CA; an established connection keeps working', async () => {
    pki = makeTestPki();
    const dir = fs.mkdtempSync(path.join(pki.dir, 'peer-'));
    const files = { cert: path.join(dir, 'peer.crt'), key: path.join(dir, 'peer.key'), ca: path.join(dir, 'ca.crt') };
    fs.copyFileSync(pki.client.cert, files.cert);
    fs.copyFileSync(pki.client.key, files.key);
    fs.copyFileSync(pki.ca, files.ca);
    const info: TlsInfo = { ...emptyTlsInfo('peer-'), certFile: files.cert, keyFile: files.key, trustedCaFile: files.ca };
    server = await peerServer(pki);
    // checkMs 0: every dial compares the files (the member checks at most every limits.tlsReloadCheckMs).
    const env: DialEnv = { selfId: 1n, clusterId: 2n, limits, track: (s) => void socks.push(s), tls: new PeerDialTls(info, 0, null) };
    const to = { host: '127.0.0.1', port: server.port, secure: true };

    const first = await dial(env, to, Purpose.Messages, 3n);
    assert.deepEqual(server.issuers, ['ca']);

    // Another CA's certificate and key.
    replace(files.cert, pki.stranger.cert);
    replace(files.key, pki.stranger.key);
    const second = await dial(env, to, Purpose.Messages, 3n);
    assert.deepEqual(server.issuers, ['ca', 'wrong-ca']);
    assert.equal(await echo(first.sock, 'still here'), 'still here');

    // A half-written key: the previous files stay in use.
    fs.writeFileSync(files.key, '-----BEGIN PRIVATE KEY-----\n');
    const third = await dial(env, to, Purpose.Messages, 3n);
    assert.deepEqual(server.issuers, ['ca', 'wrong-ca', 'wrong-ca']);
    third.sock.destroy();
    replace(files.key, pki.stranger.key);

    // A trusted CA that did not sign the server's certificate: the next dial is refused.
    replace(files.ca, pki.wrongCa);
    await assert.rejects(dial(env, to, Purpose.Messages, 3n), /certificate|closed|verify/i);
    assert.equal(await echo(first.sock, 'old one'), 'old one');
    assert.equal(await echo(second.sock, 'and this'), 'and this');
  });
});
