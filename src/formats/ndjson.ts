/**
 * NDJSON (JSON Lines) reader: one JSON object per line; empty lines are skipped. A line that is not
 * valid JSON, or not an object, is a bad row that names its line.
 *
 * A file whose first non-blank character is `[` is one JSON array of records (as `jq '.[]'` and
 * DuckDB's `read_json` read it): it is stream-parsed, never held whole. A small tokenizer finds the
 * top-level elements (tracking strings, escapes and nesting depth, no recursion) and each element
 * is `JSON.parse`d alone; an element that is not valid JSON or not an object is a bad row located by
 * the line on which it starts. A broken array (a missing `]`, text after it, a trailing comma) is a
 * data error naming the line.
 *
 * Integer literals beyond ±(2^53 − 1), at any depth, arrive as their exact decimal strings
 * (json-exact.ts; kappa-stream(5)); a batch holding one is not `rawIsJson` (its raw text would
 * carry the bare literal) and counts them in `RowBatch.bigIntegers`.
 *
 * Compressed files (gzip, zstd) are decompressed on the fly (compression.ts).
 */
import { DataError, type Location } from '../errors.js';
import { displayName, type ObjectStore } from '../storage/store.js';
import type { ValueColumns } from '../stream/batch.js';
import { stageReadColumns } from '../stream/direct.js';
import { DEFAULT_MAX_LINE_BYTES, lineBatches, type OversizedLine } from '../stream/lines.js';
import { jsonTooDeep, MAX_JSON_DEPTH } from '../stream/protocol.js';
import { decompressed } from './compression.js';
import { MAX_RECORD_CHARS } from './csv.js';
import type { FileOffset, FormatReader, OpenedFile, ReadOptions, RowBatch } from './format.js';
import { type BigIntegerCount, parseJsonExact } from './json-exact.js';
import { ByteLineSplitter, ByteLines, scanColumns } from './ndjson-scan.js';
import { bytesFrom, lineAligned, skipRows } from './seek.js';

/**
 * Rows of an NDJSON stream, or of a JSON array when the first non-blank character is `[`.
 * Batches of lines carry `next` (byte offset and line number of the next unread line); batches of
 * a JSON array carry none.
 * @param source how locations name the input (path or `stdin`)
 * @param start the input begins at this byte offset and line number of the file (a resumed read:
 *   `input` holds the bytes from `start.byte` on): the input is read as lines (no array check),
 *   line numbers and `next` offsets count from there
 * @param only column projection of the columnar path (`scanColumns`): the only top-level fields
 *   its columns need to hold (rows, on the row path, stay whole)
 */
export function ndjsonBatches(
  input: AsyncIterable<Uint8Array | string>,
  source: string,
  maxLineBytes = DEFAULT_MAX_LINE_BYTES,
  start?: { byte: number; line: number },
  columnar?: () => boolean,
  only?: ReadonlySet<string>,
): AsyncIterable<RowBatch> {
  const lines = (inp: AsyncIterable<Uint8Array | string>, at?: { byte: number; line: number }) =>
    columnar?.()
      ? columnarLinesOf(inp, source, maxLineBytes, at, only)
      : linesOf(inp, source, maxLineBytes, at);
  if (start)
    return (async function* () {
      yield* lines(input, start);
    })();
  return (async function* () {
    const it = input[Symbol.asyncIterator]();
    const head: (Uint8Array | string)[] = [];
    let isArray = false;
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      head.push(r.value);
      const c = firstNonBlank(r.value);
      if (c !== undefined) {
        isArray = c === 0x5b; // '['
        break;
      }
    }
    async function* all(): AsyncGenerator<Uint8Array | string> {
      yield* head;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value;
      }
    }
    yield* isArray ? jsonArrayBatches(all(), source) : lines(all());
  })();
}

/** The first byte (or char code) that is not JSON whitespace, or undefined. */
function firstNonBlank(c: Uint8Array | string): number | undefined {
  for (let i = 0; i < c.length; i++) {
    const b = typeof c === 'string' ? c.charCodeAt(i) : c[i];
    if (
      b !== 0x20 &&
      b !== 0x0a &&
      b !== 0x0d &&
      b !== 0x09 &&
      b !== 0xfeff &&
      b !== 0xef &&
      b !== 0xbb &&
      b !== 0xbf
    )
      return b;
  }
  return undefined;
}

/**
 * Rows of NDJSON lines. The input is cut at line ends (`lineAligned`) so that after each batch the
 * bytes consumed are exactly the offset of the next line (`next.byte`).
 * @param start byte offset and 1-based line number in the file of the input's first byte
 */
function linesOf(
  input: AsyncIterable<Uint8Array | string>,
  source: string,
  maxLineBytes: number,
  start: { byte: number; line: number } = { byte: 0, line: 1 },
): AsyncIterable<RowBatch> {
  return (async function* () {
    let bytes = 0;
    const lineBase = start.line - 1;
    for await (const { lines, firstLine: first, oversized } of lineBatches(
      countBytes(lineAligned(input), (n) => (bytes += n)),
      { maxLineBytes },
    )) {
      const firstLine = first + lineBase;
      const rows: (Record<string, unknown> | undefined)[] = [];
      const lineNos: number[] = [];
      const raws: string[] = [];
      let errors: Map<number, string> | undefined;
      const count: BigIntegerCount = { n: 0 };
      for (let i = 0; i < lines.length; i++) {
        const line = lines[i];
        const big = line.length === 0 ? oversized?.get(i) : undefined;
        if (big === undefined && (line.length === 0 || (line.length < 4 && line.trim() === ''))) continue;
        const v = parseLine(line, big, maxLineBytes, count);
        if (typeof v === 'string') {
          errors ??= new Map();
          errors.set(rows.length, v);
          rows.push(undefined);
        } else rows.push(v);
        lineNos.push(firstLine + i);
        raws.push(big ? big.head : line);
      }
      yield {
        rows,
        errors,
        where: (i) => ({ source, line: lineNos[i] }),
        raw: (i) => raws[i],
        rawIsJson: count.n === 0,
        bigIntegers: count.n,
        bytesDone: bytes,
        next: { byte: start.byte + bytes, line: firstLine + lines.length },
      };
    }
  })();
}

/**
 * One NDJSON line as a row, or why it is not one (the bad row's message). Integers beyond
 * ±(2^53 − 1) become decimal strings (`parseJsonExact`), counted in `count`.
 * @param big set when the line was longer than `maxLineBytes` (its text is then empty)
 */
function parseLine(
  line: string,
  big: OversizedLine | undefined,
  maxLineBytes: number,
  count: BigIntegerCount,
): Record<string, unknown> | string {
  if (big) return `line of ${big.bytes} bytes is longer than --max-line-bytes ${maxLineBytes}`;
  if (jsonTooDeep(line)) return `value nested deeper than ${MAX_JSON_DEPTH} levels`;
  let v: unknown;
  try {
    v = parseJsonExact(line, count);
  } catch (e) {
    return `not valid JSON (${(e as Error).message})`;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'not a JSON object';
  return v as Record<string, unknown>;
}

/** Rows a columnar batch gathers before it goes out (the Arrow writer's batch size). */
export const COLUMNAR_BATCH_ROWS = 16_384;
/**
 * How long (ms) gathered lines wait for the next chunk before they go out anyway (a live stdin
 * must not hold rows back until a batch is full; the source runtime's linger is 100 ms).
 */
export const COLUMNAR_GATHER_MS = 20;

/**
 * An NDJSON batch for a consumer of columns (issue 14): `columns` scans the lines' bytes straight
 * into value columns (ndjson-scan.ts) on first use; `rows` (and `errors`) decode and parse them
 * into row objects as the row path does, and then drop `columns` (a caller that changes rows, e.g.
 * adding Hive partition fields, is never bypassed by the columnar path). Lines that cannot be
 * represented column-wise (a bad line, a type change, an int64 beyond 2^53) leave `columns`
 * undefined: the whole batch takes the row path, with every bad line reported at its line.
 */
class NdjsonColumnarBatch implements RowBatch {
  private cols: ValueColumns | null | undefined;
  private parsed: { rows: (Record<string, unknown> | undefined)[]; errors?: Map<number, string> } | undefined;
  /** Integers kept as decimal strings by `parse()`. */
  private readonly count: BigIntegerCount = { n: 0 };
  private rawOk = true;
  private texts: string[] | undefined;

  /** @param lines the rows' lines (an over-long line: its head, and an entry in `lines.bigs`) */
  constructor(
    private readonly lines: ByteLines,
    private readonly source: string,
    private readonly maxLineBytes: number,
    readonly bytesDone: number,
    readonly next: FileOffset,
    private readonly only?: ReadonlySet<string>,
  ) {}

  get columns(): ValueColumns | undefined {
    if (this.cols === undefined)
      this.cols = (this.lines.bigs ? undefined : scanColumns(this.lines, this.only)) ?? null;
    return this.cols ?? undefined;
  }

  private parse(): { rows: (Record<string, unknown> | undefined)[]; errors?: Map<number, string> } {
    if (!this.parsed) {
      const rows: (Record<string, unknown> | undefined)[] = new Array(this.lines.length);
      let errors: Map<number, string> | undefined;
      for (let i = 0; i < rows.length; i++) {
        const big = this.lines.bigs?.get(i);
        const v = parseLine(big ? '' : this.raw(i), big, this.maxLineBytes, this.count);
        if (typeof v === 'string') {
          errors ??= new Map();
          errors.set(i, v);
        } else rows[i] = v;
      }
      this.parsed = { rows, errors };
      this.cols = null;
    }
    return this.parsed;
  }

  get rows(): (Record<string, unknown> | undefined)[] {
    return this.parse().rows;
  }

  /**
   * False once `rows` kept an integer beyond 2^53 as a decimal string (its raw line has the bare
   * literal), or once a caller that changed the rows cleared it.
   */
  get rawIsJson(): boolean {
    return this.rawOk && this.count.n === 0;
  }

  set rawIsJson(v: boolean) {
    this.rawOk = v;
  }

  get bigIntegers(): number {
    return this.count.n;
  }

  get errors(): Map<number, string> | undefined {
    return this.cols ? undefined : this.parse().errors;
  }

  where(i: number): Location {
    return { source: this.source, line: this.lines.lineNo(i) };
  }

  /** The text of row i, decoded once for the whole batch on first use. */
  raw(i: number): string {
    if (!this.texts) {
      const t: string[] = new Array(this.lines.length);
      for (let k = 0; k < t.length; k++) t[k] = this.lines.text(k);
      this.texts = t;
    }
    return this.texts[i];
  }
}

/**
 * `linesOf` for a consumer of columns: the lines of consecutive chunks, as byte ranges
 * (`ByteLineSplitter`: no text is decoded on this path), are gathered into batches of up to
 * `COLUMNAR_BATCH_ROWS` rows (a batch goes out earlier when the next chunk takes longer than
 * `COLUMNAR_GATHER_MS`, and at the end), each an `NdjsonColumnarBatch`. Batches end at chunk ends,
 * so `next` is exact.
 */
function columnarLinesOf(
  input: AsyncIterable<Uint8Array | string>,
  source: string,
  maxLineBytes: number,
  start: { byte: number; line: number } = { byte: 0, line: 1 },
  only?: ReadonlySet<string>,
): AsyncIterable<RowBatch> {
  return (async function* () {
    let bytes = 0;
    const lineBase = start.line - 1;
    const it = countBytes(lineAligned(input), (n) => (bytes += n))[Symbol.asyncIterator]();
    const sp = new ByteLineSplitter(maxLineBytes);
    let lines = new ByteLines();
    let done = { bytes: 0, next: { byte: start.byte, line: start.line } };
    const take = (): RowBatch => {
      const b = new NdjsonColumnarBatch(lines, source, maxLineBytes, done.bytes, done.next, only);
      lines = new ByteLines(lines.length);
      return b;
    };
    const STALL = Symbol('stall');
    let pending: Promise<IteratorResult<Buffer | string>> | undefined = it.next();
    try {
      while (pending) {
        let r: IteratorResult<Buffer | string> | typeof STALL;
        if (lines.length === 0) r = await pending;
        else {
          let timer: NodeJS.Timeout | undefined;
          const stall = new Promise<typeof STALL>((res) => {
            timer = setTimeout(() => res(STALL), COLUMNAR_GATHER_MS);
          });
          r = await Promise.race([pending, stall]);
          clearTimeout(timer);
          if (r === STALL) {
            yield take();
            continue;
          }
        }
        let added: number;
        if (r.done) {
          pending = undefined;
          added = sp.end(lines);
        } else {
          const c = r.value;
          added = sp.push(typeof c === 'string' ? Buffer.from(c) : c, lines);
          pending = it.next();
        }
        if (added === 0) continue;
        done = { bytes, next: { byte: start.byte + bytes, line: lineBase + sp.lineNo + 1 } };
        if (lines.length >= COLUMNAR_BATCH_ROWS) yield take();
        else if (lines.length === 0)
          yield { rows: [], where: () => ({ source }), raw: () => '', bytesDone: bytes, next: done.next };
      }
      if (lines.length > 0) yield take();
    } finally {
      // Stopped early (downstream closed, a signal) while a read was in flight: close the input,
      // and let a late read error go (the run is over).
      // (Not awaited: the return waits for the read in flight, which on a live stdin may never end.)
      pending?.catch(() => {});
      it.return?.(undefined).catch(() => {});
    }
  })();
}

/** Tokenizer phases of a top-level JSON array. */
enum Phase {
  BeforeArray = 0,
  ExpectElement = 1,
  InElement = 2,
  AfterComma = 3,
  AfterArray = 4,
}

/**
 * Rows of one top-level JSON array, one batch per input chunk, each element parsed alone.
 * @throws DataError for a broken array (see the module comment)
 */
export async function* jsonArrayBatches(
  input: AsyncIterable<Uint8Array | string>,
  source: string,
): AsyncGenerator<RowBatch> {
  const decoder = new TextDecoder('utf-8');
  let buf = '';
  let phase: Phase = Phase.BeforeArray;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let elStart = 0;
  let elLine = 0;
  let line = 1;
  let bytes = 0;
  const broken = (what: string) =>
    new DataError(
      `${source} line ${line}: not a valid JSON array: ${what}`,
      'a .json file must hold one JSON array of objects, or one object per line',
    );
  const scan = (text: string, final: boolean): RowBatch | undefined => {
    // buf holds the unfinished element (from elStart); scanning resumes after it.
    let i = phase === Phase.InElement ? buf.length : 0;
    const t = phase === Phase.InElement ? buf + text : text;
    if (phase === Phase.InElement) elStart = 0;
    const rows: (Record<string, unknown> | undefined)[] = [];
    const lines: number[] = [];
    const raws: string[] = [];
    let errors: Map<number, string> | undefined;
    const count: BigIntegerCount = { n: 0 };
    const emit = (raw: string) => {
      let err: string | undefined;
      let v: unknown;
      try {
        v = parseJsonExact(raw, count);
        if (v === null || typeof v !== 'object' || Array.isArray(v))
          err = 'array element is not a JSON object';
        else if (jsonTooDeep(raw)) err = `value nested deeper than ${MAX_JSON_DEPTH} levels`;
      } catch (e) {
        err = `array element is not valid JSON (${(e as Error).message})`;
      }
      if (err) {
        errors ??= new Map();
        errors.set(rows.length, err);
        rows.push(undefined);
      } else rows.push(v as Record<string, unknown>);
      lines.push(elLine);
      raws.push(raw);
    };
    const n = t.length;
    for (; i < n; i++) {
      const c = t.charCodeAt(i);
      if (phase === Phase.InElement) {
        if (inString || c === 0x22) {
          // Skip to the closing quote with indexOf: a quote preceded by an odd run of backslashes
          // is escaped. A string cut by the chunk end resumes here with `escaped` carried over.
          let j = inString ? i : i + 1;
          inString = true;
          if (escaped) {
            escaped = false;
            j++;
          }
          for (;;) {
            const q = t.indexOf('"', j);
            let k = (q < 0 ? n : q) - 1;
            while (k >= j && t.charCodeAt(k) === 0x5c) k--;
            const odd = ((q < 0 ? n : q) - 1 - k) % 2 === 1;
            if (q < 0) {
              escaped = odd;
              i = n;
              break;
            }
            if (odd) {
              j = q + 1;
              continue;
            }
            inString = false;
            i = q;
            break;
          }
          continue;
        }
        if (c === 0x7b || c === 0x5b) depth++;
        else if ((c === 0x7d || c === 0x5d) && depth > 0) depth--;
        else if (c === 0x0a) line++;
        else if (depth === 0 && (c === 0x2c || c === 0x5d)) {
          emit(t.slice(elStart, i).trim());
          phase = c === 0x2c ? Phase.AfterComma : Phase.AfterArray;
        }
        continue;
      }
      if (c === 0x0a) {
        line++;
        continue;
      }
      if (c === 0x20 || c === 0x09 || c === 0x0d || c === 0xfeff) continue;
      if (phase === Phase.BeforeArray) {
        if (c !== 0x5b) throw broken(`expected '[', found ${JSON.stringify(t[i])}`);
        phase = Phase.ExpectElement;
      } else if (phase === Phase.AfterArray)
        throw broken(`text after the closing ']' (${JSON.stringify(t[i])})`);
      else if (c === 0x5d && phase === Phase.ExpectElement) phase = Phase.AfterArray;
      else if (c === 0x5d || c === 0x2c)
        throw broken(`unexpected ${JSON.stringify(t[i])} where an element should be`);
      else {
        phase = Phase.InElement;
        elStart = i;
        elLine = line;
        depth = 0;
        inString = false;
        escaped = false;
        i--; // re-read the element's first character inside it
      }
    }
    buf = phase === Phase.InElement ? t.slice(elStart) : '';
    if (buf.length > MAX_RECORD_CHARS)
      throw new DataError(
        `${source} line ${elLine}: an array element longer than ${MAX_RECORD_CHARS / 2 ** 20} Mi characters (a string that is never closed?)`,
      );
    if (final && phase !== Phase.AfterArray)
      throw broken(phase === Phase.BeforeArray ? 'empty input' : "the input ends before the closing ']'");
    if (rows.length === 0) return undefined;
    return {
      rows,
      errors,
      where: (k) => ({ source, line: lines[k] }),
      raw: (k) => raws[k],
      bigIntegers: count.n,
      bytesDone: bytes,
    };
  };
  for await (const chunk of input) {
    bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
    const b = scan(typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }), false);
    if (b) yield b;
  }
  const b = scan(decoder.decode(), true);
  if (b) yield b;
}

async function* countBytes(
  input: AsyncIterable<Uint8Array | string>,
  add: (n: number) => void,
): AsyncGenerator<Buffer | string> {
  for await (const c of input) {
    add(typeof c === 'string' ? Buffer.byteLength(c) : c.byteLength);
    yield typeof c === 'string' ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
  }
}

/** NDJSON / JSON Lines (and one JSON array per file), plain or gzip/zstd-compressed. */
export const ndjsonReader: FormatReader = {
  name: 'ndjson',
  extensions: ['ndjson', 'jsonl', 'json'],
  async open(store: ObjectStore, uri: string, opts: ReadOptions): Promise<OpenedFile> {
    const at = opts.startAt;
    // Inside `kappa run`, the fields the rest of the job reads (commands/run.ts `sourceProjection`).
    const read = stageReadColumns();
    const only = read ? new Set(read) : undefined;
    if (at?.byte !== undefined && at.line !== undefined) {
      const start = { byte: at.byte, line: at.line };
      return {
        batches: ndjsonBatches(
          bytesFrom(store, uri, at.byte),
          displayName(uri),
          opts.maxLineBytes,
          start,
          opts.columnar,
          only,
        ),
      };
    }
    const all = ndjsonBatches(
      decompressed(store.readStream(uri), uri),
      displayName(uri),
      opts.maxLineBytes,
      undefined,
      opts.columnar,
      only,
    );
    // A JSON array (or a position without a byte offset): skip the rows already delivered.
    return { batches: at && at.rows > 0 ? skipRows(all, at.rows) : all };
  },
};
