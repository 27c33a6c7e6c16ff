/**
 * `kappa sink TARGET`: kappa stream on stdin -> stdout, a file, a table directory (local or
 * s3://) or a Kafka topic. Glue only: pick the target kind, pump the stream, commit at end of
 * input, abort (commit nothing partial) on any failure.
 */
import { Command } from 'commander';
import { createSink, type RecordSink } from '../io/sink.js';
import { readStream } from '../stream/input.js';
import { type CommonOptions, runContext, withCommonOptions } from './common.js';
import '../io/stdout.js';
import { withKafkaSinkOptions } from '../io/kafka/options.js';
import { withS3Options } from '../io/s3.js';

interface SinkFlags extends CommonOptions {
  format?: string;
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
    );
  withS3Options(withKafkaSinkOptions(cmd));
  withCommonOptions(cmd).addHelpText(
    'after',
    `
Examples:
  kappa ingest flights.parquet --ts-field date | kappa sink -  | jq .delay
  kappa ingest flights.parquet --ts-field date --key-field origin | kappa sink kafka://localhost:9092/flights`,
  );
  return cmd.action(async (target: string, o: SinkFlags) => runSink(target, o));
}

async function runSink(target: string, o: SinkFlags): Promise<void> {
  const { bad, progress } = runContext('sink', o);
  const stats = progress.stats;
  const sink: RecordSink = await createSink(target, { ...o });
  let status = 'failed, nothing committed';
  try {
    let where = '';
    await readStream(process.stdin, {
      header: (h) => sink.open(h),
      record(r) {
        stats.recordsIn++;
        stats.recordsOut++;
        return sink.write(r);
      },
      watermark: (wm) => sink.watermark(wm),
      barrier: (b) => sink.barrier?.(b),
      async end() {
        where = await sink.commit();
      },
      async afterBatch() {
        progress.update(stats.recordsIn);
        await sink.afterBatch?.();
      },
      stopped: () => sink.closed === true,
    });
    status = sink.closed ? 'stopped (downstream closed)' : `done, wrote ${where}`;
  } catch (e) {
    await sink.abort().catch(() => {});
    throw e;
  } finally {
    bad.close();
    stats.bad = bad.count;
    Object.assign(stats.extra, sink.counters?.() ?? {});
    progress.finish(status);
  }
}
