/**
 * `kappa compact` acceptance 5 (issue 13): SIGKILL at each step of a compaction (the test hook
 * KAPPA_TEST_CRASH_AT, as the sink's commit tests use) leaves the old rows readable, and the next
 * run completes the job. Oracles: DuckDB over the source file and over the table's files, Delta
 * Kernel for Java over the log. A small table (5 days of flights, 50 rows per file) keeps it fast.
 */
import assert from 'node:assert/strict';
import { cpSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { readDeltaTables } from '../delta.js';
import { FLIGHTS, sh, tempDir, walkFiles as walk } from '../helpers.js';

let db: DuckDBConnection;
const tmp = tempDir('kappa-compact-crash-');
const T = tmp.dir;
const SRC = join(T, 'src.parquet');
const BASE = join(T, 'base');
const COLS = 'date, delay, distance, origin, destination';

function dataFiles(dir: string): string[] {
  return walk(dir).filter((f) => f.endsWith('.parquet') && !f.split('/').some((s) => /^[._]/.test(s)));
}

async function diff(a: string, b: string): Promise<number> {
  const x = `(SELECT * FROM (${a}))`;
  const y = `(SELECT * FROM (${b}))`;
  const r = await db.runAndReadAll(
    `SELECT count(*) FROM ((${x} EXCEPT ALL ${y}) UNION ALL (${y} EXCEPT ALL ${x}))`,
  );
  return Number(r.getRows()[0][0]);
}

const glob = (dir: string): string =>
  `SELECT ${COLS} FROM read_parquet('${dir}/*=*/**/*.parquet', hive_partitioning=true)`;

before(async () => {
  db = await (await DuckDBInstance.create(':memory:')).connect();
  await db.run(
    `COPY (SELECT ${COLS} FROM (SELECT *, row_number() OVER () AS rn FROM '${FLIGHTS}') WHERE rn % 10 = 0 AND date < TIMESTAMP '2001-01-06') TO '${SRC}'`,
  );
  const r = await sh(
    `kappa ingest '${SRC}' --ts-field date -q | kappa sink '${BASE}' --partition-by 'dt=%Y-%m-%d' --roll-records 50 -q`,
  );
  assert.equal(r.code, 0, r.stderr);
});
after(() => tmp.cleanup());

describe('kappa compact crash safety', () => {
  it('acceptance 5: SIGKILL at each step leaves the old rows readable; the next run completes the job', async () => {
    const points = [
      'compact-after-rewrite',
      'before-log',
      'after-log',
      'mid-rename',
      'compact-before-delete',
    ];
    const flags = '--commit-every 2';
    const dirs: string[] = [];
    const partitions = readdirSync(BASE).filter((d) => d.startsWith('dt='));
    assert.equal(partitions.length, 5);
    for (const p of points) {
      const t = join(T, `t-${p}`);
      cpSync(BASE, t, { recursive: true });
      dirs.push(t);
      const r = await sh(`kappa compact '${t}' ${flags}; exit $?`, { env: { KAPPA_TEST_CRASH_AT: p } });
      assert.equal(r.code, 137, `${p}: ${r.stderr}`);
      // Until the merged files are published, glob readers see exactly the old rows.
      if (p === 'compact-after-rewrite' || p === 'before-log' || p === 'after-log')
        assert.equal(await diff(`SELECT ${COLS} FROM '${SRC}'`, glob(t)), 0, p);
      if (p === 'compact-after-rewrite') {
        // --vacuum alone removes the dead run's in-progress files (and commits nothing).
        assert.ok(
          walk(t).some((f) => f.includes('inprogress')),
          'the killed run left in-progress files',
        );
        const v = await sh(`kappa compact '${t}' --vacuum`);
        assert.equal(v.code, 0, v.stderr);
        assert.match(v.stderr, /removed \d+ in-progress file\(s\) of crashed writers/);
        assert.deepEqual(
          walk(t).filter((f) => f.includes('inprogress')),
          [],
        );
        assert.equal(await diff(`SELECT ${COLS} FROM '${SRC}'`, glob(t)), 0, p);
      }
      const again = await sh(`kappa compact '${t}' ${flags}`);
      assert.equal(again.code, 0, `${p}: ${again.stderr}`);
      if (p === 'before-log') assert.match(again.stderr, /discarded 1 uncommitted/, p);
      if (p === 'after-log' || p === 'mid-rename') assert.match(again.stderr, /rolled forward 1 crashed/, p);
      assert.equal(await diff(`SELECT ${COLS} FROM '${SRC}'`, glob(t)), 0, p);
      assert.deepEqual(
        walk(t).filter((f) => f.includes('inprogress') || f.startsWith('_kappa/')),
        [],
        `${p}: leftovers`,
      );
      for (const d of partitions) assert.equal(dataFiles(join(t, d)).length, 1, `${p}: ${d}`);
    }
    const want = Number((await db.runAndReadAll(`SELECT count(*) FROM '${SRC}'`)).getRows()[0][0]);
    const tables = await readDeltaTables(dirs);
    for (const [i, k] of tables.entries()) {
      assert.ok(!(k instanceof Error), `${points[i]}: ${String(k)}`);
      assert.equal(k.rows.length, want, points[i]);
      assert.equal(k.totalFiles, 5, points[i]);
    }
  });
});
