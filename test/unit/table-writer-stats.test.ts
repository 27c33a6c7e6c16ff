/**
 * The Parquet part writer's file statistics (`columnStats`, the source of Delta `add.stats`)
 * aggregated over several row groups, against DuckDB's min / max / null count over the file.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import '../../src/storage/local.js';
import { UsageError } from '../../src/errors.js';
import { createPartWriter, writerByName, writerFormats } from '../../src/formats/index.js';
import { codecSetup } from '../../src/formats/parquet/write.js';
import { storeFor } from '../../src/storage/store.js';
import { tempDir } from '../helpers.js';

describe('Parquet writer column statistics', () => {
  const tmp = tempDir('kappa-writer-stats-');
  after(() => tmp.cleanup());

  it('aggregates min/max/null count across row groups as DuckDB reads them', async () => {
    const file = join(tmp.dir, 'x.parquet');
    const store = storeFor(file);
    const pending = await store.create(file);
    const columns = [
      { name: 's', type: 'string' as const },
      { name: 'i', type: 'int64' as const },
      { name: 'small', type: 'int64' as const, intBits: 16 as const },
      { name: 'd', type: 'date' as const },
      { name: 't', type: 'timestamptz' as const },
    ];
    const w = createPartWriter(pending, columns, { format: 'parquet', codec: await codecSetup('snappy') });
    // Each row group holds a different extreme of every column; one group is all null.
    await w.writeRows([
      { s: 'm', i: 5, small: -3, d: '2024-02-29', t: 1000 },
      { s: null, i: null, small: null, d: null, t: null },
    ]);
    await w.writeRows([{ s: '\uE000', i: -(2 ** 53) + 1, small: 300, d: '1969-07-20', t: -5 }]);
    await w.writeRows([{ s: null, i: null, small: null, d: null, t: null }]);
    await w.writeRows([{ s: '😀', i: 2 ** 53 - 1, small: -32768, d: '2999-12-31', t: 1_700_000_000_000 }]);
    await w.finish();
    await pending.commit();
    const stats = w.columnStats?.();
    assert.ok(stats, 'the Parquet writer gives column statistics');
    const con = await (await DuckDBInstance.create(':memory:')).connect();
    const row = (
      await con.runAndReadAll(
        `SELECT count(*)::INTEGER, min(s), max(s), count(*) - count(s), min(i)::DOUBLE, max(i)::DOUBLE,
           count(*) - count(i), min(small), max(small), strftime(min(d), '%Y-%m-%d'),
           strftime(max(d), '%Y-%m-%d'), epoch_ms(min(t))::DOUBLE, epoch_ms(max(t))::DOUBLE, count(*) - count(t)
         FROM read_parquet('${file}')`,
      )
    ).getRows()[0];
    const n = (v: unknown) => Number(v);
    assert.deepEqual(stats, {
      numRecords: n(row[0]),
      columns: {
        s: { min: row[1], max: row[2], nullCount: n(row[3]) },
        i: { min: n(row[4]), max: n(row[5]), nullCount: n(row[6]) },
        small: { min: n(row[7]), max: n(row[8]), nullCount: n(row[6]) },
        d: { min: row[9], max: row[10], nullCount: n(row[6]) },
        t: { min: n(row[11]), max: n(row[12]), nullCount: n(row[13]) },
      },
    });
    assert.equal(stats.columns.s.max, '😀', 'strings in UTF-8 byte order');
  });

  it('text writers compute no statistics; unknown --format names list the writer formats', async () => {
    const file = join(tmp.dir, 'x.ndjson');
    const pending = await storeFor(file).create(file);
    for (const f of ['ndjson', 'csv'] as const)
      assert.equal(createPartWriter(pending, [], { format: f }).columnStats, undefined, f);
    await pending.abort();
    assert.deepEqual(writerFormats(), ['parquet', 'ndjson', 'csv']);
    assert.throws(
      () => writerByName('avro'),
      (e: unknown) =>
        e instanceof UsageError && /expected one of parquet, ndjson, csv, got 'avro'/.test(e.message),
    );
  });
});
