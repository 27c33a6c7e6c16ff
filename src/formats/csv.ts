/**
 * CSV and TSV readers (formats `csv` and `tsv`): a streaming RFC 4180 tokenizer written for the
 * hot path (about 1.2 M rows per CPU-second on a 1M-row flights-like CSV, 36 MB; csv-parse as
 * configured before: 23 k) that keeps the location and raw text of every record.
 *
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
 * udsv 0.7.3 (2–5 M rows/s) has no record locations, merges surplus fields into the last one
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
 * Longest record buffered while waiting for its end, in UTF-16 characters: past it an unclosed
 * quote would otherwise buffer the rest of the file (V8 strings stop at 2^29 characters).
 */
export const MAX_RECORD_CHARS = 64 * 2 ** 20;
/** The tokenizer needs more input to finish the record starting at the current position. */
const MORE = -1;

/**
 * The tokenizer: finds records in text, one call per record. Values go into `vals` (cleared per
 * record); `quoted` says whether each came from a quoted field.
 */
class Tokenizer {
  readonly vals: string[] = [];
  readonly quoted: boolean[] = [];
  /** Number of fields of the last record (`vals` and `quoted` are reused, longer arrays). */
  count = 0;
  /** Line feeds consumed by the last record, its final one included. */
  lfs = 0;
  /** Why the last record is bad (quoting), or undefined. */
  error: string | undefined;
  private nextDelim = -1;
  private nextQuote = -1;
  private text = '';

  constructor(private readonly delim: string) {}

  /** Starts on a new text buffer (positions restart at 0). */
  reset(text: string): void {
    this.text = text;
    this.nextDelim = -1;
    this.nextQuote = -1;
  }

  /**
   * Reads the record starting at `p` (not at an empty line).
   * @param final no more input follows `text`
   * @returns the position after the record (after its line break), or MORE
   */
  record(p: number, final: boolean): number {
    const t = this.text;
    const n = t.length;
    this.count = 0;
    this.error = undefined;
    let nl = t.indexOf('\n', p);
    if (nl < 0) {
      if (!final) return MORE;
      nl = n;
    }
    if (this.nextQuote < p) {
      this.nextQuote = t.indexOf('"', p);
      if (this.nextQuote < 0) this.nextQuote = Number.MAX_SAFE_INTEGER;
    }
    if (this.nextQuote > nl) {
      // Fast path: a line without quotes is split at the delimiters.
      const lineEnd = nl > p && t.charCodeAt(nl - 1) === CR ? nl - 1 : nl;
      let s = p;
      for (;;) {
        if (this.nextDelim < s) {
          this.nextDelim = t.indexOf(this.delim, s);
          if (this.nextDelim < 0) this.nextDelim = Number.MAX_SAFE_INTEGER;
        }
        const d = this.nextDelim;
        if (d >= lineEnd) {
          this.push(t.slice(s, lineEnd), false);
          break;
        }
        this.push(t.slice(s, d), false);
        s = d + 1;
      }
      if (nl < n) {
        this.lfs = 1;
        return nl + 1;
      }
      this.lfs = 0;
      return n;
    }
    const end = this.slow(p, final);
    if (end !== MORE) this.lfs = countLf(t, p, end);
    return end;
  }

  private push(v: string, q: boolean): void {
    this.vals[this.count] = v;
    this.quoted[this.count++] = q;
  }

  /** A record with quotes, possibly spanning lines. */
  private slow(p: number, final: boolean): number {
    const t = this.text;
    const n = t.length;
    const dc = this.delim.charCodeAt(0);
    let i = p;
    for (;;) {
      if (t.charCodeAt(i) === QUOTE) {
        let s = i + 1;
        let val = '';
        for (;;) {
          const q = t.indexOf('"', s);
          if (q < 0) {
            if (!final) return MORE;
            this.error = 'a quoted field is not closed before the end of the input';
            return n;
          }
          if (q + 1 >= n && !final) return MORE;
          if (t.charCodeAt(q + 1) === QUOTE) {
            val += t.slice(s, q + 1);
            s = q + 2;
            continue;
          }
          val += t.slice(s, q);
          i = q + 1;
          break;
        }
        this.push(val, true);
        if (i >= n) return n;
        const c = t.charCodeAt(i);
        if (c === dc) {
          i++;
          continue;
        }
        if (c === LF) return i + 1;
        if (c === CR) {
          if (i + 1 >= n) return final ? n : MORE;
          if (t.charCodeAt(i + 1) === LF) return i + 2;
        }
        return this.fail(
          i,
          `text after a closing quote (${JSON.stringify(t[i])}); double quotes inside a quoted field`,
          final,
        );
      }
      // Unquoted field: up to the delimiter, the line break or the end.
      let j = i;
      for (;;) {
        if (j >= n) {
          if (!final) return MORE;
          this.push(t.slice(i, j), false);
          return n;
        }
        const c = t.charCodeAt(j);
        if (c === dc) {
          this.push(t.slice(i, j), false);
          i = j + 1;
          break;
        }
        if (c === LF) {
          this.push(t.slice(i, j > i && t.charCodeAt(j - 1) === CR ? j - 1 : j), false);
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
    const nl = this.text.indexOf('\n', at);
    if (nl < 0 && !final) return MORE;
    this.error = why;
    return nl < 0 ? this.text.length : nl + 1;
  }
}

/** Number of `\n` in t[from, to). */
function countLf(t: string, from: number, to: number): number {
  let k = 0;
  for (let i = t.indexOf('\n', from); i >= 0 && i < to; i = t.indexOf('\n', i + 1)) k++;
  return k;
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
  private index: Map<string, number> | undefined;
  private dict: string[] | undefined;
  private values: unknown[] | undefined;
  private allInt = true;
  private lastStr: string | undefined;
  private lastCode = -1;

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
          this.index = new Map();
          this.dict = [];
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
    // The previous row's value first: sorted and repeated columns (dates, keys) skip the hash.
    if (v === this.lastStr) {
      this.code(row, this.lastCode);
      return;
    }
    const index = this.index as Map<string, number>;
    let c = index.get(v);
    if (c === undefined) {
      const dict = this.dict as string[];
      c = dict.length;
      index.set(v, c);
      dict.push(v);
    }
    this.lastStr = v;
    this.lastCode = c;
    this.code(row, c);
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
        return c < 0 ? null : (this.dict as string[])[c];
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
        return new DictionaryColumn(codes.length === n ? codes : codes.slice(0, n), this.dict as string[]);
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
 * @throws DataError when the header itself is unreadable (a quoting error in the first record)
 */
export async function* csvBatches(
  input: AsyncIterable<Uint8Array | string>,
  source: string,
  delimiter: string,
  start?: CsvStart,
  onHeader?: (header: string[]) => void,
): AsyncGenerator<RowBatch> {
  const decoder = new TextDecoder('utf-8'); // drops a leading BOM
  const tok = new Tokenizer(delimiter);
  let header: string[] | undefined = start?.header;
  let build: RowBuilder | undefined = header ? rowBuilder(header) : undefined;
  let carry = '';
  let line = start?.line ?? 1; // line number of carry's first character
  let bytes = 0;
  const byteBase = start?.byte ?? 0;
  let headerRead = false;

  /** Parses the complete records of `text`; returns the batch and the unparsed rest. */
  const parse = (text: string, final: boolean): { batch?: RowBatch; rest: string } => {
    tok.reset(text);
    let cols: CsvColumn[] | undefined;
    let count = 0;
    const lines: number[] = [];
    const starts: number[] = [];
    const ends: number[] = [];
    let errors: Map<number, string> | undefined;
    const n = text.length;
    let p = 0;
    while (p < n) {
      const c = text.charCodeAt(p);
      if (c === LF) {
        p++;
        line++;
        continue;
      }
      if (c === CR) {
        if (p + 1 >= n && !final) break;
        if (p + 1 >= n || text.charCodeAt(p + 1) === LF) {
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
        header = dedupeHeader(tok.vals.slice(0, tok.count));
        build = rowBuilder(header);
        p = end;
        if (onHeader) {
          onHeader(header);
          headerRead = true;
          return { rest: '' };
        }
        continue;
      }
      if (cols === undefined) {
        // Capacity guess: the chunk's characters over a row of one-character fields.
        const guess = Math.max(16, Math.ceil((n - p) / (2 * header.length)));
        cols = header.map(() => new CsvColumn(guess));
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
        const vals = tok.vals;
        const quoted = tok.quoted;
        for (let f = 0; f < k; f++) cols[f].add(vals[f], quoted[f], count);
      }
      count++;
      lines.push(startLine);
      starts.push(p);
      ends.push(end);
      p = end;
    }
    const rest = text.slice(p);
    if (count === 0 || cols === undefined) return { rest };
    return {
      rest,
      batch: new CsvRowBatch(
        header as string[],
        cols.map((c) => c.finish(count)),
        build as RowBuilder,
        errors,
        (i): Location => ({ source, line: lines[i] }),
        (i) => text.slice(starts[i], ends[i]),
        bytes,
        { byte: byteBase + bytes - Buffer.byteLength(rest), line },
      ),
    };
  };

  for await (const chunk of input) {
    bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
    const text = carry + (typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }));
    const { batch, rest } = parse(text, false);
    carry = rest;
    if (carry.length > MAX_RECORD_CHARS)
      throw new DataError(
        `${source} line ${line}: a record longer than ${MAX_RECORD_CHARS / 2 ** 20} Mi characters (a quote that is never closed?)`,
        'check the quoting from that line on',
      );
    if (headerRead) return;
    if (batch) yield batch;
  }
  const { batch } = parse(carry + decoder.decode(), true);
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
      return { batches: csvBatches(lineAligned(bytesFrom(store, uri, at.byte)), name, delimiter, start) };
    }
    const all = csvBatches(lineAligned(decompressed(store.readStream(uri), uri)), name, delimiter);
    return { batches: at && at.rows > 0 ? skipRows(all, at.rows) : all };
  };
}

/** CSV (RFC 4180, `,` unless --delimiter), plain or gzip/zstd-compressed. */
export const csvReader: FormatReader = { name: 'csv', extensions: ['csv'], open: openCsv(',') };
/** TSV (tab unless --delimiter), plain or gzip/zstd-compressed. */
export const tsvReader: FormatReader = { name: 'tsv', extensions: ['tsv', 'tab'], open: openCsv('\t') };
