/**
 * The sinks' batch path end to end (issue 14): a version-2 pipeline (`kappa ingest` of a Parquet
 * file into `kappa sink`, as two processes and fused by `kappa run`) writes a `dt=`/field
 * partitioned table and a single Parquet file from the batches' columns (the summary counts the
 * `rows by columns`), and DuckDB reads back exactly the rows DuckDB computes from the input.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { sh, tempDir } from '../helpers.js';

const ROWS = 60_000;

const SOURCE = `
SELECT
  (TIMESTAMP '2024-02-27 00:00:00' + INTERVAL (i * 13) SECOND + INTERVAL (i % 1000) MILLISECOND)::TIMESTAMP_MS AS ts,
  i::BIGINT AS id,
  CASE WHEN i % 9 = 0 THEN NULL ELSE (i * 7919) % 100003 - 50000 END::BIGINT AS n,
  CASE WHEN i % 11 = 0 THEN NULL ELSE i / 7.0 END::DOUBLE AS x,
  CASE WHEN i % 5 = 0 THEN NULL ELSE i % 3 = 0 END AS flag,
  CASE WHEN i % 13 = 0 THEN NULL WHEN i % 17 = 0 THEN '' ELSE 'c' || (i % 4) END AS cat,
  'name-' || (i % 97) || '-é😀' AS s
FROM range(0, ${ROWS}) r(i)`;

async function query(sql: string): Promise<unknown[][]> {
  const db = await DuckDBInstance.create();
  const c = await db.connect();
  const rows = (await c.runAndReadAll(sql)).getRows();
  c.closeSync();
  return rows;
}

describe('sink batch path (version-2 input)', () => {
  const tmp = tempDir('kappa-sink-batch-');
  const input = join(tmp.dir, 'in.parquet');
  before(async () => {
    await query(`COPY (${SOURCE}) TO '${input}' (FORMAT parquet)`);
  });
  after(() => tmp.cleanup());

  /** Rows of the table that DuckDB's own partitioning of the input does not give, both ways. */
  async function diff(table: string): Promise<number[]> {
    const expected = `SELECT ts, id, n, x, flag, CASE WHEN cat = '' THEN NULL ELSE cat END AS cat, s, strftime(ts, '%Y-%m-%d') AS dt FROM read_parquet('${input}')`;
    const got = `SELECT ts, id, n, x, flag, cat, s, dt::VARCHAR AS dt FROM read_parquet('${table}/*=*/**/*.parquet', hive_partitioning = true, hive_types_autocast = false)`;
    const [[a], [b], [c]] = await Promise.all([
      query(`SELECT count(*)::INTEGER FROM (${expected} EXCEPT ALL ${got})`),
      query(`SELECT count(*)::INTEGER FROM (${got} EXCEPT ALL ${expected})`),
      query(`SELECT count(*)::INTEGER FROM (${got})`),
    ]);
    return [a[0] as number, b[0] as number, c[0] as number];
  }

  for (const form of ['pipe', 'run'] as const)
    it(`${form}: a dt=/{cat} table from the columns equals DuckDB's partitioning of the input`, async () => {
      const table = join(tmp.dir, `t-${form}`);
      const stages = [
        `ingest '${input}' --ts-field ts`,
        `sink '${table}' --partition-by 'dt=%Y-%m-%d/{cat}' --roll-records 7000`,
      ];
      const r =
        form === 'pipe'
          ? await sh(stages.map((s) => `kappa ${s}`).join(' | '), { env: { KAPPA_STREAM_FORMAT: 'arrow' } })
          : await sh(`kappa run "${stages.join(' | ')}"`);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`${ROWS.toLocaleString('en-US')} rows by columns`));
      assert.deepEqual(await diff(table), [0, 0, ROWS]);
    });

  it('a single Parquet file from the columns equals the input', async () => {
    const out = join(tmp.dir, 'one.parquet');
    const r = await sh(`kappa ingest '${input}' --ts-field ts | kappa sink '${out}'`, {
      env: { KAPPA_STREAM_FORMAT: 'arrow' },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /rows by columns/);
    const cols = 'ts, id, n, x, flag, cat, s';
    const [[a], [b]] = await Promise.all([
      query(
        `SELECT count(*)::INTEGER FROM (SELECT ${cols} FROM read_parquet('${input}') EXCEPT ALL SELECT ${cols} FROM read_parquet('${out}'))`,
      ),
      query(`SELECT count(*)::INTEGER FROM read_parquet('${out}')`),
    ]);
    assert.deepEqual([a[0], b[0]], [0, ROWS]);
  });
});
