/**
 * `kappa ingest` over files end to end: bad-line policies (acceptance 3), globs, Hive directories,
 * hidden files, event-time formats and zones, keys, watermarks, EPIPE, the non-kappa-stream hint,
 * and the 3M-row flights file checked against DuckDB.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { FLIGHTS, parseLines, sh, tempDir } from '../helpers.js';

interface Line {
  kappa?: number;
  schema?: Record<string, string>;
  ts?: number;
  key?: string | null;
  value?: Record<string, unknown>;
  watermark?: number;
  end?: boolean;
}

const records = (out: string) => parseLines<Line>(out).filter((l) => l.value !== undefined);

describe('bad lines: --on-error and --max-bad (acceptance 3)', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());
  const nd = join(tmp.dir, 'in.ndjson');
  const ndBad = ['{"a":2', '[1,2]', 'not json'];
  writeFileSync(nd, ['{"a":1}', ndBad[0], '{"a":3}', ndBad[1], '', ndBad[2], '{"a":6}'].join('\n'));
  const csv = join(tmp.dir, 'in.csv');
  const csvBad = ['2,x,extra', '4,"multi\nline",more'];
  writeFileSync(csv, ['n,s', '1,a', csvBad[0], '3,"b\nc"', csvBad[1], '5,e', ''].join('\n'));

  for (const [name, file, firstBadLine, badLines, good] of [
    ['NDJSON', nd, 2, ndBad, [1, 3, 6]],
    ['CSV', csv, 3, csvBad, [1, 3, 5]],
  ] as const) {
    it(`${name}: fail stops at the first bad line with exit 3 and its line number`, async () => {
      const r = await sh(`kappa ingest '${file}'`);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, new RegExp(`${file.replace(/[.]/g, '\\.')} line ${firstBadLine}\\b`));
      assert.ok(!r.stdout.includes('"end":true'), 'a failed ingest must not end its stream');
      assert.ok(!r.stderr.includes('    at '), 'no stack trace');
    });
    it(`${name}: skip finishes with exit 0 and counts the bad lines`, async () => {
      const r = await sh(`kappa ingest '${file}' --on-error skip`);
      assert.equal(r.code, 0, r.stderr);
      const vals = records(r.stdout).map((l) => l.value?.a ?? l.value?.n);
      assert.deepEqual(vals, good);
      assert.match(r.stderr, new RegExp(`${badLines.length} bad`));
      assert.deepEqual(parseLines<Line>(r.stdout).at(-1), { end: true });
    });
    it(`${name}: dead-letter file holds exactly the bad lines`, async () => {
      const dl = join(tmp.dir, `${name}.bad`);
      const r = await sh(`kappa ingest '${file}' --on-error dead-letter='${dl}'`);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(records(r.stdout).length, good.length);
      assert.match(r.stderr, new RegExp(`${badLines.length} bad`));
      assert.equal(readFileSync(dl, 'utf8'), badLines.map((l) => `${l}\n`).join(''));
    });
    it(`${name}: --max-bad fails once exceeded, passes at the limit`, async () => {
      const over = await sh(`kappa ingest '${file}' --on-error skip --max-bad 1`);
      assert.equal(over.code, 3);
      assert.match(over.stderr, /too many bad records/);
      const at = await sh(`kappa ingest '${file}' --on-error skip --max-bad ${badLines.length}`);
      assert.equal(at.code, 0, at.stderr);
    });
  }

  it('CSV values: numbers only when they round-trip, empty is null, header names fields', async () => {
    const f = join(tmp.dir, 'v.tsv');
    writeFileSync(f, 'id\tcode\tamt\tnote\n1\t00123\t1.50\t\n2\t-7\t2.5\t""\n');
    const r = await sh(`kappa ingest '${f}'`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      records(r.stdout).map((l) => l.value),
      [
        { id: 1, code: '00123', amt: '1.50', note: null },
        { id: 2, code: -7, amt: 2.5, note: '' },
      ],
    );
    const semi = join(tmp.dir, 'semi.csv');
    writeFileSync(semi, 'a;b\n1;x\n');
    const s = await sh(`kappa ingest '${semi}' --delimiter ';'`);
    assert.deepEqual(records(s.stdout)[0].value, { a: 1, b: 'x' });
  });
});

describe('discovery, time, keys, watermarks', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());
  const lake = join(tmp.dir, 'lake');
  for (const [dt, hr, ts] of [
    ['2024-01-01', '00', '2024-01-01T00:10:00Z'],
    ['2024-01-01', '01', '2024-01-01T01:20:00Z'],
    ['2024-01-02', '00', '2024-01-02T00:30:00Z'],
  ]) {
    mkdirSync(join(lake, `dt=${dt}`, `hr=${hr}`), { recursive: true });
    writeFileSync(
      join(lake, `dt=${dt}`, `hr=${hr}`, 'part-0.ndjson'),
      `{"t":"${ts}","user":{"id":"u${hr}"}}\n`,
    );
  }
  writeFileSync(join(lake, 'dt=2024-01-01', '_SUCCESS'), '');
  writeFileSync(join(lake, 'dt=2024-01-01', 'hr=00', '.part-1.ndjson.inprogress-x'), '{"t":"garbage"}\n');
  mkdirSync(join(lake, '_spark_metadata'));
  writeFileSync(join(lake, '_spark_metadata', '0.ndjson'), '{"t":"garbage"}\n');

  it('walks dt=/hr= directories, adds their fields, ignores _ and . files', async () => {
    const r = await sh(`kappa ingest '${lake}' --ts-field t`);
    assert.equal(r.code, 0, r.stderr);
    const recs = records(r.stdout);
    assert.deepEqual(
      recs.map((l) => [l.value?.dt, l.value?.hr, l.ts]),
      [
        ['2024-01-01', '00', Date.parse('2024-01-01T00:10:00Z')],
        ['2024-01-01', '01', Date.parse('2024-01-01T01:20:00Z')],
        ['2024-01-02', '00', Date.parse('2024-01-02T00:30:00Z')],
      ],
    );
  });

  it('globs select files, and --key-field sets the key from a dotted path', async () => {
    const r = await sh(`kappa ingest '${lake}/dt=2024-01-01/*/*.ndjson' --ts-field t --key-field user.id`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      records(r.stdout).map((l) => [l.key, l.value?.hr]),
      [
        ['u00', '00'],
        ['u01', '01'],
      ],
    );
  });

  it('--ts-format variants and --tz', async () => {
    const cases: [string, string, string, number][] = [
      ['{"t":1704067200}', 'epoch-s', 'UTC', Date.UTC(2024, 0, 1)],
      ['{"t":1704067200123}', 'epoch-ms', 'UTC', Date.UTC(2024, 0, 1) + 123],
      ['{"t":1704067200123456}', 'epoch-us', 'UTC', Date.UTC(2024, 0, 1) + 123],
      ['{"t":"1704067200123456789"}', 'epoch-ns', 'UTC', Date.UTC(2024, 0, 1) + 123],
      ['{"t":"2024-01-01 01:00:00"}', 'iso', 'Europe/Berlin', Date.UTC(2024, 0, 1)],
      ['{"t":"2024-01-01T00:00:00+02:00"}', 'iso', 'UTC', Date.UTC(2023, 11, 31, 22)],
      ['{"t":"01/02/2024 03:04"}', '%d/%m/%Y %H:%M', 'UTC', Date.UTC(2024, 1, 1, 3, 4)],
      ['{"t":"01/02/2024 03:04"}', '%d/%m/%Y %H:%M', 'America/New_York', Date.UTC(2024, 1, 1, 8, 4)],
    ];
    for (const [line, fmt, tz, want] of cases) {
      const r = await sh(`kappa ingest - --ts-field t --ts-format '${fmt}' --tz ${tz}`, {
        input: `${line}\n`,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(records(r.stdout)[0].ts, want, `${line} ${fmt} ${tz}`);
    }
    const bad = await sh('kappa ingest - --ts-field t --tz Mars/Base', { input: '{"t":1}\n' });
    assert.equal(bad.code, 2);
  });

  it('emits bounded-out-of-orderness watermarks that never regress', async () => {
    const input = [10_000, 12_000, 11_000, 20_000, 15_000].map((t) => `{"t":${t}}`).join('\n');
    const r = await sh('kappa ingest - --ts-field t --ts-format epoch-ms --max-out-of-orderness 5s', {
      input,
    });
    assert.equal(r.code, 0, r.stderr);
    const lines = parseLines<Line>(r.stdout);
    const wms = lines.filter((l) => l.watermark !== undefined).map((l) => l.watermark);
    assert.ok(wms.length >= 1);
    assert.equal(wms.at(-1), 20_000 - 5_000 - 1);
    for (let i = 1; i < wms.length; i++) assert.ok((wms[i] as number) > (wms[i - 1] as number));
    // Every record after a watermark is later than it (no record falls behind a watermark here).
    let wm = Number.NEGATIVE_INFINITY;
    for (const l of lines) {
      if (l.watermark !== undefined) wm = l.watermark;
      if (l.ts !== undefined) assert.ok(l.ts > wm);
    }
  });

  it('`| head -1` exits 0 without a stack trace', async () => {
    const r = await sh(`kappa ingest '${FLIGHTS}' --ts-field date | head -1`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 1);
    assert.ok(!r.stderr.includes('    at '), r.stderr);
  });

  it('a non-kappa stream into `kappa sink -` exits 3 with the wrap hint', async () => {
    const r = await sh('kappa sink -', { input: '{"a":1}\n' });
    assert.equal(r.code, 3);
    assert.match(r.stderr, /kappa ingest -/);
  });
});

describe('flights-3m.parquet end to end', () => {
  it('3,000,000 records, typed header, values match DuckDB', async () => {
    const tmp = tempDir();
    try {
      const out = join(tmp.dir, 'flights.ndjson');
      const r = await sh(`kappa ingest '${FLIGHTS}' --ts-field date -q > '${out}'`);
      assert.equal(r.code, 0, r.stderr);
      const text = readFileSync(out, 'utf8');
      const lines = text.split('\n');
      if (lines.at(-1) === '') lines.pop();
      const header = JSON.parse(lines[0]) as Line;
      assert.equal(header.schema?.date, 'timestamp');
      assert.equal(header.schema?.delay, 'int64');
      assert.equal(header.schema?.origin, 'string');
      assert.equal(lines.at(-1), '{"end":true}');
      const recs = lines.filter((l) => l.startsWith('{"ts":'));
      assert.equal(recs.length, 3_000_000);
      const con = await (await DuckDBInstance.create(':memory:')).connect();
      const want = (
        await con.runAndReadAll(
          `SELECT epoch_ms(date) AS date, delay, distance, origin, destination,
             row_number() OVER () - 1 AS rn
           FROM read_parquet('${FLIGHTS}') QUALIFY rn % 99991 = 0 OR rn = 2999999`,
        )
      ).getRowObjectsJS();
      assert.ok(want.length > 25);
      for (const w of want) {
        const rec = JSON.parse(recs[Number(w.rn)]) as Line;
        assert.deepEqual(rec.value, {
          date: Number(w.date),
          delay: Number(w.delay),
          distance: Number(w.distance),
          origin: w.origin,
          destination: w.destination,
        });
        assert.equal(rec.ts, Number(w.date));
      }
    } finally {
      tmp.cleanup();
    }
  });
});
