// Maintenance.Defragment without stopping the member. etcd 3.4 blocks every request for the whole
// rewrite of its bbolt file; here the copy is made from a read transaction while the member serves,
// and writes pause only while the apply worker replays into the copy what it applied during the copy.
//
//   main                         apply worker                 compaction worker        other readers
//   DEFRAG_BEGIN ───────────────► keeps every entry it applies
//                ◄─────────────── DEFRAG_RECORDING
//   copy dir ───────────────────────────────────────────────► mdb_env_copy2(COMPACT) of one
//                                                              read txn, in LMDB's thread; one
//                                                              small write txn on the copy
//                ◄─────────────────────────────────────────── copied
//   DEFRAG_SWITCH dir ──────────► replays the kept entries into the copy (those it holds are skipped
//                                 by index), writes to it from now on
//                ◄─────────────── DEFRAG_SWITCHED (pause ms)   [before any later result]
//   main thread's MvccStore.reopen(dir); range tasks name dir from now on; watchInit.lmdbDir = dir
//   reopen dir ─────────────────────────────────────────────► reopen + mdb_env_sync(dir)
//                ◄─────────────────────────────────────────── reopened
//   lmdb.current := dir (generation.ts: durable), then the old directory is removed
//
// The watch worker and the range workers switch by themselves: a range task names its directory, and
// the watch worker reopens the store named in member/lmdb.active (written at the switch) when the
// revision it is told of is past its store's (only the switch can make that happen: a revision is
// announced only once applied).
// Until the pointer is written a restart uses the old directory, which holds everything the WAL does
// not replay: the WAL is released only after a sync, which after the switch syncs the new directory
// and is answered after `reopened` (the compaction worker's messages are ordered).
import * as fs from 'node:fs';
import type { Worker } from 'node:worker_threads';
import { DefragOp } from '../shared/apply_protocol';
import { assertCompactFromWorker, copyMsg, reopenMsg } from '../shared/compact_protocol';
import { EtcdError, GrpcCode } from '../shared/errors';
import { nextLmdbDir, setActiveLmdbDir, setCurrentLmdbDir } from '../shared/store_generation';
import type { MvccStore } from '../shared/mvcc/store';
import type { Logger } from './log';
import type { RaftNode } from './node/node';

export interface DefragDeps {
  memberDir: string;
  node: RaftNode;
  store: MvccStore;
  compactor: Worker;
  log: Logger;
  /** Called once every main-thread user must read dir (range tasks, a restarted watch worker). */
  onSwitched: (dir: string) => void;
}

export interface DefragResult {
  oldBytes: number;
  newBytes: number;
  copyMs: number;
  pauseMs: number;
  totalMs: number;
}

let requestSeq = 0;

export class Defragmenter {
  readonly #d: DefragDeps;
  #running: Promise<DefragResult> | null = null;

  constructor(d: DefragDeps) {
    this.#d = d;
  }

  /** One defragmentation at a time: a second call while one runs waits for the same one. */
  defragment(): Promise<DefragResult> {
    this.#running ??= this.#run().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  async #run(): Promise<DefragResult> {
    const d = this.#d;
    const t0 = performance.now();
    const oldDir = d.store.dir;
    if (oldDir === null) throw new Error('invariant: the main thread store has a directory');
    const oldBytes = d.store.dbSizeBytes();
    const dir = nextLmdbDir(d.memberDir);
    try {
      await this.#applyStep(DefragOp.Begin, '', DefragOp.Recording);
      const tc = performance.now();
      await this.#compactorStep('copied', (id) => copyMsg(id, dir));
      const copyMs = performance.now() - tc;
      // Switched in the reply's handler itself, before the main thread handles the results and APPLIED
      // messages behind it: nothing on this thread reads the old environment after a later revision.
      const pauseMs = await this.#applyStep(DefragOp.Switch, dir, DefragOp.Switched, () => {
        void d.store.reopen(dir); // the switch is synchronous; the promise is the old handle's close
        setActiveLmdbDir(d.memberDir, dir); // for the watch worker, before any later revision is announced
        d.onSwitched(dir);
      });
      await this.#compactorStep('reopened', (id) => reopenMsg(id, dir));
      setCurrentLmdbDir(d.memberDir, dir);
      fs.rmSync(oldDir, { recursive: true, force: true });
      const r = { oldBytes, newBytes: d.store.dbSizeBytes(), copyMs, pauseMs, totalMs: performance.now() - t0 };
      d.log.info('defragmented', { dir, ...r });
      return r;
    } catch (e) {
      if (d.store.dir !== dir) fs.rmSync(dir, { recursive: true, force: true });
      d.log.warn('defragment failed', { error: (e as Error).message });
      throw e instanceof EtcdError ? e : new EtcdError(GrpcCode.Unknown, (e as Error).message);
    }
  }

  /** Sends op to the apply worker and waits for its reply `want` (resolves with its number); onOk runs
   *  inside the reply's handler, in order with the apply worker's other messages. */
  #applyStep(op: DefragOp, text: string, want: DefragOp, onOk?: () => void): Promise<number> {
    const node = this.#d.node;
    return new Promise<number>((resolve, reject) => {
      node.onDefragReply((got, num, reply) => {
        node.onDefragReply(null);
        if (got === want) onOk?.();
        if (got === want) resolve(num);
        else reject(new EtcdError(GrpcCode.Unavailable, `etcd-ts: defragment aborted: ${reply}`));
      });
      node.sendDefrag(op, text).catch(reject);
    });
  }

  /** Sends a copy or reopen request to the compaction worker and waits for its answer. */
  #compactorStep(kind: 'copied' | 'reopened', msg: (id: number) => ReturnType<typeof copyMsg>): Promise<void> {
    const w = this.#d.compactor;
    const id = ++requestSeq;
    return new Promise<void>((resolve, reject) => {
      const onMessage = (m: unknown): void => {
        assertCompactFromWorker(m);
        if (m.kind !== kind || m.id !== id) return;
        w.off('message', onMessage);
        if (m.error !== undefined) reject(new Error(`${kind}: ${m.error}`));
        else resolve();
      };
      w.on('message', onMessage);
      w.postMessage(msg(id));
    });
  }
}
