/**
 * The NDJSON byte scanner (src/formats/ndjson-scan.ts): on random NDJSON — escapes, unicode, -0,
 * 1e400, 1.0, big integers, duplicate keys, array-index keys, missing fields, nulls, whitespace
 * between tokens, bad lines — cut into random chunks, the columns it gives equal the columns this
 * test builds from `JSON.parse` of each line by the documented rules (field order first seen,
 * int64 / float64 / string / boolean / json, `complete`, undefined for what columns cannot hold);
 * and its lines are the lines of the text splitter.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ByteLineSplitter, ByteLines, scanColumns, scanStats } from '../../src/formats/ndjson-scan.js';
import type { ValueColumns } from '../../src/stream/batch.js';
import { LineSplitter } from '../../src/stream/lines.js';

/** The text cut into chunks at random byte offsets (also inside multi-byte characters). */
function chunked(b: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (b.length + 1)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...at, b.length]) {
    if (c > prev) out.push(b.subarray(prev, c));
    prev = c;
  }
  return out;
}

/** The byte splitter's lines of the chunks. */
function byteLines(chunks: Buffer[], maxLineBytes?: number): ByteLines {
  const sp = new ByteLineSplitter(maxLineBytes);
  const out = new ByteLines();
  for (const c of chunks) sp.push(c, out);
  sp.end(out);
  return out;
}

/** What the columns should be: built from JSON.parse of each line, independently of kappa. */
interface Expected {
  fields: string[];
  complete: boolean;
  cols: Map<string, { type: string; values: unknown[] }>;
}

/** True when the parsed value holds, at any depth, an integer of magnitude > 2^53 - 1. */
function unsafe(v: unknown): boolean {
  if (typeof v === 'number') return Number.isInteger(v) && Math.abs(v) > Number.MAX_SAFE_INTEGER;
  if (v !== null && typeof v === 'object') return Object.values(v).some(unsafe);
  return false;
}

function expected(texts: string[]): Expected | undefined {
  const rows: Record<string, unknown>[] = [];
  for (const t of texts) {
    let v: unknown;
    try {
      v = JSON.parse(t);
    } catch {
      return undefined;
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    rows.push(v as Record<string, unknown>);
  }
  const fields: string[] = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!fields.includes(k)) fields.push(k);
  const complete = rows.every((r) => Object.keys(r).length === fields.length);
  const cols = new Map<string, { type: string; values: unknown[] }>();
  for (const f of fields) {
    const values = rows.map((r) => (Object.hasOwn(r, f) ? r[f] : null));
    const present = values.filter((v) => v !== null);
    if (present.some(unsafe)) return undefined;
    const kinds = new Set(
      present.map((v) => (typeof v === 'number' ? 'n' : typeof v === 'string' ? 's' : 'o')),
    );
    if (kinds.size > 1) return undefined;
    let type = 'json';
    if (kinds.has('n')) type = present.every((v) => Number.isInteger(v)) ? 'int64' : 'float64';
    else if (kinds.has('s')) type = 'string';
    else if (present.length > 0 && present.every((v) => typeof v === 'boolean')) type = 'boolean';
    cols.set(f, { type, values });
  }
  return { fields, complete, cols };
}

/** Compares the scanner's columns with the expected ones (values with Object.is: -0 counts). */
function same(got: ValueColumns | undefined, want: Expected | undefined, texts: string[]): void {
  if (want === undefined) {
    assert.equal(got, undefined, 'columns cannot hold these lines');
    return;
  }
  assert.ok(got, 'the lines are columns');
  assert.equal(got.length, texts.length);
  assert.deepEqual(got.fields, want.fields);
  assert.equal(got.complete, want.complete);
  for (const f of want.fields) {
    const c = got.column(f);
    const w: { type: string; values: unknown[] } | undefined = want.cols.get(f);
    assert.ok(c !== undefined && w !== undefined);
    assert.equal(c.type, w.type, `type of ${f}`);
    const f64 = c.float64();
    const d = c.dictionary();
    for (let i = 0; i < texts.length; i++) {
      const v: unknown = w.values[i];
      assert.deepStrictEqual(c.get(i), v, `${f} of row ${i}`);
      if (f64) assert.ok(Object.is(f64[i], v === null ? Number.NaN : v), `${f} of row ${i} as a double`);
      if (d) assert.equal(d.codes[i] < 0 ? null : d.values[d.codes[i]], v);
    }
    if (d) {
      assert.equal(new Set(d.values).size, d.values.length, 'dictionary values are distinct');
      // No value that no row holds (a string of a line that took another path in the end).
      const used = new Set(Array.from(d.codes.subarray(0, texts.length)).filter((c) => c >= 0));
      assert.equal(used.size, d.values.length, `every dictionary value of ${f} is used`);
    }
  }
  for (let i = 0; i < texts.length; i++) assert.deepStrictEqual(got.value(i), JSON.parse(texts[i]));
}

const KEYS = ['a', 'b', 'c', 'é', 'x y', '1', '0', '__proto__', 'a\\"q', '\\u0061', 'tab\\t'];
const WS = fc.constantFrom('', '', '', ' ', '\t', ' \r ', '  ');
const asciiStr = fc.string({
  unit: fc.constantFrom('a', 'b', 'M', 'S', 'Y', ' ', '-', ':', '~'),
  maxLength: 5,
});
const nastyStr = fc.string({
  unit: fc.constantFrom('a', 'é', '\n', '"', '\\', '\u0000', '😀', '\u2028', '\u007f', '/', '\ud800'),
  maxLength: 4,
});
/** JSON texts of numbers, including forms JSON.parse rounds or reads as integers. */
const numText = fc.oneof(
  fc.integer({ min: -1000, max: 1000 }).map(String),
  fc.constantFrom(
    '-0',
    '0',
    '-0.0',
    '1.0',
    '1e2',
    '1E+2',
    '-1.5e-3',
    '1e400',
    '-1e400',
    '1e-400',
    '0.1',
    '123456789012345',
    '-999999999999999',
    '1234567890123456',
    '9007199254740991',
    '-9007199254740991',
    '2.5e15',
    '4.35',
    '1.7976931348623157e308',
    '5e-324',
  ),
  fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e15, max: 1e15 }).map((d) => JSON.stringify(d)),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)),
);
/** Number texts with integers beyond 2^53 - 1 (JSON.parse rounds them: columns cannot hold them). */
const bigNumText = fc.oneof(
  numText,
  fc.constantFrom(
    '9007199254740992',
    '9007199254740993',
    '12345678901234567890',
    '9007199254740991.5',
    '1e300',
  ),
);
const KINDS = ['int', 'num', 'bignum', 'ascii', 'str', 'bool', 'nested', 'null', 'mixed'] as const;
type Kind = (typeof KINDS)[number];

function valueText(kind: Kind): fc.Arbitrary<string> {
  const s = (a: fc.Arbitrary<unknown>) => a.map((v) => JSON.stringify(v));
  let a: fc.Arbitrary<string>;
  switch (kind) {
    case 'int':
      a = fc.integer({ min: -(2 ** 40), max: 2 ** 40 }).map(String);
      break;
    case 'num':
      a = numText;
      break;
    case 'bignum':
      a = bigNumText;
      break;
    case 'ascii':
      a = s(asciiStr);
      break;
    case 'str':
      a = fc.oneof(s(asciiStr), s(nastyStr), fc.constantFrom('"\\u0041"', '"\\/"', '"caf\\u00e9"'));
      break;
    case 'bool':
      a = s(fc.boolean());
      break;
    case 'nested':
      a = fc.oneof(
        s(fc.array(fc.oneof(fc.integer(), asciiStr, fc.constant(null)), { maxLength: 3 })),
        s(fc.dictionary(asciiStr, fc.integer(), { maxKeys: 2 })),
        fc.constantFrom('[9007199254740993]', '{"z":[1,{"y":-0}]}', '[ ]', '{}'),
      );
      break;
    case 'null':
      a = fc.constant('null');
      break;
    default:
      a = fc.oneof(bigNumText, s(asciiStr), s(fc.boolean()), fc.constant('[1]'));
  }
  return fc.oneof({ weight: 8, arbitrary: a }, { weight: 1, arbitrary: fc.constant('null') });
}

/** Lines that are not JSON objects (JSON.parse throws, or gives something else). */
const BAD = [
  '{"a":',
  '[1]',
  '3',
  'null',
  '"a"',
  '{"a":1}}',
  '{"a":01}',
  '{"a":-01}',
  '{"a":1.}',
  '{"a":1.e5}',
  '{"a":-}',
  '{"a":.5}',
  '{a:1}',
  '{"a":tru}',
  '{"a":nul}',
  '{"a":fals}',
  '{"a":"x\u0001"}',
  '{"a\u0001":1}',
  '{"a":1,}',
  '{"a" 1}',
  '{"a":1 "b":2}',
  '{"a":+1}',
  '{"a":1e}',
  '{"a":1e+}',
  '{"a":0x1}',
  '\ufeff{"a":1}',
  '{"a":"\\x"}',
  '{"a":"x}',
  '{"a":1}x',
  '{"a":1,"b"}',
  '{,"a":1}',
  '{"a":Infinity}',
  '{"a":NaN}',
];

/** One line: an object of fields from KEYS (each of its file's kind), blank, or bad. */
function lineOf(kinds: readonly Kind[], keys: readonly string[], badWeight: number): fc.Arbitrary<string> {
  const entry = fc
    .nat({ max: keys.length - 1 })
    .chain((k) => fc.tuple(fc.constant(keys[k]), valueText(kinds[k]), WS, WS, WS, WS));
  return fc.oneof(
    {
      weight: 30,
      arbitrary: fc
        .tuple(
          fc.oneof(
            { weight: 4, arbitrary: fc.constant(keys.map((_, k) => k)) },
            { weight: 2, arbitrary: fc.shuffledSubarray(keys.map((_, k) => k)) },
          ),
          fc.array(entry, { maxLength: 1 }),
          fc.tuple(...keys.map((_, k) => fc.tuple(valueText(kinds[k]), WS, WS, WS, WS))),
          WS,
          WS,
        )
        .map(([ks, extra, vals, w0, w1]) => {
          const parts = ks.map((k) => {
            const [v, a, b, c, d] = vals[k];
            return `${a}"${keys[k]}"${b}:${c}${v}${d}`;
          });
          // Sometimes a key again (a duplicate, or a key not in this file's usual set).
          for (const [k, v, a, b, c, d] of extra) parts.push(`${a}"${k}"${b}:${c}${v}${d}`);
          return `${w0}{${parts.join(',')}}${w1}`;
        }),
    },
    { weight: 1, arbitrary: fc.constantFrom('', ' ', '\r', ' \t', '    ', '{}') },
    {
      weight: badWeight,
      arbitrary: fc.constantFrom(...BAD),
    },
  );
}

const input = fc
  .record({
    kinds: fc.array(fc.constantFrom(...KINDS), { minLength: KEYS.length, maxLength: KEYS.length }),
    keys: fc.shuffledSubarray(KEYS, { minLength: 1 }),
    badWeight: fc.constantFrom(0, 0, 0, 1),
    crlf: fc.boolean(),
  })
  .chain(({ kinds, keys, badWeight, crlf }) =>
    fc.record({
      lines: fc.array(lineOf(kinds, keys, badWeight), { maxLength: 40 }),
      cuts: fc.array(fc.nat(), { maxLength: 8 }),
      crlf: fc.constant(crlf),
      lastNewline: fc.boolean(),
    }),
  );

/** The non-blank lines of the text, as the row path reads them (trailing `\r` removed). */
function textLines(text: string): { texts: string[]; lineNos: number[] } {
  const texts: string[] = [];
  const lineNos: number[] = [];
  const all = text.split('\n');
  if (all[all.length - 1] === '') all.pop();
  for (const [i, l0] of all.entries()) {
    const l = l0.endsWith('\r') ? l0.slice(0, -1) : l0;
    if (l.length === 0 || (l.length < 4 && l.trim() === '')) continue;
    texts.push(l);
    lineNos.push(i + 1);
  }
  return { texts, lineNos };
}

/**
 * Files the way programs write them: every line has the same keys in the same order with the same
 * whitespace (so the line-shape fast path takes it), and some lines differ: keys in another
 * order, a key missing, an extra or duplicate key, other whitespace, a value of another kind, a
 * value only the general path or JSON.parse takes (escapes, nesting, big integers), a bad line.
 */
const SHAPE_KEYS = ['date', 'delay', 'distance', 'origin', 'x y', 'ok', 'n'];
const SHAPE_KINDS = ['int', 'num', 'ascii', 'date', 'bool', 'null'] as const;
type ShapeKind = (typeof SHAPE_KINDS)[number];

function shapeValue(kind: ShapeKind): fc.Arbitrary<string> {
  let a: fc.Arbitrary<string>;
  switch (kind) {
    case 'int':
      a = fc.oneof(
        fc.integer({ min: -50, max: 5000 }).map(String),
        fc.constantFrom('-0', '0', '123456789012345'),
      );
      break;
    case 'num':
      a = fc.oneof(
        fc.integer({ min: -50, max: 50 }).map(String),
        fc.constantFrom('1.5', '-0.25', '1e2', '2.5E-3', '4.35', '-0.0'),
        fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)),
      );
      break;
    case 'ascii':
      a = fc.constantFrom(
        '"MSY"',
        '"MCO"',
        '"SFO"',
        '"wvSLb"',
        '"EgkZm"',
        '""',
        '"a"',
        '"abcd"',
        '"abcde"',
        '"abcdef"',
        '"abcdefg"',
      );
      break;
    case 'date':
      a = fc
        .tuple(fc.nat({ max: 2 }), fc.nat({ max: 1 }))
        .map(([m, s]) => `"2001-01-01T06:0${m}:0${s}.000Z"`);
      break;
    case 'bool':
      a = fc.constantFrom('true', 'false');
      break;
    default:
      a = fc.constant('null');
  }
  return fc.oneof({ weight: 9, arbitrary: a }, { weight: 1, arbitrary: fc.constant('null') });
}

/** A value that is a surprise for any field: another kind, or one the fast path leaves alone. */
const odd = fc.constantFrom(
  '"MSY"',
  '7',
  '7.5',
  'true',
  '[1]',
  '{"z":1}',
  '"\u0041"',
  '"café"',
  '9007199254740993',
  '1e400',
  '12345678901234567',
  '"no end',
  'nul',
  '-',
  '01',
);

const shapeInput = fc
  .record({
    keys: fc.shuffledSubarray(SHAPE_KEYS, { minLength: 1 }),
    kinds: fc.array(fc.constantFrom(...SHAPE_KINDS), {
      minLength: SHAPE_KEYS.length,
      maxLength: SHAPE_KEYS.length,
    }),
    colon: fc.constantFrom(':', ':', ': ', ' : '),
    comma: fc.constantFrom(',', ',', ', '),
    outer: fc.constantFrom(['{', '}'], ['{', '}'], ['{ ', ' }'], [' {', '}	']),
  })
  .chain(({ keys, kinds, colon, comma, outer }) => {
    const usual = fc.tuple(...keys.map((_, k) => shapeValue(kinds[k])));
    const text = (entries: [string, string][]) =>
      `${outer[0]}${entries.map(([k, v]) => `"${k}"${colon}${v}`).join(comma)}${outer[1]}`;
    const line = fc.oneof(
      { weight: 40, arbitrary: usual.map((vs) => text(keys.map((k, j) => [k, vs[j]]))) },
      // Keys in another order.
      {
        weight: 2,
        arbitrary: fc
          .tuple(usual, fc.shuffledSubarray(keys, { minLength: keys.length }))
          .map(([vs, ks]) => text(ks.map((k) => [k, vs[keys.indexOf(k)]]))),
      },
      // A key missing.
      {
        weight: 2,
        arbitrary: fc
          .tuple(usual, fc.nat({ max: keys.length - 1 }))
          .map(([vs, m]) => text(keys.flatMap((k, j) => (j === m ? [] : [[k, vs[j]] as [string, string]])))),
      },
      // An extra key: a new one, or one of the line's own again (a duplicate).
      {
        weight: 2,
        arbitrary: fc
          .tuple(
            usual,
            fc.constantFrom('extra', ...keys),
            fc.oneof(shapeValue('ascii'), fc.constant('null')),
            fc.nat({ max: keys.length }),
          )
          .map(([vs, k, v, at]) => {
            const es: [string, string][] = keys.map((kk, j) => [kk, vs[j]]);
            es.splice(at, 0, [k, v]);
            return text(es);
          }),
      },
      // One value of another kind, or one the fast path does not take.
      {
        weight: 3,
        arbitrary: fc
          .tuple(usual, fc.nat({ max: keys.length - 1 }), odd)
          .map(([vs, m, v]) => text(keys.map((k, j) => [k, j === m ? v : vs[j]]))),
      },
      // Other whitespace.
      {
        weight: 1,
        arbitrary: usual.map((vs) => ` ${text(keys.map((k, j) => [k, vs[j]]))} `),
      },
      { weight: 1, arbitrary: fc.constantFrom(...BAD, '', '{}') },
    );
    return fc.record({
      lines: fc.array(line, { maxLength: 60 }),
      cuts: fc.array(fc.nat(), { maxLength: 6 }),
    });
  });

describe('NDJSON byte scanner', () => {
  it('takes lines of one shape on its fast path and falls back at any surprise (property)', () => {
    const before = { ...scanStats };
    fc.assert(
      fc.property(shapeInput, ({ lines, cuts }) => {
        const text = `${lines.join('\n')}\n`;
        const bl = byteLines(chunked(Buffer.from(text), cuts));
        const { texts } = textLines(text);
        same(scanColumns(bl), expected(texts), texts);
      }),
      { numRuns: 800 },
    );
    // The generator must reach the fast path often (the bound guards the generator and the path).
    const lines = scanStats.lines - before.lines;
    const fast = scanStats.fast - before.fast;
    assert.ok(fast > lines / 2, `only ${fast} of ${lines} lines took the fast path`);
  });

  it('reads decimal literals on the fast path as JSON.parse does (property)', () => {
    // Up to 15 significant digits the fast path divides by a power of ten; more take Number().
    const decimal = fc
      .tuple(
        fc.boolean(),
        fc.stringMatching(/^(0|[1-9][0-9]{0,9})$/),
        fc.stringMatching(/^[0-9]{1,9}$/),
        fc.constantFrom('', '', '', 'e5', 'E-3', 'e+0'),
      )
      .map(([neg, int, frac, exp]) => `${neg ? '-' : ''}${int}.${frac}${exp}`);
    fc.assert(
      fc.property(fc.array(decimal, { minLength: 2, maxLength: 30 }), (nums) => {
        const lines = nums.map((n) => `{"x":${n},"y":1}`);
        const got = scanColumns(byteLines([Buffer.from(`${lines.join('\n')}\n`)]));
        same(got, expected(lines), lines);
      }),
      { numRuns: 500 },
    );
  });

  it('codes short strings in big batches through the short-string cache as the dictionary does', () => {
    // 3,000 rows (the cache starts at row 256) of ~2,500 distinct strings of 0-7 bytes: slots of the
    // 1,024-entry cache collide, and strings of 6 and 7 bytes sit on either side of its limit.
    let seed = 7;
    const rnd = (k: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % k;
    };
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 -:~';
    const word = () =>
      Array.from({ length: rnd(8) }, () => alphabet[rnd(4) === 0 ? rnd(alphabet.length) : rnd(3)]).join('');
    const lines = Array.from({ length: 3000 }, (_, i) =>
      i % 997 === 500 ? `{"s":"${word()}","t":"é"}` : `{"s":"${word()}","t":"${word()}"}`,
    );
    const before = scanStats.fast;
    same(scanColumns(byteLines([Buffer.from(`${lines.join('\n')}\n`)])), expected(lines), lines);
    assert.ok(scanStats.fast - before > 2900, 'the rows took the fast path');
  });

  it('falls back from the fast path without leaving anything of the line behind', () => {
    const base = '{"a":1,"s":"x","b":true}';
    const cases: [string, string][] = [
      // A new string, then a duplicate key: JSON.parse keeps the last value ("x", not "new").
      ['{"a":1,"s":"new","b":true,"s":"x"}', 'string not kept'],
      // A first non-integer, then a duplicate key: the field stays int64.
      ['{"a":1.5,"s":"x","b":true,"a":2}', 'int64 kept'],
      // A value, then the same key again with null: JSON.parse keeps null.
      ['{"a":5,"s":"x","a":null}', 'null kept'],
      // Keys in another order, a key missing, an extra key.
      ['{"s":"y","a":2,"b":false}', 'order'],
      ['{"a":3,"b":false}', 'missing'],
      ['{"a":3,"s":"z","b":false,"c":1}', 'extra'],
      // The value kind changes mid-batch: not columns.
      ['{"a":"1","s":"x","b":true}', 'kind'],
      ['{"a":1,"s":2,"b":true}', 'kind'],
      // Values the fast path leaves to the general path or to JSON.parse.
      ['{"a":1,"s":"\u0078","b":true}', 'escape'],
      ['{"a":1,"s":"é","b":true}', 'non-ASCII'],
      ['{"a":null,"s":null,"b":null}', 'nulls'],
      ['{"a":1e2,"s":"x","b":true}', 'exponent'],
      ['{"a":9007199254740993,"s":"x","b":true}', 'big'],
      ['{"a":1,"s":"x","b":true} ', 'trailing space'],
      ['{"a":1,"s":"x","b":true}}', 'bad'],
    ];
    for (const [line, what] of cases) {
      const lines = [base, base, line, base.replace('1', '7')];
      const before = scanStats.fast;
      same(scanColumns(byteLines([Buffer.from(`${lines.join('\n')}\n`)])), expected(lines), lines);
      if (what !== 'kind' && what !== 'big' && what !== 'bad')
        assert.ok(scanStats.fast - before >= 1, `${what}: the lines of the usual shape took the fast path`);
    }
  });

  it('gives the columns JSON.parse of each line gives (property)', () => {
    let columnar = 0;
    let total = 0;
    fc.assert(
      fc.property(input, ({ lines, cuts, crlf, lastNewline }) => {
        const text = lines.join(crlf ? '\r\n' : '\n') + (lastNewline ? '\n' : '');
        const bl = byteLines(chunked(Buffer.from(text), cuts));
        const { texts, lineNos } = textLines(text);
        assert.equal(bl.length, texts.length);
        assert.deepEqual(
          Array.from({ length: bl.length }, (_, i) => bl.lineNo(i)),
          lineNos,
        );
        for (let i = 0; i < texts.length; i++) assert.equal(bl.text(i), texts[i]);
        const want = expected(texts);
        const got = scanColumns(bl);
        same(got, want, texts);
        total++;
        if (got) columnar++;
      }),
      { numRuns: 600 },
    );
    // The generator must reach the columnar result often (the bound guards the generator).
    assert.ok(columnar >= total / 5, `only ${columnar} of ${total} inputs gave columns`);
  });

  it('takes the common shape from bytes and the rest from JSON.parse, in one batch', () => {
    const lines = [
      '{"date":"2001-01-01T06:00:00.000Z","delay":-4,"distance":405,"origin":"MSY","destination":"MCO"}',
      '{ "date" : "2001-01-01T06:00:00.000Z" , "delay":-0,"distance":1.0,"origin":"MSY","destination":"caf\\u00e9"}',
      '{"date":"2001-01-01T06:00:01.000Z","delay":12,"distance":1e400,"origin":"é","destination":"MCO"}',
      '{"date":"2001-01-01T06:00:01.000Z","delay":null,"distance":0.5,"origin":"MSY","destination":"café"}',
      '{"date":"2001-01-01T06:00:01.000Z","delay":3,"distance":2,"origin":"MSY","origin":"SFO","destination":"MCO"}',
      // Same FNV-1a hash, same length: told apart by their bytes.
      '{"date":"2001-01-01T06:00:02.000Z","delay":-0,"distance":4.35,"origin":"wvSLb","destination":"MCO"}',
      '{"date":"2001-01-01T06:00:02.000Z","delay":-0.0,"distance":-1e-400,"origin":"EgkZm","destination":"MCO"}',
      '{"date":"2001-01-01T06:00:02.000Z","delay":7,"distance":5,"origin":"wvSLb","destination":"\\u0045gkZm"}',
      '{"date":"2001-01-01T06:00:02.000Z","delay":7,"distance":5,"origin":"EgkZm","destination":"EgkZm"}',
      '{"date":"2001-01-01T06:00:02.000Z","delay":7,"distance":5,"origin":"EgkZm","destination":"\\u0077vSLb"}',
    ];
    const bl = byteLines([Buffer.from(`${lines.join('\n')}\n`)]);
    const got = scanColumns(bl);
    same(got, expected(lines), lines);
    assert.deepEqual(got?.column('origin')?.dictionary()?.values, ['MSY', 'é', 'SFO', 'wvSLb', 'EgkZm']);
    assert.deepEqual(got?.column('destination')?.dictionary()?.values, ['MCO', 'café', 'EgkZm', 'wvSLb']);
    assert.deepEqual([...(got?.column('origin')?.dictionary()?.codes ?? [])], [0, 0, 1, 0, 2, 3, 4, 3, 4, 4]);
    assert.deepEqual(
      [...(got?.column('destination')?.dictionary()?.codes ?? [])],
      [0, 1, 0, 1, 0, 0, 0, 2, 2, 3],
    );
    assert.ok(Object.is(got?.column('delay')?.float64()?.[1], -0));
    assert.ok(Object.is(got?.column('delay')?.float64()?.[5], -0));
    assert.ok(Object.is(got?.column('delay')?.float64()?.[6], -0));
    assert.ok(Object.is(got?.column('distance')?.float64()?.[6], -0));
    assert.equal(got?.column('distance')?.type, 'float64');
    assert.equal(got?.column('distance')?.get(2), Number.POSITIVE_INFINITY);
  });

  it('takes lines with many fields (the per-line scratch grows) and empty objects', () => {
    const wide = (i: number) =>
      `{${Array.from({ length: 100 }, (_, k) => `"f${k}":${k % 3 === 0 ? `"v${(i + k) % 7}"` : k % 3 === 1 ? i * k : `${i}.5`}`).join(',')}}`;
    const lines = [wide(0), wide(1), '{ }', wide(2), '{}', wide(3)];
    const got = scanColumns(byteLines([Buffer.from(`${lines.join('\n')}\n`)]));
    same(got, expected(lines), lines);
    assert.equal(got?.fields.length, 100);
    assert.equal(got?.column('f97')?.get(5), 3 * 97);
    assert.equal(got?.column('f99')?.get(5), 'v4');
  });

  it('leaves a batch with an integer beyond 2^53, a type change or a bad line to the row path', () => {
    const one = (l: string) => scanColumns(byteLines([Buffer.from(`{"a":1}\n${l}\n`)]));
    assert.equal(one('{"a":9007199254740993}'), undefined);
    assert.equal(one('{"a":-12345678901234567890}'), undefined);
    assert.equal(one('{"b":[9007199254740993]}'), undefined);
    assert.equal(one('{"a":"x"}'), undefined);
    for (const l of BAD) assert.equal(one(l), undefined, l);
    assert.notEqual(one('{"a":9007199254740991}'), undefined);
    assert.equal(one('{"a":1e300}'), undefined, '1e300 is an integer beyond 2^53');
    assert.equal(one('{"a":1.5}')?.column('a')?.type, 'float64');
    assert.equal(one('{"a":1e2}')?.column('a')?.type, 'int64');
  });

  it('splits bytes into the lines the text splitter gives, over-long lines included (property)', () => {
    const units = fc.constantFrom(
      ...[
        0x61, 0x7b, 0x20, 0x0a, 0x0a, 0x0d, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80, 0xff, 0xed,
      ],
    );
    fc.assert(
      fc.property(
        fc.array(units, { maxLength: 200 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        fc.integer({ min: 1, max: 40 }),
        (bytes, cuts, max) => {
          const chunks = chunked(Buffer.from(bytes), cuts);
          const bl = byteLines(chunks, max);
          // The reference: the text splitter, with the row path's blank-line rule.
          const sp = new LineSplitter(max);
          const want: { text: string; big?: { bytes: number; head: string }; line: number }[] = [];
          const take = (ls: string[]) => {
            for (const [i, l] of ls.entries()) {
              const line = sp.lineNo - ls.length + i + 1;
              const big = l.length === 0 ? sp.oversized?.get(i) : undefined;
              if (big) want.push({ text: big.head, big, line });
              else if (!(l.length === 0 || (l.length < 4 && l.trim() === ''))) want.push({ text: l, line });
            }
          };
          for (const c of chunks) take(sp.push(c));
          take(sp.end());
          assert.equal(bl.length, want.length);
          for (let i = 0; i < want.length; i++) {
            assert.equal(bl.text(i), want[i].text);
            assert.equal(bl.lineNo(i), want[i].line);
            assert.deepEqual(bl.bigs?.get(i), want[i].big);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});
