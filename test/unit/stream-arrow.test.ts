/**
 * Protocol version 2 (Arrow IPC, src/stream/arrow.ts): a stream written in version 2 reads back as
 * exactly the events the same stream gives in version 1 (the definition of its content), through
 * arbitrary chunk boundaries; concatenation, schema growth and cut-off detection hold.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { RuntimeError } from '../../src/errors.js';
import type { Collector, Operator } from '../../src/ops/operator.js';
import { BadRecords } from '../../src/stream/badrecords.js';
import type { RecordBatch } from '../../src/stream/batch.js';
import { readStream, type StreamConsumer } from '../../src/stream/input.js';
import { Progress } from '../../src/stream/progress.js';
import type { Barrier, Header, Rec, StopInfo } from '../../src/stream/protocol.js';
import { runOperator } from '../../src/stream/run.js';
import { ARROW_LINGER_MS, openStreamWriter } from '../../src/stream/writer.js';

type Ev =
  | { header: Header }
  | { record: Rec }
  | { watermark: number }
  | { barrier: Barrier }
  | { end: true }
  | { stop: StopInfo };

const HEADER: Header = { kappa: 1, schema: { s: 'string', i: 'int64', t: 'timestamptz' } };
const EVENTS: Ev[] = [
  { header: HEADER },
  {
    record: {
      ts: 1,
      key: 'a',
      value: { s: 'x', i: 1, t: 1_700_000_000_000, f: 1.5, b: true, n: null, o: { z: [1, 'two'] } },
      prov: { source: 'f.parquet', offset: 3 },
    },
  },
  { record: { ts: 2, key: null, value: { s: 'y', i: '12345678901234567890' }, headers: { h: 'v' } } },
  { record: { ts: 3, key: null, value: [1, 2] } },
  { record: { ts: 4, key: 'k', value: 42 } },
  { record: { ts: 5, key: null, value: null } },
  { record: { ts: -5, key: null, value: { $x: 1, i: 2 ** 53 + 2, f: 2 } } },
  { watermark: 10 },
  { barrier: { id: 1, positions: { a: 1 } } },
  { watermark: 10 }, // not advancing: dropped by both readers
  // new fields and a changed type: a new segment in version 2
  { record: { ts: 11, key: 'z', value: { s: 'w', extra: 'new', f: 'now a string' } } },
  { record: { ts: 12, key: 'z', value: {} } },
  { end: true },
];

function write(events: Ev[], format: 'ndjson' | 'arrow'): Promise<Buffer> {
  const pt = new PassThrough();
  const chunks: Buffer[] = [];
  pt.on('data', (c: Buffer) => chunks.push(c));
  const w = openStreamWriter(pt, format);
  for (const e of events) {
    if ('header' in e) w.header(e.header);
    else if ('record' in e) w.record(e.record);
    else if ('watermark' in e) w.watermark(e.watermark);
    else if ('barrier' in e) w.barrier(e.barrier);
    else w.endEvent();
  }
  return w.close().then(() => Buffer.concat(chunks));
}

async function* pieces(b: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

async function read(
  b: Buffer,
  size = 1 << 20,
  batches = false,
): Promise<{ events: Ev[]; batches: RecordBatch[]; lines: number[] }> {
  const events: Ev[] = [];
  const lines: number[] = [];
  const got: RecordBatch[] = [];
  const c: StreamConsumer = {
    header: (h) => {
      events.push({ header: h });
    },
    record: (r, line) => {
      lines.push(line);
      events.push({ record: r });
    },
    watermark: (wm) => {
      events.push({ watermark: wm });
    },
    barrier: (bar) => {
      events.push({ barrier: bar });
    },
    end: () => {
      events.push({ end: true });
    },
    stop: (st) => {
      events.push({ stop: st });
    },
  };
  if (batches) c.batch = (bb) => void got.push(bb);
  await readStream(pieces(b, size), c);
  return { events, batches: got, lines };
}

/** A record as version 1 carries it (key null when absent). */
function norm(events: Ev[]): Ev[] {
  return events.map((e) => ('record' in e ? { record: { ...e.record, key: e.record.key ?? null } } : e));
}

describe('stream protocol version 2 (Arrow IPC)', () => {
  it('starts with the IPC continuation marker and reads back as the same events as version 1', async () => {
    const v1 = await write(EVENTS, 'ndjson');
    const v2 = await write(EVENTS, 'arrow');
    assert.equal(v1[0], 0x7b);
    assert.deepEqual([...v2.subarray(0, 4)], [0xff, 0xff, 0xff, 0xff]);
    const want = (await read(v1)).events;
    assert.equal(want.length, EVENTS.length - 1); // the repeated watermark
    assert.deepEqual(norm(want), norm(EVENTS.filter((_, i) => i !== 9)));
    for (const size of [1 << 20, 7, 64])
      assert.deepEqual((await read(v2, size)).events, want, `chunks of ${size}`);
  });

  it('carries ASCII and other keys and JSON columns exactly (one UTF-8 encode per ASCII column)', async () => {
    const recs = (keys: (string | null)[]): Ev[] =>
      keys.map((key, i) => ({ record: { ts: i, key, value: { s: key ?? '', j: { k: key } } } }));
    const events: Ev[] = [
      { header: HEADER },
      ...recs(['a', null, 'bcd', '', 'x'.repeat(300)]),
      ...recs(['é', null, '😀', 'plain', '\u{10ffff}z']),
      { watermark: 100 },
      ...recs([null, null]),
      { end: true },
    ];
    const want = (await read(await write(events, 'ndjson'))).events;
    assert.deepEqual(norm(want), norm(events));
    assert.deepEqual((await read(await write(events, 'arrow'))).events, want);
  });

  it('reads int64 and timestamp columns into float64 exactly at the edges of ±2^53 (no BigInt per value)', async () => {
    const M = Number.MAX_SAFE_INTEGER;
    const ints = [-M, -(2 ** 32), -(2 ** 31) - 1, -1, 0, 1, 2 ** 31, 2 ** 32 + 5, M, null];
    const times = [-M, -86_400_000, -1, 0, 1_700_000_000_123, M, 2 ** 40 + 1, 5, 6, 7];
    const recs = (vals: (number | string | null)[]): Ev[] =>
      vals.map((i, n) => ({ record: { ts: times[n], key: null, value: { i } } }));
    const h: Header = { kappa: 1, schema: { i: 'int64' } };
    const got = await read(
      await write([{ header: h }, ...recs(ints), { end: true }], 'arrow'),
      1 << 20,
      true,
    );
    const b = got.batches[0];
    assert.deepEqual([...b.ts], times);
    assert.deepEqual([...(b.column('i')?.float64() ?? [])], [...ints.slice(0, -1), Number.NaN]);
    // -2^53 (an int64 given as text) is not safe: no float64 view, the exact text from get()
    const big = await read(
      await write([{ header: h }, ...recs(['-9007199254740992', 3]), { end: true }], 'arrow'),
      1 << 20,
      true,
    );
    assert.equal(big.batches[0].column('i')?.float64(), undefined);
    assert.equal(big.batches[0].column('i')?.get(0), '-9007199254740992');
  });

  it('numbers records by the line they have in version 1 (bad-record locations do not change)', async () => {
    const twice = async (f: 'ndjson' | 'arrow') =>
      Buffer.concat([await write(EVENTS, f), await write(EVENTS, f)]);
    const v1 = await read(await twice('ndjson'));
    const v2 = await read(await twice('arrow'), 11);
    assert.equal(v1.lines.length, 16);
    assert.deepEqual(v1.lines.slice(0, 4), [2, 3, 4, 5]);
    assert.deepEqual(v2.lines, v1.lines);
  });

  it('hands batches with typed columns to a consumer that takes them', async () => {
    const recs: Rec[] = [];
    for (let i = 0; i < 1000; i++)
      recs.push({
        ts: 1000 * i,
        key: `k${i % 3}`,
        value: { s: ['a', 'b'][i % 2], i, f: i / 2, big: i === 7 ? '9007199254740993' : i },
      });
    const v2 = await write(
      [
        { header: { kappa: 1, schema: { s: 'string', i: 'int64', f: 'float64', big: 'int64' } } },
        ...recs.map((record) => ({ record })),
        { end: true },
      ],
      'arrow',
    );
    const { batches, events } = await read(v2, 4096, true);
    assert.equal(events.filter((e) => 'record' in e).length, 0);
    assert.equal(
      batches.reduce((n, b) => n + b.length, 0),
      1000,
    );
    const b = batches[0];
    assert.deepEqual([...b.ts.subarray(0, 3)], [0, 1000, 2000]);
    assert.deepEqual(b.fields, ['s', 'i', 'f', 'big']);
    assert.ok(b.column('f')?.float64() instanceof Float64Array);
    assert.equal(b.column('f')?.float64()?.[5], 2.5);
    assert.equal(b.column('i')?.float64()?.[999], 999);
    // int64 beyond 2^53 - 1: never rounded; no Float64Array, the exact decimal string per value
    assert.equal(b.column('big')?.float64(), undefined);
    assert.equal(b.column('big')?.get(7), '9007199254740993');
    const d = b.column('s')?.dictionary();
    assert.ok(d);
    assert.deepEqual([d.values[d.codes[0]], d.values[d.codes[1]]], ['a', 'b']);
    assert.deepEqual(b.value(3), { s: 'b', i: 3, f: 1.5, big: 3 });
    assert.equal(b.key.get(4), 'k1');
  });

  it('re-encodes decoded batches (Collector.batch) without changing a record, in either encoding', async () => {
    const v2 = await write(EVENTS, 'arrow');
    const want = (await read(v2)).events;
    const { batches } = await read(v2, 1 << 20, true);
    for (const format of ['arrow', 'ndjson'] as const) {
      const pt = new PassThrough();
      const chunks: Buffer[] = [];
      pt.on('data', (c: Buffer) => chunks.push(c));
      const w = openStreamWriter(pt, format);
      w.header(HEADER);
      for (const b of batches) w.batch(b);
      w.endEvent();
      await w.close();
      const got = (await read(Buffer.concat(chunks))).events;
      assert.deepEqual(got, [want[0], ...want.filter((e) => 'record' in e), { end: true }], format);
    }
  });

  it('runOperator hands version-2 input to Operator.batch when the operator has one, else rows', async () => {
    const v2 = await write(EVENTS, 'arrow');
    const want = (await read(v2)).events;
    const run = async (withBatch: boolean) => {
      const seen = { batches: 0, rows: 0 };
      const op: Operator = {
        open: (h) => h,
        record(r: Rec, out: Collector) {
          seen.rows++;
          out.record(r);
        },
        watermark: (wm, out) => out.watermark(wm),
        end: () => {},
      };
      if (withBatch)
        op.batch = (b, out) => {
          seen.batches++;
          out.batch?.(b);
        };
      const pt = new PassThrough();
      const chunks: Buffer[] = [];
      pt.on('data', (c: Buffer) => chunks.push(c));
      await runOperator(op, {
        input: pieces(v2, 100),
        output: pt as unknown as NodeJS.WritableStream & PassThrough,
        bad: new BadRecords(),
        progress: new Progress('transform', true, 'rows'),
      });
      return { seen, out: Buffer.concat(chunks) };
    };
    const b = await run(true);
    assert.deepEqual(b.seen, { batches: 2, rows: 0 }); // two segments: the schema grew
    const r = await run(false);
    assert.deepEqual(r.seen, { batches: 0, rows: 8 });
    assert.equal(b.out[0], 0x7b); // a test's output stream is not a pipe to kappa: NDJSON
    assert.deepEqual((await read(b.out)).events, want);
    assert.deepEqual((await read(r.out)).events, (await read(b.out)).events);
  });

  it('writes gathered records after ARROW_LINGER_MS without waiting for a full batch (live streams)', async () => {
    const pt = new PassThrough();
    const chunks: Buffer[] = [];
    pt.on('data', (c: Buffer) => chunks.push(c));
    const w = openStreamWriter(pt, 'arrow');
    w.header(HEADER);
    w.record({ ts: 1, key: null, value: { s: 'a' } });
    await w.flushIfFull();
    assert.equal(chunks.length, 0);
    await new Promise((r) => setTimeout(r, ARROW_LINGER_MS * 3));
    assert.ok(chunks.length > 0, 'the record was written');
    w.endEvent();
    await w.close();
    const { events } = await read(Buffer.concat(chunks));
    assert.deepEqual(events, [
      { header: HEADER },
      { record: { ts: 1, key: null, value: { s: 'a' } } },
      { end: true },
    ]);
  });

  it('reads concatenated version-2 streams as one, with one end', async () => {
    const a = await write(
      [
        { header: HEADER },
        { record: { ts: 1, key: null, value: { s: 'a' } } },
        { watermark: 5 },
        { end: true },
      ],
      'arrow',
    );
    const b = await write(
      [
        { header: HEADER },
        { record: { ts: 2, key: null, value: { s: 'b' } } },
        { watermark: 3 },
        { end: true },
      ],
      'arrow',
    );
    const { events } = await read(Buffer.concat([a, b]), 13);
    assert.deepEqual(events, [
      { header: HEADER },
      { record: { ts: 1, key: null, value: { s: 'a' } } },
      { watermark: 5 },
      { record: { ts: 2, key: null, value: { s: 'b' } } },
      { end: true },
    ]);
  });

  it('a stream without its end event, or with an incomplete last message, is cut off (exit 1)', async () => {
    const full = await write(EVENTS, 'arrow');
    const noEnd = await write(EVENTS.slice(0, -1), 'arrow');
    for (const [what, bytes] of [
      ['no end event', noEnd],
      ['truncated', full.subarray(0, full.length - 20)],
      ['truncated mid-stream', full.subarray(0, Math.floor(full.length / 2))],
    ] as const) {
      await assert.rejects(read(Buffer.from(bytes)), (e: unknown) => {
        assert.ok(e instanceof RuntimeError, `${what}: ${e}`);
        assert.match(e.message, /stream cut off/);
        assert.equal(e.exitCode, 1);
        return true;
      });
    }
  });
});
