/**
 * Part-file writers by output format (the writer half of src/formats/, listed in FORMAT_WRITERS of
 * src/formats/index.ts beside the readers): each writes batches of rows into one pending
 * object-store file and finishes it (footer) without committing it. The table sink decides when
 * files roll and when they become visible.
 */
import type { PendingFile } from '../storage/store.js';
import type { RecordBatch } from '../stream/batch.js';
import type { FileColumnStats } from './format.js';
import { type CodecSetup, type ParquetColumn, ParquetPartWriter } from './parquet/write.js';

/** Output formats of `kappa sink` for files and tables (the names of FORMAT_WRITERS). */
export type OutputFormat = 'parquet' | 'ndjson' | 'csv';

export interface PartWriter {
  /** Appends rows (already type-checked against the columns the writer was created with). */
  writeRows(rows: Record<string, unknown>[]): Promise<void>;
  /**
   * Appends the rows of a columnar view (values already type-checked) as one row group, the same
   * bytes as `writeRows` of the same rows. Formats that write from columns only (Parquet);
   * undefined for the text formats, which take rows.
   */
  writeColumns?(b: Pick<RecordBatch, 'length' | 'column'>): Promise<void>;
  /** Writes any trailer (Parquet footer); the pending file is then complete but not committed. */
  finish(): Promise<void>;
  /** Bytes handed to the pending file so far. */
  readonly bytes: number;
  /** True when the format fixes its columns at creation (Parquet, CSV header): a new schema needs a new file. */
  readonly fixedColumns: boolean;
  /**
   * Statistics of the rows written so far, when the format computes them while writing (Parquet's
   * column-chunk statistics); undefined for formats that do not (the caller gathers its own).
   */
  columnStats?(): FileColumnStats;
}

export interface PartWriterOptions {
  format: OutputFormat;
  /** Parquet only: codec and compressors (`codecSetup`). */
  codec?: CodecSetup;
}

/** One writable format: its `--format` name, file extension and writer factory. */
export interface FormatWriter {
  name: OutputFormat;
  /** File extension without the dot, with the codec infix for Parquet (`zstd.parquet`). */
  extension(codec?: CodecSetup): string;
  /** Creates the writer of one part file with the given columns (`intBits`: see ParquetColumn). */
  create(out: PendingFile, columns: ParquetColumn[], codec?: CodecSetup): PartWriter;
}

/** Parquet via hyparquet-writer, one row group per `writeRows`; stats from the column chunks. */
export const parquetWriter: FormatWriter = {
  name: 'parquet',
  extension: (codec) => (codec?.suffix ? `${codec.suffix}.parquet` : 'parquet'),
  create(out, columns, codec) {
    if (!codec) throw new Error('parquet writer created without a codec (see partWriterOptions)');
    const w = new ParquetPartWriter(out, columns, codec, 'kappa version 0.1.0');
    return {
      writeRows: (rows) => w.writeRowGroup(rows),
      writeColumns: (b) => w.writeColumns(b),
      finish: () => w.finish(),
      get bytes() {
        return out.bytes;
      },
      fixedColumns: true,
      columnStats: () => w.columnStats(),
    };
  },
};

/** NDJSON: one JSON object per line. */
export const ndjsonWriter: FormatWriter = {
  name: 'ndjson',
  extension: () => 'ndjson',
  create: (out) => new NdjsonPartWriter(out),
};

/** CSV (RFC 4180) with a header row. */
export const csvWriter: FormatWriter = {
  name: 'csv',
  extension: () => 'csv',
  create: (out, columns) =>
    new CsvPartWriter(
      out,
      columns.map((c) => c.name),
    ),
};

/** One JSON object per line, values exactly as they travel in the stream (timestamps as epoch ms). */
class NdjsonPartWriter implements PartWriter {
  readonly fixedColumns = false;
  constructor(private readonly out: PendingFile) {}
  get bytes(): number {
    return this.out.bytes;
  }
  async writeRows(rows: Record<string, unknown>[]): Promise<void> {
    let s = '';
    for (const r of rows) s += `${JSON.stringify(r)}\n`;
    await this.out.write(Buffer.from(s));
  }
  async finish(): Promise<void> {}
}

/** Quotes a CSV field as RFC 4180 requires: when it holds a comma, quote, CR or LF. */
export function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** RFC 4180 CSV with a header row; null is an empty field, nested values are JSON text. */
class CsvPartWriter implements PartWriter {
  readonly fixedColumns = true;
  private headerDone = false;
  constructor(
    private readonly out: PendingFile,
    private readonly columns: string[],
  ) {}
  get bytes(): number {
    return this.out.bytes;
  }
  async writeRows(rows: Record<string, unknown>[]): Promise<void> {
    let s = '';
    if (!this.headerDone) {
      s += `${this.columns.map(csvField).join(',')}\r\n`;
      this.headerDone = true;
    }
    for (const r of rows) {
      let line = '';
      for (let i = 0; i < this.columns.length; i++) line += (i ? ',' : '') + csvField(r[this.columns[i]]);
      s += `${line}\r\n`;
    }
    await this.out.write(Buffer.from(s));
  }
  async finish(): Promise<void> {
    if (!this.headerDone) await this.writeRows([]);
  }
}
