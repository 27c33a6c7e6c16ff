/**
 * Columns of a Parquet row group decoded by parquet-wasm (arrow-rs compiled to WebAssembly) into
 * Arrow buffers, read through @uwdata/flechette, as `Column`s of the record-batch contract
 * (src/stream/batch.ts) without one JS value per cell: numbers stay in their typed arrays, strings
 * in their UTF-8 bytes until a row asks for one (issue 14, "A columnar Parquet path").
 *
 * Only the column kinds whose values this module reproduces exactly as the hyparquet row reader
 * (read.ts) gives them are handled here; `columnarField` tells which Parquet columns qualify, and
 * `DecodedColumn.of` rejects (returns undefined for) an Arrow type it does not expect, so that the
 * reader falls back to the row path for that row group:
 * - Int8/16/32/64 and UInt8/16/32 -> `int64`: numbers; int64 beyond ±(2^53 − 1) as its decimal string
 * - Float32/Float64 -> `float64`: numbers; NaN and ±Infinity are null (JSON has no such numbers)
 * - Bool -> `boolean`
 * - Utf8, LargeUtf8, Dictionary<int, utf8> -> `string`
 * - Timestamp (s, ms, µs, ns) -> `timestamp`/`timestamptz`: epoch ms, floored (an instant before 1970
 *   lands in the millisecond that contains it)
 */
import type { SchemaTree } from 'hyparquet';
import type { Column, Int64Buffer } from '../../stream/batch.js';
import type { FieldType } from '../../stream/protocol.js';

/**
 * The Arrow array fields this module reads: flechette's `Batch` keeps them public, and
 * `wasm-ffi.ts` builds the same shape from the C Data Interface. `values` is a BigInt64Array for
 * 64-bit integers and timestamps, the UTF-8 bytes for strings, the bitmap for booleans.
 */
export interface ArrowData {
  readonly length: number;
  readonly nullCount: number;
  readonly type: { typeId: number; bitWidth?: number; signed?: boolean; precision?: number; unit?: number };
  readonly validity: Uint8Array | null | undefined;
  readonly values: ArrayLike<number> & { buffer: ArrayBufferLike; byteOffset: number; length: number };
  readonly offsets?: {
    buffer: ArrayBufferLike;
    byteOffset: number;
    length: number;
    BYTES_PER_ELEMENT: number;
  };
  readonly dictionary?: { data: readonly ArrowData[]; toArray(): ArrayLike<unknown> };
  /**
   * Timestamps only, optional: every row's epoch ms, floored (`epochMs`; NaN for a null row),
   * computed by the producer (wasm-ffi.ts converts straight out of WebAssembly memory when the
   * unit is not ms, and then `values` is not copied at all: an empty BigInt64Array).
   */
  readonly ms?: Float64Array;
  /**
   * utf8 / large utf8 only, optional: every row's dictionary code and the distinct strings
   * (`utf8Codes` over the whole array), computed by the producer (wasm-ffi.ts, straight out of
   * WebAssembly memory); `values` and `offsets` are then not copied (empty / undefined).
   */
  readonly codes?: { codes: Int32Array; values: readonly string[] };
  /**
   * Optional, with `codes`: the dictionaries of the slices the reader will cut, computed ahead by
   * the producer (decode-worker.ts, `sliceCodes` of rows `start .. start + codes.length - 1`), so
   * that the consumer's thread does not renumber them.
   */
  readonly slices?: readonly { start: number; codes: Int32Array; values: readonly string[] }[];
}

// Arrow type ids (flechette `Type`, the Arrow flatbuffer schema's `Type` union); wasm-ffi.ts
// gives its columns the same ids.
export const T_INT = 2;
export const T_FLOAT = 3;
export const T_UTF8 = 5;
export const T_BOOL = 6;
export const T_TIMESTAMP = 10;
export const T_LARGE_UTF8 = 20;
export const T_DICTIONARY = -1;

const TWO32 = 4294967296;
/** Highest 32-bit word of an int64 whose value is within ±(2^53 − 1) for sure. */
const SAFE_HI = 0x1fffff;
const MS_PER_UNIT = [1000, 1, 1e-3, 1e-6];
const UNITS_PER_MS = [0, 1, 1000, 1_000_000];

const STREAM_TYPES: ReadonlySet<FieldType> = new Set([
  'int64',
  'float64',
  'boolean',
  'string',
  'timestamp',
  'timestamptz',
]);

/**
 * True when a top-level Parquet column can take the columnar path: a flat (non-repeated) leaf of a
 * stream type listed in the module comment, without the annotations whose values the row reader
 * formats specially (INT96, FLOAT16, TIME, UUID, unsigned 64-bit).
 * @param node the column's node in hyparquet's schema tree
 * @param type its stream type (`fieldTypeOf(node)`)
 */
export function columnarField(node: SchemaTree, type: FieldType): boolean {
  if (node.children.length > 0 || !STREAM_TYPES.has(type)) return false;
  const e = node.element;
  if (e.repetition_type === 'REPEATED' || e.type === 'INT96') return false;
  const lt = e.logical_type;
  const ct = e.converted_type;
  if (lt?.type === 'FLOAT16' || lt?.type === 'TIME' || lt?.type === 'UUID') return false;
  if (ct === 'TIME_MILLIS' || ct === 'TIME_MICROS' || ct === 'UINT_64') return false;
  if (lt?.type === 'INTEGER' && !lt.isSigned && lt.bitWidth === 64) return false;
  if (type === 'string' && e.type !== 'BYTE_ARRAY') return false;
  return true;
}

/**
 * Epoch ms, floored (an instant before 1970 lands in the millisecond that contains it), of the
 * int64 timestamps `from .. from + n - 1` in `unit` (flechette's TimeUnit: 0 s, 1 ms, 2 µs, 3 ns):
 * one pass over the 32-bit halves (`words`, little-endian pairs of the same buffer as `big`), a
 * BigInt only for values beyond ±2^53 in the unit. A null row (bit clear in `validity`) is NaN.
 * @returns a new Float64Array of `n` values
 */
export function epochMs(
  words: Int32Array,
  big: BigInt64Array,
  from: number,
  n: number,
  unit: number,
  validity: Uint8Array | undefined,
): Float64Array {
  const f = new Float64Array(n);
  const d = UNITS_PER_MS[unit];
  const mul = MS_PER_UNIT[unit];
  for (let i = 0; i < n; i++) {
    const j = from + i;
    if (validity !== undefined && ((validity[j >> 3] >> (j & 7)) & 1) === 0) {
      f[i] = Number.NaN;
      continue;
    }
    const hi = words[2 * j + 1];
    let q: number;
    if (hi > SAFE_HI || hi < -SAFE_HI) {
      const b = big[j];
      if (unit <= 1) q = Number(b) * mul;
      else {
        const bd = BigInt(d);
        const bq = b / bd;
        q = Number(b < 0n && bq * bd !== b ? bq - 1n : bq);
      }
    } else {
      const x = hi * TWO32 + (words[2 * j] >>> 0);
      if (unit <= 1) q = x * mul;
      else {
        q = Math.floor(x / d);
        if (q * d > x) q -= 1;
        else if ((q + 1) * d <= x) q += 1;
      }
    }
    f[i] = q;
  }
  return f;
}

/**
 * Dictionary codes of rows `s .. s + n - 1` of a utf8 / large utf8 array straight from its UTF-8
 * bytes: an open-addressing hash (FNV-1a over the bytes) finds each distinct string's first row;
 * only distinct strings are decoded. Strings of at most 3 bytes (codes such as airports,
 * countries) are one integer (length and bytes) in a second table: no byte loop, no byte
 * comparison. Codes are numbered in the order of first appearance; a null row (bit clear in
 * `valid`) is -1.
 * @param off the offsets as 32-bit words, `step` words per offset (2: int64 offsets, low words)
 */
export function utf8Codes(
  bytes: Uint8Array,
  off: Int32Array,
  step: number,
  s: number,
  n: number,
  valid: Uint8Array | undefined,
): { codes: Int32Array; values: readonly string[] } {
  const codes = new Int32Array(n);
  const values: string[] = [];
  const firstStart: number[] = [];
  const firstEnd: number[] = [];
  let cap = 1024;
  let table = new Int32Array(cap).fill(-1);
  let hashes: number[] = [];
  const decoder = new TextDecoder();
  // Short strings: key = len * 256^len + bytes (disjoint ranges per length, below 2^26).
  let scap = 1024;
  let skeys = new Int32Array(scap).fill(-1);
  let scodes = new Int32Array(scap);
  let shorts = 0;
  const sslot = (k: number, mask: number): number => {
    let h = Math.imul(k ^ (k >>> 13), 0x5bd1e995);
    h ^= h >>> 15;
    return h & mask;
  };
  // The last short key and its code: runs of equal values (sorted or clustered columns) skip the hash.
  let lastK = -1;
  let lastCode = -1;
  for (let i = 0; i < n; i++) {
    const j = s + i;
    if (valid !== undefined && ((valid[j >> 3] >> (j & 7)) & 1) === 0) {
      codes[i] = -1;
      continue;
    }
    const a = off[j * step];
    const b = off[(j + 1) * step];
    const len = b - a;
    if (len <= 3) {
      const k =
        len === 3
          ? 0x3000000 + bytes[a] * 65536 + bytes[a + 1] * 256 + bytes[a + 2]
          : len === 2
            ? 0x20000 + bytes[a] * 256 + bytes[a + 1]
            : len === 1
              ? 0x100 + bytes[a]
              : 0;
      if (k === lastK) {
        codes[i] = lastCode;
        continue;
      }
      let slot = sslot(k, scap - 1);
      let code = -1;
      for (;;) {
        const x = skeys[slot];
        if (x === -1) break;
        if (x === k) {
          code = scodes[slot];
          break;
        }
        slot = (slot + 1) & (scap - 1);
      }
      if (code === -1) {
        code = values.length;
        values.push(decoder.decode(bytes.subarray(a, b)));
        firstStart.push(-1); // not in the long-string table
        firstEnd.push(-1);
        hashes.push(0);
        skeys[slot] = k;
        scodes[slot] = code;
        if (++shorts * 2 > scap) {
          const ok = skeys;
          const oc = scodes;
          scap *= 2;
          skeys = new Int32Array(scap).fill(-1);
          scodes = new Int32Array(scap);
          for (let q = 0; q < ok.length; q++) {
            if (ok[q] === -1) continue;
            let sl = sslot(ok[q], scap - 1);
            while (skeys[sl] !== -1) sl = (sl + 1) & (scap - 1);
            skeys[sl] = ok[q];
            scodes[sl] = oc[q];
          }
        }
      }
      codes[i] = code;
      lastK = k;
      lastCode = code;
      continue;
    }
    let h = 0x811c9dc5;
    for (let p = a; p < b; p++) h = Math.imul(h ^ bytes[p], 0x01000193);
    let slot = h & (cap - 1);
    let code = -1;
    for (;;) {
      const c = table[slot];
      if (c === -1) break;
      if (hashes[c] === h && firstEnd[c] - firstStart[c] === b - a) {
        let eq = true;
        const fa = firstStart[c];
        for (let p = 0; p < b - a; p++)
          if (bytes[fa + p] !== bytes[a + p]) {
            eq = false;
            break;
          }
        if (eq) {
          code = c;
          break;
        }
      }
      slot = (slot + 1) & (cap - 1);
    }
    if (code === -1) {
      code = values.length;
      values.push(decoder.decode(bytes.subarray(a, b)));
      firstStart.push(a);
      firstEnd.push(b);
      hashes.push(h);
      table[slot] = code;
      if (values.length * 2 > cap) {
        cap *= 2;
        table = new Int32Array(cap).fill(-1);
        for (let c = 0; c < values.length; c++) {
          if (firstStart[c] < 0) continue; // a short string
          let sl = hashes[c] & (cap - 1);
          while (table[sl] !== -1) sl = (sl + 1) & (cap - 1);
          table[sl] = c;
        }
      }
    }
    codes[i] = code;
  }
  hashes = [];
  return { codes, values };
}

type Kind = 'int32' | 'int64' | 'float' | 'bool' | 'utf8' | 'large-utf8' | 'dict' | 'timestamp';

/**
 * One column of a decoded row group, rows `start .. start + length - 1` of its Arrow batch.
 * `typed` is set: every non-null value is of the column's stream type, so `float64()` and
 * `dictionary()` give the column exactly.
 */
export class DecodedColumn implements Column {
  readonly typed = true;
  private f64: Float64Array | null | undefined;
  private i64: Int64Buffer | null | undefined;
  private dict: { codes: Int32Array; values: readonly string[] } | undefined;
  private vals: unknown[] | undefined;
  private readonly words: Int32Array | undefined;
  private readonly valid: Uint8Array | undefined;

  private constructor(
    readonly type: FieldType,
    private readonly kind: Kind,
    private readonly data: ArrowData,
    private readonly start: number,
    readonly length: number,
  ) {
    this.valid = data.nullCount > 0 && data.validity && data.validity.length > 0 ? data.validity : undefined;
    if (kind === 'int64' || (kind === 'timestamp' && data.ms === undefined)) {
      const v = data.values;
      this.words = new Int32Array(v.buffer, v.byteOffset, v.length * 2);
    }
  }

  /**
   * A column over rows `start .. start + length - 1` of one flechette batch, or undefined when its
   * Arrow type is not one this module reproduces exactly (the caller then uses the row reader).
   * @param type the stream type from the Parquet schema (`fieldTypeOf`)
   */
  static of(type: FieldType, data: ArrowData, start: number, length: number): DecodedColumn | undefined {
    const t = data.type;
    let kind: Kind | undefined;
    switch (t.typeId) {
      case T_INT:
        if (type !== 'int64') return undefined;
        if (t.bitWidth === 64) kind = t.signed ? 'int64' : undefined;
        else kind = 'int32';
        break;
      case T_FLOAT:
        kind = type === 'float64' && t.precision !== 0 ? 'float' : undefined;
        break;
      case T_BOOL:
        kind = type === 'boolean' ? 'bool' : undefined;
        break;
      case T_UTF8:
        kind = type === 'string' ? 'utf8' : undefined;
        break;
      case T_LARGE_UTF8:
        kind = type === 'string' ? 'large-utf8' : undefined;
        break;
      case T_DICTIONARY: {
        const d = data.dictionary?.data[0];
        kind =
          type === 'string' && (d === undefined || d.type.typeId === T_UTF8 || d.type.typeId === T_LARGE_UTF8)
            ? 'dict'
            : undefined;
        break;
      }
      case T_TIMESTAMP:
        kind = type === 'timestamp' || type === 'timestamptz' ? 'timestamp' : undefined;
        break;
    }
    return kind === undefined ? undefined : new DecodedColumn(type, kind, data, start, length);
  }

  /** A view of rows `from .. from + n - 1` of this column (no copy). */
  slice(from: number, n: number): DecodedColumn {
    return new DecodedColumn(this.type, this.kind, this.data, this.start + from, n);
  }

  private validAt(j: number): boolean {
    const v = this.valid;
    return v === undefined || ((v[j >> 3] >> (j & 7)) & 1) === 1;
  }

  isNull(i: number): boolean {
    const j = this.start + i;
    if (!this.validAt(j)) return true;
    if (this.kind === 'float') return !Number.isFinite(this.data.values[j]);
    return false;
  }

  /** int64 word pair j as an exact number, or undefined beyond ±(2^53 − 1). */
  private int64At(j: number): number | undefined {
    const w = this.words as Int32Array;
    const hi = w[2 * j + 1];
    if (hi > SAFE_HI || hi < -SAFE_HI) return undefined;
    return hi * TWO32 + (w[2 * j] >>> 0);
  }

  /** Timestamp j as epoch ms, floored. */
  private tsAt(j: number): number {
    const unit = this.data.type.unit ?? 1;
    const n = this.int64At(j);
    if (n !== undefined) {
      if (unit <= 1) return n * MS_PER_UNIT[unit];
      const d = UNITS_PER_MS[unit];
      let q = Math.floor(n / d);
      if (q * d > n) q -= 1;
      else if ((q + 1) * d <= n) q += 1;
      return q;
    }
    const big = (this.data.values as unknown as BigInt64Array)[j];
    if (unit <= 1) return Number(big) * MS_PER_UNIT[unit];
    const d = BigInt(UNITS_PER_MS[unit]);
    const q = big / d;
    return Number(big < 0n && q * d !== big ? q - 1n : q);
  }

  get(i: number): unknown {
    const j = this.start + i;
    if (!this.validAt(j)) return null;
    switch (this.kind) {
      case 'int32':
        return this.data.values[j];
      case 'int64': {
        const n = this.int64At(j);
        if (n !== undefined) return n;
        const b = (this.data.values as unknown as BigInt64Array)[j];
        const x = Number(b);
        return Number.isSafeInteger(x) ? x : b.toString();
      }
      case 'float': {
        const x = this.data.values[j];
        return Number.isFinite(x) ? x : null;
      }
      case 'bool':
        return ((this.data.values[j >> 3] >> (j & 7)) & 1) === 1;
      case 'timestamp':
        return this.data.ms !== undefined ? this.data.ms[j] : this.tsAt(j);
      default: {
        const d = this.dictionary() as { codes: Int32Array; values: readonly string[] };
        return d.values[d.codes[i]];
      }
    }
  }

  float64(): Float64Array | undefined {
    if (this.f64 === undefined) {
      if (this.kind === 'timestamp') this.convertTimestamps();
      else this.f64 = this.toFloat64() ?? null;
    }
    return this.f64 ?? undefined;
  }

  /**
   * int64, timestamp and timestamptz columns: the values as Arrow's int64 buffer (`Int64Buffer`,
   * batch.ts): int64 values as they are (a view, no copy), timestamps in epoch ms floored as
   * `get` gives them (a view when the Parquet unit is ms). Undefined for other kinds.
   */
  int64(): Int64Buffer | undefined {
    if (this.i64 === undefined) {
      const k = this.kind;
      const unit = this.data.type.unit ?? 1;
      if (k === 'int64' || (k === 'timestamp' && unit === 1 && this.data.ms === undefined)) {
        const v = this.data.values as unknown as BigInt64Array;
        this.i64 = { values: v.subarray(this.start, this.start + this.length), ...this.sliceValidity() };
      } else if (k === 'timestamp') this.i64 = this.msWords();
      else this.i64 = null;
    }
    return this.i64 ?? undefined;
  }

  /** The validity bitmap of this slice's rows (bit i: row i is not null) and its null count. */
  private sliceValidity(): { validity: Uint8Array | undefined; nulls: number } {
    const v = this.valid;
    if (v === undefined) return { validity: undefined, nulls: 0 };
    const s = this.start;
    const n = this.length;
    let nulls = 0;
    for (let i = 0; i < n; i++) if (((v[(s + i) >> 3] >> ((s + i) & 7)) & 1) === 0) nulls++;
    if (nulls === 0) return { validity: undefined, nulls: 0 };
    if ((s & 7) === 0) return { validity: v.subarray(s >> 3, (s + n + 7) >> 3), nulls };
    const out = new Uint8Array((n + 7) >> 3);
    for (let i = 0; i < n; i++) if ((v[(s + i) >> 3] >> ((s + i) & 7)) & 1) out[i >> 3] |= 1 << (i & 7);
    return { validity: out, nulls };
  }

  /**
   * A timestamp column's epoch ms, floored, as a Float64Array (NaN: null), kept as `float64()`:
   * one pass over the 32-bit halves, a BigInt only for values beyond ±2^53 in the column's unit.
   * The int64 form (`msWords`) is derived from it only when an encoder asks for it (the window
   * reads event time only, so under `kappa run` it is never built).
   */
  private convertTimestamps(): void {
    const ms = this.data.ms;
    if (ms !== undefined) {
      this.f64 = ms.subarray(this.start, this.start + this.length);
      return;
    }
    const v = this.data.values as unknown as BigInt64Array;
    const unit = this.data.type.unit ?? 1;
    this.f64 = epochMs(this.words as Int32Array, v, this.start, this.length, unit, this.valid);
  }

  /**
   * A timestamp column whose Parquet unit is not ms: its epoch ms (`float64()`, integers) as an
   * int64 buffer with the slice's validity. Null rows hold 0.
   */
  private msWords(): Int64Buffer {
    const f = this.float64() as Float64Array;
    const n = this.length;
    const words = new Int32Array(2 * n);
    for (let i = 0; i < n; i++) {
      const q = f[i];
      if (Number.isNaN(q)) continue; // null
      const qh = Math.floor(q / TWO32);
      words[2 * i] = (q - qh * TWO32) | 0;
      words[2 * i + 1] = qh;
    }
    return { values: new BigInt64Array(words.buffer, 0, n), ...this.sliceValidity() };
  }

  private toFloat64(): Float64Array | undefined {
    const k = this.kind;
    if (k !== 'int32' && k !== 'int64' && k !== 'float') return undefined;
    const n = this.length;
    const s = this.start;
    const valid = this.valid;
    if (k === 'float' && this.data.values instanceof Float64Array && valid === undefined) {
      // Float64 without nulls: a copy of the buffer, then ±Infinity to NaN (JSON has no such numbers).
      const a = this.data.values.slice(s, s + n);
      for (let i = 0; i < n; i++) if (a[i] - a[i] !== 0) a[i] = Number.NaN;
      return a;
    }
    const a = new Float64Array(n);
    const vals = this.data.values;
    if (k === 'int32' || k === 'float') {
      for (let i = 0; i < n; i++) a[i] = vals[s + i];
      if (k === 'float') for (let i = 0; i < n; i++) if (a[i] - a[i] !== 0) a[i] = Number.NaN;
    } else {
      const w = this.words as Int32Array;
      for (let i = 0; i < n; i++) {
        const j = s + i;
        const hi = w[2 * j + 1];
        if (hi > SAFE_HI || hi < -SAFE_HI) {
          if (this.validAt(j)) return undefined; // beyond ±2^53: callers use get() or int64()
          a[i] = Number.NaN;
        } else a[i] = hi * TWO32 + (w[2 * j] >>> 0);
      }
    }
    if (valid !== undefined)
      for (let i = 0; i < n; i++) if (((valid[(s + i) >> 3] >> ((s + i) & 7)) & 1) === 0) a[i] = Number.NaN;
    return a;
  }

  dictionary(): { codes: Int32Array; values: readonly string[] } | undefined {
    const k = this.kind;
    if (k !== 'utf8' && k !== 'large-utf8' && k !== 'dict') return undefined;
    if (!this.dict) {
      const whole = this.data.codes;
      const ready = this.data.slices?.find((x) => x.start === this.start && x.codes.length === this.length);
      this.dict =
        k === 'dict'
          ? this.fromArrowDictionary()
          : ready
            ? { codes: ready.codes, values: ready.values }
            : whole
              ? sliceCodes(whole, this.start, this.length)
              : this.encodeBytes();
    }
    return this.dict;
  }

  private fromArrowDictionary(): { codes: Int32Array; values: readonly string[] } {
    const n = this.length;
    const codes = new Int32Array(n);
    const src = this.data.values;
    for (let i = 0; i < n; i++) codes[i] = this.validAt(this.start + i) ? src[this.start + i] : -1;
    const values = Array.from(this.data.dictionary?.toArray() ?? [], (v) => String(v));
    return { codes, values };
  }

  /** Dictionary codes of this slice's rows from the UTF-8 bytes (`utf8Codes`). */
  private encodeBytes(): { codes: Int32Array; values: readonly string[] } {
    const bytes = this.data.values as unknown as Uint8Array;
    const o = this.data.offsets as NonNullable<ArrowData['offsets']>;
    // LargeUtf8 offsets are int64: read their low words (a batch's bytes stay below 2 GiB).
    const step = o.BYTES_PER_ELEMENT === 8 ? 2 : 1;
    const off = new Int32Array(o.buffer, o.byteOffset, o.length * step);
    return utf8Codes(bytes, off, step, this.start, this.length, this.valid);
  }

  /** All values as the stream carries them (for building rows), computed once. */
  values(): unknown[] {
    if (this.vals) return this.vals;
    const n = this.length;
    const out = new Array<unknown>(n);
    const d = this.dictionary();
    if (d) {
      for (let i = 0; i < n; i++) {
        const c = d.codes[i];
        out[i] = c < 0 ? null : d.values[c];
      }
    } else {
      const f = this.kind === 'bool' ? undefined : this.float64();
      if (f) for (let i = 0; i < n; i++) out[i] = Number.isNaN(f[i]) ? null : f[i];
      else for (let i = 0; i < n; i++) out[i] = this.get(i);
    }
    this.vals = out;
    return out;
  }
}

/**
 * The dictionary of rows `s .. s + n - 1` from a producer's codes over the whole array
 * (`ArrowData.codes`): the codes renumbered in the order of first appearance within the slice, so
 * the slice gets the codes and values `utf8Codes` would give for its rows alone (strings shared,
 * none decoded). Null rows (-1) stay -1.
 */
export function sliceCodes(
  whole: { codes: Int32Array; values: readonly string[] },
  s: number,
  n: number,
): { codes: Int32Array; values: readonly string[] } {
  if (s === 0 && n === whole.codes.length) return whole;
  const local = new Int32Array(whole.values.length).fill(-1);
  const codes = new Int32Array(n);
  const values: string[] = [];
  const src = whole.codes;
  for (let i = 0; i < n; i++) {
    const c = src[s + i];
    if (c < 0) {
      codes[i] = -1;
      continue;
    }
    let l = local[c];
    if (l < 0) {
      l = values.length;
      local[c] = l;
      values.push(whole.values[c]);
    }
    codes[i] = l;
  }
  return { codes, values };
}
