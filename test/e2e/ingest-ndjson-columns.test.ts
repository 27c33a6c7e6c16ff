/**
 * NDJSON ingest straight to columns (issue 14): scenario 3 over NDJSON (ingest | window | sink
 * table, binary pipes) takes the columnar reader for every row and gives DuckDB's aggregate of the
 * same file; the NDJSON pipe (row path) gives the same table.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { FLIGHTS, sh, tempDir } from '../helpers.js';

async function query(sql: string): Promise<Record<string, unknown>[]> {
  const db = await DuckDBInstance.create();
  const c = await db.connect();
  const r = await c.runAndReadAll(sql);
  const rows = r.getRowObjectsJson() as Record<string, unknown>[];
  c.closeSync();
  return rows;
}

describe('NDJSON ingest to columns', () => {
  const t = tempDir();
  const src = `${t.dir}/flights.ndjson`;
  before(async () => {
    // 200k flights as DuckDB writes NDJSON (delay has nulls; date as ISO-8601 text).
    await query(
      `COPY (SELECT strftime(date, '%Y-%m-%dT%H:%M:%SZ') AS date, delay, distance, origin, destination
       FROM '${FLIGHTS}' ORDER BY date LIMIT 200000) TO '${src}' (FORMAT json)`,
    );
  });
  after(() => t.cleanup());

  it('scenario 3 over NDJSON: every row by columns, the DuckDB aggregate, the same table as the row path', async () => {
    const win = `kappa window --key origin --tumbling 1h --agg 'count, avg(delay), max(delay)' -q`;
    const forms: Record<string, string> = {
      binary: `kappa ingest '${src}' --ts-field date 2> '${t.dir}/binary.err' | ${win}`,
      ndjson: `kappa ingest '${src}' --ts-field date --stream-format ndjson 2> '${t.dir}/ndjson.err' | ${win} --stream-format ndjson`,
    };
    const tables: Record<string, string> = {};
    for (const [name, p] of Object.entries(forms)) {
      const r = await sh(`${p} | kappa sink '${t.dir}/${name}' --partition-by 'dt=%Y-%m-%d' -q`);
      assert.equal(r.code, 0, `${name}: ${r.stderr} ${readFileSync(`${t.dir}/${name}.err`, 'utf8')}`);
      tables[name] = JSON.stringify(
        await query(
          `SELECT window_start::VARCHAR AS s, origin, count::BIGINT AS n, round(avg_delay::DOUBLE, 6) AS a, max_delay::BIGINT AS mx
           FROM read_parquet('${t.dir}/${name}/**/*.parquet', hive_partitioning = false) ORDER BY ALL`,
        ),
      );
    }
    // The binary pipe took the columnar reader for every row; the NDJSON pipe the row path.
    assert.match(
      readFileSync(`${t.dir}/binary.err`, 'utf8'),
      /200,000 in, 200,000 out, 0 bad, 200,000 rows by columns/,
    );
    assert.doesNotMatch(readFileSync(`${t.dir}/ndjson.err`, 'utf8'), /by columns/);
    const want = await query(
      `SELECT strftime(time_bucket(INTERVAL 1 HOUR, date::TIMESTAMP), '%Y-%m-%d %H:%M:%S') AS s, origin,
              count(*)::BIGINT AS n, round(avg(delay)::DOUBLE, 6) AS a, max(delay)::BIGINT AS mx
       FROM read_json('${src}', format = 'newline_delimited') GROUP BY ALL ORDER BY ALL`,
    );
    const got = JSON.parse(tables.binary) as Record<string, unknown>[];
    assert.ok(want.length > 10_000);
    const norm = (rows: Record<string, unknown>[]) =>
      rows.map((r) => `${String(r.s).slice(0, 19)}|${r.origin}|${r.n}|${r.a}|${r.mx}`).sort();
    assert.deepEqual(norm(got), norm(want));
    assert.equal(tables.binary, tables.ndjson);
  });
});
