/**
 * Delta Kernel (the Delta project's reference reader, test/delta.ts) over the crash cases of
 * test/e2e/sink-commit.test.ts: `kappa sink` killed with SIGKILL at each step of the commit
 * protocol (KAPPA_TEST_CRASH_AT), then repaired by the next run into the table. After the repair,
 * Kernel must read exactly the rows DuckDB reads from the table directory (the committed rows:
 * glob reader = log, asserted by sink-commit.test.ts) and exactly the hand-computed row set. Before
 * the repair, where the protocol promises it (killed before the log entry was written), Kernel
 * must read the previous version exactly; killed after it (during the renames, step 4), Kernel
 * must fail on the file not yet renamed instead of returning partial rows (kappa-sink(1),
 * "Commits").
 */
import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { canonicalRows, DeltaKernelError, type KernelTable, readDeltaTables } from '../delta.js';
import { sh, tempDir } from '../helpers.js';

/** A kappa stream of `n` records `{i, g}` with ts = i seconds from `from`, `g` cycling over 3 groups. */
function stream(n: number, from = 0): string {
  const lines = ['{"kappa":1}'];
  for (let i = from; i < from + n; i++)
    lines.push(`{"ts":${i * 1000},"key":null,"value":{"i":${i},"g":"g${i % 3}"}}`);
  lines.push('{"end":true}');
  return `${lines.join('\n')}\n`;
}

/** `[from, from + n)` as bigints (Kernel and DuckDB both give Delta longs as bigint). */
const range = (from: number, n: number) => Array.from({ length: n }, (_, k) => BigInt(from + k));

/** The `i` column of rows, sorted. */
const ids = (rows: Record<string, unknown>[]) =>
  rows.map((r) => r.i as bigint).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

type Case = {
  name: string;
  /** The table after the repairing run. */
  out: string;
  /** A copy of the table taken right after the crash. */
  crashed?: string;
  /** Whether the killed commit's log entry was written (killed in step 4 of the protocol). */
  committed?: boolean;
  /** `i` values committed after the repair. */
  want: bigint[];
  /** `i` values of the previous version (what Kernel reads before the repair). */
  previous?: bigint[];
};

describe('kappa sink crash cases: Delta Kernel reads what DuckDB computes as committed', () => {
  const tmp = tempDir('kappa-commit-kernel-');
  let db: DuckDBConnection;
  const cases: Case[] = [];
  let got: (KernelTable | DeltaKernelError)[] = [];

  before(async () => {
    db = await (await DuckDBInstance.create(':memory:')).connect();
    // Appends killed at each step; the previous version holds i in [0, 2000).
    for (const [point, committed] of [
      ['before-commit', false],
      ['before-log', false],
      ['after-log', true],
      ['mid-rename', true],
    ] as const) {
      const out = join(tmp.dir, `crash-${point}`);
      let r = await sh(`kappa sink '${out}' --partition-by '{g}' -q`, { input: stream(2000) });
      assert.equal(r.code, 0, r.stderr);
      r = await sh(`kappa sink '${out}' --roll-records 50 -q || exit $?`, {
        input: stream(230, 2000),
        env: { KAPPA_TEST_CRASH_AT: point },
      });
      assert.equal(r.code, 137, `killed by SIGKILL: ${r.stderr}`);
      const crashed = `${out}-crashed`;
      cpSync(out, crashed, { recursive: true });
      r = await sh(`kappa sink '${out}' -q`, { input: stream(10, 3000) });
      assert.equal(r.code, 0, r.stderr);
      cases.push({
        name: `append killed at ${point}`,
        out,
        crashed,
        committed,
        want: [...range(0, 2000), ...(committed ? range(2000, 230) : []), ...range(3000, 10)],
        previous: committed ? undefined : range(0, 2000),
      });
    }
    // The first commit killed at each step; nothing was committed before.
    for (const point of ['before-commit', 'before-log', 'after-log']) {
      const out = join(tmp.dir, `crash-first-${point}`);
      let r = await sh(`kappa sink '${out}' --partition-by '{g}' --roll-records 100 -q || exit $?`, {
        input: stream(500),
        env: { KAPPA_TEST_CRASH_AT: point },
      });
      assert.equal(r.code, 137, r.stderr);
      r = await sh(`kappa sink '${out}' --partition-by '{g}' -q`, { input: stream(7, 1000) });
      assert.equal(r.code, 0, r.stderr);
      cases.push({
        name: `first commit killed at ${point}`,
        out,
        want: [...(point === 'after-log' ? range(0, 500) : []), ...range(1000, 7)],
      });
    }
    // One JVM for every table (start-up costs seconds): repaired tables, then the crashed copies.
    got = await readDeltaTables([
      ...cases.map((c) => c.out),
      ...cases.flatMap((c) => (c.crashed ? [c.crashed] : [])),
    ]);
  });
  after(() => tmp.cleanup());

  /** Kernel's snapshot of `i`-th table read, failing the test when Kernel refused it. */
  const kernel = (i: number): KernelTable => {
    const k = got[i];
    if (k instanceof DeltaKernelError) assert.fail(k.message);
    return k;
  };

  /** Rows DuckDB reads from the table directory by glob, hive partitioning on. */
  async function duck(dir: string): Promise<Record<string, unknown>[]> {
    const r = await db.runAndReadAll(
      `SELECT i, g FROM read_parquet('${dir}/**/*.parquet', hive_partitioning=true, union_by_name=true)`,
    );
    return r.getRowObjects() as Record<string, unknown>[];
  }

  it('after the repairing run: Kernel reads exactly the committed rows, as DuckDB does', async () => {
    for (const [n, c] of cases.entries()) {
      const k = kernel(n);
      assert.deepEqual(k.partitionColumns, ['g'], c.name);
      const d = await duck(c.out);
      assert.deepEqual(ids(d), c.want, `${c.name}: DuckDB reads the committed rows`);
      assert.deepEqual(
        canonicalRows(k.rows.map((r) => ({ i: r.i, g: r.g }))),
        canonicalRows(d),
        `${c.name}: Kernel reads what DuckDB reads`,
      );
    }
  });

  it('killed before the log entry: before the repair Kernel reads the previous version exactly', async () => {
    let n = cases.length;
    let checked = 0;
    for (const c of cases) {
      if (!c.crashed) continue;
      const k = got[n++];
      if (c.committed) continue;
      if (k instanceof DeltaKernelError) assert.fail(k.message);
      checked++;
      assert.equal(k.version, 0, `${c.name}: the snapshot is still version 0`);
      assert.deepEqual(ids(k.rows), c.previous, `${c.name}: Kernel reads exactly version 0`);
      assert.deepEqual(
        canonicalRows(k.rows.map((r) => ({ i: r.i, g: r.g }))),
        canonicalRows(await duck(c.crashed)),
        `${c.name}: Kernel reads what DuckDB reads right after the crash`,
      );
      assert.ok(
        k.rows.every((r) => r.g === `g${Number(r.i) % 3}`),
        `${c.name}: partition values match the rows`,
      );
    }
    assert.equal(checked, 2, 'before-commit and before-log');
  });

  it('killed after the log entry: before the repair Kernel fails on a file not yet renamed, never partial rows', () => {
    let n = cases.length;
    let checked = 0;
    for (const c of cases) {
      if (!c.crashed) continue;
      const k = got[n++];
      if (!c.committed) continue;
      checked++;
      assert.ok(
        k instanceof DeltaKernelError,
        `${c.name}: Kernel must not return rows (got ${JSON.stringify(k instanceof DeltaKernelError ? k.message : k.rows.length)})`,
      );
      assert.match(k.javaError, /part-\d{5}-[0-9a-f]+\.zstd\.parquet does not exist/, c.name);
    }
    assert.equal(checked, 2, 'after-log and mid-rename');
  });
});
