/**
 * The Kafka client adapter: the only module that imports kafkajs. The Kafka source (source.ts),
 * the sink (sink.ts) and the position lookups (positions.ts) use the three small interfaces below,
 * so kafkajs's workarounds live here and the client can be replaced by writing this file again:
 *
 * - {@link KafkaAdminClient}: metadata, offset lookups (ListOffsets by time), topic creation,
 *   committing offsets of a member-less group (OffsetCommit as a standalone consumer), deleting a
 *   group.
 * - {@link PartitionReader}: reads a fixed set of partitions from given offsets, Flink-style
 *   (no group membership decides anything). kafkajs cannot fetch without joining a group, so the
 *   reader joins a throwaway group with a custom assigner that gives every chosen partition to
 *   the first member, seeks to the start offsets and never commits. Fetched batches go to a
 *   handler that may hold fetching back (kafkajs processes the batches of one fetch one after the
 *   other, so a handler that waited for a partition of the same fetch would stall for ever);
 *   `pause(p)` stops fetching p; `resume(p, offset)` fetches p again from `offset`.
 * - {@link RecordProducer}: sends batches of records to explicit partitions (idempotent,
 *   acks=all, one request in flight).
 * - {@link TransactionalProducer}: the same inside Kafka transactions (one open at a time), with
 *   kappa's own retry of CONCURRENT_TRANSACTIONS and other retriable errors around the
 *   transactional calls ({@link txnRetry}).
 * - {@link readPartitionCommitted}: reads one partition read_committed up to its last stable
 *   offset (the Kafka sink's progress topic).
 *
 * kafkajs details handled here: the fetch position of a batch (`fetchedOffset`, not in kafkajs's
 * typings), batches that held only transaction markers or aborted records (kafkajs does not call
 * `eachBatch` for them; they are reported by the END_BATCH_PROCESS instrumentation event with
 * `batchSize` 0), stale batches fetched before a seek took effect (`isStale`), and the consumer
 * CRASH event (kafkajs's own restart is disabled: kappa reports the failure).
 */
import {
  type Admin,
  AssignerProtocol,
  CompressionTypes as Codecs,
  type ConfigResourceTypes,
  type Consumer,
  type EachBatchPayload,
  Kafka as KafkaJs,
  type KafkaConfig as KafkaJsConfig,
  logLevel,
  type Producer,
  type SASLOptions,
  type Transaction,
} from 'kafkajs';
import type { ClientOptions, KafkaUri } from './client.js';

/** Header values as fetched: one value, or several for a repeated header name. */
export type RawHeaders = Record<string, Buffer | string | (Buffer | string)[] | undefined>;

/** One fetched record. `offset` and `timestamp` (epoch ms) are decimal strings. */
export interface FetchedRecord {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  timestamp: string;
  headers?: RawHeaders;
}

/**
 * The data records of one fetch of one partition, in offset order (control records and aborted
 * transactional records removed). Offsets in [fetchedOffset, endOffset) that hold no record here
 * hold no data record (compaction, transaction markers, aborted records).
 */
export interface FetchedBatch {
  partition: number;
  /** The offset the fetch started at (the consumer position). */
  fetchedOffset: bigint;
  /** One past the last offset the fetch covered (including filtered records). */
  endOffset: bigint;
  /** Log end offset (high watermark) the broker reported, for lag. */
  highWatermark: bigint;
  records: FetchedRecord[];
}

/** Callbacks of a {@link PartitionReader}. */
export interface ReaderHandlers {
  /**
   * A batch holding at least one data record. A returned promise holds further fetching back
   * (back-pressure; the reader keeps its group session alive meanwhile); it must not wait for
   * anything that needs another fetch.
   */
  batch(b: FetchedBatch): Promise<void> | undefined;
  /** Offsets [from, to) of `partition` hold no data record (a fetch of markers/aborted records only). */
  empty(partition: number, from: bigint, to: bigint): void;
  /** The reader failed for good (after the client's retries); no further callbacks follow. */
  error(e: unknown): void;
}

/** Reads chosen partitions of one topic from chosen offsets (see the module header). */
export interface PartitionReader {
  /**
   * Connects and starts fetching each partition in `positions` at its offset. Resolves once
   * fetching runs. Throws (kafkajs errors) when the broker cannot be reached.
   */
  start(positions: ReadonlyMap<number, bigint>, h: ReaderHandlers): Promise<void>;
  /** Stops fetching `partition` (a batch already fetched may still be handed over). */
  pause(partition: number): void;
  /** Fetches `partition` again, from `offset` (the next offset wanted). */
  resume(partition: number, offset: bigint): void;
  /** Stops fetching and leaves/deletes the throwaway group; never throws. */
  close(): Promise<void>;
}

/** Admin operations the Kafka source and sink need. Methods throw the client's errors. */
export interface KafkaAdminClient {
  connect(): Promise<void>;
  /** Never throws. */
  disconnect(): Promise<void>;
  listTopics(): Promise<string[]>;
  /** Partition ids of `topic`, ascending. */
  partitionIds(topic: string): Promise<number[]>;
  /** Creates `topic` and waits for its partition leaders. */
  createTopic(topic: string, partitions: number, config: { name: string; value: string }[]): Promise<void>;
  /** Log start (low) and log end (high) offset of every partition of `topic`. */
  offsetBounds(topic: string): Promise<Map<number, { low: bigint; high: bigint }>>;
  /** Per partition the first offset whose timestamp is >= `ms`, or undefined when there is none. */
  offsetsForTime(topic: string, ms: number): Promise<Map<number, bigint | undefined>>;
  /** Offsets committed by `group` for `topic` (partitions without a commit are left out). */
  committedOffsets(group: string, topic: string): Promise<Map<number, bigint>>;
  /** Commits `offsets` (next offset to read, per partition) for a group that has no members. */
  commitOffsets(group: string, topic: string, offsets: ReadonlyMap<number, bigint>): Promise<void>;
  deleteGroup(group: string): Promise<void>;
  /**
   * A broker config value (e.g. `transaction.max.timeout.ms`) of the first broker the cluster
   * describes, or undefined when it cannot be read (ACLs, old broker). Never throws.
   */
  brokerConfig?(name: string): Promise<string | undefined>;
}

/** A record to send to an explicit partition. `timestamp`: epoch ms as a decimal string. */
export interface OutRecord {
  key: string | null;
  value: string | null;
  partition: number;
  timestamp: string;
  headers?: Record<string, string>;
}

/** Compression codecs the producer offers (others need kafkajs codec plugins). */
export const PRODUCER_CODECS = ['none', 'gzip'] as const;
export type ProducerCodec = (typeof PRODUCER_CODECS)[number];

/** Idempotent producer, acks=all, one request in flight (order within a partition = send order). */
export interface RecordProducer {
  connect(): Promise<void>;
  /** Sends `records` and resolves when the broker acknowledged all of them (acks=all). */
  send(topic: string, records: OutRecord[], compression: ProducerCodec): Promise<void>;
  disconnect(): Promise<void>;
}

/** kafkajs client configuration from the client-neutral `-X` options. */
function kafkajsConfig(u: KafkaUri, o: ClientOptions, clientId: string): KafkaJsConfig {
  const c: KafkaJsConfig = {
    clientId: o.clientId ?? clientId,
    brokers: u.brokers,
    connectionTimeout: o.connectionTimeoutMs ?? 5000,
    requestTimeout: o.requestTimeoutMs ?? 30000,
    retry: retryConfig(o),
    // kafkajs's own logging is off; kappa reports failures itself.
    logLevel: logLevel.NOTHING,
  };
  if (o.ssl !== undefined) c.ssl = o.ssl;
  if (o.sasl) c.sasl = { ...o.sasl } as SASLOptions;
  return c;
}

function retryConfig(o: ClientOptions) {
  return {
    retries: o.retry.retries ?? 5,
    initialRetryTime: o.retry.initialRetryTimeMs ?? 300,
    maxRetryTime: o.retry.maxRetryTimeMs ?? 10000,
  };
}

/** Group coordinator errors (kafkajs names of codes 14, 15, 16) that pass once the coordinator has loaded. */
const COORDINATOR_ERRORS = new Set([
  'NOT_COORDINATOR_FOR_GROUP',
  'GROUP_LOAD_IN_PROGRESS',
  'GROUP_COORDINATOR_NOT_AVAILABLE',
]);

/**
 * Runs a group request again (up to 20 times, 250 ms apart) while the coordinator reports one of
 * COORDINATOR_ERRORS: kafkajs's admin does not retry OffsetFetch/OffsetCommit on them, and a
 * broker that just started answers NOT_COORDINATOR until its offsets topic is loaded. Other
 * errors (a dead broker) fail at once.
 */
async function coordinatorRetry<T>(f: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await f();
    } catch (e) {
      const err = e as { type?: string; originalError?: { type?: string } };
      const type = err.type ?? err.originalError?.type;
      if (attempt >= 20 || type === undefined || !COORDINATOR_ERRORS.has(type)) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** An admin client for the URI's brokers (not yet connected). */
export function kafkaAdmin(u: KafkaUri, o: ClientOptions, clientId: string): KafkaAdminClient {
  const admin: Admin = new KafkaJs(kafkajsConfig(u, o, clientId)).admin();
  const client: KafkaAdminClient = {
    connect: () => admin.connect(),
    disconnect: () => admin.disconnect().catch(() => {}),
    listTopics: () => admin.listTopics(),
    async partitionIds(topic) {
      const meta = await admin.fetchTopicMetadata({ topics: [topic] });
      return meta.topics[0].partitions.map((p) => p.partitionId).sort((a, b) => a - b);
    },
    async createTopic(topic, numPartitions, configEntries) {
      await admin.createTopics({ topics: [{ topic, numPartitions, configEntries }], waitForLeaders: true });
    },
    async offsetBounds(topic) {
      const m = new Map<number, { low: bigint; high: bigint }>();
      for (const p of await admin.fetchTopicOffsets(topic))
        m.set(p.partition, { low: BigInt(p.low), high: BigInt(p.high) });
      return m;
    },
    async offsetsForTime(topic, ms) {
      const m = new Map<number, bigint | undefined>();
      for (const p of await admin.fetchTopicOffsetsByTimestamp(topic, ms)) {
        const o = BigInt(p.offset);
        m.set(p.partition, o < 0n ? undefined : o); // -1: no record at or after the time
      }
      return m;
    },
    async committedOffsets(groupId, topic) {
      const m = new Map<number, bigint>();
      for (const t of await coordinatorRetry(() => admin.fetchOffsets({ groupId, topics: [topic] })))
        for (const p of t.partitions) if (BigInt(p.offset) >= 0n) m.set(p.partition, BigInt(p.offset));
      return m;
    },
    async commitOffsets(groupId, topic, offsets) {
      const partitions = [...offsets].map(([partition, o]) => ({ partition, offset: String(o) }));
      await coordinatorRetry(() => admin.setOffsets({ groupId, topic, partitions }));
    },
    async deleteGroup(groupId) {
      await coordinatorRetry(() => admin.deleteGroups([groupId]));
    },
    async brokerConfig(name) {
      try {
        const { brokers } = await admin.describeCluster();
        if (brokers.length === 0) return undefined;
        const res = await admin.describeConfigs({
          resources: [{ type: BROKER_RESOURCE, name: String(brokers[0].nodeId), configNames: [name] }],
          includeSynonyms: false,
        });
        return res.resources[0]?.configEntries.find((e) => e.configName === name)?.configValue ?? undefined;
      } catch {
        return undefined;
      }
    },
  };
  return client;
}

/**
 * DescribeConfigs resource type BROKER (4 in the Kafka protocol); kafkajs's `ConfigResourceTypes`
 * enum is not a named export of its CommonJS module under ESM.
 */
const BROKER_RESOURCE = 4 as ConfigResourceTypes;

/** The kafkajs assigner that gives every chosen partition to the first member (sorted by id). */
function firstMemberAssigner(topic: string, chosen: number[]) {
  return () => ({
    name: 'KappaAssigner',
    version: 1,
    async assign({ members }: { members: { memberId: string }[] }) {
      const ids = members.map((m) => m.memberId).sort();
      return ids.map((memberId, k) => ({
        memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({
          version: 1,
          assignment: { [topic]: k === 0 ? chosen : [] },
          userData: Buffer.alloc(0),
        }),
      }));
    },
    protocol({ topics }: { topics: string[] }) {
      return {
        name: 'KappaAssigner',
        metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.alloc(0) }),
      };
    },
  });
}

/** Heartbeat interval (ms) while the batch handler holds fetching back. */
const HEARTBEAT_MS = 3000;

/** How long close() waits for kafkajs to stop fetching and leave the group (ms). */
const CLOSE_WAIT_MS = 1500;

/**
 * A {@link PartitionReader} on kafkajs. `groupId` names the throwaway fetch group (it owns no
 * offsets: auto-commit off) and is deleted by close().
 */
export function partitionReader(
  u: KafkaUri,
  o: ClientOptions,
  clientId: string,
  groupId: string,
): PartitionReader {
  const kafka = new KafkaJs(kafkajsConfig(u, o, clientId));
  const topic = u.topic;
  let consumer: Consumer | undefined;
  let closed = false;
  const c = o.consumer;
  return {
    async start(positions, h) {
      const chosen = [...positions.keys()];
      const cons = kafka.consumer({
        groupId,
        partitionAssigners: [firstMemberAssigner(topic, chosen)],
        allowAutoTopicCreation: false,
        maxWaitTimeInMs: c.maxWaitMs ?? 500,
        sessionTimeout: c.sessionTimeoutMs ?? 30000,
        ...(c.heartbeatIntervalMs !== undefined && { heartbeatInterval: c.heartbeatIntervalMs }),
        ...(c.minBytes !== undefined && { minBytes: c.minBytes }),
        ...(c.maxBytes !== undefined && { maxBytes: c.maxBytes }),
        ...(c.maxBytesPerPartition !== undefined && { maxBytesPerPartition: c.maxBytesPerPartition }),
        ...(c.readUncommitted !== undefined && { readUncommitted: c.readUncommitted }),
        ...(c.metadataMaxAgeMs !== undefined && { metadataMaxAge: c.metadataMaxAgeMs }),
        retry: { ...retryConfig(o), restartOnFailure: async () => false },
      });
      consumer = cons;
      let crash: Error | undefined;
      cons.on(cons.events.CRASH, (ev) => {
        crash = ev.payload.error;
        h.error(ev.payload.error);
      });
      cons.on(cons.events.END_BATCH_PROCESS, (ev) => {
        const e = ev.payload;
        if (e.batchSize === 0 && e.firstOffset !== null && e.topic === topic)
          h.empty(e.partition, BigInt(e.firstOffset), BigInt(e.lastOffset) + 1n);
      });
      await cons.connect();
      await cons.subscribe({ topics: [topic], fromBeginning: true });
      await cons.run({
        autoCommit: false,
        eachBatchAutoResolve: true,
        eachBatch: async ({ batch, isRunning, isStale, heartbeat }: EachBatchPayload) => {
          // A batch fetched before a seek took effect is stale: the seek re-fetches.
          if (closed || !isRunning() || isStale()) return;
          const fetched = (batch as { fetchedOffset?: string }).fetchedOffset;
          const first = batch.messages[0]?.offset;
          const wait = h.batch({
            partition: batch.partition,
            fetchedOffset: BigInt(fetched ?? first ?? batch.lastOffset()),
            endOffset: BigInt(batch.lastOffset()) + 1n,
            highWatermark: BigInt(batch.highWatermark),
            records: batch.messages,
          });
          if (!wait) return;
          let done = false;
          void wait.then(() => {
            done = true;
          });
          while (!done && !closed) {
            let timer: NodeJS.Timeout | undefined;
            await Promise.race([wait, new Promise((r) => (timer = setTimeout(r, HEARTBEAT_MS)))]);
            clearTimeout(timer);
            if (!done && !closed) await heartbeat().catch(() => {});
          }
        },
      });
      try {
        for (const [partition, offset] of positions) cons.seek({ topic, partition, offset: String(offset) });
      } catch (e) {
        // A consumer that crashed while joining has no group left to seek in: report why it crashed.
        throw crash ?? e;
      }
    },
    pause(partition) {
      consumer?.pause([{ topic, partitions: [partition] }]);
    },
    resume(partition, offset) {
      if (!consumer) return;
      consumer.resume([{ topic, partitions: [partition] }]);
      consumer.seek({ topic, partition, offset: String(offset) });
    },
    async close() {
      closed = true;
      if (!consumer) return;
      const cons = consumer;
      consumer = undefined;
      // kafkajs waits for the fetch in flight (up to fetch.max.wait.ms) and leaves the group;
      // a signal stop must not hang on a slow broker, so the wait is bounded.
      let timer: NodeJS.Timeout | undefined;
      const bounded = (p: Promise<unknown>) =>
        Promise.race([
          p.catch(() => {}),
          new Promise<void>((r) => {
            timer = setTimeout(r, CLOSE_WAIT_MS);
          }),
        ]).finally(() => clearTimeout(timer));
      await bounded(cons.disconnect());
      const admin = kafka.admin();
      await bounded(
        (async () => {
          await admin.connect();
          await admin.deleteGroups([groupId]);
        })(),
      );
      await admin.disconnect().catch(() => {});
    },
  };
}

/** A {@link RecordProducer} on kafkajs (idempotent, acks=all, max one request in flight). */
export function recordProducer(u: KafkaUri, o: ClientOptions, clientId: string): RecordProducer {
  const producer: Producer = new KafkaJs(kafkajsConfig(u, o, clientId)).producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    // Bounded: kafkajs would retry an idempotent producer forever, hiding a dead broker.
    retry: retryConfig(o),
    ...(o.producer.transactionTimeoutMs !== undefined && {
      transactionTimeout: o.producer.transactionTimeoutMs,
    }),
    ...(o.producer.metadataMaxAgeMs !== undefined && { metadataMaxAge: o.producer.metadataMaxAgeMs }),
  });
  const codecs = { none: Codecs.None, gzip: Codecs.GZIP } as const;
  return {
    connect: () => producer.connect(),
    async send(topic, records, compression) {
      await producer.send({
        topic,
        messages: records,
        acks: -1,
        compression: codecs[compression],
        timeout: o.requestTimeoutMs ?? 30000,
      });
    },
    disconnect: () => producer.disconnect(),
  };
}

/**
 * A transactional producer (idempotent, acks=all, one request in flight) on one stable
 * transactional.id. Kafka's protocol (KIP-98): the first {@link TransactionalProducer.begin}
 * sends InitProducerId for the id, which bumps the producer epoch, fences any other producer with
 * the same id and aborts the transaction it left open; then one transaction at a time:
 * `begin`, `send`…, `commit` or `abort`. Methods throw {@link TxnFencedError} when another
 * producer took the id over, and the client's errors otherwise (after {@link txnRetry}).
 */
export interface TransactionalProducer {
  connect(): Promise<void>;
  /** Starts a transaction (the first call fences the id's previous producer). */
  begin(): Promise<void>;
  /** Sends `records` in the open transaction; resolves when the broker acknowledged them. */
  send(topic: string, records: OutRecord[], compression: ProducerCodec): Promise<void>;
  /** Commits the open transaction (EndTxn commit); its records become visible to read_committed. */
  commit(): Promise<void>;
  /** Aborts the open transaction, if any (EndTxn abort). */
  abort(): Promise<void>;
  /** True while a transaction is open. */
  readonly inTransaction: boolean;
  disconnect(): Promise<void>;
}

/** Another producer with the same transactional.id took over (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH). */
export class TxnFencedError extends Error {}

/** Broker errors (kafkajs type names) after which a transactional call may simply be repeated. */
const TXN_RETRIABLE = new Set([
  'CONCURRENT_TRANSACTIONS',
  'COORDINATOR_LOAD_IN_PROGRESS',
  'COORDINATOR_NOT_AVAILABLE',
  'NOT_COORDINATOR',
  'GROUP_LOAD_IN_PROGRESS',
  'GROUP_COORDINATOR_NOT_AVAILABLE',
  'NOT_COORDINATOR_FOR_GROUP',
  'REQUEST_TIMED_OUT',
  'NOT_ENOUGH_REPLICAS',
  'NOT_LEADER_FOR_PARTITION',
]);

/** Errors that mean the transactional.id belongs to another producer now. */
const TXN_FENCED = new Set([
  'PRODUCER_FENCED',
  'INVALID_PRODUCER_EPOCH',
  'TRANSACTIONAL_ID_AUTHORIZATION_FAILED',
]);

function errorType(e: unknown): string | undefined {
  const err = e as { type?: string; originalError?: { type?: string }; cause?: { type?: string } };
  return err?.type ?? err?.originalError?.type ?? err?.cause?.type;
}

/**
 * Runs a transactional call again, with exponential backoff (50 ms doubling up to 2 s, for at most
 * `budgetMs`), while it fails with CONCURRENT_TRANSACTIONS or another retriable error: kafkajs
 * retries CONCURRENT_TRANSACTIONS in InitProducerId and produce, not in AddOffsetsToTxn or around
 * back-to-back transactions (tulios/kafkajs#1068, #1315). Fencing errors become
 * {@link TxnFencedError} at once; other errors are rethrown.
 */
export async function txnRetry<T>(f: () => Promise<T>, budgetMs = 30000): Promise<T> {
  const t0 = Date.now();
  for (let wait = 50; ; wait = Math.min(wait * 2, 2000)) {
    try {
      return await f();
    } catch (e) {
      const type = errorType(e);
      if (type !== undefined && TXN_FENCED.has(type)) throw new TxnFencedError(String(type), { cause: e });
      const retriable =
        (type !== undefined && TXN_RETRIABLE.has(type)) || (e as { retriable?: boolean }).retriable;
      if (!retriable || Date.now() - t0 + wait > budgetMs) throw e;
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

/**
 * A {@link TransactionalProducer} on kafkajs for `transactionalId`; `transactionTimeoutMs` is the
 * broker-side transaction.timeout.ms (a transaction open longer is aborted by the coordinator).
 */
export function transactionalProducer(
  u: KafkaUri,
  o: ClientOptions,
  clientId: string,
  transactionalId: string,
  transactionTimeoutMs: number,
): TransactionalProducer {
  const producer: Producer = new KafkaJs(kafkajsConfig(u, o, clientId)).producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    transactionalId,
    transactionTimeout: transactionTimeoutMs,
    retry: retryConfig(o),
    ...(o.producer.metadataMaxAgeMs !== undefined && { metadataMaxAge: o.producer.metadataMaxAgeMs }),
  });
  const codecs = { none: Codecs.None, gzip: Codecs.GZIP } as const;
  let txn: Transaction | undefined;
  const open = (): Transaction => {
    if (!txn) throw new Error('no open transaction');
    return txn;
  };
  return {
    connect: () => producer.connect(),
    get inTransaction() {
      return txn !== undefined;
    },
    async begin() {
      txn = await txnRetry(() => producer.transaction());
    },
    async send(topic, records, compression) {
      const t = open();
      await txnRetry(() =>
        t.send({
          topic,
          messages: records,
          acks: -1,
          compression: codecs[compression],
          timeout: o.requestTimeoutMs ?? 30000,
        }),
      );
    },
    async commit() {
      const t = open();
      await txnRetry(() => t.commit());
      txn = undefined;
    },
    async abort() {
      const t = txn;
      if (!t) return;
      txn = undefined;
      if (t.isActive()) await txnRetry(() => t.abort());
    },
    disconnect: () => producer.disconnect(),
  };
}

/**
 * Reads partition `partition` of `topic` read_committed from its log start to its last stable
 * offset (ListOffsets read_committed) and returns its data records in offset order. Bounded by
 * `timeoutMs`: throws an Error naming the brokers when it cannot finish in time.
 */
export async function readPartitionCommitted(
  brokers: string[],
  o: ClientOptions,
  topic: string,
  partition: number,
  timeoutMs: number,
): Promise<FetchedRecord[]> {
  const u: KafkaUri = { brokers, topic, uri: `kafka://${brokers.join(',')}/${topic}` };
  const admin = kafkaAdmin(u, o, 'kappa-progress');
  let lo: bigint;
  let end: bigint;
  try {
    await admin.connect();
    const b = (await admin.offsetBounds(topic)).get(partition);
    if (!b) throw new Error(`${topic} has no partition ${partition}`);
    lo = b.low;
    end = b.high; // read_committed ListOffsets: the last stable offset
  } finally {
    await admin.disconnect();
  }
  if (end <= lo) return [];
  const group = `kappa-progress-${process.pid}-${Date.now().toString(36)}`;
  const reader = partitionReader(
    u,
    { ...o, consumer: { ...o.consumer, readUncommitted: false } },
    'kappa-progress',
    group,
  );
  const out: FetchedRecord[] = [];
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`timed out after ${timeoutMs} ms reading ${topic} from ${brokers.join(',')}`)),
        timeoutMs,
      );
      reader
        .start(new Map([[partition, lo]]), {
          batch(b) {
            for (const r of b.records) if (BigInt(r.offset) < end) out.push(r);
            if (b.endOffset >= end) resolve();
            return undefined;
          },
          empty(_p, _from, to) {
            if (to >= end) resolve();
          },
          error: reject,
        })
        .catch(reject);
    });
  } finally {
    clearTimeout(timer);
    await reader.close();
  }
  return out;
}
