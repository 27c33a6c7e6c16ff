/**
 * Quantiles of `kappa window` against DuckDB on the 3M flights, per origin and hour: the exact
 * ones (median, quantile_cont, quantile_disc) equal DuckDB's; approx_quantile (t-digest) is within
 * its documented rank bound (APPROX_QUANTILE_RANK_ERROR * n + APPROX_QUANTILE_RANK_SLACK) of the exact rank, checked by
 * DuckDB counting the window's values below and at the result.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { APPROX_QUANTILE_RANK_ERROR, APPROX_QUANTILE_RANK_SLACK } from '../../src/ops/window/aggregate.js';
import { FLIGHTS, sh, tempDir } from '../helpers.js';
import { ingestFlights } from './flights-data.js';

interface Row {
  window_start: number;
  origin: string;
  count: number;
  m: number;
  c90: number;
  d90: number;
  d10: number;
  a50: number;
  a99: number;
}

describe('kappa window quantiles on the 3M flights (DuckDB oracle)', () => {
  const t = tempDir();
  after(() => t.cleanup());

  it('median/quantile_cont/quantile_disc equal DuckDB; approx_quantile is within its bound', async () => {
    const out = `${t.dir}/q.kappa`;
    const aggs =
      'count, median(delay) as m, quantile_cont(delay, 0.9) as c90, quantile_disc(delay, 0.9) as d90, quantile(delay, 0.1) as d10, approx_quantile(delay, 0.5) as a50, approx_quantile(delay, 0.99) as a99';
    const r = await sh(
      `${await ingestFlights(t.dir)} | kappa window -q --key origin --tumbling 1h --agg '${aggs}' > ${out}`,
    );
    assert.equal(r.code, 0, r.stderr);
    const rows: Row[] = readFileSync(out, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{"ts":'))
      .map((l) => (JSON.parse(l) as { value: Row }).value);
    assert.equal(rows.length, 424_259);
    const json = `${t.dir}/rows.ndjson`;
    writeFileSync(json, `${rows.map((x) => JSON.stringify(x)).join('\n')}\n`);

    const con = await (await DuckDBInstance.create()).connect();
    try {
      await con.run(`CREATE VIEW flights AS SELECT * FROM '${FLIGHTS}'`);
      await con.run(
        `CREATE TABLE k AS SELECT * FROM read_json('${json}', columns = {window_start: 'BIGINT', origin: 'VARCHAR', count: 'BIGINT', m: 'DOUBLE', c90: 'DOUBLE', d90: 'BIGINT', d10: 'BIGINT', a50: 'DOUBLE', a99: 'DOUBLE'})`,
      );
      await con.run(`CREATE TABLE d AS SELECT epoch_ms(time_bucket(INTERVAL 1 HOUR, date)) AS s, origin,
          count(*) AS n, median(delay) AS m, quantile_cont(delay, 0.9) AS c90, quantile_disc(delay, 0.9) AS d90,
          quantile(delay, 0.1) AS d10
        FROM flights GROUP BY ALL`);
      const diff = (
        await con.runAndReadAll(`SELECT count(*) AS windows,
            count(*) FILTER (WHERE k.origin IS NULL OR d.origin IS NULL) AS unmatched,
            count(*) FILTER (WHERE k.count <> d.n) AS count_diff,
            count(*) FILTER (WHERE k.m <> d.m) AS median_diff,
            count(*) FILTER (WHERE k.c90 <> d.c90) AS cont_diff,
            count(*) FILTER (WHERE k.d90 <> d.d90) AS disc_diff,
            count(*) FILTER (WHERE k.d10 <> d.d10) AS quantile_diff
          FROM k FULL JOIN d ON k.origin = d.origin AND k.window_start = d.s`)
      ).getRowObjectsJson()[0];
      assert.deepEqual(Object.fromEntries(Object.entries(diff).map(([n, v]) => [n, Number(v)])), {
        windows: 424_259,
        unmatched: 0,
        count_diff: 0,
        median_diff: 0,
        cont_diff: 0,
        disc_diff: 0,
        quantile_diff: 0,
      });
      // approx_quantile: with x the result and n the window's count, the number of values below x
      // is at most q*n + e*n + s and the number at or below x at least q*n - e*n - s.
      const e = APPROX_QUANTILE_RANK_ERROR;
      const sl = APPROX_QUANTILE_RANK_SLACK;
      const bad = (
        await con.runAndReadAll(`WITH ranks AS (
            SELECT k.origin, k.window_start, k.count AS n,
              count(*) FILTER (WHERE f.delay < k.a50) AS lt50, count(*) FILTER (WHERE f.delay <= k.a50) AS le50,
              count(*) FILTER (WHERE f.delay < k.a99) AS lt99, count(*) FILTER (WHERE f.delay <= k.a99) AS le99
            FROM k JOIN flights f ON f.origin = k.origin
              AND epoch_ms(time_bucket(INTERVAL 1 HOUR, f.date)) = k.window_start
            GROUP BY ALL)
          SELECT count(*) AS windows,
            count(*) FILTER (WHERE lt50 > 0.5 * n + ${e} * n + ${sl} OR le50 < 0.5 * n - ${e} * n - ${sl}) AS off50,
            count(*) FILTER (WHERE lt99 > 0.99 * n + ${e} * n + ${sl} OR le99 < 0.99 * n - ${e} * n - ${sl}) AS off99
          FROM ranks`)
      ).getRowObjectsJson()[0];
      assert.equal(Number(bad.windows), 424_259);
      assert.equal(Number(bad.off50), 0, 'approx_quantile(delay, 0.5) outside its bound');
      assert.equal(Number(bad.off99), 0, 'approx_quantile(delay, 0.99) outside its bound');
    } finally {
      con.closeSync();
    }
  });
});
