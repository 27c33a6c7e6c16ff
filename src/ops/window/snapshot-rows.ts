/**
 * A window operator's state copied out of memory at a barrier (`WindowOperator.memoryCopy`), and
 * the pure function that turns it into the savepoint's columns. The copy is typed arrays and
 * plain strings only, so the stage can hand it to the checkpoint part writer's thread
 * (src/checkpoint/part-worker.ts), which does the JSON texts, the ordering and the Parquet
 * encoding while the stage goes on with its input.
 */
import type { SavepointColumns } from '../../state/savepoint/write.js';

/** Accumulator kinds of a fresh slot (`WindowOperator.kinds`). */
export const K_NONE = 0; // not held in typed arrays: the operator never uses fresh slots
export const K_COUNT = 1; // count, count(f), sum: acc0
export const K_AVG = 2; // acc0 sum, acc1 count
export const K_MINMAX = 3; // acc0 value when has

/**
 * The rows of a window snapshot as copied at the barrier. Rows `[0, texts.length)` are state
 * entries with their value text; rows `[texts.length, length)` are fresh slots, whose values are
 * built from `maxTs` and the accumulators (`na = names.length` per row: `acc0`, `acc1`, `has`).
 * Times are epoch ms; `timer` NaN means none.
 */
export interface WindowRowsCopy {
  /** Name of the keyed state (`window`). */
  state: string;
  session: boolean;
  /** Aggregate names and their accumulator kinds (K_*). */
  names: string[];
  kinds: Uint8Array;
  /** Distinct keys (state-key text before the NUL) and their key groups. */
  keyText: string[];
  keyGroup: Int32Array;
  length: number;
  /** Per row: index into keyText, window start and end, timer. */
  kid: Int32Array;
  windowStart: Float64Array;
  windowEnd: Float64Array;
  timer: Float64Array;
  texts: string[];
  maxTs: Float64Array;
  acc0: Float64Array;
  acc1: Float64Array;
  has: Uint8Array;
}

/**
 * The savepoint columns of a copy, in the format's order (key group, then state key in UTF-8 byte
 * order: keys by code point, window starts by their decimal text), each fresh slot's value the
 * JSON text a state entry of it would have (`{max_ts, fired: false, changed: true, next_early:
 * null, acc}`: the same bytes as `JSON.stringify` of the entry's window).
 * With `valueBytes` (the part writer's thread), `value` stays empty and `valueUtf8` gives the
 * same texts as UTF-8 bytes, written per row group without a string per window (see `valueUtf8`);
 * without it, `value` holds the texts (what tests and the stage's own thread read).
 */
export function windowSnapshotColumns(c: WindowRowsCopy, opts?: { valueBytes?: boolean }): SavepointColumns {
  const { keyText, keyGroup, kid, windowStart: ws, length: n, names, kinds } = c;
  const na = names.length;
  const nE = c.texts.length;
  const value = (i: number): string => {
    if (i < nE) return c.texts[i];
    const base = (i - nE) * na;
    const acc: Record<string, unknown> = {};
    for (let j = 0; j < na; j++) {
      const k = kinds[j];
      acc[names[j]] =
        k === K_AVG
          ? [c.acc0[base + j], c.acc1[base + j]]
          : k === K_MINMAX
            ? c.has[base + j]
              ? c.acc0[base + j]
              : null
            : c.acc0[base + j];
    }
    return JSON.stringify({ max_ts: c.maxTs[i - nE], fired: false, changed: true, next_early: null, acc });
  };
  // Key order: key group, then the key's UTF-8 bytes (code points); rows by a stable counting
  // sort on the key's rank, then by window start in the byte order of its decimal text.
  const order = keyText.map((_, i) => i);
  order.sort((x, y) => keyGroup[x] - keyGroup[y] || compareCodePoints(keyText[x], keyText[y]));
  const rank = new Int32Array(keyText.length);
  order.forEach((id, r) => {
    rank[id] = r;
  });
  const starts = new Int32Array(keyText.length + 1);
  for (let i = 0; i < n; i++) starts[rank[kid[i]] + 1]++;
  for (let r = 0; r < keyText.length; r++) starts[r + 1] += starts[r];
  const at = starts.slice(0, keyText.length);
  const perm = new Int32Array(n);
  for (let i = 0; i < n; i++) perm[at[rank[kid[i]]]++] = i;
  // When every start is a non-negative integer of as many digits (the usual case: epoch ms of one
  // era), the byte order of their texts is the numeric order: no per-pair digit count.
  const cmp = sameDigitCount(ws, n) ? (a: number, b: number) => a - b : compareStarts;
  if (!c.session)
    for (let r = 0; r < keyText.length; r++) {
      const a = starts[r];
      const b = starts[r + 1];
      let sorted = true;
      for (let i = a + 1; i < b && sorted; i++) sorted = cmp(ws[perm[i - 1]], ws[perm[i]]) <= 0;
      if (!sorted)
        perm.set(
          Array.from(perm.subarray(a, b)).sort((x, y) => cmp(ws[x], ws[y])),
          a,
        );
    }
  // Filled by push: `new Array(n)` of this size would be a slow dictionary-mode array.
  const out: SavepointColumns = {
    length: n,
    state: c.state,
    keyGroup: new Int32Array(n),
    key: [],
    windowStart: [],
    windowEnd: [],
    timer: [],
    value: [],
  };
  const bytes = opts?.valueBytes === true;
  if (bytes) out.valueUtf8 = valueUtf8(c, perm);
  for (let r = 0; r < n; r++) {
    const i = perm[r];
    const id = kid[i];
    out.keyGroup[r] = keyGroup[id];
    out.key.push(keyText[id]);
    out.windowStart.push(ws[i]);
    out.windowEnd.push(c.windowEnd[i]);
    out.timer.push(Number.isNaN(c.timer[i]) ? null : c.timer[i]);
    if (!bytes) out.value.push(value(i));
  }
  return out;
}

/**
 * `SavepointColumns.valueUtf8` of a copy whose rows are in order `perm`: each row's value text
 * (as `windowSnapshotColumns` makes it) written as UTF-8 straight into one buffer per call, with
 * no string per fresh slot. A fresh slot's text is a template of ASCII parts (the aggregate names
 * as JSON strings, encoded once) and numbers, written as `JSON.stringify` writes them
 * (ECMA-262 SerializeJSONProperty: `Number::toString`, non-finite as `null`); the member order and
 * which aggregate a repeated name keeps come from one probe object built as `value` builds `acc`
 * (integer-like names first, a repeated name at its first place with its last value, `__proto__`
 * never an own member). Building, stringifying and then encoding an object per window was most of
 * a checkpoint part's CPU time (bench scenario 9).
 */
function valueUtf8(c: WindowRowsCopy, perm: Int32Array): (from: number, to: number) => Uint8Array[] {
  const { names, kinds, maxTs, acc0, acc1, has, texts } = c;
  const na = names.length;
  const nE = texts.length;
  const probe: Record<string, number> = {};
  for (let j = 0; j < na; j++) probe[names[j]] = j;
  const enc = new TextEncoder();
  const head = enc.encode('{"max_ts":');
  const mid = enc.encode(',"fired":false,"changed":true,"next_early":null,"acc":{');
  const members = Object.keys(probe).map((name, m) => ({
    j: probe[name],
    prefix: enc.encode(`${m === 0 ? '' : ','}${JSON.stringify(name)}:`),
  }));
  // Bytes of a fresh slot's text at most: the fixed parts and 24 per number (the longest
  // Number::toString, e.g. -1.2345678901234567e-308) and its brackets.
  let freshMax = head.length + mid.length + 2 + 24;
  for (const { j, prefix } of members) freshMax += prefix.length + (kinds[j] === K_AVG ? 51 : 24);
  return (from: number, to: number): Uint8Array[] => {
    let cap = 0;
    for (let r = from; r < to; r++) {
      const i = perm[r];
      cap += i < nE ? texts[i].length * 3 : freshMax;
    }
    // A plain Uint8Array (its element stores and `subarray` are cheaper than a Buffer's), with a
    // Buffer view of it for the UTF-8 writes of state entries' texts.
    const buf = new Uint8Array(cap);
    const bufText = Buffer.from(buf.buffer, buf.byteOffset, cap);
    const out: Uint8Array[] = [];
    let at = 0;
    for (let r = from; r < to; r++) {
      const i = perm[r];
      const start = at;
      if (i < nE) at += bufText.write(texts[i], at, 'utf8');
      else {
        const f = i - nE;
        const base = f * na;
        at = putBytes(buf, at, head);
        at = putNumber(buf, at, maxTs[f]);
        at = putBytes(buf, at, mid);
        for (const { j, prefix } of members) {
          at = putBytes(buf, at, prefix);
          const a = base + j;
          const k = kinds[j];
          if (k === K_AVG) {
            buf[at++] = 0x5b; // [
            at = putNumber(buf, at, acc0[a]);
            buf[at++] = 0x2c; // ,
            at = putNumber(buf, at, acc1[a]);
            buf[at++] = 0x5d; // ]
          } else if (k === K_MINMAX && !has[a]) at = putNumber(buf, at, Number.NaN);
          else at = putNumber(buf, at, acc0[a]);
        }
        buf[at++] = 0x7d;
        buf[at++] = 0x7d;
      }
      out.push(buf.subarray(start, at));
    }
    return out;
  };
}

/**
 * Copies `b` into `buf` at `at`; returns the end. Byte by byte: the parts are short, and a native
 * `set` per part cost more than the copy. (Plain functions of (buffer, position), not closures over
 * a shared position, which V8 keeps in a context slot instead of a register.)
 */
function putBytes(buf: Uint8Array, at: number, b: Uint8Array): number {
  for (let k = 0; k < b.length; k++) buf[at++] = b[k];
  return at;
}

/**
 * Writes number `x` into `buf` at `at` as JSON.stringify writes it (ECMA-262 Number::toString for
 * finite numbers, `null` otherwise; -0 as `0`); returns the end. Integers of fewer than 10 digits
 * (counts, sums of small values) in int32 arithmetic, digits from the end; other numbers through
 * `String` (ASCII only).
 */
function putNumber(buf: Uint8Array, at: number, x: number): number {
  if (Number.isInteger(x) && x > -1e9 && x < 1e9) {
    let v = x | 0; // -0 becomes 0
    if (v < 0) {
      buf[at++] = 0x2d;
      v = -v;
    }
    let end = at + 1;
    for (let t = v; t >= 10; t = (t / 10) | 0) end++;
    at = end;
    do {
      const q = (v / 10) | 0;
      buf[--end] = 0x30 + v - q * 10;
      v = q;
    } while (v > 0);
    return at;
  }
  const t = Number.isFinite(x) ? String(x) : 'null';
  for (let k = 0; k < t.length; k++) buf[at++] = t.charCodeAt(k);
  return at;
}

/** Orders strings by code point (= UTF-8 byte order), unlike `<`, which compares UTF-16 units. */
function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

/** Whether `ws[0..n)` are all non-negative safe integers with as many decimal digits. */
function sameDigitCount(ws: Float64Array, n: number): boolean {
  if (n === 0) return true;
  let lo = ws[0];
  let hi = ws[0];
  for (let i = 0; i < n; i++) {
    const v = ws[i];
    if (!Number.isSafeInteger(v)) return false;
    if (v < lo) lo = v;
    else if (v > hi) hi = v;
  }
  return lo >= 0 && String(lo).length === String(hi).length;
}

/**
 * Orders window starts as their decimal texts in a state key order (byte order): numerically when
 * both are non-negative integers of as many digits, else by the texts.
 */
function compareStarts(a: number, b: number): number {
  if (a >= 0 && b >= 0 && Number.isSafeInteger(a) && Number.isSafeInteger(b)) {
    const da = a < 10 ? 1 : Math.floor(Math.log10(a)) + 1;
    const db = b < 10 ? 1 : Math.floor(Math.log10(b)) + 1;
    if (da === db) return a - b;
  }
  const x = String(a);
  const y = String(b);
  return x < y ? -1 : x > y ? 1 : 0;
}
