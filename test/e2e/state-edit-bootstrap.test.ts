/**
 * Issue 10 acceptance 4 in the form possible without pipeline savepoints: a window job over
 * January–May flights ends with a savepoint instead of firing (written by the savepoint module, as
 * `--savepoint-at-end` will), `kappa state-edit` validates it and renames the history job's
 * operator to the live job's uid, and the live job, restored from it, runs over June: its windows
 * equal the June windows of one run over January–June, as DuckDB computes them from the records.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import type { WindowSpec } from '../../src/ops/window/operator.js';
import { sh, tempDir } from '../helpers.js';
import { loadFlights, resultLine, resume, rowLine, rows, savepointAt } from './state-edit-data.js';

const DAY = 86_400_000;
const OFFSET = 5 * 3_600_000; // windows [05:00, 05:00): the window of June 1 starts on May 31
const WINDOW: WindowSpec = { kind: 'tumbling', size: DAY, offset: OFFSET };

describe('state-edit bootstrap', () => {
  it('acceptance 4 (without pipeline savepoints): January–May savepoint at end, then June from it, gives the June windows of one January–June run (DuckDB)', async () => {
    const t = tempDir('kappa-bootstrap-');
    const con = await (await DuckDBInstance.create()).connect();
    try {
      const flights = await loadFlights(con, "origin IN ('ABE', 'ACT', 'ALB', 'AZO', 'BOI')");
      const june = Date.UTC(2001, 5, 1);
      const stop = flights.findIndex((f) => f.ts >= june);
      assert.ok(stop > 1000 && stop < flights.length - 500, `stop ${stop} of ${flights.length}`);
      const history = join(t.dir, 'history');
      const { wm } = await savepointAt(history, WINDOW, flights, stop);

      const v = await sh(`kappa state-edit validate ${history}`);
      assert.equal(v.code, 0, v.stderr);
      const live = join(t.dir, 'live');
      const r = await sh(`kappa state-edit rename-operator ${history} -o ${live} window-1 window-live`);
      assert.equal(r.code, 0, r.stderr);
      const i = await sh(`kappa state-edit inspect ${live} --json`);
      assert.equal(i.code, 0, i.stderr);
      const report = JSON.parse(i.stdout) as {
        operators: { uid: string; entries: number; watermark: number }[];
      };

      const juneOut = await resume(live, WINDOW, flights, stop, 'window-live');
      const want = await rows(
        con,
        `WITH w AS (SELECT origin, (floor((ts - ${OFFSET}) / ${DAY}) * ${DAY} + ${OFFSET})::BIGINT AS ws, delay FROM f)
         SELECT origin, ws, ws + ${DAY} AS we, count(*) AS n, sum(delay) AS s FROM w GROUP BY origin, ws
         HAVING ws + ${DAY} - 1 > ${wm}`,
      );
      // The open windows in the savepoint are exactly those DuckDB finds open at its watermark
      // that hold records from before June (the June 1 window of each airport, May 31 05:00–).
      const open = await rows(
        con,
        `SELECT count(DISTINCT (origin, floor((ts - ${OFFSET}) / ${DAY}))) AS n FROM f
         WHERE i < ${stop} AND floor((ts - ${OFFSET}) / ${DAY}) * ${DAY} + ${OFFSET} + ${DAY} - 1 > ${wm}`,
      );
      assert.deepEqual(
        report.operators.map((o) => [o.uid, o.entries, o.watermark]),
        [['window-live', Number(open[0].n), wm]],
      );
      assert.ok(Number(open[0].n) > 0, 'windows that span the switch from history to June');
      assert.ok(want.length > 100);
      assert.deepEqual(juneOut.map(resultLine).sort(), want.map(rowLine).sort());
    } finally {
      con.closeSync();
      t.cleanup();
    }
  });
});
