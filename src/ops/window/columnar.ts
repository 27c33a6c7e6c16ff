/**
 * Column helpers for the window operator's batch path (`WindowOperator.batch`, issue 14): trusted
 * typed views of batch columns, per-batch key codes, and the open-addressing hash from
 * (key code, window start) to a group id that the batch path keeps per run of rows (the design of
 * the columnar prototype in research/performance.md section 3: an `Int32Array` hash on
 * (key code, window start) and `Float64Array` accumulators).
 */
import { ArrayColumn, type Column, type RecordBatch, typeOfValue, unify } from '../../stream/batch.js';
import type { FieldType, Schema } from '../../stream/protocol.js';

/**
 * The values of a numeric column as a Float64Array (NaN = null), when every non-null value is a
 * JS number in the row form too (so aggregating the array gives what aggregating the rows gives).
 * Only `int64` and `float64` columns qualify (timestamps and decimals may be carried as text in
 * rows). An array-backed column (`ArrayColumn`, whose declared type may disagree with its values)
 * is checked value by value; other implementations (Arrow) are trusted to hold what they declare.
 * @returns the array, or undefined when the column does not qualify
 */
export function numericValues(col: Column): Float64Array | undefined {
  if (col.type !== 'int64' && col.type !== 'float64') return undefined;
  const f = col.float64();
  if (f === undefined) return undefined;
  if (col instanceof ArrayColumn)
    for (let i = 0; i < col.length; i++) {
      const v = col.get(i);
      if (v !== null && typeof v !== 'number') return undefined;
    }
  return f;
}

/**
 * Dictionary codes of a string column (-1 = null), when every non-null value is a JS string in the
 * row form too (see `numericValues` for which columns are checked).
 * @returns codes and the string of each code, or undefined when the column does not qualify
 */
export function stringCodes(col: Column): { codes: Int32Array; values: readonly string[] } | undefined {
  if (col.type !== 'string') return undefined;
  const d = col.dictionary();
  if (d === undefined) return undefined;
  if (col instanceof ArrayColumn)
    for (let i = 0; i < col.length; i++) {
      const v = col.get(i);
      if (v !== null && typeof v !== 'string') return undefined;
    }
  return d;
}

/**
 * Per-batch key codes of a key column: `codes[i]` (-1 where the key is null or missing) indexes
 * `values`, the key value of each code. String columns use their dictionary; numeric columns are
 * coded here (one Map lookup per row, numbers compared by SameValueZero, which matches their state
 * key: `toStateKey(-0) === toStateKey(0)`).
 * @returns undefined for other column types (the caller takes the row path)
 */
export function keyCodes(col: Column): { codes: Int32Array; values: readonly unknown[] } | undefined {
  const d = stringCodes(col);
  if (d !== undefined) return d;
  const f = numericValues(col);
  if (f === undefined) return undefined;
  const codes = new Int32Array(f.length);
  const index = new Map<number, number>();
  const values: number[] = [];
  for (let i = 0; i < f.length; i++) {
    const v = f[i];
    if (Number.isNaN(v)) {
      codes[i] = -1;
      continue;
    }
    let c = index.get(v);
    if (c === undefined) {
      c = values.length;
      index.set(v, c);
      values.push(col.get(i) as number);
    }
    codes[i] = c;
  }
  return { codes, values };
}

/**
 * Hash of (an int32 code, an integer ms window start) for the open-addressing tables below: the
 * start's two 32-bit halves mixed with the code (murmur3's fmix32 multipliers and shifts).
 */
function hashCodeStart(code: number, start: number): number {
  const lo = start | 0;
  const hi = (start / 4294967296) | 0;
  let h = Math.imul(code ^ 0x5bd1e995, 0x9e3779b1) ^ lo;
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b) ^ hi;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * An open-addressing hash table (linear probing, power-of-two size, load factor <= 1/2) from
 * (key code: int32, window start: integer ms) to a dense group id 0..size-1. `reset()` empties it
 * in O(groups) so one table serves every run of a batch.
 */
export class GroupTable {
  private slots: Int32Array;
  private mask: number;
  /** Key code of each group. */
  private codes: Int32Array;
  /** Window start (ms) of each group. */
  private starts: Float64Array;
  /** Slot of each group (for reset). */
  private at: Int32Array;
  /** Number of groups. */
  size = 0;

  constructor(capacity = 1024) {
    let n = 16;
    while (n < capacity * 2) n *= 2;
    this.slots = new Int32Array(n).fill(-1);
    this.mask = n - 1;
    this.codes = new Int32Array(n >> 1);
    this.starts = new Float64Array(n >> 1);
    this.at = new Int32Array(n >> 1);
  }

  /** The group of (code, start), or -1. */
  find(code: number, start: number): number {
    let i = hashCodeStart(code, start) & this.mask;
    for (;;) {
      const g = this.slots[i];
      if (g < 0) return -1;
      if (this.codes[g] === code && this.starts[g] === start) return g;
      i = (i + 1) & this.mask;
    }
  }

  /**
   * True when group `g` is (code, start): a cheap check of a remembered group id (the caller's
   * per-key hint), valid across `reset` (a stale id fails the check).
   */
  is(g: number, code: number, start: number): boolean {
    return g >= 0 && g < this.size && this.codes[g] === code && this.starts[g] === start;
  }

  /** Adds (code, start), which must not be present; returns its new group id. */
  add(code: number, start: number): number {
    if ((this.size + 1) * 2 > this.slots.length) this.grow();
    const g = this.size++;
    this.codes[g] = code;
    this.starts[g] = start;
    this.place(g);
    return g;
  }

  /** Empties the table (group ids restart at 0). */
  reset(): void {
    for (let g = 0; g < this.size; g++) this.slots[this.at[g]] = -1;
    this.size = 0;
  }

  private place(g: number): void {
    let i = hashCodeStart(this.codes[g], this.starts[g]) & this.mask;
    while (this.slots[i] >= 0) i = (i + 1) & this.mask;
    this.slots[i] = g;
    this.at[g] = i;
  }

  private grow(): void {
    const n = this.slots.length * 2;
    this.slots = new Int32Array(n).fill(-1);
    this.mask = n - 1;
    const codes = new Int32Array(n >> 1);
    codes.set(this.codes);
    this.codes = codes;
    const starts = new Float64Array(n >> 1);
    starts.set(this.starts);
    this.starts = starts;
    this.at = new Int32Array(n >> 1);
    for (let g = 0; g < this.size; g++) this.place(g);
  }
}

/**
 * The window operator's open-window index (`WindowOperator`, issue 14): an open-addressing hash
 * (linear probing, power-of-two size, load factor <= 1/2) from (key id: int32 >= 0, window start:
 * integer ms) to a slot id, which indexes the operator's typed per-window arrays. Unlike
 * `GroupTable` it lives across batches and frees single slots (`remove`: backward-shift deletion,
 * Knuth TAOCP vol. 3, 6.4 algorithm R), reusing freed ids, so `hi` (ids ever handed out) stays at
 * the peak number of windows open at once.
 */
export class SlotTable {
  private slots: Int32Array;
  private mask: number;
  /** Key id of each slot (-1: free). */
  private kids: Int32Array;
  /** Window start (ms) of each slot. */
  private starts: Float64Array;
  /** Hash position of each slot. */
  private at: Int32Array;
  private readonly free: number[] = [];
  /** Slot ids handed out so far (every id is < hi). */
  hi = 0;
  /** Live slots. */
  size = 0;

  constructor(capacity = 1024) {
    let n = 16;
    while (n < capacity * 2) n *= 2;
    this.slots = new Int32Array(n).fill(-1);
    this.mask = n - 1;
    this.kids = new Int32Array(n >> 1).fill(-1);
    this.starts = new Float64Array(n >> 1);
    this.at = new Int32Array(n >> 1);
  }

  /** The slot of (kid, start), or -1. */
  find(kid: number, start: number): number {
    let i = hashCodeStart(kid, start) & this.mask;
    for (;;) {
      const g = this.slots[i];
      if (g < 0) return -1;
      if (this.kids[g] === kid && this.starts[g] === start) return g;
      i = (i + 1) & this.mask;
    }
  }

  /** True when slot `g` is live and holds (kid, start) (a cheap check of a remembered slot). */
  is(g: number, kid: number, start: number): boolean {
    return g >= 0 && g < this.hi && this.kids[g] === kid && this.starts[g] === start;
  }

  /** Key id of live slot `g`. */
  kid(g: number): number {
    return this.kids[g];
  }

  /** Window start (ms) of live slot `g`. */
  start(g: number): number {
    return this.starts[g];
  }

  /** Adds (kid, start), which must not be present; returns its slot (a freed one when there is one). */
  add(kid: number, start: number): number {
    if ((this.size + 1) * 2 > this.slots.length) this.grow();
    const g = this.free.length > 0 ? this.free.pop()! : this.hi++;
    this.size++;
    this.kids[g] = kid;
    this.starts[g] = start;
    this.place(g);
    return g;
  }

  /** Frees live slot `g`. */
  remove(g: number): void {
    const slots = this.slots;
    const mask = this.mask;
    let i = this.at[g];
    slots[i] = -1;
    this.kids[g] = -1;
    this.free.push(g);
    this.size--;
    // Backward shift: move later entries of the probe run into the hole unless their home position
    // lies cyclically in (hole, position].
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const h = slots[j];
      if (h < 0) return;
      const k = hashCodeStart(this.kids[h], this.starts[h]) & mask;
      const stays = i <= j ? i < k && k <= j : k > i || k <= j;
      if (stays) continue;
      slots[i] = h;
      this.at[h] = i;
      slots[j] = -1;
      i = j;
    }
  }

  /**
   * Renumbers the key id of every live slot (`remap(old) -> new`, a new id >= 0) and rebuilds the
   * hash index; slot ids stay as they are. Used to drop the ids of keys that have no open window.
   */
  remapKids(remap: (kid: number) => number): void {
    this.slots.fill(-1);
    for (let g = 0; g < this.hi; g++) {
      const kid = this.kids[g];
      if (kid < 0) continue;
      this.kids[g] = remap(kid);
      this.place(g);
    }
  }

  /** Frees every slot. */
  clear(): void {
    this.slots.fill(-1);
    this.kids.fill(-1);
    this.free.length = 0;
    this.hi = 0;
    this.size = 0;
  }

  private place(g: number): void {
    let i = hashCodeStart(this.kids[g], this.starts[g]) & this.mask;
    while (this.slots[i] >= 0) i = (i + 1) & this.mask;
    this.slots[i] = g;
    this.at[g] = i;
  }

  private grow(): void {
    const n = this.slots.length * 2;
    this.slots = new Int32Array(n).fill(-1);
    this.mask = n - 1;
    const kids = new Int32Array(n >> 1).fill(-1);
    kids.set(this.kids);
    this.kids = kids;
    const starts = new Float64Array(n >> 1);
    starts.set(this.starts);
    this.starts = starts;
    this.at = new Int32Array(n >> 1);
    for (let g = 0; g < this.hi; g++) if (this.kids[g] >= 0) this.place(g);
  }
}

/** A Float64Array grown (copied, doubled) to hold at least `n` elements. */
export function ensureF64(a: Float64Array, n: number): Float64Array {
  if (a.length >= n) return a;
  const b = new Float64Array(Math.max(n, a.length * 2));
  b.set(a);
  return b;
}

/** A Uint8Array grown (copied, doubled) to hold at least `n` elements. */
export function ensureU8(a: Uint8Array, n: number): Uint8Array {
  if (a.length >= n) return a;
  const b = new Uint8Array(Math.max(n, a.length * 2));
  b.set(a);
  return b;
}

/**
 * A column of result values whose `typed` flag was established by checking every value against
 * its type (see `allOfType`), so that encoders may take their typed fast path (no per-value check).
 */
class ResultColumn extends ArrayColumn {
  constructor(
    type: FieldType,
    values: readonly unknown[],
    readonly typed: boolean,
  ) {
    super(type, values);
  }
}

/**
 * True when every non-null value is exactly what a typed column of `type` holds: strings for
 * `string`; safe integers for `int64` and timestamps (epoch ms); numbers other than NaN for
 * `float64` (a typed float column reads NaN as null). Other types are never typed.
 */
function allOfType(type: FieldType, values: readonly unknown[]): boolean {
  const n = values.length;
  switch (type) {
    case 'string':
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (v != null && typeof v !== 'string') return false;
      }
      return true;
    case 'int64':
    case 'timestamp':
    case 'timestamptz':
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (v != null && !Number.isSafeInteger(v)) return false;
      }
      return true;
    case 'float64':
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (v != null && (typeof v !== 'number' || Number.isNaN(v))) return false;
      }
      return true;
    default:
      return false;
  }
}

/**
 * Result rows of fired windows gathered column-wise (the firing path of `WindowOperator`), emitted
 * as one `RecordBatch` instead of one row object per window. `take()` returns the same records, in
 * the same order, as `out.record({ ts, key, value })` per row would give, where `value` has the
 * fields in `fields` order: `recordsOf(batch)` rebuilds those very objects (a value that is
 * `undefined` is left out of its object, as JSON leaves it out).
 *
 * Column types: the output schema's type where it declares the field, else inferred from the
 * values as `batchFromRecords` infers them; a column is marked `typed` when every value was
 * checked to be of its type.
 */
export class ResultRows {
  /** Rows gathered. */
  length = 0;
  /** Event time of each row (ms). */
  private ts: Float64Array = new Float64Array(1024);
  /** Record key of each row (reused across `take`s: entries past `length` are stale). */
  private readonly keys: (string | null)[] = [];
  /** The values, row-major (row i, field j at `i * fields.length + j`); reused like `keys`. */
  private readonly cells: unknown[] = [];
  private sawUndefined = false;

  /**
   * @param fields the value's field names, in the order the row path builds the value object
   * @param schema the operator's output schema (declared field types)
   */
  constructor(
    readonly fields: readonly string[],
    private readonly schema: Schema | undefined,
  ) {}

  /** Appends one row: `values[j]` is the value of `fields[j]`. */
  push(ts: number, key: string | null, values: readonly unknown[]): void {
    const n = this.length++;
    this.ts = ensureF64(this.ts, n + 1);
    this.ts[n] = ts;
    this.keys[n] = key;
    const cells = this.cells;
    const nf = this.fields.length;
    const base = n * nf;
    for (let j = 0; j < nf; j++) {
      const v = values[j];
      if (v === undefined) this.sawUndefined = true;
      cells[base + j] = v;
    }
  }

  /** The gathered rows as a batch (undefined when there are none); empties the builder. */
  take(): RecordBatch | undefined {
    const n = this.length;
    if (n === 0) return undefined;
    this.length = 0;
    const ts = this.ts.slice(0, n);
    const keys = this.keys.slice(0, n);
    const fields = this.fields;
    const raw: unknown[][] = [];
    const byName = new Map<string, Column>();
    const cells = this.cells;
    const nf = fields.length;
    for (let j = 0; j < nf; j++) {
      const values: unknown[] = [];
      for (let i = 0; i < n; i++) values.push(cells[i * nf + j]);
      let type = this.schema?.[fields[j]];
      if (type === undefined) {
        let t: FieldType | undefined;
        for (let i = 0; i < n && t !== 'json'; i++) {
          const v = values[i];
          if (v != null) t = unify(t, typeOfValue(v));
        }
        type = t ?? 'json';
      }
      raw.push(values);
      byName.set(fields[j], new ResultColumn(type, values, allOfType(type, values)));
    }
    const complete = !this.sawUndefined;
    this.sawUndefined = false;
    return {
      length: n,
      ts,
      key: new ArrayColumn('string', keys),
      fields,
      complete,
      column: (name) => byName.get(name),
      value(i: number): Record<string, unknown> {
        const v: Record<string, unknown> = {};
        for (let j = 0; j < fields.length; j++) {
          const x = raw[j][i];
          if (x !== undefined) v[fields[j]] = x;
        }
        return v;
      },
    };
  }
}
