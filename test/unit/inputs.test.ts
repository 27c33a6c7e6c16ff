/**
 * Input readers at the unit level: the CSV tokenizer and the JSON-array tokenizer give the same
 * rows, locations and raw text however the input is cut into chunks (items 26, 30), the JSON
 * array is read incrementally, and decompression detects its codec across tiny chunks (item 25).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { decompressed } from '../../src/formats/compression.js';
import { csvBatches } from '../../src/formats/csv.js';
import type { RowBatch } from '../../src/formats/format.js';
import { jsonArrayBatches } from '../../src/formats/ndjson.js';

async function collect(it: AsyncIterable<RowBatch>) {
  const out: { row: unknown; where: unknown; raw: string; error?: string }[] = [];
  for await (const b of it)
    for (let i = 0; i < b.rows.length; i++)
      out.push({ row: b.rows[i], where: b.where(i), raw: b.raw(i), error: b.errors?.get(i) });
  return out;
}

async function* chunked(bytes: Buffer, cuts: number[]) {
  let last = 0;
  for (const c of [...cuts, bytes.length]) {
    yield bytes.subarray(last, c);
    last = c;
  }
}

const CSV = Buffer.from(
  '\uFEFFid,"na,me",v\r\n1,"é€ ""q""",2.5\r\n\r\n2,"multi\nline",\n3,x"y,1\n4,"a"b,1\n5,too,many,fields\n6,ok,""\n7,"open',
);

describe('CSV tokenizer', () => {
  it('gives the same rows, lines, raw text and errors for every cut into two and three chunks', async () => {
    const whole = await collect(csvBatches(chunked(CSV, []), 'in.csv', ','));
    assert.deepEqual(
      whole.map((r) => [r.row, (r.where as { line: number }).line, r.error !== undefined]),
      [
        [{ id: 1, 'na,me': 'é€ "q"', v: 2.5 }, 2, false],
        [{ id: 2, 'na,me': 'multi\nline', v: null }, 4, false],
        [undefined, 6, true],
        [undefined, 7, true],
        [undefined, 8, true],
        [{ id: 6, 'na,me': 'ok', v: '' }, 9, false],
        [undefined, 10, true],
      ],
    );
    assert.equal(whole[0].raw, '1,"é€ ""q""",2.5\r\n');
    for (let a = 1; a < CSV.length; a++) {
      assert.deepEqual(await collect(csvBatches(chunked(CSV, [a]), 'in.csv', ',')), whole, `cut at ${a}`);
      const b = Math.min(CSV.length - 1, a + 7);
      if (b > a)
        assert.deepEqual(
          await collect(csvBatches(chunked(CSV, [a, b]), 'in.csv', ',')),
          whole,
          `cuts ${a},${b}`,
        );
    }
  });
});

const JSON_ARRAY = Buffer.from(
  ' [\n {"a": "x\\"],[{", "é": "€", "p": "c:\\\\"},\n {"n": {"b": [1, {"c": "]"}]}}, 7,\n {"bad": }, {"z": null}\n]\n',
);

describe('JSON array tokenizer', () => {
  it('gives the same elements, lines and errors for every cut', async () => {
    const whole = await collect(jsonArrayBatches(chunked(JSON_ARRAY, []), 'a.json'));
    assert.deepEqual(
      whole.map((r) => [r.row, (r.where as { line: number }).line, r.error !== undefined]),
      [
        [{ a: 'x"],[{', é: '€', p: 'c:\\' }, 2, false],
        [{ n: { b: [1, { c: ']' }] } }, 3, false],
        [undefined, 3, true],
        [undefined, 4, true],
        [{ z: null }, 4, false],
      ],
    );
    for (let a = 1; a < JSON_ARRAY.length; a++)
      assert.deepEqual(
        await collect(jsonArrayBatches(chunked(JSON_ARRAY, [a]), 'a.json')),
        whole,
        `cut at ${a}`,
      );
  });

  it('streams: the first records come out before the input has ended', async () => {
    let fed = 0;
    const total = 1000;
    async function* slow() {
      yield '[';
      for (let i = 0; i < total; i++) {
        fed++;
        yield `${i ? ',' : ''}{"i":${i}}`;
      }
      yield ']';
    }
    const it = jsonArrayBatches(slow(), 'a.json')[Symbol.asyncIterator]();
    const first = await it.next();
    assert.equal(first.done, false);
    assert.ok(fed < total, `first batch after ${fed} of ${total} elements`);
    assert.deepEqual(first.value?.rows[0], { i: 0 });
  });
});

describe('decompression', () => {
  it('detects gzip by its magic bytes across 1-byte chunks, and passes plain data through', async () => {
    const text = '{"a":1}\n'.repeat(1000);
    const z = gzipSync(text);
    const cuts = Array.from({ length: 10 }, (_, i) => i + 1);
    const out: Buffer[] = [];
    for await (const c of decompressed(chunked(z, cuts), '-')) out.push(Buffer.from(c as Uint8Array));
    assert.equal(Buffer.concat(out).toString(), text);
    const plain: Buffer[] = [];
    for await (const c of decompressed(chunked(Buffer.from('ab'), [1]), 'x.ndjson'))
      plain.push(Buffer.from(c as Uint8Array));
    assert.equal(Buffer.concat(plain).toString(), 'ab');
  });
});
