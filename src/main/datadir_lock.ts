// One process per data dir. etcd holds an flock on its WAL; Node has no flock, so we keep a
// lock file with our pid, created exclusively. A lock left by a dead process (kill -9) is stale
// and taken over; a lock held by a live process is a clear start-up error.
import * as fs from 'node:fs';
import * as path from 'node:path';

export class DataDirLockedError extends Error {}

export function lockDataDir(memberDir: string): () => void {
  const file = path.join(memberDir, 'LOCK');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx', 0o600);
      fs.writeSync(fd, String(process.pid));
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      return () => {
        try {
          if (fs.readFileSync(file, 'utf8') === String(process.pid)) fs.unlinkSync(file);
        } catch { /* already gone */ }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
      throw new DataDirLockedError(`data dir ${path.dirname(memberDir)} is in use by another etcd-ts process (pid ${pid})`);
    }
    fs.rmSync(file, { force: true }); // stale: its owner is gone
  }
  throw new DataDirLockedError(`could not lock data dir ${path.dirname(memberDir)}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
