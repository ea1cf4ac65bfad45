// Watches opened inside the server (Lock, Election), the way etcd's concurrency recipes watch through
// their client: each is a stream on the very Watch handler that serves gRPC clients (WatchService),
// so it is fed by the watch worker with the same guarantees (revision order, no gaps, catch-up from
// history, compaction, backpressure) and there is no second watch mechanism. A stream costs what a
// client's does: an entry on the main thread and a watcher in the worker.
//
// As etcd's Go client resumes a watch whose stream broke, a stream that ends with UNAVAILABLE (the
// watch worker failed; WatchService restarts it) is opened again from the revision after the last
// event delivered, every watchLocalResumeDelayMs until the service takes it, so the user sees no gap
// and no error. Other ends (a refusal) reach the sink.
import { etcdserverpb } from '../../shared/gen/etcd';
import { Errors, GrpcCode } from '../../shared/errors';
import { limits } from '../../shared/limits';
import { toNum } from '../../shared/long';
import { CallContext, InProcessStream, NO_CONTEXT, StreamHandler } from '../net/rpc';

/** The recipes' watches: the server's own, on keys the recipe's checked reads already covered. */
const INTERNAL_CONTEXT: CallContext = { ...NO_CONTEXT, serverInternal: true };

export interface LocalWatchSink {
  /** One WatchResponse (created, events, canceled). Return false to have delivery stop (the stream
   * counts as congested, as a client that does not read) until LocalWatch.resume(). */
  onResponse(resp: etcdserverpb.WatchResponse): boolean;
  /** The watch service ended the watch other than by a worker failure (a refusal); not called after
   * stop(). */
  onEnd(code: number, message: string): void;
}

export interface LocalWatch {
  /** The sink can take more again (after onResponse returned false). */
  resume(): void;
  /** Cancels the watch; idempotent. No sink call follows. */
  stop(): void;
}

/** One stream on the Watch handler; LocalWatchImpl opens another if it breaks. */
class LocalWatchStream extends InProcessStream {
  readonly #owner: LocalWatchImpl;

  constructor(owner: LocalWatchImpl) {
    super();
    this.#owner = owner;
  }

  protected writeMessage(msg: Uint8Array): boolean {
    return this.#owner.onResponse(this, etcdserverpb.WatchResponse.decode(msg));
  }

  protected writeEnd(code: number, message: string): void {
    this.#owner.onStreamEnd(this, code, message);
  }
}

/** A watch that outlives its streams: it tracks the next revision to ask for when one breaks. */
class LocalWatchImpl implements LocalWatch {
  readonly #handler: StreamHandler;
  readonly #create: etcdserverpb.IWatchCreateRequest;
  readonly #sink: LocalWatchSink;
  readonly #onDone: () => void;
  #stream: LocalWatchStream | null = null;
  /** The revision to resume from: the start revision, then one past the last event delivered. */
  #nextRev: number;
  #timer: NodeJS.Timeout | null = null;
  #done = false;

  constructor(handler: StreamHandler, create: etcdserverpb.IWatchCreateRequest, sink: LocalWatchSink, onDone: () => void) {
    this.#handler = handler;
    this.#create = create;
    this.#sink = sink;
    this.#onDone = onDone;
    this.#nextRev = toNum(create.startRevision);
  }

  open(): void {
    this.#timer = null;
    if (this.#done) return;
    const stream = new LocalWatchStream(this);
    this.#stream = stream;
    stream.start(this.#handler, INTERNAL_CONTEXT); // a refusal arrives as onStreamEnd, before start returns
    stream.deliver(etcdserverpb.WatchRequest.encode({ createRequest: { ...this.#create, startRevision: this.#nextRev } }).finish());
  }

  onResponse(from: LocalWatchStream, resp: etcdserverpb.WatchResponse): boolean {
    if (this.#done || from !== this.#stream) return false;
    const last = resp.events.at(-1);
    if (last) this.#nextRev = toNum(last.kv?.modRevision) + 1;
    else if (this.#nextRev === 0 && resp.created) this.#nextRev = toNum(resp.header?.revision) + 1;
    return this.#sink.onResponse(resp);
  }

  onStreamEnd(from: LocalWatchStream, code: number, message: string): void {
    if (this.#done || from !== this.#stream) return;
    this.#stream = null;
    if (code === GrpcCode.Unavailable) {
      this.#timer = setTimeout(() => this.open(), limits.watchLocalResumeDelayMs);
      return;
    }
    this.#finish();
    this.#sink.onEnd(code, message);
  }

  resume(): void {
    this.#stream?.drained();
  }

  stop(): void {
    if (this.#done) return;
    const stream = this.#stream;
    this.#stream = null;
    this.#finish();
    stream?.cancel();
  }

  #finish(): void {
    this.#done = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#onDone();
  }
}

/** Opens in-process watches on a Watch stream handler, at most limits.watchLocalStreamsMax at once. */
export class LocalWatcher {
  readonly #handler: StreamHandler;
  #open = 0;

  constructor(handler: StreamHandler) {
    this.#handler = handler;
  }

  /**
   * Watches as a WatchCreateRequest would (etcd's normalisation of key and range_end applies). Throws
   * "too many requests" past the limit; a refusal by the watch service arrives as sink.onEnd, possibly
   * before this returns.
   */
  watch(create: etcdserverpb.IWatchCreateRequest, sink: LocalWatchSink): LocalWatch {
    if (this.#open >= limits.watchLocalStreamsMax) throw Errors.tooManyRequests();
    this.#open++;
    const w = new LocalWatchImpl(this.#handler, create, sink, () => {
      this.#open--;
    });
    try {
      w.open();
    } catch (e) {
      w.stop();
      throw e;
    }
    return w;
  }
}
