/**
 * The files source kind: stdin (`-`), local paths, globs, directories and object-store prefixes,
 * each file read by its format reader, in argument order.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { DataError, UsageError } from '../errors.js';
import type {
  FileOffset,
  FileStart,
  FormatReader,
  OpenedFile,
  ReadOptions,
  RowBatch,
} from '../formats/format.js';
import { readerByName, readerForPath } from '../formats/readers.js';
import { displayName, hasStore, schemeOf } from '../storage/store.js';
import type { Schema } from '../stream/protocol.js';
import { discover, type InputFile } from './discover.js';
import type { JsonValue, RecordSource, SourceKind, SourceOptions, SourcePosition } from './source.js';

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
  const listing = listingDigest(files);
  if (o.startAt) await checkReReadable(files);
  const start = o.startAt ? resumePoint(o.startAt, files, listing) : { file: 0, at: undefined };
  if (start.at) await checkMtime(o.startAt?.mtime, files[start.file]);
  let columnar = false;
  const readOpts = (fi: number): ReadOptions => ({
    columnar: () => columnar,
    delimiter: o.delimiter,
    maxLineBytes: o.maxLineBytes,
    startAt: fi === start.file ? start.at : undefined,
  });
  // Open the first file eagerly so its schema (Parquet) can go into the stream header; a resumed
  // read takes the schema from the first file too (as the run it resumes did), and opens the file
  // it resumes in lazily unless that is the first.
  let first: OpenedFile | undefined;
  if (files.length > 0 && (start.file === 0 || readerOf(files[0]).name === 'parquet')) {
    first = await readerOf(files[0]).open(files[0].store, files[0].uri, readOpts(0));
    checkTsField(o.tsField, first, files[0]);
  }
  const schema: Schema | undefined = first?.schema ? { ...first.schema } : undefined;
  const stats = statsPlan(o, files, start.file, readerOf, readOpts);
  await stats?.openAhead();
  // Position (see SourcePosition 'files'): index of the file being read, rows of it delivered,
  // and where its next unread row starts (readers that can seek).
  let posFile = start.file;
  let posRows = start.at?.rows ?? 0;
  let posNext: FileOffset | undefined = start.at ? offsetOf(start.at) : undefined;
  let posMtime: number | undefined;
  if (schema) for (const k of Object.keys(files[0].partitionValues)) schema[k] ??= 'string';
  return {
    schema,
    progressUnit: sequential ? 'rows' : 'bytes',
    total: sequential ? undefined : files.slice(start.file).reduce((n, f) => n + f.size, 0),
    position: (): SourcePosition => {
      const f = posFile < files.length ? files[posFile] : undefined;
      const p: SourcePosition = {
        kind: 'files',
        file: posFile,
        uri: f ? f.uri : null,
        rows: posRows,
        count: files.length,
        listing,
      };
      if (f && !f.store.sequential) p.size = f.size;
      if (f && posMtime !== undefined) p.mtime = posMtime;
      if (f && posNext) for (const [k, v] of Object.entries(posNext)) if (v !== undefined) p[k] = v;
      return p;
    },
    async *batches(): AsyncGenerator<RowBatch> {
      let bytesBefore = 0;
      for (let fi = start.file; fi < files.length; fi++) {
        const f = files[fi];
        const mtime = await localMtime(f);
        // The position moves to the next file all at once (position() may be asked at any await).
        posFile = fi;
        posMtime = mtime;
        if (fi !== start.file) {
          posRows = 0;
          posNext = undefined;
        }
        const opened =
          fi === 0 && first
            ? first
            : (stats?.ahead[fi] ?? (await readerOf(f).open(f.store, f.uri, readOpts(fi))));
        if (stats) stats.ahead[fi] = undefined; // its batches are read from here on
        const restOf = stats?.restOf(fi, opened);
        if (fi > 0 || !first) checkTsField(o.tsField, opened, f);
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
          posNext = batch.next;
          if (restOf) batch.unreadMin = restOf(batch.next);
          yield batch;
        }
        bytesBefore += f.store.sequential ? last : f.size;
      }
      posFile = files.length;
      posRows = 0;
      posNext = undefined;
      posMtime = undefined;
    },
    preferColumns() {
      columnar = true;
    },
    async close() {},
  };
}

/**
 * Watermarks from Parquet row-group statistics (kappa-ingest(1)): with a top-level `--ts-field`
 * and no `--max-out-of-orderness`, each batch gets `RowBatch.unreadMin`, the min statistic of the
 * event-time column over every row group not yet read, in this file and every later input. The
 * footers of the later local Parquet inputs are read up front (`openAhead`: each file opened as
 * its reader opens it, its batches read later); an s3:// input's footer is known only once the
 * input is reached, so while one lies ahead (or any input that is not Parquet, or a group without
 * a usable statistic) the bound is unknown: no watermark before the last such input is reached.
 */
function statsPlan(
  o: SourceOptions,
  files: readonly InputFile[],
  from: number,
  readerOf: (f: InputFile) => FormatReader,
  readOpts: (fi: number) => ReadOptions,
):
  | {
      ahead: (OpenedFile | undefined)[];
      openAhead(): Promise<void>;
      restOf(
        fi: number,
        opened: OpenedFile,
      ): ((next: FileOffset | undefined) => number | undefined) | undefined;
    }
  | undefined {
  const column = o.tsField;
  if (column === undefined || column.includes('.') || o.maxOutOfOrderness !== undefined) return undefined;
  const ahead: (OpenedFile | undefined)[] = files.map(() => undefined);
  // later[fi]: the least min statistic over every row group of inputs fi, fi+1, …; NaN if unknown.
  const later = new Float64Array(files.length + 1);
  const minOf = (m: number[] | undefined): number =>
    m === undefined ? Number.NaN : m.reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY);
  return {
    ahead,
    async openAhead() {
      later[files.length] = Number.POSITIVE_INFINITY;
      for (let fi = files.length - 1; fi > from; fi--) {
        const f = files[fi];
        let m = Number.NaN;
        if (!f.store.sequential && schemeOf(f.uri) === 'file' && readerOf(f).name === 'parquet') {
          const opened = await readerOf(f).open(f.store, f.uri, readOpts(fi));
          ahead[fi] = opened;
          m = minOf(opened.groupMins?.(column));
        }
        later[fi] = Math.min(m, later[fi + 1]);
      }
    },
    restOf(fi, opened) {
      const mins = opened.groupMins?.(column);
      if (mins === undefined || Number.isNaN(later[fi + 1])) return undefined;
      // rest[g]: the least min over groups g, g+1, … of this file and every later input.
      const rest = new Float64Array(mins.length + 1);
      rest[mins.length] = later[fi + 1];
      for (let g = mins.length - 1; g >= 0; g--) rest[g] = Math.min(mins[g], rest[g + 1]);
      return (next) => {
        if (next?.rowGroup === undefined) return undefined;
        const v = rest[Math.min(next.rowGroup, mins.length)];
        return Number.isNaN(v) ? undefined : v;
      };
    },
  };
}

/** Last modification time (ms, integer) of a local regular file, else undefined (a cheap stat). */
async function localMtime(f: InputFile): Promise<number | undefined> {
  if (f.store.sequential || schemeOf(f.uri) !== 'file') return undefined;
  try {
    const st = await stat(f.uri.startsWith('file://') ? f.uri.slice('file://'.length) : f.uri);
    return st.isFile() ? Math.floor(st.mtimeMs) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A resumed read needs inputs it can read again: stdin, named pipes and devices (listed with size
 * 0) cannot be.
 * @throws UsageError naming the first such input
 */
async function checkReReadable(files: readonly InputFile[]): Promise<void> {
  for (const f of files) {
    let pipe = f.store.sequential === true;
    if (!pipe && f.size === 0 && schemeOf(f.uri) === 'file')
      pipe = await stat(f.uri.startsWith('file://') ? f.uri.slice('file://'.length) : f.uri).then(
        (st) => !st.isFile(),
        () => false,
      );
    if (pipe)
      throw new UsageError(
        `cannot resume reading ${displayName(f.uri)}: stdin, pipes and devices cannot be read again`,
        'a resumable pipeline needs a re-readable source: pass the input as a file path',
      );
  }
}

/**
 * The file a read resumes in must have the modification time saved in the position (when one was
 * saved: local files).
 * @throws DataError naming the file
 */
async function checkMtime(saved: JsonValue | undefined, f: InputFile): Promise<void> {
  if (typeof saved !== 'number') return;
  const now = await localMtime(f);
  // A millisecond either way: some filesystems report a just-written file's mtime rounded
  // differently by the next stat (seen on overlayfs); a real modification moves it further.
  if (now !== undefined && Math.abs(now - saved) > 1)
    throw new DataError(
      `cannot resume in ${displayName(f.uri)}: it was modified since the checkpoint (mtime ${new Date(saved).toISOString()} then, ${new Date(now).toISOString()} now)`,
      'restore the inputs as they were at the checkpoint (with their modification times), or start without --resume',
    );
}

/** The seek fields of a position (those a reader takes in `ReadOptions.startAt`). */
function offsetOf(at: FileStart): FileOffset | undefined {
  const { byte, line, rowGroup, row } = at;
  if (byte === undefined && rowGroup === undefined) return undefined;
  return byte !== undefined ? { byte, line } : { rowGroup, row };
}

/**
 * A short digest of the input listing (each file's URI and size, in order): sha256, first 16 hex
 * digits. A resume against another listing (files added, removed, renamed or resized) is refused.
 */
export function listingDigest(files: readonly InputFile[]): string {
  const h = createHash('sha256');
  for (const f of files) h.update(`${f.uri}\t${f.store.sequential ? '' : f.size}\n`);
  return h.digest('hex').slice(0, 16);
}

/**
 * Checks a saved 'files' position against the inputs found now and returns the file to resume in
 * and where inside it (see `SourceOptions.startAt`, `SourcePosition`).
 * @throws UsageError when an input is stdin or a pipe (it cannot be read again)
 * @throws DataError when the position is not a files position, or the inputs changed: another
 *   file list, the file to resume in missing or of another size
 */
export function resumePoint(
  pos: SourcePosition,
  files: readonly InputFile[],
  listing: string,
): { file: number; at: FileStart | undefined } {
  const pipe = files.find((f) => f.store.sequential);
  if (pipe)
    throw new UsageError(
      `cannot resume reading ${displayName(pipe.uri)}: stdin and pipes cannot be read again`,
      'a resumable pipeline needs a re-readable source: pass the input as a file path',
    );
  const again = 'restore the inputs as they were at the checkpoint, or start without --resume';
  const num = (k: string): number | undefined => {
    const v = pos[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
      throw new DataError(`the saved files position has an invalid '${k}': ${JSON.stringify(v)}`, again);
    return v;
  };
  if (pos.kind !== 'files')
    throw new DataError(
      `the saved source position is a '${pos.kind}' position, but the source now is files`,
      again,
    );
  const file = num('file') ?? 0;
  const count = num('count');
  const uri = typeof pos.uri === 'string' ? pos.uri : undefined;
  const here = files[file];
  if (uri !== undefined && here?.uri !== uri) {
    const now = files.findIndex((f) => f.uri === uri);
    throw new DataError(
      now < 0
        ? `cannot resume in ${displayName(uri)}: it is no longer among the inputs`
        : `cannot resume in ${displayName(uri)}: it was input file ${file + 1} at the checkpoint and is ${now + 1} now (files were added or removed)`,
      again,
    );
  }
  const size = num('size');
  if (here && size !== undefined && here.size !== size)
    throw new DataError(
      `cannot resume in ${displayName(here.uri)}: it had ${size} bytes at the checkpoint and has ${here.size} now (it changed)`,
      again,
    );
  if ((count !== undefined && count !== files.length) || (uri === undefined && file !== files.length))
    throw new DataError(
      `cannot resume: the checkpoint read ${count ?? file} input files, now there are ${files.length}`,
      again,
    );
  if (typeof pos.listing === 'string' && pos.listing !== listing)
    throw new DataError(
      `cannot resume: the input files differ from those at the checkpoint (a file was added, removed, renamed or changed size; listing ${pos.listing} then, ${listing} now)`,
      again,
    );
  if (!here) return { file: files.length, at: undefined };
  return {
    file,
    at: {
      rows: num('rows') ?? 0,
      byte: num('byte'),
      line: num('line'),
      rowGroup: num('rowGroup'),
      row: num('row'),
    },
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
