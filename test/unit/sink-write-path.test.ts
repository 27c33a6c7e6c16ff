/**
 * The table sink's write path (issue 14): the typed-array page encoders against hyparquet-writer's
 * (byte for byte), bounded concurrency of the committer's file steps, write-behind local pending
 * files, and the sink's column pieces staying typed (dictionary codes for a few rows of a large
 * dictionary, row objects of a mixed buffer read as typed columns).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { CompressionCodec, SchemaElement } from 'hyparquet';
import { ByteWriter } from 'hyparquet-writer';
import { writeDataPageV2 } from 'hyparquet-writer/src/datapage.js';
import { writeDictionaryPage as hyDictionaryPage } from 'hyparquet-writer/src/dictionary.js';
import { codecSetup, parquetElement } from '../../src/formats/parquet/write.js';
import {
  type PageValues,
  writeDataPage,
  writeDictionaryPage,
} from '../../src/formats/parquet/write-pages.js';
import { localStore, WRITE_BEHIND_BYTES } from '../../src/storage/local.js';
import { IO_CONCURRENCY, mapLimit, type ObjectStore, type PendingFile } from '../../src/storage/store.js';
import type { Column as BatchColumn, RecordBatch } from '../../src/stream/batch.js';
import { newMetaData } from '../../src/table/delta.js';
import { bufferView, capturePiece, type Segment } from '../../src/table/sink/columns.js';
import { Committer } from '../../src/table/sink/committer.js';
import { mulberry32 as rng, tempDir } from '../helpers.js';

type Encoder = Parameters<typeof writeDataPageV2>[0]['column'];

async function encoder(element: SchemaElement, codec: string): Promise<Encoder> {
  const c = await codecSetup(codec);
  const { snappyCompress } = (await import('hyparquet-writer/src/snappy.js')) as {
    snappyCompress: (b: Uint8Array) => Uint8Array;
  };
  return {
    columnName: element.name,
    element,
    schemaPath: [{ name: 'root', num_children: 1 }, element],
    codec: c.codec as CompressionCodec,
    compressors: { SNAPPY: snappyCompress, ...c.compressors },
    stats: true,
    pageSize: 1 << 20,
    columnIndex: false,
    offsetIndex: true,
  } as unknown as Encoder;
}

const bytesOf = (w: ByteWriter): Buffer => Buffer.from(w.getBytes());

/** Definition levels with runs and scattered nulls, as a real column has them. */
function randomDefs(r: () => number, n: number, nullRate: number): Uint8Array {
  const d = new Uint8Array(n);
  let i = 0;
  while (i < n) {
    const run = r() < 0.3 ? 1 + Math.floor(r() * 40) : 1;
    const v = r() < nullRate ? 0 : 1;
    for (let j = 0; j < run && i < n; j++) d[i++] = v;
  }
  return d;
}

describe('typed page encoders (write-pages.ts) = hyparquet-writer 0.17.0 byte for byte', () => {
  for (const codec of ['none', 'snappy', 'zstd']) {
    it(`RLE_DICTIONARY data pages (bit widths 0-13, runs, nulls, sub-ranges), ${codec}`, async () => {
      const col = await encoder(parquetElement('s', 'string'), codec);
      const r = rng(7);
      for (let t = 0; t < 60; t++) {
        const n = 1 + Math.floor(r() * 3000);
        const distinct = [1, 2, 3, 9, 200, 5000][t % 6];
        const defs = randomDefs(r, n, [0, 0.1, 0.9][t % 3]);
        const indexes = new Int32Array(n);
        let cur = 0;
        for (let i = 0; i < n; i++) {
          if (r() < 0.4) cur = Math.floor(r() * distinct);
          indexes[i] = cur;
        }
        const from = t % 4 === 0 ? Math.floor(r() * n) : 0;
        const to = t % 5 === 0 ? from + Math.floor(r() * (n - from)) : n;
        if (to <= from) continue;
        const ours = new ByteWriter();
        const v: PageValues = { encoding: 'RLE_DICTIONARY', indexes };
        const size = writeDataPage(ours, col, defs, from, to, v);
        const theirs = new ByteWriter();
        const values: (number | null)[] = [];
        for (let i = from; i < to; i++) values.push(defs[i] ? indexes[i] : null);
        const theirSize = writeDataPageV2({
          writer: theirs,
          column: col,
          encoding: 'RLE_DICTIONARY',
          pageData: {
            values: values as never[],
            definitionLevels: Array.from(defs.subarray(from, to)),
            repetitionLevels: [],
            maxDefinitionLevel: 1,
          },
        });
        assert.deepEqual(bytesOf(ours), bytesOf(theirs), `case ${t}: n ${n}, ${from}..${to}`);
        assert.equal(size, theirSize);
      }
    });
  }

  it('PLAIN INT64 and DOUBLE data pages (negative, beyond 2^53, -0, nulls)', async () => {
    const r = rng(11);
    for (const type of ['INT64', 'DOUBLE'] as const) {
      const col = await encoder(parquetElement('x', type === 'INT64' ? 'int64' : 'float64'), 'none');
      for (let t = 0; t < 20; t++) {
        const n = 1 + Math.floor(r() * 2000);
        const defs = randomDefs(r, n, 0.2);
        const numbers = new Float64Array(n);
        for (let i = 0; i < n; i++) {
          const pick = r();
          let x: number;
          if (type === 'INT64')
            x =
              pick < 0.1
                ? -(2 ** 63)
                : pick < 0.2
                  ? 2 ** 62 + 2 ** 12
                  : pick < 0.3
                    ? -0
                    : Math.floor((r() - 0.5) * 2 ** (1 + Math.floor(r() * 60)));
          else x = pick < 0.1 ? -0 : pick < 0.2 ? 1e300 : (r() - 0.5) * 1e6;
          numbers[i] = defs[i] ? x : Number.NaN;
        }
        const ours = new ByteWriter();
        writeDataPage(ours, col, defs, 0, n, { encoding: 'PLAIN', type, numbers });
        const theirs = new ByteWriter();
        const values = Array.from(numbers, (x, i) => (defs[i] ? (type === 'INT64' ? BigInt(x) : x) : null));
        writeDataPageV2({
          writer: theirs,
          column: col,
          encoding: 'PLAIN',
          pageData: {
            values: values as never[],
            definitionLevels: Array.from(defs),
            repetitionLevels: [],
            maxDefinitionLevel: 1,
          },
        });
        assert.deepEqual(bytesOf(ours), bytesOf(theirs), `${type} case ${t}`);
      }
    }
  });

  it('dictionary pages: UTF-8 strings (non-ASCII, lone surrogate, empty), INT64 and DOUBLE numbers', async () => {
    const strings = ['', 'a', 'é%', '😀', '\uE000', 'x'.repeat(300), '\uD800 lone'];
    const s = await encoder(parquetElement('s', 'string'), 'zstd');
    const ours = new ByteWriter();
    const theirs = new ByteWriter();
    writeDictionaryPage(ours, s, { strings });
    hyDictionaryPage(theirs, s, strings.map((x) => new TextEncoder().encode(x)) as never[]);
    assert.deepEqual(bytesOf(ours), bytesOf(theirs));
    const nums = [0, -1, 2 ** 53 + 2, -(2 ** 63), 12345];
    const i = await encoder(parquetElement('i', 'int64'), 'snappy');
    const o2 = new ByteWriter();
    const t2 = new ByteWriter();
    writeDictionaryPage(o2, i, { type: 'INT64', numbers: nums });
    hyDictionaryPage(t2, i, nums.map((x) => BigInt(x)) as never[]);
    assert.deepEqual(bytesOf(o2), bytesOf(t2));
    const dbl = [0.5, -0, 1e300, -2.5e-300];
    const d = await encoder(parquetElement('d', 'float64'), 'none');
    const o3 = new ByteWriter();
    const t3 = new ByteWriter();
    writeDictionaryPage(o3, d, { type: 'DOUBLE', numbers: dbl });
    hyDictionaryPage(t3, d, dbl as never[]);
    assert.deepEqual(bytesOf(o3), bytesOf(t3));
  });
});

describe('writeGroup: a string column hyparquet-writer keeps PLAIN, from dictionary codes', () => {
  it('the same file as ParquetWriter.write of the strings (many distinct, non-ASCII, nulls, 2 pages)', async () => {
    const { ParquetWriter } = await import('hyparquet-writer');
    const { writeGroup } = await import('../../src/formats/parquet/write-columns.js');
    const r = rng(5);
    const n = 60_000;
    const dict = [...Array(50_000).keys()].map(
      (k) => `${k % 7 === 0 ? 'é😀' : 'v'}-${k}-${'x'.repeat(k % 23)}`,
    );
    const codes = new Int32Array(n);
    for (let i = 0; i < n; i++) codes[i] = r() < 0.05 ? -1 : Math.floor(r() * dict.length);
    const files: Buffer[] = [];
    for (const columnar of [true, false]) {
      const w = new ByteWriter();
      const c = await codecSetup('none');
      const pw = new ParquetWriter({
        writer: w,
        schema: [{ name: 'root', num_children: 1 }, parquetElement('s', 'string')],
        codec: c.codec,
        compressors: c.compressors,
        statistics: true,
      });
      if (columnar) await writeGroup(pw, [{ name: 's', codes, dict }], n);
      else
        await pw.write({
          columnData: [{ name: 's', data: Array.from(codes, (k) => (k < 0 ? null : dict[k])) as never[] }],
          rowGroupSize: n,
        });
      pw.finish();
      files.push(bytesOf(w));
    }
    assert.ok(files[0].length > 1 << 20, 'more than one page of strings');
    assert.deepEqual(files[0], files[1]);
  });
});

describe('mapLimit', () => {
  it('runs at most `limit` calls at once, starts them in order, returns results in order', async () => {
    let inFlight = 0;
    let peak = 0;
    const started: number[] = [];
    const out = await mapLimit([...Array(30).keys()], 4, async (x) => {
      started.push(x);
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((res) => setTimeout(res, 1 + ((x * 7) % 5)));
      inFlight--;
      return x * 2;
    });
    assert.deepEqual(
      out,
      [...Array(30).keys()].map((x) => x * 2),
    );
    assert.deepEqual(started, [...Array(30).keys()]);
    assert.equal(peak, 4);
  });

  it('on a failure starts nothing more and throws the first error once the started calls settled', async () => {
    let running = 0;
    const started: number[] = [];
    await assert.rejects(
      mapLimit([...Array(20).keys()], 3, async (x) => {
        started.push(x);
        running++;
        await new Promise((res) => setTimeout(res, x === 1 ? 1 : 10));
        running--;
        if (x === 1) throw new Error('boom 1');
      }),
      /boom 1/,
    );
    assert.equal(running, 0, 'every started call had settled');
    assert.ok(started.length <= 5, `started ${started.length}`);
  });
});

describe('committer: file steps overlap (bounded)', () => {
  const tmp = tempDir('kappa-commit-par-');
  after(() => tmp.cleanup());

  it(`finishes and publishes up to ${IO_CONCURRENCY} files at once, all durable before the log, all renamed after`, async () => {
    const root = join(tmp.dir, 't');
    let inFlight = 0;
    let peakFinish = 0;
    let peakPublish = 0;
    let finished = 0;
    let logAfterAllFinished = false;
    const store: ObjectStore = Object.create(localStore);
    store.publish = async (rec) => {
      inFlight++;
      peakPublish = Math.max(peakPublish, inFlight);
      await new Promise((res) => setTimeout(res, 5));
      inFlight--;
      return localStore.publish(rec);
    };
    store.put = async (uri, data, opts) => {
      if (uri.includes('_delta_log/')) logAfterAllFinished = finished === 20;
      return localStore.put(uri, data, opts);
    };
    const committer = new Committer(store, root, 'ab'.repeat(8));
    await committer.start();
    const files = [];
    for (let k = 0; k < 20; k++) {
      const rel = `g=${k}/part-${String(k).padStart(5, '0')}-${'ab'.repeat(8)}.ndjson`;
      const inner = await localStore.create(join(root, rel));
      await inner.write(Buffer.from(`{"k":${k}}\n`));
      const pending: PendingFile = {
        write: (c) => inner.write(c),
        finish: async () => {
          inFlight++;
          peakFinish = Math.max(peakFinish, inFlight);
          await new Promise((res) => setTimeout(res, 5));
          inFlight--;
          const rec = await inner.finish();
          finished++;
          return rec;
        },
        commit: () => inner.commit(),
        abort: () => inner.abort(),
        get bytes() {
          return inner.bytes;
        },
      };
      files.push({ rel, pending, partitionValues: { g: String(k) }, stats: '{"numRecords":1}' });
    }
    const md = newMetaData([{ name: 'k', type: 'int64', declared: true }], ['g'], [], 'json', {});
    const version = await committer.commit({ version: -1, files: new Map() }, files, (adds) => [
      { protocol: { minReaderVersion: 1, minWriterVersion: 2 } },
      { metaData: md },
      ...adds.map((add) => ({ add })),
      { commitInfo: {} },
    ]);
    await committer.close();
    assert.equal(version, 0);
    assert.ok(peakFinish > 1 && peakFinish <= IO_CONCURRENCY, `finish peak ${peakFinish}`);
    assert.ok(peakPublish > 1 && peakPublish <= IO_CONCURRENCY, `publish peak ${peakPublish}`);
    assert.ok(logAfterAllFinished, 'the log version was written after every file was durable');
    for (let k = 0; k < 20; k++) {
      const p = join(root, files[k].rel);
      assert.equal(readFileSync(p, 'utf8'), `{"k":${k}}\n`);
    }
    const pendingDir = join(root, '_kappa', 'pending');
    assert.deepEqual(existsSync(pendingDir) ? readdirSync(pendingDir) : [], [], 'the pending record is gone');
  });
});

describe('local pending files: written behind the caller', () => {
  const tmp = tempDir('kappa-behind-');
  after(() => tmp.cleanup());

  it('write resolves before the bytes are on disk (within the bound); finish makes all of them durable, in order', async () => {
    const target = join(tmp.dir, 'f.bin');
    const p = await localStore.create(target);
    const chunks = [...Array(50).keys()].map((k) => Buffer.alloc(64 * 1024, k));
    let sawQueued = false;
    for (const c of chunks) {
      await p.write(c);
      const q = (p as unknown as { queued: number }).queued;
      if (q > 0) sawQueued = true;
      assert.ok(q <= WRITE_BEHIND_BYTES + c.length, `queued ${q}`);
    }
    assert.ok(sawQueued, 'some write returned while its bytes were still queued');
    assert.equal(p.bytes, 50 * 64 * 1024);
    const rec = await p.finish();
    assert.equal(rec.bytes, 50 * 64 * 1024);
    await localStore.publish(rec);
    assert.deepEqual(readFileSync(target), Buffer.concat(chunks));
  });
});

/** A batch of one dictionary-coded string column and one numeric column, as RecordBatch needs. */
function batchOf(dict: string[], codes: Int32Array, nums: Float64Array): RecordBatch {
  const strCol: BatchColumn = {
    type: 'string',
    length: codes.length,
    typed: true,
    get: (i) => (codes[i] < 0 ? null : dict[codes[i]]),
    isNull: (i) => codes[i] < 0,
    float64: () => undefined,
    dictionary: () => ({ codes, values: dict }),
  };
  const numCol: BatchColumn = {
    type: 'int64',
    length: nums.length,
    typed: true,
    get: (i) => (Number.isNaN(nums[i]) ? null : nums[i]),
    isNull: (i) => Number.isNaN(nums[i]),
    float64: () => nums,
    dictionary: () => undefined,
  };
  return {
    length: codes.length,
    fields: ['s', 'n'],
    column: (name: string) => (name === 's' ? strCol : name === 'n' ? numCol : undefined),
  } as unknown as RecordBatch;
}

describe('sink column pieces stay typed', () => {
  it('a few rows of a large string dictionary get dictionary codes of their own, not values', () => {
    const dict = [...Array(10_000).keys()].map((k) => `v${k}`);
    const codes = new Int32Array(10_000).map((_, i) => i);
    codes[5] = -1;
    const b = batchOf(dict, codes, new Float64Array(10_000));
    const piece = capturePiece(b, Int32Array.from([9000, 5, 17, 9000]), ['s', 'n']);
    const c = piece.cols.get('s');
    assert.equal(c?.kind, 'dict');
    if (c?.kind !== 'dict') return;
    assert.deepEqual([...c.values], ['v9000', 'v17']);
    assert.deepEqual([...c.codes], [0, -1, 1, 0]);
    const view = bufferView([piece], new Map([['s', 'string']]));
    const col = view.column('s')!;
    assert.ok(col.typed);
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => col.get(i)),
      ['v9000', null, 'v17', 'v9000'],
    );
  });

  it('row objects next to pieces read as typed columns (dictionary codes, Float64Array)', () => {
    const b = batchOf(['x', 'y'], Int32Array.from([0, 1, -1]), Float64Array.from([1, Number.NaN, 3]));
    const piece = capturePiece(b, Int32Array.from([0, 1, 2]), ['s', 'n']);
    const segs: Segment[] = [[{ s: 'y', n: 7 }, { s: null, n: null }, { n: 2 ** 40 }], piece];
    const view = bufferView(
      segs,
      new Map([
        ['s', 'string'],
        ['n', 'int64'],
      ]),
    );
    const s = view.column('s')!;
    const n = view.column('n')!;
    assert.ok(s.typed && n.typed);
    const d = s.dictionary()!;
    assert.deepEqual(
      [...d.codes].map((c) => (c < 0 ? null : d.values[c])),
      ['y', null, null, 'x', 'y', null],
    );
    assert.deepEqual([...n.float64()!], [7, Number.NaN, 2 ** 40, 1, Number.NaN, 3]);
    // A value of another kind (an int64 beyond 2^53 as its decimal string) keeps the value path.
    const mixed = bufferView([[{ n: '9007199254740993' }], piece], new Map([['n', 'int64']])).column('n')!;
    assert.equal(mixed.typed, false);
    assert.equal(mixed.float64(), undefined);
  });
});

describe('Partitioner.timeBucketIds', () => {
  it('gives each row the bucket timeBucketOf gives (UTC and a zone with DST), numbered by first appearance', async () => {
    const { Partitioner, parsePartitionSpec } = await import('../../src/table/partition.js');
    const r = rng(3);
    for (const tz of ['UTC', 'America/New_York']) {
      const pt = new Partitioner(parsePartitionSpec('dt=%Y-%m-%d/hr=%H'), tz);
      const n = 5000;
      const ts = new Float64Array(n);
      let t = Date.UTC(2024, 2, 9);
      for (let i = 0; i < n; i++) {
        t += r() < 0.9 ? Math.floor(r() * 60_000) : -Math.floor(r() * 7_200_000);
        ts[i] = t;
      }
      const got = pt.timeBucketIds(ts, n)!;
      for (let i = 0; i < n; i++)
        assert.deepEqual(got.buckets[got.ids[i]], pt.timeBucketOf(ts[i]), `${tz} row ${i}`);
      const firsts = [...new Set(got.ids)];
      assert.deepEqual(
        firsts,
        [...firsts].sort((a, b) => a - b),
        'numbered by first appearance',
      );
    }
  });
});
