/**
 * Column projection in the NDJSON byte scanner (`scanColumns(lines, only)`, issue 14, `kappa run`):
 * on random NDJSON — fields of every kind in the unread keys too (escapes, unicode, nested values,
 * big integers, kind changes, duplicates), bad values in read and unread fields — the columns equal
 * those this test builds from `JSON.parse` of each line with the unread keys removed, and a batch
 * with a line `JSON.parse` rejects is still undefined (so the row path reports it at its line).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ByteLineSplitter, ByteLines, scanColumns, scanStats } from '../../src/formats/ndjson-scan.js';
import type { ValueColumns } from '../../src/stream/batch.js';

function byteLines(text: string, cut: number): ByteLines {
  const b = Buffer.from(text);
  const at = cut % (b.length + 1);
  const sp = new ByteLineSplitter();
  const out = new ByteLines();
  if (at > 0) sp.push(b.subarray(0, at), out);
  if (at < b.length) sp.push(b.subarray(at), out);
  sp.end(out);
  return out;
}

/** True when the parsed value holds, at any depth, an integer of magnitude > 2^53 - 1. */
function unsafe(v: unknown): boolean {
  if (typeof v === 'number') return Number.isInteger(v) && Math.abs(v) > Number.MAX_SAFE_INTEGER;
  if (v !== null && typeof v === 'object') return Object.values(v).some(unsafe);
  return false;
}

/** JSON.parse of each line, unread keys deleted (own `__proto__` kept as a field). */
function projectedRows(texts: string[], only: ReadonlySet<string>): Record<string, unknown>[] | undefined {
  const rows: Record<string, unknown>[] = [];
  for (const t of texts) {
    let v: unknown;
    try {
      v = JSON.parse(t);
    } catch {
      return undefined;
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    const r = v as Record<string, unknown>;
    for (const k of Object.keys(r)) if (!only.has(k)) delete r[k];
    rows.push(r);
  }
  return rows;
}

/** Compares the scanner's columns with the projected rows (undefined: columns cannot hold them). */
function check(got: ValueColumns | undefined, rows: Record<string, unknown>[] | undefined): void {
  if (rows === undefined) {
    assert.equal(got, undefined, 'a bad line leaves the batch to the row path');
    return;
  }
  const fields: string[] = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!fields.includes(k)) fields.push(k);
  const kinds = new Map<string, Set<string>>();
  let representable = true;
  for (const f of fields) {
    const present = rows.map((r) => (Object.hasOwn(r, f) ? r[f] : null)).filter((v) => v !== null);
    if (present.some(unsafe)) representable = false;
    const k = new Set(present.map((v) => (typeof v === 'number' ? 'n' : typeof v === 'string' ? 's' : 'o')));
    if (k.size > 1) representable = false;
    kinds.set(f, k);
  }
  if (!representable) {
    assert.equal(got, undefined, 'a read field the columns cannot hold');
    return;
  }
  assert.ok(got, 'the projected lines are columns');
  assert.deepEqual(got.fields, fields);
  assert.equal(
    got.complete,
    rows.every((r) => Object.keys(r).length === fields.length),
  );
  for (const f of fields) {
    const c = got.column(f);
    assert.ok(c);
    for (let i = 0; i < rows.length; i++)
      assert.deepStrictEqual(c.get(i), Object.hasOwn(rows[i], f) ? rows[i][f] : null, `${f} of row ${i}`);
  }
  for (let i = 0; i < rows.length; i++) assert.deepStrictEqual(got.value(i), rows[i]);
}

const KEYS = ['a', 'b', 'c', 'd', 'é', '__proto__', '1'];
const valueText = fc.oneof(
  fc.integer({ min: -1000, max: 1000 }).map(String),
  fc.constantFrom('-0', '1.5', '1e400', '-2.5E-3', '9007199254740993', '12345678901234567890', '0.1'),
  fc.string({ unit: fc.constantFrom('a', 'Z', ' ', '-'), maxLength: 4 }).map((s) => JSON.stringify(s)),
  fc
    .string({ unit: fc.constantFrom('é', '"', '\\', '\n', '\u0001', '😀', '\ud800', '/'), maxLength: 3 })
    .map((s) => JSON.stringify(s)),
  fc.constantFrom('"\\u0041"', '"\\/"', 'true', 'false', 'null', '[1,2]', '{"x":[9007199254740993]}', '{}'),
);
/** Values JSON.parse rejects (each makes its line bad). */
const BAD_VALUES = [
  '01',
  '-01',
  '1.',
  '.5',
  '-',
  '+1',
  '1e',
  '1e+',
  'tru',
  'nul',
  'fals',
  '"x\u0001"',
  '"\\x"',
  '"\\u12G4"',
  '"\\u12"',
  '"open',
  'NaN',
  '[1,]',
];
const badValue = fc.constantFrom(...BAD_VALUES);
const WS = fc.constantFrom('', '', ' ', '\t');

/**
 * Lines the scanner takes whole, one kind per key (so their keys are known, and the batch can be
 * columns, when a later line skips a value).
 */
const plainLine = fc
  .tuple(
    fc.subarray(['a', 'b', 'c', 'd']),
    fc.integer({ min: -99, max: 99 }),
    fc.constantFrom('"MSY"', '"x y"', 'null'),
    fc.constantFrom('2.5', '-0', '7', 'null'),
    fc.constantFrom('true', 'false'),
  )
  .map(([ks, a, b, c, d]) => {
    const v: Record<string, string> = { a: String(a), b, c, d };
    return `{${ks.map((k) => `"${k}":${v[k]}`).join(',')}}`;
  });

const line = fc.oneof(
  { weight: 30, arbitrary: plainLine },
  {
    weight: 2,
    arbitrary: fc
      .array(fc.tuple(fc.constantFrom(...KEYS), valueText, WS, WS), { maxLength: 6 })
      .map((es) => `{${es.map(([k, v, a, b]) => `${a}${JSON.stringify(k)}${b}:${a}${v}${b}`).join(',')}}`),
  },
  {
    // Mostly keys that plain lines made known (their values are skipped when unread).
    weight: 4,
    arbitrary: fc
      .tuple(fc.constantFrom('c', 'd', 'c', 'd', ...KEYS), badValue)
      .map(([k, v]) => `{"a":1,${JSON.stringify(k)}:${v},"b":"MSY"}`),
  },
  { weight: 1, arbitrary: fc.constantFrom('{"a":1', '[1]', '3', '{"a":1}x', '{"a":1,}') },
);

describe('NDJSON byte scanner with a projection', () => {
  it('gives the columns of JSON.parse with the unread keys removed; bad lines stay bad (property)', () => {
    let columnar = 0;
    let total = 0;
    fc.assert(
      fc.property(fc.array(line, { maxLength: 16 }), fc.subarray(KEYS), fc.nat(), (lines, read, cut) => {
        const only = new Set(read);
        const text = `${lines.join('\n')}\n`;
        const bl = byteLines(text, cut);
        const texts = lines.filter((l) => !(l.length === 0 || (l.length < 4 && l.trim() === '')));
        assert.equal(bl.length, texts.length);
        const got = scanColumns(bl, only);
        check(got, projectedRows(texts, only));
        total++;
        if (got) columnar++;
      }),
      { numRuns: 1500 },
    );
    assert.ok(columnar >= total / 5, `only ${columnar} of ${total} inputs gave columns`);
  });

  it('a bad value in an unread, known field among good lines leaves the batch to the row path (property)', () => {
    fc.assert(
      fc.property(
        fc.array(plainLine, { minLength: 1, maxLength: 10 }),
        fc.array(plainLine, { maxLength: 10 }),
        fc.constantFrom('c', 'd'),
        badValue,
        fc.subarray(['a', 'b']),
        fc.nat(),
        (head, tail, key, bad, read, cut) => {
          const lines = [`{"a":1,"c":2,"d":true}`, ...head, `{"a":1,"${key}":${bad},"b":"MSY"}`, ...tail];
          const bl = byteLines(`${lines.join('\n')}\n`, cut);
          assert.equal(scanColumns(bl, new Set(read)), undefined);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('lines of one shape take the shape fast path with unread fields skipped; a bad unread value still fails', () => {
    const shape = (c: string) => `{"a":7,"c":${c},"b":"MSY","d":true}`;
    const same = Array.from({ length: 300 }, (_, i) => shape(String(i % 5 === 0 ? -i : i)));
    // Unread values of other kinds inside the run: strings, escapes, nesting, big integers.
    const odd = ['"x\\"y"', '{"z":[1,{"y":-0}]}', '9007199254740993', 'null', '"caf\u00e9"', '[ ]'].map(
      shape,
    );
    const texts = [...same, ...odd, ...same];
    const before = scanStats.fast;
    const only = new Set(['a', 'b', 'd']);
    const got = scanColumns(byteLines(`${texts.join('\n')}\n`, 5000), only);
    assert.ok(scanStats.fast - before >= 500, `the shape path took ${scanStats.fast - before} lines`);
    check(got, projectedRows(texts, only));
    for (const bad of BAD_VALUES) {
      const bl = byteLines(`${[...same, shape(bad), ...same].join('\n')}\n`, 0);
      assert.equal(scanColumns(bl, only), undefined, bad);
    }
  });

  it('a bad value of an unread, known field leaves the batch to the row path', () => {
    for (const bad of BAD_VALUES) {
      const bl = byteLines(`{"a":1,"c":2}\n{"a":1,"c":${bad}}\n`, 0);
      assert.equal(scanColumns(bl, new Set(['a'])), undefined, bad);
    }
  });

  it('skips unread values the unprojected scan cannot hold (kind changes, big integers, nesting)', () => {
    const lines = [
      '{"date":"2001-01-01T00:01:00Z","delay":33,"note":"x","big":1,"n":{"a":[1]}}',
      '{"date":"2001-01-01T00:02:00Z","delay":-4,"note":5,"big":12345678901234567890,"n":"caf\\u00e9 é"}',
      '{"date":"2001-01-01T00:03:00Z","note":true,"delay":7}',
    ];
    const bl = byteLines(`${lines.join('\n')}\n`, 0);
    assert.equal(scanColumns(bl), undefined, 'whole, these lines take the row path');
    const got = scanColumns(bl, new Set(['date', 'delay']));
    assert.ok(got);
    assert.deepEqual(got.fields, ['date', 'delay']);
    assert.equal(got.complete, true);
    assert.deepEqual([...(got.column('delay')?.float64() ?? [])], [33, -4, 7]);
    assert.equal(got.column('delay')?.type, 'int64');
    assert.deepEqual(got.value(2), { date: '2001-01-01T00:03:00Z', delay: 7 });
  });

  it('a read field missing from a row makes the batch incomplete; an unread one does not', () => {
    const bl = byteLines('{"a":1,"b":2}\n{"a":3}\n{"b":4,"a":5}\n', 0);
    assert.equal(scanColumns(bl)?.complete, false);
    assert.equal(scanColumns(bl, new Set(['a']))?.complete, true);
    const missing = scanColumns(bl, new Set(['b']));
    assert.equal(missing?.complete, false);
    assert.deepEqual(missing?.value(1), {});
    const none = scanColumns(bl, new Set());
    assert.deepEqual(none?.fields, []);
    assert.equal(none?.length, 3);
  });
});
