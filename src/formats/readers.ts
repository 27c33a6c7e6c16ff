/**
 * The input half of the list of file formats (docs/architecture.md, "Formats"): `--format` names
 * and file extensions map to readers here; formats/index.ts re-exports all of it beside the
 * writers. Kept apart so that a reading stage does not load the writers (hyparquet-writer, zstd
 * WebAssembly: about 50 ms of start-up CPU).
 */
import { UsageError } from '../errors.js';
import { csvReader, tsvReader } from './csv.js';
import type { FormatReader } from './format.js';
import { ndjsonReader } from './ndjson.js';

/**
 * The Parquet reader (parquet/read.ts `parquetReader`), its module imported at the first `open`:
 * hyparquet, its decompressors and flechette cost 80-140 ms of start-up CPU that a stage reading
 * NDJSON or CSV (or no file at all) would otherwise pay. `name` and `extensions` are the same as
 * parquetReader's (test/unit/startup-lazy.test.ts checks).
 */
const lazyParquetReader: FormatReader = {
  name: 'parquet',
  extensions: ['parquet', 'parq', 'pq'],
  async open(store, uri, opts) {
    const { parquetReader } = await import('./parquet/read.js');
    return parquetReader.open(store, uri, opts);
  },
};

/** Every input format, in the order extensions are matched. */
export const FORMAT_READERS: readonly FormatReader[] = [
  ndjsonReader,
  csvReader,
  tsvReader,
  lazyParquetReader,
];

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
