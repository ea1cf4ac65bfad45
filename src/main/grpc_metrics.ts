// etcd's gRPC server metrics (go-grpc-prometheus, registered by etcd 3.4's v3rpc.Server): per method,
// calls started, calls handled by status code, messages received and sent; with --metrics extensive
// also grpc_server_handling_seconds, the handler's latency histogram (prometheus.DefBuckets). Names,
// help texts, labels and buckets are go-grpc-prometheus's. As there, the methods of etcd's services are
// pre-registered at zero (handled: one series per status code); a method outside that list (Lock,
// Election) gets its series when first called, handled only for the codes it answered.
//
// The transport (net/grpc_h2.ts) asks method(path) once per call and counts on the returned object:
// a few array increments per call, plus two clock reads with --metrics extensive.
import { GRPC_CODE_NAMES as CODE_NAMES } from '../shared/errors';

export type GrpcType = 'unary' | 'server_stream' | 'bidi_stream';

/** prometheus.DefBuckets, go-grpc-prometheus's default for the handling-time histogram. */
export const HANDLING_BUCKETS_S: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The methods etcd 3.4 pre-registers (its gRPC server's services), with their gRPC types. */
const ETCD_METHODS: ReadonlyArray<[string, GrpcType]> = [
  ...['Range', 'Put', 'DeleteRange', 'Txn', 'Compact'].map((m): [string, GrpcType] => [`/etcdserverpb.KV/${m}`, 'unary']),
  ['/etcdserverpb.Watch/Watch', 'bidi_stream'],
  ...['LeaseGrant', 'LeaseRevoke', 'LeaseTimeToLive', 'LeaseLeases'].map((m): [string, GrpcType] => [`/etcdserverpb.Lease/${m}`, 'unary']),
  ['/etcdserverpb.Lease/LeaseKeepAlive', 'bidi_stream'],
  ...['MemberAdd', 'MemberRemove', 'MemberUpdate', 'MemberList', 'MemberPromote'].map((m): [string, GrpcType] => [
    `/etcdserverpb.Cluster/${m}`,
    'unary',
  ]),
  ...['Alarm', 'Status', 'Defragment', 'Hash', 'HashKV', 'MoveLeader'].map((m): [string, GrpcType] => [
    `/etcdserverpb.Maintenance/${m}`,
    'unary',
  ]),
  ['/etcdserverpb.Maintenance/Snapshot', 'server_stream'],
  ...[
    'AuthEnable',
    'AuthDisable',
    'Authenticate',
    'UserAdd',
    'UserGet',
    'UserList',
    'UserDelete',
    'UserChangePassword',
    'UserGrantRole',
    'UserRevokeRole',
    'RoleAdd',
    'RoleGet',
    'RoleList',
    'RoleDelete',
    'RoleGrantPermission',
    'RoleRevokePermission',
  ].map((m): [string, GrpcType] => [`/etcdserverpb.Auth/${m}`, 'unary']),
  ['/grpc.health.v1.Health/Check', 'unary'],
  ['/grpc.health.v1.Health/Watch', 'server_stream'],
];

/** Streaming methods outside etcd's pre-registered list, by their proto definition. */
const OTHER_STREAM_TYPES: ReadonlyMap<string, GrpcType> = new Map([['/v3electionpb.Election/Observe', 'server_stream']]);

/** One method's series. Fields are counted by the transport. */
export class MethodStats {
  readonly service: string;
  readonly method: string;
  readonly type: GrpcType;
  readonly preRegistered: boolean;
  started = 0;
  received = 0;
  sent = 0;
  /** Calls handled, by status code. */
  readonly handled = new Float64Array(CODE_NAMES.length);
  /** Handling-time observations per bucket (non-cumulative); only with --metrics extensive. */
  readonly buckets = new Float64Array(HANDLING_BUCKETS_S.length);
  seconds = 0;
  observations = 0;

  constructor(path: string, type: GrpcType, preRegistered: boolean) {
    const slash = path.lastIndexOf('/');
    this.service = path.slice(1, slash);
    this.method = path.slice(slash + 1);
    this.type = type;
    this.preRegistered = preRegistered;
  }

  /** A call ended with `code` after `seconds` (seconds < 0: not timed, basic level). */
  handle(code: number, seconds: number): void {
    this.handled[code >= 0 && code < CODE_NAMES.length ? code : 2]++;
    if (seconds < 0) return;
    this.seconds += seconds;
    this.observations++;
    for (let i = 0; i < HANDLING_BUCKETS_S.length; i++) {
      if (seconds <= HANDLING_BUCKETS_S[i]) {
        this.buckets[i]++;
        return;
      }
    }
  }

  labels(): string {
    return `grpc_method="${this.method}",grpc_service="${this.service}",grpc_type="${this.type}"`;
  }
}

interface ExposedMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  render(): string;
}

export class GrpcServerMetrics {
  /** --metrics extensive: the transport times each call. */
  readonly extensive: boolean;
  readonly #byPath = new Map<string, MethodStats>();

  constructor(extensive: boolean) {
    this.extensive = extensive;
  }

  /** Pre-registers etcd's methods that `served` serves (etcd's grpc_prometheus.Register). */
  preRegister(served: { unaryMethod(p: string): unknown; streamHandler(p: string): unknown }): void {
    for (const [path, type] of ETCD_METHODS) {
      if (served.unaryMethod(path) !== undefined || served.streamHandler(path) !== undefined) {
        this.#byPath.set(path, new MethodStats(path, type, true));
      }
    }
  }

  /** The series of a served method (created on its first call when not pre-registered). */
  method(path: string, unary: boolean): MethodStats {
    let s = this.#byPath.get(path);
    if (s === undefined) {
      s = new MethodStats(path, unary ? 'unary' : (OTHER_STREAM_TYPES.get(path) ?? 'bidi_stream'), false);
      this.#byPath.set(path, s);
    }
    return s;
  }

  /** The metrics to register, rendered from the counts at scrape time. */
  metrics(): ExposedMetric[] {
    const out: ExposedMetric[] = [
      this.#counter('grpc_server_started_total', 'Total number of RPCs started on the server.', (s) => s.started),
      this.#handledCounter(),
      this.#counter('grpc_server_msg_received_total', 'Total number of RPC stream messages received on the server.', (s) => s.received),
      this.#counter('grpc_server_msg_sent_total', 'Total number of gRPC stream messages sent by the server.', (s) => s.sent),
    ];
    if (this.extensive) out.push(this.#histogram());
    return out;
  }

  /** Series in the order Prometheus' Go client writes them: by label values. */
  #sorted(): MethodStats[] {
    return [...this.#byPath.values()].sort((a, b) => cmp(a.method, b.method) || cmp(a.service, b.service) || cmp(a.type, b.type));
  }

  #counter(name: string, help: string, value: (s: MethodStats) => number): ExposedMetric {
    return {
      name,
      help,
      type: 'counter',
      render: () =>
        this.#sorted()
          .map((s) => `${name}{${s.labels()}} ${value(s)}\n`)
          .join(''),
    };
  }

  #handledCounter(): ExposedMetric {
    const name = 'grpc_server_handled_total';
    const render = (): string => {
      const rows: Array<[string, string]> = [];
      for (const s of this.#byPath.values()) {
        for (let c = 0; c < CODE_NAMES.length; c++) {
          if (!s.preRegistered && s.handled[c] === 0) continue;
          const key = `${CODE_NAMES[c]}\u0000${s.method}\u0000${s.service}\u0000${s.type}`;
          rows.push([key, `${name}{grpc_code="${CODE_NAMES[c]}",${s.labels()}} ${s.handled[c]}\n`]);
        }
      }
      return rows
        .sort((a, b) => cmp(a[0], b[0]))
        .map((r) => r[1])
        .join('');
    };
    return { name, help: 'Total number of RPCs completed on the server, regardless of success or failure.', type: 'counter', render };
  }

  #histogram(): ExposedMetric {
    const name = 'grpc_server_handling_seconds';
    const render = (): string => {
      let out = '';
      for (const s of this.#sorted()) {
        const l = s.labels();
        let acc = 0;
        for (let i = 0; i < HANDLING_BUCKETS_S.length; i++) {
          acc += s.buckets[i];
          out += `${name}_bucket{${l},le="${HANDLING_BUCKETS_S[i]}"} ${acc}\n`;
        }
        out += `${name}_bucket{${l},le="+Inf"} ${s.observations}\n${name}_sum{${l}} ${s.seconds}\n${name}_count{${l}} ${s.observations}\n`;
      }
      return out;
    };
    return {
      name,
      type: 'histogram',
      render,
      help: 'Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.',
    };
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
