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
 *
 * Exactly once per checkpoint (when `open` gets a {@link SinkCheckpointContext}): Materialize's
 * design (materialize.com/docs/sinks/kafka, `determine_sink_resume_upper`), not Flink's two-phase
 * commit, which kafkajs cannot do (it cannot resume a transaction a crashed process pre-committed):
 * - A transactional producer with transactional.id `kappa:<appId>` (stable across restarts): its
 *   first transaction fences the previous producer of the id and makes the broker abort the
 *   transaction that producer left open (the half-written epoch of a crashed run).
 * - One transaction per epoch: the records since the previous barrier, then one progress record
 *   in the progress topic (`--progress-topic`, default `_kappa-progress`: 1 partition, compacted,
 *   created if missing) with key = appId and value
 *   `{"checkpoint":N,"sources":[…barrier sources…],"committedAt":"ISO time"}`, then the commit on
 *   barrier N. The transaction's commit IS the checkpoint's commit for this sink.
 * - At end of input the last transaction commits with the progress record of epoch
 *   `last barrier id + 1` (`restoredCheckpoint + 1`, or 1, when the run saw no barrier) and
 *   `"end":true`: a rerun that replays to the end recognises the end epoch as committed too.
 * - `open` reads the newest committed progress record of appId (read_committed); an epoch whose
 *   barrier id is ≤ it arrives again after a restore: its records are sent in a transaction that
 *   is aborted instead of committed, so read_committed consumers never see them twice (counted as
 *   `skipped_epochs`/`skipped_records` in the summary line).
 * - Transaction timeout (`--transaction-timeout`, or `-X transaction.timeout.ms`): must exceed the
 *   checkpoint interval and stay ≤ the broker's transaction.max.timeout.ms (checked when the
 *   broker lets kappa read it); default 60 s, or the broker's maximum when that is lower.
 * - Transactional calls retry CONCURRENT_TRANSACTIONS and other retriable errors with backoff
 *   (adapter.ts `txnRetry`); a fenced producer (another run with the same appId) fails the run.
 * Without a context: at-least-once, as described above.
 */
import { ConfigError, RuntimeError, UsageError } from '../../errors.js';
import type { Barrier, Header, Rec } from '../../stream/protocol.js';
import { parseDuration } from '../../time/duration.js';
import type { RecordSink, SinkCheckpointContext, SinkOptions } from '../sink.js';
import type { JsonValue } from '../source.js';
import {
  type KafkaAdminClient,
  kafkaAdmin,
  type OutRecord,
  PRODUCER_CODECS,
  type ProducerCodec,
  type RecordProducer,
  readPartitionCommitted,
  recordProducer,
  type TransactionalProducer,
  TxnFencedError,
  transactionalProducer,
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
  /** `--progress-topic NAME` (exactly-once runs). */
  progressTopic?: string;
  /** `--transaction-timeout DUR` (exactly-once runs). */
  transactionTimeout?: string;
}

/** Default progress topic of exactly-once Kafka sinks. */
export const DEFAULT_PROGRESS_TOPIC = '_kappa-progress';

/** Default Kafka transaction timeout (ms) when the broker's maximum is unknown or higher. */
export const DEFAULT_TRANSACTION_TIMEOUT_MS = 60_000;

/** How long `committedEpoch` and `open` may take to read the progress topic (ms). */
export const PROGRESS_READ_TIMEOUT_MS = 30_000;

/** The transactional.id of the sink with checkpoint appId `appId`. */
export function transactionalIdFor(appId: string): string {
  return `kappa:${appId}`;
}

/**
 * What `committedEpoch` needs (the sink's `commitDescriptor()`): brokers, progress topic, appId and
 * the `-X` client options except secrets. `secrets` names the options left out (`sasl.password`):
 * `committedEpoch` takes them from the environment (`KAPPA_KAFKA_SASL_PASSWORD`).
 */
export interface KafkaCommitDescriptor {
  kind: 'kafka';
  brokers: string[];
  topic: string;
  progressTopic: string;
  appId: string;
  transactionalId: string;
  X: string[];
  secrets: string[];
}

/** The progress record value (JSON) of one committed epoch. */
export interface ProgressValue {
  checkpoint: number;
  sources: unknown;
  committedAt: string;
  end?: true;
}

/**
 * The newest checkpoint id appId committed, from the progress topic's records (offset order): the
 * last record whose key is appId and whose value holds an integer `checkpoint`; null if none.
 */
export function newestCheckpoint(
  records: { key: Buffer | null; value: Buffer | null }[],
  appId: string,
): number | null {
  let newest: number | null = null;
  for (const r of records) {
    if (r.key?.toString('utf8') !== appId || r.value === null) continue;
    try {
      const v = JSON.parse(r.value.toString('utf8')) as Partial<ProgressValue>;
      if (Number.isInteger(v.checkpoint)) newest = v.checkpoint as number;
    } catch {
      // not a kappa progress record: ignored
    }
  }
  return newest;
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The newest epoch committed for `d.appId` (see {@link KafkaCommitDescriptor}), or null: reads
 * partition 0 of the progress topic read_committed up to its last stable offset. A missing
 * progress topic means none. Bounded by `timeoutMs`.
 * @throws RuntimeError naming the brokers when the progress topic cannot be read in time
 * @throws ConfigError when the descriptor needs a secret the environment does not give
 */
export async function committedEpochKafka(
  d: JsonValue,
  timeoutMs = PROGRESS_READ_TIMEOUT_MS,
): Promise<number | null> {
  const k = d as unknown as KafkaCommitDescriptor;
  if (k?.kind !== 'kafka' || !Array.isArray(k.brokers) || typeof k.appId !== 'string')
    throw new ConfigError(`not a Kafka sink commit descriptor: ${JSON.stringify(d)}`);
  const pairs = [...(k.X ?? [])];
  if ((k.secrets ?? []).includes('sasl.password')) {
    const pw = process.env.KAPPA_KAFKA_SASL_PASSWORD;
    if (pw === undefined)
      throw new ConfigError(
        `Kafka sink ${k.appId}: the progress topic needs -X sasl.password, which the checkpoint does not store`,
        'set KAPPA_KAFKA_SASL_PASSWORD',
      );
    pairs.push(`sasl.password=${pw}`);
  }
  return readCommittedEpoch(k.brokers, parseClientOptions(pairs), k.progressTopic, k.appId, timeoutMs);
}

/**
 * The newest epoch committed for `appId` in `progressTopic` (partition 0, read_committed), or null.
 * @throws RuntimeError naming the brokers when it cannot be read within `timeoutMs`
 */
async function readCommittedEpoch(
  brokers: string[],
  client: ClientOptions,
  progressTopic: string,
  appId: string,
  timeoutMs: number,
): Promise<number | null> {
  const where = `progress topic ${progressTopic} on ${brokers.join(',')}`;
  try {
    return await withTimeout(
      (async () => {
        const u = { brokers, topic: progressTopic, uri: `kafka://${brokers.join(',')}/${progressTopic}` };
        const admin = kafkaAdmin(u, client, 'kappa-progress');
        try {
          await admin.connect();
          if (!(await admin.listTopics()).includes(progressTopic)) return null;
        } finally {
          await admin.disconnect();
        }
        const recs = await readPartitionCommitted(brokers, client, progressTopic, 0, timeoutMs);
        return newestCheckpoint(recs, appId);
      })(),
      timeoutMs,
      where,
    );
  } catch (e) {
    throw new RuntimeError(
      `cannot read the committed epoch of ${appId} from the ${where}: ${kafkaErrorText(e)}`,
      'check that the brokers are reachable; an open transaction of a crashed writer holds read_committed readers back until its transaction timeout',
    );
  }
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
  // Exactly-once state (with a checkpoint context).
  private ctx: SinkCheckpointContext | undefined;
  private txp: TransactionalProducer | undefined;
  /** Newest epoch committed for appId (read at open, then advanced by each commit). */
  private committed: number | null = null;
  private lastBarrier: number | null = null;
  /** Records acknowledged in the open transaction. */
  private epochRecords = 0;
  private committedRecords = 0;
  private transactions = 0;
  private skippedEpochs = 0;
  private skippedRecords = 0;
  private txnTimeoutMs = DEFAULT_TRANSACTION_TIMEOUT_MS;

  constructor(
    private readonly u: KafkaUri,
    private readonly client: ClientOptions,
    private readonly admin: KafkaAdminClient,
    private readonly batchSize: number,
    private readonly lingerMs: number,
    private readonly compression: ProducerCodec,
    private readonly createPartitions: number | undefined,
    private readonly topicConfig: { name: string; value: string }[],
    private readonly progressTopic: string,
    private readonly txnTimeoutFlagMs: number | undefined,
    private readonly clientPairs: string[],
  ) {}

  async open(_h: Header, ctx?: SinkCheckpointContext): Promise<void> {
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
    if (ctx) return this.openTransactional(ctx, topics);
    this.producer = recordProducer(this.u, this.client, 'kappa-sink');
    try {
      await this.producer.connect();
    } catch (e) {
      throw new RuntimeError(`${this.u.uri}: cannot connect producer: ${kafkaErrorText(e)}`);
    }
  }

  /**
   * Exactly-once open: the progress topic, the transaction timeout, the transactional producer
   * (its first transaction fences a previous run's producer and aborts its open transaction), and
   * the epoch committed before.
   */
  private async openTransactional(ctx: SinkCheckpointContext, topics: string[]): Promise<void> {
    this.ctx = ctx;
    const pt = this.progressTopic;
    if (!topics.includes(pt)) {
      try {
        await this.admin.createTopic(pt, 1, [{ name: 'cleanup.policy', value: 'compact' }]);
      } catch (e) {
        // Another sink may have created it meanwhile.
        if (!/already exists/i.test(kafkaErrorText(e)))
          throw new RuntimeError(`${this.u.uri}: cannot create progress topic '${pt}': ${kafkaErrorText(e)}`);
      }
    }
    const max = Number((await this.admin.brokerConfig?.('transaction.max.timeout.ms')) ?? Number.NaN);
    const requested = this.txnTimeoutFlagMs ?? this.client.producer.transactionTimeoutMs;
    if (requested !== undefined) {
      if (Number.isFinite(max) && requested > max)
        throw new ConfigError(
          `${this.u.uri}: --transaction-timeout ${requested} ms exceeds the broker's transaction.max.timeout.ms (${max} ms)`,
          'choose a timeout above the checkpoint interval and at most the broker maximum, or raise the broker setting',
        );
      this.txnTimeoutMs = requested;
    } else if (Number.isFinite(max)) this.txnTimeoutMs = Math.min(DEFAULT_TRANSACTION_TIMEOUT_MS, max);
    const txp = transactionalProducer(
      this.u,
      this.client,
      'kappa-sink',
      transactionalIdFor(ctx.appId),
      this.txnTimeoutMs,
    );
    this.txp = txp;
    try {
      await txp.connect();
      await txp.begin();
    } catch (e) {
      throw this.txnError('cannot start a transaction', e);
    }
    this.committed = await readCommittedEpoch(
      this.u.brokers,
      this.client,
      this.progressTopic,
      ctx.appId,
      PROGRESS_READ_TIMEOUT_MS,
    );
  }

  /** The error for a failed transactional call: fencing names the cause. */
  private txnError(what: string, e: unknown): RuntimeError {
    if (e instanceof TxnFencedError)
      return new RuntimeError(
        `${this.u.uri}: ${what}: producer fenced (${e.message}): another kappa sink with appId '${this.ctx?.appId}' started`,
        'run one instance of a pipeline at a time; the newer run owns the transactional id',
      );
    return new RuntimeError(`${this.u.uri}: ${what}: ${kafkaErrorText(e)}`);
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
    const producer = this.txp ?? this.producer;
    if (!producer) throw new RuntimeError(`${this.u.uri}: producer not open`);
    this.inflight = producer
      .send(this.u.topic, messages, this.compression)
      .then(() => {
        this.acked += messages.length;
        this.epochRecords += messages.length;
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

  /** Sends what is buffered and waits for the acknowledgement; throws a failed send's error. */
  private async drain(): Promise<void> {
    await this.flush();
    if (this.inflight) await this.inflight;
    if (this.error) throw this.error;
  }

  /**
   * Ends the open transaction as epoch `id`: commits it with its progress record, or aborts it
   * when `id` was committed before (a replayed epoch), then starts the next one unless `last`.
   */
  private async endEpoch(id: number, sources: unknown, last: boolean): Promise<void> {
    const txp = this.txp;
    if (!txp || !this.ctx) return;
    await this.drain();
    try {
      if (this.committed !== null && id <= this.committed) {
        await txp.abort();
        this.skippedEpochs++;
        this.skippedRecords += this.epochRecords;
      } else {
        const value: ProgressValue = {
          checkpoint: id,
          sources: sources ?? null,
          committedAt: new Date().toISOString(),
        };
        if (last) value.end = true;
        await txp.send(
          this.progressTopic,
          [
            {
              key: this.ctx.appId,
              value: JSON.stringify(value),
              partition: 0,
              timestamp: String(Date.now()),
            },
          ],
          'none',
        );
        await txp.commit();
        this.committed = id;
        this.committedRecords += this.epochRecords;
        this.transactions++;
      }
      this.epochRecords = 0;
      if (!last) await txp.begin();
    } catch (e) {
      throw this.txnError(`epoch ${id}: transaction failed`, e);
    }
  }

  /** Exactly-once: commits epoch `b.id` (see the module header). Without a context: nothing. */
  async barrier(b: Barrier): Promise<void> {
    if (!this.txp) return;
    await this.endEpoch(b.id, b.sources, false);
    this.lastBarrier = b.id;
  }

  /** Exactly-once: what `committedEpoch` needs (no secrets); see {@link KafkaCommitDescriptor}. */
  commitDescriptor(): JsonValue {
    const secret = (kv: string) => kv.slice(0, kv.indexOf('=')).trim() === 'sasl.password';
    const d: KafkaCommitDescriptor = {
      kind: 'kafka',
      brokers: this.u.brokers,
      topic: this.u.topic,
      progressTopic: this.progressTopic,
      appId: this.ctx?.appId ?? '',
      transactionalId: transactionalIdFor(this.ctx?.appId ?? ''),
      X: this.clientPairs.filter((kv) => !secret(kv)),
      secrets: this.clientPairs.some(secret) ? ['sasl.password'] : [],
    };
    return d as unknown as JsonValue;
  }

  /**
   * End of input. Exactly-once: commits the last epoch, numbered by the source's final checkpoint
   * (`final.id`, carried by the end line), else the last barrier id + 1.
   */
  async commit(final?: Barrier): Promise<string> {
    await this.drain();
    if (this.txp) {
      const epoch = final?.id ?? (this.lastBarrier ?? this.ctx?.restoredCheckpoint ?? 0) + 1;
      await this.endEpoch(epoch, final?.sources ?? null, true);
      await this.txp.disconnect();
      await this.admin.disconnect();
      const skipped =
        this.skippedEpochs > 0
          ? `; skipped ${this.skippedRecords} records of ${this.skippedEpochs} replayed epoch(s) committed before`
          : '';
      return `${this.committedRecords} records to ${this.u.uri} in ${this.transactions} transaction(s), last epoch ${this.committed}${skipped}`;
    }
    await this.producer?.disconnect();
    await this.admin.disconnect();
    return `${this.acked} records to ${this.u.uri}`;
  }

  async abort(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.buf = [];
    await this.inflight?.catch(() => {});
    await this.txp?.abort().catch(() => {});
    await this.txp?.disconnect().catch(() => {});
    await this.producer?.disconnect().catch(() => {});
    await this.admin.disconnect();
  }

  counters(): Record<string, number | string> {
    const c: Record<string, number | string> = { acked: this.acked, partitions: this.perPartition.size };
    if (this.txp) {
      c.committed = this.committedRecords;
      c.transactions = this.transactions;
      c.skipped_epochs = this.skippedEpochs;
      c.skipped_records = this.skippedRecords;
    }
    return c;
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
  const progressTopic = o.progressTopic ?? DEFAULT_PROGRESS_TOPIC;
  if (!/^[a-zA-Z0-9._-]{1,249}$/.test(progressTopic))
    throw new UsageError(`--progress-topic: '${progressTopic}' is not a valid topic name`);
  let txnTimeoutMs: number | undefined;
  if (o.transactionTimeout !== undefined) {
    txnTimeoutMs = parseDuration(o.transactionTimeout, '--transaction-timeout');
    if (txnTimeoutMs < 1000)
      throw new UsageError(`--transaction-timeout: at least 1s, got '${o.transactionTimeout}'`);
  }
  const admin = kafkaAdmin(u, client, 'kappa-sink');
  return new KafkaSink(
    u,
    client,
    admin,
    batchSize,
    lingerMs,
    compression,
    createPartitions,
    topicConfig,
    progressTopic,
    txnTimeoutMs,
    o.X ?? [],
  );
}
