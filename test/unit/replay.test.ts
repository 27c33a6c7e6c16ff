/**
 * kappa replay's pure plan (epochs, watermarks, extra partitions, statistics), the explicit
 * watermark hook of the source runtime, the replay source's position and resume, and the
 * hand-over's offset text (issue 11).
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, describe, it } from 'node:test';
import type { RecordSource } from '../../src/connectors/source.js';
import type { RowBatch } from '../../src/formats/format.js';
import '../../src/storage/local.js';
import { parseRate } from '../../src/commands/replay.js';
import { openArchive, splitNamed, tsFieldFor } from '../../src/replay/archive.js';
import { HandoverSource, offsetsText, recordedStart } from '../../src/replay/handover.js';
import { type PlanPartition, planEpochs } from '../../src/replay/plan.js';
import { ReplaySource } from '../../src/replay/source.js';
import { BadRecords } from '../../src/stream/badrecords.js';
import { Progress } from '../../src/stream/progress.js';
import { runSource } from '../../src/stream/source.js';
import { parseLines, tempDir } from '../helpers.js';

const H = 3_600_000;
const D = 24 * H;
const T0 = Date.UTC(2024, 0, 1);

function part(source: number, start: number, len: number, minTs?: number): PlanPartition {
  return {
    source,
    start,
    end: start + len,
    path: `p${source}-${start}`,
    files: [{ uri: `f${source}-${start}`, size: 1, fields: {}, minTs }],
  };
}

describe('replay plan (pure)', () => {
  it('one epoch per partition, watermark = end - 1 ms, oldest first across sources', () => {
    const parts = [part(1, T0 + H, H), part(0, T0, H), part(0, T0 + H, H), part(1, T0, H)];
    const e = planEpochs(parts, { from: -Infinity, to: Infinity, extra: 0 });
    assert.equal(e.length, 2);
    assert.deepEqual(
      e.map((x) => x.parts.map((p) => p.source)),
      [
        [0, 1],
        [0, 1],
      ],
    );
    assert.deepEqual(
      e.map((x) => x.watermark),
      [T0 + H - 1, T0 + 2 * H - 1],
    );
  });

  it('a daily source beside an hourly one paces both by the day', () => {
    const parts: PlanPartition[] = [part(1, T0, D), part(1, T0 + D, D)];
    for (let h = 0; h < 48; h++) parts.push(part(0, T0 + h * H, H));
    const e = planEpochs(parts, { from: -Infinity, to: Infinity, extra: 0 });
    assert.equal(e.length, 2);
    assert.equal(e[0].parts.length, 25);
    assert.deepEqual(
      e.map((x) => [x.start, x.end, x.watermark]),
      [
        [T0, T0 + D, T0 + D - 1],
        [T0 + D, T0 + 2 * D, T0 + 2 * D - 1],
      ],
    );
  });

  it('--from/--to select overlapping partitions; --extra-partitions N reads N more and lags the watermark by N', () => {
    const parts: PlanPartition[] = [];
    for (let h = 0; h < 10; h++) parts.push(part(0, T0 + h * H, H));
    const range = { from: T0 + 2 * H, to: T0 + 5 * H, extra: 0 };
    const e = planEpochs(parts, range);
    assert.deepEqual(
      e.map((x) => x.start),
      [T0 + 2 * H, T0 + 3 * H, T0 + 4 * H],
    );
    const x = planEpochs(parts, { ...range, extra: 1 });
    assert.deepEqual(
      x.map((p) => [p.start, p.extra, p.watermark]),
      [
        [T0 + 2 * H, false, -Infinity],
        [T0 + 3 * H, false, T0 + 3 * H - 1],
        [T0 + 4 * H, false, T0 + 4 * H - 1],
        [T0 + 5 * H, true, T0 + 5 * H - 1],
      ],
    );
  });

  it('Delta statistics: a later file with rows before its partition holds the watermark back', () => {
    const parts = [part(0, T0, H), part(0, T0 + H, H), part(0, T0 + 2 * H, H, T0 + 30 * 60_000)];
    const e = planEpochs(parts, { from: -Infinity, to: Infinity, extra: 0 });
    assert.deepEqual(
      e.map((x) => x.watermark),
      [T0 + 30 * 60_000 - 1, T0 + 30 * 60_000 - 1, T0 + 3 * H - 1],
    );
  });
});

describe('replay flags and names', () => {
  it('parses rates, NAME=SOURCE and per-source --ts-field', () => {
    assert.equal(parseRate('50000/s'), 50000);
    assert.equal(parseRate('600/m'), 10);
    assert.throws(() => parseRate('fast'), /not a rate/);
    assert.deepEqual(splitNamed('rides=s3://lake/rides'), { name: 'rides', source: 's3://lake/rides' });
    assert.deepEqual(splitNamed('lake/rides'), { name: 'lake/rides', source: 'lake/rides' });
    assert.equal(tsFieldFor(['ts', 'b=when'], 'b'), 'when');
    assert.equal(tsFieldFor(['ts', 'b=when'], 'a'), 'ts');
  });

  it('the hand-over starts at the recorded offsets of the topic only', () => {
    const o = { rides: { '1': '40', '0': '17' }, other: { '0': '5' } };
    assert.deepEqual(recordedStart(o, 'rides'), { '1': '40', '0': '17' });
    assert.equal(recordedStart(o, 'fares'), undefined);
    assert.equal(offsetsText({ '1': '40', '0': '17', '10': '3' }), '0:17,1:40,10:3');
  });
});

/** Runs a source through runSource and returns the stream lines. */
async function run(src: RecordSource): Promise<Record<string, unknown>[]> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  await runSource({
    sources: [src],
    tsFormat: 'auto',
    tz: 'UTC',
    bad: new BadRecords(),
    progress: new Progress('test', true),
    output: out,
  });
  return parseLines(Buffer.concat(chunks).toString());
}

describe('explicit watermarks in the source runtime', () => {
  it('rows of a batch with an explicit watermark do not move it; the stated one goes out', async () => {
    const batch = (ts: number[], wm: number): RowBatch => ({
      rows: ts.map((t) => ({ t })),
      where: () => ({ source: 'mem' }),
      raw: () => '',
      nativeTs: (i) => ts[i],
      watermark: wm,
    });
    const src: RecordSource = {
      progressUnit: 'rows',
      defaultMaxOutOfOrdernessMs: 0, // would emit 500 after the first batch if rows counted
      async *batches() {
        yield batch([500, 100], Number.NEGATIVE_INFINITY);
        yield batch([], 999);
        yield batch([2000], 999);
      },
      async close() {},
    };
    const lines = await run(src);
    const wms = lines.filter((l) => 'watermark' in l).map((l) => l.watermark);
    assert.deepEqual(wms, [999]);
    assert.equal(lines.filter((l) => 'ts' in l).length, 3);
  });
});

describe('replay source: position and resume', () => {
  const t = tempDir('kappa-replay-unit-');
  after(() => t.cleanup());
  // A Hive table without a Delta log: 3 hours, 2 files each, 5 rows per file.
  for (let h = 0; h < 3; h++) {
    const dir = join(t.dir, 'dt=2024-01-01', `hr=0${h}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < 2; f++) {
      const rows = [];
      for (let i = 0; i < 5; i++)
        rows.push(JSON.stringify({ id: h * 10 + f * 5 + i, ts: T0 + h * H + (f * 5 + i) * 1000 }));
      writeFileSync(join(dir, `part-${f}.ndjson`), `${rows.join('\n')}\n`);
    }
  }

  async function source(startAt?: ReplaySource['position'] extends () => infer P ? P : never) {
    const a = await openArchive(t.dir, 0, { tz: 'UTC', tsField: ['ts'], tsFormat: 'epoch-ms' });
    // --max-rate 40/s cuts batches into slices of 2 rows (clock and sleep stubbed: no waiting).
    return new ReplaySource({
      archives: [a],
      range: { from: -Infinity, to: Infinity, extra: 0 },
      startAt,
      maxRate: 40,
      now: () => 0,
      sleep: async () => {},
    });
  }

  async function ids(s: ReplaySource, stopAfterRows?: number): Promise<number[]> {
    const out: number[] = [];
    for await (const b of s.batches()) {
      for (const r of b.rows) out.push((r as { id: number }).id);
      if (stopAfterRows !== undefined && out.length >= stopAfterRows) break;
    }
    return out;
  }

  it('lists partitions from the paths and replays every row once, hour by hour', async () => {
    const s = await source();
    assert.equal(s.epochs.length, 3);
    const got = await ids(s);
    assert.deepEqual(
      got,
      [...Array(30).keys()].map((i) => Math.floor(i / 10) * 10 + (i % 10)),
    );
  });

  it('resumes inside the partition in progress from a position taken mid-file', async () => {
    const all = await ids(await source());
    // Slices of 2 rows: stop after 13 rows, in the middle of the first file of hour 1.
    const s = await source();
    const first = await ids(s, 13);
    assert.equal(first.length, 14);
    const pos = s.position();
    assert.deepEqual([pos.kind, pos.epoch, pos.part, pos.file, pos.rows], ['replay', 1, 0, 0, 4]);
    const rest = await ids(await source(pos));
    assert.deepEqual([...first, ...rest], all);
  });

  it('refuses a position of another plan', async () => {
    await assert.rejects(
      source({ kind: 'replay', epoch: 1, start: 0, part: 0, file: 0, uri: null, rows: 0 }),
      /cannot resume replay/,
    );
  });
});

describe('hand-over (fake topic)', () => {
  const t = tempDir('kappa-replay-handover-');
  after(() => t.cleanup());
  // Archive: hour 0 and 1 with rows {p, o, ts}: partition 0 offsets 0..3 archived.
  for (let h = 0; h < 2; h++) {
    const dir = join(t.dir, 'dt=2024-01-01', `hr=0${h}`);
    mkdirSync(dir, { recursive: true });
    const rows = [0, 1].map((i) => JSON.stringify({ p: 0, o: h * 2 + i, ts: T0 + h * H + i * 1000 }));
    writeFileSync(join(dir, 'part-0.ndjson'), `${rows.join('\n')}\n`);
  }

  /** A topic of one partition holding offsets `from…7` ({p, o, ts}), as the Kafka source delivers them. */
  function topic(from: number): RecordSource {
    const offs = [...Array(8 - from).keys()].map((i) => from + i);
    const row = (o: number) => ({ p: 0, o, ts: T0 + H + 30 * 60_000 + o * 1000 });
    return {
      progressUnit: 'rows',
      defaultMaxOutOfOrdernessMs: 0,
      splits: () => ['kafka partition 0'],
      async *batches() {
        yield {
          rows: offs.map(row),
          where: () => ({ source: 'kafka' }),
          raw: () => '',
          split: 'kafka partition 0',
          nativeTs: () => 0, // the Kafka timestamp: replaced by the archive's event-time field
          prov: (i) => ({ source: 'kafka://x/t', partition: 0, offset: String(offs[i]) }),
        };
      },
      async close() {},
    };
  }

  async function handover(o: {
    offsets: boolean;
    fields: boolean;
  }): Promise<{ lines: Record<string, unknown>[]; from: string[] }> {
    const a = await openArchive(t.dir, 0, { tz: 'UTC', tsField: ['ts'], tsFormat: 'epoch-ms' });
    const replay = new ReplaySource({
      archives: [a],
      range: { from: -Infinity, to: Infinity, extra: 0 },
      openEnd: true,
    });
    const from: string[] = [];
    const h = new HandoverSource({
      replay,
      topic: 't',
      start: o.offsets
        ? { kind: 'offsets', offsets: { '0': '4' } }
        : { kind: 'time', overlapMs: 2000, offsetFields: o.fields ? ['p', 'o'] : undefined },
      openTopic: async (pos) => {
        from.push(pos);
        return topic(o.offsets ? 4 : 2);
      },
      tsField: 'ts',
      tsFormat: 'epoch-ms',
      tz: 'UTC',
      note: () => {},
    });
    return { lines: await run(h), from };
  }

  it('offsets: the topic starts at the recorded offsets; archive first, every offset once', async () => {
    const { lines, from } = await handover({ offsets: true, fields: false });
    assert.deepEqual(from, ['0:4']);
    const recs = lines.filter((l) => 'ts' in l) as { value: { o: number }; ts: number }[];
    assert.deepEqual(
      recs.map((r) => r.value.o),
      [0, 1, 2, 3, 4, 5, 6, 7],
    );
    // Watermarks: end of hour 0, none for the open hour 1, then the topic's (max ts − 1).
    const wms = lines.filter((l) => 'watermark' in l).map((l) => l.watermark);
    assert.deepEqual(wms, [T0 + H - 1, T0 + H + 30 * 60_000 + 7000 - 1]);
  });

  it('timestamp fallback: starts at the largest event time minus --overlap and drops archived (partition, offset)', async () => {
    const { lines, from } = await handover({ offsets: false, fields: true });
    assert.deepEqual(from, [new Date(T0 + H + 1000 - 2000).toISOString()]);
    const os = lines.filter((l) => 'ts' in l).map((l) => (l.value as { o: number }).o);
    assert.deepEqual(os, [0, 1, 2, 3, 4, 5, 6, 7]);
    const dup = await handover({ offsets: false, fields: false });
    assert.equal(
      dup.lines.filter((l) => 'ts' in l).length,
      10,
      'without --offset-fields the overlap comes twice',
    );
  });
});
