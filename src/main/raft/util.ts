// Small helpers shared by the raft core files: entry sizes, message construction, describing
// messages and entries for transcripts and assertion messages.

import { Entry, EntryType, Message, MessageType, NodeId, None } from './types';

/** Member ids in increasing order: the order of every deterministic walk over members. */
export function compareIds(a: NodeId, b: NodeId): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function sortIds(ids: Iterable<NodeId>): NodeId[] {
  return [...ids].sort(compareIds);
}

/** Size of an entry for maxSizePerMsg accounting: its payload (etcd counts the protobuf size). */
export function entrySize(e: Entry): number {
  return e.data.byteLength;
}

export function entriesSize(ents: Entry[]): number {
  let n = 0;
  for (const e of ents) n += entrySize(e);
  return n;
}

/** Prefix of ents whose total size is <= maxBytes, but always at least one entry. */
export function limitSize(ents: Entry[], maxBytes: number): Entry[] {
  if (ents.length === 0) return ents;
  let size = entrySize(ents[0]);
  let n = 1;
  for (; n < ents.length; n++) {
    size += entrySize(ents[n]);
    if (size > maxBytes) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}

/** A message with every field at its zero value, then the given ones. */
export function newMessage(m: Partial<Message> & { type: MessageType }): Message {
  return {
    type: m.type,
    from: m.from ?? None,
    to: m.to ?? None,
    term: m.term ?? 0,
    logTerm: m.logTerm ?? 0,
    index: m.index ?? 0,
    entries: m.entries ?? [],
    commit: m.commit ?? 0,
    reject: m.reject ?? false,
    rejectHint: m.rejectHint ?? 0,
    context: m.context ?? null,
    snapshot: m.snapshot ?? null,
  };
}

/** Messages generated and consumed inside one node; never sent over the network. */
export function isLocalMsg(t: MessageType): boolean {
  return (
    t === MessageType.Hup ||
    t === MessageType.Beat ||
    t === MessageType.Unreachable ||
    t === MessageType.SnapStatus ||
    t === MessageType.CheckQuorum
  );
}

export function isResponseMsg(t: MessageType): boolean {
  return (
    t === MessageType.AppResp ||
    t === MessageType.VoteResp ||
    t === MessageType.HeartbeatResp ||
    t === MessageType.Unreachable ||
    t === MessageType.PreVoteResp
  );
}

export function voteRespMsgType(t: MessageType): MessageType {
  return t === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp;
}

export function bytesEqual(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A string key for a byte string (read-index contexts); latin1, one char per byte. */
export function bytesKey(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.byteLength; i++) s += String.fromCharCode(b[i]);
  return s;
}

export function describeEntry(e: Entry): string {
  const type = e.type === EntryType.Normal ? 'EntryNormal' : 'EntryConfChange';
  return `${e.term}/${e.index} ${type} ${JSON.stringify(bytesKey(e.data))}`;
}

export function describeMessage(m: Message): string {
  let s = `${m.from}->${m.to} Msg${MessageType[m.type]} Term:${m.term} Log:${m.logTerm}/${m.index}`;
  if (m.reject) s += ` Rejected (Hint: ${m.rejectHint})`;
  if (m.commit !== 0) s += ` Commit:${m.commit}`;
  if (m.entries.length > 0) s += ` Entries:[${m.entries.map(describeEntry).join(', ')}]`;
  if (m.context !== null && m.context.byteLength > 0) s += ` Context:${JSON.stringify(bytesKey(m.context))}`;
  if (m.snapshot !== null) {
    const md = m.snapshot.metadata;
    s += ` Snapshot: Index:${md.index} Term:${md.term} Voters:[${md.voters.join(' ')}]`;
    if (md.learners.length > 0) s += ` Learners:[${md.learners.join(' ')}]`;
  }
  return s;
}
