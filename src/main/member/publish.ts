// Publishing this member's attributes through the log, as etcd does at every start.
import { Config } from '../config';
import { Logger } from '../log';
import { RaftNode } from '../node/node';
import { RequestKind } from '../../shared/entry';
import { EtcdError } from '../../shared/errors';
import { ETCD_CLUSTER_VERSION } from '../../shared/version';
import type { MvccStore } from '../../shared/mvcc/store';
import type { Identity } from './identity';

/**
 * As etcd at every start: publish this member's attributes (name, client URLs) through the log,
 * and, as the leader of a cluster without one, set the cluster version. Client traffic is served
 * only after this, like etcd's ReadyNotify.
 */
export async function publish(node: RaftNode, store: MvccStore, cfg: Config, ident: Identity, log: Logger): Promise<void> {
  const attrs = { memberIdHex: BigInt(ident.memberId).toString(16), name: cfg.name, clientURLs: cfg.advertiseClientUrls };
  for (let attempt = 0; ; attempt++) {
    try {
      await node.propose(RequestKind.MemberAttributes, Buffer.from(JSON.stringify(attrs)));
      if (store.clusterVersion() === null && node.isLeader) {
        await node.propose(RequestKind.ClusterVersion, Buffer.from(ETCD_CLUSTER_VERSION));
        log.info('set initial cluster version', { 'cluster-version': ETCD_CLUSTER_VERSION });
      }
      log.info('published local member to cluster through raft', { 'local-member-attributes': attrs });
      return;
    } catch (e) {
      // No leader yet (the election is still running): retry; anything else is fatal.
      if (!(e instanceof EtcdError) || attempt > 200) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
