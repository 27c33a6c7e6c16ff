/**
 * The Kafka flags of `kappa ingest` and `kappa sink`, added by one call each so the commands stay
 * glue. Importing this module registers the Kafka source kind and sink target; the Kafka client
 * (adapter.ts) is imported only when a `kafka://` URI is used, so other runs do not pay its
 * start-up.
 */
import type { Command } from 'commander';
import type { SinkOptions, SinkTarget } from '../sink.js';
import type { SourceKind, SourceOptions } from '../source.js';
import { parseClientOptions } from './client.js';

/**
 * The `kappa ingest` options (commander attribute names) that only the Kafka source reads, for
 * the check that rejects an option no source or target consumes (issue 8 item 22). Options of
 * the command itself (--ts-field, --key-field, --max-out-of-orderness, --on-error, …) are not
 * listed; file options (--format, --delimiter) and S3 options do not apply to kafka://.
 */
export const KAFKA_SOURCE_OPTIONS = [
  'group',
  'from',
  'until',
  'partitions',
  'idleTimeout',
  'maxDrift',
  'X',
] as const;

/**
 * The `kappa sink` options (commander attribute names) the Kafka sink reads (see
 * KAFKA_SOURCE_OPTIONS). `compression` is shared with the Parquet writer (other values);
 * --partition-by, --roll-*, --tz and --format do not apply to kafka://.
 */
export const KAFKA_SINK_OPTIONS = [
  'batchSize',
  'linger',
  'compression',
  'createTopic',
  'topicConfig',
  'progressTopic',
  'transactionTimeout',
  'X',
] as const;

/** True when a SOURCE or TARGET argument is a Kafka topic URI. */
export function isKafkaUri(s: string): boolean {
  return /^kafka:\/\//i.test(s);
}

/** Collects repeated `key=value` flags (commander option argParser). */
export function collectX(v: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), v];
}

/**
 * Collects repeated `-X key=value` client options, checking each as it is parsed: an unknown key
 * or a bad value is a UsageError (exit 2) listing the known keys, whatever the SOURCE or TARGET.
 */
export function collectClientOption(v: string, prev: string[] | undefined): string[] {
  parseClientOptions([v]);
  return collectX(v, prev);
}

/** The kafka:// source kind (kafkajs is imported only when it opens). */
export const kafkaSource: SourceKind = {
  name: 'kafka://host:port/topic',
  options: KAFKA_SOURCE_OPTIONS,
  claims: isKafkaUri,
  open: async (sources: string[], o: SourceOptions) => (await import('./source.js')).openKafka(sources, o),
};

/** The kafka:// sink target. */
export const kafkaSink: SinkTarget = {
  name: 'kafka://host:port/topic',
  options: KAFKA_SINK_OPTIONS,
  claims: isKafkaUri,
  create: async (target: string, o: SinkOptions) => (await import('./sink.js')).createKafkaSink(target, o),
  committedEpoch: async (descriptor) => (await import('./sink.js')).committedEpochKafka(descriptor),
};

const X_HELP =
  'Kafka client option key=value (repeatable, kcat style), e.g. -X security.protocol=SASL_SSL -X sasl.mechanism=PLAIN; see man kappa-kafka';

/** Adds the kafka:// source flags to `kappa ingest`. */
export function withKafkaSourceOptions(cmd: Command): Command {
  return cmd
    .option(
      '--group <id>',
      'kafka: consumer group whose offsets are read (--from committed) and committed after a complete bounded read (never on a signal)',
    )
    .option(
      '--from <pos>',
      'kafka: start position: earliest | latest | committed | ISO time | partition:offset,… (default: committed with --group, else earliest)',
    )
    .option(
      '--until <pos>',
      'kafka: stop position (exclusive), makes the read bounded: latest | ISO time | partition:offset,…',
    )
    .option('--partitions <list>', 'kafka: read only these partitions, e.g. 0,2,4-7')
    .option(
      '--idle-timeout <dur>',
      'kafka: a partition silent this long (and not paused by --max-drift) does not hold the watermark back',
    )
    .option(
      '--max-drift <dur>',
      'kafka: pause partitions whose watermark is ahead of the slowest by more than this (finished and idle partitions do not count)',
    )
    .option('-X <key=value>', X_HELP, collectClientOption);
}

/** Adds the kafka:// target flags to `kappa sink`. */
export function withKafkaSinkOptions(cmd: Command): Command {
  return cmd
    .option('--batch-size <n>', 'kafka: records per produce request', '10000')
    .option('--linger <dur>', 'kafka: send a partial batch after this long', '100ms')
    .option(
      '--create-topic <partitions>',
      'kafka: create the topic with this many partitions if it does not exist',
    )
    .option(
      '--topic-config <key=value>',
      'kafka: topic config for --create-topic, repeatable, e.g. retention.ms=-1 for historical event times',
      collectX,
    )
    .option(
      '--progress-topic <name>',
      'kafka, checkpointed pipelines: topic of the per-epoch progress records (created compacted, 1 partition)',
      '_kappa-progress',
    )
    .option(
      '--transaction-timeout <dur>',
      'kafka, checkpointed pipelines: Kafka transaction timeout, above the checkpoint interval and at most the broker transaction.max.timeout.ms (default 60s, or the broker maximum if lower)',
    )
    .option('-X <key=value>', X_HELP, collectClientOption);
}
