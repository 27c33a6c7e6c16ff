import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { csvBatches, csvValue } from '../../src/formats/csv.js';
import type { RowBatch } from '../../src/formats/format.js';
import {
  convertColumn,
  parquetBatches,
  readParquetFooter,
  storeAsyncBuffer,
} from '../../src/formats/parquet/read.js';
import { LocalStore } from '../../src/storage/local.js';
import type { ObjectStore } from '../../src/storage/store.js';
import { tempDir } from '../helpers.js';

async function collect(it: AsyncIterable<RowBatch>) {
  const out: { row: unknown; where: unknown; raw: string; error?: string }[] = [];
  for await (const b of it)
    for (let i = 0; i < b.rows.length; i++)
      out.push({ row: b.rows[i], where: b.where(i), raw: b.raw(i), error: b.errors?.get(i) });
  return out;
}

async function* chunks(...parts: string[]) {
  for (const p of parts) yield Buffer.from(p);
}

describe('csv', () => {
  it('csvValue: numbers only when they round-trip exactly', () => {
    assert.equal(csvValue('42', false), 42);
    assert.equal(csvValue('-0.5', false), -0.5);
    for (const s of ['00123', '1.50', '1e3', '+1', ' 1', 'Infinity', 'NaN', '0x10', '-0'])
      assert.equal(csvValue(s, false), s, s);
    assert.equal(csvValue('', false), null);
    assert.equal(csvValue('', true), '');
  });

  it('locates records by their first line across chunk boundaries; raw is the original text', async () => {
    const rows = await collect(csvBatches(chunks('a,b\n1,"x\n', 'y"\n2,z,9\n\n3,', 'w\n'), 'in.csv', ','));
    assert.deepEqual(
      rows.map((r) => [r.row, r.where, r.raw, r.error !== undefined]),
      [
        [{ a: 1, b: 'x\ny' }, { source: 'in.csv', line: 2 }, '1,"x\ny"\n', false],
        [undefined, { source: 'in.csv', line: 4 }, '2,z,9\n', true],
        [{ a: 3, b: 'w' }, { source: 'in.csv', line: 6 }, '3,w\n', false],
      ],
    );
  });
});

describe('parquet read', () => {
  it('convertColumn: int64 beyond 2^53 as decimal strings, decimals rounded to their scale', () => {
    assert.deepEqual(convertColumn(new BigInt64Array([1n, 2n ** 60n]), 'int64', 0), [
      1,
      '1152921504606846976',
    ]);
    assert.deepEqual(convertColumn([0.30000000000000004, null, undefined], 'decimal', 1), [0.3, null, null]);
    assert.deepEqual(convertColumn([Number.NaN, 1.5], 'float64', 0), [null, 1.5]);
    assert.deepEqual(convertColumn([new Uint8Array([104, 105])], 'binary', 0), ['aGk=']);
  });

  const tmp = tempDir();
  const file = join(tmp.dir, 'groups.parquet');
  before(async () => {
    const con = await (await DuckDBInstance.create(':memory:')).connect();
    await con.run(
      `COPY (SELECT i AS id, md5(i::VARCHAR) AS h FROM range(0, 50000) r(i))
       TO '${file}' (FORMAT parquet, ROW_GROUP_SIZE 10000, COMPRESSION zstd)`,
    );
  });
  after(() => tmp.cleanup());

  it('reads the footer first, then one row group per ranged read; where() names group and row', async () => {
    const local = new LocalStore();
    const reads: [number, number][] = [];
    const store = {
      stat: (u: string) => local.stat(u),
      readRange: (u: string, s: number, e: number) => {
        reads.push([s, e]);
        return local.readRange(u, s, e);
      },
    } as unknown as ObjectStore;
    const size = (await local.stat(file))?.size ?? 0;
    const buf = storeAsyncBuffer(store, file, size);
    const info = await readParquetFooter(buf, file);
    assert.equal(reads.length, 1);
    assert.equal(reads[0][1], size, 'the first read is the tail (footer)');
    const groups = info.metadata.row_groups;
    assert.ok(groups.length >= 4);
    const largest = Math.max(...groups.map((g) => Number(g.total_compressed_size ?? g.total_byte_size)));
    let n = 0;
    let last: unknown;
    for await (const b of parquetBatches(buf, file, info)) {
      for (let i = 0; i < b.rows.length; i++) {
        assert.equal((b.rows[i] as { id: number }).id, n++);
        last = b.where(i);
      }
    }
    assert.equal(n, 50000);
    assert.deepEqual(last, {
      source: file,
      rowGroup: groups.length - 1,
      row: Number(groups[groups.length - 1].num_rows) - 1,
    });
    // Memory stays bounded: no read after the footer spans more than one row group's bytes.
    for (const [s, e] of reads.slice(1)) assert.ok(e - s <= largest, `read of ${e - s} bytes > ${largest}`);
    assert.ok(reads.length - 1 >= groups.length);
  });
});
