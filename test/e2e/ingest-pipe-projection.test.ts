/**
 * Column projection across a shell pipe (issue 14, scenario 3 piped): `kappa ingest F | kappa
 * window …` and `kappa ingest F | kappa transform … --select …` read only the fields the reader
 * stage reads (its command line seen under /proc, the proof of `kappa run`), say so in ingest's
 * summary line, and give DuckDB's answer and the same bytes as with `KAPPA_PROJECTION=off`.
 * Readers whose reads cannot be proven (a transform chain that is not closed, `tee`, a window
 * with --late-output or a dead-letter file) get every field.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { sh, tempDir } from '../helpers.js';

const PROJECTED =
  /kappa ingest: done: .*read only 3 fields \(date, origin, delay\) for kappa (window|transform)/;

/** Runs a query in a fresh DuckDB and returns its rows as JSON-able objects. */
async function duck(sql: string): Promise<Record<string, unknown>[]> {
  const db = await DuckDBInstance.create();
  const c = await db.connect();
  const r = await c.runAndReadAll(sql);
  const rows = r.getRowObjectsJson() as Record<string, unknown>[];
  c.closeSync();
  return rows;
}

describe('kappa ingest | kappa window/transform: projection across the pipe', () => {
  const t = tempDir('kappa-pipeproj-');
  const nd = join(t.dir, 'f.ndjson');
  const pq = join(t.dir, 'f.parquet');
  const WINDOW = "kappa window --key origin --tumbling 1h --agg 'count, avg(delay), max(delay)'";
  before(async () => {
    const O = ['LAS', 'ATL', 'MCI', 'SFO', 'JFK'];
    const lines: string[] = [];
    let x = 5;
    for (let i = 0; i < 30_000; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      const date = new Date(Date.UTC(2001, 0, 1) + Math.floor(i / 5) * 60_000).toISOString();
      lines.push(
        JSON.stringify({
          date: date.replace('.000Z', 'Z'),
          delay: (x % 200) - 40,
          distance: x % 3000,
          origin: O[x % 5],
          destination: O[(x >> 4) % 5],
        }),
      );
    }
    writeFileSync(nd, `${lines.join('\n')}\n`);
    await duck(
      `COPY (SELECT CAST(date AS TIMESTAMP) AS date, CAST(delay AS INTEGER) AS delay, CAST(distance AS INTEGER) AS distance, origin, destination FROM read_json('${nd}', format = 'newline_delimited', columns = {date: 'VARCHAR', delay: 'BIGINT', distance: 'BIGINT', origin: 'VARCHAR', destination: 'VARCHAR'})) TO '${pq}' (FORMAT parquet, ROW_GROUP_SIZE 4000)`,
    );
  });
  after(() => t.cleanup());

  const want = async () =>
    (
      await duck(
        `SELECT origin, epoch_ms(time_bucket(INTERVAL 1 hour, CAST(date AS TIMESTAMP))) AS h, count(*) AS n, avg(delay) AS a, max(delay) AS m FROM read_json('${nd}', format = 'newline_delimited') GROUP BY ALL`,
      )
    )
      .map((r) => JSON.stringify([r.origin, Number(r.h), Number(r.n), Number(r.a), Number(r.m)]))
      .sort();

  for (const [kind, file] of [
    ['Parquet', pq],
    ['NDJSON', nd],
  ] as const) {
    it(`${kind}: ingest | window reads 3 fields, gives DuckDB's aggregation and the unprojected bytes`, async () => {
      const cmd = `kappa ingest '${file}' --ts-field date | ${WINDOW} -q | kappa sink - -q`;
      const r = await sh(cmd);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, PROJECTED);
      const got = r.stdout
        .trim()
        .split('\n')
        .map((l) => {
          const o = JSON.parse(l) as Record<string, number | string>;
          return JSON.stringify([o.origin, o.window_start, o.count, o.avg_delay, o.max_delay]);
        })
        .sort();
      assert.ok(got.length >= 500);
      assert.deepEqual(got, await want());
      const off = await sh(cmd, { env: { KAPPA_PROJECTION: 'off' } });
      assert.equal(off.code, 0, off.stderr);
      assert.doesNotMatch(off.stderr, /read only/);
      assert.equal(r.stdout, off.stdout);
    });
  }

  it('ingest | transform closed by --select projects; the records equal jq’s and the unprojected bytes', async () => {
    for (const file of [nd, pq]) {
      // `nope` is in no record: absent from the projection's file columns as from the full read.
      const cmd = `kappa ingest '${file}' --ts-field date | kappa transform --filter 'r.delay > 60' --select date,origin,delay,nope -q`;
      const r = await sh(cmd);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /read only 4 fields \(date, delay, origin, nope\) for kappa transform/);
      const off = await sh(cmd, { env: { KAPPA_PROJECTION: 'off' } });
      assert.equal(off.code, 0, off.stderr);
      assert.equal(r.stdout, off.stdout);
      if (file === nd) {
        const jq = await sh(`jq -c 'select(.delay > 60) | {date, origin, delay, nope}' '${nd}'`);
        const got = r.stdout
          .trim()
          .split('\n')
          .filter((l) => l.startsWith('{"ts"'))
          .map((l) => JSON.stringify((JSON.parse(l) as { value: unknown }).value));
        assert.ok(got.length > 5000);
        assert.equal(`${got.join('\n')}\n`, jq.stdout);
      }
    }
  });

  it('no projection where the reads cannot be proven', async () => {
    const cases = [
      // a transform chain that is not closed: the stage after it is invisible
      `kappa ingest '${pq}' --ts-field date | kappa transform --filter 'r.delay > 60' -q | kappa sink - -q`,
      // tee reads the pipe: whole records go to the file
      `kappa ingest '${pq}' --ts-field date | tee '${join(t.dir, 'copy')}' | ${WINDOW} -q`,
      // late records leave the window whole
      `kappa ingest '${pq}' --ts-field date | ${WINDOW} --late-output '${join(t.dir, 'late.ndjson')}' -q`,
      // bad records leave the window whole
      `kappa ingest '${pq}' --ts-field date | ${WINDOW} --on-error dead-letter='${join(t.dir, 'dl.ndjson')}' -q`,
      // a filter reading the whole record
      `kappa ingest '${nd}' --ts-field date | kappa transform --filter 'JSON.stringify(r).length > 9' --select origin -q`,
    ];
    for (const c of cases) {
      const r = await sh(`${c} > /dev/null`);
      assert.equal(r.code, 0, `${c}\n${r.stderr}`);
      assert.match(r.stderr, /kappa ingest: done: 30,000 in/, c);
      assert.doesNotMatch(r.stderr, /read only/, c);
    }
  });

  it('KAPPA_PROJECTION takes on or off only', async () => {
    const r = await sh(`kappa ingest '${nd}' --ts-field date | ${WINDOW} -q; exit \${PIPESTATUS[0]}`, {
      env: { KAPPA_PROJECTION: 'maybe' },
    });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /KAPPA_PROJECTION: expected on or off, got 'maybe'/);
  });
});
