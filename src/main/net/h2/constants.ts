// HTTP/2 wire constants (RFC 9113) and this server's own HTTP/2 limits. Frame types, flags, error
// codes and setting identifiers are facts of the protocol; the limits below are our choices, each
// with the reason next to it.

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const FRAME_HEADER_BYTES = 9;

export const enum FrameType {
  DATA = 0x0,
  HEADERS = 0x1,
  PRIORITY = 0x2,
  RST_STREAM = 0x3,
  SETTINGS = 0x4,
  PUSH_PROMISE = 0x5,
  PING = 0x6,
  GOAWAY = 0x7,
  WINDOW_UPDATE = 0x8,
  CONTINUATION = 0x9,
}

export const enum Flag {
  END_STREAM = 0x1,
  // eslint-disable-next-line @typescript-eslint/no-duplicate-enum-values -- flag bits mean different things per frame type (RFC 9113 6.1, 6.7)
  ACK = 0x1,
  END_HEADERS = 0x4,
  PADDED = 0x8,
  PRIORITY = 0x20,
}

export const enum ErrorCode {
  NO_ERROR = 0x0,
  PROTOCOL_ERROR = 0x1,
  INTERNAL_ERROR = 0x2,
  FLOW_CONTROL_ERROR = 0x3,
  SETTINGS_TIMEOUT = 0x4,
  STREAM_CLOSED = 0x5,
  FRAME_SIZE_ERROR = 0x6,
  REFUSED_STREAM = 0x7,
  CANCEL = 0x8,
  COMPRESSION_ERROR = 0x9,
  CONNECT_ERROR = 0xa,
  ENHANCE_YOUR_CALM = 0xb,
  INADEQUATE_SECURITY = 0xc,
  HTTP_1_1_REQUIRED = 0xd,
}

export const enum SettingId {
  HEADER_TABLE_SIZE = 0x1,
  ENABLE_PUSH = 0x2,
  MAX_CONCURRENT_STREAMS = 0x3,
  INITIAL_WINDOW_SIZE = 0x4,
  MAX_FRAME_SIZE = 0x5,
  MAX_HEADER_LIST_SIZE = 0x6,
}

/** RFC 9113 6.5.2 defaults: what the peer uses until it says otherwise. */
export const DEFAULT_WINDOW_BYTES = 65_535;
export const DEFAULT_FRAME_BYTES = 16_384;
export const DEFAULT_HEADER_TABLE_BYTES = 4096;
export const FRAME_BYTES_LIMIT = 16_777_215;
export const WINDOW_BYTES_LIMIT = 0x7fff_ffff;

export const h2Limits = {
  /** Our SETTINGS_INITIAL_WINDOW_SIZE. Received DATA is handed to the gRPC layer at once and credited
   *  back, so this only bounds bytes in flight per stream; 1 MiB lets a large Put arrive in few RTTs. */
  streamRecvWindowBytes: 1024 * 1024,
  /** The connection window we raise to (one WINDOW_UPDATE on stream 0 after the preface). */
  connRecvWindowBytes: 16 * 1024 * 1024,
  /** Our SETTINGS_MAX_FRAME_SIZE: the default; grpc clients send 16 KiB DATA frames anyway. */
  recvFrameBytesMax: DEFAULT_FRAME_BYTES,
  /** Our SETTINGS_MAX_HEADER_LIST_SIZE (64 KiB, as the node:http2 transport this one replaced). */
  headerListBytesMax: 64 * 1024,
  /** A header block split over HEADERS+CONTINUATION may not exceed this many encoded bytes
   *  (stops a CONTINUATION flood from buffering without end). */
  headerBlockBytesMax: 128 * 1024,
  /** Our HPACK decoder's dynamic table (SETTINGS_HEADER_TABLE_SIZE, left at the default). */
  decoderTableBytes: DEFAULT_HEADER_TABLE_BYTES,
  /** Output bytes waiting for the socket past which we stop reading the peer's frames (until 'drain')
   *  and stop moving DATA out of stream queues (whose send() then reports backpressure): a client that
   *  never reads can grow neither our read side nor our write side. */
  socketWriteQueueBytesMax: 4 * 1024 * 1024,
  /** A stream's ServerStream.send() reports backpressure (returns false) past this many queued bytes. */
  streamSendQueueBytesHigh: 1024 * 1024,
  /** The reusable output buffer; bigger DATA payloads are written by reference, not copied. */
  outBufferBytes: 64 * 1024,
  /** Output buffers kept for reuse once a socket took them, shared by every session of the thread. */
  outBuffersFreeMax: 64,
  /** Payloads at least this large are handed to the socket by reference instead of being copied. */
  copyPayloadBytesMax: 4096,
  /** PING + SETTINGS + RST_STREAM frames a client may send per second on one connection before it is
   *  cut off with GOAWAY(ENHANCE_YOUR_CALM) (ping and settings floods, HTTP/2 "rapid reset"). */
  controlFramesPerSecondMax: 10_000,
};
