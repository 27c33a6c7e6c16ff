/**
 * The files source kind: stdin (`-`), local paths, globs, directories and object-store prefixes,
 * each file read by its format reader, in argument order.
 */
import { UsageError } from '../errors.js';
import type { FormatReader, OpenedFile, RowBatch } from '../formats/format.js';
import { readerByName, readerForPath } from '../formats/index.js';
import { displayName, hasStore, schemeOf } from '../storage/store.js';
import type { Schema } from '../stream/protocol.js';
import { discover, type InputFile } from './discover.js';
import type { RecordSource, SourceKind, SourceOptions } from './source.js';

async function openFiles(sources: string[], o: SourceOptions): Promise<RecordSource> {
  const forced = o.format ? readerByName(o.format) : undefined;
  if (o.delimiter !== undefined && o.delimiter.length !== 1)
    throw new UsageError('--delimiter: expected one character');
  const files = await discover(sources, forced !== undefined);
  const sequential = files.some((f) => f.store.sequential);
  if (files.filter((f) => f.store.sequential).length > 1)
    throw new UsageError(
      `${displayName(files.find((f) => f.store.sequential)!.uri)} is given twice; it can be read once`,
    );
  const readerOf = (f: InputFile): FormatReader => {
    // A stream without a name (stdin) is NDJSON unless --format says otherwise.
    const r = forced ?? readerForPath(f.uri) ?? (f.store.sequential ? readerByName('ndjson') : undefined);
    if (!r)
      throw new UsageError(`${displayName(f.uri)}: cannot tell the format from the file name; use --format`);
    return r;
  };
  // A flag of one format given for inputs of other formats applies to nothing (issue 8 item 22).
  if (o.delimiter !== undefined && !files.some((f) => ['csv', 'tsv'].includes(readerOf(f).name)))
    throw new UsageError(
      '--delimiter applies to CSV and TSV input only, and no input is CSV or TSV',
      'remove --delimiter, or give --format csv',
    );
  // Open the first file eagerly so its schema (Parquet) can go into the stream header.
  const first =
    files.length > 0
      ? await readerOf(files[0]).open(files[0].store, files[0].uri, {
          delimiter: o.delimiter,
          maxLineBytes: o.maxLineBytes,
        })
      : undefined;
  if (first) checkTsField(o.tsField, first, files[0]);
  const schema: Schema | undefined = first?.schema ? { ...first.schema } : undefined;
  // Position (see SourcePosition 'files'): index of the file being read, rows of it delivered.
  let posFile = 0;
  let posRows = 0;
  if (schema) for (const k of Object.keys(files[0].partitionValues)) schema[k] ??= 'string';
  return {
    schema,
    progressUnit: sequential ? 'rows' : 'bytes',
    total: sequential ? undefined : files.reduce((n, f) => n + f.size, 0),
    position: () => ({
      kind: 'files',
      file: posFile,
      uri: posFile < files.length ? files[posFile].uri : null,
      rows: posRows,
    }),
    async *batches(): AsyncGenerator<RowBatch> {
      let bytesBefore = 0;
      for (let fi = 0; fi < files.length; fi++) {
        posFile = fi;
        posRows = 0;
        const f = files[fi];
        const opened =
          fi === 0 && first
            ? first
            : await readerOf(f).open(f.store, f.uri, {
                delimiter: o.delimiter,
                maxLineBytes: o.maxLineBytes,
              });
        if (fi > 0) checkTsField(o.tsField, opened, f);
        const pv = f.partitionValues;
        const pvKeys = Object.keys(pv);
        let last = 0;
        for await (const batch of opened.batches) {
          if (pvKeys.length > 0) {
            for (const row of batch.rows) if (row) for (const k of pvKeys) if (!(k in row)) row[k] = pv[k];
            batch.rawIsJson = false;
          }
          last = batch.bytesDone ?? last;
          batch.bytesDone = bytesBefore + last;
          posRows += batch.columns?.length ?? batch.rows.length; // columns: no row objects built
          yield batch;
        }
        bytesBefore += f.store.sequential ? last : f.size;
      }
      posFile = files.length;
      posRows = 0;
    },
    async close() {},
  };
}

/**
 * For a file whose format carries a schema (Parquet): the top-level column of `--ts-field` (the part
 * before the first dot) must be one of its columns or Hive partition fields, checked before any row
 * is read.
 * @throws UsageError naming the file and its columns
 */
function checkTsField(tsField: string | undefined, opened: OpenedFile, f: InputFile): void {
  if (!tsField || !opened.schema) return;
  const top = tsField.split('.')[0];
  const cols = [...Object.keys(opened.schema), ...Object.keys(f.partitionValues)];
  if (cols.includes(top)) return;
  throw new UsageError(
    `--ts-field '${tsField}': ${displayName(f.uri)} has no column '${top}'; its columns are: ${cols.join(', ')}`,
    'pass one of these columns to --ts-field, or leave it out to use ingestion time',
  );
}

/** The files source kind: `-`, local paths, globs, directories, and object-store URIs. */
export const filesSource: SourceKind = {
  name: 'files (paths, globs, directories, -)',
  options: ['format', 'delimiter', 'maxLineBytes', 's3Endpoint'],
  claims: (s) => hasStore(schemeOf(s)),
  open: openFiles,
};
