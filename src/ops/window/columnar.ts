/**
 * Column helpers for the window operator's batch path (`WindowOperator.batch`, issue 14): trusted
 * typed views of batch columns, per-batch key codes, and the open-addressing hash from
 * (key code, window start) to a group id that the batch path keeps per run of rows (the design of
 * the columnar prototype in research/performance.md section 3: an `Int32Array` hash on
 * (key code, window start) and `Float64Array` accumulators).
 */
import {
  ArrayColumn,
  type Column,
  DictionaryColumn,
  Float64Column,
  type RecordBatch,
  typeOfValue,
  unify,
} from '../../stream/batch.js';
import type { FieldType, Schema } from '../../stream/protocol.js';
import { toRecordKey } from '../keys.js';

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
 *
 * The hash index is built lazily: `add` and `remove` only touch the per-slot arrays until a `find`
 * has to probe (its start is not above the key's bound `kidMax`), which builds the index from the
 * live slots once (O(live slots)); from then on `add` and `remove` keep it up to date, until the
 * table is emptied (`clear`, or `remove` of its last slot). Time-ordered input finds every slot
 * through the operator's hints or the `kidMax` bound, so it never pays for the index: about 100 ns
 * of cache misses per `add` and per `remove` (bench scenario 3t: 424k windows opened and fired).
 */
export class SlotTable {
  private slots: Int32Array;
  private mask: number;
  /** Key id of each slot (-1: free). */
  private kids: Int32Array;
  /** Window start (ms) of each slot. */
  private starts: Float64Array;
  /** Hash position of each slot (valid while `indexed`). */
  private at: Int32Array;
  private readonly free: number[] = [];
  /**
   * Per key id: an upper bound of the window starts (ms) of its live slots (-Infinity: none ever
   * added). A start above it is not in the table, so `find` answers without probing: in
   * time-ordered input every new window is such a start, and an unsuccessful probe costs cache
   * misses in `kids`/`starts` for each slot of the probe run.
   */
  private kidMax: Float64Array = new Float64Array(0);
  /** `slots` holds every live slot (else it is all -1 and is built by the next probing `find`). */
  private idx = false;
  /** Slot ids handed out so far (every id is < hi). */
  hi = 0;
  /** Live slots. */
  size = 0;
  /** Times the hash index was built from the live slots (a counter for tests and profiles). */
  indexBuilds = 0;

  constructor(capacity = 1024) {
    let n = 16;
    while (n < capacity * 2) n *= 2;
    this.slots = new Int32Array(n).fill(-1);
    this.mask = n - 1;
    this.kids = new Int32Array(n >> 1).fill(-1);
    this.starts = new Float64Array(n >> 1);
    this.at = new Int32Array(n >> 1);
  }

  /** True while the hash index is built (see the class doc). */
  get indexed(): boolean {
    return this.idx;
  }

  /** The slot of (kid, start), or -1. */
  find(kid: number, start: number): number {
    if (!(kid < this.kidMax.length && start <= this.kidMax[kid])) return -1;
    if (!this.idx) this.buildIndex();
    let i = hashCodeStart(kid, start) & this.mask;
    for (;;) {
      const g = this.slots[i];
      if (g < 0) return -1;
      if (this.kids[g] === kid && this.starts[g] === start) return g;
      i = (i + 1) & this.mask;
    }
  }

  /** Places every live slot into the (empty) hash index. */
  private buildIndex(): void {
    this.idx = true;
    this.indexBuilds++;
    for (let g = 0; g < this.hi; g++) if (this.kids[g] >= 0) this.place(g);
  }

  /** Raises key id `kid`'s bound of window starts (`kidMax`) to `start`, growing the array. */
  private raiseMax(kid: number, start: number): void {
    let m = this.kidMax;
    if (kid >= m.length) {
      const b = new Float64Array(Math.max(kid + 1, 2 * m.length, 64)).fill(Number.NEGATIVE_INFINITY);
      b.set(m);
      this.kidMax = m = b;
    }
    if (start > m[kid]) m[kid] = start;
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
    this.raiseMax(kid, start);
    if (this.idx) this.place(g);
    return g;
  }

  /** Frees live slot `g`. */
  remove(g: number): void {
    this.kids[g] = -1;
    this.free.push(g);
    this.size--;
    if (!this.idx) return;
    const slots = this.slots;
    if (this.size === 0) {
      // Empty: drop the index (every position is -1 again once this slot's is).
      slots[this.at[g]] = -1;
      this.idx = false;
      return;
    }
    const mask = this.mask;
    let i = this.at[g];
    slots[i] = -1;
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
   * hash index (when built); slot ids stay as they are. Used to drop the ids of keys that have no
   * open window.
   */
  remapKids(remap: (kid: number) => number): void {
    if (this.idx) this.slots.fill(-1);
    this.kidMax.fill(Number.NEGATIVE_INFINITY);
    for (let g = 0; g < this.hi; g++) {
      const kid = this.kids[g];
      if (kid < 0) continue;
      const k = remap(kid);
      this.kids[g] = k;
      this.raiseMax(k, this.starts[g]);
      if (this.idx) this.place(g);
    }
  }

  /** Frees every slot. */
  clear(): void {
    if (this.idx) this.slots.fill(-1);
    this.idx = false;
    this.kids.fill(-1);
    this.kidMax.fill(Number.NEGATIVE_INFINITY);
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
    if (this.idx) for (let g = 0; g < this.hi; g++) if (this.kids[g] >= 0) this.place(g);
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

/** How a result column holds its values (`ResultRows`). */
const C_NUM = 0; // numbers in a Float64Array (NaN: null)
const C_STR = 1; // strings as dictionary codes (-1: null)
const C_BOX = 2; // any JS values

/**
 * One field of `ResultRows`: typed storage chosen from the field's declared type (numbers for
 * int64, float64 and timestamps; dictionary codes for strings), falling back to boxed values from
 * the first value that does not fit (a NaN number, a string in a numeric field, an object…).
 */
class ResultCell {
  mode: number;
  nums: Float64Array = new Float64Array(0);
  codes: Int32Array = new Int32Array(0);
  dict: string[] = [];
  index = new Map<string, number>();
  box: unknown[] = [];
  /** A value was `undefined` (the field is left out of that row's value). */
  sawUndefined = false;

  constructor(readonly type: FieldType | undefined) {
    this.mode = startMode(type);
  }

  /** Capacity for `n` rows. */
  reserve(n: number): void {
    if (this.mode === C_NUM) this.nums = ensureF64(this.nums, n);
    else if (this.mode === C_STR && this.codes.length < n) {
      const c = new Int32Array(Math.max(n, this.codes.length * 2));
      c.set(this.codes);
      this.codes = c;
    }
  }

  /** Row `i`'s value as boxed JS (what `ResultRows.push` was given; null for a null). */
  get(i: number): unknown {
    if (this.mode === C_NUM) {
      const v = this.nums[i];
      return Number.isNaN(v) ? null : v;
    }
    if (this.mode === C_STR) {
      const c = this.codes[i];
      return c < 0 ? null : this.dict[c];
    }
    return this.box[i];
  }

  /** Switches to boxed values, keeping rows [0, n). */
  toBox(n: number): void {
    const box: unknown[] = new Array(n);
    for (let i = 0; i < n; i++) box[i] = this.get(i);
    this.box = box;
    this.mode = C_BOX;
  }

  set(i: number, v: unknown): void {
    const m = this.mode;
    if (m === C_NUM) {
      if (typeof v === 'number' && !Number.isNaN(v)) {
        this.nums[i] = v;
        return;
      }
      if (v === null) {
        this.nums[i] = Number.NaN;
        return;
      }
      this.toBox(i);
    } else if (m === C_STR) {
      if (typeof v === 'string') {
        let c = this.index.get(v);
        if (c === undefined) {
          c = this.dict.length;
          this.index.set(v, c);
          this.dict.push(v);
        }
        this.codes[i] = c;
        return;
      }
      if (v === null) {
        this.codes[i] = -1;
        return;
      }
      this.toBox(i);
    }
    if (v === undefined) this.sawUndefined = true;
    this.box[i] = v;
  }

  /** The column of rows [0, n) (see `ResultRows` for its type); empties the cell. */
  take(n: number): { col: Column; raw: readonly unknown[] | undefined } {
    const declared = this.type;
    let col: Column | undefined;
    let raw: unknown[] | undefined;
    if (this.mode === C_NUM) {
      const nums = this.nums.slice(0, n);
      // int64 and timestamps are typed only while every value is a safe integer.
      let ok = declared === 'float64';
      if (!ok) {
        ok = true;
        for (let i = 0; i < n; i++) {
          const v = nums[i];
          if (!Number.isNaN(v) && !Number.isSafeInteger(v)) {
            ok = false;
            break;
          }
        }
      }
      if (ok) col = new Float64Column(declared as FieldType, nums);
      else this.toBox(n);
    } else if (this.mode === C_STR) {
      col = new DictionaryColumn(this.codes.slice(0, n), this.dict);
      this.dict = [];
      this.index = new Map();
    }
    if (col === undefined) {
      raw = this.box.slice(0, n);
      let type = declared;
      if (type === undefined) {
        let t: FieldType | undefined;
        for (let i = 0; i < n && t !== 'json'; i++) {
          const v = raw[i];
          if (v != null) t = unify(t, typeOfValue(v));
        }
        type = t ?? 'json';
      }
      col = new ResultColumn(type, raw, allOfType(type, raw));
      this.box = [];
    }
    this.mode = startMode(declared);
    this.sawUndefined = false;
    return { col, raw };
  }
}

/** The storage a result field starts with, by its declared type. */
function startMode(type: FieldType | undefined): number {
  switch (type) {
    case 'int64':
    case 'float64':
    case 'timestamp':
    case 'timestamptz':
      return C_NUM;
    case 'string':
      return C_STR;
    default:
      return C_BOX;
  }
}

/**
 * Result rows of fired windows gathered column-wise (the firing path of `WindowOperator`), emitted
 * as one `RecordBatch` instead of one row object per window. `take()` returns the same records, in
 * the same order, as `out.record({ ts, key, value })` per row would give, where `value` has the
 * fields in `fields` order: `recordsOf(batch)` rebuilds those very objects (a value that is
 * `undefined` is left out of its object, as JSON leaves it out).
 *
 * Storage (issue 14): a field whose declared type is int64, float64 or a timestamp is kept in a
 * Float64Array and becomes a typed `Float64Column` (int64 and timestamps only when every value is
 * a safe integer); a declared string field is kept as dictionary codes and becomes a
 * `DictionaryColumn`; the record keys too. A value that does not fit its field's storage (a NaN,
 * a value of another type) turns that field to boxed values for the rest of the batch, and such a
 * column, like a field of undeclared type, is typed as before: the declared type, else inferred
 * from the values as `batchFromRecords` infers them, marked `typed` when every value was checked
 * to be of its type. The firing of fresh slots writes numbers with `row`/`num`/`nul`/`val`, so no
 * number is boxed on the way to the encoder.
 */
export class ResultRows {
  /** Rows gathered. */
  length = 0;
  /** Event time of each row (ms). */
  private ts: Float64Array = new Float64Array(1024);
  /** Record key of each row as a code into `keyDict` (-1: null). */
  private keyCodes: Int32Array = new Int32Array(1024);
  private keyDict: string[] = [];
  private keyIndex = new Map<string, number>();
  private readonly cells: ResultCell[];
  /** Rows the arrays of `ts`, `keyCodes` and the cells hold. */
  private cap = 1024;
  /** `keyRow`'s record-key code of each key id, valid where `kidEpoch` is `epoch`. */
  private kidCode: Int32Array = new Int32Array(0);
  private kidEpoch: Int32Array = new Int32Array(0);
  /** Batches taken + 1 (codes of an earlier batch are stale). */
  private epoch = 1;

  /**
   * @param fields the value's field names, in the order the row path builds the value object
   * @param schema the operator's output schema (declared field types)
   */
  /**
   * @param keyField the index in `fields` of the window key's field (`keyRow` sets it; as a string
   *   field it shares the record keys' dictionary: a string key is its own record key), or -1
   */
  constructor(
    readonly fields: readonly string[],
    schema: Schema | undefined,
    private readonly keyField = -1,
  ) {
    this.cells = fields.map((f) => new ResultCell(schema?.[f]));
    for (const c of this.cells) c.reserve(this.cap);
    this.shareKeyDict();
  }

  /** The key field's string dictionary is the record keys' one. */
  private shareKeyDict(): void {
    if (this.keyField < 0) return;
    const c = this.cells[this.keyField];
    c.dict = this.keyDict;
    c.index = this.keyIndex;
  }

  /** The record-key code of a record key (a string gets one on first use). */
  private keyCode(key: string | null): number {
    if (key === null) return -1;
    let c = this.keyIndex.get(key);
    if (c === undefined) {
      c = this.keyDict.length;
      this.keyIndex.set(key, c);
      this.keyDict.push(key);
    }
    return c;
  }

  /**
   * Appends a row with event time `ts` (ms) whose record key is `toRecordKey(k)` and whose key
   * field (`keyField`) is `k`, the value of key id `kid` (ids name one key value while this builder
   * is in use between two `take`s: the record key's code is looked up once per id and batch).
   * Its other fields are set next with `num`, `nul` or `val`.
   */
  keyRow(ts: number, kid: number, k: unknown): void {
    if (this.kidCode.length <= kid) {
      const m = Math.max(kid + 1, 2 * this.kidCode.length);
      const c = new Int32Array(m);
      c.set(this.kidCode);
      this.kidCode = c;
      const e = new Int32Array(m);
      e.set(this.kidEpoch);
      this.kidEpoch = e;
    }
    let code: number;
    if (this.kidEpoch[kid] === this.epoch) code = this.kidCode[kid];
    else {
      code = this.keyCode(toRecordKey(k));
      this.kidCode[kid] = code;
      this.kidEpoch[kid] = this.epoch;
    }
    const n = this.row(ts, null);
    this.keyCodes[n] = code;
    const c = this.cells[this.keyField];
    if (c.mode === C_STR && typeof k === 'string') c.codes[n] = code;
    else c.set(n, k);
  }

  /** Appends one row: `values[j]` is the value of `fields[j]`. */
  push(ts: number, key: string | null, values: readonly unknown[]): void {
    const n = this.row(ts, key);
    const cells = this.cells;
    for (let j = 0; j < cells.length; j++) cells[j].set(n, values[j]);
  }

  /**
   * Appends a row with event time `ts` (ms) and record key `key`; its fields are set next with
   * `num`, `nul` or `val` (each field exactly once).
   * @returns the row's index
   */
  row(ts: number, key: string | null): number {
    const n = this.length++;
    if (n >= this.cap) {
      this.cap *= 2;
      this.ts = ensureF64(this.ts, this.cap);
      const k = new Int32Array(this.cap);
      k.set(this.keyCodes);
      this.keyCodes = k;
      for (const c of this.cells) c.reserve(this.cap);
    }
    this.ts[n] = ts;
    this.keyCodes[n] = this.keyCode(key);
    return n;
  }

  /** Field `j` of the last row is the number `v` (a NaN is a NaN value, not null). */
  num(j: number, v: number): void {
    const c = this.cells[j];
    if (c.mode === C_NUM && !Number.isNaN(v)) c.nums[this.length - 1] = v;
    else c.set(this.length - 1, v);
  }

  /** Field `j` of the last row is null. */
  nul(j: number): void {
    this.cells[j].set(this.length - 1, null);
  }

  /** Field `j` of the last row is `v`. */
  val(j: number, v: unknown): void {
    this.cells[j].set(this.length - 1, v);
  }

  /** The gathered rows as a batch (undefined when there are none); empties the builder. */
  take(): RecordBatch | undefined {
    const n = this.length;
    if (n === 0) return undefined;
    this.length = 0;
    const ts = this.ts.slice(0, n);
    const key = new DictionaryColumn(this.keyCodes.slice(0, n), this.keyDict);
    const fields = this.fields;
    const byName = new Map<string, Column>();
    const cols: Column[] = [];
    const raws: (readonly unknown[] | undefined)[] = [];
    let complete = true;
    for (let j = 0; j < fields.length; j++) {
      const cell = this.cells[j];
      if (cell.sawUndefined) complete = false;
      const { col, raw } = cell.take(n);
      cell.reserve(this.cap);
      cols.push(col);
      raws.push(raw);
      byName.set(fields[j], col);
    }
    this.keyDict = [];
    this.keyIndex = new Map();
    this.shareKeyDict();
    this.epoch++;
    return {
      length: n,
      ts,
      key,
      fields,
      complete,
      column: (name) => byName.get(name),
      value(i: number): Record<string, unknown> {
        const v: Record<string, unknown> = {};
        for (let j = 0; j < fields.length; j++) {
          const raw = raws[j];
          if (raw === undefined) v[fields[j]] = cols[j].get(i);
          else {
            const x = raw[i];
            if (x !== undefined) v[fields[j]] = x;
          }
        }
        return v;
      },
    };
  }
}
