/**
 * `kappa replay SOURCE… [--from TIME] [--to TIME]`: time-partitioned archives (tables with
 * `dt=…/hr=…` paths, with or without a Delta log) replayed as a kappa stream, oldest partition
 * first, every source in lockstep, a watermark at each partition's end; optionally followed by a
 * Kafka topic (`--then`). Glue only: flags -> archives (src/replay/archive.ts) -> the replay source
 * (src/replay/source.ts, handover.ts) -> `runSource` (src/stream/source.ts).
 */

import { Command } from 'commander';
import { DateTime } from 'luxon';
import {
  type SourceCheckpointFlags,
  withCheckpointOptions,
  withSourceCheckpointOptions,
} from '../checkpoint/options.js';
import { parseKafkaUri } from '../connectors/kafka/client.js';
import { collectClientOption, isKafkaUri } from '../connectors/kafka/options.js';
import type { RecordSource, SourcePosition } from '../connectors/source.js';
import { UsageError } from '../errors.js';
import { type Archive, openArchive, splitNamed } from '../replay/archive.js';
import { HandoverSource, type HandoverStart, recordedStart } from '../replay/handover.js';
import { ReplaySource } from '../replay/source.js';
import { withS3Options } from '../storage/s3-options.js';
import { runSource } from '../stream/source.js';
import { parseDuration } from '../time/duration.js';
import { checkZone, parseTsFormat } from '../time/timestamp.js';
import { assertNeeds, userSetOptions } from './applicable.js';
import {
  type CommonOptions,
  parseCount,
  runContext,
  sourceCheckpointing,
  withCommonOptions,
} from './common.js';

interface ReplayOptions extends CommonOptions, SourceCheckpointFlags {
  from?: string;
  to?: string;
  layout?: string;
  tz: string;
  tsField?: string[];
  tsFormat?: string;
  keyField?: string;
  extraPartitions?: string;
  maxRate?: string;
  then?: string;
  until?: string;
  overlap?: string;
  offsetFields?: string;
  X?: string[];
}

export function replayCommand(): Command {
  const cmd = new Command('replay')
    .description(
      'replay time-partitioned tables (dt=…/hr=…, with or without a Delta log) oldest partition first, all sources in lockstep, with a watermark at each partition end; optionally then continue with a Kafka topic',
    )
    .argument(
      '<source...>',
      'a table directory or s3://bucket/prefix whose paths carry time partitions; NAME=SOURCE names it in the records’ provenance',
    )
    .option(
      '--from <time>',
      'first event time replayed (inclusive; ISO date or time in --tz); default: the oldest partition',
    )
    .option(
      '--to <time>',
      'end of the replay (exclusive; ISO date or time in --tz); default: the newest partition',
    )
    .option(
      '--layout <spec>',
      "time layout of the paths in kappa sink's --partition-by syntax, e.g. 'date=%Y%m%d/hour=%H' (default: the table's own, else dt=%Y-%m-%d[/hr=%H])",
    )
    .option('--tz <zone>', 'time zone of partition paths, --from/--to and zone-less times (IANA name)', 'UTC')
    .option(
      '--ts-field <path>',
      'event-time field (dotted path), for every SOURCE, or NAME=path for one (repeatable); default: the event-time column the table declares (its first timestamp column)',
      (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
    )
    .option(
      '--ts-format <fmt>',
      "epoch-s | epoch-ms | epoch-us | epoch-ns | iso | strftime pattern like '%d/%m/%Y %H:%M'",
      'auto',
    )
    .option('--key-field <path>', 'record key field (dotted path); default: no key (kafka: the message key)')
    .option(
      '--extra-partitions <n>',
      'also read the N partitions after --to (records before --to only) and hold the watermark N partitions back, so records that landed up to N partitions late are on time',
      '0',
    )
    .option('--max-rate <n/s>', 'throttle to at most N records per second, e.g. 50000/s')
    .option(
      '--then <uri>',
      'after the archive, continue with this kafka:// topic: exactly at the offsets the table recorded, else by timestamp (see --overlap)',
    )
    .option(
      '--until <pos>',
      'with --then: stop position of the topic: latest | ISO time | partition:offset,…',
    )
    .option(
      '--overlap <dur>',
      'with --then, when the table records no offsets: start the topic this long before the largest event time replayed',
      '1m',
    )
    .option(
      '--offset-fields <p,o>',
      'with --then and no recorded offsets: the value fields that hold the Kafka partition and offset of archived rows, to drop topic records already archived',
    )
    .option('-X <key=value>', 'with --then: Kafka client option (see man kappa-kafka)', collectClientOption);
  withS3Options(cmd);
  withSourceCheckpointOptions(withCheckpointOptions(cmd));
  withCommonOptions(cmd).addHelpText(
    'after',
    `
Examples:
  kappa replay lake/flights --from 2024-01-01 --to 2024-02-01 | kappa window --tumbling 1h --agg count | kappa sink out/
  kappa replay rides=s3://lake/rides fares=s3://lake/fares --from 2019-06-01 --to 2019-06-08 | kappa join …
  kappa replay lake/events --layout 'date=%Y%m%d/hour=%H' --ts-field event_time --from 2024-05-01T00:00
  kappa replay lake/clicks --from 2024-05-01 --to 2024-05-02 --extra-partitions 1 --max-rate 50000/s
  kappa replay lake/clicks --from 2024-05-01 --then kafka://localhost:9092/clicks | kappa window …

  # bootstrap a live job: state from the archive, then start the live job from the savepoint
  kappa replay lake/clicks --from 2024-01-01 --to 2024-06-01 --checkpoint-dir ck/ --savepoint-at-end | kappa window … --checkpoint-dir ck/ | kappa sink …

  # cron, every day at 01:30: recompute yesterday, catching records that landed one hour late
  30 1 * * * kappa replay lake/clicks --from "$(date -u -d yesterday +\\%F)" --to "$(date -u +\\%F)" --extra-partitions 1 -q | kappa window --key page --tumbling 1h --agg count -q | kappa sink lake/clicks_hourly -q

Partitions are replayed strictly oldest first: every record of a partition (of every SOURCE)
comes before any record of the next, and a watermark of the partition's end − 1 ms follows it
(a daily SOURCE beside an hourly one paces both by the day). Delta file statistics hold the
watermark back for files with rows older than their partition. Only the hand-over at recorded
offsets is exact; the timestamp fallback may skip or repeat records (man kappa-replay).

See man kappa-replay, man kappa-stream and man kappa-kafka.`,
  );
  return cmd.action(async (sources: string[], o: ReplayOptions, c: Command) => runReplay(sources, o, c));
}

/** Parses `--from`/`--to`: an ISO date or date-time, zone-less ones in `tz`. */
function parseTime(v: string | undefined, flag: string, tz: string): number | undefined {
  if (v === undefined) return undefined;
  const t = DateTime.fromISO(v, { zone: tz });
  if (!t.isValid || !/^\d{4}-\d{2}/.test(v))
    throw new UsageError(
      `${flag}: '${v}' is not an ISO date or time`,
      'e.g. 2024-05-01 or 2024-05-01T06:00:00Z',
    );
  return t.toMillis();
}

/** Parses `--max-rate`: `N`, `N/s`, `N/m`, `N/h` -> records per second. */
export function parseRate(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*(s|sec|m|min|h))?\s*$/.exec(v);
  const n = m ? Number(m[1]) / ({ s: 1, sec: 1, m: 60, min: 60, h: 3600 }[m[2] ?? 's'] ?? 1) : Number.NaN;
  if (!m || !(n > 0)) throw new UsageError(`--max-rate: '${v}' is not a rate`, 'e.g. --max-rate 50000/s');
  return n;
}

async function runReplay(args: string[], o: ReplayOptions, cmd: Command): Promise<void> {
  for (const opt of ['until', 'overlap', 'offsetFields', 'X'])
    assertNeeds(cmd, opt, 'then', 'they configure the Kafka hand-over');
  assertNeeds(cmd, 'tsFormat', 'tsField', 'how the event-time field is written');
  if (
    userSetOptions(cmd).includes('s3Endpoint') &&
    !args.some((a) => splitNamed(a).source.startsWith('s3://'))
  )
    throw new UsageError('--s3-endpoint applies to s3:// SOURCEs only, and none is given');
  if (o.then !== undefined && !isKafkaUri(o.then))
    throw new UsageError(
      `--then: '${o.then}' is not a kafka:// topic`,
      'e.g. --then kafka://localhost:9092/rides',
    );
  if (o.then !== undefined && o.to !== undefined)
    throw new UsageError(
      '--to and --then exclude each other: the hand-over continues where the archive ends',
      'leave out --to',
    );
  const tz = checkZone(o.tz);
  const tsFormat = parseTsFormat(o.tsFormat);
  const from = parseTime(o.from, '--from', tz) ?? Number.NEGATIVE_INFINITY;
  const to = parseTime(o.to, '--to', tz) ?? Number.POSITIVE_INFINITY;
  if (from >= to) throw new UsageError(`--from ${o.from} is not before --to ${o.to}`);
  const extra = parseCount(o.extraPartitions, '--extra-partitions') ?? 0;
  if (extra > 0 && o.to === undefined)
    throw new UsageError('--extra-partitions applies only with --to (it reads partitions after --to)');
  const maxRate = parseRate(o.maxRate);
  const offsetFields = o.offsetFields?.split(',').map((s) => s.trim());
  if (offsetFields && (offsetFields.length !== 2 || offsetFields.some((s) => s === '')))
    throw new UsageError(`--offset-fields: expected PARTITION_FIELD,OFFSET_FIELD, got '${o.offsetFields}'`);
  const archives: Archive[] = [];
  for (let i = 0; i < args.length; i++)
    archives.push(await openArchive(args[i], i, { layout: o.layout, tz, tsField: o.tsField, tsFormat }));
  const names = archives.map((a) => a.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new UsageError(`source '${dup}' is given twice`);
  const note = (m: string) => process.stderr.write(`kappa replay: ${m}\n`);
  const checkpoint = await sourceCheckpointing('replay', o, note);
  // A position of `--then` runs holds the archive's and the topic's (HandoverSource.position).
  const resumeAt = checkpoint?.startAt(0);
  const handed = resumeAt?.kind === 'replay-then-kafka';
  const archiveStart = handed ? (resumeAt?.archive as SourcePosition | undefined) : resumeAt;
  const topicStart = handed && resumeAt?.kafka ? (resumeAt.kafka as SourcePosition) : undefined;
  if (handed && !o.then)
    throw new UsageError('the position to resume from is of a run with --then; give the same --then');
  const replay = new ReplaySource({
    archives,
    range: { from, to, extra },
    maxRate,
    maxLineBytes: o.maxLineBytes,
    startAt: archiveStart,
    openEnd: o.then !== undefined,
  });
  const { bad, progress } = runContext(
    'replay',
    o,
    o.then ? 'rows' : 'bytes',
    o.then ? undefined : replay.total,
    true,
  );
  let source: RecordSource = replay;
  let handover: HandoverSource | undefined;
  if (o.then) {
    const u = parseKafkaUri(o.then);
    // The archive that recorded offsets of this topic (the table a sink wrote from it).
    const holder = archives.find((a) => recordedStart(a.kafkaOffsets, u.topic));
    const recorded = holder ? recordedStart(holder.kafkaOffsets, u.topic) : undefined;
    const start: HandoverStart = recorded
      ? { kind: 'offsets', offsets: recorded }
      : {
          kind: 'time',
          overlapMs: parseDuration(o.overlap ?? '1m', '--overlap'),
          offsetFields: offsetFields as [string, string] | undefined,
        };
    const thenUri = o.then;
    handover = new HandoverSource({
      replay,
      topic: u.topic,
      start,
      openTopic: async (pos) => {
        const { openKafka } = await import('../connectors/kafka/source.js');
        // Resumed after the hand-over: the topic continues at its own position (startAt).
        return openKafka([thenUri], { from: pos, until: o.until, X: o.X, startAt: topicStart });
      },
      tsField: (holder ?? archives[0]).tsField,
      tsFormat: (holder ?? archives[0]).tsFormat,
      tz,
      note: (m) => {
        if (!o.quiet) process.stderr.write(`kappa replay: ${m}\n`);
      },
    });
    source = handover;
  }
  let status = 'failed';
  try {
    status = await runSource({
      sources: [source],
      tsFormat,
      tz,
      keyField: o.keyField,
      bad,
      progress,
      warn: (m) => process.stderr.write(`kappa replay: warning: ${m}\n`),
      checkpoint,
    });
  } finally {
    bad.close();
    progress.stats.bad = bad.count;
    progress.stats.extra.partitions = replay.epochs.length;
    if (handover) progress.stats.extra['topic records already archived'] = handover.duplicates;
    if (checkpoint) Object.assign(progress.stats.extra, checkpoint.counters());
    progress.finish(status);
    if (!o.quiet)
      for (const c of replay.counts)
        process.stderr.write(
          `kappa replay: ${c.name}: ${c.partitions.toLocaleString('en-US')} partitions, ${c.records.toLocaleString('en-US')} records${c.outside > 0 ? ` (${c.outside.toLocaleString('en-US')} outside --from/--to left out)` : ''}\n`,
        );
  }
}
