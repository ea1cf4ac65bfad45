// The `etcd3` npm client (Microsoft's, over @grpc/grpc-js) against the target server (etcd-ts;
// ETCD_TS_TARGET=etcd validates the test on real etcd): put/get, getAll with prefix, sort, limit,
// keys and count, delete with previous values, if/then/else transactions on Value, Version, Create
// and Mod, revision-based and serializable reads, and the errors a client sees for a future and a
// compacted revision. Each step asserts exact values and revisions on a fresh single-member server.
//
//   npx tsc -p . && npx mocha dist/test/integration/etcd3_client.test.js
import * as assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { etcdctl } from '../support/etcdctl';
import { cleanupServersAfter, Server, startKind, targetKind } from '../support/procs';

describe('etcd3 npm client', function () {
  this.timeout(60_000);
  let s: Server | undefined;
  let client: Etcd3 | undefined;
  cleanupServersAfter(() => [s]);

  before(async function () {
    s = await startKind(targetKind());
    client = new Etcd3({ hosts: s.clientUrl, dialTimeout: 5_000 });
  });

  after(() => { client?.close(); });

  const c = () => client!;

  it('put and get', async () => {
    const r = await c().put('foo').value('bar');                                         // rev 2
    assert.equal(r.header.revision, '2');
    assert.equal(await c().get('foo').string(), 'bar');
    assert.equal(await c().get('missing').string(), null);
    assert.equal(await c().get('foo').exists(), true);
    const prev = await c().put('foo').value('bar2').getPrevious();                     // rev 3
    assert.equal(prev.value.toString(), 'bar');
    assert.equal(prev.header.revision, '3');
    const kv = (await c().get('foo').exec()).kvs[0];
    assert.deepEqual([kv.create_revision, kv.mod_revision, kv.version], ['2', '3', '2']);
  });

  it('getAll with prefix, sort, limit, keys, count', async () => {
    await c().put('fc').value('3');                                                      // rev 4
    await c().put('fa').value('1');                                                      // rev 5
    await c().put('fb').value('2');                                                      // rev 6
    await c().put('g').value('other');                                                   // rev 7
    assert.deepEqual(await c().getAll().prefix('f').strings(), { fa: '1', fb: '2', fc: '3', foo: 'bar2' });
    assert.deepEqual(await c().getAll().prefix('f').keys(), ['fa', 'fb', 'fc', 'foo']);
    assert.equal(await c().getAll().prefix('f').count(), 4);
    assert.equal(await c().getAll().all().count(), 5);
    assert.deepEqual(await c().getAll().prefix('f').sort('Key', 'Descend').keys(), ['foo', 'fc', 'fb', 'fa']);
    assert.deepEqual(await c().getAll().prefix('f').sort('Mod', 'Ascend').keys(), ['foo', 'fc', 'fa', 'fb']);
    assert.deepEqual(await c().getAll().prefix('f').sort('Create', 'Descend').limit(2).keys(), ['fb', 'fa']);
    assert.deepEqual(await c().getAll().prefix('f').sort('Version', 'Descend').limit(1).keys(), ['foo']);
    assert.deepEqual(await c().getAll().prefix('f').sort('Value', 'Ascend').keys(), ['fa', 'fb', 'fc', 'foo']);
    const r = await c().getAll().prefix('f').limit(2).exec();
    assert.equal(r.more, true);
    assert.equal(r.count, '4');
    assert.equal(r.kvs.length, 2);
    assert.equal(r.header.revision, '7');
    assert.deepEqual(await c().getAll().inRange({ start: 'fb', end: 'g' }).keys(), ['fb', 'fc', 'foo']);
  });

  it('revision-based and serializable reads', async () => {
    assert.equal(await c().get('foo').revision(2).string(), 'bar');
    assert.equal(await c().get('foo').revision(3).string(), 'bar2');
    assert.equal(await c().get('fa').revision(4).string(), null);
    assert.deepEqual(await c().getAll().prefix('f').revision(5).keys(), ['fa', 'fc', 'foo']);
    assert.equal(await c().get('foo').serializable(true).string(), 'bar2');
    await assert.rejects(c().get('foo').revision(1000).string(), /required revision is a future revision/);
  });

  it('delete', async () => {
    const prev = await c().delete().key('fa').getPrevious();                            // rev 8
    assert.deepEqual(prev.map((kv) => [kv.key.toString(), kv.value.toString()]), [['fa', '1']]);
    const r = await c().delete().prefix('f');                                            // rev 9
    assert.equal(r.deleted, '3');
    assert.equal(r.header.revision, '9');
    assert.equal(await c().getAll().prefix('f').count(), 0);
    const none = await c().delete().key('nothing');
    assert.equal(none.deleted, '0');
    assert.equal(none.header.revision, '9', 'deleting nothing does not bump the revision');
  });

  it('if/then/else transactions', async () => {
    await c().put('k').value('v');                                                       // rev 10
    const t1 = await c().if('k', 'Value', '==', 'v')
      .then(c().put('k').value('v2'), c().get('g'))                                      // rev 11
      .else(c().put('never').value('x'))
      .commit();
    assert.equal(t1.succeeded, true);
    assert.equal(t1.header.revision, '11');
    assert.equal(t1.responses.length, 2);
    assert.equal(t1.responses[1].response_range!.kvs[0].value.toString(), 'other');
    assert.equal(await c().get('k').string(), 'v2');

    const t2 = await c().if('k', 'Value', '==', 'v')
      .then(c().put('never').value('x'))
      .else(c().put('k').value('v3'))                                                    // rev 12
      .commit();
    assert.equal(t2.succeeded, false);
    assert.equal(await c().get('never').string(), null);
    assert.equal(await c().get('k').string(), 'v3');

    const t3 = await c().if('k', 'Version', '==', 3).and('k', 'Create', '==', 10).and('k', 'Mod', '>', 11)
      .then(c().delete().key('k')).commit();                                             // rev 13
    assert.equal(t3.succeeded, true);
    assert.equal(t3.responses[0].response_delete_range!.deleted, '1');

    const t4 = await c().if('k', 'Version', '==', 0).and('k', 'Mod', '<', 1)
      .then(c().put('k').value('again')).commit();                                       // rev 14
    assert.equal(t4.succeeded, true);
    assert.equal(t4.header.revision, '14');

    await assert.rejects(c().if('k', 'Value', '==', 'again')
      .then(c().put('d').value('1'), c().put('d').value('2')).commit(), /duplicate key given in txn request/);
  });

  it('reads at a compacted revision fail', async () => {
    const r = await etcdctl(s!.endpoint, ['compact', '10']);
    assert.equal(r.code, 0, r.stderr);
    await assert.rejects(c().get('k').revision(9).string(), /required revision has been compacted/);
    assert.equal(await c().get('k').revision(10).string(), 'v');
    assert.equal(await c().get('k').string(), 'again');
  });
});
