/**
 * Issue 9, acceptance 1: a checkpointing files-to-table pipeline killed with SIGKILL at random
 * moments and resumed each time (test/kill.ts) ends with a table in which every window appears
 * exactly once with the values DuckDB computes from the input.
 *
 * Input: the first 500,000 flights (not all 3M: each of the ≥ 10 killed runs and the final one
 * restarts three Node processes on a 2-core machine shared with other jobs, and a resumed file
 * source that cannot seek reads from the start again; 500k keeps the test near two minutes) as
 * NDJSON with ISO time text, made by DuckDB from the bundled Parquet file. The oracle is DuckDB's
 * own GROUP BY over that NDJSON file; the table is read with DuckDB over the live files of the
 * Delta log (adds minus removes, replayed from version 0).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { FLIGHTS, tempDir } from '../helpers.js';
import { killAndResume } from '../kill.js';

const ROWS = Number(process.env.KAPPA_KILL_ROWS ?? 3_000_000);
const q = (s: string) => `'${s.replaceAll("'", "''")}'`;

/** The data files of the table's current snapshot: the log's JSON versions replayed in order. */
export function liveFiles(table: string): string[] {
  const log = join(table, '_delta_log');
  const versions = readdirSync(log)
    .filter((f) => /^\d{20}\.json$/.test(f))
    .sort();
  assert.equal(versions[0], `${'0'.repeat(20)}.json`, 'the log keeps every JSON version');
  const live = new Set<string>();
  for (const v of versions)
    for (const line of readFileSync(join(log, v), 'utf8').split('\n')) {
      if (!line) continue;
      const a = JSON.parse(line) as { add?: { path: string }; remove?: { path: string } };
      if (a.add) live.add(decodeURIComponent(a.add.path));
      if (a.remove) live.delete(decodeURIComponent(a.remove.path));
    }
  return [...live].sort().map((p) => join(table, p));
}

describe('kill test: files -> window -> table, killed and resumed at random (issue 9, acceptance 1)', () => {
  const tmp = tempDir('kappa-kill-files-');
  after(() => tmp.cleanup());

  it('≥ 10 SIGKILLs of random stages, then the table holds every window exactly once (DuckDB)', {
    timeout: 300_000,
  }, async (t) => {
    const input = join(tmp.dir, 'flights.ndjson');
    const table = join(tmp.dir, 'table');
    const db = await DuckDBInstance.create();
    const c = await db.connect();
    await c.run(
      `COPY (SELECT strftime(date, '%Y-%m-%dT%H:%M:%SZ') AS date, delay, distance, origin, destination FROM read_parquet(${q(FLIGHTS)}) LIMIT ${ROWS}) TO ${q(input)} (FORMAT json)`,
    );
    const seed = Number(process.env.KAPPA_KILL_SEED ?? 20261130);
    const outcome = await killAndResume({
      stages: [
        [
          'ingest',
          input,
          '--ts-field',
          'date',
          '--max-out-of-orderness',
          '1h',
          '--checkpoint-interval',
          '500ms',
          '-q',
        ],
        [
          'window',
          '--key',
          'origin',
          '--tumbling',
          '1h',
          '--agg',
          'count, sum(delay), min(delay), max(delay)',
          '-q',
        ],
        ['sink', table, '--partition-by', 'dt=%Y-%m-%d', '-q'],
      ],
      env: { KAPPA_CHECKPOINT_DIR: join(tmp.dir, 'checkpoints') },
      kills: 10,
      seed,
      // Within 0.8 s after the run's first complete checkpoint: every run makes progress and resumes
      // from a checkpoint, and ten kills do not use up the input on a fast machine.
      afterCheckpoint: join(tmp.dir, 'checkpoints'),
      minKillMs: 0,
      maxKillMs: 800,
      exitTimeoutMs: 30_000,
      runTimeoutMs: 120_000,
      deadlineMs: 150_000,
      onRun: (r) =>
        t.diagnostic(
          `run ${r.run}: ${r.ms} ms, ${r.resumedFrom === undefined ? 'fresh' : `resumed from checkpoint ${r.resumedFrom}`}, ${r.killed === undefined ? 'not killed' : `killed stage ${r.killed} at ${r.killAtMs} ms`}; exits ${r.exits.map((x) => x.code ?? x.signal).join(' ')}`,
        ),
    });
    assert.ok(outcome.kills >= 10, `seed ${seed}: only ${outcome.kills} kills hit a live stage`);
    // The kills fell after checkpoints: most reruns resumed rather than started over.
    const resumed = outcome.runs.filter((r) => r.resumedFrom !== undefined).length;
    assert.ok(resumed >= 5, `seed ${seed}: only ${resumed} runs resumed from a checkpoint`);

    // Retention held across the crashes: at most the default 3 complete checkpoints are left.
    const ckDir = join(tmp.dir, 'checkpoints');
    const complete = readdirSync(ckDir).filter(
      (d) => d.startsWith('chk-') && existsSync(join(ckDir, d, '_metadata.json')),
    );
    assert.ok(
      complete.length >= 1 && complete.length <= 3,
      `complete checkpoints left: ${complete.join(', ')}`,
    );
    assert.ok(existsSync(join(table, '_delta_log')), 'the table exists');
    const files = liveFiles(table);
    assert.ok(files.length > 0, 'the table has data files');
    await c.run(
      `CREATE VIEW got AS SELECT origin, window_start, count, CAST(sum_delay AS BIGINT) AS sum_delay, min_delay, max_delay FROM read_parquet([${files.map(q).join(', ')}])`,
    );
    await c.run(
      `CREATE VIEW want AS SELECT origin, time_bucket(INTERVAL 1 hour, strptime(date, '%Y-%m-%dT%H:%M:%SZ')) AS window_start, count(*) AS count, sum(delay) AS sum_delay, min(delay) AS min_delay, max(delay) AS max_delay FROM read_json(${q(input)}, columns = {date: 'VARCHAR', delay: 'BIGINT', distance: 'BIGINT', origin: 'VARCHAR', destination: 'VARCHAR'}) GROUP BY ALL`,
    );
    const one = async (sql: string) => (await c.runAndReadAll(sql)).getRowObjectsJson()[0];
    const dup = await one(
      'SELECT count(*) AS windows, coalesce(sum(n), 0) AS rows FROM (SELECT origin, window_start, count(*) AS n FROM got GROUP BY ALL HAVING n > 1)',
    );
    const counts = await one('SELECT (SELECT count(*) FROM got) AS got, (SELECT count(*) FROM want) AS want');
    const missing = await one('SELECT count(*) AS n FROM (SELECT * FROM want EXCEPT ALL SELECT * FROM got)');
    const extra = await one('SELECT count(*) AS n FROM (SELECT * FROM got EXCEPT ALL SELECT * FROM want)');
    c.closeSync();
    assert.deepEqual(
      { duplicateWindows: dup, rows: counts, missing: missing.n, extra: extra.n },
      {
        duplicateWindows: { windows: '0', rows: '0' },
        rows: { got: counts.want, want: counts.want },
        missing: '0',
        extra: '0',
      },
      `seed ${seed}: the table equals DuckDB's aggregation, every window exactly once`,
    );
  });
});
