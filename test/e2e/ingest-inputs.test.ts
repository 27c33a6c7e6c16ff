/**
 * Inputs people have (issue 8): CSV headers with duplicate names (item 6), CSV bad-row locations
 * with the streaming tokenizer (item 30), empty and corrupt Parquet (item 19), gzip/zstd input
 * (item 25), JSON-array files (item 26), named pipes and process substitution (item 27), and
 * `--ts-field` checked against a Parquet schema (item 28). DuckDB is the oracle.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { parseLines, sh, tempDir, VEGA } from '../helpers.js';

interface Line {
  ts?: number;
  value?: Record<string, unknown>;
  end?: boolean;
}

const values = (out: string) =>
  parseLines<Line>(out)
    .filter((l) => l.value !== undefined)
    .map((l) => l.value as Record<string, unknown>);

/** Every value as a string (null stays null): DuckDB's JSON rows give BIGINT as strings. */
const str = (rows: Record<string, unknown>[]) =>
  rows.map((v) => Object.fromEntries(Object.entries(v).map(([k, x]) => [k, x === null ? null : String(x)])));

/** Rows as plain JSON values, for comparing kappa's records with DuckDB's rows. */
async function duck(con: DuckDBConnection, sql: string): Promise<Record<string, unknown>[]> {
  return (await con.runAndReadAll(sql)).getRowObjectsJson() as Record<string, unknown>[];
}

const tmp = tempDir();
let con: DuckDBConnection;
before(async () => {
  con = await (await DuckDBInstance.create(':memory:')).connect();
});
after(() => tmp.cleanup());

describe('CSV header with duplicate names (item 6)', () => {
  const headers = ['a,b,a', 'a,a,a', 'a,a_1,a', 'a,A,a', 'a,a,a_1,a_1', 'x,,y,'];
  for (const h of headers) {
    it(`'${h}' names its fields as DuckDB's read_csv does, and keeps every column`, async () => {
      const f = join(tmp.dir, `dup-${headers.indexOf(h)}.csv`);
      const n = h.split(',').length;
      writeFileSync(f, `${h}\n${Array.from({ length: n }, (_, i) => i + 10).join(',')}\n`);
      const expected = (await duck(con, `DESCRIBE SELECT * FROM read_csv('${f}', header = true)`)).map(
        (r) => r.column_name,
      );
      const r = await sh(`kappa ingest '${f}' -q`);
      assert.equal(r.code, 0, r.stderr);
      const [row] = values(r.stdout);
      assert.deepEqual(Object.keys(row), expected);
      assert.deepEqual(
        Object.values(row),
        Array.from({ length: n }, (_, i) => i + 10),
      );
    });
  }
});

describe('CSV tokenizer keeps every bad-row location (item 30)', () => {
  const f = join(tmp.dir, 'bad.csv');
  const text = [
    '\uFEFFn,s', // 1 (BOM dropped)
    '1,a', // 2
    '2,x,extra', // 3 bad: 3 fields
    '3,"b', // 4 quoted newline
    'c"', // 5
    '', // 6 empty: skipped
    '4,a"b', // 7 bad: quote in an unquoted field
    '5,"q"x', // 8 bad: text after a closing quote
    '6,"say ""hi"", ok"\r', // 9 CRLF, doubled quotes
    '7,"unclosed', // 10 bad: never closed, swallows the rest
    '8,z',
    '',
  ].join('\n');
  writeFileSync(f, text);

  it('good rows parse; bad rows are located by their first line; dead letters hold their raw text', async () => {
    const dl = join(tmp.dir, 'bad.dl');
    const r = await sh(`kappa ingest '${f}' --on-error dead-letter='${dl}'`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(values(r.stdout), [
      { n: 1, s: 'a' },
      { n: 3, s: 'b\nc' },
      { n: 6, s: 'say "hi", ok' },
    ]);
    assert.match(r.stderr, /4 bad/);
    assert.equal(readFileSync(dl, 'utf8'), '2,x,extra\n4,a"b\n5,"q"x\n7,"unclosed\n8,z\n');
  });

  for (const [line, why] of [
    [3, /expected 2 fields.*got 3/],
    [7, /quote inside an unquoted field/],
    [8, /after a closing quote/],
    [10, /not closed/],
  ] as const) {
    it(`--on-error fail names line ${line}`, async () => {
      // Cut the file before the first bad row under test so it is the first one met.
      const lines = text.split('\n');
      const keep = [lines[0], ...lines.slice(line - 1)];
      const g = join(tmp.dir, `bad-${line}.csv`);
      writeFileSync(g, keep.join('\n'));
      const r = await sh(`kappa ingest '${g}'`);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, new RegExp(`bad-${line}\\.csv line 2\\b`));
      assert.match(r.stderr, why);
    });
  }

  it('reads the flights CSV DuckDB writes exactly as DuckDB reads it (quoted fields, embedded newlines)', async () => {
    const src = join(tmp.dir, 'fl.csv');
    await con.run(
      `COPY (SELECT *, CASE WHEN delay % 7 = 0 THEN 'late, "very"' || chr(10) || 'really' ELSE origin END AS note
             FROM read_json('${join(VEGA, 'flights-2k.json')}')) TO '${src}' (HEADER, FORCE_QUOTE (note))`,
    );
    const r = await sh(`kappa ingest '${src}' -q`);
    assert.equal(r.code, 0, r.stderr);
    const expected = await duck(con, `SELECT * FROM read_csv('${src}', all_varchar = true)`);
    const got = values(r.stdout);
    assert.equal(got.length, 2000);
    assert.deepEqual(
      got.map((v) =>
        Object.fromEntries(Object.entries(v).map(([k, x]) => [k, x === null ? null : String(x)])),
      ),
      expected,
    );
  });
});

describe('Parquet: empty file and corrupt row group (item 19)', () => {
  const good = join(tmp.dir, 'groups.parquet');
  const bad = join(tmp.dir, 'groups-bad.parquet');
  const empty = join(tmp.dir, 'empty.parquet');
  let groupRows: number[] = [];
  before(async () => {
    await con.run(
      `COPY (SELECT i AS id, md5(i::VARCHAR) AS h FROM range(0, 30000) r(i))
       TO '${good}' (FORMAT parquet, ROW_GROUP_SIZE 10000, COMPRESSION zstd)`,
    );
    const md = await duck(
      con,
      `SELECT row_group_id, row_group_num_rows, path_in_schema, data_page_offset, total_compressed_size
       FROM parquet_metadata('${good}') ORDER BY row_group_id`,
    );
    groupRows = md.filter((m) => m.path_in_schema === 'id').map((m) => Number(m.row_group_num_rows));
    // Flip 64 bytes in the middle of row group 1's `h` column chunk (zstd-compressed page data).
    const m = md.find((x) => Number(x.row_group_id) === 1 && x.path_in_schema === 'h');
    assert.ok(m);
    const mid = Number(m.data_page_offset) + Math.floor(Number(m.total_compressed_size) / 2);
    const b = readFileSync(good);
    for (let i = mid; i < mid + 64; i++) b[i] ^= 0xff;
    writeFileSync(bad, b);
    writeFileSync(empty, '');
  });

  it('a 0-byte file says it is empty and not Parquet (exit 3)', async () => {
    const r = await sh(`kappa ingest '${empty}'`);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /empty.parquet: the file is empty \(0 bytes\), so it is not a Parquet file/);
    assert.doesNotMatch(r.stderr, /DataView|Offset/);
  });

  it('a corrupt row group is a data error naming it', async () => {
    const r = await sh(`kappa ingest '${bad}'`);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /groups-bad\.parquet row group 1 row 0: row group 1 cannot be decoded/);
    assert.ok(!r.stdout.includes('"end":true'));
  });

  it('with --on-error skip its rows are counted as bad and the other groups are read', async () => {
    const r = await sh(`kappa ingest '${bad}' --on-error skip`);
    assert.equal(r.code, 0, r.stderr);
    const ids = values(r.stdout).map((v) => v.id);
    const expected = (
      await duck(
        con,
        `SELECT id FROM read_parquet('${good}', file_row_number = true)
         WHERE file_row_number < ${groupRows[0]} OR file_row_number >= ${groupRows[0] + groupRows[1]}
         ORDER BY file_row_number`,
      )
    ).map((x) => Number(x.id));
    assert.deepEqual(ids, expected);
    assert.match(r.stderr, new RegExp(`${groupRows[1].toLocaleString('en-US')} bad`));
  });
});

describe('compressed input (item 25)', () => {
  const base = join(tmp.dir, 'c');
  before(async () => {
    const src = `(SELECT 'at ' || date AS at, delay, distance, origin || ', ' || destination AS route
       FROM read_json('${join(VEGA, 'flights-2k.json')}'))`;
    await con.run(`COPY (SELECT * FROM ${src}) TO '${base}.ndjson' (FORMAT json)`);
    await con.run(`COPY (SELECT * FROM ${src}) TO '${base}.csv' (HEADER)`);
    await con.run(`COPY (SELECT * FROM ${src}) TO '${base}.tsv' (HEADER, DELIMITER '\t')`);
    for (const ext of ['ndjson', 'csv', 'tsv']) {
      const r = await sh(
        `gzip -c '${base}.${ext}' > '${base}.${ext}.gz' && zstd -q -c '${base}.${ext}' > '${base}.${ext}.zst'`,
      );
      assert.equal(r.code, 0, r.stderr);
    }
  });

  for (const ext of ['ndjson', 'csv', 'tsv'])
    for (const z of ['gz', 'zst'])
      it(`${ext}.${z} (compressed by the ${z === 'gz' ? 'gzip' : 'zstd'} tool) reads as DuckDB reads ${ext}`, async () => {
        const r = await sh(`kappa ingest '${base}.${ext}.${z}' -q`);
        assert.equal(r.code, 0, r.stderr);
        const reader = ext === 'ndjson' ? 'read_json' : 'read_csv';
        const expected = await duck(con, `SELECT * FROM ${reader}('${base}.${ext}')`);
        assert.equal(expected.length, 2000);
        assert.deepEqual(str(values(r.stdout)), str(expected));
      });

  it('stdin and unnamed input are detected by magic bytes', async () => {
    const r = await sh(`cat '${base}.ndjson.zst' | kappa ingest - -q`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(values(r.stdout).length, 2000);
    const c = await sh(`cat '${base}.csv.gz' | kappa ingest - --format csv -q`);
    assert.equal(c.code, 0, c.stderr);
    assert.deepEqual(str(values(c.stdout)), str(await duck(con, `SELECT * FROM read_csv('${base}.csv')`)));
  });

  it('a .gz that is not gzip, or truncated gzip/zstd, is a data error naming the file', async () => {
    writeFileSync(`${base}-plain.ndjson.gz`, '{"a":1}\n');
    const p = await sh(`kappa ingest '${base}-plain.ndjson.gz'`);
    assert.equal(p.code, 3, p.stderr);
    assert.match(p.stderr, /plain\.ndjson\.gz: the name says gzip but the data is not/);
    for (const z of ['gz', 'zst']) {
      const whole = readFileSync(`${base}.ndjson.${z}`);
      writeFileSync(`${base}-cut.ndjson.${z}`, whole.subarray(0, whole.length >> 1));
      const t = await sh(`kappa ingest '${base}-cut.ndjson.${z}' -q`);
      assert.equal(t.code, 3, `${z}: ${t.stderr}`);
      assert.match(t.stderr, new RegExp(`cut\\.ndjson\\.${z}: corrupt or truncated`));
      assert.ok(!t.stdout.includes('"end":true'));
    }
  });
});

describe('a .json file holding one JSON array (item 26)', () => {
  it("flights-2k.json reads as DuckDB's read_json reads it", async () => {
    const f = join(VEGA, 'flights-2k.json');
    const r = await sh(`kappa ingest '${f}' --ts-field date --ts-format '%Y/%m/%d %H:%M' -q`);
    assert.equal(r.code, 0, r.stderr);
    const expected = await duck(con, `SELECT * FROM read_json('${f}')`);
    assert.equal(expected.length, 2000);
    assert.deepEqual(str(values(r.stdout)), str(expected));
  });

  it('a pretty-printed array: nesting, brackets in strings, bad elements located by their line', async () => {
    const f = join(tmp.dir, 'pretty.json');
    writeFileSync(
      f,
      [
        '[',
        '  {"a": 1, "s": "],[{\\"x"},', // 2
        '  {"a": 2, "n": {"b": [1, [2]]}},', // 3
        '  42,', // 4 bad: not an object
        '  {"a": 3,', // 5 bad: invalid JSON
        '   "b": },', // 6
        '  {"a": 4}', // 7
        ']',
        '',
      ].join('\n'),
    );
    const r = await sh(`kappa ingest '${f}' --on-error skip`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(values(r.stdout), [{ a: 1, s: '],[{"x' }, { a: 2, n: { b: [1, [2]] } }, { a: 4 }]);
    assert.match(r.stderr, /2 bad/);
    const fail = await sh(`kappa ingest '${f}'`);
    assert.equal(fail.code, 3);
    assert.match(fail.stderr, /pretty\.json line 4: array element is not a JSON object/);
    const cut = join(tmp.dir, 'cut.json');
    writeFileSync(cut, '[{"a":1},\n{"a":2}');
    const c = await sh(`kappa ingest '${cut}'`);
    assert.equal(c.code, 3);
    assert.match(
      c.stderr,
      /cut\.json line 2: not a valid JSON array: the input ends before the closing '\]'/,
    );
  });
});

describe('named pipes and process substitution (item 27)', () => {
  it('kappa ingest <(zcat x.gz) --format ndjson', async () => {
    const f = join(tmp.dir, 'p.ndjson');
    writeFileSync(f, '{"a":1}\n{"a":2}\n');
    const r = await sh(`gzip -c '${f}' > '${f}.gz' && kappa ingest <(zcat '${f}.gz') --format ndjson -q`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(values(r.stdout), [{ a: 1 }, { a: 2 }]);
  });

  it('a FIFO made with mkfifo, CSV', async () => {
    const fifo = join(tmp.dir, 'fifo.csv');
    const r = await sh(
      `mkfifo '${fifo}' && (timeout 20 sh -c "printf 'a,b\\n1,x\\n' > '${fifo}'" >/dev/null 2>&1 &) && kappa ingest '${fifo}' -q`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(values(r.stdout), [{ a: 1, b: 'x' }]);
  });
});

describe('--ts-field not in a Parquet schema (item 28)', () => {
  it('is a usage error before reading, naming the columns', async () => {
    const f = join(tmp.dir, 'ts.parquet');
    await con.run(`COPY (SELECT 1 AS id, TIMESTAMP '2024-01-01' AS at) TO '${f}' (FORMAT parquet)`);
    const r = await sh(`kappa ingest '${f}' --ts-field when`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--ts-field 'when': .*ts\.parquet has no column 'when'; its columns are: id, at/);
    assert.equal(r.stdout, '', 'nothing is read or written');
    const ok = await sh(`kappa ingest '${f}' --ts-field at -q`);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(parseLines<Line>(ok.stdout)[1].ts, Date.UTC(2024, 0, 1));
  });
});

describe('event time through the binary (item 5)', () => {
  it('date-only in --tz; impossible dates and out-of-range numbers are bad records, never a non-integer ts', async () => {
    const input = [
      '{"d":"2024-05-01"}',
      '{"d":"2024-02-30"}',
      '{"d":1e300}',
      '{"d":"2024-02-29 12:00"}',
      '',
    ].join('\n');
    const r = await sh(`kappa ingest - --ts-field d --tz Europe/Berlin --on-error skip`, { input });
    assert.equal(r.code, 0, r.stderr);
    const ts = parseLines<Line>(r.stdout)
      .filter((l) => l.value)
      .map((l) => l.ts);
    assert.deepEqual(ts, [Date.UTC(2024, 3, 30, 22), Date.UTC(2024, 1, 29, 11)]);
    assert.match(r.stderr, /2 bad/);
    const f = await sh(`kappa ingest - --ts-field d`, { input: '{"d":1e300}\n' });
    assert.equal(f.code, 3);
    assert.match(f.stderr, /stdin line 1: event-time field 'd' has value "1e\+300".*out of range/);
  });
});

describe('stdin redirected from a file (`kappa ingest - < file`)', () => {
  it('reads every line of a multi-MiB file from where stdin stands, as DuckDB reads the same lines', async () => {
    const f = join(tmp.dir, 'stdin-file.ndjson');
    const skip = '{"i":-1,"s":"skipped by the shell"}\n';
    const lines: string[] = [];
    // ~3 MiB: several of the 1 MiB chunks a regular-file stdin is read in, lines across their edges.
    for (let i = 0; i < 60_000; i++) lines.push(JSON.stringify({ i, s: `row ${i} ${'x'.repeat(i % 37)}` }));
    writeFileSync(f, `${skip}${lines.join('\n')}\n`);
    const rest = join(tmp.dir, 'stdin-rest.ndjson');
    writeFileSync(rest, `${lines.join('\n')}\n`);
    // The shell consumes the first line; kappa must start where stdin's offset stands, not at byte 0.
    const r = await sh(`{ head -n 1 >/dev/null; kappa ingest - -q --stream-format ndjson; } < '${f}'`);
    assert.equal(r.code, 0, r.stderr);
    const got = str(values(r.stdout));
    const expected = await duck(con, `SELECT i, s FROM read_json('${rest}', format = 'newline_delimited')`);
    assert.equal(got.length, expected.length);
    assert.deepEqual(got, expected);
  });
});
