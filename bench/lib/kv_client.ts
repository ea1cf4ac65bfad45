// A minimal etcdserverpb.KV client for load generation: @grpc/grpc-js with the statically generated
// codecs (src/shared/gen/etcd.js). Requests are encoded once up front and sent as raw bytes, and
// responses are kept as raw bytes, so the generator spends its CPU on the transport, not on protobuf.
import * as grpc from '@grpc/grpc-js';
import { etcdserverpb } from '../../src/shared/gen/etcd';

export type Workload = 'put' | 'range';

const identity = (b: Buffer): Buffer => b;
const methodPath: Record<Workload, string> = {
  put: '/etcdserverpb.KV/Put',
  range: '/etcdserverpb.KV/Range',
};

/** Key i of the key space; fixed width so that every key has the same size. */
export function benchKey(i: number): Buffer {
  return Buffer.from(`bench/key/${String(i).padStart(6, '0')}`);
}

export function encodePut(key: Buffer, value: Buffer): Buffer {
  return Buffer.from(etcdserverpb.PutRequest.encode({ key, value }).finish());
}

export function encodeRange(key: Buffer, serializable: boolean): Buffer {
  return Buffer.from(etcdserverpb.RangeRequest.encode({ key, serializable }).finish());
}

export function decodeRangeResponse(b: Buffer): etcdserverpb.RangeResponse {
  return etcdserverpb.RangeResponse.decode(b);
}

/** One HTTP/2 connection: a local subchannel pool keeps grpc-js from sharing it with other clients. */
export class KvConnection {
  readonly #client: grpc.Client;

  constructor(endpoint: string) {
    this.#client = new grpc.Client(endpoint, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
    });
  }

  waitForReady(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#client.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve()));
    });
  }

  call(workload: Workload, request: Buffer, done: (err: grpc.ServiceError | null, res?: Buffer) => void): void {
    this.#client.makeUnaryRequest(methodPath[workload], identity, identity, request, done);
  }

  /** A unary call of any gRPC method path with an already-encoded (unframed) request. */
  callPath(path: string, request: Buffer, done: (err: grpc.ServiceError | null, res?: Buffer) => void): void {
    this.#client.makeUnaryRequest(path, identity, identity, request, done);
  }

  callAsync(workload: Workload, request: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.call(workload, request, (err, res) => (err ? reject(err) : resolve(res!)));
    });
  }

  close(): void {
    this.#client.close();
  }
}
