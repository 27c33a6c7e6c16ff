/**
 * The batch path of the file sinks (issue 14): what decides whether a record batch can be written
 * from its columns, and the row buffers that hold batch slices next to row objects until a row
 * group is written.
 *
 * A batch goes the columnar way only when the row path would accept every one of its records
 * unchanged and change nothing in the schema (`batchFits`): then both paths give the same files.
 * Anything else (a value that is not an object, a missing field, a new column, a widening, a value
 * that does not fit its column) sends the whole batch down the row path, which handles it record by
 * record (bad records and their lines, schema growth) exactly as before.
 *
 * Buffers (`RowBuffer`) keep the order of what they were given: rows (objects) and column pieces
 * (`ColumnPiece`, a batch's rows gathered for the schema's columns: typed arrays where the batch
 * has them, else the values). A buffer of rows only is written as rows (`writeRows`); any other is
 * written as one columnar view (`bufferView`, for `ParquetPartWriter.writeColumns`), whose values
 * are the same as the rows would give, so the row group is byte for byte the same.
 */
import type { Column as BatchColumn, RecordBatch } from '../../stream/batch.js';
import type { FieldType } from '../../stream/protocol.js';
import { misfit, type TableSchema } from '../schema.js';

const NUMERIC: ReadonlySet<FieldType> = new Set(['int64', 'float64', 'timestamp', 'timestamptz', 'decimal']);

/** True when every value of `col` (n rows) is null. */
function allNull(col: BatchColumn, n: number): boolean {
  const f = col.typed ? col.float64() : undefined;
  if (f) {
    for (let i = 0; i < n; i++) if (!Number.isNaN(f[i])) return false;
    return true;
  }
  const d = col.typed ? col.dictionary() : undefined;
  if (d) {
    for (let i = 0; i < n; i++) if (d.codes[i] >= 0) return false;
    return true;
  }
  for (let i = 0; i < n; i++) if (!col.isNull(i)) return false;
  return true;
}

/**
 * True when a batch can be written from its columns: it is `complete` (every value an object
 * holding every field), and every value fits the schema's column as it is (TableSchema.check
 * would accept every record with no change: no new column, no widening, integers within a narrow
 * column's range, no null in a required column). Reads typed arrays where the batch has them.
 */
export function batchFits(schema: TableSchema, b: RecordBatch): boolean {
  if (b.complete !== true) return false;
  const n = b.length;
  for (const c of schema.columns)
    if (c.required) {
      const col = b.column(c.name);
      if (!col) return false;
      for (let i = 0; i < n; i++) if (col.isNull(i)) return false;
    }
  for (const name of b.fields) {
    const col = b.column(name);
    if (!col) continue;
    const c = schema.get(name);
    if (!c || c.unwritable !== undefined) {
      // A field the row path would add as a column (or refuse): only all-null columns are nothing.
      if (!allNull(col, n)) return false;
      continue;
    }
    if (!columnFits(c.type, c.intBits, col, n)) return false;
  }
  return true;
}

/** True when every non-null value of `col` fits a column of `type` (see schema.ts `misfit`). */
function columnFits(type: FieldType, intBits: number | undefined, col: BatchColumn, n: number): boolean {
  const f = col.typed && NUMERIC.has(col.type) ? col.float64() : undefined;
  if (f && NUMERIC.has(type)) {
    if (type !== 'int64') return true; // every number fits float64, decimal and the timestamps
    const max = intBits === undefined ? 0 : 2 ** (intBits - 1);
    for (let i = 0; i < n; i++) {
      const v = f[i];
      if (Number.isNaN(v)) continue;
      if (!Number.isInteger(v) || v >= 2 ** 63 || v < -(2 ** 63)) return false; // a widening: the row path decides
      if (intBits !== undefined && (v < -max || v >= max)) return false;
    }
    return true;
  }
  if (type === 'string' && col.typed && col.type === 'string' && col.dictionary()) return true;
  if (type === 'json') return true;
  for (let i = 0; i < n; i++) {
    const v = col.get(i);
    if (v === null || v === undefined) continue;
    if (misfit(type, v) !== undefined) return false;
    if (intBits !== undefined) {
      const max = 2 ** (intBits - 1);
      if ((v as number) < -max || (v as number) >= max) return false;
    }
  }
  return true;
}

/** One column of a piece: a typed gather of the batch's column, or its values. */
type PieceColumn =
  | { kind: 'f64'; a: Float64Array }
  | { kind: 'dict'; codes: Int32Array; values: readonly string[] }
  | { kind: 'values'; v: unknown[] };

/** Rows of a batch gathered for the columns of a schema (a buffered slice of one partition). */
export interface ColumnPiece {
  readonly length: number;
  /** Column name -> its values; a column the piece lacks is null in every row. */
  readonly cols: Map<string, PieceColumn>;
}

/** Code -> local code tables reused by capturePiece; a slot is valid when its stamp is the epoch. */
let scratch = { stamp: new Uint32Array(0), local: new Int32Array(0), epoch: 0 };

/** The scratch tables for a dictionary of `size` codes, with a fresh epoch (no slot valid). */
function scratchFor(size: number): { stamp: Uint32Array; local: Int32Array; epoch: number } {
  if (scratch.stamp.length < size || scratch.epoch >= 0xfffffffe) {
    const cap = Math.max(size, 2 * scratch.stamp.length);
    scratch = { stamp: new Uint32Array(cap), local: new Int32Array(cap), epoch: 0 };
  }
  scratch.epoch++;
  return scratch;
}

/**
 * Gathers rows `idx` of `b` for the columns `names` (the schema's columns; a field the schema
 * does not have is all null, see batchFits). Typed columns are copied into typed arrays (string
 * columns as dictionary codes), others value by value, so the piece keeps no reference to the
 * batch but a string dictionary, and only when the piece uses a fair share of it (else the piece
 * gets a dictionary of the strings it uses).
 * @param nulls fields to write as null (a partition field whose value was '': null, as the row
 *   path sets it, see partition.ts)
 */
export function capturePiece(
  b: RecordBatch,
  idx: Int32Array,
  names: readonly string[],
  nulls?: ReadonlySet<string>,
): ColumnPiece {
  const n = idx.length;
  const cols = new Map<string, PieceColumn>();
  // Rows of a partition usually are one run of the batch: then typed columns are copied as ranges.
  const from = n > 0 && idx[n - 1] - idx[0] === n - 1 ? idx[0] : -1;
  for (const name of names) {
    if (nulls?.has(name)) continue;
    const col = b.column(name);
    if (!col) continue;
    const f = col.typed && NUMERIC.has(col.type) ? col.float64() : undefined;
    if (f) {
      let a: Float64Array;
      if (from >= 0) a = f.slice(from, from + n);
      else {
        a = new Float64Array(n);
        for (let i = 0; i < n; i++) a[i] = f[idx[i]];
      }
      cols.set(name, { kind: 'f64', a });
      continue;
    }
    const d = col.typed && col.type === 'string' ? col.dictionary() : undefined;
    if (d) {
      const src = d.codes;
      if (d.values.length <= 4 * n + 64) {
        let codes: Int32Array;
        if (from >= 0) codes = src.slice(from, from + n);
        else {
          codes = new Int32Array(n);
          for (let i = 0; i < n; i++) codes[i] = src[idx[i]];
        }
        cols.set(name, { kind: 'dict', codes, values: d.values });
      } else {
        const codes = new Int32Array(n);
        // A few rows of a large dictionary: a dictionary of their own (first-occurrence order).
        const { stamp, local, epoch } = scratchFor(d.values.length);
        const values: string[] = [];
        for (let i = 0; i < n; i++) {
          const c = src[idx[i]];
          if (c < 0) {
            codes[i] = -1;
            continue;
          }
          let r: number;
          if (stamp[c] === epoch) r = local[c];
          else {
            r = values.length;
            values.push(d.values[c]);
            stamp[c] = epoch;
            local[c] = r;
          }
          codes[i] = r;
        }
        cols.set(name, { kind: 'dict', codes, values });
      }
      continue;
    }
    const v = new Array<unknown>(n);
    for (let i = 0; i < n; i++) v[i] = col.get(idx[i]);
    cols.set(name, { kind: 'values', v });
  }
  return { length: n, cols };
}

/** A buffered segment: row objects, or a column piece. */
export type Segment = Record<string, unknown>[] | ColumnPiece;

/**
 * The rows waiting for the next row group of one file, in arrival order: row objects (the row
 * path) and column pieces (the batch path).
 */
export class RowBuffer {
  /** Rows buffered. */
  length = 0;
  private segs: Segment[] = [];

  /** Appends one row object. */
  pushRow(v: Record<string, unknown>): void {
    const last = this.segs[this.segs.length - 1];
    if (Array.isArray(last)) last.push(v);
    else this.segs.push([v]);
    this.length++;
  }

  /** Appends a column piece. */
  pushPiece(p: ColumnPiece): void {
    if (p.length === 0) return;
    this.segs.push(p);
    this.length += p.length;
  }

  /** Empties the buffer and returns what it held. */
  drain(): Segment[] {
    const s = this.segs;
    this.segs = [];
    this.length = 0;
    return s;
  }
}

/** The rows of segments that are all row objects, or undefined when a piece is among them. */
export function rowsOnly(segs: readonly Segment[]): Record<string, unknown>[] | undefined {
  if (segs.length === 1 && Array.isArray(segs[0])) return segs[0];
  if (!segs.every((s) => Array.isArray(s))) return undefined;
  return (segs as Record<string, unknown>[][]).flat();
}

/** Row i of every segment as an object (text formats: their writers take rows). */
export function segmentRows(segs: readonly Segment[], names: readonly string[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const s of segs) {
    if (Array.isArray(s)) {
      for (const r of s) out.push(r);
      continue;
    }
    for (let i = 0; i < s.length; i++) {
      const r: Record<string, unknown> = {};
      for (const name of names) {
        const c = s.cols.get(name);
        if (c) r[name] = pieceValue(c, i);
      }
      out.push(r);
    }
  }
  return out;
}

function pieceValue(c: PieceColumn, i: number): unknown {
  switch (c.kind) {
    case 'f64':
      return Number.isNaN(c.a[i]) ? null : c.a[i];
    case 'dict':
      return c.codes[i] < 0 ? null : c.values[c.codes[i]];
    case 'values':
      return c.v[i] ?? null;
  }
}

/** One column over the pieces and row arrays of a buffer (what `writeColumns` reads). */
class SegmentsColumn implements BatchColumn {
  readonly length: number;
  private readonly parts: (PieceColumn | Record<string, unknown>[] | null)[];
  private readonly starts: number[];
  private cur = 0;

  constructor(
    readonly type: FieldType,
    private readonly name: string,
    segs: readonly Segment[],
  ) {
    let n = 0;
    this.parts = [];
    this.starts = [];
    for (const s of segs) {
      this.starts.push(n);
      this.parts.push(Array.isArray(s) ? s : (s.cols.get(name) ?? null));
      n += s.length;
    }
    this.length = n;
  }

  /**
   * True when every part is a typed gather, absent (null), or rows whose values in this column are
   * all null or all of the column's kind (numbers for a numeric column, strings for a string
   * column), so float64()/dictionary() are exact.
   */
  get typed(): boolean {
    return this.parts.every(
      (p) => p === null || (Array.isArray(p) ? this.rowsTyped(p) : p.kind !== 'values'),
    );
  }

  /** True when the rows' values in this column are null or numbers (strings for a string column). */
  private rowsTyped(rows: Record<string, unknown>[]): boolean {
    const want = this.type === 'string' ? 'string' : NUMERIC.has(this.type) ? 'number' : undefined;
    if (want === undefined) return false;
    for (const r of rows) {
      const v = r[this.name];
      if (v !== null && v !== undefined && typeof v !== want) return false;
    }
    return true;
  }

  get(i: number): unknown {
    // Sequential access (the writer reads rows in order): remember the part of the last row.
    let k = this.cur;
    if (i < this.starts[k]) k = 0;
    while (k + 1 < this.starts.length && i >= this.starts[k + 1]) k++;
    this.cur = k;
    const p = this.parts[k];
    const j = i - this.starts[k];
    if (p === null) return null;
    if (Array.isArray(p)) return p[j][this.name] ?? null;
    return pieceValue(p, j);
  }

  isNull(i: number): boolean {
    return this.get(i) === null;
  }

  float64(): Float64Array | undefined {
    if (!NUMERIC.has(this.type)) return undefined;
    if (!this.parts.every((p) => p === null || (Array.isArray(p) ? this.rowsTyped(p) : p.kind === 'f64')))
      return undefined;
    // One gathered piece holding every row: its array as it is (the piece is the buffer's own).
    const only = this.parts.length === 1 ? this.parts[0] : null;
    if (only !== null && !Array.isArray(only) && only.kind === 'f64') return only.a;
    const out = new Float64Array(this.length).fill(Number.NaN);
    this.parts.forEach((p, k) => {
      if (p === null) return;
      if (!Array.isArray(p)) {
        if (p.kind === 'f64') out.set(p.a, this.starts[k]);
        return;
      }
      const base = this.starts[k];
      for (let i = 0; i < p.length; i++) {
        const v = p[i][this.name];
        if (typeof v === 'number') out[base + i] = v;
      }
    });
    return out;
  }

  /**
   * One dictionary for the buffer: values in the order of their first row, each once, every one
   * used (`firstUse: true` tells the Parquet writer so, see write-columns.ts).
   */
  dictionary(): { codes: Int32Array; values: readonly string[]; firstUse: true } | undefined {
    if (this.type !== 'string') return undefined;
    if (!this.parts.every((p) => p === null || (Array.isArray(p) ? this.rowsTyped(p) : p.kind === 'dict')))
      return undefined;
    const codes = new Int32Array(this.length).fill(-1);
    const values: string[] = [];
    const index = new Map<string, number>();
    this.parts.forEach((p, k) => {
      if (p === null) return;
      if (Array.isArray(p)) {
        const base = this.starts[k];
        for (let i = 0; i < p.length; i++) {
          const s = p[i][this.name];
          if (typeof s !== 'string') continue;
          let g = index.get(s);
          if (g === undefined) {
            g = values.length;
            values.push(s);
            index.set(s, g);
          }
          codes[base + i] = g;
        }
        return;
      }
      if (p.kind !== 'dict') return;
      // Re-code each piece's dictionary into one shared by the buffer.
      const pv = p.values;
      const pc = p.codes;
      const remap = new Int32Array(pv.length).fill(-2);
      const base = this.starts[k];
      for (let i = 0; i < pc.length; i++) {
        const c = pc[i];
        if (c < 0) continue;
        let r = remap[c];
        if (r === -2) {
          const s = pv[c];
          let g = index.get(s);
          if (g === undefined) {
            g = values.length;
            values.push(s);
            index.set(s, g);
          }
          remap[c] = r = g;
        }
        codes[base + i] = r;
      }
    });
    return { codes, values, firstUse: true };
  }
}

/**
 * The buffered segments as a columnar view (`length` and `column(name)`) for the columns `types`
 * of the file being written: what `ParquetPartWriter.writeColumns` takes.
 */
export function bufferView(
  segs: readonly Segment[],
  types: ReadonlyMap<string, FieldType>,
): { length: number; column(name: string): BatchColumn | undefined } {
  const length = segs.reduce((n, s) => n + s.length, 0);
  return {
    length,
    column(name) {
      const t = types.get(name);
      return t === undefined ? undefined : new SegmentsColumn(t, name, segs);
    },
  };
}
