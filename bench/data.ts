/**
 * Benchmark input data, prepared once into `bench/data/` (gitignored) and reused:
 * - flights: `node_modules/vega-datasets/data/flights-3m.parquet` (3M rows, sorted by `date`)
 *   converted by DuckDB to NDJSON and CSV with `date` as ISO-8601 UTC text (`2001-01-01T00:01:00Z`),
 *   plus prefixes of it (first N rows, same order) for smaller sizes;
 * - rides: the seeded synthetic generator (`bench/gen.ts`, seed 42) at each size;
 * - join inputs: rides and their fares (`bench/gen-join.ts`, seed 42), for scenario 8.
 * Files are written under a temporary name and renamed when complete, so an interrupted run never
 * leaves a truncated input behind.
 */
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { writeRides } from './gen.js';
import { writeJoinInputs } from './gen-join.js';

/** `3m`, `100k`, `1m` … for a record count. */
export function sizeLabel(n: number): string {
  if (n % 1_000_000 === 0) return `${n / 1_000_000}m`;
  if (n % 1000 === 0) return `${n / 1000}k`;
  return String(n);
}

/** The flights file shipped by vega-datasets. */
export function flightsParquetSource(root: string): string {
  return join(root, 'node_modules', 'vega-datasets', 'data', 'flights-3m.parquet');
}

async function duck(statements: string[]): Promise<void> {
  const db = await DuckDBInstance.create(':memory:');
  const con = await db.connect();
  for (const s of statements) await con.run(s);
  con.closeSync();
}

function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/** Runs `make(tmpPath)` unless `path` exists, then renames the result into place. */
async function once(path: string, make: (tmp: string) => Promise<void> | void): Promise<string> {
  if (existsSync(path)) return path;
  const tmp = `${path}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  process.stderr.write(`bench: preparing ${path}\n`);
  await make(tmp);
  renameSync(tmp, path);
  return path;
}

/** Paths of the prepared flights files for one row count. */
export interface FlightsData {
  rows: number;
  ndjson: string;
  csv: string;
  parquet: string;
}

/**
 * Prepares the first `rows` flights (all 3M when rows = 3,000,000) as NDJSON, CSV and Parquet
 * (the Parquet is the vega-datasets file itself at 3M).
 */
export async function prepareFlights(root: string, dataDir: string, rows: number): Promise<FlightsData> {
  mkdirSync(dataDir, { recursive: true });
  const src = flightsParquetSource(root);
  const label = sizeLabel(rows);
  const select = `SELECT strftime(date, '%Y-%m-%dT%H:%M:%SZ') AS date, delay, distance, origin, destination FROM read_parquet(${sqlString(src)}) LIMIT ${rows}`;
  const parquet =
    rows >= 3_000_000
      ? src
      : await once(join(dataDir, `flights-${label}.parquet`), (tmp) =>
          duck([
            `COPY (SELECT * FROM read_parquet(${sqlString(src)}) LIMIT ${rows}) TO ${sqlString(tmp)} (FORMAT parquet)`,
          ]),
        );
  const ndjson = await once(join(dataDir, `flights-${label}.ndjson`), (tmp) =>
    duck([`COPY (${select}) TO ${sqlString(tmp)} (FORMAT json)`]),
  );
  const csv = await once(join(dataDir, `flights-${label}.csv`), (tmp) =>
    duck([`COPY (${select}) TO ${sqlString(tmp)} (FORMAT csv, HEADER true)`]),
  );
  return { rows, ndjson, csv, parquet };
}

/** Prepares `count` synthetic rides (seed 42) as NDJSON; returns the path. */
export async function prepareRides(dataDir: string, count: number): Promise<string> {
  mkdirSync(dataDir, { recursive: true });
  return once(join(dataDir, `rides-${sizeLabel(count)}.ndjson`), (tmp) => {
    const fd = openSync(tmp, 'w');
    try {
      writeRides({ count, seed: 42 }, fd);
    } finally {
      closeSync(fd);
    }
  });
}

/**
 * Rides and fares of the join scenario (about `records` records in both files together): the
 * rides path (`$IN`); the fares are beside it, `…-fares.ndjson` for `…-rides.ndjson`.
 */
export async function prepareJoin(dataDir: string, records: number): Promise<string> {
  mkdirSync(dataDir, { recursive: true });
  const rides = join(dataDir, `join-${sizeLabel(records)}-rides.ndjson`);
  const fares = join(dataDir, `join-${sizeLabel(records)}-fares.ndjson`);
  if (existsSync(rides) && existsSync(fares)) return rides;
  process.stderr.write(`bench: preparing ${rides} and ${fares}\n`);
  writeJoinInputs(records, `${rides}.tmp`, `${fares}.tmp`);
  renameSync(`${fares}.tmp`, fares);
  renameSync(`${rides}.tmp`, rides);
  return rides;
}

/**
 * Prepares `count` records with distinct keys (`{"ts":"2024-01-01T…Z","k":"key-<i>","v":<i>}`,
 * all within the first hour of 2024-01-01) as NDJSON: a tumbling 1-day window over them holds
 * `count` open windows at the end of the input (the savepoint scenario). Returns the path.
 */
export async function prepareOpenWindowKeys(dataDir: string, count: number): Promise<string> {
  mkdirSync(dataDir, { recursive: true });
  return once(join(dataDir, `keys-${sizeLabel(count)}.ndjson`), (tmp) =>
    duck([
      `COPY (SELECT strftime(TIMESTAMP '2024-01-01' + to_milliseconds(i % 3600000), '%Y-%m-%dT%H:%M:%S.%gZ') AS ts, 'key-' || i AS k, i AS v FROM range(${count}) t(i)) TO ${sqlString(tmp)} (FORMAT json)`,
    ]),
  );
}

/**
 * Prepares `times` copies of the flights NDJSON one after the other (`flights-3m-x3.ndjson` for 3M
 * rows and 3 copies): a run long enough for several 10 s checkpoints (scenario 9). The copies are
 * identical, so event time jumps back at each copy; without a watermark nothing is late and the
 * same windows (all of them open) are updated again in each copy. Returns the path.
 */
export function prepareFlightsRepeated(dataDir: string, data: FlightsData, times: number): Promise<string> {
  return once(join(dataDir, `flights-${sizeLabel(data.rows)}-x${times}.ndjson`), (tmp) => {
    copyFileSync(data.ndjson, tmp);
    const chunk = readFileSync(data.ndjson);
    const fd = openSync(tmp, 'a');
    try {
      for (let i = 1; i < times; i++) for (let at = 0; at < chunk.length; ) at += writeSync(fd, chunk, at);
    } finally {
      closeSync(fd);
    }
  });
}
