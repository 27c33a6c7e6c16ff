/**
 * The window snapshot's value texts written as bytes (`windowSnapshotColumns` with `valueBytes`,
 * what the checkpoint part writer's thread uses): each row's bytes are the UTF-8 of the JSON text
 * `JSON.stringify` gives for the window's state value (the oracle, built here as the format
 * describes it), for awkward numbers and aggregate names too, and DuckDB reads the written part's
 * `value` column as those texts.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import {
  K_AVG,
  K_COUNT,
  K_MINMAX,
  type WindowRowsCopy,
  windowSnapshotColumns,
} from '../../src/ops/window/snapshot-rows.js';
import { keyGroupOf } from '../../src/state/keygroup.js';
import { writeOperatorState } from '../../src/state/savepoint/write.js';
import { tempDir } from '../helpers.js';

const MKG = 128;
const AWKWARD = [
  0,
  -0,
  1,
  -1,
  7,
  10,
  99,
  100,
  123456789,
  2 ** 53 - 1,
  -(2 ** 53 - 1),
  8999999999999999,
  999999999999999,
  2 ** 53,
  1e21,
  -1e21,
  0.1,
  -2.5,
  1 / 3,
  5e-324,
  -1.2345678901234567e-308,
  978307260000,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
];

/** A copy of `fresh` fresh slots and two state entries, over three keys, with aggregates `names`. */
function copyOf(names: string[], kinds: number[], fresh: number): WindowRowsCopy {
  const keyText = ['"JFK"', '"Zürich"', '42'];
  const nE = 2;
  const n = nE + fresh;
  const na = names.length;
  const c: WindowRowsCopy = {
    state: 'window',
    session: false,
    names,
    kinds: Uint8Array.from(kinds),
    keyText,
    keyGroup: Int32Array.from(keyText, (k) => keyGroupOf(k, MKG)),
    length: n,
    kid: Int32Array.from({ length: n }, (_, i) => i % keyText.length),
    windowStart: Float64Array.from({ length: n }, (_, i) => 3_600_000 * i),
    windowEnd: Float64Array.from({ length: n }, (_, i) => 3_600_000 * (i + 1)),
    timer: Float64Array.from({ length: n }, (_, i) => (i < nE ? 3_600_000 * (i + 1) - 1 : Number.NaN)),
    texts: ['{"max_ts":1,"fired":true,"changed":false,"next_early":null,"acc":{"ä":"δ€😀"}}', '{"a":[1,2]}'],
    maxTs: Float64Array.from({ length: fresh }, (_, f) => AWKWARD[(f * 7) % AWKWARD.length]),
    acc0: Float64Array.from({ length: fresh * na }, (_, a) => AWKWARD[a % AWKWARD.length]),
    acc1: Float64Array.from({ length: fresh * na }, (_, a) => AWKWARD[(a * 3 + 1) % AWKWARD.length]),
    has: Uint8Array.from({ length: fresh * na }, (_, a) => (a % 5 === 0 ? 0 : 1)),
  };
  return c;
}

/** The oracle: the JSON text of row i of copy c, as the savepoint format defines the window value. */
function expectedText(c: WindowRowsCopy, i: number): string {
  const nE = c.texts.length;
  if (i < nE) return c.texts[i];
  const f = i - nE;
  const na = c.names.length;
  const acc: Record<string, unknown> = {};
  for (let j = 0; j < na; j++) {
    const a = f * na + j;
    acc[c.names[j]] =
      c.kinds[j] === K_AVG ? [c.acc0[a], c.acc1[a]] : c.kinds[j] === K_MINMAX && !c.has[a] ? null : c.acc0[a];
  }
  return JSON.stringify({ max_ts: c.maxTs[f], fired: false, changed: true, next_early: null, acc });
}

describe('window snapshot values as bytes (valueBytes)', () => {
  const cases: [string, string[], number[]][] = [
    ['count, avg, max', ['count', 'avg_delay', 'max_delay'], [K_COUNT, K_AVG, K_MINMAX]],
    [
      'integer-like, repeated, escaped, non-ASCII and __proto__ names',
      ['z', '1', 'z', '0', '__proto__', 'a"b\\c\n', 'δ😀'],
      [K_COUNT, K_AVG, K_MINMAX, K_MINMAX, K_AVG, K_COUNT, K_MINMAX],
    ],
  ];
  for (const [label, names, kinds] of cases)
    it(`each row's bytes are the UTF-8 of JSON.stringify of its value: ${label}`, () => {
      const c = copyOf(names, kinds, 200);
      const strings = windowSnapshotColumns(copyOf(names, kinds, 200));
      const cols = windowSnapshotColumns(c, { valueBytes: true });
      assert.ok(cols.valueUtf8, 'valueUtf8 is given');
      assert.equal(cols.value.length, 0, 'no strings are made');
      // The rows' order (and so which copy row each output row is) comes from the string form.
      const got = [...cols.valueUtf8(0, 70), ...cols.valueUtf8(70, cols.length)].map((b) =>
        Buffer.from(b).toString('utf8'),
      );
      assert.equal(got.length, c.length);
      const want = strings.value;
      const oracle = Array.from({ length: c.length }, (_, i) => expectedText(c, i));
      const all = new Set(oracle);
      for (let r = 0; r < c.length; r++) {
        assert.equal(got[r], want[r], `row ${r}`);
        assert.ok(all.has(got[r]), `row ${r} is the JSON text of a window: ${got[r]}`);
      }
      assert.deepEqual([...got].sort(), oracle.sort(), 'every window once, by the JSON.stringify oracle');
    });

  it('DuckDB reads the part written from bytes with the oracle texts in the value column', async () => {
    const t = tempDir();
    const names = ['count', 'avg_delay', 'max_delay'];
    const c = copyOf(names, [K_COUNT, K_AVG, K_MINMAX], 40_000);
    const want = Array.from({ length: c.length }, (_, i) => expectedText(c, i));
    const cols = windowSnapshotColumns(c, { valueBytes: true });
    await writeOperatorState(
      t.dir,
      {
        uid: 'w',
        kind: 'window',
        states: [{ name: 'window', kind: 'window', schema: {} }],
        entries: [],
        columns: cols,
      },
      MKG,
    );
    const files = readdirSync(join(t.dir, 'w')).map((f) => join(t.dir, 'w', f));
    const db = await (await DuckDBInstance.create(':memory:')).connect();
    const list = files.map((f) => `'${f}'`).join(',');
    try {
      const r = await db.runAndReadAll(`SELECT value FROM read_parquet([${list}])`);
      const got = r.getRows().map((row) => String(row[0]));
      assert.equal(got.length, c.length);
      assert.deepEqual(got.sort(), want.sort());
    } finally {
      db.closeSync();
      t.cleanup();
    }
  });

  it('orders the windows of a key by the byte order of their start texts, mixed digit counts or not', () => {
    for (const starts of [
      [3_600_000, 10_800_000, 7_200_000, 0 + 1_000_000],
      [100, 9, 10, 5, 1000, 99, 0],
      [300, 100, 200, 250],
    ]) {
      const c = copyOf(['count'], [K_COUNT], starts.length - 2);
      c.kid.fill(0);
      c.windowStart = Float64Array.from(starts);
      const cols = windowSnapshotColumns(c);
      const oracle = starts.map(String).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      assert.deepEqual(cols.windowStart.map(String), oracle, `starts ${starts}`);
    }
  });
});
