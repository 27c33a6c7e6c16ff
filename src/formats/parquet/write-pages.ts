/**
 * Parquet page encoding from typed arrays (issue 14, the sink's write path): the data pages
 * (DATA_PAGE_V2) and dictionary pages of the column chunks that `write-columns.ts` builds from a
 * batch's typed columns, written into preallocated byte buffers instead of hyparquet-writer's
 * `ByteWriter` one byte at a time (its `writeRleBitPackedHybrid` and `writePlain` were about
 * 0.5 CPU s of the 3M-row scenario-4 sink).
 *
 * Encodings, per the Parquet format specification (parquet-format `Encodings.md`):
 * - PLAIN: INT64 as 8 bytes little-endian two's complement, DOUBLE as IEEE 754 binary64
 *   little-endian, BYTE_ARRAY as a 4-byte little-endian length and the bytes (UTF-8 here).
 * - RLE / bit-packing hybrid (definition levels, and dictionary indexes after a one-byte bit
 *   width): a sequence of runs, each `varint(count << 1)` and the value in ceil(bitWidth / 8)
 *   little-endian bytes (RLE), or `varint(groups << 1 | 1)` and groups of 8 values packed LSB
 *   first (bit-packed).
 * - DATA_PAGE_V2: the levels are not compressed and carry no length prefix (their byte lengths are
 *   in the page header); the values are compressed with the chunk's codec.
 *
 * The run decisions are hyparquet-writer 0.17.0's (`src/encoding.js` `writeRleBitPackedHybrid`: at
 * each position a run of 8 or more equal values is written RLE, otherwise the next 8 values join
 * the pending bit-packed groups; the last group is padded with zeros), and the page header is
 * written by its `writePageHeader`, so a page is byte for byte the one `writeDataPageV2` writes for
 * the same values (test/unit/parquet-pages.test.ts compares them; test/unit/table-batch.test.ts
 * compares whole files with the row path's).
 */
import type { CompressionCodec } from 'hyparquet';
import type { writeColumn } from 'hyparquet-writer/src/column.js';
import { writePageHeader } from 'hyparquet-writer/src/datapage.js';

type ColumnEncoder = Parameters<typeof writeColumn>[0]['column'];
type Writer = Parameters<typeof writeColumn>[0]['writer'];

/** A byte buffer of a fixed capacity (computed by the caller as an upper bound). */
class Out {
  readonly buf: Uint8Array;
  readonly view: DataView;
  at = 0;
  constructor(capacity: number) {
    this.buf = new Uint8Array(capacity);
    this.view = new DataView(this.buf.buffer);
  }
  varint(v: number): void {
    while (v > 0x7f) {
      this.buf[this.at++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.at++] = v;
  }
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.at);
  }
}

/**
 * Upper bound of the bytes `rleHybrid` writes for `n` values of `bitWidth` bits: at most one run
 * header (≤ 5 bytes) and ceil(bitWidth / 8) value bytes, or `bitWidth` packed bytes, per 8 values,
 * plus one more header.
 */
function rleBound(n: number, bitWidth: number): number {
  return (Math.ceil(n / 8) + 2) * (bitWidth + 10) + 16;
}

/**
 * Writes `values[0..n)` (each < 2^bitWidth, bitWidth ≤ 24) in the RLE / bit-packing hybrid, with
 * hyparquet-writer's run decisions (see the module comment).
 * @returns bytes written
 */
function rleHybrid(out: Out, values: Int32Array | Uint8Array, n: number, bitWidth: number): number {
  const start = out.at;
  const width = (bitWidth + 7) >> 3;
  let pending = 0;
  let bpStart = 0;
  let i = 0;
  while (i < n) {
    const first = values[i];
    let run = 1;
    while (i + run < n && values[i + run] === first) run++;
    if (run >= 8) {
      if (pending) {
        bitPack(out, values, n, bpStart, pending, bitWidth);
        pending = 0;
      }
      out.varint(run << 1);
      for (let j = 0; j < width; j++) out.buf[out.at++] = (first >>> (j << 3)) & 0xff;
      i += run;
    } else {
      if (pending === 0) bpStart = i;
      pending++;
      i += 8;
    }
  }
  if (pending) bitPack(out, values, n, bpStart, pending, bitWidth);
  return out.at - start;
}

/** `groups` groups of 8 values from `start` bit-packed (values past `n` are 0), with their header. */
function bitPack(
  out: Out,
  values: Int32Array | Uint8Array,
  n: number,
  start: number,
  groups: number,
  bitWidth: number,
): void {
  out.varint((groups << 1) | 1);
  if (bitWidth === 0) return;
  const buf = out.buf;
  let at = out.at;
  const end = start + groups * 8;
  if (bitWidth === 1 && end <= n) {
    for (let i = start; i < end; i += 8)
      buf[at++] =
        (values[i] & 1) |
        ((values[i + 1] & 1) << 1) |
        ((values[i + 2] & 1) << 2) |
        ((values[i + 3] & 1) << 3) |
        ((values[i + 4] & 1) << 4) |
        ((values[i + 5] & 1) << 5) |
        ((values[i + 6] & 1) << 6) |
        ((values[i + 7] & 1) << 7);
    out.at = at;
    return;
  }
  const mask = bitWidth >= 32 ? -1 : (1 << bitWidth) - 1;
  let acc = 0;
  let bits = 0;
  for (let i = start; i < end; i++) {
    const v = i < n ? values[i] & mask : 0;
    acc |= v << bits;
    bits += bitWidth;
    while (bits >= 8) {
      buf[at++] = acc & 0xff;
      acc >>>= 8;
      bits -= 8;
    }
  }
  if (bits > 0) buf[at++] = acc & 0xff;
  out.at = at;
}

/** The chunk's codec applied to a page's bytes (none: the bytes themselves). */
function compress(column: ColumnEncoder, bytes: Uint8Array): Uint8Array {
  const c = (column.compressors as Partial<Record<CompressionCodec, (b: Uint8Array) => Uint8Array>>)[
    column.codec as CompressionCodec
  ];
  return c ? c(bytes) : bytes;
}

/**
 * The values of one data page: dictionary indexes (RLE_DICTIONARY), PLAIN INT64 / DOUBLE numbers,
 * or PLAIN byte arrays (`bytes[codes[i]]`). Entry i belongs to row i of the chunk and is read only
 * where `defs[i]` is 1.
 */
export type PageValues =
  | { encoding: 'RLE_DICTIONARY'; indexes: Int32Array }
  | { encoding: 'PLAIN'; type: 'INT64' | 'DOUBLE'; numbers: Float64Array }
  | { encoding: 'PLAIN'; type: 'BYTE_ARRAY'; codes: Int32Array; bytes: readonly Uint8Array[] };

/**
 * Writes rows [from, to) of a column chunk as one DATA_PAGE_V2 (definition levels `defs`: 1 value,
 * 0 null; max definition level 1, no repetition), as hyparquet-writer's `writeDataPageV2` does.
 * INT64 numbers must be integers within int64 (exact in a double, e.g. from a Float64Array of
 * whole numbers).
 * @returns the page's uncompressed size including its header (bytes)
 */
export function writeDataPage(
  writer: Writer,
  column: ColumnEncoder,
  defs: Uint8Array,
  from: number,
  to: number,
  v: PageValues,
): number {
  const n = to - from;
  const pageDefs = defs.subarray(from, to);
  let nonNull = 0;
  for (let i = 0; i < n; i++) nonNull += pageDefs[i];
  const levels = new Out(rleBound(n, 1));
  const levelBytes = rleHybrid(levels, pageDefs, n, 1);
  let page: Out;
  if (v.encoding === 'RLE_DICTIONARY') {
    // The non-null indexes, and the bit width of the largest (as writeDataPageV2 computes it).
    let idx: Int32Array;
    let max = 0;
    const src = v.indexes;
    if (nonNull === n) {
      // No nulls: the page's indexes as they are.
      idx = src.subarray(from, to);
      for (let i = 0; i < n; i++) if (idx[i] > max) max = idx[i];
    } else {
      idx = new Int32Array(nonNull);
      let k = 0;
      for (let i = from; i < to; i++)
        if (defs[i] !== 0) {
          const x = src[i];
          idx[k++] = x;
          if (x > max) max = x;
        }
    }
    const bitWidth = Math.ceil(Math.log2(max + 1));
    page = new Out(1 + rleBound(nonNull, bitWidth));
    page.buf[page.at++] = bitWidth;
    rleHybrid(page, idx, nonNull, bitWidth);
  } else if (v.type === 'BYTE_ARRAY') {
    const { codes, bytes } = v;
    let size = 0;
    for (let i = from; i < to; i++) if (defs[i] !== 0) size += 4 + bytes[codes[i]].length;
    page = new Out(size);
    const buf = page.buf;
    const dv = page.view;
    let at = 0;
    for (let i = from; i < to; i++)
      if (defs[i] !== 0) {
        const b = bytes[codes[i]];
        dv.setUint32(at, b.length, true);
        buf.set(b, at + 4);
        at += 4 + b.length;
      }
    page.at = at;
  } else {
    page = new Out(nonNull * 8);
    const dv = page.view;
    const src = v.numbers;
    let at = 0;
    if (v.type === 'DOUBLE') {
      for (let i = from; i < to; i++)
        if (defs[i] !== 0) {
          dv.setFloat64(at, src[i], true);
          at += 8;
        }
    } else {
      for (let i = from; i < to; i++)
        if (defs[i] !== 0) {
          // Two's complement in two 32-bit halves: exact for every integer a double holds.
          const x = src[i];
          const hi = Math.floor(x / 4294967296);
          dv.setUint32(at, x - hi * 4294967296, true);
          dv.setInt32(at + 4, hi, true);
          at += 8;
        }
    }
    page.at = at;
  }
  const pageBytes = page.bytes();
  const compressed = compress(column, pageBytes);
  const headerStart = writer.offset;
  writePageHeader(writer, {
    type: 'DATA_PAGE_V2',
    uncompressed_page_size: levelBytes + pageBytes.length,
    compressed_page_size: levelBytes + compressed.length,
    data_page_header_v2: {
      num_values: n,
      num_nulls: n - nonNull,
      num_rows: n,
      encoding: v.encoding,
      definition_levels_byte_length: levelBytes,
      repetition_levels_byte_length: 0,
      is_compressed: !!column.codec,
    },
  });
  const headerSize = writer.offset - headerStart;
  writer.appendBytes(levels.bytes());
  writer.appendBytes(compressed);
  return headerSize + levelBytes + pageBytes.length;
}

/**
 * Writes a dictionary page (PLAIN values) as hyparquet-writer's `writeDictionaryPage` does: UTF-8
 * strings (a UTF8 column's dictionary), or INT64 / DOUBLE numbers (integers for INT64).
 * @returns the page's uncompressed size including its header (bytes)
 */
export function writeDictionaryPage(
  writer: Writer,
  column: ColumnEncoder,
  dict: { strings: readonly string[] } | { type: 'INT64' | 'DOUBLE'; numbers: readonly number[] },
): number {
  let page: Out;
  let count: number;
  if ('strings' in dict) {
    const ss = dict.strings;
    count = ss.length;
    let size = 0;
    for (const s of ss) size += 4 + Buffer.byteLength(s, 'utf8');
    page = new Out(size);
    const b = Buffer.from(page.buf.buffer, page.buf.byteOffset, page.buf.byteLength);
    let at = 0;
    for (const s of ss) {
      const len = b.write(s, at + 4, 'utf8');
      page.view.setUint32(at, len, true);
      at += 4 + len;
    }
    page.at = at;
  } else {
    const xs = dict.numbers;
    count = xs.length;
    page = new Out(count * 8);
    for (let i = 0; i < count; i++) {
      const x = xs[i];
      if (dict.type === 'DOUBLE') page.view.setFloat64(i * 8, x, true);
      else {
        const hi = Math.floor(x / 4294967296);
        page.view.setUint32(i * 8, x - hi * 4294967296, true);
        page.view.setInt32(i * 8 + 4, hi, true);
      }
    }
    page.at = count * 8;
  }
  const bytes = page.bytes();
  const compressed = compress(column, bytes);
  const headerStart = writer.offset;
  writePageHeader(writer, {
    type: 'DICTIONARY_PAGE',
    uncompressed_page_size: bytes.byteLength,
    compressed_page_size: compressed.byteLength,
    dictionary_page_header: { num_values: count, encoding: 'PLAIN' },
  });
  const headerSize = writer.offset - headerStart;
  writer.appendBytes(compressed);
  return headerSize + bytes.byteLength;
}
