/**
 * `kappa compact` acceptance (issue 13) through the real binary. Oracles: DuckDB over the source
 * Parquet file and over the table's files (glob with hive partitioning), and Delta Kernel for Java
 * (test/delta.ts) reading the table through its log; never kappa's own reader.
 *
 * Data: every 20th row of the 3M flights (150,000 rows over 182 days), written with
 * `--partition-by 'dt=%Y-%m-%d' --roll-records 100`: about 1,600 files in 182 partitions. The
 * issue's 3M rows with --roll-records 2000 would take minutes on this machine (2 shared cores);
 * the file and partition counts are the same order.
 */
import assert from 'node:assert/strict';
import { cpSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { readDeltaTables } from '../delta.js';
import { FLIGHTS, sh, tempDir, walkFiles as walk } from '../helpers.js';

let db: DuckDBConnection;
const tmp = tempDir('kappa-compact-');
const T = tmp.dir;
const SRC = join(T, 'src.parquet');
const SRC2 = join(T, 'src2.parquet');
const BASE = join(T, 'base');
const COLS = 'date, delay, distance, origin, destination';

/** Visible data files (what a glob reader sees). */
function dataFiles(dir: string): string[] {
  return walk(dir).filter((f) => f.endsWith('.parquet') && !f.split('/').some((s) => /^[._]/.test(s)));
}

async function scalar(sql: string): Promise<number> {
  const r = await db.runAndReadAll(sql);
  return Number(r.getRows()[0][0]);
}

/** Rows of `a` not in `b` plus rows of `b` not in `a`, as multisets (0: the same rows). */
async function diff(a: string, b: string): Promise<number> {
  const x = `(SELECT * FROM (${a}))`;
  const y = `(SELECT * FROM (${b}))`;
  return scalar(`SELECT count(*) FROM ((${x} EXCEPT ALL ${y}) UNION ALL (${y} EXCEPT ALL ${x}))`);
}

const glob = (dir: string): string =>
  `SELECT ${COLS} FROM read_parquet('${dir}/*=*/**/*.parquet', hive_partitioning=true)`;

function copyTable(name: string): string {
  const d = join(T, name);
  cpSync(BASE, d, { recursive: true });
  return d;
}

before(async () => {
  db = await (await DuckDBInstance.create(':memory:')).connect();
  const every = (k: number) =>
    `SELECT ${COLS} FROM (SELECT *, row_number() OVER () AS rn FROM '${FLIGHTS}') WHERE rn % 20 = ${k}`;
  await db.run(`COPY (${every(0)}) TO '${SRC}'`);
  await db.run(`COPY (${every(1)}) TO '${SRC2}'`);
  const r = await sh(
    `kappa ingest '${SRC}' --ts-field date -q | kappa sink '${BASE}' --partition-by 'dt=%Y-%m-%d' --roll-records 100 -q`,
  );
  assert.equal(r.code, 0, r.stderr);
});
after(() => tmp.cleanup());

describe('kappa compact', () => {
  it('acceptance 1: every partition ends with one file; DuckDB and kappa ingest give the same rows', async () => {
    const t = copyTable('t1');
    const before = dataFiles(t).length;
    assert.ok(before > 1500, `${before} files before`);
    const dry = await sh(`kappa compact '${t}' --dry-run --where 'dt < "2001-01-03"'`);
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(dry.stdout.trim().split('\n').length, 2, dry.stdout);
    assert.equal(dataFiles(t).length, before, 'a dry run changes nothing');
    const r = await sh(`kappa compact '${t}'`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /compacted 1\d\d partition\(s\): \d+ files .* -> \d+ files .*, (\d+) rows -> \1 rows; deleted \d+ removed/,
    );
    const files = dataFiles(t);
    const parts = new Map<string, number>();
    for (const f of files) parts.set(f.split('/')[0], (parts.get(f.split('/')[0]) ?? 0) + 1);
    assert.equal(parts.size, 182);
    for (const [p, n] of parts) assert.equal(n, 1, `${p} holds ${n} files`);
    assert.equal(await diff(`SELECT ${COLS} FROM '${SRC}'`, glob(t)), 0);
    assert.equal(await scalar(`SELECT count(*) FROM (${glob(t)})`), 150_000);
    // Rows are ordered by event time within each file.
    const f0 = join(t, files[10]);
    assert.equal(
      await scalar(
        `SELECT count(*) FROM (SELECT date < lag(date) OVER (ORDER BY file_row_number) AS bad FROM read_parquet('${f0}', file_row_number=true)) WHERE bad`,
      ),
      0,
    );
    // kappa ingest of the table (through its log) gives the same rows.
    const out = join(T, 'ingested.parquet');
    const ing = await sh(`kappa ingest '${t}' --ts-field date -q | kappa sink '${out}' -q`);
    assert.equal(ing.code, 0, ing.stderr);
    assert.equal(await diff(`SELECT ${COLS} FROM '${SRC}'`, `SELECT ${COLS} FROM '${out}'`), 0);
    // A second run finds nothing to do.
    const again = await sh(`kappa compact '${t}'`);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /compacted 0 partition/);
  });

  it('only sealed partitions by default; --include-open and --min-files', async () => {
    const t = copyTable('t-open');
    rmSync(join(t, 'dt=2001-01-01', '_SUCCESS'));
    const n0 = readdirSync(join(t, 'dt=2001-01-01')).length;
    const r = await sh(`kappa compact '${t}' --where 'dt <= "2001-01-02"'`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /1 open partition/);
    assert.equal(readdirSync(join(t, 'dt=2001-01-01')).length, n0);
    assert.equal(dataFiles(join(t, 'dt=2001-01-02')).length, 1);
    const m = await sh(`kappa compact '${t}' --where 'r.dt == "2001-01-01"' --include-open --min-files 100`);
    assert.equal(m.code, 0, m.stderr);
    assert.ok(dataFiles(join(t, 'dt=2001-01-01')).length > 1, '--min-files skips the partition');
    const o = await sh(`kappa compact '${t}' --where 'dt == "2001-01-01"' --include-open`);
    assert.equal(o.code, 0, o.stderr);
    assert.equal(dataFiles(join(t, 'dt=2001-01-01')).length, 1);
    assert.equal(await diff(`SELECT ${COLS} FROM '${SRC}'`, glob(t)), 0);
  });

  it('acceptance 2: a sink appending meanwhile loses nothing and fails nothing', async () => {
    const t = copyTable('t2');
    const r = await sh(
      `kappa compact '${t}' --commit-every 3 2>"${T}/c2.err" & c=$!; kappa ingest '${SRC2}' --ts-field date -q | kappa sink '${t}' --roll-records 500 -q; s=$?; wait $c; e=$?; cat "${T}/c2.err" >&2; exit $((s * 10 + e))`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      await diff(`SELECT ${COLS} FROM '${SRC}' UNION ALL SELECT ${COLS} FROM '${SRC2}'`, glob(t)),
      0,
    );
    const [k] = await readDeltaTables([t]);
    assert.ok(!(k instanceof Error), String(k));
    assert.equal(k.rows.length, 300_000);
  });

  it('acceptance 3: with --retain 1h a reader pinned to the version before compaction reads it completely; --vacuum deletes later', async () => {
    const t = copyTable('t3');
    const r = await sh(`kappa compact '${t}' --retain 1h --commit-every 100`);
    assert.equal(r.code, 0, r.stderr);
    const [old, now] = await readDeltaTables([{ dir: t, version: 0 }, t]);
    assert.ok(!(old instanceof Error), String(old));
    assert.ok(!(now instanceof Error), String(now));
    assert.equal(old.version, 0);
    assert.equal(old.rows.length, 150_000);
    assert.ok(old.totalFiles > 1500);
    assert.equal(now.rows.length, 150_000);
    assert.equal(now.totalFiles, 182);
    const sum = (rows: Record<string, unknown>[]) =>
      rows.reduce((n: bigint, x) => n + BigInt(x.delay as bigint), 0n);
    const want = BigInt(await scalar(`SELECT sum(delay) FROM '${SRC}'`));
    assert.equal(sum(old.rows), want);
    assert.equal(sum(now.rows), want);
    // Within retention nothing is deleted; past it (--retain 0) vacuum deletes the removed files.
    const v1 = await sh(`kappa compact '${t}' --vacuum --retain 1h`);
    assert.equal(v1.code, 0, v1.stderr);
    assert.ok(dataFiles(t).length > 1500);
    const v0 = await sh(`kappa compact '${t}' --vacuum`);
    assert.equal(v0.code, 0, v0.stderr);
    assert.match(v0.stderr, /vacuum: deleted \d{4} removed file/);
    assert.equal(dataFiles(t).length, 182);
    assert.equal(await diff(`SELECT ${COLS} FROM '${SRC}'`, glob(t)), 0);
  });

  it('acceptance 4: --keep-latest-by equals DuckDB QUALIFY row_number() = 1 per partition', async () => {
    const src = join(T, 'kv.parquet');
    const t = join(T, 'kv');
    await db.run(
      `COPY (SELECT (i % 50)::BIGINT AS id, TIMESTAMP '2024-01-01' + to_days((i % 3)::INTEGER) + to_seconds(((i * 7919) % 86400)::BIGINT) AS ts, i::BIGINT AS seq, (i * 2)::BIGINT AS v FROM range(3000) t(i)) TO '${src}'`,
    );
    const w = await sh(
      `kappa ingest '${src}' --ts-field ts -q | kappa sink '${t}' --partition-by 'dt=%Y-%m-%d' --roll-records 50 -q`,
    );
    assert.equal(w.code, 0, w.stderr);
    const r = await sh(`kappa compact '${t}' --keep-latest-by id --order-by seq`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /3000 rows -> 150 rows/);
    const want = `SELECT id, ts, seq, v FROM '${src}' QUALIFY row_number() OVER (PARTITION BY strftime(ts, '%Y-%m-%d'), id ORDER BY ts DESC, seq DESC) = 1`;
    const got = `SELECT id, ts, seq, v FROM read_parquet('${t}/*=*/**/*.parquet', hive_partitioning=true)`;
    assert.equal(await scalar(`SELECT count(*) FROM (${want})`), 150);
    assert.equal(await diff(want, got), 0);
    const log = readdirSync(join(t, '_delta_log'))
      .filter((f) => f.endsWith('.json'))
      .sort();
    const actions = readFileSync(join(t, '_delta_log', log[log.length - 1]), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, Record<string, unknown>>);
    assert.ok(actions.filter((a) => a.add).every((a) => a.add.dataChange === true));
    assert.ok(actions.filter((a) => a.remove).every((a) => a.remove.dataChange === true));
    const info = actions.find((a) => a.commitInfo)?.commitInfo;
    assert.match(
      String(info?.['kappa.operation']),
      /keep-latest-by id.*ties by seq.*dropped 2850 older rows/,
    );
  });
});
