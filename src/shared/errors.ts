// Operating errors: typed, carrying etcd's gRPC status code and message verbatim. They cross
// thread boundaries as {code, message} and never crash the server. Programmer errors use assert().

/** gRPC status codes (grpc/codes). */
export const enum GrpcCode {
  OK = 0,
  Canceled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  AlreadyExists = 6,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
  Aborted = 10,
  OutOfRange = 11,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  DataLoss = 15,
  Unauthenticated = 16,
}

/** grpc-go's codes.Code String() names, by code number (the audit log and the gRPC metrics print them). */
export const GRPC_CODE_NAMES: readonly string[] = [
  'OK',
  'Canceled',
  'Unknown',
  'InvalidArgument',
  'DeadlineExceeded',
  'NotFound',
  'AlreadyExists',
  'PermissionDenied',
  'ResourceExhausted',
  'FailedPrecondition',
  'Aborted',
  'OutOfRange',
  'Unimplemented',
  'Internal',
  'Unavailable',
  'DataLoss',
  'Unauthenticated',
];

export class EtcdError extends Error {
  readonly code: GrpcCode;
  constructor(code: GrpcCode, message: string) {
    super(message);
    this.code = code;
  }
  toWire(): { code: number; message: string } {
    return { code: this.code, message: this.message };
  }
}

function def(code: GrpcCode, message: string): () => EtcdError {
  return () => new EtcdError(code, message);
}

// Messages from etcd's api/v3rpc/rpctypes/error.go (v3.4), verbatim.
export const Errors = {
  emptyKey: def(GrpcCode.InvalidArgument, 'etcdserver: key is not provided'),
  keyNotFound: def(GrpcCode.InvalidArgument, 'etcdserver: key not found'),
  valueProvided: def(GrpcCode.InvalidArgument, 'etcdserver: value is provided'),
  leaseProvided: def(GrpcCode.InvalidArgument, 'etcdserver: lease is provided'),
  tooManyOps: def(GrpcCode.InvalidArgument, 'etcdserver: too many operations in txn request'),
  duplicateKey: def(GrpcCode.InvalidArgument, 'etcdserver: duplicate key given in txn request'),
  compacted: def(GrpcCode.OutOfRange, 'etcdserver: mvcc: required revision has been compacted'),
  futureRev: def(GrpcCode.OutOfRange, 'etcdserver: mvcc: required revision is a future revision'),
  noSpace: def(GrpcCode.ResourceExhausted, 'etcdserver: mvcc: database space exceeded'),
  leaseNotFound: def(GrpcCode.NotFound, 'etcdserver: requested lease not found'),
  leaseExist: def(GrpcCode.FailedPrecondition, 'etcdserver: lease already exists'),
  leaseTTLTooLarge: def(GrpcCode.OutOfRange, 'etcdserver: too large lease TTL'),
  memberNotFound: def(GrpcCode.NotFound, 'etcdserver: member not found'),
  memberExist: def(GrpcCode.FailedPrecondition, 'etcdserver: member ID already exist'),
  peerURLExist: def(GrpcCode.FailedPrecondition, 'etcdserver: Peer URLs already exists'),
  memberNotEnoughStarted: def(GrpcCode.FailedPrecondition, 'etcdserver: re-configuration failed due to not enough started members'),
  memberBadURLs: def(GrpcCode.InvalidArgument, 'etcdserver: given member URLs are invalid'),
  memberNotLearner: def(GrpcCode.FailedPrecondition, 'etcdserver: can only promote a learner member'),
  learnerNotReady: def(GrpcCode.FailedPrecondition, 'etcdserver: can only promote a learner member which is in sync with leader'),
  tooManyLearners: def(GrpcCode.FailedPrecondition, 'etcdserver: too many learner members in cluster'),
  notSupportedForLearner: def(GrpcCode.Unavailable, 'etcdserver: rpc not supported for learner'),
  requestTooLarge: def(GrpcCode.InvalidArgument, 'etcdserver: request is too large'),
  noLeader: def(GrpcCode.Unavailable, 'etcdserver: no leader'),
  notLeader: def(GrpcCode.Unavailable, 'etcdserver: not leader'),
  badLeaderTransferee: def(GrpcCode.FailedPrecondition, 'etcdserver: bad leader transferee'),
  timeoutLeaderTransfer: def(GrpcCode.DeadlineExceeded, 'etcdserver: request timed out, leader transfer took too long'),
  leaderChanged: def(GrpcCode.Unavailable, 'etcdserver: leader changed'),
  notCapable: def(GrpcCode.Unavailable, 'etcdserver: not capable'),
  stopped: def(GrpcCode.Unavailable, 'etcdserver: server stopped'),
  timeout: def(GrpcCode.Unavailable, 'etcdserver: request timed out'),
  timeoutDueToLeaderFail: def(GrpcCode.Unavailable, 'etcdserver: request timed out, possibly due to previous leader failure'),
  tooManyRequests: def(GrpcCode.ResourceExhausted, 'etcdserver: too many requests'),
  unhealthyCluster: def(GrpcCode.Unavailable, 'etcdserver: unhealthy cluster'),
  corrupt: def(GrpcCode.DataLoss, 'etcdserver: corrupt cluster'),
  rootUserNotExist: def(GrpcCode.FailedPrecondition, 'etcdserver: root user does not exist'),
  rootRoleNotExist: def(GrpcCode.FailedPrecondition, 'etcdserver: root user does not have root role'),
  userAlreadyExist: def(GrpcCode.FailedPrecondition, 'etcdserver: user name already exists'),
  userEmpty: def(GrpcCode.InvalidArgument, 'etcdserver: user name is empty'),
  userNotFound: def(GrpcCode.FailedPrecondition, 'etcdserver: user name not found'),
  roleAlreadyExist: def(GrpcCode.FailedPrecondition, 'etcdserver: role name already exists'),
  roleNotFound: def(GrpcCode.FailedPrecondition, 'etcdserver: role name not found'),
  roleEmpty: def(GrpcCode.InvalidArgument, 'etcdserver: role name is empty'),
  authFailed: def(GrpcCode.InvalidArgument, 'etcdserver: authentication failed, invalid user ID or password'),
  permissionDenied: def(GrpcCode.PermissionDenied, 'etcdserver: permission denied'),
  roleNotGranted: def(GrpcCode.FailedPrecondition, 'etcdserver: role is not granted to the user'),
  permissionNotGranted: def(GrpcCode.FailedPrecondition, 'etcdserver: permission is not granted to the role'),
  authNotEnabled: def(GrpcCode.FailedPrecondition, 'etcdserver: authentication is not enabled'),
  invalidAuthToken: def(GrpcCode.Unauthenticated, 'etcdserver: invalid auth token'),
  invalidAuthMgmt: def(GrpcCode.InvalidArgument, 'etcdserver: invalid auth management'),
  authOldRevision: def(GrpcCode.InvalidArgument, 'etcdserver: revision of auth store is old'),
  /** auth.ErrNoPasswordUser has no gRPC mapping in etcd 3.4 (togRPCError): code Unknown, the auth package's text. */
  noPasswordUser: def(GrpcCode.Unknown, 'auth: authentication failed, password was given for no password user'),
} as const;

/** Malformed protobuf in a request is the client's fault: INVALID_ARGUMENT, never a crash. */
export function unmarshalError(e: unknown): EtcdError {
  return new EtcdError(GrpcCode.InvalidArgument, `grpc: error unmarshalling request: ${(e as Error).message}`);
}

/** Runs a request decoder, turning its failure into unmarshalError. */
export function decodeRequest<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw unmarshalError(e);
  }
}

export function isEtcdError(e: unknown): e is EtcdError {
  return e instanceof EtcdError;
}

/** Programmer error: a broken invariant. Fails loudly. */
export function assert(cond: unknown, msg = 'assertion failed'): asserts cond {
  if (!cond) throw new Error(`invariant: ${msg}`);
}

export function assertNever(x: never): never {
  throw new Error(`invariant: unexpected value ${String(x)}`);
}
