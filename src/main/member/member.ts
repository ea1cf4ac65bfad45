// One member, assembled from its parts in explicit phases (each part gets what it needs in its
// constructor; nothing is filled in later):
//
//   1. data dir      member/ created and locked, identity (cluster and member IDs) loaded or made
//   2. storage       the apply, compaction and watch workers start while the WAL is read (in parallel)
//   3. replay        Raft's log and state rebuilt from the WAL and the state machine (recover.ts)
//   4. Raft          the driver (src/main/node/node.ts) with its peers, snapshot sender and the
//                    membership-change decisions (conf_changes.ts)
//   5. services      lessor, Watch, KV/Maintenance (server.ts), Cluster
//   6. peer port     opened with Raft and the services as its receivers (peers.ts)
//   7. start         Raft ticks, the lessor's timers
//   8. publish       this member's attributes through the log, as etcd does before serving clients
//   9. client ports  gRPC + HTTP/1.1, the uWebSockets.js port (client_ports.ts), auto-compaction
//
// Layout of --data-dir (like etcd's, our formats):
//   member/identity.json  cluster and member IDs fixed at bootstrap
//   member/wal/           the Raft WAL (segments), or --wal-dir when given (as etcd: its own device);
//                         member/ts-wal/ beside an imported etcd data dir (etcd_import.ts)
//   member/lmdb/          the MVCC state (LMDB), including the applied Raft index
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { startAutoCompaction } from '../autocompact';
import { ClusterService, FORWARD_PROMOTE } from '../cluster_service';
import { Config } from '../config';
import { lockDataDir } from '../datadir_lock';
import { StartupError } from '../startup_error';
import { CorruptChecker, PEER_HASHKV } from './corrupt';
import { Lessor } from '../lease/lessor';
import { Logger } from '../log';
import type { Membership } from '../membership';
import { RaftNode } from '../node/node';
import { RawNode } from '../raft/rawnode';
import { EtcdServer } from '../server';
import { createEarlyMetrics, EarlyMetrics, registerMemberMetrics } from '../server_metrics';
import { GrpcServerMetrics } from '../grpc_metrics';
import { AuditLog } from '../audit/audit_log';
import { Auditor } from '../audit/auditor';
import { Wal, WalOpenResult } from '../wal/wal';
import { WatchService } from '../watch/watch_service';
import { WorkerInit } from '../../shared/apply_protocol';
import { idToHex } from '../../shared/ids';
import { deriveLimits, Limits } from '../../shared/limits';
import { mulberry32 } from '../../shared/random';
import { Ring } from '../../shared/ring';
import { readSwitches } from '../../shared/switches';
import { WatchSignal, WatchWorkerInit } from '../../shared/watch_protocol';
import { MvccStore } from '../../shared/mvcc/store';
import { currentLmdbDir, removeOtherGenerations } from '../../shared/store_generation';
import { ClientPorts } from './client_ports';
import { ConfChanges } from './conf_changes';
import { defaultWalDir, importEtcdIfPresent } from './etcd_import';
import { Identity, loadIdentity } from './identity';
import { PeerInbound, PeerLinks } from './peers';
import { publish } from './publish';
import { forceNewCluster, RecoveredLog, recoverLog } from './recover';
import { SnapshotSender } from './snapshot_sender';
import { EssentialWorker, progressNotifyIntervalMs, startWorker, WATCH_WORKER_LIMITS } from './supervision';
import { requestCompaction, syncVia } from '../compactor';
import { MemberTls, resolveTls } from './tls_setup';
import { AuthContext, AuthGate } from '../auth/auth_gate';
import { JwtTokens } from '../auth/jwt_token';
import { SimpleTokens } from '../auth/simple_token';
import type { TokenProvider } from '../auth/token_provider';
import { etcdserverpb } from '../../shared/gen/etcd';

/** What the process that runs a member is told. */
export interface MemberHooks {
  /** The member was removed from the cluster: the process should stop (as etcd's does). */
  onRemoved(): void;
}

/** Phase 1: member/ under --data-dir, locked for this process. */
interface DataDir {
  memberDir: string;
  lmdbDir: string;
  /** --wal-dir, or member/wal. */
  walDir: string;
  unlock: () => void;
}

/** Phase 2: the workers, the replayed WAL and a read-only view of the state machine. */
interface Storage {
  apply: EssentialWorker;
  compactor: EssentialWorker;
  watchWorker: { worker: Worker };
  watchInit: WatchWorkerInit;
  appliedIndex: number;
  recovered: WalOpenResult;
  store: MvccStore;
  metrics: EarlyMetrics;
  toApply: SharedArrayBuffer;
  fromApply: SharedArrayBuffer;
}

/** Phase 4: Raft and what talks to peers. */
interface RaftParts {
  node: RaftNode;
  peers: PeerLinks;
  confChanges: ConfChanges;
}

/** Phase 5: the services clients call. */
interface Services {
  lessor: Lessor;
  watch: WatchService;
  server: EtcdServer;
  cluster: ClusterService;
  /** --audit-log-path: null when there is no audit log. */
  auditLog: AuditLog | null;
}

/** --audit-log-path (docs/AUDIT.md): opened before the member serves, so a bad path stops the start. */
async function openAuditLog(cfg: Config, log: Logger, metrics: EarlyMetrics): Promise<AuditLog | null> {
  const a = cfg.audit;
  if (a.path === '') return null;
  const dropped = metrics.registry.counter(
    'etcd_ts_audit_log_dropped_lines_total',
    'Audit log lines lost: dropped in batch mode when the buffer was full, or in a failed write.',
  );
  let lastErrorAt = 0;
  try {
    const audit = await AuditLog.open({
      path: a.path,
      maxSizeBytes: a.maxSizeBytes,
      maxBackups: a.maxBackups,
      mode: a.mode,
      onDropped: (n) => dropped.inc(n),
      onError: (e) => {
        const now = Date.now();
        if (now - lastErrorAt < 1000) return; // one line a second, not one per failed batch
        lastErrorAt = now;
        log.error('failed to write the audit log', { path: a.path, error: e.message });
      },
    });
    log.info('audit log', { path: a.path, mode: a.mode, 'max-size-bytes': a.maxSizeBytes, 'max-backups': a.maxBackups });
    return audit;
  } catch (e) {
    throw new StartupError(`--audit-log-path ${a.path}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

async function openDataDir(cfg: Config, log: Logger): Promise<DataDir> {
  const memberDir = path.join(cfg.dataDir, 'member');
  fs.mkdirSync(memberDir, { recursive: true, mode: 0o700 });
  const unlock = await lockDataDir(memberDir);
  // An etcd data dir (docs/MIGRATION.md): imported once, before anything below reads the store.
  const walDir = cfg.walDir === '' ? defaultWalDir(memberDir) : cfg.walDir;
  try {
    await importEtcdIfPresent(memberDir, walDir, log);
  } catch (e) {
    unlock();
    throw e;
  }
  // The store's directory moves with every Defragment (src/shared/mvcc/generation.ts); what an
  // interrupted one left is removed.
  const lmdbDir = currentLmdbDir(memberDir);
  removeOtherGenerations(memberDir);
  fs.mkdirSync(lmdbDir, { recursive: true, mode: 0o700 });
  SnapshotSender.removeLeftovers(memberDir);
  return { memberDir, lmdbDir, walDir, unlock };
}

/** Workers load their modules and open LMDB while this thread reads the WAL: start-up time is the
 * slowest of the three, not their sum. */
async function openStorage(cfg: Config, lim: Readonly<Limits>, log: Logger, dir: DataDir, ident: Identity): Promise<Storage> {
  const { lmdbDir } = dir;
  const toApply = Ring.create(lim.ringBytes);
  const fromApply = Ring.create(lim.ringBytes);
  const init: WorkerInit = {
    lmdbDir,
    clusterId: ident.clusterId,
    memberId: ident.memberId,
    toApply,
    fromApply,
    applyBatchEntriesMax: lim.applyBatchEntriesMax,
  };
  // Watch worker: control ring in, response ring out, and the signal block (the main thread publishes
  // the durable revision there and rings).
  const watchInit: WatchWorkerInit = {
    lmdbDir,
    clusterId: ident.clusterId,
    memberId: ident.memberId,
    toWatch: Ring.create(lim.watchControlRingBytes),
    fromWatch: Ring.create(lim.watchResponseRingBytes),
    signal: WatchSignal.create(),
    maxRequestBytes: cfg.maxRequestBytes + lim.grpcOverheadBytes,
    progressNotifyIntervalMs: progressNotifyIntervalMs(cfg, log),
    batchMaxDelayMs: cfg.watchBatchMaxDelayMs,
  };
  const metrics = createEarlyMetrics();
  const [apply, compactor, recovered, watchWorker] = await Promise.all([
    startWorker('apply.js', { ...init, backendCommitHistogram: metrics.backendCommitSab }),
    startWorker('compact.js', { ...init, toApply: undefined, fromApply: undefined, batchRevisions: lim.compactionBatchRevisions }),
    Wal.open(dir.walDir, {
      segmentBytes: readSwitches(process.env).walSegmentBytes,
      batchBytesMax: lim.walBatchBytesMax,
      maxSegments: cfg.maxWals,
      onFsync: (sec) => metrics.walFsync.observe(sec),
      syncDelayMs: readSwitches(process.env).walSyncDelayMs,
    }),
    startWorker('watch.js', watchInit, WATCH_WORKER_LIMITS),
  ]);
  if (recovered.truncatedTail) log.warn('WAL had a torn tail (crash during a write); truncated it');
  return {
    apply: new EssentialWorker(apply.worker, 'apply', log),
    compactor: new EssentialWorker(compactor.worker, 'compaction', log),
    watchWorker,
    watchInit,
    appliedIndex: apply.ready.appliedIndex,
    recovered,
    store: MvccStore.open(lmdbDir, { readOnly: true }),
    metrics,
    toApply,
    fromApply,
  };
}

function buildRaft(
  cfg: Config,
  lim: Readonly<Limits>,
  log: Logger,
  dir: DataDir,
  ident: Identity,
  st: Storage,
  rec: RecoveredLog,
  hooks: MemberHooks,
  tls: MemberTls,
): RaftParts {
  const memberId = BigInt(ident.memberId);
  const { storage, conf, applied, membership } = rec;
  const raw = new RawNode({
    id: memberId,
    peers: conf.voters,
    learners: conf.learners,
    electionTick: Math.round(cfg.electionTimeoutMs / cfg.heartbeatIntervalMs),
    heartbeatTick: 1,
    storage,
    applied,
    maxSizePerMsg: 1024 * 1024,
    maxInflightMsgs: 256,
    preVote: cfg.preVote,
    checkQuorum: true,
    rand: mulberry32(Number(memberId & 0xffffffffn) ^ Date.now()),
    forwardProposals: true,
  });
  const peers = new PeerLinks(cfg, lim, memberId, BigInt(ident.clusterId), log, tls.peer);
  const confChanges = new ConfChanges(memberId, membership, st.store, peers, log, hooks.onRemoved);
  const snapshots = new SnapshotSender(dir.memberDir, st.store, peers, log);
  const watchSignal = new WatchSignal(st.watchInit.signal);
  const node = new RaftNode(
    {
      id: memberId,
      voters: conf.voters,
      heartbeatIntervalMs: cfg.heartbeatIntervalMs,
      electionTimeoutMs: cfg.electionTimeoutMs,
      maxRequestBytes: cfg.maxRequestBytes,
      pendingProposalsMax: lim.pendingProposalsMax,
      pendingReadsMax: lim.pendingReadsMax,
      requestTimeoutMs: lim.requestTimeoutMs,
      raftLogRetainEntries: lim.raftLogRetainEntries,
      snapshotCount: cfg.snapshotCount,
      snapshotEntryBytes: lim.snapshotEntryBytes,
      syncStateMachine: () => syncVia(st.compactor.worker),
      send: (msgs) => peers.send(msgs),
      sendSnapshot: (m, termAt) => snapshots.send(m, termAt),
      requestIdTag: membership.get(memberId)?.tag ?? ident.tag ?? ident.members.findIndex((m) => BigInt(m.id) === memberId),
      confState: conf,
    },
    {
      log,
      raw,
      storage,
      wal: st.recovered.wal,
      applied,
      toApply: new Ring(st.toApply),
      fromApply: new Ring(st.fromApply),
      decideConfChange: (e) => confChanges.decide(e),
      // The watch worker fans out up to the newest revision that is applied and durable (node.ts says why).
      onDurableRevision: (rev) => watchSignal.publishRevision(rev),
    },
  );
  node.onSnapshotInstalled(() => confChanges.snapshotInstalled());
  return { node, peers, confChanges };
}

function buildServices(
  cfg: Config,
  lim: Readonly<Limits>,
  log: Logger,
  ident: Identity,
  dir: DataDir,
  st: Storage,
  r: RaftParts,
  tokens: TokenProvider,
  auditLog: AuditLog | null,
): Services {
  const memberId = BigInt(ident.memberId);
  const clusterId = BigInt(ident.clusterId);
  const { node, peers, confChanges } = r;
  // Before the node starts: the lessor loads the stored leases, then follows every applied change.
  const electionTicks = Math.round(cfg.electionTimeoutMs / cfg.heartbeatIntervalMs);
  const lessor = new Lessor(node, st.store, log, {
    memberId,
    minTtlSeconds: Math.ceil((Math.floor((3 * electionTicks) / 2) * cfg.heartbeatIntervalMs) / 1000),
    forward: (to, kind, body) => peers.request(to, kind, body),
  });
  // Before the node starts, as the lessor: the gate reads the auth store, then follows every change.
  const auth = new AuthGate({
    snapshot: () => st.store.authSnapshot(),
    onAuthApplied: (fn) => node.onAuthApplied(fn),
    clientCertAuth: cfg.clientTls.clientCertAuth,
    tokens,
    log,
  });
  const auditor = auditLog === null ? null : new Auditor({ log: auditLog, member: cfg.name, gate: auth });
  let headerOf: () => etcdserverpb.IResponseHeader = () => ({});
  const watchInit = st.watchInit;
  const watch = new WatchService({
    worker: st.watchWorker.worker,
    toWatch: new Ring(watchInit.toWatch),
    fromWatch: new Ring(watchInit.fromWatch),
    signal: new WatchSignal(watchInit.signal),
    term: () => node.term,
    log,
    restart: async () => {
      // Fresh rings (the dead worker may have left a record half written), the same signal block.
      const init: WatchWorkerInit = {
        ...watchInit,
        toWatch: Ring.create(lim.watchControlRingBytes),
        fromWatch: Ring.create(lim.watchResponseRingBytes),
      };
      const { worker } = await startWorker('watch.js', init, WATCH_WORKER_LIMITS);
      return { worker, toWatch: new Ring(init.toWatch), fromWatch: new Ring(init.fromWatch) };
    },
    authorize: (ctx, key, end) => {
      if (ctx.serverInternal) return null;
      const refusal = watchRefusal(auth, ctx, key, end);
      auditor?.watchCreate(ctx, key, end, refusal);
      return refusal;
    },
    header: () => headerOf(),
  });
  const membership = (): Membership => confChanges.current;
  const server = new EtcdServer({
    cfg,
    log,
    node,
    store: st.store,
    clusterId,
    memberId,
    membership,
    lmdbDir: dir.lmdbDir,
    compactor: st.compactor.worker,
    watch,
    lessor,
    auth,
    onStoreSwitched: (d) => {
      watchInit.lmdbDir = d; // a restarted watch worker opens the current store
    },
  });
  headerOf = () => server.header();
  const cluster = new ClusterService({
    node,
    selfId: memberId,
    membership,
    store: st.store,
    header: () => server.header(),
    strictReconfigCheck: cfg.strictReconfigCheck,
    activeSince: (id) => peers.activeSince(id),
    forwardPromote: (leader, body) => peers.request(leader, FORWARD_PROMOTE, body),
    checkAdmin: (ctx) => auth.checkAdmin(ctx),
  });
  cluster.register(server.transport);
  server.transport.setAudit(auditor);
  return { lessor, watch, server, cluster, auditLog };
}

/** etcd's isWatchPermitted and the cancel reason it sends (v3rpc/watch.go recvLoop). */
function watchRefusal(auth: AuthGate, ctx: AuthContext, key: Uint8Array, end: Uint8Array): string | null {
  try {
    auth.state.checkRange(auth.authInfo(ctx), key, end);
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/**
 * Every applied Compaction, on every member, starts the compaction worker: the member that served the
 * request also asks it directly (server.ts), but the others only learn the new compact revision by
 * applying the entry, and without this kept every old revision until a restart (their database never
 * shrank, so a NOSPACE alarm could not be cleared by compact + defrag, and Maintenance.Hash differed).
 */
function compactWhenApplied(node: RaftNode, compactor: Worker): void {
  let last = node.status().compactRevision;
  node.onApplied(() => {
    const rev = node.status().compactRevision;
    if (rev <= last) return;
    last = rev;
    requestCompaction(compactor);
  });
}

/** What the peer port delivers, and to whom. */
function peerInbound(ident: Identity, r: RaftParts, s: Services, corrupt: CorruptChecker): PeerInbound {
  return {
    onMessages: (msgs) => r.node.step(msgs),
    onUnreachable: (id) => r.node.reportUnreachable(id),
    onSnapshot: async (msg, dir) => {
      try {
        await r.node.installSnapshot(msg, dir);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
    onRequest: (_from, kind, body) => {
      if (kind === FORWARD_PROMOTE) return s.cluster.promote(body);
      if (kind === PEER_HASHKV) return corrupt.serve(body);
      return s.lessor.serveForwarded(kind, body);
    },
    onDiscover: () => Buffer.from(JSON.stringify({ clusterId: ident.clusterId, members: r.confChanges.current.toState().members })),
    onRemoved: () => r.confChanges.removedSelf(),
  };
}

export class Member {
  readonly #log: Logger;
  readonly #dir: DataDir;
  readonly #st: Storage;
  readonly #raft: RaftParts;
  readonly #services: Services;
  readonly #ports: ClientPorts;
  readonly #stopAutoCompaction: () => void;

  private constructor(
    log: Logger,
    dir: DataDir,
    st: Storage,
    raft: RaftParts,
    services: Services,
    ports: ClientPorts,
    stopAuto: () => void,
  ) {
    this.#log = log;
    this.#dir = dir;
    this.#st = st;
    this.#raft = raft;
    this.#services = services;
    this.#ports = ports;
    this.#stopAutoCompaction = stopAuto;
  }

  /** Starts a member through every phase; resolves once it serves clients. */
  static async start(cfg: Config, log: Logger, hooks: MemberHooks): Promise<Member> {
    const t0 = Date.now();
    let lim: Readonly<Limits>;
    try {
      lim = deriveLimits(cfg);
    } catch (e) {
      throw new StartupError(`limits: ${(e as Error).message}`);
    }
    const tls = resolveTls(cfg, log);
    // --auth-token: JWT keys are read (and refused) before anything is opened.
    const tokens: TokenProvider = cfg.auth.jwt ? new JwtTokens(cfg.auth.jwt) : new SimpleTokens(cfg.auth.tokenTtlMs);
    const dir = await openDataDir(cfg, log);
    // etcd's memberInitialized: a member with data (not one created now) runs the initial corruption check.
    const initialized = fs.existsSync(path.join(dir.memberDir, 'identity.json'));
    const ident = await loadIdentity(cfg, dir.memberDir, log, tls.peer);
    log.info('starting etcd-ts', {
      name: cfg.name,
      'data-dir': cfg.dataDir,
      'member-id': idToHex(BigInt(ident.memberId)),
      'cluster-id': idToHex(BigInt(ident.clusterId)),
    });
    const st = await openStorage(cfg, lim, log, dir, ident);
    const rec = await recoverLog(st.recovered, st.store, ident, st.appliedIndex, log);
    if (cfg.forceNewCluster) await forceNewCluster(rec, st.recovered.wal, BigInt(ident.memberId), log);
    log.info('recovered WAL', {
      entries: st.recovered.entries.length,
      applied: rec.applied,
      lastIndex: rec.storage.lastIndex(),
      ms: Date.now() - t0,
    });
    const raft = buildRaft(cfg, lim, log, dir, ident, st, rec, hooks, tls);
    const auditLog = await openAuditLog(cfg, log, st.metrics);
    const services = buildServices(cfg, lim, log, ident, dir, st, raft, tokens, auditLog);
    const corrupt = new CorruptChecker({
      selfId: BigInt(ident.memberId),
      log,
      members: () => raft.confChanges.current.list(),
      request: (to, kind, body) => raft.peers.request(to, kind, body),
      hashByRev: (rev) => services.server.hashByRev(rev),
      node: raft.node,
    });
    await raft.peers.start(peerInbound(ident, raft, services, corrupt));
    if (ident.joined && rec.membership.size === 0) {
      // Before our first applied ConfChange: talk to the members the cluster told us about.
      raft.peers.addPeers(ident.members.map((m) => ({ id: BigInt(m.id), peerUrls: m.peerUrls })));
    } else {
      raft.peers.follow(rec.membership);
    }
    // As etcd: before this member serves peers' Raft traffic or clients (a new member has nothing to check).
    if (cfg.initialCorruptCheck && initialized) await corrupt.initialCheck();
    compactWhenApplied(raft.node, st.compactor.worker);
    raft.node.start();
    services.lessor.start();
    await publish(raft.node, st.store, cfg, ident, log);
    const ports = new ClientPorts();
    const grpcMetrics = new GrpcServerMetrics(cfg.metricsExtensive);
    services.server.transport.setMetrics(grpcMetrics);
    const counters = registerMemberMetrics(
      st.metrics,
      {
        node: raft.node,
        memberId: BigInt(ident.memberId),
        store: st.store,
        quotaBackendBytes: cfg.quotaBackendBytes,
        watchStreams: () => services.watch.streamCount,
        rings: ringGauges(st, services.watch),
        rangePool: { threads: () => services.server.rangePoolStats().threads, queueSize: () => services.server.rangePoolStats().queueSize },
        grpc: grpcMetrics,
      },
      () => ports.webSocketsOpen,
    );
    await ports.open({
      cfg,
      tls: tls.client,
      lim,
      log,
      node: raft.node,
      server: services.server,
      metrics: { counters, render: () => st.metrics.registry.render() },
    });
    const stopCompaction = startAutoCompaction(cfg, log, raft.node, services.server);
    corrupt.start(cfg.corruptCheckTimeMs);
    const stopAuto = (): void => {
      stopCompaction();
      corrupt.stop();
    };
    log.info('ready to serve client requests', { ms: Date.now() - t0 });
    return new Member(log, dir, st, raft, services, ports, stopAuto);
  }

  async stop(): Promise<void> {
    const { node, peers } = this.#raft;
    this.#stopAutoCompaction();
    this.#services.lessor.stop();
    this.#ports.close();
    await node.stop();
    await peers.stop();
    const wal = this.#st.recovered.wal;
    this.#log.info('wal stats', { ...wal.stats() });
    await wal.close();
    await this.#services.server.close();
    await this.#st.apply.terminate();
    await this.#st.compactor.terminate();
    await this.#services.watch.stop();
    await this.#st.store.close();
    await this.#services.auditLog?.close();
    this.#dir.unlock();
    this.#log.info('stopped');
  }
}

/** Ring fill levels for /metrics; the watch worker's are read through the service (a restarted
 * worker has fresh ones). */
function ringGauges(st: Storage, watch: WatchService): Parameters<typeof registerMemberMetrics>[1]['rings'] {
  return [
    { name: 'to_apply', ring: new Ring(st.toApply) },
    { name: 'from_apply', ring: new Ring(st.fromApply) },
    {
      name: 'to_watch',
      ring: {
        usedBytes: () => watch.rings.toWatch.usedBytes(),
        get capacityBytes() {
          return watch.rings.toWatch.capacityBytes;
        },
      },
    },
    {
      name: 'from_watch',
      ring: {
        usedBytes: () => watch.rings.fromWatch.usedBytes(),
        get capacityBytes() {
          return watch.rings.fromWatch.capacityBytes;
        },
      },
    },
  ];
}
