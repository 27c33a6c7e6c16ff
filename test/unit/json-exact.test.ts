/**
 * JSON parsing without silently rounded integers (src/formats/json-exact.ts; issue 8, issue 14
 * int64 rule): integer literals beyond ±(2^53 − 1), at any depth, come back as their exact decimal
 * strings (checked against BigInt of the literal's text, not against kappa); integers within the
 * safe range, non-integer literals (fractions, exponents) and strings holding digit runs are what
 * JSON.parse gives. The NDJSON readers (lines, JSON array, columnar batch) use it and count.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { RowBatch } from '../../src/formats/format.js';
import { type BigIntegerCount, hasUnsafeInteger, parseJsonExact } from '../../src/formats/json-exact.js';
import { ndjsonBatches } from '../../src/formats/ndjson.js';
import { ByteLineSplitter, ByteLines, scanColumns } from '../../src/formats/ndjson-scan.js';

const MAX = 2n ** 53n - 1n;
const INT64 = 2n ** 63n;

/** Integer literals (their text) beyond ±(2^53 − 1), up to 30 digits. */
const bigLiteral = fc
  .oneof(fc.bigInt({ min: MAX + 1n, max: MAX + 1000n }), fc.bigInt({ min: MAX + 1n, max: 10n ** 30n }))
  .chain((b) => fc.constantFrom(b, -b))
  .map((b) => b.toString());
/** Integer literals within ±(2^53 − 1). */
const safeLiteral = fc.bigInt({ min: -MAX, max: MAX }).map((b) => b.toString());
/** Number literals that are not integer literals: fractions and exponents (also of huge magnitude). */
const nonIntegerLiteral = fc.oneof(
  fc
    .double({ noNaN: true, noDefaultInfinity: true })
    .map((d) => JSON.stringify(d))
    // A double of 2^53 or more below 1e21 prints as an integer literal: that is a big integer.
    .filter((s) => !/^-?\d+$/.test(s) || Number.isSafeInteger(Number(s))),
  fc
    .tuple(fc.bigInt({ min: 1n, max: 10n ** 25n }), fc.integer({ min: 1, max: 20 }))
    .map(([m, f]) => `${m}.${'7'.repeat(f)}`),
  fc.tuple(fc.integer({ min: 1, max: 99 }), fc.integer({ min: 0, max: 300 })).map(([m, e]) => `${m}e${e}`),
  fc.constantFrom('1.5e300', '0.1', '9007199254740993.0', '12345678901234567890e0', '-0', '1e16'),
);

const parse = (text: string) => {
  const count: BigIntegerCount = { n: 0 };
  return { v: parseJsonExact(text, count), n: count.n };
};

describe('parseJsonExact', () => {
  it('an integer literal beyond 2^53 - 1 is its exact decimal string, at the top, nested and in arrays', () => {
    fc.assert(
      fc.property(bigLiteral, (lit) => {
        const want = BigInt(lit).toString();
        assert.deepEqual(parse(`{"a":${lit}}`), { v: { a: want }, n: 1 });
        assert.deepEqual(parse(`{"o":{"id":${lit}},"x":1}`), { v: { o: { id: want }, x: 1 }, n: 1 });
        assert.deepEqual(parse(`{"arr":[1,${lit},[${lit}]]}`), { v: { arr: [1, want, [want]] }, n: 2 });
        assert.deepEqual(parse(`[${lit}]`), { v: [want], n: 1 });
      }),
      { numRuns: 300 },
    );
  });

  it('the known cases: 2^53 + 1, its negative, 12345678901234567890, 2^63 - 1, 2^53 itself', () => {
    for (const lit of [
      '9007199254740993',
      '-9007199254740993',
      '12345678901234567890',
      '9223372036854775807',
    ])
      assert.deepEqual(parse(`{"a":${lit}}`), { v: { a: lit }, n: 1 });
    // 2^53 is exact as a number too, but beyond 2^53 - 1 a number cannot tell it from 2^53 + 1.
    assert.deepEqual(parse('{"a":9007199254740992}'), { v: { a: '9007199254740992' }, n: 1 });
    assert.deepEqual(parse('{"a":9007199254740991,"b":-9007199254740991}'), {
      v: { a: 9007199254740991, b: -9007199254740991 },
      n: 0,
    });
    // Beyond int64 too: the text is kept, what a sink makes of it is the sink's rule.
    assert.deepEqual(parse(`{"a":${INT64}}`), { v: { a: String(INT64) }, n: 1 });
  });

  it('integers within the safe range and non-integer literals are what JSON.parse gives', () => {
    fc.assert(
      fc.property(fc.oneof(safeLiteral, nonIntegerLiteral), bigLiteral, (lit, big) => {
        // Alone, and beside a big integer (the line then takes the lossless parser).
        const text = `{"v":${lit},"w":[${lit}],"o":{"v":${lit}}}`;
        const want = JSON.parse(text) as unknown;
        assert.deepEqual(parse(text), { v: want, n: 0 });
        const r = parse(`{"v":${lit},"w":[${lit}],"o":{"v":${lit}},"big":${big}}`);
        assert.deepEqual(r, { v: { ...(want as object), big: BigInt(big).toString() }, n: 1 });
        assert.ok(Object.is((r.v as Record<string, unknown>).v, JSON.parse(lit)), `${lit}: -0 stays -0`);
      }),
      { numRuns: 300 },
    );
  });

  it('strings holding digit runs stay strings; escapes, duplicate keys and __proto__ as JSON.parse', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^-?[0-9]{16,25}$/), bigLiteral, (s, big) => {
        assert.deepEqual(parse(`{"s":"${s}","t":"x${s}y"}`), { v: { s, t: `x${s}y` }, n: 0 });
        assert.deepEqual(parse(`{"s":"${s}","b":${big}}`), { v: { s, b: BigInt(big).toString() }, n: 1 });
      }),
    );
    const big = '12345678901234567890';
    const text = `{"k":1,"e":"a\\"b\\u00e9\\n","k":${big},"__proto__":{"x":${big}},"d":[]}`;
    const v = parse(text).v as Record<string, unknown>;
    assert.deepEqual(Object.keys(v), Object.keys(JSON.parse(text) as object));
    assert.equal(v.k, big); // the last value of a duplicate key, as JSON.parse
    assert.equal(v.e, 'a"b\u00e9\n');
    assert.equal(Object.getPrototypeOf(v), Object.prototype);
    assert.deepEqual(Object.getOwnPropertyDescriptor(v, '__proto__')?.value, { x: big });
  });

  it('any depth JSON.parse accepts: a value nested 100,000 levels deep is walked without recursion', () => {
    const deep = `${'['.repeat(100_000)}12345678901234567890${']'.repeat(100_000)}`;
    assert.equal(hasUnsafeInteger(JSON.parse(deep)), true);
    assert.equal(hasUnsafeInteger(JSON.parse(`${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`)), false);
  });

  it('invalid JSON still throws SyntaxError', () => {
    for (const t of ['{"a":12345678901234567890', '{"a":012345678901234567}', '{"a":1}x'])
      assert.throws(() => parseJsonExact(t), SyntaxError);
  });
});

async function batches(text: string, columnar: boolean): Promise<RowBatch[]> {
  const out: RowBatch[] = [];
  async function* input() {
    yield Buffer.from(text);
  }
  for await (const b of ndjsonBatches(input(), 'x.ndjson', undefined, undefined, () => columnar)) out.push(b);
  return out;
}

describe('NDJSON readers keep integers beyond 2^53', () => {
  const lines = [
    '{"a":9007199254740993,"b":1}',
    '{"a":-9007199254740993,"b":2,"o":{"id":12345678901234567890},"arr":[1,9007199254740993]}',
    '{"a":"9007199254740993","b":3}',
  ];
  const want = [
    { a: '9007199254740993', b: 1 },
    { a: '-9007199254740993', b: 2, o: { id: '12345678901234567890' }, arr: [1, '9007199254740993'] },
    { a: '9007199254740993', b: 3 },
  ];

  for (const columnar of [false, true])
    it(`lines (${columnar ? 'columnar batch' : 'row batch'}): exact rows, counted, raw text not passed on as the value`, async () => {
      const bs = (await batches(`${lines.join('\n')}\n`, columnar)).filter((b) => b.rows.length > 0);
      assert.equal(bs.length, 1);
      assert.equal(bs[0].columns, undefined);
      assert.deepEqual(bs[0].rows, want);
      assert.equal(bs[0].bigIntegers, 4);
      assert.equal(bs[0].rawIsJson, false);
    });

  it('a batch without big integers keeps rawIsJson and counts none', async () => {
    const [b] = await batches('{"a":1,"s":"12345678901234567890"}\n', false);
    assert.deepEqual(b.rows, [{ a: 1, s: '12345678901234567890' }]);
    assert.equal(b.rawIsJson, true);
    assert.equal(b.bigIntegers, 0);
  });

  it('a JSON array file', async () => {
    const bs = await batches(`[\n${lines.join(',\n')}\n]\n`, false);
    assert.deepEqual(
      bs.flatMap((b) => b.rows),
      want,
    );
    assert.equal(
      bs.reduce((n, b) => n + (b.bigIntegers ?? 0), 0),
      4,
    );
  });

  it('the columnar NDJSON reader sends a batch with a nested big integer to the row path, keeps one with digit-run strings', () => {
    const ndjsonColumns = (lines: string[]) => {
      const sp = new ByteLineSplitter();
      const out = new ByteLines();
      sp.push(Buffer.from(`${lines.join('\n')}\n`), out);
      sp.end(out);
      return scanColumns(out);
    };
    assert.equal(ndjsonColumns(['{"a":1,"o":{"id":12345678901234567890}}']), undefined);
    assert.equal(ndjsonColumns(['{"a":1,"arr":[9007199254740993]}']), undefined);
    const c = ndjsonColumns(['{"a":1,"s":"12345678901234567890","o":{"id":123}}']);
    assert.ok(c);
    assert.equal(c.column('s')?.get(0), '12345678901234567890');
    assert.deepEqual(c.column('o')?.get(0), { id: 123 });
  });
});
