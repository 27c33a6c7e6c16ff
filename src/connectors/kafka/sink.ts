/**
 * The Kafka sink target: `kappa sink kafka://host:port[,host:port]/topic` (the producer of
 * adapter.ts).
 *
 * - Message key = record key (UTF-8), value = the record's value as JSON (null value: tombstone),
 *   timestamp = event time `ts` (CreateTime), headers = record headers.
 * - Partition: chosen by kappa with the Java client's default partitioner (partitioner.ts), so
 *   Kafka Streams, Flink and Java producers agree on where a key lives; null keys round-robin.
 * - Delivery: idempotent producer, acks=all, one produce request in flight (ordering within a
 *   partition is the input order). Records are batched (`--batch-size` records or `--linger`
 *   time, whichever first) and optionally gzip-compressed; snappy, lz4 and zstd need kafkajs codec
 *   plugins and are not offered. At end of input every batch is sent and acknowledged before the
 *   command exits 0. A failed send (after kafkajs's retries) stops the run with exit 1. Without
 *   Kafka transactions, batches acknowledged before a failure stay in the topic (at-least-once on
 *   rerun); the summary counts only acknowledged records.
 * - The topic must exist unless `--create-topic PARTITIONS` is given (broker-default replication).
 */
import { ConfigError, RuntimeError, UsageError } from '../../errors.js';
import type { Header, Rec } from '../../stream/protocol.js';
import { parseDuration } from '../../time/duration.js';
import type { RecordSink, SinkOptions } from '../sink.js';
import {
  type KafkaAdminClient,
  kafkaAdmin,
  type OutRecord,
  PRODUCER_CODECS,
  type ProducerCodec,
  type RecordProducer,
  recordProducer,
} from './adapter.js';
import {
  type ClientOptions,
  type KafkaUri,
  kafkaErrorText,
  parseClientOptions,
  parseKafkaUri,
} from './client.js';
import { KeyPartitioner } from './partitioner.js';

/** Flags of `kappa sink` the Kafka target reads. */
export interface KafkaSinkOptions extends SinkOptions {
  batchSize?: string;
  linger?: string;
  compression?: string;
  createTopic?: string;
  topicConfig?: string[];
  /** `-X key=value` occurrences (commander names a short-only flag by its letter). */
  X?: string[];
}

class KafkaSink implements RecordSink {
  private producer: RecordProducer | undefined;
  private partitioner: KeyPartitioner | undefined;
  private buf: OutRecord[] = [];
  private inflight: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private error: Error | undefined;
  private acked = 0;
  private readonly perPartition = new Map<number, number>();

  constructor(
    private readonly u: KafkaUri,
    private readonly client: ClientOptions,
    private readonly admin: KafkaAdminClient,
    private readonly batchSize: number,
    private readonly lingerMs: number,
    private readonly compression: ProducerCodec,
    private readonly createPartitions: number | undefined,
    private readonly topicConfig: { name: string; value: string }[],
  ) {}

  async open(_h: Header): Promise<void> {
    const { topic } = this.u;
    let topics: string[];
    try {
      await this.admin.connect();
      topics = await this.admin.listTopics();
    } catch (e) {
      throw new RuntimeError(
        `${this.u.uri}: cannot connect to ${this.u.brokers.join(',')}: ${kafkaErrorText(e)}`,
      );
    }
    if (!topics.includes(topic)) {
      if (this.createPartitions === undefined)
        throw new ConfigError(
          `${this.u.uri}: topic '${topic}' does not exist`,
          'create it first, or pass --create-topic PARTITIONS to let kappa create it',
        );
      try {
        await this.admin.createTopic(topic, this.createPartitions, this.topicConfig);
      } catch (e) {
        throw new RuntimeError(`${this.u.uri}: cannot create topic: ${kafkaErrorText(e)}`);
      }
    }
    let partitions: number[];
    try {
      partitions = await this.admin.partitionIds(topic);
    } catch (e) {
      throw new RuntimeError(`${this.u.uri}: cannot read topic metadata: ${kafkaErrorText(e)}`);
    }
    this.partitioner = new KeyPartitioner(partitions.length);
    this.producer = recordProducer(this.u, this.client, 'kappa-sink');
    try {
      await this.producer.connect();
    } catch (e) {
      throw new RuntimeError(`${this.u.uri}: cannot connect producer: ${kafkaErrorText(e)}`);
    }
  }

  write(r: Rec): void | Promise<void> {
    if (this.error) throw this.error;
    const key = r.key ?? null;
    const partition = this.partitioner?.partition(key) ?? 0;
    this.buf.push({
      key,
      value: r.value === null ? null : JSON.stringify(r.value),
      partition,
      timestamp: String(Math.trunc(r.ts)),
      headers: r.headers,
    });
    if (this.buf.length === 1 && this.lingerMs > 0 && !this.timer)
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush().catch(() => {});
      }, this.lingerMs);
    if (this.buf.length >= this.batchSize) return this.flush();
  }

  async afterBatch(): Promise<void> {
    if (this.error) throw this.error;
    if (this.lingerMs === 0 && this.buf.length > 0) await this.flush();
  }

  /** Sends the buffered records once the previous request was acknowledged (one in flight). */
  private async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.inflight) await this.inflight;
    if (this.error) throw this.error;
    if (this.buf.length === 0) return;
    const messages = this.buf;
    this.buf = [];
    const producer = this.producer;
    if (!producer) throw new RuntimeError(`${this.u.uri}: producer not open`);
    this.inflight = producer
      .send(this.u.topic, messages, this.compression)
      .then(() => {
        this.acked += messages.length;
        for (const m of messages) {
          this.perPartition.set(m.partition, (this.perPartition.get(m.partition) ?? 0) + 1);
        }
      })
      .catch((e: unknown) => {
        this.error ??= new RuntimeError(
          `${this.u.uri}: send of ${messages.length} records failed: ${kafkaErrorText(e)}`,
          `${this.acked} records were acknowledged before the failure`,
        );
      })
      .finally(() => {
        this.inflight = undefined;
      });
  }

  watermark(): void {}

  async commit(): Promise<string> {
    await this.flush();
    if (this.inflight) await this.inflight;
    if (this.error) throw this.error;
    await this.producer?.disconnect();
    await this.admin.disconnect();
    return `${this.acked} records to ${this.u.uri}`;
  }

  async abort(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.buf = [];
    await this.inflight?.catch(() => {});
    await this.producer?.disconnect().catch(() => {});
    await this.admin.disconnect();
  }

  counters(): Record<string, number | string> {
    return { acked: this.acked, partitions: this.perPartition.size };
  }
}

/** Creates the `kafka://` sink target (registered lazily by options.ts). */
export async function createKafkaSink(target: string, o: KafkaSinkOptions): Promise<RecordSink> {
  const u = parseKafkaUri(target);
  const client = parseClientOptions(o.X);
  const batchSize = Number(o.batchSize ?? 10000);
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new UsageError(`--batch-size: expected a positive integer, got '${o.batchSize}'`);
  const lingerMs = parseDuration(o.linger ?? '100ms', '--linger');
  const compression = (o.compression ?? 'none') as ProducerCodec;
  if (!PRODUCER_CODECS.includes(compression))
    throw new UsageError(
      `--compression: '${o.compression}' is not supported for kafka://`,
      `use ${PRODUCER_CODECS.join(' | ')} (snappy, lz4 and zstd need client codec plugins)`,
    );
  let createPartitions: number | undefined;
  if (o.createTopic !== undefined) {
    createPartitions = Number(o.createTopic);
    if (!Number.isInteger(createPartitions) || createPartitions < 1)
      throw new UsageError(`--create-topic: expected a positive partition count, got '${o.createTopic}'`);
  }
  const topicConfig = (o.topicConfig ?? []).map((kv) => {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new UsageError(`--topic-config: expected key=value, got '${kv}'`);
    return { name: kv.slice(0, eq), value: kv.slice(eq + 1) };
  });
  if (topicConfig.length > 0 && createPartitions === undefined)
    throw new UsageError('--topic-config applies only with --create-topic');
  const admin = kafkaAdmin(u, client, 'kappa-sink');
  return new KafkaSink(u, client, admin, batchSize, lingerMs, compression, createPartitions, topicConfig);
}
