// Start-up and shut-down of one member: data dir layout, identity, WAL recovery, workers,
// Raft driver, listeners. Layout of --data-dir (like etcd's, our formats):
//   member/identity.json  cluster and member IDs fixed at bootstrap
//   member/wal/           the Raft WAL (segments)
//   member/lmdb/          the MVCC state (LMDB), including the applied Raft index
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as net from 'node:net';
import { ResourceLimits, Worker } from 'node:worker_threads';
import { Config } from './config';
import { Logger } from './log';
import { Wal } from './wal/wal';
import { MemoryStorage } from './raft/memory_storage';
import { RawNode } from './raft/rawnode';
import { RaftNode } from './node/node';
import { Lessor } from './lease/lessor';
import { EtcdServer } from './server';
import { createHttp1Server } from './http1';
import { listenMultiplexed } from './net/listener';
import { startAutoCompaction } from './autocompact';
import { syncVia } from './compactor';
import { Ring } from '../shared/ring';
import { WorkerInit } from '../shared/apply_protocol';
import { computeClusterId, computeMemberId, idToHex } from '../shared/ids';
import { limits } from '../shared/limits';
import { MvccStore } from '../shared/mvcc/store';
import { EntryType, Message, MessageType } from './raft/types';
import { encodeEntry, RequestKind } from '../shared/entry';
import { Errors, EtcdError, GrpcCode } from '../shared/errors';
import { discoverCluster, PeerTransport } from './peer/transport';
import { ETCD_CLUSTER_VERSION } from '../shared/version';
import { decodeConfChange, encodeConfChange, MemberRecord } from '../shared/confchange';
import { Membership } from './membership';
import { ClusterService, FORWARD_PROMOTE } from './cluster_service';
import { lockDataDir } from './datadir_lock';
import { WatchSignal, WatchWorkerInit } from '../shared/watch_protocol';
import { WatchService } from './watch/watch_service';
import { mulberry32 } from '../shared/random';
import { Gateway } from './gateway/gateway';
import { defaultProtoDir, JsonCodec } from './gateway/jsonpb';
import { FastPort } from './gateway/uws_server';
import { createEarlyMetrics, registerMemberMetrics } from './server_metrics';
import { gatewayBodyBytesMax } from '../shared/limits';

export interface RunningMember {
  stop(): Promise<void>;
}

interface Identity {
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

async function loadIdentity(cfg: Config, dir: string, log: Logger): Promise<Identity> {
  const file = path.join(dir, 'identity.json');
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')) as Identity;
  const id = cfg.initialClusterState === 'existing' ? await joinIdentity(cfg, log) : newIdentity(cfg);
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
async function joinIdentity(cfg: Config, log: Logger): Promise<Identity> {
  const key = (urls: string[]): string => [...urls].sort().join(',');
  const mine = key(cfg.initialAdvertisePeerUrls);
  const errors: string[] = [];
  for (const [name, urls] of cfg.initialCluster) {
    if (name === cfg.name) continue;
    for (const u of urls) {
      let d: { clusterId: string; members: MemberRecord[] };
      try {
        d = await discoverCluster(u) as { clusterId: string; members: MemberRecord[] };
      } catch (e) {
        errors.push(`${u}: ${(e as Error).message}`);
        continue;
      }
      const self = d.members.find((m) => key(m.peerURLs) === mine);
      if (self === undefined) {
        throw new Error(`member ${cfg.name} (peer URLs ${mine}) is not in the cluster ${BigInt(d.clusterId).toString(16)}: ` +
          `add it first (etcdctl member add ${cfg.name} --peer-urls=${cfg.initialAdvertisePeerUrls.join(',')})`);
      }
      const nameOf = (m: MemberRecord): string => [...cfg.initialCluster].find(([, us]) => key(us) === key(m.peerURLs))?.[0] ?? '';
      log.info('joining an existing cluster', { 'cluster-id': BigInt(d.clusterId).toString(16), 'member-id': BigInt(self.id).toString(16), via: u });
      return {
        clusterId: d.clusterId, memberId: self.id, joined: true, tag: self.tag,
        members: d.members.map((m) => ({ id: m.id, name: nameOf(m), peerUrls: m.peerURLs })),
      };
    }
  }
  throw new Error(`could not reach any member of --initial-cluster to join it: ${errors.join('; ')}`);
}

function newIdentity(cfg: Config): Identity {
  const members = [...cfg.initialCluster].map(([name, urls]) => ({ id: computeMemberId(urls, cfg.initialClusterToken), name, peerUrls: urls }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)); // etcd bootstraps members in ID order
  const self = members.find((m) => m.name === cfg.name);
  if (!self) throw new Error(`member ${cfg.name} not in --initial-cluster`);
  return {
    clusterId: computeClusterId(members.map((m) => m.id)).toString(),
    memberId: self.id.toString(),
    members: members.map((m) => ({ id: m.id.toString(), name: m.name, peerUrls: m.peerUrls })),
  };
}

/** See limits.watchWorkerYoungGenerationMb. */
const WATCH_WORKER_LIMITS: ResourceLimits = { maxYoungGenerationSizeMb: limits.watchWorkerYoungGenerationMb };

/** etcd 3.4: a positive --experimental-watch-progress-notify-interval below 100ms is raised to 100ms,
 * with a warning; 0 keeps the default (10 minutes). */
function progressNotifyIntervalMs(cfg: Config, log: Logger): number {
  const ms = cfg.watchProgressNotifyIntervalMs;
  if (ms <= 0) return limits.watchProgressNotifyIntervalMs;
  if (ms >= limits.watchProgressNotifyIntervalMinMs) return ms;
  log.warn('adjusting watch progress notify interval to minimum period', { 'min-watch-progress-notify-interval': `${limits.watchProgressNotifyIntervalMinMs}ms` });
  return limits.watchProgressNotifyIntervalMinMs;
}

function startWorker(file: string, data: object, resourceLimits?: ResourceLimits): Promise<{ worker: Worker; ready: { appliedIndex: number } }> {
  const worker = new Worker(path.join(__dirname, '../workers', file), { workerData: data, resourceLimits });
  return new Promise((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (m: { ready?: boolean; appliedIndex?: number }) => {
      worker.off('error', reject);
      resolve({ worker, ready: { appliedIndex: m.appliedIndex ?? 0 } });
    });
  });
}

export async function startMember(cfg: Config, log: Logger): Promise<RunningMember> {
  const memberDir = path.join(cfg.dataDir, 'member');
  const lmdbDir = path.join(memberDir, 'lmdb');
  fs.mkdirSync(lmdbDir, { recursive: true, mode: 0o700 });
  const unlock = lockDataDir(memberDir);
  // Snapshot copies being sent when the process died.
  for (const f of fs.readdirSync(memberDir)) if (f.startsWith('snap-out-')) fs.rmSync(path.join(memberDir, f), { recursive: true, force: true });
  const ident = await loadIdentity(cfg, memberDir, log);
  const memberId = BigInt(ident.memberId);
  const clusterId = BigInt(ident.clusterId);
  log.info('starting etcd-ts', { name: cfg.name, 'data-dir': cfg.dataDir, 'member-id': idToHex(memberId), 'cluster-id': idToHex(clusterId) });

  const toApply = Ring.create(limits.ringBytes);
  const fromApply = Ring.create(limits.ringBytes);
  const init: WorkerInit = {
    lmdbDir, clusterId: ident.clusterId, memberId: ident.memberId, toApply, fromApply, applyBatchEntriesMax: limits.applyBatchEntriesMax,
  };
  // Watch worker: control ring in, response ring out, and the signal block (the main thread publishes
  // the durable revision there and rings).
  const watchInit: WatchWorkerInit = {
    lmdbDir, clusterId: ident.clusterId, memberId: ident.memberId, toWatch: Ring.create(limits.watchControlRingBytes),
    fromWatch: Ring.create(limits.watchResponseRingBytes), signal: WatchSignal.create(), maxRequestBytes: cfg.maxRequestBytes + limits.grpcOverheadBytes,
    progressNotifyIntervalMs: progressNotifyIntervalMs(cfg, log), batchMaxDelayMs: cfg.watchBatchMaxDelayMs,
  };
  // Workers load their modules and open LMDB while this thread reads the WAL: start-up time is
  // the slowest of the three, not their sum.
  const t0 = Date.now();
  const metrics = createEarlyMetrics();
  const [apply, compactor, recovered, watchWorker] = await Promise.all([
    startWorker('apply.js', { ...init, backendCommitHistogram: metrics.backendCommitSab }),
    startWorker('compact.js', { ...init, toApply: undefined, fromApply: undefined, batchRevisions: limits.compactionBatchRevisions }),
    Wal.open(path.join(memberDir, 'wal'), {
      segmentBytes: limits.walSegmentBytes, batchBytesMax: limits.walBatchBytesMax, onFsync: (sec) => metrics.walFsync.observe(sec),
      syncDelayMs: Number(process.env.ETCD_TS_WAL_SYNC_DELAY_MS ?? 0) || 0, // fault injection for tests (wal.ts)
    }),
    startWorker('watch.js', watchInit, WATCH_WORKER_LIMITS),
  ]);
  const store = MvccStore.open(lmdbDir, { readOnly: true });
  if (recovered.truncatedTail) log.warn('WAL had a torn tail (crash during a write); truncated it');
  // The membership at the applied index: stored by the last applied ConfChange; before any, the
  // --initial-cluster members (a new cluster) or nobody (a joining member learns it from the leader).
  const stored = store.membership();
  let membership = stored !== null ? Membership.fromState(stored)
    : ident.joined ? Membership.fromState({ members: [], removed: [], nextTag: 0 })
      : Membership.initial(ident.members.map((m) => ({ id: BigInt(m.id), peerURLs: m.peerUrls })));
  const conf = membership.confState();
  const voters = conf.voters;
  const storage = new MemoryStorage(voters, conf.learners);
  const applied = apply.ready.appliedIndex;
  if (recovered.snapshotIndex > 0) {
    // The state machine (LMDB) is the snapshot: it was synced up to at least this index before the
    // WAL released the entries below it.
    if (applied < recovered.snapshotIndex) throw new Error(`state machine applied index ${applied} is below the WAL snapshot ${recovered.snapshotIndex}: state lost`);
    storage.applySnapshot({
      metadata: { index: recovered.snapshotIndex, term: recovered.snapshotTerm, voters, learners: conf.learners }, data: new Uint8Array(0),
    });
  }
  storage.append(recovered.entries);
  if (recovered.hardState === null && recovered.entries.length === 0 && recovered.snapshotIndex === 0 && applied === 0 && !ident.joined) {
    await bootstrapLog(recovered.wal, storage, ident);
  }
  if (applied > storage.lastIndex()) await adoptStateMachine(recovered.wal, storage, applied, recovered.hardState?.term ?? 1, voters, memberId, log);
  const lastIndex = storage.lastIndex();
  if (recovered.hardState) {
    // Entries are applied only once committed, so an applied index above the persisted commit
    // (whose HardState update was not yet synced) is itself proof of commitment.
    storage.setHardState({ ...recovered.hardState, commit: Math.max(recovered.hardState.commit, applied) });
  }
  log.info('recovered WAL', { entries: recovered.entries.length, applied, lastIndex, ms: Date.now() - t0 });

  const raw = new RawNode({
    id: memberId, peers: voters, learners: conf.learners, electionTick: Math.round(cfg.electionTimeoutMs / cfg.heartbeatIntervalMs), heartbeatTick: 1,
    storage, applied, maxSizePerMsg: 1024 * 1024, maxInflightMsgs: 256, preVote: true, checkQuorum: true,
    rand: mulberry32(Number(memberId & 0xffffffffn) ^ Date.now()),
    forwardProposals: true,
  });
  // Peers: our own framed protocol on --listen-peer-urls (it does not speak etcd's peer protocol). A lone
  // member starts it when MemberAdd gives it a peer.
  let nodeRef: RaftNode | null = null;
  let lessorRef: Lessor | null = null;
  let clusterRef: ClusterService | null = null;
  let transport: PeerTransport | null = null;
  let transportStarted: Promise<void> | null = null;
  const newTransport = (): PeerTransport => new PeerTransport({
    selfId: memberId, clusterId, log,
    listen: cfg.listenPeerUrls.map((u) => ({ host: hostOf(u), port: Number(u.port) })),
    onMessages: (msgs) => nodeRef?.step(msgs),
    onUnreachable: (id) => nodeRef?.reportUnreachable(id),
    onSnapshot: async (msg, dir) => {
      try {
        if (nodeRef) await nodeRef.installSnapshot(msg, dir);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
    onRequest: (_from, kind, body) => {
      if (kind === FORWARD_PROMOTE) return clusterRef === null ? Promise.reject(Errors.notCapable()) : clusterRef.promote(body);
      if (lessorRef === null) return Promise.reject(Errors.notCapable());
      return lessorRef.serveForwarded(kind, body);
    },
    onDiscover: () => Buffer.from(JSON.stringify({ clusterId: ident.clusterId, members: membership.toState().members })),
    onRemoved: () => onRemovedSelf(),
  });
  /** The transport, started on first use; peers are added by the caller. */
  function ensureTransport(): PeerTransport {
    if (transport === null) {
      const t = newTransport();
      transport = t;
      transportStarted = t.start().then(
        () => log.info('listening for peers', { urls: cfg.listenPeerUrls.map((u) => u.href) }),
        (e: Error) => log.error('cannot listen for peers', { error: e.message }),
      );
    }
    return transport;
  }
  /** Peers follow the membership (at start, after a ConfChange, after installing a snapshot). */
  function syncPeers(): void {
    const others = membership.list().filter((m) => m.id !== memberId);
    if (others.length === 0 && transport === null) return;
    const t = ensureTransport();
    for (const m of others) t.addPeer(m.id, m.peerURLs);
    // Only IDs the cluster removed are dropped (and refused from now on): a member replaying the log
    // from its start does not know every member yet, and refusing one as removed would stop it.
    for (const id of t.peerIds()) if (membership.isRemoved(id)) t.removePeer(id);
  }
  if (ident.joined && membership.size === 0) {
    // Before our first applied ConfChange: talk to the members the cluster told us about.
    const t = ensureTransport();
    for (const m of ident.members) if (BigInt(m.id) !== memberId) t.addPeer(BigInt(m.id), m.peerUrls);
  } else {
    syncPeers();
  }
  if (transportStarted) await transportStarted;
  let removedSelf = false;
  /** etcd stops a member once it is removed from the cluster; so do we (the CLI exits). */
  function onRemovedSelf(): void {
    if (removedSelf) return;
    removedSelf = true;
    log.warn('the member has been permanently removed from the cluster; stopping', { 'member-id': idToHex(memberId) });
    // After this turn: the entry's apply and any reply in flight go out first.
    setTimeout(() => process.kill(process.pid, 'SIGTERM'), 200);
  }
  const node = new RaftNode({
    id: memberId, voters, heartbeatIntervalMs: cfg.heartbeatIntervalMs, electionTimeoutMs: cfg.electionTimeoutMs,
    maxRequestBytes: cfg.maxRequestBytes, pendingProposalsMax: limits.pendingProposalsMax, pendingReadsMax: limits.pendingReadsMax, requestTimeoutMs: limits.requestTimeoutMs,
    raftLogRetainEntries: limits.raftLogRetainEntries, snapshotCount: cfg.snapshotCount, snapshotEntryBytes: limits.snapshotEntryBytes,
    syncStateMachine: () => syncVia(compactor.worker),
    send: (msgs) => sendToPeers(msgs),
    requestIdTag: membership.get(memberId)?.tag ?? ident.tag ?? ident.members.findIndex((m) => BigInt(m.id) === memberId),
    confState: conf,
  }, log, raw, storage, recovered.wal, applied, new Ring(toApply), new Ring(fromApply));
  nodeRef = node;
  node.decideConfChange = (e) => {
    const cc = decodeConfChange(e.data);
    const d = membership.decide(cc);
    if (d.raft !== null) {
      const id = d.raft.nodeId;
      log.info('applied a membership change', { change: cc.type, promote: cc.promote === true, 'member-id': idToHex(id), index: e.index });
      if (id === memberId && cc.type === 'RemoveNode') onRemovedSelf();
      else syncPeers();
    }
    return { raft: d.raft, applyData: encodeEntry(RequestKind.Membership, cc.requestId ?? 0, Buffer.from(JSON.stringify(d.op))) };
  };
  node.onSnapshotInstalled(() => {
    // The leader's state replaced ours: so did its membership.
    const st = store.membership();
    if (st !== null) membership = Membership.fromState(st);
    if (membership.isRemoved(memberId)) onRemovedSelf();
    else syncPeers();
  });
  // Raft messages go out as they are, except a snapshot: the follower gets a copy of the LMDB
  // environment (at least as new as the snapshot's index) on its own connection.
  const snapshotsInFlight = new Set<bigint>();
  function sendToPeers(msgs: Message[]): void {
    const t = transport;
    if (t === null) return;
    const plain = msgs.filter((m) => m.type !== MessageType.Snap);
    if (plain.length > 0) t.send(plain);
    for (const m of msgs) {
      if (m.type !== MessageType.Snap) continue;
      if (snapshotsInFlight.has(m.to)) continue;
      snapshotsInFlight.add(m.to);
      const dir = fs.mkdtempSync(path.join(memberDir, 'snap-out-'));
      log.info('sending snapshot', { to: idToHex(m.to), index: m.snapshot?.metadata.index });
      store.backup(dir)
        .then(() => t.sendSnapshot(snapshotAtCopy(m, dir), dir))
        .then(() => node.reportSnapshot(m.to, false), (e: Error) => {
          log.warn('sending snapshot failed', { to: idToHex(m.to), error: e.message });
          node.reportSnapshot(m.to, true);
        })
        .finally(() => {
          snapshotsInFlight.delete(m.to);
          fs.rmSync(dir, { recursive: true, force: true });
        });
    }
  }
  /**
   * The copy holds the state at its own applied index A, at or after the snapshot Raft asked for: the
   * message says A, A's term and the membership stored in the copy, so the follower's Raft and its
   * membership restart from exactly the state it installs.
   */
  function snapshotAtCopy(m: Message, dir: string): Message {
    const copy = MvccStore.open(dir, { readOnly: true });
    try {
      const index = copy.appliedIndex;
      const st = copy.membership();
      const md = m.snapshot!.metadata;
      if (index <= md.index || st === null) return m;
      const cs = Membership.fromState(st).confState();
      let term: number;
      try {
        term = node.termAt(index);
      } catch {
        return m; // no longer in our log: the snapshot Raft asked for is still right for this copy
      }
      return { ...m, snapshot: { data: m.snapshot!.data, metadata: { index, term, voters: cs.voters, learners: cs.learners } } };
    } finally {
      void copy.close();
    }
  }
  /** A call to another member's services (lease calls, MemberPromote), with its EtcdError if it fails. */
  function forwardTo(to: bigint, kind: string, body: Uint8Array): Promise<Uint8Array> {
    const t = transport;
    if (t === null) return Promise.reject(Errors.notCapable());
    return t.request(to, kind, body, limits.requestTimeoutMs).catch((e: Error & { code?: number }) => {
      throw new EtcdError(typeof e.code === 'number' ? e.code : GrpcCode.Unavailable, e.message);
    });
  }
  // Before the node starts: the lessor loads the stored leases, then follows every applied change.
  const electionTicks = Math.round(cfg.electionTimeoutMs / cfg.heartbeatIntervalMs);
  const lessor = new Lessor(node, store, log, {
    memberId, minTtlSeconds: Math.ceil((Math.floor((3 * electionTicks) / 2) * cfg.heartbeatIntervalMs) / 1000),
    forward: (to, kind, body) => forwardTo(to, kind, body),
  });
  lessorRef = lessor;
  // The watch worker fans out up to the newest revision that is applied and durable (node.ts says why).
  const watchSignal = new WatchSignal(watchInit.signal);
  node.onDurableRevision = (rev) => watchSignal.publishRevision(rev);
  node.start();
  lessor.start();

  const watch = new WatchService({
    worker: watchWorker.worker, toWatch: new Ring(watchInit.toWatch), fromWatch: new Ring(watchInit.fromWatch),
    signal: watchSignal, term: () => node.term, log,
    restart: async () => {
      // Fresh rings (the dead worker may have left a record half written), the same signal block.
      const init: WatchWorkerInit = { ...watchInit, toWatch: Ring.create(limits.watchControlRingBytes), fromWatch: Ring.create(limits.watchResponseRingBytes) };
      const { worker } = await startWorker('watch.js', init, WATCH_WORKER_LIMITS);
      return { worker, toWatch: new Ring(init.toWatch), fromWatch: new Ring(init.fromWatch) };
    },
  });
  const server = new EtcdServer({ cfg, log, node, store, clusterId, memberId, membership: () => membership, lmdbDir, compactor: compactor.worker, watch, lessor });
  clusterRef = new ClusterService({
    node, selfId: memberId, membership: () => membership, store, header: () => server.header(), strictReconfigCheck: cfg.strictReconfigCheck,
    activeSince: (id) => transport?.activeSince(id) ?? 0,
    forwardPromote: (leader, body) => forwardTo(leader, FORWARD_PROMOTE, body),
  });
  clusterRef.register(server.transport);
  await publish(node, store, cfg, ident, log);
  const healthy = async (): Promise<boolean> => {
    // As etcd 3.4's /health: a leader must exist and a request must commit through the log.
    if (!node.hasLeader) return false;
    await node.propose(RequestKind.HealthCheck, new Uint8Array(0));
    return true;
  };
  // The HTTP/JSON gateway calls the transport's handlers in process (src/main/gateway/).
  const recvMessageBytesMax = cfg.maxRequestBytes + limits.grpcOverheadBytes;
  const gateway = new Gateway(server.transport, JsonCodec.load(defaultProtoDir()), { recvMessageBytesMax });
  const bodyBytesMax = gatewayBodyBytesMax(cfg.maxRequestBytes);
  const fastPorts: FastPort[] = [];
  const counters = registerMemberMetrics(metrics, {
    node, memberId, store, quotaBackendBytes: cfg.quotaBackendBytes, watchStreams: () => watch.streamCount,
    rings: [
      { name: 'to_apply', ring: new Ring(toApply) }, { name: 'from_apply', ring: new Ring(fromApply) },
      // The watch worker's rings are read through the service: a restarted worker has fresh ones.
      { name: 'to_watch', ring: { usedBytes: () => watch.rings.toWatch.usedBytes(), get capacityBytes() { return watch.rings.toWatch.capacityBytes; } } },
      { name: 'from_watch', ring: { usedBytes: () => watch.rings.fromWatch.usedBytes(), get capacityBytes() { return watch.rings.fromWatch.capacityBytes; } } },
    ],
    rangePool: { threads: () => server.rangePoolStats().threads, queueSize: () => server.rangePoolStats().queueSize },
  }, () => fastPorts.reduce((n, f) => n + f.webSocketsOpen, 0));
  const renderMetrics = (): string => metrics.registry.render();
  const h1 = createHttp1Server({ healthy }, {
    gateway: {
      gateway, bodyBytesMax, streamSendHighBytes: limits.gatewayStreamSendHighBytes, onRequest: () => counters.clientPortRequests.inc(),
    },
    metrics: renderMetrics,
  });
  const listeners: net.Server[] = [];
  for (const u of cfg.listenClientUrls) {
    listeners.push(await listenMultiplexed(hostOf(u), Number(u.port), server.transport.server, h1));
    log.info('serving client traffic', { address: u.href });
  }
  for (const u of cfg.listenClientHttpUrls) {
    const fast = new FastPort({
      gateway, bodyBytesMax, healthy, metrics: renderMetrics,
      ready: async () => {
        if (!node.hasLeader) return false;
        await node.readBarrier();
        return true;
      },
      limits: {
        streamSendHighBytes: limits.gatewayStreamSendHighBytes, wsIdleTimeoutSeconds: limits.wsIdleTimeoutSeconds,
        wsSendHighBytes: limits.wsSendHighBytes, wsSendBytesMax: limits.wsSendBytesMax,
        wsStreamsPerConnMax: limits.wsStreamsPerConnMax, wsUnaryInFlightMax: limits.wsUnaryInFlightMax,
      },
      onHttpRequest: () => counters.fastPortRequests.inc(),
      onWsMessage: () => counters.wsMessages.inc(),
      onError: (e) => log.error('HTTP/JSON port: request failed', { error: e instanceof Error ? e.stack ?? e.message : String(e) }),
    });
    await fast.listen(hostOf(u), Number(u.port));
    fastPorts.push(fast);
    log.info('serving client HTTP/JSON traffic (uWebSockets.js)', { address: u.href });
  }
  const stopAuto = startAutoCompaction(cfg, log, node, server);
  log.info('ready to serve client requests', { ms: Date.now() - t0 });

  return {
    async stop() {
      stopAuto();
      lessor.stop();
      for (const l of listeners) l.close();
      for (const f of fastPorts) f.close();
      await node.stop();
      await transport?.stop();
      log.info('wal stats', { ...recovered.wal.stats() });
      await recovered.wal.close();
      await server.close();
      await apply.worker.terminate();
      await compactor.worker.terminate();
      await watch.stop();
      await store.close();
      unlock();
      log.info('stopped');
    },
  };
}

/**
 * The state machine is ahead of the WAL: a lone voter applies entries while their WAL write is in
 * flight (answering only after both), so a crash in between leaves LMDB with entries the WAL never
 * synced. Those writes were never acknowledged, and no other member holds a conflicting log, so
 * the state machine is adopted as a snapshot at its applied index. With peers this cannot happen
 * (apply follows persistence) and would mean a lost WAL: refuse to start.
 */
async function adoptStateMachine(wal: Wal, storage: MemoryStorage, applied: number, term: number, voters: bigint[],
  memberId: bigint, log: Logger): Promise<void> {
  const lastIndex = storage.lastIndex();
  if (voters.length !== 1 || voters[0] !== memberId) {
    throw new Error(`state machine applied index ${applied} is beyond the WAL's last index ${lastIndex}: WAL lost`);
  }
  log.warn('state machine is ahead of the WAL (crash during an fsync); adopting it as a snapshot', { applied, lastIndex });
  storage.applySnapshot({ metadata: { index: applied, term, voters, learners: [] }, data: new Uint8Array(0) });
  await wal.releaseTo(applied, term);
}

/**
 * A new cluster's log starts as etcd's does (etcd-io/raft Bootstrap): one ConfChange AddNode entry
 * per initial member at term 1, all committed. Applying them is the membership this member already
 * holds in identity.json (runtime reconfiguration is the multi-member issue).
 */
async function bootstrapLog(wal: Wal, storage: MemoryStorage, ident: Identity): Promise<void> {
  const entries = ident.members.map((m, i) => ({
    term: 1, index: i + 1, type: EntryType.ConfChange,
    data: encodeConfChange({ type: 'AddNode', nodeId: m.id, member: { name: m.name, peerURLs: m.peerUrls } }),
  }));
  const hardState = { term: 1, vote: 0n, commit: entries.length };
  await wal.save(hardState, entries);
  storage.append(entries);
  storage.setHardState(hardState);
}

/**
 * As etcd at every start: publish this member's attributes (name, client URLs) through the log,
 * and, as the leader of a cluster without one, set the cluster version. Client traffic is served
 * only after this, like etcd's ReadyNotify.
 */
async function publish(node: RaftNode, store: MvccStore, cfg: Config, ident: Identity, log: Logger): Promise<void> {
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

/** The address to bind for a listen URL: localhost binds 127.0.0.1, IPv6 brackets dropped. */
function hostOf(u: URL): string {
  return u.hostname === 'localhost' ? '127.0.0.1' : u.hostname.replace(/^\[|\]$/g, '');
}
