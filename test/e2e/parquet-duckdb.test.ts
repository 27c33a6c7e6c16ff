/**
 * Acceptance 4: Parquet files written by DuckDB with every codec it can write, dictionary and v2
 * pages, many row groups and the logical types kappa maps, read by `kappa ingest` and compared
 * value by value (and header type by type) with what DuckDB itself reads from the same file.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { parseLines, sh, tempDir } from '../helpers.js';

const ROWS = 10000;

/** Table with every mapped type; nulls every few rows; a few instants before 1970. */
const SOURCE = `
SELECT
  i::BIGINT AS id,
  (i * 7 % 1000)::INTEGER AS i32,
  (i % 5)::TINYINT AS i8,
  CASE WHEN i % 10 = 0 THEN NULL ELSE i * 1.25 END::DOUBLE AS dbl,
  (i / 8.0)::FLOAT AS flt,
  CASE WHEN i % 11 = 0 THEN NULL ELSE i % 3 = 0 END AS flag,
  'name-' || (i % 50) AS s,
  CASE WHEN i % 7 = 0 THEN NULL ELSE 'x' || i || '-é€' END AS s_null,
  TIMESTAMP '1969-12-31 23:59:00' + INTERVAL (i * 37) SECOND + INTERVAL (i * 1001) MICROSECOND AS ts_us,
  (TIMESTAMP '2024-01-01 00:00:00' + INTERVAL (i) MINUTE + INTERVAL (i * 3) MILLISECOND)::TIMESTAMP_MS AS ts_ms,
  (TIMESTAMP_NS '2024-03-01 00:00:00' + INTERVAL (i * 1000003) MICROSECOND)::TIMESTAMP_NS AS ts_ns,
  CASE WHEN i % 13 = 0 THEN NULL ELSE TIMESTAMPTZ '2024-06-01 00:00:00+00' + INTERVAL (i * 61) SECOND END AS ts_tz,
  DATE '1969-12-25' + (i % 400)::INTEGER AS d,
  (i * 3.07)::DECIMAL(10, 2) AS dec,
  CASE WHEN i % 9 = 0 THEN NULL ELSE (i * 1.0001)::DECIMAL(38, 4) END AS dec38,
  {'a': i, 'b': 'v' || (i % 4), 'c': [i % 3, NULL]} AS st,
  CASE WHEN i % 5 = 0 THEN NULL ELSE [i, i + 1, NULL] END AS lst,
  ('blob' || i)::BLOB AS bin
FROM range(0, ${ROWS}) r(i)`;

/**
 * What kappa must emit, computed by DuckDB from the file (epoch ms, ISO dates, JSON, base64).
 * Sub-millisecond instants are floored to the millisecond that contains them (as Java's
 * Instant.toEpochMilli), where DuckDB's epoch_ms truncates toward zero; hence `floordiv`.
 */
const EXPECTED = (file: string) => `
SELECT id, i32, i8, dbl, flt, flag, s, s_null,
  floordiv(epoch_us(ts_us), 1000) AS ts_us, epoch_ms(ts_ms) AS ts_ms,
  floordiv(epoch_ns(ts_ns), 1000000) AS ts_ns, floordiv(epoch_us(ts_tz), 1000) AS ts_tz,
  strftime(d, '%Y-%m-%d') AS d, dec::DOUBLE AS dec, dec38::DOUBLE AS dec38,
  to_json(st)::VARCHAR AS st, to_json(lst)::VARCHAR AS lst, to_base64(bin) AS bin
FROM read_parquet('${file}') ORDER BY id`;

/** DuckDB column type -> kappa header type. */
function kappaType(duck: string): string {
  if (duck === 'TIMESTAMP WITH TIME ZONE') return 'timestamptz';
  if (duck.startsWith('TIMESTAMP')) return 'timestamp';
  if (duck.startsWith('DECIMAL')) return 'decimal';
  if (/^(BIGINT|INTEGER|SMALLINT|TINYINT|UBIGINT|UINTEGER|USMALLINT|UTINYINT)$/.test(duck)) return 'int64';
  if (duck === 'DOUBLE' || duck === 'FLOAT') return 'float64';
  if (duck === 'BOOLEAN') return 'boolean';
  if (duck === 'VARCHAR' || duck === 'UUID') return 'string';
  if (duck === 'DATE') return 'date';
  if (duck === 'BLOB') return 'binary';
  if (duck.startsWith('STRUCT') || duck.endsWith('[]') || duck.startsWith('MAP')) return 'json';
  throw new Error(`unmapped DuckDB type ${duck}`);
}

const VARIANTS: { name: string; options: string }[] = [
  ...['uncompressed', 'snappy', 'gzip', 'zstd', 'brotli', 'lz4', 'lz4_raw'].map((c) => ({
    name: c,
    options: `COMPRESSION ${c}`,
  })),
  { name: 'v2-zstd', options: 'COMPRESSION zstd, PARQUET_VERSION V2' },
  { name: 'v2-snappy-small-groups', options: 'COMPRESSION snappy, PARQUET_VERSION V2, ROW_GROUP_SIZE 1000' },
  { name: 'gzip-small-groups', options: 'COMPRESSION gzip, ROW_GROUP_SIZE 1000' },
];

describe('kappa ingest reads DuckDB-written Parquet exactly as DuckDB does', () => {
  const tmp = tempDir();
  let con: DuckDBConnection;
  before(async () => {
    con = await (await DuckDBInstance.create(':memory:')).connect();
    await con.run(`CREATE TABLE src AS ${SOURCE}`);
    await con.run('CREATE MACRO floordiv(a, b) AS (a - ((a % b + b) % b)) // b');
  });
  after(() => tmp.cleanup());

  for (const v of VARIANTS) {
    it(v.name, async () => {
      const file = join(tmp.dir, `${v.name}.parquet`);
      await con.run(`COPY src TO '${file}' (FORMAT parquet, ${v.options})`);
      const groups = Number(
        (
          await con.runAndReadAll(`SELECT count(DISTINCT row_group_id) AS n FROM parquet_metadata('${file}')`)
        ).getRowObjectsJS()[0].n,
      );
      if (v.name.includes('small-groups')) assert.ok(groups > 3, `expected many row groups, got ${groups}`);

      const r = await sh(`kappa ingest '${file}' --ts-field ts_ms -q`);
      assert.equal(r.code, 0, r.stderr);
      const lines = parseLines<Record<string, unknown>>(r.stdout);
      const header = lines[0] as { kappa: number; schema: Record<string, string> };
      assert.equal(header.kappa, 1);
      assert.deepEqual(lines.at(-1), { end: true });

      // Header schema: the same columns, in order, with the types DuckDB reads.
      const described = (await con.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${file}')`))
        .getRowObjectsJS()
        .map((row) => [String(row.column_name), kappaType(String(row.column_type))]);
      assert.deepEqual(Object.entries(header.schema), described);

      const records = lines.filter((l) => 'value' in l) as { ts: number; value: Record<string, unknown> }[];
      assert.equal(records.length, ROWS);
      const got = records.map((rec) => rec.value).sort((a, b) => Number(a.id) - Number(b.id));
      const want = (await con.runAndReadAll(EXPECTED(file))).getRowObjectsJS();
      for (let i = 0; i < ROWS; i++) {
        const w = want[i];
        const expected: Record<string, unknown> = {};
        for (const [k, val] of Object.entries(w)) {
          if (val === null) expected[k] = null;
          else if (typeof val === 'bigint') expected[k] = Number(val);
          else if (k === 'st' || k === 'lst') expected[k] = JSON.parse(String(val));
          else expected[k] = val;
        }
        assert.deepEqual(got[i], expected, `row id ${i}`);
      }
      // Event time comes from the typed column as epoch ms.
      assert.deepEqual(
        records.slice(0, 5).map((rec) => rec.ts),
        records.slice(0, 5).map((rec) => rec.value.ts_ms),
      );
    });
  }
});
