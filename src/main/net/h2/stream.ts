// One HTTP/2 stream on the server side (RFC 9113 5.1). A stream is created by the client's HEADERS
// and lives in the session's map while it is open or half-closed; it leaves the map (closed) when
// both sides have ended, or on RST_STREAM either way, or when the connection goes. Outbound DATA is
// queued here and written by the session as both flow-control windows allow; trailers wait until
// the queue is empty. The gRPC layer talks only to this class and to StreamListener.
import type { H2Session } from './session';

/** Implemented by the gRPC call bound to a stream. Payload buffers are stable: they may be kept. */
export interface StreamListener {
  onData(stream: H2Stream, buf: Buffer, start: number, end: number): void;
  /** The client half-closed (END_STREAM). */
  onEnd(stream: H2Stream): void;
  /** The stream left the session: `reset` is false only when both sides ended normally. */
  onClose(stream: H2Stream, reset: boolean): void;
  /** Queued output fell back under the high-water mark after a send reported it full. */
  onDrain?(stream: H2Stream): void;
}

export class H2Stream {
  readonly id: number;
  readonly session: H2Session;
  listener: StreamListener | null = null;
  /** Bytes we may still send (peer's window for this stream); may go negative after a SETTINGS
   *  change lowers INITIAL_WINDOW_SIZE (RFC 9113 6.9.2). */
  sendWindow: number;
  /** Bytes the peer may still send us before our next WINDOW_UPDATE. */
  recvWindow: number;
  /** Bytes received and consumed since our last WINDOW_UPDATE for this stream. */
  recvUnacked = 0;
  remoteClosed = false;
  localClosed = false;
  headersSent = false;
  closed = false;
  /** Outbound DATA payload pieces, in order; queue[queueHead] is partly sent up to headOffset. */
  queue: Buffer[] = [];
  queueHead = 0;
  headOffset = 0;
  queuedBytes = 0;
  /** Set when a sender saw the queue over its high-water mark; cleared when onDrain fires. */
  drainWanted = false;
  /** Encoded trailer block to send with END_STREAM once the queue drains. */
  trailers: Buffer | null = null;

  constructor(session: H2Session, id: number, sendWindow: number, recvWindow: number) {
    this.session = session;
    this.id = id;
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  /** Sends the response HEADERS (a pre-encoded block). endStream makes it trailers-only. */
  respond(block: Buffer, endStream: boolean): void {
    if (this.closed || this.headersSent) return;
    this.headersSent = true;
    this.session.writeResponseHeaders(this, block, endStream);
  }

  /** Queues DATA bytes (kept by reference until sent: the caller must not modify them). A second
   *  buffer is queued before pumping, so a gRPC prefix and its message share DATA frames. */
  write(data: Buffer, more?: Buffer): void {
    if (this.closed || this.localClosed || this.trailers !== null) return;
    this.queue.push(data);
    this.queuedBytes += data.length;
    if (more !== undefined) {
      this.queue.push(more);
      this.queuedBytes += more.length;
    }
    this.session.pump(this);
  }

  /**
   * Queues data without keeping it: as pieces of at most pieceBytes, which the session copies into its
   * output buffers as far as the flow-control windows allow (one pump, so DATA frames still fill the
   * peer's frame size); the pieces the windows hold back are copied. data is the caller's again on return.
   */
  writeCopied(data: Buffer, pieceBytes: number): void {
    if (this.closed || this.localClosed || this.trailers !== null) return;
    let pieces = 0;
    for (let at = 0; at < data.length; at += pieceBytes, pieces++) this.queue.push(data.subarray(at, Math.min(data.length, at + pieceBytes)));
    this.queuedBytes += data.length;
    this.session.pump(this);
    // The pump sends from the head, so what is left of data is the queue's last entries.
    const q = this.queue;
    for (let i = q.length - 1; pieces > 0 && i >= this.queueHead; i--, pieces--) q[i] = Buffer.from(q[i]);
  }

  /** Ends our side with a trailer block after any queued DATA. */
  end(trailers: Buffer): void {
    if (this.closed || this.localClosed || this.trailers !== null) return;
    this.trailers = trailers;
    this.session.pump(this);
  }

  reset(code: number): void {
    if (!this.closed) this.session.resetStream(this, code);
  }
}
