/**
 * The read side of protocol version 2 (src/stream/arrow-input.ts): IPC messages framed out of
 * chunks cut at every byte offset and at unaligned addresses, dictionary deltas and replacements,
 * 0-row batches, and streams cut off at every byte offset. Streams with deltas, replacements and
 * 0-row batches are written with flechette directly (kappa's own writer sends one dictionary per
 * batch), as another Arrow writer (pyarrow with `emit_dictionary_deltas`) may.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import {
  Batch,
  batchType,
  Column,
  columnFromArray,
  type DataType,
  dictionary,
  int32,
  Table,
  TimeUnit,
  tableToIPC,
  timestamp,
  utf8,
} from '@uwdata/flechette/dist/flechette.mjs';
import { RuntimeError } from '../../src/errors.js';
import {
  ArrowEncoder,
  decodeBatch,
  dictionaryValues,
  frameMessage,
  MessageKind,
} from '../../src/stream/arrow.js';
import { IpcFramer } from '../../src/stream/arrow-input.js';
import { DictionaryColumn, Float64Column, type RecordBatch } from '../../src/stream/batch.js';
import { readStream, type StreamConsumer } from '../../src/stream/input.js';
import type { Header, Rec } from '../../src/stream/protocol.js';
import { openStreamWriter } from '../../src/stream/writer.js';

type Ev = { header: Header } | { record: Rec } | { watermark: number } | { end: true };

async function writeArrow(events: Ev[]): Promise<Buffer> {
  const pt = new PassThrough();
  const chunks: Buffer[] = [];
  pt.on('data', (c: Buffer) => chunks.push(c));
  const w = openStreamWriter(pt, 'arrow');
  for (const e of events) {
    if ('header' in e) w.header(e.header);
    else if ('record' in e) w.record(e.record);
    else if ('watermark' in e) w.watermark(e.watermark);
    else w.endEvent();
  }
  await w.close();
  return Buffer.concat(chunks);
}

/** Reads `chunks` (each handed to the reader as it is) into the events a consumer sees. */
async function readChunks(chunks: Uint8Array[]): Promise<Ev[]> {
  const events: Ev[] = [];
  const c: StreamConsumer = {
    header: (h) => void events.push({ header: h }),
    record: (r) => void events.push({ record: r }),
    watermark: (wm) => void events.push({ watermark: wm }),
    barrier: () => {},
    end: () => void events.push({ end: true }),
    stop: () => {},
  };
  async function* gen(): AsyncGenerator<Buffer> {
    for (const ch of chunks) yield Buffer.from(ch.buffer, ch.byteOffset, ch.length);
  }
  await readStream(gen(), c);
  return events;
}

/** A copy of `b` placed at byte offset `shift` of its own ArrayBuffer (an unaligned chunk). */
function at(b: Uint8Array, shift: number): Uint8Array {
  const a = new Uint8Array(b.length + shift);
  a.set(b, shift);
  return a.subarray(shift);
}

const EVENTS: Ev[] = [
  { header: { kappa: 1, schema: { s: 'string', i: 'int64', f: 'float64' } } },
  { record: { ts: 1, key: 'a', value: { s: 'x', i: 1, f: 1.5 } } },
  { record: { ts: 2, key: null, value: { s: 'y', i: 2, f: -0.25 } } },
  { record: { ts: 3, key: 'é', value: { s: 'x', i: null, f: 2 } } },
  { watermark: 3 },
  { record: { ts: 4, key: 'b', value: { s: 'z', i: 4, f: 4 } } },
  { end: true },
];

// ---------------------------------------------------------------------------------------------
// Streams written with flechette: fields $event, $ts, $key and one dictionary column `s`.

const SCHEMA_MD = new Map([['kappa', JSON.stringify({ kappa: 2, schema: { s: 'string' } })]]);

/**
 * The IPC messages (no EOS) of one flechette table in the kappa layout: rows of `s` (null: null)
 * over a dictionary sent as `parts` (the first a replacement, the others deltas); `end`: one
 * end-of-stream control row instead.
 */
function messages(rows: (string | null)[] | 'end', parts: string[][]): Uint8Array[] {
  const dictType = dictionary(utf8(), int32());
  const valueType = (dictType as ReturnType<typeof dictionary>).dictionary as DataType;
  const all = parts.flat();
  const ss = rows === 'end' ? [null] : rows;
  const n = ss.length;
  const codes = new Int32Array(n);
  const validity = new Uint8Array((n + 7) >> 3);
  let nulls = 0;
  ss.forEach((v, i) => {
    if (v === null) nulls++;
    else {
      codes[i] = all.indexOf(v);
      assert.ok(codes[i] >= 0, `${v} is in the dictionary`);
      validity[i >> 3] |= 1 << (i & 7);
    }
  });
  const dictCol = new Column<unknown>(
    parts.map((p) => dictionaryValues(p, valueType).data[0]),
    valueType,
  );
  const DictBatch = batchType(dictType) as unknown as new (
    o: object,
  ) => Batch<unknown> & { setDictionary(c: Column<unknown>): Batch<unknown> };
  const sCol = new Column<unknown>(
    [
      new DictBatch({
        length: n,
        nullCount: nulls,
        type: dictType,
        validity: nulls > 0 ? validity : new Uint8Array(0),
        values: codes,
      }).setDictionary(dictCol),
    ],
    dictType,
  );
  const tsType = timestamp(TimeUnit.MILLISECOND, 'UTC');
  const tsCol = new Column<unknown>(
    [
      new Batch<unknown>({
        length: n,
        nullCount: 0,
        type: tsType,
        validity: new Uint8Array(0),
        values: BigInt64Array.from({ length: n }, (_, i) => BigInt(i + 1)),
      }),
    ],
    tsType,
  );
  const event = rows === 'end' ? ['{"end":true}'] : new Array<null>(n).fill(null);
  const fields = [
    { name: '$event', type: utf8(), nullable: true, metadata: new Map() },
    { name: '$ts', type: tsType, nullable: true, metadata: new Map() },
    { name: '$key', type: utf8(), nullable: true, metadata: new Map() },
    { name: 's', type: dictType, nullable: true, metadata: new Map([['kappa.type', 'string']]) },
  ];
  const text = (vals: (string | null)[]): Column<unknown> => {
    if (vals.length > 0) return columnFromArray(vals, utf8());
    const B = batchType(utf8()) as unknown as new (o: object) => Batch<unknown>;
    const empty = { length: 0, nullCount: 0, type: utf8(), validity: new Uint8Array(0) };
    return new Column<unknown>(
      [new B({ ...empty, offsets: new Int32Array(1), values: new Uint8Array(0) })],
      utf8(),
    );
  };
  const cols = [text(event), tsCol, text(new Array<null>(n).fill(null)), sCol];
  const bytes = tableToIPC(new Table({ fields, metadata: SCHEMA_MD }, cols), { format: 'stream' });
  assert.ok(bytes);
  const out: Uint8Array[] = [];
  for (let pos = 0; pos < bytes.length; ) {
    const f = frameMessage(bytes, pos);
    assert.ok(!('need' in f));
    if (f.message) out.push(f.message.bytes.slice());
    pos += f.size;
  }
  return out;
}

/** Messages of a table after the first of a segment: its schema message left out. */
const noSchema = (m: Uint8Array[]) => m.slice(1);

const concat = (ms: Uint8Array[]) => Buffer.concat(ms);

const values = (evs: Ev[]) =>
  evs.flatMap((e) => ('record' in e ? [(e.record.value as { s: unknown }).s] : 'end' in e ? ['END'] : []));

describe('arrow stream read side (IpcFramer)', () => {
  it('frames a stream cut into two chunks at every byte offset, and into small unaligned chunks', async () => {
    const b = await writeArrow(EVENTS);
    const want = await readChunks([b]);
    assert.equal(want.length, EVENTS.length);
    for (let k = 1; k < b.length; k++)
      assert.deepEqual(await readChunks([b.subarray(0, k), b.subarray(k)]), want, `split at byte ${k}`);
    for (const size of [1, 3, 7, 13, 64, 1000]) {
      const chunks: Uint8Array[] = [];
      for (let i = 0; i < b.length; i += size) chunks.push(at(b.subarray(i, i + size), 1 + (i % 7)));
      assert.deepEqual(await readChunks(chunks), want, `chunks of ${size} at odd addresses`);
    }
  });

  it('hands out every message 8-byte aligned, in place when a chunk holds it at an aligned address', () => {
    const msgs = messages(['a', 'b', null], [['a', 'b']]);
    const whole = concat(msgs);
    // one aligned chunk: views of it, no copy
    const aligned = new Uint8Array(whole.length);
    aligned.set(whole);
    const f = new IpcFramer();
    f.push(aligned);
    const got: Uint8Array[] = [];
    for (let m = f.next(); m; m = f.next()) if (m.message) got.push(m.message.bytes);
    assert.equal(got.length, msgs.length);
    for (const g of got) assert.equal(g.buffer, aligned.buffer, 'a view of the chunk');
    // the same bytes at an odd address, in 5-byte chunks: copies, each aligned
    const g = new IpcFramer();
    const odd = at(whole, 3);
    const out: Uint8Array[] = [];
    for (let i = 0; i < odd.length; i += 5) {
      g.push(odd.subarray(i, i + 5));
      for (let m = g.next(); m; m = g.next()) if (m.message) out.push(m.message.bytes);
    }
    assert.equal(g.length, 0);
    assert.deepEqual(
      out.map((m) => Buffer.from(m).toString('hex')),
      msgs.map((m) => Buffer.from(m).toString('hex')),
    );
    for (const m of out) assert.equal(m.byteOffset % 8, 0);
  });

  it('appends dictionary deltas to the dictionary in force and applies replacements to later batches', async () => {
    // segment: schema, dict [a b] + delta [c], batch (a c b null); replacement [d a], batch (d a); end
    const first = messages(['a', 'c', 'b', null], [['a', 'b'], ['c']]);
    const second = noSchema(messages(['d', 'a'], [['d', 'a']]));
    const end = noSchema(messages('end', [['-']]));
    const stream = concat([...first, ...second, ...end]);
    for (const size of [stream.length, 8, 9])
      assert.deepEqual(
        values(
          await readChunks(
            Array.from({ length: Math.ceil(stream.length / size) }, (_, i) =>
              stream.subarray(i * size, (i + 1) * size),
            ),
          ),
        ),
        ['a', 'c', 'b', null, 'd', 'a', 'END'],
        `chunks of ${size}`,
      );
    // a delta after a batch extends the dictionary that batch used, for the next batch only
    const third = noSchema(messages(['a', 'x'], [['a', 'b'], ['c'], ['x']])).slice(2); // delta [x], batch
    assert.deepEqual(values(await readChunks([concat([...first, ...third, ...end])])), [
      'a',
      'c',
      'b',
      null,
      'a',
      'x',
      'END',
    ]);
  });

  it('reads a 0-row record batch as no records', async () => {
    const first = messages(['a'], [['a']]);
    const empty = noSchema(messages([], [['a']]));
    const end = noSchema(messages('end', [['a']]));
    const evs = await readChunks([concat([...first, ...empty, ...first.slice(1), ...end])]);
    assert.deepEqual(values(evs), ['a', 'a', 'END']);
  });

  it('a stream cut off at any byte offset before its end event is cut off (exit 1)', async () => {
    const b = await writeArrow(EVENTS);
    // The end event's message ends 8 bytes before the stream (the IPC end-of-stream marker follows).
    assert.deepEqual(await readChunks([b.subarray(0, b.length - 8)]), await readChunks([b]));
    for (let k = 8; k < b.length; k++) {
      if (k === b.length - 8) continue;
      await assert.rejects(readChunks([b.subarray(0, k)]), (e: unknown) => {
        assert.ok(e instanceof RuntimeError, `cut at byte ${k}: ${e}`);
        assert.match(e.message, /stream cut off/);
        return true;
      });
    }
  });

  it('writes typed keys (dictionary codes) as the same strings, ASCII or not, with nulls', () => {
    for (const dict of [
      ['JFK', 'LAX', '', 'x'.repeat(40)],
      ['a', 'é', '😀', '', '\u{10ffff}z'],
    ]) {
      const codes = Int32Array.from({ length: 37 }, (_, i) => (i % 5 === 4 ? -1 : (i * 7) % dict.length));
      const n = codes.length;
      const b: RecordBatch = {
        length: n,
        ts: Float64Array.from({ length: n }, (_, i) => i),
        key: new DictionaryColumn(codes, dict),
        fields: ['v'],
        column: (f) => (f === 'v' ? new Float64Column('float64', new Float64Array(n).fill(1.5)) : undefined),
        value: () => ({ v: 1.5 }),
        complete: true,
      };
      const bytes = Buffer.concat(new ArrowEncoder({ v: 'float64' }).batch(b));
      const msgs: { kind: number; bytes: Uint8Array }[] = [];
      for (let pos = 0; pos < bytes.length; ) {
        const f = frameMessage(bytes, pos);
        assert.ok(!('need' in f) && f.message);
        msgs.push(f.message);
        pos += f.size;
      }
      assert.deepEqual(
        msgs.map((m) => m.kind),
        [MessageKind.Schema, MessageKind.RecordBatch],
      );
      const d = decodeBatch(msgs[0].bytes.slice(), [], msgs[1].bytes.slice());
      assert.equal(d.kind, 'records');
      if (d.kind !== 'records') return;
      assert.deepEqual(
        Array.from({ length: n }, (_, i) => d.batch.key.get(i)),
        Array.from(codes, (c) => (c < 0 ? null : dict[c])),
      );
    }
  });
});
