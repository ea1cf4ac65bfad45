// Import worker: writes an etcd 3.4 database into a new MVCC store (mvcc/import_bolt.ts), then syncs and
// closes it and reports the counts. Runs once, before the member starts (src/main/member/etcd_import.ts);
// protocol in src/shared/import_protocol.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { BoltCorruptError, BoltReader } from '../shared/bbolt/reader';
import { openDbs } from '../shared/mvcc/dbs';
import { assertImportWorkerInit, doneMsg, failedMsg, ImportFromWorker } from '../shared/import_protocol';
import { BoltImportError, importBolt } from './mvcc/import_bolt';

const data: unknown = workerData;
assertImportWorkerInit(data);
const init = data;

function reply(m: ImportFromWorker): void {
  parentPort?.postMessage(m);
}

function sync(root: ReturnType<typeof openDbs>['root']): Promise<void> {
  const r = root as unknown as { sync(cb: (err?: Error) => void): void };
  return new Promise((resolve, reject) => r.sync((err) => (err ? reject(err) : resolve())));
}

async function run(): Promise<void> {
  let reader: BoltReader;
  try {
    reader = BoltReader.open(init.dbFile);
  } catch (e) {
    reply(failedMsg((e as Error).message));
    return;
  }
  const dbs = openDbs(init.lmdbDir, { readOnly: false });
  try {
    const counts = importBolt(dbs, reader, {
      dbFile: init.dbFile,
      applied: init.applied,
      membership: init.membership,
      attributes: init.attributes,
      batchRecords: init.batchRecords,
      onBatch: (records) => {
        // Test switch: a crash in the middle of the import (the store is then incomplete).
        if (init.killAtRecords > 0 && records >= init.killAtRecords) process.kill(process.pid, 'SIGKILL');
      },
    });
    await sync(dbs.root);
    reply(doneMsg(counts));
  } catch (e) {
    if (!(e instanceof BoltCorruptError || e instanceof BoltImportError)) throw e;
    reply(failedMsg(e.message));
  } finally {
    reader.close();
    await dbs.root.close();
  }
}

void run();
