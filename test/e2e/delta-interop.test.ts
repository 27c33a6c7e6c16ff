/**
 * Delta interoperability: tables written by the real `kappa sink` are opened with an independent
 * Delta reader, Delta Kernel for Java (test/delta.ts, test/delta-kernel/), and what Kernel sees is
 * compared with the rows DuckDB computes from the same source data. kappa's own log reader is never
 * the oracle here.
 *
 * All tables are written first and read in one JVM (start-up costs seconds).
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import {
  canonicalRows,
  DeltaKernelError,
  type KernelFilter,
  type KernelTable,
  readDeltaTables,
  type TableSpec,
} from '../delta.js';
import { FLIGHTS, type RunResult, sh, tempDir } from '../helpers.js';

let db: DuckDBConnection;
const tmp = tempDir('kappa-delta-interop-');
const T = tmp.dir;

type Values = Record<string, unknown>;

/** A typed-table row with its json column `j` (JSON text) parsed, to compare JSON values. */
function jsonParsed(r: Record<string, unknown>): Record<string, unknown> {
  return 'j' in r ? { ...r, j: r.j === null ? null : JSON.parse(String(r.j)) } : r;
}

/** Rows DuckDB computes, as plain objects (BIGINT as bigint). */
async function duck(sql: string): Promise<Record<string, unknown>[]> {
  return (await db.runAndReadAll(sql)).getRowObjects() as Record<string, unknown>[];
}

/** Writes `values` as NDJSON (one value object per line) for DuckDB; returns the path. */
function valuesFile(name: string, values: Values[]): string {
  const p = join(T, `${name}.values.ndjson`);
  writeFileSync(p, values.map((v) => `${JSON.stringify(v)}\n`).join(''));
  return p;
}

/**
 * Writes a kappa stream (kappa-stream(5)): a header with `schema` (if any), one record per value
 * with event time `value[tsField]` (epoch ms), and the end line. Returns the path.
 */
function streamFile(
  name: string,
  values: Values[],
  tsField: string,
  schema?: Record<string, string>,
): string {
  const p = join(T, `${name}.stream`);
  const lines = [JSON.stringify(schema ? { kappa: 1, schema } : { kappa: 1 })];
  for (const v of values) lines.push(JSON.stringify({ ts: v[tsField], key: null, value: v }));
  lines.push('{"end":true}');
  writeFileSync(p, `${lines.join('\n')}\n`);
  return p;
}

/** Runs `kappa sink DIR ARGS < stream` and asserts success. */
async function sink(stream: string, dir: string, args = ''): Promise<void> {
  const r = await sh(`kappa sink '${dir}' -q ${args} < '${stream}'`);
  assert.equal(r.code, 0, `kappa sink ${dir}: ${r.stderr}`);
}

/** Delta log actions of one version, as kappa wrote them (used only to edit copies for the sanity check). */
function logLines(dir: string, version: number): string[] {
  return readFileSync(join(dir, '_delta_log', `${String(version).padStart(20, '0')}.json`), 'utf8')
    .split('\n')
    .filter(Boolean);
}

// ---- the tables ------------------------------------------------------------------------------------

const FLIGHTS_HEADER_SCHEMA = {
  date: 'timestamp',
  delay: 'int64',
  distance: 'int64',
  origin: 'string',
  destination: 'string',
};
const D = {
  flights: join(T, 'flights'),
  special: join(T, 'special'),
  appends: join(T, 'appends'),
  grow: join(T, 'grow'),
  growRun: join(T, 'grow-run'),
  widen: join(T, 'widen'),
  typed: join(T, 'typed'),
  cut: join(T, 'cut'),
  killed: join(T, 'killed'),
  droppedAdd: join(T, 'dropped-add'),
  badStats: join(T, 'bad-stats'),
  missingFile: join(T, 'missing-file'),
  foreign: join(T, 'foreign'),
  foreignBad: join(T, 'foreign-bad'),
};

// Special partition values: Hive escaping, null and the empty string (both __HIVE_DEFAULT_PARTITION__).
const SPECIAL: Values[] = [
  { t: 1700000000000, id: 1, k: 'a:b/c', n: 1 },
  { t: 1700003600000, id: 2, k: null, n: null },
  { t: 1700007200000, id: 3, k: '', n: -5 },
  { t: 1700010800000, id: 4, k: 'x y=z%', n: 1 },
  { t: 1700014400000, id: 5, k: 'üñí', n: 9007199254740991 },
  { t: 1700014400001, id: 6, k: 'a:b/c', n: null },
];

const APPENDS: Values[] = Array.from({ length: 200 }, (_, i) => ({
  id: i,
  name: `name-${i}`,
  score: i * 0.5,
  t: 1700000000000 + i * 60_000,
}));

const GROW_A: Values[] = [
  { t: 1700000000000, id: 1, a: 'x' },
  { t: 1700000000001, id: 2, a: 'y' },
];
const GROW_B: Values[] = [
  { t: 1700000000002, id: 3, a: 'z', b: 2.5, c: true },
  { t: 1700000000003, id: 4, b: -1.25, c: false },
];
const GROW_RUN: Values[] = [
  { t: 1700000000000, id: 1, a: 'x' },
  { t: 1700000000001, id: 2, a: 'y' },
  { t: 1700000000002, id: 3, a: 'z', b: 2.5 },
  { t: 1700000000003, id: 4, c: false },
  { t: 1700000000004, id: 5, a: null, b: null, c: true, d: 'new' },
];
const WIDEN: Values[] = [
  { t: 1700000000000, id: 1, x: 1 },
  { t: 1700000000001, id: 2, x: 1.5 },
];

/**
 * A table "written by another engine": a Parquet file DuckDB writes (id INTEGER = Delta `integer`,
 * INT32 in Parquet) under a hand-made Delta log, then appended to by kappa.
 */
const FOREIGN_SCHEMA_STRING = JSON.stringify({
  type: 'struct',
  fields: [
    { name: 'id', type: 'integer', nullable: true, metadata: {} },
    { name: 'name', type: 'string', nullable: true, metadata: {} },
  ],
});
const FOREIGN_V0: Values[] = [
  { id: 1, name: 'a' },
  { id: -7, name: null },
];
const FOREIGN_APPEND: Values[] = [
  { id: 2, name: 'b' },
  { id: 2147483647, name: null },
  { id: -2147483648, name: 'c' },
];

/** A kappa stream of `values` (event time 0), without a header schema. */
function plainStream(name: string, values: Values[]): string {
  const p = join(T, `${name}.stream`);
  const lines = ['{"kappa":1}', ...values.map((v) => JSON.stringify({ ts: 0, key: null, value: v }))];
  writeFileSync(p, `${[...lines, '{"end":true}'].join('\n')}\n`);
  return p;
}

const TYPED_SCHEMA = {
  tn: 'timestamp',
  tz: 'timestamptz',
  d: 'date',
  i: 'int64',
  f: 'float64',
  s: 'string',
  b: 'boolean',
  bin: 'binary',
  j: 'json',
};
const TYPED: Values[] = [
  {
    tn: 1700000000123,
    tz: 1700000000123,
    d: '2024-02-29',
    i: 9007199254740991,
    f: 1.25,
    s: 'héllo "q"\n\ttab',
    b: true,
    bin: 'AAEC/w==',
    j: { a: [1, 2], b: { c: null } },
  },
  { tn: 1700000000124, tz: null, d: null, i: null, f: null, s: null, b: null, bin: null, j: null },
  {
    tn: -1,
    tz: 0,
    d: '1969-12-31',
    i: -9007199254740991,
    f: -0.5,
    s: '',
    b: false,
    bin: '',
    j: [1, 'x'],
  },
  { tn: 4102444800000, tz: 4102444800999, d: '2100-01-01', i: 0, f: 1e300, s: '😀', b: true },
];

/**
 * Filters for Kernel's partition pruning and stats-based data skipping. The typed table has one row
 * per file (--roll-records 1), so every column's min/max/nullCount stats decide about whole rows.
 */
const SKIPPING: [string, KernelFilter, { skips: boolean }][] = [
  [D.flights, ['dt', '=', '2001-01-03'], { skips: true }],
  [D.flights, ['date', '>=', '2001-01-05T00:00:00.000000'], { skips: true }],
  // every (day, origin) file spans most delays and destinations: nothing to skip, rows still checked
  [D.flights, ['delay', '>', '200'], { skips: false }],
  [D.flights, ['destination', '=', 'ORD'], { skips: false }],
  [D.typed, ['tn', '>=', '2023-11-14T22:13:20.124000'], { skips: true }],
  [D.typed, ['tz', '<', '2023-11-14T22:13:20.123000Z'], { skips: true }],
  [D.typed, ['d', '=', '2024-02-29'], { skips: true }],
  [D.typed, ['i', '<', '0'], { skips: true }],
  [D.typed, ['f', '>', '1.25'], { skips: true }],
  [D.typed, ['s', '<=', 'h'], { skips: true }],
  // Kernel does not skip by boolean min/max (not a skipping-eligible type)
  [D.typed, ['b', '=', 'false'], { skips: false }],
];

/** The typed table's copy whose stats lie (min i >= 0 for the file holding i < 0), read filtered. */
const BAD_STATS_SPEC: TableSpec = { dir: D.badStats, filter: ['i', '<', '0'] };

/** `v op literal` with SQL semantics (null never matches); literal typed like v. */
function matches(v: unknown, [, op, lit]: KernelFilter): boolean {
  if (v === null || v === undefined) return false;
  const b: unknown =
    typeof v === 'bigint'
      ? BigInt(lit)
      : typeof v === 'number'
        ? Number(lit)
        : typeof v === 'boolean'
          ? lit === 'true'
          : lit;
  const a = v as string | number | bigint | boolean;
  const c = b as typeof a;
  switch (op) {
    case '=':
      return a === c;
    case '<':
      return a < c;
    case '<=':
      return a <= c;
    case '>':
      return a > c;
    case '>=':
      return a >= c;
  }
}

/** The `kappa sink` run of the int64 -> float64 widening case. */
let widenRun: RunResult | undefined;
/** The append of an out-of-range value to the foreign table's `integer` column. */
let foreignBadRun: RunResult | undefined;
/** Data file (relative path, decoded) whose add action was removed in the dropped-add copy. */
let droppedPath = '';
/** What Kernel read, by table spec, in the order of SPECS. */
let got: (KernelTable | DeltaKernelError)[] = [];
const SPECS: TableSpec[] = [
  D.flights,
  D.special,
  D.appends,
  { dir: D.appends, version: 0 },
  D.grow,
  { dir: D.grow, version: 0 },
  D.growRun,
  D.widen,
  D.typed,
  D.cut,
  D.killed,
  D.droppedAdd,
  D.missingFile,
  D.foreign,
  D.foreignBad,
  ...SKIPPING.map(([dir, filter]) => ({ dir, filter })),
  BAD_STATS_SPEC,
];
function table(spec: TableSpec): KernelTable {
  const i = SPECS.findIndex((s) => JSON.stringify(s) === JSON.stringify(spec));
  assert.ok(i >= 0, `no spec ${JSON.stringify(spec)}`);
  const r = got[i];
  if (r instanceof DeltaKernelError) throw r;
  return r;
}

before(async () => {
  db = await (await DuckDBInstance.create(':memory:')).connect();

  // (1) A week of flights from three airports, partitioned by event-time day and by a field.
  await db.run(
    `COPY (SELECT epoch_ms(date) AS date, delay, distance, origin, destination FROM '${FLIGHTS}'
           WHERE origin IN ('SFO', 'LAX', 'JFK') AND date < TIMESTAMP '2001-01-08'
           ORDER BY ALL) TO '${T}/flights.ndjson' (FORMAT json)`,
  );
  const r = await sh(
    `kappa ingest '${T}/flights.ndjson' --ts-field date --ts-format epoch-ms -q | sed '1s/.*/${JSON.stringify({ kappa: 1, schema: FLIGHTS_HEADER_SCHEMA })}/' | kappa sink '${D.flights}' --partition-by 'dt=%Y-%m-%d/{origin}' -q`,
  );
  assert.equal(r.code, 0, r.stderr);
  await sink(
    streamFile('special', SPECIAL, 't', { t: 'timestamptz', id: 'int64', k: 'string', n: 'int64' }),
    D.special,
    `--partition-by 'hr=%H/{k}/{n}'`,
  );

  // (2) Two appends: version 0 holds ids 0..119, version 1 adds 120..199.
  const appSchema = { id: 'int64', name: 'string', score: 'float64', t: 'timestamptz' };
  await sink(streamFile('appends-0', APPENDS.slice(0, 120), 't', appSchema), D.appends);
  await sink(streamFile('appends-1', APPENDS.slice(120), 't', appSchema), D.appends);

  // (3) Schema growth: between appends (inferred types, no header schema), and within one run with
  // files rolled every 2 records so that files of one version have different columns.
  // Once the sink requires Delta's --merge-schema to add columns on append (issue 8 item 12), the
  // test passes it.
  const help = await sh('kappa sink --help');
  const mergeSchema = `${help.stdout}${help.stderr}`.includes('--merge-schema') ? '--merge-schema' : '';
  await sink(streamFile('grow-0', GROW_A, 't'), D.grow);
  await sink(streamFile('grow-1', GROW_B, 't'), D.grow, mergeSchema);
  await sink(streamFile('grow-run', GROW_RUN, 't'), D.growRun, '--roll-records 2');
  // int64 -> float64 within a run: the sink may widen (then Kernel must read it) or refuse it.
  widenRun = await sh(`kappa sink '${D.widen}' -q --roll-records 1 < '${streamFile('widen', WIDEN, 't')}'`);

  // (4) Typed columns, with nulls.
  await sink(streamFile('typed', TYPED, 'tn', TYPED_SCHEMA), D.typed, '--roll-records 1');

  // (5) A table another engine wrote, with an `integer` column: kappa appends keep its types.
  mkdirSync(D.foreign, { recursive: true });
  await db.run(
    `COPY (SELECT id::INTEGER AS id, name::VARCHAR AS name FROM read_json('${valuesFile('foreign-0', FOREIGN_V0)}',
           format = 'newline_delimited', columns = {id: 'INTEGER', name: 'VARCHAR'}))
     TO '${D.foreign}/part-0.parquet' (FORMAT parquet)`,
  );
  const foreignLog = [
    // table features: the append must keep this protocol, not lower it to kappa's default 1/2
    { protocol: { minReaderVersion: 1, minWriterVersion: 7, writerFeatures: ['appendOnly'] } },
    {
      metaData: {
        id: '9f1c2d3e-0000-4000-8000-000000000001',
        format: { provider: 'parquet', options: {} },
        schemaString: FOREIGN_SCHEMA_STRING,
        partitionColumns: [],
        configuration: {},
        createdTime: 1700000000000,
      },
    },
    {
      add: {
        path: 'part-0.parquet',
        partitionValues: {},
        size: statSync(join(D.foreign, 'part-0.parquet')).size,
        modificationTime: 1700000000000,
        dataChange: true,
      },
    },
    { commitInfo: { timestamp: 1700000000000, operation: 'WRITE', engineInfo: 'hand-made' } },
  ];
  mkdirSync(join(D.foreign, '_delta_log'));
  writeFileSync(
    join(D.foreign, '_delta_log', `${'0'.repeat(20)}.json`),
    `${foreignLog.map((a) => JSON.stringify(a)).join('\n')}\n`,
  );
  cpSync(D.foreign, D.foreignBad, { recursive: true });
  await sink(plainStream('foreign-1', FOREIGN_APPEND), D.foreign);
  foreignBadRun = await sh(
    `kappa sink '${D.foreignBad}' -q < '${plainStream('foreign-bad', [
      { id: 3, name: 'ok' },
      { id: 2147483648, name: 'x' },
    ])}'`,
  );

  // Failures after a commit (section B's crash cases build on these): an append whose upstream was
  // cut off (no end line), and an append whose whole pipeline was killed with SIGKILL while the sink
  // held in-progress files. Neither may change what a Delta reader sees.
  await sink(streamFile('cut-0', APPENDS.slice(0, 50), 't', appSchema), D.cut);
  const cutStream = streamFile('cut-1', APPENDS.slice(50, 100), 't', appSchema);
  writeFileSync(cutStream, readFileSync(cutStream, 'utf8').replace('{"end":true}\n', ''));
  const cut = await sh(`kappa sink '${D.cut}' -q < '${cutStream}'`);
  assert.equal(cut.code, 1, `a cut-off stream must fail the sink: ${cut.stderr}`);
  await sink(streamFile('killed-0', APPENDS.slice(0, 50), 't', appSchema), D.killed);
  // The kill comes once the sink has written anything (in-progress or pending files, whatever their
  // names), so that the crash leaves uncommitted state behind.
  const kill = await sh(`set -m
    before=$(find '${D.killed}' | wc -l)
    { cat '${cutStream}'; exec sleep 60; } 2>/dev/null | kappa sink '${D.killed}' -q --roll-records 10 &
    pgid=$(ps -o pgid= $! | tr -d ' ')
    for _ in $(seq 1 600); do [ "$(find '${D.killed}' | wc -l)" -gt "$before" ] && break; sleep 0.1; done
    echo $(( $(find '${D.killed}' | wc -l) - before ))
    kill -KILL -- "-$pgid"; wait || true`);
  assert.ok(
    Number.parseInt(kill.stdout, 10) > 0,
    `the sink wrote nothing before the kill: ${kill.stdout} ${kill.stderr}`,
  );

  // Oracle sanity: copies of (1) with one add action removed from the log, and with one committed
  // data file deleted.
  cpSync(D.flights, D.droppedAdd, { recursive: true });
  const v0 = logLines(D.droppedAdd, 0);
  const firstAdd = v0.findIndex((l) => l.startsWith('{"add"'));
  droppedPath = decodeURIComponent((JSON.parse(v0[firstAdd]) as { add: { path: string } }).add.path);
  v0.splice(firstAdd, 1);
  writeFileSync(join(D.droppedAdd, '_delta_log', `${'0'.repeat(20)}.json`), `${v0.join('\n')}\n`);
  cpSync(D.flights, D.missingFile, { recursive: true });
  rmSync(join(D.missingFile, droppedPath));
  cpSync(D.typed, D.badStats, { recursive: true });
  const typedLog = logLines(D.badStats, 0).map((l) => {
    const a = JSON.parse(l) as { add?: { stats: string } };
    if (!a.add) return l;
    const stats = JSON.parse(a.add.stats) as { minValues: Record<string, unknown> };
    if (typeof stats.minValues.i === 'number' && stats.minValues.i < 0) stats.minValues.i = 0;
    a.add.stats = JSON.stringify(stats);
    return JSON.stringify(a);
  });
  writeFileSync(join(D.badStats, '_delta_log', `${'0'.repeat(20)}.json`), `${typedLog.join('\n')}\n`);

  got = await readDeltaTables(SPECS);
});
after(() => tmp.cleanup());

/** The typed table's rows as DuckDB computes them from the source values. */
const typedExpected = () =>
  duck(`
      SELECT strftime(make_timestamp(tn * 1000), '%Y-%m-%dT%H:%M:%S.%f') AS tn,
             strftime(make_timestamp(tz * 1000), '%Y-%m-%dT%H:%M:%S.%fZ') AS tz,
             strftime(d, '%Y-%m-%d') AS d, i, f, s, b, to_base64(from_base64(bin)) AS bin, j::VARCHAR AS j
      FROM read_json('${valuesFile('typed', TYPED)}', format = 'newline_delimited',
           columns = {tn: 'BIGINT', tz: 'BIGINT', d: 'DATE', i: 'BIGINT', f: 'DOUBLE', s: 'VARCHAR',
                      b: 'BOOLEAN', bin: 'VARCHAR', j: 'JSON'})`);

const FLIGHTS_EXPECTED = (where = 'true') => `
  SELECT strftime(make_timestamp(date * 1000), '%Y-%m-%dT%H:%M:%S.%f') AS date, delay, distance,
         origin, destination, strftime(make_timestamp(date * 1000), '%Y-%m-%d') AS dt
  FROM read_json('${T}/flights.ndjson', format = 'newline_delimited',
       columns = {date: 'BIGINT', delay: 'BIGINT', distance: 'BIGINT', origin: 'VARCHAR', destination: 'VARCHAR'})
  WHERE ${where}`;

describe('Delta Kernel for Java reads kappa tables', () => {
  it('(1) partitioned by event-time day and a field: snapshot, schema and every row = DuckDB', async () => {
    const t = table(D.flights);
    assert.equal(t.version, 0);
    assert.deepEqual(t.partitionColumns, ['dt', 'origin']);
    assert.deepEqual(
      t.schema.map((f) => [f.name, f.type]),
      [
        ['date', 'timestamp_ntz'],
        ['delay', 'long'],
        ['distance', 'long'],
        ['origin', 'string'],
        ['destination', 'string'],
        ['dt', 'string'],
      ],
    );
    const expected = await duck(FLIGHTS_EXPECTED());
    assert.ok(expected.length > 500, `only ${expected.length} source rows`);
    assert.equal(t.rows.length, expected.length);
    assert.deepEqual(canonicalRows(t.rows), canonicalRows(expected));
    assert.equal(new Set(t.rows.map((r) => `${r.dt}/${r.origin}`)).size, 21);
  });

  it('(1) field partitions with Hive-escaped values, null and int64 = DuckDB', async () => {
    const t = table(D.special);
    assert.deepEqual(t.partitionColumns, ['hr', 'k', 'n']);
    const expected = await duck(`
      SELECT t, id, k, n, strftime(make_timestamp(t * 1000), '%H') AS hr
      FROM read_json('${valuesFile('special', SPECIAL)}', format = 'newline_delimited',
           columns = {t: 'BIGINT', id: 'BIGINT', k: 'VARCHAR', n: 'BIGINT'})
      WHERE k IS DISTINCT FROM ''`);
    const rows = t.rows
      .filter((r) => r.id !== 3n)
      // t is a timestamptz column: back to epoch ms to compare with the source values
      .map((r) => ({ ...r, t: BigInt(Date.parse(String(r.t))) }));
    assert.equal(rows.length, SPECIAL.length - 1);
    assert.deepEqual(canonicalRows(rows), canonicalRows(expected));
  });

  it('(1) an empty-string field partition value reads as null, as its __HIVE_DEFAULT_PARTITION__ directory says', async () => {
    // Delta (PROTOCOL.md "Partition Value Serialization": an empty string is a null partition value)
    const row = table(D.special).rows.find((r) => r.id === 3n);
    assert.ok(row);
    assert.equal(row.k, null);
    const log = logLines(D.special, 0)
      .map((l) => JSON.parse(l) as { add?: { partitionValues: Record<string, string | null> } })
      .filter((a) => a.add);
    assert.ok(log.some((a) => a.add?.partitionValues.k === null && a.add.partitionValues.n === '-5'));
    assert.ok(!log.some((a) => a.add?.partitionValues.k === ''), 'no "" partition value in the log');
    // the glob view (DuckDB, Hive partitioning) reads the same null
    const glob = await duck(
      `SELECT k FROM read_parquet('${D.special}/**/*.parquet', hive_partitioning = true) WHERE id = 3`,
    );
    assert.deepEqual(glob, [{ k: null }]);
    // and kappa's own table reader (ingest of the table directory) too
    const r = await sh(`kappa ingest '${D.special}' -q`);
    assert.equal(r.code, 0, r.stderr);
    const rec = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{"ts"'))
      .map((l) => (JSON.parse(l) as { value: Values }).value)
      .find((v) => v.id === 3);
    assert.ok(rec, r.stdout);
    assert.equal(rec.k, null);
  });

  it('(2) two appends: version 1 reads both, version 0 only the first (time travel)', async () => {
    const src = valuesFile('appends', APPENDS);
    const q = (where: string) =>
      duck(`SELECT id, name, score, strftime(make_timestamp(t * 1000), '%Y-%m-%dT%H:%M:%S.%fZ') AS t
            FROM read_json('${src}', format = 'newline_delimited',
                 columns = {id: 'BIGINT', name: 'VARCHAR', score: 'DOUBLE', t: 'BIGINT'}) WHERE ${where}`);
    const latest = table(D.appends);
    assert.equal(latest.version, 1);
    assert.equal(latest.rows.length, 200);
    assert.deepEqual(canonicalRows(latest.rows), canonicalRows(await q('true')));
    const v0 = table({ dir: D.appends, version: 0 });
    assert.equal(v0.version, 0);
    assert.deepEqual(canonicalRows(v0.rows), canonicalRows(await q('id < 120')));
  });

  it('(3) a schema that grows between appends: new nullable columns, older rows read null', async () => {
    const latest = table(D.grow);
    assert.equal(latest.version, 1);
    assert.deepEqual(
      latest.schema.map((f) => [f.name, f.type, f.nullable]),
      [
        ['t', 'long', true],
        ['id', 'long', true],
        ['a', 'string', true],
        ['b', 'double', true],
        ['c', 'boolean', true],
      ],
    );
    const expected = await duck(`
      SELECT t, id, a, b, c FROM read_json('${valuesFile('grow', [...GROW_A, ...GROW_B])}',
        format = 'newline_delimited', columns = {t: 'BIGINT', id: 'BIGINT', a: 'VARCHAR', b: 'DOUBLE', c: 'BOOLEAN'})`);
    assert.deepEqual(canonicalRows(latest.rows), canonicalRows(expected));
    const v0 = table({ dir: D.grow, version: 0 });
    assert.deepEqual(
      v0.schema.map((f) => f.name),
      ['t', 'id', 'a'],
    );
    assert.equal(v0.rows.length, 2);
  });

  it('(3) a schema that grows within one run, across rolled files of one version', async () => {
    const t = table(D.growRun);
    assert.equal(t.version, 0);
    const files = readdirSync(D.growRun).filter((f) => f.endsWith('.parquet'));
    assert.ok(files.length >= 3, `expected several rolled files, got ${files.length}`);
    const expected = await duck(`
      SELECT t, id, a, b, c, d FROM read_json('${valuesFile('grow-run', GROW_RUN)}', format = 'newline_delimited',
        columns = {t: 'BIGINT', id: 'BIGINT', a: 'VARCHAR', b: 'DOUBLE', c: 'BOOLEAN', d: 'VARCHAR'})`);
    assert.deepEqual(canonicalRows(t.rows), canonicalRows(expected));
  });

  it('(3) int64 -> float64 widening across rolled files: refused as a bad record once a file holds the column as INT64', () => {
    assert.ok(widenRun);
    const i = SPECS.indexOf(D.widen);
    // refused: a bad record under --on-error fail (exit 3, naming the line), and nothing committed
    assert.equal(widenRun.code, 3, widenRun.stderr);
    assert.match(widenRun.stderr, /line 3/);
    assert.match(widenRun.stderr, /field 'x'.*1\.5.*int64.*float64.*already written/s);
    assert.ok(got[i] instanceof DeltaKernelError, 'nothing committed: no table');
  });

  it('(5) appending to a table another engine wrote keeps its `integer` column (INT32 files, same schema string)', async () => {
    const t = table(D.foreign);
    assert.equal(t.version, 1);
    assert.deepEqual(
      t.schema.map((f) => [f.name, f.type]),
      [
        ['id', 'integer'],
        ['name', 'string'],
      ],
    );
    const expected = await duck(
      `SELECT id, name FROM read_json('${valuesFile('foreign', [...FOREIGN_V0, ...FOREIGN_APPEND])}',
         format = 'newline_delimited', columns = {id: 'INTEGER', name: 'VARCHAR'})`,
    );
    assert.deepEqual(canonicalRows(t.rows), canonicalRows(expected));
    // the append wrote no metaData action: the schema string is the other engine's, unchanged
    const v1 = logLines(D.foreign, 1).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(!v1.some((a) => a.metaData || a.protocol), 'version 1 changes neither metaData nor protocol');
    const added = v1.flatMap((a) => (a.add ? [(a.add as { path: string }).path] : []));
    assert.equal(added.length, 1);
    const types = await duck(
      `SELECT name, type FROM parquet_schema('${join(D.foreign, decodeURIComponent(added[0]))}') WHERE name = 'id'`,
    );
    assert.deepEqual(types, [{ name: 'id', type: 'INT32' }]);
  });

  it('(5) a table whose protocol needs writer features kappa does not implement is refused, unchanged', async () => {
    const dir = join(T, 'foreign-v4');
    cpSync(D.foreign, dir, { recursive: true });
    rmSync(join(dir, '_delta_log', `${'1'.padStart(20, '0')}.json`));
    const v0 = logLines(dir, 0).map((l) =>
      l.startsWith('{"protocol"')
        ? JSON.stringify({ protocol: { minReaderVersion: 1, minWriterVersion: 4 } })
        : l,
    );
    writeFileSync(join(dir, '_delta_log', `${'0'.repeat(20)}.json`), `${v0.join('\n')}\n`);
    const r = await sh(`kappa sink '${dir}' -q < '${plainStream('foreign-v4', FOREIGN_APPEND)}'`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /writer version 4/);
    assert.deepEqual(readdirSync(join(dir, '_delta_log')).filter((f) => f.endsWith('.json')).length, 1);
  });

  it('(5) a value outside an `integer` column of the table is a bad record; nothing is committed', () => {
    assert.ok(foreignBadRun);
    assert.equal(foreignBadRun.code, 3, foreignBadRun.stderr);
    assert.match(foreignBadRun.stderr, /line 3.*field 'id'.*2147483648.*integer/s);
    assert.equal(table(D.foreignBad).version, 0);
    assert.equal(table(D.foreignBad).rows.length, FOREIGN_V0.length);
  });

  it('(4) typed columns: timestamp_ntz, timestamp, date, long, double, string, boolean, binary, json, nulls', async () => {
    const t = table(D.typed);
    assert.deepEqual(
      t.schema.map((f) => [f.name, f.type]),
      [
        ['tn', 'timestamp_ntz'],
        ['tz', 'timestamp'],
        ['d', 'date'],
        ['i', 'long'],
        ['f', 'double'],
        ['s', 'string'],
        ['b', 'boolean'],
        ['bin', 'binary'],
        ['j', 'string'],
      ],
    );
    const expected = await typedExpected();
    assert.equal(t.rows.length, TYPED.length);
    assert.deepEqual(canonicalRows(t.rows.map(jsonParsed)), canonicalRows(expected.map(jsonParsed)));
  });

  it("Kernel's partition pruning and data skipping by kappa's partition values and stats keep every matching row", async () => {
    const flights = await duck(FLIGHTS_EXPECTED());
    const typed = await typedExpected();
    for (const [dir, filter, { skips }] of SKIPPING) {
      const t = table({ dir, filter });
      const what = `${dir.slice(T.length + 1)} ${filter.join(' ')}`;
      const want = (dir === D.flights ? flights : typed).filter((r) => matches(r[filter[0]], filter));
      assert.ok(want.length > 0, `${what}: the filter matches no source row`);
      const gotRows = t.rows.filter((r) => matches(r[filter[0]], filter));
      assert.deepEqual(canonicalRows(gotRows.map(jsonParsed)), canonicalRows(want.map(jsonParsed)), what);
      // where files can be told apart, the filter did prune or skip some (else this checks no stats)
      if (skips) assert.ok(t.files < t.totalFiles, `${what}: Kernel read all ${t.totalFiles} files`);
    }
    assert.equal(
      table({ dir: D.flights, filter: SKIPPING[0][1] }).files,
      3,
      'dt=2001-01-03: one file per origin',
    );
  });

  it('an append cut off upstream, or killed (SIGKILL) with files in progress, leaves the snapshot as it was', async () => {
    const expected =
      await duck(`SELECT id, name, score, strftime(make_timestamp(t * 1000), '%Y-%m-%dT%H:%M:%S.%fZ') AS t
      FROM read_json('${valuesFile('cut', APPENDS.slice(0, 50))}', format = 'newline_delimited',
           columns = {id: 'BIGINT', name: 'VARCHAR', score: 'DOUBLE', t: 'BIGINT'})`);
    for (const dir of [D.cut, D.killed]) {
      const t = table(dir);
      assert.equal(t.version, 0, dir);
      assert.deepEqual(canonicalRows(t.rows), canonicalRows(expected), dir);
    }
  });

  it('oracle sanity: a log without one add action reads fewer rows; a deleted data file fails; lying stats lose rows', async () => {
    const full = table(D.flights);
    const dropped = table(D.droppedAdd);
    const [{ n }] = await duck(`SELECT count(*) AS n FROM read_parquet('${join(D.flights, droppedPath)}')`);
    assert.ok((n as bigint) > 0n);
    assert.equal(BigInt(dropped.rows.length), BigInt(full.rows.length) - (n as bigint));
    const i = SPECS.indexOf(D.missingFile);
    assert.ok(got[i] instanceof DeltaKernelError, 'Kernel read a table whose data file is gone');
    assert.match((got[i] as DeltaKernelError).javaError, /FileNotFound|No such file|does not exist/i);
    // stats that lie make Kernel skip the file holding the only row with i < 0
    const lying = table(BAD_STATS_SPEC);
    assert.equal(lying.totalFiles, TYPED.length);
    assert.deepEqual(
      lying.rows.filter((r) => typeof r.i === 'bigint' && r.i < 0n),
      [],
    );
    const honest = table({ dir: D.typed, filter: ['i', '<', '0'] });
    assert.equal(honest.rows.filter((r) => typeof r.i === 'bigint' && r.i < 0n).length, 1);
  });
});
