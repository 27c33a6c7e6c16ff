/**
 * The columnar Parquet path (issue 14): Parquet files whose columns are all of the types the
 * parquet-wasm decoder takes (integers, floats, booleans, strings, timestamps in every unit, with
 * nulls, NaN, values beyond 2^53 and instants before 1970), written by DuckDB with every codec,
 * read by `kappa ingest` into the binary stream (column-wise) and into NDJSON (rows), each
 * compared value by value with what DuckDB reads from the same file. The Arrow stream is decoded
 * with flechette directly (not with kappa's reader).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { tableFromIPC } from '@uwdata/flechette';
import { parseLines, sh, tempDir } from '../helpers.js';

const ROWS = 5000;

const SOURCE = `
SELECT
  i::BIGINT AS id,
  (i * 7 % 1000)::INTEGER AS i32,
  (i % 5)::TINYINT AS i8,
  (i * 3)::SMALLINT AS i16,
  (i * 100000)::UINTEGER AS u32,
  CASE WHEN i % 17 = 0 THEN 9007199254740993 + i WHEN i % 6 = 0 THEN NULL ELSE -i * 1000003 END::BIGINT AS big,
  CASE WHEN i % 10 = 0 THEN NULL WHEN i % 23 = 0 THEN 'NaN'::DOUBLE WHEN i % 29 = 0 THEN 'inf'::DOUBLE ELSE i * 1.25 END::DOUBLE AS dbl,
  (i / 8.0)::FLOAT AS flt,
  CASE WHEN i % 11 = 0 THEN NULL ELSE i % 3 = 0 END AS flag,
  'name-' || (i % 50) AS s,
  CASE WHEN i % 7 = 0 THEN NULL WHEN i % 13 = 0 THEN '' ELSE 'x' || i || '-é€😀' END AS s_null,
  TIMESTAMP '1969-12-31 23:59:00' + INTERVAL (i * 37) SECOND + INTERVAL (i * 1001) MICROSECOND AS ts_us,
  (TIMESTAMP '2024-01-01 00:00:00' + INTERVAL (i) MINUTE + INTERVAL (i * 3) MILLISECOND)::TIMESTAMP_MS AS ts_ms,
  (TIMESTAMP_NS '1969-12-31 23:00:00' + INTERVAL (i * 1000003) MICROSECOND)::TIMESTAMP_NS AS ts_ns,
  CASE WHEN i % 13 = 0 THEN NULL ELSE TIMESTAMPTZ '2024-06-01 00:00:00+00' + INTERVAL (i * 61) SECOND END AS ts_tz
FROM range(0, ${ROWS}) r(i)`;

/** What kappa must emit, computed by DuckDB from the file (epoch ms floored; NaN/inf as null). */
const EXPECTED = (file: string) => `
SELECT id, i32, i8, i16, u32, big::VARCHAR AS big,
  CASE WHEN isnan(dbl) OR isinf(dbl) THEN NULL ELSE dbl END AS dbl, flt, flag, s, s_null,
  floordiv(epoch_us(ts_us), 1000) AS ts_us, epoch_ms(ts_ms) AS ts_ms,
  floordiv(epoch_ns(ts_ns), 1000000) AS ts_ns, floordiv(epoch_us(ts_tz), 1000) AS ts_tz
FROM read_parquet('${file}') ORDER BY id`;

const VARIANTS = [
  ...['uncompressed', 'snappy', 'gzip', 'zstd', 'brotli', 'lz4', 'lz4_raw'].map((c) => ({
    name: c,
    options: `COMPRESSION ${c}`,
  })),
  { name: 'v2-zstd-small-groups', options: 'COMPRESSION zstd, PARQUET_VERSION V2, ROW_GROUP_SIZE 1000' },
];

/** DuckDB's row as kappa's stream values: bigint -> number, `big` as a number when exact. */
function expectedRow(w: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(w)) {
    if (v === null) out[k] = null;
    else if (typeof v === 'bigint') out[k] = Number(v);
    else if (k === 'big') out[k] = Number.isSafeInteger(Number(v)) ? Number(v) : v;
    else out[k] = v;
  }
  return out;
}

/** Records of a version-2 stream file, decoded by flechette: `{ts, key, value}` (control rows dropped). */
function arrowRecords(path: string): { ts: number; key: string | null; value: Record<string, unknown> }[] {
  const bytes = readFileSync(path);
  // One segment (all batches share the schema): schema, dictionaries and batches up to the EOS.
  const t = tableFromIPC(bytes, { useBigInt: true });
  const names = t.schema.fields.map((f) => f.name).filter((n) => !n.startsWith('$'));
  const out: { ts: number; key: string | null; value: Record<string, unknown> }[] = [];
  const ev = t.getChild('$event');
  const ts = t.getChild('$ts');
  const key = t.getChild('$key');
  const cols = names.map((n) => t.getChild(n));
  for (let i = 0; i < t.numRows; i++) {
    if (ev.at(i) !== null) continue;
    const value: Record<string, unknown> = {};
    names.forEach((n, c) => {
      const v = cols[c].at(i);
      value[n] =
        typeof v === 'bigint' ? (Number.isSafeInteger(Number(v)) ? Number(v) : v.toString()) : (v ?? null);
    });
    out.push({ ts: Number(ts.at(i) as bigint), key: (key.at(i) as string | null) ?? null, value });
  }
  return out;
}

describe('columnar Parquet path: Parquet -> binary stream and NDJSON, exactly as DuckDB reads it', () => {
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
      const want = (await con.runAndReadAll(EXPECTED(file))).getRowObjectsJS().map(expectedRow);

      const arrow = join(tmp.dir, `${v.name}.arrow`);
      const a = await sh(
        `kappa ingest '${file}' --ts-field ts_ms --key-field s --stream-format arrow -q > '${arrow}'`,
      );
      assert.equal(a.code, 0, a.stderr);
      const recs = arrowRecords(arrow).sort((x, y) => Number(x.value.id) - Number(y.value.id));
      assert.equal(recs.length, ROWS);
      for (let i = 0; i < ROWS; i++) {
        assert.deepEqual(recs[i].value, want[i], `arrow: row id ${i}`);
        assert.equal(recs[i].ts, want[i].ts_ms, `arrow: event time of row id ${i}`);
        assert.equal(recs[i].key, want[i].s, `arrow: key of row id ${i}`);
      }

      const n = await sh(`kappa ingest '${file}' --ts-field ts_ms --key-field s --stream-format ndjson -q`);
      assert.equal(n.code, 0, n.stderr);
      const lines = parseLines<{ ts: number; key: string; value: Record<string, unknown> }>(n.stdout).filter(
        (l) => 'value' in l,
      );
      lines.sort((x, y) => Number(x.value.id) - Number(y.value.id));
      assert.equal(lines.length, ROWS);
      for (let i = 0; i < ROWS; i++) {
        assert.deepEqual(lines[i].value, want[i], `ndjson: row id ${i}`);
        assert.equal(lines[i].key, want[i].s);
      }
    });
  }

  it('a corrupt row group (a parquet-wasm trap) is read by the row reader: its rows are bad, the others go out as batches', async () => {
    const good = join(tmp.dir, 'groups.parquet');
    const bad = join(tmp.dir, 'groups-bad.parquet');
    await con.run(
      `COPY (SELECT i AS id, md5(i::VARCHAR) AS h FROM range(0, 30000) r(i)) TO '${good}' (FORMAT parquet, ROW_GROUP_SIZE 10000, COMPRESSION zstd)`,
    );
    const md = (
      await con.runAndReadAll(
        `SELECT row_group_id, row_group_num_rows, path_in_schema, data_page_offset, total_compressed_size FROM parquet_metadata('${good}') ORDER BY row_group_id`,
      )
    ).getRowObjectsJS();
    const m = md.find((x) => Number(x.row_group_id) === 1 && x.path_in_schema === 'h');
    assert.ok(m);
    const mid = Number(m.data_page_offset) + Math.floor(Number(m.total_compressed_size) / 2);
    const b = readFileSync(good);
    for (let i = mid; i < mid + 64; i++) b[i] ^= 0xff;
    writeFileSync(bad, b);
    const groupRows = md.filter((x) => x.path_in_schema === 'id').map((x) => Number(x.row_group_num_rows));
    const arrow = join(tmp.dir, 'groups-bad.arrow');
    const r = await sh(
      `kappa ingest '${bad}' --ts-field id --stream-format arrow --on-error skip > '${arrow}'`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`${groupRows[1].toLocaleString('en-US')} bad`));
    const ids = arrowRecords(arrow).map((x) => Number(x.value.id));
    const want = (
      await con.runAndReadAll(
        `SELECT id FROM read_parquet('${good}', file_row_number = true) WHERE file_row_number < ${groupRows[0]} OR file_row_number >= ${groupRows[0] + groupRows[1]} ORDER BY file_row_number`,
      )
    )
      .getRowObjectsJS()
      .map((x) => Number(x.id));
    assert.deepEqual(ids, want);
  });

  it('a row group with a bad event time goes through the row path: the bad row is located', async () => {
    const file = join(tmp.dir, 'badts.parquet');
    await con.run(
      `COPY (SELECT i AS id, CASE WHEN i = 1234 THEN NULL ELSE TIMESTAMP '2024-01-01' + INTERVAL (i) SECOND END AS t FROM range(0, 3000) r(i)) TO '${file}' (FORMAT parquet)`,
    );
    const r = await sh(`kappa ingest '${file}' --ts-field t --stream-format arrow -q > /dev/null`);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /badts\.parquet row group 0 row 1234: /);
    assert.match(r.stderr, /event-time field 't' is missing/);
  });
});
