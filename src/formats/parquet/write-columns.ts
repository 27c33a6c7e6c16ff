/**
 * One row group written from columns (issue 14, the sinks' batch path): hyparquet-writer's
 * `ParquetWriter.write` row-group step, with the chunks of dictionary-coded string columns built
 * from their codes instead of one JS string per cell.
 *
 * hyparquet-writer 0.17.0 (`src/parquet-writer.js` `write`, `src/column.js` `writeColumn`,
 * `src/dictionary.js` `useDictionary`) decides per column chunk whether to dictionary-encode
 * (a 1000-value sample, then "dictionary plus bit-packed indexes at most half the PLAIN bytes"),
 * builds the dictionary in first-occurrence order, computes min/max/null count over every value,
 * and writes a dictionary page and data pages. For a string column whose batch gives dictionary
 * codes, `dictionaryChunk` makes the same decision and the same dictionary, indexes and
 * statistics from the codes (one typed-array pass; min/max over the distinct values only) and
 * writes the pages from typed arrays (`write-pages.ts`: definition levels as a Uint8Array, indexes
 * as an Int32Array, the same bytes as hyparquet-writer's page writers), so the bytes are those
 * `writeColumn` writes (checked against the row path in test/unit/table-batch.test.ts). INT64
 * (`int64Chunk`) and DOUBLE (`doubleChunk`) columns given as a Float64Array are written the same
 * way (the dictionary decided and built on the numbers, PLAIN pages from the numbers: no BigInt
 * per cell). Every other column (BOOLEAN, JSON, DATE, narrow
 * ints), and a string column the sample or the size rule keeps PLAIN, goes through `writeColumn`.
 */
import type { ColumnChunk, SchemaElement, Statistics } from 'hyparquet';
import type { ParquetWriter } from 'hyparquet-writer';
import { writeColumn } from 'hyparquet-writer/src/column.js';
import { writeDataPage, writeDictionaryPage } from './write-pages.js';

/** hyparquet-writer's default data page size (bytes, estimated), `ParquetWriter.write` pageSize. */
const PAGE_SIZE = 1048576;

/** One column of a row group: its values (null for null), or string dictionary codes (-1 null). */
export type GroupColumn =
  | { name: string; values: unknown[] }
  | {
      name: string;
      codes: Int32Array;
      dict: readonly string[];
      /**
       * The dictionary is distinct and in the order of each value's first row, every value used
       * (as `SegmentsColumn.dictionary()` builds it): it is the chunk's dictionary as it is.
       */
      firstUse?: boolean;
    }
  | { name: string; int64: Float64Array }
  | { name: string; double: Float64Array };

type ColumnEncoder = Parameters<typeof writeColumn>[0]['column'];
type Writer = Parameters<typeof writeColumn>[0]['writer'];
type ColumnResult = ReturnType<typeof writeColumn>;

/** The fields of ParquetWriter that its `write` uses (public in hyparquet-writer's types). */
type WriterState = Pick<
  ParquetWriter,
  'writer' | 'schema' | 'codec' | 'compressors' | 'statistics' | 'statisticsTruncateLength' | 'row_groups'
> & { num_rows: bigint; pendingIndexes: ColumnResult[] };

/**
 * Writes `n` rows as one row group of `pw` (the file's columns in schema order), as
 * `pw.write({columnData, rowGroupSize: n})` would for the same values.
 * @returns the writer's flush (awaited before the next row group)
 */
export function writeGroup(pw: ParquetWriter, columns: GroupColumn[], n: number): Promise<void> | undefined {
  const st = pw as unknown as WriterState;
  const writer = st.writer;
  const groupStartOffset = writer.offset;
  const chunks: ColumnChunk[] = [];
  const root = st.schema[0];
  columns.forEach((c, j) => {
    const element = st.schema[j + 1];
    const column: ColumnEncoder = {
      columnName: c.name,
      element,
      schemaPath: [root, element],
      codec: st.codec,
      compressors: st.compressors,
      stats: st.statistics,
      statisticsTruncateLength: st.statisticsTruncateLength,
      pageSize: PAGE_SIZE,
      dictionarySize: undefined,
      columnIndex: false,
      offsetIndex: true,
      encoding: undefined,
      bloomFilter: undefined,
    };
    let result: ColumnResult | undefined;
    let values: unknown[] | undefined;
    if ('values' in c && c.values) values = c.values;
    else if ('int64' in c) {
      result = int64Chunk(writer, column, c.int64, n);
      if (!result) {
        const f = c.int64;
        values = new Array<unknown>(n);
        for (let i = 0; i < n; i++) values[i] = Number.isNaN(f[i]) ? null : BigInt(Math.floor(f[i]));
      }
    } else if ('double' in c) {
      result = doubleChunk(writer, column, c.double, n);
      if (!result) {
        const f = c.double;
        values = new Array<unknown>(n);
        for (let i = 0; i < n; i++) values[i] = Number.isNaN(f[i]) ? null : f[i];
      }
    } else if ('codes' in c) {
      const codes = c.codes;
      result = dictionaryChunk(writer, column, codes, c.dict, n, c.firstUse === true);
      if (!result) {
        const d = c.dict;
        values = new Array<unknown>(n);
        for (let i = 0; i < n; i++) values[i] = codes[i] < 0 ? null : d[codes[i]];
      }
    }
    if (!result) {
      const vs = values as unknown[];
      const definitionLevels = new Array<number>(n);
      for (let i = 0; i < n; i++) definitionLevels[i] = vs[i] === null || vs[i] === undefined ? 0 : 1;
      result = writeColumn({
        writer,
        column,
        pageData: { values: vs as never[], definitionLevels, repetitionLevels: [], maxDefinitionLevel: 1 },
      });
    }
    chunks.push(result.chunk);
    st.pendingIndexes.push(result);
  });
  let total_byte_size = 0n;
  for (const { meta_data } of chunks) total_byte_size += meta_data?.total_uncompressed_size ?? 0n;
  st.num_rows += BigInt(n);
  st.row_groups.push({
    columns: chunks,
    total_byte_size,
    num_rows: BigInt(n),
    total_compressed_size: BigInt(writer.offset - groupStartOffset),
  });
  return writer.flush?.() as Promise<void> | undefined;
}

/** A UTF-16 surrogate (half of a pair, or lone): where code unit and code point order differ. */
const SURROGATE = /[\uD800-\uDFFF]/;

/** Strings in UTF-8 byte (code point) order, as hyparquet-writer's `compareStrings`. */
function compareStrings(left: string, right: string): number {
  if (left === right) return 0;
  const length = Math.min(left.length, right.length);
  let i = 0;
  while (i < length && left.charCodeAt(i) === right.charCodeAt(i)) i++;
  if (i > 0) {
    const prev = left.charCodeAt(i - 1);
    if (prev >= 0xd800 && prev <= 0xdbff) i--;
  }
  while (i < left.length && i < right.length) {
    const a = codePointAt(left, i);
    const b = codePointAt(right, i);
    if (a !== b) return a - b;
    i += a > 0xffff ? 2 : 1;
  }
  return left.length - right.length;
}

function codePointAt(s: string, i: number): number {
  const code = s.codePointAt(i) ?? 0xfffd;
  return code >= 0xd800 && code <= 0xdfff ? 0xfffd : code;
}

/**
 * The chunk of a UTF8 string column from dictionary codes: dictionary-encoded where
 * hyparquet-writer's rules would (see the module comment), else PLAIN pages of the strings'
 * UTF-8 bytes (encoded once per distinct value); undefined (nothing written) when the
 * dictionary repeats a value.
 */
function dictionaryChunk(
  writer: Writer,
  column: ColumnEncoder,
  codes: Int32Array,
  values: readonly string[],
  n: number,
  firstUse = false,
): ColumnResult | undefined {
  const element: SchemaElement = column.element;
  if (element.type !== 'BYTE_ARRAY' || element.converted_type !== 'UTF8' || n === 0) return undefined;
  if (!firstUse && new Set(values).size !== values.length) return undefined;
  // useDictionary's sample: up to 1000 values spread over the chunk, sizes = length + 4 (null 0).
  const sampleSize = Math.min(n, 1000);
  const sampled = new Set<number>();
  let sampleDict = 0;
  let sampleTotal = 0;
  for (let i = 0; i < sampleSize; i++) {
    const at = sampleSize === 1 ? 0 : Math.floor((i * (n - 1)) / (sampleSize - 1));
    const c = codes[at];
    const size = c < 0 ? 0 : values[c].length + 4;
    if (!sampled.has(c)) {
      sampled.add(c);
      sampleDict += size;
    }
    sampleTotal += size;
  }
  const sampleSaysDictionary = sampleTotal > 0 && sampleDict / sampleTotal <= 0.9;
  // The dictionary in first-occurrence order, the indexes, and the sizes of the size rule
  // (string lengths summed per distinct value: one typed-array pass over the rows).
  const uses = new Int32Array(values.length);
  const defs = new Uint8Array(n);
  let nonNull = 0;
  let dict: readonly string[];
  let indexes: Int32Array;
  if (firstUse) {
    // Already the chunk's dictionary: the codes are the indexes (read only where defs is 1).
    for (let i = 0; i < n; i++) {
      const c = codes[i];
      if (c < 0) continue;
      defs[i] = 1;
      nonNull++;
      uses[c]++;
    }
    dict = values;
    indexes = codes;
  } else {
    const remap = new Int32Array(values.length).fill(-1);
    const order: string[] = [];
    indexes = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const c = codes[i];
      if (c < 0) continue;
      defs[i] = 1;
      nonNull++;
      uses[c]++;
      let r = remap[c];
      if (r < 0) {
        r = order.length;
        remap[c] = r;
        order.push(values[c]);
      }
      indexes[i] = r;
    }
    dict = order;
  }
  let dictSize = 0;
  let totalSize = 0;
  for (let c = 0; c < values.length; c++)
    if (uses[c] > 0) {
      const len = values[c].length;
      dictSize += len;
      totalSize += len * uses[c];
    }
  const bitWidth = Math.ceil(Math.log2(dict.length));
  const indexSize = Math.ceil((nonNull * bitWidth) / 8);
  const dictionary =
    sampleSaysDictionary && 2 * (dictSize + dict.length * 4 + indexSize) <= totalSize + nonNull * 4;
  // Statistics as getStatistics gives them: min/max of the values (the distinct ones suffice).
  let min: string | undefined;
  let max: string | undefined;
  // Without surrogates, UTF-16 code unit order (JS `<`) is code point (UTF-8 byte) order.
  if (dict.some((s) => SURROGATE.test(s)))
    for (const s of dict) {
      if (min === undefined || compareStrings(s, min) < 0) min = s;
      if (max === undefined || compareStrings(s, max) > 0) max = s;
    }
  else
    for (const s of dict) {
      if (min === undefined || s < min) min = s;
      if (max === undefined || s > max) max = s;
    }
  const statistics = column.stats
    ? { min_value: min, max_value: max, null_count: BigInt(n - nonNull), nan_count: undefined }
    : undefined;
  if (dictionary)
    return emitChunk(writer, column, 'BYTE_ARRAY', n, defs, { page: { strings: dict }, indexes }, statistics);
  // PLAIN: each distinct value's UTF-8 bytes once (as TextEncoder gives them), written per row.
  const bytes: Uint8Array[] = new Array(values.length);
  for (let c = 0; c < values.length; c++) if (uses[c] > 0) bytes[c] = Buffer.from(values[c], 'utf8');
  return emitChunk(writer, column, 'BYTE_ARRAY', n, defs, { codes, bytes }, statistics);
}

/**
 * The chunk of an INT64 column (int64 without a narrow width, timestamp, timestamptz) from a
 * Float64Array (NaN: null; timestamps floored to whole ms), as `writeColumn` writes the BigInt
 * values `batchColumnValues` would give: the dictionary is decided and built on the numbers, the
 * pages written from the numbers (no BigInt per cell, see write-pages.ts).
 */
function int64Chunk(
  writer: Writer,
  column: ColumnEncoder,
  f: Float64Array,
  n: number,
): ColumnResult | undefined {
  if (column.element.type !== 'INT64' || n === 0) return undefined;
  const defs = new Uint8Array(n);
  let nonNull = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  let whole = true;
  for (let i = 0; i < n; i++) {
    const v = f[i];
    if (Number.isNaN(v)) continue; // null
    defs[i] = 1;
    nonNull++;
    if (v < min) min = v;
    if (v > max) max = v;
    if (whole && Math.floor(v) !== v) whole = false;
  }
  // The floored values: the column itself when every value is whole (no copy).
  let k = f;
  if (!whole) {
    k = new Float64Array(n);
    min = Number.POSITIVE_INFINITY;
    max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const v = Math.floor(f[i]);
      k[i] = v;
      if (Number.isNaN(v)) continue;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  // useDictionary's sample: 8 bytes per non-null value (a null adds 0 bytes, whatever its key).
  const sample = numberSample(k, n);
  const statistics = column.stats
    ? {
        min_value: nonNull ? BigInt(min) : undefined,
        max_value: nonNull ? BigInt(max) : undefined,
        null_count: BigInt(n - nonNull),
        nan_count: undefined,
      }
    : undefined;
  let dict: ChunkDictionary | undefined;
  const limit = maxDistinct(nonNull);
  if (sample.total && sample.distinct / sample.total <= 0.9 && sample.distinct <= limit) {
    // Integers: a direct table over [min, max] when that range is small, else the hash.
    const built =
      max - min <= Math.max(1 << 16, 2 * n)
        ? rangeDictionary(k, n, min, max, limit)
        : numberDictionary(k, n, limit);
    if (built) dict = { page: { type: 'INT64', numbers: built.values }, indexes: built.indexes };
  }
  return emitChunk(writer, column, 'INT64', n, defs, dict ?? k, statistics);
}

/**
 * The largest dictionary (distinct non-null values) of 8-byte numbers that passes
 * hyparquet-writer's size rule for `nonNull` values (`useDictionary`: the dictionary plus its
 * bit-packed indexes at most half the PLAIN bytes, `2 * (8 D + ceil(nonNull * ceil(log2 D) / 8))
 * <= 8 nonNull`). The left side grows with D, so a chunk with more distinct values than this
 * never gets a dictionary: the build stops there, and a sample that already holds more distinct
 * values than this (a lower bound of the chunk's) skips it. 0 when no dictionary passes.
 */
function maxDistinct(nonNull: number): number {
  const fits = (d: number): boolean =>
    2 * (d * 8 + Math.ceil((nonNull * Math.ceil(Math.log2(d))) / 8)) <= nonNull * 8;
  // Binary search over [1, nonNull / 2] (D > nonNull / 2 fails on the dictionary bytes alone).
  let lo = 0;
  let hi = Math.floor(nonNull / 2);
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Scratch tables of `numberSample` (sample ≤ 1000 values: 2048 slots keep the load ≤ 1/2). */
const SAMPLE_KEYS = new Float64Array(2048);
const SAMPLE_USED = new Uint8Array(2048);
const HASH_BITS = new Float64Array(1);
const HASH_HALVES = new Int32Array(HASH_BITS.buffer);

/** MurmurHash3's fmix32 over both 32-bit halves of a double (see `numberDictionary`). */
function hashNumber(v: number): number {
  HASH_BITS[0] = v;
  let h = HASH_HALVES[0] ^ HASH_HALVES[1];
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * `useDictionary`'s sample of a numeric chunk (NaN: null): up to 1000 values spread over the
 * chunk, each non-null one 8 bytes; `distinct` counts the distinct non-null values (keyed as a
 * `Map` keys numbers: 0 and -0 one key) and `total` the non-null values sampled, so the sample
 * rejects the dictionary when `8 distinct / (8 total) > 0.9` (a null adds 0 bytes to both sums).
 * An open-addressing hash over preallocated typed arrays: no boxed double per value.
 */
function numberSample(k: Float64Array, n: number): { distinct: number; total: number } {
  const sampleSize = Math.min(n, 1000);
  SAMPLE_USED.fill(0);
  const mask = SAMPLE_KEYS.length - 1;
  let distinct = 0;
  let total = 0;
  for (let i = 0; i < sampleSize; i++) {
    let v = k[sampleSize === 1 ? 0 : Math.floor((i * (n - 1)) / (sampleSize - 1))];
    if (Number.isNaN(v)) continue;
    if (v === 0) v = 0;
    total++;
    let h = hashNumber(v) & mask;
    while (SAMPLE_USED[h] !== 0 && SAMPLE_KEYS[h] !== v) h = (h + 1) & mask;
    if (SAMPLE_USED[h] === 0) {
      SAMPLE_USED[h] = 1;
      SAMPLE_KEYS[h] = v;
      distinct++;
    }
  }
  return { distinct, total };
}

/**
 * `numberDictionary` for integers within [min, max] (NaN: null), through a table indexed by
 * `v - min` instead of a hash (the caller keeps the range small: the table has max - min + 1
 * slots). The same values (in first-occurrence order) and indexes; undefined as soon as there
 * are more than `limit` distinct values.
 */
function rangeDictionary(
  k: Float64Array,
  n: number,
  min: number,
  max: number,
  limit: number,
): { values: number[]; indexes: Int32Array } | undefined {
  const values: number[] = [];
  const indexes = new Int32Array(n);
  const slot = new Int32Array(max - min + 1).fill(-1);
  for (let i = 0; i < n; i++) {
    const v = k[i];
    if (Number.isNaN(v)) continue;
    const at = v - min;
    let r = slot[at];
    if (r < 0) {
      r = values.length;
      if (r === limit) return undefined;
      values.push(v);
      slot[at] = r;
    }
    indexes[i] = r;
  }
  return { values, indexes };
}

/**
 * The dictionary of a numeric column in first-occurrence order and each non-null row's index
 * (0 for a null row, NaN in `k`), keyed as a JS `Map` keys numbers (SameValueZero: 0 and -0 are
 * one entry, which keeps the first one seen), through an open-addressing hash over typed arrays
 * (no Map, no boxed double per cell) with a last-value shortcut for runs; undefined as soon as
 * there are more than `limit` distinct values (the size rule's bound, `maxDistinct`).
 */
function numberDictionary(
  k: Float64Array,
  n: number,
  limit: number,
): { values: number[]; indexes: Int32Array } | undefined {
  const values: number[] = [];
  const indexes = new Int32Array(n);
  let cap = 1024;
  let keys = new Float64Array(cap);
  let slots = new Int32Array(cap).fill(-1);
  const bits = new Float64Array(1);
  const halves = new Int32Array(bits.buffer);
  const slotOf = (v: number, ks: Float64Array, ss: Int32Array, mask: number): number => {
    bits[0] = v;
    // MurmurHash3's fmix32 over both halves: integral doubles have all-zero low halves and
    // trailing zeros in the high half, so the low bits of a plain product would all collide.
    let h = halves[0] ^ halves[1];
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h = (h ^ (h >>> 16)) & mask;
    while (ss[h] >= 0 && ks[h] !== v) h = (h + 1) & mask;
    return h;
  };
  let last = Number.NaN;
  let lastIndex = -1;
  for (let i = 0; i < n; i++) {
    let v = k[i];
    if (v === last) {
      indexes[i] = lastIndex;
      continue;
    }
    if (Number.isNaN(v)) continue; // null
    if (v === 0) v = 0; // -0 and 0: one key
    const h = slotOf(v, keys, slots, cap - 1);
    let r = slots[h];
    if (r < 0) {
      r = values.length;
      if (r === limit) return undefined;
      values.push(k[i]);
      keys[h] = v;
      slots[h] = r;
      if (2 * values.length > cap) {
        const oldKeys = keys;
        const oldSlots = slots;
        cap *= 2;
        keys = new Float64Array(cap);
        slots = new Int32Array(cap).fill(-1);
        for (let j = 0; j < oldSlots.length; j++)
          if (oldSlots[j] >= 0) {
            const g = slotOf(oldKeys[j], keys, slots, cap - 1);
            keys[g] = oldKeys[j];
            slots[g] = oldSlots[j];
          }
      }
    }
    indexes[i] = r;
    last = v;
    lastIndex = r;
  }
  return { values, indexes };
}

/**
 * The chunk of a DOUBLE column (float64, decimal) from a Float64Array (NaN: null), as
 * `writeColumn` writes the numbers `batchColumnValues` would give: the same sample and size rules
 * for the dictionary (8 bytes a value), the dictionary in first-occurrence order (0 and -0 one
 * entry, as a Map keys them), statistics as `getStatistics` gives them for a float column
 * (`nan_count` 0, min 0 written as -0 and max -0 as 0), PLAIN pages of the numbers otherwise.
 */
function doubleChunk(
  writer: Writer,
  column: ColumnEncoder,
  f: Float64Array,
  n: number,
): ColumnResult | undefined {
  const element = column.element;
  if (element.type !== 'DOUBLE' || element.converted_type !== undefined || element.logical_type || n === 0)
    return undefined;
  const sample = numberSample(f, n);
  const defs = new Uint8Array(n);
  let nonNull = 0;
  let min: number | undefined;
  let max: number | undefined;
  for (let i = 0; i < n; i++) {
    const v = f[i];
    if (Number.isNaN(v)) continue; // null
    defs[i] = 1;
    nonNull++;
    if (min === undefined || v < min) min = v;
    if (max === undefined || v > max) max = v;
  }
  if (min === 0) min = -0;
  if (max === 0) max = 0;
  const statistics = column.stats
    ? { min_value: min, max_value: max, null_count: BigInt(n - nonNull), nan_count: 0n }
    : undefined;
  let dict: ChunkDictionary | undefined;
  const limit = maxDistinct(nonNull);
  if (sample.total && sample.distinct / sample.total <= 0.9 && sample.distinct <= limit) {
    const built = numberDictionary(f, n, limit);
    if (built) dict = { page: { type: 'DOUBLE', numbers: built.values }, indexes: built.indexes };
  }
  return emitChunk(writer, column, 'DOUBLE', n, defs, dict ?? f, statistics);
}

/** A chunk's dictionary: its page's values and each row's index (read where the row is not null). */
interface ChunkDictionary {
  page: Parameters<typeof writeDictionaryPage>[2];
  indexes: Int32Array;
}

/** A PLAIN string chunk: each row's code (read where the row is not null) and each code's UTF-8. */
interface PlainStrings {
  codes: Int32Array;
  bytes: Uint8Array[];
}

/**
 * Writes a column chunk as `writeColumn` does once it has its statistics and its dictionary
 * decision: the dictionary page and pages of indexes, or PLAIN pages of the numbers (`values` a
 * Float64Array, read where `defs` is 1) or of the strings; pages cut by `getPageBoundaries`'
 * estimate (4 bytes per index, 8 per INT64 / DOUBLE value, a string's UTF-8 length, nulls 0).
 */
function emitChunk(
  writer: Writer,
  column: ColumnEncoder,
  type: 'BYTE_ARRAY' | 'INT64' | 'DOUBLE',
  n: number,
  defs: Uint8Array,
  values: ChunkDictionary | Float64Array | PlainStrings,
  statistics: Statistics | undefined,
): ColumnResult {
  const offsetStart = writer.offset;
  let uncompressedSize = 0;
  let dictionary_page_offset: bigint | undefined;
  const encodings: ('PLAIN' | 'RLE_DICTIONARY')[] = ['PLAIN'];
  const dict = values instanceof Float64Array || 'codes' in values ? undefined : values;
  const strings = !(values instanceof Float64Array) && 'codes' in values ? values : undefined;
  if (dict) {
    dictionary_page_offset = BigInt(writer.offset);
    uncompressedSize += writeDictionaryPage(writer, column, dict.page);
    encodings.push('RLE_DICTIONARY');
  }
  const encoding: 'RLE_DICTIONARY' | 'PLAIN' = dict ? 'RLE_DICTIONARY' : 'PLAIN';
  const width = dict ? 4 : 8;
  const pages: { start: number; end: number }[] = [];
  let start = 0;
  let acc = 0;
  const pageSize = column.pageSize;
  const sb = strings?.bytes;
  const sc = strings?.codes;
  // Fixed-width values (indexes, numbers) whose chunk estimate stays below a page: one page.
  let estimate = Number.POSITIVE_INFINITY;
  if (!sb) {
    let nonNull = 0;
    for (let i = 0; i < n; i++) nonNull += defs[i];
    estimate = nonNull * width;
  }
  if (estimate < pageSize) pages.push({ start: 0, end: n });
  else {
    for (let i = 0; i < n; i++) {
      // getPageBoundaries' estimate: a string's UTF-8 byte length (its PLAIN length prefix not counted).
      const size = sb && sc && defs[i] !== 0 ? sb[sc[i]].length : defs[i] * width;
      acc += size;
      if (acc >= pageSize && i > start) {
        pages.push({ start, end: i });
        start = i;
        acc = size;
      }
    }
    if (start < n) pages.push({ start, end: n });
  }
  const data_page_offset = BigInt(writer.offset);
  const locations: { offset: bigint; compressed_page_size: number; first_row_index: bigint }[] = [];
  const pageValues: Parameters<typeof writeDataPage>[5] = dict
    ? { encoding: 'RLE_DICTIONARY', indexes: dict.indexes }
    : strings
      ? { encoding: 'PLAIN', type: 'BYTE_ARRAY', codes: strings.codes, bytes: strings.bytes }
      : { encoding: 'PLAIN', type: type as 'INT64' | 'DOUBLE', numbers: values as Float64Array };
  for (const p of pages) {
    const pageOffset = writer.offset;
    uncompressedSize += writeDataPage(writer, column, defs, p.start, p.end, pageValues);
    locations.push({
      offset: BigInt(pageOffset),
      compressed_page_size: writer.offset - pageOffset,
      first_row_index: BigInt(p.start),
    });
  }
  const encoding_stats = column.stats
    ? [
        ...(dict ? [{ page_type: 'DICTIONARY_PAGE' as const, encoding: 'PLAIN' as const, count: 1 }] : []),
        { page_type: 'DATA_PAGE_V2' as const, encoding, count: pages.length },
      ]
    : undefined;
  return {
    chunk: {
      meta_data: {
        type,
        encodings,
        path_in_schema: column.schemaPath.slice(1).map((s) => s.name),
        codec: column.codec ?? 'UNCOMPRESSED',
        num_values: BigInt(n),
        total_compressed_size: BigInt(writer.offset - offsetStart),
        total_uncompressed_size: BigInt(uncompressedSize),
        data_page_offset,
        dictionary_page_offset,
        statistics,
        encoding_stats,
        geospatial_statistics: undefined,
      },
      file_offset: BigInt(offsetStart),
    },
    columnIndex: undefined,
    offsetIndex: column.offsetIndex && pages.length > 1 ? { page_locations: locations } : undefined,
    bloomFilter: undefined,
  };
}
