/**
 * `kappa ingest SOURCE…`: files, globs, Hive directories and stdin -> kappa stream on stdout.
 * Glue only: discover files, open each with its format reader, assign event time and key, emit
 * records and bounded-out-of-orderness watermarks, end with the end-of-stream line.
 */
import { Command } from 'commander';
import { UsageError } from '../errors.js';
import { discover, type InputFile } from '../io/discover.js';
import { type FormatReader, readerByName, readerForPath } from '../io/format.js';
import { makeAssigner } from '../ops/assign.js';
import { LineWriter } from '../stream/output.js';
import { END_LINE, encodeHeader, encodeRecord, encodeWatermark, type Schema } from '../stream/protocol.js';
import { parseDuration } from '../time/duration.js';
import { checkZone, parseTsFormat } from '../time/timestamp.js';
import { BoundedOutOfOrderness } from '../time/watermark.js';
import { type CommonOptions, runContext, withCommonOptions } from './common.js';
import '../io/ndjson.js';

interface IngestOptions extends CommonOptions {
  format?: string;
  delimiter?: string;
  tsField?: string;
  tsFormat?: string;
  tz: string;
  keyField?: string;
  maxOutOfOrderness: string;
}

export function ingestCommand(): Command {
  const cmd = new Command('ingest')
    .description('read files, globs, Hive-partitioned directories or stdin and emit a kappa record stream')
    .argument('<source...>', "'-' for stdin, a file, a glob, or a directory (walked recursively)")
    .option(
      '-f, --format <format>',
      'input format: ndjson | csv | parquet (default: by file extension; stdin: ndjson)',
    )
    .option('--delimiter <char>', 'CSV field delimiter', ',')
    .option(
      '--ts-field <path>',
      'event-time field (dotted path, e.g. properties.time); default: ingestion time',
    )
    .option(
      '--ts-format <fmt>',
      "epoch-s | epoch-ms | epoch-us | epoch-ns | iso | strftime pattern like '%d/%m/%Y %H:%M'",
      'auto',
    )
    .option('--tz <zone>', 'time zone for zone-less times (IANA name)', 'UTC')
    .option('--key-field <path>', 'record key field (dotted path); default: no key')
    .option(
      '--max-out-of-orderness <dur>',
      'watermark lag behind the largest event time seen (e.g. 5s, 10m)',
      '0ms',
    );
  withCommonOptions(cmd).addHelpText(
    'after',
    `
Examples:
  kappa ingest flights.parquet --ts-field date | kappa sink out/ --partition-by 'dt=%Y-%m-%d'
  kappa ingest 'logs/*.ndjson' --ts-field properties.time --max-out-of-orderness 30s
  kappa ingest lake/rides/ --ts-field pickup_at          # walks dt=…/hr=… folders, adds dt and hr fields
  cat raw.jsonl | kappa ingest - --ts-field ts --ts-format epoch-s
  kappa ingest data.csv --on-error dead-letter=bad.csv --max-bad 100`,
  );
  return cmd.action(async (sources: string[], o: IngestOptions) => runIngest(sources, o));
}

async function runIngest(sources: string[], o: IngestOptions): Promise<void> {
  const tsFormat = parseTsFormat(o.tsFormat);
  const tz = checkZone(o.tz);
  const bound = parseDuration(o.maxOutOfOrderness, '--max-out-of-orderness');
  const forced = o.format ? readerByName(o.format) : undefined;
  if (o.delimiter !== undefined && o.delimiter.length !== 1)
    throw new UsageError('--delimiter: expected one character');
  const files: (InputFile | '-')[] = [];
  for (const s of sources) {
    if (s === '-') files.push('-');
    else files.push(...(await discover([s], forced !== undefined)));
  }
  const totalBytes = files.reduce((n, f) => n + (f === '-' ? 0 : f.size), 0);
  const hasStdin = files.includes('-');
  const { bad, progress } = runContext(
    'ingest',
    o,
    hasStdin ? 'rows' : 'bytes',
    hasStdin ? undefined : totalBytes,
  );
  const stats = progress.stats;
  const out = new LineWriter(process.stdout);
  const assign = makeAssigner({ tsField: o.tsField, tsFormat, tz, keyField: o.keyField });
  const wm = new BoundedOutOfOrderness(bound);
  let headerWritten = false;
  let bytesBefore = 0;
  let status = 'failed';
  try {
    for (const f of files) {
      const uri = f === '-' ? '-' : f.uri;
      const reader: FormatReader | undefined =
        forced ?? (f === '-' ? readerByName('ndjson') : readerForPath(uri));
      if (!reader) throw new UsageError(`${uri}: cannot tell the format from the file name; use --format`);
      const opened = await reader.open(f === '-' ? undefined : f.store, uri, { delimiter: o.delimiter });
      const pv = f === '-' ? {} : f.partitionValues;
      const pvKeys = Object.keys(pv);
      if (!headerWritten) {
        const schema: Schema | undefined = opened.schema ? { ...opened.schema } : undefined;
        if (schema) for (const k of pvKeys) schema[k] ??= 'string';
        out.line(encodeHeader({ kappa: 1, schema }));
        headerWritten = true;
      }
      for await (const batch of opened.batches) {
        const rows = batch.rows;
        for (let i = 0; i < rows.length; i++) {
          stats.recordsIn++;
          const row = rows[i];
          if (row === undefined) {
            bad.report(batch.where(i), batch.errors?.get(i) ?? 'unreadable row', batch.raw(i));
            continue;
          }
          for (const k of pvKeys) if (!(k in row)) row[k] = pv[k];
          const a = assign(row);
          if ('error' in a) {
            bad.report(batch.where(i), a.error, batch.raw(i));
            continue;
          }
          wm.observe(a.ts);
          out.line(encodeRecord({ ts: a.ts, key: a.key, value: row }));
          stats.recordsOut++;
        }
        const w = wm.advance();
        if (w !== undefined) out.line(encodeWatermark(w));
        stats.bytes = bytesBefore + (batch.bytesDone ?? 0);
        progress.update(hasStdin ? stats.recordsIn : stats.bytes);
        await out.flushIfFull();
        if (out.isClosed) break;
      }
      if (out.isClosed) break;
      bytesBefore += f === '-' ? stats.bytes - bytesBefore : f.size;
      stats.bytes = bytesBefore;
    }
    if (!headerWritten) out.line(encodeHeader({ kappa: 1 }));
    out.line(END_LINE);
    await out.end();
    status = out.isClosed ? 'stopped (downstream closed)' : 'done';
  } finally {
    bad.close();
    stats.bad = bad.count;
    progress.finish(status);
  }
}
