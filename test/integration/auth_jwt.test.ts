// JWT tokens (--auth-token jwt,...) and tokens on the HTTP/JSON gateway, against etcd 3.4.
//
// 1. Differential: real etcd 3.4 and etcd-ts start with the same `--auth-token jwt,...` flags and the
//    same RS256 key pair, get the same users, roles and permissions through etcdctl, then answer one
//    table of gateway POSTs (Authenticate, reads and writes with no token, a wrong, forged or
//    expired token, a permitted and a refused key, a token minted by the other server, a token older
//    than a permission change). Status and body must be equal after normalizing IDs and the token
//    itself; etcd-ts answers on its client port and on its uWebSockets.js port alike.
// 2. Interop per sign method (PS384, ES512, HS256): a token etcd issues works on etcd-ts and back.
// 3. A 3-member etcd-ts cluster (the third member given only the public key): a token from one
//    member works on every member; the verify-only member refuses to issue one, as etcd; a token
//    expires after its ttl.
// 4. The WebSocket API authenticates once per connection: the Authorization header at the upgrade,
//    or an Authenticate call on the connection (JSON and binary framing); the /v3/ WebSocket proxy
//    takes the upgrade's Authorization header.
//
//   npm run build && npx mocha --no-config --timeout 60000 --exit dist/test/integration/auth_jwt.test.js
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { JwtTokens } from '../../src/main/auth/jwt_token';
import { JwtSignMethod } from '../../src/main/config';
import { etcdctl, normalize } from '../support/etcdctl';
import { HttpResult, request, WsClient } from '../support/http_client';
import { cleanupServersAfter, Server, startEtcd, startEtcdTs } from '../support/procs';
import { etcdserverpb } from '../../src/shared/gen/etcd';
import { writeJwtKeys } from '../support/jwt_keys';

/** Ports of this test (24000-24999, this branch's range), handed out in order. */
let nextPort = 24100 + (process.pid % 50) * 16;
const port = (): number => nextPort++;

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const ROOT = '--user=root:rootpw';

function jwtFlag(method: JwtSignMethod, keys: { priv: string; pub: string }, ttl = '5m', pubOnly = false): string {
  const files = pubOnly ? `pub-key=${keys.pub}` : keys.pub ? `pub-key=${keys.pub},priv-key=${keys.priv}` : `priv-key=${keys.priv}`;
  return `jwt,${files},sign-method=${method},ttl=${ttl}`;
}

/** etcdctl commands that set up users, roles and permissions, then enable auth. */
async function setupAuth(s: Server): Promise<void> {
  const cmds = [
    ['user', 'add', 'root:rootpw'],
    ['user', 'add', 'reader:rpw'],
    ['role', 'add', 'readers'],
    ['role', 'grant-permission', 'readers', '--prefix=true', 'read', '/r/'],
    ['user', 'grant-role', 'reader', 'readers'],
    ['auth', 'enable'],
    [ROOT, 'put', '/r/a', 'one'],
  ];
  for (const c of cmds) {
    const r = await etcdctl(s.endpoint, c);
    assert.equal(r.code, 0, `${c.join(' ')}: ${r.stderr}`);
  }
}

async function authenticate(url: string, name: string, password: string): Promise<string> {
  const r = await request('POST', `${url}/v3/auth/authenticate`, JSON.stringify({ name, password }));
  assert.equal(r.status, 200, r.body);
  const token = (JSON.parse(r.body) as { token: string }).token;
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'a JWT');
  return token;
}

function claims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as Record<string, unknown>;
}

/** What differs between two clusters, and the tokens themselves (checked separately). */
function summary(r: HttpResult): string {
  const body = r.body
    .replace(/"(cluster_id|member_id|raft_term|leader|dbSize|dbSizeInUse|raftIndex|raftAppliedIndex)":"\d+"/g, '"$1":"N"')
    .replace(/"token":"[\w-]+\.[\w-]+\.[\w-]+"/g, '"token":"JWT"');
  return `HTTP ${r.status} ${String(r.headers['content-type'] ?? '')}\n${body}`;
}

/** One gateway request; `auth` names a token of the server under test (see Side.tokens). */
interface Case {
  note: string;
  path: string;
  body: unknown;
  auth?: string;
  header?: 'authorization' | 'grpc-metadata-token';
  /** What etcd answers (status, then a part of the body): pins the reference itself. */
  want?: string;
  /** A write: sent once per server (the fast port is the same server as etcd-ts's client port). */
  once?: boolean;
}

interface Side {
  name: string;
  url: string;
  tokens: Map<string, string>;
}

describe('JWT and gateway tokens: etcd 3.4 vs etcd-ts with the same --auth-token jwt flags', function () {
  this.timeout(120_000);
  let dir: string;
  let etcd: Server | undefined;
  let ts: Server | undefined;
  const sides: Side[] = [];
  cleanupServersAfter(() => [etcd, ts]);

  before(async function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jwt-diff-'));
    const keys = writeJwtKeys(dir, 'RS256');
    const flag = ['--auth-token', jwtFlag('RS256', keys)];
    const fastPort = port();
    [etcd, ts] = await Promise.all([
      startEtcd({ clientPort: port(), peerPort: port(), extraArgs: flag }),
      startEtcdTs({
        clientPort: port(),
        peerPort: port(),
        extraArgs: [...flag, '--listen-client-http-urls', `http://127.0.0.1:${fastPort}`],
      }),
    ]);
    await Promise.all([setupAuth(etcd), setupAuth(ts)]);
    sides.push({ name: 'etcd', url: etcd.clientUrl, tokens: new Map() });
    sides.push({ name: 'etcd-ts', url: ts.clientUrl, tokens: new Map() });
    sides.push({ name: 'etcd-ts fast port', url: `http://127.0.0.1:${fastPort}`, tokens: new Map() });
    // Tokens: each side's own, one minted by the other server, an expired and a forged one.
    for (const s of sides) {
      s.tokens.set('reader', await authenticate(s.url, 'reader', 'rpw'));
      s.tokens.set('root', await authenticate(s.url, 'root', 'rootpw'));
    }
    const [e, t, f] = sides;
    e.tokens.set('other-root', t.tokens.get('root')!);
    t.tokens.set('other-root', e.tokens.get('root')!);
    f.tokens.set('other-root', e.tokens.get('root')!);
    const rev = claims(e.tokens.get('root')!).revision as number;
    const expired = new JwtTokens(
      { signMethod: 'RS256', privKeyFile: keys.priv, pubKeyFile: '', ttlMs: 1000 },
      { nowMs: () => Date.now() - 60_000 },
    );
    const forgedKeys = writeJwtKeys(fs.mkdtempSync(path.join(dir, 'forger-')), 'RS256');
    const forger = new JwtTokens({ signMethod: 'RS256', privKeyFile: forgedKeys.priv, pubKeyFile: '', ttlMs: 60_000 });
    for (const s of sides) {
      s.tokens.set('expired', expired.issue('', 'root', rev));
      s.tokens.set('forged', forger.issue('', 'root', rev));
      s.tokens.set('garbage', 'not-a-token');
    }
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('tokens carry etcd claims; both servers are at the same auth revision', () => {
    for (const s of sides) {
      const c = claims(s.tokens.get('reader')!);
      assert.deepEqual(Object.keys(c), ['exp', 'revision', 'username']);
      assert.equal(c.username, 'reader');
      assert.ok(Math.abs((c.exp as number) - (Date.now() / 1000 + 300)) < 30, 'ttl=5m');
    }
    assert.equal(claims(sides[0].tokens.get('root')!).revision, claims(sides[1].tokens.get('root')!).revision);
  });

  const C = (note: string, p: string, body: unknown, auth?: string, header?: Case['header']): Case => ({
    note,
    path: p,
    body,
    auth,
    header,
  });
  const W = (want: string, c: Case): Case => ({ ...c, want });
  const cases: Case[] = [
    W('400 authentication failed', C('authenticate, wrong password', '/v3/auth/authenticate', { name: 'reader', password: 'nope' })),
    W('400 authentication failed', C('authenticate, unknown user', '/v3/auth/authenticate', { name: 'nobody', password: 'x' })),
    W('400 user name is empty', C('range, no token', '/v3/kv/range', { key: b64('/r/a') })),
    W('400 user name is empty', C('put, no token', '/v3/kv/put', { key: b64('/r/a'), value: b64('x') })),
    W('401 invalid auth token', C('range, garbage token', '/v3/kv/range', { key: b64('/r/a') }, 'garbage')),
    W('401 invalid auth token', C('range, forged token', '/v3/kv/range', { key: b64('/r/a') }, 'forged')),
    W('401 invalid auth token', C('range, expired token', '/v3/kv/range', { key: b64('/r/a') }, 'expired')),
    W('200 "kvs"', C('range, reader', '/v3/kv/range', { key: b64('/r/a') }, 'reader')),
    W('200 "kvs"', C('range, reader, Grpc-Metadata-Token', '/v3/kv/range', { key: b64('/r/a') }, 'reader', 'grpc-metadata-token')),
    W('200 "kvs"', C('range, reader, prefix', '/v3/kv/range', { key: b64('/r/'), range_end: b64('/r0') }, 'reader')),
    W('403 permission denied', C('range, reader, outside', '/v3/kv/range', { key: b64('/x') }, 'reader')),
    W('403 permission denied', C('put, reader (read only)', '/v3/kv/put', { key: b64('/r/a'), value: b64('x') }, 'reader')),
    W(
      '403 permission denied',
      C('txn, reader, a compare outside', '/v3/kv/txn', { compare: [{ key: b64('/x'), target: 'VERSION', version: '0' }] }, 'reader'),
    ),
    W('403 permission denied', C('user list, reader', '/v3/auth/user/list', {}, 'reader')),
    W('200 "users"', C('user list, root', '/v3/auth/user/list', {}, 'root')),
    { ...C('put, root', '/v3/kv/put', { key: b64('/r/b'), value: b64('two') }, 'root'), once: true },
    W('200 "kvs"', C('range, root, token of the other server', '/v3/kv/range', { key: b64('/r/'), range_end: b64('/r0') }, 'other-root')),
    C('status, reader (etcd 3.4 does not check Status)', '/v3/maintenance/status', {}, 'reader'),
    { ...C('lease grant, reader', '/v3/lease/grant', { TTL: 60, ID: 7 }, 'reader'), once: true },
    W('403 permission denied', C('auth disable, reader', '/v3/auth/disable', {}, 'reader')),
  ];

  cases.forEach((tc, i) => {
    it(`#${i + 1} ${tc.note}`, async () => {
      const to = tc.once ? sides.slice(0, 2) : sides;
      const answers = await Promise.all(to.map((s) => send(s, tc)));
      const [ref, ...rest] = answers.map(summary);
      if (tc.want !== undefined) {
        const [status, text] = [tc.want.slice(0, 3), tc.want.slice(4)];
        assert.ok(ref.startsWith(`HTTP ${status} `) && ref.includes(text), `etcd answered ${ref}, expected ${tc.want}`);
      }
      rest.forEach((a, j) => assert.equal(a, ref, `${sides[j + 1].name} differs from etcd on ${tc.note}`));
    });
  });

  it('a token older than a permission change: "revision of auth store is old" on both', async () => {
    for (const s of [etcd!, ts!]) {
      const r = await etcdctl(s.endpoint, [ROOT, 'role', 'grant-permission', 'readers', 'read', '/s']);
      assert.equal(r.code, 0, r.stderr);
    }
    const tc = C('range, reader, stale', '/v3/kv/range', { key: b64('/r/a') }, 'reader');
    const answers = (await Promise.all(sides.map((s) => send(s, tc)))).map(summary);
    assert.match(answers[0], /revision of auth store is old/);
    answers.slice(1).forEach((a) => assert.equal(a, answers[0]));
    // A new token works again, and etcdctl with a password works on both.
    for (const s of sides) assert.equal((await send(s, { ...tc, auth: 'fresh' }, await authenticate(s.url, 'reader', 'rpw'))).status, 200);
    const gets = await Promise.all([etcd!, ts!].map((s) => etcdctl(s.endpoint, ['--user=reader:rpw', 'get', '/r/a'])));
    assert.equal(normalize(gets[1]), normalize(gets[0]));
    assert.equal(gets[0].stdout, '/r/a\none\n');
  });
});

function send(s: Side, tc: Case, explicit?: string): Promise<HttpResult> {
  const headers: Record<string, string> = {};
  const token = explicit ?? (tc.auth ? s.tokens.get(tc.auth) : undefined);
  if (tc.auth && token === undefined) throw new Error(`no token ${tc.auth} for ${s.name}`);
  if (token !== undefined) headers[tc.header ?? 'authorization'] = token;
  return request('POST', s.url + tc.path, JSON.stringify(tc.body), headers);
}

describe('JWT: a token issued by etcd 3.4 works on etcd-ts and back, per sign method', function () {
  this.timeout(120_000);
  let dir: string;
  let etcd: Server | undefined;
  let ts: Server | undefined;
  cleanupServersAfter(() => [etcd, ts]);
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jwt-methods-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const method of ['PS384', 'ES512', 'HS256'] as const) {
    it(method, async () => {
      const flag = ['--auth-token', jwtFlag(method, writeJwtKeys(dir, method))];
      [etcd, ts] = await Promise.all([
        startEtcd({ clientPort: port(), peerPort: port(), extraArgs: flag }),
        startEtcdTs({ clientPort: port(), peerPort: port(), extraArgs: flag }),
      ]);
      await Promise.all([setupAuth(etcd), setupAuth(ts)]);
      const fromEtcd = await authenticate(etcd.clientUrl, 'reader', 'rpw');
      const fromTs = await authenticate(ts.clientUrl, 'reader', 'rpw');
      assert.equal(JSON.parse(Buffer.from(fromTs.split('.')[0], 'base64url').toString()).alg, method);
      const body = JSON.stringify({ key: b64('/r/a') });
      const onTs = await request('POST', `${ts.clientUrl}/v3/kv/range`, body, { authorization: fromEtcd });
      const onEtcd = await request('POST', `${etcd.clientUrl}/v3/kv/range`, body, { authorization: fromTs });
      assert.equal(onTs.status, 200, onTs.body);
      assert.equal(onEtcd.status, 200, onEtcd.body);
      assert.equal(summary(onTs), summary(onEtcd));
      await Promise.all([etcd.stop(), ts.stop()]);
    });
  }
});

describe('JWT in a 3-member etcd-ts cluster (one member verify-only)', function () {
  this.timeout(120_000);
  let dir: string;
  let members: Server[] = [];
  cleanupServersAfter(() => members);
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jwt-cluster-'));
    const keys = writeJwtKeys(dir, 'ES256');
    const ports = Array.from({ length: 6 }, () => port());
    const initialCluster = [0, 1, 2].map((i) => `m${i + 1}=http://127.0.0.1:${ports[3 + i]}`).join(',');
    members = await Promise.all(
      [0, 1, 2].map((i) =>
        startEtcdTs({
          name: `m${i + 1}`,
          clientPort: ports[i],
          peerPort: ports[3 + i],
          initialCluster,
          token: 'jwt-cluster',
          readyTimeoutMs: 60_000,
          extraArgs: ['--auth-token', jwtFlag('ES256', keys, '4s', i === 2)],
        }),
      ),
    );
    await setupAuth(members[0]);
  });

  it('a token from one member works on every member; the verify-only member cannot issue one; it expires', async () => {
    const token = await authenticate(members[0].clientUrl, 'reader', 'rpw');
    const body = JSON.stringify({ key: b64('/r/a'), serializable: true });
    for (const m of members) {
      // serializable: a follower may not have applied the put yet; poll briefly.
      let r: HttpResult;
      for (let i = 0; ; i++) {
        r = await request('POST', `${m.clientUrl}/v3/kv/range`, body, { authorization: token });
        if (r.status !== 200 || r.body.includes('"kvs"') || i > 20) break;
        await new Promise((res) => setTimeout(res, 100));
      }
      assert.equal(r.status, 200, `${m.clientUrl}: ${r.body}`);
      assert.match(r.body, new RegExp(`"value":"${b64('one')}"`));
    }
    const refused = await request(
      'POST',
      `${members[2].clientUrl}/v3/auth/authenticate`,
      JSON.stringify({ name: 'reader', password: 'rpw' }),
    );
    assert.equal(refused.status, 500);
    assert.deepEqual(JSON.parse(refused.body), {
      error: 'auth: token signing attempted with verify-only key',
      message: 'auth: token signing attempted with verify-only key',
      code: 2,
    });
    const fromM2 = await authenticate(members[1].clientUrl, 'reader', 'rpw');
    assert.equal((await request('POST', `${members[2].clientUrl}/v3/kv/range`, body, { authorization: fromM2 })).status, 200);
    // ttl=4s: exp is at most 4 s away, checked to the second.
    await new Promise((res) => setTimeout(res, 5200));
    const late = await request('POST', `${members[1].clientUrl}/v3/kv/range`, body, { authorization: token });
    assert.equal(late.status, 401);
    assert.deepEqual(JSON.parse(late.body), {
      error: 'etcdserver: invalid auth token',
      message: 'etcdserver: invalid auth token',
      code: 16,
    });
    const grpc = await etcdctl(members[2].endpoint, ['--user=reader:rpw', 'get', '/r/a']);
    assert.match(grpc.stderr, /auth: token signing attempted with verify-only key/, 'etcdctl through the verify-only member');
  });
});

describe('tokens on the WebSocket API and the WebSocket proxy (etcd-ts)', function () {
  this.timeout(60_000);
  let dir: string;
  let ts: Server | undefined;
  let fastPort = 0;
  let clientPort = 0;
  const clients: WsClient[] = [];
  cleanupServersAfter(() => [ts]);
  after(() => {
    for (const c of clients) c.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jwt-ws-'));
    fastPort = port();
    clientPort = port();
    ts = await startEtcdTs({
      clientPort,
      peerPort: port(),
      extraArgs: [
        '--auth-token',
        jwtFlag('RS256', writeJwtKeys(dir, 'RS256')),
        '--listen-client-http-urls',
        `http://127.0.0.1:${fastPort}`,
      ],
    });
    await setupAuth(ts);
  });

  const open = async (p: string, headers: Record<string, string> = {}, at = fastPort): Promise<WsClient> => {
    const c = await WsClient.connect('127.0.0.1', at, p, undefined, headers);
    clients.push(c);
    return c;
  };
  const range = { path: '/v3/kv/range', body: { key: b64('/r/a') } };

  it('/ws: refused without a token, then one Authenticate call authenticates the connection', async () => {
    const ws = await open('/ws');
    ws.send({ id: 1, ...range });
    ws.send({ id: 2, path: '/v3/auth/authenticate', body: { name: 'reader', password: 'wrong' } });
    let m = await ws.waitMessages(2);
    const byId = (id: unknown): Record<string, unknown> => m.find((x) => x.id === id)!;
    assert.deepEqual(byId(1).error, { code: 3, message: 'etcdserver: user name is empty', http_status: 400 });
    assert.deepEqual(byId(2).error, {
      code: 3,
      message: 'etcdserver: authentication failed, invalid user ID or password',
      http_status: 400,
    });
    ws.send({ id: 3, path: '/v3/auth/authenticate', body: { name: 'reader', password: 'rpw' } });
    m = await ws.waitMessages(3);
    assert.match(String((byId(3).result as { token: string }).token), /^[\w-]+\.[\w-]+\.[\w-]+$/);
    ws.send({ id: 4, ...range });
    ws.send({ id: 5, path: '/v3/kv/range', body: { key: b64('/x') } });
    ws.send({ id: 'w', path: '/v3/watch', body: { create_request: { key: b64('/r/a') } } });
    m = await ws.waitMessages(6);
    assert.match(JSON.stringify(byId(4).result), new RegExp(b64('one')));
    assert.deepEqual(byId(5).error, { code: 7, message: 'etcdserver: permission denied', http_status: 403 });
    assert.equal((byId('w').result as { created: boolean }).created, true);
  });

  it('/ws: the Authorization header at the upgrade; a wrong one is refused per call', async () => {
    const token = await authenticate(ts!.clientUrl, 'reader', 'rpw');
    const good = await open('/ws', { Authorization: token });
    good.send({ id: 1, ...range });
    assert.ok((await good.waitMessages(1))[0].result);
    const bad = await open('/ws', { Authorization: 'nope' });
    bad.send({ id: 1, ...range });
    assert.deepEqual((await bad.waitMessages(1))[0].error, { code: 16, message: 'etcdserver: invalid auth token', http_status: 401 });
  });

  it('/ws binary framing: an Authenticate call authenticates the connection too', async () => {
    const ws = await open('/ws');
    const frame = (id: number, method: string, msg: Uint8Array): Buffer =>
      Buffer.concat([
        Buffer.from([0]),
        Buffer.from(Uint32Array.of(id).buffer),
        Buffer.from([method.length]),
        Buffer.from(method, 'latin1'),
        msg,
      ]);
    const rangeMsg = etcdserverpb.RangeRequest.encode({ key: Buffer.from('/r/a') }).finish();
    ws.sendBinary(frame(1, '/etcdserverpb.KV/Range', rangeMsg));
    ws.sendBinary(
      frame(2, '/etcdserverpb.Auth/Authenticate', etcdserverpb.AuthenticateRequest.encode({ name: 'reader', password: 'rpw' }).finish()),
    );
    const [first, second] = await ws.waitBinaries(2);
    assert.equal(first[0], 1, 'ERROR frame without a token');
    assert.match(first.subarray(9).toString(), /user name is empty/);
    assert.equal(second[0], 0, 'Authenticate answered');
    ws.sendBinary(frame(3, '/etcdserverpb.KV/Range', rangeMsg));
    const third = (await ws.waitBinaries(3))[2];
    assert.equal(third[0], 0, third.subarray(9).toString());
    assert.equal(Buffer.from(etcdserverpb.RangeResponse.decode(third.subarray(5)).kvs[0].value ?? []).toString(), 'one');
  });

  it('/v3/watch WebSocket proxy on both ports: the upgrade Authorization header is the token', async () => {
    const token = await authenticate(ts!.clientUrl, 'reader', 'rpw');
    for (const at of [clientPort, fastPort]) {
      const ws = await open('/v3/watch', { Authorization: token }, at);
      ws.sendText(JSON.stringify({ create_request: { key: b64('/r/a') } }));
      assert.equal(((await ws.waitMessages(1))[0].result as { created: boolean }).created, true, `port ${at}`);
      const anon = await open('/v3/kv/range', {}, at);
      anon.sendText(JSON.stringify({ key: b64('/r/a') }));
      assert.match(JSON.stringify((await anon.waitMessages(1))[0]), /user name is empty/, `port ${at}`);
    }
  });
});
