// The audit log's parts without a server: the file output rotates by size (path.1 newest, at most
// max-backups kept, no line split across files); batch mode never holds more than its buffer and
// counts what it drops; blocking mode resolves only once the line is in the file; keys are printed as
// zap prints them in etcd's logs; the header revision and request fields are read from the protobuf
// bytes, and a password field is never printed.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AuditLog, AuditLogOptions } from '../../src/main/audit/audit_log';
import { headerRevision, requestFields, zapString } from '../../src/main/audit/auditor';
import { etcdserverpb } from '../../src/shared/gen/etcd';
import { limitProblems, limits } from '../../src/shared/limits';

describe('audit log', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-unit-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const open = (o: Partial<AuditLogOptions>, dropped: number[] = []): Promise<AuditLog> =>
    AuditLog.open({
      path: path.join(dir, 'audit.log'),
      maxSizeBytes: 0,
      maxBackups: 3,
      mode: 'batch',
      onDropped: (n) => dropped.push(n),
      onError: (e) => assert.fail(e),
      ...o,
    });

  const line = (i: number): string => `{"n":"${String(i).padStart(5, '0')}","pad":"${'x'.repeat(77)}"}\n`; // 100 bytes

  it('rotates before a write would pass max-size: path.1 is the newest, max-backups are kept', async () => {
    const a = await open({ maxSizeBytes: 1000, maxBackups: 2, mode: 'blocking' });
    for (let i = 0; i < 45; i++) await a.appendAndWait(line(i));
    await a.close();
    const read = (f: string): string[] => fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['audit.log', 'audit.log.1', 'audit.log.2']);
    for (const f of ['audit.log', 'audit.log.1', 'audit.log.2']) assert.ok(fs.statSync(path.join(dir, f)).size <= 1000, f);
    // 10 lines per file: 0..19 were rotated away, 20..29 in .2, 30..39 in .1, 40..44 in the file.
    assert.deepEqual(
      read('audit.log.2'),
      Array.from({ length: 10 }, (_, i) => line(20 + i).trimEnd()),
    );
    assert.deepEqual(
      read('audit.log.1'),
      Array.from({ length: 10 }, (_, i) => line(30 + i).trimEnd()),
    );
    assert.deepEqual(
      read('audit.log'),
      Array.from({ length: 5 }, (_, i) => line(40 + i).trimEnd()),
    );
    for (const f of ['audit.log', 'audit.log.1', 'audit.log.2']) for (const l of read(f)) JSON.parse(l); // whole lines only
  });

  it('max-backups 0 keeps no rotated file', async () => {
    const a = await open({ maxSizeBytes: 500, maxBackups: 0, mode: 'blocking' });
    for (let i = 0; i < 12; i++) await a.appendAndWait(line(i));
    await a.close();
    assert.deepEqual(fs.readdirSync(dir), ['audit.log']);
    assert.equal(fs.readFileSync(path.join(dir, 'audit.log'), 'utf8'), line(10) + line(11));
  });

  it('batch mode: bounded buffer, drops counted, the rest written in order by close()', async () => {
    const dropped: number[] = [];
    const a = await open({ bufferBytesMax: 1000, flushBytes: 400, flushIntervalMs: 10_000 }, dropped);
    // Synchronously (no write can finish in between): 10 lines fill the buffer, 5 more are dropped.
    for (let i = 0; i < 15; i++) a.append(line(i));
    assert.ok(a.pendingBytes <= 1000);
    assert.equal(
      dropped.reduce((x, y) => x + y, 0),
      5,
    );
    await a.close();
    const got = fs.readFileSync(path.join(dir, 'audit.log'), 'utf8');
    assert.equal(got, Array.from({ length: 10 }, (_, i) => line(i)).join(''));
  });

  it('batch mode: written after the flush interval without reaching flush bytes', async () => {
    const a = await open({ flushIntervalMs: 20 });
    a.append(line(1));
    assert.equal(fs.readFileSync(path.join(dir, 'audit.log'), 'utf8'), '');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(fs.readFileSync(path.join(dir, 'audit.log'), 'utf8'), line(1));
    await a.close();
  });

  it('blocking mode: the promise resolves once the line is in the file', async () => {
    const a = await open({ mode: 'blocking' });
    const p = [a.appendAndWait(line(1)), a.appendAndWait(line(2))];
    await p[0];
    assert.ok(fs.readFileSync(path.join(dir, 'audit.log'), 'utf8').startsWith(line(1)));
    await p[1];
    assert.equal(fs.readFileSync(path.join(dir, 'audit.log'), 'utf8'), line(1) + line(2));
    await a.close();
  });

  it('blocking mode: a full buffer refuses the line and counts it, instead of growing', async () => {
    const dropped: number[] = [];
    const a = await open({ mode: 'blocking', bufferBytesMax: 300 }, dropped);
    // Synchronously: the first write takes what is queued only once the loop runs; 3 lines fill 300 bytes.
    const ps = Array.from({ length: 4 }, (_, i) =>
      a.appendAndWait(line(i)).then(
        () => 'ok',
        (e: Error) => e.message,
      ),
    );
    assert.deepEqual(await Promise.all(ps), ['ok', 'ok', 'ok', 'etcd-ts: audit log buffer full']);
    assert.deepEqual(dropped, [1]);
    await a.close();
  });

  it('the limits keep their relations', () => {
    assert.deepEqual(limitProblems(limits), []);
    assert.deepEqual(limitProblems({ ...limits, auditBufferBytesMax: limits.auditFlushBytes }), ['the audit buffer holds several flushes']);
  });
});

describe('audit line fields', () => {
  it('prints keys as zap does in etcd logs', () => {
    const z = (bytes: number[]): string => zapString(Uint8Array.from(bytes));
    assert.equal(zapString(Buffer.from('/agents/7')), '"/agents/7"');
    assert.equal(zapString(Buffer.from('a"b\\c')), '"a\\"b\\\\c"');
    assert.equal(z([0x0a, 0x0d, 0x09, 0x00, 0x1f, 0x08, 0x7f]), '"\\n\\r\\t\\u0000\\u001f\\u0008\x7f"');
    assert.equal(zapString(Buffer.from('héllo €')), '"héllo €"');
    // Invalid UTF-8: each bad byte is \ufffd, as Go's DecodeRune (a cut 3-byte sequence is two).
    assert.equal(z([0x66, 0xff, 0x67]), '"f\\ufffdg"');
    assert.equal(z([0xe2, 0x82]), '"\\ufffd\\ufffd"');
    assert.equal(z([0xed, 0xa0, 0x80]), '"\\ufffd\\ufffd\\ufffd"'); // a surrogate
    assert.equal(z([0xc0, 0x80]), '"\\ufffd\\ufffd"'); // overlong
    assert.equal(z([0xef, 0xbf, 0xbd]), '"\ufffd"'); // a real U+FFFD stays as is
  });

  it('reads the response header revision', () => {
    const put = etcdserverpb.PutResponse.encode({ header: { clusterId: 1, memberId: 2, revision: 123456789012, raftTerm: 4 } }).finish();
    assert.equal(headerRevision(put), 123456789012);
    assert.equal(headerRevision(etcdserverpb.DefragmentResponse.encode({}).finish()), 0);
  });

  it('shows keys and names, never a password', () => {
    const range = etcdserverpb.RangeRequest.encode({ key: Buffer.from('a'), rangeEnd: Buffer.from('b'), limit: 5 }).finish();
    assert.equal(requestFields('/etcdserverpb.KV/Range', range), ',"key":"a","range_end":"b"');
    const put = etcdserverpb.PutRequest.encode({ key: Buffer.from('k'), value: Buffer.from('v') }).finish();
    assert.equal(requestFields('/etcdserverpb.KV/Put', put), ',"key":"k"');
    const add = etcdserverpb.AuthUserAddRequest.encode({ name: 'bob', password: 's3cret-pw' }).finish();
    assert.equal(requestFields('/etcdserverpb.Auth/UserAdd', add), ',"target_user":"bob"');
    const auth = etcdserverpb.AuthenticateRequest.encode({ name: 'bob', password: 's3cret-pw' }).finish();
    assert.equal(requestFields('/etcdserverpb.Auth/Authenticate', auth), ',"target_user":"bob"');
    const chg = etcdserverpb.AuthUserChangePasswordRequest.encode({ name: 'bob', password: 's3cret-pw' }).finish();
    assert.equal(requestFields('/etcdserverpb.Auth/UserChangePassword', chg), ',"target_user":"bob"');
    const grant = etcdserverpb.AuthRoleGrantPermissionRequest.encode({
      name: 'agents',
      perm: { permType: 2, key: Buffer.from('/agents/'), rangeEnd: Buffer.from('/agents0') },
    }).finish();
    assert.equal(
      requestFields('/etcdserverpb.Auth/RoleGrantPermission', grant),
      ',"target_role":"agents","perm_type":"READWRITE","key":"/agents/","range_end":"/agents0"',
    );
    const long = etcdserverpb.PutRequest.encode({ key: Buffer.alloc(limits.auditKeyBytesMax + 1, 0x61) }).finish();
    assert.equal(requestFields('/etcdserverpb.KV/Put', long), `,"key":"${'a'.repeat(limits.auditKeyBytesMax)}","key_truncated":true`);
  });

  it('shows what a Txn compares and touches, nested txns included, up to a bound', () => {
    const b = (s: string): Buffer => Buffer.from(s);
    const txn = etcdserverpb.TxnRequest.encode({
      compare: [
        { key: b('c1'), target: 2, result: 0, value: b('secret-value') },
        { key: b('c2'), rangeEnd: b('c3'), target: 1 },
      ],
      success: [
        { requestPut: { key: b('p1'), value: b('v') } },
        { requestTxn: { success: [{ requestDeleteRange: { key: b('d1'), rangeEnd: b('d2') } }] } },
      ],
      failure: [{ requestRange: { key: b('r1') } }],
    }).finish();
    assert.equal(
      requestFields('/etcdserverpb.KV/Txn', txn),
      ',"txn":[{"op":"compare","key":"c1"},{"op":"compare","key":"c2","range_end":"c3"},{"op":"put","key":"p1"},' +
        '{"op":"delete_range","key":"d1","range_end":"d2"},{"op":"range","key":"r1"}]',
    );
    const many = etcdserverpb.TxnRequest.encode({
      success: Array.from({ length: limits.auditTxnOpsMax + 3 }, (_, i) => ({ requestPut: { key: b(`k${i}`), value: b('v') } })),
    }).finish();
    const line = requestFields('/etcdserverpb.KV/Txn', many);
    assert.equal((line.match(/"op":"put"/g) ?? []).length, limits.auditTxnOpsMax);
    assert.ok(line.endsWith(',"txn_truncated":true'));
    assert.equal(requestFields('/etcdserverpb.KV/Txn', etcdserverpb.TxnRequest.encode({}).finish()), ',"txn":[]');
  });
});
