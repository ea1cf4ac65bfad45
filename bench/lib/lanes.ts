// Target lanes: how the load reaches the server. Today only etcd's gRPC API (which any etcd endpoint
// serves). The HTTP/JSON gateway (/v3/kv/put, ...) and the WebSocket lane of etcd-ts are being built
// elsewhere; to add one, give it a Transport in load_worker.ts (ready / client(i, done) -> send /
// once / close: the load models, histograms and results do not change) and a request encoding next
// to the gRPC templates in workloads.ts, then mark it available here.
export interface Lane {
  name: string;
  description: string;
  available: boolean;
  unavailableReason: string; // why --lane NAME is refused, when not available
}

export const lanes: Record<string, Lane> = {
  grpc: { name: 'grpc', description: "etcd's gRPC API over HTTP/2 (h2c)", available: true, unavailableReason: '' },
  'http-json': {
    name: 'http-json', description: 'the grpc-gateway HTTP/JSON API (/v3/kv/range, ...)', available: false,
    unavailableReason: 'not implemented: etcd-ts has no HTTP/JSON gateway yet (a separate branch builds it)',
  },
  websocket: {
    name: 'websocket', description: 'the etcd-ts WebSocket lane', available: false,
    unavailableReason: 'not implemented: the etcd-ts WebSocket lane does not exist yet (a separate branch builds it)',
  },
};
