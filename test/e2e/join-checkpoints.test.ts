/**
 * Checkpoints through a two-input join (issues 9 and 12; src/checkpoint/follow.ts): the source of
 * the join's left input coordinates, the source of `--right` follows; barrier N is aligned across
 * both inputs, the join's state is snapshotted there and the table sink commits once per aligned
 * epoch. DuckDB's join of the generated inputs is the oracle:
 *
 * - kill test: `ingest rides | join --right <(ingest fares) --within 2h --type full | sink TABLE`,
 *   a random stage (either source, the join or the sink) SIGKILLed after a checkpoint and the whole
 *   pipeline resumed, up to 5 times in at most 60 s, then run to the end: every pair and every
 *   outer row exactly once;
 * - stop with savepoint: SIGTERM to the pipeline's process group (both sources get it), then a run
 *   with `--from-savepoint` gives the table of an uninterrupted run;
 * - a source of `--right` started without the checkpoint dir is a usage error (exit 2).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { mulberry32 } from '../../bench/gen.js';
import { ROOT, sh, tempDir } from '../helpers.js';
import { killAndResume } from '../kill.js';
import { HOUR, writeRidesAndFares } from './join-data.js';

const q = (s: string) => `'${s.replaceAll("'", "''")}'`;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const CLEAN = { KAPPA_CHECKPOINT_DIR: '', KAPPA_RESUME: '', KAPPA_FROM_SAVEPOINT: '' };

/** The data files of the table's current snapshot: the Delta log's JSON versions replayed. */
function liveFiles(table: string): string[] {
  const log = join(table, '_delta_log');
  const live = new Set<string>();
  for (const v of readdirSync(log)
    .filter((f) => /^\d{20}\.json$/.test(f))
    .sort())
    for (const line of readFileSync(join(log, v), 'utf8').split('\n')) {
      if (!line) continue;
      const a = JSON.parse(line) as { add?: { path: string }; remove?: { path: string } };
      if (a.add) live.add(decodeURIComponent(a.add.path));
      if (a.remove) live.delete(decodeURIComponent(a.remove.path));
    }
  return [...live].sort().map((p) => join(table, p));
}

/** `ride_id|fare_id` of every row of the table's live files (null for a padded side), sorted. */
async function tablePairs(table: string): Promise<string[]> {
  const files = liveFiles(table);
  assert.ok(files.length > 0, `${table} has data files`);
  const db = await DuckDBInstance.create();
  const c = await db.connect();
  const r = await c.runAndReadAll(
    `SELECT ride_id, fare_id FROM read_parquet([${files.map(q).join(', ')}], union_by_name = true)`,
  );
  const rows = r.getRowsJson() as unknown[][];
  c.closeSync();
  return rows.map((x) => x.map(String).join('|')).sort();
}

/** DuckDB's FULL OUTER interval join of the inputs: `ride_id|fare_id`, sorted. */
async function wantPairs(dir: string): Promise<string[]> {
  const db = await DuckDBInstance.create();
  const c = await db.connect();
  const r = await c.runAndReadAll(
    `SELECT r.ride_id, f.fare_id FROM '${dir}/rides.ndjson' r FULL OUTER JOIN '${dir}/fares.ndjson' f
     ON r.ride_id = f.ride_id AND f.ts BETWEEN r.ts AND r.ts + ${2 * HOUR}`,
  );
  const rows = r.getRowsJson() as unknown[][];
  c.closeSync();
  return rows.map((x) => x.map(String).join('|')).sort();
}

/** The ids of the complete checkpoints in `dir`. */
function completeCheckpoints(dir: string): number[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => /^chk-\d+$/.test(n) && existsSync(join(dir, n, '_metadata.json')))
    .map((n) => Number(n.slice(4)));
}

describe('checkpoints through a two-input join (DuckDB as the oracle)', () => {
  const t = tempDir('kappa-join-ck-');
  const d = t.dir;
  let want: string[] = [];
  before(async () => {
    // 100k rides (~5 MB): the buffers between the stages hold well below it, so a stop or a kill
    // after the first complete checkpoint still finds the sources reading.
    writeRidesAndFares(d, mulberry32(11), 100_000);
    want = await wantPairs(d);
    assert.ok(want.some((w) => w.endsWith('|null')) && want.some((w) => w.startsWith('null|')));
  });
  after(() => t.cleanup());

  const src = (file: string, extra: string[] = []) => [
    'ingest',
    join(d, file),
    '--ts-field',
    'ts',
    '--ts-format',
    'epoch-ms',
    '--max-out-of-orderness',
    '5m',
    '-q',
    ...extra,
  ];
  const joinArgs = ['--on', 'ride_id', '--within', '2h', '--type', 'full', '-q'];

  it('SIGKILL of random stages (both sources, join, sink) and --resume: every pair and outer row exactly once', {
    timeout: 120_000,
  }, async (tc) => {
    const ck = join(d, 'ck-kill');
    const table = join(d, 'kill-table');
    const fifo = join(d, 'fares.fifo');
    execFileSync('mkfifo', [fifo]);
    // Seed 1 picks the coordinator, the follower, the join and the sink in its first four kills.
    const seed = Number(process.env.KAPPA_KILL_SEED ?? 1);
    const outcome = await killAndResume({
      stages: [
        src('rides.ndjson', ['--checkpoint-interval', '300ms']),
        ['join', '--right', fifo, ...joinArgs],
        ['sink', table, '-q'],
      ],
      sideStages: [{ fifo, args: src('fares.ndjson') }],
      env: { KAPPA_CHECKPOINT_DIR: ck },
      kills: 5,
      seed,
      afterCheckpoint: ck,
      minKillMs: 0,
      maxKillMs: 600,
      exitTimeoutMs: 20_000,
      runTimeoutMs: 40_000,
      deadlineMs: 45_000, // + the final run: about a minute in all
      onRun: (r) =>
        tc.diagnostic(
          `run ${r.run}: ${r.ms} ms, ${r.resumedFrom === undefined ? 'fresh' : `resumed from checkpoint ${r.resumedFrom}`}, ${r.killed === undefined ? 'not killed' : `killed stage ${r.killed} at ${r.killAtMs} ms`}; exits ${r.exits.map((x) => x.code ?? x.signal).join(' ')}`,
        ),
    });
    assert.ok(outcome.kills >= 1, `seed ${seed}: no kill hit a live stage`);
    assert.ok(
      outcome.runs.some((r) => r.resumedFrom !== undefined),
      `seed ${seed}: no run resumed from a checkpoint`,
    );
    // The follower's positions are in the checkpoints beside the coordinator's.
    const last = Math.max(...completeCheckpoints(ck));
    const meta = JSON.parse(
      readFileSync(join(ck, `chk-${String(last).padStart(10, '0')}`, '_metadata.json'), 'utf8'),
    ) as { sources: { uid: string }[]; operators: { uid: string }[] };
    assert.deepEqual(
      meta.sources.map((s) => s.uid),
      ['ingest-0', 'ingest-right'],
    );
    const got = await tablePairs(table);
    assert.equal(
      new Set(got.filter((g) => !g.includes('null'))).size,
      got.filter((g) => !g.includes('null')).length,
    );
    assert.deepEqual(got, want, `seed ${seed}: the table equals DuckDB's FULL OUTER join`);
  });

  /**
   * Runs the checkpointing pipeline (bash in its own process group, `trap` deferring bash's own
   * SIGTERM so it reports every stage's exit) into `table`; with `signal`, sends SIGTERM to the
   * whole process group once checkpoint 1 is complete. Resolves with stdout and stderr.
   */
  async function runPipeline(
    ck: string,
    table: string,
    coordinator: string,
    signal: boolean,
  ): Promise<{ stdout: string; stderr: string }> {
    const ing = (f: string, extra = '') => `kappa ${src(f).join(' ')} ${extra}`;
    const pipeline = `${ing('rides.ndjson', coordinator)} | kappa join --right <(${ing('fares.ndjson')}) ${joinArgs.join(' ')} | kappa sink ${table} -q`;
    const child = spawn('bash', ['-c', `trap 'true' TERM; ${pipeline}; echo "exits \${PIPESTATUS[*]}"`], {
      cwd: ROOT,
      detached: true,
      env: {
        ...process.env,
        ...CLEAN,
        KAPPA_CHECKPOINT_DIR: ck,
        PATH: `${join(ROOT, 'bin')}:${process.env.PATH}`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      stdout += b;
    });
    child.stderr.on('data', (b: Buffer) => {
      stderr += b;
    });
    const closed = new Promise<void>((res) => child.on('close', () => res()));
    if (signal) {
      const t0 = Date.now();
      // Checkpoint 1 complete: the sink (which completes it) has deferred its first signal too.
      const part = join(ck, 'chk-0000000001', '_metadata.json');
      while (!existsSync(part) && Date.now() - t0 < 30_000) await sleep(5);
      assert.ok(existsSync(part), `no checkpoint within 30 s:\n${stderr}`);
      process.kill(-(child.pid as number), 'SIGTERM');
    }
    const late = await Promise.race([closed.then(() => false), sleep(60_000).then(() => true)]);
    if (late) process.kill(-(child.pid as number), 'SIGKILL');
    assert.ok(!late, `the pipeline did not stop within 60 s:\n${stderr}`);
    return { stdout, stderr };
  }

  for (const how of ['SIGTERM to the process group', '--stop-at on the left source'] as const)
    it(`stop with savepoint (${how}) ends both sources with one savepoint; --from-savepoint then equals an uninterrupted run`, {
      timeout: 120_000,
    }, async () => {
      const tag = how.startsWith('SIGTERM') ? 'sig' : 'at';
      const ck = join(d, `ck-${tag}`);
      const table = join(d, `${tag}-table`);
      const { stdout, stderr } = await runPipeline(
        ck,
        table,
        tag === 'sig'
          ? '--checkpoint-interval 200ms'
          : '--checkpoint-interval 200ms --stop-at 2024-01-05T00:00:00Z',
        tag === 'sig',
      );
      assert.match(stdout, /exits 0 0 0/, stderr);
      const m = /kappa ingest: savepoint (\S+)\n/.exec(stderr);
      assert.ok(m, `the coordinator printed its savepoint:\n${stderr}`);
      const savepoint = m[1];
      // The follower ended its input with the same savepoint barrier and stop line (at --stop-at,
      // a fifth into the data, it is surely still reading; after a signal it may have reached its
      // end first, and then its end positions are in the savepoint).
      if (tag === 'at')
        assert.ok(stderr.includes(`kappa ingest: savepoint ${savepoint} (following)`), stderr);
      assert.ok(existsSync(join(savepoint, '_metadata.json')), 'the savepoint is complete');
      const meta = JSON.parse(readFileSync(join(savepoint, '_metadata.json'), 'utf8')) as {
        sources: { uid: string }[];
        operators: { uid: string }[];
      };
      assert.deepEqual(
        meta.sources.map((s) => s.uid),
        ['ingest-0', 'ingest-right'],
      );
      assert.deepEqual(
        meta.operators.map((o) => o.uid),
        ['join-1'],
      );
      const partial = existsSync(table) ? await tablePairs(table).catch(() => []) : [];
      assert.ok(partial.length < want.length, 'the first run stopped before the end');

      const resumed = await sh(
        `kappa ${src('rides.ndjson').join(' ')} | kappa join --right <(kappa ${src('fares.ndjson').join(' ')}) ${joinArgs.join(' ')} | kappa sink ${table} -q`,
        { env: { ...CLEAN, KAPPA_CHECKPOINT_DIR: ck, KAPPA_FROM_SAVEPOINT: savepoint } },
      );
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.deepEqual(
        await tablePairs(table),
        await uninterrupted(),
        'savepoint + resume = an uninterrupted run',
      );
    });

  let plain: string[] | undefined;
  /** The table of an uninterrupted run without checkpoints (checked against DuckDB once). */
  async function uninterrupted(): Promise<string[]> {
    if (plain) return plain;
    const table = join(d, 'plain-table');
    const r = await sh(
      `kappa ${src('rides.ndjson').join(' ')} | kappa join --right <(kappa ${src('fares.ndjson').join(' ')}) ${joinArgs.join(' ')} | kappa sink ${table} -q`,
      { env: CLEAN },
    );
    assert.equal(r.code, 0, r.stderr);
    plain = await tablePairs(table);
    assert.deepEqual(plain, want, "the uninterrupted run equals DuckDB's join");
    return plain;
  }

  it('the right source without the checkpoint dir while the left checkpoints: exit 2 naming both', async () => {
    const ck = join(d, 'ck-usage');
    const r = await sh(
      `kappa ${src('rides.ndjson').join(' ')} --checkpoint-dir ${ck} | kappa join --right <(kappa ${src('fares.ndjson').join(' ')}) ${joinArgs.join(' ')} --checkpoint-dir ${ck} > /dev/null; echo "join exit \${PIPESTATUS[1]}"`,
      { env: CLEAN },
    );
    assert.match(r.stdout, /join exit 2/, r.stderr);
    assert.match(r.stderr, /does not follow its checkpoints/);
  });
});
