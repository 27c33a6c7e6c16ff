/**
 * CSV and TSV readers (formats `csv` and `tsv`): a streaming RFC 4180 tokenizer written for the
 * hot path that keeps the location and raw text of every record. It reads the bytes of each input
 * chunk, not a decoded string (issue 14): fields are byte ranges; numbers are parsed from their
 * digits; the strings of a string column are looked up by their bytes in a per-column dictionary
 * (`ByteDictionary`) and decoded once per distinct value. Measured on the 3M-flight CSV (108 MB):
 * 1.2 CPU s to columns, reading included (the string tokenizer before: 2.2 s; csv-parse as
 * configured before that: ~35k rows/s).
 * - The first record is the header: it names the fields. Duplicate names are renamed as DuckDB's
 *   `read_csv` does (case-insensitively: `a,b,a` -> `a`, `b`, `a_1`; `a,a_1,a` -> `a`, `a_1`,
 *   `a_1_1`); an empty name is `column<i>` (0-based position), also as DuckDB does.
 * - Quoted fields (RFC 4180): embedded delimiters, doubled quotes and line breaks; a UTF-8 BOM is
 *   dropped; empty lines are skipped; records end at `\n` or `\r\n`.
 * - Values: an empty unquoted field is `null` (an empty quoted field `""` is the empty string); a
 *   field is a number only when it round-trips exactly (`String(Number(s)) === s`, finite), so
 *   `00123`, `1.50` and `1e3` stay strings; everything else is a string.
 * - A bad row is a record with a different number of fields than the header, a quote inside an
 *   unquoted field, text after a closing quote, or a quote never closed before the end of input.
 *   It is located by the line on which the record starts (records can span lines); its raw text is
 *   the record's original line(s), including its line break (for a quoting error: through the end
 *   of the line holding the error, where reading resumes; for an unclosed quote: the rest of the
 *   input).
 * - `--delimiter` sets the field delimiter: default `,` for csv and a tab for tsv.
 * - Columns (issue 14): the cells of each input chunk go straight into columns (`CsvColumn`), and a
 *   chunk without bad rows carries them as `RowBatch.columns` (numbers as a typed Float64Array,
 *   int64 when every value is an integer within ±(2^53 − 1); strings as dictionary codes; a
 *   column with both, or only nulls, as plain `json` values, as `batchFromRecords` would type
 *   them); its rows are built from the columns only when `rows` is read. Checked against the
 *   row rule on random CSV in test/unit/csv-columns.test.ts.
 *
 * Why not a library: csv-parse with per-field casting, `info` and `raw` ran at 35k rows/s here;
 * udsv 0.7.3 (2–5 M rows/s, about what this tokenizer does now) has no record locations, merges surplus fields into the last one
 * (`2,x,extra` -> `s: "x,extra"`) and silently drops the rest of the input after an unclosed quote,
 * so bad rows could neither be found nor located.
 */
import type { Location } from '../errors.js';
import { DataError } from '../errors.js';
import { displayName, type ObjectStore } from '../storage/store.js';
import {
  ArrayColumn,
  type Column,
  DictionaryColumn,
  Float64Column,
  type ValueColumns,
} from '../stream/batch.js';
import { stageReadColumns } from '../stream/direct.js';
import { decompressed } from './compression.js';
import type { FileOffset, FormatReader, OpenedFile, ReadOptions, RowBatch } from './format.js';
import { bytesFrom, lineAligned, skipRows } from './seek.js';

/** A CSV field as a stream value (see the module comment). */
export function csvValue(s: string, quoted: boolean): string | number | null {
  if (s.length === 0) return quoted ? '' : null;
  const c = s.charCodeAt(0);
  // Only strings starting like a number can round-trip: digit, '-' or '.'.
  if ((c >= 48 && c <= 57) || c === 45 || c === 46) {
    const n = Number(s);
    if (Number.isFinite(n) && String(n) === s) return n;
  }
  return s;
}

/**
 * Unique field names from a header, by DuckDB's rule (checked against DuckDB 1.5 in the tests):
 * an empty name becomes `column<i>`; a name already taken (case-insensitively) gets `_<k>`, where
 * k counts the earlier uses of that name, and the result is deduplicated again by the same rule.
 * @param names header fields in order
 * @returns names of the same length, pairwise distinct ignoring case
 */
export function dedupeHeader(names: readonly string[]): string[] {
  const seen = new Map<string, number>();
  const unique = (name: string): string => {
    const low = name.toLowerCase();
    const k = seen.get(low);
    if (k === undefined) {
      seen.set(low, 1);
      return name;
    }
    seen.set(low, k + 1);
    return unique(`${name}_${k}`);
  };
  return names.map((n, i) => unique(n === '' ? `column${i}` : n));
}

type RowBuilder = (v: unknown[]) => Record<string, unknown>;

/**
 * Builds one row object from a values array. Generated as a single object literal so all rows of
 * a file share one hidden class; a loop for names an object literal cannot carry (`__proto__`).
 */
function rowBuilder(names: string[]): RowBuilder {
  if (names.includes('__proto__'))
    return (v) => {
      const o: Record<string, unknown> = {};
      for (let c = 0; c < names.length; c++)
        Object.defineProperty(o, names[c], { value: v[c], enumerable: true, writable: true });
      return o;
    };
  const body = `return {${names.map((n, c) => `${JSON.stringify(n)}: v[${c}]`).join(',')}};`;
  return new Function('v', body) as RowBuilder;
}

const LF = 10;
const CR = 13;
const QUOTE = 34;
/**
 * Longest record buffered while waiting for its end, in bytes (CSV) or UTF-16 characters (the
 * NDJSON array reader): past it an unclosed quote would otherwise buffer the rest of the file.
 */
export const MAX_RECORD_CHARS = 64 * 2 ** 20;
/** Whether `b` starts like a UTF-8 BOM (EF BB BF; all of it when it has 3 bytes or more). */
function isBomStart(b: Buffer): boolean {
  return (
    (b.length < 1 || b[0] === 0xef) && (b.length < 2 || b[1] === 0xbb) && (b.length < 3 || b[2] === 0xbf)
  );
}

/** The tokenizer needs more input to finish the record starting at the current position. */
const MORE = -1;

/** A field of the tokenizer's output: bytes [start, end) of the buffer, not quoted. */
const RAW = 0;
/** Bytes [start, end) of a quoted field without doubled quotes (its text as is). */
const QRAW = 1;
/** A quoted field with doubled quotes: its unescaped text is in `strs`. */
const TEXT = 2;

/**
 * The tokenizer: finds records in the bytes of a chunk, one call per record, without decoding
 * them (issue 14: decoding the chunk to a string and slicing a string per field cost about half
 * of the reader). For each field of the last record it gives its byte range (`starts`, `ends`)
 * and kind (RAW, QRAW, or TEXT with the text in `strs`). The delimiter may be any one character
 * (a multi-byte UTF-8 sequence is matched whole; UTF-8 never matches inside another character).
 */
class Tokenizer {
  starts = new Int32Array(64);
  ends = new Int32Array(64);
  kinds = new Uint8Array(64);
  readonly strs: string[] = [];
  /** Number of fields of the last record. */
  count = 0;
  /** Line feeds consumed by the last record, its final one included. */
  lfs = 0;
  /** Why the last record is bad (quoting), or undefined. */
  error: string | undefined;
  private buf: Buffer = Buffer.alloc(0);
  private readonly delim: Buffer;
  private readonly d0: number;

  constructor(delim: string) {
    this.delim = Buffer.from(delim, 'utf8');
    this.d0 = this.delim[0];
  }

  /** Starts on a new buffer (positions restart at 0). */
  reset(buf: Buffer): void {
    this.buf = buf;
  }

  /** The text of field f of the last record. */
  text(f: number): string {
    return this.kinds[f] === TEXT ? this.strs[f] : this.buf.toString('utf8', this.starts[f], this.ends[f]);
  }

  /** Whether the delimiter starts at byte i (its first byte is known to match). */
  private delimAt(i: number): boolean {
    const d = this.delim;
    for (let k = 1; k < d.length; k++) if (this.buf[i + k] !== d[k]) return false;
    return true;
  }

  /**
   * Reads the record starting at `p` (not at an empty line).
   * @param final no more input follows the buffer
   * @returns the position after the record (after its line break), or MORE
   */
  record(p: number, final: boolean): number {
    const b = this.buf;
    const n = b.length;
    const d0 = this.d0;
    const dl = this.delim.length;
    this.count = 0;
    this.error = undefined;
    // Fast path: a line without quotes, split at the delimiters.
    let s = p;
    for (let i = p; ; i++) {
      if (i >= n) {
        if (!final) return MORE;
        this.push(s, n > s && b[n - 1] === CR ? n - 1 : n, RAW);
        this.lfs = 0;
        return n;
      }
      const c = b[i];
      if (c === d0 && (dl === 1 || this.delimAt(i))) {
        this.push(s, i, RAW);
        i += dl - 1;
        s = i + 1;
      } else if (c === LF) {
        this.push(s, i > s && b[i - 1] === CR ? i - 1 : i, RAW);
        this.lfs = 1;
        return i + 1;
      } else if (c === QUOTE) break;
    }
    this.count = 0;
    const end = this.slow(p, final);
    if (end !== MORE) this.lfs = countLf(b, p, end);
    return end;
  }

  private push(start: number, end: number, kind: number): void {
    const f = this.count++;
    if (f >= this.starts.length) {
      this.starts = grown(this.starts, new Int32Array(2 * f));
      this.ends = grown(this.ends, new Int32Array(2 * f));
      this.kinds = grown(this.kinds, new Uint8Array(2 * f));
    }
    this.starts[f] = start;
    this.ends[f] = end;
    this.kinds[f] = kind;
  }

  /** A record with quotes, possibly spanning lines. */
  private slow(p: number, final: boolean): number {
    const b = this.buf;
    const n = b.length;
    const d0 = this.d0;
    const dl = this.delim.length;
    let i = p;
    for (;;) {
      if (i < n && b[i] === QUOTE) {
        const first = i + 1;
        let s = first;
        let text: string | undefined;
        for (;;) {
          const q = b.indexOf(QUOTE, s);
          if (q < 0) {
            if (!final) return MORE;
            this.error = 'a quoted field is not closed before the end of the input';
            return n;
          }
          if (q + 1 >= n && !final) return MORE;
          if (b[q + 1] === QUOTE) {
            // A quote is ASCII: the pieces between quotes are whole UTF-8 sequences.
            text = (text ?? '') + b.toString('utf8', s, q + 1);
            s = q + 2;
            continue;
          }
          if (text === undefined) this.push(first, q, QRAW);
          else {
            this.strs[this.count] = text + b.toString('utf8', s, q);
            this.push(0, 0, TEXT);
          }
          i = q + 1;
          break;
        }
        if (i >= n) return n;
        const c = b[i];
        if (c === d0 && (dl === 1 || this.delimAt(i))) {
          i += dl;
          continue;
        }
        if (c === LF) return i + 1;
        if (c === CR) {
          if (i + 1 >= n) return final ? n : MORE;
          if (b[i + 1] === LF) return i + 2;
        }
        return this.fail(
          i,
          `text after a closing quote (${JSON.stringify(charAt(b, i))}); double quotes inside a quoted field`,
          final,
        );
      }
      // Unquoted field: up to the delimiter, the line break or the end.
      let j = i;
      for (;;) {
        if (j >= n) {
          if (!final) return MORE;
          this.push(i, j, RAW);
          return n;
        }
        const c = b[j];
        if (c === d0 && (dl === 1 || this.delimAt(j))) {
          this.push(i, j, RAW);
          i = j + dl;
          break;
        }
        if (c === LF) {
          this.push(i, j > i && b[j - 1] === CR ? j - 1 : j, RAW);
          return j + 1;
        }
        if (c === QUOTE)
          return this.fail(
            j,
            'a quote inside an unquoted field; quote the whole field and double the quote',
            final,
          );
        j++;
      }
    }
  }

  /** Marks the record bad; reading resumes after the line break that follows the error. */
  private fail(at: number, why: string, final: boolean): number {
    const nl = this.buf.indexOf(LF, at);
    if (nl < 0 && !final) return MORE;
    this.error = why;
    return nl < 0 ? this.buf.length : nl + 1;
  }
}

/** The first UTF-16 unit of the character whose UTF-8 encoding starts at byte i. */
function charAt(b: Buffer, i: number): string {
  const c = b[i];
  const len = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
  return b.toString('utf8', i, Math.min(b.length, i + len))[0];
}

/** Number of `\n` bytes in b[from, to). */
function countLf(b: Buffer, from: number, to: number): number {
  let k = 0;
  for (let i = from; i < to; i++) if (b[i] === LF) k++;
  return k;
}

/**
 * The number a field's bytes stand for (`csvValue`'s rule), or undefined for a string: plain
 * integers of up to 15 digits (exact in a double) from their digits; anything else starting like
 * a number through `Number` and the round trip `String(n) === text`.
 */
function numberAt(b: Buffer, s: number, e: number): number | undefined {
  const neg = b[s] === 45;
  const i = neg ? s + 1 : s;
  const digits = e - i;
  if (digits >= 1 && digits <= 15) {
    let v = 0;
    let j = i;
    for (; j < e; j++) {
      const d = b[j] - 48;
      if (d < 0 || d > 9) break;
      v = v * 10 + d;
    }
    if (j === e) {
      if (b[i] === 48 && (digits > 1 || neg)) return undefined; // 007, -0: no round trip
      return neg ? -v : v;
    }
  }
  // Only digits, '.', 'e', 'E', '+' and '-' can make a number that round-trips (times like
  // 2001-01-01T00:00:00Z are rejected here, without a string).
  for (let j = s; j < e; j++) {
    const c = b[j];
    if (!((c >= 48 && c <= 57) || c === 46 || c === 101 || c === 69 || c === 43 || c === 45))
      return undefined;
  }
  const t = b.toString('latin1', s, e);
  const x = Number(t);
  return Number.isFinite(x) && String(x) === t ? x : undefined;
}

/**
 * A CSV field's value (`csvValue`) with a fast path for plain integers of up to 15 digits (exact
 * in a double; `String(n) === s` holds unless there is a leading zero or the text is `-0`).
 */
function cellValue(s: string, quoted: boolean): string | number | null {
  const len = s.length;
  if (len === 0) return quoted ? '' : null;
  let i = 0;
  if (s.charCodeAt(0) === 45) i = 1;
  const digits = len - i;
  if (digits >= 1 && digits <= 15) {
    let v = 0;
    let j = i;
    for (; j < len; j++) {
      const d = s.charCodeAt(j) - 48;
      if (d < 0 || d > 9) break;
      v = v * 10 + d;
    }
    if (j === len) {
      if (s.charCodeAt(i) === 48 && (digits > 1 || i === 1)) return s; // 007, -0: no round trip
      return i === 1 ? -v : v;
    }
  }
  return csvValue(s, quoted);
}

/**
 * The distinct strings of a column, looked up by their UTF-8 bytes (an open-addressing hash table
 * over FNV-1a hashes; the bytes of each value kept in an arena): a cell that repeats a value costs
 * a hash and a compare, no string. A value's string is decoded once, when it is first seen. Bytes
 * that are not valid UTF-8 can decode to the string of other bytes (U+FFFD): such strings get the
 * code of the first, so `values` stays pairwise distinct.
 */
class ByteDictionary {
  /** The distinct strings, in first-occurrence order (value c has code c). */
  readonly values: string[] = [];
  /** Hash table of entries: entry + 1, 0: empty. */
  private table = new Int32Array(256);
  /** Per entry (distinct bytes): hash, code, and its bytes `arena[offs[k], offs[k + 1])`. */
  private hashes = new Int32Array(64);
  private codes = new Int32Array(64);
  private offs = new Int32Array(65);
  private entries = 0;
  private arena = new Uint8Array(1024);
  /** Codes of strings holding U+FFFD (the only ones different bytes can share). */
  private byText: Map<string, number> | undefined;
  /** The entry of the previous lookup. */
  private last = -1;

  /**
   * The code of the value whose bytes are b[s, e), adding it when new.
   * @param text the value's string, when the caller has it (else decoded from the bytes)
   */
  code(b: Buffer, s: number, e: number, text?: string): number {
    const len = e - s;
    const arena = this.arena;
    const offs = this.offs;
    // The previous cell's value first: sorted and repeated columns (dates, keys) skip the hash.
    const last = this.last;
    if (last >= 0 && offs[last + 1] - offs[last] === len) {
      const o = offs[last] - s;
      let j = s;
      while (j < e && arena[o + j] === b[j]) j++;
      if (j === e) return this.codes[last];
    }
    let h = 0x811c9dc5;
    for (let j = s; j < e; j++) h = Math.imul(h ^ b[j], 0x01000193);
    const table = this.table;
    const mask = table.length - 1;
    for (let slot = (h ^ (h >>> 15)) & mask; ; slot = (slot + 1) & mask) {
      const k = table[slot] - 1;
      if (k < 0) break;
      if (this.hashes[k] !== h || offs[k + 1] - offs[k] !== len) continue;
      const o = offs[k] - s;
      let j = s;
      while (j < e && arena[o + j] === b[j]) j++;
      if (j === e) {
        this.last = k;
        return this.codes[k];
      }
    }
    return this.insert(b, s, e, h, text ?? b.toString('utf8', s, e));
  }

  private insert(b: Buffer, s: number, e: number, h: number, text: string): number {
    let c = this.values.length;
    if (text.includes('\uFFFD')) {
      this.byText ??= new Map();
      const same = this.byText.get(text);
      if (same === undefined) this.byText.set(text, c);
      else c = same;
    }
    if (c === this.values.length) this.values.push(text);
    const k = this.entries++;
    if (k + 1 >= this.hashes.length) {
      this.hashes = grown(this.hashes, new Int32Array(this.hashes.length * 2));
      this.codes = grown(this.codes, new Int32Array(this.codes.length * 2));
      this.offs = grown(this.offs, new Int32Array(this.offs.length * 2));
    }
    const at = this.offs[k];
    if (at + (e - s) > this.arena.length)
      this.arena = grown(this.arena, new Uint8Array(Math.max(2 * this.arena.length, at + (e - s))));
    this.arena.set(b.subarray(s, e), at);
    this.offs[k + 1] = at + (e - s);
    this.hashes[k] = h;
    this.codes[k] = c;
    if (2 * (k + 1) > this.table.length) {
      this.table = new Int32Array(this.table.length * 2);
      for (let x = 0; x <= k; x++) this.place(x);
    } else this.place(k);
    this.last = k;
    return c;
  }

  private place(k: number): void {
    const table = this.table;
    const mask = table.length - 1;
    const h = this.hashes[k];
    let slot = (h ^ (h >>> 15)) & mask;
    while (table[slot] !== 0) slot = (slot + 1) & mask;
    table[slot] = k + 1;
  }
}

/** `into` holding `from` at its start. */
function grown<T extends Int32Array | Uint8Array | Float64Array>(from: T, into: T): T {
  into.set(from);
  return into;
}

/** Column states of a `CsvColumn`: only nulls so far, numbers, strings, or both (plain values). */
const NULLS = 0;
const NUMS = 1;
const STRS = 2;
const MIXED = 3;

/**
 * One column of a CSV chunk, built cell by cell as the tokenizer reads it (issue 14): numbers
 * into a Float64Array (NaN: null), strings as dictionary codes (-1: null) into the distinct values
 * in first-occurrence order; a column holding both becomes a plain array of values. The values are
 * exactly `csvValue`'s, so rows rebuilt from the columns are the rows the row path built.
 */
class CsvColumn {
  private state = NULLS;
  private nums: Float64Array;
  private codes: Int32Array | undefined;
  private dict: ByteDictionary | undefined;
  private values: unknown[] | undefined;
  private allInt = true;

  /** @param cap initial capacity in rows (grows by doubling) */
  constructor(cap: number) {
    this.nums = new Float64Array(cap);
  }

  /** Cell `row` (rows arrive in order, each once) is null (a bad row's placeholder). */
  addNull(row: number): void {
    this.put(null, row);
  }

  /** Cell `row` from its field text (`quoted`: it came from a quoted field). */
  add(s: string, quoted: boolean, row: number): void {
    this.put(cellValue(s, quoted), row);
  }

  /**
   * Cell `row` from its field's bytes b[s, e) (`quoted`: a quoted field, taken as is): the value
   * `add` gives for their text, without decoding them when the value is a number or a string of
   * a string column (then only its dictionary code is looked up, by bytes).
   */
  addBytes(b: Buffer, s: number, e: number, quoted: boolean, row: number): void {
    if (e > s) {
      const c = b[s];
      if ((c >= 48 && c <= 57) || c === 45 || c === 46) {
        const v = numberAt(b, s, e);
        if (v !== undefined) {
          if (this.state === NUMS) this.num(row, v);
          else this.put(v, row);
          return;
        }
      }
    } else if (!quoted) {
      this.put(null, row);
      return;
    }
    if (this.state === STRS) this.code(row, (this.dict as ByteDictionary).code(b, s, e));
    else this.put(b.toString('utf8', s, e), row);
  }

  private put(v: string | number | null, row: number): void {
    switch (this.state) {
      case NUMS:
        if (typeof v === 'number') {
          this.num(row, v);
          return;
        }
        if (v === null) {
          this.num(row, Number.NaN);
          return;
        }
        this.toMixed(row);
        break;
      case STRS:
        if (typeof v === 'string') {
          this.str(row, v);
          return;
        }
        if (v === null) {
          this.code(row, -1);
          return;
        }
        this.toMixed(row);
        break;
      case NULLS:
        if (v === null) return;
        if (typeof v === 'number') {
          this.state = NUMS;
          if (row >= this.nums.length) this.nums = new Float64Array(2 * row + 1);
          this.nums.fill(Number.NaN, 0, row);
          this.num(row, v);
        } else {
          this.state = STRS;
          this.codes = new Int32Array(Math.max(this.nums.length, 2 * row + 1));
          this.codes.fill(-1, 0, row);
          this.nums = new Float64Array(0);
          this.dict = new ByteDictionary();
          this.str(row, v);
        }
        return;
    }
    (this.values as unknown[])[row] = v;
  }

  private num(row: number, v: number): void {
    if (row >= this.nums.length) {
      const a = new Float64Array(this.nums.length * 2);
      a.set(this.nums);
      this.nums = a;
    }
    this.nums[row] = v;
    if (this.allInt && !Number.isInteger(v) && !Number.isNaN(v)) this.allInt = false;
  }

  private code(row: number, c: number): void {
    let codes = this.codes as Int32Array;
    if (row >= codes.length) {
      const a = new Int32Array(codes.length * 2);
      a.set(codes);
      this.codes = codes = a;
    }
    codes[row] = c;
  }

  private str(row: number, v: string): void {
    const b = Buffer.from(v, 'utf8');
    this.code(row, (this.dict as ByteDictionary).code(b, 0, b.length, v));
  }

  /** Rows before `row` as plain values; the column holds plain values from now on. */
  private toMixed(row: number): void {
    const values = new Array<unknown>(row);
    for (let i = 0; i < row; i++) values[i] = this.get(i);
    this.values = values;
    this.state = MIXED;
  }

  private get(i: number): unknown {
    switch (this.state) {
      case NUMS: {
        const v = this.nums[i];
        return Number.isNaN(v) ? null : v;
      }
      case STRS: {
        const c = (this.codes as Int32Array)[i];
        return c < 0 ? null : (this.dict as ByteDictionary).values[c];
      }
      case MIXED:
        return (this.values as unknown[])[i] ?? null;
      default:
        return null;
    }
  }

  /** The finished column of `n` rows. */
  finish(n: number): Column {
    switch (this.state) {
      case NUMS: {
        const f = this.nums.length === n ? this.nums : this.nums.slice(0, n);
        let int = this.allInt;
        // int64 columns give float64() only within ±(2^53 − 1): larger integers stay float64.
        if (int) for (let i = 0; i < n && int; i++) if (Math.abs(f[i]) > Number.MAX_SAFE_INTEGER) int = false;
        return new Float64Column(int ? 'int64' : 'float64', f);
      }
      case STRS: {
        const codes = this.codes as Int32Array;
        const values = (this.dict as ByteDictionary).values;
        return new DictionaryColumn(codes.length === n ? codes : codes.slice(0, n), values);
      }
      case MIXED: {
        const values = this.values as unknown[];
        values.length = n;
        return new ArrayColumn('json', values);
      }
      default:
        return new ArrayColumn('json', new Array(n).fill(null));
    }
  }
}

/**
 * The records of one CSV chunk: column-wise (`columns`, when no row of the chunk is bad), with the
 * row objects built on first use of `rows` (which then drops `columns`, as the Parquet reader's
 * batches do: a caller that changes rows is never bypassed by the columnar path). `columns` is a
 * getter over a private field, so a copy made by object spread (`sliceBatch`) has no columns.
 */
class CsvRowBatch implements RowBatch {
  #columns: ValueColumns | undefined;
  #built: (Record<string, unknown> | undefined)[] | undefined;

  constructor(
    names: readonly string[],
    private readonly cols: readonly Column[],
    private readonly build: RowBuilder,
    readonly errors: Map<number, string> | undefined,
    readonly where: (i: number) => Location,
    readonly raw: (i: number) => string,
    public bytesDone: number,
    readonly next: FileOffset,
  ) {
    if (errors) return;
    const byName = new Map(names.map((name, j) => [name, cols[j]]));
    this.#columns = {
      length: cols[0]?.length ?? 0,
      fields: names,
      complete: true,
      column: (name) => byName.get(name),
      value: (i) => this.row(i),
    };
  }

  get columns(): ValueColumns | undefined {
    return this.#columns;
  }

  private row(i: number): Record<string, unknown> {
    const cells = new Array<unknown>(this.cols.length);
    for (let f = 0; f < cells.length; f++) cells[f] = this.cols[f].get(i);
    return this.build(cells);
  }

  get rows(): (Record<string, unknown> | undefined)[] {
    if (!this.#built) {
      const n = this.cols[0]?.length ?? 0;
      const rows = new Array<Record<string, unknown> | undefined>(n);
      for (let i = 0; i < n; i++) rows[i] = this.errors?.has(i) ? undefined : this.row(i);
      this.#built = rows;
      this.#columns = undefined;
    }
    return this.#built;
  }
}

/**
 * Where a resumed CSV read starts: the input holds the file's bytes from `byte` on (the start of a
 * record, 1-based line `line`), and `header` is the file's (deduplicated) header, read before.
 */
export interface CsvStart {
  byte: number;
  line: number;
  header: string[];
}

/**
 * Parses a byte stream of CSV into RowBatches (one per input chunk), in file order. Each batch
 * carries `next`: the byte offset (of the file) and line number where the next unread record
 * starts, exact when the input comes cut at line ends (`lineAligned`, as the readers feed it).
 * @param source how locations name the input (path or `stdin`)
 * @param delimiter one character
 * @param start a resumed read (see `CsvStart`): no header is read from `input`
 * @param onHeader read only the header: called with it, then the iteration ends with no batch
 * @param only column projection (`kappa run`, commands/run.ts `sourceProjection`): only these
 *   (deduplicated) header names become columns and row fields; every record is still tokenized
 *   whole, so bad records are the same, at the same lines
 * @throws DataError when the header itself is unreadable (a quoting error in the first record)
 */
export async function* csvBatches(
  input: AsyncIterable<Uint8Array | string>,
  source: string,
  delimiter: string,
  start?: CsvStart,
  onHeader?: (header: string[]) => void,
  only?: ReadonlySet<string>,
): AsyncGenerator<RowBatch> {
  const tok = new Tokenizer(delimiter);
  let header: string[] | undefined;
  let build: RowBuilder | undefined;
  /** The header names that become fields (all without `only`). */
  let names: string[] = [];
  /** With `only`: the column of each header position (-1: not kept). */
  let colOf: Int32Array | undefined;
  const setHeader = (h: string[]) => {
    header = h;
    names = only ? h.filter((n) => only.has(n)) : h;
    colOf = only ? Int32Array.from(h.map((n) => names.indexOf(n))) : undefined;
    build = rowBuilder(names);
  };
  if (start) setHeader(start.header);
  let carry: Buffer = Buffer.alloc(0);
  let bom = true; // a leading UTF-8 BOM is dropped (as TextDecoder drops it)
  let line = start?.line ?? 1; // line number of carry's first character
  let bytes = 0;
  const byteBase = start?.byte ?? 0;
  let headerRead = false;
  /** Average record length in bytes of the last chunk (0: none yet). */
  let bytesPerRecord = 0;

  /** Parses the complete records of `text`; returns the batch and the unparsed rest. */
  const parse = (text: Buffer, final: boolean): { batch?: RowBatch; rest: Buffer } => {
    tok.reset(text);
    let cols: CsvColumn[] | undefined;
    let count = 0;
    // Per record: its first line, and its bytes [start, end) (for `where` and `raw`).
    let lines = new Float64Array(0);
    let starts = new Int32Array(0);
    let ends = new Int32Array(0);
    let errors: Map<number, string> | undefined;
    const n = text.length;
    let p = 0;
    while (p < n) {
      const c = text[p];
      if (c === LF) {
        p++;
        line++;
        continue;
      }
      if (c === CR) {
        if (p + 1 >= n && !final) break;
        if (p + 1 >= n || text[p + 1] === LF) {
          p += 2;
          line++;
          continue;
        }
      }
      const end = tok.record(p, final);
      if (end === MORE) break;
      const startLine = line;
      line += tok.lfs;
      if (header === undefined) {
        if (tok.error !== undefined)
          throw new DataError(`${source} line ${startLine}: cannot read the CSV header: ${tok.error}`);
        const texts: string[] = [];
        for (let f = 0; f < tok.count; f++) texts.push(tok.text(f));
        const h = dedupeHeader(texts);
        setHeader(h);
        p = end;
        if (onHeader) {
          onHeader(h);
          headerRead = true;
          return { rest: text.subarray(n) };
        }
        continue;
      }
      if (cols === undefined) {
        // Capacity guess: the chunk's bytes over the previous chunk's bytes per record (at first,
        // a record of one-byte fields), with 1/8 to spare; the columns grow by doubling beyond.
        const perRecord = bytesPerRecord > 0 ? bytesPerRecord : 2 * header.length;
        const guess = Math.max(16, Math.ceil(((n - p) / perRecord) * 1.125));
        cols = names.map(() => new CsvColumn(guess));
        lines = new Float64Array(guess);
        starts = new Int32Array(guess);
        ends = new Int32Array(guess);
      }
      if (count >= starts.length) {
        lines = grown(lines, new Float64Array(2 * count));
        starts = grown(starts, new Int32Array(2 * count));
        ends = grown(ends, new Int32Array(2 * count));
      }
      let why = tok.error;
      const k = tok.count;
      if (why === undefined && k !== header.length)
        why = `expected ${header.length} fields (as the header has), got ${k}`;
      if (why !== undefined) {
        errors ??= new Map();
        errors.set(count, why);
        for (let f = 0; f < cols.length; f++) cols[f].addNull(count);
      } else {
        const { kinds, strs } = tok;
        for (let f = 0; f < k; f++) {
          const c = colOf ? colOf[f] : f;
          if (c < 0) continue; // a field the projection leaves out
          const kind = kinds[f];
          if (kind === TEXT) cols[c].add(strs[f], true, count);
          else cols[c].addBytes(text, tok.starts[f], tok.ends[f], kind === QRAW, count);
        }
      }
      lines[count] = startLine;
      starts[count] = p;
      ends[count] = end;
      count++;
      p = end;
    }
    const rest = text.subarray(p);
    if (count === 0 || cols === undefined) return { rest };
    bytesPerRecord = (ends[count - 1] - starts[0]) / count;
    return {
      rest,
      batch: new CsvRowBatch(
        names,
        cols.map((c) => c.finish(count)),
        build as RowBuilder,
        errors,
        (i): Location => ({ source, line: lines[i] }),
        (i) => text.toString('utf8', starts[i], ends[i]),
        bytes,
        { byte: byteBase + bytes - rest.length, line },
      ),
    };
  };

  for await (const chunk of input) {
    const c =
      typeof chunk === 'string'
        ? Buffer.from(chunk, 'utf8')
        : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    bytes += c.length;
    let text = carry.length > 0 ? Buffer.concat([carry, c]) : c;
    if (bom) {
      if (text.length < 3 && isBomStart(text)) {
        carry = text;
        continue;
      }
      bom = false;
      if (isBomStart(text)) text = text.subarray(3);
    }
    const { batch, rest } = parse(text, false);
    carry = rest;
    if (carry.length > MAX_RECORD_CHARS)
      throw new DataError(
        `${source} line ${line}: a record longer than ${MAX_RECORD_CHARS / 2 ** 20} MiB (a quote that is never closed?)`,
        'check the quoting from that line on',
      );
    if (headerRead) return;
    if (batch) yield batch;
  }
  const { batch } = parse(bom && carry.length >= 3 && isBomStart(carry) ? carry.subarray(3) : carry, true);
  if (headerRead) return;
  if (batch) yield batch;
}

/**
 * The (deduplicated) header of a CSV byte stream, reading no further than its first record;
 * undefined for an input with no record.
 * @throws DataError when the header is unreadable
 */
export async function csvHeader(
  input: AsyncIterable<Uint8Array | string>,
  source: string,
  delimiter: string,
): Promise<string[] | undefined> {
  let header: string[] | undefined;
  for await (const _ of csvBatches(input, source, delimiter, undefined, (h) => {
    header = h;
  }))
    break;
  return header;
}

function openCsv(defaultDelimiter: string) {
  return async (store: ObjectStore, uri: string, opts: ReadOptions): Promise<OpenedFile> => {
    const name = displayName(uri);
    // Inside `kappa run`, the fields the rest of the job reads (commands/run.ts `sourceProjection`).
    const read = stageReadColumns();
    const only = read ? new Set(read) : undefined;
    const delimiter = opts.delimiter ?? defaultDelimiter;
    const at = opts.startAt;
    if (at?.byte !== undefined && at.line !== undefined && at.byte > 0) {
      // Resume: the header from the file's start, then the records from the saved byte offset.
      const header = await csvHeader(lineAligned(bytesFrom(store, uri, 0)), name, delimiter);
      if (!header)
        throw new DataError(
          `${name}: cannot resume at byte ${at.byte}: the file has no header row now (it changed since the checkpoint)`,
          'restore the input as it was, or start without --resume',
        );
      const start = { byte: at.byte, line: at.line, header };
      return {
        batches: csvBatches(
          lineAligned(bytesFrom(store, uri, at.byte)),
          name,
          delimiter,
          start,
          undefined,
          only,
        ),
      };
    }
    const all = csvBatches(
      lineAligned(decompressed(store.readStream(uri), uri)),
      name,
      delimiter,
      undefined,
      undefined,
      only,
    );
    return { batches: at && at.rows > 0 ? skipRows(all, at.rows) : all };
  };
}

/** CSV (RFC 4180, `,` unless --delimiter), plain or gzip/zstd-compressed. */
export const csvReader: FormatReader = { name: 'csv', extensions: ['csv'], open: openCsv(',') };
/** TSV (tab unless --delimiter), plain or gzip/zstd-compressed. */
export const tsvReader: FormatReader = { name: 'tsv', extensions: ['tsv', 'tab'], open: openCsv('\t') };
