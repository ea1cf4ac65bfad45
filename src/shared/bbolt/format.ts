// The on-disk layout of a bbolt database file (etcd-io/bbolt internal/common: page.go, meta.go, inbucket.go),
// the format of etcd's backend and of an `etcdctl snapshot save` file. Facts only: the writer and the reader
// of our own snapshot and import code build on these. All integers are little-endian (bbolt writes its
// structs in the machine's byte order; every platform etcd ships on is little-endian).
//
//   page header (16 bytes)           meta page body (64 bytes, after the header, pages 0 and 1)
//   +0  id       u64                 +0  magic    u32  0xED0CDAED
//   +8  flags    u16                 +4  version  u32  2
//   +10 count    u16                 +8  pageSize u32
//   +12 overflow u32 (extra pages)   +12 flags    u32  0
//                                    +16 root     bucket header (below): the root bucket of all buckets
//                                    +32 freelist u64  page id of the freelist page
//                                    +40 pgid     u64  high-water mark: first page id past the file's pages
//                                    +48 txid     u64
//                                    +56 checksum u64  FNV-1a 64 of bytes +0..+56
//
//   bucket header (16 bytes): root u64 (0 for an inline bucket), sequence u64. An inline bucket's value is
//   the header followed by one leaf page (its id 0) holding the bucket's elements.
//
//   leaf element (16 bytes): flags u32 (bucketLeafFlag for a nested bucket), pos u32, ksize u32, vsize u32;
//   branch element (16 bytes): pos u32, ksize u32, pgid u64. `pos` is from the element's own offset to its
//   key; the value follows the key.
//
//   freelist page: `count` free page ids (u64 each) after the header; when the count is 0xFFFF or more, the
//   header's count is 0xFFFF and the first u64 holds the real count.

export const pageHeaderBytes = 16;
export const metaBytes = 64;
export const bucketHeaderBytes = 16;
export const leafElementBytes = 16;
export const branchElementBytes = 16;

export const branchPageFlag = 0x01;
export const leafPageFlag = 0x02;
export const metaPageFlag = 0x04;
export const freelistPageFlag = 0x10;

/** Leaf element flag: the value is a nested bucket (a bucket header, inline or not). */
export const bucketLeafFlag = 0x01;

export const boltMagic = 0xed0cdaed;
export const boltVersion = 2;
/** bbolt's default page size on Linux (os.Getpagesize()). */
export const defaultPageBytes = 4096;
/** A freelist page's count field saturates here; the real count is then the first u64 (page.go). */
export const freelistCountOverflow = 0xffff;
/** bbolt keeps a bucket inline when its single leaf page fits in a quarter of a page (bucket.go). */
export const inlineBucketFraction = 4;
/** How full bbolt fills a page before splitting a node (bucket.go DefaultFillPercent). */
export const defaultFillPercent = 0.5;

/** etcd 3.4's bucket names (mvcc/backend, etcdserver/api/membership, auth). */
export const etcdBuckets = {
  key: 'key',
  meta: 'meta',
  lease: 'lease',
  members: 'members',
  membersRemoved: 'members_removed',
  cluster: 'cluster',
  alarm: 'alarm',
  auth: 'auth',
  authUsers: 'authUsers',
  authRoles: 'authRoles',
} as const;

/** The SHA-256 of the database that `Maintenance.Snapshot` appends and `etcdctl snapshot restore` checks. */
export const snapshotTrailerBytes = 32;
/** etcdctl treats a file as checksummed when its size modulo this is snapshotTrailerBytes (snapshot/v3_snapshot.go). */
export const snapshotSizeModulus = 512;

const fnvOffset = 0xcbf29ce484222325n;
const fnvPrime = 0x100000001b3n;
const mask64 = 0xffffffffffffffffn;

/** FNV-1a 64 (Go's hash/fnv New64a), the checksum of a meta page over its first 56 bytes. */
export function fnv1a64(bytes: Uint8Array): bigint {
  let h = fnvOffset;
  for (let i = 0; i < bytes.length; i++) {
    h ^= BigInt(bytes[i]!);
    h = (h * fnvPrime) & mask64;
  }
  return h;
}
