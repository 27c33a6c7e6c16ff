/**
 * The schema of a table being written: declared types from the stream header, inferred types for
 * the rest, widening when a new field appears, and type checks that turn conflicts into bad records.
 *
 * Rules (documented in kappa-sink(1)):
 * - A field declared in the header keeps its type; a value that does not fit it is a conflict.
 * - An undeclared field gets its type from the first non-null value: integer number within int64
 *   -> int64, other number -> float64, string -> string, boolean -> boolean, object or array -> json.
 * - An int64 column also takes an int64 beyond ±(2^53 − 1) in its stream form, the exact decimal
 *   string (kappa-stream(5); `isBigInt64Text`), written as that INT64; no other string.
 * - The only widening is int64 -> float64, and only for inferred fields (JSON does not tell `1` from
 *   `1.0`) while no Parquet data file of the run holds the column yet (rows still buffered); a
 *   declared int64 receiving 1.5 is a conflict, and so is an int64 column that a Parquet file of
 *   this run already stores as INT64 (`written`): one table column has one physical type, and Delta
 *   readers (Delta Kernel) fail on INT64 data under a `double` column. Anything else (a string in an
 *   int64 column, a number in a string column, …) is a conflict: never coerced silently.
 * - A new field adds a nullable column; rows without it hold null.
 * - Appending to an existing table (its columns `committed`): a new field is a conflict unless the
 *   run allows schema merging (`--merge-schema`, Delta's `mergeSchema`); a committed int64 (Delta
 *   `long`) column is never widened to float64, because Delta's typeWidening table feature does not
 *   cover long -> double (PROTOCOL.md, "Type Widening": only byte/short/int -> double).
 * - A committed column keeps the table's Delta type exactly (`delta`, the field as the table's
 *   schemaString has it), also in tables written by other engines: a `byte`/`short`/`integer`
 *   column takes integers of its range only (written as Parquet INT32, `intBits`); a type kappa does
 *   not write (`float`, `decimal(p,s)`, struct, array, map: `unwritable`) takes only null; a
 *   non-nullable column (`required`) takes no null.
 */
import type { FieldType, Schema } from '../stream/protocol.js';

export interface Column {
  name: string;
  type: FieldType;
  /** True when the type came from the stream header (never widened). */
  declared: boolean;
  /** True when the column is in a committed table version (its type is fixed). */
  committed?: boolean;
  /**
   * True when a Parquet data file of this run was started with the column (its physical type is
   * fixed for the run: an int64 column is not widened any more).
   */
  written?: boolean;
  /** The field as an existing table's Delta schemaString declares it; kept verbatim on append. */
  delta?: DeltaField;
  /** Delta `byte`/`short`/`integer` column: values must fit a signed integer of this many bits; stored as Parquet INT32. */
  intBits?: 8 | 16 | 32;
  /** The table's Delta type when kappa cannot write it faithfully (e.g. `decimal(10,2)`): only null fits. */
  unwritable?: string;
  /** The table's column is not nullable (`nullable: false`): a null or missing value is a conflict. */
  required?: boolean;
}

/** A struct field of a Delta schemaString (PROTOCOL.md, "Schema Serialization Format"). */
export interface DeltaField {
  name: string;
  /** A primitive type name (`long`, `integer`, `decimal(10,2)`, …) or a nested type object. */
  type: string | Record<string, unknown>;
  nullable: boolean;
  metadata: Record<string, unknown>;
}

/** Outcome of checking one record against the schema. */
export type CheckResult = { ok: true; changed: boolean } | { ok: false; reason: string };

const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;

/** 2^63: int64 holds the integers in [−2^63, 2^63). */
const INT64_LIMIT = 2 ** 63;
const MAX_SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);
/** A decimal integer of 16 to 19 digits, no leading zero (the stream form of a big int64). */
const BIG_INT_TEXT = /^-?[1-9]\d{15,18}$/;

/**
 * True when the JSON number `v` fits int64: an integer within [−2^63, 2^63). (A number beyond is
 * a float such as 1.5e300: kappa's readers give integer literals beyond 2^53 as decimal strings.)
 */
export function isInt64Number(v: number): boolean {
  return Number.isInteger(v) && v >= -INT64_LIMIT && v < INT64_LIMIT;
}

/**
 * True when `v` is an int64 beyond ±(2^53 − 1) in its stream form (kappa-stream(5): its exact
 * decimal string, as the Parquet and JSON readers give it) within the int64 range. A string of a
 * smaller integer (`"42"`) is no int64: only the stream's own form is taken, nothing is coerced.
 */
export function isBigInt64Text(v: unknown): boolean {
  if (typeof v !== 'string' || !BIG_INT_TEXT.test(v)) return false;
  const b = BigInt(v);
  return (b > MAX_SAFE_BIG || b < -MAX_SAFE_BIG) && b >= -(2n ** 63n) && b < 2n ** 63n;
}

/** Type inferred from one non-null JSON value. */
export function inferType(v: unknown): FieldType {
  switch (typeof v) {
    case 'number':
      return isInt64Number(v) ? 'int64' : 'float64';
    case 'boolean':
      return 'boolean';
    case 'string':
      return 'string';
    default:
      return 'json';
  }
}

/** Why `v` (non-null) does not fit `type`, or undefined if it fits. */
export function misfit(type: FieldType, v: unknown): string | undefined {
  switch (type) {
    case 'string':
      return typeof v === 'string' ? undefined : `expected a string, got ${describe(v)}`;
    case 'int64':
      return (typeof v === 'number' && isInt64Number(v)) || isBigInt64Text(v)
        ? undefined
        : `expected an integer, got ${describe(v)}`;
    case 'float64':
    case 'decimal':
      return typeof v === 'number' ? undefined : `expected a number, got ${describe(v)}`;
    case 'boolean':
      return typeof v === 'boolean' ? undefined : `expected true or false, got ${describe(v)}`;
    case 'timestamp':
    case 'timestamptz':
      return typeof v === 'number' && Number.isFinite(v)
        ? undefined
        : `expected a timestamp (epoch milliseconds), got ${describe(v)}`;
    case 'date':
      return typeof v === 'string' && DATE_RE.test(v)
        ? undefined
        : `expected a date YYYY-MM-DD, got ${describe(v)}`;
    case 'binary':
      return typeof v === 'string' ? undefined : `expected base64 text, got ${describe(v)}`;
    case 'json':
      return undefined;
  }
}

/** The Delta type name of a column for messages (`integer`, `long`, …). */
function deltaTypeName(c: Column): string {
  return typeof c.delta?.type === 'string' ? c.delta.type : c.type === 'int64' ? 'long' : c.type;
}

function describe(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

/** A growing table schema. Column order is first-seen order (declared columns first). */
export class TableSchema {
  readonly columns: Column[] = [];
  private readonly byName = new Map<string, Column>();
  /** Incremented on every change (new column or widening); writers compare it to roll files. */
  version = 0;
  /**
   * When true (a single output file whose columns are fixed), a new field or a widening is a
   * conflict instead of a schema change.
   */
  frozen = false;
  /** When false (an append without `--merge-schema`), a new field is a conflict. */
  allowNew = true;

  /** Columns that take no null (`required`). */
  private readonly required: Column[] = [];

  constructor(declared?: Schema, existing?: Column[]) {
    for (const c of existing ?? []) this.add({ ...c, committed: true });
    for (const c of this.columns) if (c.required) this.required.push(c);
    for (const [name, type] of Object.entries(declared ?? {})) {
      const c = this.byName.get(name);
      if (c) c.declared = true;
      else this.add({ name, type, declared: true });
    }
    this.version = 0;
  }

  private add(c: Column): void {
    this.columns.push(c);
    this.byName.set(c.name, c);
    this.version++;
  }

  get(name: string): Column | undefined {
    return this.byName.get(name);
  }

  /**
   * Checks a record's fields; on success applies any widening or new columns (mutating the schema).
   * On conflict nothing changes. Partition-only columns may be excluded by the caller.
   */
  check(value: Record<string, unknown>): CheckResult {
    let pendingNew: Column[] | undefined;
    let pendingWiden: Column[] | undefined;
    for (const c of this.required)
      if (value[c.name] === null || value[c.name] === undefined)
        return {
          ok: false,
          reason: `field '${c.name}' is ${value[c.name] === null ? 'null' : 'missing'}, but the table's column is not nullable`,
        };
    for (const k in value) {
      const v = value[k];
      if (v === null || v === undefined) continue;
      const c = this.byName.get(k);
      if (!c) {
        pendingNew ??= [];
        pendingNew.push({ name: k, type: inferType(v), declared: false });
        continue;
      }
      if (c.unwritable !== undefined)
        return {
          ok: false,
          reason: `field '${k}': the table's column is ${c.unwritable}, a type kappa does not write; leave the field out (null) or write to another table`,
        };
      const why = misfit(c.type, v);
      if (why === undefined) {
        if (c.intBits !== undefined) {
          const max = 2 ** (c.intBits - 1);
          if ((v as number) < -max || (v as number) >= max)
            return {
              ok: false,
              reason: `field '${k}': ${describe(v)} does not fit the table's ${deltaTypeName(c)} column (${c.intBits}-bit, ${-max}..${max - 1}); an append keeps the table's types`,
            };
        }
        continue;
      }
      if (c.type === 'int64' && !c.declared && typeof v === 'number') {
        if (c.committed)
          return {
            ok: false,
            reason: `field '${k}': ${describe(v)} would widen the table's column from ${deltaTypeName(c)} to double, which kappa does not do (Delta's typeWidening has no long -> double, and kappa does not enable the feature); write it to a new table or keep the values integral`,
          };
        if (c.written)
          return {
            ok: false,
            reason: `field '${k}': ${describe(v)} would widen the column from int64 to float64, but a Parquet data file of this run was already written with it as int64, and Delta does not widen long to double; declare the field float64 in the stream header (kappa-stream(5)) or keep its values integral`,
          };
        pendingWiden ??= [];
        pendingWiden.push(c);
        continue;
      }
      return { ok: false, reason: `field '${k}' (${c.type}): ${why}` };
    }
    if (!pendingNew && !pendingWiden) return { ok: true, changed: false };
    if (pendingNew && !this.allowNew)
      return {
        ok: false,
        reason: `new field '${pendingNew[0].name}' is not a column of the table; add --merge-schema to add columns`,
      };
    if (this.frozen)
      return {
        ok: false,
        reason: pendingNew
          ? `new field '${pendingNew[0].name}' after the output's columns were fixed`
          : `field '${pendingWiden![0].name}' would widen from int64 to float64 after the output's columns were fixed`,
      };
    for (const c of pendingWiden ?? []) c.type = 'float64';
    if (pendingWiden) this.version++;
    for (const c of pendingNew ?? []) if (!this.byName.has(c.name)) this.add(c);
    return { ok: true, changed: true };
  }

  /** Marks every current column written (a Parquet data file was started with these columns). */
  markWritten(): void {
    for (const c of this.columns) c.written = true;
  }

  /** Marks every column committed (after a log version with this schema was written). */
  markCommitted(): void {
    for (const c of this.columns) c.committed = true;
  }

  /** The schema as a header-style map. */
  toSchema(): Schema {
    const s: Schema = {};
    for (const c of this.columns) s[c.name] = c.type;
    return s;
  }
}
