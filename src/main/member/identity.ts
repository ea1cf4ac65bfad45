// A member's identity: the cluster and member IDs fixed at bootstrap (member/identity.json), made
// from --initial-cluster for a new cluster, or asked from the cluster's members when joining one.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Config } from '../config';
import { Logger } from '../log';
import { computeClusterId, computeMemberId } from '../../shared/ids';
import { MemberRecord } from '../../shared/confchange';
import { clientOptions, TlsInfo } from '../net/tls';
import { discoverCluster } from '../peer/transport';
import { StartupError } from '../startup_error';
import { limits } from '../../shared/limits';

export interface Identity {
  clusterId: string;
  memberId: string;
  /** The members when this member was created (the --initial-cluster, or what a joined cluster said). */
  members: Array<{ id: string; name: string; peerUrls: string[] }>;
  /** Joined an existing cluster (--initial-cluster-state existing): Raft starts with no configuration
   * and learns it from the leader's log or snapshot, as etcd's joining members do. */
  joined?: boolean;
  /** A joined member's request-ID tag, as MemberAdd assigned it. */
  tag?: number;
}

/** peerTls: the resolved peer TLS settings, to dial https:// members when joining. */
export async function loadIdentity(cfg: Config, dir: string, log: Logger, peerTls: TlsInfo): Promise<Identity> {
  const file = path.join(dir, 'identity.json');
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')) as Identity;
  const id = cfg.initialClusterState === 'existing' ? await joinIdentity(cfg, log, peerTls) : newIdentity(cfg);
  const tmp = file + '.tmp';
  fs.writeFileSync(tmp, JSON.stringify(id, null, 2));
  fs.renameSync(tmp, file);
  return id;
}

/**
 * --initial-cluster-state existing: ask the other members of --initial-cluster (peer port, Discover) for
 * the cluster's ID and membership, and find ourselves in it by our peer URLs, as etcd's
 * ValidateClusterAndAssignIDs does: MemberAdd must have added us first.
 */
async function joinIdentity(cfg: Config, log: Logger, peerTls: TlsInfo): Promise<Identity> {
  const tlsOpts = peerTls.certFile ? clientOptions(peerTls) : null;
  const key = (urls: string[]): string => [...urls].sort().join(',');
  const mine = key(cfg.initialAdvertisePeerUrls);
  const errors: string[] = [];
  for (const [name, urls] of cfg.initialCluster) {
    if (name === cfg.name) continue;
    for (const u of urls) {
      let d: { clusterId: string; members: MemberRecord[] };
      try {
        d = (await discoverCluster(u, limits, tlsOpts)) as { clusterId: string; members: MemberRecord[] };
      } catch (e) {
        errors.push(`${u}: ${(e as Error).message}`);
        continue;
      }
      const self = d.members.find((m) => key(m.peerURLs) === mine);
      if (self === undefined) {
        throw new StartupError(
          `member ${cfg.name} (peer URLs ${mine}) is not in the cluster ${BigInt(d.clusterId).toString(16)}: ` +
            `add it first (etcdctl member add ${cfg.name} --peer-urls=${cfg.initialAdvertisePeerUrls.join(',')})`,
        );
      }
      const nameOf = (m: MemberRecord): string => [...cfg.initialCluster].find(([, us]) => key(us) === key(m.peerURLs))?.[0] ?? '';
      log.info('joining an existing cluster', {
        'cluster-id': BigInt(d.clusterId).toString(16),
        'member-id': BigInt(self.id).toString(16),
        via: u,
      });
      return {
        clusterId: d.clusterId,
        memberId: self.id,
        joined: true,
        tag: self.tag,
        members: d.members.map((m) => ({ id: m.id, name: nameOf(m), peerUrls: m.peerURLs })),
      };
    }
  }
  throw new StartupError(`could not reach any member of --initial-cluster to join it: ${errors.join('; ')}`);
}

function newIdentity(cfg: Config): Identity {
  const members = [...cfg.initialCluster]
    .map(([name, urls]) => ({ id: computeMemberId(urls, cfg.initialClusterToken), name, peerUrls: urls }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)); // etcd bootstraps members in ID order
  const self = members.find((m) => m.name === cfg.name);
  if (!self) throw new StartupError(`member ${cfg.name} not in --initial-cluster`);
  return {
    clusterId: computeClusterId(members.map((m) => m.id)).toString(),
    memberId: self.id.toString(),
    members: members.map((m) => ({ id: m.id.toString(), name: m.name, peerUrls: m.peerUrls })),
  };
}
