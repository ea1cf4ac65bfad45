// The raft tests' own encoding of a conf change in entry data, as text: "add 4", "add-learner 5",
// "remove 2", "update 3". Raft never looks inside an entry's data: the driver decodes it and calls
// applyConfChange (the server with etcd's protobuf; the transcript and simulation tests with this).
// Not a test file itself.
import { strict as assert } from 'node:assert';
import { ConfChange, ConfChangeType, Entry, EntryType, NodeId } from '../../src/main/raft/types';

const kinds: ReadonlyArray<[string, ConfChangeType]> = [
  ['add', ConfChangeType.AddNode], ['add-learner', ConfChangeType.AddLearnerNode],
  ['remove', ConfChangeType.RemoveNode], ['update', ConfChangeType.UpdateNode],
];

/** "add 4": kind is add, add-learner, remove or update. */
export function encodeConfChange(kind: string, id: NodeId | string): Uint8Array {
  assert.ok(kinds.some(([n]) => n === kind), `unknown conf change ${kind}`);
  assert.ok(/^\d+$/.test(String(id)), `bad node id ${id}`);
  return new TextEncoder().encode(`${kind} ${id}`);
}

export function decodeConfChange(e: Entry): ConfChange {
  const text = new TextDecoder().decode(e.data);
  const [kind, id] = text.split(' ');
  const k = kinds.find(([n]) => n === kind);
  assert.ok(k !== undefined && id !== undefined, `undecodable conf change ${text}`);
  return { type: k[1], nodeId: BigInt(id) };
}

/**
 * A configuration written as the log's first entries, like etcd's RawNode.Bootstrap: committed
 * ConfChange entries 1..n at term 1, "add <voter>" for each voter then "add-learner <learner>".
 */
export function bootstrapEntries(voters: NodeId[], learners: NodeId[] = []): Entry[] {
  const changes = [...voters.map((id) => encodeConfChange('add', id)), ...learners.map((id) => encodeConfChange('add-learner', id))];
  return changes.map((data, i) => ({ term: 1, index: i + 1, type: EntryType.ConfChange, data }));
}
