// The member's worker threads: starting them, and what happens when one dies (the crash policy,
// src/main/fatal.ts). The apply and compaction workers hold state that cannot be rebuilt behind the
// main thread's back (the apply worker's position in the log, a compaction in progress), so losing
// either ends the member. The watch worker is the one that may be restarted: WatchService
// (src/main/watch/watch_service.ts) does it, with fresh rings, and its clients resume from revisions
// (test/integration/watch_crash.test.ts).
import * as path from 'node:path';
import { ResourceLimits, Worker } from 'node:worker_threads';
import { Config } from '../config';
import { fatal } from '../fatal';
import { Logger } from '../log';
import { limits } from '../../shared/limits';

/** See limits.watchWorkerYoungGenerationMb. */
export const WATCH_WORKER_LIMITS: ResourceLimits = { maxYoungGenerationSizeMb: limits.watchWorkerYoungGenerationMb };

/** etcd 3.4: a positive --experimental-watch-progress-notify-interval below 100ms is raised to 100ms,
 * with a warning; 0 keeps the default (10 minutes). */
export function progressNotifyIntervalMs(cfg: Config, log: Logger): number {
  const ms = cfg.watchProgressNotifyIntervalMs;
  if (ms <= 0) return limits.watchProgressNotifyIntervalMs;
  if (ms >= limits.watchProgressNotifyIntervalMinMs) return ms;
  log.warn('adjusting watch progress notify interval to minimum period', {
    'min-watch-progress-notify-interval': `${limits.watchProgressNotifyIntervalMinMs}ms`,
  });
  return limits.watchProgressNotifyIntervalMinMs;
}

/** Starts src/workers/<file> and resolves once it reports ready (with its applied index, if any). */
export function startWorker(
  file: string,
  data: object,
  resourceLimits?: ResourceLimits,
): Promise<{ worker: Worker; ready: { appliedIndex: number } }> {
  const worker = new Worker(path.join(__dirname, '../../workers', file), { workerData: data, resourceLimits });
  return new Promise((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (m: { ready?: boolean; appliedIndex?: number }) => {
      worker.off('error', reject);
      resolve({ worker, ready: { appliedIndex: m.appliedIndex ?? 0 } });
    });
  });
}

/**
 * A worker whose death ends the member: an uncaught error or an exit that the member did not ask
 * for is fatal. terminate() is the only expected way out.
 */
export class EssentialWorker {
  readonly worker: Worker;
  #terminating = false;

  constructor(worker: Worker, name: string, log: Logger) {
    this.worker = worker;
    worker.on('error', (e) => fatal(log, `${name} worker failed`, e));
    worker.on('exit', (code) => {
      if (!this.#terminating) fatal(log, `${name} worker exited`, new Error(`exit code ${code}`));
    });
  }

  async terminate(): Promise<void> {
    this.#terminating = true;
    await this.worker.terminate();
  }
}
