/**
 * The savepoint format is readable without kappa (issue 9: "DuckDB reads the open windows from the
 * savepoint's Parquet files"): a window operator over real flight records is snapshotted mid-stream
 * into a savepoint; DuckDB reads its Parquet files and finds exactly the open windows that DuckDB
 * itself computes from the input records (keys, window bounds, counts, sums, timers, key groups).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { ArrayCollector } from '../../src/ops/operator.js';
import { compilePath } from '../../src/ops/path.js';
import { parseAggs } from '../../src/ops/window/aggregate.js';
import { WindowOperator } from '../../src/ops/window/operator.js';
import { keyGroupOf } from '../../src/state/keygroup.js';
import { openSavepoint } from '../../src/state/savepoint/read.js';
import { writeSavepoint } from '../../src/state/savepoint/write.js';
import { tempDir, VEGA } from '../helpers.js';

const HOUR = 3_600_000;
const LATENESS = 48 * HOUR;
const KG = 128;

interface Flight {
  date: string;
  delay: number;
  origin: string;
}

describe('savepoint Parquet files read by DuckDB', () => {
  it('DuckDB finds the open windows (keys, bounds, accumulators, timers, count per key group)', async () => {
    const t = tempDir();
    const flights = (JSON.parse(readFileSync(join(VEGA, 'flights-20k.json'), 'utf8')) as Flight[]).slice(
      0,
      10_000,
    );
    const half = join(t.dir, 'input.json');
    writeFileSync(half, flights.map((f) => JSON.stringify(f)).join('\n'));
    const op = new WindowOperator({
      window: { kind: 'tumbling', size: HOUR },
      allowedLateness: LATENESS,
      key: { kind: 'field', path: 'origin', get: compilePath('origin') },
      aggs: parseAggs('count, sum(delay)'),
      stateCache: 100, // most windows are in LevelDB when the snapshot is taken
      maxKeyGroups: KG,
    });
    const con = await (await DuckDBInstance.create()).connect();
    try {
      await op.open({ kappa: 1, schema: { origin: 'string', delay: 'int64' } });
      const out = new ArrayCollector();
      let wm = Number.NEGATIVE_INFINITY;
      for (let i = 0; i < flights.length; i++) {
        const f = flights[i];
        const ts = Date.parse(`${f.date.replace(/\//g, '-').replace(' ', 'T')}:00Z`);
        await op.record({ ts, key: null, value: f }, out);
        if (i % 100 === 99) {
          wm = ts - 1;
          await op.watermark(wm, out);
        }
      }
      const sp = join(t.dir, 'sp');
      await writeSavepoint(sp, {
        metadata: { pipeline: 'flights', maxKeyGroups: KG },
        operators: [{ uid: 'window-1', ...(await op.snapshot()) }],
      });
      const meta = (await openSavepoint(sp)).metadata;
      assert.equal(meta.operators[0].watermark, wm);

      const rows = async (sql: string) =>
        (await con.runAndReadAll(sql)).getRowObjectsJson() as Record<
          string,
          string | number | boolean | null
        >[];
      const files = `read_parquet('${sp}/window-1/*.parquet')`;
      const types = await rows(`SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM ${files})`);
      assert.deepEqual(
        types.map((r) => `${r.column_name} ${r.column_type}`),
        [
          'key_group INTEGER',
          'state VARCHAR',
          'key VARCHAR',
          'window_start TIMESTAMP',
          'window_end TIMESTAMP',
          'timer TIMESTAMP',
          'value VARCHAR',
        ],
      );
      // Expected, from the input records alone: every (origin, hour) window not yet purged, i.e.
      // end - 1 + lateness > watermark (the last watermark the operator saw).
      const want = await rows(`
        WITH r AS (SELECT origin, (epoch_ms(strptime(date, '%Y/%m/%d %H:%M')) // ${HOUR}) * ${HOUR} AS ws, delay
                   FROM read_json('${half}'))
        SELECT origin, ws, count(*) AS n, sum(delay) AS s, ws + ${HOUR} - 1 <= ${wm} AS fired
        FROM r WHERE ws + ${HOUR} - 1 + ${LATENESS} > ${wm} GROUP BY origin, ws`);
      const got = await rows(`
        SELECT json_extract_string(key, '$') AS origin, epoch_ms(window_start) AS ws,
               epoch_ms(window_end) - epoch_ms(window_start) AS size,
               json_extract(value, '$.acc.count')::BIGINT AS n, json_extract(value, '$.acc.sum_delay')::BIGINT AS s,
               json_extract(value, '$.fired')::BOOLEAN AS fired,
               epoch_ms(timer) - (epoch_ms(window_end) - 1) AS timer_after_end, key_group, state
        FROM ${files}`);
      const line = (r: Record<string, unknown>) => `${r.origin} ${r.ws} ${r.n} ${r.s} ${r.fired}`;
      assert.ok(want.length > 200, `open windows: ${want.length}`);
      assert.deepEqual(got.map(line).sort(), want.map(line).sort());
      for (const r of got) {
        assert.equal(Number(r.size), HOUR);
        assert.equal(r.state, 'window');
        // A fired window waits for its clean-up at end - 1 + lateness; an open one fires at end - 1.
        assert.equal(Number(r.timer_after_end), r.fired ? LATENESS : 0);
      }
      // Open windows per key group, as DuckDB counts them, against the documented hash of each key.
      const perGroup = new Map<number, number>();
      for (const w of want) {
        const g = keyGroupOf(JSON.stringify(w.origin), KG);
        perGroup.set(g, (perGroup.get(g) ?? 0) + 1);
      }
      const duckGroups = await rows(`SELECT key_group, count(*) AS n FROM ${files} GROUP BY 1 ORDER BY 1`);
      assert.deepEqual(
        duckGroups.map((r) => [Number(r.key_group), Number(r.n)]),
        [...perGroup].sort((a, b) => a[0] - b[0]),
      );
      // Keys of one key group.
      const g = Number(duckGroups[0].key_group);
      const keys = await rows(
        `SELECT DISTINCT json_extract_string(key, '$') AS k FROM ${files} WHERE key_group = ${g}`,
      );
      for (const k of keys) assert.equal(keyGroupOf(JSON.stringify(k.k), KG), g);
      assert.ok(keys.length > 0);
    } finally {
      con.closeSync();
      await op.close();
      t.cleanup();
    }
  });
});
