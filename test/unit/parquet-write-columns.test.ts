/**
 * The columnar row-group writer (src/formats/parquet/write-columns.ts) against hyparquet-writer's
 * own row path (`ParquetWriter.write` with one JS value per cell, the oracle): byte-identical files
 * for random INT64 / timestamp / DOUBLE / dictionary-coded string columns of every shape the
 * dictionary decision depends on (nulls, -0, few distinct, all distinct, big and small ranges,
 * fractional timestamps, n = 1, n around the 1000-value sample), under every codec; and DuckDB
 * reads the files back to the values.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import { type CodecSetup, codecSetup, parquetElement } from '../../src/formats/parquet/write.js';
import { type GroupColumn, writeGroup } from '../../src/formats/parquet/write-columns.js';
import type { FieldType } from '../../src/stream/protocol.js';
import { mulberry32 as rng, tempDir } from '../helpers.js';

type Kind = 'int64' | 'timestamptz' | 'float64' | 'string';

/** A random column: its typed form for writeGroup and the values of the row path. */
interface Col {
  name: string;
  type: Kind;
  group: GroupColumn;
  values: unknown[];
}

const SHAPES = [
  'few',
  'distinct',
  'edge90',
  'blocks',
  'blocks',
  'half',
  'run',
  'small-range',
  'big-range',
  'all-null',
  'mixed',
] as const;
type Shape = (typeof SHAPES)[number];

/** A random number of `shape` for row i of n (NaN: null), integral unless `frac`. */
function number(r: () => number, shape: Shape, i: number, n: number, frac: boolean, pool: number[]): number {
  if (shape === 'all-null') return Number.NaN;
  if (r() < 0.08) return Number.NaN;
  const f = (x: number) => (frac ? x + Math.floor(r() * 4) / 4 : x);
  switch (shape) {
    case 'few':
      return pool[Math.floor(r() * pool.length)];
    case 'distinct':
      return f(i * 7919 - n * 3);
    case 'blocks':
      // Runs of 3 to 5: a sample of a long chunk sees distinct values, the chunk a dictionary.
      return f(Math.floor(i / (3 + (n % 3))) * 7919);
    case 'edge90':
      // About 90 % distinct: the sample's rejection ratio (0.9) is the decision's edge.
      return r() < 0.04 + (n % 13) / 100 ? pool[i % 2] : f(i * 7919 - n * 3);
    case 'half':
      // About as many distinct values as the size rule allows: the decision's edge.
      return f(Math.floor(r() * n * (0.3 + r() * 0.4)));
    case 'run':
      return pool[Math.floor((i / n) * pool.length)];
    case 'small-range':
      return f(Math.floor(r() * 50) - 25);
    case 'big-range':
      return f(Math.floor((r() - 0.5) * 2 ** 53));
    default:
      return r() < 0.5 ? pool[Math.floor(r() * pool.length)] : f(Math.floor((r() - 0.5) * 1e12));
  }
}

function column(r: () => number, name: string, type: Kind, n: number): Col {
  const shape = SHAPES[Math.floor(r() * SHAPES.length)];
  if (type === 'string') {
    const dictSize =
      shape === 'distinct' || shape === 'edge90' || shape === 'blocks'
        ? n + 3
        : 1 + Math.floor(r() * (shape === 'few' ? 5 : 300));
    const dict = Array.from({ length: dictSize }, (_, k) =>
      k % 17 === 3 ? `😀${k}` : k % 5 === 1 ? `é${'x'.repeat(k % 40)}` : `s${k}`,
    );
    const codes = new Int32Array(n);
    for (let i = 0; i < n; i++)
      codes[i] =
        shape === 'all-null' || r() < 0.08
          ? -1
          : shape === 'blocks'
            ? Math.floor(i / (3 + (n % 3)))
            : shape === 'edge90'
              ? r() < 0.04 + (n % 13) / 100
                ? i % 2
                : i
              : shape === 'distinct'
                ? i
                : shape === 'run'
                  ? Math.floor((i / n) * dictSize)
                  : Math.floor(r() * dictSize);
    const values = Array.from(codes, (c) => (c < 0 ? null : dict[c]));
    return { name, type, group: { name, codes, dict }, values };
  }
  const frac = type === 'float64' || (type === 'timestamptz' && r() < 0.3);
  const pool =
    type === 'float64'
      ? [0, -0, 0.5, -1.25, 3.75, 1e300, -2.5e-300, 123456.789]
      : type === 'timestamptz'
        ? Array.from({ length: 24 }, (_, h) => Date.UTC(2001, 0, 5, h))
        : [0, -0, 1, -1, 2 ** 40, -(2 ** 40), 7];
  const f = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let v = number(r, shape, i, n, frac, pool);
    if (type === 'timestamptz' && shape !== 'few' && shape !== 'run' && !Number.isNaN(v))
      v = 978307200000 + v / 1000;
    if (type !== 'float64' && !Number.isNaN(v) && Math.abs(v) > 2 ** 53) v = 2 ** 53;
    f[i] = v;
  }
  const values = Array.from(f, (v) =>
    Number.isNaN(v) ? null : type === 'float64' ? v : BigInt(Math.floor(v)),
  );
  const group: GroupColumn = type === 'float64' ? { name, double: f } : { name, int64: f };
  return { name, type, group, values };
}

/** A writer over memory for the columns' schema. */
function writer(cols: Col[], codec: CodecSetup): { pw: ParquetWriter; out: ByteWriter } {
  const out = new ByteWriter();
  const pw = new ParquetWriter({
    writer: out,
    schema: [
      { name: 'root', num_children: cols.length },
      ...cols.map((c) => parquetElement(c.name, c.type as FieldType)),
    ],
    codec: codec.codec,
    compressors: codec.compressors,
    statistics: true,
    createdBy: 'kappa',
  });
  return { pw, out };
}

/** The file of row groups `groups` written column by column, and by the row path. */
async function both(groups: Col[][], codec: CodecSetup): Promise<{ batch: Uint8Array; rows: Uint8Array }> {
  const a = writer(groups[0], codec);
  const b = writer(groups[0], codec);
  for (const cols of groups) {
    const n = cols[0].values.length;
    await writeGroup(
      a.pw,
      cols.map((c) => c.group),
      n,
    );
    b.pw.write({
      columnData: cols.map((c) => ({ name: c.name, data: c.values as never[] })),
      rowGroupSize: n,
    });
  }
  a.pw.finish();
  b.pw.finish();
  return { batch: a.out.getBytes(), rows: b.out.getBytes() };
}

const SIZES = [1, 2, 7, 8, 9, 100, 999, 1000, 1001, 1002, 2331, 4000];
const KINDS: Kind[] = ['int64', 'timestamptz', 'float64', 'string'];

function group(r: () => number, n: number): Col[] {
  return KINDS.flatMap((t, j) => [column(r, `${t}_${j}a`, t, n), column(r, `${t}_${j}b`, t, n)]);
}

const tmp = tempDir('kappa-wcols-');
after(() => tmp.cleanup());

describe('columnar row groups equal hyparquet-writer row path', () => {
  for (const codecName of ['zstd', 'none', 'snappy']) {
    it(`gives the row path's bytes for random columns (${codecName})`, async () => {
      const codec = await codecSetup(codecName);
      let cases = 0;
      for (let seed = 1; seed <= 12; seed++) {
        const r = rng(seed * 7 + codecName.length);
        for (const n of SIZES) {
          const groups = [group(r, n)];
          if (r() < 0.3) {
            // A second row group of another size, the same schema.
            const m = SIZES[Math.floor(r() * SIZES.length)];
            groups.push(groups[0].map((c) => column(r, c.name, c.type, m)));
          }
          const { batch, rows } = await both(groups, codec);
          assert.ok(Buffer.from(batch).equals(Buffer.from(rows)), `seed ${seed}, n ${n}, ${codecName}`);
          cases++;
        }
      }
      assert.equal(cases, 12 * SIZES.length);
    });
  }

  it('DuckDB reads the files back to the values', async () => {
    const codec = await codecSetup('zstd');
    const r = rng(99);
    const con = await (await DuckDBInstance.create(':memory:')).connect();
    for (const n of [1, 999, 1001, 2331]) {
      const cols = group(r, n);
      const { batch } = await both([cols], codec);
      const path = join(tmp.dir, `f${n}.parquet`);
      writeFileSync(path, batch);
      const sel = cols
        .map((c) =>
          c.type === 'timestamptz' ? `epoch_ms("${c.name}")::DOUBLE AS "${c.name}"` : `"${c.name}"`,
        )
        .join(', ');
      const got = (await con.runAndReadAll(`SELECT ${sel} FROM '${path}'`)).getRowObjects();
      assert.equal(got.length, n);
      for (const c of cols)
        for (let i = 0; i < n; i++) {
          const want = c.values[i];
          const v = got[i][c.name];
          if (want === null) assert.equal(v, null, `${c.name}[${i}]`);
          else if (c.type === 'string') assert.equal(v, want, `${c.name}[${i}]`);
          else if (c.type === 'float64') assert.ok(Object.is(v, want) || v === want, `${c.name}[${i}]`);
          else assert.equal(BigInt(v as number | bigint), want, `${c.name}[${i}]`);
        }
    }
  });
});
