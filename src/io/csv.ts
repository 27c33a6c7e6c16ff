/**
 * CSV and TSV readers (formats `csv` and `tsv`), streaming with csv-parse.
 *
 * - The first record is the header: it names the fields.
 * - Quoted fields (RFC 4180), embedded delimiters, quotes and newlines; a UTF-8 BOM is dropped;
 *   empty lines are skipped.
 * - Values: an empty unquoted field is `null` (an empty quoted field `""` is the empty string); a
 *   field is a number only when it round-trips exactly (`String(Number(s)) === s`, finite), so
 *   `00123`, `1.50` and `1e3` stay strings; everything else is a string.
 * - A record with the wrong number of fields, or a quoting error, is a bad row. It is located by
 *   the line on which the record starts (records can span lines), and its raw text is the
 *   record's original line(s), as csv-parse read them (for a quoting error: up to the error).
 * - `--delimiter` sets the field delimiter: default `,` for csv and a tab for tsv.
 */
import { parse } from 'csv-parse';
import type { Location } from '../errors.js';
import { DataError } from '../errors.js';
import { type OpenedFile, type ReadOptions, type RowBatch, registerFormatReader } from './format.js';
import type { ObjectStore } from './store.js';

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

interface Entry {
  row: Record<string, unknown> | undefined;
  line: number;
  raw: string;
  error?: string;
}

/** A record's raw text without the empty lines csv-parse skipped before it (they are not part of it). */
function trimLeadingEmptyLines(raw: string): string {
  let i = 0;
  for (;;) {
    if (raw.charCodeAt(i) === 10) i++;
    else if (raw.charCodeAt(i) === 13 && raw.charCodeAt(i + 1) === 10) i += 2;
    else break;
  }
  return i === 0 ? raw : raw.slice(i);
}

/** Number of line breaks inside a record's raw text, not counting its final record delimiter. */
function innerLineBreaks(raw: string): number {
  let n = 0;
  let end = raw.length;
  if (end > 0 && raw.charCodeAt(end - 1) === 10) end--;
  if (end > 0 && raw.charCodeAt(end - 1) === 13) end--;
  for (let i = raw.indexOf('\n'); i >= 0 && i < end; i = raw.indexOf('\n', i + 1)) n++;
  return n;
}

interface CsvInfo {
  lines: number;
}

/**
 * Parses a byte stream of CSV into RowBatches (one per input chunk), in file order.
 * @param source how locations name the input (path or `stdin`)
 * @param delimiter one character
 * @throws DataError for input csv-parse cannot continue past (e.g. a header with no fields)
 */
export async function* csvBatches(
  input: AsyncIterable<Uint8Array | string>,
  source: string,
  delimiter: string,
): AsyncGenerator<RowBatch> {
  let queue: Entry[] = [];
  const parser = parse({
    bom: true,
    columns: (header: string[]) => header.map((h) => String(h)),
    delimiter,
    info: true,
    raw: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
    cast: (value: string, ctx: { header: boolean; quoting: boolean }) =>
      ctx.header ? value : csvValue(value, ctx.quoting),
    on_record: (rec: { record: Record<string, unknown>; raw: string; info: CsvInfo }) => {
      const raw = trimLeadingEmptyLines(rec.raw);
      queue.push({ row: rec.record, line: rec.info.lines - innerLineBreaks(raw), raw });
      return null;
    },
    on_skip: (err: (Error & { lines?: number }) | undefined, raw: string | undefined) => {
      const text = trimLeadingEmptyLines(raw ?? '');
      const endLine = err?.lines ?? 0;
      queue.push({
        row: undefined,
        line: Math.max(1, endLine - innerLineBreaks(text)),
        raw: text,
        error: (err?.message ?? 'unreadable CSV record').replace(/ on line \d+$/, ''),
      });
    },
  });
  // Records are collected by on_record; drain the (empty) readable side so the stream flows.
  parser.resume();
  let failure: Error | undefined;
  parser.on('error', (e) => {
    failure = e;
  });
  const write = (chunk: Uint8Array | string) =>
    new Promise<void>((resolve, reject) => parser.write(chunk, (e) => (e ? reject(e) : resolve())));
  const end = () =>
    new Promise<void>((resolve, reject) => {
      parser.once('error', reject);
      parser.end(() => resolve());
    });
  const take = (bytes: number): RowBatch => {
    const entries = queue;
    queue = [];
    let errors: Map<number, string> | undefined;
    for (let i = 0; i < entries.length; i++) {
      const er = entries[i].error;
      if (er === undefined) continue;
      errors ??= new Map();
      errors.set(i, er);
    }
    return {
      rows: entries.map((e) => e.row),
      errors,
      where: (i): Location => ({ source, line: entries[i].line }),
      raw: (i) => entries[i].raw,
      bytesDone: bytes,
    };
  };
  let bytes = 0;
  try {
    for await (const chunk of input) {
      bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
      await write(chunk);
      if (queue.length > 0) yield take(bytes);
    }
    await end();
  } catch (e) {
    const err = failure ?? (e as Error);
    if ((err as { code?: string }).code?.startsWith('CSV_'))
      throw new DataError(`${source}: cannot read CSV: ${err.message}`);
    throw err;
  }
  if (queue.length > 0) yield take(bytes);
}

function openCsv(defaultDelimiter: string) {
  return async (store: ObjectStore | undefined, uri: string, opts: ReadOptions): Promise<OpenedFile> => {
    const input = uri === '-' || !store ? (process.stdin as AsyncIterable<Buffer>) : store.readStream(uri);
    return { batches: csvBatches(input, uri === '-' ? 'stdin' : uri, opts.delimiter ?? defaultDelimiter) };
  };
}

registerFormatReader({ name: 'csv', extensions: ['csv'], open: openCsv(',') });
registerFormatReader({ name: 'tsv', extensions: ['tsv', 'tab'], open: openCsv('\t') });
