/**
 * Delta `add.stats` of a table written by `kappa sink`, per file, against DuckDB's min / max /
 * null count over the Parquet file itself (the oracle), for every type kappa writes. The stats
 * must be byte-identical to the JSON form kappa has always written (numRecords, minValues,
 * maxValues, nullCount in column order; timestamps ISO with ms, dates `YYYY-MM-DD`).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { sh, tempDir } from '../helpers.js';

const tmp = tempDir('kappa-sink-stats-');
let db: DuckDBConnection;

/** Strings ordered differently by UTF-16 code units (JS `<`) and by UTF-8 bytes (Parquet, Delta). */
const STRINGS = ['b', '\uE000', '😀', 'a', 'Zürich', ''];

function input(rows: number): string {
  const lines = [
    JSON.stringify({
      kappa: 1,
      schema: {
        s: 'string',
        i: 'int64',
        f: 'float64',
        b: 'boolean',
        t: 'timestamp',
        tz: 'timestamptz',
        d: 'date',
        dec: 'decimal',
        j: 'json',
        bin: 'binary',
        p: 'string',
        allnull: 'int64',
      },
    }),
  ];
  for (let n = 0; n < rows; n++) {
    const nul = n % 7 === 3;
    const value = {
      s: nul ? null : STRINGS[n % STRINGS.length],
      i: n % 5 === 0 ? null : ((n * 7919) % 1000) - 500 + (n === 4 ? 2 ** 53 - 1 : 0),
      f: n % 6 === 1 ? null : ((n * 37) % 101) / 8 - 6,
      b: n % 4 === 2 ? null : n % 3 === 0,
      t: nul ? null : -86_400_000 * 400 + n * 3_600_001,
      tz: n % 9 === 0 ? null : 1_700_000_000_123 - n * 61_000,
      d: n % 8 === 5 ? null : new Date(Date.UTC(1969, 11, 20) + n * 86_400_000).toISOString().slice(0, 10),
      dec: n % 10 === 0 ? null : ((n * 13) % 97) * 1.25 - 30,
      j: n % 3 === 1 ? null : { a: n, l: [n, 'x'] },
      bin: n % 5 === 4 ? null : Buffer.from(`blob${n}`).toString('base64'),
      p: `p${n % 2}`,
      allnull: null,
    };
    lines.push(JSON.stringify({ ts: n, key: null, value }));
  }
  lines.push('{"end":true}');
  return `${lines.join('\n')}\n`;
}

/** Delta stats of one Parquet file as DuckDB computes them over the file. */
async function expectedStats(file: string): Promise<string> {
  const cols = (await db.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${file}')`)).getRows();
  const minValues: Record<string, unknown> = {};
  const maxValues: Record<string, unknown> = {};
  const nullCount: Record<string, number> = {};
  const count = Number(
    (await db.runAndReadAll(`SELECT count(*) FROM read_parquet('${file}')`)).getRows()[0][0],
  );
  for (const [name, type] of cols as [string, string][]) {
    const c = `"${name}"`;
    let lo: string;
    let hi: string;
    if (type === 'BOOLEAN' || type === 'BLOB' || type === 'JSON') {
      lo = hi = 'NULL';
    } else if (type.startsWith('TIMESTAMP')) {
      lo = `epoch_ms(min(${c}))::DOUBLE`;
      hi = `epoch_ms(max(${c}))::DOUBLE`;
    } else if (type === 'DATE') {
      lo = `strftime(min(${c}), '%Y-%m-%d')`;
      hi = `strftime(max(${c}), '%Y-%m-%d')`;
    } else if (type === 'VARCHAR') {
      lo = `min(${c})`;
      hi = `max(${c})`;
    } else {
      lo = `min(${c})::DOUBLE`;
      hi = `max(${c})::DOUBLE`;
    }
    const [mn, mx, nulls] = (
      await db.runAndReadAll(`SELECT ${lo}, ${hi}, count(*) - count(${c}) FROM read_parquet('${file}')`)
    ).getRows()[0];
    const iso = (v: unknown) => {
      const s = new Date(v as number).toISOString();
      return type === 'TIMESTAMP WITH TIME ZONE' ? s : s.slice(0, -1);
    };
    if (mn !== null) minValues[name] = type.startsWith('TIMESTAMP') ? iso(mn) : mn;
    if (mx !== null) maxValues[name] = type.startsWith('TIMESTAMP') ? iso(mx) : mx;
    nullCount[name] = Number(nulls);
  }
  return JSON.stringify({ numRecords: count, minValues, maxValues, nullCount });
}

describe('Delta add.stats of kappa sink tables (DuckDB over the Parquet files as oracle)', () => {
  before(async () => {
    db = await (await DuckDBInstance.create(':memory:')).connect();
  });
  after(() => tmp.cleanup());

  for (const [name, flags] of [
    ['partitioned', "--partition-by '{p}'"],
    ['several files (roll by records)', '--roll-records 700'],
  ] as const) {
    it(`${name}: every type, nulls, an all-null column, UTF-8 string order`, async () => {
      const src = join(tmp.dir, `${name.replace(/\W/g, '')}.ndjson`);
      const out = join(tmp.dir, name.replace(/\W/g, ''));
      writeFileSync(src, input(2000));
      const r = await sh(`kappa sink '${out}' ${flags} -q < '${src}'`);
      assert.equal(r.code, 0, r.stderr);
      const log = join(out, '_delta_log');
      const adds = readdirSync(log)
        .filter((f) => f.endsWith('.json'))
        .flatMap((f) => readFileSync(join(log, f), 'utf8').trim().split('\n'))
        .map((l) => JSON.parse(l) as { add?: { path: string; stats: string } })
        .filter((a) => a.add)
        .map((a) => a.add!);
      assert.ok(adds.length >= 2, `expected several files, got ${adds.length}`);
      let rows = 0;
      for (const a of adds) {
        const expected = await expectedStats(join(out, decodeURIComponent(a.path)));
        assert.equal(a.stats, expected, a.path);
        rows += JSON.parse(a.stats).numRecords;
      }
      assert.equal(rows, 2000);
    });
  }
});
