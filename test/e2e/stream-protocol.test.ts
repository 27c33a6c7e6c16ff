/**
 * The record stream between real kappa processes (kappa-stream(5)), issue 8 items 5, 16, 17, 18:
 * invalid `ts` and over-deep or over-long lines are bad records with their line in every stage,
 * cut-off streams are upstream failures (exit 1), concatenated streams are one stream. DuckDB is the
 * oracle for what a concatenated stream commits.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { parseLines, sh, tempDir } from '../helpers.js';

const tmp = tempDir('kappa-stream-');
const T = tmp.dir;
let db: DuckDBConnection;

const H = '{"kappa":1}';
const E = '{"end":true}';
const deep = (d: number) => `${'['.repeat(d)}${']'.repeat(d)}`;
const NO_CRASH = /Maximum call stack|RangeError| {4}at /;

before(async () => {
  db = await (await DuckDBInstance.create(':memory:')).connect();
});
after(() => {
  db.closeSync();
  tmp.cleanup();
});

/** Writes `lines` (one per entry, each with its newline) to T/name and returns the path. */
function file(name: string, lines: string[]): string {
  const p = join(T, name);
  writeFileSync(p, lines.map((l) => `${l}\n`).join(''));
  return p;
}

describe('every stage reports an invalid ts as a bad record with its line (item 5)', () => {
  const s = () =>
    file('badts.kappa', [
      H,
      '{"ts":1,"key":null,"value":{"a":1}}',
      '{"ts":"abc","key":null,"value":{"a":2}}',
      E,
    ]);
  for (const stage of ['sink -', "transform --filter 'true'", 'window --tumbling 1h'])
    it(`kappa ${stage}: exit 3 naming stdin line 3; with --on-error skip it counts it`, async () => {
      const r = await sh(`kappa ${stage} -q < '${s()}'`);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /stdin line 3: "ts" must be an integer epoch-ms time/);
      const k = await sh(`kappa ${stage} --on-error skip < '${s()}'`);
      assert.equal(k.code, 0, k.stderr);
      assert.match(k.stderr, /1 bad/);
    });
});

describe('JSON nested 10,000 deep: no stage crashes, each names the line (item 16)', () => {
  const stream = () =>
    file('deep.kappa', [
      H,
      '{"ts":1,"key":null,"value":{"a":1}}',
      `{"ts":2,"key":null,"value":{"a":${deep(10_000)}}}`,
      '{"ts":3,"key":null,"value":{"a":3}}',
      E,
    ]);
  for (const stage of ['sink -', 'transform --select a', 'window --tumbling 1h'])
    it(`kappa ${stage} on a stream holding it: bad record at stdin line 3, --on-error applies`, async () => {
      const r = await sh(`kappa ${stage} -q < '${stream()}'`);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /bad record at stdin line 3: value nested deeper than 1000 levels/);
      assert.doesNotMatch(r.stderr, NO_CRASH);
      const dl = join(T, `dl-${stage.split(' ')[0]}.txt`);
      const k = await sh(`kappa ${stage} -q --on-error dead-letter='${dl}' < '${stream()}'`);
      assert.equal(k.code, 0, k.stderr);
      assert.equal(readFileSync(dl, 'utf8').split('\n')[0].length > 20_000, true);
    });
  it('ingest | sink, ingest | transform --select, ingest | window: ingest names the NDJSON line, none crashes', async () => {
    const src = file('deep.ndjson', [
      '{"a":1,"t":1}',
      `{"a":${deep(10_000)},"t":2}`,
      `{"a":${deep(999)},"t":3}`,
      '{"a":4,"t":4}',
    ]);
    for (const stage of ['sink -', 'transform --select a', 'window --tumbling 1h']) {
      const r = await sh(`kappa ingest '${src}' --ts-field t -q | kappa ${stage} -q`);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /deep\.ndjson line 2: value nested deeper than 1000 levels/);
      assert.doesNotMatch(r.stderr, NO_CRASH);
      const k = await sh(`kappa ingest '${src}' --ts-field t -q --on-error skip | kappa ${stage} -q`);
      assert.equal(k.code, 0, k.stderr);
      assert.doesNotMatch(k.stderr, NO_CRASH);
      if (stage === 'window --tumbling 1h') assert.match(k.stdout, /"count":3/);
      else {
        // The value 1000 levels deep (999 + the object) passes every stage intact.
        const values = parseLines<Record<string, unknown>>(k.stdout)
          .map((l) => (stage === 'sink -' ? l : l.value))
          .filter((v) => v !== undefined) as { a: unknown }[];
        assert.deepEqual(
          values.map((v) => (Array.isArray(v.a) ? JSON.stringify(v.a) : v.a)),
          [1, deep(999), 4],
        );
      }
    }
  });
});

describe('long lines (item 17)', () => {
  it('a 50 MB line goes through `sink -` in well under 10 s', async () => {
    const p = join(T, 'big.kappa');
    writeFileSync(
      p,
      `${H}\n{"ts":1,"key":null,"value":"${'x'.repeat(50_000_000)}"}\n{"ts":2,"key":null,"value":2}\n${E}\n`,
    );
    const t0 = Date.now();
    const r = await sh(`kappa sink - -q < '${p}' | wc -c`);
    const ms = Date.now() - t0;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), String(50_000_002 + 1 + 2));
    assert.ok(ms < 10_000, `took ${ms} ms`);
  });
  it('--max-line-bytes: a longer line is a bad record with its line number; reading resumes after it', async () => {
    const p = file('long.kappa', [
      H,
      '{"ts":1,"key":null,"value":1}',
      `{"ts":2,"key":null,"value":"${'y'.repeat(100_000)}"}`,
      '{"ts":3,"key":null,"value":3}',
      E,
    ]);
    for (const stage of ['sink -', "transform --filter 'true'"]) {
      const r = await sh(`kappa ${stage} -q --max-line-bytes 1KiB < '${p}'`);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /stdin line 3: line of 100030 bytes is longer than --max-line-bytes 1024/);
      const k = await sh(`kappa ${stage} -q --max-line-bytes 1KiB --on-error skip < '${p}'`);
      assert.equal(k.code, 0, k.stderr);
      const vals = parseLines(k.stdout).map((v) =>
        stage === 'sink -' ? v : (v as { value?: unknown }).value,
      );
      assert.deepEqual(
        vals.filter((v) => v !== undefined),
        [1, 3],
      );
    }
    const bad = await sh(`kappa sink - --max-line-bytes lots < '${p}'`);
    assert.equal(bad.code, 2);
  });
  it('ingest of NDJSON honours --max-line-bytes with the file line', async () => {
    const src = file('long.ndjson', ['{"t":1}', `{"t":2,"s":"${'z'.repeat(5000)}"}`, '{"t":3}']);
    const r = await sh(`kappa ingest '${src}' --ts-field t -q --max-line-bytes 2000`);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /long\.ndjson line 2: line of 5014 bytes is longer than --max-line-bytes 2000/);
  });
});

describe('cut-off, versions and concatenated streams (item 18)', () => {
  const rows = (from: number, n: number) =>
    Array.from({ length: n }, (_, i) =>
      JSON.stringify({ id: from + i, t: (from + i) * 60_000, v: (from + i) % 7 }),
    );
  before(() => {
    file('a.ndjson', rows(0, 3000));
    file('b.ndjson', rows(3000, 2000));
  });
  it('`head -c 5000 a.kappa | kappa sink TABLE` is an upstream failure: exit 1, "stream cut off at line N", nothing committed', async () => {
    const out = join(T, 'cut');
    const r = await sh(
      `kappa ingest '${join(T, 'a.ndjson')}' --ts-field t --ts-format epoch-ms -q > '${T}/a.kappa' && head -c 5000 '${T}/a.kappa' | kappa sink '${out}' -q`,
    );
    assert.equal(r.code, 1, r.stderr);
    const lines = readFileSync(join(T, 'a.kappa'), 'utf8').slice(0, 5000).split('\n').length;
    assert.match(r.stderr, new RegExp(`stream cut off at line ${lines}\\b`));
    assert.doesNotMatch(r.stderr, /wrap/);
    const visible = (() => {
      try {
        return readdirSync(out, { recursive: true }).map(String);
      } catch {
        return [];
      }
    })();
    assert.deepEqual(
      visible.filter((f) => f.endsWith('.parquet') && !f.split('/').some((s) => s.startsWith('.'))),
      [],
    );
  });
  it('`cat a.kappa b.kappa | kappa sink TABLE` commits both parts once (DuckDB over the NDJSON is the oracle)', async () => {
    const out = join(T, 'both');
    const r = await sh(
      `kappa ingest '${T}/a.ndjson' --ts-field t --ts-format epoch-ms -q > '${T}/a2.kappa' && kappa ingest '${T}/b.ndjson' --ts-field t --ts-format epoch-ms -q > '${T}/b2.kappa' && cat '${T}/a2.kappa' '${T}/b2.kappa' | kappa sink '${out}' -q`,
    );
    assert.equal(r.code, 0, r.stderr);
    const q = async (sql: string) => (await db.runAndReadAll(sql)).getRows();
    const want = await q(
      `SELECT count(*), sum(id), sum(v) FROM read_json_auto(['${T}/a.ndjson', '${T}/b.ndjson'], format='newline_delimited')`,
    );
    const got = await q(`SELECT count(*), sum(id), sum(v) FROM read_parquet('${out}/**/*.parquet')`);
    assert.deepEqual(
      got.map((row) => row.map(String)),
      want.map((row) => row.map(String)),
    );
  });
  it('`cat a b | kappa window` counts the records of both parts', async () => {
    const r = await sh(
      `cat '${T}/a2.kappa' '${T}/b2.kappa' | kappa window --tumbling 1000d -q | kappa sink - -q`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      parseLines<{ count: number }>(r.stdout).map((v) => v.count),
      [5000],
    );
  });
  it('a header whose protocol version is not 1 is refused', async () => {
    for (const v of ['2', '0']) {
      const r = await sh(`printf '%s\\n' '{"kappa":${v}}' '${E}' | kappa sink - -q`);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /stream protocol version/);
    }
  });
});
