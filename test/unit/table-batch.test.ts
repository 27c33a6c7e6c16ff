/**
 * The batch path of the Parquet sinks (issue 14): a version-2 stream written into a table (or a
 * single file) through `writeBatch` gives byte for byte the files, the Delta `add` actions (paths,
 * partition values, stats) and the bad records of the row path (`write` per record), for random
 * streams: types, nulls, '' and null partition values, missing fields and bad records (which send
 * a batch down the row path), watermarks between batches, rolling by records and by size.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, describe, it } from 'node:test';
import '../../src/storage/local.js';
import type { RecordSink } from '../../src/connectors/sink.js';
import { singleFileSink, tableSink } from '../../src/connectors/table.js';
import type { Location } from '../../src/errors.js';
import { BadRecords } from '../../src/stream/badrecords.js';
import { readStream } from '../../src/stream/input.js';
import type { Header, Rec } from '../../src/stream/protocol.js';
import { openStreamWriter } from '../../src/stream/writer.js';
import { SINK_LIMITS } from '../../src/table/sink/index.js';
import { mulberry32 as rng, tempDir } from '../helpers.js';

type Ev = { record: Rec } | { watermark: number };

const DAY = 86_400_000;
const T0 = Date.UTC(2024, 0, 1);

/** Random records: declared and inferred columns of every type the sink writes, nulls, '' values. */
function stream(seed: number, n: number, opts: { bad: boolean; missing: boolean }): Ev[] {
  const r = rng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)];
  const evs: Ev[] = [];
  let ts = T0;
  for (let i = 0; i < n; i++) {
    ts += Math.floor(r() * DAY * 0.2);
    const value: Record<string, unknown> = {
      cat: pick(['a', 'b', 'c/d', '', null, 'é%']),
      s: r() < 0.1 ? null : pick(['x', 'yy', 'zzz', '\uE000', '😀', '']),
      i: r() < 0.1 ? null : Math.floor((r() - 0.5) * 1e6),
      f: r() < 0.1 ? null : (r() - 0.5) * 1e3,
      // Few distinct doubles (a dictionary-encoded DOUBLE chunk), 0 and -0 among them.
      g: r() < 0.1 ? null : pick([0.5, -1.25, 0, -0, 3.75, 1e300, -2.5e-300]),
      b: r() < 0.1 ? null : r() < 0.5,
      o: r() < 0.3 ? null : { k: pick([1, 'two', [3]]) },
      t: r() < 0.1 ? null : T0 + Math.floor(r() * 1e9),
      d: r() < 0.1 ? null : pick(['2024-01-01', '1999-12-31', '2038-01-19']),
      n: Math.floor(r() * 3),
      // A json column (its first value is an object) whose later batches hold only integers.
      m: i < 3 ? { x: i } : r() < 0.1 ? null : i,
    };
    if (opts.missing && r() < 0.01) delete value.f;
    if (opts.bad && r() < 0.005) value.i = 'not a number';
    evs.push({ record: { ts, key: r() < 0.5 ? null : `k${i % 7}`, value } });
    // A watermark ends the writer's pending batch: batches of random sizes.
    if (r() < 0.01) evs.push({ watermark: ts - DAY });
  }
  return evs;
}

const HEADER: Header = { kappa: 1, schema: { t: 'timestamptz', d: 'date' } };

/** The events as a version-2 (Arrow) stream. */
function encode(evs: Ev[]): Promise<Buffer> {
  const pt = new PassThrough();
  const chunks: Buffer[] = [];
  pt.on('data', (c: Buffer) => chunks.push(c));
  const w = openStreamWriter(pt, 'arrow');
  w.header(HEADER);
  for (const e of evs) {
    if ('record' in e) w.record(e.record);
    else w.watermark(e.watermark);
  }
  w.endEvent();
  return w.close().then(() => Buffer.concat(chunks));
}

/** Bad records as reported: where and why. */
class Collected extends BadRecords {
  readonly seen: string[] = [];
  constructor() {
    super({ mode: 'skip' });
  }
  override report(loc: Location, reason: string, raw: string): void {
    this.seen.push(`${JSON.stringify(loc)} ${reason} ${raw}`);
    super.report(loc, reason, raw);
  }
}

/** Pumps the stream into a sink, through its batch path or record by record. */
async function run(
  buf: Buffer,
  sink: RecordSink,
  batches: boolean,
): Promise<{ columnar: number; rows: number }> {
  let rows = 0;
  let columnar = 0;
  const write = sink.write.bind(sink);
  // Counts the records that reach the row path (writeBatch falls back to write per record).
  sink.write = (r, line) => {
    rows++;
    return write(r, line);
  };
  await readStream(
    (async function* () {
      for (let i = 0; i < buf.length; i += 1 << 16) yield buf.subarray(i, i + (1 << 16));
    })(),
    {
      header: (h) => sink.open(h),
      record: (r, line) => sink.write(r, line),
      ...(batches
        ? {
            batch: async (b, first) => {
              const before = rows;
              await sink.writeBatch?.(b, first);
              if (rows === before) columnar += b.length;
            },
          }
        : {}),
      watermark: (wm) => sink.watermark(wm),
      barrier: () => {},
      end: async () => {
        await sink.commit();
      },
      stop: () => {},
      afterBatch: () => sink.afterBatch?.(),
    },
  );
  return { columnar, rows };
}

/** Every file below `dir` (the run id in part names made neutral) -> its bytes. */
function files(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) {
        if (e !== '_delta_log' && e !== '_kappa') walk(p);
      } else if (e.endsWith('.parquet'))
        out.set(relative(dir, p).replace(/-[0-9a-f]{16}\./, '-RUN.'), readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

/** The `add` actions of every log version: path (run id neutral), partition values, stats. */
function adds(dir: string): unknown[] {
  const log = join(dir, '_delta_log');
  const out: unknown[] = [];
  for (const f of readdirSync(log)
    .filter((x) => x.endsWith('.json'))
    .sort())
    for (const line of readFileSync(join(log, f), 'utf8').split('\n').filter(Boolean)) {
      const a = JSON.parse(line) as { add?: { path: string; partitionValues: unknown; stats: string } };
      if (a.add)
        out.push({
          path: a.add.path.replace(/-[0-9a-f]{16}\./, '-RUN.'),
          partitionValues: a.add.partitionValues,
          stats: JSON.parse(a.add.stats),
        });
    }
  return out;
}

describe('sink batch path', () => {
  const tmp = tempDir('kappa-table-batch-');
  after(() => tmp.cleanup());

  const cases = [
    { seed: 1, n: 3000, spec: 'dt=%Y-%m-%d', rollRecords: undefined, bad: false, missing: false },
    { seed: 2, n: 1500, spec: 'dt=%Y-%m-%d/{cat}', rollRecords: 97, bad: true, missing: false },
    { seed: 3, n: 4000, spec: '{cat}/{n}', rollRecords: 500, bad: false, missing: true },
    { seed: 4, n: 600, spec: 'm=%Y-%m/{n}', rollRecords: 1, bad: true, missing: false },
    { seed: 5, n: 3000, spec: undefined, rollRecords: 257, bad: false, missing: false },
  ];
  for (const c of cases)
    it(`gives the row path's files, Delta stats and bad records (seed ${c.seed}, ${c.spec ?? 'no partitions'}, roll ${c.rollRecords ?? '-'})`, async () => {
      const buf = await encode(stream(c.seed, c.n, c));
      const out: { files: Map<string, Buffer>; adds: unknown[]; bad: string[]; columnar: number }[] = [];
      for (const batches of [false, true]) {
        const dir = join(tmp.dir, `t${c.seed}-${batches}`);
        const bad = new Collected();
        const sink = await tableSink.create(dir, {
          partitionBy: c.spec,
          rollRecords: c.rollRecords,
          bad,
        });
        const { columnar } = await run(buf, sink, batches);
        out.push({ files: files(dir), adds: adds(dir), bad: bad.seen, columnar });
      }
      const [rows, cols] = out;
      // Bad records and missing fields send their batches down the row path; the others go columnar.
      const share = c.bad || c.missing ? 0.1 : 0.5;
      assert.ok(cols.columnar > c.n * share, `the batch path took ${cols.columnar} of ${c.n} records`);
      assert.equal(rows.columnar, 0);
      assert.deepEqual([...cols.files.keys()].sort(), [...rows.files.keys()].sort());
      for (const [k, v] of rows.files) assert.ok(v.equals(cols.files.get(k) as Buffer), `${k} differs`);
      assert.deepEqual(cols.adds, rows.adds);
      assert.deepEqual(cols.bad, rows.bad);
      assert.ok(rows.files.size > 0);
    });

  it('rolls at the same row groups by size (--roll-size)', async () => {
    const buf = await encode(stream(9, 6000, { bad: false, missing: false }));
    const got: Map<string, Buffer>[] = [];
    for (const batches of [false, true]) {
      const dir = join(tmp.dir, `size-${batches}`);
      const sink = await tableSink.create(dir, { partitionBy: '{n}', rollSize: 2000, rollRecords: 300 });
      await run(buf, sink, batches);
      got.push(files(dir));
    }
    assert.ok(got[0].size > 3, `${got[0].size} files`);
    assert.deepEqual([...got[1].keys()].sort(), [...got[0].keys()].sort());
    for (const [k, v] of got[0]) assert.ok(v.equals(got[1].get(k) as Buffer), `${k} differs`);
  });

  it('writes the largest buffer where the row path does when too many rows are buffered', async () => {
    const buf = await encode(stream(11, 4000, { bad: false, missing: false }));
    const got: Map<string, Buffer>[] = [];
    const saved = SINK_LIMITS.maxBufferedRows;
    SINK_LIMITS.maxBufferedRows = 97;
    try {
      for (const batches of [false, true]) {
        const dir = join(tmp.dir, `max-${batches}`);
        const sink = await tableSink.create(dir, { partitionBy: '{cat}/{n}' });
        await run(buf, sink, batches);
        got.push(files(dir));
      }
    } finally {
      SINK_LIMITS.maxBufferedRows = saved;
    }
    assert.deepEqual([...got[1].keys()].sort(), [...got[0].keys()].sort());
    for (const [k, v] of got[0]) assert.ok(v.equals(got[1].get(k) as Buffer), `${k} differs`);
  });

  it('writes a single Parquet file the same way', async () => {
    const buf = await encode(stream(7, 5000, { bad: true, missing: true }));
    const bytes: Buffer[] = [];
    for (const batches of [false, true]) {
      const file = join(tmp.dir, `single-${batches}.parquet`);
      const sink = await singleFileSink.create(file, { bad: new Collected() });
      await run(buf, sink, batches);
      bytes.push(readFileSync(file));
    }
    assert.ok(bytes[0].equals(bytes[1]), 'the single files differ');
  });
});
