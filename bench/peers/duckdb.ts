/**
 * DuckDB peer: runs SQL statements (one argument each) in an in-memory DuckDB via `@duckdb/node-api`,
 * the same engine build the tests use as their oracle. Usage:
 * `node dist/bench/peers/duckdb.js "COPY (SELECT …) TO 'out.json' (FORMAT json)" …`.
 * DuckDB uses all cores (its default `threads`); exits 1 with DuckDB's message on error.
 */
import { DuckDBInstance } from '@duckdb/node-api';

async function main(statements: string[]): Promise<void> {
  const db = await DuckDBInstance.create(':memory:');
  const con = await db.connect();
  for (const sql of statements) await con.run(sql);
  con.closeSync();
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`duckdb: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
