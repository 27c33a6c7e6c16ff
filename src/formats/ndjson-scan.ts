/**
 * NDJSON bytes straight to value columns (issue 14): a scanner over the raw bytes of each line
 * (no JS string per line, no `JSON.parse`) appends top-level values to per-field builders. It gives
 * exactly the columns `batchFromRecords` (stream/batch.ts) would give for the `JSON.parse` of each
 * line — field order (first seen), types (integers `int64`, other numbers `float64`, strings
 * `string`, booleans `boolean`, nested values `json`, a field that is only null `json`), values and
 * the `complete` flag — or undefined when they cannot be represented exactly (a line that is not a
 * JSON object, a field that changes kind, an integer beyond 2^53 at any depth, which JSON.parse has
 * rounded): the caller then takes the row path, which reports bad lines with their locations.
 *
 * The scanner handles the common shape: a line `{"k":v,…}` with JSON whitespace anywhere, keys of
 * printable ASCII without escapes, values that are strings of printable ASCII without escapes,
 * numbers, `true`, `false` or `null`. Integers of up to 15 digits are accumulated from their digits
 * (exact); every other number literal (a fraction, an exponent, 16+ digits) is `Number()` of its
 * ASCII text, which is the value `JSON.parse` gives (both are the correctly rounded double of the
 * literal; ECMA-262 StringToNumber and JSON.parse share the grammar of a JSON number). Strings are
 * dictionary-coded by their bytes: an FNV-1a hash of the byte range into an open-addressing table
 * per field, compared byte by byte against the value's JS string on a hit, so a repeated "MSY"
 * never becomes a new string (strings of up to 6 bytes first try a direct-mapped cache keyed by
 * their packed bytes). Decimals of up to 15 significant digits without an exponent are `m / 10^k`
 * (m and 10^k exact doubles: the quotient is the correctly rounded value, the exact case of W. D.
 * Clinger, "How to Read Floating Point Numbers Accurately", PLDI 1990), as JSON.parse gives them.
 *
 * Line-shape fast path: a line whose bytes between values equal those of the last line the
 * general path took (same keys in the same order, same whitespace) is scanned values only, its
 * segments compared four bytes at a time, its values written straight into the builders; at the
 * first surprise what it wrote is cleared and the general path takes the line (`fastLines`).
 *
 * Any other line — escapes, non-ASCII bytes, control characters,
 * nested values, duplicate keys, a new key that is an array index (for-in would order it first),
 * anything malformed — is decoded and `JSON.parse`d alone and appended by the same rules; a line that is not a JSON
 * object, or a field that changes kind, gives undefined for the batch.
 *
 * Lines are byte ranges of input chunks (`ByteLines`), split by `ByteLineSplitter` with the
 * semantics of `LineSplitter` (stream/lines.ts): the same lines, `\r` removal, over-long lines and
 * the same text for every line (Buffer `toString('utf8')` and StringDecoder replace invalid UTF-8
 * alike).
 */
import {
  ArrayColumn,
  type Column,
  DictionaryColumn,
  Float64Column,
  type ValueColumns,
} from '../stream/batch.js';
import { DEFAULT_MAX_LINE_BYTES, LineSplitter, type OversizedLine } from '../stream/lines.js';
import { type FieldType, jsonTooDeep } from '../stream/protocol.js';
import { hasUnsafeInteger } from './json-exact.js';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** The typed arrays these builders grow. */
type TypedArray = Int32Array | Uint8Array | Float64Array;

/** A copy of `a` in a new array of `cap` elements (cap ≥ a.length) of the same type. */
function grown<T extends TypedArray>(a: T, m: new (n: number) => T, cap: number): T {
  const b = new m(cap);
  b.set(a);
  return b;
}

/**
 * The lines of one batch as byte ranges: line i is `chunks[chunkOf[i]]` from byte `starts[i]` to
 * `ends[i]` (exclusive; no line feed, no trailing `\r`), at 1-based line number `lineNo(i)` of
 * the input. An over-long line is an empty range with an entry in `bigs`. Blank lines are not
 * rows: `add` drops them as the row path does (empty, or under 4 characters that trim to nothing).
 */
export class ByteLines {
  /** The buffers lines point into (input chunks, and lines that spanned chunks). */
  chunks: Buffer[] = [];
  chunkOf: Int32Array;
  starts: Int32Array;
  ends: Int32Array;
  private lineNos: Float64Array;
  /**
   * @param capacity lines to make room for up front (e.g. the previous batch's count, so a batch
   *   of the same size is not grown and copied on the way: 1,024 -> 16,384 -> … -> 65,536)
   */
  constructor(capacity = 1024) {
    const cap = Math.max(1024, capacity);
    this.chunkOf = new Int32Array(cap);
    this.starts = new Int32Array(cap);
    this.ends = new Int32Array(cap);
    this.lineNos = new Float64Array(cap);
  }
  /** Number of lines. */
  length = 0;
  /** The last buffer of `chunks` (`add` appends a buffer once). */
  private lastBuf: Buffer | undefined;
  /** Over-long lines by row index; undefined when none. */
  bigs: Map<number, OversizedLine> | undefined;

  /** The 1-based input line number of line i. */
  lineNo(i: number): number {
    return this.lineNos[i];
  }

  /** Adds a line (a byte range), unless it is blank. */
  add(buf: Buffer, start: number, end: number, lineNo: number): void {
    if (end - start <= 9) {
      // At most 9 bytes may be under 4 UTF-16 units: apply the row path's test to its text.
      if (end === start) return;
      const s = buf.toString('utf8', start, end);
      if (s.length < 4 && s.trim() === '') return;
    }
    const n = this.length;
    if (n === this.starts.length) this.grow();
    if (buf !== this.lastBuf) {
      this.chunks.push(buf);
      this.lastBuf = buf;
    }
    this.chunkOf[n] = this.chunks.length - 1;
    this.starts[n] = start;
    this.ends[n] = end;
    this.lineNos[n] = lineNo;
    this.length = n + 1;
  }

  /** Adds a line given as text (a line that spanned chunks), unless it is blank. */
  addText(line: string, lineNo: number): void {
    if (line.length === 0 || (line.length < 4 && line.trim() === '')) return;
    const b = Buffer.from(line, 'utf8');
    this.add(b, 0, b.length, lineNo);
  }

  /** Adds an over-long line (an empty range and its `bigs` entry). */
  addBig(big: OversizedLine, lineNo: number): void {
    this.bigs ??= new Map();
    this.bigs.set(this.length, big);
    const n = this.length;
    if (n === this.starts.length) this.grow();
    this.chunks.push(EMPTY);
    this.lastBuf = EMPTY;
    this.chunkOf[n] = this.chunks.length - 1;
    this.starts[n] = 0;
    this.ends[n] = 0;
    this.lineNos[n] = lineNo;
    this.length = n + 1;
  }

  /** The text of line i (its head for an over-long line). */
  text(i: number): string {
    const big = this.bigs?.get(i);
    if (big) return big.head;
    return this.chunks[this.chunkOf[i]].toString('utf8', this.starts[i], this.ends[i]);
  }

  private grow(): void {
    // Straight from 1,024 to a columnar batch's 16,384 rows (fewer copies), then doubling.
    const cap = Math.max(this.starts.length * 2, 16_384);
    const g = <T extends TypedArray>(a: T, m: new (n: number) => T): T => grown(a, m, cap);
    this.chunkOf = g(this.chunkOf, Int32Array);
    this.starts = g(this.starts, Int32Array);
    this.ends = g(this.ends, Int32Array);
    this.lineNos = g(this.lineNos, Float64Array);
  }
}

const EMPTY = Buffer.alloc(0);
const EMPTY_VIEW = new DataView(new ArrayBuffer(0));

/** `buf`'s bytes s..e as a one-byte string (Node's Buffer#latin1Slice, which toString wraps). */
const latin1 = (buf: Buffer, s: number, e: number): string =>
  (buf as unknown as { latin1Slice(s: number, e: number): string }).latin1Slice(s, e);

/**
 * Splits byte chunks into lines as `LineSplitter` does, without decoding them: lines are byte
 * ranges of the chunks (found with `indexOf`); a line that spans chunks is joined from its pieces.
 * A line that may be longer than the limit once decoded goes through a `LineSplitter` fed the
 * same pieces (a line starts after a line feed, where the text splitter's decoder holds nothing,
 * so it gets exactly the text and over-long handling the whole-stream splitter gives).
 */
export class ByteLineSplitter {
  /** Pieces of the line that spans chunks (while its bytes are within `safeBytes`). */
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** Splitter of a spanning line beyond `safeBytes`, while one is unfinished. */
  private tail: LineSplitter | undefined;
  /** Number of lines returned so far (the 1-based number of the last line). */
  lineNo = 0;
  private readonly safeBytes: number;

  /** @param maxLineBytes longest line in UTF-8 bytes (without the newline) returned as text */
  constructor(readonly maxLineBytes = DEFAULT_MAX_LINE_BYTES) {
    if (!(maxLineBytes >= 1)) throw new RangeError(`maxLineBytes must be at least 1, got ${maxLineBytes}`);
    // Decoded, a line of n bytes is at most 3n bytes (an invalid byte becomes U+FFFD): safe up to this.
    this.safeBytes = Math.floor(maxLineBytes / 3);
  }

  /** True while a line that spans chunks is unfinished. */
  get holding(): boolean {
    return this.tail !== undefined || this.held.length > 0;
  }

  /**
   * Adds every complete line of `chunk` to `out` (blank lines count but are not added).
   * @returns the number of lines the chunk completed
   */
  push(chunk: Buffer, out: ByteLines): number {
    const before = this.lineNo;
    let start = 0;
    if (this.holding) {
      const nl = chunk.indexOf(0x0a);
      if (nl < 0) {
        this.hold(chunk);
        return 0;
      }
      if (this.tail) this.finishTail(this.tail.push(chunk.subarray(0, nl + 1)), out);
      else {
        this.held.push(chunk.subarray(0, nl));
        this.finishHeld(out);
      }
      start = nl + 1;
    }
    const n = chunk.length;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      let end = nl;
      if (end > start && chunk[end - 1] === 0x0d) end--;
      this.lineNo++;
      if (end - start > this.safeBytes) this.addLong(chunk, start, end, out);
      else out.add(chunk, start, end, this.lineNo);
      start = nl + 1;
    }
    if (start < n) this.hold(start === 0 ? chunk : chunk.subarray(start));
    return this.lineNo - before;
  }

  /**
   * Adds the final unterminated line, if any, to `out`.
   * @returns the number of lines added (0 or 1)
   */
  end(out: ByteLines): number {
    const before = this.lineNo;
    if (this.tail) this.finishTail(this.tail.end(), out);
    else if (this.held.length > 0) this.finishHeld(out);
    return this.lineNo - before;
  }

  /** Keeps a piece of the spanning line; past `safeBytes`, the pieces go to a text splitter. */
  private hold(piece: Buffer): void {
    if (this.tail) {
      this.tail.push(piece);
      return;
    }
    this.held.push(piece);
    this.heldBytes += piece.length;
    if (this.heldBytes <= this.safeBytes) return;
    const t = new LineSplitter(this.maxLineBytes);
    for (const p of this.held) t.push(p);
    this.tail = t;
    this.held = [];
    this.heldBytes = 0;
  }

  /** The held pieces (the last one up to the line feed) as one line. */
  private finishHeld(out: ByteLines): void {
    const line = this.held.length === 1 ? this.held[0] : Buffer.concat(this.held);
    this.held = [];
    this.heldBytes = 0;
    let end = line.length;
    if (end > 0 && line[end - 1] === 0x0d) end--;
    this.lineNo++;
    if (end > this.safeBytes) this.addLong(line, 0, end, out);
    else out.add(line, 0, end, this.lineNo);
  }

  private finishTail(lines: string[], out: ByteLines): void {
    const t = this.tail as LineSplitter;
    this.tail = undefined;
    for (let i = 0; i < lines.length; i++) {
      this.lineNo++;
      const big = lines[i].length === 0 ? t.oversized?.get(i) : undefined;
      if (big) out.addBig(big, this.lineNo);
      else out.addText(lines[i], this.lineNo);
    }
  }

  /** A line that may be over the limit once decoded: decided on its text, as LineSplitter does. */
  private addLong(chunk: Buffer, start: number, end: number, out: ByteLines): void {
    const s = chunk.toString('utf8', start, end);
    const bytes = Buffer.byteLength(s);
    if (bytes <= this.maxLineBytes) out.add(chunk, start, end, this.lineNo);
    else out.addBig({ bytes, head: s.slice(0, 1024) }, this.lineNo);
  }
}

/** What a field's builder holds so far. */
const NULL = 0;
const NUM = 1;
const STR = 2;
/** Booleans and nested values, kept as JS values. */
const OTHER = 3;

/** Kinds of a scanned value (`vKind`). */
const V_NULL = 0;
const V_NUM = 1;
const V_STR = 2;
const V_TRUE = 3;
const V_FALSE = 4;
/** A string equal to the field's previous one: `eS` holds its code. */
const V_CODE = 5;

/** 10^0 … 10^15, exact doubles. */
const POW10 = Array.from({ length: 16 }, (_, k) => Number(`1e${k}`));

/** Results of `Scanner.fastLines` (the low two bits). */
const FAST_OK = 1;
const FAST_SHAPE = 2;
const FAST_VALUE = 3;

/** Longest string (bytes) the short-string cache takes: 6 bytes and the length fit 2^53 exactly. */
const SMALL_LEN = 6;
/** log2 of the short-string cache's entries. */
const SMALL_BITS = 10;

/** Row from which a builder gets its short-string cache (12 KiB): small batches go without. */
const SMALL_FROM = 256;

/** Creates a builder's short-string cache (empty). */
function initSmall(b: Builder): Float64Array {
  const k = new Float64Array(1 << SMALL_BITS).fill(-1);
  b.smallKey = k;
  b.smallCode = new Int32Array(1 << SMALL_BITS);
  return k;
}

/** FNV-1a (32 bit) offset basis and prime. */
const FNV_BASIS = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

/** The values of one field, one slot per row. */
class Builder {
  kind = NULL;
  /** NUM: the values, NaN for null; `int` while every value is an integer. */
  f64: Float64Array | undefined;
  int = true;
  /** STR: dictionary codes (-1: null) into `strings`. */
  codes: Int32Array | undefined;
  strings: string[] = [];
  /** STR: open-addressing table of code + 1 (0: empty) for ASCII strings, by FNV-1a hash. */
  table: Int32Array = EMPTY_TABLE;
  /** STR: hash of each code's string (ASCII ones). */
  hashes: number[] = [];
  /** STR: codes of strings with a non-ASCII character (from JSON.parsed lines only). */
  wide: Map<string, number> | undefined;
  /** STR: the code of the last string the scanner gave this field (-1: none). */
  lastCode = -1;
  /** STR: where the fast path last met `lastCode`'s bytes: chunk index (-1: unknown) and offset. */
  lastChunk = -1;
  lastAt = 0;
  /**
   * STR: a direct-mapped cache of the codes of short ASCII strings (up to `SMALL_LEN` bytes) by a
   * key packing their bytes and length exactly (`smallKey`, -1: empty), for the fast path.
   */
  smallKey: Float64Array | undefined;
  smallCode: Int32Array | undefined;
  /** OTHER: the values and their unified type. */
  vals: unknown[] | undefined;
  otherType: FieldType | undefined;
  /** The last row whose scan saw this key (a second sighting is a duplicate key). */
  seen = -1;
  /** A field the projection leaves out (`scanColumns`' `only`): its values are validated, not kept. */
  skip = false;
  /**
   * The key's bytes when the scanner can meet it (printable ASCII without `"` or `\\`: its JSON
   * text is its bytes), else undefined.
   */
  readonly key: Buffer | undefined;

  constructor(readonly name: string) {
    let plain = true;
    for (let i = 0; i < name.length; i++) {
      const c = name.charCodeAt(i);
      if (c < 0x20 || c >= 0x80 || c === 0x22 || c === 0x5c) plain = false;
    }
    this.key = plain ? Buffer.from(name, 'latin1') : undefined;
  }
}

const EMPTY_TABLE = new Int32Array(0);

/** Final mix of a hash into a table slot. */
function slotOf(h: number, mask: number): number {
  return (h ^ (h >>> 15)) & mask;
}

/** Doubles (or creates) a builder's hash table. */
function grow(b: Builder): void {
  const cap = b.table.length === 0 ? 64 : b.table.length * 2;
  const t = new Int32Array(cap);
  const mask = cap - 1;
  const hs = b.hashes;
  for (let c = 0; c < hs.length; c++) {
    if (b.wide?.get(b.strings[c]) === c) continue; // not in the table
    let s = slotOf(hs[c], mask);
    while (t[s] !== 0) s = (s + 1) & mask;
    t[s] = c + 1;
  }
  b.table = t;
}

/**
 * Linear probe of the builder's byte dictionary (its table must not be empty) for the ASCII string
 * at `buf[s..e)` with hash `h`: its code (>= 0), or `-(slot + 1)` for the empty slot it would take.
 */
function probeBytes(b: Builder, buf: Buffer, s: number, e: number, h: number): number {
  const t = b.table;
  const mask = t.length - 1;
  const len = e - s;
  let slot = slotOf(h, mask);
  for (;;) {
    const c1 = t[slot];
    if (c1 === 0) return -(slot + 1);
    const c = c1 - 1;
    if (b.hashes[c] === h) {
      const str = b.strings[c];
      if (str.length === len) {
        let k = 0;
        while (k < len && str.charCodeAt(k) === buf[s + k]) k++;
        if (k === len) return c;
      }
    }
    slot = (slot + 1) & mask;
  }
}

/** The code of the ASCII string at `buf[s..e)` (hash `h`), added when new. */
function codeOfBytes(b: Builder, buf: Buffer, s: number, e: number, h: number): number {
  if ((b.strings.length + 1) * 2 > b.table.length) grow(b);
  const r = probeBytes(b, buf, s, e, h);
  if (r >= 0) return r;
  const c = b.strings.length;
  b.strings.push(latin1(buf, s, e));
  b.hashes.push(h);
  b.table[-r - 1] = c + 1;
  return c;
}

/** The code of the ASCII string at `buf[s..e)` (hash `h`), or -1 when it is not in the dictionary. */
function findBytes(b: Builder, buf: Buffer, s: number, e: number, h: number): number {
  if (b.table.length === 0) return -1;
  const r = probeBytes(b, buf, s, e, h);
  return r >= 0 ? r : -1;
}

/** The code of string `v` (from a JSON.parsed line), added when new. */
function codeOfString(b: Builder, v: string): number {
  const len = v.length;
  let h = FNV_BASIS;
  for (let k = 0; k < len; k++) {
    const ch = v.charCodeAt(k);
    if (ch >= 0x80) {
      b.wide ??= new Map();
      let c = b.wide.get(v);
      if (c === undefined) {
        c = b.strings.length;
        b.strings.push(v);
        b.hashes.push(0);
        b.wide.set(v, c);
      }
      return c;
    }
    h = Math.imul(h ^ ch, FNV_PRIME);
  }
  if ((b.strings.length + 1) * 2 > b.table.length) grow(b);
  const t = b.table;
  const mask = t.length - 1;
  let slot = slotOf(h, mask);
  for (;;) {
    const c1 = t[slot];
    if (c1 === 0) break;
    if (b.hashes[c1 - 1] === h && b.strings[c1 - 1] === v) return c1 - 1;
    slot = (slot + 1) & mask;
  }
  const c = b.strings.length;
  b.strings.push(v);
  b.hashes.push(h);
  t[slot] = c + 1;
  return c;
}

/** A JSON whitespace byte (space, tab, line feed, carriage return). */
function isWs(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

/** True when `name` is an array index (for-in lists those first, in numeric order). */
function isIndexKey(name: string): boolean {
  if (name.length === 0 || name.length > 10) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  if (name.length > 1 && name.charCodeAt(0) === 0x30) return false;
  return Number(name) < 2 ** 32 - 1;
}

/**
 * The value columns of NDJSON lines given as bytes, or undefined when they cannot be represented
 * exactly (then the caller takes the row path; see the module comment).
 * @param lines the batch's lines; an over-long line (`bigs`) must not be among them
 * @param only column projection (`kappa run`, commands/run.ts `sourceProjection`): when given, only
 *   these top-level fields become columns; the values of other keys are still checked against the
 *   JSON grammar (`skipValue`; a value it does not take sends the line to `JSON.parse`, and a bad
 *   line still makes the batch undefined), but a kind change or an integer beyond 2^53 in them
 *   does not matter, and `complete` speaks of the kept fields only
 * @returns columns whose `value(i)` parses line i's text (asked only for rows lacking a field;
 *   with `only`, just those fields)
 */
export function scanColumns(lines: ByteLines, only?: ReadonlySet<string>): ValueColumns | undefined {
  return new Scanner(lines, only).run();
}

/**
 * Skips the JSON value at `buf[p..e)` of a field the projection leaves out, checking its grammar:
 * a string (any bytes but controls, `"` and `\\`, valid escapes; bytes of 0x80 and above are
 * UTF-8, whose decoding can only give string characters), a number
 * (`-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`), `true`, `false` or `null`.
 * @returns the position after the value, or -1 for anything else (a nested value, a malformed
 *   one): the caller then sends the line to `JSON.parse`, which decides
 */
function skipValue(buf: Buffer, p: number, e: number): number {
  const c = buf[p];
  if (c === 0x22) {
    for (let q = p + 1; q < e; q++) {
      const d = buf[q];
      if (d === 0x22) return q + 1;
      if (d < 0x20) return -1;
      if (d === 0x5c) {
        q++;
        if (q >= e) return -1;
        const x = buf[q];
        if (x === 0x75) {
          if (q + 4 >= e) return -1;
          for (let k = 1; k <= 4; k++) {
            const h = buf[q + k] | 0x20;
            if (!((h >= 0x30 && h <= 0x39) || (h >= 0x61 && h <= 0x66))) return -1;
          }
          q += 4;
        } else if (
          x !== 0x22 &&
          x !== 0x5c &&
          x !== 0x2f &&
          x !== 0x62 &&
          x !== 0x66 &&
          x !== 0x6e &&
          x !== 0x72 &&
          x !== 0x74
        )
          return -1;
      }
    }
    return -1;
  }
  if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
    if (c === 0x2d) p++;
    if (p >= e) return -1;
    if (buf[p] === 0x30) {
      p++;
      if (p < e && buf[p] >= 0x30 && buf[p] <= 0x39) return -1;
    } else if (buf[p] >= 0x31 && buf[p] <= 0x39) {
      while (p < e && buf[p] >= 0x30 && buf[p] <= 0x39) p++;
    } else return -1;
    if (p < e && buf[p] === 0x2e) {
      const fs = ++p;
      while (p < e && buf[p] >= 0x30 && buf[p] <= 0x39) p++;
      if (p === fs) return -1;
    }
    if (p < e && (buf[p] === 0x65 || buf[p] === 0x45)) {
      p++;
      if (p < e && (buf[p] === 0x2b || buf[p] === 0x2d)) p++;
      const xs = p;
      while (p < e && buf[p] >= 0x30 && buf[p] <= 0x39) p++;
      if (p === xs) return -1;
    }
    return p;
  }
  if (c === 0x74)
    return p + 4 <= e && buf[p + 1] === 0x72 && buf[p + 2] === 0x75 && buf[p + 3] === 0x65 ? p + 4 : -1;
  if (c === 0x66)
    return p + 5 <= e &&
      buf[p + 1] === 0x61 &&
      buf[p + 2] === 0x6c &&
      buf[p + 3] === 0x73 &&
      buf[p + 4] === 0x65
      ? p + 5
      : -1;
  if (c === 0x6e)
    return p + 4 <= e && buf[p + 1] === 0x75 && buf[p + 2] === 0x6c && buf[p + 3] === 0x6c ? p + 4 : -1;
  return -1;
}

/**
 * Lines scanned into columns since the process started (`lines`), and how many of them took the
 * line-shape fast path (`fast`); batches left to the row path are not counted. For tests and
 * profiling.
 */
export const scanStats = { lines: 0, fast: 0 };

/** One batch's scan: builders, the per-line scratch of scanned entries, the fallback path. */
class Scanner {
  private readonly n: number;
  private readonly order: string[] = [];
  private readonly index = new Map<string, number>();
  private readonly fields: Builder[] = [];
  /** Fields of `order` that become columns (all but the projection's skipped ones). */
  private kept = 0;
  private complete = true;
  // Scratch of the current line's entries (field index or -1 for a new key, value kind and value).
  private cap = 16;
  private eField = new Int32Array(16);
  private eKind = new Uint8Array(16);
  private eNum = new Float64Array(16);
  private eS = new Int32Array(16);
  private eE = new Int32Array(16);
  private eHash = new Int32Array(16);
  private eKeyS = new Int32Array(16);
  private eKeyE = new Int32Array(16);
  private eVs = new Int32Array(16);
  private eVe = new Int32Array(16);
  // The line shape (see `fastLines`): the bytes between values of the last line the general path
  // took (`tpl`; segment j ends at `tplEnd[j]`, the tail after the last value ends at `tplLen`),
  // the field of each value, and the scratch of the values a line defers until it matched.
  private tplN = 0;
  /** Fields of the shape that become columns (`tplN` less the projection's skipped ones). */
  private tplKept = 0;
  private tplLen = 0;
  private tpl = new Uint8Array(256);
  /** `tpl` as little-endian 32-bit words (segments start at multiples of 4). */
  private tplW = new Int32Array(64);
  private tplStart = new Int32Array(17);
  private tplEnd = new Int32Array(16);
  /** The last four bytes of each segment (of four bytes or more) as a little-endian word. */
  private tplLast = new Int32Array(16);
  private tplField = new Int32Array(16);
  private pendS = new Int32Array(16);
  private pendE = new Int32Array(16);
  private pendH = new Int32Array(16);
  private pendF = new Int32Array(16);
  private flips = new Int32Array(16);
  /** Lines taken by the shape fast path, and lines where it met a different shape. */
  private fastLineCount = 0;
  /** A DataView of each chunk of the batch the fast path read (by chunk index). */
  private readonly views: DataView[] = [];
  private shapeMisses = 0;
  private shapeOff = false;

  constructor(
    private readonly lines: ByteLines,
    private readonly only?: ReadonlySet<string>,
  ) {
    this.n = lines.length;
  }

  run(): ValueColumns | undefined {
    const { n, lines } = this;
    const { chunks, chunkOf, starts, ends } = lines;
    let fallbacks = 0;
    for (let i = 0; i < n; i++) {
      // Mostly lines the scanner cannot take (nested values): stop trying for this batch.
      const tryScan = i < 64 || fallbacks * 2 < i;
      let r = 0;
      if (tryScan) {
        let fast = FAST_SHAPE;
        if (this.tplN > 0) {
          // Lines of the shape from here on; `stop` is the first it did not take.
          const res = this.fastLines(i);
          const stop = res >>> 2;
          this.fastLineCount += stop - i;
          i = stop;
          if (i === n) break;
          fast = res & 3;
          // Lines of many shapes: the general path alone (the shape would be compared for nothing).
          if (fast === FAST_SHAPE && ++this.shapeMisses > 16 && this.shapeMisses * 4 > i)
            this.shapeOff = true;
        }
        r = this.scanLine(i, chunks[chunkOf[i]], starts[i], ends[i], fast === FAST_SHAPE && !this.shapeOff);
        if (this.shapeOff) this.tplN = 0;
      }
      if (r === 1) continue;
      if (r === -1) return undefined;
      fallbacks++;
      if (!this.parsedLine(i, lines.text(i))) return undefined;
    }
    scanStats.lines += n;
    scanStats.fast += this.fastLineCount;
    return this.result();
  }

  private growScratch(): void {
    const cap = this.cap * 2;
    const g = <T extends TypedArray>(a: T, m: new (n: number) => T): T => grown(a, m, cap);
    this.eField = g(this.eField, Int32Array);
    this.eKind = g(this.eKind, Uint8Array);
    this.eNum = g(this.eNum, Float64Array);
    this.eS = g(this.eS, Int32Array);
    this.eE = g(this.eE, Int32Array);
    this.eHash = g(this.eHash, Int32Array);
    this.eKeyS = g(this.eKeyS, Int32Array);
    this.eKeyE = g(this.eKeyE, Int32Array);
    this.eVs = g(this.eVs, Int32Array);
    this.eVe = g(this.eVe, Int32Array);
    this.cap = cap;
  }

  /**
   * Scans line i from its bytes and appends its values.
   * @returns 1 done; 0 the scanner does not take this line (nothing appended: parse its text);
   *   -1 the batch cannot be columns (a field changed kind, an integer beyond 2^53)
   */
  private scanLine(i: number, buf: Buffer, p: number, e: number, shape: boolean): number {
    const fields = this.fields;
    const order = this.order;
    let { eField, eKind, eNum, eS, eE, eHash, eKeyS, eKeyE, eVs, eVe } = this;
    const p0 = p;
    while (p < e && isWs(buf[p])) p++;
    if (p >= e || buf[p] !== 0x7b) return 0;
    p++;
    while (p < e && isWs(buf[p])) p++;
    let m = 0;
    let fresh = 0;
    let skipped = 0;
    if (p < e && buf[p] === 0x7d) p++;
    else
      for (;;) {
        if (p >= e || buf[p] !== 0x22) return 0;
        const ks = p + 1;
        let ke = -1;
        let f = -1;
        // Rows of one file mostly have the same keys in the same order: try the position first.
        if (m < order.length) {
          const kb = fields[m].key;
          if (kb !== undefined) {
            const len = kb.length;
            if (ks + len < e && buf[ks + len] === 0x22) {
              let k = 0;
              while (k < len && kb[k] === buf[ks + k]) k++;
              if (k === len) {
                f = m;
                ke = ks + len;
              }
            }
          }
        }
        if (ke < 0) {
          // The key: printable ASCII, no escapes.
          let q = ks;
          for (;;) {
            if (q >= e) return 0;
            const c = buf[q];
            if (c === 0x22) break;
            if (c === 0x5c || c < 0x20 || c >= 0x80) return 0;
            q++;
          }
          ke = q;
          f = this.index.get(latin1(buf, ks, ke)) ?? -1;
        }
        p = ke + 1;
        if (f >= 0) {
          const b = fields[f];
          if (b.seen === i) return 0; // a duplicate key: JSON.parse keeps the last value
          b.seen = i;
        } else fresh++;
        while (p < e && isWs(buf[p])) p++;
        if (p >= e || buf[p] !== 0x3a) return 0;
        p++;
        while (p < e && isWs(buf[p])) p++;
        if (p >= e) return 0;
        if (m === this.cap) {
          this.growScratch();
          ({ eField, eKind, eNum, eS, eE, eHash, eKeyS, eKeyE, eVs, eVe } = this);
        }
        eField[m] = f;
        eKeyS[m] = ks;
        eKeyE[m] = ke;
        eVs[m] = p;
        const c = buf[p];
        if (f >= 0 && fields[f].skip) {
          // A field the projection leaves out: grammar checked, value not kept (a null entry).
          p = skipValue(buf, p, e);
          if (p < 0) return 0;
          eKind[m] = V_NULL;
          skipped++;
        } else if (c === 0x22) {
          const s = p + 1;
          // The same string as this field's previous one (repeated times, keys): no hash, no lookup.
          const last = f >= 0 ? fields[f].lastCode : -1;
          if (last >= 0) {
            const str = fields[f].strings[last];
            const len = str.length;
            if (s + len < e && buf[s + len] === 0x22) {
              let k = 0;
              while (k < len && str.charCodeAt(k) === buf[s + k]) k++;
              if (k === len) {
                eKind[m] = V_CODE;
                eS[m] = last;
                p = s + len + 1;
                eVe[m] = p;
                m++;
                while (p < e && isWs(buf[p])) p++;
                if (p >= e) return 0;
                const sep = buf[p];
                p++;
                if (sep === 0x7d) break;
                if (sep !== 0x2c) return 0;
                while (p < e && isWs(buf[p])) p++;
                continue;
              }
            }
          }
          // A string: printable ASCII, no escapes; hashed on the way.
          let h = FNV_BASIS;
          let q = s;
          for (;;) {
            if (q >= e) return 0;
            const d = buf[q];
            if (d === 0x22) break;
            if (d === 0x5c || d < 0x20 || d >= 0x80) return 0;
            h = Math.imul(h ^ d, FNV_PRIME);
            q++;
          }
          eKind[m] = V_STR;
          eS[m] = s;
          eE[m] = q;
          eHash[m] = h;
          p = q + 1;
        } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
          // A number (JSON grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?).
          const ns = p;
          const neg = c === 0x2d;
          if (neg) p++;
          if (p >= e) return 0;
          let d = buf[p];
          let acc = 0;
          let digits = 0;
          if (d === 0x30) {
            p++;
            digits = 1;
            if (p < e && buf[p] >= 0x30 && buf[p] <= 0x39) return 0;
          } else if (d >= 0x31 && d <= 0x39) {
            while (p < e) {
              d = buf[p] - 0x30;
              if (d < 0 || d > 9) break;
              acc = acc * 10 + d;
              digits++;
              p++;
            }
          } else return 0;
          // Integer digits, then fraction digits, into acc (exact while 15 digits or fewer).
          let fl = 0;
          if (p < e && buf[p] === 0x2e) {
            p++;
            while (p < e) {
              const x = buf[p] - 0x30;
              if (x < 0 || x > 9) break;
              acc = acc * 10 + x;
              fl++;
              p++;
            }
            if (fl === 0) return 0;
          }
          let exact = digits + fl <= 15;
          if (p < e && (buf[p] === 0x65 || buf[p] === 0x45)) {
            p++;
            if (p < e && (buf[p] === 0x2b || buf[p] === 0x2d)) p++;
            const xs = p;
            while (p < e && buf[p] >= 0x30 && buf[p] <= 0x39) p++;
            if (p === xs) return 0;
            exact = false;
          }
          eKind[m] = V_NUM;
          // Exact: acc / 10^fl is the correctly rounded value (see fastLines); else Number() of the text.
          eNum[m] = exact ? (neg ? -acc : acc) / POW10[fl] : Number(latin1(buf, ns, p));
        } else if (c === 0x74) {
          if (p + 4 > e || buf[p + 1] !== 0x72 || buf[p + 2] !== 0x75 || buf[p + 3] !== 0x65) return 0;
          eKind[m] = V_TRUE;
          p += 4;
        } else if (c === 0x66) {
          if (
            p + 5 > e ||
            buf[p + 1] !== 0x61 ||
            buf[p + 2] !== 0x6c ||
            buf[p + 3] !== 0x73 ||
            buf[p + 4] !== 0x65
          )
            return 0;
          eKind[m] = V_FALSE;
          p += 5;
        } else if (c === 0x6e) {
          if (p + 4 > e || buf[p + 1] !== 0x75 || buf[p + 2] !== 0x6c || buf[p + 3] !== 0x6c) return 0;
          eKind[m] = V_NULL;
          p += 4;
        } else return 0;
        eVe[m] = p;
        m++;
        while (p < e && isWs(buf[p])) p++;
        if (p >= e) return 0;
        const sep = buf[p];
        p++;
        if (sep === 0x7d) break;
        if (sep !== 0x2c) return 0;
        while (p < e && isWs(buf[p])) p++;
      }
    while (p < e && isWs(buf[p])) p++;
    if (p !== e) return 0;
    if (fresh > 0) {
      // New keys: a duplicate among them, or an array index (for-in order), is parsed instead.
      const names: string[] = [];
      for (let j = 0; j < m; j++) {
        if (eField[j] >= 0) continue;
        const name = latin1(buf, eKeyS[j], eKeyE[j]);
        if (isIndexKey(name) || names.includes(name)) return 0;
        names.push(name);
      }
      let k = 0;
      for (let j = 0; j < m; j++)
        if (eField[j] < 0) {
          eField[j] = this.addField(names[k++], i);
          if (fields[eField[j]].skip) skipped++;
        }
    }
    if (m - skipped !== this.kept) this.complete = false;
    // Commit the entries.
    for (let j = 0; j < m; j++) {
      const kind = eKind[j];
      if (kind === V_NULL) continue;
      const b = fields[eField[j]];
      if (b.skip) continue;
      if (kind === V_NUM) {
        const v = eNum[j];
        if (b.kind !== NUM && !this.toNum(b)) return -1;
        if (Number.isInteger(v)) {
          if (v > MAX_SAFE || v < -MAX_SAFE) return -1;
        } else b.int = false;
        (b.f64 as Float64Array)[i] = v;
      } else if (kind === V_CODE) {
        (b.codes as Int32Array)[i] = eS[j];
      } else if (kind === V_STR) {
        if (b.kind !== STR && !this.toStr(b)) return -1;
        (b.codes as Int32Array)[i] = b.lastCode = codeOfBytes(b, buf, eS[j], eE[j], eHash[j]);
        b.lastChunk = -1;
      } else if (!this.other(b, i, kind === V_TRUE)) return -1;
    }
    if (shape && m > 0) this.setShape(buf, p0, e, m);
    return 1;
  }

  /** Takes line `buf[p0..e)` (just scanned: m entries in the scratch) as the shape of the next lines. */
  private setShape(buf: Buffer, p0: number, e: number, m: number): void {
    const { eField, eVs, eVe } = this;
    // Each segment (and the tail) starts at a multiple of 4 in `tpl`: up to 3 bytes of padding each.
    let len = e - p0 + 3 * (m + 1) + 4;
    for (let j = 0; j < m; j++) len -= eVe[j] - eVs[j];
    if (len > this.tpl.length) {
      const cap = Math.max(len, this.tpl.length * 2) + 3;
      this.tpl = new Uint8Array(cap & ~3);
      this.tplW = new Int32Array(this.tpl.length >> 2);
    }
    if (m + 1 > this.tplStart.length) {
      const cap = Math.max(m, this.tplEnd.length * 2);
      this.tplStart = new Int32Array(cap + 1);
      this.tplEnd = new Int32Array(cap);
      this.tplLast = new Int32Array(cap);
      this.tplField = new Int32Array(cap);
      this.pendS = new Int32Array(cap);
      this.pendE = new Int32Array(cap);
      this.pendH = new Int32Array(cap);
      this.pendF = new Int32Array(cap);
      this.flips = new Int32Array(cap);
    }
    const { tpl, tplW, tplStart, tplEnd, tplField } = this;
    tpl.fill(0);
    let k = 0;
    let q = p0;
    for (let j = 0; j < m; j++) {
      tplStart[j] = k;
      for (const ve = eVs[j]; q < ve; q++) tpl[k++] = buf[q];
      tplEnd[j] = k;
      k = (k + 3) & ~3;
      tplField[j] = eField[j];
      q = eVe[j];
    }
    tplStart[m] = k;
    for (; q < e; q++) tpl[k++] = buf[q];
    this.tplLen = k;
    const dv = new DataView(tpl.buffer, tpl.byteOffset, tpl.length);
    for (let w = 0; w * 4 + 4 <= tpl.length; w++) tplW[w] = dv.getInt32(w * 4, true);
    for (let j = 0; j < m; j++)
      if (tplEnd[j] - tplStart[j] >= 4) this.tplLast[j] = dv.getInt32(tplEnd[j] - 4, true);
    this.tplN = m;
    let kept = 0;
    for (let j = 0; j < m; j++) if (!this.fields[eField[j]].skip) kept++;
    this.tplKept = kept;
  }

  /**
   * The line-shape fast path: line i when its bytes between values equal those of the shape (the
   * last line the general path took: same keys in the same order, same whitespace) and each value
   * fits its field's builder as it is (a number for numbers, a string for strings, a boolean for
   * booleans, null for any): values go straight into the builders, with no per-entry scratch and
   * no commit loop. New dictionary strings and a field's first non-integer wait until the whole
   * line matched; at the first surprise the values written are cleared and the caller takes the
   * general path (`scanLine`), so a line gives the same columns either way.
   * @returns FAST_OK; FAST_SHAPE (the bytes between values differ); FAST_VALUE (a value the builder
   *   does not take as it is, or one the general path must look at)
   */
  private fastLines(i0: number): number {
    const {
      tpl,
      tplW,
      tplLast,
      tplStart,
      tplEnd,
      tplField,
      tplN,
      fields,
      pendS,
      pendE,
      pendH,
      pendF,
      flips,
      n,
      views,
    } = this;
    const { chunks, chunkOf, starts, ends } = this.lines;
    let ci = -1;
    let buf: Buffer = EMPTY;
    let dv: DataView = EMPTY_VIEW;
    let i = i0;
    for (; i < n; i++) {
      if (chunkOf[i] !== ci) {
        ci = chunkOf[i];
        buf = chunks[ci];
        let v = views[ci];
        if (v === undefined) {
          v = new DataView(buf.buffer, buf.byteOffset, buf.length);
          views[ci] = v;
        }
        dv = v;
      }
      let p = starts[i];
      const e = ends[i];
      let np = 0;
      let nf = 0;
      let j = 0;
      for (; j < tplN; j++) {
        let k = tplStart[j];
        const se = tplEnd[j];
        if (p + (se - k) >= e) return this.fastFail(i, j, FAST_SHAPE);
        // Four bytes at a time (the range is inside the line: checked above); the last 0–3 bytes as
        // the segment's last four (overlapping), or one by one in a segment under four bytes.
        const pe = p + (se - k);
        for (; k + 4 <= se; k += 4, p += 4)
          if (dv.getInt32(p, true) !== tplW[k >> 2]) return this.fastFail(i, j, FAST_SHAPE);
        if (k < se) {
          if (se - tplStart[j] >= 4) {
            if (dv.getInt32(pe - 4, true) !== tplLast[j]) return this.fastFail(i, j, FAST_SHAPE);
          } else for (; k < se; k++, p++) if (buf[p] !== tpl[k]) return this.fastFail(i, j, FAST_SHAPE);
          p = pe;
        }
        const f = tplField[j];
        const b = fields[f];
        if (b.skip) {
          // A field the projection leaves out: grammar checked as the general path does, not kept.
          const q = skipValue(buf, p, e);
          if (q < 0) return this.fastFail(i, j, FAST_VALUE);
          p = q;
          continue;
        }
        const c = buf[p];
        if (c === 0x22) {
          if (b.kind !== STR) return this.fastFail(i, j, FAST_VALUE);
          const s = p + 1;
          const last = b.lastCode;
          if (last >= 0) {
            const str = b.strings[last];
            const len = str.length;
            if (s + len < e && buf[s + len] === 0x22) {
              let q = 0;
              if (b.lastChunk === ci) {
                // The bytes where the fast path last met this string, four at a time.
                const a = b.lastAt;
                while (q + 4 <= len && dv.getInt32(s + q, true) === dv.getInt32(a + q, true)) q += 4;
                while (q < len && buf[a + q] === buf[s + q]) q++;
              } else while (q < len && str.charCodeAt(q) === buf[s + q]) q++;
              if (q === len) {
                (b.codes as Int32Array)[i] = last;
                b.lastChunk = ci;
                b.lastAt = s;
                p = s + len + 1;
                continue;
              }
            }
          }
          // Printable ASCII without escapes, hashed on the way.
          let q = s;
          let h = FNV_BASIS;
          for (;;) {
            if (q >= e) return this.fastFail(i, j, FAST_VALUE);
            const d = buf[q];
            if (d === 0x22) break;
            if (d === 0x5c || d < 0x20 || d >= 0x80) return this.fastFail(i, j, FAST_VALUE);
            h = Math.imul(h ^ d, FNV_PRIME);
            q++;
          }
          const len = q - s;
          let code = -1;
          let slot = -1;
          let key = 0;
          if (len <= SMALL_LEN && (b.smallKey !== undefined || i >= SMALL_FROM)) {
            // A short string (codes, airports, enums): its bytes and length, packed exactly, are the
            // key of a small direct-mapped cache of codes: a hit needs no probe and no comparison.
            let w = 0;
            for (let x = s; x < q; x++) w = w * 256 + buf[x];
            key = w * 8 + len;
            slot = Math.imul(w | 0, 0x9e3779b1) >>> (32 - SMALL_BITS);
            const sk = b.smallKey ?? initSmall(b);
            if (sk[slot] === key) code = (b.smallCode as Int32Array)[slot];
          }
          if (code < 0) {
            code = findBytes(b, buf, s, q, h);
            if (code < 0) {
              pendF[np] = f;
              pendS[np] = s;
              pendE[np] = q;
              pendH[np] = h;
              np++;
            } else if (slot >= 0) {
              (b.smallKey as Float64Array)[slot] = key;
              (b.smallCode as Int32Array)[slot] = code;
            }
          }
          if (code >= 0) {
            (b.codes as Int32Array)[i] = b.lastCode = code;
            b.lastChunk = ci;
            b.lastAt = s;
          }
          p = q + 1;
        } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
          if (b.kind !== NUM) return this.fastFail(i, j, FAST_VALUE);
          // The number grammar as in scanLine.
          const ns = p;
          const neg = c === 0x2d;
          if (neg) p++;
          if (p >= e) return this.fastFail(i, j, FAST_VALUE);
          let d = buf[p];
          let acc = 0;
          let digits = 0;
          if (d === 0x30) {
            p++;
            digits = 1;
            if (p < e && buf[p] >= 0x30 && buf[p] <= 0x39) return this.fastFail(i, j, FAST_VALUE);
          } else if (d >= 0x31 && d <= 0x39) {
            while (p < e) {
              d = buf[p] - 0x30;
              if (d < 0 || d > 9) break;
              acc = acc * 10 + d;
              digits++;
              p++;
            }
          } else return this.fastFail(i, j, FAST_VALUE);
          let v: number;
          if (digits <= 15 && p < e && buf[p] !== 0x2e && buf[p] !== 0x65 && buf[p] !== 0x45) {
            v = neg ? -acc : acc;
          } else {
            // A fraction: its digits as one integer m and their count fl.
            let m = acc;
            let fl = 0;
            if (p < e && buf[p] === 0x2e) {
              p++;
              while (p < e) {
                const x = buf[p] - 0x30;
                if (x < 0 || x > 9) break;
                m = m * 10 + x;
                fl++;
                p++;
              }
              if (fl === 0) return this.fastFail(i, j, FAST_VALUE);
            }
            let exp = false;
            if (p < e && (buf[p] === 0x65 || buf[p] === 0x45)) {
              exp = true;
              p++;
              if (p < e && (buf[p] === 0x2b || buf[p] === 0x2d)) p++;
              const xs = p;
              while (p < e && buf[p] >= 0x30 && buf[p] <= 0x39) p++;
              if (p === xs) return this.fastFail(i, j, FAST_VALUE);
            }
            // Up to 15 significant digits without an exponent: m < 2^53 and 10^fl are exact doubles, so
            // m / 10^fl is the correctly rounded value of the literal, as JSON.parse gives it (W. D.
            // Clinger, "How to Read Floating Point Numbers Accurately", PLDI 1990: the exact case).
            if (!exp && digits + fl <= 15) v = (neg ? -m : m) / POW10[fl];
            else v = Number(latin1(buf, ns, p));
            if (Number.isInteger(v)) {
              if (v > MAX_SAFE || v < -MAX_SAFE) return this.fastFail(i, j, FAST_VALUE);
            } else if (b.int) flips[nf++] = f;
          }
          (b.f64 as Float64Array)[i] = v;
        } else if (c === 0x6e) {
          if (p + 4 > e || buf[p + 1] !== 0x75 || buf[p + 2] !== 0x6c || buf[p + 3] !== 0x6c)
            return this.fastFail(i, j, FAST_VALUE);
          p += 4;
        } else if (c === 0x74 || c === 0x66) {
          if (b.kind !== OTHER) return this.fastFail(i, j, FAST_VALUE);
          if (c === 0x74) {
            if (p + 4 > e || buf[p + 1] !== 0x72 || buf[p + 2] !== 0x75 || buf[p + 3] !== 0x65)
              return this.fastFail(i, j, FAST_VALUE);
            p += 4;
          } else {
            if (
              p + 5 > e ||
              buf[p + 1] !== 0x61 ||
              buf[p + 2] !== 0x6c ||
              buf[p + 3] !== 0x73 ||
              buf[p + 4] !== 0x65
            )
              return this.fastFail(i, j, FAST_VALUE);
            p += 5;
          }
          this.other(b, i, c === 0x74);
        } else return this.fastFail(i, j, FAST_VALUE);
      }
      // The tail (`}` and any whitespace) ends the line.
      let k = tplStart[tplN];
      if (p + (this.tplLen - k) !== e) return this.fastFail(i, j, FAST_SHAPE);
      for (; p < e; k++, p++) if (buf[p] !== tpl[k]) return this.fastFail(i, j, FAST_SHAPE);
      for (let x = 0; x < nf; x++) fields[flips[x]].int = false;
      for (let x = 0; x < np; x++) {
        const b = fields[pendF[x]];
        (b.codes as Int32Array)[i] = b.lastCode = codeOfBytes(b, buf, pendS[x], pendE[x], pendH[x]);
        b.lastChunk = ci;
        b.lastAt = pendS[x];
      }
      if (this.tplKept !== this.kept) this.complete = false;
    }
    return n * 4 + FAST_OK;
  }

  /** Clears what `fastLines` wrote for the first `j` values of line i; returns `i * 4 + why`. */
  private fastFail(i: number, j: number, why: number): number {
    const { tplField, fields } = this;
    for (let x = 0; x < j; x++) {
      const b = fields[tplField[x]];
      if (b.kind === NUM) (b.f64 as Float64Array)[i] = Number.NaN;
      else if (b.kind === STR) (b.codes as Int32Array)[i] = -1;
      else if (b.kind === OTHER) (b.vals as unknown[])[i] = null;
    }
    return i * 4 + why;
  }

  /** Registers a new field (first seen at row i). */
  private addField(name: string, i: number): number {
    const k = this.order.length;
    this.index.set(name, k);
    this.order.push(name);
    const b = new Builder(name);
    b.seen = i;
    this.fields.push(b);
    if (this.only && !this.only.has(name)) b.skip = true;
    else {
      this.kept++;
      if (i > 0) this.complete = false;
    }
    return k;
  }

  private toNum(b: Builder): boolean {
    if (b.kind !== NULL) return false;
    b.kind = NUM;
    b.f64 = new Float64Array(this.n).fill(Number.NaN);
    return true;
  }

  private toStr(b: Builder): boolean {
    if (b.kind !== NULL) return false;
    b.kind = STR;
    b.codes = new Int32Array(this.n).fill(-1);
    return true;
  }

  /** Appends a boolean or nested value; false when the field held numbers or strings. */
  private other(b: Builder, i: number, v: unknown): boolean {
    if (b.kind !== OTHER) {
      if (b.kind !== NULL) return false;
      b.kind = OTHER;
      b.vals = new Array(this.n).fill(null);
    }
    // typeOfValue + unify of batch.ts: boolean, or json for nested values and a mix.
    const t: FieldType = typeof v === 'boolean' ? 'boolean' : 'json';
    b.otherType = b.otherType === undefined || b.otherType === t ? t : 'json';
    (b.vals as unknown[])[i] = v;
    return true;
  }

  /**
   * Appends line i from its text (`JSON.parse`), by the builders' rules.
   * @returns false when the batch cannot be columns
   */
  private parsedLine(i: number, line: string): boolean {
    if (jsonTooDeep(line)) return false;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch {
      return false;
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return false;
    const row = obj as Record<string, unknown>;
    const order = this.order;
    let pos = 0;
    const only = this.only;
    for (const f in row) {
      if (only && !only.has(f)) continue;
      let k = pos < order.length && order[pos] === f ? pos : this.index.get(f);
      if (k === undefined) k = this.addField(f, i);
      pos++;
      const v = row[f];
      if (v === null) continue;
      const b = this.fields[k];
      switch (typeof v) {
        case 'number':
          if (b.kind !== NUM && !this.toNum(b)) return false;
          if (Number.isInteger(v)) {
            if (v > MAX_SAFE || v < -MAX_SAFE) return false;
          } else b.int = false;
          (b.f64 as Float64Array)[i] = v;
          break;
        case 'string':
          if (b.kind !== STR && !this.toStr(b)) return false;
          (b.codes as Int32Array)[i] = codeOfString(b, v);
          break;
        default:
          // A nested value with an integer JSON.parse may have rounded: the row path keeps it exact.
          if (typeof v === 'object' && hasUnsafeInteger(v)) return false;
          if (!this.other(b, i, v)) return false;
      }
    }
    if (pos !== this.kept) this.complete = false;
    return true;
  }

  private result(): ValueColumns {
    const { n, fields, lines, only } = this;
    const order = only ? this.order.filter((_, k) => !fields[k].skip) : this.order;
    const cols = new Map<string, Column>();
    for (let k = 0; k < this.order.length; k++) {
      const b = fields[k];
      if (b.skip) continue;
      let c: Column;
      if (b.kind === NUM) c = new Float64Column(b.int ? 'int64' : 'float64', b.f64 as Float64Array);
      else if (b.kind === STR) c = new DictionaryColumn(b.codes as Int32Array, b.strings);
      else if (b.kind === OTHER) c = new ArrayColumn(b.otherType as FieldType, b.vals as unknown[]);
      else c = new ArrayColumn('json', new Array(n).fill(null));
      cols.set(this.order[k], c);
    }
    return {
      length: n,
      fields: order,
      complete: this.complete,
      column: (name) => cols.get(name),
      value: (i) => {
        const v = JSON.parse(lines.text(i)) as Record<string, unknown>;
        // Deleted, not copied: a parsed own `__proto__` field stays a field.
        if (only) for (const f in v) if (!only.has(f)) delete v[f];
        return v;
      },
    };
  }
}
