// --auto-tls and --peer-auto-tls: a self-signed certificate written into the data dir, as etcd's
// transport.SelfCert does (<data-dir>/fixtures/client or fixtures/peer, cert.pem and key.pem, reused when
// both exist; Organization "etcd", valid one year, key usages digitalSignature and keyEncipherment,
// serverAuth (+ clientAuth), the listen URLs' hosts as IP or DNS subject alternative names).
// etcd 3.4 uses a P-521 key; we use P-256 with SHA-256 (cheaper handshakes, accepted by every client).
//
// Node's crypto signs but cannot build certificates, so the X.509 structure is DER-encoded here (a few
// lines of ASN.1: RFC 5280 4.1) and checked by parsing it back with crypto.X509Certificate.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    len = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), len, content]);
}

const seq = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]): Buffer => tlv(0x31, Buffer.concat(items));
const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 + n, inner);
const octets = (b: Buffer): Buffer => tlv(0x04, b);
const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
const bool = (b: boolean): Buffer => tlv(0x01, Buffer.from([b ? 0xff : 0]));

/** A non-negative INTEGER from big-endian magnitude bytes. */
function uint(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const b = bytes.subarray(i);
  return tlv(0x02, b[0] & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
}

function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const out: number[] = [40 * arcs[0] + arcs[1]];
  for (const a of arcs.slice(2)) {
    const groups: number[] = [];
    for (let v = a; ; v = Math.floor(v / 128)) {
      groups.unshift(v & 0x7f);
      if (v < 128) break;
    }
    for (let i = 0; i < groups.length - 1; i++) groups[i] |= 0x80;
    out.push(...groups);
  }
  return tlv(0x06, Buffer.from(out));
}

function bitString(b: Buffer, unusedBits = 0): Buffer {
  return tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), b]));
}

/** UTCTime until 2049, GeneralizedTime after (RFC 5280 4.1.2.5). */
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14); // YYYYMMDDHHMMSS
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2) + 'Z')) : tlv(0x18, Buffer.from(iso + 'Z'));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), bool(true), octets(value)) : seq(oid(id), octets(value));
}

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

export interface SelfCertOptions {
  /** Host names or IP addresses (subject alternative names). */
  hosts: string[];
  /** Also valid as a client certificate (peers present it when they dial). */
  clientAuth: boolean;
  validityMs?: number;
  now?: Date;
}

/** A fresh key pair and self-signed certificate, both PEM ("EC PRIVATE KEY", as etcd writes). */
export function makeSelfSignedCert(o: SelfCertOptions): { certPem: string; keyPem: string } {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const now = o.now ?? new Date();
  const notAfter = new Date(now.getTime() + (o.validityMs ?? 365 * 24 * 3600 * 1000));
  const alg = seq(oid(ECDSA_WITH_SHA256));
  const name = seq(set(seq(oid('2.5.4.10'), utf8('etcd')))); // O=etcd
  const sans: Buffer[] = [];
  for (const h of [...new Set(o.hosts)]) {
    const family = net.isIP(h);
    if (family === 4) sans.push(tlv(0x87, Buffer.from(h.split('.').map(Number))));
    else if (family === 6) sans.push(tlv(0x87, ipv6Bytes(h)));
    else if (h !== '') sans.push(tlv(0x82, Buffer.from(h, 'ascii')));
  }
  const extensions = [
    extension('2.5.29.15', true, bitString(Buffer.from([0xa0]), 5)), // digitalSignature, keyEncipherment
    extension('2.5.29.37', false, seq(oid(SERVER_AUTH), ...(o.clientAuth ? [oid(CLIENT_AUTH)] : []))),
    extension('2.5.29.19', true, seq()), // basicConstraints: not a CA
    ...(sans.length > 0 ? [extension('2.5.29.17', false, seq(...sans))] : []),
  ];
  const tbs = seq(
    explicit(0, uint(Buffer.from([2]))), // v3
    uint(crypto.randomBytes(16)),
    alg,
    name,
    seq(time(now), time(notAfter)),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, seq(...extensions)),
  );
  const signature = crypto.sign('sha256', tbs, privateKey); // DER ECDSA-Sig-Value
  const der = seq(tbs, alg, bitString(signature));
  const certPem = `-----BEGIN CERTIFICATE-----\n${der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n?$/, '\n')}-----END CERTIFICATE-----\n`;
  const keyPem = privateKey.export({ type: 'sec1', format: 'pem' }) as string;
  // Pair check: what we wrote parses, is self-signed, and carries our key.
  const x = new crypto.X509Certificate(certPem);
  if (!x.verify(publicKey) || !x.checkPrivateKey(privateKey)) throw new Error('invariant: generated certificate does not verify');
  return { certPem, keyPem };
}

function ipv6Bytes(h: string): Buffer {
  const [head, tail] = h.includes('::') ? h.split('::') : [h, undefined];
  const parse = (s: string | undefined): number[] => (s ? s.split(':').map((x) => parseInt(x, 16)) : []);
  const a = parse(head);
  const b = parse(tail);
  const groups = tail === undefined ? a : [...a, ...new Array<number>(8 - a.length - b.length).fill(0), ...b];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, 2 * i));
  return out;
}

/**
 * etcd's SelfCert: dir/cert.pem and dir/key.pem, generated unless both exist already (then reused).
 * Returns the two paths.
 */
export function selfCert(dir: string, hosts: string[], clientAuth: boolean): { certFile: string; keyFile: string } {
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  if (fs.existsSync(certFile) && fs.existsSync(keyFile)) return { certFile, keyFile };
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { certPem, keyPem } = makeSelfSignedCert({ hosts, clientAuth });
  fs.writeFileSync(keyFile, keyPem, { mode: 0o600 });
  fs.writeFileSync(certFile, certPem, { mode: 0o644 });
  return { certFile, keyFile };
}
