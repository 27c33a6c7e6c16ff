/**
 * Integers beyond 2^53 in NDJSON input arrive exactly (issue 8 "no silent wrong answers", issue 14
 * int64 rule): `kappa ingest | kappa sink -` and `kappa ingest | kappa sink TABLE` over both stream
 * formats give 9007199254740993, -9007199254740993 and 12345678901234567890 — top level, nested in
 * an object and in an array, in NDJSON lines and in a JSON array file — as their exact decimal
 * strings (kappa-stream(5)), compared with the decimal text DuckDB reads from the same file; the
 * ingest summary counts them.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { parseLines, sh, tempDir } from '../helpers.js';

async function query(sql: string): Promise<Record<string, unknown>[]> {
  const db = await DuckDBInstance.create();
  const c = await db.connect();
  const r = await c.runAndReadAll(sql);
  const rows = r.getRowObjectsJson() as Record<string, unknown>[];
  c.closeSync();
  return rows;
}

const BIG = ['9007199254740993', '-9007199254740993', '12345678901234567890'];

describe('ingest: integers beyond 2^53 as exact decimal strings', () => {
  const t = tempDir();
  const lines = BIG.map(
    (b, i) => `{"id":${i + 1},"a":${b},"o":{"id":${b}},"arr":[${i + 1},${b}],"f":1.5e300,"s":"${b}"}`,
  );
  const ndjson = `${t.dir}/big.ndjson`;
  const array = `${t.dir}/big.json`;
  /** id -> [a, o.id, arr[1]] as DuckDB reads the decimal text of the file (HUGEINT: exact). */
  let want: Record<string, string[]>;
  before(async () => {
    writeFileSync(ndjson, `${lines.join('\n')}\n`);
    writeFileSync(array, `[\n${lines.join(',\n')}\n]\n`);
    const nof = lines.map((l) => l.replace(',"f":1.5e300', ''));
    writeFileSync(`${t.dir}/nof.ndjson`, `${nof.join('\n')}\n`);
    writeFileSync(`${t.dir}/nof.json`, `[\n${nof.join(',\n')}\n]\n`);
    want = {};
    for (const r of await query(
      `SELECT id::VARCHAR AS id, a::VARCHAR AS a, o.id::VARCHAR AS oid, arr[2]::VARCHAR AS x
       FROM read_json('${ndjson}', columns = {id: 'BIGINT', a: 'HUGEINT', o: 'STRUCT(id HUGEINT)', arr: 'HUGEINT[]'})`,
    ))
      want[String(r.id)] = [String(r.a), String(r.oid), String(r.x)];
    assert.deepEqual(
      Object.values(want),
      BIG.map((b) => [b, b, b]),
    );
  });
  after(() => t.cleanup());

  for (const input of ['ndjson', 'json array'])
    for (const fmt of ['ndjson', 'arrow']) {
      const src = input === 'ndjson' ? ndjson : array;
      it(`${input} input, ${fmt} stream: sink - gives the exact decimal strings; ingest counts them`, async () => {
        const err = `${t.dir}/${input.replace(' ', '-')}-${fmt}.err`;
        const r = await sh(`kappa ingest '${src}' --stream-format ${fmt} 2> '${err}' | kappa sink - -q`);
        assert.equal(r.code, 0, r.stderr + readFileSync(err, 'utf8'));
        const got = parseLines<{
          id: number;
          a: unknown;
          o: { id: unknown };
          arr: unknown[];
          f: number;
          s: string;
        }>(r.stdout);
        assert.equal(got.length, 3);
        for (const g of got) {
          assert.deepEqual([g.a, g.o.id, g.arr[1]], want[String(g.id)], `row ${g.id}`);
          assert.equal(g.arr[0], g.id);
          assert.equal(g.f, 1.5e300); // a non-integer literal stays a number
          assert.equal(g.s, BIG[g.id - 1]); // a string stays a string
        }
        assert.match(
          readFileSync(err, 'utf8'),
          /3 in, 3 out, 0 bad, 9 integers beyond 2\^53 kept as decimal strings/,
        );
      });

      it(`${input} input, ${fmt} stream: sink TABLE holds the exact decimal text (read by DuckDB)`, async () => {
        const table = `${t.dir}/table-${input.replace(' ', '-')}-${fmt}`;
        // The same rows without the float field f (a table sink infers int64 for 1.5e300, an
        // integral number, and fails: not this test's subject).
        const r = await sh(
          `kappa ingest '${src.replace('big.', 'nof.')}' --stream-format ${fmt} -q | kappa sink '${table}' -q`,
        );
        assert.equal(r.code, 0, r.stderr);
        const got = await query(
          `SELECT id::VARCHAR AS id, a::VARCHAR AS a, json_extract_string(o, '$.id') AS oid,
                  json_extract_string(arr, '$[1]') AS x, s
           FROM read_parquet('${table}/**/*.parquet') ORDER BY id`,
        );
        assert.equal(got.length, 3);
        for (const g of got) {
          assert.deepEqual([g.a, g.oid, g.x], want[String(g.id)], `row ${g.id}`);
          assert.equal(g.s, BIG[Number(g.id) - 1]);
        }
      });
    }

  for (const fmt of ['ndjson', 'arrow'])
    it(`${fmt} stream: an integer field with values beyond 2^53 after small ones is an exact BIGINT column, without rounded stats`, async () => {
      // a: 5 first (int64 inferred), then the decimal strings; f: an integral float beyond int64.
      const src = `${t.dir}/mixed.ndjson`;
      const vals = ['5', ...BIG.slice(0, 2), '-12345678901234567'];
      writeFileSync(
        src,
        vals.map((v, i) => `{"id":${i + 1},"a":${v},"f":${i === 1 ? '1.5e300' : i}}\n`).join(''),
      );
      const table = `${t.dir}/mixed-${fmt}`;
      const r = await sh(`kappa ingest '${src}' --stream-format ${fmt} -q | kappa sink '${table}' -q`);
      assert.equal(r.code, 0, r.stderr);
      const got = await query(
        `SELECT typeof(a) AS t, a::VARCHAR AS a, typeof(f) AS tf, f FROM read_parquet('${table}/**/*.parquet') ORDER BY id`,
      );
      const want = await query(
        `SELECT 'BIGINT' AS t, a::VARCHAR AS a, 'DOUBLE' AS tf, f FROM read_json('${src}', columns = {id: 'BIGINT', a: 'BIGINT', f: 'DOUBLE'}) ORDER BY id`,
      );
      assert.deepEqual(got, want);
      // The Delta stats hold no min/max for a (a JS number would round them), the others do.
      const log = readFileSync(`${table}/_delta_log/00000000000000000000.json`, 'utf8');
      const stats = JSON.parse(
        JSON.parse(log.split('\n').find((l) => l.includes('"add"')) as string).add.stats,
      ) as {
        minValues: Record<string, unknown>;
      };
      assert.equal(stats.minValues.a, undefined);
      assert.equal(stats.minValues.id, 1);
    });

  it('a Parquet BIGINT beyond 2^53 (DuckDB-written) goes into a table exactly', async () => {
    const src = `${t.dir}/big.parquet`;
    await query(
      `COPY (SELECT * FROM (VALUES (1, ${BIG[0]}::BIGINT), (2, 5::BIGINT), (3, ${BIG[1]}::BIGINT)) v(id, a)) TO '${src}'`,
    );
    const table = `${t.dir}/from-parquet`;
    const r = await sh(`kappa ingest '${src}' -q | kappa sink '${table}' -q`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      await query(
        `SELECT typeof(a) AS t, a::VARCHAR AS a FROM read_parquet('${table}/**/*.parquet') ORDER BY id`,
      ),
      await query(`SELECT typeof(a) AS t, a::VARCHAR AS a FROM '${src}' ORDER BY id`),
    );
  });

  it('a hand-written version-1 line with a bare integer beyond 2^53 is read exactly (fast and whole-line paths)', async () => {
    // kappa's writers give such integers as decimal strings; a line written by another program
    // may not. `{"ts":0,"key":null,…` takes the reader's fast path, `{"ts":1, "key"` (a space)
    // the whole-line parse, `{"key":null,"ts":2,…` the general decoder.
    const stream = `${t.dir}/hand.v1.ndjson`;
    writeFileSync(
      stream,
      [
        '{"kappa":1}',
        `{"ts":0,"key":null,"value":{"id":1,"a":${BIG[0]}}}`,
        `{"ts":1, "key":null,"value":{"id":2,"a":${BIG[1]}}}`,
        `{"key":null,"ts":2,"value":{"id":3,"a":[${BIG[2]}]}}`,
        '{"end":true}',
        '',
      ].join('\n'),
    );
    const r = await sh(`kappa sink - -q < '${stream}'`);
    assert.equal(r.code, 0, r.stderr);
    const got = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { a: unknown });
    assert.deepEqual(
      got.map((v) => v.a),
      [BIG[0], BIG[1], [BIG[2]]],
    );
  });
});
