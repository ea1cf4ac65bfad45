// Named sets of workloads that `etcd-ts-bench suite NAME` runs against one server it starts itself, a fresh
// single member per round, so that `etcd-ts-bench diff` can compare two commits case by case. A case is a
// workload at one client count; its name keys the runs in the result file (RunRecord.case).
import { KvWorkloadName } from './workloads';

export interface SuiteCase {
  name: string; // e.g. put-c16: the key diff compares by
  workload: KvWorkloadName;
  clients: number;
  conns: number; // HTTP/2 connections the clients share
}

export interface Suite {
  description: string;
  cases: SuiteCase[];
  /** Defaults of the suite, used unless the command line gives --duration, --warmup or --rounds. */
  duration: number;
  warmup: number;
  rounds: number;
}

export const suites = {
  // Issue 19's write workloads: the regression guard of the write path (a few minutes in all).
  'write-path': {
    description: 'Put at 1, 16 and 200 clients and Txn (compare + put) at 200 clients, one member',
    cases: [
      { name: 'put-c1', workload: 'put', clients: 1, conns: 1 },
      { name: 'put-c16', workload: 'put', clients: 16, conns: 8 },
      { name: 'put-c200', workload: 'put', clients: 200, conns: 8 },
      { name: 'txn-compare-c200', workload: 'txn-compare', clients: 200, conns: 8 },
    ],
    duration: 5,
    warmup: 1,
    rounds: 3,
  },
} satisfies Record<string, Suite>;

export type SuiteName = keyof typeof suites;

export function isSuiteName(s: string): s is SuiteName {
  return Object.prototype.hasOwnProperty.call(suites, s);
}
