// The Cluster service (MemberAdd, MemberRemove, MemberUpdate, MemberPromote, MemberList), after etcd
// 3.4's v3rpc/member.go and etcdserver/server.go: the strict reconfiguration checks run on the member
// that takes the request, the change goes through the log as a ConfChange entry, and the answer comes
// once it is applied (src/main/membership.ts decides it the same way on every member). Promote runs on
// the leader, the only member that knows whether the learner has caught up; others forward it.
import { etcdserverpb } from '../shared/gen/etcd';
import { ConfChange } from '../shared/confchange';
import { decodeRequest, Errors } from '../shared/errors';
import { computeMemberId } from '../shared/ids';
import { toUint64, uint64ToLong } from '../shared/long';
import type { CallContext, GrpcMethods } from './net/rpc';
import type { RaftNode } from './node/node';
import type { Member, Membership } from './membership';
import type { MvccStore } from '../shared/mvcc/store';

/** etcd's HealthInterval: a peer counts as connected once its connection has been up this long. */
const HEALTH_INTERVAL_MS = 5000;
/** etcd's readyPercent: a learner is promotable once its log reaches 90% of the leader's. */
const READY_PERCENT = 0.9;

export const FORWARD_PROMOTE = 'cluster.promote';

export interface ClusterDeps {
  node: RaftNode;
  selfId: bigint;
  /** The current membership (replaced when a snapshot is installed). */
  membership: () => Membership;
  store: MvccStore;
  header: () => etcdserverpb.IResponseHeader;
  strictReconfigCheck: boolean;
  /** When the connection to a peer came up (ms since the epoch), 0 if it is not connected. */
  activeSince: (id: bigint) => number;
  /** Sends MemberPromote to the leader (peer request channel). */
  forwardPromote: (leader: bigint, body: Uint8Array) => Promise<Uint8Array>;
  /** etcd's checkMembershipOperationPermission: with auth enabled, changes are root's only. */
  checkAdmin?: (ctx: CallContext) => void;
}

export class ClusterService {
  readonly #d: ClusterDeps;

  constructor(d: ClusterDeps) {
    this.#d = d;
  }

  register(t: GrpcMethods): void {
    const p = '/etcdserverpb.Cluster/';
    t.addUnary(p + 'MemberList', () => etcdserverpb.MemberListResponse.encode({ header: this.#header(), members: this.#members() }).finish(), 'read');
    const admin = (fn: (b: Uint8Array) => Promise<Uint8Array>) => (b: Uint8Array, ctx: CallContext): Promise<Uint8Array> => {
      this.#d.checkAdmin?.(ctx);
      return fn(b);
    };
    t.addUnary(p + 'MemberAdd', admin((b) => this.#add(b)));
    t.addUnary(p + 'MemberRemove', admin((b) => this.#remove(b)));
    t.addUnary(p + 'MemberUpdate', admin((b) => this.#update(b)));
    t.addUnary(p + 'MemberPromote', admin((b) => this.promote(b)));
  }

  /** etcd's cluster server header: cluster_id, member_id, raft_term, no revision. */
  #header(): etcdserverpb.IResponseHeader {
    return { ...this.#d.header(), revision: 0 };
  }

  #members(): etcdserverpb.IMember[] {
    return this.#d.membership().list().map((m) => toPb(m, this.#d.store));
  }

  async #add(body: Uint8Array): Promise<Uint8Array> {
    const req = decodeRequest(() => etcdserverpb.MemberAddRequest.decode(body));
    const urls = validUrls(req.peerURLs ?? []);
    const id = computeMemberId(urls, '', Math.floor(Date.now() / 1000));
    const learner = req.isLearner === true;
    if (this.#d.strictReconfigCheck) {
      if (!learner && !this.#readyToAddVoter()) throw Errors.memberNotEnoughStarted();
      if (!this.#connectedFully()) throw Errors.unhealthyCluster();
    }
    await this.#configure({ type: learner ? 'AddLearnerNode' : 'AddNode', nodeId: id.toString(), member: { name: '', peerURLs: urls } });
    return etcdserverpb.MemberAddResponse.encode({
      header: this.#header(),
      member: { ID: uint64ToLong(id), peerURLs: urls, isLearner: learner },
      members: this.#members(),
    }).finish();
  }

  async #remove(body: Uint8Array): Promise<Uint8Array> {
    const req = decodeRequest(() => etcdserverpb.MemberRemoveRequest.decode(body));
    const id = toUint64(req.ID);
    if (this.#d.strictReconfigCheck) this.#mayRemove(id);
    await this.#configure({ type: 'RemoveNode', nodeId: id.toString() });
    return etcdserverpb.MemberRemoveResponse.encode({ header: this.#header(), members: this.#members() }).finish();
  }

  async #update(body: Uint8Array): Promise<Uint8Array> {
    const req = decodeRequest(() => etcdserverpb.MemberUpdateRequest.decode(body));
    const id = toUint64(req.ID);
    await this.#configure({ type: 'UpdateNode', nodeId: id.toString(), member: { name: '', peerURLs: req.peerURLs ?? [] } });
    return etcdserverpb.MemberUpdateResponse.encode({ header: this.#header(), members: this.#members() }).finish();
  }

  /** Also the leader's handler for a promote forwarded by another member. */
  async promote(body: Uint8Array): Promise<Uint8Array> {
    const req = decodeRequest(() => etcdserverpb.MemberPromoteRequest.decode(body));
    const id = toUint64(req.ID);
    const node = this.#d.node;
    if (!node.isLeader) {
      if (!node.hasLeader) throw Errors.noLeader();
      return this.#d.forwardPromote(node.leader, body);
    }
    // etcd's isLearnerReady: only the leader's progress says how far the learner got.
    const prs = node.progress();
    const learner = prs.find((p) => p.id === id);
    const self = prs.find((p) => p.id === this.#d.selfId);
    if (learner !== undefined && self !== undefined && learner.match < self.match * READY_PERCENT) throw Errors.learnerNotReady();
    if (this.#d.strictReconfigCheck && !this.#readyToPromote()) throw Errors.memberNotEnoughStarted();
    await this.#configure({ type: 'AddNode', nodeId: id.toString(), promote: true });
    return etcdserverpb.MemberPromoteResponse.encode({ header: this.#header(), members: this.#members() }).finish();
  }

  #configure(cc: ConfChange): Promise<Uint8Array> {
    return this.#d.node.proposeConfChange(cc);
  }

  /** A member has started once it published its name (etcd's IsStarted). */
  #started(m: Member): boolean {
    return m.id === this.#d.selfId || (this.#d.store.memberAttributes(m.id.toString(16))?.name ?? '') !== '';
  }

  /** etcd's IsReadyToAddVotingMember. */
  #readyToAddVoter(): boolean {
    const voters = this.#d.membership().voters();
    const members = voters.length + 1;
    const started = voters.filter((m) => this.#started(m)).length;
    if (started === 1 && members === 2) return true; // growing a one-member cluster
    return started >= Math.floor(members / 2) + 1;
  }

  /** etcd's IsReadyToPromoteMember: the learner counts as a started voter. */
  #readyToPromote(): boolean {
    const voters = this.#d.membership().voters();
    const members = voters.length + 1;
    const started = voters.filter((m) => this.#started(m)).length + 1;
    return started >= Math.floor(members / 2) + 1;
  }

  #connectedSince(id: bigint, since: number): boolean {
    if (id === this.#d.selfId) return true;
    const t = this.#d.activeSince(id);
    return t !== 0 && t <= since;
  }

  /** etcd's isConnectedFullySince: every voter has been connected for HealthInterval. */
  #connectedFully(): boolean {
    const since = Date.now() - HEALTH_INTERVAL_MS;
    return this.#d.membership().voters().every((m) => this.#connectedSince(m.id, since));
  }

  /** etcd's mayRemoveMember. */
  #mayRemove(id: bigint): void {
    const ms = this.#d.membership();
    const m = ms.get(id);
    if (m?.isLearner) return;
    const voters = ms.voters();
    const rest = voters.filter((v) => v.id !== id);
    if (rest.filter((v) => this.#started(v)).length < Math.floor(rest.length / 2) + 1) throw Errors.memberNotEnoughStarted();
    // A member that is down is safe to remove: it is not part of the active quorum.
    if (id !== this.#d.selfId && this.#d.activeSince(id) === 0) return;
    const since = Date.now() - HEALTH_INTERVAL_MS;
    const active = voters.filter((v) => this.#connectedSince(v.id, since)).length;
    if (active - 1 < 1 + Math.floor((voters.length - 1) / 2)) throw Errors.unhealthyCluster();
  }
}

function toPb(m: Member, store: MvccStore): etcdserverpb.IMember {
  // Name and client URLs are what the member published through the log; a member that has not
  // started yet has none, as in etcd.
  const a = store.memberAttributes(m.id.toString(16));
  return { ID: uint64ToLong(m.id), name: a?.name ?? '', peerURLs: m.peerURLs, clientURLs: a?.clientURLs ?? [], isLearner: m.isLearner };
}

/** etcd's types.NewURLs: at least one, each a scheme://host:port URL without a path; returned sorted. */
function validUrls(urls: string[]): string[] {
  if (urls.length === 0) throw Errors.memberBadURLs(); // "no valid URLs given"
  const out: string[] = [];
  for (const s of urls) {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      throw Errors.memberBadURLs();
    }
    if (!['http:', 'https:', 'unix:', 'unixs:'].includes(u.protocol)) throw Errors.memberBadURLs();
    if (u.protocol.startsWith('http') && (u.port === '' || u.hostname === '')) throw Errors.memberBadURLs();
    if (u.pathname !== '' && u.pathname !== '/') throw Errors.memberBadURLs();
    if (u.search !== '' || u.hash !== '') throw Errors.memberBadURLs();
    out.push(s);
  }
  return out.sort();
}

