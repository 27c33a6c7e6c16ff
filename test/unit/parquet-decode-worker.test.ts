/**
 * Parquet row-group decode in a worker thread (decode-worker.ts, issue 14 "Both cores"): a local
 * multi-row-group file read with the thread forced on gives, row for row, what DuckDB reads from
 * the same file (int64 beyond 2^53, timestamps in every unit and before 1970, strings with nulls
 * and non-ASCII, NaN/inf as null), also resumed mid-group and projected; the groups were decoded
 * by the thread (its counter), and a reader stopped early leaves no request holding the process.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { decodeWorkerStats } from '../../src/formats/parquet/decode-worker.js';
import { openParquet } from '../../src/formats/parquet/read.js';
import { localStore } from '../../src/storage/local.js';
import { tempDir } from '../helpers.js';

const ROWS = 9000;

const SOURCE = `
SELECT
  i::BIGINT AS id,
  (i * 7 % 1000)::INTEGER AS i32,
  CASE WHEN i % 17 = 0 THEN 9007199254740993 + i WHEN i % 6 = 0 THEN NULL ELSE -i * 1000003 END::BIGINT AS big,
  CASE WHEN i % 10 = 0 THEN NULL WHEN i % 23 = 0 THEN 'NaN'::DOUBLE WHEN i % 29 = 0 THEN 'inf'::DOUBLE ELSE i * 1.25 END::DOUBLE AS dbl,
  CASE WHEN i % 11 = 0 THEN NULL ELSE i % 3 = 0 END AS flag,
  'name-' || (i % 50) AS s,
  CASE WHEN i % 7 = 0 THEN NULL WHEN i % 13 = 0 THEN '' ELSE 'x' || i || '-é€😀' END AS s_null,
  TIMESTAMP '1969-12-31 23:59:00' + INTERVAL (i * 37) SECOND + INTERVAL (i * 1001) MICROSECOND AS ts_us,
  (TIMESTAMP '2024-01-01 00:00:00' + INTERVAL (i) MINUTE + INTERVAL (i * 3) MILLISECOND)::TIMESTAMP_MS AS ts_ms,
  (TIMESTAMP_NS '1969-12-31 23:00:00' + INTERVAL (i * 1000003) MICROSECOND)::TIMESTAMP_NS AS ts_ns
FROM range(0, ${ROWS}) r(i)`;

const EXPECTED = (file: string, where = 'true', cols = '*') => `
SELECT ${cols} FROM (SELECT id, i32, big::VARCHAR AS big,
  CASE WHEN isnan(dbl) OR isinf(dbl) THEN NULL ELSE dbl END AS dbl, flag, s, s_null,
  floordiv(epoch_us(ts_us), 1000) AS ts_us, epoch_ms(ts_ms) AS ts_ms,
  floordiv(epoch_ns(ts_ns), 1000000) AS ts_ns, file_row_number AS _r
FROM read_parquet('${file}', file_row_number = true)) WHERE ${where} ORDER BY _r`;

function expectedRow(w: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(w)) {
    if (k === '_r') continue;
    if (v === null) out[k] = null;
    else if (typeof v === 'bigint') out[k] = Number(v);
    else if (k === 'big') out[k] = Number.isSafeInteger(Number(v)) ? Number(v) : v;
    else out[k] = v;
  }
  return out;
}

describe('Parquet decode thread', () => {
  const tmp = tempDir();
  const file = join(tmp.dir, 'groups.parquet');
  let con: DuckDBConnection;
  let groupRows: number[] = [];
  const env = process.env.KAPPA_PARQUET_WORKER;
  before(async () => {
    process.env.KAPPA_PARQUET_WORKER = '1';
    con = await (await DuckDBInstance.create(':memory:')).connect();
    await con.run('CREATE MACRO floordiv(a, b) AS (a - ((a % b + b) % b)) // b');
    await con.run(`COPY (${SOURCE}) TO '${file}' (FORMAT parquet, ROW_GROUP_SIZE 2048, COMPRESSION zstd)`);
    groupRows = (
      await con.runAndReadAll(
        `SELECT row_group_num_rows AS n FROM parquet_metadata('${file}') WHERE path_in_schema = 'id' ORDER BY row_group_id`,
      )
    )
      .getRowObjectsJS()
      .map((x) => Number(x.n));
  });
  after(() => {
    if (env === undefined) delete process.env.KAPPA_PARQUET_WORKER;
    else process.env.KAPPA_PARQUET_WORKER = env;
    tmp.cleanup();
  });

  it('decodes every row group in the thread and gives the rows DuckDB reads', async () => {
    assert.ok(groupRows.length >= 3, `want several row groups, got ${groupRows}`);
    const before = decodeWorkerStats.groups;
    const opened = await openParquet(localStore, file);
    const rows: Record<string, unknown>[] = [];
    for await (const b of opened.batches) {
      assert.ok(b.columns, 'a columnar batch');
      rows.push(...(b.rows as Record<string, unknown>[]));
    }
    assert.equal(decodeWorkerStats.groups - before, groupRows.length, 'groups decoded by the thread');
    const want = (await con.runAndReadAll(EXPECTED(file))).getRowObjectsJS().map(expectedRow);
    assert.equal(rows.length, ROWS);
    for (let i = 0; i < ROWS; i++) assert.deepEqual(rows[i], want[i], `row ${i}`);
    assert.equal(decodeWorkerStats.pending, 0);
  });

  it('resumes mid-group and projects columns through the thread', async () => {
    const before = decodeWorkerStats.groups;
    const opened = await openParquet(
      localStore,
      file,
      { rows: 0, rowGroup: 1, row: 5 },
      new Set(['s', 'ts_ns']),
    );
    const rows: Record<string, unknown>[] = [];
    let last: unknown;
    for await (const b of opened.batches) {
      rows.push(...(b.rows as Record<string, unknown>[]));
      last = b.next;
    }
    assert.equal(decodeWorkerStats.groups - before, groupRows.length - 1);
    assert.deepEqual(last, { rowGroup: groupRows.length, row: 0 });
    const want = (await con.runAndReadAll(EXPECTED(file, `_r >= ${groupRows[0] + 5}`, 's, ts_ns')))
      .getRowObjectsJS()
      .map(expectedRow);
    assert.deepEqual(rows, want);
  });

  it('a reader stopped after its first batch leaves no request pending (the thread does not hold the process)', async () => {
    const opened = await openParquet(localStore, file);
    for await (const b of opened.batches) {
      assert.ok(b.rows.length > 0);
      break;
    }
    assert.equal(decodeWorkerStats.pending, 0);
  });
});
