import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { generateRides } from '../../bench/gen.js';
import { canonicalize, compare } from '../../bench/normalize.js';
import { scenario3table, scenarioCsv, type Tool } from '../../bench/scenarios.js';
import { FLIGHTS, ROOT, sh, tempDir } from '../helpers.js';

/** Runs a scenario tool's declared stages (and its collect step) as the harness does; returns the path to compare. */
async function runTool(t: Tool, input: string, dir: string): Promise<string> {
  const env = {
    IN: input,
    OUT: join(dir, `${t.name}.out`),
    CHECK: join(dir, `${t.name}.check`),
    ROOT,
    BENCH_JS: join(ROOT, 'dist', 'bench'),
  };
  const script = `${t.stages.join(' | ')}${t.outputIsFile ? '' : ' > "$OUT"'}`;
  const r = await sh(script, { env });
  assert.equal(r.code, 0, `${t.name}: ${r.stderr}`);
  if (t.collect) {
    const c = await sh(t.collect, { env });
    assert.equal(c.code, 0, `${t.name} collect: ${c.stderr}`);
    return env.CHECK;
  }
  return env.OUT;
}

describe('bench harness against the real kappa', () => {
  it("kappa ingest's stream of generated rides normalises equal to the rides file", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const rides = join(dir, 'rides.ndjson');
      writeFileSync(
        rides,
        [...generateRides({ count: 500, seed: 3 })].map((r) => `${JSON.stringify(r)}\n`).join(''),
      );
      const r = await sh(`kappa ingest "${rides}" --ts-field event_time --quiet > "${dir}/out.ndjson"`);
      assert.equal(r.code, 0, r.stderr);
      const n = { kind: 'records' as const, timeFields: ['event_time'] };
      const c = compare(
        await canonicalize(join(dir, 'out.ndjson'), n),
        await canonicalize(rides, n),
        'kappa',
        'file',
      );
      assert.deepEqual(c, { equal: true, summary: 'equal (500 rows)' });
    } finally {
      cleanup();
    }
  });

  it("scenario 3t's kappa pipe writes the same dt= table as its DuckDB COPY … PARTITION_BY (dt)", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const parquet = join(dir, 'flights.parquet');
      const db = await DuckDBInstance.create(':memory:');
      const con = await db.connect();
      await con.run(
        `COPY (SELECT * FROM read_parquet('${FLIGHTS}') LIMIT 20000) TO '${parquet}' (FORMAT parquet)`,
      );
      con.closeSync();
      const sc = scenario3table({ rows: 20_000, ndjson: '', csv: '', parquet });
      const tool = (name: string) => sc.tools.find((t) => t.name === name)!;
      const n = tool('kappa').normalize!;
      const c = compare(
        await canonicalize(await runTool(tool('kappa'), parquet, dir), n),
        await canonicalize(await runTool(tool('duckdb'), parquet, dir), n),
        'kappa',
        'duckdb',
      );
      assert.equal(c.equal, true, c.summary);
      assert.match(c.summary, /^equal \(\d{3,} rows\)$/);
    } finally {
      cleanup();
    }
  });

  it("the CSV scenario's kappa ingest normalises equal to DuckDB's read_csv", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const csv = join(dir, 'flights.csv');
      const db = await DuckDBInstance.create(':memory:');
      const con = await db.connect();
      await con.run(
        `COPY (SELECT strftime(date, '%Y-%m-%dT%H:%M:%SZ') AS date, delay, distance, origin, destination FROM read_parquet('${FLIGHTS}') LIMIT 3000) TO '${csv}' (FORMAT csv, HEADER true)`,
      );
      con.closeSync();
      const sc = scenarioCsv({ rows: 3000, ndjson: '', csv, parquet: '' });
      const tool = (name: string) => sc.tools.find((t) => t.name === name)!;
      const n = tool('kappa').normalize!;
      const c = compare(
        await canonicalize(await runTool(tool('kappa'), csv, dir), n),
        await canonicalize(await runTool(tool('duckdb'), csv, dir), n),
        'kappa',
        'duckdb',
      );
      assert.deepEqual(c, { equal: true, summary: 'equal (3000 rows)' });
    } finally {
      cleanup();
    }
  });
});
