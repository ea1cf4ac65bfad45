// A task of the bcrypt pool (piscina; src/workers/bcrypt.ts): hashing a new password or checking one
// at login costs tens of milliseconds of CPU at etcd's default cost 10, so it runs on worker threads,
// one per core, never on the main thread's event loop.
export type BcryptTask = { op: 'hash'; password: string; cost: number } | { op: 'compare'; password: string; hash: string };

/** A hash for 'hash', whether the password matches for 'compare'. */
export type BcryptResult = string | boolean;
