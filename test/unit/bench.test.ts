import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { generateRides, mulberry32 } from '../../bench/gen.js';
import { parseTimeFile } from '../../bench/harness.js';
import {
  canonicalize,
  canonRow,
  compare,
  type Normalizer,
  normTime,
  parseRow,
} from '../../bench/normalize.js';
import { cpuCell, evaluateTarget, renderScenario, stageLabel } from '../../bench/report.js';
import {
  scenario2,
  scenario3,
  scenario3table,
  scenario4,
  scenario6,
  scenarioCsv,
} from '../../bench/scenarios.js';
import { tempDir } from '../helpers.js';

describe('bench ride generator', () => {
  it('is deterministic by seed and emits non-decreasing event time', () => {
    const a = [...generateRides({ count: 2000, seed: 7 })];
    const b = [...generateRides({ count: 2000, seed: 7 })];
    const c = [...generateRides({ count: 2000, seed: 8 })];
    assert.equal(a.length, 2000);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.slice(0, 10), c.slice(0, 10));
    for (let i = 1; i < a.length; i++) {
      assert.ok(Date.parse(a[i]!.event_time) >= Date.parse(a[i - 1]!.event_time), `record ${i}`);
      assert.equal(a[i]!.ride_id, i + 1);
    }
    for (const r of a) {
      assert.match(r.driver_id, /^D\d{6}$/);
      assert.match(r.zone, /^Z\d{3}$/);
      assert.ok(r.fare > 0 && r.distance_km > 0 && r.passengers >= 1 && r.passengers <= 4);
    }
  });

  it('mulberry32 yields floats in [0, 1)', () => {
    const rnd = mulberry32(1);
    for (let i = 0; i < 10_000; i++) {
      const x = rnd();
      assert.ok(x >= 0 && x < 1);
    }
  });
});

describe('bench output normalisation', () => {
  const rec: Normalizer = { kind: 'records', fields: ['date', 'origin', 'delay'], timeFields: ['date'] };

  it('unwraps kappa streams and ignores key order, spacing, number and time spelling', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const kappa = join(dir, 'kappa.ndjson');
      const peer = join(dir, 'peer.ndjson');
      writeFileSync(
        kappa,
        [
          '{"kappa":1,"schema":{}}',
          '{"ts":978307260000,"key":null,"value":{"origin":"LAS","delay":33,"date":"2001-01-01T00:01:00Z"}}',
          '{"watermark":978307260000}',
          '{"ts":978307260000,"key":null,"value":{"date":978307260000,"origin":"ATL","delay":19.0}}',
          '{"end":true}',
          '',
        ].join('\n'),
      );
      writeFileSync(
        peer,
        '{"date": "2001-01-01 00:01:00", "origin": "ATL", "delay": 19}\n{"delay":33,"origin":"LAS","date":"2001-01-01T00:01:00.000Z"}\n',
      );
      const c = compare(await canonicalize(kappa, rec), await canonicalize(peer, rec), 'kappa', 'peer');
      assert.deepEqual(c, { equal: true, summary: 'equal (2 rows)' });
    } finally {
      cleanup();
    }
  });

  it('reports missing and wrong rows', () => {
    const a = { lines: ['a', 'b', 'b', 'c'] };
    const b = { lines: ['a', 'b', 'd'] };
    const c = compare(a, b, 'kappa', 'jq');
    assert.equal(c.equal, false);
    assert.match(c.summary, /kappa 4 rows, jq 3 rows/);
    assert.match(c.summary, /2 only in kappa/);
    assert.match(c.summary, /1 only in jq, e.g. `d`/);
  });

  it('reads window rows from DuckDB, Flink, mlr and kappa streams alike', () => {
    const w: Normalizer = { kind: 'windows', keyField: 'origin', sizeMs: 3_600_000 };
    const rows = [
      '{"key":"ATL","count":3,"avg":20.333333333333332,"max":40,"window_start":978307200000}',
      '{"key":"ATL","window_start":978307200000,"window_end":978310800000,"count":3,"avg":20.333333333333336,"max":40.0}',
      '{"origin": "ATL", "window_start": 978307200000, "delay_count": 3, "delay_mean": 20.333333333333332, "delay_max": 40}',
      '{"ts":978307200000,"key":"ATL","value":{"window_start":"2001-01-01T00:00:00Z","count":3,"avg(delay)":20.3333333333,"max(delay)":40}}',
      '{"ts":978310799999,"key":"ATL","value":{"count":3,"avg_delay":20.33333333333,"max_delay":40}}',
    ];
    const canon = rows.map((l) => canonRow(parseRow(l)!, w));
    for (const c of canon) assert.equal(c, '"ATL"|978307200000|3|20.33333333|40');
  });

  it("compares a window table's extra fields (dt) too", () => {
    const w: Normalizer = { kind: 'windows', keyField: 'origin', sizeMs: 3_600_000, extraFields: ['dt'] };
    const duck =
      '{"origin":"ATL","window_start":"2001-01-01 00:00:00","count":3,"avg_delay":20.5,"max_delay":40,"dt":"2001-01-01"}';
    const wrongDt = duck.replace('"dt":"2001-01-01"', '"dt":"2001-01-02"');
    assert.equal(canonRow(parseRow(duck)!, w), '"ATL"|978307200000|3|20.5|40|"2001-01-01"');
    assert.notEqual(canonRow(parseRow(wrongDt)!, w), canonRow(parseRow(duck)!, w));
  });

  it('parses timestamps as epoch ms', () => {
    assert.equal(normTime('2001-01-01T00:01:00Z'), 978307260000);
    assert.equal(normTime('2001-01-01 00:01:00'), 978307260000);
    assert.equal(normTime('2001-01-01'), 978307200000);
    assert.equal(normTime('2001-01-01 00:01:00+00'), 978307260000);
    assert.equal(normTime('2001-01-01 01:01:00.000+01'), 978307260000);
    assert.equal(normTime('2001-01-01T00:01:00-02:00'), 978314460000);
    assert.equal(normTime(5), 5);
    assert.equal(normTime('not a time'), 'not a time');
  });
});

describe('bench targets', () => {
  const sample = (wallMs: number) => ({ wallMs, rssKb: 1, rssMaxKb: 1, extras: {} });
  const tool = (name: string, wallMs: number, kappa = false) => ({
    name,
    kappa,
    command: name,
    status: 'ok' as const,
    samples: [sample(wallMs)],
    startupMs: {},
  });
  const base = {
    id: '1a',
    title: 't',
    records: 1_000_000,
    input: 'x',
    profile: 'full',
    runs: 1,
    date: '',
    kappa: 'k',
  };

  it('evaluates scenario 1 against jq (the pipe) and the Node loop (kappa run)', () => {
    const sc = (pipeMs: number, runMs: number | undefined) => ({
      ...base,
      group: 1,
      tools: [
        tool('kappa', pipeMs, true),
        ...(runMs === undefined ? [] : [{ ...tool('kappa-run', runMs), kappa: true }]),
        tool('jq', 3500),
        tool('node-loop', 1200),
      ],
    });
    assert.equal(evaluateTarget(sc(1000, 1100)), 'met');
    assert.equal(evaluateTarget(sc(2000, 1100)), 'missed: >= 3x jq');
    // The pipe is not held to the Node loop; the fused form is.
    assert.equal(evaluateTarget(sc(1000, 1300)), 'missed: kappa run faster than node-loop');
    assert.match(evaluateTarget(sc(1000, undefined)), /^not measured: kappa run faster than node-loop/);
  });

  it('evaluates scenario 2: 1M rows/s to NDJSON and 3M rows/s to the binary stream', () => {
    const sc = (ndjsonMs: number, binaryMs: number | undefined) => ({
      ...base,
      id: '2',
      group: 2,
      records: 3_000_000,
      tools: [
        tool('kappa', ndjsonMs, true),
        ...(binaryMs === undefined ? [] : [{ ...tool('kappa-binary', binaryMs), kappa: true }]),
      ],
    });
    assert.equal(evaluateTarget(sc(2500, 900)), 'met');
    assert.equal(evaluateTarget(sc(2500, 1100)), 'missed: >= 3M rows/s binary');
    assert.equal(evaluateTarget(sc(3500, 900)), 'missed: >= 1M rows/s');
    assert.match(evaluateTarget(sc(2500, undefined)), /^not measured: >= 3M rows\/s binary/);
  });

  it('evaluates scenario 9: the checkpointing run within 10 % of the plain one', () => {
    const sc = (ckMs: number, plainMs = 20_000) => ({
      ...base,
      id: '9',
      group: 9,
      tools: [tool('kappa', plainMs, true), { ...tool('kappa-checkpoint-10s', ckMs), kappa: true }],
    });
    assert.equal(evaluateTarget(sc(21_800)), 'met');
    assert.equal(evaluateTarget(sc(28_000)), 'missed: checkpoint overhead <= 10 %');
    // Shorter than the interval: no checkpoint before the end, so no verdict.
    assert.match(evaluateTarget(sc(1090, 1000)), /^not measured: .*ends before its first 10 s checkpoint/);
  });

  it('scenario 9: the verdict follows the checkpoints the run counted, and the notes give their cost', () => {
    const withCpu = (name: string, wallMs: number, windowCpu: number, checkpoints: number) => ({
      ...tool(name, wallMs),
      kappa: true,
      stages: ['kappa ingest x', 'kappa window', 'kappa sink -', 'node count.mjs'],
      samples: [{ ...sample(wallMs), stageCpuS: [10, windowCpu, 1, 0.1], extras: { checkpoints } }],
    });
    const sc = (checkpoints: number, ckMs: number) => ({
      ...base,
      id: '9',
      group: 9,
      tools: [withCpu('kappa', 25_000, 9, 0), withCpu('kappa-checkpoint-10s', ckMs, 12, checkpoints)],
    });
    // Long enough, but no checkpoint counted: no verdict.
    assert.match(evaluateTarget(sc(0, 26_000)), /^not measured: .*ends before its first 10 s checkpoint/);
    assert.equal(evaluateTarget(sc(2, 26_000)), 'met');
    assert.equal(evaluateTarget(sc(2, 30_000)), 'missed: checkpoint overhead <= 10 %');
    const md = renderScenario(sc(2, 26_000));
    assert.match(
      md,
      /kappa-checkpoint-10s: 2 checkpoints, wall 4\.0 % over kappa, window stage CPU 9\.00 -> 12\.00 s \(\+3\.00, 1\.50 s per checkpoint\)/,
    );
  });

  it('says when kappa did not run', () => {
    const k = { ...tool('kappa', 0, true), status: 'failed' as const, samples: [] };
    assert.equal(evaluateTarget({ ...base, group: 4, tools: [k] }), 'not measured (kappa failed)');
  });
});

describe('bench CPU per stage', () => {
  it("reads GNU time's '%M %U %S' output, after a non-zero-exit line too", () => {
    const { dir, cleanup } = tempDir();
    try {
      writeFileSync(join(dir, 'a'), '123456 2.50 0.25\n');
      writeFileSync(join(dir, 'b'), 'Command exited with non-zero status 1\n2048 0.00 0.01\n');
      assert.deepEqual(parseTimeFile(join(dir, 'a')), { rssKb: 123456, cpuS: 2.75 });
      assert.deepEqual(parseTimeFile(join(dir, 'b')), { rssKb: 2048, cpuS: 0.01 });
      assert.deepEqual(parseTimeFile(join(dir, 'missing')), { rssKb: 0, cpuS: 0 });
    } finally {
      cleanup();
    }
  });

  it('names stages and marks the busiest one', () => {
    assert.equal(stageLabel('kappa ingest "$IN" --ts-field date'), 'ingest');
    assert.equal(stageLabel('node "$BENCH_JS/peers/duckdb.js" "COPY …"'), 'node');
    assert.equal(stageLabel('"$ROOT/bench/flink/run.sh" "$IN"'), 'run.sh');
    const sample = (stageCpuS: number[]) => ({ wallMs: 1, rssKb: 1, rssMaxKb: 1, extras: {}, stageCpuS });
    const t = {
      name: 'kappa',
      kappa: true,
      command: 'kappa ingest x | kappa window y | kappa sink -',
      stages: ['kappa ingest x', 'kappa window y', 'kappa sink -'],
      status: 'ok' as const,
      samples: [sample([5, 3, 1]), sample([5.2, 2.8, 1]), sample([4.8, 3.4, 1])],
      startupMs: {},
    };
    assert.equal(cpuCell(t), '9.00 = **ingest 5.00** + window 3.00 + sink 1.00');
    assert.equal(cpuCell({ ...t, stages: ['duckdb'], samples: [sample([0.7])] }), '0.70');
    assert.equal(cpuCell({ ...t, samples: [{ wallMs: 1, rssKb: 1, rssMaxKb: 1, extras: {} }] }), '—');
  });
});

describe('bench scenarios of issue 14', () => {
  const data = { rows: 1000, ndjson: 'f.ndjson', csv: 'f.csv', parquet: 'f.parquet' };
  const sample = (wallMs: number) => ({ wallMs, rssKb: 1, rssMaxKb: 1, extras: {} });
  const tool = (name: string, wallMs: number | undefined, kappa = false) => ({
    name,
    kappa,
    command: name,
    status: wallMs === undefined ? ('failed' as const) : ('ok' as const),
    reason: wallMs === undefined ? "exit 1: error: unknown command 'run'" : undefined,
    samples: wallMs === undefined ? [] : [sample(wallMs)],
    startupMs: {},
  });
  const base = { title: 't', input: 'x', profile: 'full', runs: 1, date: '', kappa: 'k' };

  it('declares the CSV scenario and scenario 3 end to end with kappa run, DuckDB and Polars', () => {
    const csv = scenarioCsv(data);
    assert.equal(csv.input, 'f.csv');
    assert.deepEqual(
      csv.tools.map((t) => t.name),
      ['kappa', 'duckdb', 'polars'],
    );
    assert.match(csv.tools[1]!.stages[0]!, /read_csv\('\$IN'/);
    const t3 = scenario3table(data);
    assert.equal(t3.input, 'f.parquet');
    assert.deepEqual(
      t3.tools.map((t) => t.name),
      ['kappa', 'kappa-run', 'duckdb', 'polars'],
    );
    assert.equal(t3.tools[0]!.stages.length, 3);
    assert.match(t3.tools[0]!.stages[2]!, /^kappa sink "\$OUT" --partition-by 'dt=%Y-%m-%d'$/);
    assert.match(
      t3.tools[1]!.stages[0]!,
      /^kappa run "ingest '\$IN' --ts-field date \| window .* \| sink '\$OUT' --partition-by 'dt=%Y-%m-%d'"$/,
    );
    assert.match(t3.tools[2]!.stages[0]!, /PARTITION_BY \(dt\)/);
    for (const t of t3.tools) assert.match(t.collect ?? '', /hive_partitioning=true/);
    assert.ok(
      t3.tools.every((t) => t.normalize?.kind === 'windows' && t.normalize.extraFields?.[0] === 'dt'),
    );
  });

  it('runs Polars beside DuckDB in scenarios 2, 3, 4 and 6', () => {
    const names = (sc: { tools: { name: string }[] }) => sc.tools.map((t) => t.name);
    assert.ok(names(scenario2(data)).includes('polars'));
    assert.deepEqual(names(scenario3(data)).slice(0, 5), [
      'kappa',
      'kappa-run',
      'duckdb-ndjson',
      'duckdb-parquet',
      'polars-ndjson',
    ]);
    assert.ok(names(scenario4(data)).includes('polars'));
    const s6 = scenario6('rides.ndjson', 1000);
    assert.ok(names(s6).includes('polars-ndjson'));
    assert.match(s6.tools.find((t) => t.name === 'polars-ndjson')!.stages[0]!, / --float$/);
  });

  it('scenario 3 runs the piped stages fused by kappa run too, and holds both to DuckDB on NDJSON', () => {
    const s3 = scenario3(data);
    const [pipe, run] = s3.tools;
    assert.equal(run?.name, 'kappa-run');
    assert.deepEqual(run?.stages, [
      `kappa run "ingest '$IN' --ts-field date | window --key origin --tumbling 1h --agg 'count, avg(delay), max(delay)' | sink -"`,
    ]);
    assert.deepEqual(run?.normalize, pipe?.normalize);
    assert.equal(pipe?.stages.length, 3);
    const sc = (pipeMs: number, runMs: number) => ({
      ...base,
      id: '3',
      group: 3,
      records: 3_000_000,
      tools: [
        tool('kappa', pipeMs, true),
        tool('kappa-run', runMs, true),
        tool('duckdb-ndjson', 1000),
        tool('flink', 9000),
      ],
    });
    assert.equal(evaluateTarget(sc(2000, 2400)), 'met');
    assert.equal(evaluateTarget(sc(2000, 2600)), 'missed: kappa run within 2.5x of duckdb-ndjson');
    assert.equal(evaluateTarget(sc(2600, 2400)), 'missed: within 2.5x of duckdb-ndjson');
  });

  it('evaluates the end-to-end scenario 3 targets for the pipe and kappa run', () => {
    const sc = { ...base, id: '3t', group: 3, records: 3_000_000 };
    assert.equal(
      evaluateTarget({
        ...sc,
        tools: [tool('kappa', 2000, true), tool('kappa-run', 1300, true), tool('duckdb', 700)],
      }),
      'met',
    );
    assert.equal(
      evaluateTarget({
        ...sc,
        tools: [tool('kappa', 2000, true), tool('kappa-run', 1500, true), tool('duckdb', 700)],
      }),
      'missed: kappa run <= 2x duckdb',
    );
    assert.equal(
      evaluateTarget({
        ...sc,
        tools: [tool('kappa', 12300, true), tool('kappa-run', undefined, true), tool('duckdb', 690)],
      }),
      'missed: 3 processes <= 3x duckdb',
    );
    assert.equal(
      evaluateTarget({
        ...sc,
        tools: [tool('kappa', 2000, true), tool('kappa-run', undefined, true), tool('duckdb', 700)],
      }),
      'not measured: kappa run <= 2x duckdb (a tool did not run)',
    );
  });

  it('evaluates the CSV target: within 10x of DuckDB and >= 1M rows/s', () => {
    const sc = { ...base, id: '7', group: 7, records: 3_000_000 };
    assert.equal(evaluateTarget({ ...sc, tools: [tool('kappa', 2900, true), tool('duckdb', 400)] }), 'met');
    assert.equal(
      evaluateTarget({ ...sc, tools: [tool('kappa', 88000, true), tool('duckdb', 400)] }),
      'missed: within 10x of duckdb, >= 1M rows/s',
    );
  });
});
