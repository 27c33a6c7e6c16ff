/**
 * Record batches: the unit of work between sources, operators and sinks (docs/architecture.md,
 * "Record batches"; issue 14).
 *
 * A batch holds `length` records column-wise: event time (`ts`, integer epoch ms in a
 * Float64Array: exact up to 2^53), the record key, and the value's top-level fields, one `Column`
 * each. Columnar code (aggregates, projections, encoders) reads typed arrays through the optional
 * fast accessors (`float64()`, `dictionary()`, undefined where they do not apply); code that needs a row (a user's JS expression, an
 * NDJSON edge) asks `value(i)`, which materialises one object. A field that a record lacks is null
 * in its column and absent from that record's `value(i)`.
 *
 * This module defines the contract and an array-backed implementation (`batchFromRecords`) used
 * for row sources, NDJSON input and tests. Arrow-backed implementations (Parquet decode, the
 * binary stream) implement the same interfaces over Arrow vectors without copying.
 */
import type { FieldType, Provenance, Rec, Schema } from './protocol.js';

/** One column of a batch. */
export interface Column {
  /** Stream type of the column (protocol.ts); `json` for nested or mixed values. */
  readonly type: FieldType;
  readonly length: number;
  /** Value i as the NDJSON stream carries it (number, string, boolean, object…), or null. */
  get(i: number): unknown;
  /** True when value i is null or missing. */
  isNull(i: number): boolean;
  /**
   * Numeric columns (int64 within ±2^53, float64, timestamp, timestamptz, decimal): the values as
   * one Float64Array (epoch ms for timestamps), NaN where null. Undefined for other types. Must not
   * be modified by the caller.
   */
  float64(): Float64Array | undefined;
  /**
   * String columns: dictionary codes (one per row, -1 for null) into `values`. Undefined for other
   * types. Codes are stable within one batch only.
   */
  dictionary(): { codes: Int32Array; values: readonly string[] } | undefined;
  /**
   * True when every non-null value is of `type` (no mixed values), so `float64()` and
   * `dictionary()` give the column exactly and encoders may skip per-value checks. Columns
   * decoded from typed storage (Parquet) set it; columns over arbitrary JS values leave it unset.
   */
  readonly typed?: boolean;
  /**
   * Optional, for int64, timestamp and timestamptz columns that hold Arrow's 64-bit integer buffer
   * (the Parquet reader): the values exactly, over the whole int64 range (epoch ms for
   * timestamps), so an Arrow encoder writes the buffer as it is instead of converting
   * `float64()` back to integers. Undefined where the column has no such buffer. Must not be
   * modified by the caller.
   */
  int64?(): Int64Buffer | undefined;
}

/**
 * A 64-bit integer column as Arrow lays it out: `values[i]` is row i (any value where null),
 * `validity` bit i (LSB first) is set when row i is not null; `validity` is undefined and `nulls`
 * 0 when no row is null. `values.length` may exceed the column's length (only the first
 * `length` rows count).
 */
export interface Int64Buffer {
  values: BigInt64Array;
  validity: Uint8Array | undefined;
  /** Number of null rows. */
  nulls: number;
}

/** A batch of records, column-wise. */
export interface RecordBatch {
  readonly length: number;
  /**
   * Event time of each record, integer epoch ms. Must not be modified by the caller: it may be
   * the `float64()` array of the column event time was read from.
   */
  readonly ts: Float64Array;
  /** Record keys (string or null per record, as in the stream). */
  readonly key: Column;
  /** Names of the value's top-level fields present in this batch, in the order the records have them (first seen). */
  readonly fields: readonly string[];
  /** The column of a value field, or undefined when no record of the batch has it. */
  column(name: string): Column | undefined;
  /** Record i's value as one object (fields whose value is missing are left out). */
  value(i: number): Record<string, unknown>;
  /** Record i's provenance, if the source recorded it. */
  prov?(i: number): Provenance | undefined;
  /** Record i's headers (Kafka), if any. */
  headers?(i: number): Record<string, string> | undefined;
  /**
   * Record i exactly as the stream carries it (also a value that is not an object, which
   * `value(i)` cannot give). Optional: `recordsOf` uses it when present (Arrow-backed batches).
   */
  rec?(i: number): Rec;
  /**
   * True when every record's value is an object holding every field of `fields` (a null cell is a
   * null value, never a missing field), as in a batch decoded from a Parquet row group.
   */
  readonly complete?: boolean;
}

/**
 * The value columns of a batch of rows before event time and key are assigned (what a columnar
 * file reader produces, `RowBatch.columns`): a `RecordBatch` without `ts` and `key`.
 */
export type ValueColumns = Pick<RecordBatch, 'length' | 'fields' | 'column' | 'value' | 'complete'>;

const NUMERIC: ReadonlySet<FieldType> = new Set(['int64', 'float64', 'timestamp', 'timestamptz', 'decimal']);

/**
 * A typed numeric column over a Float64Array (NaN: null), as the columnar readers (CSV, NDJSON)
 * build it; int64 columns hold integers within ±(2^53 − 1) only.
 */
export class Float64Column implements Column {
  readonly typed = true;
  constructor(
    readonly type: FieldType,
    private readonly f: Float64Array,
  ) {}
  get length(): number {
    return this.f.length;
  }
  get(i: number): unknown {
    const v = this.f[i];
    return Number.isNaN(v) ? null : v;
  }
  isNull(i: number): boolean {
    return Number.isNaN(this.f[i]);
  }
  float64(): Float64Array {
    return this.f;
  }
  dictionary(): undefined {
    return undefined;
  }
}

/** A typed string column over dictionary codes (one per row, -1: null) into the distinct values. */
export class DictionaryColumn implements Column {
  readonly type = 'string';
  readonly typed = true;
  constructor(
    private readonly codes: Int32Array,
    private readonly values: readonly string[],
  ) {}
  get length(): number {
    return this.codes.length;
  }
  get(i: number): unknown {
    const c = this.codes[i];
    return c < 0 ? null : this.values[c];
  }
  isNull(i: number): boolean {
    return this.codes[i] < 0;
  }
  float64(): undefined {
    return undefined;
  }
  dictionary(): { codes: Int32Array; values: readonly string[] } {
    return { codes: this.codes, values: this.values };
  }
}

/** A column over a plain JS array (missing values are `undefined` or `null`). */
export class ArrayColumn implements Column {
  private f64: Float64Array | undefined;
  private dict: { codes: Int32Array; values: string[] } | undefined;

  /**
   * @param type the stream type of the values
   * @param values one entry per row; `undefined` or `null` is null
   */
  constructor(
    readonly type: FieldType,
    private readonly values: readonly unknown[],
  ) {}

  get length(): number {
    return this.values.length;
  }

  get(i: number): unknown {
    return this.values[i] ?? null;
  }

  isNull(i: number): boolean {
    return this.values[i] == null;
  }

  float64(): Float64Array | undefined {
    if (!NUMERIC.has(this.type)) return undefined;
    if (!this.f64) {
      const a = new Float64Array(this.values.length);
      for (let i = 0; i < a.length; i++) {
        const v = this.values[i];
        a[i] = typeof v === 'number' ? v : v == null ? Number.NaN : Number(v);
      }
      this.f64 = a;
    }
    return this.f64;
  }

  dictionary(): { codes: Int32Array; values: readonly string[] } | undefined {
    if (this.type !== 'string') return undefined;
    if (!this.dict) {
      const codes = new Int32Array(this.values.length);
      const index = new Map<string, number>();
      const values: string[] = [];
      for (let i = 0; i < codes.length; i++) {
        const v = this.values[i];
        if (v == null) {
          codes[i] = -1;
          continue;
        }
        const s = String(v);
        let c = index.get(s);
        if (c === undefined) {
          c = values.length;
          index.set(s, c);
          values.push(s);
        }
        codes[i] = c;
      }
      this.dict = { codes, values };
    }
    return this.dict;
  }
}

/** The stream type of one JS value, as a header schema would declare it. */
export function typeOfValue(v: unknown): FieldType | undefined {
  if (v == null) return undefined;
  switch (typeof v) {
    case 'string':
      return 'string';
    case 'number':
      return Number.isInteger(v) ? 'int64' : 'float64';
    case 'boolean':
      return 'boolean';
    default:
      return 'json';
  }
}

/** Widens `a` to hold `b` too: int64+float64 -> float64, anything else mixed -> json. */
export function unify(a: FieldType | undefined, b: FieldType | undefined): FieldType | undefined {
  if (a === undefined) return b;
  if (b === undefined || a === b) return a;
  if ((a === 'int64' && b === 'float64') || (a === 'float64' && b === 'int64')) return 'float64';
  return 'json';
}

/**
 * Builds an array-backed batch from records (row sources, NDJSON input, tests).
 *
 * Field types come from `schema` where it declares the field, else from the values (integers
 * `int64`, other numbers `float64`, mixed `json`). Values are not copied: `value(i)` returns the
 * record's own value object when it is a plain object.
 * @param recs records whose `value` is a JSON object (other values are kept as `value(i)` = {})
 */
export function batchFromRecords(recs: readonly Rec[], schema?: Schema): RecordBatch {
  const n = recs.length;
  const ts = new Float64Array(n);
  const keys: (string | null)[] = new Array(n);
  // One pass over the records: each field's values go straight into its own array (hot path of
  // every row source writing the binary stream; no Object.entries, no second scan per column).
  const order: string[] = [];
  const index = new Map<string, number>();
  const values: unknown[][] = [];
  const inferred: (FieldType | undefined)[] = [];
  for (let i = 0; i < n; i++) {
    const r = recs[i];
    ts[i] = r.ts;
    keys[i] = r.key ?? null;
    const v = r.value;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) continue;
    const obj = v as Record<string, unknown>;
    for (const f in obj) {
      let k = index.get(f);
      if (k === undefined) {
        k = order.length;
        index.set(f, k);
        order.push(f);
        values.push(new Array(n));
        inferred.push(undefined);
      }
      const x = obj[f];
      values[k][i] = x;
      if (x != null) {
        const t = inferred[k];
        if (t !== 'json') inferred[k] = unify(t, typeOfValue(x));
      }
    }
  }
  // The records' own field order (first seen), not the schema's: a value read back from a batch
  // has its fields in the order the operator built them, as the NDJSON encoding keeps them, so
  // the two encodings (and `kappa run`) give the same bytes downstream.
  const fields = order;
  const columns = new Map<string, Column>();
  const column = (name: string): Column | undefined => {
    const k = index.get(name);
    if (k === undefined) return undefined;
    let c = columns.get(name);
    if (!c) {
      c = new ArrayColumn(schema?.[name] ?? inferred[k] ?? 'json', values[k]);
      columns.set(name, c);
    }
    return c;
  };
  const hasProv = recs.some((r) => r.prov !== undefined);
  const hasHeaders = recs.some((r) => r.headers !== undefined);
  return {
    length: n,
    ts,
    key: new ArrayColumn('string', keys),
    fields,
    column,
    value(i: number): Record<string, unknown> {
      const v = recs[i].value;
      return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
    },
    prov: hasProv ? (i) => recs[i].prov : undefined,
    headers: hasHeaders ? (i) => recs[i].headers : undefined,
  };
}

/**
 * The records of a batch as row objects (the NDJSON edge, row-at-a-time operators).
 * @returns one `Rec` per row, with `prov`/`headers` only where the batch has them
 */
export function recordsOf(b: RecordBatch): Rec[] {
  const out: Rec[] = new Array(b.length);
  if (b.rec) {
    for (let i = 0; i < b.length; i++) out[i] = b.rec(i);
    return out;
  }
  for (let i = 0; i < b.length; i++) {
    const r: Rec = { ts: b.ts[i], key: (b.key.get(i) as string | null) ?? null, value: b.value(i) };
    const p = b.prov?.(i);
    if (p !== undefined) r.prov = p;
    const h = b.headers?.(i);
    if (h !== undefined) r.headers = h;
    out[i] = r;
  }
  return out;
}

/** A column of `n` nulls (a field a batch lacks, asked for by name). */
export function nullColumn(type: FieldType, n: number): Column {
  return {
    type,
    length: n,
    typed: true,
    get: () => null,
    isNull: () => true,
    float64: () => (NUMERIC.has(type) ? new Float64Array(n).fill(Number.NaN) : undefined),
    dictionary: () => (type === 'string' ? { codes: new Int32Array(n).fill(-1), values: [] } : undefined),
  };
}

/** Rows `idx` of a column, in that order (a view; typed arrays are gathered once on demand). */
class TakeColumn implements Column {
  private f64: Float64Array | null | undefined;
  private dict: { codes: Int32Array; values: readonly string[] } | null | undefined;
  constructor(
    private readonly col: Column,
    private readonly idx: Int32Array,
  ) {}
  get type(): FieldType {
    return this.col.type;
  }
  get typed(): boolean | undefined {
    return this.col.typed;
  }
  get length(): number {
    return this.idx.length;
  }
  get(i: number): unknown {
    return this.col.get(this.idx[i]);
  }
  isNull(i: number): boolean {
    return this.col.isNull(this.idx[i]);
  }
  float64(): Float64Array | undefined {
    if (this.f64 === undefined) {
      const f = this.col.float64();
      this.f64 = f ? Float64Array.from(this.idx, (j) => f[j]) : null;
    }
    return this.f64 ?? undefined;
  }
  dictionary(): { codes: Int32Array; values: readonly string[] } | undefined {
    if (this.dict === undefined) {
      const d = this.col.dictionary();
      this.dict = d ? { codes: Int32Array.from(this.idx, (j) => d.codes[j]), values: d.values } : null;
    }
    return this.dict ?? undefined;
  }
}

/**
 * Rows `idx` (ascending or not) of a batch, as a batch: a view over the same columns (filters,
 * bad rows left out).
 */
export function takeRows(b: RecordBatch, idx: Int32Array): RecordBatch {
  const cols = new Map<string, Column>();
  return {
    length: idx.length,
    ts: Float64Array.from(idx, (j) => b.ts[j]),
    key: new TakeColumn(b.key, idx),
    fields: b.fields,
    complete: b.complete,
    column(name) {
      let c = cols.get(name);
      if (!c) {
        const src = b.column(name);
        if (!src) return undefined;
        c = new TakeColumn(src, idx);
        cols.set(name, c);
      }
      return c;
    },
    value: (i) => b.value(idx[i]),
    prov: b.prov ? (i) => b.prov?.(idx[i]) : undefined,
    headers: b.headers ? (i) => b.headers?.(idx[i]) : undefined,
    rec: b.rec ? (i) => (b.rec as (j: number) => Rec)(idx[i]) : undefined,
  };
}
