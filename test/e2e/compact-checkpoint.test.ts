/**
 * Delta log checkpoints (issue 13, acceptance 6): after 25 sink commits a checkpoint exists in the
 * protocol's schema (checked with DuckDB), kappa's reader uses it (the JSON versions before it are
 * deleted, as log cleanup does), and Delta Kernel for Java (test/delta.ts) reads the table through
 * it. compact's own commits write checkpoints too.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { readDeltaTables } from '../delta.js';
import { sh, tempDir } from '../helpers.js';

let db: DuckDBConnection;
const tmp = tempDir('kappa-compact-cp-');
const T = tmp.dir;

async function scalar(sql: string): Promise<number> {
  const r = await db.runAndReadAll(sql);
  return Number(r.getRows()[0][0]);
}

async function diff(a: string, b: string): Promise<number> {
  const x = `(SELECT * FROM (${a}))`;
  const y = `(SELECT * FROM (${b}))`;
  return scalar(`SELECT count(*) FROM ((${x} EXCEPT ALL ${y}) UNION ALL (${y} EXCEPT ALL ${x}))`);
}

before(async () => {
  db = await (await DuckDBInstance.create(':memory:')).connect();
});
after(() => tmp.cleanup());

describe('Delta log checkpoints', () => {
  it('acceptance 6: after 25 commits a log checkpoint exists, kappa reads from it, Delta Kernel reads the table', async () => {
    const t = join(T, 'cp');
    const src = join(T, 'cp.ndjson');
    // 25 checkpoint barriers in one kappa stream: the sink commits one log version at each.
    const values: Record<string, unknown>[] = [];
    for (let i = 0; i < 40; i++) {
      const ts = Date.UTC(2024, 2, 1 + (i % 3), 10, 0, i);
      values.push({ ts: new Date(ts).toISOString(), id: i, v: i * 1.5 });
    }
    writeFileSync(src, `${values.map((v) => JSON.stringify(v)).join('\n')}\n`);
    const stream = ['{"kappa":1}'];
    for (let b = 0; b < 25; b++) {
      for (const v of values)
        stream.push(JSON.stringify({ ts: Date.parse(v.ts as string), key: null, value: v }));
      stream.push(JSON.stringify({ barrier: { id: b, positions: {} } }));
    }
    stream.push('{"end":true}');
    writeFileSync(join(T, 'cp.kappa'), `${stream.join('\n')}\n`);
    const r = await sh(`kappa sink '${t}' --partition-by 'dt=%Y-%m-%d' -q < '${join(T, 'cp.kappa')}'`);
    assert.equal(r.code, 0, r.stderr);
    const logDir = join(t, '_delta_log');
    const cps = readdirSync(logDir).filter((f) => f.endsWith('.checkpoint.parquet'));
    assert.deepEqual(cps.sort(), [
      '00000000000000000010.checkpoint.parquet',
      '00000000000000000020.checkpoint.parquet',
    ]);
    assert.equal(JSON.parse(readFileSync(join(logDir, '_last_checkpoint'), 'utf8')).version, 20);
    // The protocol's checkpoint schema: MAP partitionValues, stats as a JSON string, no commitInfo.
    const d = await db.runAndReadAll(
      `DESCRIBE SELECT * FROM '${join(logDir, '00000000000000000020.checkpoint.parquet')}'`,
    );
    const types = Object.fromEntries(d.getRows().map((x) => [String(x[0]), String(x[1])]));
    assert.deepEqual(Object.keys(types).sort(), ['add', 'metaData', 'protocol', 'remove', 'txn']);
    assert.match(types.add, /partitionValues MAP\(VARCHAR, VARCHAR\).*stats VARCHAR/);
    assert.match(types.metaData, /partitionColumns VARCHAR\[\].*"configuration" MAP\(VARCHAR, VARCHAR\)/);
    assert.equal(
      await scalar(
        `SELECT count(*) FROM '${join(logDir, '00000000000000000020.checkpoint.parquet')}' WHERE add IS NOT NULL`,
      ),
      21 * 3,
    );
    // Log cleanup after the checkpoint: versions 0-19 gone. kappa's reader and Delta Kernel need the checkpoint now.
    for (let v = 0; v < 20; v++) rmSync(join(logDir, `${String(v).padStart(20, '0')}.json`));
    const out = join(T, 'cp-out.parquet');
    const ing = await sh(`kappa ingest '${t}' --ts-field ts -q | kappa sink '${out}' -q`);
    assert.equal(ing.code, 0, ing.stderr);
    const want = `SELECT id, v FROM read_json('${src}') , range(25)`;
    assert.equal(await diff(want, `SELECT id, v FROM '${out}'`), 0);
    const [k] = await readDeltaTables([t]);
    assert.ok(!(k instanceof Error), String(k));
    assert.equal(k.version, 24);
    assert.equal(k.rows.length, 25 * 40);
    assert.equal(k.totalFiles, 25 * 3);
    // compact commits through the same committer: its versions get checkpoints too.
    const c = await sh(`kappa compact '${t}' --include-open --commit-every 1 --log-checkpoint-interval 2`);
    assert.equal(c.code, 0, c.stderr);
    assert.ok(existsSync(join(logDir, '00000000000000000026.checkpoint.parquet')));
    const [k2] = await readDeltaTables([t]);
    assert.ok(!(k2 instanceof Error), String(k2));
    assert.equal(k2.rows.length, 25 * 40);
    assert.equal(k2.totalFiles, 3);
  });
});
