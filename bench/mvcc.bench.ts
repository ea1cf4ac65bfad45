// MVCC store micro-benchmark: point reads of a key with 1 vs 100,000 revisions (latest and an old revision),
// and puts applied in batches of 1 and 256 entries (one LMDB write transaction per batch, noSync).
// Run: npx tsc -p . && node dist/bench/mvcc.bench.js      Prints one JSON object.
import { Driver, b } from '../src/workers/mvcc/testing';
import { WriteRequest } from '../src/workers/mvcc/writer';

function rate(n: number, f: (i: number) => void): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) f(i);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return Math.round(n / s);
}

function fill(d: Driver, key: string, revisions: number): void {
  for (let done = 0; done < revisions; done += 1000) {
    const batch: Array<{ index: number; req: WriteRequest }> = [];
    for (let i = done; i < Math.min(revisions, done + 1000); i++) {
      batch.push({ index: ++d.index, req: { kind: 'put', req: { key: b(key), value: b(`value-${i}`) } } });
    }
    d.store.applyBatch(batch);
  }
}

function putRate(d: Driver, batchSize: number, total: number): number {
  const value = Buffer.alloc(256, 0x61);
  const n = total / batchSize;
  return rate(n, (i) => {
    const batch: Array<{ index: number; req: WriteRequest }> = [];
    for (let j = 0; j < batchSize; j++) {
      batch.push({ index: ++d.index, req: { kind: 'put', req: { key: b(`key-${(i * batchSize + j) % 10000}`), value } } });
    }
    d.store.applyBatch(batch);
  }) * batchSize;
}

async function main(): Promise<void> {
  const d = new Driver();
  fill(d, 'one', 1);
  fill(d, 'many', 100_000);
  for (let i = 0; i < 10_000; i++) fill(d, `filler-${i}`, 1);
  const reads = 200_000;
  const oneKey = { key: b('one') };
  const manyKey = { key: b('many') };
  const manyOld = { key: b('many'), revision: 50_000 };
  const result = {
    bench: 'mvcc',
    node: process.version,
    getsPerSec: {
      latest1Revision: rate(reads, () => d.store.range(oneKey)),
      latest100kRevisions: rate(reads, () => d.store.range(manyKey)),
      atOldRevision100kRevisions: rate(reads, () => d.store.range(manyOld)),
    },
    putsPerSec: {
      batch1: putRate(d, 1, 20_000),
      batch256: putRate(d, 256, 256 * 400),
    },
    dbSizeBytes: d.store.dbSizeBytes(),
    dbSizeInUseBytes: d.store.dbSizeInUseBytes(),
  };
  console.log(JSON.stringify(result, null, 2));
  await d.close();
}

void main();
