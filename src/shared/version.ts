// The etcd release whose API and behaviour etcd-ts matches. Reported by /version and
// Maintenance.Status, because clients (etcdctl, Kubernetes) gate features on it.
export const ETCD_SERVER_VERSION = '3.4.23';
export const ETCD_CLUSTER_VERSION = '3.4.0';
// package.json sits outside src/, and an import would make tsc copy it into dist/.
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const ETCD_TS_VERSION: string = (require('../../../package.json') as { version: string }).version;
