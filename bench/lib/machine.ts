// Describes the machine and software a benchmark ran on, for the header of its report.
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  etcd: string;
  commit: string;
  tmpFs: string; // filesystem of os.tmpdir(), where the data dirs live (fsync cost depends on it)
}

function firstLine(cmd: string, args: string[], cwd?: string): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', cwd, stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0].trim();
  } catch {
    return 'unknown';
  }
}

export function machineInfo(etcdBin: string): MachineInfo {
  const repo = path.resolve(__dirname, '..', '..', '..');
  const dirty = firstLine('git', ['status', '--porcelain', '--untracked-files=no'], repo) !== '' ? ' (with uncommitted changes)' : '';
  return {
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    etcd: firstLine(etcdBin, ['--version']).replace(/^etcd Version:\s*/, ''),
    commit: firstLine('git', ['rev-parse', '--short', 'HEAD'], repo) + dirty,
    tmpFs: `${os.tmpdir()} (${firstLine('findmnt', ['-n', '-o', 'FSTYPE', '-T', os.tmpdir()])})`,
  };
}
