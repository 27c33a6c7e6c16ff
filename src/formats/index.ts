/**
 * The one explicit list of input formats (docs/architecture.md, "Formats"): `--format` names and
 * file extensions map to readers here, and nowhere else.
 */
import { UsageError } from '../errors.js';
import { csvReader, tsvReader } from './csv.js';
import type { FormatReader } from './format.js';
import { ndjsonReader } from './ndjson.js';
import { parquetReader } from './parquet/read.js';

/** Every input format, in the order extensions are matched. */
export const FORMAT_READERS: readonly FormatReader[] = [ndjsonReader, csvReader, tsvReader, parquetReader];

/** Names of the reader formats, as `--format` takes them. */
export function readerFormats(): string[] {
  return FORMAT_READERS.map((r) => r.name);
}

/** The reader for a `--format` name. @throws UsageError if unknown */
export function readerByName(name: string): FormatReader {
  const r = FORMAT_READERS.find((x) => x.name === name);
  if (!r) throw new UsageError(`--format: unknown format '${name}'; known: ${readerFormats().join(', ')}`);
  return r;
}

/**
 * The reader for a file name by its extension, looking past compression suffixes
 * (`x.ndjson.gz` -> ndjson), or undefined.
 */
export function readerForPath(uri: string): FormatReader | undefined {
  const base = uri.split('/').pop() ?? uri;
  const parts = base.toLowerCase().split('.');
  for (let i = parts.length - 1; i >= 1; i--) {
    for (const r of FORMAT_READERS) if (r.extensions.includes(parts[i])) return r;
  }
  return undefined;
}
