/**
 * `kappa run 'A | B | C'` (issue 14): the stages fused in one process give what DuckDB computes, a
 * failing stage cuts the rest off with its exit code, and shell features are refused.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { splitPipeline } from '../../src/commands/run.js';
import { sh, tempDir } from '../helpers.js';
import { duck } from './flights-data.js';

describe('kappa run', () => {
  const t = tempDir('kappa-run-');
  const input = join(t.dir, 'ev.ndjson');
  before(() => {
    const lines: string[] = [];
    let x = 7;
    for (let i = 0; i < 20_000; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      lines.push(JSON.stringify({ t: 1_700_000_000_000 + i * 997, k: `k${x % 13}`, v: (x % 1000) / 10 }));
    }
    writeFileSync(input, `${lines.join('\n')}\n`);
  });
  after(() => t.cleanup());

  it('a fused ingest | window | sink equals DuckDB’s aggregation', async () => {
    const out = join(t.dir, 'out');
    const r = await sh(
      `kappa run "ingest '${input}' --ts-field t --max-out-of-orderness 1s | window --key k --tumbling 1h --agg 'count, sum(v)' | sink '${out}' --format parquet"`,
    );
    assert.equal(r.code, 0, r.stderr);
    const got = await duck(
      `SELECT k, epoch_ms(window_start::TIMESTAMP) AS ws, count::BIGINT AS n, round(sum_v, 6) AS s FROM read_parquet('${out}/**/*.parquet') ORDER BY k, ws`,
    );
    const want = await duck(
      `SELECT k, (t // 3600000) * 3600000 AS ws, count(*)::BIGINT AS n, round(sum(v), 6) AS s FROM read_json('${input}') GROUP BY ALL ORDER BY k, ws`,
    );
    assert.ok(want.length > 50);
    assert.deepEqual(got, want);
  });

  it('gives the piped form’s output byte for byte, also from a file (-f)', async () => {
    const stages = `ingest '${input}' --ts-field t --max-out-of-orderness 1s | window --key k --tumbling 1h --agg 'count, sum(v)' | sink -`;
    const piped = await sh(stages.replace(/(^|\| )/g, '$1kappa '));
    assert.equal(piped.code, 0, piped.stderr);
    const fused = await sh(`kappa run "${stages}"`);
    assert.equal(fused.code, 0, fused.stderr);
    assert.ok(piped.stdout.split('\n').length > 50);
    assert.equal(fused.stdout, piped.stdout);
    // The three forms of issue 14: Arrow pipes (negotiated above), NDJSON pipes, fused.
    const ndjson = await sh(stages.replace(/(^|\| )/g, '$1kappa '), {
      env: { KAPPA_STREAM_FORMAT: 'ndjson' },
    });
    assert.equal(ndjson.code, 0, ndjson.stderr);
    assert.equal(ndjson.stdout, piped.stdout);
    const job = join(t.dir, 'job.kappa');
    writeFileSync(job, `# hourly counts\n${stages.replace(' | window', ' \\\n  | window')}\n`);
    const fromFile = await sh(`kappa run -f '${job}'`);
    assert.equal(fromFile.code, 0, fromFile.stderr);
    assert.equal(fromFile.stdout, piped.stdout);
  });

  it('ingest | window decodes only the columns it reads: same table as the piped form and DuckDB', async () => {
    // Extra columns, one of them nested (the projection leaves it undecoded): the fused run decodes
    // t, k, v only; the piped form (separate processes) decodes everything.
    const pq = join(t.dir, 'wide.parquet');
    await duck(
      `COPY (SELECT t, k, v, k || '-' || t AS wide, {'a': t} AS nested FROM read_json('${input}')) TO '${pq}' (FORMAT parquet, ROW_GROUP_SIZE 4000)`,
    );
    const stages = (sink: string) =>
      `ingest '${pq}' --ts-field t | window --key k --tumbling 1h --agg 'count, avg(v), max(v)' | sink ${sink}`;
    const fused = await sh(`kappa run "${stages('-')}"`);
    assert.equal(fused.code, 0, fused.stderr);
    const piped = await sh(stages('-').replace(/(^|\| )/g, '$1kappa '));
    assert.equal(piped.code, 0, piped.stderr);
    assert.ok(piped.stdout.split('\n').length > 50);
    assert.equal(fused.stdout, piped.stdout);
    const a = join(t.dir, 'proj-fused');
    const b = join(t.dir, 'proj-piped');
    const f2 = await sh(`kappa run "${stages(`'${a}' --partition-by 'dt=%Y-%m-%d'`)}"`);
    assert.equal(f2.code, 0, f2.stderr);
    const p2 = await sh(stages(`'${b}' --partition-by 'dt=%Y-%m-%d'`).replace(/(^|\| )/g, '$1kappa '));
    assert.equal(p2.code, 0, p2.stderr);
    const q = (dir: string) =>
      `SELECT k, epoch_ms(window_start::TIMESTAMP) AS ws, count::BIGINT AS n, avg_v, max_v, dt FROM read_parquet('${dir}/**/*.parquet', hive_partitioning = true) ORDER BY k, ws`;
    const got = await duck(q(a));
    assert.ok(got.length > 50);
    assert.deepEqual(got, await duck(q(b)));
    const want = await duck(
      `SELECT k, (t // 3600000) * 3600000 AS ws, count(*)::BIGINT AS n, max(v) AS max_v FROM read_parquet('${pq}') GROUP BY ALL ORDER BY k, ws`,
    );
    assert.deepEqual(
      got.map((r) => ({ k: r.k, ws: r.ws, n: r.n, max_v: r.max_v })),
      want,
    );
  });

  it('does not project when whole records leave the window (--late-output keeps every field)', async () => {
    // Rows in time order, then one late row: the late-output side file must hold all its columns.
    const pq = join(t.dir, 'late.parquet');
    await duck(
      `COPY (SELECT * FROM (SELECT t, k, v, 'w' || t AS wide FROM read_json('${input}') UNION ALL SELECT 1000 AS t, 'late' AS k, 1.5 AS v, 'keep-me' AS wide) ORDER BY t = 1000, t) TO '${pq}' (FORMAT parquet, ROW_GROUP_SIZE 2048)`,
    );
    const late = join(t.dir, 'late.kappa');
    const r = await sh(
      `kappa run "ingest '${pq}' --ts-field t --max-out-of-orderness 0s | window --key k --tumbling 1h --agg count --late-output '${late}' | sink -"`,
    );
    assert.equal(r.code, 0, r.stderr);
    const side = await sh(`grep -c keep-me '${late}'`);
    assert.equal(side.stdout.trim(), '1', `late output: ${side.stdout}`);
  });

  it('a failing stage fails the run with its exit code and commits nothing', async () => {
    const out = join(t.dir, 'bad');
    const r = await sh(
      `kappa run "ingest '${input}' --ts-field t | transform --filter 'r.nope.x > 0' | sink '${out}'"`,
    );
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /stage 2 \(transform\) failed/);
    const ls = await sh(`ls '${out}/_delta_log' 2>/dev/null | wc -l`);
    assert.equal(ls.stdout.trim(), '0');
  });

  it('-q quiets every stage (no summary lines) and still prints errors', async () => {
    const job = `ingest '${input}' --ts-field t | window --key k --tumbling 1h --agg count | sink -`;
    const loud = await sh(`kappa run "${job}" | wc -l`);
    assert.equal(loud.code, 0, loud.stderr);
    assert.match(loud.stderr, /kappa ingest: done/);
    assert.match(loud.stderr, /kappa window: done/);
    const quiet = await sh(`kappa run -q "${job}" | wc -l`);
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.equal(quiet.stderr, '');
    assert.equal(quiet.stdout, loud.stdout);
    assert.ok(Number(quiet.stdout.trim()) > 50);
    const bad = await sh(`kappa run -q "ingest '${join(t.dir, 'none.ndjson')}' --ts-field t | sink -"`);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /none\.ndjson/);
  });

  it('splits like a shell and refuses what only a shell can do', async () => {
    assert.deepEqual(splitPipeline(`kappa ingest 'a b.json' --ts-field "$T" | sink -`, { T: 'ts' }), [
      ['ingest', 'a b.json', '--ts-field', 'ts'],
      ['sink', '-'],
    ]);
    assert.throws(() => splitPipeline('ingest a | sink - > x'), /'>'/);
    assert.throws(() => splitPipeline('ingest *.json | sink -'), /glob/);
    const r = await sh(`kappa run 'window --key k --tumbling 1h | sink -'`);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /first stage must be a source/);
  });
});
