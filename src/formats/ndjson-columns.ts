/**
 * NDJSON lines straight to value columns (issue 14): each line is `JSON.parse`d and its top-level
 * values are appended to one builder per field — numbers into a Float64Array, strings as
 * dictionary codes (one Map per field and batch), booleans and nested values (objects, arrays) as
 * JS values in an array — with no record object per row. The columns are what
 * `batchFromRecords` (stream/batch.ts) would give for the same rows: the same field order (first
 * seen), the same types (integers `int64`, other numbers `float64`, strings `string`, booleans
 * `boolean`, nested values `json`, a field that is only null `json`), the same `complete` flag.
 *
 * `ndjsonColumns` gives undefined — the caller then takes the row path for the whole batch, which
 * reports bad lines with their locations — when the lines cannot be represented exactly: a line
 * that is not a JSON object (or nested too deep), a field whose values change kind within the
 * batch (number, string, other), an integer beyond ±(2^53 − 1) at any depth (JSON.parse has
 * already rounded it; the row path keeps it as its decimal string, json-exact.ts), or an
 * over-long line.
 */
import {
  ArrayColumn,
  type Column,
  DictionaryColumn,
  Float64Column,
  type ValueColumns,
} from '../stream/batch.js';
import { type FieldType, jsonTooDeep } from '../stream/protocol.js';
import { hasUnsafeInteger } from './json-exact.js';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** What a field's builder holds so far. */
enum Kind {
  /** Only nulls so far. */
  Null = 0,
  Num = 1,
  Str = 2,
  /** Booleans and nested values (objects, arrays), kept as JS values. */
  Other = 3,
}

/** The values of one field, one slot per row (slots of rows without the field stay null). */
class FieldBuilder {
  kind = Kind.Null;
  /** Kind.Num: the values, NaN for null. */
  f64: Float64Array | undefined;
  /** Kind.Num: every value so far is an integer. */
  int = true;
  /** Kind.Str: dictionary codes (-1: null) into `strings`. */
  codes: Int32Array | undefined;
  dict: Map<string, number> | undefined;
  strings: string[] | undefined;
  /** Kind.Other: the values and their unified type ('boolean' or 'json'). */
  vals: unknown[] | undefined;
  otherType: FieldType | undefined;
}

/**
 * The value columns of NDJSON lines, or undefined when they cannot be represented exactly (see the
 * module comment; the caller takes the row path).
 * @param lines the lines, each one JSON object (no blank lines: those are not rows)
 * @returns columns whose `value(i)` re-parses line i (asked only for rows lacking a field)
 */
export function ndjsonColumns(lines: readonly string[]): ValueColumns | undefined {
  const n = lines.length;
  const order: string[] = [];
  const index = new Map<string, number>();
  const fields: FieldBuilder[] = [];
  let complete = true;
  for (let i = 0; i < n; i++) {
    const line = lines[i];
    if (jsonTooDeep(line)) return undefined;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch {
      return undefined;
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return undefined;
    const row = obj as Record<string, unknown>;
    let pos = 0;
    for (const f in row) {
      // Rows of one file mostly have the same keys in the same order: try the position first.
      let k = pos < order.length && order[pos] === f ? pos : index.get(f);
      if (k === undefined) {
        k = order.length;
        index.set(f, k);
        order.push(f);
        fields.push(new FieldBuilder());
        if (i > 0) complete = false;
      }
      pos++;
      const v = row[f];
      if (v === null) continue;
      const b = fields[k];
      switch (typeof v) {
        case 'number': {
          if (b.kind !== Kind.Num) {
            if (b.kind !== Kind.Null) return undefined;
            b.kind = Kind.Num;
            b.f64 = new Float64Array(n).fill(Number.NaN);
          }
          if (Number.isInteger(v)) {
            if (v > MAX_SAFE || v < -MAX_SAFE) return undefined;
          } else b.int = false;
          (b.f64 as Float64Array)[i] = v;
          break;
        }
        case 'string': {
          if (b.kind !== Kind.Str) {
            if (b.kind !== Kind.Null) return undefined;
            b.kind = Kind.Str;
            b.codes = new Int32Array(n).fill(-1);
            b.dict = new Map();
            b.strings = [];
          }
          const d = b.dict as Map<string, number>;
          let c = d.get(v);
          if (c === undefined) {
            const s = b.strings as string[];
            c = s.length;
            s.push(v);
            d.set(v, c);
          }
          (b.codes as Int32Array)[i] = c;
          break;
        }
        default: {
          if (b.kind !== Kind.Other) {
            if (b.kind !== Kind.Null) return undefined;
            b.kind = Kind.Other;
            b.vals = new Array(n).fill(null);
          }
          // A nested value with an integer JSON.parse may have rounded: the row path keeps it exact.
          if (typeof v === 'object' && hasUnsafeInteger(v)) return undefined;
          // typeOfValue + unify of batch.ts: boolean, or json for nested values and a mix.
          const t: FieldType = typeof v === 'boolean' ? 'boolean' : 'json';
          b.otherType = b.otherType === undefined || b.otherType === t ? t : 'json';
          (b.vals as unknown[])[i] = v;
        }
      }
    }
    if (pos !== order.length) complete = false;
  }
  const cols = new Map<string, Column>();
  for (let k = 0; k < order.length; k++) {
    const b = fields[k];
    let c: Column;
    if (b.kind === Kind.Num) c = new Float64Column(b.int ? 'int64' : 'float64', b.f64 as Float64Array);
    else if (b.kind === Kind.Str) c = new DictionaryColumn(b.codes as Int32Array, b.strings as string[]);
    else if (b.kind === Kind.Other) c = new ArrayColumn(b.otherType as FieldType, b.vals as unknown[]);
    else c = new ArrayColumn('json', new Array(n).fill(null));
    cols.set(order[k], c);
  }
  return {
    length: n,
    fields: order,
    complete,
    column: (name) => cols.get(name),
    value: (i) => JSON.parse(lines[i]) as Record<string, unknown>,
  };
}
