/**
 * `kappa ingest SOURCE…`: files, globs, Hive directories, stdin (and, by registration, other
 * source kinds) -> kappa stream on stdout. Glue only: open the sources, assign event time and key,
 * emit records and per-split bounded-out-of-orderness watermarks, end with the end-of-stream line.
 */
import { Command } from 'commander';
import { groupSources, type RecordSource, type SourceOptions } from '../io/source.js';
import { makeAssigner, makeKeyGetter } from '../ops/assign.js';
import { LineWriter } from '../stream/output.js';
import { END_LINE, encodeHeader, encodeRecord, encodeWatermark, type Schema } from '../stream/protocol.js';
import { parseDuration } from '../time/duration.js';
import { checkZone, parseTsFormat, type TsFormat } from '../time/timestamp.js';
import { SplitWatermarks } from '../time/watermark.js';
import { type CommonOptions, runContext, withCommonOptions } from './common.js';
import '../io/ndjson.js';
import '../io/files.js';
import '../io/parquet/read.js';
import '../io/csv.js';
import { withKafkaSourceOptions } from '../io/kafka/options.js';
import { withS3Options } from '../io/s3-options.js';

interface IngestOptions extends CommonOptions, SourceOptions {
  tsField?: string;
  tsFormat?: string;
  tz: string;
  keyField?: string;
  maxOutOfOrderness: string;
}

export function ingestCommand(): Command {
  const cmd = new Command('ingest')
    .description(
      'read files, globs, Hive-partitioned directories, s3:// prefixes, kafka:// topics or stdin and emit a kappa record stream',
    )
    .argument(
      '<source...>',
      "'-' for stdin, a file, a glob, a directory (walked recursively), s3://bucket/prefix, kafka://host:port/topic",
    )
    .option(
      '-f, --format <format>',
      'input format: ndjson (also a JSON array) | csv | tsv | parquet (default: by file extension, .gz/.zst decompressed; stdin: ndjson)',
    )
    .option('--delimiter <char>', 'CSV/TSV field delimiter (default: , for csv, tab for tsv)')
    .option(
      '--ts-field <path>',
      'event-time field (dotted path, e.g. properties.time); default: the Kafka record timestamp for kafka://, else ingestion time',
    )
    .option(
      '--ts-format <fmt>',
      "epoch-s | epoch-ms | epoch-us | epoch-ns | iso | strftime pattern like '%d/%m/%Y %H:%M'",
      'auto',
    )
    .option('--tz <zone>', 'time zone for zone-less times (IANA name)', 'UTC')
    .option(
      '--key-field <path>',
      'record key field (dotted path); default: the message key for kafka://, else no key',
    )
    .option(
      '--max-out-of-orderness <dur>',
      'watermark lag behind the largest event time seen (e.g. 5s, 10m)',
      '0ms',
    );
  withS3Options(withKafkaSourceOptions(cmd));
  withCommonOptions(cmd).addHelpText(
    'after',
    `
Examples:
  kappa ingest flights.parquet --ts-field date | kappa sink out/ --partition-by 'dt=%Y-%m-%d'
  kappa ingest 'logs/*.ndjson' --ts-field properties.time --max-out-of-orderness 30s
  kappa ingest lake/rides/ --ts-field pickup_at          # walks dt=…/hr=… folders, adds dt and hr fields
  cat raw.jsonl | kappa ingest - --ts-field ts --ts-format epoch-s
  kappa ingest data.csv --on-error dead-letter=bad.csv --max-bad 100
  kappa ingest export.tsv --ts-field when --ts-format '%d/%m/%Y %H:%M' --tz Europe/Berlin
  kappa ingest logs.ndjson.gz flights.json events.csv.zst  # compressed files, a JSON array
  kappa ingest <(zcat old.log.gz) --format ndjson
  kappa ingest kafka://localhost:9092/rides --from earliest --until latest --ts-field pickup_at
  kappa ingest kafka://localhost:9092/rides --group etl --idle-timeout 1m --max-drift 10m

See man kappa-ingest, man kappa-stream, man kappa-kafka and man kappa-s3.`,
  );
  return cmd.action(async (sources: string[], o: IngestOptions) => runIngest(sources, o));
}

async function runIngest(args: string[], o: IngestOptions): Promise<void> {
  const tsFormat = parseTsFormat(o.tsFormat);
  const tz = checkZone(o.tz);
  const bound = parseDuration(o.maxOutOfOrderness, '--max-out-of-orderness');
  const groups = groupSources(args);
  const sources: RecordSource[] = [];
  for (const g of groups) sources.push(await g.kind.open(g.sources, o));
  const unit = sources.some((s) => s.progressUnit === 'rows') ? 'rows' : 'bytes';
  const total = unit === 'bytes' ? sources.reduce((n, s) => n + (s.total ?? 0), 0) : undefined;
  const { bad, progress } = runContext('ingest', o, unit, total);
  const stats = progress.stats;
  const out = new LineWriter(process.stdout);
  const schema = sources.find((s) => s.schema)?.schema;
  const assign = makeAssigner({
    tsField: o.tsField,
    tsFormat: typedTsFormat(tsFormat, o.tsField, schema),
    tz,
    keyField: o.keyField,
  });
  // With a native event time (Kafka) and no --ts-field, --key-field still applies.
  const keyOf = o.keyField ? makeKeyGetter(o.keyField) : undefined;
  const wms = new SplitWatermarks(bound);
  for (const s of sources) for (const sp of s.splits?.() ?? []) wms.addSplit(sp);
  let status = 'failed';
  try {
    out.line(encodeHeader({ kappa: 1, schema }));
    for (const src of sources) {
      for await (const batch of src.batches()) {
        const { rows } = batch;
        const split = batch.split ?? '';
        const rawIsJson = batch.rawIsJson === true;
        for (let i = 0; i < rows.length; i++) {
          stats.recordsIn++;
          const row = rows[i];
          if (row === undefined) {
            bad.report(batch.where(i), batch.errors?.get(i) ?? 'unreadable row', batch.raw(i));
            continue;
          }
          let ts: number;
          let key: string | null;
          if (batch.nativeTs && !o.tsField) {
            const t = batch.nativeTs(i);
            if (t === undefined) {
              bad.report(batch.where(i), 'record has no timestamp', batch.raw(i));
              continue;
            }
            ts = t;
            key = keyOf ? keyOf(row) : null;
          } else {
            const a = assign(row);
            if ('error' in a) {
              bad.report(batch.where(i), a.error, batch.raw(i));
              continue;
            }
            ts = a.ts;
            key = a.key;
          }
          if (batch.nativeKey && !o.keyField) key = batch.nativeKey(i);
          wms.observe(split, ts);
          out.line(
            encodeRecord(
              { ts, key, value: row, prov: batch.prov?.(i), headers: batch.headers?.(i) },
              rawIsJson ? batch.raw(i) : undefined,
            ),
          );
          stats.recordsOut++;
        }
        if (src.idleSplits) wms.setIdle(src.idleSplits());
        const w = wms.advance();
        if (w !== undefined) out.line(encodeWatermark(w));
        src.onWatermarks?.(wms.perSplit(), wms.current());
        if (batch.bytesDone !== undefined) stats.bytes = batch.bytesDone;
        if (src.detail) progress.setDetail(src.detail());
        progress.update(unit === 'rows' ? stats.recordsIn : stats.bytes);
        // An empty batch means the source is waiting for data (live Kafka): flush what we have.
        await (rows.length === 0 ? out.flush() : out.flushIfFull());
        if (out.isClosed) break;
      }
      if (out.isClosed) break;
    }
    out.line(END_LINE);
    await out.end();
    if (!out.isClosed) for (const s of sources) await s.commit?.();
    status = out.isClosed ? 'stopped (downstream closed)' : 'done';
  } finally {
    await Promise.all(sources.map((s) => s.close().catch(() => {})));
    bad.close();
    stats.bad = bad.count;
    progress.finish(status);
  }
}

/**
 * With `--ts-format auto` and a typed event-time column (Parquet TIMESTAMP: epoch ms in the
 * stream), reads it as epoch ms whatever its magnitude (auto would take ms values before 1973 for
 * seconds); a zone-less `timestamp` column is wall-clock time, read in `--tz`.
 */
function typedTsFormat(f: TsFormat, tsField: string | undefined, schema: Schema | undefined): TsFormat {
  if (f !== 'auto' || !tsField || !schema) return f;
  const t = schema[tsField];
  if (t === 'timestamptz') return 'epoch-ms';
  if (t === 'timestamp') return 'wallclock-ms';
  return f;
}
