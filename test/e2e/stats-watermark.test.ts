/**
 * Watermarks from Parquet row-group statistics (kappa-ingest(1), issue 14 scenario 3t): with
 * `--ts-field` on a timestamp (or, under `--ts-format epoch-ms`, integer) column and no
 * `--max-out-of-orderness`, ingest emits after each row group the watermark
 * `min(min of every unread row group, this file and later files) - 1`. The expected watermarks and
 * where they fall are computed from the data by DuckDB (row-group sizes from `parquet_metadata`,
 * each group's least event time from the rows themselves, `file_row_number`), never from kappa.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { sh, tempDir } from '../helpers.js';

const ROWS = 10_000;
/** Sub-millisecond instants, some before 1970 (floored to the ms that contains them). */
const TS = `TIMESTAMP '1969-12-31 12:00:00' + INTERVAL (i * 7) SECOND + INTERVAL (i * 1001) MICROSECOND`;

type Event = { wm: number } | { ts: number };

/** The ingest stream as events: records (their ts) and watermarks, in order. */
function events(stdout: string): Event[] {
  const out: Event[] = [];
  for (const l of stdout.split('\n')) {
    if (l === '') continue;
    const o = JSON.parse(l) as { ts?: number; watermark?: number };
    if (typeof o.watermark === 'number') out.push({ wm: o.watermark });
    else if (typeof o.ts === 'number') out.push({ ts: o.ts });
  }
  return out;
}

/** (records before it, watermark) for every watermark of the stream. */
function watermarks(ev: Event[]): [number, number][] {
  const out: [number, number][] = [];
  let n = 0;
  for (const e of ev) {
    if ('ts' in e) n++;
    else out.push([n, e.wm]);
  }
  return out;
}

/** No record comes after a watermark at or above its event time (kappa-stream(5)). */
function assertSound(ev: Event[]): void {
  let w = Number.NEGATIVE_INFINITY;
  for (const e of ev) {
    if ('wm' in e) {
      assert.ok(e.wm > w, 'watermarks never go backwards');
      w = e.wm;
    } else assert.ok(e.ts > w, `record ts ${e.ts} after watermark ${w}`);
  }
}

describe('kappa ingest: watermarks from Parquet row-group statistics', () => {
  const tmp = tempDir();
  let con: DuckDBConnection;
  const f = (name: string) => `${tmp.dir}/${name}`;
  const duck = async (sql: string): Promise<Record<string, unknown>[]> =>
    (await con.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[];

  /**
   * The watermarks the statistics rule gives for these files read in order, with the number of
   * records before each: group sizes from parquet_metadata, group mins from the rows (ms, floored).
   */
  async function expected(files: string[], ms: string): Promise<[number, number][]> {
    const groups: { rows: number; min: number }[] = [];
    for (const file of files) {
      const sizes = await duck(
        `SELECT DISTINCT row_group_id AS g, row_group_num_rows::BIGINT AS n FROM parquet_metadata('${file}') ORDER BY g`,
      );
      let start = 0;
      for (const s of sizes) {
        const n = Number(s.n);
        const [m] = await duck(
          `SELECT min(${ms})::BIGINT AS m FROM read_parquet('${file}', file_row_number = true) WHERE file_row_number >= ${start} AND file_row_number < ${start + n}`,
        );
        groups.push({ rows: n, min: m.m === null ? Number.POSITIVE_INFINITY : Number(m.m) });
        start += n;
      }
    }
    const out: [number, number][] = [];
    let before = 0;
    let last = Number.NEGATIVE_INFINITY;
    for (let g = 0; g < groups.length - 1; g++) {
      before += groups[g].rows;
      const w = Math.min(...groups.slice(g + 1).map((x) => x.min)) - 1;
      if (Number.isFinite(w) && w > last) {
        out.push([before, w]);
        last = w;
      }
    }
    return out;
  }

  before(async () => {
    con = await (await DuckDBInstance.create(':memory:')).connect();
    const src = `SELECT i, ${TS} AS ts, epoch_ms(TIMESTAMP '2024-01-01' + INTERVAL (i * 7) SECOND) AS t_ms,
      'k' || (i % 3) AS k, (i % 100)::BIGINT AS v, strftime(${TS}, '%Y-%m-%d %H:%M:%S') AS ts_text FROM range(0, ${ROWS}) r(i)`;
    const copy = (sql: string, name: string) =>
      con.run(`COPY (${sql}) TO '${f(name)}' (FORMAT parquet, ROW_GROUP_SIZE 2048)`);
    await copy(`${src} ORDER BY i`, 'sorted.parquet');
    await copy(`${src} ORDER BY hash(i)`, 'unsorted.parquet');
    // Two files whose listing order is not time order: the second holds the earlier half.
    await copy(`SELECT * FROM (${src}) WHERE i >= 5000 ORDER BY i`, 'a-late.parquet');
    await copy(`SELECT * FROM (${src}) WHERE i < 5000 ORDER BY i`, 'b-early.parquet');
    // hyparquet-writer with and without statistics (DuckDB always writes them).
    const write = (name: string, from: number, stats: boolean) => {
      const n = 4000;
      const ts = Array.from({ length: n }, (_, j) => new Date(1_700_000_000_000 + (from + j) * 1000));
      const k = Array.from({ length: n }, (_, j) => `k${j % 3}`);
      const buf = parquetWriteBuffer({
        columnData: [
          { name: 'ts', data: ts, type: 'TIMESTAMP', statistics: stats },
          { name: 'k', data: k, type: 'STRING' },
        ],
        rowGroupSize: 1000,
      });
      writeFileSync(f(name), new Uint8Array(buf));
    };
    write('h-stats.parquet', 0, true);
    write('h-nostats.parquet', 4000, false);
  });
  after(() => tmp.cleanup());

  const ingest = async (args: string): Promise<Event[]> => {
    const r = await sh(`kappa ingest ${args} -q --stream-format ndjson`);
    assert.equal(r.code, 0, r.stderr);
    return events(r.stdout);
  };
  const FLOOR_MS = 'floor(epoch_us(ts) / 1000)';

  it('sorted file: a watermark after each row group, the next group’s min - 1', async () => {
    const ev = await ingest(`${f('sorted.parquet')} --ts-field ts`);
    const want = await expected([f('sorted.parquet')], FLOOR_MS);
    assert.ok(want.length >= 4, `expected several row groups, got ${JSON.stringify(want)}`);
    assert.ok(want[0][1] < 0, 'the first groups are before 1970 (floored negative ms)');
    assert.deepEqual(watermarks(ev), want);
    assertSound(ev);
    assert.equal(ev.filter((e) => 'ts' in e).length, ROWS);
  });

  it('unsorted file: only the watermarks the unread groups’ mins allow', async () => {
    const ev = await ingest(`${f('unsorted.parquet')} --ts-field ts`);
    assert.deepEqual(watermarks(ev), await expected([f('unsorted.parquet')], FLOOR_MS));
    assertSound(ev);
  });

  it('several files: a later file’s groups hold the watermark back', async () => {
    const files = [f('a-late.parquet'), f('b-early.parquet')];
    const ev = await ingest(`${files.join(' ')} --ts-field ts`);
    const want = await expected(files, FLOOR_MS);
    assert.deepEqual(watermarks(ev), want);
    // While the first file is read, nothing above the second file's least time - 1.
    const [early] = await duck(`SELECT min(${FLOOR_MS})::BIGINT AS m FROM read_parquet('${files[1]}')`);
    const firstFile = watermarks(ev).filter(([n]) => n <= 5000);
    assert.ok(firstFile.every(([, w]) => w <= Number(early.m) - 1));
    assertSound(ev);
  });

  it('integer epoch-ms column under --ts-format epoch-ms; none under auto or for strings', async () => {
    const ev = await ingest(`${f('sorted.parquet')} --ts-field t_ms --ts-format epoch-ms`);
    const want = await expected([f('sorted.parquet')], 't_ms');
    assert.ok(want.length >= 4);
    assert.deepEqual(watermarks(ev), want);
    // auto guesses the unit by magnitude (not monotonic); a string column has no usable order.
    assert.deepEqual(watermarks(await ingest(`${f('sorted.parquet')} --ts-field t_ms`)), []);
    assert.deepEqual(watermarks(await ingest(`${f('sorted.parquet')} --ts-field ts_text`)), []);
  });

  it('no statistics: no watermark while a group without them is unread', async () => {
    assert.deepEqual(watermarks(await ingest(`${f('h-nostats.parquet')} --ts-field ts`)), []);
    assert.deepEqual(
      watermarks(await ingest(`${f('h-stats.parquet')} ${f('h-nostats.parquet')} --ts-field ts`)),
      [],
    );
    // Stats only in the last file: watermarks from the end of the first file on (its 4,000 rows).
    const ev = await ingest(`${f('h-nostats.parquet')} ${f('h-stats.parquet')} --ts-field ts`);
    assert.deepEqual(
      watermarks(ev).map(([n]) => n),
      [4000, 5000, 6000, 7000],
    );
    assertSound(ev);
  });

  it('--max-out-of-orderness replaces the statistics rule', async () => {
    const ev = await ingest(`${f('unsorted.parquet')} --ts-field ts --max-out-of-orderness 1h`);
    const ws = watermarks(ev);
    assert.ok(ws.length > 0);
    assert.notDeepEqual(ws, await expected([f('unsorted.parquet')], FLOOR_MS));
  });

  it('window over several files equals DuckDB’s GROUP BY, and nothing is late', async () => {
    const files = [f('a-late.parquet'), f('b-early.parquet'), f('unsorted.parquet')];
    const late = f('late.kappa');
    const r = await sh(
      `kappa ingest ${files.join(' ')} --ts-field ts -q | kappa window --key k --tumbling 1h --agg 'count, sum(v)' --late-output ${late} -q | kappa sink - -q`,
    );
    assert.equal(r.code, 0, r.stderr);
    const got = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { k: string; window_start: number; count: number; sum_v: number })
      .map((g) => `${g.k} ${g.window_start} ${g.count} ${g.sum_v}`)
      .sort();
    const want = (
      await duck(`SELECT k, epoch_ms(time_bucket(INTERVAL 1 HOUR, ts)) AS s, count(*)::BIGINT AS n,
        sum(v)::BIGINT AS sv FROM read_parquet([${files.map((x) => `'${x}'`).join(',')}]) GROUP BY ALL`)
    )
      .map((w) => `${w.k} ${w.s} ${w.n} ${w.sv}`)
      .sort();
    assert.equal(got.length, want.length);
    assert.deepEqual(got, want);
    const lateLines = (await sh(`cat ${late}`)).stdout.split('\n').filter((l) => l.startsWith('{"ts"'));
    assert.deepEqual(lateLines, []);
  });
});
