#!/usr/bin/env node
// etcd-ts: the server binary. Parses etcd's flags, recovers the WAL, starts the apply,
// compaction and range workers, the Raft driver and the client listeners.
import { ConfigError, parseConfig, usage } from './config';
import { Logger, openLogOutputs } from './log';
import { StartupError } from './startup_error';
import { WalCorruptError } from './wal/wal';
import { Member } from './member/member';
import { ETCD_SERVER_VERSION, ETCD_TS_VERSION } from '../shared/version';
import { runGateway } from './tcp_gateway';

/** etcd's subcommands: `gateway` (the TCP proxy) is served; `grpc-proxy` is refused in one line. */
async function subcommand(argv: string[]): Promise<number | null> {
  if (argv[0] === 'gateway') return runGateway(argv.slice(1));
  if (argv[0] === 'grpc-proxy') {
    process.stderr.write('etcd-ts: grpc-proxy is not supported (etcd-ts has no gRPC proxy; `etcd-ts gateway start` is the TCP proxy)\n');
    return 1;
  }
  return null;
}

async function main(): Promise<void> {
  const sub = await subcommand(process.argv.slice(2));
  if (sub !== null) process.exit(sub);
  let cfg;
  try {
    cfg = parseConfig(process.argv.slice(2), process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`etcd-ts: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  if (cfg === 'help') {
    process.stdout.write(usage() + '\n');
    return;
  }
  if (cfg === 'version') {
    process.stdout.write(`etcd-ts Version: ${ETCD_TS_VERSION}\netcd API Version: ${ETCD_SERVER_VERSION}\nNode Version: ${process.version}\n`);
    return;
  }
  const log = new Logger(cfg.logLevel, {}, openLogOutputs(cfg.logOutputs));
  // Flags accepted but not honoured, unknown ETCD_* variables, the config file: one line each.
  for (const n of cfg.notes) log[n.level](n.msg, n.fields);
  let member: Member | null = null;
  let stopping = false;
  const stop = (reason: Record<string, string>): void => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', reason);
    const done = member === null ? Promise.resolve() : member.stop();
    done.then(() => process.exit(process.exitCode ?? 0), (err) => {
      log.error('shutdown failed', { error: String(err) });
      process.exit(1);
    });
  };
  process.on('SIGINT', () => stop({ signal: 'SIGINT' }));
  process.on('SIGTERM', () => stop({ signal: 'SIGTERM' }));
  try {
    member = await Member.start(cfg, log, { onRemoved: () => stop({ reason: 'removed from the cluster' }) });
  } catch (e) {
    // A flag whose value turns out unusable at start (a certificate file): one line, as a bad flag.
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`etcd-ts: ${e.message}\n`);
    process.exit(1);
  }
}

/**
 * A start-up failure is one line naming what failed and why: an operating error (a system call's, which
 * names its path or address, a locked data dir, a bad certificate, ...) without a stack. Only an
 * error that is not one of those, a bug, keeps its stack.
 */
function startupError(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const operating = typeof (e as NodeJS.ErrnoException).code === 'string' || e instanceof StartupError || e instanceof WalCorruptError;
  return operating ? e.message : e.stack ?? e.message;
}

main().catch((e) => {
  process.stderr.write(JSON.stringify({ level: 'fatal', ts: new Date().toISOString(), msg: 'etcd-ts failed to start', error: startupError(e) }) + '\n');
  process.exit(1);
});
