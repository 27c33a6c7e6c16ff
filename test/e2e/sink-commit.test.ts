/**
 * `kappa sink` table commits through the real binary: crash safety (SIGKILL at each step of the
 * commit protocol, repaired by the next run), append compatibility, partition fields, runs with
 * only bad records, disk full, and a CLI-level test for each table-sink flag. DuckDB reading the
 * table by glob (hive partitioning) is the independent oracle; kappa's own Delta log reader gives
 * what the log says.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import '../../src/storage/local.js';
import { storeFor } from '../../src/storage/store.js';
import { readDeltaLog } from '../../src/table/delta.js';
import { sh, tempDir, walkFiles as walk } from '../helpers.js';

let db: DuckDBConnection;
const tmp = tempDir('kappa-commit-');
const T = tmp.dir;

before(async () => {
  db = await (await DuckDBInstance.create(':memory:')).connect();
});
after(() => tmp.cleanup());

/** Rows a glob reader sees: DuckDB over `T/**\/*.parquet` with hive partitioning (0 without files). */
async function globRows(out: string): Promise<number> {
  if (!walk(out).some((f) => f.endsWith('.parquet') && !f.split('/').some((s) => /^[._]/.test(s)))) return 0;
  const r = await db.runAndReadAll(
    `SELECT count(*) FROM read_parquet('${out}/**/*.parquet', hive_partitioning=true, union_by_name=true)`,
  );
  return Number(r.getRows()[0][0]);
}

/** Rows the Delta log says the table holds (sum of add.stats.numRecords of live files), -1 without a log. */
async function logRows(out: string): Promise<number> {
  const snap = await readDeltaLog(storeFor(out), out);
  if (!snap?.metaData) return -1;
  let n = 0;
  for (const a of snap.files.values()) n += JSON.parse(a.stats ?? '{}').numRecords;
  return n;
}

/** Paths of the live files in the log that do not exist on disk. */
async function missingLogFiles(out: string): Promise<string[]> {
  const snap = await readDeltaLog(storeFor(out), out);
  return [...(snap?.files.keys() ?? [])].filter((p) => !existsSync(join(out, decodeURIComponent(p))));
}

/** A kappa stream of `n` records `{i, g}` with ts = i seconds from `from`, `g` cycling over 3 groups. */
function stream(n: number, from = 0, extra = ''): string {
  const lines = ['{"kappa":1}'];
  for (let i = from; i < from + n; i++)
    lines.push(`{"ts":${i * 1000},"key":null,"value":{"i":${i},"g":"g${i % 3}"${extra}}}`);
  lines.push('{"end":true}');
  return `${lines.join('\n')}\n`;
}

const leftovers = (out: string) =>
  walk(out).filter((f) => /\.inprogress-|^_kappa\/(pending|runs)\//.test(f) || /\/\.[^/]*$/.test(`/${f}`));

describe('kappa sink: crash safety (SIGKILL during a commit)', () => {
  for (const [point, committed] of [
    ['before-commit', false],
    ['before-log', false],
    ['after-log', true],
    ['mid-rename', true],
  ] as const) {
    it(`killed at ${point}: no reader sees uncommitted rows; the next run ${committed ? 'rolls it forward' : 'discards it'}`, async () => {
      const out = join(T, `crash-${point}`);
      let r = await sh(`kappa sink '${out}' --partition-by '{g}' -q`, { input: stream(2000) });
      assert.equal(r.code, 0, r.stderr);
      r = await sh(`kappa sink '${out}' --roll-records 50 -q || exit $?`, {
        input: stream(230, 2000),
        env: { KAPPA_TEST_CRASH_AT: point },
      });
      assert.equal(r.code, 137, `killed by SIGKILL: ${r.stderr}`);
      // What readers see right after the crash: the glob reader never sees rows the log lacks.
      const glob = await globRows(out);
      const log = await logRows(out);
      assert.equal(log, committed ? 2230 : 2000, 'the Delta log');
      assert.ok(glob <= log, `glob reader sees ${glob} rows, the log ${log}`);
      if (!committed) assert.equal(glob, 2000, 'the glob reader sees exactly the committed rows');
      // The next run repairs the table, then appends.
      r = await sh(`kappa sink '${out}'`, { input: stream(10, 3000) });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, committed ? /rolled forward 1 commit/ : /(discarded 1|removed \d+ in-progress)/);
      assert.equal(await logRows(out), committed ? 2240 : 2010);
      assert.equal(await globRows(out), committed ? 2240 : 2010, 'glob reader = log after repair');
      assert.deepEqual(await missingLogFiles(out), []);
      assert.deepEqual(leftovers(out), [], 'no in-progress file, pending record or run marker remains');
    });
  }

  for (const point of ['before-commit', 'before-log', 'after-log']) {
    it(`killed at ${point} of the first commit: the next run repairs the directory instead of refusing it`, async () => {
      const out = join(T, `crash-first-${point}`);
      let r = await sh(`kappa sink '${out}' --partition-by '{g}' --roll-records 100 -q || exit $?`, {
        input: stream(500),
        env: { KAPPA_TEST_CRASH_AT: point },
      });
      assert.equal(r.code, 137, r.stderr);
      assert.equal(await globRows(out), 0, 'nothing visible to a glob reader');
      r = await sh(`kappa sink '${out}' --partition-by '{g}' -q`, { input: stream(7, 1000) });
      assert.equal(r.code, 0, r.stderr);
      const want = point === 'after-log' ? 507 : 7;
      assert.equal(await logRows(out), want);
      assert.equal(await globRows(out), want);
      assert.deepEqual(leftovers(out), []);
    });
  }

  it('a live run is never repaired away: two sinks into one table at once both commit', async () => {
    const out = join(T, 'live');
    let r = await sh(`kappa sink '${out}' -q`, { input: stream(5) });
    assert.equal(r.code, 0, r.stderr);
    const slow = (from: number) =>
      `( echo '{"kappa":1}'; for i in $(seq ${from} ${from + 99}); do echo "{\\"ts\\":$i,\\"key\\":null,\\"value\\":{\\"i\\":$i,\\"g\\":\\"x\\"}}"; done; sleep 1; echo '{"end":true}' ) | kappa sink '${out}' --roll-records 10 -q`;
    r = await sh(`${slow(100)} & ${slow(300)} & wait`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await logRows(out), 205);
    assert.equal(await globRows(out), 205);
  });
});

describe('kappa sink: runs on other hosts (marker lease)', () => {
  it("a foreign run's leftovers are removed once its lease expired, left alone (with a warning) while fresh", async () => {
    const out = join(T, 'foreign');
    let r = await sh(`kappa sink '${out}' -q`, { input: stream(3) });
    assert.equal(r.code, 0, r.stderr);
    const now = Date.now();
    const plant = (id: string, updated: number) => {
      mkdirSync(join(out, '_kappa', 'runs'), { recursive: true });
      writeFileSync(
        join(out, '_kappa', 'runs', `${id}.json`),
        JSON.stringify({ runId: id, host: 'other-host', pid: 1, started: updated, updated }),
      );
      writeFileSync(join(out, `.part-00000-${id}.zstd.parquet.inprogress-0a`), 'partial');
    };
    const stale = 'cd'.repeat(8);
    const fresh = 'ef'.repeat(8);
    plant(stale, now - 2 * 3_600_000);
    plant(fresh, now);
    r = await sh(`kappa sink '${out}'`, { input: stream(2, 10) });
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`warning: .*runs on other hosts have files in progress \\(${fresh} on other-host\\)`),
    );
    assert.match(r.stderr, /removed 1 in-progress file/);
    assert.deepEqual(leftovers(out), [
      `.part-00000-${fresh}.zstd.parquet.inprogress-0a`,
      `_kappa/runs/${fresh}.json`,
    ]);
    r = await sh(`kappa sink '${out}' -q`, { input: stream(1, 20), env: { KAPPA_RUN_LEASE: '1ms' } });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(leftovers(out), [], 'with a 1 ms lease the foreign run counts as dead');
    assert.equal(await globRows(out), 6);
  });

  it('a run whose marker another writer removed (declared dead) fails instead of committing', async () => {
    const out = join(T, 'fenced');
    const r = await sh(
      `( echo '{"kappa":1}'; echo '{"ts":0,"key":null,"value":{"a":1}}'; until ls '${out}'/_kappa/runs/*.json >/dev/null 2>&1; do sleep 0.1; done; rm '${out}'/_kappa/runs/*.json; echo '{"end":true}' ) | kappa sink '${out}'`,
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /another writer declared this run \([0-9a-f]{16}\) dead/);
    assert.equal(await logRows(out), -1);
    assert.deepEqual(leftovers(out), []);
  });
});

describe('kappa sink: concurrent writers (Delta conflict checks)', () => {
  it('two first writers with different partition columns: one commits, the other fails and commits nothing', async () => {
    const out = join(T, 'race');
    // Both sinks open the (empty) table before either commits: each input waits for both run markers
    // (or, should it look only after the other run already committed and removed its marker, for
    // that commit: both markers existed then, so both runs had opened the empty table).
    const run = (spec: string) =>
      `( echo '{"kappa":1}'; echo '{"ts":0,"key":null,"value":{"a":"x","b":"y"}}'; until [ "$(ls '${out}'/_kappa/runs 2>/dev/null | wc -l)" -ge 2 ] || [ -e '${out}/_delta_log/00000000000000000000.json' ]; do sleep 0.1; done; echo '{"end":true}' ) | kappa sink '${out}' --partition-by '${spec}' -q; echo "rc=$?" >&2`;
    const r = await sh(`(${run('{a}')}) & (${run('{b}')}) & wait`);
    const codes = [...r.stderr.matchAll(/rc=(\d+)/g)].map((m) => Number(m[1])).sort();
    assert.deepEqual(codes, [0, 1], r.stderr);
    assert.match(r.stderr, /concurrent commit conflict: version 0 .*metaData/);
    assert.equal(existsSync(join(out, '_delta_log', '00000000000000000001.json')), false);
    assert.equal(await logRows(out), 1);
    assert.equal(await globRows(out), 1, 'DuckDB reads the table: one partitioning only');
    assert.deepEqual(leftovers(out), [], 'the loser left no file behind');
  });
});

describe('kappa sink: appends keep the table meaning', () => {
  it('a new field needs --merge-schema; then it adds a nullable column', async () => {
    const out = join(T, 'merge');
    let r = await sh(`kappa sink '${out}' -q`, { input: stream(3) });
    assert.equal(r.code, 0, r.stderr);
    r = await sh(`kappa sink '${out}' -q`, { input: stream(3, 10, ',"other":"x"') });
    assert.equal(r.code, 3);
    assert.match(r.stderr, /new field 'other' is not a column of the table; add --merge-schema/);
    assert.equal(await logRows(out), 3);
    r = await sh(`kappa sink '${out}' --merge-schema -q`, { input: stream(3, 10, ',"other":"x"') });
    assert.equal(r.code, 0, r.stderr);
    const rows = await db.runAndReadAll(
      `SELECT count(*), count(other) FROM read_parquet('${out}/*.parquet', union_by_name=true)`,
    );
    assert.deepEqual(rows.getRows()[0], [6n, 3n]);
  });

  it('a declared column the table lacks, or a declared type change, is refused', async () => {
    const out = join(T, 'declared');
    let r = await sh(`kappa sink '${out}' -q`, { input: stream(3) });
    assert.equal(r.code, 0, r.stderr);
    r = await sh(`kappa sink '${out}'`, {
      input: stream(1, 5).replace('{"kappa":1}', '{"kappa":1,"schema":{"i":"string"}}'),
    });
    assert.equal(r.code, 3);
    assert.match(r.stderr, /declares 'i' as string but the table's column is int64/);
    r = await sh(`kappa sink '${out}'`, {
      input: stream(1, 5).replace('{"kappa":1}', '{"kappa":1,"schema":{"z":"int64"}}'),
    });
    assert.equal(r.code, 3);
    assert.match(r.stderr, /declares column 'z'.*--merge-schema/s);
  });

  it('int64 -> double widening of a committed column is refused (not in Delta typeWidening)', async () => {
    const out = join(T, 'widen');
    let r = await sh(`kappa sink '${out}' -q`, { input: stream(3) });
    assert.equal(r.code, 0, r.stderr);
    const input = '{"kappa":1}\n{"ts":0,"key":null,"value":{"i":1.5,"g":"a"}}\n{"end":true}\n';
    r = await sh(`kappa sink '${out}'`, { input });
    assert.equal(r.code, 3);
    assert.match(r.stderr, /would widen the table's column from long to double/);
    const types = await db.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${out}/*.parquet')`);
    assert.equal(types.getRows().find((x) => x[0] === 'i')?.[1], 'BIGINT');
  });

  it('--partition-by with the same column names but another pattern is refused', async () => {
    const out = join(T, 'respec');
    let r = await sh(`kappa sink '${out}' --partition-by 'dt=%Y-%m-%d' -q`, { input: stream(3) });
    assert.equal(r.code, 0, r.stderr);
    r = await sh(`kappa sink '${out}' --partition-by 'dt=%Y'`, { input: stream(3) });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /partitioned by 'dt=%Y-%m-%d' but --partition-by gives 'dt=%Y'/);
    r = await sh(`kappa sink '${out}' -q`, { input: stream(3, 100) });
    assert.equal(r.code, 0, r.stderr);
    r = await sh(`kappa sink '${out}' --partition-by 'dt=%Y-%m-%d/' -q`, { input: stream(3, 200) });
    assert.equal(r.code, 0, `the same spec written differently is accepted: ${r.stderr}`);
    assert.equal(await globRows(out), 9);
  });
});

describe('kappa sink: partition fields, bad records, disk full', () => {
  it("--partition-by '{nope}' (in no record) is a usage error naming the fields seen", async () => {
    const out = join(T, 'nope');
    const r = await sh(`kappa sink '${out}' --partition-by '{nope}'`, { input: stream(20) });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /field 'nope' is in none of the first 20 records; fields seen: i, g/);
    assert.equal(await logRows(out), -1);
    assert.deepEqual(leftovers(out), []);
  });

  it('a partition field some records lack: one warning with the count', async () => {
    const out = join(T, 'partial');
    const input = stream(6).replace(/"g":"g0"/g, '"h":1');
    const r = await sh(`kappa sink '${out}' --partition-by '{g}'`, { input });
    assert.equal(r.code, 0, r.stderr);
    const warnings = r.stderr.split('\n').filter((l) => l.includes('warning'));
    assert.deepEqual(warnings, [
      "kappa sink: warning: 2 of 6 records lack partition field 'g': they went to g=__HIVE_DEFAULT_PARTITION__",
    ]);
  });

  it('a run in which every record was bad commits nothing and exits 3, even with --on-error skip', async () => {
    const out = join(T, 'allbad');
    const input =
      '{"kappa":1}\n{"ts":0,"key":null,"value":[1]}\n{"ts":1,"key":null,"value":"x"}\n{"end":true}\n';
    const r = await sh(`kappa sink '${out}' --on-error skip`, { input });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /all 2 records were bad.*nothing committed/);
    assert.equal(await logRows(out), -1);
  });

  it('--max-bad: more bad records than allowed fail the run under --on-error skip', async () => {
    const out = join(T, 'maxbad');
    const input =
      '{"kappa":1}\n{"ts":0,"key":null,"value":{"a":1}}\n{"ts":0,"key":null,"value":[1]}\n{"ts":1,"key":null,"value":"x"}\n{"end":true}\n';
    let r = await sh(`kappa sink '${out}' --on-error skip --max-bad 1`, { input });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /too many bad records \(2 > --max-bad 1\)/);
    r = await sh(`kappa sink '${out}' --on-error skip --max-bad 2 -q`, { input });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '', '-q prints nothing');
  });

  it('disk full (a 1 MiB tmpfs): exit 1 naming the path, no orphan file', {
    skip: process.getuid?.() === 0 ? false : 'needs root to mount a tmpfs',
  }, async (t) => {
    const mnt = join(T, 'full');
    mkdirSync(mnt);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { stdio: 'ignore' });
    } catch {
      t.skip('mount -t tmpfs is not permitted here');
      return;
    }
    try {
      const out = join(mnt, 'table');
      const r = await sh(`kappa sink '${out}' --format ndjson`, {
        input: stream(40000, 0, ',"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"'),
      });
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `cannot write ${out}/part-00000-[0-9a-f]+\\.ndjson .*no space left on the device \\(ENOSPC\\)`,
        ),
      );
      assert.deepEqual(walk(out), [], 'no orphan file (in-progress, pending record or run marker)');
    } finally {
      execFileSync('umount', [mnt], { stdio: 'ignore' });
    }
  });
});

describe('kappa sink: every table flag has an effect', () => {
  it('--format csv writes CSV part files', async () => {
    const out = join(T, 'fmt-csv');
    const r = await sh(`kappa sink '${out}' --format csv -q`, { input: stream(4) });
    assert.equal(r.code, 0, r.stderr);
    const files = walk(out).filter((f) => f.endsWith('.csv'));
    assert.equal(files.length, 1);
    const rows = await db.runAndReadAll(`SELECT sum(i) FROM read_csv('${out}/*.csv')`);
    assert.equal(Number(rows.getRows()[0][0]), 6);
  });

  it('--tz moves time partitions to the zone', async () => {
    const out = join(T, 'tz');
    // 2001-01-01T03:00Z is still 2000-12-31 in New York
    const input = `{"kappa":1}\n{"ts":${Date.UTC(2001, 0, 1, 3)},"key":null,"value":{"a":1}}\n{"end":true}\n`;
    let r = await sh(`kappa sink '${out}' --partition-by 'dt=%Y-%m-%d' --tz America/New_York -q`, { input });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(out, 'dt=2000-12-31')), walk(out).join(' '));
    r = await sh(`kappa sink '${join(T, 'tz-utc')}' --partition-by 'dt=%Y-%m-%d' -q`, { input });
    assert.ok(existsSync(join(T, 'tz-utc', 'dt=2001-01-01')));
  });

  it('--roll-size rolls files at the size (checked after each 128k-row write)', async () => {
    const gen = `awk 'BEGIN{print "{\\"kappa\\":1}"; for(i=0;i<300000;i++) printf "{\\"ts\\":%d,\\"key\\":null,\\"value\\":{\\"i\\":%d}}\\n", i, i; print "{\\"end\\":true}"}'`;
    for (const [flag, files] of [
      ['--roll-size 1MiB', 3],
      ['', 1],
    ] as const) {
      const out = join(T, `rollsize${files}`);
      const r = await sh(`${gen} | kappa sink '${out}' --format ndjson ${flag} -q`);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(walk(out).filter((f) => f.endsWith('.ndjson')).length, files, flag);
      const rows = await db.runAndReadAll(`SELECT count(*), sum(i) FROM read_json('${out}/*.ndjson')`);
      assert.deepEqual(rows.getRows()[0].map(Number), [300000, 299999 * 150000]);
    }
  });

  it('--roll-interval rolls a file open longer than the interval', async () => {
    const out = join(T, 'rollint');
    const r = await sh(
      `( echo '{"kappa":1}'; echo '{"ts":0,"key":null,"value":{"a":1}}'; until ls '${out}'/_kappa/runs/*.json >/dev/null 2>&1; do sleep 0.1; done; sleep 1.5; echo '{"ts":1,"key":null,"value":{"a":2}}'; sleep 1.5; echo '{"end":true}' ) | kappa sink '${out}' --roll-interval 1s -q`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(walk(out).filter((f) => f.endsWith('.parquet')).length, 2);
  });

  it('--compression sets the Parquet codec of table part files', async () => {
    const out = join(T, 'codec');
    const r = await sh(`kappa sink '${out}' --compression snappy -q`, { input: stream(10) });
    assert.equal(r.code, 0, r.stderr);
    const f = walk(out).filter((x) => x.endsWith('.parquet'));
    assert.match(f[0], /\.snappy\.parquet$/);
    const c = await db.runAndReadAll(`SELECT DISTINCT compression FROM parquet_metadata('${out}/${f[0]}')`);
    assert.deepEqual(c.getRows(), [['SNAPPY']]);
  });

  it('a checkpoint barrier commits what came before it as its own version', async () => {
    const out = join(T, 'barrier');
    const input = `{"kappa":1}\n{"ts":0,"key":null,"value":{"a":1}}\n{"barrier":{"id":7,"positions":{}}}\n{"ts":1,"key":null,"value":{"a":2}}\n{"end":true}\n`;
    const r = await sh(`kappa sink '${out}' -q`, { input });
    assert.equal(r.code, 0, r.stderr);
    const v0 = readFileSync(join(out, '_delta_log', '00000000000000000000.json'), 'utf8');
    assert.match(v0, /"kappa.checkpointId":7/);
    assert.equal((v0.match(/"add"/g) ?? []).length, 1);
    assert.ok(existsSync(join(out, '_delta_log', '00000000000000000001.json')));
  });
});
