// The one crash policy (issue 14), as etcd-io/raft panics: a broken invariant (in Raft, the Ready
// driver, the rings, the WAL) or the loss of a worker that holds state ends the process at once with
// one fatal log line and a non-zero exit. Nothing is drained or answered after it: a member whose
// invariants broke must not acknowledge anything more. Expected errors (bad input, no leader, ...)
// are EtcdErrors with etcd's codes and never come here.
import type { Logger } from './log';

/** Exit status of a fatal error: 2, as a Go panic's (etcd's own). */
export const FATAL_EXIT_CODE = 2;

/** Logs `msg` with the error at level fatal and exits the process now. Never returns. */
export function fatal(log: Logger, msg: string, err: unknown): never {
  const error = err instanceof Error ? (err.stack ?? err.message) : String(err);
  log.fatal(msg, { error });
  process.exit(FATAL_EXIT_CODE);
}
