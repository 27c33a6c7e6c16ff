/**
 * `kappa sink TARGET`: kappa stream on stdin -> stdout, a file, a table directory (local or
 * s3://) or a Kafka topic. Glue only: pick the target kind, pump the stream, commit at end of
 * input, abort (commit nothing partial) on any failure or SIGINT/SIGTERM (exit 130/143).
 */

import { Command } from 'commander';
import { type CheckpointFlags, withCheckpointOptions } from '../checkpoint/options.js';
import { SINK_TARGETS } from '../connectors/index.js';
import { withKafkaSinkOptions } from '../connectors/kafka/options.js';
import { type RecordSink, sinkTargetFor } from '../connectors/sink.js';
import { DataError } from '../errors.js';
import type { Json } from '../state/savepoint/format.js';
import { withS3Options } from '../storage/s3-options.js';
import type { RecordBatch } from '../stream/batch.js';
import { stageInput } from '../stream/direct.js';
import { readStream } from '../stream/input.js';
import type { StopInfo } from '../stream/protocol.js';
import {
  beforeForcedExit,
  deferFirstSignal,
  InterruptedError,
  interruptedBy,
  interruptible,
  throwIfInterrupted,
} from '../stream/signals.js';
import { assertNeeds, assertOptionsApply } from './applicable.js';
import {
  type CommonOptions,
  parseBytes,
  parseCount,
  runContext,
  stageCheckpointer,
  withCommonOptions,
} from './common.js';

interface SinkFlags extends CommonOptions, CheckpointFlags {
  format?: string;
  partitionBy?: string;
  tz?: string;
  rollSize?: string;
  rollRecords?: string;
  rollInterval?: string;
  compression?: string;
  mergeSchema?: boolean;
  [flag: string]: unknown;
}

export function sinkCommand(): Command {
  const cmd = new Command('sink')
    .description(
      'write a kappa record stream to stdout (-), a file, a table directory (local or s3://) or kafka://',
    )
    .argument(
      '<target>',
      "'-' for stdout (one JSON value per line), a file, a directory, s3://bucket/prefix, kafka://host:port/topic",
    )
    .option(
      '-f, --format <format>',
      'output format: parquet | ndjson | csv (default: parquet for directories, by extension for files)',
    )
    .option(
      '--partition-by <spec>',
      "Hive partitions from event time (strftime) and fields, e.g. 'dt=%Y-%m-%d/hr=%H' or 'dt=%Y-%m-%d/{carrier}'",
    )
    .option('--tz <zone>', 'time zone of the time partitions (IANA name)', 'UTC')
    .option('--roll-size <bytes>', 'roll a part file at this size, e.g. 64MiB (default: 128MiB)')
    .option('--roll-records <n>', 'roll a part file after N records')
    .option('--roll-interval <dur>', 'roll a part file open longer than this (processing time), e.g. 15m')
    .option('--merge-schema', 'appending to a table: allow new fields to add columns (Delta mergeSchema)')
    .option(
      '--compression <codec>',
      'Parquet: zstd | snappy | gzip | brotli | none (default: zstd); kafka: none | gzip (default: none)',
    );
  withS3Options(withKafkaSinkOptions(cmd));
  withCheckpointOptions(cmd);
  withCommonOptions(cmd).addHelpText(
    'after',
    `
Examples:
  kappa ingest flights.parquet --ts-field date | kappa sink out/ --partition-by 'dt=%Y-%m-%d'
  kappa ingest events.ndjson --ts-field time | kappa sink s3://lake/events --partition-by 'dt=%Y-%m-%d/hr=%H'
  kappa ingest flights.parquet --ts-field date | kappa sink out/ --partition-by 'dt=%Y-%m-%d/{origin}' --roll-records 100000
  kappa ingest data.csv --ts-field ts | kappa sink out.parquet --compression snappy
  kappa ingest flights.parquet --ts-field date | kappa sink -  | jq .delay
  kappa ingest flights.parquet --ts-field date --key-field origin | kappa sink kafka://localhost:9092/flights
  # checkpointed pipeline: one Kafka transaction per epoch, progress records in _kappa-progress
  kappa ingest kafka://b:9092/in --checkpoint-interval 10s | kappa sink kafka://b:9092/out --transaction-timeout 2m

From another kappa stage (Arrow stream, kappa run) Parquet tables and files, and the NDJSON values
of 'sink -', are written from the batches' columns (summary: "rows by columns"); the output is the
same as record by record.
A table directory gets a Delta Lake log (_delta_log/) and _SUCCESS in each time partition once the
watermark passes its end; files are visible only after commit (end of input or checkpoint barrier).
Appends keep the table's partitioning and column types; new columns need --merge-schema. A crashed
run's files are repaired (rolled forward or discarded) by the next sink into the table. A run in
which every record was bad commits nothing and exits 3.
In a checkpointing pipeline a table commits one Delta version per checkpoint (a txn action tagged
with the checkpoint id) and skips an epoch it already committed; a Kafka sink commits one
transaction per checkpoint; stdout is at-least-once; a single file cannot checkpoint (exit 2). Commits of Kafka records note the next offset per topic partition
(commitInfo kappa.kafkaOffsets), e.g.
  kappa ingest kafka://localhost:9092/flights --until latest | kappa sink archive/ --partition-by 'dt=%Y-%m-%d'
See man kappa-sink, man kappa-kafka, man kappa-s3 and man kappa-checkpoints.`,
  );
  return cmd.action(async (target: string, o: SinkFlags, c: Command) => runSink(target, o, c));
}

async function runSink(target: string, o: SinkFlags, cmd: Command): Promise<void> {
  const kind = sinkTargetFor(target, o, SINK_TARGETS);
  assertOptionsApply(cmd, [kind], SINK_TARGETS);
  assertNeeds(cmd, 'tz', 'partitionBy', 'the zone of the time partitions');
  const checkpoint = stageCheckpointer('sink', o, true);
  const { bad, progress } = runContext('sink', o);
  const stats = progress.stats;
  const sink: RecordSink = await kind.create(target, {
    ...o,
    rollSize: o.rollSize === undefined ? undefined : parseBytes(o.rollSize, '--roll-size'),
    rollRecords: parseCount(o.rollRecords, '--roll-records'),
    bad,
  });
  let status = 'failed, nothing committed';
  // Should the run not stop by itself after a signal (blocked on a slow target), the forced exit
  // still discards what is uncommitted.
  const unregister = beforeForcedExit(() => sink.abort());
  let undefer = () => {};
  try {
    let where = '';
    let stoppedAt: StopInfo | undefined;
    await readStream(
      interruptible(stageInput()),
      {
        async header(h) {
          const pipeline = checkpoint.onHeader(h, false);
          await sink.open(h, checkpoint.sinkContext());
          if (pipeline) {
            await checkpoint.restore();
            undefer = deferFirstSignal((sig) =>
              process.stderr.write(
                `kappa sink: ${sig}: waiting for the source's savepoint (send it again to abort)\n`,
              ),
            );
          }
        },
        record(r, line) {
          stats.recordsIn++;
          return sink.write(r, line);
        },
        // Batches of a version-2 stream go to the sink's batch path when it has one.
        ...(sink.writeBatch
          ? {
              batch(b: RecordBatch, first: number) {
                stats.recordsIn += b.length;
                return sink.writeBatch?.(b, first);
              },
            }
          : {}),
        watermark: (wm) => sink.watermark(wm),
        async barrier(b) {
          // The sink's commit of epoch b.id is the checkpoint's commit point; its descriptor goes
          // into the checkpoint first, so that --resume can ask the target after a crash in between.
          await checkpoint.sinkPart(b, kind.name, sink.commitDescriptor?.() as Json | undefined);
          await sink.barrier?.(b);
          await checkpoint.complete(b);
        },
        async end(final) {
          throwIfInterrupted(); // a signal that arrived with the end line in the same chunk
          if (stats.recordsIn > 0 && bad.count >= stats.recordsIn)
            throw new DataError(
              `all ${stats.recordsIn} records were bad (${bad.policy.mode === 'dead-letter' ? `written to ${bad.policy.path}` : 'skipped'}); nothing committed`,
              'fix the cause the bad-record messages name; --on-error does not turn a run without any good record into a success',
            );
          // The final checkpoint (end of input) commits with the rest of the output.
          if (final)
            await checkpoint.sinkPart(final, kind.name, sink.commitDescriptor?.() as Json | undefined);
          where = await sink.commit(final);
          if (final) await checkpoint.complete(final);
        },
        stop(st) {
          // Stop-with-savepoint: the sink committed on the savepoint's barrier; nothing more is final.
          stoppedAt = st;
        },
        async afterBatch() {
          progress.update(stats.recordsIn);
          await sink.afterBatch?.();
        },
        bad(line, reason, raw) {
          stats.recordsIn++;
          bad.report({ source: 'stdin', line }, reason, raw);
        },
        stopped: () => sink.closed === true,
      },
      { maxLineBytes: o.maxLineBytes },
    );
    if (stoppedAt) {
      await sink.abort();
      status = `stopped with savepoint ${stoppedAt.savepoint}`;
    } else status = sink.closed ? 'stopped (downstream closed)' : `done, wrote ${where}`;
    stats.recordsOut = stats.recordsIn - bad.count;
  } catch (e) {
    await sink.abort().catch(() => {});
    const sig = interruptedBy();
    if (sig)
      throw new InterruptedError(
        sig,
        `interrupted by ${sig} after ${stats.recordsIn.toLocaleString('en-US')} records; nothing committed, in-progress files removed`,
      );
    throw e;
  } finally {
    undefer();
    unregister();
    bad.close();
    stats.bad = bad.count;
    Object.assign(stats.extra, sink.counters?.() ?? {});
    progress.finish(status);
  }
}
