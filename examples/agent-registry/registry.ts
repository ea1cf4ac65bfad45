// The agent-registry recipe: agents announce themselves under a lease they keep alive, consumers
// discover them with one prefix read and follow changes with one watch. Uses only the `etcd3` npm
// client, so it works the same against etcd-ts and etcd.
//
//   /agents/<capability>/<agent id>  ->  {"id","capability","endpoint","meta","registeredAt"}
//
// When an agent stops renewing (crash, partition, shutdown without deregistering), its lease expires
// after the TTL and the server deletes the key: every follower sees a DELETE for it.
import { Etcd3, Lease, Watcher } from 'etcd3';

export const AGENTS_PREFIX = '/agents/';

export interface AgentInfo {
  id: string;
  capability: string;
  endpoint: string;
  meta?: Record<string, unknown>;
}

export interface AgentRecord extends AgentInfo {
  registeredAt: string;
}

export function agentKey(capability: string, id: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(capability) || !/^[A-Za-z0-9._-]+$/.test(id)) {
    throw new Error(`capability and id must match [A-Za-z0-9._-]+ (got ${JSON.stringify(capability)}, ${JSON.stringify(id)})`);
  }
  return `${AGENTS_PREFIX}${capability}/${id}`;
}

/** A live registration: the lease is renewed in the background until stop() or deregister(). */
export class Registration {
  readonly key: string;
  readonly lease: Lease;

  constructor(key: string, lease: Lease) {
    this.key = key;
    this.lease = lease;
  }

  /** The lease ID as a decimal string (what `etcdctl lease timetolive` takes, in hex). */
  leaseId(): Promise<string> {
    return this.lease.grant();
  }

  /** Stops renewing without deleting: the entry disappears when the TTL runs out (as after a crash). */
  abandon(): void {
    this.lease.release();
  }

  /** Leaves at once: revokes the lease, which deletes the entry. */
  deregister(): Promise<void> {
    return this.lease.revoke();
  }
}

/** Registers an agent under a new lease of ttlSeconds, kept alive by the client (every TTL/3). */
export async function register(client: Etcd3, info: AgentInfo, ttlSeconds = 10): Promise<Registration> {
  const key = agentKey(info.capability, info.id);
  const record: AgentRecord = { ...info, registeredAt: new Date().toISOString() };
  const lease = client.lease(ttlSeconds, { autoKeepAlive: true });
  lease.on('lost', () => { /* the registration is gone; a real agent would register again */ });
  await lease.put(key).value(JSON.stringify(record));
  return new Registration(key, lease);
}

/** Every live agent with this capability (or all agents when capability is omitted). */
export async function discover(client: Etcd3, capability?: string): Promise<AgentRecord[]> {
  const prefix = capability === undefined ? AGENTS_PREFIX : `${AGENTS_PREFIX}${capability}/`;
  const values = await client.getAll().prefix(prefix).strings();
  return Object.keys(values).sort().map((k) => JSON.parse(values[k]) as AgentRecord);
}

export interface FollowHandlers {
  up?(agent: AgentRecord): void;
  down?(key: string): void;
}

/**
 * Follows registrations under the prefix from `fromRevision` (the revision of a discover() read
 * plus one, so nothing between the read and the watch is missed); returns the watcher (cancel() it).
 */
export function follow(client: Etcd3, capability: string | undefined, fromRevision: string | undefined, h: FollowHandlers): Promise<Watcher> {
  const prefix = capability === undefined ? AGENTS_PREFIX : `${AGENTS_PREFIX}${capability}/`;
  let b = client.watch().prefix(prefix);
  if (fromRevision !== undefined) b = b.startRevision(fromRevision);
  return b.create().then((w) => {
    w.on('put', (kv) => h.up?.(JSON.parse(kv.value.toString()) as AgentRecord));
    w.on('delete', (kv) => h.down?.(kv.key.toString()));
    return w;
  });
}

/** discover() and the revision it read at, for a follow() that misses nothing. */
export async function snapshot(client: Etcd3, capability?: string): Promise<{ agents: AgentRecord[]; nextRevision: string }> {
  const prefix = capability === undefined ? AGENTS_PREFIX : `${AGENTS_PREFIX}${capability}/`;
  const r = await client.getAll().prefix(prefix).exec();
  const agents = r.kvs.map((kv) => JSON.parse(kv.value.toString()) as AgentRecord);
  return { agents, nextRevision: (BigInt(r.header.revision) + 1n).toString() };
}
