// Key ranges as etcd's clients build them.

/** The first key after every key with this prefix (clientv3's GetPrefixRangeEnd); "\0" (all keys
 * from the prefix on) when the prefix is all 0xff bytes. */
export function prefixEnd(prefix: Uint8Array): Buffer {
  const e = Buffer.from(prefix);
  for (let i = e.length - 1; i >= 0; i--) {
    if (e[i] < 0xff) {
      e[i]++;
      return e.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
