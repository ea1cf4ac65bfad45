// Authentication through the `etcd3` npm client and etcdctl against a single member (etcd-ts;
// ETCD_TS_TARGET=etcd runs the same steps on etcd 3.4): the client authenticates with a user and
// password (simple token in the `token` metadata), may read and write inside its role's prefix and
// is refused outside it (reads, writes, txn branches, watches), a wrong password is refused, a
// token ends when its user is deleted, Lock works under auth with the caller's permissions, and the
// auth store survives a restart.
//
//   npx tsc -p . && npx mocha --no-config --exit dist/test/integration/auth_client.test.js
import * as assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { etcdctl } from '../support/etcdctl';
import { cleanupServersAfter, Server, startKind, targetKind } from '../support/procs';

async function ctl(s: Server, ...args: string[]): Promise<string> {
  const r = await etcdctl(s.endpoint, args);
  if (r.code !== 0) throw new Error(`etcdctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function rejects(p: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.match(e.message, message);
    return true;
  });
}

describe('auth with the etcd3 client and etcdctl', function () {
  this.timeout(60_000);
  let s: Server | undefined;
  const clients: Etcd3[] = [];
  cleanupServersAfter(() => [s]);
  after(() => {
    for (const c of clients) c.close();
  });

  const client = (username: string, password: string): Etcd3 => {
    const c = new Etcd3({ hosts: s!.clientUrl, auth: { username, password }, dialTimeout: 5_000 });
    clients.push(c);
    return c;
  };

  before(async function () {
    // GET /health only: etcdctl's health check (a KV read without a user) fails once auth is on, on etcd too.
    s = await startKind(targetKind(), { readyProbe: 'http-only' });
    await ctl(s, 'user', 'add', 'root:rootpw');
    await ctl(s, 'user', 'grant-role', 'root', 'root');
    await ctl(s, 'user', 'add', 'agent-7:secret');
    await ctl(s, 'role', 'add', 'agents');
    await ctl(s, 'role', 'grant-permission', 'agents', '--prefix=true', 'readwrite', '/agents/');
    await ctl(s, 'user', 'grant-role', 'agent-7', 'agents');
    await ctl(s, 'put', '/config/db', 'postgres');
    await ctl(s, 'auth', 'enable');
  });

  it('reads and writes inside the permission, refused outside it', async () => {
    const c = client('agent-7', 'secret');
    await c.put('/agents/7').value('up');
    assert.equal(await c.get('/agents/7').string(), 'up');
    assert.deepEqual(await c.getAll().prefix('/agents/').strings(), { '/agents/7': 'up' });
    await rejects(c.get('/config/db').string(), /permission denied/);
    await rejects(c.put('/config/db').value('x').exec(), /permission denied/);
    await rejects(c.getAll().prefix('/agents').strings(), /permission denied/);
    await rejects(c.delete().key('/config/db').exec(), /permission denied/);
    await rejects(c.if('/agents/7', 'Value', '==', 'up').then(c.put('/config/db').value('x')).commit(), /permission denied/);
    await rejects(c.if('/config/db', 'Value', '==', 'x').then(c.put('/agents/8').value('x')).commit(), /permission denied/);
    const t = await c.if('/agents/7', 'Value', '==', 'up').then(c.put('/agents/8').value('x')).commit();
    assert.equal(t.succeeded, true);
  });

  it('a wrong password and no credentials are refused with etcd errors', async () => {
    await rejects(client('agent-7', 'wrong').get('/agents/7').string(), /authentication failed, invalid user ID or password/);
    const anon = new Etcd3({ hosts: s!.clientUrl, dialTimeout: 5_000 });
    clients.push(anon);
    await rejects(anon.get('/agents/7').string(), /user name is empty/);
  });

  it('a watch outside the permission is refused; inside it sees events', async () => {
    const c = client('agent-7', 'secret');
    const w = await c.watch().key('/agents/9').create();
    const got = new Promise<string>((resolve) => w.on('put', (kv) => resolve(kv.value.toString())));
    await c.put('/agents/9').value('nine');
    assert.equal(await got, 'nine');
    await w.cancel();
    const r = await etcdctl(s!.endpoint, ['--user=agent-7:secret', 'watch', '/config/db'], { timeoutMs: 5_000 });
    assert.match(r.stderr + r.stdout, /permission denied/);
  });

  it('Lock works under auth inside the permission and is refused outside it', async () => {
    const ok = await etcdctl(s!.endpoint, ['--user=agent-7:secret', 'lock', '/agents/lock1', 'echo', 'held']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /held/);
    const denied = await etcdctl(s!.endpoint, ['--user=agent-7:secret', 'lock', '/config/lock1', 'echo', 'held'], { timeoutMs: 10_000 });
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /permission denied/);
  });

  it("a token ends when its user is deleted; root's changes apply at once", async () => {
    const root = client('root', 'rootpw');
    const agent = client('agent-7', 'secret');
    assert.equal(await agent.get('/agents/7').string(), 'up');
    await root.user('agent-7').delete();
    await rejects(agent.get('/agents/7').string(), /invalid auth token|authentication failed/);
    await root.user('agent-7').create('secret2');
    await root.user('agent-7').addRole('agents');
    assert.equal(await client('agent-7', 'secret2').get('/agents/7').string(), 'up');
  });

  it('the auth store survives a restart', async () => {
    await s!.restart();
    const r = await etcdctl(s!.endpoint, ['get', 'foo']);
    assert.match(r.stderr, /user name is empty/);
    assert.equal(await ctl(s!, '--user=agent-7:secret2', 'get', '/agents/7', '--print-value-only'), 'up\n');
    assert.equal(await ctl(s!, '--user=root:rootpw', 'user', 'list'), 'agent-7\nroot\n');
  });
});
