// One process per data dir, held by the kernel. etcd holds an flock on its WAL; Node has no flock, so
// the lock is a Unix socket in Linux's abstract namespace named after the data dir's real path: bind()
// fails with EADDRINUSE while another process holds the name, and the kernel frees it the moment the
// holder's sockets close, which includes every way a process dies (kill -9 too), whatever its PID and
// before it is even reaped. Nothing is written to the data dir, so no stale file can block a start.
// The one limit: abstract names are per network namespace, so two processes in different namespaces
// are not kept apart (members started in their own namespaces must use their own data dirs).
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

import { StartupError } from './startup_error';

export class DataDirLockedError extends StartupError {}

/** The abstract socket name that locks a data dir (at most 107 bytes, a leading NUL). */
export function lockName(memberDir: string): string {
  const real = fs.realpathSync(memberDir);
  return `\0etcd-ts-data-dir-lock:${createHash('sha256').update(real).digest('hex')}`;
}

/** Locks the member dir for this process; resolves with the function that releases it. */
export async function lockDataDir(memberDir: string): Promise<() => void> {
  const server = net.createServer((sock) => sock.destroy()); // nobody needs to connect
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(lockName(memberDir), () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new DataDirLockedError(`data dir ${path.dirname(memberDir)} is in use by another etcd-ts process`);
    }
    throw e;
  }
  server.unref(); // the lock alone does not keep the process alive
  // A LOCK file from versions that locked with a pid file means nothing now.
  fs.rmSync(path.join(memberDir, 'LOCK'), { force: true });
  return () => server.close();
}
