/**
 * Part-file writers by output format: each writes batches of rows into one pending object-store
 * file and finishes it (footer) without committing it. The table sink decides when files roll and
 * when they become visible.
 */
import { type CodecSetup, type ParquetColumn, ParquetPartWriter } from '../formats/parquet/write.js';
import type { PendingFile } from '../storage/store.js';

/** Output formats of `kappa sink` for files and tables. */
export const OUTPUT_FORMATS = ['parquet', 'ndjson', 'csv'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface PartWriter {
  /** Appends rows (already type-checked against the columns the writer was created with). */
  writeRows(rows: Record<string, unknown>[]): Promise<void>;
  /** Writes any trailer (Parquet footer); the pending file is then complete but not committed. */
  finish(): Promise<void>;
  /** Bytes handed to the pending file so far. */
  readonly bytes: number;
  /** True when the format fixes its columns at creation (Parquet, CSV header): a new schema needs a new file. */
  readonly fixedColumns: boolean;
}

export interface PartWriterOptions {
  format: OutputFormat;
  codec?: CodecSetup;
}

/** File extension of a format (with the codec infix for Parquet), e.g. `zstd.parquet`. */
export function partExtension(o: PartWriterOptions): string {
  if (o.format === 'parquet') return o.codec?.suffix ? `${o.codec.suffix}.parquet` : 'parquet';
  return o.format;
}

/** Creates the writer of one part file with the given columns (`intBits`: see ParquetColumn). */
export function createPartWriter(
  out: PendingFile,
  columns: ParquetColumn[],
  o: PartWriterOptions,
): PartWriter {
  switch (o.format) {
    case 'parquet': {
      const w = new ParquetPartWriter(out, columns, o.codec!, 'kappa version 0.1.0');
      return {
        writeRows: (rows) => w.writeRowGroup(rows),
        finish: () => w.finish(),
        get bytes() {
          return out.bytes;
        },
        fixedColumns: true,
      };
    }
    case 'ndjson':
      return new NdjsonPartWriter(out);
    case 'csv':
      return new CsvPartWriter(
        out,
        columns.map((c) => c.name),
      );
  }
}

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
