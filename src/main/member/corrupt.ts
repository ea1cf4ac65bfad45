// etcd 3.4's corruption checks (etcdserver/corrupt.go), with its log lines and field names:
//
// - --experimental-initial-corrupt-check: before a member that has data serves anyone, it computes its
//   HashKV at its own revision and asks every peer for theirs at that revision. A different hash with
//   the same compact revision is a mismatch, and the member refuses to start with etcd's error
//   "<id> found data inconsistency with peers". Peers that cannot answer (down, behind, compacted) are
//   logged and skipped, as etcd does.
// - --experimental-corrupt-check-time: every period the leader takes its HashKV (h, rev, crev), asks
//   every follower for theirs at rev, waits for a linearizable read, takes its own again (h2, rev2,
//   crev2), and raises the CORRUPT alarm through the log (memberID 0: which member is corrupt is not
//   known, as in etcd 3.4.23) when its two hashes differ at the same revisions, a follower is ahead of it
//   (revision or compact revision), or a follower with the same compact revision has another hash. The
//   apply worker then refuses writes with "etcdserver: corrupt cluster" (src/workers/mvcc/alarm_apply.ts).
//
// etcd asks over HTTP (GET /members/hashkv on the peer URL, a JSON HashKVRequest, a JSON HashKVResponse
// back). Our peer port speaks its own protocol (src/main/peer/transport.ts), so the same request travels
// as a peer request of kind PEER_HASHKV with the same JSON bodies.
import { etcdserverpb } from '../../shared/gen/etcd';
import { RequestKind } from '../../shared/entry';
import { idToHex } from '../../shared/ids';
import { Logger } from '../log';
import type { RaftNode } from '../node/node';
import { StartupError } from '../startup_error';

/** The peer request kind of etcd's /members/hashkv. */
export const PEER_HASHKV = 'hashkv';

export interface HashByRev {
  hash: number;
  revision: number;
  compactRevision: number;
}

export interface CorruptCheckDeps {
  selfId: bigint;
  log: Logger;
  /** The cluster's members now (this one included). */
  members(): Array<{ id: bigint; peerURLs: string[] }>;
  /** A peer request (PeerLinks.request): rejects with the peer's error message. */
  request(to: bigint, kind: string, body: Uint8Array): Promise<Uint8Array>;
  /** This member's kv.HashByRev (EtcdServer.hashByRev). */
  hashByRev(rev: number): Promise<HashByRev>;
  node: Pick<RaftNode, 'isLeader' | 'readBarrier' | 'propose'>;
}

interface PeerHash {
  id: bigint;
  eps: string[];
  resp: HashByRev | null;
  err: Error | null;
}

export class CorruptChecker {
  readonly #d: CorruptCheckDeps;
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;

  constructor(d: CorruptCheckDeps) {
    this.#d = d;
  }

  /** A peer's HashKV request: etcd's hashKVHandler, JSON in and out (Go's encoding/json field names). */
  async serve(body: Uint8Array): Promise<Uint8Array> {
    const req = JSON.parse(Buffer.from(body).toString('utf8')) as { revision?: number };
    const h = await this.#d.hashByRev(Number(req.revision ?? 0));
    return Buffer.from(JSON.stringify(hashKVJson(h)));
  }

  /** etcd's CheckInitialHashKV; throws a StartupError on a mismatch. */
  async initialCheck(): Promise<void> {
    const { log } = this.#d;
    const self = idToHex(this.#d.selfId);
    log.info('starting initial corruption check', { 'local-member-id': self });
    const { hash: h, revision: rev, compactRevision: crev } = await this.#d.hashByRev(0);
    let mismatch = 0;
    for (const p of await this.#peerHashes(rev)) {
      const local = {
        'local-member-id': self,
        'local-member-revision': rev,
        'local-member-compact-revision': crev,
        'local-member-hash': h,
      };
      const remote = { 'remote-peer-id': idToHex(p.id), 'remote-peer-endpoints': p.eps };
      if (p.resp !== null) {
        const fields = {
          ...local,
          ...remote,
          'remote-peer-revision': p.resp.revision,
          'remote-peer-compact-revision': p.resp.compactRevision,
          'remote-peer-hash': p.resp.hash,
        };
        if (h === p.resp.hash) continue;
        if (crev === p.resp.compactRevision) {
          log.warn('found different hash values from remote peer', fields);
          mismatch++;
        } else {
          log.warn('found different compact revision values from remote peer', fields);
        }
        continue;
      }
      const msg = p.err?.message ?? '';
      if (msg.includes('future revision')) log.warn('cannot fetch hash from slow remote peer', { ...local, ...remote, error: msg });
      else if (msg.includes('compacted'))
        log.warn('cannot fetch hash from remote peer; local member is behind', { ...local, ...remote, error: msg });
    }
    if (mismatch > 0) throw new StartupError(`${self} found data inconsistency with peers`);
    log.info('initial corruption checking passed; no corruption', { 'local-member-id': self });
  }

  /** etcd's monitorKVHash: a pass every periodMs, on the leader only. */
  start(periodMs: number): void {
    if (periodMs <= 0) return;
    this.#d.log.info('enabled corruption checking', { 'local-member-id': idToHex(this.#d.selfId), interval: `${periodMs}ms` });
    const next = (): void => {
      if (this.#stopped) return;
      this.#timer = setTimeout(() => {
        const pass = this.#d.node.isLeader ? this.checkHashKV() : Promise.resolve();
        pass.catch((e: Error) => this.#d.log.warn('failed to check hash KV', { error: e.message })).finally(next);
      }, periodMs);
    };
    next();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
  }

  /** etcd's checkHashKV: one pass on the leader. */
  async checkHashKV(): Promise<void> {
    const { log } = this.#d;
    const { hash: h, revision: rev, compactRevision: crev } = await this.#d.hashByRev(0);
    const peers = await this.#peerHashes(rev);
    await this.#d.node.readBarrier();
    const { hash: h2, revision: rev2, compactRevision: crev2 } = await this.#d.hashByRev(0);
    let alarmed = false;
    const mismatch = (): void => {
      if (alarmed) return;
      alarmed = true;
      this.#raiseCorrupt();
    };
    if (h2 !== h && rev2 === rev && crev === crev2) {
      log.warn('found hash mismatch', {
        'revision-1': rev,
        'compact-revision-1': crev,
        'hash-1': h,
        'revision-2': rev2,
        'compact-revision-2': crev2,
        'hash-2': h2,
      });
      mismatch();
    }
    let checked = 0;
    for (const p of peers) {
      if (p.resp === null) continue;
      checked++;
      const peer = idToHex(p.id);
      if (p.resp.revision > rev2) {
        log.warn("revision from follower must be less than or equal to leader's", {
          'leader-revision': rev2,
          'follower-revision': p.resp.revision,
          'follower-peer-id': peer,
        });
        mismatch();
      }
      if (p.resp.compactRevision > crev2) {
        log.warn("compact revision from follower must be less than or equal to leader's", {
          'leader-compact-revision': crev2,
          'follower-compact-revision': p.resp.compactRevision,
          'follower-peer-id': peer,
        });
        mismatch();
      }
      if (p.resp.compactRevision === crev && p.resp.hash !== h) {
        log.warn('same compact revision then hashes must match', {
          'leader-compact-revision': crev2,
          'leader-hash': h,
          'follower-compact-revision': p.resp.compactRevision,
          'follower-hash': p.resp.hash,
          'follower-peer-id': peer,
        });
        mismatch();
      }
    }
    log.info('finished peer corruption check', { 'number-of-peers-checked': checked });
  }

  #raiseCorrupt(): void {
    const AlarmRequest = etcdserverpb.AlarmRequest;
    const req = AlarmRequest.encode({
      memberID: 0,
      action: AlarmRequest.AlarmAction.ACTIVATE,
      alarm: etcdserverpb.AlarmType.CORRUPT,
    }).finish();
    this.#d.node
      .propose(RequestKind.Alarm, req)
      .catch((e: Error) => this.#d.log.warn('failed to raise the CORRUPT alarm', { error: e.message }));
  }

  /** etcd's getPeerHashKVs: every other member's HashKV at rev, or the error it answered. */
  async #peerHashes(rev: number): Promise<PeerHash[]> {
    const body = Buffer.from(JSON.stringify({ revision: rev }));
    const peers = this.#d.members().filter((m) => m.id !== this.#d.selfId && m.peerURLs.length > 0);
    return Promise.all(
      peers.map(async (m): Promise<PeerHash> => {
        try {
          const resp = parseHashKVJson(await this.#d.request(m.id, PEER_HASHKV, body));
          return { id: m.id, eps: m.peerURLs, resp, err: null };
        } catch (e) {
          const err = e instanceof Error ? e : new Error(String(e));
          this.#d.log.warn('failed hash kv request', {
            'local-member-id': idToHex(this.#d.selfId),
            'requested-revision': rev,
            'remote-peer-endpoint': m.peerURLs[0],
            error: err.message,
          });
          return { id: m.id, eps: m.peerURLs, resp: null, err };
        }
      }),
    );
  }
}

/** A HashKVResponse as Go's encoding/json writes etcd's (omitempty: zeros left out). */
function hashKVJson(h: HashByRev): Record<string, unknown> {
  const out: Record<string, unknown> = { header: h.revision !== 0 ? { revision: h.revision } : {} };
  if (h.hash !== 0) out.hash = h.hash;
  if (h.compactRevision !== 0) out.compact_revision = h.compactRevision;
  return out;
}

function parseHashKVJson(b: Uint8Array): HashByRev {
  const j = JSON.parse(Buffer.from(b).toString('utf8')) as { header?: { revision?: number }; hash?: number; compact_revision?: number };
  return { hash: Number(j.hash ?? 0), revision: Number(j.header?.revision ?? 0), compactRevision: Number(j.compact_revision ?? 0) };
}
