/**
 * The flight data for the window/transform acceptance tests, as a kappa stream command: the
 * bundled Parquet file read by `kappa ingest` (timestamps arrive as epoch ms, typed in the header).
 */
import { DuckDBInstance } from '@duckdb/node-api';
import { FLIGHTS } from '../helpers.js';

/** The shell command that ingests the flights Parquet file (kept async for callers written against the NDJSON variant). */
export async function ingestFlights(_dir?: string): Promise<string> {
  return `kappa ingest '${FLIGHTS}' --ts-field date -q`;
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
