/**
 * The benchmark scenarios of issues 5 and 14, declared as data: for each tool, the shell stages it runs
 * (simple commands, piped in order), where its output goes, and how that output is read for the
 * equality check. The harness (`bench/harness.ts`) runs them; nothing here measures anything.
 *
 * Commands see these environment variables: `IN` (input path), `OUT` (output path: the last
 * stage's stdout is redirected there unless `outputIsFile`), `CHECK` (where `collect` writes the
 * comparable output), `N` (input records), `RUN_ID` (unique per run: topic names), `ROOT` (the
 * checkout), `BENCH_JS` (compiled bench scripts), `KAFKA` (bootstrap host:port) and `KAFKA_CP`
 * (Kafka's Java classpath) and `BENCH_PYTHON` (the Python with Polars: bench/run.sh's virtualenv).
 * `kappa` on PATH is the checkout's `bin/kappa`.
 */
import { type FlightsData, sizeLabel } from './data.js';
import type { Normalizer } from './normalize.js';

/** One tool's way of running a scenario. */
export interface Tool {
  /** Short name shown in the tables (`kappa`, `jq`, `duckdb-ndjson`, …). */
  name: string;
  /** True for kappa's own command (ratios are kappa's time against each other tool). */
  kappa?: boolean;
  /** Simple commands piped in order; each runs under GNU time for its peak RSS. */
  stages: string[];
  /** True when the tool writes `$OUT` itself (then stdout is kept as the run's log). */
  outputIsFile?: boolean;
  /** Executables that must be on PATH (else the tool is reported as skipped). */
  requires?: string[];
  /**
   * Shell check run (with the scenario's environment) before the first run; when it fails the tool
   * is reported as skipped with `availableHint` (e.g. Polars not installed in `$BENCH_PYTHON`).
   */
  available?: string;
  /** Why the tool is skipped when `available` fails. */
  availableHint?: string;
  /** Untimed shell run before every run (after `$OUT` is removed). */
  setup?: string;
  /** Untimed shell run once after the last run: writes the comparable output to `$CHECK`. */
  collect?: string;
  /** How to read the output for the equality check; absent: the output is not comparable. */
  normalize?: Normalizer;
  /** Named trivial runs that measure fixed costs alone (Flink's JVM; its job on empty input), timed after each run. */
  startup?: Record<string, string[]>;
  /** Extracts extra numbers from a run's stdout log (e.g. the tool's own timing lines). */
  extras?: (stdout: string) => Record<string, number>;
  /** Free text shown under the table. */
  note?: string;
}

/** One measured comparison: same input, every tool. */
export interface Scenario {
  /** `1a`, `3`, `6-10m` … (unique; used for result file names). */
  id: string;
  /** Scenario number of the issue (1-6). */
  group: number;
  title: string;
  /** Records in the input (for records/s). */
  records: number;
  /** Input path (`$IN`). */
  input: string;
  tools: Tool[];
  /** The target, as text. */
  target?: string;
}

/** Settings of one size profile. */
export interface Profile {
  name: 'full' | 'small';
  /** Scenario 1 sizes (flights prefixes). */
  s1: number[];
  /** Flights rows for scenarios 2-4. */
  flights: number;
  /** Scenario 5 records. */
  kafka: number;
  /** Scenario 6 synthetic sizes. */
  s6: number[];
  /** Scenario 8 (interval join) sizes: rides + fares records. */
  s8: number[];
}

/** Sizes: `full` is the issue's; `small` is a quick smoke test of the harness itself. */
export const PROFILES: Record<string, Profile> = {
  full: {
    name: 'full',
    s1: [1_000_000, 3_000_000],
    flights: 3_000_000,
    kafka: 1_000_000,
    s6: [1_000_000, 3_000_000, 10_000_000],
    s8: [2_000_000, 10_000_000],
  },
  small: {
    name: 'small',
    s1: [30_000, 100_000],
    flights: 100_000,
    kafka: 20_000,
    s6: [10_000, 30_000, 100_000],
    s8: [20_000],
  },
};

const FLIGHT_FIELDS = ['date', 'delay', 'distance', 'origin', 'destination'];
const DUCK = 'node "$BENCH_JS/peers/duckdb.js"';
const FLINK = '"$ROOT/bench/flink/run.sh"';
const POLARS = '"$BENCH_PYTHON" -B "$ROOT/bench/peers/polars_peer.py"';
/** The availability check of every Polars tool. */
const POLARS_AVAILABLE = {
  available: '"$BENCH_PYTHON" -c "import polars, pyarrow"',
  availableHint: 'not installed: polars, pyarrow (bench/run.sh installs them into bench/data/py)',
} as const;
const HOUR_MS = 3_600_000;

/** Scenario 1: filter + project over NDJSON on stdin / in a file. */
export function scenario1(data: FlightsData, sub: string): Scenario {
  const norm: Normalizer = { kind: 'records', fields: ['date', 'origin', 'delay'], timeFields: ['date'] };
  return {
    id: `1${sub}`,
    group: 1,
    title: `filter + project, ${sizeLabel(data.rows)} NDJSON records (delay > 60; date, origin, delay)`,
    records: data.rows,
    input: data.ndjson,
    target: "kappa >= 3x jq's records/s; kappa run faster than the plain Node loop",
    tools: [
      {
        name: 'kappa',
        kappa: true,
        stages: [
          'kappa ingest - < "$IN"',
          "kappa transform --filter 'r.delay > 60' --select date,origin,delay",
        ],
        normalize: norm,
      },
      {
        name: 'kappa-run',
        kappa: true,
        stages: [
          `kappa run "ingest - | transform --filter 'r.delay > 60' --select date,origin,delay" < "$IN"`,
        ],
        normalize: norm,
        note: 'kappa-run: the same two stages fused in one process by `kappa run` (issue 14), one core.',
      },
      {
        name: 'jq',
        requires: ['jq'],
        stages: [`jq -c 'select(.delay > 60) | {date, origin, delay}' "$IN"`],
        normalize: norm,
      },
      {
        name: 'mlr',
        requires: ['mlr'],
        stages: [`mlr --ijsonl --ojsonl filter '$delay > 60' then cut -o -f date,origin,delay "$IN"`],
        normalize: norm,
      },
      {
        name: 'node-loop',
        stages: ['node "$ROOT/bench/peers/node-loop.mjs" "$IN" delay 60 date,origin,delay'],
        normalize: norm,
      },
    ],
  };
}

/** Scenario 2: Parquet scan to NDJSON. */
export function scenario2(data: FlightsData): Scenario {
  const norm: Normalizer = { kind: 'records', fields: FLIGHT_FIELDS, timeFields: ['date'] };
  return {
    id: '2',
    group: 2,
    title: `Parquet scan: flights ${sizeLabel(data.rows)} Parquet -> NDJSON`,
    records: data.rows,
    input: data.parquet,
    target: 'kappa >= 1M rows/s to NDJSON and >= 3M rows/s to the binary stream (issue 14)',
    tools: [
      { name: 'kappa', kappa: true, stages: ['kappa ingest "$IN" --ts-field date'], normalize: norm },
      {
        name: 'kappa-binary',
        kappa: true,
        stages: ['kappa ingest "$IN" --ts-field date --stream-format arrow'],
        note: 'kappa-binary: the same scan to the binary stream (kappa-stream(5) version 2, what a kappa stage downstream reads); its output is not compared here (the same rows reach NDJSON in the kappa row; test/e2e/stream-arrow reads the binary stream with pyarrow).',
      },
      {
        name: 'duckdb',
        stages: [`${DUCK} "COPY (SELECT * FROM read_parquet('$IN')) TO '$OUT' (FORMAT json)"`],
        outputIsFile: true,
        normalize: norm,
      },
      {
        name: 'polars',
        ...POLARS_AVAILABLE,
        stages: [`${POLARS} parquet "$IN" "$OUT"`],
        outputIsFile: true,
        normalize: norm,
        note: 'polars: `pl.scan_parquet(IN).sink_ndjson(OUT)` (bench/peers/polars_peer.py), all cores.',
      },
    ],
  };
}

/** Scenario 7 (issue 14's CSV scenario): CSV ingest of the flights to the stream / NDJSON. */
export function scenarioCsv(data: FlightsData): Scenario {
  const norm: Normalizer = { kind: 'records', fields: FLIGHT_FIELDS, timeFields: ['date'] };
  return {
    id: '7',
    group: 7,
    title: `CSV ingest: flights ${sizeLabel(data.rows)} CSV -> NDJSON`,
    records: data.rows,
    input: data.csv,
    target: "kappa within 10x of DuckDB's time and >= 1M rows/s",
    tools: [
      { name: 'kappa', kappa: true, stages: ['kappa ingest "$IN" --ts-field date'], normalize: norm },
      {
        name: 'duckdb',
        stages: [`${DUCK} "COPY (SELECT * FROM read_csv('$IN', header=true)) TO '$OUT' (FORMAT json)"`],
        outputIsFile: true,
        normalize: norm,
      },
      {
        name: 'polars',
        ...POLARS_AVAILABLE,
        stages: [`${POLARS} csv "$IN" "$OUT"`],
        outputIsFile: true,
        normalize: norm,
        note: 'polars: `pl.scan_csv(IN).sink_ndjson(OUT)` (bench/peers/polars_peer.py), types inferred, all cores.',
      },
    ],
  };
}

/** What a windowed aggregation runs over: a dataset and its key, time and value fields. */
export interface WindowInput {
  ndjson: string;
  /** Same rows as Parquet (with the time field as TIMESTAMP), if there is one. */
  parquet?: string;
  key: string;
  ts: string;
  field: string;
  /** DuckDB type of the value field. */
  fieldType: 'BIGINT' | 'DOUBLE';
}

/** SQL expression: ISO-8601 UTC text (`…T…Z`, optional fraction) -> epoch ms of its hour. */
function hourOfIso(col: string): string {
  return `(epoch_ms(CAST(replace(replace(${col}, 'T', ' '), 'Z', '') AS TIMESTAMP)) // ${HOUR_MS}) * ${HOUR_MS}`;
}

/** The tools of the tumbling-window scenarios (3 and 6). */
export function windowTools(w: WindowInput, peers: string[]): Tool[] {
  const norm: Normalizer = { kind: 'windows', keyField: w.key, sizeMs: HOUR_MS };
  const aggs = `${w.key} AS key, count(*) AS count, avg(${w.field}) AS avg, max(${w.field}) AS max`;
  const cols = `columns={${w.ts}: 'VARCHAR', ${w.key}: 'VARCHAR', ${w.field}: '${w.fieldType}'}`;
  const all: Tool[] = [
    {
      name: 'kappa',
      kappa: true,
      stages: [
        `kappa ingest "$IN" --ts-field ${w.ts}`,
        `kappa window --key ${w.key} --tumbling 1h --agg 'count, avg(${w.field}), max(${w.field})'`,
        'kappa sink -',
      ],
      normalize: norm,
    },
    {
      name: 'duckdb-ndjson',
      stages: [
        `${DUCK} "COPY (SELECT ${aggs}, ${hourOfIso(w.ts)} AS window_start FROM read_json('$IN', format='newline_delimited', ${cols}) GROUP BY ALL) TO '$OUT' (FORMAT json)"`,
      ],
      outputIsFile: true,
      normalize: norm,
    },
    {
      name: 'polars-ndjson',
      ...POLARS_AVAILABLE,
      stages: [
        `${POLARS} window "$IN" "$OUT" --key ${w.key} --ts ${w.ts} --field ${w.field}${w.fieldType === 'DOUBLE' ? ' --float' : ''}`,
      ],
      outputIsFile: true,
      normalize: norm,
      note: 'polars-ndjson: `scan_ndjson` (typed schema) -> `group_by(key, ts.str.to_datetime().dt.truncate("1h"))` -> `write_ndjson` (bench/peers/polars_peer.py), all cores.',
    },
    {
      name: 'flink',
      requires: ['java'],
      stages: [`${FLINK} "$IN" "$OUT" --key ${w.key} --ts ${w.ts} --field ${w.field}`],
      outputIsFile: true,
      startup: {
        'JVM start-up s (no-op main)': [`${FLINK} --noop`],
        'empty-input job s': [
          `${FLINK} "$ROOT/bench/flink/empty.ndjson" "$OUT.empty" --key ${w.key} --ts ${w.ts} --field ${w.field}`,
        ],
      },
      extras: flinkTiming,
      normalize: norm,
      note: 'flink: Flink 1.20 DataStream job in local mode (MiniCluster, parallelism 2, streaming execution, event-time tumbling window, bounded out-of-orderness 0). Its wall time includes JVM and MiniCluster start-up. "JVM start-up" is a run of the same JVM whose main() returns at once; "empty-input job" is the whole job over an empty file (JVM + local cluster + job deploy and teardown: the fixed cost of Flink); "in-job" is from main() to the end of the job, as the job itself reports.',
    },
    {
      name: 'mlr',
      requires: ['mlr'],
      stages: [
        `mlr --ijsonl --ojsonl put '$window_start = int(gmt2sec($${w.ts}) / 3600) * ${HOUR_MS}' then stats1 -a count,mean,max -f ${w.field} -g ${w.key},window_start "$IN"`,
      ],
      normalize: norm,
    },
  ];
  if (w.parquet) {
    all.splice(2, 0, {
      name: 'duckdb-parquet',
      stages: [
        `${DUCK} "COPY (SELECT ${aggs}, (epoch_ms(${w.ts}) // ${HOUR_MS}) * ${HOUR_MS} AS window_start FROM read_parquet('${w.parquet}') GROUP BY ALL) TO '$OUT' (FORMAT json)"`,
      ],
      outputIsFile: true,
      normalize: norm,
      note: 'duckdb-parquet reads the same rows from Parquet instead of NDJSON.',
    });
  }
  return all.filter((t) => t.kappa || peers.includes(t.name));
}

/** Parses the Flink job's `FLINK_TIMING …` line into seconds. */
export function flinkTiming(stdout: string): Record<string, number> {
  const m = /FLINK_TIMING jvm_start_ms=(\d+) main_start_ms=(\d+) job_end_ms=(\d+)/.exec(stdout);
  if (!m) return {};
  const [jvm, main, end] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return { 'JVM to main() s': (main - jvm) / 1000, 'in-job s': (end - main) / 1000 };
}

/** Scenario 3: tumbling 1h window per origin over flights. */
export function scenario3(data: FlightsData): Scenario {
  return {
    id: '3',
    group: 3,
    title: `tumbling 1h window per origin, count/avg/max(delay), flights ${sizeLabel(data.rows)}`,
    records: data.rows,
    input: data.ndjson,
    target:
      'kappa within 2.5x of DuckDB on NDJSON (issue 14; issue 5 asked 2x), also kappa run; faster than Flink local including its start-up',
    tools: withKappaRun(
      windowTools(
        {
          ndjson: data.ndjson,
          parquet: data.parquet,
          key: 'origin',
          ts: 'date',
          field: 'delay',
          fieldType: 'BIGINT',
        },
        ['duckdb-ndjson', 'duckdb-parquet', 'polars-ndjson', 'flink', 'mlr'],
      ),
    ),
  };
}

/**
 * Scenario 3's tools with `kappa-run` after the piped kappa: the same three stages fused by
 * `kappa run`, which reads only date, origin and delay from the NDJSON (column projection).
 */
function withKappaRun(tools: Tool[]): Tool[] {
  const [kappa, ...rest] = tools;
  // $IN expands inside the double quotes; the single quotes are kappa run's own quoting.
  const runArg = kappa.stages.map((s) => s.replace(/^kappa /, '').replaceAll('"', "'")).join(' | ');
  return [
    kappa,
    {
      name: 'kappa-run',
      kappa: true,
      stages: [`kappa run "${runArg}"`],
      normalize: kappa.normalize,
      note: 'kappa-run: the same three stages fused in one process by `kappa run` (issue 14); the NDJSON scanner keeps only the fields the window reads (date, origin, delay), one core.',
    },
    ...rest,
  ];
}

/** The kappa stage text of scenario 3t's job (without the leading `kappa`), for the pipe and for `kappa run`. */
const S3T_STAGES = [
  'ingest "$IN" --ts-field date',
  "window --key origin --tumbling 1h --agg 'count, avg(delay), max(delay)'",
  `sink "$OUT" --partition-by 'dt=%Y-%m-%d'`,
];

/**
 * Scenario 3t (issue 14's scenario-3 reference): Parquet -> tumbling 1 h window per origin
 * (count/avg/max of delay) -> `dt=YYYY-MM-DD`-partitioned Parquet table, end to end. Every table is
 * read back through DuckDB (hive partitioning, so `dt` is compared too).
 */
export function scenario3table(data: FlightsData): Scenario {
  const norm: Normalizer = { kind: 'windows', keyField: 'origin', sizeMs: HOUR_MS, extraFields: ['dt'] };
  const collect = `${DUCK} "COPY (SELECT * FROM read_parquet('$OUT/**/*.parquet', hive_partitioning=true, union_by_name=true)) TO '$CHECK' (FORMAT json)"`;
  const hour = "date_trunc('hour', date)";
  // `kappa run 'A | B | C'`: the same stages, one argument; $IN/$OUT expand inside the double quotes
  const runArg = S3T_STAGES.join(' | ').replaceAll('"', "'");
  return {
    id: '3t',
    group: 3,
    title: `Parquet -> tumbling 1h window per origin, count/avg/max(delay) -> dt= Parquet table, flights ${sizeLabel(data.rows)}`,
    records: data.rows,
    input: data.parquet,
    target: 'kappa (3 processes) <= 3x DuckDB; kappa run <= 2x DuckDB',
    tools: [
      {
        name: 'kappa',
        kappa: true,
        stages: S3T_STAGES.map((s) => `kappa ${s}`),
        outputIsFile: true,
        collect,
        normalize: norm,
      },
      {
        name: 'kappa-run',
        kappa: true,
        stages: [`kappa run "${runArg}"`],
        outputIsFile: true,
        collect,
        normalize: norm,
        note: 'kappa-run: the same three stages fused in one process by `kappa run` (issue 14): no encoding between the stages, one core.',
      },
      {
        name: 'duckdb',
        stages: [
          `${DUCK} "COPY (SELECT origin, ${hour} AS window_start, ${hour} + INTERVAL 1 HOUR AS window_end, count(*) AS count, avg(delay) AS avg_delay, max(delay) AS max_delay, strftime(${hour}, '%Y-%m-%d') AS dt FROM read_parquet('$IN') GROUP BY ALL) TO '$OUT' (FORMAT parquet, PARTITION_BY (dt))"`,
        ],
        outputIsFile: true,
        collect,
        normalize: norm,
      },
      {
        name: 'polars',
        ...POLARS_AVAILABLE,
        stages: [`${POLARS} window-table "$IN" "$OUT" --key origin --ts date --field delay`],
        outputIsFile: true,
        collect,
        normalize: norm,
        note: 'polars: `scan_parquet` -> `group_by(origin, date.dt.truncate("1h"))` -> `write_parquet(OUT, partition_by="dt")` (bench/peers/polars_peer.py), all cores.',
      },
    ],
  };
}

/** Scenario 4: partitioned Parquet write. */
export function scenario4(data: FlightsData): Scenario {
  const norm: Normalizer = {
    kind: 'records',
    fields: [...FLIGHT_FIELDS, 'dt'],
    timeFields: ['date'],
  };
  // both outputs are read back by DuckDB (hive partitioning: dt comes from the folder names)
  const collect = `${DUCK} "COPY (SELECT * FROM read_parquet('$OUT/**/*.parquet', hive_partitioning=true, union_by_name=true)) TO '$CHECK' (FORMAT json)"`;
  return {
    id: '4',
    group: 4,
    title: `partitioned Parquet write: flights ${sizeLabel(data.rows)} NDJSON -> dt=YYYY-MM-DD Parquet table`,
    records: data.rows,
    input: data.ndjson,
    target: 'kappa >= 1M rows/s (issue 14; issue 5 asked 500k)',
    tools: [
      {
        name: 'kappa',
        kappa: true,
        stages: ['kappa ingest "$IN" --ts-field date', `kappa sink "$OUT" --partition-by 'dt=%Y-%m-%d'`],
        outputIsFile: true,
        collect,
        normalize: norm,
      },
      {
        name: 'duckdb',
        stages: [
          `${DUCK} "COPY (SELECT *, strftime(CAST(replace(replace(date, 'T', ' '), 'Z', '') AS TIMESTAMP), '%Y-%m-%d') AS dt FROM read_json('$IN', format='newline_delimited', columns={date: 'VARCHAR', delay: 'BIGINT', distance: 'BIGINT', origin: 'VARCHAR', destination: 'VARCHAR'})) TO '$OUT' (FORMAT parquet, PARTITION_BY (dt))"`,
        ],
        outputIsFile: true,
        collect,
        normalize: norm,
      },
      {
        name: 'polars',
        ...POLARS_AVAILABLE,
        stages: [`${POLARS} table "$IN" "$OUT" --ts date`],
        outputIsFile: true,
        collect,
        normalize: norm,
        note: 'polars: `scan_ndjson` (typed schema) + `dt` from `date` -> `write_parquet(OUT, partition_by="dt")` (bench/peers/polars_peer.py), all cores.',
      },
    ],
  };
}

const TOPIC =
  'java -cp "$KAFKA_CP" -Dlog4j.configuration="file:$ROOT/bench/kafka/log4j.properties" org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA" --create --partitions 4 --replication-factor 1 --topic';
const KAFKA_JAVA =
  'java -Xmx2g -cp "$KAFKA_CP" -Dlog4j.configuration="file:$ROOT/bench/kafka/log4j.properties"';

/** Name of the topic scenario 5b consumes (produced once, untimed, by kcat). */
export const CONSUME_TOPIC = 'bench-consume';

/** Scenario 5a: produce N small records to a fresh 4-partition topic per run. */
export function scenario5produce(data: FlightsData): Scenario {
  const norm: Normalizer = { kind: 'records', fields: FLIGHT_FIELDS, timeFields: ['date'] };
  const collect = 'kcat -C -b "$KAFKA" -t "p-$RUN_ID" -o beginning -e -q > "$CHECK"';
  return {
    id: '5a',
    group: 5,
    title: `Kafka produce: ${sizeLabel(data.rows)} NDJSON records (~95 B) to a 4-partition topic (acks=all defaults)`,
    records: data.rows,
    input: data.ndjson,
    target: 'kappa >= 200k records/s; within 2x of kcat',
    tools: [
      {
        name: 'kappa',
        kappa: true,
        setup: `${TOPIC} "p-$RUN_ID" > /dev/null`,
        stages: ['kappa ingest "$IN"', 'kappa sink "kafka://$KAFKA/p-$RUN_ID"'],
        collect,
        normalize: norm,
      },
      {
        name: 'kcat',
        requires: ['kcat', 'java'],
        setup: `${TOPIC} "p-$RUN_ID" > /dev/null`,
        stages: ['kcat -P -b "$KAFKA" -t "p-$RUN_ID" -l "$IN"'],
        collect,
        normalize: norm,
      },
      {
        name: 'kafka-producer-perf',
        requires: ['java'],
        setup: `${TOPIC} "p-$RUN_ID" > /dev/null`,
        stages: [
          `${KAFKA_JAVA} org.apache.kafka.tools.ProducerPerformance --topic "p-$RUN_ID" --num-records "$N" --payload-file "$IN" --throughput -1 --producer-props bootstrap.servers="$KAFKA"`,
        ],
        outputIsFile: true,
        extras: (s): Record<string, number> => {
          const m = /(\d+) records sent, ([\d.]+) records\/sec/.exec(s);
          return m ? { 'own records/s': Number(m[2]) } : {};
        },
        note: 'kafka-producer-perf sends random lines of the same file (--payload-file), so its output is not compared; "own records/s" is its self-reported rate (excludes JVM start-up).',
      },
    ],
  };
}

/** Scenario 5b: consume the N records of a 4-partition topic from earliest to the end. */
export function scenario5consume(data: FlightsData): Scenario {
  const norm: Normalizer = { kind: 'records', fields: FLIGHT_FIELDS, timeFields: ['date'] };
  return {
    id: '5b',
    group: 5,
    title: `Kafka consume: ${sizeLabel(data.rows)} records from a 4-partition topic, earliest to end`,
    records: data.rows,
    input: data.ndjson,
    target: 'kappa >= 200k records/s; within 2x of kcat',
    tools: [
      {
        name: 'kappa',
        kappa: true,
        stages: [`kappa ingest "kafka://$KAFKA/${CONSUME_TOPIC}" --from earliest --until latest`],
        normalize: norm,
      },
      {
        name: 'kcat',
        requires: ['kcat'],
        stages: [`kcat -C -b "$KAFKA" -t ${CONSUME_TOPIC} -o beginning -e -q`],
        normalize: norm,
      },
      {
        name: 'kafka-consumer-perf',
        requires: ['java'],
        stages: [
          `${KAFKA_JAVA} org.apache.kafka.tools.ConsumerPerformance --bootstrap-server "$KAFKA" --topic ${CONSUME_TOPIC} --messages "$N" --timeout 60000`,
        ],
        outputIsFile: true,
        extras: (s): Record<string, number> => {
          // header line, then: start, end, MB, MB/s, nMsg, nMsg/s, rebalance ms, fetch ms, fetch MB/s, fetch nMsg/s
          const row = s
            .split('\n')
            .map((l) => l.split(',').map((x) => x.trim()))
            .find((f) => f.length >= 6 && /^\d/.test(f[0] ?? '') && !Number.isNaN(Number(f[5])));
          return row ? { 'own records/s': Number(row[5]) } : {};
        },
        note: 'kafka-consumer-perf discards what it reads, so its output is not compared; "own records/s" is its self-reported rate.',
      },
    ],
  };
}

/** Scenario 6: scenario 3's pipeline on synthetic rides (window per zone over fare). */
export function scenario6(ridesPath: string, count: number): Scenario {
  return {
    id: `6-${sizeLabel(count)}`,
    group: 6,
    title: `scaling: tumbling 1h window per zone, count/avg/max(fare), ${sizeLabel(count)} synthetic rides`,
    records: count,
    input: ridesPath,
    target: 'kappa time linear in size; peak RSS at the largest size <= 1.5x that at the smallest',
    tools: windowTools(
      { ndjson: ridesPath, key: 'zone', ts: 'event_time', field: 'fare', fieldType: 'DOUBLE' },
      ['duckdb-ndjson', 'polars-ndjson', 'flink'],
    ),
  };
}

/**
 * Scenario 8 (issue 12): an interval join of rides with the fares paid within 2 h, inner, on the
 * ride id; fares shuffled within 5 min. kappa: `ingest rides | join --right <(ingest fares) |
 * sink`; the fares' ingest runs in a process substitution, so its RSS is not in the sum. DuckDB:
 * the same join in SQL over both NDJSON files. State stays bounded when cleanup works: peak RSS
 * at 10M ~ at 2M.
 */
export function scenarioJoin(ridesPath: string, count: number): Scenario {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, for bash
  const fares = '"${IN%-rides.ndjson}-fares.ndjson"';
  const norm: Normalizer = { kind: 'records', fields: ['ride_id', 'fare_id'] };
  const ingest = (f: string) => `kappa ingest ${f} --ts-field event_time --max-out-of-orderness 5m -q`;
  return {
    id: `8-${sizeLabel(count)}`,
    group: 8,
    title: `interval join: rides with fares within 2h on ride_id (inner), ${sizeLabel(count)} records`,
    records: count,
    input: ridesPath,
    target: 'peak RSS flat in the input size (state cleaned as the watermark passes)',
    tools: [
      {
        name: 'kappa',
        kappa: true,
        stages: [
          ingest('"$IN"'),
          `kappa join --right <(${ingest(fares)}) --on ride_id --within 2h -q`,
          'kappa sink - -q',
        ],
        normalize: norm,
      },
      {
        name: 'duckdb-ndjson',
        stages: [
          `${DUCK} "COPY (SELECT r.ride_id, f.fare_id FROM read_json('$IN') r JOIN read_json(${fares.replace(/"/g, "'")}) f ON r.ride_id = f.ride_id AND f.event_time BETWEEN r.event_time AND r.event_time + INTERVAL 2 HOUR) TO '$OUT' (FORMAT json)"`,
        ],
        outputIsFile: true,
        normalize: norm,
      },
    ],
  };
}

/** Scenario 3's kappa stages (NDJSON flights, tumbling 1 h window per origin, to stdout), optionally checkpointing. */
function windowPipeline(checkpoint: string): string[] {
  return [
    `kappa ingest "$IN" --ts-field date${checkpoint}`,
    "kappa window --key origin --tumbling 1h --agg 'count, avg(delay), max(delay)'",
    'kappa sink -',
  ];
}

/**
 * Scenario 9 (issue 9, acceptance 4): checkpointing overhead on scenario 3's pipeline (NDJSON
 * flights, tumbling 1 h window per origin, no watermark before the end, so every window stays
 * open and each checkpoint snapshots all of them), without and with `--checkpoint-interval 10s`
 * (and 3 s). The input is the flights `times` times over (`prepareFlightsRepeated`), so the run
 * lasts long enough for several 10 s checkpoints. Every tool ends with
 * `bench/peers/checkpoint-count.mjs`, which prints `checkpoints N` (the checkpoints with state the
 * run took; 0 without a checkpoint dir), so all rows pay the same last stage.
 * @param input the repeated flights NDJSON; `records` its row count, `times` the copies
 */
export function scenarioCheckpoint(input: string, records: number, times = 3): Scenario {
  const count = (dir: string) => `node "$ROOT/bench/peers/checkpoint-count.mjs" "${dir}"`;
  const extras = (stdout: string): Record<string, number> => {
    const m = /^checkpoints (\d+)$/m.exec(stdout);
    return m ? { checkpoints: Number(m[1]) } : {};
  };
  return {
    id: '9',
    group: 9,
    title: `checkpoint overhead: scenario 3's window pipeline, flights ${sizeLabel(records)} (${sizeLabel(records / times)} ${times} times over), without and with --checkpoint-interval 10s`,
    records,
    input,
    target: 'checkpointing at a 10 s interval costs <= 10 % (issue 9)',
    tools: [
      {
        name: 'kappa',
        kappa: true,
        stages: [...windowPipeline(''), count('$OUT.none')],
        outputIsFile: true,
        extras,
      },
      {
        name: 'kappa-checkpoint-10s',
        kappa: true,
        setup: 'rm -rf "$OUT.ck"',
        stages: [
          ...windowPipeline(' --checkpoint-dir "$OUT.ck" --checkpoint-interval 10s'),
          count('$OUT.ck'),
        ],
        outputIsFile: true,
        extras,
        note: 'kappa-checkpoint-10s: the same stages with `--checkpoint-dir` and `--checkpoint-interval 10s` on the source: every 10 s the window stage copies all its open windows from memory and writes them (Parquet by key group) in the background, holding the barrier until the part is written; the stdout sink completes the checkpoint. `checkpoints`: how many checkpoints with state the run took (the last one, at the end of the input after the windows fired, holds none and is not counted).',
      },
      {
        name: 'kappa-checkpoint-3s',
        kappa: true,
        setup: 'rm -rf "$OUT.ck3"',
        stages: [
          ...windowPipeline(' --checkpoint-dir "$OUT.ck3" --checkpoint-interval 3s'),
          count('$OUT.ck3'),
        ],
        outputIsFile: true,
        extras,
        note: 'kappa-checkpoint-3s: the same with a 3 s interval, so that the run takes many checkpoints (each of all open windows, up to ~424k).',
      },
    ],
  };
}

/**
 * Scenario 9s (issue 9, acceptance 4): taking and restoring a savepoint of `count` open windows
 * (`count` distinct keys within one day, tumbling 1 day). Tools: `fire` (the windows fire at the end
 * of input, no checkpointing: the baseline), `savepoint` (`--savepoint-at-end`: the windows go to a
 * savepoint instead), `restore` (empty input, `--from-savepoint` of that savepoint and
 * `--savepoint-at-end` again: restore plus a second take) and `empty` (empty input, no restore:
 * start-up alone). `take_ms` is measured from the savepoint's files (bench/peers/savepoint-timing.mjs).
 */
export function scenarioSavepoint(keysPath: string, count: number): Scenario {
  const window = 'kappa window --key k --tumbling 1d --agg count';
  const timing = 'node "$ROOT/bench/peers/savepoint-timing.mjs" "$OUT.ck"';
  const extras = (stdout: string): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const m of stdout.matchAll(/^(take_ms|state_mib) ([\d.]+)$/gm)) out[m[1]] = Number(m[2]);
    return out;
  };
  const take = `kappa ingest "$IN" --ts-field ts --checkpoint-dir "$OUT.ck" --savepoint-at-end -q | ${window} -q | kappa sink - -q > /dev/null`;
  return {
    id: `9s-${sizeLabel(count)}`,
    group: 8,
    title: `savepoint of ${sizeLabel(count)} open windows: take (--savepoint-at-end) and restore (--from-savepoint)`,
    records: count,
    input: keysPath,
    tools: [
      {
        name: 'kappa-fire',
        kappa: true,
        stages: [`kappa ingest "$IN" --ts-field ts`, window, 'kappa sink -'],
        note: `kappa-fire: ${sizeLabel(count)} distinct keys, the windows fire at the end (no checkpointing): the baseline.`,
      },
      {
        name: 'kappa-savepoint',
        kappa: true,
        setup: 'rm -rf "$OUT.ck"',
        stages: [
          `kappa ingest "$IN" --ts-field ts --checkpoint-dir "$OUT.ck" --savepoint-at-end`,
          window,
          'kappa sink -',
          timing,
        ],
        outputIsFile: true,
        extras,
        note: "kappa-savepoint: the same input with `--savepoint-at-end`: the open windows go to a savepoint (Parquet by key group) instead of firing; take_ms is from the source's barrier part to `_metadata.json`.",
      },
      {
        name: 'kappa-restore',
        kappa: true,
        setup: `rm -rf "$OUT.ck" "$OUT.sp" && : > "$OUT.empty.ndjson" && ${take} && mv "$OUT.ck"/savepoints/savepoint-* "$OUT.sp" && rm -rf "$OUT.ck"`,
        stages: [
          `kappa ingest "$OUT.empty.ndjson" --ts-field ts --uid empty --checkpoint-dir "$OUT.ck" --from-savepoint "$OUT.sp" --savepoint-at-end`,
          `${window} --from-savepoint "$OUT.sp"`,
          `kappa sink - --from-savepoint "$OUT.sp"`,
          timing,
        ],
        outputIsFile: true,
        extras,
        note: "kappa-restore: empty input (under a new source uid, so the saved file position does not apply), `--from-savepoint` of a savepoint taken (untimed) by kappa-savepoint's pipeline, then `--savepoint-at-end` again so nothing fires. On the empty input the source writes its barrier part at once, while the window stage is still restoring, so take_ms here spans the restore and the second take: restore ≈ this take_ms − kappa-savepoint's take_ms.",
      },
      {
        name: 'kappa-empty',
        kappa: true,
        setup: 'rm -rf "$OUT.ck" && : > "$OUT.empty.ndjson"',
        stages: [
          `kappa ingest "$OUT.empty.ndjson" --ts-field ts --checkpoint-dir "$OUT.ck" --savepoint-at-end`,
          window,
          'kappa sink -',
          timing,
        ],
        outputIsFile: true,
        extras,
        note: 'kappa-empty: empty input, no restore, `--savepoint-at-end`: the fixed cost of three processes and an empty savepoint.',
      },
    ],
  };
}
