/**
 * The flight data for the window/transform acceptance tests, as a kappa stream command.
 *
 * Parquet ingest is not on this branch yet, so the tests have DuckDB write the Parquet file as
 * NDJSON and ingest that. When Parquet ingest lands, switch INGEST_FLIGHTS to
 * `kappa ingest ${FLIGHTS} --ts-field date -q` (one line).
 */
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { FLIGHTS } from '../helpers.js';

/** Writes flights-3m as NDJSON into `dir` and returns the shell command that ingests it. */
export async function ingestFlights(dir: string): Promise<string> {
  const ndjson = join(dir, 'flights.ndjson');
  const db = await DuckDBInstance.create();
  const c = await db.connect();
  await c.run(`COPY (SELECT * FROM '${FLIGHTS}') TO '${ndjson}' (FORMAT json)`);
  c.closeSync();
  // INGEST_FLIGHTS: switch to `kappa ingest '${FLIGHTS}' --ts-field date -q` once Parquet ingest is merged.
  return `kappa ingest '${ndjson}' --ts-field date -q`;
}

/** Runs a query on the flights Parquet file (as view `flights`) and returns its rows as objects. */
export async function duck(sql: string): Promise<Record<string, unknown>[]> {
  const db = await DuckDBInstance.create();
  const c = await db.connect();
  await c.run(`CREATE VIEW flights AS SELECT * FROM '${FLIGHTS}'`);
  const r = await c.runAndReadAll(sql);
  const rows = r.getRowObjectsJson() as Record<string, unknown>[];
  c.closeSync();
  return rows;
}
