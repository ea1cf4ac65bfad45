// bench/write_cost.ts: system calls per thread from an `strace -f` log, and the markdown table.
import { strict as assert } from 'node:assert';
import { markdown, parseStraceLog } from '../../bench/write_cost';

describe('bench write_cost', () => {
  it('counts each call once per thread: unfinished calls count, their resumed lines, signals and exits do not', () => {
    const log = [
      '101   futex(0x7f, FUTEX_WAIT_PRIVATE, 0, NULL <unfinished ...>',
      '102   pwrite64(12, ""..., 300, 4096) = 300',
      '101   <... futex resumed>)              = 0',
      '102   futex(0x7f, FUTEX_WAKE_PRIVATE, 1) = 1',
      '102   pwrite64(12, ""..., 300, 4396) = 300',
      '101   --- SIGURG {si_signo=SIGURG} ---',
      '103   +++ exited with 0 +++',
      '101   epoll_pwait(3, [], 1024, 0, NULL, 8) = 0',
    ].join('\n');
    const m = parseStraceLog(log);
    assert.deepEqual([...m.keys()].sort(), ['101', '102']);
    assert.deepEqual(Object.fromEntries(m.get('101')!), { futex: 1, epoll_pwait: 1 });
    assert.deepEqual(Object.fromEntries(m.get('102')!), { pwrite64: 2, futex: 1 });
  });

  it('puts etcd and etcd-ts of the same members, clients and role next to each other', () => {
    const role = (r: string, futex: number) => ({
      role: r,
      committed: 100,
      committedTraced: 50,
      reqPerSec: 1000,
      reqPerSecTraced: 400,
      syscallsPerPut: { futex },
      perPut: {
        ctxVoluntary: 2,
        ctxInvoluntary: 0.5,
        cpuUs: 300,
        syscalls: 20,
        futex,
        write: 1,
        writev: 0,
        sendmsg: 0,
        sendto: 0,
        fsync: 0,
        fdatasync: 1,
        pwrite64: 0,
      },
      threads: [{ tid: '7 (main)', name: 'etcd', volPerPut: 1, involPerPut: 0, cpuUsPerPut: 100, syscallsPerPut: { futex } }],
    });
    const md = markdown([
      { server: 'etcd', version: '3.4', members: 3, clients: 1, roles: [role('leader', 3), role('follower', 4)] },
      { server: 'etcd-ts', version: '3.4', members: 3, clients: 1, roles: [role('leader', 5), role('follower', 6)] },
    ]);
    const rows = md.split('\n').filter((l) => /^\| 3 \| 1 \|/.test(l));
    assert.deepEqual(
      rows.map((l) =>
        l
          .split('|')
          .slice(3, 6)
          .map((c) => c.trim()),
      ),
      [
        ['leader', 'etcd', '2.00 + 0.50'],
        ['leader', 'etcd-ts', '2.00 + 0.50'],
        ['follower', 'etcd', '2.00 + 0.50'],
        ['follower', 'etcd-ts', '2.00 + 0.50'],
      ],
    );
    assert.match(rows[1], /\| 5\.00 \|/);
    assert.match(
      md,
      /etcd, 3 members, 1 client, leader \(1000 Put\/s untraced, 400 traced\): etcd 7 \(main\): 1\.00\+0\.00 sw, 100 µs, futex 3\.00/,
    );
  });
});
