// A task of the range pool (piscina; src/workers/range.ts) and its result: the main thread sends
// one for scans too large to serve inline (src/main/server.ts). Structured clone carries it, so
// only plain data: the encoded request, and the encoded response or an operating error as {code, message}.
export interface RangeTask {
  /** 'range' (default): request is a RangeRequest. 'hashKV': request is a HashKVRequest. 'hash': a HashRequest. */
  kind?: 'range' | 'hashKV' | 'hash';
  lmdbDir: string;
  clusterId: string;
  memberId: string;
  raftTerm: number;
  request: Uint8Array;
}

export type RangeTaskResult = { ok: Uint8Array } | { err: { code: number; message: string } };
