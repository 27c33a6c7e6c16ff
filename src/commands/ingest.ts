/**
 * `kappa ingest SOURCE…`: files, globs, Hive directories, stdin (and, by registration, other
 * source kinds) -> kappa stream on stdout. Glue only: flags -> opened sources -> `runSource`
 * (src/stream/source.ts: assignment, watermarks, encoding, flushing, the end line, commit).
 */
import { Command } from 'commander';
import {
  type SourceCheckpointFlags,
  withCheckpointOptions,
  withSourceCheckpointOptions,
} from '../checkpoint/options.js';
import { filesSource } from '../connectors/files.js';
import { SOURCE_KINDS } from '../connectors/index.js';
import { withKafkaSourceOptions } from '../connectors/kafka/options.js';
import { groupSources, type RecordSource, type SourceOptions } from '../connectors/source.js';
import { UsageError } from '../errors.js';
import { withS3Options } from '../storage/s3-options.js';
import { assertDeadLetterNotInput, parseOnError } from '../stream/badrecords.js';
import { runInStage, stageOutput, stageReadColumns } from '../stream/direct.js';
import { stdoutKappaReader } from '../stream/negotiate.js';
import { runSource } from '../stream/source.js';
import { parseDuration } from '../time/duration.js';
import { checkZone, parseTsFormat } from '../time/timestamp.js';
import { assertNeeds, assertOptionsApply } from './applicable.js';
import { type CommonOptions, runContext, sourceCheckpointing, withCommonOptions } from './common.js';

interface IngestOptions extends CommonOptions, SourceOptions, SourceCheckpointFlags {
  tsField?: string;
  tsFormat?: string;
  tz: string;
  keyField?: string;
  maxOutOfOrderness?: string;
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
      'event-time field (dotted path, e.g. properties.time); default: the Kafka record timestamp for kafka://, else ingestion time (with a warning)',
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
      'watermark lag behind the largest event time seen, e.g. 5s, 10m (default: files and stdin emit no watermark before the end of input, so nothing is late, except the sound ones of Parquet row-group statistics; kafka:// 0ms per partition)',
    );
  withS3Options(withKafkaSourceOptions(cmd));
  withSourceCheckpointOptions(withCheckpointOptions(cmd));
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

Resumable (man kappa-checkpoints):
  export KAPPA_CHECKPOINT_DIR=/var/lib/kappa/rides KAPPA_RESUME=1
  kappa ingest kafka://localhost:9092/rides --checkpoint-interval 30s | kappa window … | kappa sink s3://lake/rides/
  kill -TERM <ingest pid>     # stop with a savepoint; restart later with --from-savepoint PATH
  kappa ingest kafka://localhost:9092/rides --checkpoint-interval 10s --min-pause-between-checkpoints 5s …
                              # one checkpoint in flight; ticks meanwhile are skipped (summary)
  An ingest feeding kappa join --right <(…) follows the checkpoints of the join's left source.

Without --max-out-of-orderness, files and stdin emit no watermark before the end of input (batch
semantics: unsorted input gives the batch answer); a Parquet --ts-field column (timestamp, or
integer under --ts-format epoch-ms) gets, after each row group, the watermark its unread row
groups' min statistics prove (min - 1 ms), so windows fire during the read and nothing is late:
  kappa ingest flights.parquet --ts-field date | kappa window --key origin --tumbling 1h --agg count
SIGINT/SIGTERM stop ingest with exit 130/143 and
no end-of-stream line, so downstream stages commit nothing; with a checkpoint dir the first signal
stops the pipeline with a savepoint instead (every stage exits 0; a second signal aborts).

Column projection: piped into 'kappa window' or into 'kappa transform' closed by --select, ingest
reads only the fields that stage reads (its command line, seen under /proc; the proof of kappa run)
and says so in its summary ("read only 3 fields (date, origin, delay) for kappa window"):
  kappa ingest flights.parquet --ts-field date | kappa window --key origin --tumbling 1h --agg 'count, max(delay)'
  kappa ingest f.ndjson --ts-field date | kappa transform --filter 'r.delay > 60' --select date,origin,delay
Not through tee or a transform without --select, nor with the window's --late-output or a
dead-letter file; KAPPA_PROJECTION=off turns it off.

JSON integers beyond ±(2^53 − 1) (ids such as {"id":12345678901234567890}) arrive exactly, as
decimal strings ({"id":"12345678901234567890"}), counted in the summary; other numbers are floats.

See man kappa-ingest, man kappa-stream, man kappa-kafka, man kappa-s3 and man kappa-checkpoints.`,
  );
  return cmd.action(async (sources: string[], o: IngestOptions, c: Command) => runIngest(sources, o, c));
}

async function runIngest(args: string[], o: IngestOptions, cmd: Command): Promise<void> {
  const groups = groupSources(args, SOURCE_KINDS);
  // --stop-at OFFSETS: a bounded Kafka read to those offsets that ends with a savepoint.
  if (o.stopAt !== undefined && (await import('../checkpoint/source.js')).isOffsetList(o.stopAt)) {
    if (!args.every((a) => a.startsWith('kafka://')))
      throw new UsageError(
        '--stop-at PARTITION:OFFSET,… applies to kafka:// sources; give an ISO time for files',
      );
    if (o.until !== undefined) throw new UsageError('--stop-at OFFSETS and --until exclude each other');
    o.until = o.stopAt;
    o.savepointAtEnd = true;
  }
  assertOptionsApply(
    cmd,
    groups.map((g) => g.kind),
    SOURCE_KINDS,
  );
  assertNeeds(cmd, 'tz', 'tsField', 'the zone of zone-less event times');
  assertNeeds(cmd, 'tsFormat', 'tsField', 'how the event-time field is written');
  const tsFormat = parseTsFormat(o.tsFormat);
  const tz = checkZone(o.tz);
  await assertDeadLetterNotInput(parseOnError(o.onError), args, o.format !== undefined); // issue 8 item 15
  const bound =
    o.maxOutOfOrderness === undefined
      ? undefined
      : parseDuration(o.maxOutOfOrderness, '--max-out-of-orderness');
  const note = (m: string) => process.stderr.write(`kappa ingest: ${m}\n`);
  const checkpoint = await sourceCheckpointing('ingest', o, note);
  // Column projection across a shell pipe: decided before any input is opened (it is a source
  // option, read by the format readers as inside `kappa run`); files and stdin only.
  // (run.js and the reader's command module load only when the reader is a window or transform.)
  const reader =
    stageOutput() === undefined && groups.every((g) => g.kind === filesSource)
      ? stdoutKappaReader()?.[0]
      : undefined;
  const piped =
    reader === 'window' || reader === 'transform'
      ? await (await import('./run.js')).pipedProjection(o, (await import('../cli.js')).buildProgram)
      : undefined;
  if (piped === undefined) return ingestFrom(groups, o, tsFormat, tz, bound, checkpoint);
  return runInStage({ readColumns: piped.fields }, () =>
    ingestFrom(groups, o, tsFormat, tz, bound, checkpoint, `for kappa ${piped.reader}`),
  );
}

/**
 * Opens the sources and runs them to stdout (the part of `runIngest` after flag checks).
 * @param readerNote with a column projection, whom it is for (the summary says "read N fields
 *   (…) for kappa window"); inside `kappa run` the projection is the fused stage's, "for kappa run"
 */
async function ingestFrom(
  groups: ReturnType<typeof groupSources>,
  o: IngestOptions,
  tsFormat: ReturnType<typeof parseTsFormat>,
  tz: string,
  bound: number | undefined,
  checkpoint: Awaited<ReturnType<typeof sourceCheckpointing>>,
  readerNote = 'for kappa run',
): Promise<void> {
  const sources: RecordSource[] = [];
  for (const g of groups)
    sources.push(await g.kind.open(g.sources, { ...o, startAt: checkpoint?.startAt(sources.length) }));
  const unit = sources.some((s) => s.progressUnit === 'rows') ? 'rows' : 'bytes';
  const total = unit === 'bytes' ? sources.reduce((n, s) => n + (s.total ?? 0), 0) : undefined;
  const { bad, progress } = runContext('ingest', o, unit, total, true);
  let status = 'failed';
  try {
    status = await runSource({
      sources,
      tsField: o.tsField,
      tsFormat,
      tz,
      keyField: o.keyField,
      maxOutOfOrdernessMs: bound,
      bad,
      progress,
      checkpoint,
    });
  } finally {
    bad.close();
    progress.stats.bad = bad.count;
    if (checkpoint) Object.assign(progress.stats.extra, checkpoint.counters());
    const read = stageReadColumns();
    if (read !== undefined)
      progress.stats.extra[readerNote] = `read only ${read.length} fields (${read.join(', ')})`;
    progress.finish(status);
  }
}
