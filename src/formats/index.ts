/**
 * The one explicit list of file formats (docs/architecture.md, "Formats"): `--format` names and
 * file extensions map to readers (FORMAT_READERS, `kappa ingest`) and writers (FORMAT_WRITERS,
 * `kappa sink`) here, and nowhere else (the readers live in readers.ts, re-exported here, so that a
 * reading stage does not load the writers).
 */
import { UsageError } from '../errors.js';
import type { PendingFile } from '../storage/store.js';
import type { ParquetColumn } from './parquet/write.js';
import {
  csvWriter,
  type FormatWriter,
  ndjsonWriter,
  type OutputFormat,
  type PartWriter,
  type PartWriterOptions,
  parquetWriter,
} from './writers.js';

export { FORMAT_READERS, readerByName, readerFormats, readerForPath } from './readers.js';
export type { FormatWriter, OutputFormat, PartWriter, PartWriterOptions } from './writers.js';

/** Every output format of `kappa sink` (files and tables); the first is the default of tables. */
export const FORMAT_WRITERS: readonly FormatWriter[] = [parquetWriter, ndjsonWriter, csvWriter];

/** Names of the writer formats, as `kappa sink --format` takes them. */
export function writerFormats(): OutputFormat[] {
  return FORMAT_WRITERS.map((w) => w.name);
}

/** The writer for a `kappa sink --format` name. @throws UsageError if unknown, listing the writer formats */
export function writerByName(name: string): FormatWriter {
  const w = FORMAT_WRITERS.find((x) => x.name === name);
  if (!w) throw new UsageError(`--format: expected one of ${writerFormats().join(', ')}, got '${name}'`);
  return w;
}

/** File extension of a part file (with the codec infix for Parquet), e.g. `zstd.parquet`. */
export function partExtension(o: PartWriterOptions): string {
  return writerByName(o.format).extension(o.codec);
}

/**
 * Creates the writer of one part file with the given columns (`intBits`: see ParquetColumn).
 * Nothing is written to `out` before the first `writeRows`/`finish`.
 */
export function createPartWriter(
  out: PendingFile,
  columns: ParquetColumn[],
  o: PartWriterOptions,
): PartWriter {
  return writerByName(o.format).create(out, columns, o.codec);
}
