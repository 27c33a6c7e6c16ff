/**
 * Which output format a single-file sink target names by its extension (`out.parquet`,
 * `out.ndjson`, `out.csv`). Kept apart from base.ts (which re-exports it) so that the sink
 * registry (connectors/index.ts) can tell a single file from a table directory without loading
 * the Parquet writer.
 */
import type { OutputFormat } from '../../formats/writers.js';

const EXT_FORMAT: Record<string, OutputFormat> = {
  parquet: 'parquet',
  ndjson: 'ndjson',
  jsonl: 'ndjson',
  json: 'ndjson',
  csv: 'csv',
};

/**
 * The format a single-file target names by its extension, or undefined (a table directory).
 * @param target a sink argument: a path or s3:// URI; a trailing `/` always means a directory
 */
export function extensionFormat(target: string): OutputFormat | undefined {
  const m = /\.([a-z]+)$/i.exec(target.replace(/\/+$/, ''));
  return m && !target.endsWith('/') ? EXT_FORMAT[m[1].toLowerCase()] : undefined;
}
