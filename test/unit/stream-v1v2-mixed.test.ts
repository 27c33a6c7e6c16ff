/**
 * Property test: a stream whose columns mix kinds of values (numbers, numeric texts such as "12",
 * integers beyond 2^53 as exact texts, booleans, nulls, missing fields, nested JSON) reads back as
 * the same events from protocol version 2 (Arrow IPC) as from version 1 (NDJSON), whatever type
 * the header declares for the field. A helper reported once that an int64-declared field holding
 * the text "12" came back as the number 12 through version 2; this pins the contract down: a
 * value's JSON kind never changes between the two encodings.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { batchFromRecords } from '../../src/stream/batch.js';
import { readStream, type StreamConsumer } from '../../src/stream/input.js';
import type { FieldType, Header, Rec } from '../../src/stream/protocol.js';
import { openStreamWriter } from '../../src/stream/writer.js';

type Ev = { header: Header } | { record: Rec } | { watermark: number } | { end: true };

/** Writes the records (as rows, or as one batch) in the given encoding. */
async function write(
  header: Header,
  recs: Rec[],
  format: 'ndjson' | 'arrow',
  asBatch: boolean,
): Promise<Buffer> {
  const pt = new PassThrough();
  const chunks: Buffer[] = [];
  pt.on('data', (c: Buffer) => chunks.push(c));
  const w = openStreamWriter(pt, format);
  w.header(header);
  if (asBatch && recs.length > 0) w.batch(batchFromRecords(recs));
  else for (const r of recs) w.record(r);
  w.watermark(1_000_000);
  w.endEvent();
  await w.close();
  return Buffer.concat(chunks);
}

async function read(b: Buffer): Promise<Ev[]> {
  const events: Ev[] = [];
  const c: StreamConsumer = {
    header: (h) => void events.push({ header: h }),
    record: (r) => void events.push({ record: { ts: r.ts, key: r.key ?? null, value: r.value } }),
    watermark: (wm) => void events.push({ watermark: wm }),
    barrier: () => assert.fail('no barrier was written'),
    end: () => void events.push({ end: true }),
    stop: () => assert.fail('no stop was written'),
  };
  await readStream(
    (async function* () {
      yield b;
    })(),
    c,
  );
  return events;
}

const leaf = fc.oneof(
  fc.integer({ min: -1_000_000, max: 1_000_000 }),
  fc.integer({ min: -1_000_000, max: 1_000_000 }).map(String),
  fc.constantFrom('12', '-0', '0', '1e3', '12345678901234567890', '-9007199254740993', ' 7', ''),
  fc.constantFrom(2 ** 53 - 1, -(2 ** 53 - 1), 0.5, -0.25, 1e21, 3.14),
  fc.boolean(),
  fc.constant(null),
  fc.string({ maxLength: 6 }),
);
const value = fc.oneof(
  { weight: 6, arbitrary: leaf },
  { weight: 1, arbitrary: fc.array(leaf, { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.constantFrom('a', 'b'), leaf, { maxKeys: 2 }) },
);
const FIELDS = ['i', 's', 'f', 'j'] as const;
const types = fc.record({
  i: fc.constantFrom<FieldType>('int64', 'string', 'json', 'float64'),
  s: fc.constantFrom<FieldType>('string', 'int64', 'json'),
  f: fc.constantFrom<FieldType>('float64', 'int64', 'string', 'boolean'),
  j: fc.constantFrom<FieldType>('json', 'string'),
});
const record = fc.record({
  ts: fc.integer({ min: 0, max: 999_999 }),
  key: fc.option(fc.constantFrom('k1', 'k2', '12'), { nil: null }),
  // undefined: the field is missing from this record
  vals: fc.tuple(...FIELDS.map(() => fc.option(value, { nil: undefined, freq: 4 }))),
});

describe('stream v1 and v2 carry mixed-kind columns alike', () => {
  it('every value keeps its JSON kind (numeric texts stay texts, big integers exact) in both encodings', async () => {
    await fc.assert(
      fc.asyncProperty(
        types,
        fc.array(record, { minLength: 1, maxLength: 25 }),
        fc.boolean(),
        async (ty, rs, asBatch) => {
          const header: Header = { kappa: 1, schema: ty };
          const recs: Rec[] = rs.map((r) => {
            const v: Record<string, unknown> = {};
            FIELDS.forEach((f, n) => {
              if (r.vals[n] !== undefined) v[f] = r.vals[n];
            });
            return { ts: r.ts, key: r.key, value: v };
          });
          const v1 = await read(await write(header, recs, 'ndjson', asBatch));
          const v2 = await read(await write(header, recs, 'arrow', asBatch));
          assert.deepEqual(v2, v1);
          // and v1 gives back what was written (JSON kinds; -0 is 0 in JSON text)
          const got = v1.filter((e): e is { record: Rec } => 'record' in e).map((e) => e.record.value);
          assert.deepEqual(
            got,
            recs.map((r) => JSON.parse(JSON.stringify(r.value))),
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});
