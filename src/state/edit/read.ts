/**
 * `kappa state-edit read`: an operator's entries, selected by state, key and expression, as NDJSON
 * lines (EntryLine) or as one Parquet file with the savepoint's own columns (man/kappa-savepoint.5).
 */
import { parquetWriteBuffer } from 'hyparquet-writer';
import type { SavepointEntry } from '../savepoint/format.js';
import { stateSchema } from '../savepoint/write.js';
import type { EntryExpr } from './model.js';

/** Which entries `read` prints. */
export interface ReadSelection {
  operator: string;
  state?: string;
  /** Canonical key texts (parseKeyArg). */
  keys?: Set<string>;
  where?: EntryExpr;
}

/** The selected entries, in the savepoint's order. */
export async function* selectEntries(
  entries: AsyncIterable<SavepointEntry>,
  sel: ReadSelection,
): AsyncGenerator<SavepointEntry> {
  for await (const e of entries) {
    if (sel.state !== undefined && e.state !== sel.state) continue;
    if (sel.keys && !sel.keys.has(e.key)) continue;
    if (sel.where && !sel.where(e, sel.operator)) continue;
    yield e;
  }
}

const big = (n: number | null) => (n === null ? null : BigInt(Math.floor(n)));

/**
 * Entries as one Parquet file (in memory): the seven savepoint columns (key as canonical JSON text,
 * value as JSON text, times as TIMESTAMP(MILLIS)), so DuckDB reads it like the savepoint's files.
 */
export function entriesToParquet(entries: SavepointEntry[]): Uint8Array {
  const buf = parquetWriteBuffer({
    schema: stateSchema(),
    columnData: [
      { name: 'key_group', data: entries.map((e) => e.keyGroup) },
      { name: 'state', data: entries.map((e) => e.state) },
      { name: 'key', data: entries.map((e) => e.key) },
      { name: 'window_start', data: entries.map((e) => big(e.windowStart)) },
      { name: 'window_end', data: entries.map((e) => big(e.windowEnd)) },
      { name: 'timer', data: entries.map((e) => big(e.timer)) },
      { name: 'value', data: entries.map((e) => JSON.stringify(e.value)) },
    ] as never,
  });
  return new Uint8Array(buf);
}
