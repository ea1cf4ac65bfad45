// Which LMDB environment directory is the member's store. Defragment (src/main/defrag.ts) writes a
// compacted copy into a new directory and switches every thread to it while the member serves, so the
// store's directory changes at run time:
//
//   member/lmdb          generation 0 (what a fresh member creates)
//   member/lmdb-<n>      generation n, written by the n-th defragmentation (no dot: lmdb-js takes a
//                        path with an extension for a data file, not an environment directory)
//   member/lmdb.current  the name of the current generation's directory ("lmdb-3"); absent: "lmdb"
//
// The pointer is replaced atomically (write, fsync, rename, fsync the directory) only after the new
// environment holds everything applied and is synced, so a crash at any point leaves a pointer to a
// complete store; directories of other generations are leftovers, removed at start.
import * as fs from 'node:fs';
import * as path from 'node:path';

const BASE = 'lmdb';
const POINTER = 'lmdb.current';

/** The current store directory under memberDir. */
export function currentLmdbDir(memberDir: string): string {
  let name = BASE;
  try {
    name = fs.readFileSync(path.join(memberDir, POINTER), 'utf8').trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (name !== BASE && !/^lmdb-\d+$/.test(name))
    throw new Error(`${path.join(memberDir, POINTER)}: unexpected store name ${JSON.stringify(name)}`);
  return path.join(memberDir, name);
}

/** The directory the next defragmentation writes into (empty: a leftover of an interrupted one is removed). */
export function nextLmdbDir(memberDir: string): string {
  const cur = path.basename(currentLmdbDir(memberDir));
  const n = cur === BASE ? 1 : Number(cur.slice(BASE.length + 1)) + 1;
  const dir = path.join(memberDir, `${BASE}-${n}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { mode: 0o700 });
  return dir;
}

/** Makes dir (a sibling generation, already synced) the current store, durably. */
export function setCurrentLmdbDir(memberDir: string, dir: string): void {
  const tmp = path.join(memberDir, `${POINTER}.tmp`);
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, path.basename(dir));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, path.join(memberDir, POINTER));
  const dfd = fs.openSync(memberDir, 'r');
  try {
    fs.fsyncSync(dfd);
  } finally {
    fs.closeSync(dfd);
  }
}

/** Removes every store generation under memberDir but the current one (leftovers). */
export function removeOtherGenerations(memberDir: string): void {
  const keep = path.basename(currentLmdbDir(memberDir));
  for (const name of fs.readdirSync(memberDir)) {
    if (name !== keep && (name === BASE || /^lmdb-\d+$/.test(name)))
      fs.rmSync(path.join(memberDir, name), { recursive: true, force: true });
  }
  fs.rmSync(path.join(memberDir, `${POINTER}.tmp`), { force: true });
  fs.rmSync(path.join(memberDir, ACTIVE), { force: true });
  fs.rmSync(path.join(memberDir, `${ACTIVE}.tmp`), { force: true });
}

const ACTIVE = 'lmdb.active';

/**
 * Records dir as the store every thread must read from now on (the main thread, when the apply worker
 * has switched to it). Not synced: only running threads read it (the watch worker); a restart goes by
 * lmdb.current.
 */
export function setActiveLmdbDir(memberDir: string, dir: string): void {
  const tmp = path.join(memberDir, `${ACTIVE}.tmp`);
  fs.writeFileSync(tmp, path.basename(dir));
  fs.renameSync(tmp, path.join(memberDir, ACTIVE));
}

/** The store the apply worker writes to, as the main thread last recorded it (else lmdb.current). */
export function activeLmdbDir(memberDir: string): string {
  try {
    const name = fs.readFileSync(path.join(memberDir, ACTIVE), 'utf8').trim();
    if (/^lmdb-\d+$/.test(name)) return path.join(memberDir, name);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return currentLmdbDir(memberDir);
}

/** The generation number of a store directory (lmdb: 0). */
export function generationOf(dir: string): number {
  const name = path.basename(dir);
  return name === BASE ? 0 : Number(name.slice(BASE.length + 1));
}
