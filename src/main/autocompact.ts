// --auto-compaction-mode / --auto-compaction-retention, as etcd 3.4 interprets them:
//   revision: every 5 minutes, compact to (current revision - retention).
//   periodic: keep `retention` of history: sample the revision every min(retention, 1h)/10
//             and compact to the newest sample at least `retention` old.
// Compactions go through Raft like a client's KV.Compact. Retention 0 disables it.
import { Config, parseRetentionMs } from './config';
import { Logger } from './log';
import { RaftNode } from './node/node';

interface Compactor {
  compactTo(revision: number): Promise<unknown>;
}

const REVISION_MODE_INTERVAL_MS = 5 * 60 * 1000;

export function startAutoCompaction(cfg: Config, log: Logger, node: RaftNode, server: Compactor): () => void {
  const retention = cfg.autoCompactionRetention;
  if (retention === '0' || retention === '') return () => {};
  const run = (rev: number): void => {
    const st = node.status();
    if (rev <= st.compactRevision || rev > st.revision) return;
    server.compactTo(rev).then(
      () => log.info('auto compaction done', { revision: rev }),
      (e: Error) => log.warn('auto compaction failed', { revision: rev, error: e.message }),
    );
  };
  if (cfg.autoCompactionMode === 'revision') {
    const keep = Number(retention);
    const t = setInterval(() => run(node.status().revision - keep), REVISION_MODE_INTERVAL_MS);
    t.unref();
    return () => clearInterval(t);
  }
  const retentionMs = parseRetentionMs(retention) ?? 0;
  const stepMs = Math.max(1000, Math.floor(Math.min(retentionMs, 3_600_000) / 10));
  const samples: Array<{ at: number; rev: number }> = [];
  const t = setInterval(() => {
    const now = Date.now();
    samples.push({ at: now, rev: node.status().revision });
    let target = -1;
    while (samples.length > 0 && now - samples[0].at >= retentionMs) target = (samples.shift() as { rev: number }).rev;
    if (target > 0) run(target);
  }, stepMs);
  t.unref();
  return () => clearInterval(t);
}
